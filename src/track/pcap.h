/* pcap/pcapng import into a recording folder, and export of a recording back to pcap.
 * Import demuxes RTP and RTCP (told apart per RFC 5761) by SSRC into one track per SSRC;
 * export merges every track's records by arrival time. */
#ifndef CAP_TRACK_PCAP_H
#define CAP_TRACK_PCAP_H

#include "capstan/track.h"
#include "track/ptmap.h"

#include <stddef.h>
#include <stdint.h>

#define CAP_IMPORT_DROP_MAP(X)                                                                     \
    X(NOT_IP, "not_ip")                                                                            \
    X(NOT_UDP, "not_udp")                                                                          \
    X(IP_FRAGMENT, "ip_fragment")                                                                  \
    X(TRUNCATED, "truncated")                                                                      \
    X(MALFORMED_FRAME, "malformed_frame")                                                          \
    X(NOT_RTP, "not_rtp")                                                                          \
    X(RTP_MALFORMED, "rtp_malformed")                                                              \
    X(RTCP_MALFORMED, "rtcp_malformed")                                                            \
    X(RTCP_UNKNOWN_SSRC, "rtcp_unknown_ssrc")

enum cap_import_drop {
#define CAP_X_DROP_(name, text) CAP_IMPORT_DROP_##name,
    CAP_IMPORT_DROP_MAP(CAP_X_DROP_)
#undef CAP_X_DROP_
    CAP_IMPORT_DROP_COUNT
};

const char *cap_import_drop_name(enum cap_import_drop reason);

struct cap_import_track {
    uint32_t ssrc;
    char track_id[CAP_TRACK_ID_MAX];
    char peer_id[CAP_TRACK_ID_MAX];
    char kind[16];
    char codec[32];
    uint32_t clock_rate;
    uint32_t channels;
    uint8_t first_pt;
    uint64_t rtp_packets;
    uint64_t rtcp_packets;
    uint64_t rtp_bytes;
    int64_t first_arrival_ns;
    int64_t last_arrival_ns;
    /* guessing the kind of an unmapped dynamic payload type */
    uint64_t same_ts_runs;
    uint64_t ts_advance;         /* sum of forward timestamp steps */
    int64_t scan_first_ns;
    int64_t scan_last_ns;
    uint32_t last_ts;
    uint16_t dst_port;
};

struct cap_import_options {
    const char *pcap_path;
    const char *out_dir;         /* the recording folder; must not hold a recording yet */
    struct cap_pt_map *map;      /* may be empty */
    const char *room_id;
    const char *recording_id;
    uint64_t max_chunk_bytes;    /* 0: writer default */
    int64_t max_chunk_ns;        /* 0: writer default */
};

struct cap_import_report {
    uint64_t frames;
    uint64_t rtp;
    uint64_t rtcp;
    uint64_t dropped[CAP_IMPORT_DROP_COUNT];
    struct cap_import_track *tracks;
    size_t track_count;
    int64_t first_arrival_ns;
    int64_t last_arrival_ns;
};

/* Imports a capture. On failure returns a negative code and writes why (file not found,
 * not a capture, unsupported link type, output already holds a recording, I/O). */
int cap_pcap_import(const struct cap_import_options *opt, struct cap_import_report *report,
                    char *why, size_t why_size);
void cap_import_report_deinit(struct cap_import_report *report);

/* Writes every track under rec_dir/tracks/ into one pcap, merged by arrival time, with
 * Ethernet/IP/UDP headers from the endpoint events import recorded (loopback defaults
 * otherwise). Nanosecond timestamps when any arrival has sub-microsecond precision. */
struct cap_export_report {
    uint64_t packets;
    uint64_t skipped;   /* records too big for one UDP datagram: cannot be put in a capture */
};

int cap_pcap_export(const char *rec_dir, const char *out_path, struct cap_export_report *report,
                    char *why, size_t why_size);

/* The track folders of a recording, sorted by name. Caller frees with cap_track_dirs_free. */
int cap_track_dirs_list(const char *rec_dir, char ***dirs_out, size_t *count_out);
void cap_track_dirs_free(char **dirs, size_t count);

#endif
