/* Fuzz target: every depacketizer through the assembler. The first byte picks the codec
 * (and an fmtp), then the input is a list of packets: 2-byte length, 1 flags byte (bit 0
 * marker, bit 1 new timestamp, bit 2 a packet lost before), payload. */
#include "codec/depay.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const codecs[] = {"vp8", "vp9", "h264", "h265", "av1", "opus", "pcmu", "pcma", "g722"};
static const char *const fmtps[] = {
    "",
    "packetization-mode=1;sprop-parameter-sets=Z0LAHtkAoD2wEQAAAwABAAADADIPFi5I,aMuMsg==",
    "sprop-vps=QAEMAf//AWAAAAMAkAAAAwAAAwBdlZgJ;sprop-sps=QgEBAWAAAAMAkAAAAwAAAwBdoAKAgC0WWVmkkyvAQAAAAwBAAAAHgg==;sprop-pps=RAHBcrRiQA==",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const struct cap_depay_ops *ops = cap_depay_find(codecs[data[0] % 9]);
    if (!ops)
        return 0;
    struct cap_codec_params params = {.clock_rate = 90000, .channels = 2,
                                      .fmtp = fmtps[(data[0] >> 4) % 3]};
    struct cap_depacketizer *d;
    if (cap_depacketizer_new(&d, ops, &params) != 0)
        return 0;
    size_t pos = 1;
    uint16_t seq = 0;
    uint32_t ts = 0;
    while (pos + 3 <= size) {
        size_t len = (size_t)data[pos] << 8 | data[pos + 1];
        uint8_t flags = data[pos + 2];
        pos += 3;
        if (len > size - pos)
            len = size - pos;
        if (flags & 2)
            ts += 3000;
        seq++;
        struct cap_rtp_packet pkt = {.version = 2, .marker = flags & 1, .payload_type = 96,
                                     .sequence = seq, .timestamp = ts, .ssrc = 1,
                                     .payload = data + pos, .payload_len = len};
        cap_depacketizer_push(d, &pkt, seq, seq, (flags & 4) ? 1 : 0);
        struct cap_frame f;
        volatile uint8_t sink = 0;
        while (cap_depacketizer_pop(d, &f) == 1)
            for (size_t i = 0; i < f.len; i++)
                sink ^= f.data[i];
        (void)sink;
        pos += len;
    }
    cap_depacketizer_flush(d);
    struct cap_frame f;
    while (cap_depacketizer_pop(d, &f) == 1) {
    }
    cap_depacketizer_free(d);
    return 0;
}
