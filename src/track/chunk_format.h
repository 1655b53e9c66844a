/* Byte layout of a chunk file (docs/track-format.md is the spec): constants, record header
 * encode/decode, and the checks a reader and repair share. Multi-byte fields are
 * little-endian. */
#ifndef CAP_TRACK_CHUNK_FORMAT_H
#define CAP_TRACK_CHUNK_FORMAT_H

#include "capstan/track.h"
#include "util/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAP_CHUNK_MAGIC "CTRK"
#define CAP_CHUNK_VERSION 1
#define CAP_CHUNK_PREFIX_LEN 12          /* magic, version, flags, header length */
#define CAP_CHUNK_HEADER_JSON_MAX 65536
#define CAP_CHUNK_RECORD_HEADER_LEN 16   /* type, flags, reserved, length, arrival */
#define CAP_CHUNK_RECORD_TRAILER_LEN 4   /* crc32c */
#define CAP_CHUNK_RECORD_OVERHEAD (CAP_CHUNK_RECORD_HEADER_LEN + CAP_CHUNK_RECORD_TRAILER_LEN)
#define CAP_CHUNK_PACKET_MAX 65535       /* RTP, RTCP and event bodies */
#define CAP_CHUNK_INDEX_MAX (16u << 20)  /* index record body */
#define CAP_CHUNK_FOOTER_LEN 16          /* index offset, magic, crc32c */
#define CAP_CHUNK_FOOTER_MAGIC "CTIX"
#define CAP_CHUNK_INDEX_FIXED_LEN 64     /* index body before its entries */
#define CAP_CHUNK_INDEX_ENTRY_LEN 24

/* A record header as decoded; body and checksum follow it in the file. */
struct cap_chunk_record_header {
    uint8_t type;
    uint8_t flags;
    uint32_t length;
    int64_t arrival_ns;
};

struct cap_chunk_index_entry {
    int64_t arrival_ns;
    uint64_t offset;
    uint32_t rtp_ts;
    uint32_t flags;
};

void cap_chunk_encode_record_header(uint8_t *out, uint8_t type, uint8_t flags, uint32_t length,
                                    int64_t arrival_ns);
/* Decodes and sanity-checks a record header (type known, length within its type's cap);
 * CAP_EFORMAT otherwise. */
int cap_chunk_decode_record_header(const uint8_t *in, struct cap_chunk_record_header *out);

/* Checks a whole record in memory (header, body, crc). Returns the record's total size,
 * CAP_ETRUNC if avail is too short for it, CAP_EFORMAT/CAP_ECHECKSUM if it is not one. */
long cap_chunk_check_record(const uint8_t *rec, size_t avail, struct cap_chunk_record_header *hdr);

/* The chunk header: prefix + JSON + crc. Encodes into buf. */
int cap_chunk_encode_header(struct cap_buf *buf, const struct cap_track_info *info);
/* Decodes a header from the first `avail` bytes of a file; returns the header's total
 * length, CAP_ETRUNC if more bytes are needed, or CAP_EFORMAT/CAP_EVERSION/CAP_ECHECKSUM. */
long cap_chunk_decode_header(const uint8_t *in, size_t avail, struct cap_track_info *info);

/* Track info <-> JSON object text. */
int cap_track_info_to_json(const struct cap_track_info *info, struct cap_buf *out);
int cap_track_info_from_json(const char *text, size_t len, struct cap_track_info *info);

/* Index body (summary + entries; the indexer below writes it): decodes the fixed part;
 * entries are read with cap_chunk_index_entry_at. */
int cap_chunk_decode_index(const uint8_t *body, size_t len, struct cap_chunk_summary *summary);
void cap_chunk_index_entry_at(const uint8_t *body, uint32_t i, struct cap_chunk_index_entry *out);

/* The chunk number of a file name "00000012.ctrk", 0 if it is not a chunk's name. */
uint32_t cap_chunk_seq_of_name(const char *name);

void cap_chunk_encode_footer(uint8_t *out, uint64_t index_offset);
/* Returns the index record offset, or CAP_EFORMAT if these 16 bytes are not a footer. */
int64_t cap_chunk_decode_footer(const uint8_t *in);

/* Keeps a chunk's summary and index entries as records go by; used by the writer and by
 * repair (which rebuilds the index of a torn chunk). */
struct cap_chunk_indexer {
    struct cap_chunk_summary summary;
    struct cap_buf entries; /* encoded cap_chunk_index_entry array */
    uint32_t records_since_entry;
    int64_t last_entry_arrival;
};

void cap_chunk_indexer_init(struct cap_chunk_indexer *ix);
void cap_chunk_indexer_deinit(struct cap_chunk_indexer *ix);
void cap_chunk_indexer_add(struct cap_chunk_indexer *ix, uint64_t offset, uint8_t type,
                           uint8_t flags, int64_t arrival_ns, const uint8_t *body, size_t len);
/* Appends the INDEX record and the footer to out, given the offset the INDEX record will have. */
int cap_chunk_indexer_seal(struct cap_chunk_indexer *ix, uint64_t index_offset,
                           struct cap_buf *out);

#endif
