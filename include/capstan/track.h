/* Reading capstan's raw track chunks (docs/track-format.md): the public, stable way for
 * other programs to read what capstan recorded. A track is a folder of chunk files
 * (00000001.ctrk, 00000002.ctrk, ...); each chunk names its track in a JSON header and
 * holds checksummed records (RTP, RTCP, events) with their arrival times. */
#ifndef CAPSTAN_TRACK_H
#define CAPSTAN_TRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capstan/error.h"

#define CAP_TRACK_ID_MAX 128
#define CAP_TRACK_FMTP_MAX 4096
#define CAP_TRACK_MAX_PT 16

/* What a chunk's header says about its track. Strings are NUL-terminated, "" if unknown. */
struct cap_track_info {
    char track_id[CAP_TRACK_ID_MAX];
    char recording_id[CAP_TRACK_ID_MAX];
    char room_id[CAP_TRACK_ID_MAX];
    char peer_id[CAP_TRACK_ID_MAX];
    char producer_id[CAP_TRACK_ID_MAX];
    char kind[16];        /* "audio", "video", "screen" */
    char codec[32];       /* lower case: "opus", "vp8", "h264", ... "unknown" */
    uint32_t clock_rate;
    uint32_t channels;
    uint8_t payload_types[CAP_TRACK_MAX_PT];
    unsigned payload_type_count;
    uint32_t ssrc;
    char fmtp[CAP_TRACK_FMTP_MAX];
    uint32_t chunk_seq;   /* this chunk's number within its track, from 1 */
    int64_t created_ns;   /* wall clock, ns since the Unix epoch */
};

enum cap_record_type {
    CAP_RECORD_RTP = 1,
    CAP_RECORD_RTCP = 2,
    CAP_RECORD_EVENT = 3, /* UTF-8 JSON object with a "type" member */
    CAP_RECORD_INDEX = 4, /* internal: closes a chunk; never returned by the readers */
};

/* Record flags. */
#define CAP_RECORD_FLAG_KEYFRAME 0x01 /* the writer was told this RTP packet starts a keyframe */

struct cap_record {
    uint8_t type;         /* enum cap_record_type */
    uint8_t flags;
    int64_t arrival_ns;   /* wall clock at arrival, ns since the Unix epoch */
    const uint8_t *data;  /* valid until the next call on the reader */
    size_t len;
    uint64_t offset;      /* of the record within its chunk */
};

/* What a sealed chunk's index says; zeros for an unsealed chunk. */
struct cap_chunk_summary {
    bool sealed;
    int64_t first_arrival_ns;
    int64_t last_arrival_ns;
    uint32_t first_rtp_ts;
    uint32_t last_rtp_ts;
    uint64_t rtp_records;
    uint64_t rtcp_records;
    uint64_t event_records;
    uint64_t rtp_bytes;
    uint32_t index_entries;
    uint32_t keyframes;
};

struct cap_chunk_reader;

/* Opens one chunk and checks its header. CAP_ENOENT, CAP_EIO, CAP_EFORMAT (not a chunk),
 * CAP_EVERSION, CAP_ECHECKSUM (header damaged), CAP_ETRUNC (header incomplete). */
int cap_chunk_open(struct cap_chunk_reader **out, const char *path);
/* Same over an open descriptor, which the reader duplicates (the caller keeps its own). */
int cap_chunk_open_fd(struct cap_chunk_reader **out, int fd);
void cap_chunk_close(struct cap_chunk_reader *reader);

const struct cap_track_info *cap_chunk_info(const struct cap_chunk_reader *reader);
const struct cap_chunk_summary *cap_chunk_summary(const struct cap_chunk_reader *reader);

/* Reads the next record. Returns 1 with *rec filled, 0 at the end, or an error:
 * CAP_ECHECKSUM (a damaged record: the next call skips past it to the next whole record),
 * CAP_ETRUNC (the chunk ends inside a record: a torn tail; see cap_chunk_repair). */
int cap_chunk_next(struct cap_chunk_reader *reader, struct cap_record *rec);

/* Positions the reader so the next record returned is the first whose arrival time is at
 * or after t (records are in arrival order). Uses the index when the chunk is sealed. */
int cap_chunk_seek(struct cap_chunk_reader *reader, int64_t arrival_ns);

struct cap_chunk_repair_report {
    uint64_t records;     /* whole records kept (RTP + RTCP + events) */
    uint64_t kept_bytes;  /* size after repair */
    uint64_t cut_bytes;   /* torn tail removed */
    bool was_sealed;      /* already whole: nothing changed */
    bool removed;         /* the header itself was torn: the file held no record and is gone */
};

/* Cuts a torn tail at the end of the last whole record, then seals the chunk (writes its
 * index), so it reads without error. Damage in the middle of a chunk (a bad record with
 * whole records after it) is not a torn tail: CAP_ECHECKSUM, file untouched. */
int cap_chunk_repair(const char *path, struct cap_chunk_repair_report *report);

/* All chunks of one track folder, read as one stream in chunk order. */
struct cap_track_reader;

int cap_track_open(struct cap_track_reader **out, const char *track_dir);
void cap_track_close(struct cap_track_reader *reader);
/* Info of the first chunk (track-level fields are the same in every chunk). */
const struct cap_track_info *cap_track_info(const struct cap_track_reader *reader);
unsigned cap_track_chunk_count(const struct cap_track_reader *reader);
/* As cap_chunk_next, across chunks. */
int cap_track_next(struct cap_track_reader *reader, struct cap_record *rec);
int cap_track_seek(struct cap_track_reader *reader, int64_t arrival_ns);
/* Back to the first record, for another pass over the same track. Sealed chunks this
 * reader has already read to their end with every record intact are not checksummed
 * again, as long as each is still the same file (device, inode, size, modification
 * time): a sealed chunk never changes. Anything else is verified as on a first read. */
int cap_track_rewind(struct cap_track_reader *reader);

#endif
