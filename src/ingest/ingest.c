/* The ingest thread (ingest.h): epoll over every recording's UDP socket, TCP listener and
 * TCP connections, recvmmsg in batches with kernel arrival timestamps, SSRC demux through
 * an open-addressing table, and appends to the track writers. Control commands arrive
 * through an eventfd and run on this thread between batches. */
#include "ingest/ingest.h"

#include "rtp/rtcp.h"
#include "rtp/rtp.h"
#include "track/writer.h"
#include "util/bytes.h"
#include "util/clock.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RECV_BATCH 64
#define RECV_BUF 9216
#define RECV_ROUNDS 32            /* batches per socket before looking at the others */
#define MAX_TCP_CONNS 16
#define TCP_BUF (2 + 65535)
#define TICK_NS (50 * CAP_NS_PER_MS)
#define DEFAULT_TRACK_BUFFER (32u << 10)
#define COALESCE_MAX_NS (200 * 1000000L) /* longest wait for packets to gather */
#define COALESCE_MIN_NS (1000000L)       /* shorter waits are not worth a sleep */
#define COALESCE_PACKETS 256             /* what a wait lets gather, at the current rate */

static const char *const drop_names[] = {
#define CAP_X_INGEST_DROP_NAME_(name, text) text,
    CAP_INGEST_DROP_MAP(CAP_X_INGEST_DROP_NAME_)
#undef CAP_X_INGEST_DROP_NAME_
};

const char *cap_ingest_drop_name(enum cap_ingest_drop reason)
{
    return reason < CAP_INGEST_DROP_COUNT ? drop_names[reason] : "unknown";
}

enum ref_kind { REF_WAKE, REF_UDP, REF_TCP_LISTEN, REF_TCP_CONN };

struct fd_ref {
    enum ref_kind kind;
    struct cap_live *live;
    struct tcp_conn *conn;
};

struct tcp_conn {
    struct fd_ref ref;
    int fd;
    size_t len;
    uint8_t buf[TCP_BUF];
};

/* Per packet: mode, writer and counters, kept in the first cache lines; info (~5 KiB) last. */
struct slot {
    enum cap_track_mode mode;
    struct cap_track_writer *writer;
    struct cap_track_counters counters;
    struct cap_track_info info;
};

struct cap_live {
    char recording_id[128];
    char dir[PATH_MAX];
    int udp_fd, tcp_fd;
    struct fd_ref udp_ref, tcp_ref;
    struct slot **slots;          /* by engine track index; pointers keep counters in place */
    size_t slot_count;
    uint32_t *keys;               /* SSRC table: key -> values[i] - 1 = slot index */
    uint32_t *values;
    size_t table_size;
    bool standby_reported;
    uint32_t last_overflow;       /* the socket's drop count is cumulative */
    struct tcp_conn *conns[MAX_TCP_CONNS];
    struct cap_live *next;
};

enum cmd_type { CMD_OPEN, CMD_CLOSE, CMD_ADD, CMD_MODE, CMD_SSRC };

struct command {
    enum cmd_type type;
    struct cap_live *live;
    const char *recording_id;
    const char *dir;
    uint16_t want_port;
    size_t index;
    const struct cap_track_info *info;
    enum cap_track_mode mode;
    int result;
    uint16_t udp_port, tcp_port;
    bool done;
    struct cap_track_totals *totals;
    size_t total_count;
    struct command *next;
};

struct cap_ingest {
    struct cap_ingest_config cfg;
    char rtp_host[64];
    char sync_dir[PATH_MAX];
    int family;
    struct sockaddr_storage bind_addr;
    socklen_t bind_len;
    int epoll_fd;
    int wake_fd;
    struct fd_ref wake_ref;
    pthread_t thread;
    bool running;
    pthread_mutex_t lock;          /* commands and stop */
    pthread_cond_t cond;
    struct command *commands;
    struct cap_live *lives;
    uint16_t next_port;
    struct cap_ingest_counters counters;
    int64_t last_flush;
    bool unsynced; /* records appended since the last flush: the next one asks for a syncfs */
    double rate_pps;               /* packets per second, smoothed over wake-ups */
    int64_t last_wake;
    int64_t wait_cap_ns;           /* longest coalescing wait for now (see coalesce) */
    bool backlog;                  /* a socket still had packets queued after its rounds */
    /* receive buffers */
    struct mmsghdr msgs[RECV_BATCH];
    struct iovec iovs[RECV_BATCH];
    uint8_t (*bufs)[RECV_BUF];
    uint8_t ctrl[RECV_BATCH][CMSG_SPACE(sizeof(struct timespec))];
    /* the syncer */
    pthread_t syncer;
    pthread_mutex_t sync_lock;
    pthread_cond_t sync_cond;
    bool sync_wanted;
    uint64_t sync_generation;      /* completed syncs */
};

struct cap_ingest_counters *cap_ingest_counters(struct cap_ingest *ing)
{
    return &ing->counters;
}

/* Counters have one writer, the ingest thread: a relaxed load and store is enough (no
 * locked instruction per packet), and readers on other threads see whole values. */
static inline void bump(_Atomic uint64_t *counter, uint64_t n)
{
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static void count_drop(struct cap_ingest *ing, enum cap_ingest_drop reason)
{
    bump(&ing->counters.drops[reason], 1);
}

/* ---- SSRC table ---- */

static size_t table_slot(const struct cap_live *live, uint32_t ssrc)
{
    size_t mask = live->table_size - 1;
    size_t i = (ssrc * 2654435761u) & mask;
    while (live->values[i] && live->keys[i] != ssrc)
        i = (i + 1) & mask;
    return i;
}

static struct slot *find_slot(const struct cap_live *live, uint32_t ssrc)
{
    if (!live->table_size)
        return NULL;
    size_t i = table_slot(live, ssrc);
    return live->values[i] ? live->slots[live->values[i] - 1] : NULL;
}

/* Rebuilt from the slots on every change: changes are rare, lookups are per packet. */
static int rebuild_table(struct cap_live *live)
{
    size_t size = 16;
    while (size < live->slot_count * 4)
        size *= 2;
    uint32_t *keys = calloc(size, sizeof(*keys));
    uint32_t *values = calloc(size, sizeof(*values));
    if (!keys || !values) {
        free(keys);
        free(values);
        return CAP_ENOMEM;
    }
    free(live->keys);
    free(live->values);
    live->keys = keys;
    live->values = values;
    live->table_size = size;
    for (size_t s = 0; s < live->slot_count; s++) {
        struct slot *slot = live->slots[s];
        if (!slot || slot->mode == CAP_TRACK_CLOSED)
            continue;
        size_t i = table_slot(live, slot->info.ssrc);
        keys[i] = slot->info.ssrc;
        values[i] = (uint32_t)s + 1;
    }
    return 0;
}

/* ---- packets ---- */

static void write_record(struct cap_ingest *ing, struct slot *slot, enum cap_record_type type,
                         const uint8_t *data, size_t len, int64_t arrival)
{
    int err = cap_track_writer_append(slot->writer, type, 0, arrival, data, len);
    if (err) {
        count_drop(ing, CAP_INGEST_DROP_WRITE_ERROR);
        CAP_LOG(CAP_LOG_ERROR, &((struct cap_log_ctx){.recording = slot->info.recording_id, .track = slot->info.track_id}),
                "cannot write packet: %s", cap_strerror(err));
        return;
    }
    atomic_store_explicit(&slot->counters.last_arrival_ns, arrival, memory_order_relaxed);
    ing->unsynced = true;
    bump(&ing->counters.packets, 1);
    bump(&ing->counters.bytes, len);
    if (type == CAP_RECORD_RTCP) {
        bump(&slot->counters.rtcp_packets, 1);
        bump(&ing->counters.rtcp_packets, 1);
    } else {
        /* A track's bytes are its RTP bytes, as chunk indexes and inspect count them. */
        bump(&slot->counters.packets, 1);
        bump(&slot->counters.bytes, len);
    }
}

static void standby_hit(struct cap_ingest *ing, struct cap_live *live)
{
    if (live->standby_reported)
        return;
    live->standby_reported = true;
    if (ing->cfg.on_standby_packet)
        ing->cfg.on_standby_packet(ing->cfg.user, live->recording_id);
}

/* The track an RTCP compound belongs to: its sender's, else one it reports on. */
static struct slot *rtcp_slot(const struct cap_live *live, const struct cap_rtcp_packet *pkts, int n)
{
    for (int i = 0; i < n; i++) {
        struct slot *s = find_slot(live, pkts[i].ssrc);
        if (s)
            return s;
    }
    for (int i = 0; i < n; i++) {
        if (pkts[i].type == CAP_RTCP_SR || pkts[i].type == CAP_RTCP_RR) {
            for (unsigned b = 0; b < pkts[i].count; b++) {
                struct cap_rtcp_report_block block;
                cap_rtcp_report_block(&pkts[i], b, &block);
                struct slot *s = find_slot(live, block.ssrc);
                if (s)
                    return s;
            }
        } else if (pkts[i].type == CAP_RTCP_RTPFB || pkts[i].type == CAP_RTCP_PSFB) {
            struct slot *s = find_slot(live, pkts[i].media_ssrc);
            if (s)
                return s;
        }
    }
    return NULL;
}

static void handle_packet(struct cap_ingest *ing, struct cap_live *live, const uint8_t *p, size_t len,
                          int64_t arrival)
{
    if (len < 4) {
        count_drop(ing, CAP_INGEST_DROP_MALFORMED);
        return;
    }
    if (p[0] >> 6 != 2) {
        count_drop(ing, CAP_INGEST_DROP_BAD_VERSION);
        return;
    }
    if (cap_rtp_looks_like_rtcp(p, len)) {
        struct cap_rtcp_packet pkts[CAP_RTCP_MAX_PACKETS];
        int n = cap_rtcp_parse(p, len, pkts, CAP_RTCP_MAX_PACKETS);
        if (n <= 0) {
            count_drop(ing, CAP_INGEST_DROP_RTCP_MALFORMED);
            return;
        }
        struct slot *slot = rtcp_slot(live, pkts, n);
        if (!slot) {
            count_drop(ing, CAP_INGEST_DROP_RTCP_UNKNOWN_SSRC);
            return;
        }
        if (slot->mode == CAP_TRACK_STANDBY) {
            standby_hit(ing, live);
            count_drop(ing, CAP_INGEST_DROP_PAUSED);
            return;
        }
        /* Sender reports keep their timing value while media is paused. */
        write_record(ing, slot, CAP_RECORD_RTCP, p, len, arrival);
        return;
    }
    struct cap_rtp_packet rtp;
    int err = cap_rtp_parse(p, len, &rtp);
    if (err) {
        count_drop(ing, err == CAP_EVERSION ? CAP_INGEST_DROP_BAD_VERSION : CAP_INGEST_DROP_MALFORMED);
        return;
    }
    struct slot *slot = find_slot(live, rtp.ssrc);
    if (!slot) {
        count_drop(ing, CAP_INGEST_DROP_UNKNOWN_SSRC);
        return;
    }
    switch (slot->mode) {
    case CAP_TRACK_ACTIVE:
        write_record(ing, slot, CAP_RECORD_RTP, p, len, arrival);
        return;
    case CAP_TRACK_STANDBY:
        standby_hit(ing, live);
        /* fall through */
    case CAP_TRACK_PAUSED:
        count_drop(ing, CAP_INGEST_DROP_PAUSED);
        return;
    case CAP_TRACK_CLOSED:
        count_drop(ing, CAP_INGEST_DROP_UNKNOWN_SSRC);
        return;
    }
}

/* With many tracks, each packet's slot, writer and write position are cold in cache and
 * each is found through the one before: handled one packet at a time, that is three waits
 * on memory in a row per packet. Over a batch, the loads are started together, a level per
 * pass, so the waits overlap. Only hints: a packet this misreads is handled as usual. */
static void prefetch_batch(struct cap_ingest *ing, const struct cap_live *live, int n)
{
    struct slot *slots[RECV_BATCH];
    int count = 0;
    for (int i = 0; i < n; i++) {
        const uint8_t *p = ing->bufs[i];
        size_t len = ing->msgs[i].msg_len;
        if (len < CAP_RTP_HEADER_MIN || p[0] >> 6 != 2 || cap_rtp_looks_like_rtcp(p, len))
            continue;
        struct slot *slot = find_slot(live, cap_load_be32(p + 8));
        if (slot) {
            __builtin_prefetch(slot, 1);
            slots[count++] = slot;
        }
    }
    for (int i = 0; i < count; i++)
        if (slots[i]->writer)
            cap_track_writer_prefetch(slots[i]->writer);
    for (int i = 0; i < count; i++)
        if (slots[i]->writer)
            cap_track_writer_prefetch_tail(slots[i]->writer);
}

static unsigned receive_udp(struct cap_ingest *ing, struct cap_live *live)
{
    unsigned total = 0;
    for (int round = 0; round < RECV_ROUNDS; round++) {
        for (int i = 0; i < RECV_BATCH; i++) {
            ing->msgs[i].msg_hdr.msg_control = ing->ctrl[i];
            ing->msgs[i].msg_hdr.msg_controllen = sizeof(ing->ctrl[i]);
            ing->msgs[i].msg_hdr.msg_flags = 0;
        }
        int n = recvmmsg(live->udp_fd, ing->msgs, RECV_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return total;
        total += (unsigned)n;
        bump(&ing->counters.batches, 1);
        prefetch_batch(ing, live, n);
        int64_t fallback = 0;
        for (int i = 0; i < n; i++) {
            struct msghdr *h = &ing->msgs[i].msg_hdr;
            int64_t arrival = 0;
            for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                    struct timespec ts;
                    memcpy(&ts, CMSG_DATA(c), sizeof(ts));
                    arrival = (int64_t)ts.tv_sec * CAP_NS_PER_SEC + ts.tv_nsec;
                }
            }
            if (!arrival) {
                if (!fallback)
                    fallback = cap_clock_wall_ns();
                arrival = fallback;
            }
            if (h->msg_flags & MSG_TRUNC) {
                count_drop(ing, CAP_INGEST_DROP_OVERSIZED);
                continue;
            }
            handle_packet(ing, live, ing->bufs[i], ing->msgs[i].msg_len, arrival);
        }
        if (n < RECV_BATCH)
            return total;
    }
    ing->backlog = true; /* left queued for after the other sockets: no waiting then */
    return total;
}

/* ---- TCP (RFC 4571) ---- */

static void close_conn(struct cap_ingest *ing, struct cap_live *live, struct tcp_conn *conn)
{
    epoll_ctl(ing->epoll_fd, EPOLL_CTL_DEL, conn->fd, NULL);
    close(conn->fd);
    for (int i = 0; i < MAX_TCP_CONNS; i++)
        if (live->conns[i] == conn)
            live->conns[i] = NULL;
    free(conn);
}

static void accept_tcp(struct cap_ingest *ing, struct cap_live *live)
{
    for (;;) {
        int fd = accept4(live->tcp_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int free_slot = -1;
        for (int i = 0; i < MAX_TCP_CONNS && free_slot < 0; i++)
            if (!live->conns[i])
                free_slot = i;
        struct tcp_conn *conn = free_slot >= 0 ? malloc(sizeof(*conn)) : NULL;
        if (!conn) {
            close(fd);
            continue;
        }
        conn->fd = fd;
        conn->len = 0;
        conn->ref = (struct fd_ref){.kind = REF_TCP_CONN, .live = live, .conn = conn};
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &conn->ref};
        if (epoll_ctl(ing->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            free(conn);
            continue;
        }
        live->conns[free_slot] = conn;
    }
}

static void read_tcp(struct cap_ingest *ing, struct cap_live *live, struct tcp_conn *conn)
{
    for (int round = 0; round < RECV_ROUNDS; round++) {
        ssize_t n = read(conn->fd, conn->buf + conn->len, sizeof(conn->buf) - conn->len);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            close_conn(ing, live, conn);
            return;
        }
        if (n < 0)
            return;
        conn->len += (size_t)n;
        int64_t arrival = cap_clock_wall_ns();
        size_t off = 0;
        while (conn->len - off >= 2) {
            size_t frame = cap_load_be16(conn->buf + off);
            if (frame == 0) {
                count_drop(ing, CAP_INGEST_DROP_TCP_FRAMING);
                off += 2;
                continue;
            }
            if (conn->len - off < 2 + frame)
                break;
            handle_packet(ing, live, conn->buf + off + 2, frame, arrival);
            off += 2 + frame;
        }
        memmove(conn->buf, conn->buf + off, conn->len - off);
        conn->len -= off;
    }
}

static void do_sync(struct cap_ingest *ing);
static void count_kernel_drops(struct cap_ingest *ing, struct cap_live *live);

/* ---- sockets ---- */

static int bind_socket(struct cap_ingest *ing, int type, uint16_t port)
{
    int fd = socket(ing->family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (type == SOCK_STREAM)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_storage addr = ing->bind_addr;
    if (ing->family == AF_INET)
        ((struct sockaddr_in *)&addr)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)&addr)->sin6_port = htons(port);
    if (bind(fd, (struct sockaddr *)&addr, ing->bind_len) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    if (type == SOCK_DGRAM) {
        /* Room for the stalls of a thread that also writes files: while the filesystem's
         * writeback allocates blocks for a file, a write() to it waits (tens of ms seen,
         * at times 60 ms in a row). The kernel doubles this and charges each queued
         * 1200-byte datagram ~2.3 KiB: 256 MiB holds ~200,000 packets, 0.7 s at 300k/s.
         * It is memory only while packets wait; net.ipv4.udp_mem bounds the machine. */
        int size = 256 << 20;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
        setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
    } else if (listen(fd, 16) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

static int open_live(struct cap_ingest *ing, struct command *cmd)
{
    struct cap_live *live = calloc(1, sizeof(*live));
    if (!live)
        return CAP_ENOMEM;
    snprintf(live->recording_id, sizeof(live->recording_id), "%s", cmd->recording_id);
    snprintf(live->dir, sizeof(live->dir), "%s", cmd->dir);
    live->udp_fd = live->tcp_fd = -1;
    unsigned span = (unsigned)(ing->cfg.port_hi - ing->cfg.port_lo) + 1;
    for (unsigned tries = 0; tries < span && live->udp_fd < 0; tries++) {
        uint16_t port = cmd->want_port;
        if (!port) {
            port = ing->next_port;
            ing->next_port = port >= ing->cfg.port_hi ? ing->cfg.port_lo : (uint16_t)(port + 1);
        }
        int udp = bind_socket(ing, SOCK_DGRAM, port);
        int tcp = udp >= 0 ? bind_socket(ing, SOCK_STREAM, port) : -1;
        if (udp >= 0 && tcp >= 0) {
            live->udp_fd = udp;
            live->tcp_fd = tcp;
            cmd->udp_port = cmd->tcp_port = port;
        } else {
            if (udp >= 0)
                close(udp);
            if (tcp >= 0)
                close(tcp);
        }
        if (cmd->want_port)
            break;
    }
    if (live->udp_fd < 0) {
        free(live);
        return CAP_ELIMIT;
    }
    live->udp_ref = (struct fd_ref){.kind = REF_UDP, .live = live};
    live->tcp_ref = (struct fd_ref){.kind = REF_TCP_LISTEN, .live = live};
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &live->udp_ref};
    epoll_ctl(ing->epoll_fd, EPOLL_CTL_ADD, live->udp_fd, &ev);
    ev.data.ptr = &live->tcp_ref;
    epoll_ctl(ing->epoll_fd, EPOLL_CTL_ADD, live->tcp_fd, &ev);
    rebuild_table(live);
    live->next = ing->lives;
    ing->lives = live;
    cmd->live = live;
    atomic_fetch_add_explicit(&ing->counters.active_recordings, 1, memory_order_relaxed);
    return 0;
}

static int close_writer(struct cap_ingest *ing, struct slot *slot)
{
    if (!slot->writer)
        return 0;
    const struct cap_track_writer_stats *st = cap_track_writer_stats(slot->writer);
    bump(&ing->counters.chunk_writes, st->records ? 1 : 0);
    int err = cap_track_writer_close(slot->writer);
    slot->writer = NULL;
    ing->unsynced = true; /* the seal wrote the chunk's index */
    atomic_fetch_sub_explicit(&ing->counters.active_tracks, 1, memory_order_relaxed);
    return err;
}

static int close_live(struct cap_ingest *ing, struct cap_live *live, struct cap_track_totals *totals,
                      size_t total_count)
{
    int err = 0;
    epoll_ctl(ing->epoll_fd, EPOLL_CTL_DEL, live->udp_fd, NULL);
    epoll_ctl(ing->epoll_fd, EPOLL_CTL_DEL, live->tcp_fd, NULL);
    /* What already sits in the socket was accepted by the kernel for us: keep it. */
    (void)receive_udp(ing, live);
    count_kernel_drops(ing, live);
    close(live->udp_fd);
    close(live->tcp_fd);
    for (int i = 0; i < MAX_TCP_CONNS; i++)
        if (live->conns[i])
            close_conn(ing, live, live->conns[i]);
    for (size_t i = 0; i < live->slot_count; i++) {
        if (!live->slots[i])
            continue;
        if (totals && i < total_count) {
            struct cap_track_counters *c = &live->slots[i]->counters;
            totals[i].packets = atomic_load_explicit(&c->packets, memory_order_relaxed);
            totals[i].bytes = atomic_load_explicit(&c->bytes, memory_order_relaxed);
            totals[i].rtcp_packets = atomic_load_explicit(&c->rtcp_packets, memory_order_relaxed);
        }
        int e = close_writer(ing, live->slots[i]);
        if (e && !err)
            err = e;
        free(live->slots[i]);
    }
    for (struct cap_live **pp = &ing->lives; *pp; pp = &(*pp)->next) {
        if (*pp == live) {
            *pp = live->next;
            break;
        }
    }
    free(live->slots);
    free(live->keys);
    free(live->values);
    free(live);
    atomic_fetch_sub_explicit(&ing->counters.active_recordings, 1, memory_order_relaxed);
    /* A stopped recording is on disk when the stop returns. */
    do_sync(ing);
    return err;
}

static int open_writer(struct cap_ingest *ing, struct cap_live *live, struct slot *slot)
{
    struct cap_track_writer_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof(dir), "%s/tracks/%s", live->dir, slot->info.track_id) >= (int)sizeof(dir))
        return CAP_ELIMIT;
    cfg.dir = dir;
    cfg.info = slot->info;
    cfg.max_chunk_bytes = ing->cfg.max_chunk_bytes;
    cfg.max_chunk_ns = ing->cfg.max_chunk_ns;
    cfg.fsync_interval_ns = 0; /* durability comes from the syncer's syncfs */
    cfg.caller_syncs = true;
    size_t buffer = ing->cfg.track_buffer_bytes ? ing->cfg.track_buffer_bytes : DEFAULT_TRACK_BUFFER;
    /* Tracks of equal rates would fill equal buffers at the same moment and write all at
     * once: spread the sizes (by SSRC) so their writes spread out in time. */
    cfg.buffer_bytes = buffer / 2 + (slot->info.ssrc * 2654435761u) % (buffer / 2 + 1);
    int err = cap_track_writer_open(&slot->writer, &cfg);
    /* The chunk file is made now, not on the first packet. */
    if (!err && slot->mode != CAP_TRACK_CLOSED)
        err = cap_track_writer_prepare(slot->writer);
    ing->unsynced = true; /* a new chunk file and its header */
    if (!err)
        atomic_fetch_add_explicit(&ing->counters.active_tracks, 1, memory_order_relaxed);
    return err;
}

static int add_track(struct cap_ingest *ing, struct command *cmd)
{
    struct cap_live *live = cmd->live;
    if (cmd->index >= 65536)
        return CAP_ELIMIT;
    if (cmd->index >= live->slot_count) {
        struct slot **grown = realloc(live->slots, (cmd->index + 1) * sizeof(*grown));
        if (!grown)
            return CAP_ENOMEM;
        for (size_t i = live->slot_count; i <= cmd->index; i++)
            grown[i] = NULL;
        live->slots = grown;
        live->slot_count = cmd->index + 1;
    }
    if (live->slots[cmd->index])
        return CAP_EEXIST;
    struct slot *slot = calloc(1, sizeof(*slot));
    if (!slot)
        return CAP_ENOMEM;
    slot->info = *cmd->info;
    slot->mode = cmd->mode;
    int err = open_writer(ing, live, slot);
    if (err) {
        free(slot);
        return err;
    }
    live->slots[cmd->index] = slot;
    return rebuild_table(live);
}

static struct slot *slot_at(struct cap_live *live, size_t index)
{
    return index < live->slot_count ? live->slots[index] : NULL;
}

static int set_mode(struct cap_ingest *ing, struct command *cmd)
{
    struct slot *slot = slot_at(cmd->live, cmd->index);
    if (!slot)
        return CAP_ENOENT;
    enum cap_track_mode old = slot->mode;
    slot->mode = cmd->mode;
    if (cmd->mode == CAP_TRACK_STANDBY || old == CAP_TRACK_STANDBY)
        cmd->live->standby_reported = false;
    int err = 0;
    if (cmd->mode == CAP_TRACK_CLOSED)
        err = close_writer(ing, slot);
    else if (!slot->writer)
        err = open_writer(ing, cmd->live, slot);
    int e2 = rebuild_table(cmd->live);
    return err ? err : e2;
}

static int set_ssrc(struct cap_ingest *ing, struct command *cmd)
{
    struct slot *slot = slot_at(cmd->live, cmd->index);
    if (!slot)
        return CAP_ENOENT;
    (void)ing;
    slot->info = *cmd->info;
    int err = slot->writer ? cap_track_writer_update_info(slot->writer, cmd->info) : 0;
    int e2 = rebuild_table(cmd->live);
    return err ? err : e2;
}

/* ---- durability ---- */

/* The socket's own drop count (queue full), read exactly rather than from per-packet
 * control messages, which miss drops after a burst's last packet. */
static void count_kernel_drops(struct cap_ingest *ing, struct cap_live *live)
{
    uint32_t meminfo[SK_MEMINFO_VARS];
    socklen_t len = sizeof(meminfo);
    if (getsockopt(live->udp_fd, SOL_SOCKET, SO_MEMINFO, meminfo, &len) != 0 ||
        len < sizeof(uint32_t) * (SK_MEMINFO_DROPS + 1))
        return;
    uint32_t dropped = meminfo[SK_MEMINFO_DROPS];
    if (dropped != live->last_overflow) {
        bump(&ing->counters.kernel_drops, dropped - live->last_overflow);
        live->last_overflow = dropped;
    }
}

static void flush_all(struct cap_ingest *ing)
{
    for (struct cap_live *live = ing->lives; live; live = live->next) {
        count_kernel_drops(ing, live);
        for (size_t i = 0; i < live->slot_count; i++) {
            struct slot *slot = live->slots[i];
            if (slot && slot->writer && cap_track_writer_flush(slot->writer) == 0)
                bump(&ing->counters.chunk_writes, 1);
        }
    }
}

static void do_sync(struct cap_ingest *ing)
{
    int fd = open(ing->sync_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    int64_t t0 = cap_clock_mono_ns();
    syncfs(fd);
    uint64_t took = (uint64_t)(cap_clock_mono_ns() - t0);
    close(fd);
    atomic_fetch_add_explicit(&ing->counters.syncs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&ing->counters.sync_ns_total, took, memory_order_relaxed);
    uint64_t max = atomic_load_explicit(&ing->counters.sync_ns_max, memory_order_relaxed);
    if (took > max)
        atomic_store_explicit(&ing->counters.sync_ns_max, took, memory_order_relaxed);
}

static void *syncer_main(void *arg)
{
    struct cap_ingest *ing = arg;
    pthread_mutex_lock(&ing->sync_lock);
    for (;;) {
        while (!ing->sync_wanted && ing->running)
            pthread_cond_wait(&ing->sync_cond, &ing->sync_lock);
        if (!ing->sync_wanted && !ing->running)
            break;
        ing->sync_wanted = false;
        pthread_mutex_unlock(&ing->sync_lock);
        do_sync(ing);
        pthread_mutex_lock(&ing->sync_lock);
        ing->sync_generation++;
        pthread_cond_broadcast(&ing->sync_cond);
    }
    pthread_mutex_unlock(&ing->sync_lock);
    return NULL;
}

static void request_sync(struct cap_ingest *ing)
{
    pthread_mutex_lock(&ing->sync_lock);
    ing->sync_wanted = true;
    pthread_cond_broadcast(&ing->sync_cond);
    pthread_mutex_unlock(&ing->sync_lock);
}

/* ---- the thread ---- */

static void run_commands(struct cap_ingest *ing)
{
    uint64_t value;
    ssize_t ignored = read(ing->wake_fd, &value, sizeof(value));
    (void)ignored;
    pthread_mutex_lock(&ing->lock);
    struct command *list = ing->commands;
    ing->commands = NULL;
    pthread_mutex_unlock(&ing->lock);
    while (list) {
        struct command *cmd = list;
        list = cmd->next;
        switch (cmd->type) {
        case CMD_OPEN:
            cmd->result = open_live(ing, cmd);
            break;
        case CMD_CLOSE:
            cmd->result = close_live(ing, cmd->live, cmd->totals, cmd->total_count);
            break;
        case CMD_ADD:
            cmd->result = add_track(ing, cmd);
            break;
        case CMD_MODE:
            cmd->result = set_mode(ing, cmd);
            break;
        case CMD_SSRC:
            cmd->result = set_ssrc(ing, cmd);
            break;
        }
        pthread_mutex_lock(&ing->lock);
        cmd->done = true;
        pthread_cond_broadcast(&ing->cond);
        pthread_mutex_unlock(&ing->lock);
    }
}

/* A trickle of packets would wake the thread for each one or two, and on this kind of
 * virtual machine a wake-up costs tens of microseconds: at low rates, let about
 * COALESCE_PACKETS gather in the socket queues first (at most COALESCE_MAX_NS; recording
 * does not care about latency, arrival times are the kernel's). A command cuts the wait
 * short. The rate is a guess from the past, so the longest wait grows back gradually
 * (doubling from 1 ms) after a round with no packets or a command (a new recording, new
 * tracks): traffic that starts at full rate meets short waits, not a queue left alone for
 * COALESCE_MAX_NS that it could overflow. */
static void coalesce(struct cap_ingest *ing, unsigned received)
{
    int64_t now = cap_clock_mono_ns();
    int64_t dt = now - ing->last_wake;
    ing->last_wake = now;
    if (dt > 0) {
        double inst = (double)received * 1e9 / (double)dt;
        ing->rate_pps = ing->rate_pps > 0 ? 0.75 * ing->rate_pps + 0.25 * inst : inst;
    }
    if (!received || ing->rate_pps <= 0) {
        ing->wait_cap_ns = 0;
        return;
    }
    if (ing->backlog)
        return;
    ing->wait_cap_ns = ing->wait_cap_ns * 2 + COALESCE_MIN_NS;
    if (ing->wait_cap_ns > COALESCE_MAX_NS)
        ing->wait_cap_ns = COALESCE_MAX_NS;
    double wait = COALESCE_PACKETS * 1e9 / ing->rate_pps;
    if (wait > (double)ing->wait_cap_ns)
        wait = (double)ing->wait_cap_ns;
    if (wait < COALESCE_MIN_NS)
        return;
    struct pollfd pfd = {.fd = ing->wake_fd, .events = POLLIN};
    struct timespec ts = {0, (long)wait}; /* under a second */
    ppoll(&pfd, 1, &ts, NULL);
}

/* epoll_wait's timeout: none while no recording is live (a command wakes the thread), else
 * until the next flush is due. An idle recorder does not wake up. */
static int wait_ms(const struct cap_ingest *ing)
{
    if (!ing->lives)
        return -1;
    if (ing->cfg.sync_interval_ns <= 0)
        return (int)(TICK_NS / CAP_NS_PER_MS);
    int64_t left = ing->last_flush + ing->cfg.sync_interval_ns - cap_clock_mono_ns();
    if (left <= 0)
        return 0;
    return (int)((left + CAP_NS_PER_MS - 1) / CAP_NS_PER_MS);
}

static void *ingest_main(void *arg)
{
    struct cap_ingest *ing = arg;
    struct epoll_event events[64];
    ing->last_flush = ing->last_wake = cap_clock_mono_ns();
    for (;;) {
        pthread_mutex_lock(&ing->lock);
        bool running = ing->running;
        pthread_mutex_unlock(&ing->lock);
        if (!running)
            break;
        int n = epoll_wait(ing->epoll_fd, events, 64, wait_ms(ing));
        unsigned received = 0;
        bool commands = false;
        ing->backlog = false;
        for (int i = 0; i < n; i++) {
            struct fd_ref *ref = events[i].data.ptr;
            switch (ref->kind) {
            case REF_WAKE:
                /* After the packets of this round: what arrived before a pause or a stop
                 * is recorded, and a command may close a recording other events point at. */
                commands = true;
                break;
            case REF_UDP:
                received += receive_udp(ing, ref->live);
                break;
            case REF_TCP_LISTEN:
                accept_tcp(ing, ref->live);
                break;
            case REF_TCP_CONN:
                read_tcp(ing, ref->live, ref->conn);
                /* a closed connection frees its ref: nothing after it may use it */
                break;
            }
        }
        if (commands) {
            run_commands(ing);
            ing->wait_cap_ns = 0;
        } else {
            coalesce(ing, received);
        }
        int64_t now = cap_clock_mono_ns();
        if (ing->cfg.sync_interval_ns > 0 && now - ing->last_flush >= ing->cfg.sync_interval_ns) {
            ing->last_flush = now;
            flush_all(ing);
            if (ing->unsynced) /* nothing new: nothing to make durable */
                request_sync(ing);
            ing->unsynced = false;
        }
    }
    /* Stopping: close every recording still open, sealing its tracks. */
    while (ing->lives)
        close_live(ing, ing->lives, NULL, 0);
    return NULL;
}

static int post(struct cap_ingest *ing, struct command *cmd)
{
    cmd->done = false;
    pthread_mutex_lock(&ing->lock);
    cmd->next = NULL;
    struct command **tail = &ing->commands;
    while (*tail)
        tail = &(*tail)->next;
    *tail = cmd;
    pthread_mutex_unlock(&ing->lock);
    uint64_t one = 1;
    ssize_t ignored = write(ing->wake_fd, &one, sizeof(one));
    (void)ignored;
    pthread_mutex_lock(&ing->lock);
    while (!cmd->done)
        pthread_cond_wait(&ing->cond, &ing->lock);
    pthread_mutex_unlock(&ing->lock);
    return cmd->result;
}

int cap_ingest_start(struct cap_ingest **out, const struct cap_ingest_config *cfg)
{
    if (cfg->port_lo == 0 || cfg->port_hi < cfg->port_lo)
        return CAP_EINVAL;
    struct cap_ingest *ing = calloc(1, sizeof(*ing));
    if (!ing)
        return CAP_ENOMEM;
    ing->cfg = *cfg;
    snprintf(ing->rtp_host, sizeof(ing->rtp_host), "%s", cfg->rtp_host ? cfg->rtp_host : "127.0.0.1");
    snprintf(ing->sync_dir, sizeof(ing->sync_dir), "%s", cfg->sync_dir ? cfg->sync_dir : ".");
    ing->cfg.rtp_host = ing->rtp_host;
    ing->cfg.sync_dir = ing->sync_dir;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ing->bind_addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ing->bind_addr;
    if (inet_pton(AF_INET, ing->rtp_host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        ing->family = AF_INET;
        ing->bind_len = sizeof(*v4);
    } else if (inet_pton(AF_INET6, ing->rtp_host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        ing->family = AF_INET6;
        ing->bind_len = sizeof(*v6);
    } else {
        free(ing);
        return CAP_EINVAL;
    }
    ing->next_port = cfg->port_lo;
    ing->bufs = malloc(sizeof(*ing->bufs) * RECV_BATCH);
    ing->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    ing->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!ing->bufs || ing->epoll_fd < 0 || ing->wake_fd < 0) {
        free(ing->bufs);
        free(ing);
        return CAP_ENOMEM;
    }
    for (int i = 0; i < RECV_BATCH; i++) {
        ing->iovs[i].iov_base = ing->bufs[i];
        ing->iovs[i].iov_len = RECV_BUF;
        ing->msgs[i].msg_hdr.msg_iov = &ing->iovs[i];
        ing->msgs[i].msg_hdr.msg_iovlen = 1;
    }
    ing->wake_ref.kind = REF_WAKE;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &ing->wake_ref};
    epoll_ctl(ing->epoll_fd, EPOLL_CTL_ADD, ing->wake_fd, &ev);
    pthread_mutex_init(&ing->lock, NULL);
    pthread_cond_init(&ing->cond, NULL);
    pthread_mutex_init(&ing->sync_lock, NULL);
    pthread_cond_init(&ing->sync_cond, NULL);
    ing->running = true;
    pthread_create(&ing->thread, NULL, ingest_main, ing);
    pthread_create(&ing->syncer, NULL, syncer_main, ing);
    *out = ing;
    return 0;
}

void cap_ingest_stop(struct cap_ingest *ing)
{
    if (!ing)
        return;
    pthread_mutex_lock(&ing->lock);
    ing->running = false;
    pthread_mutex_unlock(&ing->lock);
    uint64_t one = 1;
    ssize_t ignored = write(ing->wake_fd, &one, sizeof(one));
    (void)ignored;
    pthread_join(ing->thread, NULL);
    pthread_mutex_lock(&ing->sync_lock);
    pthread_cond_broadcast(&ing->sync_cond);
    pthread_mutex_unlock(&ing->sync_lock);
    pthread_join(ing->syncer, NULL);
    close(ing->epoll_fd);
    close(ing->wake_fd);
    free(ing->bufs);
    free(ing);
}

int cap_ingest_open(struct cap_ingest *ing, const char *recording_id, const char *dir,
                    uint16_t want_port, struct cap_live **out, uint16_t *udp_port, uint16_t *tcp_port)
{
    struct command cmd = {.type = CMD_OPEN, .recording_id = recording_id, .dir = dir, .want_port = want_port};
    int err = post(ing, &cmd);
    if (!err) {
        *out = cmd.live;
        *udp_port = cmd.udp_port;
        *tcp_port = cmd.tcp_port;
    }
    return err;
}

int cap_ingest_close(struct cap_ingest *ing, struct cap_live *live, struct cap_track_totals *totals,
                     size_t count)
{
    struct command cmd = {.type = CMD_CLOSE, .live = live, .totals = totals, .total_count = count};
    return post(ing, &cmd);
}

int cap_ingest_add_track(struct cap_ingest *ing, struct cap_live *live, size_t index,
                         const struct cap_track_info *info, enum cap_track_mode mode)
{
    struct command cmd = {.type = CMD_ADD, .live = live, .index = index, .info = info, .mode = mode};
    return post(ing, &cmd);
}

int cap_ingest_set_mode(struct cap_ingest *ing, struct cap_live *live, size_t index,
                        enum cap_track_mode mode)
{
    struct command cmd = {.type = CMD_MODE, .live = live, .index = index, .mode = mode};
    return post(ing, &cmd);
}

int cap_ingest_set_ssrc(struct cap_ingest *ing, struct cap_live *live, size_t index,
                        const struct cap_track_info *info)
{
    struct command cmd = {.type = CMD_SSRC, .live = live, .index = index, .info = info};
    return post(ing, &cmd);
}

const struct cap_track_counters *cap_ingest_track_counters(struct cap_live *live, size_t index)
{
    /* slots only grows on the ingest thread while the control plane waits on a command,
     * and the control plane is the only caller: no race with the array itself. */
    struct slot *slot = index < live->slot_count ? live->slots[index] : NULL;
    return slot ? &slot->counters : NULL;
}
