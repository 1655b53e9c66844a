/* Compose: a whole recording into one file. Every video track is decoded (libavcodec,
 * threaded) and placed on a canvas by a layout (grid, speaker, pinned, screenshare; see
 * layout.h) that follows the room's timeline (joins, leaves, pauses) and the Composition
 * State (layout changes, pins, mutes); every audio track is decoded, resampled to one
 * rate and mixed with clip protection; the result is encoded (H.264 + AAC in MP4 by
 * default, VP8/VP9 + Opus in WebM, or audio alone in M4A/Ogg), faster than real time.
 * Optional JPEG thumbnails every N seconds and one contact sheet. Tracks are read only
 * through media/source.h, so compose shares the transmux's timing exactly. */
#ifndef CAP_MEDIA_COMPOSE_H
#define CAP_MEDIA_COMPOSE_H

#include "media/composition.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cap_compose_container {
    CAP_COMPOSE_AUTO = 0,          /* from out_path's extension, else MP4 (M4A for audio alone) */
    CAP_COMPOSE_MP4,               /* H.264 + AAC */
    CAP_COMPOSE_WEBM,              /* VP8 or VP9 + Opus */
    CAP_COMPOSE_M4A,               /* AAC alone */
    CAP_COMPOSE_OGG,               /* Opus alone */
};

enum cap_compose_video_codec {
    CAP_COMPOSE_CODEC_DEFAULT = 0, /* H.264 in MP4, VP8 in WebM */
    CAP_COMPOSE_H264,
    CAP_COMPOSE_VP8,
    CAP_COMPOSE_VP9,
};

/* What picks the active speaker for the speaker layout. */
enum cap_compose_speaker_source {
    CAP_SPEAKER_AUTO = 0,          /* the senders' RFC 6464 levels when present, else energy */
    CAP_SPEAKER_AUDIO_LEVEL,       /* only the RFC 6464 levels (tracks without them are silent) */
    CAP_SPEAKER_ENERGY,            /* the decoded audio's energy, ignoring any levels */
};

struct cap_compose_options {
    const char *out_path;          /* the composed file */
    bool video;                    /* --compose-video */
    bool audio;                    /* --compose-audio */
    enum cap_layout layout;        /* DEFAULT: the composition's starting layout, else grid */
    /* The Composition State: a parsed one, else a JSON file, else none. */
    const struct cap_composition *composition;
    const char *composition_path;
    /* Output video; 0 means the composition's export settings, else 1280x720 at 30 fps. */
    unsigned width, height, fps;
    const char *preset;            /* x264 preset (NULL: "veryfast"); for VP8/VP9 it picks cpu-used */
    int64_t video_bitrate;         /* bit/s; 0: constant quality (crf) */
    int crf;                       /* 0: 23 (H.264), 32 (VP8/VP9) */
    int64_t audio_bitrate;         /* bit/s; 0: 128000 */
    unsigned sample_rate;          /* mix rate; 0: 48000 */
    enum cap_compose_container container;
    enum cap_compose_video_codec video_codec;
    unsigned threads;              /* decoder/encoder threads; 0: one per core */
    /* Thumbnails: a JPEG of the composed picture every thumbnail_every_ms (0: none) into
     * thumbnail_dir as thumb_0001.jpg, ..., and a contact sheet of them (contact_sheet
     * path; NULL: thumbnail_dir/contact_sheet.jpg). */
    const char *thumbnail_dir;
    int64_t thumbnail_every_ms;
    unsigned thumbnail_width;      /* 0: 320 (height keeps the canvas's aspect) */
    const char *contact_sheet;
    /* The RFC 6464 audio-level header extension id (1..14); 0: found in the packets when
     * present (a one-byte element of length 1 on every audio packet), else energy. */
    unsigned audio_level_ext_id;
    enum cap_compose_speaker_source speaker_from;
    /* Called now and then with the share done (0..1). */
    void (*progress)(void *user, double done);
    void *user;
};

/* What each input track did. */
struct cap_compose_track {
    char track_id[CAP_TRACK_ID_MAX];
    char peer_id[CAP_TRACK_ID_MAX];
    char kind[16];
    char codec[32];
    int64_t start_ns, end_ns;      /* recording time of its first and last frame, -1 if none */
    uint64_t frames_decoded;
    uint64_t decode_errors;        /* frames the decoder refused (skipped until a keyframe) */
    bool muted;
    bool used;                     /* reached the output */
    char error[256];               /* why it was left out, if it was */
};

struct cap_compose_result {
    char out_path[4096];
    char container[8];             /* "mp4", "webm", "m4a", "ogg" */
    int64_t duration_ns;           /* of the composed file */
    unsigned width, height, fps;
    uint64_t video_frames;         /* written */
    uint64_t audio_samples;        /* written, per channel, at sample_rate */
    unsigned sample_rate;
    uint64_t layout_changes;       /* canvas re-layouts (joins, leaves, pins, speakers) */
    uint64_t speaker_changes;
    bool speaker_from_audio_level; /* RFC 6464 levels were used rather than decoded energy */
    unsigned thumbnails;
    char contact_sheet[4096];      /* "" if none */
    struct cap_compose_track *tracks;
    size_t track_count;
    double seconds;                /* wall time spent */
};

/* Composes the recording folder rec_dir. Returns 0, or a negative CAP_E* with a message in
 * why (bad options, unreadable recording, nothing to compose, encoder missing, I/O); after
 * a failure out holds nothing to free and no partial output file is left. A track that
 * cannot be decoded is left out and reported in its error. Safe to call from several
 * threads at once (one call per recording). */
int cap_compose_recording(const char *rec_dir, const struct cap_compose_options *opt,
                          struct cap_compose_result *out, char *why, size_t why_size);
void cap_compose_result_deinit(struct cap_compose_result *r);

/* The ComposeSummary of raw-record-upload-and-convert.md ({media_uri}) with the details of
 * the result (duration, size, tracks). media_uri is out_path unless given. */
json_t *cap_compose_summary(const struct cap_compose_result *r, const char *media_uri);

#endif
