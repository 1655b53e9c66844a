/* Encoding and checking of the chunk file's pieces: header, records, index and footer.
 * The reader, writer and repair all go through these, so the layout lives in one place. */
#include "track/chunk_format.h"

#include "capstan/error.h"
#include "util/bytes.h"
#include "util/crc32c.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Index entries: one at the first record, every keyframe, and otherwise at least one per
 * second of arrival or per this many records, so a seek scans little. */
#define INDEX_EVERY_RECORDS 256
#define INDEX_EVERY_NS INT64_C(1000000000)

void cap_chunk_encode_record_header(uint8_t *out, uint8_t type, uint8_t flags, uint32_t length,
                                    int64_t arrival_ns)
{
    out[0] = type;
    out[1] = flags;
    out[2] = 0;
    out[3] = 0;
    cap_store_le32(out + 4, length);
    cap_store_le64(out + 8, (uint64_t)arrival_ns);
}

int cap_chunk_decode_record_header(const uint8_t *in, struct cap_chunk_record_header *out)
{
    out->type = in[0];
    out->flags = in[1];
    out->length = cap_load_le32(in + 4);
    out->arrival_ns = (int64_t)cap_load_le64(in + 8);
    if (in[2] != 0 || in[3] != 0)
        return CAP_EFORMAT;
    switch (out->type) {
    case CAP_RECORD_RTP:
    case CAP_RECORD_RTCP:
    case CAP_RECORD_EVENT:
        return out->length <= CAP_CHUNK_PACKET_MAX ? 0 : CAP_EFORMAT;
    case CAP_RECORD_INDEX:
        return out->length <= CAP_CHUNK_INDEX_MAX ? 0 : CAP_EFORMAT;
    default:
        return CAP_EFORMAT;
    }
}

long cap_chunk_check_record(const uint8_t *rec, size_t avail, struct cap_chunk_record_header *hdr)
{
    if (avail < CAP_CHUNK_RECORD_HEADER_LEN)
        return CAP_ETRUNC;
    int err = cap_chunk_decode_record_header(rec, hdr);
    if (err)
        return err;
    size_t total = CAP_CHUNK_RECORD_OVERHEAD + (size_t)hdr->length;
    if (avail < total)
        return CAP_ETRUNC;
    uint32_t stored = cap_load_le32(rec + total - CAP_CHUNK_RECORD_TRAILER_LEN);
    if (cap_crc32c(0, rec, total - CAP_CHUNK_RECORD_TRAILER_LEN) != stored)
        return CAP_ECHECKSUM;
    return (long)total;
}

static void set_string(char *dst, size_t size, json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    dst[0] = '\0';
    if (v) {
        size_t n = strlen(v);
        if (n >= size)
            n = size - 1;
        memcpy(dst, v, n);
        dst[n] = '\0';
    }
}

int cap_track_info_to_json(const struct cap_track_info *info, struct cap_buf *out)
{
    json_t *pts = json_array();
    for (unsigned i = 0; i < info->payload_type_count && i < CAP_TRACK_MAX_PT; i++)
        json_array_append_new(pts, json_integer(info->payload_types[i]));
    json_t *obj = json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:o, s:I, "
                            "s:s, s:I, s:I}",
                            "format", "capstan-track", "version", CAP_CHUNK_VERSION,
                            "track_id", info->track_id, "recording_id", info->recording_id,
                            "room_id", info->room_id, "peer_id", info->peer_id,
                            "producer_id", info->producer_id, "kind", info->kind,
                            "codec", info->codec, "clock_rate", (json_int_t)info->clock_rate,
                            "channels", (json_int_t)info->channels, "payload_types", pts,
                            "ssrc", (json_int_t)info->ssrc, "fmtp", info->fmtp,
                            "chunk_seq", (json_int_t)info->chunk_seq,
                            "created_ns", (json_int_t)info->created_ns);
    if (!obj)
        return CAP_ENOMEM;
    char *text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (!text)
        return CAP_ENOMEM;
    int err = cap_buf_append(out, text, strlen(text));
    free(text);
    return err;
}

int cap_track_info_from_json(const char *text, size_t len, struct cap_track_info *info)
{
    json_error_t jerr;
    json_t *obj = json_loadb(text, len, 0, &jerr);
    if (!obj || !json_is_object(obj)) {
        json_decref(obj);
        return CAP_EFORMAT;
    }
    memset(info, 0, sizeof(*info));
    int err = 0;
    if (!json_is_string(json_object_get(obj, "track_id")) ||
        !json_is_integer(json_object_get(obj, "ssrc"))) {
        err = CAP_EFORMAT;
        goto out;
    }
    set_string(info->track_id, sizeof(info->track_id), obj, "track_id");
    set_string(info->recording_id, sizeof(info->recording_id), obj, "recording_id");
    set_string(info->room_id, sizeof(info->room_id), obj, "room_id");
    set_string(info->peer_id, sizeof(info->peer_id), obj, "peer_id");
    set_string(info->producer_id, sizeof(info->producer_id), obj, "producer_id");
    set_string(info->kind, sizeof(info->kind), obj, "kind");
    set_string(info->codec, sizeof(info->codec), obj, "codec");
    set_string(info->fmtp, sizeof(info->fmtp), obj, "fmtp");
    info->clock_rate = (uint32_t)json_integer_value(json_object_get(obj, "clock_rate"));
    info->channels = (uint32_t)json_integer_value(json_object_get(obj, "channels"));
    info->ssrc = (uint32_t)json_integer_value(json_object_get(obj, "ssrc"));
    info->chunk_seq = (uint32_t)json_integer_value(json_object_get(obj, "chunk_seq"));
    info->created_ns = (int64_t)json_integer_value(json_object_get(obj, "created_ns"));
    json_t *pts = json_object_get(obj, "payload_types");
    size_t i;
    json_t *pt;
    json_array_foreach(pts, i, pt)
    {
        if (info->payload_type_count < CAP_TRACK_MAX_PT && json_is_integer(pt))
            info->payload_types[info->payload_type_count++] = (uint8_t)json_integer_value(pt);
    }
out:
    json_decref(obj);
    return err;
}

int cap_chunk_encode_header(struct cap_buf *buf, const struct cap_track_info *info)
{
    size_t start = buf->len;
    uint8_t prefix[CAP_CHUNK_PREFIX_LEN] = {0};
    int err = cap_buf_append(buf, prefix, sizeof(prefix));
    if (err)
        return err;
    err = cap_track_info_to_json(info, buf);
    if (err)
        return err;
    size_t json_len = buf->len - start - CAP_CHUNK_PREFIX_LEN;
    if (json_len > CAP_CHUNK_HEADER_JSON_MAX)
        return CAP_ELIMIT;
    uint8_t *p = buf->data + start;
    memcpy(p, CAP_CHUNK_MAGIC, 4);
    cap_store_le16(p + 4, CAP_CHUNK_VERSION);
    cap_store_le16(p + 6, 0);
    cap_store_le32(p + 8, (uint32_t)json_len);
    uint8_t crc[4];
    cap_store_le32(crc, cap_crc32c(0, p, CAP_CHUNK_PREFIX_LEN + json_len));
    return cap_buf_append(buf, crc, 4);
}

long cap_chunk_decode_header(const uint8_t *in, size_t avail, struct cap_track_info *info)
{
    if (avail < CAP_CHUNK_PREFIX_LEN) {
        /* A torn header still has to start like one to be ours. */
        size_t n = avail < 4 ? avail : 4;
        return memcmp(in, CAP_CHUNK_MAGIC, n) == 0 ? CAP_ETRUNC : CAP_EFORMAT;
    }
    if (memcmp(in, CAP_CHUNK_MAGIC, 4) != 0)
        return CAP_EFORMAT;
    if (cap_load_le16(in + 4) != CAP_CHUNK_VERSION)
        return CAP_EVERSION;
    uint32_t json_len = cap_load_le32(in + 8);
    if (json_len > CAP_CHUNK_HEADER_JSON_MAX)
        return CAP_EFORMAT;
    size_t total = CAP_CHUNK_PREFIX_LEN + (size_t)json_len + 4;
    if (avail < total)
        return CAP_ETRUNC;
    if (cap_crc32c(0, in, total - 4) != cap_load_le32(in + total - 4))
        return CAP_ECHECKSUM;
    int err = cap_track_info_from_json((const char *)in + CAP_CHUNK_PREFIX_LEN, json_len, info);
    if (err)
        return err;
    return (long)total;
}

static void encode_index_fixed(uint8_t *fixed, const struct cap_chunk_summary *s, uint32_t count)
{
    cap_store_le32(fixed + 0, count);
    cap_store_le32(fixed + 4, s->keyframes);
    cap_store_le64(fixed + 8, (uint64_t)s->first_arrival_ns);
    cap_store_le64(fixed + 16, (uint64_t)s->last_arrival_ns);
    cap_store_le32(fixed + 24, s->first_rtp_ts);
    cap_store_le32(fixed + 28, s->last_rtp_ts);
    cap_store_le64(fixed + 32, s->rtp_records);
    cap_store_le64(fixed + 40, s->rtcp_records);
    cap_store_le64(fixed + 48, s->event_records);
    cap_store_le64(fixed + 56, s->rtp_bytes);
}

int cap_chunk_decode_index(const uint8_t *body, size_t len, struct cap_chunk_summary *s)
{
    if (len < CAP_CHUNK_INDEX_FIXED_LEN)
        return CAP_EFORMAT;
    memset(s, 0, sizeof(*s));
    s->index_entries = cap_load_le32(body + 0);
    if ((len - CAP_CHUNK_INDEX_FIXED_LEN) / CAP_CHUNK_INDEX_ENTRY_LEN != s->index_entries ||
        (len - CAP_CHUNK_INDEX_FIXED_LEN) % CAP_CHUNK_INDEX_ENTRY_LEN != 0)
        return CAP_EFORMAT;
    s->keyframes = cap_load_le32(body + 4);
    s->first_arrival_ns = (int64_t)cap_load_le64(body + 8);
    s->last_arrival_ns = (int64_t)cap_load_le64(body + 16);
    s->first_rtp_ts = cap_load_le32(body + 24);
    s->last_rtp_ts = cap_load_le32(body + 28);
    s->rtp_records = cap_load_le64(body + 32);
    s->rtcp_records = cap_load_le64(body + 40);
    s->event_records = cap_load_le64(body + 48);
    s->rtp_bytes = cap_load_le64(body + 56);
    s->sealed = true;
    return 0;
}

void cap_chunk_index_entry_at(const uint8_t *body, uint32_t i, struct cap_chunk_index_entry *out)
{
    const uint8_t *e = body + CAP_CHUNK_INDEX_FIXED_LEN + (size_t)i * CAP_CHUNK_INDEX_ENTRY_LEN;
    out->arrival_ns = (int64_t)cap_load_le64(e + 0);
    out->offset = cap_load_le64(e + 8);
    out->rtp_ts = cap_load_le32(e + 16);
    out->flags = cap_load_le32(e + 20);
}

uint32_t cap_chunk_seq_of_name(const char *name)
{
    char *end;
    unsigned long seq = strtoul(name, &end, 10);
    if (end == name || strcmp(end, ".ctrk") != 0 || seq > UINT32_MAX)
        return 0;
    return (uint32_t)seq;
}

void cap_chunk_encode_footer(uint8_t *out, uint64_t index_offset)
{
    cap_store_le64(out, index_offset);
    memcpy(out + 8, CAP_CHUNK_FOOTER_MAGIC, 4);
    cap_store_le32(out + 12, cap_crc32c(0, out, 12));
}

int64_t cap_chunk_decode_footer(const uint8_t *in)
{
    if (memcmp(in + 8, CAP_CHUNK_FOOTER_MAGIC, 4) != 0)
        return CAP_EFORMAT;
    if (cap_crc32c(0, in, 12) != cap_load_le32(in + 12))
        return CAP_EFORMAT;
    uint64_t off = cap_load_le64(in);
    if (off > (uint64_t)INT64_MAX)
        return CAP_EFORMAT;
    return (int64_t)off;
}

void cap_chunk_indexer_init(struct cap_chunk_indexer *ix)
{
    memset(&ix->summary, 0, sizeof(ix->summary));
    cap_buf_init(&ix->entries, CAP_CHUNK_INDEX_MAX - CAP_CHUNK_INDEX_FIXED_LEN);
    ix->records_since_entry = 0;
    ix->last_entry_arrival = 0;
}

void cap_chunk_indexer_deinit(struct cap_chunk_indexer *ix)
{
    cap_buf_deinit(&ix->entries);
}

void cap_chunk_indexer_add(struct cap_chunk_indexer *ix, uint64_t offset, uint8_t type,
                           uint8_t flags, int64_t arrival_ns, const uint8_t *body, size_t len)
{
    struct cap_chunk_summary *s = &ix->summary;
    uint64_t records = s->rtp_records + s->rtcp_records + s->event_records;
    if (records == 0)
        s->first_arrival_ns = arrival_ns;
    s->last_arrival_ns = arrival_ns;
    bool has_ts = false;
    uint32_t rtp_ts = 0;
    if (type == CAP_RECORD_RTP) {
        if (len >= 8) {
            rtp_ts = cap_load_be32(body + 4);
            has_ts = true;
            if (s->rtp_records == 0)
                s->first_rtp_ts = rtp_ts;
            s->last_rtp_ts = rtp_ts;
        }
        s->rtp_records++;
        s->rtp_bytes += len;
    } else if (type == CAP_RECORD_RTCP) {
        s->rtcp_records++;
    } else {
        s->event_records++;
    }
    bool keyframe = (flags & CAP_RECORD_FLAG_KEYFRAME) != 0;
    if (keyframe)
        s->keyframes++;
    bool due = records == 0 || keyframe || ix->records_since_entry >= INDEX_EVERY_RECORDS ||
               arrival_ns - ix->last_entry_arrival >= INDEX_EVERY_NS;
    ix->records_since_entry++;
    if (!due)
        return;
    uint8_t e[CAP_CHUNK_INDEX_ENTRY_LEN];
    cap_store_le64(e + 0, (uint64_t)arrival_ns);
    cap_store_le64(e + 8, offset);
    cap_store_le32(e + 16, has_ts ? rtp_ts : 0);
    cap_store_le32(e + 20, flags);
    /* A full index only costs seek precision, never data: stop adding entries. */
    if (cap_buf_append(&ix->entries, e, sizeof(e)) == 0) {
        ix->records_since_entry = 0;
        ix->last_entry_arrival = arrival_ns;
        s->index_entries++;
    }
}

int cap_chunk_indexer_seal(struct cap_chunk_indexer *ix, uint64_t index_offset,
                           struct cap_buf *out)
{
    size_t start = out->len;
    size_t body_len = CAP_CHUNK_INDEX_FIXED_LEN + ix->entries.len;
    uint8_t hdr[CAP_CHUNK_RECORD_HEADER_LEN];
    cap_chunk_encode_record_header(hdr, CAP_RECORD_INDEX, 0, (uint32_t)body_len,
                                   ix->summary.last_arrival_ns);
    int err = cap_buf_append(out, hdr, sizeof(hdr));
    if (err)
        return err;
    uint8_t fixed[CAP_CHUNK_INDEX_FIXED_LEN];
    encode_index_fixed(fixed, &ix->summary, ix->summary.index_entries);
    if ((err = cap_buf_append(out, fixed, sizeof(fixed))) ||
        (err = cap_buf_append(out, ix->entries.data, ix->entries.len)))
        return err;
    uint8_t crc[4];
    cap_store_le32(crc, cap_crc32c(0, out->data + start, out->len - start));
    uint8_t footer[CAP_CHUNK_FOOTER_LEN];
    cap_chunk_encode_footer(footer, index_offset);
    if ((err = cap_buf_append(out, crc, 4)) || (err = cap_buf_append(out, footer, sizeof(footer))))
        return err;
    return 0;
}
