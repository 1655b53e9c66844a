/* Store URLs for capstan convert (convert_remote.h). */
#include "cli/convert_remote.h"

#include "capstan/error.h"
#include "cli/cli.h"
#include "store/blob.h"
#include "util/fs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int make_temp(const char *cmd, const char *what, char *out)
{
    const char *tmp = getenv("TMPDIR");
    if (snprintf(out, PATH_MAX, "%s/capstan-convert-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", what) >=
            PATH_MAX ||
        !mkdtemp(out)) {
        out[0] = '\0';
        return cli_fail(cmd, CLI_EXIT_FAILURE, "cannot make a temporary folder");
    }
    return 0;
}

int convert_remote_begin(const char *cmd, const char **in, const char **out,
                         struct convert_remote *r)
{
    memset(r, 0, sizeof(*r));
    if (cap_blob_url_is_s3(*in)) {
        struct cap_blob_store *s;
        char why[512];
        if (cap_blob_open(&s, *in, why, sizeof(why)) != 0)
            return cli_fail(cmd, CLI_EXIT_USAGE, "--in: %s", why);
        int code = make_temp(cmd, "in", r->in_dir);
        int n = code ? 0 : cap_blob_download_prefix(s, "", r->in_dir);
        if (!code && n < 0)
            code =
                cli_fail(cmd, CLI_EXIT_FAILURE, "--in: %s", s->why[0] ? s->why : cap_strerror(n));
        else if (!code && n == 0)
            code = cli_fail(cmd, CLI_EXIT_FAILURE, "--in: nothing under %s", s->where);
        cap_blob_close(s);
        if (code) {
            convert_remote_end(cmd, r, code);
            return code;
        }
        r->in_url = *in;
        *in = r->in_dir;
    }
    if (*out && cap_blob_url_is_s3(*out)) {
        struct cap_blob_store *s;
        char why[512];
        /* Checked before the work, so a bad URL does not cost a conversion. */
        if (cap_blob_open(&s, *out, why, sizeof(why)) != 0) {
            convert_remote_end(cmd, r, 1);
            return cli_fail(cmd, CLI_EXIT_USAGE, "--out: %s", why);
        }
        cap_blob_close(s);
        int code = make_temp(cmd, "out", r->out_dir);
        if (code) {
            convert_remote_end(cmd, r, code);
            return code;
        }
        r->out_url = *out;
        *out = r->out_dir;
    }
    return 0;
}

static int publish(const char *cmd, const char *url, const char *dir, const char *prefix)
{
    struct cap_blob_store *s;
    char why[512];
    if (cap_blob_open(&s, url, why, sizeof(why)) != 0)
        return cli_fail(cmd, CLI_EXIT_FAILURE, "%s", why);
    int n = cap_blob_upload_dir(s, dir, prefix);
    int code = 0;
    if (n < 0)
        code = cli_fail(cmd, CLI_EXIT_FAILURE, "uploading the outputs to %s: %s", s->where,
                        s->why[0] ? s->why : cap_strerror(n));
    cap_blob_close(s);
    return code;
}

int convert_remote_end(const char *cmd, struct convert_remote *r, int code)
{
    if (!code && r->out_url)
        code = publish(cmd, r->out_url, r->out_dir, "");
    char processed[PATH_MAX];
    struct stat st;
    if (!code && r->in_url && !r->out_url &&
        snprintf(processed, sizeof(processed), "%s/processed", r->in_dir) <
            (int)sizeof(processed) &&
        stat(processed, &st) == 0 && S_ISDIR(st.st_mode))
        code = publish(cmd, r->in_url, processed, "processed");
    if (r->in_dir[0])
        cap_remove_tree(r->in_dir);
    if (r->out_dir[0])
        cap_remove_tree(r->out_dir);
    r->in_dir[0] = r->out_dir[0] = '\0';
    return code;
}
