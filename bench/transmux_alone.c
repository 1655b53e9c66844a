/* What `capstan convert --in REC --transmux --out DIR` costs when the program carries only
 * what transmux needs: the same library calls (cap_transmux_recording, then summary.json),
 * in an executable that the linker (--as-needed) gives only libavformat, libavcodec and
 * libavutil of FFmpeg instead of every library capstan links. bench/run times it beside
 * capstan to show what loading the other libraries costs. Not a product command. */
#include "media/transmux.h"
#include "util/fs.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: transmux_alone RECORDING_DIR OUT_DIR\n");
        return 2;
    }
    struct cap_transmux_options opt = {.out_dir = argv[2]};
    struct cap_transmux_result result;
    char why[512] = "";
    int err = cap_transmux_recording(argv[1], &opt, &result, why, sizeof(why));
    if (err) {
        fprintf(stderr, "transmux_alone: %s\n", why[0] ? why : cap_strerror(err));
        return 1;
    }
    json_t *summary = cap_transmux_summary(argv[1], &result);
    char *text = json_dumps(summary, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/summary.json", argv[2]);
    int code = text && cap_write_file_atomic(path, text, strlen(text)) == 0 ? 0 : 1;
    if (code)
        fprintf(stderr, "transmux_alone: cannot write %s\n", path);
    free(text);
    json_decref(summary);
    cap_transmux_result_deinit(&result);
    return code;
}
