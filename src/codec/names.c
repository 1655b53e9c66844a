/* The table behind names.h. Names follow the IANA RTP payload format registry. */
#include "codec/names.h"

#include <stddef.h>
#include <strings.h>

static const struct cap_codec_name codecs[] = {
    {"opus", "audio", 48000, 2},
    {"pcmu", "audio", 8000, 1},
    {"pcma", "audio", 8000, 1},
    {"g722", "audio", 8000, 1}, /* RTP clock 8000 by RFC 3551's historical error */
    {"g729", "audio", 8000, 1},
    {"gsm", "audio", 8000, 1},
    {"ilbc", "audio", 8000, 1},
    {"isac", "audio", 16000, 1},
    {"l16", "audio", 44100, 2},
    {"mpeg4-generic", "audio", 48000, 2},
    {"telephone-event", "audio", 8000, 1},
    {"cn", "audio", 8000, 1},
    {"red", "audio", 48000, 2},
    {"vp8", "video", 90000, 0},
    {"vp9", "video", 90000, 0},
    {"h264", "video", 90000, 0},
    {"h265", "video", 90000, 0},
    {"av1", "video", 90000, 0},
    {"jpeg", "video", 90000, 0},
    {"h263", "video", 90000, 0},
    {"h263-1998", "video", 90000, 0},
    {"rtx", "video", 90000, 0},
    {"ulpfec", "video", 90000, 0},
    {"flexfec-03", "video", 90000, 0},
};

const struct cap_codec_name *cap_codec_by_name(const char *encoding)
{
    /* AV1 appears as "AV1" and, in older SDPs, "AV1X". */
    if (strcasecmp(encoding, "av1x") == 0)
        encoding = "av1";
    for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++)
        if (strcasecmp(codecs[i].name, encoding) == 0)
            return &codecs[i];
    return NULL;
}

const struct cap_codec_name *cap_codec_by_static_pt(uint8_t pt)
{
    switch (pt) {
    case 0:
        return cap_codec_by_name("pcmu");
    case 3:
        return cap_codec_by_name("gsm");
    case 8:
        return cap_codec_by_name("pcma");
    case 9:
        return cap_codec_by_name("g722");
    case 13:
        return cap_codec_by_name("cn");
    case 18:
        return cap_codec_by_name("g729");
    case 26:
        return cap_codec_by_name("jpeg");
    case 34:
        return cap_codec_by_name("h263");
    default:
        return NULL;
    }
}
