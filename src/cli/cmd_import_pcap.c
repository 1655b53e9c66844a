/* capstan import-pcap FILE --out DIR [--sdp FILE | --map PT=CODEC/CLOCK[/CH] ...]: a
 * capture becomes a recording folder (tracks/ plus metadata.json, timeline.json,
 * policy.json). */
#include "cli/cli.h"

#include "engine/recording_files.h"
#include "track/pcap.h"
#include "util/fs.h"

#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const help =
    "usage: capstan import-pcap FILE --out DIR [--sdp FILE | --map PT=CODEC/CLOCK[/CHANNELS] ...]\n"
    "                           [--room ID] [--recording ID] [--chunk-mb N] [--chunk-seconds N] [--json]\n"
    "\n"
    "Reads a pcap or pcapng capture (UDP over IPv4/IPv6; Ethernet, Linux cooked, loopback or\n"
    "raw IP link types), tells RTP from RTCP per RFC 5761, and writes one track per SSRC into\n"
    "the recording folder DIR (which must not hold a recording yet).\n"
    "\n"
    "  --out DIR            the recording folder to create\n"
    "  --sdp FILE           codecs from the SDP's rtpmap/fmtp lines (matched by port and PT)\n"
    "  --map PT=CODEC/CLOCK[/CHANNELS]\n"
    "                       a payload type's codec, e.g. --map 96=VP8/90000 --map 111=opus/48000/2\n"
    "  --room ID            room id written into the recording (default: import)\n"
    "  --recording ID       recording id (default: the capture's file name)\n"
    "  --chunk-mb N         rotate chunks at N MiB (default 64)\n"
    "  --chunk-seconds N    rotate chunks every N seconds of arrival time (default 60)\n"
    "  --json               print the import report as JSON\n"
    "\n"
    "Without --sdp or --map, static payload types (0 PCMU, 8 PCMA, 9 G722, ...) are named and\n"
    "other streams are imported with codec \"unknown\".\n";

static void default_recording_id(const char *pcap_path, char *out, size_t size)
{
    const char *base = strrchr(pcap_path, '/');
    base = base ? base + 1 : pcap_path;
    size_t n = strcspn(base, ".");
    if (n == 0)
        n = strlen(base);
    snprintf(out, size, "%.*s", (int)n, base);
}

static int write_recording_files(const struct cap_import_options *opt,
                                 const struct cap_import_report *rep)
{
    struct cap_file_track *tracks = calloc(rep->track_count ? rep->track_count : 1, sizeof(*tracks));
    if (!tracks)
        return CAP_ENOMEM;
    for (size_t i = 0; i < rep->track_count; i++) {
        const struct cap_import_track *t = &rep->tracks[i];
        tracks[i] = (struct cap_file_track){
            .track_id = t->track_id, .peer_id = t->peer_id, .kind = t->kind, .codec = t->codec,
            .ssrc = t->ssrc, .clock_rate = t->clock_rate, .channels = t->channels,
            .packets = t->rtp_packets, .bytes = t->rtp_bytes,
            .started_ns = t->first_arrival_ns, .ended_ns = t->last_arrival_ns,
        };
    }
    struct cap_file_recording rec = {
        .room_id = opt->room_id, .recording_id = opt->recording_id, .source = "import-pcap",
        .started_ns = rep->first_arrival_ns, .ended_ns = rep->last_arrival_ns,
        .tracks = tracks, .track_count = rep->track_count,
    };
    int err = cap_recording_files_write_default(opt->out_dir, &rec);
    free(tracks);
    return err;
}

static void print_report(const struct cap_import_report *rep, const char *out_dir, bool as_json)
{
    if (as_json) {
        json_t *tracks = json_array();
        for (size_t i = 0; i < rep->track_count; i++) {
            const struct cap_import_track *t = &rep->tracks[i];
            json_array_append_new(tracks, json_pack("{s:s, s:I, s:s, s:s, s:I, s:I, s:I, s:I}",
                                                    "track_id", t->track_id, "ssrc", (json_int_t)t->ssrc,
                                                    "kind", t->kind, "codec", t->codec,
                                                    "payload_type", (json_int_t)t->first_pt,
                                                    "rtp_packets", (json_int_t)t->rtp_packets,
                                                    "rtcp_packets", (json_int_t)t->rtcp_packets,
                                                    "rtp_bytes", (json_int_t)t->rtp_bytes));
        }
        json_t *dropped = json_object();
        for (int r = 0; r < CAP_IMPORT_DROP_COUNT; r++)
            json_object_set_new(dropped, cap_import_drop_name((enum cap_import_drop)r),
                                json_integer((json_int_t)rep->dropped[r]));
        json_t *out = json_pack("{s:s, s:I, s:I, s:I, s:o, s:o}", "out", out_dir, "frames",
                                (json_int_t)rep->frames, "rtp_packets", (json_int_t)rep->rtp,
                                "rtcp_packets", (json_int_t)rep->rtcp, "dropped", dropped,
                                "tracks", tracks);
        char *text = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        puts(text);
        free(text);
        json_decref(out);
        return;
    }
    printf("imported %llu RTP and %llu RTCP packets of %llu frames into %s\n",
           (unsigned long long)rep->rtp, (unsigned long long)rep->rtcp,
           (unsigned long long)rep->frames, out_dir);
    for (size_t i = 0; i < rep->track_count; i++) {
        const struct cap_import_track *t = &rep->tracks[i];
        printf("  %-28s ssrc %08x  %-7s pt %-3u %8llu rtp %6llu rtcp\n", t->track_id, t->ssrc,
               t->codec, t->first_pt, (unsigned long long)t->rtp_packets,
               (unsigned long long)t->rtcp_packets);
    }
    for (int r = 0; r < CAP_IMPORT_DROP_COUNT; r++)
        if (rep->dropped[r])
            printf("  dropped %llu: %s\n", (unsigned long long)rep->dropped[r],
                   cap_import_drop_name((enum cap_import_drop)r));
}

int cmd_import_pcap(int argc, char **argv)
{
    static const struct option options[] = {
        {"out", required_argument, NULL, 'o'},      {"sdp", required_argument, NULL, 's'},
        {"map", required_argument, NULL, 'm'},      {"room", required_argument, NULL, 'r'},
        {"recording", required_argument, NULL, 'R'}, {"chunk-mb", required_argument, NULL, 'c'},
        {"chunk-seconds", required_argument, NULL, 't'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    const char *cmd = "import-pcap";
    struct cap_pt_map map;
    cap_pt_map_init(&map);
    struct cap_import_options opt = {.room_id = "import", .map = &map};
    const char *sdp_path = NULL;
    bool as_json = false, had_map = false;
    char why[512];
    int code = 0;
    int c;
    optind = 1;
    opterr = 0;
    while (code == 0 && (c = getopt_long(argc, argv, "o:h", options, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'o':
            opt.out_dir = optarg;
            break;
        case 's':
            sdp_path = optarg;
            break;
        case 'm':
            had_map = true;
            if (cap_pt_map_add_spec(&map, optarg, why, sizeof(why)) != 0)
                code = cli_fail(cmd, CLI_EXIT_USAGE, "%s", why);
            break;
        case 'r':
            opt.room_id = optarg;
            break;
        case 'R':
            opt.recording_id = optarg;
            break;
        case 'c': {
            unsigned long mb = strtoul(optarg, &end, 10);
            if (*end || mb == 0 || mb > 4096)
                code = cli_fail(cmd, CLI_EXIT_USAGE, "--chunk-mb takes 1..4096, not '%s'", optarg);
            opt.max_chunk_bytes = (uint64_t)mb << 20;
            break;
        }
        case 't': {
            unsigned long s = strtoul(optarg, &end, 10);
            if (*end || s == 0 || s > 86400)
                code = cli_fail(cmd, CLI_EXIT_USAGE, "--chunk-seconds takes 1..86400, not '%s'", optarg);
            opt.max_chunk_ns = (int64_t)s * 1000000000;
            break;
        }
        case 'j':
            as_json = true;
            break;
        case 'h':
            fputs(help, stdout);
            cap_pt_map_deinit(&map);
            return 0;
        default:
            code = cli_fail(cmd, CLI_EXIT_USAGE, "unknown or incomplete option '%s' (see --help)",
                            argv[optind - 1]);
        }
    }
    if (code == 0 && optind != argc - 1)
        code = cli_fail(cmd, CLI_EXIT_USAGE, "expected exactly one capture FILE (see --help)");
    if (code == 0 && !opt.out_dir)
        code = cli_fail(cmd, CLI_EXIT_USAGE, "--out DIR is required (see --help)");
    if (code == 0 && sdp_path && had_map)
        code = cli_fail(cmd, CLI_EXIT_USAGE, "give --sdp or --map, not both");
    if (code == 0 && sdp_path) {
        char *text;
        size_t len;
        int err = cap_read_file(sdp_path, 1 << 20, &text, &len);
        if (err)
            code = cli_fail(cmd, CLI_EXIT_FAILURE, "%s: %s", sdp_path, cap_strerror(err));
        else if (cap_pt_map_load_sdp(&map, text, len, why, sizeof(why)) != 0)
            code = cli_fail(cmd, CLI_EXIT_FAILURE, "%s: %s", sdp_path, why);
        if (!err)
            free(text);
    }
    if (code) {
        cap_pt_map_deinit(&map);
        return code;
    }
    opt.pcap_path = argv[optind];
    char recording_id[128];
    if (!opt.recording_id) {
        default_recording_id(opt.pcap_path, recording_id, sizeof(recording_id));
        opt.recording_id = recording_id;
    }
    struct cap_import_report rep;
    int err = cap_pcap_import(&opt, &rep, why, sizeof(why));
    if (err)
        code = cli_fail(cmd, CLI_EXIT_FAILURE, "%s", why);
    if (!err && rep.track_count == 0) {
        err = CAP_ENOENT;
        code = cli_fail(cmd, CLI_EXIT_FAILURE, "%s: no RTP stream found in %llu frames",
                        opt.pcap_path, (unsigned long long)rep.frames);
    }
    if (!err && (err = write_recording_files(&opt, &rep)))
        code = cli_fail(cmd, CLI_EXIT_FAILURE, "writing metadata in %s: %s", opt.out_dir,
                        cap_strerror(err));
    if (!err)
        print_report(&rep, opt.out_dir, as_json);
    cap_import_report_deinit(&rep);
    cap_pt_map_deinit(&map);
    return code;
}
