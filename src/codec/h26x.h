/* What the H.264 (h264.c) and H.265 (h265.c) depacketizers share: fmtp and base64 reading
 * for out-of-band parameter sets, a bounded exp-Golomb bit reader for SPS parsing, Annex B
 * output, fragmentation-unit reassembly and the parameter sets a stream has shown so far. */
#ifndef CAP_CODEC_H26X_H
#define CAP_CODEC_H26X_H

#include "util/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAP_H26X_START_CODE_LEN 4
#define CAP_H26X_PARAM_SET_MAX (64u << 10) /* a parameter set larger than this is malformed */
#define CAP_H26X_PARAM_SETS_MAX 16         /* remembered per source; the oldest goes first */
#define CAP_H26X_SPS_PARSE_MAX 4096        /* SPS bytes unescaped for parsing */

/* ---- fmtp ---- */

/* Finds `key` (case-insensitive) in "k1=v1; k2=v2". The value is not NUL-terminated. */
bool cap_h26x_fmtp_find(const char *fmtp, const char *key, const char **value, size_t *len);
/* A decimal fmtp value; false if it is not one (or does not fit). */
bool cap_h26x_parse_uint(const char *value, size_t len, uint32_t *out);
/* Decodes standard base64 (padding optional) into out. Returns the byte count, or
 * CAP_EFORMAT (not base64) or CAP_ELIMIT (longer than cap). */
int cap_h26x_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap);

/* ---- bit reading (SPS) ---- */

/* Reads MSB first from an RBSP (emulation prevention already removed). Reading past the
 * end yields zeros and sets `failed`, so a parser can read on and check once at the end. */
struct cap_h26x_bits {
    const uint8_t *data;
    size_t size_bits;
    size_t pos;
    bool failed;
};

void cap_h26x_bits_init(struct cap_h26x_bits *bits, const uint8_t *data, size_t len);
uint32_t cap_h26x_bits_read(struct cap_h26x_bits *bits, unsigned count); /* count <= 32 */
void cap_h26x_bits_skip(struct cap_h26x_bits *bits, size_t count);
/* Exp-Golomb; more than 31 leading zeros fails. */
uint32_t cap_h26x_bits_ue(struct cap_h26x_bits *bits);
int32_t cap_h26x_bits_se(struct cap_h26x_bits *bits);
/* Copies at most `cap` bytes of NAL payload to dst, dropping emulation prevention bytes
 * (the 03 of 00 00 03). Returns the bytes written. */
size_t cap_h26x_unescape(uint8_t *dst, size_t cap, const uint8_t *src, size_t len);

/* ---- Annex B ---- */

/* Appends a start code, then header and body (either may be empty). */
/* Checks the units of an aggregation packet (STAP-A, AP) from `start`: 16-bit sizes, each
 * at least min_size and inside the payload. Returns their count, or CAP_EFORMAT (none, or
 * a size that lies), before anything is taken from the packet. */
int cap_h26x_check_aggregate(const uint8_t *payload, size_t len, size_t start, size_t min_size);
int cap_h26x_append_nal(struct cap_buf *frame, const uint8_t *header, size_t header_len,
                        const uint8_t *body, size_t body_len);
/* Walks the NAL units of an Annex B buffer. Start with *pos = 0; true with the next unit. */
bool cap_h26x_next_nal(const uint8_t *data, size_t len, size_t *pos, const uint8_t **nal,
                       size_t *nal_len);
/* Inserts bytes at offset `at` of the frame. */
int cap_h26x_insert(struct cap_buf *frame, size_t at, const uint8_t *data, size_t len);

enum cap_h26x_nal_class {
    CAP_H26X_NAL_OTHER,
    CAP_H26X_NAL_VCL,       /* a slice */
    CAP_H26X_NAL_PARAM_SET, /* VPS, SPS, PPS */
};

/* Some payloaders repeat the parameter sets before every IDR slice, i.e. between the slices
 * of one picture, where a decoder takes them for the start of the next access unit. Moves
 * parameter sets that follow the frame's first slice in front of it, dropping those that
 * repeat one already there. `classify` gets every NAL unit (len >= 1). */
int cap_h26x_hoist_param_sets(struct cap_buf *frame,
                              enum cap_h26x_nal_class (*classify)(const uint8_t *nal, size_t len));

/* ---- fragmentation units (H.264 FU-A, H.265 FU) ---- */

enum cap_h26x_fu_state {
    CAP_H26X_FU_NONE,     /* no fragmented NAL unit open */
    CAP_H26X_FU_OPEN,     /* fragments are being appended to an open NAL unit */
    CAP_H26X_FU_SKIPPING, /* the open unit lost fragments: the rest of it is ignored */
};

/* Per-frame reassembly state. */
struct cap_h26x_fu {
    enum cap_h26x_fu_state state;
    size_t nal_start; /* frame offset of the open unit's header */
    unsigned type;    /* its NAL unit type */
    bool seq_known;
    uint16_t last_seq; /* RTP sequence number of the frame's previous packet */
};

/* First call for every packet of the frame. The assembler does not tell a codec about
 * loss, so the sequence numbers do: a gap while a unit is open cuts that unit short there
 * (what arrived of it stays; the assembler already marks the frame incomplete). */
void cap_h26x_fu_sequence(struct cap_h26x_fu *fu, uint16_t seq);
/* A packet that is not a fragment: an open unit ends here (its end bit never came). */
void cap_h26x_fu_close(struct cap_h26x_fu *fu);
/* One fragment. `header` is the reconstructed NAL header, used when `start`. Appends the
 * fragment's bytes; *whole (may be NULL) gets the unit's offset in the frame when this
 * fragment ended a unit that arrived without a gap, else SIZE_MAX. CAP_EFORMAT for a
 * continuation with no start before it in this frame, or of a different unit type. */
int cap_h26x_fu_fragment(struct cap_h26x_fu *fu, struct cap_buf *frame, bool start, bool end,
                         unsigned type, const uint8_t *header, size_t header_len,
                         const uint8_t *data, size_t len, size_t *whole);
void cap_h26x_fu_reset(struct cap_h26x_fu *fu);

/* ---- parameter sets ---- */

enum cap_h26x_source {
    CAP_H26X_FROM_FMTP, /* sprop-* in the SDP */
    CAP_H26X_IN_BAND,   /* seen in the stream; overrides the fmtp's of the same kind */
};

struct cap_h26x_param_set {
    unsigned kind; /* the codec's index: VPS/SPS/PPS */
    int64_t id;    /* its id, or -1 when it could not be read */
    uint8_t *data; /* the whole NAL unit, header included */
    size_t len;
};

struct cap_h26x_param_sets {
    struct cap_h26x_param_set sets[2][CAP_H26X_PARAM_SETS_MAX]; /* by source */
    unsigned count[2];
};

/* Remembers a copy; one of the same source, kind and id is replaced. */
int cap_h26x_params_remember(struct cap_h26x_param_sets *params, enum cap_h26x_source source,
                             unsigned kind, int64_t id, const uint8_t *nal, size_t len);
/* Appends, in Annex B, every remembered set of `kind`: the in-band ones if there are any,
 * else the fmtp's. */
int cap_h26x_params_write(const struct cap_h26x_param_sets *params, unsigned kind,
                          struct cap_buf *out);
void cap_h26x_params_free(struct cap_h26x_param_sets *params);

/* Decodes a comma-separated list of base64 NAL units (an fmtp sprop value) and hands each
 * to `take`. Entries that are not base64 or are empty are skipped (in-band parameter sets
 * may still come). Returns 0 or the first error from `take`. */
int cap_h26x_sprop_each(const char *value, size_t len,
                        int (*take)(void *ctx, const uint8_t *nal, size_t nal_len), void *ctx);

#endif
