/* Payload-type maps: what codec a (destination port, payload type) pair carries, from an
 * SDP file or from `--map PT=CODEC/CLOCK[/CHANNELS]` options, falling back to RFC 3551's
 * static payload types. */
#ifndef CAP_TRACK_PTMAP_H
#define CAP_TRACK_PTMAP_H

#include "capstan/track.h"

#include <stddef.h>
#include <stdint.h>

struct cap_pt_mapping {
    uint16_t port;             /* the m= line's port; 0 matches any */
    uint8_t pt;
    char codec[32];            /* canonical lower-case name, or the SDP's name lower-cased */
    char kind[16];             /* "audio" or "video" */
    uint32_t clock_rate;
    uint32_t channels;
    char fmtp[CAP_TRACK_FMTP_MAX];
};

struct cap_pt_map {
    struct cap_pt_mapping *items;
    size_t count;
    size_t cap;
    struct cap_pt_mapping scratch; /* holds static-table answers of cap_pt_map_find */
};

void cap_pt_map_init(struct cap_pt_map *map);
void cap_pt_map_deinit(struct cap_pt_map *map);

/* "96=VP8/90000", "111=opus/48000/2". On error returns CAP_EINVAL and writes why. */
int cap_pt_map_add_spec(struct cap_pt_map *map, const char *spec, char *why, size_t why_size);

/* Adds every rtpmap (and its fmtp) of every audio/video m= section. CAP_EFORMAT with a
 * reason when the text is not SDP or an rtpmap line is malformed. */
int cap_pt_map_load_sdp(struct cap_pt_map *map, const char *text, size_t len, char *why,
                        size_t why_size);

/* Most specific match: same port and PT, then a port-less mapping, then any mapping of
 * that PT, then the static table. NULL if none. The result is valid until the next call
 * (static entries are returned through a per-map scratch copy). */
const struct cap_pt_mapping *cap_pt_map_find(struct cap_pt_map *map, uint16_t dst_port, uint8_t pt);

#endif
