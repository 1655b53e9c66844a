/* capstan convert --in DIR --transmux --out DIR [--json]: each track of a recording into a
 * file of its own, and the TransmuxSummary (summary.json in the output folder). */
#include "cli/cli.h"

#include "media/transmux.h"
#include "util/fs.h"

#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const help =
    "usage: capstan convert --in DIR --transmux --out DIR [--mkv] [--keep-damaged] [--json]\n"
    "\n"
    "Turns a recording folder into media without re-encoding: one file per track\n"
    "(VP8/VP9/AV1 -> WebM, H.264/H.265 -> MP4, Opus -> Ogg, G.711/G.722 -> WAV), all on the\n"
    "recording's timeline (a late track starts late; audio gaps are silence), and writes\n"
    "summary.json (the TransmuxSummary: peers -> sessions -> tracks -> timeline).\n"
    "\n"
    "  --in DIR         the recording folder (rooms/ROOM/RECORDING under capstan's data)\n"
    "  --transmux       one file per track\n"
    "  --out DIR        where the files go\n"
    "  --mkv            Matroska for every track\n"
    "  --keep-damaged   keep frames damaged by loss instead of waiting for the next keyframe\n"
    "  --json           print the summary and a per-track report as JSON on stdout\n";

static bool show_progress;

static void progress(void *user, double done)
{
    (void)user;
    if (!show_progress || done < 0)
        return;
    int width = 40, filled = (int)(done * width);
    fprintf(stderr, "\r[%.*s%*s] %3d%%", filled, "########################################", width - filled,
            "", (int)(done * 100));
    if (done >= 1)
        fputc('\n', stderr);
    fflush(stderr);
}

static json_t *report_json(const struct cap_transmux_result *r)
{
    json_t *tracks = json_array();
    for (size_t i = 0; i < r->track_count; i++) {
        const struct cap_transmux_track *t = &r->tracks[i];
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "track_id", t->track_id,
                              "peer_id", t->peer_id, "kind", t->kind, "codec", t->codec, "file", t->file,
                              "start_ms", (json_int_t)(t->start_ns / 1000000), "end_ms",
                              (json_int_t)(t->end_ns / 1000000), "frames", (json_int_t)t->frames_written,
                              "dropped_frames", (json_int_t)t->frames_dropped, "silence_frames",
                              (json_int_t)t->silence_frames);
        json_object_set_new(j, "packets", json_integer((json_int_t)t->source.rtp_packets));
        json_object_set_new(j, "lost", json_integer((json_int_t)t->source.lost));
        json_object_set_new(j, "incomplete_frames", json_integer((json_int_t)t->source.incomplete_frames));
        json_object_set_new(j, "keyframes", json_integer((json_int_t)t->source.keyframes));
        json_object_set_new(j, "sender_reports", json_integer(t->clock.sender_reports));
        json_object_set_new(j, "drift_ppm", json_real(t->clock.drift_ppm));
        if (t->error[0])
            json_object_set_new(j, "error", json_string(t->error));
        json_array_append_new(tracks, j);
    }
    return tracks;
}

int cmd_convert(int argc, char **argv)
{
    static const struct option options[] = {
        {"in", required_argument, NULL, 'i'},     {"out", required_argument, NULL, 'o'},
        {"transmux", no_argument, NULL, 't'},     {"mkv", no_argument, NULL, 'm'},
        {"keep-damaged", no_argument, NULL, 'k'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *cmd = "convert";
    const char *in = NULL, *out = NULL;
    bool transmux = false, as_json = false;
    struct cap_transmux_options opt = {0};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (c) {
        case 'i':
            in = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 't':
            transmux = true;
            break;
        case 'm':
            opt.matroska = true;
            break;
        case 'k':
            opt.keep_damaged = true;
            break;
        case 'j':
            as_json = true;
            break;
        case 'h':
            fputs(help, stdout);
            return 0;
        default:
            return cli_fail(cmd, CLI_EXIT_USAGE, "unknown or incomplete option '%s' (see --help)",
                            argv[optind - 1]);
        }
    }
    if (optind != argc)
        return cli_fail(cmd, CLI_EXIT_USAGE, "unexpected argument '%s' (see --help)", argv[optind]);
    if (!in)
        return cli_fail(cmd, CLI_EXIT_USAGE, "--in DIR is required (see --help)");
    if (!out)
        return cli_fail(cmd, CLI_EXIT_USAGE, "--out DIR is required (see --help)");
    if (!transmux)
        return cli_fail(cmd, CLI_EXIT_USAGE, "say what to make: --transmux (see --help)");
    struct stat st;
    if (stat(in, &st) != 0 || !S_ISDIR(st.st_mode))
        return cli_fail(cmd, CLI_EXIT_FAILURE, "%s: no such folder", in);
    show_progress = isatty(STDERR_FILENO) && !as_json;
    opt.out_dir = out;
    opt.progress = progress;
    struct cap_transmux_result r;
    char why[512] = "";
    int err = cap_transmux_recording(in, &opt, &r, why, sizeof(why));
    if (err)
        return cli_fail(cmd, CLI_EXIT_FAILURE, "%s", why[0] ? why : cap_strerror(err));
    json_t *summary = cap_transmux_summary(in, &r);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/summary.json", out);
    char *text = json_dumps(summary, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    int code = 0;
    if (!text || cap_write_file_atomic(path, text, strlen(text)) != 0)
        code = cli_fail(cmd, CLI_EXIT_FAILURE, "cannot write %s", path);
    free(text);
    size_t written = 0;
    for (size_t i = 0; i < r.track_count; i++) {
        if (r.tracks[i].path[0])
            written++;
        else
            fprintf(stderr, "capstan convert: %s: %s\n", r.tracks[i].track_id, r.tracks[i].error);
    }
    if (as_json) {
        json_t *doc = json_pack("{s:O, s:o}", "summary", summary, "tracks", report_json(&r));
        char *t = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        puts(t);
        free(t);
        json_decref(doc);
    } else {
        for (size_t i = 0; i < r.track_count; i++) {
            const struct cap_transmux_track *t = &r.tracks[i];
            if (t->path[0])
                printf("%-28s %-6s %8llu frames  %8.3f s .. %8.3f s  %s\n", t->track_id, t->codec,
                       (unsigned long long)t->frames_written, (double)t->start_ns / 1e9,
                       (double)t->end_ns / 1e9, t->path);
        }
    }
    json_decref(summary);
    cap_transmux_result_deinit(&r);
    if (!code && written == 0 && r.track_count > 0)
        code = cli_fail(cmd, CLI_EXIT_FAILURE, "no track could be converted");
    return code;
}
