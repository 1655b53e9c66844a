/* The depacketizer registry: one line per codec. Adding a codec is its file plus a line. */
#include "codec/depay.h"

#include <string.h>

extern const struct cap_depay_ops cap_depay_opus, cap_depay_pcmu, cap_depay_pcma, cap_depay_g722, cap_depay_av1;

extern const struct cap_depay_ops cap_depay_vp8, cap_depay_vp9;
extern const struct cap_depay_ops cap_depay_h264, cap_depay_h265;

static const struct cap_depay_ops *const depacketizers[] = {
    NULL, /* keeps the array non-empty; lookups skip it */
    &cap_depay_vp8, &cap_depay_vp9,
    &cap_depay_h264, &cap_depay_h265,
    &cap_depay_opus, &cap_depay_pcmu, &cap_depay_pcma, &cap_depay_g722, &cap_depay_av1,
};

const struct cap_depay_ops *cap_depay_find(const char *codec)
{
    for (size_t i = 0; i < sizeof(depacketizers) / sizeof(depacketizers[0]); i++)
        if (depacketizers[i] && strcmp(depacketizers[i]->name, codec) == 0)
            return depacketizers[i];
    return NULL;
}
