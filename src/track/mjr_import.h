/* Janus .mjr recordings (one RTP stream per file) read into a capstan recording folder.
 * The parser works on a buffer (the file mapped into memory) and does no I/O; the import
 * maps each file, checks every header before anything is written, and writes one track per
 * file with arrival times rebuilt from the file's start time and each packet's offset. */
#ifndef CAP_TRACK_MJR_IMPORT_H
#define CAP_TRACK_MJR_IMPORT_H

#include "capstan/track.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Every frame header is 10 bytes: "MEET" + 4-byte time (version 2) or "MEETECHO"
 * (version 1), then a 2-byte big-endian length. */
#define CAP_MJR_FRAME_HEADER 10
#define CAP_MJR_EXTMAP_MAX 2048

/* What a file's info header says. */
struct cap_mjr_header {
    int version;          /* 2: MJR00002, per-packet times; 1: MJR00001, none */
    size_t size;          /* magic + length + JSON: where the first frame starts */
    char media;           /* 'a', 'v' or 'd', as Janus wrote "t" */
    char janus_codec[32]; /* "c" as written ("opus", "vp8", "g711", ...) */
    char codec[32];       /* capstan's name; "" for "g711" until a packet's PT says */
    char kind[16];        /* "audio" or "video" */
    uint32_t clock_rate;
    uint32_t channels;
    char fmtp[CAP_TRACK_FMTP_MAX];   /* "f", "" if absent */
    char extmap[CAP_MJR_EXTMAP_MAX]; /* "x" as compact JSON, "" if absent */
    bool encrypted;                  /* "e": end-to-end encrypted media */
    int opus_red_pt;                 /* "or": RED payload type for Opus, 0 if none */
    int64_t created_us;              /* "s": when the recorder was created, us since the epoch */
    int64_t first_written_us; /* "u": when the first frame was written; times count from it */
};

/* Parses the info header at the start of a file. Returns 0, or
 *   CAP_ETRUNC       the file ends inside the header (an empty file too),
 *   CAP_EFORMAT      not an .mjr (bad magic), JSON that is not an object, a missing or
 *                    mistyped t/c/s/u, a media type that disagrees with the codec,
 *   CAP_EVERSION     an MJR0000x version this parser does not know,
 *   CAP_ELIMIT       an fmtp or extension map longer than capstan keeps,
 *   CAP_EUNSUPPORTED what capstan cannot import: data channels (t=d), end-to-end encrypted
 *                    media, Opus with RED, a codec with no depacketizer, the header-less
 *                    format of the first Janus releases.
 * On error, why says what was wrong (the fields parsed so far stay filled). */
int cap_mjr_header_parse(const uint8_t *data, size_t len, struct cap_mjr_header *header, char *why,
                         size_t why_size);

/* Names the codec of a "g711" file from a packet's payload type (0 PCMU, 8 PCMA);
 * CAP_EFORMAT for any other. A no-op for other codecs. */
int cap_mjr_header_resolve_pt(struct cap_mjr_header *header, uint8_t payload_type);

struct cap_mjr_frame {
    const uint8_t *data; /* the frame's body: an RTP packet */
    size_t len;
    uint32_t time_ms; /* version 2: ms after first_written_us; version 1: 0 */
    size_t offset;    /* of the frame header within the file */
};

/* Reads the frame at *pos (start at header->size) and moves *pos past it. Returns 1 with a
 * frame, 0 at the end of the file, CAP_ETRUNC when the file ends inside the frame (a cut
 * file), CAP_EFORMAT when the bytes at *pos are not a frame header (garbage). On an
 * error *pos stays at the frame that failed. */
int cap_mjr_next_frame(const struct cap_mjr_header *header, const uint8_t *data, size_t len,
                       size_t *pos, struct cap_mjr_frame *frame);

/* ---- the import ---- */

struct cap_mjr_import_options {
    const char *const *paths; /* the .mjr files; each becomes one track */
    size_t path_count;
    const char *out_dir; /* the recording folder; must not hold a recording yet */
    const char *room_id;
    const char *recording_id;
    const char *peer_id;      /* NULL: each file's name without -audio/-video names its peer */
    uint64_t max_chunk_bytes; /* 0: writer default */
    int64_t max_chunk_ns;     /* 0: writer default */
};

struct cap_mjr_import_track {
    const char *path;
    int version;
    char track_id[CAP_TRACK_ID_MAX];
    char peer_id[CAP_TRACK_ID_MAX];
    char kind[16];
    char codec[32];
    uint32_t clock_rate;
    uint32_t channels;
    uint32_t ssrc; /* of the first packet */
    uint8_t first_pt;
    uint64_t frames;      /* whole frames read */
    uint64_t rtp_packets; /* frames imported as RTP */
    uint64_t rtp_bytes;
    uint64_t not_rtp; /* frames whose body is not an RTP packet: skipped */
    uint32_t ssrc_changes;
    int64_t first_arrival_ns;
    int64_t last_arrival_ns;
    /* Where reading stopped early: the file was cut inside a frame, or garbage follows. */
    bool stopped_early;
    bool stopped_at_garbage; /* false: cut (truncated) */
    uint64_t stop_offset;
    uint64_t unread_bytes;
};

struct cap_mjr_import_report {
    struct cap_mjr_import_track *tracks; /* one per file, in the order given */
    size_t track_count;
    uint64_t rtp;
    int64_t first_arrival_ns;
    int64_t last_arrival_ns;
};

/* Imports the files as tracks of one recording. Every file is read and checked before the
 * folder is created, so a bad file fails the import with nothing written. On failure
 * returns a negative code and writes why (naming the file). */
int cap_mjr_import(const struct cap_mjr_import_options *opt, struct cap_mjr_import_report *report,
                   char *why, size_t why_size);
void cap_mjr_import_report_deinit(struct cap_mjr_import_report *report);

/* The peer a file's name stands for: "room-1234-user-5678-audio.mjr" -> "room-1234-user-5678"
 * (a trailing -audio/-video/-data, and its -N stream index, dropped; characters outside
 * [A-Za-z0-9._-] become '_'). "janus" if nothing is left. */
void cap_mjr_peer_from_path(const char *path, char *out, size_t size);

#endif
