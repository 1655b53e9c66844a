/* RTP ingest: one UDP port per recording (RTP and RTCP multiplexed, RFC 5761), RFC 4571
 * framed RTP over TCP on the same port number, tracks demultiplexed by SSRC, every packet
 * appended to its track's chunk writer. One thread owns every socket and writer; the
 * control plane talks to it through synchronous commands, so the per-packet path takes no
 * lock and allocates nothing. A second thread makes the written data durable with one
 * syncfs(2) per interval, however many tracks there are. */
#ifndef CAP_INGEST_INGEST_H
#define CAP_INGEST_INGEST_H

#include "capstan/track.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAP_INGEST_DROP_MAP(X)                                                                     \
    X(MALFORMED, "malformed")          /* too short, or fails RTP parsing */                       \
    X(BAD_VERSION, "bad_version")      /* RTP/RTCP version is not 2 */                             \
    X(UNKNOWN_SSRC, "unknown_ssrc")    /* RTP from an SSRC no track of the recording has */        \
    X(RTCP_MALFORMED, "rtcp_malformed")                                                            \
    X(RTCP_UNKNOWN_SSRC, "rtcp_unknown_ssrc")                                                      \
    X(PAUSED, "paused")                /* the track or recording is paused */                      \
    X(OVERSIZED, "oversized")          /* larger than the receive buffer (9216 bytes) */           \
    X(TCP_FRAMING, "tcp_framing")      /* an RFC 4571 frame of length 0 */                         \
    X(WRITE_ERROR, "write_error")      /* the track's chunk could not be written */

enum cap_ingest_drop {
#define CAP_X_INGEST_DROP_(name, text) CAP_INGEST_DROP_##name,
    CAP_INGEST_DROP_MAP(CAP_X_INGEST_DROP_)
#undef CAP_X_INGEST_DROP_
    CAP_INGEST_DROP_COUNT
};

const char *cap_ingest_drop_name(enum cap_ingest_drop reason);

/* Counters the ingest thread writes and anyone may read (relaxed atomics). */
struct cap_ingest_counters {
    _Atomic uint64_t packets;        /* RTP + RTCP written */
    _Atomic uint64_t bytes;
    _Atomic uint64_t rtcp_packets;
    _Atomic uint64_t drops[CAP_INGEST_DROP_COUNT];
    _Atomic uint64_t kernel_drops;   /* socket receive-queue overflows (SO_RXQ_OVFL) */
    _Atomic uint64_t chunk_writes;   /* write(2) calls for records */
    _Atomic uint64_t syncs;
    _Atomic uint64_t sync_ns_total;
    _Atomic uint64_t sync_ns_max;
    _Atomic uint64_t batches;        /* recvmmsg calls that returned packets */
    _Atomic int64_t active_recordings;
    _Atomic int64_t active_tracks;
};

struct cap_track_counters {
    _Atomic uint64_t packets;
    _Atomic uint64_t bytes;
    _Atomic uint64_t rtcp_packets;
    _Atomic int64_t last_arrival_ns;
};

struct cap_ingest_config {
    const char *rtp_host;            /* address to bind, e.g. 127.0.0.1 or 0.0.0.0 */
    uint16_t port_lo, port_hi;       /* range for recording ports */
    int64_t sync_interval_ns;        /* flush + syncfs interval; 0 = flush only */
    uint64_t max_chunk_bytes;        /* 0: writer default */
    int64_t max_chunk_ns;            /* 0: writer default */
    size_t track_buffer_bytes;       /* per-track write buffer; 0: 32 KiB */
    const char *sync_dir;            /* a folder on the filesystem syncfs(2) flushes */
    /* Called on the ingest thread when a track of a standby (interrupted) recording gets
     * RTP again; must not call back into ingest synchronously. */
    void (*on_standby_packet)(void *user, const char *recording_id);
    void *user;
};

struct cap_ingest;
struct cap_live;

int cap_ingest_start(struct cap_ingest **out, const struct cap_ingest_config *cfg);
void cap_ingest_stop(struct cap_ingest *ing);
struct cap_ingest_counters *cap_ingest_counters(struct cap_ingest *ing);

/* Opens a recording's sockets (want_port 0 = the first free port of the range, else that
 * exact port, as after a restart). Tracks are written under dir/tracks/{track_id}/. */
int cap_ingest_open(struct cap_ingest *ing, const char *recording_id, const char *dir,
                    uint16_t want_port, struct cap_live **out, uint16_t *udp_port, uint16_t *tcp_port);
/* A track's final counts, as cap_ingest_close hands them back. */
struct cap_track_totals {
    uint64_t packets, bytes, rtcp_packets;
};

/* Takes in what the socket still holds, seals every track and closes the sockets; live is
 * freed. The final counts of tracks 0..count-1 go to totals (may be NULL). */
int cap_ingest_close(struct cap_ingest *ing, struct cap_live *live, struct cap_track_totals *totals,
                     size_t count);

enum cap_track_mode {
    CAP_TRACK_ACTIVE,    /* write */
    CAP_TRACK_PAUSED,    /* drop (counted as paused) */
    CAP_TRACK_STANDBY,   /* drop, and report the first packet (interrupted recording) */
    CAP_TRACK_CLOSED,    /* seal; the SSRC no longer belongs to this recording */
};

/* index is the track's place in the engine's recording (stable). */
int cap_ingest_add_track(struct cap_ingest *ing, struct cap_live *live, size_t index,
                         const struct cap_track_info *info, enum cap_track_mode mode);
int cap_ingest_set_mode(struct cap_ingest *ing, struct cap_live *live, size_t index,
                        enum cap_track_mode mode);
/* The track continues with a new SSRC; its current chunk is sealed and the next names it. */
int cap_ingest_set_ssrc(struct cap_ingest *ing, struct cap_live *live, size_t index,
                        const struct cap_track_info *info);
/* Reads a track's counters (NULL if no such index). */
const struct cap_track_counters *cap_ingest_track_counters(struct cap_live *live, size_t index);

#endif
