/* capstan inspect DIR [--json]: per track SSRC, codec, packets, bytes, first/last arrival,
 * duration, lost, duplicated, reordered. DIR is a recording folder or one track folder. */
#include "cli/cli.h"

#include "engine/recording_files.h"
#include "media/source.h"
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

/* Quality and sync: the media pipeline's view of a track (frames, keyframes, freezes, the
 * clock it was mapped with). NULL when the codec has no depacketizer. */
static json_t *quality_json(const char *dir, int64_t time_zero_ns)
{
    struct cap_source_options opt = {.time_zero_ns = time_zero_ns};
    struct cap_track_source *src;
    if (cap_track_source_open(&src, dir, &opt) != 0)
        return NULL;
    bool video = strcmp(cap_track_source_info(src)->kind, "audio") != 0;
    struct cap_media_frame mf;
    int64_t last = -1, longest_gap = 0;
    uint64_t freezes = 0;
    /* A video freeze: no frame for longer than 500 ms (not counting the first frame). */
    while (cap_track_source_next(src, &mf) == 1) {
        if (last >= 0) {
            int64_t gap = mf.pts_ns - last;
            if (gap > longest_gap)
                longest_gap = gap;
            if (video && gap > 500 * CAP_NS_PER_MS)
                freezes++;
        }
        last = mf.pts_ns;
    }
    const struct cap_source_stats *st = cap_track_source_stats(src);
    struct cap_track_clock_report clock;
    cap_track_clock_report(cap_track_source_clock(src), &clock);
    json_t *q = json_pack("{s:I, s:I, s:I, s:I, s:f, s:I, s:b, s:I, s:I, s:f, s:f}", "frames",
                          (json_int_t)st->frames, "incomplete_frames", (json_int_t)st->incomplete_frames,
                          "keyframes", (json_int_t)st->keyframes, "freezes", (json_int_t)freezes,
                          "longest_gap_seconds", (double)longest_gap / 1e9, "malformed_packets",
                          (json_int_t)st->malformed, "rtcp_sync", clock.used_sr, "sender_reports",
                          (json_int_t)clock.sender_reports, "segments", (json_int_t)clock.segments,
                          "drift_ppm", clock.drift_ppm, "start_offset_seconds",
                          (double)clock.offset_ns / 1e9);
    json_object_set_new(q, "first_keyframe_seconds",
                        st->first_keyframe_pts_ns >= 0 ? json_real((double)st->first_keyframe_pts_ns / 1e9)
                                                       : json_null());
    cap_track_source_close(src);
    return q;
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
    bool quality = true;
    int64_t time_zero = cap_recording_time_zero(dir);
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
        if (as_json) {
            json_t *row = report_json(dirs[i], &r);
            json_t *q = quality ? quality_json(dirs[i], time_zero) : NULL;
            if (q)
                json_object_set_new(row, "quality", q);
            json_array_append_new(tracks, row);
        } else {
            print_row(&r);
            json_t *q = quality ? quality_json(dirs[i], time_zero) : NULL;
            if (q) {
                char first[32] = "-";
                if (json_is_real(json_object_get(q, "first_keyframe_seconds")))
                    snprintf(first, sizeof(first), "%.3f",
                             json_real_value(json_object_get(q, "first_keyframe_seconds")));
                printf("    frames %lld (incomplete %lld, keyframes %lld), freezes %lld, first keyframe at %s s, "
                       "%s, drift %.1f ppm\n",
                       (long long)json_integer_value(json_object_get(q, "frames")),
                       (long long)json_integer_value(json_object_get(q, "incomplete_frames")),
                       (long long)json_integer_value(json_object_get(q, "keyframes")),
                       (long long)json_integer_value(json_object_get(q, "freezes")), first,
                       json_is_true(json_object_get(q, "rtcp_sync")) ? "synced by RTCP SR" : "synced by arrival",
                       json_real_value(json_object_get(q, "drift_ppm")));
                json_decref(q);
            }
        }
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
