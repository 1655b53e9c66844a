/* The recorder service (service.h): engine calls under one lock, then the effects they
 * returned, carried out in order: ingest ports and tracks, recording files, catalog rows,
 * events. A maintenance thread rewrites live recordings' files, brings interrupted
 * recordings back when their RTP returns, and closes the ones that stay silent. */
#include "api/service.h"

#include "ingest/uploader.h"
#include "store/blob.h"
#include "store/catalog.h"
#include "track/pcap.h"
#include "util/clock.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PERSIST_EVERY_NS (5 * CAP_NS_PER_SEC)
#define MAINT_TICK_MS 500
#define MAX_PENDING 64

/* The service's handle on a recording whose ports are open (engine's rec->edge). */
struct edge {
    struct cap_live *live;
    /* Counts from before this edge opened (a recording that continues after a restart);
     * the edge's own counters start at zero. Indexed like the tracks. */
    struct cap_track_totals *base;
    size_t base_count;
};

struct cap_service {
    struct cap_service_config cfg;
    char data_dir[PATH_MAX];
    char rtp_host[64];
    char advertise[64];
    pthread_mutex_t lock;           /* the engine and everything effects touch */
    struct cap_engine engine;
    struct cap_ingest *ingest;
    struct cap_catalog *catalog;
    pthread_t maint;
    bool running;
    pthread_cond_t maint_cond;      /* with lock */
    pthread_mutex_t pending_lock;   /* standby hits reported by the ingest thread */
    char pending[MAX_PENDING][CAP_ID_MAX];
    size_t pending_count;
    int64_t last_persist;
    int64_t started_mono;
    struct cap_uploader *uploader;  /* NULL: the data folder is the store */
};

void cap_reply_error(struct cap_reply *r, int status, int code, const char *message)
{
    r->status = status;
    r->body = json_pack("{s:{s:i, s:s}}", "error", "code", code, "message", message);
}

static void reply_engine_error(struct cap_reply *r, const struct cap_engine_error *err)
{
    cap_reply_error(r, cap_api_error_status(err->code), (int)err->code,
                    err->message[0] ? err->message : cap_api_error_text(err->code));
}

static void reply_ok(struct cap_reply *r, int status, json_t *body)
{
    r->status = status;
    r->body = body;
}

/* ---- the recording's files ---- */

static void recording_dir(const struct cap_service *svc, const struct cap_recording *rec, char *out,
                          size_t size)
{
    /* The data folder is checked to leave room for ids at startup. */
    if (snprintf(out, size, "%s/rooms/%s/%s", svc->data_dir, rec->room_id, rec->recording_id) >= (int)size)
        out[0] = '\0';
}

static void sync_counts(struct cap_recording *rec)
{
    struct edge *edge = rec->edge;
    if (!edge)
        return;
    for (size_t i = 0; i < rec->track_count; i++) {
        const struct cap_track_counters *c = cap_ingest_track_counters(edge->live, i);
        if (!c)
            continue;
        struct cap_track_totals base = i < edge->base_count ? edge->base[i] : (struct cap_track_totals){0};
        struct cap_rec_track *t = &rec->tracks[i];
        t->packets = base.packets + atomic_load_explicit(&c->packets, memory_order_relaxed);
        t->bytes = base.bytes + atomic_load_explicit(&c->bytes, memory_order_relaxed);
        t->rtcp_packets = base.rtcp_packets + atomic_load_explicit(&c->rtcp_packets, memory_order_relaxed);
    }
}

static void persist(struct cap_service *svc, struct cap_recording *rec)
{
    sync_counts(rec);
    char dir[PATH_MAX];
    recording_dir(svc, rec, dir, sizeof(dir));
    struct cap_log_ctx ctx = {.recording = rec->recording_id};
    int err = cap_mkdir_p(dir);
    if (!err)
        err = cap_json_write_file(dir, "metadata.json", cap_recording_metadata(&svc->engine, rec));
    if (!err)
        err = cap_json_write_file(dir, "timeline.json", cap_recording_timeline(rec));
    if (!err)
        err = cap_json_write_file(dir, "policy.json", json_deep_copy(rec->policy_snapshot));
    if (err)
        CAP_ERROR(&ctx, "cannot write recording files in %s: %s", dir, cap_strerror(err));
    json_t *state = cap_recording_state_json(rec);
    cap_catalog_put_recording(svc->catalog, rec->recording_id, rec->room_id,
                              cap_recording_state_name(rec->state), state);
    json_decref(state);
}

static void persist_room(struct cap_service *svc, const char *room_id)
{
    struct cap_room *room = cap_engine_find_room(&svc->engine, room_id);
    if (!room)
        return;
    json_t *state = cap_room_state_json(room);
    cap_catalog_put_room(svc->catalog, room_id, state);
    json_decref(state);
}

/* ---- effects ---- */

static enum cap_track_mode mode_for(const struct cap_recording *rec, const struct cap_rec_track *t)
{
    if (t->closed)
        return CAP_TRACK_CLOSED;
    if (rec->state == CAP_REC_INTERRUPTED)
        return CAP_TRACK_STANDBY;
    return cap_rec_track_active(rec, t) ? CAP_TRACK_ACTIVE : CAP_TRACK_PAUSED;
}

static int open_edge(struct cap_service *svc, struct cap_recording *rec, uint16_t want_port)
{
    char dir[PATH_MAX];
    recording_dir(svc, rec, dir, sizeof(dir));
    int err = cap_mkdir_p(dir);
    if (err)
        return err;
    struct edge *edge = calloc(1, sizeof(*edge));
    if (!edge)
        return CAP_ENOMEM;
    edge->base_count = rec->track_count;
    edge->base = calloc(rec->track_count ? rec->track_count : 1, sizeof(*edge->base));
    if (!edge->base) {
        free(edge);
        return CAP_ENOMEM;
    }
    for (size_t i = 0; i < rec->track_count; i++)
        edge->base[i] = (struct cap_track_totals){rec->tracks[i].packets, rec->tracks[i].bytes,
                                                  rec->tracks[i].rtcp_packets};
    err = cap_ingest_open(svc->ingest, rec->recording_id, dir, want_port, &edge->live, &rec->udp_port,
                          &rec->tcp_port);
    if (err) {
        free(edge->base);
        free(edge);
        return err;
    }
    rec->edge = edge;
    return 0;
}

static void close_edge(struct cap_service *svc, struct cap_recording *rec)
{
    struct edge *edge = rec->edge;
    if (!edge)
        return;
    struct cap_track_totals *totals = calloc(rec->track_count ? rec->track_count : 1, sizeof(*totals));
    int err = cap_ingest_close(svc->ingest, edge->live, totals, totals ? rec->track_count : 0);
    if (err) {
        struct cap_log_ctx ctx = {.recording = rec->recording_id};
        CAP_ERROR(&ctx, "closing tracks: %s", cap_strerror(err));
    }
    for (size_t i = 0; totals && i < rec->track_count; i++) {
        struct cap_track_totals base = i < edge->base_count ? edge->base[i] : (struct cap_track_totals){0};
        rec->tracks[i].packets = base.packets + totals[i].packets;
        rec->tracks[i].bytes = base.bytes + totals[i].bytes;
        rec->tracks[i].rtcp_packets = base.rtcp_packets + totals[i].rtcp_packets;
    }
    free(totals);
    free(edge->base);
    free(edge);
    rec->edge = NULL;
}

static void emit_event(struct cap_service *svc, json_t *event)
{
    if (!svc->cfg.sink.emit || !event)
        return;
    char *text = json_dumps(event, JSON_COMPACT | JSON_PRESERVE_ORDER);
    const char *id = json_string_value(json_object_get(event, "id"));
    if (text && id) {
        int err = svc->cfg.sink.emit(svc->cfg.sink.user, id, text, strlen(text));
        if (err)
            CAP_ERROR(NULL, "cannot queue event %s: %s", id, cap_strerror(err));
    }
    free(text);
}

/* Carries out what the engine decided. Called with the lock held. */
static void apply(struct cap_service *svc, struct cap_effects *fx)
{
    struct cap_recording *dirty[64];
    size_t dirty_count = 0;
    for (size_t i = 0; i < fx->count; i++) {
        struct cap_effect *e = &fx->items[i];
        struct cap_recording *rec = e->recording;
        struct edge *edge = rec ? rec->edge : NULL;
        struct cap_log_ctx ctx = {.recording = rec ? rec->recording_id : NULL};
        int err = 0;
        switch (e->type) {
        case CAP_FX_RECORDING_OPEN:
            err = open_edge(svc, rec, 0);
            break;
        case CAP_FX_RECORDING_CLOSE:
            close_edge(svc, rec);
            break;
        case CAP_FX_TRACK_ADD:
            if (edge)
                err = cap_ingest_add_track(svc->ingest, edge->live, e->track_index,
                                           &rec->tracks[e->track_index].info,
                                           mode_for(rec, &rec->tracks[e->track_index]));
            break;
        case CAP_FX_TRACK_STATE:
            if (edge)
                err = cap_ingest_set_mode(svc->ingest, edge->live, e->track_index,
                                          mode_for(rec, &rec->tracks[e->track_index]));
            break;
        case CAP_FX_TRACK_SSRC:
            if (edge)
                err = cap_ingest_set_ssrc(svc->ingest, edge->live, e->track_index,
                                          &rec->tracks[e->track_index].info);
            break;
        case CAP_FX_PERSIST: {
            bool seen = false;
            for (size_t k = 0; k < dirty_count; k++)
                seen = seen || dirty[k] == rec;
            if (!seen && dirty_count < sizeof(dirty) / sizeof(dirty[0]))
                dirty[dirty_count++] = rec;
            else if (!seen)
                persist(svc, rec);
            break;
        }
        case CAP_FX_EVENT:
            emit_event(svc, e->event);
            break;
        }
        if (err)
            CAP_ERROR(&ctx, "effect %d failed: %s", (int)e->type, cap_strerror(err));
    }
    for (size_t k = 0; k < dirty_count; k++)
        persist(svc, dirty[k]);
}

/* ---- recovery after a crash ---- */

static void restore_room(void *user, json_t *state)
{
    cap_engine_restore_room(&((struct cap_service *)user)->engine, state);
}

/* Chunks already uploaded have left the spool: their counts come from their indexes in the
 * store. If the store cannot be asked, the catalog's counts (at most one persist old) stay. */
static void add_uploaded_counts(struct cap_service *svc, struct cap_recording *rec, struct cap_rec_track *track,
                                const char *track_dir, const struct cap_track_totals *saved, bool *store_down)
{
    char key[PATH_MAX];
    snprintf(key, sizeof(key), "rooms/%s/%s/tracks/%s", rec->room_id, rec->recording_id, track->track_id);
    struct cap_chunk_summary remote;
    /* One failure is enough to know: the other tracks do not wait for the store again. */
    if (*store_down || (*store_down = cap_uploader_remote_totals(svc->cfg.storage_url, key, track_dir, &remote) != 0)) {
        CAP_WARN(&((struct cap_log_ctx){.recording = rec->recording_id, .track = track->track_id}),
                 "store not reachable: packet counts are the catalog's, not recounted");
        track->packets = saved->packets;
        track->bytes = saved->bytes;
        track->rtcp_packets = saved->rtcp_packets;
        return;
    }
    track->packets += remote.rtp_records;
    track->bytes += remote.rtp_bytes;
    track->rtcp_packets += remote.rtcp_records;
}

/* Repairs every chunk of a recording that was live when the recorder died. */
static void repair_recording(struct cap_service *svc, struct cap_recording *rec)
{
    char dir[PATH_MAX];
    recording_dir(svc, rec, dir, sizeof(dir));
    char **tracks;
    size_t count;
    if (cap_track_dirs_list(dir, &tracks, &count) != 0)
        return;
    struct cap_log_ctx ctx = {.recording = rec->recording_id};
    bool store_down = false;
    for (size_t i = 0; i < count; i++) {
        const char *name = strrchr(tracks[i], '/') + 1;
        struct cap_rec_track *track = NULL;
        for (size_t k = 0; k < rec->track_count; k++)
            if (strcmp(rec->tracks[k].track_id, name) == 0)
                track = &rec->tracks[k];
        /* The disk is the truth about counts: the catalog's are as old as its last write. */
        struct cap_track_totals saved = {0};
        if (track)
            saved = (struct cap_track_totals){track->packets, track->bytes, track->rtcp_packets};
        if (track)
            track->packets = track->bytes = track->rtcp_packets = 0;
        DIR *d = opendir(tracks[i]);
        struct dirent *ent;
        while (d && (ent = readdir(d))) {
            size_t n = strlen(ent->d_name);
            if (n < 6 || strcmp(ent->d_name + n - 5, ".ctrk") != 0)
                continue;
            char path[PATH_MAX];
            snprintf(path, sizeof(path), "%s/%s", tracks[i], ent->d_name);
            struct cap_chunk_repair_report rep;
            int err = cap_chunk_repair(path, &rep);
            if (err)
                CAP_ERROR(&ctx, "cannot repair %s: %s (left as it is)", path, cap_strerror(err));
            else if (!rep.was_sealed)
                CAP_WARN(&ctx, "repaired %s: kept %llu records, cut a torn tail of %llu bytes%s", path,
                         (unsigned long long)rep.records, (unsigned long long)rep.cut_bytes,
                         rep.removed ? " (chunk removed: nothing in it)" : "");
            struct cap_chunk_reader *reader;
            if (track && !rep.removed && cap_chunk_open(&reader, path) == 0) {
                const struct cap_chunk_summary *s = cap_chunk_summary(reader);
                track->packets += s->rtp_records;
                track->bytes += s->rtp_bytes;
                track->rtcp_packets += s->rtcp_records;
                cap_chunk_close(reader);
            }
        }
        if (d)
            closedir(d);
        if (track && svc->cfg.storage_url)
            add_uploaded_counts(svc, rec, track, tracks[i], &saved, &store_down);
    }
    cap_track_dirs_free(tracks, count);
}

static void collect(void *user, json_t *state)
{
    json_array_append(user, state);
}

static void adopt_recording(struct cap_service *svc, json_t *state)
{
    const char *was = json_string_value(json_object_get(state, "state"));
    struct cap_recording *rec = cap_engine_adopt_recording(&svc->engine, state);
    if (!rec || !was || (strcmp(was, "recording") != 0 && strcmp(was, "paused") != 0))
        return;
    /* It was live when the recorder died. */
    repair_recording(svc, rec);
    struct cap_effects fx;
    cap_effects_init(&fx);
    struct cap_engine_error ignored;
    cap_engine_interrupt_recording(&svc->engine, rec, &fx, &ignored);
    uint16_t port = rec->udp_port;
    if (open_edge(svc, rec, port) == 0) {
        for (size_t i = 0; i < rec->track_count; i++)
            if (!rec->tracks[i].closed)
                cap_ingest_add_track(svc->ingest, ((struct edge *)rec->edge)->live, i,
                                     &rec->tracks[i].info, CAP_TRACK_STANDBY);
        rec->standby_until_ns = svc->engine.now_ns() + svc->cfg.recover_window_ns;
        CAP_WARN(&((struct cap_log_ctx){.recording = rec->recording_id}),
                 "recording was live when capstan stopped: interrupted; listening on port %u for "
                 "its RTP to continue it",
                 port);
    } else {
        CAP_WARN(&((struct cap_log_ctx){.recording = rec->recording_id}),
                 "recording was live when capstan stopped: interrupted (port %u not available)", port);
    }
    apply(svc, &fx);
    cap_effects_deinit(&fx);
}

static void on_standby_packet(void *user, const char *recording_id)
{
    struct cap_service *svc = user;
    pthread_mutex_lock(&svc->pending_lock);
    if (svc->pending_count < MAX_PENDING)
        snprintf(svc->pending[svc->pending_count++], CAP_ID_MAX, "%s", recording_id);
    pthread_mutex_unlock(&svc->pending_lock);
    pthread_cond_broadcast(&svc->maint_cond);
}

/* ---- maintenance ---- */

static void recover_pending(struct cap_service *svc)
{
    char ids[MAX_PENDING][CAP_ID_MAX];
    pthread_mutex_lock(&svc->pending_lock);
    size_t count = svc->pending_count;
    memcpy(ids, svc->pending, count * CAP_ID_MAX);
    svc->pending_count = 0;
    pthread_mutex_unlock(&svc->pending_lock);
    for (size_t i = 0; i < count; i++) {
        struct cap_recording *rec = cap_engine_find_recording(&svc->engine, ids[i]);
        if (!rec || rec->state != CAP_REC_INTERRUPTED || !rec->edge)
            continue;
        struct cap_effects fx;
        cap_effects_init(&fx);
        struct cap_engine_error ignored;
        cap_engine_recover_recording(&svc->engine, rec, &fx, &ignored);
        for (size_t t = 0; t < rec->track_count; t++)
            cap_ingest_set_mode(svc->ingest, ((struct edge *)rec->edge)->live, t,
                                mode_for(rec, &rec->tracks[t]));
        CAP_INFO(&((struct cap_log_ctx){.recording = rec->recording_id}),
                 "RTP came back: recording continues");
        apply(svc, &fx);
        cap_effects_deinit(&fx);
    }
}

static void maintain(struct cap_service *svc)
{
    recover_pending(svc);
    int64_t now = svc->engine.now_ns();
    bool periodic = now - svc->last_persist >= PERSIST_EVERY_NS;
    if (periodic)
        svc->last_persist = now;
    for (size_t i = 0; i < svc->engine.recording_count; i++) {
        struct cap_recording *rec = svc->engine.recordings[i];
        if (rec->state == CAP_REC_INTERRUPTED && rec->edge && now > rec->standby_until_ns) {
            CAP_INFO(&((struct cap_log_ctx){.recording = rec->recording_id}),
                     "no RTP came back: recording stays interrupted");
            close_edge(svc, rec);
            persist(svc, rec);
        } else if (periodic && rec->edge) {
            persist(svc, rec);
        }
    }
}

static void *maint_main(void *arg)
{
    struct cap_service *svc = arg;
    pthread_mutex_lock(&svc->lock);
    while (svc->running) {
        struct timespec until = cap_clock_deadline_ns(MAINT_TICK_MS * CAP_NS_PER_MS);
        pthread_cond_timedwait(&svc->maint_cond, &svc->lock, &until);
        if (svc->running)
            maintain(svc);
    }
    pthread_mutex_unlock(&svc->lock);
    return NULL;
}

/* ---- lifecycle ---- */

/* With a store other than the data folder, the spool's uploader runs (after recovery, which
 * repairs what it must not see torn). A failure to start it is logged: recording still works
 * and the spool keeps everything until a restart with a working store. */
static void start_uploader(struct cap_service *svc)
{
    const char *url = svc->cfg.storage_url;
    if (!url || !*url)
        return;
    if (!cap_blob_url_is_s3(url)) {
        char a[PATH_MAX], b[PATH_MAX];
        const char *dir = strncmp(url, "file://", 7) == 0 ? url + 7 : url;
        if (realpath(dir, a) && realpath(svc->data_dir, b) && strcmp(a, b) == 0)
            return;
    }
    struct cap_uploader_config ucfg = {.data_dir = svc->data_dir, .storage_url = url,
                                       .quota_bytes = svc->cfg.spool_quota_bytes, .keep_local = svc->cfg.spool_keep};
    char why[512];
    if (cap_uploader_start(&svc->uploader, &ucfg, why, sizeof(why)) != 0)
        CAP_ERROR(NULL, "the spool uploader did not start: %s; recordings stay in %s", why, svc->data_dir);
}

int cap_service_open(struct cap_service **out, const struct cap_service_config *cfg)
{
    struct cap_service *svc = calloc(1, sizeof(*svc));
    if (!svc)
        return CAP_ENOMEM;
    svc->cfg = *cfg;
    snprintf(svc->data_dir, sizeof(svc->data_dir), "%s", cfg->data_dir);
    snprintf(svc->rtp_host, sizeof(svc->rtp_host), "%s", cfg->rtp_host);
    snprintf(svc->advertise, sizeof(svc->advertise), "%s",
             cfg->rtp_advertise && *cfg->rtp_advertise ? cfg->rtp_advertise : cfg->rtp_host);
    if (!svc->cfg.recover_window_ns)
        svc->cfg.recover_window_ns = 60 * CAP_NS_PER_SEC;
    int err = cap_mkdir_p(svc->data_dir);
    char path[PATH_MAX];
    if (strlen(svc->data_dir) > PATH_MAX - 3 * CAP_ID_MAX - 64)
        err = CAP_ELIMIT;
    if (!err && snprintf(path, sizeof(path), "%s/catalog.db", svc->data_dir) >= (int)sizeof(path))
        err = CAP_ELIMIT;
    if (!err)
        err = cap_catalog_open(&svc->catalog, path);
    if (err) {
        free(svc);
        return err;
    }
    cap_engine_init(&svc->engine, cfg->node);
    struct cap_ingest_config icfg = {
        .rtp_host = svc->rtp_host,
        .port_lo = cfg->port_lo,
        .port_hi = cfg->port_hi,
        .sync_interval_ns = cfg->sync_interval_ns,
        .max_chunk_bytes = cfg->max_chunk_bytes,
        .max_chunk_ns = cfg->max_chunk_ns,
        .sync_dir = svc->data_dir,
        .on_standby_packet = on_standby_packet,
        .user = svc,
    };
    err = cap_ingest_start(&svc->ingest, &icfg);
    if (err) {
        cap_catalog_close(svc->catalog);
        cap_engine_deinit(&svc->engine);
        free(svc);
        return err;
    }
    pthread_mutex_init(&svc->lock, NULL);
    pthread_mutex_init(&svc->pending_lock, NULL);
    pthread_cond_init(&svc->maint_cond, NULL);
    svc->started_mono = cap_clock_mono_ns();
    svc->last_persist = svc->engine.now_ns();
    /* Bring back what was there before a restart. */
    pthread_mutex_lock(&svc->lock);
    cap_catalog_each_room(svc->catalog, restore_room, svc);
    /* Collected first: adopting writes to the catalog, which is busy while it iterates. */
    json_t *recordings = json_array();
    cap_catalog_each_recording(svc->catalog, collect, recordings);
    size_t i;
    json_t *state;
    json_array_foreach(recordings, i, state)
    {
        adopt_recording(svc, state);
    }
    json_decref(recordings);
    svc->running = true;
    pthread_mutex_unlock(&svc->lock);
    start_uploader(svc);
    pthread_create(&svc->maint, NULL, maint_main, svc);
    *out = svc;
    return 0;
}

void cap_service_close(struct cap_service *svc)
{
    if (!svc)
        return;
    pthread_mutex_lock(&svc->lock);
    svc->running = false;
    pthread_cond_broadcast(&svc->maint_cond);
    pthread_mutex_unlock(&svc->lock);
    pthread_join(svc->maint, NULL);
    /* A clean shutdown keeps recordings live in the catalog: the next start continues them
     * as after a crash, but nothing is torn. */
    pthread_mutex_lock(&svc->lock);
    for (size_t i = 0; i < svc->engine.recording_count; i++) {
        struct cap_recording *rec = svc->engine.recordings[i];
        if (rec->edge) {
            close_edge(svc, rec);
            persist(svc, rec);
        }
    }
    pthread_mutex_unlock(&svc->lock);
    cap_ingest_stop(svc->ingest);
    /* Last: what the shutdown just sealed and wrote goes up too. */
    cap_uploader_stop(svc->uploader);
    cap_catalog_close(svc->catalog);
    cap_engine_deinit(&svc->engine);
    free(svc);
}

/* ---- API operations ---- */

typedef int (*room_op)(struct cap_engine *, const char *, json_t *, struct cap_effects *,
                       struct cap_engine_error *);

/* Runs one engine call: lock, call, apply, persist the room, answer. */
#define WITH_ENGINE(svc, room_id, call, on_ok)                                                     \
    do {                                                                                           \
        struct cap_effects fx;                                                                     \
        struct cap_engine_error err = {0};                                                         \
        cap_effects_init(&fx);                                                                     \
        pthread_mutex_lock(&(svc)->lock);                                                          \
        int rc_ = (call);                                                                          \
        if (rc_ < 0) {                                                                             \
            reply_engine_error(r, &err);                                                           \
        } else {                                                                                   \
            apply((svc), &fx);                                                                     \
            if (room_id)                                                                           \
                persist_room((svc), (room_id));                                                    \
            on_ok;                                                                                 \
        }                                                                                          \
        pthread_mutex_unlock(&(svc)->lock);                                                        \
        cap_effects_deinit(&fx);                                                                   \
    } while (0)

static json_t *room_view(struct cap_service *svc, const char *room_id)
{
    struct cap_room *room = cap_engine_find_room(&svc->engine, room_id);
    return room ? cap_room_json(room) : json_object();
}

void cap_service_put_room(struct cap_service *svc, const char *room_id, json_t *body, struct cap_reply *r)
{
    WITH_ENGINE(svc, room_id, cap_engine_put_room(&svc->engine, room_id, body, &fx, &err),
                reply_ok(r, rc_ == 1 ? 201 : 200, room_view(svc, room_id)));
}

void cap_service_close_room(struct cap_service *svc, const char *room_id, struct cap_reply *r)
{
    WITH_ENGINE(svc, room_id, cap_engine_close_room(&svc->engine, room_id, &fx, &err),
                reply_ok(r, 200, room_view(svc, room_id)));
}

void cap_service_get_room(struct cap_service *svc, const char *room_id, struct cap_reply *r)
{
    pthread_mutex_lock(&svc->lock);
    struct cap_room *room = cap_engine_find_room(&svc->engine, room_id);
    if (room)
        reply_ok(r, 200, cap_room_json(room));
    else
        cap_reply_error(r, 404, CAP_API_ROOM_NOT_FOUND, "room not found");
    pthread_mutex_unlock(&svc->lock);
}

void cap_service_peer_join(struct cap_service *svc, const char *room_id, json_t *body, struct cap_reply *r)
{
    WITH_ENGINE(svc, room_id, cap_engine_peer_join(&svc->engine, room_id, body, &fx, &err),
                reply_ok(r, 201, room_view(svc, room_id)));
}

void cap_service_peer_leave(struct cap_service *svc, const char *room_id, const char *peer_id,
                            struct cap_reply *r)
{
    WITH_ENGINE(svc, room_id, cap_engine_peer_leave(&svc->engine, room_id, peer_id, &fx, &err),
                reply_ok(r, 200, room_view(svc, room_id)));
}

/* Where a producer's RTP should go: every live recording that records it. */
static json_t *producer_reply(struct cap_service *svc, const char *room_id, const char *producer_id)
{
    json_t *recs = json_array();
    for (size_t i = 0; i < svc->engine.recording_count; i++) {
        struct cap_recording *rec = svc->engine.recordings[i];
        if (strcmp(rec->room_id, room_id) != 0 || !rec->edge)
            continue;
        for (size_t t = 0; t < rec->track_count; t++) {
            struct cap_rec_track *track = &rec->tracks[t];
            if (!track->closed && strcmp(track->producer_id, producer_id) == 0)
                json_array_append_new(recs, json_pack("{s:s, s:s, s:{s:s, s:i, s:i}}", "recording_id",
                                                      rec->recording_id, "track_id", track->track_id,
                                                      "rtp", "host", svc->advertise, "udp_port",
                                                      rec->udp_port, "tcp_port", rec->tcp_port));
        }
    }
    json_t *producer = json_null();
    json_t *room = room_view(svc, room_id);
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(room, "producers"), i, p)
    {
        if (strcmp(json_string_value(json_object_get(p, "producer_id")), producer_id) == 0)
            producer = p;
    }
    json_t *out = json_pack("{s:O, s:b, s:o}", "producer", producer, "recorded", json_array_size(recs) > 0,
                            "recordings", recs);
    json_decref(room);
    return out;
}

void cap_service_producer_create(struct cap_service *svc, const char *room_id, json_t *body,
                                 struct cap_reply *r)
{
    const char *pid = json_string_value(json_object_get(body, "producer_id"));
    WITH_ENGINE(svc, room_id, cap_engine_producer_create(&svc->engine, room_id, body, &fx, &err),
                reply_ok(r, 201, producer_reply(svc, room_id, pid)));
}

void cap_service_producer_update(struct cap_service *svc, const char *room_id, const char *producer_id,
                                 json_t *body, struct cap_reply *r)
{
    WITH_ENGINE(svc, room_id,
                cap_engine_producer_update(&svc->engine, room_id, producer_id, body, &fx, &err),
                reply_ok(r, 200, producer_reply(svc, room_id, producer_id)));
}

void cap_service_producer_close(struct cap_service *svc, const char *room_id, const char *producer_id,
                                struct cap_reply *r)
{
    WITH_ENGINE(svc, room_id, cap_engine_producer_close(&svc->engine, room_id, producer_id, &fx, &err),
                reply_ok(r, 200, producer_reply(svc, room_id, producer_id)));
}

void cap_service_producer_pause(struct cap_service *svc, const char *room_id, const char *producer_id,
                                bool paused, struct cap_reply *r)
{
    WITH_ENGINE(svc, room_id,
                cap_engine_producer_pause(&svc->engine, room_id, producer_id, paused, &fx, &err),
                reply_ok(r, 200, producer_reply(svc, room_id, producer_id)));
}

void cap_service_active_speaker(struct cap_service *svc, const char *room_id, json_t *body,
                                struct cap_reply *r)
{
    WITH_ENGINE(svc, room_id, cap_engine_active_speaker(&svc->engine, room_id, body, &fx, &err),
                reply_ok(r, 200, json_pack("{s:s}", "active_speaker",
                                           cap_engine_find_room(&svc->engine, room_id)->active_speaker)));
}

static json_t *recording_view(struct cap_service *svc, struct cap_recording *rec)
{
    sync_counts(rec);
    json_t *view = cap_recording_json(rec, svc->advertise);
    uint64_t packets = 0, bytes = 0, rtcp = 0;
    for (size_t i = 0; i < rec->track_count; i++) {
        packets += rec->tracks[i].packets;
        bytes += rec->tracks[i].bytes;
        rtcp += rec->tracks[i].rtcp_packets;
    }
    json_object_set_new(view, "packets", json_integer((json_int_t)packets));
    json_object_set_new(view, "bytes", json_integer((json_int_t)bytes));
    json_object_set_new(view, "rtcp_packets", json_integer((json_int_t)rtcp));
    /* Post-processing comes with the job issues; until then nothing is asked for. */
    json_object_set_new(view, "preview_status", json_null());
    json_object_set_new(view, "export_status", json_null());
    return view;
}

void cap_service_start_recording(struct cap_service *svc, const char *room_id, json_t *body,
                                 struct cap_reply *r)
{
    struct cap_recording *rec = NULL;
    WITH_ENGINE(svc, room_id,
                cap_engine_start_recording(&svc->engine, room_id, body, &rec, &fx, &err), {
                    if (!rec->edge) {
                        /* No port could be opened: the recording cannot receive anything. */
                        struct cap_effects fx2;
                        struct cap_engine_error e2;
                        cap_effects_init(&fx2);
                        cap_engine_stop_recording(&svc->engine, rec, "no_port", &fx2, &e2);
                        apply(svc, &fx2);
                        cap_effects_deinit(&fx2);
                        cap_reply_error(r, 503, CAP_API_NO_PORT,
                                        "no free RTP port in the configured range");
                    } else {
                        reply_ok(r, 201, recording_view(svc, rec));
                    }
                });
}

void cap_service_get_recording(struct cap_service *svc, const char *recording_id, struct cap_reply *r)
{
    pthread_mutex_lock(&svc->lock);
    struct cap_recording *rec = cap_engine_find_recording(&svc->engine, recording_id);
    if (rec)
        reply_ok(r, 200, recording_view(svc, rec));
    else
        cap_reply_error(r, 404, CAP_API_RECORDING_NOT_FOUND, "recording not found");
    pthread_mutex_unlock(&svc->lock);
}

void cap_service_list_recordings(struct cap_service *svc, const char *room_id, struct cap_reply *r)
{
    pthread_mutex_lock(&svc->lock);
    json_t *list = json_array();
    for (size_t i = 0; i < svc->engine.recording_count; i++) {
        struct cap_recording *rec = svc->engine.recordings[i];
        if (!room_id || strcmp(rec->room_id, room_id) == 0)
            json_array_append_new(list, recording_view(svc, rec));
    }
    pthread_mutex_unlock(&svc->lock);
    reply_ok(r, 200, json_pack("{s:o}", "recordings", list));
}

void cap_service_recording_action(struct cap_service *svc, const char *recording_id, const char *action,
                                  struct cap_reply *r)
{
    struct cap_effects fx;
    struct cap_engine_error err = {0};
    cap_effects_init(&fx);
    pthread_mutex_lock(&svc->lock);
    struct cap_recording *rec = cap_engine_find_recording(&svc->engine, recording_id);
    int rc;
    if (!rec) {
        err.code = CAP_API_RECORDING_NOT_FOUND;
        snprintf(err.message, sizeof(err.message), "recording '%.100s' not found", recording_id);
        rc = -1;
    } else if (strcmp(action, "stop") == 0) {
        rc = cap_engine_stop_recording(&svc->engine, rec, "requested", &fx, &err);
    } else {
        rc = cap_engine_pause_recording(&svc->engine, rec, strcmp(action, "pause") == 0, &fx, &err);
    }
    if (rc < 0) {
        reply_engine_error(r, &err);
    } else {
        apply(svc, &fx);
        reply_ok(r, 200, recording_view(svc, rec));
    }
    pthread_mutex_unlock(&svc->lock);
    cap_effects_deinit(&fx);
}

void cap_service_health(struct cap_service *svc, struct cap_reply *r)
{
    struct cap_ingest_counters *c = cap_ingest_counters(svc->ingest);
    reply_ok(r, 200,
             json_pack("{s:s, s:I, s:I, s:I}", "status", "ok", "uptime_seconds",
                       (json_int_t)((cap_clock_mono_ns() - svc->started_mono) / CAP_NS_PER_SEC),
                       "active_recordings", (json_int_t)atomic_load(&c->active_recordings),
                       "active_tracks", (json_int_t)atomic_load(&c->active_tracks)));
}

char *cap_service_metrics(struct cap_service *svc)
{
    struct cap_ingest_counters *c = cap_ingest_counters(svc->ingest);
    struct cap_buf b;
    cap_buf_init(&b, 1 << 20);
#define COUNTER(name, help, value)                                                                 \
    cap_buf_printf(&b, "# HELP capstan_%s %s\n# TYPE capstan_%s counter\ncapstan_%s %llu\n", name,  \
                   help, name, name, (unsigned long long)(value))
#define GAUGE(name, help, fmt, value)                                                              \
    cap_buf_printf(&b, "# HELP capstan_%s %s\n# TYPE capstan_%s gauge\ncapstan_%s " fmt "\n", name, \
                   help, name, name, value)
    COUNTER("packets_received_total", "RTP and RTCP packets written to tracks.", atomic_load(&c->packets));
    COUNTER("bytes_received_total", "Bytes of RTP and RTCP written to tracks.", atomic_load(&c->bytes));
    COUNTER("rtcp_packets_received_total", "RTCP packets written to tracks.", atomic_load(&c->rtcp_packets));
    cap_buf_printf(&b, "# HELP capstan_packets_dropped_total Packets received and dropped, by reason.\n"
                       "# TYPE capstan_packets_dropped_total counter\n");
    for (int i = 0; i < CAP_INGEST_DROP_COUNT; i++)
        cap_buf_printf(&b, "capstan_packets_dropped_total{reason=\"%s\"} %llu\n",
                       cap_ingest_drop_name((enum cap_ingest_drop)i),
                       (unsigned long long)atomic_load(&c->drops[i]));
    COUNTER("kernel_drops_total", "Datagrams the kernel dropped because a socket queue was full.",
            atomic_load(&c->kernel_drops));
    COUNTER("chunk_writes_total", "write(2) calls that appended records to chunks.",
            atomic_load(&c->chunk_writes));
    COUNTER("fsync_total", "Durability syncs (syncfs) of the data folder.", atomic_load(&c->syncs));
    cap_buf_printf(&b, "# HELP capstan_fsync_seconds_total Time spent in syncs.\n"
                       "# TYPE capstan_fsync_seconds_total counter\ncapstan_fsync_seconds_total %.6f\n",
                   (double)atomic_load(&c->sync_ns_total) / 1e9);
    GAUGE("fsync_seconds_max", "Longest sync so far.", "%.6f", (double)atomic_load(&c->sync_ns_max) / 1e9);
    GAUGE("active_recordings", "Recordings with open ports.", "%lld",
          (long long)atomic_load(&c->active_recordings));
    GAUGE("active_tracks", "Tracks being written.", "%lld", (long long)atomic_load(&c->active_tracks));
    long long backlog = svc->cfg.sink.backlog ? (long long)svc->cfg.sink.backlog(svc->cfg.sink.user) : 0;
    GAUGE("webhook_backlog", "Webhook deliveries not yet acknowledged.", "%lld", backlog);
    if (svc->uploader) {
        struct cap_uploader_stats u;
        cap_uploader_get_stats(svc->uploader, &u);
        GAUGE("upload_backlog_files", "Sealed chunks and recording files in the spool not yet in the store.", "%llu",
              (unsigned long long)u.backlog_files);
        GAUGE("upload_backlog_bytes", "Bytes in the spool not yet in the store.", "%llu",
              (unsigned long long)u.backlog_bytes);
        COUNTER("uploads_total", "Objects uploaded and confirmed in the store.", u.uploads);
        COUNTER("upload_failures_total", "Failed upload attempts (each retry counts).", u.failures);
        COUNTER("spool_chunks_deleted_total", "Local chunks removed after their upload was confirmed.", u.deleted);
        GAUGE("spool_over_quota", "1 while the upload backlog is over --spool-quota-mb.", "%d", u.over_quota ? 1 : 0);
        GAUGE("upload_store_up", "1 while the last upload attempt reached the store.", "%d", u.store_ok ? 1 : 0);
    }
#undef COUNTER
#undef GAUGE
    if (cap_buf_append_byte(&b, 0) != 0) {
        cap_buf_deinit(&b);
        return NULL;
    }
    return (char *)b.data;
}
