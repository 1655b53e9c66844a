/* Depacketizers: RTP payloads in, whole codec frames out. The generic assembler here does
 * the bookkeeping every codec shares (frame boundaries by timestamp and marker, loss inside
 * a frame, packets before a frame's start); each codec only says what one packet
 * contributes and finishes a frame, behind a small vtable, one file per codec, registered
 * in one array (codec.c). Nothing here does I/O. */
#ifndef CAP_CODEC_DEPAY_H
#define CAP_CODEC_DEPAY_H

#include "rtp/rtp.h"
#include "util/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAP_FRAME_MAX (16u << 20)   /* a frame larger than this is malformed input */

struct cap_codec_params {
    uint32_t clock_rate;
    uint32_t channels;
    const char *fmtp;               /* SDP fmtp parameters ("" if none) */
};

/* A whole (or knowingly incomplete) frame. data is valid until the next push or pop. */
struct cap_frame {
    const uint8_t *data;
    size_t len;
    uint32_t timestamp;             /* RTP timestamp of its packets */
    int64_t arrival_ns;             /* arrival of its first packet */
    uint64_t first_seq, last_seq;   /* extended sequence numbers of its first and last packet */
    unsigned packets;
    bool keyframe;                  /* decodable on its own (codec's judgement) */
    bool complete;                  /* every packet from its start to its end arrived */
    bool after_loss;                /* packets were lost since the previous frame began */
    uint16_t width, height;         /* coded size when the codec saw it (keyframes), else 0 */
};

/* What one packet is to the frame it belongs to. */
struct cap_depay_packet_info {
    bool starts_frame;              /* the packet carries the frame's first byte */
    bool ends_frame;                /* the packet carries the frame's last byte */
};

/* One codec. Every call gets the codec's private block (priv_size bytes, zeroed). */
struct cap_depay_ops {
    const char *name;               /* canonical codec name, as in codec/names.c */
    size_t priv_size;
    /* Reads what the codec needs from the fmtp (e.g. H.264 sprop-parameter-sets). */
    int (*init)(void *priv, const struct cap_codec_params *params);
    void (*deinit)(void *priv);
    /* Appends this packet's part of the frame to `frame` (bounded; CAP_ELIMIT past it) and
     * says where the packet sits. The packet is the next one in sequence order; frame holds
     * what earlier packets of the same frame appended. CAP_EFORMAT for a malformed payload:
     * the assembler then treats the frame as damaged. */
    int (*packet)(void *priv, const struct cap_rtp_packet *pkt, struct cap_buf *frame,
                  struct cap_depay_packet_info *info);
    /* Every packet of the frame is in (or it was cut short: out->complete is false). May
     * rewrite `frame` (prepend parameter sets, keep one spatial layer, ...) and sets
     * out->keyframe, width and height. It may also judge completeness better than the
     * assembler: clear out->complete (an OBU left open) or set it (an incomplete upper
     * layer dropped, a whole lower one kept). CAP_EFORMAT if nothing usable is left.
     * Codecs are not told about loss directly: one that joins fragments across packets
     * checks that their sequence numbers follow on. deinit also runs after a failed init. */
    int (*finish)(void *priv, struct cap_buf *frame, struct cap_frame *out);
    /* The frame in progress is abandoned (loss); forget per-frame state. */
    void (*reset)(void *priv);
};

/* The registry. NULL for a codec with no depacketizer. */
const struct cap_depay_ops *cap_depay_find(const char *codec);

/* ---- the generic assembler: one per track ---- */

struct cap_depacketizer;

int cap_depacketizer_new(struct cap_depacketizer **out, const struct cap_depay_ops *ops,
                         const struct cap_codec_params *params);
void cap_depacketizer_free(struct cap_depacketizer *d);

/* Takes the next packet in sequence order (e.g. from the reorder buffer). lost_before is
 * how many sequence numbers were given up on just before it. Afterwards, frames that are
 * ready come out of pop. Returns 0, or CAP_EFORMAT when the packet's payload was malformed
 * (counted; the frame it belonged to is marked incomplete). */
int cap_depacketizer_push(struct cap_depacketizer *d, const struct cap_rtp_packet *pkt,
                          uint64_t ext_seq, int64_t arrival_ns, uint64_t lost_before);
/* End of stream: the frame in progress is finished as it is. */
void cap_depacketizer_flush(struct cap_depacketizer *d);
/* 1 with the next ready frame, 0 if none. */
int cap_depacketizer_pop(struct cap_depacketizer *d, struct cap_frame *frame);
/* Right after pop returned 1: exchanges the buffer holding that frame for *buf (made with
 * cap_buf_init(buf, CAP_FRAME_MAX); its contents are dropped), so the frame's bytes stay
 * valid in *buf, unmoved, through later pushes. Saves a caller that keeps a frame a copy. */
void cap_depacketizer_take_frame(struct cap_depacketizer *d, struct cap_buf *buf);

struct cap_depacketizer_stats {
    uint64_t packets;
    uint64_t frames;
    uint64_t incomplete_frames;
    uint64_t malformed_packets;
    uint64_t empty_packets;     /* padding only: skipped */
};
const struct cap_depacketizer_stats *cap_depacketizer_stats(const struct cap_depacketizer *d);

#endif
