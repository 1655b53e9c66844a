/* A track as the media pipeline reads it: chunk reader -> reorder buffer -> depacketizer
 * -> timeline. Opening a source makes pass 1 (the track's clock: Sender Reports, arrival
 * envelope, segments); next() is pass 2 and hands out frames with their recording time.
 * Every post-processing sink (transmux, compose, preview, clip, thumbnails) reads tracks
 * only through this. */
#ifndef CAP_MEDIA_SOURCE_H
#define CAP_MEDIA_SOURCE_H

#include "capstan/track.h"
#include "codec/depay.h"
#include "media/timeline.h"

#include <stdbool.h>
#include <stdint.h>

struct cap_media_frame {
    struct cap_frame frame;   /* data valid until the next call */
    int64_t pts_ns;           /* recording time: ns after the recording's time zero */
    bool new_segment;         /* a timestamp jump or SSRC change starts here */
    uint32_t ssrc;
};

struct cap_source_options {
    int64_t time_zero_ns;          /* the recording's time zero (wall clock ns) */
    size_t reorder_packets;        /* 0: 512 */
    int64_t reorder_ns;            /* 0: 500 ms of arrival time */
};

struct cap_source_stats {
    uint64_t rtp_packets;
    uint64_t rtcp_packets;
    uint64_t lost;                 /* sequence numbers never received */
    uint64_t late;
    uint64_t duplicated;
    uint64_t reordered;
    uint64_t malformed;            /* packets that failed RTP or payload parsing */
    uint64_t damaged_records;      /* chunk records that failed their checksum */
    uint64_t frames;
    uint64_t incomplete_frames;
    uint64_t keyframes;
    int64_t first_keyframe_pts_ns; /* -1 if none */
};

struct cap_track_source;

/* CAP_EUNSUPPORTED when the track's codec has no depacketizer. */
int cap_track_source_open(struct cap_track_source **out, const char *track_dir,
                          const struct cap_source_options *opt);
void cap_track_source_close(struct cap_track_source *s);

const struct cap_track_info *cap_track_source_info(const struct cap_track_source *s);
struct cap_track_clock *cap_track_source_clock(struct cap_track_source *s);
const struct cap_source_stats *cap_track_source_stats(struct cap_track_source *s);

/* 1 with the next frame, 0 at the end, negative on an I/O error. */
int cap_track_source_next(struct cap_track_source *s, struct cap_media_frame *out);
/* Right after next returned 1: the frame's bytes move into *buf (as
 * cap_depacketizer_take_frame), so they outlive the next call without a copy. */
void cap_track_source_take_frame(struct cap_track_source *s, struct cap_buf *buf);

/* A recording's time zero: metadata.json's recording.time_zero_ns, else the earliest
 * arrival of any of its tracks (rec_dir may also be a single track folder). */
int64_t cap_recording_time_zero(const char *rec_dir);

/* Recording-level sync: tracks whose Sender Reports carry the same CNAME share the
 * smallest sender offset any of them saw (call after opening every source, before next). */
void cap_sources_share_sender_offsets(struct cap_track_source **sources, size_t count);

#endif
