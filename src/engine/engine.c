/* The engine (engine.h): rooms, policy checks, recordings and their tracks. Every change
 * is recorded on the recording's timeline and announced as effects; nothing here touches
 * a socket or a file. */
#include "engine/engine.h"

#include "engine/recording_files.h"
#include "util/clock.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    enum cap_api_error code;
    int status;
    const char *text;
} api_errors[] = {
#define CAP_X_APIERR_ROW_(name, code, status, text) {CAP_API_##name, status, text},
    CAP_API_ERROR_MAP(CAP_X_APIERR_ROW_)
#undef CAP_X_APIERR_ROW_
};

int cap_api_error_status(enum cap_api_error err)
{
    for (size_t i = 0; i < sizeof(api_errors) / sizeof(api_errors[0]); i++)
        if (api_errors[i].code == err)
            return api_errors[i].status;
    return 500;
}

const char *cap_api_error_text(enum cap_api_error err)
{
    for (size_t i = 0; i < sizeof(api_errors) / sizeof(api_errors[0]); i++)
        if (api_errors[i].code == err)
            return api_errors[i].text;
    return "internal error";
}

static int fail(struct cap_engine_error *err, enum cap_api_error code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct cap_engine_error *err, enum cap_api_error code, const char *fmt, ...)
{
    err->code = code;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
    } else {
        snprintf(err->message, sizeof(err->message), "%s", cap_api_error_text(code));
    }
    return -1;
}

const char *cap_recording_state_name(enum cap_recording_state s)
{
    switch (s) {
    case CAP_REC_RECORDING:
        return "recording";
    case CAP_REC_PAUSED:
        return "paused";
    case CAP_REC_STOPPED:
        return "stopped";
    case CAP_REC_INTERRUPTED:
        return "interrupted";
    }
    return "unknown";
}

/* ---- effects ---- */

void cap_effects_init(struct cap_effects *fx)
{
    memset(fx, 0, sizeof(*fx));
}

void cap_effects_deinit(struct cap_effects *fx)
{
    for (size_t i = 0; i < fx->count; i++)
        json_decref(fx->items[i].event);
    free(fx->items);
    memset(fx, 0, sizeof(*fx));
}

static void grow(void **items, size_t *cap, size_t count, size_t size)
{
    if (count < *cap)
        return;
    size_t n = *cap ? *cap * 2 : 8;
    void *p = realloc(*items, n * size);
    if (!p)
        abort(); /* control-plane allocations are tiny; running out means the process is done */
    *items = p;
    *cap = n;
}

static void emit(struct cap_effects *fx, enum cap_effect_type type, struct cap_recording *rec,
                 size_t track, json_t *event)
{
    grow((void **)&fx->items, &fx->cap, fx->count, sizeof(*fx->items));
    fx->items[fx->count++] = (struct cap_effect){
        .type = type, .recording = rec, .track_index = track, .event = event};
}

/* ---- small helpers ---- */

static void copy_id(char *dst, const char *src)
{
    snprintf(dst, CAP_ID_MAX, "%s", src ? src : "");
}

/* Ids become folder names: keep them to a safe alphabet, and short enough that a track id
 * ({peer_id}-screen-NN) still fits, so two peers never share a track folder. */
#define ID_LEN_MAX 100

static bool valid_id(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > ID_LEN_MAX || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.' || c == ':' || c == '@';
        if (!ok)
            return false;
    }
    return true;
}

static const char *json_str(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* Reads an optional typed member. Returns false (and fills err) if present with the
 * wrong type. */
static bool opt_bool(json_t *obj, const char *key, bool *out, struct cap_engine_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_boolean(v)) {
        fail(err, CAP_API_BAD_REQUEST, "'%s' must be true or false", key);
        return false;
    }
    *out = json_is_true(v);
    return true;
}

static bool opt_string(json_t *obj, const char *key, const char **out, struct cap_engine_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_string(v)) {
        fail(err, CAP_API_BAD_REQUEST, "'%s' must be a string", key);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

static bool opt_uint(json_t *obj, const char *key, uint64_t max, uint64_t *out,
                     struct cap_engine_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max) {
        fail(err, CAP_API_BAD_REQUEST, "'%s' must be an integer from 0 to %llu", key,
             (unsigned long long)max);
        return false;
    }
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static int64_t now(struct cap_engine *e)
{
    return e->now_ns();
}

static void default_random_id(char *out, size_t size, const char *prefix)
{
    static unsigned long long counter;
    FILE *f = fopen("/dev/urandom", "rb");
    unsigned long long r = 0;
    if (!f || fread(&r, sizeof(r), 1, f) != 1)
        r = (unsigned long long)cap_clock_wall_ns() ^ ++counter;
    if (f)
        fclose(f);
    snprintf(out, size, "%s%016llx", prefix, r);
}

/* ---- engine ---- */

int cap_engine_init(struct cap_engine *e, int node)
{
    memset(e, 0, sizeof(*e));
    e->node = node;
    e->now_ns = cap_clock_wall_ns;
    e->random_id = default_random_id;
    return 0;
}

static void free_recording(struct cap_recording *rec)
{
    json_decref(rec->participant_ids);
    json_decref(rec->timeline);
    json_decref(rec->policy_snapshot);
    free(rec->tracks);
    free(rec);
}

static void free_room(struct cap_room *room)
{
    for (size_t i = 0; i < room->producer_count; i++)
        free(room->producers[i].fmtp);
    free(room->producers);
    free(room->peers);
    json_decref(room->policy);
    free(room);
}

void cap_engine_deinit(struct cap_engine *e)
{
    for (size_t i = 0; i < e->room_count; i++)
        free_room(e->rooms[i]);
    for (size_t i = 0; i < e->recording_count; i++)
        free_recording(e->recordings[i]);
    free(e->rooms);
    free(e->recordings);
    memset(e, 0, sizeof(*e));
}

struct cap_room *cap_engine_find_room(struct cap_engine *e, const char *room_id)
{
    for (size_t i = 0; i < e->room_count; i++)
        if (strcmp(e->rooms[i]->room_id, room_id) == 0)
            return e->rooms[i];
    return NULL;
}

struct cap_recording *cap_engine_find_recording(struct cap_engine *e, const char *recording_id)
{
    for (size_t i = 0; i < e->recording_count; i++)
        if (strcmp(e->recordings[i]->recording_id, recording_id) == 0)
            return e->recordings[i];
    return NULL;
}

struct cap_room *cap_engine_room_of(struct cap_engine *e, const struct cap_recording *rec)
{
    return cap_engine_find_room(e, rec->room_id);
}

static bool rec_live(const struct cap_recording *rec)
{
    return rec->state == CAP_REC_RECORDING || rec->state == CAP_REC_PAUSED;
}

bool cap_rec_track_active(const struct cap_recording *rec, const struct cap_rec_track *t)
{
    return rec->state == CAP_REC_RECORDING && !t->producer_paused && !t->policy_paused && !t->closed;
}

/* ---- events ---- */

/* A HookEvent: {"id", "node", "ts", "event": {Kind: {"app", "room", ..., "event": {Name: body}}}}. */
static json_t *hook_event(struct cap_engine *e, const char *kind, const char *room_id,
                          const char *name, json_t *body, json_t *extra)
{
    char id[64];
    e->event_seq++;
    e->random_id(id, sizeof(id), "evt_");
    json_t *inner = json_pack("{s:s, s:s}", "app", "capstan", "room", room_id);
    if (extra)
        json_object_update(inner, extra);
    json_decref(extra);
    json_object_set_new(inner, "event", json_pack("{s:o}", name, body ? body : json_object()));
    return json_pack("{s:s, s:i, s:I, s:{s:o}}", "id", id, "node", e->node, "ts",
                     (json_int_t)(now(e) / CAP_NS_PER_MS), "event", kind, inner);
}

static void timeline_add(struct cap_engine *e, struct cap_recording *rec, const char *type,
                         json_t *fields)
{
    int64_t t = (now(e) - rec->started_ns) / CAP_NS_PER_MS;
    json_t *ev = json_pack("{s:I, s:s}", "t", (json_int_t)(t < 0 ? 0 : t), "type", type);
    if (fields)
        json_object_update(ev, fields);
    json_decref(fields);
    json_array_append_new(rec->timeline, ev);
}

/* ---- policy ---- */

static const char *const who_values[] = {"host", "co_host", "panelist", "all"};

static bool string_array(json_t *v)
{
    if (!json_is_array(v))
        return false;
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s)
    {
        if (!json_is_string(s))
            return false;
    }
    return true;
}

json_t *cap_policy_normalize(json_t *policy, struct cap_engine_error *err)
{
    if (!policy || json_is_null(policy)) {
        /* No policy at all: the SFU decides who asks, so anyone may start a recording. */
        return json_pack("{s:{s:{s:b, s:b, s:s, s:s, s:b, s:b, s:b, s:i, s:b}}, s:{s:s, s:[], s:[]}}",
                         "features", "recording", "enabled", 1, "auto_record", 0,
                         "who_can_record", "all", "who_can_download", "all", "record_audio", 1,
                         "record_video", 1, "record_screenshare", 1, "retention_days", 30,
                         "notify_participants", 1, "roles", "host_id", "", "co_host_ids",
                         "panelist_ids");
    }
    if (!json_is_object(policy)) {
        fail(err, CAP_API_BAD_POLICY, "'policy' must be an object");
        return NULL;
    }
    json_t *features = json_object_get(policy, "features");
    json_t *rec = features ? json_object_get(features, "recording") : NULL;
    json_t *roles = json_object_get(policy, "roles");
    if ((features && !json_is_object(features)) || (rec && !json_is_object(rec)) ||
        (roles && !json_is_null(roles) && !json_is_object(roles))) {
        fail(err, CAP_API_BAD_POLICY, "policy.features, policy.features.recording and policy.roles must be objects");
        return NULL;
    }
    json_t *out = json_deep_copy(policy);
    if (!json_object_get(out, "features"))
        json_object_set_new(out, "features", json_object());
    json_t *r = json_object_get(json_object_get(out, "features"), "recording");
    if (!r) {
        r = json_object();
        json_object_set_new(json_object_get(out, "features"), "recording", r);
    }
    /* Reference defaults: recording needs enabled === true; record_* default to true. */
    static const struct {
        const char *key;
        int def;
    } bools[] = {{"enabled", 0},      {"auto_record", 0},        {"record_audio", 1},
                 {"record_video", 1}, {"record_screenshare", 1}, {"notify_participants", 1}};
    for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
        json_t *v = json_object_get(r, bools[i].key);
        if (!v || json_is_null(v)) {
            json_object_set_new(r, bools[i].key, json_boolean(bools[i].def));
        } else if (!json_is_boolean(v)) {
            fail(err, CAP_API_BAD_POLICY, "policy.features.recording.%s must be true or false",
                 bools[i].key);
            json_decref(out);
            return NULL;
        }
    }
    json_t *who = json_object_get(r, "who_can_record");
    if (!who || json_is_null(who)) {
        json_object_set_new(r, "who_can_record", json_string("host"));
    } else {
        bool known = false;
        for (size_t i = 0; json_is_string(who) && i < 4; i++)
            known = known || strcmp(json_string_value(who), who_values[i]) == 0;
        if (!known) {
            fail(err, CAP_API_BAD_POLICY,
                 "policy.features.recording.who_can_record must be host, co_host, panelist or all");
            json_decref(out);
            return NULL;
        }
    }
    json_t *dl = json_object_get(r, "who_can_download");
    if (dl && !json_is_null(dl) && !json_is_string(dl)) {
        fail(err, CAP_API_BAD_POLICY, "policy.features.recording.who_can_download must be a string");
        json_decref(out);
        return NULL;
    }
    json_t *days = json_object_get(r, "retention_days");
    if (days && !json_is_null(days) && (!json_is_integer(days) || json_integer_value(days) < 0)) {
        fail(err, CAP_API_BAD_POLICY, "policy.features.recording.retention_days must be a whole number");
        json_decref(out);
        return NULL;
    }
    json_t *ro = json_object_get(out, "roles");
    if (!ro || json_is_null(ro)) {
        ro = json_object();
        json_object_set_new(out, "roles", ro);
    }
    json_t *host = json_object_get(ro, "host_id");
    if (host && !json_is_null(host) && !json_is_string(host)) {
        fail(err, CAP_API_BAD_POLICY, "policy.roles.host_id must be a string");
        json_decref(out);
        return NULL;
    }
    const char *lists[] = {"co_host_ids", "panelist_ids"};
    for (int i = 0; i < 2; i++) {
        json_t *l = json_object_get(ro, lists[i]);
        if (!l || json_is_null(l)) {
            json_object_set_new(ro, lists[i], json_array());
        } else if (!string_array(l)) {
            fail(err, CAP_API_BAD_POLICY, "policy.roles.%s must be an array of strings", lists[i]);
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static json_t *rec_policy(const struct cap_room *room)
{
    return json_object_get(json_object_get(room->policy, "features"), "recording");
}

static bool policy_flag(const struct cap_room *room, const char *key)
{
    return json_is_true(json_object_get(rec_policy(room), key));
}

static bool in_list(json_t *list, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), id) == 0)
            return true;
    }
    return false;
}

/* The peer a share belongs to: "sharescreen_alice" records as alice's screen. */
static const char *normalize_peer(const char *peer_id)
{
    static const char prefix[] = "sharescreen_";
    if (strncmp(peer_id, prefix, sizeof(prefix) - 1) == 0 && peer_id[sizeof(prefix) - 1])
        return peer_id + sizeof(prefix) - 1;
    return peer_id;
}

static struct cap_peer *find_peer(struct cap_room *room, const char *peer_id)
{
    for (size_t i = 0; i < room->peer_count; i++)
        if (strcmp(room->peers[i].peer_id, peer_id) == 0)
            return &room->peers[i];
    return NULL;
}

/* CHECK 2 of the reference note. */
static bool may_record(struct cap_room *room, const char *requester)
{
    json_t *roles = json_object_get(room->policy, "roles");
    const char *who = json_str(rec_policy(room), "who_can_record");
    const char *id = normalize_peer(requester);
    struct cap_peer *peer = find_peer(room, id);
    const char *policy_host = json_str(roles, "host_id");
    bool is_host = (policy_host && *policy_host && strcmp(policy_host, id) == 0) ||
                   (room->host_id[0] && strcmp(room->host_id, id) == 0) || (peer && peer->is_host);
    bool is_co_host = in_list(json_object_get(roles, "co_host_ids"), id) || (peer && peer->is_co_host);
    bool is_panelist = in_list(json_object_get(roles, "panelist_ids"), id) || (peer && peer->is_panelist);
    if (!who || strcmp(who, "host") == 0)
        return is_host;
    if (strcmp(who, "co_host") == 0)
        return is_host || is_co_host;
    if (strcmp(who, "panelist") == 0)
        return is_host || is_co_host || is_panelist;
    return strcmp(who, "all") == 0;
}

/* ---- tracks ---- */

static const char *producer_media(const struct cap_producer *p)
{
    return p->is_screenshare ? "screen" : p->kind;
}

/* CHECK 4: does the room's policy record this kind of media right now? */
static bool policy_allows(const struct cap_room *room, const char *media)
{
    if (strcmp(media, "screen") == 0)
        return policy_flag(room, "record_screenshare");
    if (strcmp(media, "audio") == 0)
        return policy_flag(room, "record_audio");
    return policy_flag(room, "record_video");
}

/* Does the start request ask for this producer? */
static bool config_wants(const struct cap_recording *rec, const struct cap_producer *p)
{
    const char *media = producer_media(p);
    if (strcmp(media, "screen") == 0 ? !rec->want_screenshare
        : strcmp(media, "audio") == 0 ? !rec->want_audio
                                      : !rec->want_video)
        return false;
    if (json_array_size(rec->participant_ids) == 0)
        return true;
    return in_list(rec->participant_ids, p->peer_id) ||
           in_list(rec->participant_ids, normalize_peer(p->peer_id));
}

static struct cap_rec_track *track_of(struct cap_recording *rec, const char *producer_id,
                                      size_t *index)
{
    for (size_t i = rec->track_count; i-- > 0;) {
        if (!rec->tracks[i].closed && strcmp(rec->tracks[i].producer_id, producer_id) == 0) {
            if (index)
                *index = i;
            return &rec->tracks[i];
        }
    }
    return NULL;
}

static json_t *track_fields(const struct cap_rec_track *t)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:I}", "track_id", t->track_id, "producer_id",
                     t->producer_id, "peer_id", t->peer_id, "kind", t->kind, "ssrc",
                     (json_int_t)t->info.ssrc);
}

static json_t *track_hook(struct cap_engine *e, const struct cap_recording *rec,
                          const struct cap_rec_track *t, const char *name)
{
    return hook_event(e, "Track", rec->room_id, name,
                      json_pack("{s:s, s:s, s:s, s:s, s:I}", "producer_id", t->producer_id,
                                "peer_id", t->peer_id, "kind", t->kind, "codec", t->info.codec,
                                "ssrc", (json_int_t)t->info.ssrc),
                      json_pack("{s:s, s:s}", "recording_id", rec->recording_id, "track_id",
                                t->track_id));
}

static void add_track(struct cap_engine *e, struct cap_recording *rec, const struct cap_room *room,
                      const struct cap_producer *p, struct cap_effects *fx)
{
    const char *media = producer_media(p);
    const char *owner = normalize_peer(p->peer_id);
    unsigned same = 0;
    for (size_t i = 0; i < rec->track_count; i++)
        if (strcmp(rec->tracks[i].kind, media) == 0 && strcmp(normalize_peer(rec->tracks[i].peer_id), owner) == 0)
            same++;
    grow((void **)&rec->tracks, &rec->track_cap, rec->track_count, sizeof(*rec->tracks));
    struct cap_rec_track *t = &rec->tracks[rec->track_count];
    memset(t, 0, sizeof(*t));
    if (same)
        snprintf(t->track_id, sizeof(t->track_id), "%.100s-%s-%u", owner, media, same + 1);
    else
        snprintf(t->track_id, sizeof(t->track_id), "%.100s-%s", owner, media);
    copy_id(t->producer_id, p->producer_id);
    copy_id(t->peer_id, p->peer_id);
    snprintf(t->kind, sizeof(t->kind), "%s", media);
    t->producer_paused = p->paused;
    t->started_ns = now(e);
    struct cap_track_info *info = &t->info;
    copy_id(info->track_id, t->track_id);
    copy_id(info->recording_id, rec->recording_id);
    copy_id(info->room_id, rec->room_id);
    copy_id(info->peer_id, p->peer_id);
    copy_id(info->producer_id, p->producer_id);
    snprintf(info->kind, sizeof(info->kind), "%s", media);
    snprintf(info->codec, sizeof(info->codec), "%s", p->codec);
    info->clock_rate = p->clock_rate;
    info->channels = p->channels;
    info->payload_types[0] = p->payload_type;
    info->payload_type_count = 1;
    info->ssrc = p->ssrc;
    snprintf(info->fmtp, sizeof(info->fmtp), "%s", p->fmtp ? p->fmtp : "");
    size_t index = rec->track_count++;
    (void)room;
    timeline_add(e, rec, "producer_started", track_fields(t));
    emit(fx, CAP_FX_TRACK_ADD, rec, index, NULL);
    emit(fx, CAP_FX_EVENT, rec, index, track_hook(e, rec, t, "Started"));
}

/* A producer joins every live recording of its room that wants it. */
static void offer_producer(struct cap_engine *e, struct cap_room *room, const struct cap_producer *p,
                           struct cap_effects *fx)
{
    for (size_t i = 0; i < e->recording_count; i++) {
        struct cap_recording *rec = e->recordings[i];
        if (!rec_live(rec) || strcmp(rec->room_id, room->room_id) != 0)
            continue;
        if (!p->closed && config_wants(rec, p) && policy_allows(room, producer_media(p)) &&
            !track_of(rec, p->producer_id, NULL)) {
            add_track(e, rec, room, p, fx);
            emit(fx, CAP_FX_PERSIST, rec, 0, NULL);
        }
    }
}

static void set_track_state(struct cap_engine *e, struct cap_recording *rec, size_t index,
                            const char *timeline_type, const char *hook_name, struct cap_effects *fx)
{
    struct cap_rec_track *t = &rec->tracks[index];
    timeline_add(e, rec, timeline_type, track_fields(t));
    emit(fx, CAP_FX_TRACK_STATE, rec, index, NULL);
    if (hook_name)
        emit(fx, CAP_FX_EVENT, rec, index, track_hook(e, rec, t, hook_name));
    emit(fx, CAP_FX_PERSIST, rec, 0, NULL);
}

/* Applies the room's current policy to a live recording's tracks (CHECK 4 again). */
static void apply_policy(struct cap_engine *e, struct cap_room *room, struct cap_recording *rec,
                         struct cap_effects *fx)
{
    for (size_t i = 0; i < rec->track_count; i++) {
        struct cap_rec_track *t = &rec->tracks[i];
        if (t->closed)
            continue;
        bool paused = !policy_allows(room, t->kind);
        if (paused != t->policy_paused) {
            t->policy_paused = paused;
            set_track_state(e, rec, i, paused ? "track_paused_by_policy" : "track_resumed_by_policy",
                            paused ? "Paused" : "Resumed", fx);
        }
    }
    for (size_t i = 0; i < room->producer_count; i++)
        offer_producer(e, room, &room->producers[i], fx);
}

/* ---- rooms ---- */

int cap_engine_put_room(struct cap_engine *e, const char *room_id, json_t *body,
                        struct cap_effects *fx, struct cap_engine_error *err)
{
    if (!valid_id(room_id))
        return fail(err, CAP_API_BAD_REQUEST, "room_id must be 1-100 of A-Z a-z 0-9 - _ . : @");
    if (!json_is_object(body))
        return fail(err, CAP_API_BAD_REQUEST, "body must be a JSON object");
    const char *name = NULL, *host = NULL, *type = NULL;
    if (!opt_string(body, "room_name", &name, err) || !opt_string(body, "host_id", &host, err) ||
        !opt_string(body, "meeting_type", &type, err))
        return -1;
    struct cap_room *room = cap_engine_find_room(e, room_id);
    json_t *given = json_object_get(body, "policy");
    json_t *policy = NULL;
    if (given || !room) {
        policy = cap_policy_normalize(given, err);
        if (!policy)
            return -1;
    }
    bool created = false;
    if (!room) {
        room = calloc(1, sizeof(*room));
        if (!room)
            abort();
        copy_id(room->room_id, room_id);
        room->created_ns = now(e);
        grow((void **)&e->rooms, &e->room_cap, e->room_count, sizeof(*e->rooms));
        e->rooms[e->room_count++] = room;
        created = true;
    } else if (room->closed) {
        /* A closed room id opens again as a new session of the room. */
        room->closed = false;
        room->created_ns = now(e);
        created = true;
    }
    if (name)
        copy_id(room->room_name, name);
    if (host)
        copy_id(room->host_id, host);
    if (type)
        copy_id(room->meeting_type, type);
    if (policy) {
        json_decref(room->policy);
        room->policy = policy;
    }
    emit(fx, CAP_FX_EVENT, NULL, 0,
         hook_event(e, "Room", room->room_id, created ? "Started" : "Updated",
                    json_pack("{s:s}", "room_name", room->room_name), NULL));
    if (created || !given)
        return created ? 1 : 0;
    /* A policy change reaches live recordings now. */
    for (size_t i = 0; i < e->recording_count; i++) {
        struct cap_recording *rec = e->recordings[i];
        if (!rec_live(rec) || strcmp(rec->room_id, room->room_id) != 0)
            continue;
        json_decref(rec->policy_snapshot);
        rec->policy_snapshot = json_deep_copy(room->policy);
        timeline_add(e, rec, "policy_updated", json_pack("{s:O}", "policy", room->policy));
        if (!policy_flag(room, "enabled")) {
            struct cap_engine_error ignored;
            cap_engine_stop_recording(e, rec, "policy_disabled", fx, &ignored);
            continue;
        }
        apply_policy(e, room, rec, fx);
        emit(fx, CAP_FX_PERSIST, rec, 0, NULL);
    }
    return 0;
}

static struct cap_room *open_room(struct cap_engine *e, const char *room_id,
                                  struct cap_engine_error *err)
{
    struct cap_room *room = cap_engine_find_room(e, room_id);
    if (!room) {
        fail(err, CAP_API_ROOM_NOT_FOUND, "room '%.100s' not found", room_id);
        return NULL;
    }
    if (room->closed) {
        fail(err, CAP_API_ROOM_CLOSED, "room '%.100s' is closed", room_id);
        return NULL;
    }
    return room;
}

int cap_engine_close_room(struct cap_engine *e, const char *room_id, struct cap_effects *fx,
                          struct cap_engine_error *err)
{
    struct cap_room *room = open_room(e, room_id, err);
    if (!room)
        return -1;
    for (size_t i = 0; i < e->recording_count; i++) {
        struct cap_recording *rec = e->recordings[i];
        if (rec_live(rec) && strcmp(rec->room_id, room_id) == 0) {
            timeline_add(e, rec, "room_closed", NULL);
            cap_engine_stop_recording(e, rec, "room_closed", fx, err);
        }
    }
    for (size_t i = 0; i < room->producer_count; i++)
        room->producers[i].closed = true;
    for (size_t i = 0; i < room->peer_count; i++) {
        if (room->peers[i].present) {
            room->peers[i].present = false;
            room->peers[i].left_ns = now(e);
        }
    }
    room->closed = true;
    room->closed_ns = now(e);
    emit(fx, CAP_FX_EVENT, NULL, 0, hook_event(e, "Room", room_id, "Closed", NULL, NULL));
    return 0;
}

static void timeline_all(struct cap_engine *e, const char *room_id, const char *type, json_t *fields,
                         struct cap_effects *fx)
{
    for (size_t i = 0; i < e->recording_count; i++) {
        struct cap_recording *rec = e->recordings[i];
        if (rec_live(rec) && strcmp(rec->room_id, room_id) == 0) {
            timeline_add(e, rec, type, json_deep_copy(fields));
            emit(fx, CAP_FX_PERSIST, rec, 0, NULL);
        }
    }
    json_decref(fields);
}

int cap_engine_peer_join(struct cap_engine *e, const char *room_id, json_t *body,
                         struct cap_effects *fx, struct cap_engine_error *err)
{
    struct cap_room *room = open_room(e, room_id, err);
    if (!room)
        return -1;
    if (!json_is_object(body))
        return fail(err, CAP_API_BAD_REQUEST, "body must be a JSON object");
    const char *peer_id = json_str(body, "peer_id");
    if (!valid_id(peer_id))
        return fail(err, CAP_API_BAD_REQUEST, "peer_id must be 1-100 of A-Z a-z 0-9 - _ . : @");
    const char *name = NULL;
    bool is_host = false, is_co_host = false, is_panelist = false;
    if (!opt_string(body, "display_name", &name, err) || !opt_bool(body, "is_host", &is_host, err) ||
        !opt_bool(body, "is_co_host", &is_co_host, err) ||
        !opt_bool(body, "is_panelist", &is_panelist, err))
        return -1;
    struct cap_peer *peer = find_peer(room, peer_id);
    if (!peer) {
        grow((void **)&room->peers, &room->peer_cap, room->peer_count, sizeof(*room->peers));
        peer = &room->peers[room->peer_count++];
        memset(peer, 0, sizeof(*peer));
        copy_id(peer->peer_id, peer_id);
    }
    copy_id(peer->display_name, name ? name : peer_id);
    peer->is_host = is_host;
    peer->is_co_host = is_co_host;
    peer->is_panelist = is_panelist;
    peer->present = true;
    peer->joined_ns = now(e);
    peer->left_ns = 0;
    timeline_all(e, room_id, "peer_joined",
                 json_pack("{s:s, s:s, s:b}", "peer_id", peer_id, "display_name", peer->display_name,
                           "is_host", is_host),
                 fx);
    emit(fx, CAP_FX_EVENT, NULL, 0,
         hook_event(e, "Peer", room_id, "Joined",
                    json_pack("{s:s, s:s}", "peer", peer_id, "display_name", peer->display_name), NULL));
    return 0;
}

int cap_engine_peer_leave(struct cap_engine *e, const char *room_id, const char *peer_id,
                          struct cap_effects *fx, struct cap_engine_error *err)
{
    struct cap_room *room = open_room(e, room_id, err);
    if (!room)
        return -1;
    struct cap_peer *peer = find_peer(room, peer_id);
    if (!peer || !peer->present)
        return fail(err, CAP_API_PEER_NOT_FOUND, "peer '%.100s' is not in room '%.100s'", peer_id, room_id);
    /* Its producers end with it. */
    for (size_t i = 0; i < room->producer_count; i++)
        if (!room->producers[i].closed && strcmp(room->producers[i].peer_id, peer_id) == 0)
            cap_engine_producer_close(e, room_id, room->producers[i].producer_id, fx, err);
    peer->present = false;
    peer->left_ns = now(e);
    timeline_all(e, room_id, "peer_left", json_pack("{s:s}", "peer_id", peer_id), fx);
    emit(fx, CAP_FX_EVENT, NULL, 0,
         hook_event(e, "Peer", room_id, "Left", json_pack("{s:s}", "peer", peer_id), NULL));
    return 0;
}

static int start_recording(struct cap_engine *e, const char *room_id, json_t *body, bool automatic,
                           struct cap_recording **out, struct cap_effects *fx,
                           struct cap_engine_error *err);

/* ---- producers ---- */

static struct cap_producer *find_producer(struct cap_room *room, const char *producer_id)
{
    for (size_t i = room->producer_count; i-- > 0;)
        if (strcmp(room->producers[i].producer_id, producer_id) == 0)
            return &room->producers[i];
    return NULL;
}

static bool ssrc_taken(struct cap_room *room, uint32_t ssrc, const char *except)
{
    for (size_t i = 0; i < room->producer_count; i++) {
        struct cap_producer *p = &room->producers[i];
        if (!p->closed && p->ssrc == ssrc && strcmp(p->producer_id, except) != 0)
            return true;
    }
    return false;
}

int cap_engine_producer_create(struct cap_engine *e, const char *room_id, json_t *body,
                               struct cap_effects *fx, struct cap_engine_error *err)
{
    struct cap_room *room = open_room(e, room_id, err);
    if (!room)
        return -1;
    if (!json_is_object(body))
        return fail(err, CAP_API_BAD_REQUEST, "body must be a JSON object");
    const char *producer_id = json_str(body, "producer_id");
    const char *peer_id = json_str(body, "peer_id");
    const char *kind = json_str(body, "kind");
    if (!valid_id(producer_id))
        return fail(err, CAP_API_BAD_REQUEST, "producer_id must be 1-100 of A-Z a-z 0-9 - _ . : @");
    if (!valid_id(peer_id))
        return fail(err, CAP_API_BAD_REQUEST, "peer_id must be 1-100 of A-Z a-z 0-9 - _ . : @");
    if (!kind || (strcmp(kind, "audio") != 0 && strcmp(kind, "video") != 0))
        return fail(err, CAP_API_BAD_REQUEST, "kind must be \"audio\" or \"video\"");
    const char *codec = json_str(body, "codec");
    if (!codec || !*codec || strlen(codec) >= 32)
        return fail(err, CAP_API_BAD_REQUEST, "codec is required (e.g. \"opus\", \"vp8\", \"h264\")");
    json_t *ssrc_v = json_object_get(body, "ssrc");
    if (!json_is_integer(ssrc_v) || json_integer_value(ssrc_v) < 0 ||
        json_integer_value(ssrc_v) > UINT32_MAX)
        return fail(err, CAP_API_BAD_REQUEST, "ssrc is required: an integer from 0 to 4294967295");
    uint64_t pt = 0, clock = 0, channels = 0;
    const char *track_type = NULL, *fmtp = NULL;
    bool screenshare = false, paused = false;
    if (!opt_uint(body, "payload_type", 127, &pt, err) ||
        !opt_uint(body, "clock_rate", 10000000, &clock, err) ||
        !opt_uint(body, "channels", 255, &channels, err) ||
        !opt_string(body, "track_type", &track_type, err) || !opt_string(body, "fmtp", &fmtp, err) ||
        !opt_bool(body, "is_screenshare", &screenshare, err) || !opt_bool(body, "paused", &paused, err))
        return -1;
    if (fmtp && strlen(fmtp) >= CAP_TRACK_FMTP_MAX)
        return fail(err, CAP_API_BAD_REQUEST, "fmtp is longer than %d bytes", CAP_TRACK_FMTP_MAX - 1);
    json_t *app_data = json_object_get(body, "app_data");
    if (!app_data)
        app_data = json_object_get(body, "appData");
    /* CHECK 5: screenshare by flag, by appData.share, by peer id or by track type. */
    if (json_is_true(json_object_get(app_data, "share")) ||
        strncmp(peer_id, "sharescreen_", 12) == 0 || (track_type && strcmp(track_type, "screenshare") == 0))
        screenshare = true;
    struct cap_producer *existing = find_producer(room, producer_id);
    if (existing && !existing->closed)
        return fail(err, CAP_API_PRODUCER_EXISTS, "producer '%.100s' already exists", producer_id);
    uint32_t ssrc = (uint32_t)json_integer_value(ssrc_v);
    if (ssrc_taken(room, ssrc, producer_id))
        return fail(err, CAP_API_SSRC_IN_USE, "SSRC %u is already used in room '%.100s'", ssrc, room_id);

    bool first_producer = true;
    for (size_t i = 0; i < room->producer_count; i++)
        first_producer = first_producer && room->producers[i].closed;
    grow((void **)&room->producers, &room->producer_cap, room->producer_count, sizeof(*room->producers));
    struct cap_producer *p = &room->producers[room->producer_count++];
    memset(p, 0, sizeof(*p));
    copy_id(p->producer_id, producer_id);
    copy_id(p->peer_id, peer_id);
    snprintf(p->kind, sizeof(p->kind), "%s", kind);
    snprintf(p->track_type, sizeof(p->track_type), "%s",
             track_type ? track_type : screenshare ? "screenshare" : strcmp(kind, "audio") == 0 ? "mic" : "camera");
    for (size_t i = 0; codec[i] && i < sizeof(p->codec) - 1; i++)
        p->codec[i] = (char)(codec[i] >= 'A' && codec[i] <= 'Z' ? codec[i] + 32 : codec[i]);
    /* "video/VP8" (mediasoup's mimeType) names the codec after the slash. */
    char *slash = strchr(p->codec, '/');
    if (slash)
        memmove(p->codec, slash + 1, strlen(slash));
    p->payload_type = (uint8_t)pt;
    p->ssrc = ssrc;
    p->clock_rate = clock ? (uint32_t)clock : strcmp(kind, "audio") == 0 ? 48000 : 90000;
    p->channels = (uint32_t)channels;
    p->fmtp = strdup(fmtp ? fmtp : "");
    p->is_screenshare = screenshare;
    p->paused = paused;
    p->created_ns = now(e);

    /* CHECK 3: the first producer of a room with auto_record starts a recording. */
    bool live = false;
    for (size_t i = 0; i < e->recording_count; i++)
        live = live || (rec_live(e->recordings[i]) && strcmp(e->recordings[i]->room_id, room_id) == 0);
    if (first_producer && !live && policy_flag(room, "auto_record") && policy_flag(room, "enabled")) {
        json_t *auto_body = json_pack("{s:s}", "requester_id", "auto_record");
        struct cap_recording *rec;
        start_recording(e, room_id, auto_body, true, &rec, fx, err);
        json_decref(auto_body);
    } else {
        offer_producer(e, room, p, fx);
    }
    return 0;
}

int cap_engine_producer_update(struct cap_engine *e, const char *room_id, const char *producer_id,
                               json_t *body, struct cap_effects *fx, struct cap_engine_error *err)
{
    struct cap_room *room = open_room(e, room_id, err);
    if (!room)
        return -1;
    struct cap_producer *p = find_producer(room, producer_id);
    if (!p || p->closed)
        return fail(err, CAP_API_PRODUCER_NOT_FOUND, "producer '%.100s' not found", producer_id);
    if (!json_is_object(body))
        return fail(err, CAP_API_BAD_REQUEST, "body must be a JSON object");
    uint64_t ssrc = p->ssrc;
    bool paused = p->paused;
    if (!opt_uint(body, "ssrc", UINT32_MAX, &ssrc, err) || !opt_bool(body, "paused", &paused, err))
        return -1;
    if (ssrc != p->ssrc) {
        if (ssrc_taken(room, (uint32_t)ssrc, producer_id))
            return fail(err, CAP_API_SSRC_IN_USE, "SSRC %llu is already used in room '%.100s'",
                        (unsigned long long)ssrc, room_id);
        uint32_t old = p->ssrc;
        p->ssrc = (uint32_t)ssrc;
        for (size_t i = 0; i < e->recording_count; i++) {
            struct cap_recording *rec = e->recordings[i];
            size_t index;
            struct cap_rec_track *t = rec_live(rec) ? track_of(rec, producer_id, &index) : NULL;
            if (!t)
                continue;
            t->info.ssrc = p->ssrc;
            timeline_add(e, rec, "ssrc_changed",
                         json_pack("{s:s, s:I, s:I}", "track_id", t->track_id, "old_ssrc",
                                   (json_int_t)old, "ssrc", (json_int_t)p->ssrc));
            grow((void **)&fx->items, &fx->cap, fx->count, sizeof(*fx->items));
            fx->items[fx->count++] = (struct cap_effect){
                .type = CAP_FX_TRACK_SSRC, .recording = rec, .track_index = index, .old_ssrc = old};
            emit(fx, CAP_FX_PERSIST, rec, 0, NULL);
        }
    }
    if (paused != p->paused)
        return cap_engine_producer_pause(e, room_id, producer_id, paused, fx, err);
    return 0;
}

int cap_engine_producer_close(struct cap_engine *e, const char *room_id, const char *producer_id,
                              struct cap_effects *fx, struct cap_engine_error *err)
{
    struct cap_room *room = open_room(e, room_id, err);
    if (!room)
        return -1;
    struct cap_producer *p = find_producer(room, producer_id);
    if (!p || p->closed)
        return fail(err, CAP_API_PRODUCER_NOT_FOUND, "producer '%.100s' not found", producer_id);
    p->closed = true;
    for (size_t i = 0; i < e->recording_count; i++) {
        struct cap_recording *rec = e->recordings[i];
        size_t index;
        struct cap_rec_track *t = rec_live(rec) ? track_of(rec, producer_id, &index) : NULL;
        if (!t)
            continue;
        t->closed = true;
        t->ended_ns = now(e);
        set_track_state(e, rec, index, "producer_closed", "Stopped", fx);
    }
    return 0;
}

int cap_engine_producer_pause(struct cap_engine *e, const char *room_id, const char *producer_id,
                              bool paused, struct cap_effects *fx, struct cap_engine_error *err)
{
    struct cap_room *room = open_room(e, room_id, err);
    if (!room)
        return -1;
    struct cap_producer *p = find_producer(room, producer_id);
    if (!p || p->closed)
        return fail(err, CAP_API_PRODUCER_NOT_FOUND, "producer '%.100s' not found", producer_id);
    if (p->paused == paused)
        return 0;
    p->paused = paused;
    for (size_t i = 0; i < e->recording_count; i++) {
        struct cap_recording *rec = e->recordings[i];
        size_t index;
        struct cap_rec_track *t = rec_live(rec) ? track_of(rec, producer_id, &index) : NULL;
        if (!t)
            continue;
        t->producer_paused = paused;
        set_track_state(e, rec, index, paused ? "producer_paused" : "producer_resumed",
                        paused ? "Paused" : "Resumed", fx);
    }
    return 0;
}

int cap_engine_active_speaker(struct cap_engine *e, const char *room_id, json_t *body,
                              struct cap_effects *fx, struct cap_engine_error *err)
{
    struct cap_room *room = open_room(e, room_id, err);
    if (!room)
        return -1;
    const char *peer_id = json_str(body, "peer_id");
    if (!peer_id || !valid_id(peer_id))
        return fail(err, CAP_API_BAD_REQUEST, "peer_id is required");
    json_t *volume = json_object_get(body, "volume");
    if (volume && !json_is_number(volume))
        return fail(err, CAP_API_BAD_REQUEST, "volume must be a number");
    if (strcmp(room->active_speaker, peer_id) == 0)
        return 0;
    copy_id(room->active_speaker, peer_id);
    timeline_all(e, room_id, "active_speaker",
                 json_pack("{s:s, s:O}", "peer_id", peer_id, "volume", volume ? volume : json_null()),
                 fx);
    return 0;
}

/* ---- recordings ---- */

/* automatic: the room's own auto_record start (CHECK 3), which CHECK 2 does not apply to. */
static int start_recording(struct cap_engine *e, const char *room_id, json_t *body, bool automatic,
                           struct cap_recording **out, struct cap_effects *fx,
                           struct cap_engine_error *err)
{
    struct cap_room *room = open_room(e, room_id, err);
    if (!room)
        return -1;
    if (!json_is_object(body))
        return fail(err, CAP_API_BAD_REQUEST, "body must be a JSON object");
    const char *requester = json_str(body, "requester_id");
    if (!requester || !*requester || strlen(requester) >= CAP_ID_MAX)
        return fail(err, CAP_API_BAD_REQUEST, "requester_id is required");
    json_t *config = json_object_get(body, "config");
    if (config && !json_is_null(config) && !json_is_object(config))
        return fail(err, CAP_API_BAD_REQUEST, "config must be an object");
    bool audio = true, video = true, screen = true;
    if (!opt_bool(config, "record_audio", &audio, err) || !opt_bool(config, "record_video", &video, err) ||
        !opt_bool(config, "record_screenshare", &screen, err))
        return -1;
    json_t *participants = json_object_get(config, "participant_ids");
    if (participants && !json_is_null(participants) && !string_array(participants))
        return fail(err, CAP_API_BAD_REQUEST, "config.participant_ids must be an array of strings");
    /* CHECK 1 and CHECK 2 (an auto_record start is the room's own and skips CHECK 2). */
    if (!policy_flag(room, "enabled"))
        return fail(err, CAP_API_DISABLED, NULL);
    if (!automatic && !may_record(room, requester))
        return fail(err, CAP_API_NOT_AUTHORIZED, NULL);

    struct cap_recording *rec = calloc(1, sizeof(*rec));
    if (!rec)
        abort();
    e->random_id(rec->recording_id, sizeof(rec->recording_id), "rec_");
    copy_id(rec->room_id, room_id);
    copy_id(rec->requester_id, requester);
    rec->state = CAP_REC_RECORDING;
    rec->want_audio = audio;
    rec->want_video = video;
    rec->want_screenshare = screen;
    rec->participant_ids = participants && json_is_array(participants) ? json_deep_copy(participants)
                                                                      : json_array();
    rec->started_ns = now(e);
    rec->timeline = json_array();
    rec->policy_snapshot = json_deep_copy(room->policy);
    grow((void **)&e->recordings, &e->recording_cap, e->recording_count, sizeof(*e->recordings));
    e->recordings[e->recording_count++] = rec;

    emit(fx, CAP_FX_RECORDING_OPEN, rec, 0, NULL);
    timeline_add(e, rec, "recording_started", json_pack("{s:s}", "requester_id", requester));
    for (size_t i = 0; i < room->peer_count; i++)
        if (room->peers[i].present)
            timeline_add(e, rec, "peer_present",
                         json_pack("{s:s, s:s}", "peer_id", room->peers[i].peer_id, "display_name",
                                   room->peers[i].display_name));
    for (size_t i = 0; i < room->producer_count; i++) {
        struct cap_producer *p = &room->producers[i];
        if (!p->closed && config_wants(rec, p) && policy_allows(room, producer_media(p)))
            add_track(e, rec, room, p, fx);
    }
    emit(fx, CAP_FX_PERSIST, rec, 0, NULL);
    char path[3 * CAP_ID_MAX];
    snprintf(path, sizeof(path), "rooms/%s/%s", rec->room_id, rec->recording_id);
    emit(fx, CAP_FX_EVENT, rec, 0,
         hook_event(e, "Record", room_id, "Started",
                    json_pack("{s:s, s:s, s:s}", "path", path, "recording_id", rec->recording_id,
                              "requester_id", requester),
                    NULL));
    *out = rec;
    return 0;
}

int cap_engine_start_recording(struct cap_engine *e, const char *room_id, json_t *body,
                               struct cap_recording **out, struct cap_effects *fx,
                               struct cap_engine_error *err)
{
    return start_recording(e, room_id, body, false, out, fx, err);
}

int cap_engine_stop_recording(struct cap_engine *e, struct cap_recording *rec, const char *reason,
                              struct cap_effects *fx, struct cap_engine_error *err)
{
    if (!rec_live(rec) && rec->state != CAP_REC_INTERRUPTED)
        return fail(err, CAP_API_RECORDING_STATE, "recording '%.100s' is already %s",
                    rec->recording_id, cap_recording_state_name(rec->state));
    rec->state = CAP_REC_STOPPED;
    rec->stopped_ns = now(e);
    snprintf(rec->stop_reason, sizeof(rec->stop_reason), "%s", reason ? reason : "requested");
    for (size_t i = 0; i < rec->track_count; i++) {
        if (!rec->tracks[i].closed) {
            rec->tracks[i].closed = true;
            rec->tracks[i].ended_ns = rec->stopped_ns;
        }
    }
    timeline_add(e, rec, "recording_stopped", json_pack("{s:s}", "reason", rec->stop_reason));
    emit(fx, CAP_FX_RECORDING_CLOSE, rec, 0, NULL);
    emit(fx, CAP_FX_PERSIST, rec, 0, NULL);
    char path[3 * CAP_ID_MAX];
    snprintf(path, sizeof(path), "rooms/%s/%s", rec->room_id, rec->recording_id);
    emit(fx, CAP_FX_EVENT, rec, 0,
         hook_event(e, "Record", rec->room_id, "Stopped",
                    json_pack("{s:s, s:s, s:s, s:I}", "path", path, "recording_id", rec->recording_id,
                              "reason", rec->stop_reason, "duration_ms",
                              (json_int_t)((rec->stopped_ns - rec->started_ns) / CAP_NS_PER_MS)),
                    NULL));
    return 0;
}

int cap_engine_pause_recording(struct cap_engine *e, struct cap_recording *rec, bool paused,
                               struct cap_effects *fx, struct cap_engine_error *err)
{
    if (!rec_live(rec))
        return fail(err, CAP_API_RECORDING_STATE, "recording '%.100s' is %s", rec->recording_id,
                    cap_recording_state_name(rec->state));
    enum cap_recording_state want = paused ? CAP_REC_PAUSED : CAP_REC_RECORDING;
    if (rec->state == want)
        return 0;
    rec->state = want;
    timeline_add(e, rec, paused ? "recording_paused" : "recording_resumed", NULL);
    for (size_t i = 0; i < rec->track_count; i++)
        if (!rec->tracks[i].closed)
            emit(fx, CAP_FX_TRACK_STATE, rec, i, NULL);
    emit(fx, CAP_FX_PERSIST, rec, 0, NULL);
    emit(fx, CAP_FX_EVENT, rec, 0,
         hook_event(e, "Record", rec->room_id, paused ? "Paused" : "Resumed",
                    json_pack("{s:s}", "recording_id", rec->recording_id), NULL));
    return 0;
}

/* ---- after a crash ---- */

int cap_engine_interrupt_recording(struct cap_engine *e, struct cap_recording *rec,
                                   struct cap_effects *fx, struct cap_engine_error *err)
{
    if (rec->state == CAP_REC_STOPPED)
        return fail(err, CAP_API_RECORDING_STATE, "recording '%.100s' is stopped", rec->recording_id);
    if (rec->state == CAP_REC_PAUSED)
        rec->resume_paused = true;
    rec->state = CAP_REC_INTERRUPTED;
    timeline_add(e, rec, "recording_interrupted", NULL);
    emit(fx, CAP_FX_PERSIST, rec, 0, NULL);
    emit(fx, CAP_FX_EVENT, rec, 0,
         hook_event(e, "Record", rec->room_id, "Interrupted",
                    json_pack("{s:s}", "recording_id", rec->recording_id), NULL));
    return 0;
}

int cap_engine_recover_recording(struct cap_engine *e, struct cap_recording *rec,
                                 struct cap_effects *fx, struct cap_engine_error *err)
{
    if (rec->state != CAP_REC_INTERRUPTED)
        return fail(err, CAP_API_RECORDING_STATE, "recording '%.100s' is %s", rec->recording_id,
                    cap_recording_state_name(rec->state));
    rec->state = rec->resume_paused ? CAP_REC_PAUSED : CAP_REC_RECORDING;
    rec->resume_paused = false;
    timeline_add(e, rec, "recording_recovered", NULL);
    emit(fx, CAP_FX_PERSIST, rec, 0, NULL);
    emit(fx, CAP_FX_EVENT, rec, 0,
         hook_event(e, "Record", rec->room_id, "Recovered",
                    json_pack("{s:s}", "recording_id", rec->recording_id), NULL));
    return 0;
}
