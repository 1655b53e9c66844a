/* Payload-type maps (ptmap.h): parsing --map specs and the rtpmap/fmtp lines of SDP. */
#include "track/ptmap.h"

#include "capstan/error.h"
#include "codec/names.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cap_pt_map_init(struct cap_pt_map *map)
{
    memset(map, 0, sizeof(*map));
}

void cap_pt_map_deinit(struct cap_pt_map *map)
{
    free(map->items);
    memset(map, 0, sizeof(*map));
}

static struct cap_pt_mapping *add_entry(struct cap_pt_map *map)
{
    if (map->count == map->cap) {
        size_t cap = map->cap ? map->cap * 2 : 8;
        if (cap > 4096)
            return NULL;
        struct cap_pt_mapping *grown = realloc(map->items, cap * sizeof(*grown));
        if (!grown)
            return NULL;
        map->items = grown;
        map->cap = cap;
    }
    struct cap_pt_mapping *m = &map->items[map->count++];
    memset(m, 0, sizeof(*m));
    return m;
}

static void copy_lower(char *dst, size_t size, const char *src, size_t len)
{
    if (len >= size)
        len = size - 1;
    for (size_t i = 0; i < len; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[len] = '\0';
}

/* Parses "NAME/CLOCK[/CHANNELS]" into m (codec, clock, channels, kind from the table, or
 * default_kind). Returns 0 or CAP_EINVAL. */
static int parse_encoding(const char *text, struct cap_pt_mapping *m, const char *default_kind)
{
    const char *slash = strchr(text, '/');
    if (!slash || slash == text)
        return CAP_EINVAL;
    char name[32];
    copy_lower(name, sizeof(name), text, (size_t)(slash - text));
    char *end;
    unsigned long clock = strtoul(slash + 1, &end, 10);
    if (end == slash + 1 || clock == 0 || clock > 10000000)
        return CAP_EINVAL;
    unsigned long channels = 0;
    if (*end == '/') {
        const char *ch = end + 1;
        channels = strtoul(ch, &end, 10);
        if (end == ch || channels == 0 || channels > 255)
            return CAP_EINVAL;
    }
    while (*end == ' ' || *end == '\t' || *end == '\r')
        end++;
    if (*end != '\0')
        return CAP_EINVAL;
    const struct cap_codec_name *known = cap_codec_by_name(name);
    snprintf(m->codec, sizeof(m->codec), "%s", known ? known->name : name);
    const char *kind = known ? known->kind : default_kind;
    snprintf(m->kind, sizeof(m->kind), "%s", kind ? kind : "video");
    m->clock_rate = (uint32_t)clock;
    m->channels = channels ? (uint32_t)channels : (known ? known->channels : 0);
    return 0;
}

int cap_pt_map_add_spec(struct cap_pt_map *map, const char *spec, char *why, size_t why_size)
{
    char *end;
    unsigned long pt = strtoul(spec, &end, 10);
    if (end == spec || *end != '=' || pt > 127) {
        snprintf(why, why_size, "--map '%s': expected PT=CODEC/CLOCK[/CHANNELS] with PT 0..127", spec);
        return CAP_EINVAL;
    }
    struct cap_pt_mapping m;
    memset(&m, 0, sizeof(m));
    m.pt = (uint8_t)pt;
    if (parse_encoding(end + 1, &m, NULL) != 0) {
        snprintf(why, why_size, "--map '%s': expected PT=CODEC/CLOCK[/CHANNELS], e.g. 96=VP8/90000", spec);
        return CAP_EINVAL;
    }
    struct cap_pt_mapping *slot = add_entry(map);
    if (!slot) {
        snprintf(why, why_size, "too many payload type mappings");
        return CAP_ELIMIT;
    }
    *slot = m;
    return 0;
}

int cap_pt_map_load_sdp(struct cap_pt_map *map, const char *text, size_t len, char *why,
                        size_t why_size)
{
    char kind[16] = "";
    long port = -1;
    bool saw_version = false;
    size_t line_no = 0;
    size_t pos = 0;
    size_t first_of_section = map->count;
    while (pos < len) {
        size_t eol = pos;
        while (eol < len && text[eol] != '\n')
            eol++;
        size_t line_len = eol - pos;
        if (line_len && text[pos + line_len - 1] == '\r')
            line_len--;
        char line[CAP_TRACK_FMTP_MAX + 64];
        line_no++;
        if (line_len >= sizeof(line)) {
            snprintf(why, why_size, "SDP line %zu is too long", line_no);
            return CAP_EFORMAT;
        }
        memcpy(line, text + pos, line_len);
        line[line_len] = '\0';
        pos = eol + 1;
        if (line_len == 0)
            continue;
        if (line_len < 2 || line[1] != '=') {
            snprintf(why, why_size, "SDP line %zu is not 'x=value': %.40s", line_no, line);
            return CAP_EFORMAT;
        }
        if (line[0] == 'v')
            saw_version = true;
        if (line[0] == 'm') {
            char media[16];
            long p;
            if (sscanf(line + 2, "%15s %ld", media, &p) != 2 || p < 0 || p > 65535) {
                snprintf(why, why_size, "SDP line %zu: malformed m= line", line_no);
                return CAP_EFORMAT;
            }
            copy_lower(kind, sizeof(kind), media, strlen(media));
            port = p;
            first_of_section = map->count;
            continue;
        }
        if (line[0] != 'a' || port < 0 || (strcmp(kind, "audio") != 0 && strcmp(kind, "video") != 0))
            continue;
        if (strncmp(line + 2, "rtpmap:", 7) == 0) {
            char *end;
            unsigned long pt = strtoul(line + 9, &end, 10);
            if (end == line + 9 || pt > 127 || *end != ' ') {
                snprintf(why, why_size, "SDP line %zu: malformed rtpmap", line_no);
                return CAP_EFORMAT;
            }
            struct cap_pt_mapping m;
            memset(&m, 0, sizeof(m));
            m.pt = (uint8_t)pt;
            m.port = (uint16_t)port;
            while (*end == ' ')
                end++;
            if (parse_encoding(end, &m, kind) != 0) {
                snprintf(why, why_size, "SDP line %zu: malformed rtpmap encoding '%s'", line_no, end);
                return CAP_EFORMAT;
            }
            /* The m= line's media type is the truth about kind. */
            snprintf(m.kind, sizeof(m.kind), "%s", kind);
            struct cap_pt_mapping *slot = add_entry(map);
            if (!slot) {
                snprintf(why, why_size, "too many rtpmap lines");
                return CAP_ELIMIT;
            }
            *slot = m;
        } else if (strncmp(line + 2, "fmtp:", 5) == 0) {
            char *end;
            unsigned long pt = strtoul(line + 7, &end, 10);
            if (end == line + 7 || pt > 127)
                continue;
            while (*end == ' ')
                end++;
            for (size_t i = first_of_section; i < map->count; i++)
                if (map->items[i].pt == pt)
                    snprintf(map->items[i].fmtp, sizeof(map->items[i].fmtp), "%s", end);
        }
    }
    if (!saw_version) {
        snprintf(why, why_size, "not an SDP file (no v= line)");
        return CAP_EFORMAT;
    }
    return 0;
}

const struct cap_pt_mapping *cap_pt_map_find(struct cap_pt_map *map, uint16_t dst_port, uint8_t pt)
{
    const struct cap_pt_mapping *portless = NULL, *any = NULL;
    for (size_t i = 0; i < map->count; i++) {
        const struct cap_pt_mapping *m = &map->items[i];
        if (m->pt != pt)
            continue;
        if (m->port == dst_port && m->port != 0)
            return m;
        if (m->port == 0 && !portless)
            portless = m;
        if (!any)
            any = m;
    }
    if (portless)
        return portless;
    if (any)
        return any;
    const struct cap_codec_name *known = cap_codec_by_static_pt(pt);
    if (!known)
        return NULL;
    memset(&map->scratch, 0, sizeof(map->scratch));
    map->scratch.pt = pt;
    snprintf(map->scratch.codec, sizeof(map->scratch.codec), "%s", known->name);
    snprintf(map->scratch.kind, sizeof(map->scratch.kind), "%s", known->kind);
    map->scratch.clock_rate = known->clock_rate;
    map->scratch.channels = known->channels;
    return &map->scratch;
}
