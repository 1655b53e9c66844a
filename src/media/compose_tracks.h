/* Compose's tracks (compose.c's helpers, not part of the public compose.h): a video track
 * read and decoded on a thread of its own (compose_video.c), an audio track decoded,
 * resampled and placed on the mix's timeline (compose_audio.c), and the decoders both
 * open. */
#ifndef CAP_MEDIA_COMPOSE_TRACKS_H
#define CAP_MEDIA_COMPOSE_TRACKS_H

#include "media/compose.h"
#include "media/source.h"

#include <libavcodec/avcodec.h>
#include <libswresample/swresample.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define CAP_MIX_CHANNELS 2
#define CAP_COMPOSE_VIDEO_QUEUE 6   /* decoded pictures a track's thread may run ahead */

struct SwsContext;

struct cap_level_table {              /* RTP timestamp -> RFC 6464 level (0..127, 0 loudest) */
    uint32_t *keys;
    uint8_t *levels;              /* 0xff: empty slot */
    size_t mask;
};

/* A video track is read and decoded on a thread of its own, a few pictures ahead of the
 * canvas; the compose thread takes them in time order. Everything above `lock` is the
 * decoding thread's until it ends, except cur (the compose thread's). */
struct cap_compose_video {
    struct cap_track_source *src;
    struct cap_compose_track *report;
    int room_track;               /* index in the room model, -1 if it has none */
    int peer;                     /* owner, index in compose.peers */
    bool screen;
    bool hidden;
    AVCodecContext *dec;
    AVPacket *pkt;
    uint8_t *packet_buf;          /* frame bytes with the padding decoders need */
    size_t packet_cap;
    bool src_done, flushing, waiting_key;
    int64_t last_pts;
    /* the compose thread's side */
    AVFrame *cur;
    bool has_cur;
    bool drained;                 /* the thread ended and its queue is empty */
    int64_t cur_pts, first_pts;
    int64_t frame_ns;             /* last measured frame interval */
    uint64_t serial;              /* bumps with every new picture in cur */
    struct SwsContext *sws;
    /* between the two */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    AVFrame *queue[CAP_COMPOSE_VIDEO_QUEUE];
    int64_t queue_pts[CAP_COMPOSE_VIDEO_QUEUE];
    size_t queue_head, queue_count;
    AVFrame *spare[CAP_COMPOSE_VIDEO_QUEUE + 2];
    size_t spare_count;
    bool ended;                   /* no more pictures will be queued */
    int error;                    /* why it ended early, 0 at a normal end */
    bool stop;                    /* the compose thread wants it to end */
};

struct cap_compose_audio {
    struct cap_track_source *src;
    struct cap_compose_track *report;
    int room_track;
    int peer;
    bool muted;
    bool decode;                  /* false: only its RFC 6464 levels are wanted */
    unsigned rate;                /* the mix's sample rate */
    AVCodecContext *dec;
    SwrContext *swr;
    AVPacket *pkt;
    AVFrame *frame;
    uint8_t *packet_buf;
    size_t packet_cap;
    /* Samples at mix rate, planar stereo, covering [pos, pos + len). */
    float *buf[CAP_MIX_CHANNELS];
    size_t buf_cap;
    int64_t pos;
    size_t len;
    int64_t next_pos;             /* where the frame after the last placed one goes, -1 at first */
    /* The next decoded frame, not placed yet. */
    float *pend[CAP_MIX_CHANNELS];
    size_t pend_cap, pend_len;
    int64_t pend_pos;
    int pend_level;               /* RFC 6464 level of that frame, -1 if none */
    bool has_pend;
    bool done;
    struct cap_level_table levels;    /* empty when the track has no audio-level extension */
    int level;                    /* last placed RFC 6464 level, -1 if none */
    int64_t level_pos;            /* its sample position */
};

/* ---- decoders (compose_video.c) ---- */

/* A decoder for the track's codec; video with `threads` threads. CAP_EUNSUPPORTED (why
 * says which) when libavcodec has none. */
int cap_compose_open_decoder(AVCodecContext **out, const struct cap_track_info *info, unsigned threads,
                             char *why, size_t why_size);
/* pkt points at a copy of the frame with the zeroed padding decoders read past the end. */
int cap_compose_padded_packet(uint8_t **buf, size_t *cap, AVPacket *pkt, const struct cap_frame *f);

/* ---- video tracks (compose_video.c) ---- */

/* Starts the track's decoding thread (lock, cond, dec, pkt set up by the caller). */
int cap_compose_video_start(struct cap_compose_video *vt);
/* Stops and joins it, and frees the pictures it holds (not cur). Safe if never started. */
void cap_compose_video_stop(struct cap_compose_video *vt);
/* Makes cur the latest picture at or before `until` (ns); blocks until the thread has
 * decoded past it or ended. 0, or the thread's read error. */
int cap_compose_video_advance(struct cap_compose_video *vt, int64_t until);
/* The thread has ended and every picture was taken. */
bool cap_compose_video_exhausted(const struct cap_compose_video *vt);

/* ---- audio tracks (compose_audio.c) ---- */

/* The RFC 6464 audio-level extension: the id of a one-byte element on at least 90% of the
 * track's packets (0 if none), and *packets, how many RTP packets the track has. */
unsigned cap_compose_find_level_ext(const char *track_dir, size_t *packets);
/* Reads every packet's level (extension `id`) into at->levels. */
int cap_compose_load_levels(struct cap_compose_audio *at, const char *track_dir, unsigned id, size_t packets);
void cap_compose_levels_free(struct cap_compose_audio *at);
/* Makes the track's samples reach need_end (a sample position at the mix rate), or
 * leaves them short when the track is silent until then. */
int cap_compose_audio_fill(struct cap_compose_audio *at, int64_t need_end);
/* Drops the samples before `upto`. */
void cap_compose_audio_consume(struct cap_compose_audio *at, int64_t upto);
/* Nothing more to come at or after pos. */
bool cap_compose_audio_exhausted(const struct cap_compose_audio *at, int64_t pos);
/* Frees the track's decoder, resampler and buffers. */
void cap_compose_audio_free(struct cap_compose_audio *at);

#endif
