/* The room over time (compose_room.h), built once from metadata.json and timeline.json. */
#include "media/compose_room.h"

#include "capstan/error.h"
#include "util/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int switches_add(struct cap_switches *s, int64_t t_ns, bool on)
{
    if (s->count == s->cap) {
        if (s->cap >= CAP_ROOM_MAX_SWITCHES)
            return CAP_ELIMIT;
        size_t cap = s->cap ? s->cap * 2 : 8;
        int64_t *t = realloc(s->t_ns, cap * sizeof(*t));
        if (!t)
            return CAP_ENOMEM;
        s->t_ns = t;
        bool *o = realloc(s->on, cap * sizeof(*o));
        if (!o)
            return CAP_ENOMEM;
        s->on = o;
        s->cap = cap;
    }
    /* Timelines are in time order; keep it so even if one is not (insert in place). */
    size_t k = s->count;
    while (k > 0 && s->t_ns[k - 1] > t_ns) {
        s->t_ns[k] = s->t_ns[k - 1];
        s->on[k] = s->on[k - 1];
        k--;
    }
    s->t_ns[k] = t_ns;
    s->on[k] = on;
    s->count++;
    return 0;
}

static void switches_free(struct cap_switches *s)
{
    free(s->t_ns);
    free(s->on);
    memset(s, 0, sizeof(*s));
}

bool cap_switches_at(const struct cap_switches *s, int64_t t_ns)
{
    /* The last switch at or before t: binary search for the first one after t. */
    size_t lo = 0, hi = s->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->t_ns[mid] <= t_ns)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == 0 ? s->initial : s->on[lo - 1];
}

int64_t cap_switches_next(const struct cap_switches *s, int64_t t_ns)
{
    for (size_t i = 0; i < s->count; i++)
        if (s->t_ns[i] > t_ns)
            return s->t_ns[i];
    return INT64_MAX;
}

const char *cap_room_owner_peer(const char *peer_id)
{
    static const char prefix[] = "sharescreen_";
    if (strncmp(peer_id, prefix, sizeof(prefix) - 1) == 0 && peer_id[sizeof(prefix) - 1])
        return peer_id + sizeof(prefix) - 1;
    return peer_id;
}

struct cap_room_peer *cap_room_find_peer(struct cap_room_model *m, const char *peer_id)
{
    for (size_t i = 0; i < m->peer_count; i++)
        if (strcmp(m->peers[i].peer_id, peer_id) == 0)
            return &m->peers[i];
    return NULL;
}

struct cap_room_track *cap_room_find_track(struct cap_room_model *m, const char *track_id)
{
    for (size_t i = 0; i < m->track_count; i++)
        if (strcmp(m->tracks[i].track_id, track_id) == 0)
            return &m->tracks[i];
    return NULL;
}

static bool id_ok(const char *id)
{
    return id && *id && strlen(id) < CAP_TRACK_ID_MAX;
}

struct cap_room_peer *cap_room_add_peer(struct cap_room_model *m, const char *peer_id)
{
    if (!id_ok(peer_id))
        return NULL;
    struct cap_room_peer *p = cap_room_find_peer(m, peer_id);
    if (p)
        return p;
    if (m->peer_count >= CAP_ROOM_MAX_PEERS)
        return NULL;
    struct cap_room_peer *grown = realloc(m->peers, (m->peer_count + 1) * sizeof(*grown));
    if (!grown)
        return NULL;
    m->peers = grown;
    p = &m->peers[m->peer_count++];
    memset(p, 0, sizeof(*p));
    snprintf(p->peer_id, sizeof(p->peer_id), "%s", peer_id);
    snprintf(p->display_name, sizeof(p->display_name), "%s", peer_id);
    p->first_seen_ns = INT64_MAX;
    return p;
}

static struct cap_room_track *add_track(struct cap_room_model *m, const char *track_id, const char *peer_id)
{
    if (!id_ok(track_id))
        return NULL;
    struct cap_room_track *t = cap_room_find_track(m, track_id);
    if (t)
        return t;
    if (m->track_count >= CAP_ROOM_MAX_TRACKS)
        return NULL;
    struct cap_room_track *grown = realloc(m->tracks, (m->track_count + 1) * sizeof(*grown));
    if (!grown)
        return NULL;
    m->tracks = grown;
    t = &m->tracks[m->track_count++];
    memset(t, 0, sizeof(*t));
    snprintf(t->track_id, sizeof(t->track_id), "%s", track_id);
    snprintf(t->peer_id, sizeof(t->peer_id), "%s", id_ok(peer_id) ? peer_id : "");
    t->live.initial = true;   /* a track the timeline never mentions is live throughout */
    return t;
}

static void set_name(struct cap_room_peer *p, json_t *obj)
{
    const char *name = json_string_value(json_object_get(obj, "display_name"));
    if (name && *name)
        snprintf(p->display_name, sizeof(p->display_name), "%s", name);
}

/* Peer presence: joins and leaves. */
static int peer_event(struct cap_room_model *m, const char *type, json_t *ev, int64_t t)
{
    const char *peer_id = json_string_value(json_object_get(ev, "peer_id"));
    bool join = strcmp(type, "peer_joined") == 0 || strcmp(type, "peer_present") == 0;
    struct cap_room_peer *p = cap_room_add_peer(m, peer_id);
    if (!p)
        return id_ok(peer_id) ? CAP_ELIMIT : 0;
    if (join)
        set_name(p, ev);
    if (!p->has_presence) {
        p->has_presence = true;
        p->present.initial = false;
    }
    if (t < p->first_seen_ns)
        p->first_seen_ns = t;
    return switches_add(&p->present, t, join);
}

static int track_event(struct cap_room_model *m, const char *type, json_t *ev, int64_t t)
{
    const char *track_id = json_string_value(json_object_get(ev, "track_id"));
    const char *peer_id = json_string_value(json_object_get(ev, "peer_id"));
    struct cap_room_track *tr = add_track(m, track_id, peer_id);
    if (!tr)
        return id_ok(track_id) ? CAP_ELIMIT : 0;
    if (!tr->peer_id[0] && id_ok(peer_id))
        snprintf(tr->peer_id, sizeof(tr->peer_id), "%s", peer_id);
    if (strcmp(type, "producer_started") == 0 || strcmp(type, "producer_closed") == 0) {
        bool start = type[9] == 's';
        if (!tr->has_life) {
            tr->has_life = true;
            tr->live.initial = false;
        }
        if (start && tr->peer_id[0]) {
            /* The owner is known from here on, even without a join event. */
            struct cap_room_peer *p = cap_room_add_peer(m, cap_room_owner_peer(tr->peer_id));
            if (p && t < p->first_seen_ns)
                p->first_seen_ns = t;
        }
        return switches_add(&tr->live, t, start);
    }
    bool pause = strstr(type, "paused") != NULL;
    return switches_add(&tr->paused, t, pause);
}

static int add_event(struct cap_room_model *m, json_t *ev)
{
    const char *type = json_string_value(json_object_get(ev, "type"));
    json_t *tv = json_object_get(ev, "t");
    if (!type || !json_is_number(tv))
        return 0;
    double ms = json_number_value(tv);
    if (ms < 0 || ms > 1e12)
        return 0;
    int64_t t = (int64_t)(ms * (double)CAP_NS_PER_MS);
    if (strcmp(type, "peer_joined") == 0 || strcmp(type, "peer_present") == 0 || strcmp(type, "peer_left") == 0)
        return peer_event(m, type, ev, t);
    if (strcmp(type, "producer_started") == 0 || strcmp(type, "producer_closed") == 0 ||
        strcmp(type, "producer_paused") == 0 || strcmp(type, "producer_resumed") == 0 ||
        strcmp(type, "track_paused_by_policy") == 0 || strcmp(type, "track_resumed_by_policy") == 0)
        return track_event(m, type, ev, t);
    if (strcmp(type, "recording_paused") == 0 || strcmp(type, "recording_resumed") == 0)
        return switches_add(&m->recording_paused, t, type[10] == 'p');
    if (strcmp(type, "room_closed") == 0) {
        for (size_t i = 0; i < m->peer_count; i++)
            if (m->peers[i].has_presence) {
                int err = switches_add(&m->peers[i].present, t, false);
                if (err)
                    return err;
            }
        return 0;
    }
    if (strcmp(type, "recording_stopped") == 0 && (m->stopped_ns < 0 || t > m->stopped_ns))
        m->stopped_ns = t;
    return 0;
}

int cap_room_model_build(json_t *metadata, json_t *timeline, struct cap_room_model *out)
{
    memset(out, 0, sizeof(*out));
    out->stopped_ns = -1;
    int err = 0;
    json_t *events = json_object_get(timeline, "events");
    if (!json_is_array(events))
        events = json_object_get(json_object_get(metadata, "timeline"), "events");
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev)
    {
        if (json_is_object(ev) && (err = add_event(out, ev)) != 0)
            break;
    }
    /* Names from metadata.json, where the timeline had none. */
    json_t *p;
    json_array_foreach(json_object_get(metadata, "participants"), i, p)
    {
        if (err)
            break;
        const char *id = json_string_value(json_object_get(p, "peer_id"));
        struct cap_room_peer *peer = cap_room_find_peer(out, id ? id : "");
        if (!peer && id_ok(id)) {
            peer = cap_room_add_peer(out, id);
            if (!peer)
                err = CAP_ELIMIT;
        }
        if (peer && strcmp(peer->display_name, peer->peer_id) == 0)
            set_name(peer, p);
    }
    if (err)
        cap_room_model_deinit(out);
    return err;
}

static json_t *load_json(const char *rec_dir, const char *name)
{
    char path[4200];
    if (snprintf(path, sizeof(path), "%s/%s", rec_dir, name) >= (int)sizeof(path))
        return NULL;
    return json_load_file(path, 0, NULL);
}

int cap_room_model_load(const char *rec_dir, struct cap_room_model *out)
{
    json_t *meta = load_json(rec_dir, "metadata.json");
    json_t *timeline = load_json(rec_dir, "timeline.json");
    int err = cap_room_model_build(meta, timeline, out);
    json_decref(meta);
    json_decref(timeline);
    return err;
}

void cap_room_model_deinit(struct cap_room_model *m)
{
    for (size_t i = 0; i < m->peer_count; i++)
        switches_free(&m->peers[i].present);
    for (size_t i = 0; i < m->track_count; i++) {
        switches_free(&m->tracks[i].live);
        switches_free(&m->tracks[i].paused);
    }
    switches_free(&m->recording_paused);
    free(m->peers);
    free(m->tracks);
    memset(m, 0, sizeof(*m));
    m->stopped_ns = -1;
}

bool cap_room_track_live(const struct cap_room_model *m, const struct cap_room_track *t, int64_t t_ns)
{
    if (cap_switches_at(&m->recording_paused, t_ns))
        return false;
    if (!t)
        return true;
    return cap_switches_at(&t->live, t_ns) && !cap_switches_at(&t->paused, t_ns);
}
