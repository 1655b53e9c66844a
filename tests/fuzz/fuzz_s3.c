/* Fuzz target: what the S3 backend parses: store URLs (first byte 0) and ListObjectsV2
 * answers from a server (first byte 1, listed under a prefix), SigV4 URI encoding. */
#include "capstan/error.h"
#include "store/s3.h"
#include "store/sigv4.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_entry(void *user, const char *key, const struct cap_blob_info *info)
{
    (void)info;
    size_t *n = user;
    (*n)++;
    return key[0] == '\0'; /* never: the parser only hands out keys under the prefix */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 << 20)
        return 0;
    char *text = malloc(size);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    char why[512];
    if (data[0] == 0) {
        struct cap_s3_config cfg;
        if (cap_s3_parse_url(text, &cfg, why, sizeof(why)) == 0 &&
            (!cfg.bucket[0] || !cfg.host[0] || !cfg.access_key[0] || !cfg.part_size))
            abort(); /* accepted, yet incomplete */
    } else if (data[0] == 1) {
        size_t entries = 0;
        char token[2048];
        bool stop = false;
        cap_s3_parse_list(text, size - 1, "pre/", count_entry, &entries, token, sizeof(token),
                          &stop, why, sizeof(why));
        if (stop)
            abort();
    } else {
        struct cap_buf b;
        cap_buf_init(&b, 3 * size + 16);
        if (cap_sigv4_uri_encode(&b, text, size - 1, data[0] & 1) != 0)
            abort(); /* three bytes per input byte at most: the cap holds it */
        cap_buf_deinit(&b);
    }
    free(text);
    return 0;
}
