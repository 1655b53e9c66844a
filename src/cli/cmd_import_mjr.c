/* capstan import-mjr FILE.mjr [FILE.mjr ...] --out DIR: Janus recordings (one RTP stream
 * per .mjr file) become the tracks of one recording folder (tracks/ plus metadata.json,
 * timeline.json, policy.json), so inspect, convert and export-pcap work on them. */
#include "cli/cli.h"

#include "engine/recording_files.h"
#include "track/mjr_import.h"

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const help =
    "usage: capstan import-mjr FILE.mjr [FILE.mjr ...] --out DIR [--peer ID] [--room ID]\n"
    "                          [--recording ID] [--json]\n"
    "\n"
    "Reads Janus .mjr recordings (MJR00002, and MJR00001 from before Janus stored packet\n"
    "times) and writes each file as one track of the recording folder DIR (which must not\n"
    "hold a recording yet). Give a peer's audio and video files together to get one recording\n"
    "with both. Codec, clock rate and channels come from each file's info header; payload type\n"
    "and SSRC from its packets; arrival times from the time its first packet was written plus\n"
    "each packet's offset. Data channel and end-to-end encrypted recordings are refused.\n"
    "\n"
    "  --out DIR            the recording folder to create\n"
    "  --peer ID            the peer every track belongs to (default: each file's name without\n"
    "                       its -audio/-video ending, e.g. room-1234-user-5678)\n"
    "  --room ID            room id written into the recording (default: import)\n"
    "  --recording ID       recording id (default: the first file's peer name)\n"
    "  --json               print the import report as JSON\n"
    "\n"
    "A file cut short (a crashed recorder) imports up to its last whole packet, with a warning\n"
    "that says where it was cut; a file that is not an .mjr fails the import before anything\n"
    "is written.\n";

/* A peer id becomes part of a folder name: keep it to safe characters. */
static bool valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 100 || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int write_recording_files(const struct cap_mjr_import_options *opt,
                                 const struct cap_mjr_import_report *rep)
{
    struct cap_file_track *tracks =
        calloc(rep->track_count ? rep->track_count : 1, sizeof(*tracks));
    if (!tracks)
        return CAP_ENOMEM;
    for (size_t i = 0; i < rep->track_count; i++) {
        const struct cap_mjr_import_track *t = &rep->tracks[i];
        tracks[i] = (struct cap_file_track){
            .track_id = t->track_id,
            .peer_id = t->peer_id,
            .kind = t->kind,
            .codec = t->codec,
            .ssrc = t->ssrc,
            .clock_rate = t->clock_rate,
            .channels = t->channels,
            .packets = t->rtp_packets,
            .bytes = t->rtp_bytes,
            .started_ns = t->first_arrival_ns,
            .ended_ns = t->last_arrival_ns,
        };
    }
    struct cap_file_recording rec = {
        .room_id = opt->room_id,
        .recording_id = opt->recording_id,
        .source = "import-mjr",
        .started_ns = rep->first_arrival_ns,
        .ended_ns = rep->last_arrival_ns,
        .tracks = tracks,
        .track_count = rep->track_count,
    };
    int err = cap_recording_files_write_default(opt->out_dir, &rec);
    free(tracks);
    return err;
}

/* A file read only up to a cut or to garbage is imported, and the user is told what was not. */
static void warn_stops(const struct cap_mjr_import_report *rep)
{
    for (size_t i = 0; i < rep->track_count; i++) {
        const struct cap_mjr_import_track *t = &rep->tracks[i];
        if (t->stopped_early)
            fprintf(stderr,
                    "capstan import-mjr: warning: %s: %s at byte %llu; the last %llu bytes "
                    "were not imported (%llu whole packets were)\n",
                    t->path,
                    t->stopped_at_garbage ? "not a frame header (garbage)"
                                          : "cut short inside a frame",
                    (unsigned long long)t->stop_offset, (unsigned long long)t->unread_bytes,
                    (unsigned long long)t->rtp_packets);
        if (t->not_rtp)
            fprintf(stderr,
                    "capstan import-mjr: warning: %s: skipped %llu frames that are not "
                    "RTP packets\n",
                    t->path, (unsigned long long)t->not_rtp);
    }
}

static json_t *track_json(const struct cap_mjr_import_track *t)
{
    json_t *row = json_pack(
        "{s:s, s:s, s:i, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "file", t->path,
        "track_id", t->track_id, "mjr_version", t->version, "kind", t->kind, "codec", t->codec,
        "clock_rate", (json_int_t)t->clock_rate, "ssrc", (json_int_t)t->ssrc, "payload_type",
        (json_int_t)t->first_pt, "frames", (json_int_t)t->frames, "rtp_packets",
        (json_int_t)t->rtp_packets, "rtp_bytes", (json_int_t)t->rtp_bytes, "not_rtp",
        (json_int_t)t->not_rtp, "ssrc_changes", (json_int_t)t->ssrc_changes);
    if (row && t->stopped_early)
        json_object_set_new(row, "stopped",
                            json_pack("{s:s, s:I, s:I}", "reason",
                                      t->stopped_at_garbage ? "garbage" : "truncated", "offset",
                                      (json_int_t)t->stop_offset, "unread_bytes",
                                      (json_int_t)t->unread_bytes));
    return row;
}

static void print_report(const struct cap_mjr_import_report *rep, const char *out_dir, bool as_json)
{
    if (as_json) {
        json_t *tracks = json_array();
        for (size_t i = 0; i < rep->track_count; i++)
            json_array_append_new(tracks, track_json(&rep->tracks[i]));
        json_t *out = json_pack("{s:s, s:I, s:o}", "out", out_dir, "rtp_packets",
                                (json_int_t)rep->rtp, "tracks", tracks);
        char *text = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        puts(text);
        free(text);
        json_decref(out);
        return;
    }
    printf("imported %llu RTP packets from %zu .mjr file%s into %s\n", (unsigned long long)rep->rtp,
           rep->track_count, rep->track_count == 1 ? "" : "s", out_dir);
    for (size_t i = 0; i < rep->track_count; i++) {
        const struct cap_mjr_import_track *t = &rep->tracks[i];
        printf("  %-28s ssrc %08x  %-5s pt %-3u %8llu rtp  (mjr v%d)\n", t->track_id, t->ssrc,
               t->codec, t->first_pt, (unsigned long long)t->rtp_packets, t->version);
    }
}

int cmd_import_mjr(int argc, char **argv)
{
    static const struct option options[] = {
        {"out", required_argument, NULL, 'o'},
        {"peer", required_argument, NULL, 'p'},
        {"room", required_argument, NULL, 'r'},
        {"recording", required_argument, NULL, 'R'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "import-mjr";
    struct cap_mjr_import_options opt = {.room_id = "import"};
    bool as_json = false;
    int code = 0;
    int c;
    optind = 1;
    opterr = 0;
    while (code == 0 && (c = getopt_long(argc, argv, "o:h", options, NULL)) != -1) {
        switch (c) {
        case 'o':
            opt.out_dir = optarg;
            break;
        case 'p':
            opt.peer_id = optarg;
            if (!valid_id(optarg))
                code = cli_fail(cmd, CLI_EXIT_USAGE,
                                "--peer takes 1..100 of A-Z a-z 0-9 . _ -, "
                                "not '%s'",
                                optarg);
            break;
        case 'r':
            opt.room_id = optarg;
            break;
        case 'R':
            opt.recording_id = optarg;
            break;
        case 'j':
            as_json = true;
            break;
        case 'h':
            fputs(help, stdout);
            return 0;
        default:
            code = cli_fail(cmd, CLI_EXIT_USAGE, "unknown or incomplete option '%s' (see --help)",
                            argv[optind - 1]);
        }
    }
    if (code == 0 && optind >= argc)
        code = cli_fail(cmd, CLI_EXIT_USAGE, "expected one or more .mjr FILEs (see --help)");
    if (code == 0 && !opt.out_dir)
        code = cli_fail(cmd, CLI_EXIT_USAGE, "--out DIR is required (see --help)");
    if (code == 0 && (!opt.room_id[0] || (opt.recording_id && !opt.recording_id[0])))
        code = cli_fail(cmd, CLI_EXIT_USAGE, "--room and --recording take a non-empty ID");
    if (code)
        return code;
    opt.paths = (const char *const *)(argv + optind);
    opt.path_count = (size_t)(argc - optind);
    char recording_id[CAP_TRACK_ID_MAX];
    if (!opt.recording_id) {
        cap_mjr_peer_from_path(opt.paths[0], recording_id, sizeof(recording_id));
        opt.recording_id = recording_id;
    }
    char why[1024];
    struct cap_mjr_import_report rep;
    int err = cap_mjr_import(&opt, &rep, why, sizeof(why));
    if (err)
        code = cli_fail(cmd, CLI_EXIT_FAILURE, "%s", why);
    if (!err && (err = write_recording_files(&opt, &rep)))
        code = cli_fail(cmd, CLI_EXIT_FAILURE, "writing metadata in %s: %s", opt.out_dir,
                        cap_strerror(err));
    if (!err) {
        warn_stops(&rep);
        print_report(&rep, opt.out_dir, as_json);
    }
    cap_mjr_import_report_deinit(&rep);
    return code;
}
