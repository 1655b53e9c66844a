/* The job routes (jobs_api.h): requests checked and turned into queued jobs, job and
 * export status read back from the queue, Composition States kept in the recording's
 * folder, and GET /events streamed from the hub with suspended connections (a reader
 * with nothing to send is parked, not polled). */
#include "api/jobs_api.h"

#include "capstan/error.h"
#include "jobs/runner.h"
#include "media/composition.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/log.h"

#include <limits.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_STREAMS 64
#define KEEPALIVE_MS 15000
#define FRAME_MAX (CAP_EVENT_HUB_MAX_EVENT + 64)

struct cap_jobs_api {
    struct cap_jobs_api_config cfg;
    char data_dir[PATH_MAX];
    char auto_convert[16];
    atomic_int streams;
    pthread_t ticker;
    bool ticker_started;
    pthread_mutex_t tick_lock;
    pthread_cond_t tick_cond;
    bool stopping;
};

static void reply_ok(struct cap_reply *r, int status, json_t *body)
{
    r->status = status;
    r->body = body;
}

static bool queue_ready(struct cap_jobs_api *api, struct cap_reply *r)
{
    if (api && api->cfg.queue)
        return true;
    cap_reply_error(r, 503, CAP_API_QUEUE_UNAVAILABLE, "no job queue configured");
    return false;
}

/* ---- the recording a route is about ---- */

struct recording_ref {
    char room_id[256];
    char path[512];
    char state[32];
};

/* Looks the recording up through the service; on failure r holds the service's answer. */
static bool find_recording(struct cap_jobs_api *api, const char *recording_id,
                           struct recording_ref *ref, struct cap_reply *r)
{
    if (!api || !api->cfg.svc) {
        cap_reply_error(r, 503, CAP_API_QUEUE_UNAVAILABLE, "no job routes on this node");
        return false;
    }
    struct cap_reply found = {0};
    cap_service_get_recording(api->cfg.svc, recording_id, &found);
    if (found.status != 200) {
        *r = found;
        return false;
    }
    const char *room = json_string_value(json_object_get(found.body, "room_id"));
    const char *path = json_string_value(json_object_get(found.body, "path"));
    const char *state = json_string_value(json_object_get(found.body, "state"));
    snprintf(ref->room_id, sizeof(ref->room_id), "%s", room ? room : "");
    snprintf(ref->path, sizeof(ref->path), "%s", path ? path : "");
    snprintf(ref->state, sizeof(ref->state), "%s", state ? state : "");
    json_decref(found.body);
    if (!ref->path[0] || !cap_job_key_valid(ref->path)) {
        cap_reply_error(r, 500, CAP_API_STORAGE, "the recording has no storage path");
        return false;
    }
    return true;
}

/* "rooms/ROOM/RECORDING" -> RECORDING, else "". */
static void recording_of_path(const char *path, char *out, size_t size)
{
    out[0] = '\0';
    if (strncmp(path, "rooms/", 6) != 0)
        return;
    const char *room_end = strchr(path + 6, '/');
    if (!room_end || strchr(room_end + 1, '/'))
        return;
    snprintf(out, size, "%s", room_end + 1);
}

/* Queues a job and fills its id; 0 or answers r with the failure. */
static int enqueue(struct cap_jobs_api *api, const char *kind, json_t *params,
                   const char *recording_id, char *job_id, size_t size, struct cap_reply *r)
{
    char why[256] = "";
    if (cap_job_validate(kind, params, why, sizeof(why)) != 0) {
        cap_reply_error(r, 400, CAP_API_BAD_REQUEST, why);
        return CAP_EINVAL;
    }
    struct cap_job job;
    cap_job_init(&job);
    snprintf(job.kind, sizeof(job.kind), "%s", kind);
    snprintf(job.recording_id, sizeof(job.recording_id), "%s", recording_id ? recording_id : "");
    job.params = json_incref(params);
    int err = cap_queue_enqueue(api->cfg.queue, &job);
    if (err) {
        cap_reply_error(r, err == CAP_ELIMIT ? 413 : 503,
                        err == CAP_ELIMIT ? CAP_API_TOO_LARGE : CAP_API_QUEUE_UNAVAILABLE,
                        err == CAP_ELIMIT ? "job request too large"
                                          : "the job queue is unavailable");
        CAP_ERROR(NULL, "cannot queue a %s job: %s", kind, cap_strerror(err));
    } else {
        snprintf(job_id, size, "%s", job.id);
        struct cap_log_ctx ctx = {.job = job.id,
                                  .recording = recording_id && *recording_id ? recording_id : NULL};
        CAP_INFO(&ctx, "queued a %s job", kind);
    }
    cap_job_deinit(&job);
    return err;
}

/* ---- POST /api/convert/job, GET /api/convert/job/{id} ---- */

void cap_jobs_api_convert(struct cap_jobs_api *api, json_t *body, struct cap_reply *r)
{
    if (!queue_ready(api, r))
        return;
    /* Only the reference's fields go into the job. */
    const char *allowed[] = {"record_path", "transmux", "compose"};
    const char *key;
    json_t *value;
    json_object_foreach(body, key, value)
    {
        bool known = false;
        for (size_t i = 0; i < 3; i++)
            known = known || strcmp(key, allowed[i]) == 0;
        if (!known) {
            char msg[160];
            snprintf(msg, sizeof(msg), "unknown field '%.60s' (record_path, transmux, compose)",
                     key);
            cap_reply_error(r, 400, CAP_API_BAD_REQUEST, msg);
            return;
        }
    }
    json_t *transmux = json_object_get(body, "transmux"),
           *compose = json_object_get(body, "compose");
    if (json_is_null(transmux))
        transmux = NULL;
    if (json_is_null(compose))
        compose = NULL;
    const char *kind = transmux && compose ? "convert" : compose ? "compose" : "transmux";
    json_t *params = json_pack(
        "{s:O}", "record_path",
        json_object_get(body, "record_path") ? json_object_get(body, "record_path") : json_null());
    if (transmux)
        json_object_set(params, "transmux", transmux);
    if (compose)
        json_object_set(params, "compose", compose);
    const char *path = json_string_value(json_object_get(params, "record_path"));
    char recording_id[CAP_JOB_RECORDING_MAX];
    recording_of_path(path ? path : "", recording_id, sizeof(recording_id));
    char job_id[CAP_JOB_ID_MAX];
    if (enqueue(api, kind, params, recording_id, job_id, sizeof(job_id), r) == 0)
        reply_ok(r, 200, json_pack("{s:b, s:{s:s}}", "status", 1, "data", "job_id", job_id));
    json_decref(params);
}

void cap_jobs_api_get_job(struct cap_jobs_api *api, const char *job_id, struct cap_reply *r)
{
    if (!queue_ready(api, r))
        return;
    struct cap_job job;
    cap_job_init(&job);
    int err =
        strlen(job_id) < CAP_JOB_ID_MAX ? cap_queue_get(api->cfg.queue, job_id, &job) : CAP_ENOENT;
    if (err == CAP_ENOENT)
        cap_reply_error(r, 404, CAP_API_JOB_NOT_FOUND, "job not found");
    else if (err)
        cap_reply_error(r, 503, CAP_API_QUEUE_UNAVAILABLE, "the job queue is unavailable");
    else
        reply_ok(r, 200, json_pack("{s:b, s:o}", "status", 1, "data", cap_job_to_json(&job)));
    cap_job_deinit(&job);
}

/* ---- compositions ---- */

static int composition_path(struct cap_jobs_api *api, const struct recording_ref *ref, char *out,
                            size_t size)
{
    return snprintf(out, size, "%s/%s/composition.json", api->data_dir, ref->path) >= (int)size
               ? CAP_ELIMIT
               : 0;
}

static json_t *load_composition(struct cap_jobs_api *api, const struct recording_ref *ref)
{
    char path[PATH_MAX * 2];
    if (composition_path(api, ref, path, sizeof(path)) != 0)
        return NULL;
    return json_load_file(path, 0, NULL);
}

void cap_jobs_api_put_composition(struct cap_jobs_api *api, const char *recording_id, json_t *body,
                                  struct cap_reply *r)
{
    struct recording_ref ref;
    if (!find_recording(api, recording_id, &ref, r))
        return;
    /* The ids come from the route, not the body. */
    json_object_set_new(body, "recording_id", json_string(recording_id));
    json_object_set_new(body, "room_id", json_string(ref.room_id));
    struct cap_composition c;
    char why[256] = "";
    if (cap_composition_parse(body, &c, why, sizeof(why)) != 0) {
        cap_reply_error(r, 400, CAP_API_BAD_COMPOSITION,
                        why[0] ? why : "invalid Composition State");
        return;
    }
    cap_composition_deinit(&c);
    char updated[40];
    cap_clock_format_iso8601(cap_clock_wall_ns(), updated, sizeof(updated));
    json_t *doc = json_deep_copy(body);
    json_object_set_new(doc, "updated_at", json_string(updated));
    char dir[PATH_MAX * 2];
    snprintf(dir, sizeof(dir), "%s/%s", api->data_dir, ref.path);
    int err = cap_mkdir_p(dir);
    if (!err)
        err = cap_json_write_file(dir, "composition.json", doc);
    else
        json_decref(doc);
    if (err) {
        struct cap_log_ctx ctx = {.recording = recording_id};
        CAP_ERROR(&ctx, "cannot store the composition in %s: %s", dir, cap_strerror(err));
        cap_reply_error(r, 500, CAP_API_STORAGE, "cannot store the composition");
        return;
    }
    reply_ok(r, 200, json_pack("{s:s, s:s}", "status", "ok", "updated_at", updated));
}

void cap_jobs_api_get_composition(struct cap_jobs_api *api, const char *recording_id,
                                  struct cap_reply *r)
{
    struct recording_ref ref;
    if (!find_recording(api, recording_id, &ref, r))
        return;
    json_t *doc = load_composition(api, &ref);
    if (!doc)
        cap_reply_error(r, 404, CAP_API_COMPOSITION_NOT_FOUND,
                        "no composition saved for this recording");
    else
        reply_ok(r, 200, doc);
}

/* ---- exports ---- */

void cap_jobs_api_export(struct cap_jobs_api *api, const char *recording_id, json_t *body,
                         struct cap_reply *r)
{
    if (!queue_ready(api, r))
        return;
    struct recording_ref ref;
    if (!find_recording(api, recording_id, &ref, r))
        return;
    if (strcmp(ref.state, "stopped") != 0 && strcmp(ref.state, "interrupted") != 0) {
        cap_reply_error(r, 409, CAP_API_RECORDING_STATE,
                        "the recording is still live: stop it before exporting");
        return;
    }
    json_t *id = json_object_get(body, "composition_id");
    if (id && !json_is_null(id) &&
        (!json_is_string(id) || strcmp(json_string_value(id), "latest") != 0)) {
        cap_reply_error(r, 400, CAP_API_BAD_REQUEST,
                        "composition_id: only \"latest\" (the saved one) is kept");
        return;
    }
    const char *format = json_string_value(json_object_get(body, "format"));
    if (json_object_get(body, "format") &&
        (!format || (strcmp(format, "mp4") != 0 && strcmp(format, "webm") != 0))) {
        cap_reply_error(r, 400, CAP_API_BAD_REQUEST, "format must be mp4 or webm");
        return;
    }
    const char *preset = json_string_value(json_object_get(body, "preset"));
    if (json_object_get(body, "preset") &&
        (!preset || (strcmp(preset, "standard") != 0 && strcmp(preset, "high") != 0 &&
                     strcmp(preset, "draft") != 0))) {
        cap_reply_error(r, 400, CAP_API_BAD_REQUEST, "preset must be standard, high or draft");
        return;
    }
    json_t *thumbs = json_object_get(body, "thumbnail_seconds");
    if (thumbs && (!json_is_integer(thumbs) || json_integer_value(thumbs) < 0 ||
                   json_integer_value(thumbs) > 3600)) {
        cap_reply_error(r, 400, CAP_API_BAD_REQUEST,
                        "thumbnail_seconds must be a whole number from 0 to 3600");
        return;
    }
    json_t *composition = load_composition(api, &ref);
    char export_id[CAP_JOB_ID_MAX];
    if (cap_job_random_id("exp_", export_id, sizeof(export_id)) != 0) {
        json_decref(composition);
        cap_reply_error(r, 500, CAP_API_STORAGE, "no randomness for an export id");
        return;
    }
    json_t *params =
        json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:s}", "record_path", ref.path, "recording_id",
                  recording_id, "room_id", ref.room_id, "export_id", export_id, "composition",
                  composition ? composition : json_null(), "preset", preset ? preset : "standard",
                  "format", format ? format : "mp4");
    const char *flags[] = {"audio", "video"};
    for (size_t i = 0; i < 2; i++) {
        json_t *v = json_object_get(body, flags[i]);
        if (v && !json_is_boolean(v)) {
            json_decref(params);
            cap_reply_error(r, 400, CAP_API_BAD_REQUEST, "audio and video must be true or false");
            return;
        }
        if (v)
            json_object_set(params, flags[i], v);
    }
    if (json_is_false(json_object_get(params, "audio")) &&
        json_is_false(json_object_get(params, "video"))) {
        json_decref(params);
        cap_reply_error(r, 400, CAP_API_BAD_REQUEST, "an export needs audio or video (or both)");
        return;
    }
    if (thumbs)
        json_object_set(params, "thumbnail_seconds", thumbs);
    char job_id[CAP_JOB_ID_MAX];
    if (enqueue(api, "export", params, recording_id, job_id, sizeof(job_id), r) == 0)
        reply_ok(r, 202,
                 json_pack("{s:s, s:s, s:s}", "job_id", job_id, "status", "queued", "export_id",
                           export_id));
    json_decref(params);
}

void cap_jobs_api_decorate_recording(struct cap_jobs_api *api, json_t *recording)
{
    const char *id = json_string_value(json_object_get(recording, "recording_id"));
    if (!api || !api->cfg.queue || !id)
        return;
    struct cap_job job;
    cap_job_init(&job);
    if (cap_queue_latest(api->cfg.queue, id, "export", &job) == 0) {
        json_t *uri = json_object_get(json_object_get(job.result, "compose"), "media_uri");
        json_t *export_id = json_object_get(job.params, "export_id");
        json_t *export = json_object();
        json_object_set_new(export, "job_id", json_string(job.id));
        json_object_set(export, "export_id", export_id ? export_id : json_null());
        json_object_set_new(export, "status", json_string(cap_job_state_name(job.state)));
        json_object_set_new(export, "progress", json_real(job.progress));
        json_object_set(export, "key", uri ? uri : json_null());
        json_object_set_new(export, "url", json_null());
        json_object_set_new(export, "error", job.error[0] ? json_string(job.error) : json_null());
        json_object_set_new(recording, "export_status", json_string(cap_job_state_name(job.state)));
        json_object_set_new(recording, "export", export);
    } else if (!json_object_get(recording, "export")) {
        json_object_set_new(recording, "export", json_pack("{s:n}", "url"));
    }
    cap_job_deinit(&job);
}

/* ---- events ---- */

static int publish(struct cap_jobs_api *api, const char *body, size_t len)
{
    if (api->cfg.hub)
        cap_event_hub_publish(api->cfg.hub, body, len);
    return 0;
}

/* A recording stopped because its room closed: convert it, if asked to. */
static void maybe_auto_convert(struct cap_jobs_api *api, const char *body, size_t len)
{
    if (!api->auto_convert[0] || !api->cfg.queue || !memmem(body, len, "\"Stopped\"", 9) ||
        !memmem(body, len, "\"room_closed\"", 13))
        return;
    json_t *doc = json_loadb(body, len, 0, NULL);
    json_t *stopped = json_object_get(
        json_object_get(json_object_get(json_object_get(doc, "event"), "Record"), "event"),
        "Stopped");
    const char *reason = json_string_value(json_object_get(stopped, "reason"));
    const char *path = json_string_value(json_object_get(stopped, "path"));
    const char *recording = json_string_value(json_object_get(stopped, "recording_id"));
    if (reason && strcmp(reason, "room_closed") == 0 && path && recording) {
        bool transmux = strcmp(api->auto_convert, "compose") != 0;
        bool compose = strcmp(api->auto_convert, "transmux") != 0;
        json_t *params = json_pack("{s:s}", "record_path", path);
        if (transmux)
            json_object_set_new(params, "transmux", json_object());
        if (compose)
            json_object_set_new(params, "compose", json_pack("{s:b, s:b}", "audio", 1, "video", 1));
        char job_id[CAP_JOB_ID_MAX];
        struct cap_reply r = {0};
        if (enqueue(api, api->auto_convert, params, recording, job_id, sizeof(job_id), &r) != 0)
            json_decref(r.body);
        json_decref(params);
    }
    json_decref(doc);
}

int cap_jobs_api_on_event(struct cap_jobs_api *api, const char *body, size_t len)
{
    if (!api)
        return 0;
    publish(api, body, len);
    maybe_auto_convert(api, body, len);
    return 0;
}

/* One GET /events connection. */
struct stream {
    struct cap_jobs_api *api;
    struct MHD_Connection *conn;
    uint64_t pos;               /* last sequence sent */
    char job_filter[96];        /* "\"job_id\":\"X\"" or "" */
    char recording_filter[160]; /* "\"recording_id\":\"X\"" or "" */
    char *frame;                /* what is still to send */
    size_t frame_len, frame_sent;
    int64_t last_sent_ms;
};

static int64_t mono_ms(void)
{
    return cap_clock_mono_ns() / CAP_NS_PER_MS;
}

static void park(void *user)
{
    MHD_suspend_connection(((struct stream *)user)->conn);
}

static void wake(void *user)
{
    MHD_resume_connection(((struct stream *)user)->conn);
}

static bool wanted(const struct stream *s, const char *text, size_t len)
{
    if (s->job_filter[0] && !memmem(text, len, s->job_filter, strlen(s->job_filter)))
        return false;
    if (s->recording_filter[0] &&
        !memmem(text, len, s->recording_filter, strlen(s->recording_filter)))
        return false;
    return true;
}

/* Fills s->frame with the next wanted event; false if none is waiting. */
static bool next_frame(struct stream *s)
{
    uint64_t seq;
    char *text;
    size_t len;
    while (cap_event_hub_next(s->api->cfg.hub, s->pos, &seq, &text, &len) == 1) {
        s->pos = seq;
        if (!wanted(s, text, len)) {
            free(text);
            continue;
        }
        char *frame = malloc(len + 64);
        if (!frame) {
            free(text);
            return false;
        }
        int n = snprintf(frame, len + 64, "id: %llu\ndata: %s\n\n", (unsigned long long)seq, text);
        free(text);
        free(s->frame);
        s->frame = frame;
        s->frame_len = n > 0 ? (size_t)n : 0;
        s->frame_sent = 0;
        return true;
    }
    return false;
}

static void set_frame(struct stream *s, const char *text)
{
    free(s->frame);
    s->frame = strdup(text);
    s->frame_len = s->frame ? strlen(text) : 0;
    s->frame_sent = 0;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct stream *s = cls;
    for (int turn = 0; turn < 4; turn++) {
        if (s->frame && s->frame_sent < s->frame_len) {
            size_t n = s->frame_len - s->frame_sent;
            if (n > max)
                n = max;
            memcpy(buf, s->frame + s->frame_sent, n);
            s->frame_sent += n;
            s->last_sent_ms = mono_ms();
            return (ssize_t)n;
        }
        if (next_frame(s))
            continue;
        if (cap_event_hub_closed(s->api->cfg.hub))
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (mono_ms() - s->last_sent_ms >= KEEPALIVE_MS) {
            set_frame(s, ": keepalive\n\n");
            continue;
        }
        int rc = cap_event_hub_wait(s->api->cfg.hub, s->pos, park, wake, s);
        if (rc < 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (rc == 1)
            return 0; /* suspended until the next event or keep-alive tick */
    }
    /* Never spin: if events keep being filtered out, say so and come back. */
    set_frame(s, ": waiting\n\n");
    return stream_read(cls, pos, buf, max);
}

static void stream_free(void *cls)
{
    struct stream *s = cls;
    atomic_fetch_sub(&s->api->streams, 1);
    free(s->frame);
    free(s);
}

struct MHD_Response *cap_jobs_api_event_stream(struct cap_jobs_api *api,
                                               struct MHD_Connection *conn)
{
    if (!api || !api->cfg.hub || atomic_fetch_add(&api->streams, 1) >= MAX_STREAMS) {
        if (api)
            atomic_fetch_sub(&api->streams, 1);
        return NULL;
    }
    struct stream *s = calloc(1, sizeof(*s));
    if (!s) {
        atomic_fetch_sub(&api->streams, 1);
        return NULL;
    }
    s->api = api;
    s->conn = conn;
    s->pos = cap_event_hub_head(api->cfg.hub);
    const char *since = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "since");
    if (!since)
        since = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");
    if (since) {
        char *end;
        unsigned long long v = strtoull(since, &end, 10);
        if (end != since && !*end && v <= s->pos)
            s->pos = v;
    }
    const char *job = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "job_id");
    const char *rec = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "recording_id");
    if (job && strlen(job) < 64)
        snprintf(s->job_filter, sizeof(s->job_filter), "\"job_id\":\"%s\"", job);
    if (rec && strlen(rec) < 128)
        snprintf(s->recording_filter, sizeof(s->recording_filter), "\"recording_id\":\"%s\"", rec);
    /* A first line at once, so a client knows it is subscribed. */
    set_frame(s, "retry: 2000\n: capstan events\n\n");
    s->last_sent_ms = mono_ms();
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 8192, stream_read, s, stream_free);
    if (!resp) {
        stream_free(s);
        return NULL;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    return resp;
}

/* Wakes parked streams now and then so they send keep-alives (which is also how a closed
 * client is noticed: a suspended connection sees nothing). */
static void *ticker_main(void *arg)
{
    struct cap_jobs_api *api = arg;
    pthread_mutex_lock(&api->tick_lock);
    while (!api->stopping) {
        struct timespec until = cap_clock_deadline_ns((int64_t)KEEPALIVE_MS * CAP_NS_PER_MS);
        pthread_cond_timedwait(&api->tick_cond, &api->tick_lock, &until);
        if (!api->stopping)
            cap_event_hub_wake_all(api->cfg.hub);
    }
    pthread_mutex_unlock(&api->tick_lock);
    return NULL;
}

int cap_jobs_api_new(struct cap_jobs_api **out, const struct cap_jobs_api_config *cfg)
{
    struct cap_jobs_api *api = calloc(1, sizeof(*api));
    if (!api)
        return CAP_ENOMEM;
    api->cfg = *cfg;
    snprintf(api->data_dir, sizeof(api->data_dir), "%s", cfg->data_dir ? cfg->data_dir : ".");
    snprintf(api->auto_convert, sizeof(api->auto_convert), "%s",
             cfg->auto_convert ? cfg->auto_convert : "");
    api->cfg.data_dir = api->data_dir;
    pthread_mutex_init(&api->tick_lock, NULL);
    pthread_cond_init(&api->tick_cond, NULL);
    if (cfg->hub && pthread_create(&api->ticker, NULL, ticker_main, api) == 0)
        api->ticker_started = true;
    *out = api;
    return 0;
}

void cap_jobs_api_shutdown(struct cap_jobs_api *api)
{
    if (!api)
        return;
    pthread_mutex_lock(&api->tick_lock);
    api->stopping = true;
    pthread_cond_signal(&api->tick_cond);
    pthread_mutex_unlock(&api->tick_lock);
    if (api->ticker_started)
        pthread_join(api->ticker, NULL);
    api->ticker_started = false;
    if (api->cfg.hub)
        cap_event_hub_close(api->cfg.hub);
}

void cap_jobs_api_free(struct cap_jobs_api *api)
{
    if (!api)
        return;
    cap_jobs_api_shutdown(api);
    pthread_mutex_destroy(&api->tick_lock);
    pthread_cond_destroy(&api->tick_cond);
    free(api);
}
