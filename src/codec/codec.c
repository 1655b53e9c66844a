/* The depacketizer registry: one line per codec. Adding a codec is its file plus a line. */
#include "codec/depay.h"

#include <string.h>

static const struct cap_depay_ops *const depacketizers[] = {
    NULL, /* keeps the array non-empty; lookups skip it */
};

const struct cap_depay_ops *cap_depay_find(const char *codec)
{
    for (size_t i = 0; i < sizeof(depacketizers) / sizeof(depacketizers[0]); i++)
        if (depacketizers[i] && strcmp(depacketizers[i]->name, codec) == 0)
            return depacketizers[i];
    return NULL;
}
