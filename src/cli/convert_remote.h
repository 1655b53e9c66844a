/* capstan convert with a store URL (s3://...) as --in or --out: the recording is fetched into
 * a temporary folder first and the outputs are published from one after, so the conversion
 * itself only ever sees folders. */
#ifndef CAP_CLI_CONVERT_REMOTE_H
#define CAP_CLI_CONVERT_REMOTE_H

#include <limits.h>

struct convert_remote {
    const char *in_url;     /* NULL: --in is a folder */
    const char *out_url;    /* NULL: --out is a folder (or absent) */
    char in_dir[PATH_MAX];  /* the fetched recording */
    char out_dir[PATH_MAX]; /* what will be published under out_url */
};

/* Replaces *in and *out by temporary folders where they are store URLs, fetching the
 * recording (every object under the URL's prefix). 0, or the exit code after a message. */
int convert_remote_begin(const char *cmd, const char **in, const char **out,
                         struct convert_remote *r);

/* After the conversion (code 0 = it worked): uploads the outputs (to --out's URL, or, with an
 * S3 --in and no --out, whatever landed in the recording's processed/ back under its prefix),
 * then removes the temporary folders. Returns code, or the exit code of a failed upload. */
int convert_remote_end(const char *cmd, struct convert_remote *r, int code);

#endif
