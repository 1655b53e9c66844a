/* Codec names as SDP writes them (rtpmap encoding names) mapped to capstan's canonical
 * lower-case name, media kind and default clock rate, plus RFC 3551's static payload
 * types. The depacketizer registry (one file per codec) builds on these names. */
#ifndef CAP_CODEC_NAMES_H
#define CAP_CODEC_NAMES_H

#include <stdint.h>

struct cap_codec_name {
    const char *name;       /* canonical: "opus", "vp8", "h264", "pcmu", ... */
    const char *kind;       /* "audio" or "video" */
    uint32_t clock_rate;    /* the usual RTP clock */
    uint32_t channels;      /* 0 for video */
};

/* Case-insensitive lookup of an rtpmap encoding name ("OPUS", "H264", "telephone-event").
 * NULL if unknown. */
const struct cap_codec_name *cap_codec_by_name(const char *encoding);

/* RFC 3551 static payload types (0..34); NULL for dynamic or unassigned ones. */
const struct cap_codec_name *cap_codec_by_static_pt(uint8_t pt);

#endif
