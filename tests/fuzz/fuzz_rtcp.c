/* Fuzz target: RTCP compound parsing and report-block decoding. */
#include "rtp/rtcp.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cap_rtcp_packet pkts[CAP_RTCP_MAX_PACKETS];
    int n = cap_rtcp_parse(data, size, pkts, CAP_RTCP_MAX_PACKETS);
    volatile uint32_t sink = 0;
    for (int i = 0; i < n; i++) {
        for (size_t k = 0; k < pkts[i].len; k++)
            sink ^= pkts[i].data[k];
        for (size_t k = 0; k < pkts[i].fci_len; k++)
            sink ^= pkts[i].fci[k];
        if (pkts[i].type == CAP_RTCP_SR || pkts[i].type == CAP_RTCP_RR) {
            for (unsigned b = 0; b < pkts[i].count; b++) {
                struct cap_rtcp_report_block block;
                cap_rtcp_report_block(&pkts[i], b, &block);
                sink ^= block.ssrc;
            }
        }
    }
    if (n > 0)
        sink ^= cap_rtcp_sender_ssrc(pkts, n);
    (void)sink;
    return 0;
}
