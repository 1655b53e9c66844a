/* Pieces the H.264 and H.265 depacketizers share (h26x.h): the formats differ in header
 * sizes and type numbers, not in how fragments, parameter sets and Annex B work. */
#include "codec/h26x.h"

#include "capstan/error.h"

#include <openssl/evp.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const uint8_t start_code[CAP_H26X_START_CODE_LEN] = {0, 0, 0, 1};

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

bool cap_h26x_fmtp_find(const char *fmtp, const char *key, const char **value, size_t *len)
{
    size_t key_len = strlen(key);
    const char *p = fmtp ? fmtp : "";
    while (*p) {
        while (is_blank(*p) || *p == ';')
            p++;
        const char *name = p;
        while (*p && *p != '=' && *p != ';' && !is_blank(*p))
            p++;
        size_t name_len = (size_t)(p - name);
        while (is_blank(*p))
            p++;
        if (*p != '=') {
            while (*p && *p != ';')
                p++;
            continue;
        }
        p++;
        while (is_blank(*p))
            p++;
        const char *start = p;
        while (*p && *p != ';')
            p++;
        const char *end = p;
        while (end > start && is_blank(end[-1]))
            end--;
        if (name_len == key_len && strncasecmp(name, key, key_len) == 0) {
            *value = start;
            *len = (size_t)(end - start);
            return true;
        }
    }
    return false;
}

bool cap_h26x_parse_uint(const char *value, size_t len, uint32_t *out)
{
    if (len == 0 || len > 10)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (value[i] < '0' || value[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(value[i] - '0');
    }
    if (v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

int cap_h26x_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    /* EVP_DecodeBlock wants whole 4-character groups and decodes '=' as zero bits that
     * still count in its result, so padding is restored here and subtracted afterwards. */
    size_t body = len;
    while (body > 0 && in[body - 1] == '=' && len - body < 2)
        body--;
    if (body == 0 || body % 4 == 1)
        return CAP_EFORMAT;
    for (size_t i = 0; i < body; i++)
        if (in[i] == '=' || in[i] == ' ' || in[i] == '\t' || in[i] == '\r' || in[i] == '\n')
            return CAP_EFORMAT;
    size_t padded = (body + 3) / 4 * 4;
    size_t pad = padded - body;
    if (len > padded) /* more '=' than the length needs */
        return CAP_EFORMAT;
    size_t decoded_len = padded / 4 * 3 - pad;
    if (decoded_len > cap)
        return CAP_ELIMIT;
    if (padded > INT_MAX)
        return CAP_ELIMIT;
    uint8_t *scratch = malloc(padded + padded / 4 * 3);
    if (!scratch)
        return CAP_ENOMEM;
    memcpy(scratch, in, body);
    memset(scratch + body, '=', pad);
    uint8_t *decoded = scratch + padded;
    int n = EVP_DecodeBlock(decoded, scratch, (int)padded);
    int result = CAP_EFORMAT;
    if (n >= 0 && (size_t)n == padded / 4 * 3) {
        memcpy(out, decoded, decoded_len);
        result = (int)decoded_len;
    }
    free(scratch);
    return result;
}

int cap_h26x_sprop_each(const char *value, size_t len,
                        int (*take)(void *ctx, const uint8_t *nal, size_t nal_len), void *ctx)
{
    uint8_t *nal = malloc(CAP_H26X_PARAM_SET_MAX);
    if (!nal)
        return CAP_ENOMEM;
    int err = 0;
    size_t i = 0;
    while (i < len && !err) {
        size_t start = i;
        while (i < len && value[i] != ',')
            i++;
        size_t end = i++;
        while (start < end && is_blank(value[start]))
            start++;
        while (end > start && is_blank(value[end - 1]))
            end--;
        int n = cap_h26x_base64_decode(value + start, end - start, nal, CAP_H26X_PARAM_SET_MAX);
        if (n > 0)
            err = take(ctx, nal, (size_t)n);
        else if (n == CAP_ENOMEM)
            err = n;
    }
    free(nal);
    return err;
}

void cap_h26x_bits_init(struct cap_h26x_bits *bits, const uint8_t *data, size_t len)
{
    bits->data = data;
    bits->size_bits = len > SIZE_MAX / 8 ? SIZE_MAX / 8 * 8 : len * 8;
    bits->pos = 0;
    bits->failed = false;
}

uint32_t cap_h26x_bits_read(struct cap_h26x_bits *bits, unsigned count)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < count && i < 32; i++) {
        uint32_t bit = 0;
        if (bits->pos < bits->size_bits) {
            bit = (bits->data[bits->pos >> 3] >> (7 - (bits->pos & 7))) & 1u;
            bits->pos++;
        } else {
            bits->failed = true;
        }
        v = (v << 1) | bit;
    }
    return v;
}

void cap_h26x_bits_skip(struct cap_h26x_bits *bits, size_t count)
{
    if (count > bits->size_bits - bits->pos) {
        bits->pos = bits->size_bits;
        bits->failed = true;
        return;
    }
    bits->pos += count;
}

uint32_t cap_h26x_bits_ue(struct cap_h26x_bits *bits)
{
    unsigned zeros = 0;
    while (cap_h26x_bits_read(bits, 1) == 0) {
        if (bits->failed || ++zeros > 31) {
            bits->failed = true;
            return 0;
        }
    }
    return (uint32_t)((UINT64_C(1) << zeros) - 1 + cap_h26x_bits_read(bits, zeros));
}

int32_t cap_h26x_bits_se(struct cap_h26x_bits *bits)
{
    int64_t k = cap_h26x_bits_ue(bits);
    return (int32_t)((k & 1) ? (k + 1) / 2 : -(k / 2));
}

size_t cap_h26x_unescape(uint8_t *dst, size_t cap, const uint8_t *src, size_t len)
{
    size_t out = 0;
    unsigned zeros = 0;
    for (size_t i = 0; i < len && out < cap; i++) {
        if (zeros >= 2 && src[i] == 3) {
            zeros = 0;
            continue;
        }
        dst[out++] = src[i];
        zeros = src[i] == 0 ? zeros + 1 : 0;
    }
    return out;
}

int cap_h26x_append_nal(struct cap_buf *frame, const uint8_t *header, size_t header_len,
                        const uint8_t *body, size_t body_len)
{
    if (header_len > SIZE_MAX / 2 || body_len > SIZE_MAX / 2)
        return CAP_ELIMIT;
    int err = cap_buf_reserve(frame, sizeof(start_code) + header_len + body_len);
    if (err)
        return err;
    cap_buf_append(frame, start_code, sizeof(start_code));
    cap_buf_append(frame, header, header_len);
    cap_buf_append(frame, body, body_len);
    return 0;
}

/* Offset just past the next 00 00 01 at or after `from`, or SIZE_MAX. Finds each 01 with
 * memchr (vectorised) and looks behind it: frames are scanned whole several times, and a
 * byte-at-a-time loop was most of H.264 transmux. */
static size_t after_start_code(const uint8_t *data, size_t len, size_t from)
{
    if (len < 3 || from > len - 3)
        return SIZE_MAX;
    const uint8_t *p = data + from + 2, *end = data + len;
    while ((p = memchr(p, 1, (size_t)(end - p))) != NULL) {
        if (p[-1] == 0 && p[-2] == 0)
            return (size_t)(p - data) + 1;
        p++;
    }
    return SIZE_MAX;
}

bool cap_h26x_next_nal(const uint8_t *data, size_t len, size_t *pos, const uint8_t **nal,
                       size_t *nal_len)
{
    size_t begin = after_start_code(data, len, *pos);
    if (begin == SIZE_MAX)
        return false;
    size_t next = after_start_code(data, len, begin);
    size_t end = next == SIZE_MAX ? len : next - 3;
    *pos = end;
    while (end > begin && data[end - 1] == 0) /* the leading zero of a 4-byte start code */
        end--;
    *nal = data + begin;
    *nal_len = end - begin;
    return true;
}

int cap_h26x_insert(struct cap_buf *frame, size_t at, const uint8_t *data, size_t len)
{
    if (at > frame->len)
        return CAP_EINVAL;
    int err = cap_buf_reserve(frame, len);
    if (err)
        return err;
    if (len) {
        memmove(frame->data + at + len, frame->data + at, frame->len - at);
        memcpy(frame->data + at, data, len);
    }
    frame->len += len;
    return 0;
}

#define HOIST_COMPARED_MAX 16 /* parameter sets kept for spotting repeats; bounds the work */

struct seen_sets {
    const uint8_t *nal[HOIST_COMPARED_MAX];
    size_t len[HOIST_COMPARED_MAX];
    unsigned count;
};

static bool seen_before(const struct seen_sets *seen, const uint8_t *nal, size_t len)
{
    for (unsigned i = 0; i < seen->count; i++)
        if (seen->len[i] == len && memcmp(seen->nal[i], nal, len) == 0)
            return true;
    return false;
}

static void see(struct seen_sets *seen, const uint8_t *nal, size_t len)
{
    if (seen->count < HOIST_COMPARED_MAX) {
        seen->nal[seen->count] = nal;
        seen->len[seen->count++] = len;
    }
}

int cap_h26x_hoist_param_sets(struct cap_buf *frame,
                              enum cap_h26x_nal_class (*classify)(const uint8_t *nal, size_t len))
{
    const uint8_t *nal;
    size_t len, pos = 0, first_vcl = SIZE_MAX;
    bool late = false;
    for (size_t before = pos; cap_h26x_next_nal(frame->data, frame->len, &pos, &nal, &len);
         before = pos) {
        enum cap_h26x_nal_class class = len ? classify(nal, len) : CAP_H26X_NAL_OTHER;
        if (class == CAP_H26X_NAL_VCL && first_vcl == SIZE_MAX)
            first_vcl = before;
        if (class == CAP_H26X_NAL_PARAM_SET && first_vcl != SIZE_MAX) {
            late = true;
            break;
        }
    }
    if (!late)
        return 0;

    struct cap_buf out;
    cap_buf_init(&out, frame->max);
    struct seen_sets seen = {.count = 0};
    int err = 0;
    /* Up to the first slice as it was; then the late sets that are new; then the rest. */
    for (pos = 0;
         !err && pos < first_vcl && cap_h26x_next_nal(frame->data, first_vcl, &pos, &nal, &len);) {
        if (len && classify(nal, len) == CAP_H26X_NAL_PARAM_SET)
            see(&seen, nal, len);
        err = cap_h26x_append_nal(&out, NULL, 0, nal, len);
    }
    for (pos = first_vcl; !err && cap_h26x_next_nal(frame->data, frame->len, &pos, &nal, &len);) {
        if (len == 0 || classify(nal, len) != CAP_H26X_NAL_PARAM_SET ||
            seen_before(&seen, nal, len))
            continue;
        see(&seen, nal, len);
        err = cap_h26x_append_nal(&out, NULL, 0, nal, len);
    }
    for (pos = first_vcl; !err && cap_h26x_next_nal(frame->data, frame->len, &pos, &nal, &len);)
        if (len == 0 || classify(nal, len) != CAP_H26X_NAL_PARAM_SET)
            err = cap_h26x_append_nal(&out, NULL, 0, nal, len);
    if (!err) {
        cap_buf_reset(frame);
        err = cap_buf_append(frame, out.data, out.len);
    }
    cap_buf_deinit(&out);
    return err;
}

void cap_h26x_fu_sequence(struct cap_h26x_fu *fu, uint16_t seq)
{
    if (fu->seq_known && seq != (uint16_t)(fu->last_seq + 1) && fu->state == CAP_H26X_FU_OPEN)
        fu->state = CAP_H26X_FU_SKIPPING;
    fu->seq_known = true;
    fu->last_seq = seq;
}

void cap_h26x_fu_close(struct cap_h26x_fu *fu)
{
    fu->state = CAP_H26X_FU_NONE;
}

int cap_h26x_fu_fragment(struct cap_h26x_fu *fu, struct cap_buf *frame, bool start, bool end,
                         unsigned type, const uint8_t *header, size_t header_len,
                         const uint8_t *data, size_t len, size_t *whole)
{
    if (whole)
        *whole = SIZE_MAX;
    if (start) {
        size_t nal_start = frame->len + CAP_H26X_START_CODE_LEN;
        int err = cap_h26x_append_nal(frame, header, header_len, data, len);
        if (err) {
            fu->state = end ? CAP_H26X_FU_NONE : CAP_H26X_FU_SKIPPING;
            return err;
        }
        fu->state = end ? CAP_H26X_FU_NONE : CAP_H26X_FU_OPEN;
        fu->nal_start = nal_start;
        fu->type = type;
        if (end && whole)
            *whole = nal_start;
        return 0;
    }
    switch (fu->state) {
    case CAP_H26X_FU_NONE:
        /* Its start is not in this frame: malformed, or lost before the frame began. */
        fu->state = end ? CAP_H26X_FU_NONE : CAP_H26X_FU_SKIPPING;
        return CAP_EFORMAT;
    case CAP_H26X_FU_SKIPPING:
        if (end)
            fu->state = CAP_H26X_FU_NONE;
        return 0;
    case CAP_H26X_FU_OPEN:
        break;
    }
    if (type != fu->type) {
        fu->state = end ? CAP_H26X_FU_NONE : CAP_H26X_FU_SKIPPING;
        return CAP_EFORMAT;
    }
    int err = cap_buf_append(frame, data, len);
    if (err) {
        fu->state = end ? CAP_H26X_FU_NONE : CAP_H26X_FU_SKIPPING;
        return err;
    }
    if (end) {
        fu->state = CAP_H26X_FU_NONE;
        if (whole)
            *whole = fu->nal_start;
    }
    return 0;
}

void cap_h26x_fu_reset(struct cap_h26x_fu *fu)
{
    memset(fu, 0, sizeof(*fu));
}

int cap_h26x_params_remember(struct cap_h26x_param_sets *params, enum cap_h26x_source source,
                             unsigned kind, int64_t id, const uint8_t *nal, size_t len)
{
    if (len == 0 || len > CAP_H26X_PARAM_SET_MAX)
        return 0; /* malformed; not worth keeping */
    struct cap_h26x_param_set *sets = params->sets[source];
    unsigned *count = &params->count[source];
    struct cap_h26x_param_set *slot = NULL;
    for (unsigned i = 0; i < *count; i++) {
        if (sets[i].kind == kind && sets[i].id == id) {
            if (sets[i].len == len && memcmp(sets[i].data, nal, len) == 0)
                return 0; /* the usual case: the same sets again before every keyframe */
            slot = &sets[i];
            break;
        }
    }
    uint8_t *copy = malloc(len);
    if (!copy)
        return CAP_ENOMEM;
    memcpy(copy, nal, len);
    if (!slot) {
        if (*count == CAP_H26X_PARAM_SETS_MAX) {
            free(sets[0].data);
            memmove(&sets[0], &sets[1], sizeof(sets[0]) * (CAP_H26X_PARAM_SETS_MAX - 1));
            (*count)--;
        }
        slot = &sets[(*count)++];
        slot->data = NULL;
    }
    free(slot->data);
    slot->kind = kind;
    slot->id = id;
    slot->data = copy;
    slot->len = len;
    return 0;
}

int cap_h26x_params_write(const struct cap_h26x_param_sets *params, unsigned kind,
                          struct cap_buf *out)
{
    enum cap_h26x_source source = CAP_H26X_FROM_FMTP;
    for (unsigned i = 0; i < params->count[CAP_H26X_IN_BAND]; i++)
        if (params->sets[CAP_H26X_IN_BAND][i].kind == kind)
            source = CAP_H26X_IN_BAND;
    for (unsigned i = 0; i < params->count[source]; i++) {
        const struct cap_h26x_param_set *set = &params->sets[source][i];
        if (set->kind != kind)
            continue;
        int err = cap_h26x_append_nal(out, NULL, 0, set->data, set->len);
        if (err)
            return err;
    }
    return 0;
}

void cap_h26x_params_free(struct cap_h26x_param_sets *params)
{
    for (int source = 0; source < 2; source++) {
        for (unsigned i = 0; i < params->count[source]; i++)
            free(params->sets[source][i].data);
        params->count[source] = 0;
    }
}

int cap_h26x_check_aggregate(const uint8_t *payload, size_t len, size_t start, size_t min_size)
{
    int count = 0;
    for (size_t pos = start; pos < len; count++) {
        if (len - pos < 2)
            return CAP_EFORMAT;
        size_t size = (size_t)payload[pos] << 8 | payload[pos + 1];
        pos += 2;
        if (size < min_size || size > len - pos)
            return CAP_EFORMAT;
        pos += size;
    }
    return count ? count : CAP_EFORMAT;
}
