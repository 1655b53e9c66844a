/* import-pcap: reads a capture twice. The first pass finds the RTP streams (SSRC, payload
 * type, destination port, how many packets share a timestamp) so each track's folder,
 * codec and kind are known before a byte is written; the second writes every RTP and RTCP
 * packet with its arrival time into its track, plus an endpoint event whenever the
 * addresses a track's packets travel between change, so export can put them back. */
#include "track/pcap.h"

#include "rtp/rtcp.h"
#include "rtp/rtp.h"
#include "track/netframe.h"
#include "track/writer.h"
#include "util/fs.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const drop_names[] = {
#define CAP_X_DROP_NAME_(name, text) text,
    CAP_IMPORT_DROP_MAP(CAP_X_DROP_NAME_)
#undef CAP_X_DROP_NAME_
};

const char *cap_import_drop_name(enum cap_import_drop reason)
{
    return reason < CAP_IMPORT_DROP_COUNT ? drop_names[reason] : "unknown";
}

/* SSRC -> track index, open addressing; the table doubles at half full. */
struct ssrc_table {
    uint32_t *keys;
    uint32_t *values; /* track index + 1; 0 = empty */
    size_t size;
    size_t used;
};

static size_t ssrc_slot(const struct ssrc_table *t, uint32_t ssrc)
{
    size_t mask = t->size - 1;
    size_t i = (ssrc * 2654435761u) & mask;
    while (t->values[i] && t->keys[i] != ssrc)
        i = (i + 1) & mask;
    return i;
}

static int ssrc_find(const struct ssrc_table *t, uint32_t ssrc)
{
    if (!t->size)
        return -1;
    size_t i = ssrc_slot(t, ssrc);
    return t->values[i] ? (int)t->values[i] - 1 : -1;
}

static int ssrc_insert(struct ssrc_table *t, uint32_t ssrc, uint32_t index)
{
    if ((t->used + 1) * 2 > t->size) {
        struct ssrc_table bigger = {0};
        bigger.size = t->size ? t->size * 2 : 64;
        bigger.keys = calloc(bigger.size, sizeof(uint32_t));
        bigger.values = calloc(bigger.size, sizeof(uint32_t));
        if (!bigger.keys || !bigger.values) {
            free(bigger.keys);
            free(bigger.values);
            return CAP_ENOMEM;
        }
        for (size_t i = 0; i < t->size; i++) {
            if (!t->values[i])
                continue;
            size_t j = ssrc_slot(&bigger, t->keys[i]);
            bigger.keys[j] = t->keys[i];
            bigger.values[j] = t->values[i];
        }
        bigger.used = t->used;
        free(t->keys);
        free(t->values);
        *t = bigger;
    }
    size_t i = ssrc_slot(t, ssrc);
    t->keys[i] = ssrc;
    t->values[i] = index + 1;
    t->used++;
    return 0;
}

static void ssrc_table_free(struct ssrc_table *t)
{
    free(t->keys);
    free(t->values);
    memset(t, 0, sizeof(*t));
}

enum packet_class { PACKET_DROP, PACKET_RTP, PACKET_RTCP };

static const enum cap_import_drop verdict_drop[] = {
    [CAP_NETFRAME_NOT_IP] = CAP_IMPORT_DROP_NOT_IP,
    [CAP_NETFRAME_NOT_UDP] = CAP_IMPORT_DROP_NOT_UDP,
    [CAP_NETFRAME_FRAGMENT] = CAP_IMPORT_DROP_IP_FRAGMENT,
    [CAP_NETFRAME_TRUNCATED] = CAP_IMPORT_DROP_TRUNCATED,
    [CAP_NETFRAME_MALFORMED] = CAP_IMPORT_DROP_MALFORMED_FRAME,
};

/* Decodes a frame to a datagram and says whether it is RTP or RTCP; on a drop sets *why. */
static enum packet_class classify(uint32_t linktype, const uint8_t *frame, size_t caplen,
                                  struct cap_udp_datagram *dg, struct cap_rtp_packet *rtp,
                                  enum cap_import_drop *why)
{
    enum cap_netframe_verdict v = cap_netframe_decode(linktype, frame, caplen, dg);
    if (v != CAP_NETFRAME_UDP) {
        *why = v < sizeof(verdict_drop) / sizeof(verdict_drop[0]) ? verdict_drop[v]
                                                                  : CAP_IMPORT_DROP_MALFORMED_FRAME;
        return PACKET_DROP;
    }
    if (dg->len < 4 || (dg->payload[0] >> 6) != 2) {
        *why = CAP_IMPORT_DROP_NOT_RTP;
        return PACKET_DROP;
    }
    if (cap_rtp_looks_like_rtcp(dg->payload, dg->len))
        return PACKET_RTCP;
    if (cap_rtp_parse(dg->payload, dg->len, rtp) != 0) {
        *why = CAP_IMPORT_DROP_RTP_MALFORMED;
        return PACKET_DROP;
    }
    return PACKET_RTP;
}

static int64_t packet_time(const struct pcap_pkthdr *h)
{
    /* Opened with nanosecond precision: tv_usec carries nanoseconds. */
    return (int64_t)h->ts.tv_sec * 1000000000 + (int64_t)h->ts.tv_usec;
}

static pcap_t *open_capture(const char *path, char *why, size_t why_size)
{
    char errbuf[PCAP_ERRBUF_SIZE] = "";
    pcap_t *p = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, errbuf);
    if (!p)
        snprintf(why, why_size, "%s: not a readable pcap or pcapng capture: %s", path, errbuf);
    return p;
}

/* Pass 1: find the RTP streams. */
static int scan_streams(pcap_t *p, struct cap_import_report *rep, struct ssrc_table *table)
{
    uint32_t linktype = (uint32_t)pcap_datalink(p);
    struct pcap_pkthdr *h;
    const u_char *frame;
    int rc;
    size_t cap = 0;
    while ((rc = pcap_next_ex(p, &h, &frame)) == 1) {
        struct cap_udp_datagram dg;
        struct cap_rtp_packet rtp;
        enum cap_import_drop drop;
        if (classify(linktype, frame, h->caplen, &dg, &rtp, &drop) != PACKET_RTP)
            continue;
        int idx = ssrc_find(table, rtp.ssrc);
        if (idx < 0) {
            if (rep->track_count == cap) {
                cap = cap ? cap * 2 : 8;
                struct cap_import_track *grown = realloc(rep->tracks, cap * sizeof(*grown));
                if (!grown)
                    return CAP_ENOMEM;
                rep->tracks = grown;
            }
            idx = (int)rep->track_count;
            struct cap_import_track *t = &rep->tracks[rep->track_count++];
            memset(t, 0, sizeof(*t));
            t->ssrc = rtp.ssrc;
            t->first_pt = rtp.payload_type;
            t->dst_port = dg.ep.dst_port;
            t->last_ts = rtp.timestamp + 1;
            if (ssrc_insert(table, rtp.ssrc, (uint32_t)idx) != 0)
                return CAP_ENOMEM;
        }
        struct cap_import_track *t = &rep->tracks[idx];
        int64_t arrival = packet_time(h);
        if (t->scan_first_ns == 0)
            t->scan_first_ns = arrival;
        else if (t->last_ts == rtp.timestamp)
            t->same_ts_runs++;
        else if ((int32_t)(rtp.timestamp - t->last_ts) > 0 &&
                 (int32_t)(rtp.timestamp - t->last_ts) < 90000 * 10)
            t->ts_advance += rtp.timestamp - t->last_ts;
        t->scan_last_ns = arrival;
        t->last_ts = rtp.timestamp;
    }
    if (rc == PCAP_ERROR) {
        /* A capture cut short (a crashed tcpdump) still imports up to the cut. */
        CAP_WARN(NULL, "capture ends early (imported up to the cut): %s", pcap_geterr(p));
    }
    return 0;
}

/* Decides each track's codec, kind and names. */
static void name_tracks(struct cap_import_report *rep, struct cap_pt_map *map)
{
    for (size_t i = 0; i < rep->track_count; i++) {
        struct cap_import_track *t = &rep->tracks[i];
        const struct cap_pt_mapping *m = cap_pt_map_find(map, t->dst_port, t->first_pt);
        if (m) {
            snprintf(t->codec, sizeof(t->codec), "%s", m->codec);
            snprintf(t->kind, sizeof(t->kind), "%s", m->kind);
            t->clock_rate = m->clock_rate;
            t->channels = m->channels;
        } else {
            /* Unmapped dynamic PT: video runs a 90 kHz clock (RFC 3551) and splits large
             * frames over packets sharing one timestamp; audio clocks are 8-48 kHz. */
            double span = (double)(t->scan_last_ns - t->scan_first_ns) / 1e9;
            double clock = span > 0.2 ? (double)t->ts_advance / span : 0;
            bool video = (clock > 65000 && clock < 120000) || (clock == 0 && t->same_ts_runs > 0);
            snprintf(t->codec, sizeof(t->codec), "unknown");
            snprintf(t->kind, sizeof(t->kind), "%s", video ? "video" : "audio");
        }
        snprintf(t->peer_id, sizeof(t->peer_id), "ssrc-%08x", t->ssrc);
        snprintf(t->track_id, sizeof(t->track_id), "%.100s-%.15s", t->peer_id, t->kind);
    }
}

struct import_track_state {
    struct cap_track_writer *writer;
    struct cap_udp_endpoints rtp_ep;
    struct cap_udp_endpoints rtcp_ep;
    bool have_rtp_ep;
    bool have_rtcp_ep;
};

static void format_addr(const struct cap_udp_endpoints *ep, const uint8_t *addr, char *out,
                        size_t size)
{
    if (!inet_ntop(ep->family == 6 ? AF_INET6 : AF_INET, addr, out, (socklen_t)size))
        snprintf(out, size, "?");
}

/* Records where a track's RTP or RTCP comes from and goes to, when that changes. */
static int note_endpoint(struct import_track_state *s, bool rtcp, const struct cap_udp_endpoints *ep,
                         int64_t arrival)
{
    struct cap_udp_endpoints *cur = rtcp ? &s->rtcp_ep : &s->rtp_ep;
    bool *have = rtcp ? &s->have_rtcp_ep : &s->have_rtp_ep;
    if (*have && memcmp(cur, ep, sizeof(*ep)) == 0)
        return 0;
    *cur = *ep;
    *have = true;
    char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN], event[256];
    format_addr(ep, ep->src, src, sizeof(src));
    format_addr(ep, ep->dst, dst, sizeof(dst));
    int n = snprintf(event, sizeof(event),
                     "{\"type\":\"endpoint\",\"for\":\"%s\",\"transport\":\"udp\",\"src\":\"%s\","
                     "\"src_port\":%u,\"dst\":\"%s\",\"dst_port\":%u}",
                     rtcp ? "rtcp" : "rtp", src, ep->src_port, dst, ep->dst_port);
    return cap_track_writer_append(s->writer, CAP_RECORD_EVENT, 0, arrival, event, (size_t)n);
}

/* The track an RTCP compound belongs to: its sender's, else the first media SSRC it
 * reports on or gives feedback about. */
static int rtcp_track(const struct ssrc_table *table, const struct cap_rtcp_packet *pkts, int n)
{
    for (int i = 0; i < n; i++) {
        int idx = ssrc_find(table, pkts[i].ssrc);
        if (idx >= 0 && pkts[i].ssrc != 0)
            return idx;
    }
    for (int i = 0; i < n; i++) {
        if (pkts[i].type == CAP_RTCP_SR || pkts[i].type == CAP_RTCP_RR) {
            for (unsigned b = 0; b < pkts[i].count; b++) {
                struct cap_rtcp_report_block block;
                cap_rtcp_report_block(&pkts[i], b, &block);
                int idx = ssrc_find(table, block.ssrc);
                if (idx >= 0)
                    return idx;
            }
        } else if (pkts[i].type == CAP_RTCP_RTPFB || pkts[i].type == CAP_RTCP_PSFB) {
            int idx = ssrc_find(table, pkts[i].media_ssrc);
            if (idx >= 0)
                return idx;
        }
    }
    return -1;
}

static int open_writers(const struct cap_import_options *opt, struct cap_import_report *rep,
                        struct cap_pt_map *map, struct import_track_state *states, char *why,
                        size_t why_size)
{
    for (size_t i = 0; i < rep->track_count; i++) {
        struct cap_import_track *t = &rep->tracks[i];
        struct cap_track_writer_config cfg;
        memset(&cfg, 0, sizeof(cfg));
        char dir[PATH_MAX];
        if (snprintf(dir, sizeof(dir), "%s/tracks/%s", opt->out_dir, t->track_id) >= (int)sizeof(dir)) {
            snprintf(why, why_size, "output path too long");
            return CAP_ELIMIT;
        }
        cfg.dir = dir;
        struct cap_track_info *info = &cfg.info;
        snprintf(info->track_id, sizeof(info->track_id), "%s", t->track_id);
        snprintf(info->recording_id, sizeof(info->recording_id), "%s", opt->recording_id);
        snprintf(info->room_id, sizeof(info->room_id), "%s", opt->room_id);
        snprintf(info->peer_id, sizeof(info->peer_id), "%s", t->peer_id);
        snprintf(info->producer_id, sizeof(info->producer_id), "%s", t->peer_id);
        snprintf(info->kind, sizeof(info->kind), "%s", t->kind);
        snprintf(info->codec, sizeof(info->codec), "%s", t->codec);
        info->clock_rate = t->clock_rate;
        info->channels = t->channels;
        info->ssrc = t->ssrc;
        info->payload_types[0] = t->first_pt;
        info->payload_type_count = 1;
        const struct cap_pt_mapping *m = cap_pt_map_find(map, t->dst_port, t->first_pt);
        if (m)
            snprintf(info->fmtp, sizeof(info->fmtp), "%s", m->fmtp);
        cfg.max_chunk_bytes = opt->max_chunk_bytes;
        cfg.max_chunk_ns = opt->max_chunk_ns;
        cfg.fsync_interval_ns = 0; /* an import is made durable once, at close */
        cfg.buffer_bytes = 256 << 10;
        cfg.first_chunk_seq = 1;
        int err = cap_track_writer_open(&states[i].writer, &cfg);
        if (err) {
            snprintf(why, why_size, "%s: cannot create track folder: %s", dir, cap_strerror(err));
            return err;
        }
    }
    return 0;
}

/* Pass 2: write every packet into its track. */
static int write_packets(pcap_t *p, struct cap_import_report *rep, const struct ssrc_table *table,
                         struct import_track_state *states, char *why, size_t why_size)
{
    uint32_t linktype = (uint32_t)pcap_datalink(p);
    struct pcap_pkthdr *h;
    const u_char *frame;
    int rc;
    struct cap_rtcp_packet rtcp[CAP_RTCP_MAX_PACKETS];
    bool first = true;
    while ((rc = pcap_next_ex(p, &h, &frame)) == 1) {
        rep->frames++;
        int64_t arrival = packet_time(h);
        struct cap_udp_datagram dg;
        struct cap_rtp_packet rtp;
        enum cap_import_drop drop = CAP_IMPORT_DROP_NOT_RTP;
        enum packet_class cls = classify(linktype, frame, h->caplen, &dg, &rtp, &drop);
        int idx = -1;
        if (cls == PACKET_RTP) {
            idx = ssrc_find(table, rtp.ssrc);
        } else if (cls == PACKET_RTCP) {
            int n = cap_rtcp_parse(dg.payload, dg.len, rtcp, CAP_RTCP_MAX_PACKETS);
            if (n <= 0) {
                cls = PACKET_DROP;
                drop = CAP_IMPORT_DROP_RTCP_MALFORMED;
            } else if ((idx = rtcp_track(table, rtcp, n)) < 0) {
                cls = PACKET_DROP;
                drop = CAP_IMPORT_DROP_RTCP_UNKNOWN_SSRC;
            }
        }
        if (cls == PACKET_DROP || idx < 0) {
            rep->dropped[drop]++;
            continue;
        }
        struct cap_import_track *t = &rep->tracks[idx];
        struct import_track_state *s = &states[idx];
        bool is_rtcp = cls == PACKET_RTCP;
        int err = note_endpoint(s, is_rtcp, &dg.ep, arrival);
        if (!err)
            err = cap_track_writer_append(s->writer, is_rtcp ? CAP_RECORD_RTCP : CAP_RECORD_RTP, 0,
                                          arrival, dg.payload, dg.len);
        if (err) {
            snprintf(why, why_size, "writing track %s: %s", t->track_id, cap_strerror(err));
            return err;
        }
        if (is_rtcp) {
            t->rtcp_packets++;
            rep->rtcp++;
        } else {
            t->rtp_packets++;
            t->rtp_bytes += dg.len;
            rep->rtp++;
        }
        if (t->rtp_packets + t->rtcp_packets == 1)
            t->first_arrival_ns = arrival;
        t->last_arrival_ns = arrival;
        if (first)
            rep->first_arrival_ns = arrival;
        first = false;
        rep->last_arrival_ns = arrival;
    }
    return 0;
}

int cap_pcap_import(const struct cap_import_options *opt, struct cap_import_report *rep,
                    char *why, size_t why_size)
{
    memset(rep, 0, sizeof(*rep));
    char probe[PATH_MAX];
    snprintf(probe, sizeof(probe), "%s/metadata.json", opt->out_dir);
    if (access(probe, F_OK) == 0) {
        snprintf(why, why_size, "%s already holds a recording; choose an empty folder", opt->out_dir);
        return CAP_EEXIST;
    }
    snprintf(probe, sizeof(probe), "%s/tracks", opt->out_dir);
    if (access(probe, F_OK) == 0) {
        snprintf(why, why_size, "%s already has a tracks/ folder; choose an empty folder", opt->out_dir);
        return CAP_EEXIST;
    }
    pcap_t *p = open_capture(opt->pcap_path, why, why_size);
    if (!p)
        return access(opt->pcap_path, R_OK) == 0 ? CAP_EFORMAT : CAP_ENOENT;
    struct ssrc_table table = {0};
    int err = scan_streams(p, rep, &table);
    pcap_close(p);
    if (err) {
        ssrc_table_free(&table);
        return err;
    }
    name_tracks(rep, opt->map);
    struct import_track_state *states = calloc(rep->track_count ? rep->track_count : 1, sizeof(*states));
    if (!states) {
        ssrc_table_free(&table);
        return CAP_ENOMEM;
    }
    err = cap_mkdir_p(opt->out_dir);
    if (err)
        snprintf(why, why_size, "%s: cannot create: %s", opt->out_dir, cap_strerror(err));
    if (!err)
        err = open_writers(opt, rep, opt->map, states, why, why_size);
    if (!err) {
        p = open_capture(opt->pcap_path, why, why_size);
        if (!p) {
            err = CAP_EIO;
        } else {
            err = write_packets(p, rep, &table, states, why, why_size);
            pcap_close(p);
        }
    }
    for (size_t i = 0; i < rep->track_count; i++) {
        int close_err = cap_track_writer_close(states[i].writer);
        if (close_err && !err) {
            err = close_err;
            snprintf(why, why_size, "closing track %s: %s", rep->tracks[i].track_id,
                     cap_strerror(close_err));
        }
    }
    free(states);
    ssrc_table_free(&table);
    return err;
}

void cap_import_report_deinit(struct cap_import_report *rep)
{
    free(rep->tracks);
    memset(rep, 0, sizeof(*rep));
}
