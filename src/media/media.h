/* The media layer's entry points: transmux and compose, everything that links libavformat,
 * libavcodec, libswscale, libswresample, FreeType and fontconfig. They live in a module
 * (capstan-media.so) that the capstan executable loads the first time a command or a job
 * needs them, so that recording (serve's ingest) and every other command never map those
 * ~135 shared libraries: ~18 MiB of RSS and ~20 ms of start-up (docs/benchmarks.md).
 *
 * The module is found in $CAPSTAN_MODULE_DIR, else next to the running executable (the
 * build tree), else in the install directory (<libdir>/capstan). Programs that link the
 * media code in (tests, bench) call transmux.h and compose.h directly. */
#ifndef CAP_MEDIA_MEDIA_H
#define CAP_MEDIA_MEDIA_H

#include "media/compose.h"
#include "media/transmux.h"

#include <stddef.h>

/* Bumped whenever struct cap_media_api or a structure it passes changes shape. */
#define CAP_MEDIA_ABI 1
#define CAP_MEDIA_MODULE "capstan-media.so"
#define CAP_MEDIA_ENTRY "cap_media_module_api"

struct cap_media_api {
    unsigned abi; /* CAP_MEDIA_ABI of the module's build: the executable's own, or refused */
    size_t size;  /* sizeof(struct cap_media_api) there */
    int (*transmux_recording)(const char *rec_dir, const struct cap_transmux_options *opt,
                              struct cap_transmux_result *out, char *why, size_t why_size);
    void (*transmux_result_deinit)(struct cap_transmux_result *r);
    json_t *(*transmux_summary)(const char *rec_dir, const struct cap_transmux_result *r);
    int (*compose_recording)(const char *rec_dir, const struct cap_compose_options *opt,
                             struct cap_compose_result *out, char *why, size_t why_size);
    void (*compose_result_deinit)(struct cap_compose_result *r);
    json_t *(*compose_summary)(const struct cap_compose_result *r, const char *media_uri);
};

/* The media entry points, the module loaded on the first call (thread-safe, never
 * unloaded). NULL when it cannot be loaded, with why saying which file and why. */
const struct cap_media_api *cap_media(char *why, size_t why_size);

/* The module's one exported symbol (CAP_MEDIA_ENTRY). */
const struct cap_media_api *cap_media_module_api(void);

#endif
