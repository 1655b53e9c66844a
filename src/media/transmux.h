/* Transmux: each track of a recording into a file of its own, with libavformat and no
 * re-encoding (VP8/VP9/AV1 -> WebM, H.264/H.265 -> MP4, Opus -> Ogg, G.711/G.722 -> WAV,
 * or Matroska for any). Every file is on the recording's timeline: timestamps are recording
 * time, so a late track starts late. Video starts at a keyframe and, after loss, drops
 * frames until the next keyframe (or keeps damaged ones on request); audio gaps are filled
 * with silence so audio stays aligned. */
#ifndef CAP_MEDIA_TRANSMUX_H
#define CAP_MEDIA_TRANSMUX_H

#include "media/source.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct cap_transmux_options {
    const char *out_dir;
    bool matroska;             /* Matroska for every track instead of the codec's usual container */
    bool keep_damaged;         /* keep incomplete frames instead of waiting for a keyframe */
    /* Called now and then with the share done (0..1). */
    void (*progress)(void *user, double done);
    void *user;
};

struct cap_transmux_track {
    char track_id[CAP_TRACK_ID_MAX];
    char peer_id[CAP_TRACK_ID_MAX];
    char kind[16];
    char codec[32];
    char path[4096];           /* the output file, "" if nothing could be written */
    char file[256];            /* its name within out_dir */
    int64_t start_ns, end_ns;  /* recording time of its first and last frame */
    uint64_t frames_written;
    uint64_t frames_dropped;   /* incomplete, or waiting for a keyframe */
    uint64_t silence_frames;   /* audio frames inserted into gaps */
    struct cap_source_stats source;
    struct cap_track_clock_report clock;
    char error[256];           /* why this track has no file, if it has none */
};

struct cap_transmux_result {
    struct cap_transmux_track *tracks;
    size_t track_count;
};

/* Transmuxes every track of the recording folder rec_dir. Fails only when the recording
 * cannot be read at all; a track that cannot be written is reported in its error. */
int cap_transmux_recording(const char *rec_dir, const struct cap_transmux_options *opt,
                           struct cap_transmux_result *out, char *why, size_t why_size);
void cap_transmux_result_deinit(struct cap_transmux_result *r);

/* The TransmuxSummary of raw-record-upload-and-convert.md:
 * {metadata_json, peers: {peer: {sessions: {id: {track: {name: {kind, timeline: [{path, start, end}]}}}}}}} */
json_t *cap_transmux_summary(const char *rec_dir, const struct cap_transmux_result *r);

#endif
