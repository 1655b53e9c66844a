/* Loading the capstan-media module on first use (media.h). */
#include "media/media.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef CAP_MODULE_INSTALL_DIR
#define CAP_MODULE_INSTALL_DIR "/usr/local/lib/capstan"
#endif

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const struct cap_media_api *loaded;
static char load_error[1024];

/* dlopen's answer for dir, or NULL with the reason appended to load_error. */
static void *open_in(const char *dir)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", dir, CAP_MEDIA_MODULE) >= (int)sizeof(path))
        return NULL;
    if (access(path, F_OK) != 0)
        return NULL; /* not here: try the next place */
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        size_t used = strlen(load_error);
        snprintf(load_error + used, sizeof(load_error) - used, "%s%.900s", used ? "; " : "", e ? e : path);
    }
    return h;
}

static void load(void)
{
    char exe_dir[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe_dir, sizeof(exe_dir) - 1);
    exe_dir[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(exe_dir, '/');
    *(slash ? slash : exe_dir) = '\0'; /* the executable's folder, or none */
    const char *env = getenv("CAPSTAN_MODULE_DIR");
    const char *dirs[] = {env && *env ? env : NULL, exe_dir[0] ? exe_dir : NULL, CAP_MODULE_INSTALL_DIR};
    void *h = NULL;
    char tried[960] = "";
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && !h; i++) {
        if (!dirs[i])
            continue;
        size_t used = strlen(tried);
        snprintf(tried + used, sizeof(tried) - used, "%s%.300s", used ? ", " : "", dirs[i]);
        h = open_in(dirs[i]);
    }
    if (!h) {
        if (!load_error[0])
            snprintf(load_error, sizeof(load_error), "%s not found in %s (set CAPSTAN_MODULE_DIR)",
                     CAP_MEDIA_MODULE, tried);
        return;
    }
    const struct cap_media_api *(*entry)(void) = NULL;
    *(void **)&entry = dlsym(h, CAP_MEDIA_ENTRY);
    const struct cap_media_api *api = entry ? entry() : NULL;
    if (!api || api->abi != CAP_MEDIA_ABI || api->size != sizeof(struct cap_media_api)) {
        snprintf(load_error, sizeof(load_error), "%s is from another build of capstan (interface %u, this one %u)",
                 CAP_MEDIA_MODULE, api ? api->abi : 0, (unsigned)CAP_MEDIA_ABI);
        dlclose(h);
        return;
    }
    loaded = api;
}

const struct cap_media_api *cap_media(char *why, size_t why_size)
{
    pthread_once(&once, load);
    if (!loaded && why && why_size)
        snprintf(why, why_size, "cannot load the media module: %s", load_error);
    return loaded;
}
