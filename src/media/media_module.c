/* The capstan-media module's entry point (media.h): the table of the media layer's
 * functions, linked into capstan-media.so next to the code it points to. */
#include "media/media.h"

static const struct cap_media_api api = {
    .abi = CAP_MEDIA_ABI,
    .size = sizeof(struct cap_media_api),
    .transmux_recording = cap_transmux_recording,
    .transmux_result_deinit = cap_transmux_result_deinit,
    .transmux_summary = cap_transmux_summary,
    .compose_recording = cap_compose_recording,
    .compose_result_deinit = cap_compose_result_deinit,
    .compose_summary = cap_compose_summary,
};

__attribute__((visibility("default"))) const struct cap_media_api *cap_media_module_api(void)
{
    return &api;
}
