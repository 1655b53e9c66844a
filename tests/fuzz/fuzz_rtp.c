/* Fuzz target: RTP parsing, header-extension walks and the RTP/RTCP demux rule. */
#include "rtp/rtp.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)cap_rtp_looks_like_rtcp(data, size);
    struct cap_rtp_packet pkt;
    if (cap_rtp_parse(data, size, &pkt) != 0)
        return 0;
    /* Touch every byte the parser claims is ours, so ASan sees any overrun. */
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < pkt.payload_len; i++)
        sink ^= pkt.payload[i];
    size_t offset = 0;
    struct cap_rtp_ext_element el;
    while (cap_rtp_ext_next(&pkt, &offset, &el) == 1)
        for (size_t i = 0; i < el.len; i++)
            sink ^= el.data[i];
    (void)cap_rtp_ext_find(&pkt, 3, &el);
    (void)sink;
    return 0;
}
