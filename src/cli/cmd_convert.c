/* capstan convert --in DIR (--transmux | --compose-video | --compose-audio) ...: each track
 * of a recording into a file of its own (and the TransmuxSummary), and/or the whole room
 * composed into one file (layouts, mixed audio, Composition State, thumbnails). */
#include "cli/cli.h"
#include "cli/convert_remote.h"

#include "media/media.h"
#include "util/fs.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const help =
    "usage: capstan convert --in DIR [--transmux] [--compose-video] [--compose-audio] [OPTIONS]\n"
    "\n"
    "Turns a recording folder into media.\n"
    "\n"
    "  --in DIR             the recording folder (rooms/ROOM/RECORDING under capstan's data)\n"
    "                       or its s3://BUCKET/PREFIX/rooms/ROOM/RECORDING?endpoint=... URL\n"
    "  --json               print a report as JSON on stdout\n"
    "\n"
    "Transmux, no re-encoding: one file per track (VP8/VP9/AV1 -> WebM, H.264/H.265 -> MP4,\n"
    "Opus -> Ogg, G.711/G.722 -> WAV), all on the recording's timeline, and summary.json\n"
    "(the TransmuxSummary: peers -> sessions -> tracks -> timeline).\n"
    "  --transmux           one file per track, into --out DIR\n"
    "  --mkv                Matroska for every track\n"
    "  --keep-damaged       keep frames damaged by loss instead of waiting for the next keyframe\n"
    "\n"
    "Compose: the room in one file, decoded, laid out, mixed and encoded (H.264 + AAC in MP4 by\n"
    "default; VP8/VP9 + Opus in WebM; audio alone in M4A or Ogg).\n"
    "  --compose-video      the composed picture (tiles of every peer, by --layout)\n"
    "  --compose-audio      every audio track mixed (alone: an .m4a or .ogg)\n"
    "  --layout L           grid (default), speaker, pinned or screenshare\n"
    "  --composition FILE   a Composition State (JSON): layout changes and pins over time,\n"
    "                       muted peers, export resolution and fps\n"
    "  --compose-out FILE   the composed file (default: --out FILE when not transmuxing, else\n"
    "                       OUT/composite.mp4; without --out: DIR/processed/composite.mp4)\n"
    "  --out PATH           the transmux folder, or the composed file when only composing,\n"
    "                       or an s3:// URL: the outputs go under that prefix\n"
    "  --format F           mp4, webm, m4a or ogg (default: from the file name)\n"
    "  --video-codec C      h264 (MP4), vp8 or vp9 (WebM)\n"
    "  --resolution WxH     output size (default: the composition's, else 1280x720)\n"
    "  --fps N              output frame rate (default: the composition's, else 30)\n"
    "  --preset P           x264 preset (default veryfast); for VP8/VP9 it picks the speed\n"
    "  --crf N              constant quality (default 23 for H.264, 32 for VP8/VP9)\n"
    "  --video-bitrate B    target bitrate instead of constant quality (e.g. 2500k, 4M)\n"
    "  --audio-bitrate B    audio bitrate (default 128k)\n"
    "  --sample-rate HZ     mix rate (default 48000)\n"
    "  --threads N          decoder and encoder threads (default: one per core)\n"
    "  --audio-level-ext ID the RFC 6464 audio-level extension id (default: found in the packets)\n"
    "  --speaker-from S     what picks the speaker: auto (the senders' RFC 6464 levels when\n"
    "                       present, else energy), audio-level or energy\n"
    "  --thumbnails DIR     JPEG thumbnails of the composed picture (thumb_0001.jpg, ...) and a\n"
    "                       contact sheet (DIR/contact_sheet.jpg unless --contact-sheet FILE)\n"
    "  --thumbnail-every S  seconds between thumbnails (default 10)\n"
    "  --thumbnail-width W  thumbnail width in pixels (default 320)\n"
    "  --contact-sheet FILE where the contact sheet goes\n";

static bool show_progress;

static void progress(void *user, double done)
{
    const char *label = user;
    if (!show_progress || done < 0)
        return;
    int width = 40, filled = (int)(done * width);
    fprintf(stderr, "\r%s[%.*s%*s] %3d%%", label, filled, "########################################",
            width - filled, "", (int)(done * 100));
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

/* ---- option values ---- */

static bool parse_uint(const char *text, unsigned long max, unsigned long *out)
{
    if (!text || !*text || *text == '-' || *text == '+')
        return false;
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno || *end || v > max)
        return false;
    *out = v;
    return true;
}

/* "128000", "128k", "2.5M" -> bit/s. */
static bool parse_bitrate(const char *text, int64_t *out)
{
    if (!text || !*text || *text == '-')
        return false;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text)
        return false;
    if (*end == 'k' || *end == 'K')
        v *= 1e3, end++;
    else if (*end == 'm' || *end == 'M')
        v *= 1e6, end++;
    if (*end || v < 1000 || v > 1e9)
        return false;
    *out = (int64_t)v;
    return true;
}

static bool parse_seconds(const char *text, int64_t *ms)
{
    char *end;
    errno = 0;
    double v = text && *text ? strtod(text, &end) : -1;
    if (!text || !*text || errno || *end || !(v >= 0.1 && v <= 86400))
        return false;
    *ms = (int64_t)(v * 1000 + 0.5);
    return true;
}

static bool parse_resolution(const char *text, unsigned *w, unsigned *h)
{
    const char *x = text ? strpbrk(text, "xX") : NULL;
    if (!x || x == text)
        return false;
    char width[16];
    size_t n = (size_t)(x - text);
    if (n >= sizeof(width))
        return false;
    memcpy(width, text, n);
    width[n] = '\0';
    unsigned long a, b;
    if (!parse_uint(width, 7680, &a) || !parse_uint(x + 1, 4320, &b))
        return false;
    *w = (unsigned)a;
    *h = (unsigned)b;
    return true;
}

/* ---- the two jobs ---- */

static int run_transmux(const char *cmd, const char *in, const char *out, struct cap_transmux_options *opt,
                        bool as_json, json_t *report)
{
    opt->out_dir = out;
    opt->progress = progress;
    opt->user = (void *)"transmux ";
    struct cap_transmux_result r;
    char why[1024] = "";
    const struct cap_media_api *media = cap_media(why, sizeof(why));
    if (!media)
        return cli_fail(cmd, CLI_EXIT_FAILURE, "%s", why);
    int err = media->transmux_recording(in, opt, &r, why, sizeof(why));
    if (err)
        return cli_fail(cmd, CLI_EXIT_FAILURE, "%s", why[0] ? why : cap_strerror(err));
    json_t *summary = media->transmux_summary(in, &r);
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
        json_object_set(report, "summary", summary);
        json_object_set_new(report, "tracks", report_json(&r));
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
    size_t count = r.track_count;
    media->transmux_result_deinit(&r);
    if (!code && written == 0 && count > 0)
        code = cli_fail(cmd, CLI_EXIT_FAILURE, "no track could be converted");
    return code;
}

static int run_compose(const char *cmd, const char *in, struct cap_compose_options *opt, bool as_json,
                       json_t *report)
{
    opt->progress = progress;
    opt->user = (void *)"compose  ";
    struct cap_compose_result r;
    char why[1024] = "";
    const struct cap_media_api *media = cap_media(why, sizeof(why));
    if (!media)
        return cli_fail(cmd, CLI_EXIT_FAILURE, "%s", why);
    int err = media->compose_recording(in, opt, &r, why, sizeof(why));
    if (err) {
        if (show_progress)
            fputc('\n', stderr);
        media->compose_result_deinit(&r);
        return cli_fail(cmd, CLI_EXIT_FAILURE, "%s", why[0] ? why : cap_strerror(err));
    }
    for (size_t i = 0; i < r.track_count; i++)
        if (!r.tracks[i].used && r.tracks[i].error[0] && strncmp(r.tracks[i].error, "not needed", 10) != 0)
            fprintf(stderr, "capstan convert: compose: %s left out: %s\n", r.tracks[i].track_id, r.tracks[i].error);
    if (as_json) {
        json_object_set_new(report, "compose", media->compose_summary(&r, NULL));
    } else {
        printf("composed %s: %.3f s", r.out_path, (double)r.duration_ns / 1e9);
        if (r.width)
            printf(", %ux%u at %u fps, %llu frames", r.width, r.height, r.fps, (unsigned long long)r.video_frames);
        if (r.sample_rate)
            printf(", audio %u Hz", r.sample_rate);
        printf(", %.2f s (%.1fx realtime)\n", r.seconds, r.seconds > 0 ? (double)r.duration_ns / 1e9 / r.seconds : 0.0);
        if (r.thumbnails)
            printf("thumbnails: %u, contact sheet %s\n", r.thumbnails, r.contact_sheet);
    }
    media->compose_result_deinit(&r);
    return 0;
}

enum {
    OPT_COMPOSE_VIDEO = 256,
    OPT_COMPOSE_AUDIO,
    OPT_LAYOUT,
    OPT_COMPOSITION,
    OPT_COMPOSE_OUT,
    OPT_FORMAT,
    OPT_VIDEO_CODEC,
    OPT_RESOLUTION,
    OPT_FPS,
    OPT_PRESET,
    OPT_CRF,
    OPT_VIDEO_BITRATE,
    OPT_AUDIO_BITRATE,
    OPT_SAMPLE_RATE,
    OPT_THREADS,
    OPT_LEVEL_EXT,
    OPT_SPEAKER_FROM,
    OPT_THUMBNAILS,
    OPT_THUMB_EVERY,
    OPT_THUMB_WIDTH,
    OPT_CONTACT_SHEET,
};

/* One compose option into opt; 0, or the exit code after a message. */
static int compose_option(const char *cmd, int c, const char *arg, struct cap_compose_options *opt,
                          const char **compose_out, int64_t *thumb_every)
{
    unsigned long v;
    switch (c) {
    case OPT_LAYOUT:
        if (cap_layout_parse(arg, &opt->layout) != 0)
            return cli_fail(cmd, CLI_EXIT_USAGE, "--layout must be grid, speaker, pinned or screenshare");
        return 0;
    case OPT_COMPOSITION:
        opt->composition_path = arg;
        return 0;
    case OPT_COMPOSE_OUT:
        *compose_out = arg;
        return 0;
    case OPT_FORMAT:
        opt->container = strcmp(arg, "mp4") == 0    ? CAP_COMPOSE_MP4
                         : strcmp(arg, "webm") == 0 ? CAP_COMPOSE_WEBM
                         : strcmp(arg, "m4a") == 0  ? CAP_COMPOSE_M4A
                         : strcmp(arg, "ogg") == 0  ? CAP_COMPOSE_OGG
                                                    : CAP_COMPOSE_AUTO;
        if (opt->container == CAP_COMPOSE_AUTO)
            return cli_fail(cmd, CLI_EXIT_USAGE, "--format must be mp4, webm, m4a or ogg");
        return 0;
    case OPT_VIDEO_CODEC:
        opt->video_codec = strcmp(arg, "h264") == 0  ? CAP_COMPOSE_H264
                           : strcmp(arg, "vp8") == 0 ? CAP_COMPOSE_VP8
                           : strcmp(arg, "vp9") == 0 ? CAP_COMPOSE_VP9
                                                     : CAP_COMPOSE_CODEC_DEFAULT;
        if (opt->video_codec == CAP_COMPOSE_CODEC_DEFAULT)
            return cli_fail(cmd, CLI_EXIT_USAGE, "--video-codec must be h264, vp8 or vp9");
        return 0;
    case OPT_RESOLUTION:
        if (!parse_resolution(arg, &opt->width, &opt->height) || opt->width < 16 || opt->height < 16 ||
            (opt->width & 1) || (opt->height & 1))
            return cli_fail(cmd, CLI_EXIT_USAGE, "--resolution must be WIDTHxHEIGHT, even, 16x16 to 7680x4320");
        return 0;
    case OPT_FPS:
        if (!parse_uint(arg, 120, &v) || v < 1)
            return cli_fail(cmd, CLI_EXIT_USAGE, "--fps must be 1 to 120");
        opt->fps = (unsigned)v;
        return 0;
    case OPT_PRESET:
        opt->preset = arg;
        return 0;
    case OPT_CRF:
        if (!parse_uint(arg, 63, &v))
            return cli_fail(cmd, CLI_EXIT_USAGE, "--crf must be 0 to 63");
        opt->crf = (int)v;
        return 0;
    case OPT_VIDEO_BITRATE:
        if (!parse_bitrate(arg, &opt->video_bitrate))
            return cli_fail(cmd, CLI_EXIT_USAGE, "--video-bitrate must be like 2500k or 4M (1k to 1000M)");
        return 0;
    case OPT_AUDIO_BITRATE:
        if (!parse_bitrate(arg, &opt->audio_bitrate) || opt->audio_bitrate > 1000000)
            return cli_fail(cmd, CLI_EXIT_USAGE, "--audio-bitrate must be like 128k (1k to 1M)");
        return 0;
    case OPT_SAMPLE_RATE:
        if (!parse_uint(arg, 192000, &v) || v < 8000)
            return cli_fail(cmd, CLI_EXIT_USAGE, "--sample-rate must be 16000, 24000, 32000, 44100 or 48000");
        opt->sample_rate = (unsigned)v;
        return 0;
    case OPT_THREADS:
        if (!parse_uint(arg, 64, &v))
            return cli_fail(cmd, CLI_EXIT_USAGE, "--threads must be 0 (auto) to 64");
        opt->threads = (unsigned)v;
        return 0;
    case OPT_LEVEL_EXT:
        if (!parse_uint(arg, 14, &v) || v < 1)
            return cli_fail(cmd, CLI_EXIT_USAGE, "--audio-level-ext must be an extension id from 1 to 14");
        opt->audio_level_ext_id = (unsigned)v;
        return 0;
    case OPT_SPEAKER_FROM:
        opt->speaker_from = strcmp(arg, "auto") == 0          ? CAP_SPEAKER_AUTO
                            : strcmp(arg, "audio-level") == 0 ? CAP_SPEAKER_AUDIO_LEVEL
                            : strcmp(arg, "energy") == 0      ? CAP_SPEAKER_ENERGY
                                                              : (enum cap_compose_speaker_source)-1;
        if ((int)opt->speaker_from < 0)
            return cli_fail(cmd, CLI_EXIT_USAGE, "--speaker-from must be auto, audio-level or energy");
        return 0;
    case OPT_THUMBNAILS:
        opt->thumbnail_dir = arg;
        return 0;
    case OPT_THUMB_EVERY:
        if (!parse_seconds(arg, thumb_every))
            return cli_fail(cmd, CLI_EXIT_USAGE, "--thumbnail-every must be seconds from 0.1 to 86400");
        return 0;
    case OPT_THUMB_WIDTH:
        if (!parse_uint(arg, 7680, &v) || v < 16)
            return cli_fail(cmd, CLI_EXIT_USAGE, "--thumbnail-width must be 16 to 7680");
        opt->thumbnail_width = (unsigned)v;
        return 0;
    case OPT_CONTACT_SHEET:
        opt->contact_sheet = arg;
        return 0;
    default:
        return cli_fail(cmd, CLI_EXIT_USAGE, "unknown option (see --help)");
    }
}

static const char *default_extension(const struct cap_compose_options *opt)
{
    switch (opt->container) {
    case CAP_COMPOSE_WEBM:
        return "webm";
    case CAP_COMPOSE_M4A:
        return "m4a";
    case CAP_COMPOSE_OGG:
        return "ogg";
    case CAP_COMPOSE_MP4:
        return "mp4";
    default:
        return opt->video ? (opt->video_codec == CAP_COMPOSE_VP8 || opt->video_codec == CAP_COMPOSE_VP9 ? "webm" : "mp4")
                          : "m4a";
    }
}

int cmd_convert(int argc, char **argv)
{
    static const struct option options[] = {
        {"in", required_argument, NULL, 'i'},
        {"out", required_argument, NULL, 'o'},
        {"transmux", no_argument, NULL, 't'},
        {"mkv", no_argument, NULL, 'm'},
        {"keep-damaged", no_argument, NULL, 'k'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {"compose-video", no_argument, NULL, OPT_COMPOSE_VIDEO},
        {"compose-audio", no_argument, NULL, OPT_COMPOSE_AUDIO},
        {"layout", required_argument, NULL, OPT_LAYOUT},
        {"composition", required_argument, NULL, OPT_COMPOSITION},
        {"compose-out", required_argument, NULL, OPT_COMPOSE_OUT},
        {"compose-out-path", required_argument, NULL, OPT_COMPOSE_OUT},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"video-codec", required_argument, NULL, OPT_VIDEO_CODEC},
        {"resolution", required_argument, NULL, OPT_RESOLUTION},
        {"fps", required_argument, NULL, OPT_FPS},
        {"preset", required_argument, NULL, OPT_PRESET},
        {"crf", required_argument, NULL, OPT_CRF},
        {"video-bitrate", required_argument, NULL, OPT_VIDEO_BITRATE},
        {"audio-bitrate", required_argument, NULL, OPT_AUDIO_BITRATE},
        {"sample-rate", required_argument, NULL, OPT_SAMPLE_RATE},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"audio-level-ext", required_argument, NULL, OPT_LEVEL_EXT},
        {"speaker-from", required_argument, NULL, OPT_SPEAKER_FROM},
        {"thumbnails", required_argument, NULL, OPT_THUMBNAILS},
        {"thumbnail-every", required_argument, NULL, OPT_THUMB_EVERY},
        {"thumbnail-width", required_argument, NULL, OPT_THUMB_WIDTH},
        {"contact-sheet", required_argument, NULL, OPT_CONTACT_SHEET},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "convert";
    const char *in = NULL, *out = NULL, *compose_out = NULL;
    bool transmux = false, as_json = false;
    struct cap_transmux_options topt = {0};
    struct cap_compose_options copt = {0};
    int64_t thumb_every = 0;
    int c, code;
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
            topt.matroska = true;
            break;
        case 'k':
            topt.keep_damaged = true;
            break;
        case 'j':
            as_json = true;
            break;
        case 'h':
            fputs(help, stdout);
            return 0;
        case OPT_COMPOSE_VIDEO:
            copt.video = true;
            break;
        case OPT_COMPOSE_AUDIO:
            copt.audio = true;
            break;
        case '?':
        case ':':
            return cli_fail(cmd, CLI_EXIT_USAGE, "unknown or incomplete option '%s' (see --help)", argv[optind - 1]);
        default:
            if ((code = compose_option(cmd, c, optarg, &copt, &compose_out, &thumb_every)) != 0)
                return code;
        }
    }
    bool compose = copt.video || copt.audio;
    if (optind != argc)
        return cli_fail(cmd, CLI_EXIT_USAGE, "unexpected argument '%s' (see --help)", argv[optind]);
    if (!in)
        return cli_fail(cmd, CLI_EXIT_USAGE, "--in DIR is required (see --help)");
    if (!transmux && !compose)
        return cli_fail(cmd, CLI_EXIT_USAGE,
                        "say what to make: --transmux, --compose-video, --compose-audio (see --help)");
    if (transmux && !out)
        return cli_fail(cmd, CLI_EXIT_USAGE, "--transmux needs --out DIR (see --help)");
    if (!compose && (copt.layout || copt.composition_path || compose_out || copt.thumbnail_dir))
        return cli_fail(cmd, CLI_EXIT_USAGE, "compose options need --compose-video or --compose-audio");
    if (copt.thumbnail_dir && !copt.video)
        return cli_fail(cmd, CLI_EXIT_USAGE, "--thumbnails needs --compose-video");
    /* ---- store URLs (cli/convert_remote.c): an s3:// --in is fetched into a temporary
     * folder, an s3:// --out collects into one and is published at the end. ---- */
    struct convert_remote remote;
    if ((code = convert_remote_begin(cmd, &in, &out, &remote)) != 0)
        return code;
    char remote_compose[PATH_MAX];
    if (remote.out_url && compose && !transmux && !compose_out) {
        snprintf(remote_compose, sizeof(remote_compose), "%s/composite.%s", out, default_extension(&copt));
        compose_out = remote_compose;
    }
    /* ---- */
    struct stat st;
    if (stat(in, &st) != 0 || !S_ISDIR(st.st_mode))
        return convert_remote_end(cmd, &remote, cli_fail(cmd, CLI_EXIT_FAILURE, "%s: no such folder", in));
    show_progress = isatty(STDERR_FILENO) && !as_json;
    json_t *report = json_object();
    code = 0;
    if (transmux)
        code = run_transmux(cmd, in, out, &topt, as_json, report);
    char path[PATH_MAX];
    if (!code && compose) {
        if (compose_out)
            snprintf(path, sizeof(path), "%s", compose_out);
        else if (out && !transmux)
            snprintf(path, sizeof(path), "%s", out);
        else
            snprintf(path, sizeof(path), "%s/%s.%s", out ? out : in, out ? "composite" : "processed/composite",
                     default_extension(&copt));
        copt.out_path = path;
        if (copt.thumbnail_dir)
            copt.thumbnail_every_ms = thumb_every ? thumb_every : 10000;
        code = run_compose(cmd, in, &copt, as_json, report);
    }
    if (as_json && !code) {
        char *t = json_dumps(report, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (t)
            puts(t);
        free(t);
    }
    json_decref(report);
    return convert_remote_end(cmd, &remote, code);
}
