/* capstan inspect DIR [--json]: per track SSRC, codec, packets, bytes, first/last arrival,
 * duration, lost, duplicated, reordered. DIR is a recording folder or one track folder. */
#include "cli/cli.h"

#include "engine/recording_files.h"
#include "track/inspect.h"
#include "track/pcap.h"
#include "util/clock.h"

#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const help =
    "usage: capstan inspect DIR [--json]\n"
    "\n"
    "Reports each track of the recording folder DIR (or the one track folder DIR): SSRC,\n"
    "codec, RTP and RTCP packets, bytes, first and last arrival, duration, and the packets\n"
    "lost, duplicated and reordered according to their sequence numbers. Damaged records\n"
    "and torn chunk tails are reported too.\n"
    "\n"
    "  --json    one JSON document instead of a table\n";

static json_t *report_json(const char *dir, const struct cap_track_report *r)
{
    double duration = (double)(r->last_arrival_ns - r->first_arrival_ns) / 1e9;
    return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o, "
                     "s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:b}",
                     "track_id", r->info.track_id, "path", dir, "peer_id", r->info.peer_id,
                     "ssrc", (json_int_t)r->info.ssrc, "kind", r->info.kind, "codec", r->info.codec,
                     "clock_rate", (json_int_t)r->info.clock_rate, "chunks", (json_int_t)r->chunks,
                     "packets", (json_int_t)r->rtp_packets, "rtcp_packets",
                     (json_int_t)r->rtcp_packets, "events", (json_int_t)r->events, "bytes",
                     (json_int_t)r->rtp_bytes, "first_arrival", cap_json_time(r->first_arrival_ns),
                     "last_arrival", cap_json_time(r->last_arrival_ns), "duration_seconds",
                     duration, "lost", (json_int_t)r->lost, "duplicated", (json_int_t)r->duplicated,
                     "reordered", (json_int_t)r->reordered, "late", (json_int_t)r->late,
                     "seq_restarts", (json_int_t)r->seq_restarts, "damaged_records",
                     (json_int_t)r->damaged_records, "torn_tail", r->torn_tail);
}

static void print_row(const struct cap_track_report *r)
{
    char first[40], last[40];
    cap_clock_format_iso8601(r->first_arrival_ns, first, sizeof(first));
    cap_clock_format_iso8601(r->last_arrival_ns, last, sizeof(last));
    printf("%-28s %08x %-7s %8llu %5llu %11llu %s %s %8.3f %6llu %5llu %5llu%s%s\n",
           r->info.track_id, r->info.ssrc, r->info.codec, (unsigned long long)r->rtp_packets,
           (unsigned long long)r->rtcp_packets, (unsigned long long)r->rtp_bytes, first, last,
           (double)(r->last_arrival_ns - r->first_arrival_ns) / 1e9, (unsigned long long)r->lost,
           (unsigned long long)r->duplicated, (unsigned long long)r->reordered,
           r->damaged_records ? "  DAMAGED RECORDS" : "", r->torn_tail ? "  TORN TAIL" : "");
}

int cmd_inspect(int argc, char **argv)
{
    static const struct option options[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "inspect";
    bool as_json = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        if (c == 'j') {
            as_json = true;
        } else if (c == 'h') {
            fputs(help, stdout);
            return 0;
        } else {
            return cli_fail(cmd, CLI_EXIT_USAGE, "unknown option '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return cli_fail(cmd, CLI_EXIT_USAGE, "expected exactly one recording DIR (see --help)");
    const char *dir = argv[optind];
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return cli_fail(cmd, CLI_EXIT_FAILURE, "%s: no such folder", dir);

    char **dirs = NULL;
    size_t count = 0;
    int err = cap_track_dirs_list(dir, &dirs, &count);
    if (err == CAP_ENOENT) {
        /* Perhaps DIR is itself a track folder. */
        dirs = malloc(sizeof(*dirs));
        if (dirs && (dirs[0] = strdup(dir)))
            count = 1;
        err = 0;
    }
    if (err)
        return cli_fail(cmd, CLI_EXIT_FAILURE, "%s: %s", dir, cap_strerror(err));

    json_t *tracks = json_array();
    int code = 0;
    if (!as_json)
        printf("%-28s %-8s %-7s %8s %5s %11s %-24s %-24s %8s %6s %5s %5s\n", "track", "ssrc",
               "codec", "packets", "rtcp", "bytes", "first arrival", "last arrival", "seconds",
               "lost", "dup", "reord");
    for (size_t i = 0; i < count; i++) {
        struct cap_track_report r;
        err = cap_track_inspect(dirs[i], &r);
        if (err) {
            code = cli_fail(cmd, CLI_EXIT_FAILURE, "%s: %s", dirs[i],
                            err == CAP_ENOENT ? "not a recording or track folder (no chunks)"
                                              : cap_strerror(err));
            break;
        }
        if (as_json)
            json_array_append_new(tracks, report_json(dirs[i], &r));
        else
            print_row(&r);
    }
    if (code == 0 && as_json) {
        json_t *out = json_pack("{s:s, s:o}", "recording", dir, "tracks", tracks);
        char *text = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        puts(text);
        free(text);
        json_decref(out);
    } else {
        json_decref(tracks);
    }
    cap_track_dirs_free(dirs, count);
    return code;
}
