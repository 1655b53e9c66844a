/* import-mjr: Janus .mjr files into a recording folder. A file is a magic ("MJR00002", or
 * "MJR00001" before per-packet times existed), a 2-byte length and a JSON info header
 * (t: media, c: codec, s: created, u: first frame written, f: fmtp, x: extension map,
 * e: encrypted), then frames of a 10-byte header and one RTP packet each. Each file is
 * mapped and read twice: once to check it and learn its SSRC and payload types, once to
 * write its track. Arrival times are "u" plus each frame's offset in ms (version 2) or plus
 * the RTP timestamp's advance over the codec clock (version 1, which stored no times). */
#include "track/mjr_import.h"

#include "codec/depay.h"
#include "codec/names.h"
#include "rtp/rtp.h"
#include "track/writer.h"
#include "util/bytes.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC_LEN 8
/* "u" beyond 2100-01-01 cannot be a real recording, and keeps arrival times far from
 * overflowing int64 nanoseconds. */
#define MAX_TIME_US INT64_C(4102444800000000)
/* Version 1 rebuilds time from RTP timestamps; a stream that claims to run further than
 * this many ticks from its first packet is held where it was (garbage, not media). */
#define MAX_TICKS (INT64_C(1) << 42)
/* Files are read front to back; what was read is dropped from the mapping in steps of this
 * size, so a large file never stays resident (peak memory stays small). */
#define RELEASE_STEP ((size_t)8 << 20)

static int failf(char *why, size_t why_size, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int failf(char *why, size_t why_size, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_size, fmt, ap);
    va_end(ap);
    return err;
}

/* Copies a string from the file for messages and names, with anything unprintable made '?'. */
static void copy_printable(char *out, size_t size, const char *in)
{
    size_t n = 0;
    for (; in[n] && n + 1 < size; n++)
        out[n] = (in[n] >= 0x20 && in[n] < 0x7f) ? in[n] : '?';
    out[n] = '\0';
}

static int check_magic(const uint8_t *data, size_t len, struct cap_mjr_header *h, char *why,
                       size_t why_size)
{
    static const char v2[] = "MJR00002", v1[] = "MJR00001", family[] = "MJR0000",
                      headerless[] = "MEETECHO";
    if (len == 0)
        return failf(why, why_size, CAP_ETRUNC, "empty file (0 bytes): no .mjr header");
    if (len < MAGIC_LEN) {
        bool prefix = memcmp(data, v2, len) == 0 || memcmp(data, v1, len) == 0;
        return failf(why, why_size, prefix ? CAP_ETRUNC : CAP_EFORMAT,
                     prefix ? "file ends after %zu bytes, inside the .mjr magic"
                            : "not a Janus .mjr recording (%zu bytes, no MJR00002 magic)",
                     len);
    }
    if (memcmp(data, v2, MAGIC_LEN) == 0) {
        h->version = 2;
        return 0;
    }
    if (memcmp(data, v1, MAGIC_LEN) == 0) {
        h->version = 1;
        return 0;
    }
    if (memcmp(data, family, MAGIC_LEN - 1) == 0)
        return failf(why, why_size, CAP_EVERSION,
                     "unknown .mjr version '%c' (known: MJR00001, MJR00002)",
                     data[7] >= 0x20 && data[7] < 0x7f ? data[7] : '?');
    if (memcmp(data, headerless, MAGIC_LEN) == 0)
        return failf(why, why_size, CAP_EUNSUPPORTED,
                     "a header-less .mjr of the first Janus releases (no codec, no start "
                     "time): convert it with a newer janus-pp-rec first");
    return failf(why, why_size, CAP_EFORMAT,
                 "not a Janus .mjr recording (starts with %02x %02x %02x %02x, not MJR00002)",
                 data[0], data[1], data[2], data[3]);
}

static int read_time(json_t *info, const char *key, int64_t *out, char *why, size_t why_size)
{
    json_t *v = json_object_get(info, key);
    if (!json_is_integer(v))
        return failf(why, why_size, CAP_EFORMAT, "info header has no integer \"%s\" (%s time)", key,
                     key[0] == 's' ? "created" : "first frame written");
    json_int_t t = json_integer_value(v);
    if (t < 0 || t > MAX_TIME_US)
        return failf(why, why_size, CAP_EFORMAT,
                     "info header \"%s\" = %lld is not a time in "
                     "microseconds since 1970",
                     key, (long long)t);
    *out = t;
    return 0;
}

/* Keeps the "x" members that are an extension id (1..255) naming a URI, as compact JSON. */
static int read_extmap(json_t *info, struct cap_mjr_header *h, char *why, size_t why_size)
{
    json_t *x = json_object_get(info, "x");
    if (!x)
        return 0;
    if (!json_is_object(x))
        return failf(why, why_size, CAP_EFORMAT, "info header \"x\" (extensions) is not an object");
    json_t *kept = json_object();
    if (!kept)
        return CAP_ENOMEM;
    const char *key;
    json_t *value;
    json_object_foreach(x, key, value)
    {
        char *end;
        long id = strtol(key, &end, 10);
        if (*end == '\0' && id >= 1 && id <= 255 && json_is_string(value))
            json_object_set(kept, key, value);
    }
    int err = 0;
    if (json_object_size(kept) > 0) {
        char *text = json_dumps(kept, JSON_COMPACT | JSON_SORT_KEYS);
        if (!text)
            err = CAP_ENOMEM;
        else if (strlen(text) >= sizeof(h->extmap))
            err = failf(why, why_size, CAP_ELIMIT,
                        "info header \"x\" (extensions) is %zu bytes; "
                        "capstan keeps at most %zu",
                        strlen(text), sizeof(h->extmap) - 1);
        else
            snprintf(h->extmap, sizeof(h->extmap), "%s", text);
        free(text);
    }
    json_decref(kept);
    return err;
}

/* Reads t, c, s, u, f, x, e and or. */
static int read_info(json_t *info, struct cap_mjr_header *h, char *why, size_t why_size)
{
    const char *t = json_string_value(json_object_get(info, "t"));
    if (!t)
        return failf(why, why_size, CAP_EFORMAT, "info header has no media type \"t\"");
    if (strcasecmp(t, "a") && strcasecmp(t, "v") && strcasecmp(t, "d")) {
        char shown[16];
        copy_printable(shown, sizeof(shown), t);
        return failf(why, why_size, CAP_EFORMAT,
                     "info header media type \"t\" is '%s', not a, v or d", shown);
    }
    h->media = (char)(t[0] | 0x20);
    const char *c = json_string_value(json_object_get(info, "c"));
    if (!c || !c[0])
        return failf(why, why_size, CAP_EFORMAT, "info header has no codec \"c\"");
    copy_printable(h->janus_codec, sizeof(h->janus_codec), c);
    int err = read_time(info, "s", &h->created_us, why, why_size);
    if (!err)
        err = read_time(info, "u", &h->first_written_us, why, why_size);
    if (err)
        return err;
    json_t *f = json_object_get(info, "f");
    if (f && !json_is_string(f))
        return failf(why, why_size, CAP_EFORMAT, "info header fmtp \"f\" is not a string");
    if (f && json_string_length(f) >= sizeof(h->fmtp))
        return failf(why, why_size, CAP_ELIMIT,
                     "info header fmtp \"f\" is %zu bytes; capstan "
                     "keeps at most %zu",
                     json_string_length(f), sizeof(h->fmtp) - 1);
    if (f)
        snprintf(h->fmtp, sizeof(h->fmtp), "%s", json_string_value(f));
    if ((err = read_extmap(info, h, why, why_size)))
        return err;
    h->encrypted = json_is_true(json_object_get(info, "e"));
    json_t *red = json_object_get(info, "or");
    if (json_is_integer(red) && json_integer_value(red) > 0 && json_integer_value(red) < 128)
        h->opus_red_pt = (int)json_integer_value(red);
    return 0;
}

/* Decides capstan's codec, kind and clock, or why this file cannot be imported. */
static int resolve_codec(struct cap_mjr_header *h, char *why, size_t why_size)
{
    if (h->media == 'd')
        return failf(why, why_size, CAP_EUNSUPPORTED,
                     "a data channel recording (t=d, c=%s): "
                     "capstan records RTP media only",
                     h->janus_codec);
    if (h->encrypted)
        return failf(why, why_size, CAP_EUNSUPPORTED,
                     "end-to-end encrypted media (e=true): "
                     "the frames cannot be depacketized without the key");
    const char *want = h->media == 'v' ? "video" : "audio";
    snprintf(h->kind, sizeof(h->kind), "%s", want);
    if (strcasecmp(h->janus_codec, "g711") == 0) {
        /* Older Janus wrote "g711" for both laws; the payload type tells them apart. */
        if (h->media != 'a')
            return failf(why, why_size, CAP_EFORMAT, "media type video with audio codec g711");
        h->clock_rate = 8000;
        h->channels = 1;
        return 0;
    }
    const struct cap_codec_name *name = cap_codec_by_name(h->janus_codec);
    if (!name)
        return failf(why, why_size, CAP_EUNSUPPORTED, "unknown codec '%s'", h->janus_codec);
    if (strcmp(name->kind, want) != 0)
        return failf(why, why_size, CAP_EFORMAT, "media type %s with %s codec %s", want, name->kind,
                     name->name);
    if (!cap_depay_find(name->name))
        return failf(why, why_size, CAP_EUNSUPPORTED, "codec %s, which capstan cannot depacketize",
                     name->name);
    if (h->opus_red_pt)
        return failf(why, why_size, CAP_EUNSUPPORTED,
                     "Opus with RED redundancy (or=%d) is not "
                     "supported",
                     h->opus_red_pt);
    snprintf(h->codec, sizeof(h->codec), "%s", name->name);
    h->clock_rate = name->clock_rate;
    h->channels = name->channels;
    return 0;
}

int cap_mjr_header_parse(const uint8_t *data, size_t len, struct cap_mjr_header *h, char *why,
                         size_t why_size)
{
    memset(h, 0, sizeof(*h));
    int err = check_magic(data, len, h, why, why_size);
    if (err)
        return err;
    if (len < MAGIC_LEN + 2)
        return failf(why, why_size, CAP_ETRUNC,
                     "file ends after %zu bytes, before the info "
                     "header's length",
                     len);
    size_t json_len = cap_load_be16(data + MAGIC_LEN);
    if (json_len == 0)
        return failf(why, why_size, CAP_EFORMAT, "info header length is 0");
    if (json_len > len - MAGIC_LEN - 2)
        return failf(why, why_size, CAP_ETRUNC,
                     "info header says %zu bytes of JSON but only "
                     "%zu follow",
                     json_len, len - MAGIC_LEN - 2);
    h->size = MAGIC_LEN + 2 + json_len;
    json_error_t jerr;
    json_t *info =
        json_loadb((const char *)data + MAGIC_LEN + 2, json_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!info)
        return failf(why, why_size, CAP_EFORMAT, "info header is not JSON: %s", jerr.text);
    if (!json_is_object(info))
        err = failf(why, why_size, CAP_EFORMAT, "info header is JSON but not an object");
    if (!err)
        err = read_info(info, h, why, why_size);
    json_decref(info);
    if (!err)
        err = resolve_codec(h, why, why_size);
    return err;
}

int cap_mjr_header_resolve_pt(struct cap_mjr_header *h, uint8_t payload_type)
{
    if (h->codec[0])
        return 0;
    const struct cap_codec_name *name = cap_codec_by_static_pt(payload_type);
    if (!name || (strcmp(name->name, "pcmu") && strcmp(name->name, "pcma")))
        return CAP_EFORMAT;
    snprintf(h->codec, sizeof(h->codec), "%s", name->name);
    return 0;
}

int cap_mjr_next_frame(const struct cap_mjr_header *h, const uint8_t *data, size_t len, size_t *pos,
                       struct cap_mjr_frame *frame)
{
    size_t at = *pos;
    if (at >= len)
        return 0;
    size_t left = len - at;
    const uint8_t *p = data + at;
    /* Compare what is there before saying "cut": a short tail of garbage is garbage. */
    const char *prefix = h->version == 2 ? "MEET" : "MEETECHO";
    size_t prefix_len = h->version == 2 ? 4 : 8;
    if (memcmp(p, prefix, left < prefix_len ? left : prefix_len) != 0)
        return CAP_EFORMAT;
    if (left < CAP_MJR_FRAME_HEADER)
        return CAP_ETRUNC;
    size_t body = cap_load_be16(p + 8);
    if (body > left - CAP_MJR_FRAME_HEADER)
        return CAP_ETRUNC;
    frame->offset = at;
    frame->time_ms = h->version == 2 ? cap_load_be32(p + 4) : 0;
    frame->data = p + CAP_MJR_FRAME_HEADER;
    frame->len = body;
    *pos = at + CAP_MJR_FRAME_HEADER + body;
    return 1;
}

static bool kind_suffix(const char *name, size_t len, size_t *cut)
{
    static const char *const kinds[] = {"-audio", "-video", "-data"};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        size_t k = strlen(kinds[i]);
        if (len >= k && strncasecmp(name + len - k, kinds[i], k) == 0) {
            *cut = len - k;
            return true;
        }
    }
    return false;
}

void cap_mjr_peer_from_path(const char *path, char *out, size_t size)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strcspn(base, ".");
    /* Janus names streams "...-video.mjr", or "...-video-1.mjr" in multistream rooms. */
    size_t digits = len;
    while (digits > 0 && base[digits - 1] >= '0' && base[digits - 1] <= '9')
        digits--;
    size_t cut = len;
    if (digits < len && digits > 0 && base[digits - 1] == '-' &&
        kind_suffix(base, digits - 1, &cut))
        len = cut;
    else if (kind_suffix(base, len, &cut))
        len = cut;
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < size && n < 100; i++) {
        char ch = base[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
        out[n++] = ok ? ch : '_';
    }
    out[n] = '\0';
    if (n == 0)
        snprintf(out, size, "janus");
}

/* ---- the import ---- */

struct mjr_file {
    struct cap_mjr_header header;
    const uint8_t *data; /* the mapped file; NULL when empty */
    size_t size;
    size_t frames_end; /* where the scan stopped: reading ends here */
    uint8_t pts[CAP_TRACK_MAX_PT];
    unsigned pt_count;
};

static int map_file(const char *path, struct mjr_file *f, char *why, size_t why_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = -errno;
        return failf(why, why_size, err == -ENOENT ? CAP_ENOENT : CAP_EIO, "%s: cannot open: %s",
                     path, cap_strerror(err));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return failf(why, why_size, CAP_EIO, "%s: not a regular file", path);
    }
    f->size = (size_t)st.st_size;
    if (f->size > 0) {
        void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int err = -errno;
            close(fd);
            return failf(why, why_size, CAP_EIO, "%s: cannot map: %s", path, cap_strerror(err));
        }
        f->data = m;
    }
    close(fd);
    return 0;
}

/* Drops the pages before pos that were read (the mapping is read-only: they come back
 * from the page cache if touched again). */
static void release_read(const struct mjr_file *f, size_t *released, size_t pos)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t upto = pos / page * page;
    if (f->data && upto >= *released + RELEASE_STEP) {
        madvise((void *)(f->data + *released), upto - *released, MADV_DONTNEED);
        *released = upto;
    }
}

static void unmap_file(struct mjr_file *f)
{
    if (f->data)
        munmap((void *)f->data, f->size);
    f->data = NULL;
}

static void note_pt(struct mjr_file *f, uint8_t pt)
{
    for (unsigned i = 0; i < f->pt_count; i++)
        if (f->pts[i] == pt)
            return;
    if (f->pt_count < CAP_TRACK_MAX_PT)
        f->pts[f->pt_count++] = pt;
}

static void note_stop(struct cap_mjr_import_track *t, const struct mjr_file *f, size_t pos, int rc)
{
    t->stopped_early = true;
    t->stopped_at_garbage = rc == CAP_EFORMAT;
    t->stop_offset = pos;
    t->unread_bytes = f->size - pos;
}

/* Pass 1: checks the file and learns its first SSRC and its payload types. */
static int scan_file(struct mjr_file *f, struct cap_mjr_import_track *t, char *why, size_t why_size)
{
    char reason[512];
    int err = cap_mjr_header_parse(f->data, f->size, &f->header, reason, sizeof(reason));
    if (err)
        return failf(why, why_size, err, "%s: %s", t->path, reason);
    size_t pos = f->header.size;
    struct cap_mjr_frame frame;
    uint64_t frames = 0, rtp = 0;
    size_t released = 0;
    int rc;
    while ((rc = cap_mjr_next_frame(&f->header, f->data, f->size, &pos, &frame)) == 1) {
        frames++;
        release_read(f, &released, frame.offset);
        struct cap_rtp_packet pkt;
        if (cap_rtp_parse(frame.data, frame.len, &pkt) != 0)
            continue;
        if (rtp++ == 0) {
            if (cap_mjr_header_resolve_pt(&f->header, pkt.payload_type) != 0)
                return failf(why, why_size, CAP_EFORMAT,
                             "%s: a g711 recording whose payload "
                             "type is %u (neither 0 PCMU nor 8 PCMA)",
                             t->path, pkt.payload_type);
            t->ssrc = pkt.ssrc;
            t->first_pt = pkt.payload_type;
        }
        note_pt(f, pkt.payload_type);
    }
    f->frames_end = pos;
    if (rc < 0)
        note_stop(t, f, pos, rc);
    if (rtp == 0)
        return failf(why, why_size, CAP_ENOENT, "%s: no RTP packet in %llu frames%s", t->path,
                     (unsigned long long)frames,
                     rc == CAP_ETRUNC    ? " (the file is cut short)"
                     : rc == CAP_EFORMAT ? " (garbage follows the header)"
                                         : "");
    t->version = f->header.version;
    snprintf(t->kind, sizeof(t->kind), "%s", f->header.kind);
    snprintf(t->codec, sizeof(t->codec), "%s", f->header.codec);
    t->clock_rate = f->header.clock_rate;
    t->channels = f->header.channels;
    return 0;
}

/* Track ids follow the recorder's rule: {peer}-{kind}, then {peer}-{kind}-2, -3, ... */
static void name_track(struct cap_mjr_import_report *rep, size_t index, const char *peer)
{
    struct cap_mjr_import_track *t = &rep->tracks[index];
    snprintf(t->peer_id, sizeof(t->peer_id), "%.100s", peer);
    for (unsigned n = 1;; n++) {
        if (n == 1)
            snprintf(t->track_id, sizeof(t->track_id), "%.100s-%s", t->peer_id, t->kind);
        else
            snprintf(t->track_id, sizeof(t->track_id), "%.100s-%s-%u", t->peer_id, t->kind, n);
        bool taken = false;
        for (size_t i = 0; i < index && !taken; i++)
            taken = strcmp(rep->tracks[i].track_id, t->track_id) == 0;
        if (!taken)
            return;
    }
}

/* Arrival times of one file, kept in order: a frame never arrives before the one read
 * before it (Janus's times come from a monotonic clock; anything else is damage). */
struct mjr_clock {
    int64_t base_ns;
    int64_t last_ns;
    bool started;
    uint32_t last_rtp_ts;
    int64_t ticks; /* version 1: RTP clock ticks since the first packet */
};

static int64_t frame_arrival(struct mjr_clock *c, const struct cap_mjr_header *h,
                             const struct cap_mjr_frame *frame, const struct cap_rtp_packet *pkt)
{
    int64_t t;
    if (h->version == 2) {
        t = c->base_ns + (int64_t)frame->time_ms * 1000000;
    } else {
        if (c->started) {
            int64_t next = c->ticks + (int32_t)(pkt->timestamp - c->last_rtp_ts);
            if (next > -MAX_TICKS && next < MAX_TICKS)
                c->ticks = next;
        }
        c->last_rtp_ts = pkt->timestamp;
        int64_t ticks = c->ticks > 0 ? c->ticks : 0;
        int64_t rate = h->clock_rate ? h->clock_rate : 1;
        t = c->base_ns + ticks / rate * 1000000000 + ticks % rate * 1000000000 / rate;
    }
    if (c->started && t < c->last_ns)
        t = c->last_ns;
    c->started = true;
    c->last_ns = t;
    return t;
}

static int open_writer(const struct cap_mjr_import_options *opt, const struct mjr_file *f,
                       const struct cap_mjr_import_track *t, struct cap_track_writer **w,
                       struct cap_track_info *info, char *why, size_t why_size)
{
    struct cap_track_writer_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof(dir), "%s/tracks/%s", opt->out_dir, t->track_id) >= (int)sizeof(dir))
        return failf(why, why_size, CAP_ELIMIT, "output path too long");
    cfg.dir = dir;
    struct cap_track_info *i = &cfg.info;
    snprintf(i->track_id, sizeof(i->track_id), "%s", t->track_id);
    snprintf(i->recording_id, sizeof(i->recording_id), "%s",
             opt->recording_id ? opt->recording_id : "");
    snprintf(i->room_id, sizeof(i->room_id), "%s", opt->room_id ? opt->room_id : "");
    snprintf(i->peer_id, sizeof(i->peer_id), "%s", t->peer_id);
    snprintf(i->producer_id, sizeof(i->producer_id), "%s", t->track_id);
    snprintf(i->kind, sizeof(i->kind), "%s", t->kind);
    snprintf(i->codec, sizeof(i->codec), "%s", t->codec);
    snprintf(i->fmtp, sizeof(i->fmtp), "%s", f->header.fmtp);
    i->clock_rate = t->clock_rate;
    i->channels = t->channels;
    i->ssrc = t->ssrc;
    memcpy(i->payload_types, f->pts, f->pt_count);
    i->payload_type_count = f->pt_count;
    cfg.max_chunk_bytes = opt->max_chunk_bytes;
    cfg.max_chunk_ns = opt->max_chunk_ns;
    cfg.fsync_interval_ns = 0; /* an import is made durable once, at close */
    cfg.buffer_bytes = 256 << 10;
    cfg.first_chunk_seq = 1;
    *info = cfg.info;
    int err = cap_track_writer_open(w, &cfg);
    if (err)
        return failf(why, why_size, err, "%s: cannot create track folder: %s", dir,
                     cap_strerror(err));
    return 0;
}

/* The extension map goes into the track as an event before the first packet, so what the
 * ids in the RTP header extensions mean is not lost. */
static int write_extmap_event(struct cap_track_writer *w, const struct cap_mjr_header *h,
                              int64_t arrival)
{
    char event[CAP_MJR_EXTMAP_MAX + 64];
    int n =
        snprintf(event, sizeof(event), "{\"type\":\"rtp_extensions\",\"extmap\":%s}", h->extmap);
    return cap_track_writer_append(w, CAP_RECORD_EVENT, 0, arrival, event, (size_t)n);
}

/* Pass 2: writes every RTP packet of the file into its track. */
static int write_file(const struct cap_mjr_import_options *opt, const struct mjr_file *f,
                      struct cap_mjr_import_track *t, char *why, size_t why_size)
{
    struct cap_track_writer *w = NULL;
    struct cap_track_info info;
    int err = open_writer(opt, f, t, &w, &info, why, why_size);
    if (err)
        return err;
    struct mjr_clock clock = {.base_ns = f->header.first_written_us * 1000};
    size_t pos = f->header.size, released = 0;
    struct cap_mjr_frame frame;
    while (!err && pos < f->frames_end &&
           cap_mjr_next_frame(&f->header, f->data, f->frames_end, &pos, &frame) == 1) {
        t->frames++;
        release_read(f, &released, frame.offset);
        struct cap_rtp_packet pkt;
        if (cap_rtp_parse(frame.data, frame.len, &pkt) != 0) {
            t->not_rtp++;
            continue;
        }
        int64_t arrival = frame_arrival(&clock, &f->header, &frame, &pkt);
        if (t->rtp_packets == 0) {
            t->first_arrival_ns = arrival;
            if (f->header.extmap[0])
                err = write_extmap_event(w, &f->header, arrival);
        }
        if (!err && pkt.ssrc != info.ssrc) {
            /* A new SSRC starts a new chunk, so every chunk header stays true. */
            info.ssrc = pkt.ssrc;
            t->ssrc_changes++;
            err = cap_track_writer_update_info(w, &info);
        }
        if (!err)
            err = cap_track_writer_append(w, CAP_RECORD_RTP, 0, arrival, frame.data, frame.len);
        if (err)
            break;
        t->rtp_packets++;
        t->rtp_bytes += frame.len;
        t->last_arrival_ns = arrival;
    }
    if (err)
        snprintf(why, why_size, "writing track %s: %s", t->track_id, cap_strerror(err));
    int close_err = cap_track_writer_close(w);
    if (close_err && !err)
        err = failf(why, why_size, close_err, "closing track %s: %s", t->track_id,
                    cap_strerror(close_err));
    return err;
}

static int check_out_dir(const char *out_dir, char *why, size_t why_size)
{
    static const char *const taken[] = {"metadata.json", "tracks"};
    for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++) {
        char probe[PATH_MAX];
        if (snprintf(probe, sizeof(probe), "%s/%s", out_dir, taken[i]) >= (int)sizeof(probe))
            return failf(why, why_size, CAP_ELIMIT, "output path too long");
        if (access(probe, F_OK) == 0)
            return failf(why, why_size, CAP_EEXIST, "%s already holds %s; choose an empty folder",
                         out_dir, i == 0 ? "a recording" : "a tracks/ folder");
    }
    return 0;
}

static void summarize(struct cap_mjr_import_report *rep)
{
    for (size_t i = 0; i < rep->track_count; i++) {
        const struct cap_mjr_import_track *t = &rep->tracks[i];
        rep->rtp += t->rtp_packets;
        if (i == 0 || t->first_arrival_ns < rep->first_arrival_ns)
            rep->first_arrival_ns = t->first_arrival_ns;
        if (i == 0 || t->last_arrival_ns > rep->last_arrival_ns)
            rep->last_arrival_ns = t->last_arrival_ns;
    }
}

int cap_mjr_import(const struct cap_mjr_import_options *opt, struct cap_mjr_import_report *rep,
                   char *why, size_t why_size)
{
    memset(rep, 0, sizeof(*rep));
    if (opt->path_count == 0)
        return failf(why, why_size, CAP_EINVAL, "no .mjr file given");
    int err = check_out_dir(opt->out_dir, why, why_size);
    if (err)
        return err;
    struct mjr_file *files = calloc(opt->path_count, sizeof(*files));
    rep->tracks = calloc(opt->path_count, sizeof(*rep->tracks));
    if (!files || !rep->tracks) {
        free(files);
        return CAP_ENOMEM;
    }
    rep->track_count = opt->path_count;
    for (size_t i = 0; i < opt->path_count && !err; i++) {
        struct cap_mjr_import_track *t = &rep->tracks[i];
        t->path = opt->paths[i];
        err = map_file(t->path, &files[i], why, why_size);
        if (!err)
            err = scan_file(&files[i], t, why, why_size);
        if (!err) {
            char peer[CAP_TRACK_ID_MAX];
            if (opt->peer_id)
                snprintf(peer, sizeof(peer), "%s", opt->peer_id);
            else
                cap_mjr_peer_from_path(t->path, peer, sizeof(peer));
            name_track(rep, i, peer);
        }
    }
    if (!err && (err = cap_mkdir_p(opt->out_dir)))
        snprintf(why, why_size, "%s: cannot create: %s", opt->out_dir, cap_strerror(err));
    for (size_t i = 0; i < opt->path_count && !err; i++)
        err = write_file(opt, &files[i], &rep->tracks[i], why, why_size);
    for (size_t i = 0; i < opt->path_count; i++)
        unmap_file(&files[i]);
    free(files);
    if (!err)
        summarize(rep);
    return err;
}

void cap_mjr_import_report_deinit(struct cap_mjr_import_report *rep)
{
    free(rep->tracks);
    memset(rep, 0, sizeof(*rep));
}
