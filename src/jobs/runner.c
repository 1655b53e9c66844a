/* The job runner (runner.h): one table of kinds, each a sequence of steps over a fetched
 * recording; outputs are made in the attempt's scratch folder and published at the end,
 * after the lease is checked, so a worker whose job was reclaimed publishes nothing. */
#include "jobs/runner.h"

#include "capstan/error.h"
#include "media/media.h"
#include "util/fs.h"
#include "util/log.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PRESIGN_SECONDS 900

/* One attempt's state, shared by the steps. */
struct attempt {
    const struct cap_job_env *env;
    const struct cap_job *job;
    const struct cap_job_hooks *hooks;
    struct cap_log_ctx log;
    char dir[PATH_MAX];      /* scratch folder of this attempt */
    char rec_dir[PATH_MAX];  /* the recording, fetched or in place */
    const char *record_path; /* its storage key */
    double base, span;       /* the share of the job the running step covers */
    char *why;
    size_t why_size;
};

static void step_progress(void *user, double done)
{
    struct attempt *a = user;
    if (a->hooks && a->hooks->progress)
        a->hooks->progress(a->hooks->user, a->base + a->span * (done < 0   ? 0
                                                                : done > 1 ? 1
                                                                           : done));
}

static bool still_held(const struct attempt *a)
{
    return !a->hooks || !a->hooks->still_held || a->hooks->still_held(a->hooks->user);
}

static int fail(struct attempt *a, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct attempt *a, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->why, a->why_size, fmt, ap);
    va_end(ap);
    return err;
}

#define REMOTE_LIVE_WAIT_S 300

/* ---- keys, URLs, folders ---- */

/* "s3://BUCKET/PATH" for a custom_s3 URL ("http(s)://KEY:SECRET@HOST:PORT/BUCKET/PATH?..."):
 * how events name the place without its credentials. */
static void custom_location(const char *custom, char *out, size_t size)
{
    const char *host = strstr(custom, "://");
    const char *path = host ? strchr(host + 3, '/') : NULL;
    if (!path) {
        snprintf(out, size, "s3://");
        return;
    }
    size_t n = strcspn(path + 1, "?#");
    while (n && path[n] == '/')
        n--;
    snprintf(out, size, "s3://%.*s", (int)n, path + 1);
}

bool cap_job_custom_s3_valid(const char *custom)
{
    if (!custom || (strncmp(custom, "http://", 7) != 0 && strncmp(custom, "https://", 8) != 0))
        return false;
    const char *path = strchr(strstr(custom, "://") + 3, '/');
    return path && path[1] && path[1] != '/' && path[1] != '?';
}

/* ---- the recording ---- */

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The store's own account of its last failure, else the code's text. */
static const char *why_of(struct cap_blob_store *s, int err)
{
    return s && cap_blob_why(s)[0] ? cap_blob_why(s) : cap_strerror(err);
}

/* The state metadata.json (already fetched to path) gives the recording; "" if it has none. */
static void recording_state(const char *path, char *out, size_t size)
{
    json_t *meta = json_load_file(path, 0, NULL);
    const char *state = json_string_value(json_object_get(json_object_get(meta, "recording"), "state"));
    snprintf(out, size, "%s", state ? state : "");
    json_decref(meta);
}

/* A recorder puts a recording's chunks into the store as they are sealed, and a
 * metadata.json saying it is over only once every chunk is there. A job on a recording the
 * store still shows as live (an auto-convert at room close, say, racing the last upload)
 * waits for that, at most REMOTE_LIVE_WAIT_S, then converts what the store holds. */
static int wait_until_whole(struct attempt *a, const char *meta_key, const char *meta_path)
{
    const struct cap_job_env *env = a->env;
    for (int waited = 0;; waited++) {
        int err = cap_blob_get_file(env->store, meta_key, 0, 0, meta_path);
        if (err == CAP_ENOENT)
            return 0; /* an imported recording may have none */
        if (err)
            return fail(a, err, "cannot fetch %s: %s", meta_key, why_of(env->store, err));
        char state[32];
        recording_state(meta_path, state, sizeof(state));
        if ((strcmp(state, "recording") != 0 && strcmp(state, "paused") != 0) || !still_held(a))
            return 0;
        if (waited == REMOTE_LIVE_WAIT_S) {
            CAP_WARN(&a->log, "%s still says '%s' after %d s: converting what the store holds",
                     meta_key, state, REMOTE_LIVE_WAIT_S);
            return 0;
        }
        if (waited == 0)
            CAP_INFO(&a->log, "%s says '%s': waiting for the recorder to finish uploading", meta_key, state);
        sleep(1);
    }
}

/* Makes the recording readable at a->rec_dir: in place on a local store, else fetched. */
static int fetch_recording(struct attempt *a)
{
    const struct cap_job_env *env = a->env;
    if (env->local_root) {
        if (snprintf(a->rec_dir, sizeof(a->rec_dir), "%s/%s", env->local_root, a->record_path) >=
            (int)sizeof(a->rec_dir))
            return fail(a, CAP_ELIMIT, "record_path too long");
        char tracks[PATH_MAX + 8];
        snprintf(tracks, sizeof(tracks), "%s/tracks", a->rec_dir);
        if (!is_dir(tracks))
            return fail(a, CAP_ENOENT, "no recording at '%s' (no tracks/ under it)",
                        a->record_path);
        return 0;
    }
    if (!env->store)
        return fail(a, CAP_EINVAL, "this worker has no storage to read '%s' from", a->record_path);
    if (snprintf(a->rec_dir, sizeof(a->rec_dir), "%s/recording", a->dir) >= (int)sizeof(a->rec_dir))
        return fail(a, CAP_ELIMIT, "work folder path too long");
    char prefix[PATH_MAX], local[PATH_MAX + 16];
    snprintf(prefix, sizeof(prefix), "%s/tracks/", a->record_path);
    snprintf(local, sizeof(local), "%s/tracks", a->rec_dir);
    int err = cap_mkdir_p(local);
    if (!err) {
        char key[PATH_MAX + 32], path[PATH_MAX + 32];
        snprintf(key, sizeof(key), "%s/metadata.json", a->record_path);
        snprintf(path, sizeof(path), "%s/metadata.json", a->rec_dir);
        if ((err = wait_until_whole(a, key, path)))
            return err;
    }
    int fetched = err ? err : cap_blob_download_prefix(env->store, prefix, local);
    if (fetched < 0)
        return fail(a, fetched, "cannot fetch %s: %s", prefix, why_of(env->store, fetched));
    if (fetched == 0)
        return fail(a, CAP_ENOENT, "no recording at '%s' (no tracks/ under it)", a->record_path);
    static const char *const files[] = {"metadata.json", "timeline.json", "policy.json"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char key[PATH_MAX + 32], path[PATH_MAX + 32];
        snprintf(key, sizeof(key), "%s/%s", a->record_path, files[i]);
        snprintf(path, sizeof(path), "%s/%s", a->rec_dir, files[i]);
        err = cap_blob_get_file(env->store, key, 0, 0, path);
        if (err && err != CAP_ENOENT)
            return fail(a, err, "cannot fetch %s: %s", key, why_of(env->store, err));
    }
    return 0;
}

/* ---- publishing ---- */

/* Where a step's outputs go: the job's store under a key prefix, or a store of the request's
 * own (custom_s3). */
struct destination {
    struct cap_blob_store *store;
    bool own; /* opened here, closed by release */
    char prefix[PATH_MAX];
    char uri_base[PATH_MAX]; /* what the summary calls the location: KEY or s3://bucket/KEY */
};

static int open_destination(struct attempt *a, const char *custom, const char *default_prefix,
                            struct destination *d)
{
    memset(d, 0, sizeof(*d));
    if (custom && *custom) {
        if (!cap_job_custom_s3_valid(custom))
            return fail(a, CAP_EINVAL,
                        "custom_s3 is not http(s)://KEY:SECRET@HOST:PORT/BUCKET/PATH");
        char why[256] = "";
        int err = cap_blob_open(&d->store, custom, why, sizeof(why));
        if (err)
            return fail(a, err, "custom_s3: %s", why[0] ? why : cap_strerror(err));
        d->own = true;
        /* The store's own prefix holds the path: keys go right under it. */
        custom_location(custom, d->uri_base, sizeof(d->uri_base));
        return 0;
    }
    if (!a->env->store)
        return fail(a, CAP_EINVAL, "this worker has no storage to write to");
    d->store = a->env->store;
    snprintf(d->prefix, sizeof(d->prefix), "%s", default_prefix);
    snprintf(d->uri_base, sizeof(d->uri_base), "%s", default_prefix);
    return 0;
}

static void release_destination(struct destination *d)
{
    if (d->own)
        cap_blob_close(d->store);
    d->store = NULL;
}

static void join_key(char *out, size_t size, const char *base, const char *name)
{
    snprintf(out, size, "%s%s%s", base, base[0] ? "/" : "", name);
}

/* ---- steps ---- */

/* TransmuxSummary paths become where the files were published. */
static void rewrite_paths(json_t *summary, const char *uri_base)
{
    const char *peer_id, *session_id, *track_id;
    json_t *peer, *session, *track;
    json_object_foreach(json_object_get(summary, "peers"), peer_id, peer)
    {
        json_object_foreach(json_object_get(peer, "sessions"), session_id, session)
        {
            json_object_foreach(json_object_get(session, "track"), track_id, track)
            {
                size_t i;
                json_t *entry;
                json_array_foreach(json_object_get(track, "timeline"), i, entry)
                {
                    const char *file = json_string_value(json_object_get(entry, "path"));
                    if (!file)
                        continue;
                    char path[PATH_MAX * 2];
                    join_key(path, sizeof(path), uri_base, file);
                    json_object_set_new(entry, "path", json_string(path));
                }
            }
        }
    }
}

static int step_transmux(struct attempt *a, json_t *request, json_t *result)
{
    char out_dir[PATH_MAX + 16];
    snprintf(out_dir, sizeof(out_dir), "%s/transmux", a->dir);
    int err = cap_mkdir_p(out_dir);
    if (err)
        return fail(a, err, "cannot make %s: %s", out_dir, cap_strerror(err));
    struct cap_transmux_options opt = {.out_dir = out_dir, .progress = step_progress, .user = a};
    opt.matroska = json_is_true(json_object_get(request, "mkv"));
    struct cap_transmux_result r;
    char why[1024] = "";
    const struct cap_media_api *media = cap_media(why, sizeof(why));
    if (!media)
        return fail(a, CAP_EUNSUPPORTED, "transmux: %s", why);
    err = media->transmux_recording(a->rec_dir, &opt, &r, why, sizeof(why));
    if (err)
        return fail(a, err, "transmux: %s", why[0] ? why : cap_strerror(err));
    size_t written = 0;
    for (size_t i = 0; i < r.track_count; i++)
        written += r.tracks[i].path[0] != '\0';
    if (written == 0) {
        media->transmux_result_deinit(&r);
        return fail(a, CAP_ENOENT, "transmux: no track of '%s' could be converted", a->record_path);
    }
    json_t *summary = media->transmux_summary(a->rec_dir, &r);
    media->transmux_result_deinit(&r);
    char default_prefix[PATH_MAX];
    snprintf(default_prefix, sizeof(default_prefix), "%s/processed/tracks", a->record_path);
    struct destination d;
    err = open_destination(a, json_string_value(json_object_get(request, "custom_s3")),
                           default_prefix, &d);
    if (!err) {
        rewrite_paths(summary, d.uri_base);
        char path[PATH_MAX + 32];
        snprintf(path, sizeof(path), "%s/summary.json", out_dir);
        char *text = json_dumps(summary, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        err = text ? cap_write_file_atomic(path, text, strlen(text)) : CAP_ENOMEM;
        free(text);
        if (err)
            fail(a, err, "cannot write %s: %s", path, cap_strerror(err));
    }
    if (!err && !still_held(a))
        err = fail(a, CAP_ESTATE, "the lease was lost: outputs not published");
    if (!err && (err = cap_blob_upload_dir(d.store, out_dir, d.prefix)) > 0)
        err = 0;
    if (err < 0)
        fail(a, err, "cannot publish the transmuxed files to %s: %s", d.uri_base,
             why_of(d.store, err));
    release_destination(&d);
    if (err) {
        json_decref(summary);
        return err;
    }
    json_object_set_new(result, "transmux", summary);
    return 0;
}

/* A PUT of one file to a presigned URL. */
static int put_presigned(struct attempt *a, const char *url, const char *path)
{
    char why[256] = "";
    int err = cap_blob_put_url(url, path, why, sizeof(why));
    return err ? fail(a, err, "PUT to the presigned URL failed: %s",
                      why[0] ? why : cap_strerror(err))
               : 0;
}

/* A URL without its query (a presigned URL's signature is not repeated in events). */
static json_t *bare_url(const char *url)
{
    return json_stringn(url, strcspn(url, "?#"));
}

static enum cap_compose_container container_of(const char *format, bool video)
{
    if (format && strcmp(format, "webm") == 0)
        return video ? CAP_COMPOSE_WEBM : CAP_COMPOSE_OGG;
    return video ? CAP_COMPOSE_MP4 : CAP_COMPOSE_M4A;
}

static const char *extension_of(enum cap_compose_container c)
{
    switch (c) {
    case CAP_COMPOSE_WEBM:
        return "webm";
    case CAP_COMPOSE_OGG:
        return "ogg";
    case CAP_COMPOSE_M4A:
        return "m4a";
    default:
        return "mp4";
    }
}

/* compose (a convert request's "compose" part) and export share this step. name is the
 * output's file name without extension; key_base the storage key it goes under. */
static int compose_step(struct attempt *a, json_t *request, const char *name, const char *key_base,
                        const struct cap_composition *composition, json_t **summary_out)
{
    bool audio = !json_is_false(json_object_get(request, "audio"));
    bool video = !json_is_false(json_object_get(request, "video"));
    if (!audio && !video)
        return fail(a, CAP_EINVAL, "compose: neither audio nor video asked for");
    enum cap_compose_container container =
        container_of(json_string_value(json_object_get(request, "format")), video);
    char out_path[PATH_MAX + 64], thumbs[PATH_MAX + 16];
    snprintf(out_path, sizeof(out_path), "%s/%s.%s", a->dir, name, extension_of(container));
    snprintf(thumbs, sizeof(thumbs), "%s/thumbnails", a->dir);
    struct cap_compose_options opt = {
        .out_path = out_path,
        .audio = audio,
        .video = video,
        .composition = composition,
        .container = container,
        .progress = step_progress,
        .user = a,
    };
    const char *preset = json_string_value(json_object_get(request, "preset"));
    if (preset && strcmp(preset, "high") == 0) {
        opt.preset = "medium";
        opt.crf = 20;
    } else if (preset && strcmp(preset, "draft") == 0) {
        opt.preset = "ultrafast";
        opt.crf = 28;
    }
    json_int_t thumb_s = json_integer_value(json_object_get(request, "thumbnail_seconds"));
    if (video && thumb_s > 0) {
        int err = cap_mkdir_p(thumbs);
        if (err)
            return fail(a, err, "cannot make %s", thumbs);
        opt.thumbnail_dir = thumbs;
        opt.thumbnail_every_ms = (int64_t)thumb_s * 1000;
    }
    struct cap_compose_result r;
    char why[1024] = "";
    const struct cap_media_api *media = cap_media(why, sizeof(why));
    if (!media)
        return fail(a, CAP_EUNSUPPORTED, "compose: %s", why);
    int err = media->compose_recording(a->rec_dir, &opt, &r, why, sizeof(why));
    if (err)
        return fail(a, err, "compose: %s", why[0] ? why : cap_strerror(err));
    const char *custom = json_string_value(json_object_get(request, "custom_s3"));
    char key[PATH_MAX * 2], file[PATH_MAX];
    snprintf(file, sizeof(file), "%s.%s", name, extension_of(container));
    json_t *uri = NULL;
    if (!still_held(a)) {
        err = fail(a, CAP_ESTATE, "the lease was lost: outputs not published");
    } else if (custom && strstr(custom, "X-Amz-Signature=")) {
        /* A presigned PUT URL for the one file. */
        if (!(err = put_presigned(a, custom, out_path)))
            uri = bare_url(custom);
    } else {
        struct destination d;
        if (!(err = open_destination(a, custom, key_base, &d))) {
            join_key(key, sizeof(key), d.prefix, file);
            if ((err = cap_blob_put_file_confirmed(d.store, key, out_path)))
                fail(a, err, "cannot publish %s: %s", key, why_of(d.store, err));
            if (!err && opt.thumbnail_dir && r.thumbnails > 0) {
                char thumb_prefix[PATH_MAX * 2];
                snprintf(thumb_prefix, sizeof(thumb_prefix), "%s/processed/thumbnails/%s",
                         a->record_path, name);
                err = cap_blob_upload_dir(d.store, thumbs,
                                          custom && *custom ? "thumbnails" : thumb_prefix);
                if (err < 0)
                    fail(a, err, "cannot publish the thumbnails: %s", why_of(d.store, err));
                else
                    err = 0;
            }
            if (!err) {
                char full[PATH_MAX * 3];
                if (d.own)
                    join_key(full, sizeof(full), d.uri_base, file);
                else
                    snprintf(full, sizeof(full), "%s", key);
                uri = json_string(full);
            }
            release_destination(&d);
        }
    }
    if (!err) {
        json_t *summary = media->compose_summary(&r, json_string_value(uri));
        if (!summary)
            summary = json_pack("{s:O}", "media_uri", uri);
        *summary_out = summary;
    }
    json_decref(uri);
    media->compose_result_deinit(&r);
    return err;
}

static int step_compose(struct attempt *a, json_t *request, json_t *result)
{
    char key_base[PATH_MAX];
    snprintf(key_base, sizeof(key_base), "%s/processed", a->record_path);
    json_t *summary = NULL;
    int err = compose_step(a, request, "composite", key_base, NULL, &summary);
    if (!err)
        json_object_set_new(result, "compose", summary);
    return err;
}

/* ---- kinds ---- */

static int run_convert(struct attempt *a, json_t *params, json_t *result)
{
    json_t *transmux = json_object_get(params, "transmux");
    json_t *compose = json_object_get(params, "compose");
    double transmux_share = compose ? 0.2 : 1.0;
    int err = 0;
    if (transmux) {
        a->base = 0;
        a->span = transmux_share;
        err = step_transmux(a, transmux, result);
    }
    if (!err && compose) {
        a->base = transmux ? transmux_share : 0;
        a->span = 1 - a->base;
        err = step_compose(a, compose, result);
    }
    return err;
}

static int run_export(struct attempt *a, json_t *params, json_t *result)
{
    const char *export_id = json_string_value(json_object_get(params, "export_id"));
    if (!export_id || !cap_job_key_valid(export_id) || strchr(export_id, '/'))
        return fail(a, CAP_EINVAL, "export: export_id missing or malformed");
    struct cap_composition composition;
    memset(&composition, 0, sizeof(composition));
    json_t *doc = json_object_get(params, "composition");
    bool have = json_is_object(doc);
    char why[256] = "";
    if (have) {
        int err = cap_composition_parse(doc, &composition, why, sizeof(why));
        if (err)
            return fail(a, err, "export: composition: %s", why);
    }
    char key_base[PATH_MAX];
    snprintf(key_base, sizeof(key_base), "%s/processed/exports", a->record_path);
    a->base = 0;
    a->span = 1;
    json_t *summary = NULL;
    int err = compose_step(a, params, export_id, key_base, have ? &composition : NULL, &summary);
    if (have)
        cap_composition_deinit(&composition);
    if (!err) {
        json_object_set_new(result, "compose", summary);
        json_object_set_new(result, "export_id", json_string(export_id));
    }
    return err;
}

struct kind {
    const char *name;
    int (*run)(struct attempt *a, json_t *params, json_t *result);
};

static const struct kind kinds[] = {
    {"transmux", run_convert},
    {"compose", run_convert},
    {"convert", run_convert},
    {"export", run_export},
};

static const struct kind *find_kind(const char *name)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(kinds[i].name, name) == 0)
            return &kinds[i];
    return NULL;
}

int cap_job_validate(const char *kind, json_t *params, char *why, size_t why_size)
{
    if (!find_kind(kind ? kind : "")) {
        snprintf(why, why_size, "unknown job kind '%.40s'", kind ? kind : "");
        return CAP_EINVAL;
    }
    const char *path = json_string_value(json_object_get(params, "record_path"));
    if (!cap_job_key_valid(path)) {
        snprintf(why, why_size,
                 "record_path must be a storage key like rooms/ROOM/RECORDING "
                 "(letters, digits, - _ . : @ and /, no . or .. parts)");
        return CAP_EINVAL;
    }
    const char *parts[] = {"transmux", "compose"};
    for (size_t i = 0; i < 2; i++) {
        json_t *part = json_object_get(params, parts[i]);
        if (!part)
            continue;
        if (!json_is_object(part)) {
            snprintf(why, why_size, "%s must be an object", parts[i]);
            return CAP_EINVAL;
        }
        json_t *custom = json_object_get(part, "custom_s3");
        if (custom && !json_is_null(custom) && !json_is_string(custom)) {
            snprintf(why, why_size, "%s.custom_s3 must be a string", parts[i]);
            return CAP_EINVAL;
        }
        const char *url = json_string_value(custom);
        bool presigned = url && strstr(url, "X-Amz-Signature=") && i == 1;
        if (url && *url && !presigned && !cap_job_custom_s3_valid(url)) {
            snprintf(why, why_size,
                     "%s.custom_s3 must be http(s)://USER:PASSWORD@HOST:PORT/BUCKET/PATH%s",
                     parts[i], i == 1 ? " or a presigned PUT URL" : "");
            return CAP_EINVAL;
        }
    }
    json_t *compose = json_object_get(params, "compose");
    if (compose) {
        json_t *audio = json_object_get(compose, "audio"),
               *video = json_object_get(compose, "video");
        if ((audio && !json_is_boolean(audio)) || (video && !json_is_boolean(video))) {
            snprintf(why, why_size, "compose.audio and compose.video must be true or false");
            return CAP_EINVAL;
        }
        if (json_is_false(audio) && json_is_false(video)) {
            snprintf(why, why_size, "compose needs audio or video (or both)");
            return CAP_EINVAL;
        }
    }
    if (strcmp(kind, "export") != 0 && !json_object_get(params, "transmux") && !compose) {
        snprintf(why, why_size, "at least one of transmux or compose must be given");
        return CAP_EINVAL;
    }
    return 0;
}

int cap_job_execute(const struct cap_job_env *env, const struct cap_job *job,
                    const struct cap_job_lease *lease, const struct cap_job_hooks *hooks,
                    json_t **result, char *why, size_t why_size)
{
    struct attempt a = {.env = env, .job = job, .hooks = hooks, .why = why, .why_size = why_size};
    a.log.job = job->id;
    a.log.recording = job->recording_id[0] ? job->recording_id : NULL;
    *result = NULL;
    why[0] = '\0';
    int err = cap_job_validate(job->kind, job->params, why, why_size);
    if (err)
        return err;
    const struct kind *kind = find_kind(job->kind);
    a.record_path = json_string_value(json_object_get(job->params, "record_path"));
    if (snprintf(a.dir, sizeof(a.dir), "%s/%s-%s", env->work_dir, job->id, lease->token) >=
        (int)sizeof(a.dir))
        return fail(&a, CAP_ELIMIT, "work folder path too long");
    cap_remove_tree(a.dir);
    if ((err = cap_mkdir_p(a.dir)))
        return fail(&a, err, "cannot make %s: %s", a.dir, cap_strerror(err));
    json_t *out = json_object();
    if (!(err = fetch_recording(&a)))
        err = kind->run(&a, job->params, out);
    int rm = cap_remove_tree(a.dir);
    if (rm)
        CAP_WARN(&a.log, "cannot remove %s: %s", a.dir, strerror(-rm));
    if (err) {
        json_decref(out);
        if (!why[0])
            snprintf(why, why_size, "%s", cap_strerror(err));
        return err;
    }
    step_progress(&a, 1);
    *result = out;
    return 0;
}
