/* RTP load generator: drives capstan's UDP ingest with N RTP tracks (one SSRC each) at a set
 * aggregate packet rate, optionally with RTCP sender reports muxed on the same port, so a run
 * can find the highest sustained rate the recorder takes with zero loss. */
#include "util/bytes.h"
#include "util/clock.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RTP_HEADER_SIZE 12
#define RTCP_SR_SIZE 28
#define SLOT_HEADER_SIZE 32 /* room for either an RTP header or a whole RTCP SR */
#define MAX_UDP_PAYLOAD 65507
#define MAX_TRACKS 1000000
#define MAX_PORTS 1024
#define MAX_BATCH 1024
#define DEFAULT_BATCH 64
#define DEFAULT_GSO_BATCH 256
#define MAX_GSO_SEGMENTS 64 /* UDP_MAX_SEGMENTS of older kernels */
#define MAX_RATE 100000000ull
#define PACKETS_PER_FRAME 10
#define TIMESTAMP_PER_FRAME 3000
#define PAYLOAD_PATTERN 0xa5
#define REPORT_TRACKS_MAX 64 /* per-track detail in JSON only up to this many tracks */
/* "Behind": lag past 1 s, or past a tenth of a shorter run but never under 20 ms. */
#define BEHIND_LIMIT_NS CAP_NS_PER_SEC
#define BEHIND_FLOOR_NS (20 * CAP_NS_PER_MS)
#define MAX_BATCH_SPAN_NS CAP_NS_PER_MS /* a batch never covers more than 1 ms of schedule */
#define RETRY_PAUSE_NS 20000            /* between retries after ENOBUFS/EAGAIN */
#define ERRNO_SLOTS 256

struct track {
    uint32_t ssrc;
    uint16_t first_seq;
    uint16_t next_seq;
    uint32_t first_timestamp;
    uint16_t port_index;
    uint64_t built; /* RTP packets handed to sendmmsg, whether or not they went out */
    uint64_t sent;  /* RTP packets the kernel accepted */
    uint64_t rtcp_sent;
};

struct options {
    const char *host;
    uint16_t ports[MAX_PORTS];
    unsigned port_count;
    uint32_t track_count;
    uint32_t ssrc_base;
    uint8_t payload_type;
    uint32_t size;
    uint64_t rate;
    double seconds;
    uint64_t packets; /* 0: derived from seconds */
    unsigned batch;   /* 0 until given: the default depends on --gso */
    uint64_t rtcp_every;
    bool gso;
    bool json;
    uint64_t seed;
    bool seed_given;
};

/* Who a message of the current batch speaks for, so a failed send can be taken back out of
 * the counters and a message can be readdressed. RTP messages cover packets
 * [first_packet, first_packet + packet_count) of the batch; see packet_tracks. */
struct message_owner {
    uint32_t track; /* RTCP: the track the SR describes */
    uint32_t first_packet;
    uint32_t packet_count;
    uint16_t port_index;
    bool rtcp;
};

struct sender {
    int fd;
    bool connected;
    bool disconnected_on_refusal; /* see disconnect() */
    struct sockaddr_storage destinations[MAX_PORTS];
    socklen_t destination_length;
    unsigned gso_segments;     /* 0: one datagram per message; else up to this many per message */
    unsigned message_capacity; /* a batch's RTP messages plus one RTCP SR per packet at most */
    struct mmsghdr *messages;
    struct iovec *iovecs;         /* two per message */
    struct message_owner *owners; /* one per message */
    uint32_t *packet_tracks;      /* track of each RTP packet slot of the batch */
    uint8_t *headers;             /* SLOT_HEADER_SIZE per message: RTP headers, RTCP SRs */
    uint8_t *payload;             /* the one payload every plain RTP message points at */
    size_t payload_size;
    uint8_t *gso_packets;          /* GSO: whole packets of the batch, back to back */
    uint32_t *rtcp_tracks;         /* GSO: SRs held until after the batch's RTP messages */
    unsigned port_fill[MAX_PORTS]; /* GSO: next free packet slot of each port's group */
};

struct totals {
    const char *socket_mode;
    unsigned gso_segments;
    uint64_t packets;
    uint64_t bytes;
    uint64_t rtcp;
    uint64_t failed; /* dropped after a non-retryable error */
    uint64_t send_calls;
    uint64_t retries;
    uint64_t errors[ERRNO_SLOTS];
    int64_t max_lag_ns;
    bool behind;
    bool interrupted;
};

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int signal_number)
{
    (void)signal_number;
    stop_requested = 1;
}

static void usage(FILE *out, const char *program)
{
    fprintf(
        out,
        "usage: %s [options]\n"
        "Sends RTP (and optionally RTCP SR) over UDP at a paced aggregate rate.\n"
        "  --host ADDR         destination IPv4 or IPv6 literal (default 127.0.0.1)\n"
        "  --port P            destination port (required, or --ports); all tracks go to it\n"
        "  --ports P1,P2,...   spread tracks round-robin over several ports\n"
        "  --tracks N          number of tracks/SSRCs (default 1)\n"
        "  --ssrc-base B       SSRC of track 0; track i gets B+i (default 0x10000000)\n"
        "  --pt N              RTP payload type (default 96)\n"
        "  --size BYTES        RTP packet size incl. 12-byte header, 12..65507 (default 1200)\n"
        "  --rate PPS          aggregate RTP packets/s over all tracks (default 100000)\n"
        "  --seconds S         run length (default 10); sends rate*S packets\n"
        "  --packets N         send exactly N RTP packets instead\n"
        "                      (--seconds and --packets: whichever is given last wins)\n"
        "  --batch N           packets per sendmmsg call (default %d, with --gso %d, max %d);\n"
        "                      a batch is also capped at 1 ms worth of the rate, for smooth\n"
        "                      pacing\n"
        "  --rtcp-every N      after every N-th packet of a track send an RTCP SR for it on\n"
        "                      the same port (RFC 5761); 0 = none (default). RTCP is extra:\n"
        "                      not counted in the rate, packets or bytes\n"
        "  --gso               UDP GSO (UDP_SEGMENT): one send carries up to %d packets of a\n"
        "                      port, which the kernel splits into ordinary datagrams; about\n"
        "                      3x the rate on loopback. Captures on lo show the unsplit\n"
        "                      super-packets, the datagrams of one send share a kernel arrival\n"
        "                      timestamp, and within a batch packets are grouped by port and\n"
        "                      RTCP goes last\n"
        "  --seed N            seed for the random first seq/timestamp of each track\n"
        "  --json              print the report as one JSON object\n"
        "  --help              this text\n"
        "Tracks interleave round-robin, so each runs at rate/N. Pacing is a token bucket on\n"
        "CLOCK_MONOTONIC; if the sender falls more than 1 s (or, in runs shorter than 10 s,\n"
        "a tenth of the run, at least 20 ms) behind schedule the report says \"behind\".\n"
        "Exit status: 0 ok, 1 runtime error, 2 bad usage.\n",
        program, DEFAULT_BATCH, DEFAULT_GSO_BATCH, MAX_BATCH, MAX_GSO_SEGMENTS);
}

static void bad_usage(const char *program, const char *message, const char *value)
{
    fprintf(stderr, "%s: %s%s%s\n", program, message, value ? ": " : "", value ? value : "");
    fprintf(stderr, "try '%s --help'\n", program);
    exit(2);
}

/* Unsigned integer in decimal or 0x hex (never octal: "010" is ten), whole string, within
 * [min, max]. */
static bool parse_unsigned(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    bool hex = text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
    const char *digits = hex ? text + 2 : text;
    if (!(hex ? isxdigit((unsigned char)digits[0]) : isdigit((unsigned char)digits[0])))
        return false; /* strtoull would take "", " 5" and "-5" */
    char *end;
    errno = 0;
    unsigned long long value = strtoull(digits, &end, hex ? 16 : 10);
    if (errno != 0 || *end != '\0' || value < min || value > max)
        return false;
    *out = value;
    return true;
}

static uint64_t require_unsigned(const char *program, const char *option, const char *text,
                                 uint64_t min, uint64_t max)
{
    uint64_t value;
    if (!parse_unsigned(text, min, max, &value)) {
        char message[160];
        snprintf(message, sizeof message, "%s wants an integer in %llu..%llu", option,
                 (unsigned long long)min, (unsigned long long)max);
        bad_usage(program, message, text);
    }
    return value;
}

static void parse_port_list(const char *program, const char *text, struct options *opt)
{
    opt->port_count = 0;
    const char *cursor = text;
    for (;;) {
        const char *comma = strchr(cursor, ',');
        size_t length = comma ? (size_t)(comma - cursor) : strlen(cursor);
        char item[16];
        uint64_t port;
        if (length == 0 || length >= sizeof item)
            bad_usage(program, "--ports wants a comma-separated list of ports", text);
        memcpy(item, cursor, length);
        item[length] = '\0';
        if (!parse_unsigned(item, 1, 65535, &port))
            bad_usage(program, "--ports: not a port in 1..65535", item);
        if (opt->port_count == MAX_PORTS)
            bad_usage(program, "--ports: too many ports", text);
        opt->ports[opt->port_count++] = (uint16_t)port;
        if (!comma)
            break;
        cursor = comma + 1;
    }
}

static void parse_options(int argc, char **argv, struct options *opt)
{
    enum {
        OPT_HOST = 256,
        OPT_PORT,
        OPT_PORTS,
        OPT_TRACKS,
        OPT_SSRC_BASE,
        OPT_PT,
        OPT_SIZE,
        OPT_RATE,
        OPT_SECONDS,
        OPT_PACKETS,
        OPT_BATCH,
        OPT_RTCP_EVERY,
        OPT_GSO,
        OPT_SEED,
        OPT_JSON,
        OPT_HELP,
    };
    static const struct option long_options[] = {
        {"host", required_argument, NULL, OPT_HOST},
        {"port", required_argument, NULL, OPT_PORT},
        {"ports", required_argument, NULL, OPT_PORTS},
        {"tracks", required_argument, NULL, OPT_TRACKS},
        {"ssrc-base", required_argument, NULL, OPT_SSRC_BASE},
        {"pt", required_argument, NULL, OPT_PT},
        {"size", required_argument, NULL, OPT_SIZE},
        {"rate", required_argument, NULL, OPT_RATE},
        {"seconds", required_argument, NULL, OPT_SECONDS},
        {"packets", required_argument, NULL, OPT_PACKETS},
        {"batch", required_argument, NULL, OPT_BATCH},
        {"rtcp-every", required_argument, NULL, OPT_RTCP_EVERY},
        {"gso", no_argument, NULL, OPT_GSO},
        {"seed", required_argument, NULL, OPT_SEED},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *program = argv[0];
    *opt = (struct options){
        .host = "127.0.0.1",
        .track_count = 1,
        .ssrc_base = 0x10000000u,
        .payload_type = 96,
        .size = 1200,
        .rate = 100000,
        .seconds = 10.0,
    };
    int c;
    while ((c = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_HOST:
            opt->host = optarg;
            break;
        case OPT_PORT:
            opt->ports[0] = (uint16_t)require_unsigned(program, "--port", optarg, 1, 65535);
            opt->port_count = 1;
            break;
        case OPT_PORTS:
            parse_port_list(program, optarg, opt);
            break;
        case OPT_TRACKS:
            opt->track_count =
                (uint32_t)require_unsigned(program, "--tracks", optarg, 1, MAX_TRACKS);
            break;
        case OPT_SSRC_BASE:
            opt->ssrc_base =
                (uint32_t)require_unsigned(program, "--ssrc-base", optarg, 0, UINT32_MAX);
            break;
        case OPT_PT:
            opt->payload_type = (uint8_t)require_unsigned(program, "--pt", optarg, 0, 127);
            break;
        case OPT_SIZE:
            opt->size = (uint32_t)require_unsigned(program, "--size", optarg, RTP_HEADER_SIZE,
                                                   MAX_UDP_PAYLOAD);
            break;
        case OPT_RATE:
            opt->rate = require_unsigned(program, "--rate", optarg, 1, MAX_RATE);
            break;
        case OPT_SECONDS: {
            char *end;
            errno = 0;
            double seconds = strtod(optarg, &end);
            if (errno != 0 || end == optarg || *end != '\0' || !(seconds > 0) || seconds > 1e6)
                bad_usage(program, "--seconds wants a number in (0, 1e6]", optarg);
            opt->seconds = seconds;
            opt->packets = 0;
            break;
        }
        case OPT_PACKETS:
            opt->packets = require_unsigned(program, "--packets", optarg, 1, UINT64_MAX / 2);
            break;
        case OPT_BATCH:
            opt->batch = (unsigned)require_unsigned(program, "--batch", optarg, 1, MAX_BATCH);
            break;
        case OPT_RTCP_EVERY:
            opt->rtcp_every = require_unsigned(program, "--rtcp-every", optarg, 0, UINT32_MAX);
            break;
        case OPT_SEED:
            opt->seed = require_unsigned(program, "--seed", optarg, 0, UINT64_MAX);
            opt->seed_given = true;
            break;
        case OPT_GSO:
            opt->gso = true;
            break;
        case OPT_JSON:
            opt->json = true;
            break;
        case OPT_HELP:
            usage(stdout, program);
            exit(0);
        default:
            fprintf(stderr, "try '%s --help'\n", program);
            exit(2);
        }
    }
    if (optind < argc)
        bad_usage(program, "unexpected argument", argv[optind]);
    if (opt->port_count == 0)
        bad_usage(program, "a destination is required: --port P or --ports P1,P2,...", NULL);
}

static uint64_t total_packets(const struct options *opt)
{
    if (opt->packets)
        return opt->packets;
    double packets = (double)opt->rate * opt->seconds;
    return packets < 1 ? 1 : (uint64_t)(packets + 0.5);
}

/* splitmix64: only needs to scatter first seq/timestamp values, not to be unpredictable. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static struct track *make_tracks(const struct options *opt)
{
    struct track *tracks = calloc(opt->track_count, sizeof *tracks);
    if (!tracks)
        return NULL;
    uint64_t state = opt->seed;
    for (uint32_t i = 0; i < opt->track_count; i++) {
        uint64_t random = next_random(&state);
        tracks[i].ssrc = opt->ssrc_base + i;
        tracks[i].first_seq = (uint16_t)random;
        tracks[i].next_seq = tracks[i].first_seq;
        tracks[i].first_timestamp = (uint32_t)(random >> 32);
        tracks[i].port_index = (uint16_t)(i % opt->port_count);
    }
    return tracks;
}

static int resolve_destinations(const struct options *opt, struct sender *sender)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_DGRAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *result;
    int status = getaddrinfo(opt->host, "9", &hints, &result);
    if (status != 0) {
        fprintf(stderr, "loadgen: --host %s: %s\n", opt->host, gai_strerror(status));
        return -1;
    }
    sender->fd = socket(result->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sender->fd < 0) {
        perror("loadgen: socket");
        freeaddrinfo(result);
        return -1;
    }
    sender->destination_length = result->ai_addrlen;
    for (unsigned i = 0; i < opt->port_count; i++) {
        struct sockaddr_storage *destination = &sender->destinations[i];
        memcpy(destination, result->ai_addr, result->ai_addrlen);
        if (result->ai_family == AF_INET6)
            ((struct sockaddr_in6 *)destination)->sin6_port = htons(opt->ports[i]);
        else
            ((struct sockaddr_in *)destination)->sin_port = htons(opt->ports[i]);
    }
    freeaddrinfo(result);

    /* Loopback orphans the skb at transmit, so this rarely binds; it helps on real NICs. */
    int buffer = 4 << 20;
    setsockopt(sender->fd, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);

    /* One port: connect, so the kernel skips a route lookup per packet. Several ports share
     * one unconnected socket with a destination per message. */
    if (opt->port_count == 1) {
        if (connect(sender->fd, (struct sockaddr *)&sender->destinations[0],
                    sender->destination_length) != 0) {
            perror("loadgen: connect");
            return -1;
        }
        sender->connected = true;
    }
    return 0;
}

static int make_sender(const struct options *opt, struct sender *sender)
{
    *sender = (struct sender){.fd = -1};
    if (resolve_destinations(opt, sender) != 0)
        return -1;
    unsigned batch = opt->batch;
    sender->message_capacity = 2 * batch;
    sender->payload_size = opt->size - RTP_HEADER_SIZE;
    sender->messages = calloc(sender->message_capacity, sizeof *sender->messages);
    sender->iovecs = calloc(2 * (size_t)sender->message_capacity, sizeof *sender->iovecs);
    sender->owners = calloc(sender->message_capacity, sizeof *sender->owners);
    sender->packet_tracks = calloc(batch, sizeof *sender->packet_tracks);
    sender->headers = calloc(sender->message_capacity, SLOT_HEADER_SIZE);
    sender->payload = malloc(sender->payload_size ? sender->payload_size : 1);
    if (!sender->messages || !sender->iovecs || !sender->owners || !sender->packet_tracks ||
        !sender->headers || !sender->payload)
        goto out_of_memory;
    memset(sender->payload, PAYLOAD_PATTERN, sender->payload_size);
    for (unsigned i = 0; i < sender->message_capacity; i++)
        sender->messages[i].msg_hdr.msg_iov = &sender->iovecs[2 * i];

    unsigned segments = MAX_UDP_PAYLOAD / opt->size;
    if (opt->gso && segments >= 2) {
        /* Datagrams no longer than gso_size go out unsplit, so RTCP SRs share the socket. */
        int gso_size = (int)opt->size;
        if (setsockopt(sender->fd, IPPROTO_UDP, UDP_SEGMENT, &gso_size, sizeof gso_size) != 0) {
            perror("loadgen: --gso: setsockopt UDP_SEGMENT");
            return -1;
        }
        sender->gso_segments = segments < MAX_GSO_SEGMENTS ? segments : MAX_GSO_SEGMENTS;
        sender->gso_packets = malloc((size_t)batch * opt->size);
        sender->rtcp_tracks = calloc(batch, sizeof *sender->rtcp_tracks);
        if (!sender->gso_packets || !sender->rtcp_tracks)
            goto out_of_memory;
        /* Payloads are written once; building a batch only rewrites the 12-byte headers. */
        memset(sender->gso_packets, PAYLOAD_PATTERN, (size_t)batch * opt->size);
    }
    return 0;

out_of_memory:
    fprintf(stderr, "loadgen: out of memory\n");
    return -1;
}

static void free_sender(struct sender *sender)
{
    if (sender->fd >= 0)
        close(sender->fd);
    free(sender->messages);
    free(sender->iovecs);
    free(sender->owners);
    free(sender->packet_tracks);
    free(sender->headers);
    free(sender->payload);
    free(sender->gso_packets);
    free(sender->rtcp_tracks);
}

static void address_message(struct sender *sender, unsigned message)
{
    struct msghdr *header = &sender->messages[message].msg_hdr;
    if (sender->connected) {
        header->msg_name = NULL;
        header->msg_namelen = 0;
    } else {
        header->msg_name = &sender->destinations[sender->owners[message].port_index];
        header->msg_namelen = sender->destination_length;
    }
}

/* Points message at one or two buffers and records who it speaks for. */
static void set_message(struct sender *sender, unsigned message, struct message_owner owner,
                        void *first, size_t first_size, void *second, size_t second_size)
{
    struct iovec *iov = &sender->iovecs[2 * message];
    iov[0] = (struct iovec){.iov_base = first, .iov_len = first_size};
    iov[1] = (struct iovec){.iov_base = second, .iov_len = second_size};
    sender->messages[message].msg_hdr.msg_iovlen = second_size ? 2 : 1;
    sender->owners[message] = owner;
    address_message(sender, message);
}

/* Writes the next RTP header of track: marker on the last packet of each 10-packet frame,
 * timestamp advancing 3000 per frame. */
static void write_rtp_header(uint8_t *p, uint8_t payload_type, struct track *track)
{
    uint64_t index = track->built;
    bool marker = index % PACKETS_PER_FRAME == PACKETS_PER_FRAME - 1;
    p[0] = 0x80;
    p[1] = (uint8_t)((marker ? 0x80 : 0) | payload_type);
    cap_store_be16(p + 2, track->next_seq);
    cap_store_be32(p + 4, track->first_timestamp +
                              (uint32_t)(index / PACKETS_PER_FRAME) * TIMESTAMP_PER_FRAME);
    cap_store_be32(p + 8, track->ssrc);
    track->next_seq++;
    track->built++;
    track->sent++; /* taken back by send_batch if the kernel refuses it */
}

/* RFC 3550 6.4.1 sender report with no report blocks, describing the packets built so far. */
static void write_rtcp_sr(uint8_t *p, const struct track *track, size_t payload_size,
                          uint64_t ntp_now)
{
    uint64_t last_index = track->built - 1;
    p[0] = 0x80;
    p[1] = 200;
    cap_store_be16(p + 2, RTCP_SR_SIZE / 4 - 1);
    cap_store_be32(p + 4, track->ssrc);
    cap_store_be64(p + 8, ntp_now);
    cap_store_be32(p + 16, track->first_timestamp +
                               (uint32_t)(last_index / PACKETS_PER_FRAME) * TIMESTAMP_PER_FRAME);
    cap_store_be32(p + 20, (uint32_t)track->built);
    cap_store_be32(p + 24, (uint32_t)(track->built * payload_size));
}

static bool rtcp_due(const struct options *opt, const struct track *track)
{
    return opt->rtcp_every && track->built % opt->rtcp_every == 0;
}

/* One message per RTP packet (its own header plus the shared payload), each SR right after
 * the packet that made it due. Returns the number of messages. */
static unsigned build_plain_batch(struct sender *sender, const struct options *opt,
                                  struct track *tracks, uint32_t *next_track, unsigned count,
                                  uint64_t ntp_now, struct totals *totals)
{
    unsigned messages = 0;
    for (unsigned i = 0; i < count; i++) {
        uint32_t t = *next_track;
        struct track *track = &tracks[t];
        uint8_t *header = sender->headers + (size_t)messages * SLOT_HEADER_SIZE;
        write_rtp_header(header, opt->payload_type, track);
        sender->packet_tracks[i] = t;
        struct message_owner owner = {
            .track = t, .first_packet = i, .packet_count = 1, .port_index = track->port_index};
        set_message(sender, messages++, owner, header, RTP_HEADER_SIZE, sender->payload,
                    sender->payload_size);
        if (rtcp_due(opt, track)) {
            header = sender->headers + (size_t)messages * SLOT_HEADER_SIZE;
            write_rtcp_sr(header, track, sender->payload_size, ntp_now);
            owner =
                (struct message_owner){.track = t, .port_index = track->port_index, .rtcp = true};
            set_message(sender, messages++, owner, header, RTCP_SR_SIZE, NULL, 0);
            track->rtcp_sent++;
            totals->rtcp++;
        }
        if (++*next_track == opt->track_count)
            *next_track = 0;
    }
    return messages;
}

/* GSO: the batch's packets are grouped by port (stable, so each track stays in order), laid
 * back to back, and each run of up to gso_segments packets for one port is one message the
 * kernel splits into datagrams. SRs follow the batch's RTP messages. */
static unsigned build_gso_batch(struct sender *sender, const struct options *opt,
                                struct track *tracks, uint32_t *next_track, unsigned count,
                                uint64_t ntp_now, struct totals *totals)
{
    unsigned *fill = sender->port_fill;
    memset(fill, 0, opt->port_count * sizeof *fill);
    uint32_t t = *next_track;
    for (unsigned i = 0; i < count; i++) {
        fill[tracks[t].port_index]++;
        if (++t == opt->track_count)
            t = 0;
    }
    unsigned slot = 0;
    for (unsigned port = 0; port < opt->port_count; port++) {
        unsigned in_port = fill[port];
        fill[port] = slot;
        slot += in_port;
    }

    unsigned rtcp_count = 0;
    for (unsigned i = 0; i < count; i++) {
        t = *next_track;
        struct track *track = &tracks[t];
        slot = fill[track->port_index]++;
        write_rtp_header(sender->gso_packets + (size_t)slot * opt->size, opt->payload_type, track);
        sender->packet_tracks[slot] = t;
        if (rtcp_due(opt, track)) {
            write_rtcp_sr(sender->headers + (size_t)rtcp_count * SLOT_HEADER_SIZE, track,
                          sender->payload_size, ntp_now);
            sender->rtcp_tracks[rtcp_count++] = t;
            track->rtcp_sent++;
            totals->rtcp++;
        }
        if (++*next_track == opt->track_count)
            *next_track = 0;
    }

    /* fill[port] now ends each port's group; groups are consecutive from slot 0. */
    unsigned messages = 0, group_start = 0;
    for (unsigned port = 0; port < opt->port_count; port++) {
        for (unsigned first = group_start; first < fill[port]; first += sender->gso_segments) {
            unsigned run = fill[port] - first;
            if (run > sender->gso_segments)
                run = sender->gso_segments;
            struct message_owner owner = {.track = sender->packet_tracks[first],
                                          .first_packet = first,
                                          .packet_count = run,
                                          .port_index = (uint16_t)port};
            set_message(sender, messages++, owner, sender->gso_packets + (size_t)first * opt->size,
                        (size_t)run * opt->size, NULL, 0);
        }
        group_start = fill[port];
    }
    for (unsigned i = 0; i < rtcp_count; i++) {
        const struct track *track = &tracks[sender->rtcp_tracks[i]];
        struct message_owner owner = {
            .track = sender->rtcp_tracks[i], .port_index = track->port_index, .rtcp = true};
        set_message(sender, messages++, owner, sender->headers + (size_t)i * SLOT_HEADER_SIZE,
                    RTCP_SR_SIZE, NULL, 0);
    }
    return messages;
}

static void pause_ns(int64_t ns)
{
    struct timespec delay = {.tv_sec = 0, .tv_nsec = ns};
    nanosleep(&delay, NULL);
}

/* On loopback every packet to a closed port draws an ICMP port unreachable (loopback is exempt
 * from ICMP rate limits), and a connected socket reports each one as ECONNREFUSED on the next
 * send, which ends a sendmmsg batch after one packet. Nobody is listening, so the saved route
 * lookup is worth nothing: dissolve the connection and address the remaining messages. */
static void disconnect(struct sender *sender, unsigned first_message, unsigned count)
{
    struct sockaddr unspecified = {.sa_family = AF_UNSPEC};
    if (connect(sender->fd, &unspecified, sizeof unspecified) != 0)
        return; /* stay connected; the caller retries */
    sender->connected = false;
    sender->disconnected_on_refusal = true;
    for (unsigned message = first_message; message < count; message++)
        address_message(sender, message);
}

/* Takes a message the kernel refused back out of the counters. */
static void count_failed(const struct sender *sender, unsigned message, const struct options *opt,
                         struct track *tracks, struct totals *totals)
{
    const struct message_owner *owner = &sender->owners[message];
    if (owner->rtcp) {
        tracks[owner->track].rtcp_sent--;
        totals->rtcp--;
        totals->failed++;
        return;
    }
    for (uint32_t i = 0; i < owner->packet_count; i++)
        tracks[sender->packet_tracks[owner->first_packet + i]].sent--;
    totals->packets -= owner->packet_count;
    totals->bytes -= (uint64_t)owner->packet_count * opt->size;
    totals->failed += owner->packet_count;
}

/* Hands messages [0, count) to the kernel. ENOBUFS/EAGAIN are retried after a short pause, as
 * is ECONNREFUSED (a stale ICMP error, reported before the packet is queued), which first
 * turns a connected socket into an unconnected one. Any other error drops that one message. */
static void send_batch(struct sender *sender, unsigned count, const struct options *opt,
                       struct track *tracks, struct totals *totals)
{
    unsigned offset = 0;
    while (offset < count) {
        int sent = sendmmsg(sender->fd, sender->messages + offset, count - offset, 0);
        totals->send_calls++;
        if (sent > 0) {
            offset += (unsigned)sent;
            continue;
        }
        int error = sent == 0 ? EAGAIN : errno;
        totals->errors[error < ERRNO_SLOTS ? error : 0]++;
        if (error == EINTR)
            continue;
        if (error == ECONNREFUSED && sender->connected) {
            disconnect(sender, offset, count);
            continue;
        }
        if (error == ENOBUFS || error == EAGAIN || error == ECONNREFUSED) {
            totals->retries++;
            pause_ns(RETRY_PAUSE_NS);
            continue;
        }
        count_failed(sender, offset, opt, tracks, totals);
        offset++;
    }
}

static int64_t due_time_ns(int64_t start, uint64_t packet_count, uint64_t rate)
{
    /* Split so packet_count * 1e9 cannot overflow. */
    return start + (int64_t)(packet_count / rate) * CAP_NS_PER_SEC +
           (int64_t)((packet_count % rate) * (uint64_t)CAP_NS_PER_SEC / rate);
}

static void sleep_until(int64_t deadline)
{
    struct timespec ts = {.tv_sec = deadline / CAP_NS_PER_SEC,
                          .tv_nsec = deadline % CAP_NS_PER_SEC};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
        if (stop_requested)
            return;
    }
}

static int64_t run(const struct options *opt, struct sender *sender, struct track *tracks,
                   uint64_t total, struct totals *totals)
{
    uint32_t next_track = 0;
    uint64_t scheduled = 0;
    /* A short run that ends 0.9 s late at 3 s has not kept the rate either. */
    int64_t behind_limit = due_time_ns(0, total, opt->rate) / 10;
    if (behind_limit > BEHIND_LIMIT_NS)
        behind_limit = BEHIND_LIMIT_NS;
    if (behind_limit < BEHIND_FLOOR_NS)
        behind_limit = BEHIND_FLOOR_NS;
    int64_t start = cap_clock_mono_ns();
    while (scheduled < total) {
        if (stop_requested) {
            totals->interrupted = true;
            break;
        }
        unsigned count =
            total - scheduled < opt->batch ? (unsigned)(total - scheduled) : opt->batch;
        /* Token bucket, empty at start and filling at the rate: a batch may go once a token
         * for each of its packets has accrued, so the last one is due at total/rate. */
        int64_t due = due_time_ns(start, scheduled + count, opt->rate);
        int64_t now = cap_clock_mono_ns();
        if (now < due) {
            sleep_until(due);
        } else {
            int64_t lag = now - due;
            if (lag > totals->max_lag_ns)
                totals->max_lag_ns = lag;
            if (lag > behind_limit)
                totals->behind = true;
        }

        uint64_t ntp_now = opt->rtcp_every ? cap_clock_unix_ns_to_ntp(cap_clock_wall_ns()) : 0;
        unsigned messages =
            sender->gso_segments
                ? build_gso_batch(sender, opt, tracks, &next_track, count, ntp_now, totals)
                : build_plain_batch(sender, opt, tracks, &next_track, count, ntp_now, totals);
        totals->packets += count;
        totals->bytes += (uint64_t)count * opt->size;
        send_batch(sender, messages, opt, tracks, totals);
        scheduled += count;
    }
    return cap_clock_mono_ns() - start;
}

static const char *errno_name(int error)
{
    const char *name = error ? strerrorname_np(error) : NULL;
    return name ? name : "other";
}

static void print_json(const struct options *opt, const struct track *tracks, uint64_t total,
                       const struct totals *totals, double seconds, uint64_t min_sent,
                       uint64_t max_sent)
{
    printf("{\"host\":\"%s\",\"ports\":[", opt->host);
    for (unsigned i = 0; i < opt->port_count; i++)
        printf("%s%u", i ? "," : "", opt->ports[i]);
    printf("],\"track_count\":%u,\"ssrc_base\":%u,\"pt\":%u,\"size\":%u,\"target_rate\":%llu,"
           "\"target_packets\":%llu,\"batch\":%u,\"gso_segments\":%u,\"rtcp_every\":%llu,"
           "\"seed\":%llu,",
           opt->track_count, opt->ssrc_base, opt->payload_type, opt->size,
           (unsigned long long)opt->rate, (unsigned long long)total, opt->batch,
           totals->gso_segments, (unsigned long long)opt->rtcp_every,
           (unsigned long long)opt->seed);
    printf("\"packets_sent\":%llu,\"bytes_sent\":%llu,\"rtcp_sent\":%llu,\"failed\":%llu,"
           "\"seconds\":%.6f,\"pps\":%.1f,\"mbps\":%.2f,\"behind\":%s,\"max_lag_ms\":%.3f,"
           "\"interrupted\":%s,\"per_track_min\":%llu,\"per_track_max\":%llu,"
           "\"socket\":\"%s\",\"send_calls\":%llu,\"retries\":%llu,\"errors\":{",
           (unsigned long long)totals->packets, (unsigned long long)totals->bytes,
           (unsigned long long)totals->rtcp, (unsigned long long)totals->failed, seconds,
           seconds > 0 ? (double)totals->packets / seconds : 0.0,
           seconds > 0 ? (double)totals->bytes * 8 / seconds / 1e6 : 0.0,
           totals->behind ? "true" : "false", (double)totals->max_lag_ns / 1e6,
           totals->interrupted ? "true" : "false", (unsigned long long)min_sent,
           (unsigned long long)max_sent, totals->socket_mode,
           (unsigned long long)totals->send_calls, (unsigned long long)totals->retries);
    bool first = true;
    for (int e = 0; e < ERRNO_SLOTS; e++) {
        if (!totals->errors[e])
            continue;
        printf("%s\"%s\":%llu", first ? "" : ",", errno_name(e),
               (unsigned long long)totals->errors[e]);
        first = false;
    }
    printf("}");
    if (opt->track_count <= REPORT_TRACKS_MAX) {
        printf(",\"tracks\":[");
        for (uint32_t i = 0; i < opt->track_count; i++) {
            const struct track *t = &tracks[i];
            printf("%s{\"ssrc\":%u,\"port\":%u,\"first_seq\":%u,", i ? "," : "", t->ssrc,
                   opt->ports[t->port_index], t->first_seq);
            if (t->built)
                printf("\"last_seq\":%u,", (uint16_t)(t->next_seq - 1));
            else
                printf("\"last_seq\":null,");
            printf("\"first_timestamp\":%u,\"packets\":%llu,\"rtcp\":%llu}", t->first_timestamp,
                   (unsigned long long)t->sent, (unsigned long long)t->rtcp_sent);
        }
        printf("]");
    }
    printf("}\n");
}

static void print_text(const struct options *opt, uint64_t total, const struct totals *totals,
                       double seconds, uint64_t min_sent, uint64_t max_sent)
{
    printf("loadgen: %llu RTP packets (%llu bytes) and %llu RTCP SR to %s port%s",
           (unsigned long long)totals->packets, (unsigned long long)totals->bytes,
           (unsigned long long)totals->rtcp, opt->host, opt->port_count > 1 ? "s" : "");
    for (unsigned i = 0; i < opt->port_count; i++)
        printf("%s%u", i ? "," : " ", opt->ports[i]);
    printf(" in %.3f s%s\n", seconds, totals->interrupted ? " (interrupted)" : "");
    printf("  achieved %.0f packets/s, %.1f Mbit/s (target %llu packets/s, %llu packets)\n",
           seconds > 0 ? (double)totals->packets / seconds : 0.0,
           seconds > 0 ? (double)totals->bytes * 8 / seconds / 1e6 : 0.0,
           (unsigned long long)opt->rate, (unsigned long long)total);
    printf("  %u track%s of %u bytes, per track min %llu max %llu packets\n", opt->track_count,
           opt->track_count == 1 ? "" : "s", opt->size, (unsigned long long)min_sent,
           (unsigned long long)max_sent);
    printf("  sendmmsg on %s socket: %llu calls, batch %u", totals->socket_mode,
           (unsigned long long)totals->send_calls, opt->batch);
    if (totals->gso_segments)
        printf(", GSO up to %u packets per datagram", totals->gso_segments);
    printf(", %llu retries, %llu dropped; errors:", (unsigned long long)totals->retries,
           (unsigned long long)totals->failed);
    bool any = false;
    for (int e = 0; e < ERRNO_SLOTS; e++) {
        if (totals->errors[e]) {
            printf(" %s=%llu", errno_name(e), (unsigned long long)totals->errors[e]);
            any = true;
        }
    }
    printf("%s\n", any ? "" : " none");
    printf("  %s (max lag behind schedule %.3f ms)\n",
           totals->behind ? "BEHIND: could not keep the rate" : "kept the rate",
           (double)totals->max_lag_ns / 1e6);
}

int main(int argc, char **argv)
{
    struct options opt;
    parse_options(argc, argv, &opt);
    if (!opt.seed_given)
        opt.seed = (uint64_t)cap_clock_wall_ns() ^ ((uint64_t)getpid() << 32);

    uint64_t total = total_packets(&opt);
    /* Keep every batch within 1 ms of schedule so low rates are not sent as bursts. */
    uint64_t per_span = opt.rate * (uint64_t)MAX_BATCH_SPAN_NS / (uint64_t)CAP_NS_PER_SEC;
    unsigned batch = opt.batch ? opt.batch : opt.gso ? DEFAULT_GSO_BATCH : DEFAULT_BATCH;
    opt.batch = per_span < 1 ? 1 : per_span < batch ? (unsigned)per_span : batch;

    struct sigaction action = {.sa_handler = on_stop_signal};
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    /* Wake on time: the default 50 us timer slack would be a third of a batch at 400k pps. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);

    struct track *tracks = make_tracks(&opt);
    struct sender sender;
    if (!tracks || make_sender(&opt, &sender) != 0) {
        if (!tracks)
            fprintf(stderr, "loadgen: out of memory\n");
        else
            free_sender(&sender);
        free(tracks);
        return 1;
    }

    struct totals totals = {0};
    totals.gso_segments = sender.gso_segments;
    int64_t elapsed_ns = run(&opt, &sender, tracks, total, &totals);
    double seconds = (double)elapsed_ns / 1e9;
    totals.socket_mode = sender.connected                 ? "connected"
                         : sender.disconnected_on_refusal ? "unconnected after ECONNREFUSED"
                                                          : "unconnected";

    uint64_t min_sent = UINT64_MAX, max_sent = 0;
    for (uint32_t i = 0; i < opt.track_count; i++) {
        if (tracks[i].sent < min_sent)
            min_sent = tracks[i].sent;
        if (tracks[i].sent > max_sent)
            max_sent = tracks[i].sent;
    }
    if (opt.json)
        print_json(&opt, tracks, total, &totals, seconds, min_sent, max_sent);
    else
        print_text(&opt, total, &totals, seconds, min_sent, max_sent);

    free_sender(&sender);
    free(tracks);
    return 0;
}
