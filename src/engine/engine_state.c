/* The engine's JSON: API views of rooms and recordings, the reference-shaped metadata and
 * timeline files, and the state saved in the catalog so that rooms and recordings outlive
 * a crash (adopt / recover / interrupt). */
#include "engine/engine.h"

#include "engine/recording_files.h"
#include "util/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *time_or_null(int64_t ns)
{
    return ns ? cap_json_time(ns) : json_null();
}

static const char *track_state(const struct cap_recording *rec, const struct cap_rec_track *t)
{
    if (t->closed)
        return "closed";
    return cap_rec_track_active(rec, t) ? "recording" : "paused";
}

json_t *cap_room_json(const struct cap_room *room)
{
    json_t *peers = json_array();
    for (size_t i = 0; i < room->peer_count; i++) {
        const struct cap_peer *p = &room->peers[i];
        json_array_append_new(peers, json_pack("{s:s, s:s, s:b, s:b, s:b, s:b, s:o, s:o}", "peer_id",
                                               p->peer_id, "display_name", p->display_name, "is_host",
                                               p->is_host, "is_co_host", p->is_co_host, "is_panelist",
                                               p->is_panelist, "present", p->present, "joined_at",
                                               time_or_null(p->joined_ns), "left_at",
                                               time_or_null(p->left_ns)));
    }
    json_t *producers = json_array();
    for (size_t i = 0; i < room->producer_count; i++) {
        const struct cap_producer *p = &room->producers[i];
        json_array_append_new(producers,
                              json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:I, s:s, s:b, s:b, s:b}",
                                        "producer_id", p->producer_id, "peer_id", p->peer_id, "kind",
                                        p->kind, "track_type", p->track_type, "codec", p->codec,
                                        "payload_type", p->payload_type, "ssrc", (json_int_t)p->ssrc,
                                        "clock_rate", (json_int_t)p->clock_rate, "channels",
                                        (json_int_t)p->channels, "fmtp", p->fmtp ? p->fmtp : "",
                                        "is_screenshare", p->is_screenshare, "paused", p->paused,
                                        "closed", p->closed));
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:O, s:b, s:o, s:o, s:s, s:o, s:o}", "room_id", room->room_id,
                     "room_name", room->room_name, "host_id", room->host_id, "meeting_type",
                     room->meeting_type, "policy", room->policy, "closed", room->closed,
                     "created_at", time_or_null(room->created_ns), "closed_at",
                     time_or_null(room->closed_ns), "active_speaker", room->active_speaker, "peers",
                     peers, "producers", producers);
}

static json_t *track_json(const struct cap_recording *rec, const struct cap_rec_track *t)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:i, s:I, s:I, s:s, s:s, s:o, s:o, s:I, s:I, s:I}",
                     "track_id", t->track_id, "producer_id", t->producer_id, "peer_id", t->peer_id,
                     "kind", t->kind, "codec", t->info.codec, "ssrc", (json_int_t)t->info.ssrc,
                     "payload_type", t->info.payload_types[0], "clock_rate",
                     (json_int_t)t->info.clock_rate, "channels", (json_int_t)t->info.channels,
                     "state", track_state(rec, t), "path", t->track_id, "started_at",
                     time_or_null(t->started_ns), "ended_at", time_or_null(t->ended_ns), "packets",
                     (json_int_t)t->packets, "bytes", (json_int_t)t->bytes, "rtcp_packets",
                     (json_int_t)t->rtcp_packets);
}

json_t *cap_recording_json(const struct cap_recording *rec, const char *rtp_host)
{
    json_t *tracks = json_array();
    for (size_t i = 0; i < rec->track_count; i++) {
        json_t *t = track_json(rec, &rec->tracks[i]);
        char path[4 * CAP_ID_MAX];
        snprintf(path, sizeof(path), "rooms/%s/%s/tracks/%s", rec->room_id, rec->recording_id,
                 rec->tracks[i].track_id);
        json_object_set_new(t, "path", json_string(path));
        json_array_append_new(tracks, t);
    }
    char path[3 * CAP_ID_MAX];
    snprintf(path, sizeof(path), "rooms/%s/%s", rec->room_id, rec->recording_id);
    json_t *rtp = rec->state == CAP_REC_STOPPED
                      ? json_null()
                      : json_pack("{s:s, s:i, s:i}", "host", rtp_host, "udp_port", rec->udp_port,
                                  "tcp_port", rec->tcp_port);
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:o, s:{s:b, s:b, s:b, s:O}, s:o, s:O}",
                     "recording_id", rec->recording_id, "room_id", rec->room_id, "state",
                     cap_recording_state_name(rec->state), "requester_id", rec->requester_id,
                     "started_at", cap_json_time(rec->started_ns), "stopped_at",
                     time_or_null(rec->stopped_ns), "stop_reason", rec->stop_reason, "path", path,
                     "rtp", rtp, "config", "record_audio", rec->want_audio, "record_video",
                     rec->want_video, "record_screenshare", rec->want_screenshare,
                     "participant_ids", rec->participant_ids, "tracks", tracks, "policy",
                     rec->policy_snapshot);
}

json_t *cap_recording_timeline(const struct cap_recording *rec)
{
    return json_pack("{s:s, s:s, s:o, s:O}", "recording_id", rec->recording_id, "room_id",
                     rec->room_id, "started_at", cap_json_time(rec->started_ns), "events",
                     rec->timeline);
}

json_t *cap_recording_metadata(const struct cap_engine *e, const struct cap_recording *rec)
{
    struct cap_room *room = cap_engine_room_of((struct cap_engine *)e, rec);
    json_t *participants = json_array();
    /* Everyone who has a track, plus everyone who was in the room. */
    for (size_t i = 0; room && i < room->peer_count; i++) {
        const struct cap_peer *p = &room->peers[i];
        json_array_append_new(participants,
                              json_pack("{s:s, s:s, s:o, s:o, s:b, s:b, s:[]}", "peer_id", p->peer_id,
                                        "display_name", p->display_name, "joined_at",
                                        time_or_null(p->joined_ns), "left_at", time_or_null(p->left_ns),
                                        "is_host", p->is_host, "is_co_host", p->is_co_host, "tracks"));
    }
    for (size_t i = 0; i < rec->track_count; i++) {
        const struct cap_rec_track *t = &rec->tracks[i];
        json_t *owner = NULL;
        size_t k;
        json_t *p;
        json_array_foreach(participants, k, p)
        {
            if (strcmp(json_string_value(json_object_get(p, "peer_id")), t->peer_id) == 0)
                owner = p;
        }
        if (!owner) {
            owner = json_pack("{s:s, s:s, s:n, s:n, s:b, s:b, s:[]}", "peer_id", t->peer_id,
                              "display_name", t->peer_id, "joined_at", "left_at", "is_host", 0,
                              "is_co_host", 0, "tracks");
            json_array_append_new(participants, owner);
        }
        char file[2 * CAP_ID_MAX];
        snprintf(file, sizeof(file), "tracks/%s/", t->track_id);
        json_t *tj = track_json(rec, t);
        json_object_set_new(tj, "file", json_string(file));
        json_object_del(tj, "path");
        json_array_append_new(json_object_get(owner, "tracks"), tj);
    }
    json_t *rp = json_object_get(json_object_get(rec->policy_snapshot, "features"), "recording");
    json_t *roles = json_object_get(rec->policy_snapshot, "roles");
    int64_t end = rec->stopped_ns ? rec->stopped_ns : e->now_ns();
    json_t *meta = json_pack(
        "{s:s, s:{s:s, s:s, s:s, s:s, s:o, s:o, s:I}, s:{s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O}, "
        "s:o, s:{s:O}, s:{s:s, s:s, s:s, s:s, s:s}}",
        "$schema", "recording-metadata-v1", "room", "room_id", rec->room_id, "room_name",
        room ? room->room_name : "", "host_id", room ? room->host_id : "", "meeting_type",
        room ? room->meeting_type : "", "started_at", cap_json_time(rec->started_ns), "ended_at",
        time_or_null(rec->stopped_ns), "duration_seconds",
        (json_int_t)((end - rec->started_ns) / CAP_NS_PER_SEC), "policy_snapshot",
        "recording_enabled", json_object_get(rp, "enabled"), "who_can_record",
        json_object_get(rp, "who_can_record"), "auto_record", json_object_get(rp, "auto_record"),
        "retention_days", json_object_get(rp, "retention_days") ? json_object_get(rp, "retention_days") : json_integer(30),
        "record_audio", json_object_get(rp, "record_audio"), "record_video",
        json_object_get(rp, "record_video"), "record_screenshare", json_object_get(rp, "record_screenshare"),
        "host_id", json_object_get(roles, "host_id") ? json_object_get(roles, "host_id") : json_string(""),
        "co_host_ids", json_object_get(roles, "co_host_ids"),
        "participants", participants, "timeline", "events", rec->timeline, "recording",
        "recording_id", rec->recording_id, "started_by", rec->requester_id, "state",
        cap_recording_state_name(rec->state), "stop_reason", rec->stop_reason, "service_version",
        "0.1.0");
    /* Time zero exactly, for the media pipeline (started_at is rounded to milliseconds). */
    json_object_set_new(json_object_get(meta, "recording"), "time_zero_ns",
                        json_integer((json_int_t)rec->started_ns));
    return meta;
}

/* ---- state kept in the catalog ---- */

json_t *cap_recording_state_json(const struct cap_recording *rec)
{
    json_t *tracks = json_array();
    for (size_t i = 0; i < rec->track_count; i++) {
        const struct cap_rec_track *t = &rec->tracks[i];
        json_array_append_new(tracks,
                              json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:i, s:I, s:s, s:b, s:b, s:b, s:I, s:I}",
                                        "track_id", t->track_id, "producer_id", t->producer_id, "peer_id",
                                        t->peer_id, "kind", t->kind, "codec", t->info.codec, "clock_rate",
                                        (json_int_t)t->info.clock_rate, "channels",
                                        (json_int_t)t->info.channels, "ssrc", (json_int_t)t->info.ssrc,
                                        "payload_type", t->info.payload_types[0], "started_ns",
                                        (json_int_t)t->started_ns, "fmtp", t->info.fmtp,
                                        "producer_paused", t->producer_paused, "policy_paused",
                                        t->policy_paused, "closed", t->closed, "ended_ns",
                                        (json_int_t)t->ended_ns, "chunk", (json_int_t)0));
        json_t *last = json_array_get(tracks, json_array_size(tracks) - 1);
        json_object_set_new(last, "packets", json_integer((json_int_t)t->packets));
        json_object_set_new(last, "bytes", json_integer((json_int_t)t->bytes));
        json_object_set_new(last, "rtcp_packets", json_integer((json_int_t)t->rtcp_packets));
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:O, s:I, s:I, s:s, s:i, s:i, s:o, s:O, s:O, s:b}",
                     "recording_id", rec->recording_id, "room_id", rec->room_id, "requester_id",
                     rec->requester_id, "state", cap_recording_state_name(rec->state), "want_audio",
                     rec->want_audio, "want_video", rec->want_video, "want_screenshare",
                     rec->want_screenshare, "participant_ids", rec->participant_ids, "started_ns",
                     (json_int_t)rec->started_ns, "stopped_ns", (json_int_t)rec->stopped_ns,
                     "stop_reason", rec->stop_reason, "udp_port", rec->udp_port, "tcp_port",
                     rec->tcp_port, "tracks", tracks, "timeline", rec->timeline, "policy",
                     rec->policy_snapshot, "resume_paused", rec->resume_paused);
}

static void set_id(char *dst, json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    snprintf(dst, CAP_ID_MAX, "%s", v ? v : "");
}

static int64_t get_i64(json_t *obj, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(obj, key));
}

struct cap_recording *cap_engine_adopt_recording(struct cap_engine *e, json_t *state)
{
    if (!json_is_object(state) || !json_is_string(json_object_get(state, "recording_id")) ||
        !json_is_array(json_object_get(state, "tracks")))
        return NULL;
    if (cap_engine_find_recording(e, json_string_value(json_object_get(state, "recording_id"))))
        return NULL;
    struct cap_recording *rec = calloc(1, sizeof(*rec));
    if (!rec)
        return NULL;
    set_id(rec->recording_id, state, "recording_id");
    set_id(rec->room_id, state, "room_id");
    set_id(rec->requester_id, state, "requester_id");
    const char *st = json_string_value(json_object_get(state, "state"));
    rec->state = !st ? CAP_REC_INTERRUPTED
                 : strcmp(st, "stopped") == 0 ? CAP_REC_STOPPED
                                              : CAP_REC_INTERRUPTED;
    rec->resume_paused = st && strcmp(st, "paused") == 0;
    if (st && strcmp(st, "interrupted") == 0)
        rec->resume_paused = json_is_true(json_object_get(state, "resume_paused"));
    rec->want_audio = json_is_true(json_object_get(state, "want_audio"));
    rec->want_video = json_is_true(json_object_get(state, "want_video"));
    rec->want_screenshare = json_is_true(json_object_get(state, "want_screenshare"));
    json_t *participants = json_object_get(state, "participant_ids");
    rec->participant_ids = json_is_array(participants) ? json_deep_copy(participants) : json_array();
    rec->started_ns = get_i64(state, "started_ns");
    rec->stopped_ns = get_i64(state, "stopped_ns");
    snprintf(rec->stop_reason, sizeof(rec->stop_reason), "%s",
             json_string_value(json_object_get(state, "stop_reason")) ?: "");
    rec->udp_port = (uint16_t)json_integer_value(json_object_get(state, "udp_port"));
    rec->tcp_port = (uint16_t)json_integer_value(json_object_get(state, "tcp_port"));
    json_t *timeline = json_object_get(state, "timeline");
    rec->timeline = json_is_array(timeline) ? json_deep_copy(timeline) : json_array();
    json_t *policy = json_object_get(state, "policy");
    rec->policy_snapshot = policy ? json_deep_copy(policy) : json_object();
    json_t *tracks = json_object_get(state, "tracks");
    rec->track_cap = json_array_size(tracks) ? json_array_size(tracks) : 1;
    rec->tracks = calloc(rec->track_cap, sizeof(*rec->tracks));
    size_t i;
    json_t *tj;
    json_array_foreach(tracks, i, tj)
    {
        struct cap_rec_track *t = &rec->tracks[rec->track_count++];
        set_id(t->track_id, tj, "track_id");
        set_id(t->producer_id, tj, "producer_id");
        set_id(t->peer_id, tj, "peer_id");
        snprintf(t->kind, sizeof(t->kind), "%s", json_string_value(json_object_get(tj, "kind")) ?: "");
        t->producer_paused = json_is_true(json_object_get(tj, "producer_paused"));
        t->policy_paused = json_is_true(json_object_get(tj, "policy_paused"));
        t->closed = json_is_true(json_object_get(tj, "closed"));
        t->started_ns = get_i64(tj, "started_ns");
        t->ended_ns = get_i64(tj, "ended_ns");
        t->packets = (uint64_t)get_i64(tj, "packets");
        t->bytes = (uint64_t)get_i64(tj, "bytes");
        t->rtcp_packets = (uint64_t)get_i64(tj, "rtcp_packets");
        struct cap_track_info *info = &t->info;
        memcpy(info->track_id, t->track_id, CAP_ID_MAX);
        memcpy(info->recording_id, rec->recording_id, CAP_ID_MAX);
        memcpy(info->room_id, rec->room_id, CAP_ID_MAX);
        memcpy(info->peer_id, t->peer_id, CAP_ID_MAX);
        memcpy(info->producer_id, t->producer_id, CAP_ID_MAX);
        snprintf(info->kind, sizeof(info->kind), "%s", t->kind);
        snprintf(info->codec, sizeof(info->codec), "%s",
                 json_string_value(json_object_get(tj, "codec")) ?: "");
        snprintf(info->fmtp, sizeof(info->fmtp), "%s", json_string_value(json_object_get(tj, "fmtp")) ?: "");
        info->clock_rate = (uint32_t)get_i64(tj, "clock_rate");
        info->channels = (uint32_t)get_i64(tj, "channels");
        info->ssrc = (uint32_t)get_i64(tj, "ssrc");
        info->payload_types[0] = (uint8_t)get_i64(tj, "payload_type");
        info->payload_type_count = 1;
    }
    if (e->recording_count == e->recording_cap) {
        size_t n = e->recording_cap ? e->recording_cap * 2 : 8;
        struct cap_recording **p = realloc(e->recordings, n * sizeof(*p));
        if (!p)
            abort();
        e->recordings = p;
        e->recording_cap = n;
    }
    e->recordings[e->recording_count++] = rec;
    return rec;
}

json_t *cap_room_state_json(const struct cap_room *room)
{
    json_t *state = cap_room_json(room);
    json_object_set_new(state, "created_ns", json_integer((json_int_t)room->created_ns));
    json_object_set_new(state, "closed_ns", json_integer((json_int_t)room->closed_ns));
    json_t *peers = json_object_get(state, "peers");
    for (size_t i = 0; i < room->peer_count && i < json_array_size(peers); i++) {
        json_t *p = json_array_get(peers, i);
        json_object_set_new(p, "joined_ns", json_integer((json_int_t)room->peers[i].joined_ns));
        json_object_set_new(p, "left_ns", json_integer((json_int_t)room->peers[i].left_ns));
    }
    json_t *producers = json_object_get(state, "producers");
    for (size_t i = 0; i < room->producer_count && i < json_array_size(producers); i++)
        json_object_set_new(json_array_get(producers, i), "created_ns",
                            json_integer((json_int_t)room->producers[i].created_ns));
    return state;
}

struct cap_room *cap_engine_restore_room(struct cap_engine *e, json_t *state)
{
    const char *room_id = json_string_value(json_object_get(state, "room_id"));
    if (!room_id || cap_engine_find_room(e, room_id))
        return NULL;
    struct cap_room *room = calloc(1, sizeof(*room));
    if (!room)
        return NULL;
    set_id(room->room_id, state, "room_id");
    set_id(room->room_name, state, "room_name");
    set_id(room->host_id, state, "host_id");
    set_id(room->meeting_type, state, "meeting_type");
    set_id(room->active_speaker, state, "active_speaker");
    json_t *policy = json_object_get(state, "policy");
    room->policy = policy ? json_deep_copy(policy) : cap_policy_normalize(NULL, NULL);
    room->closed = json_is_true(json_object_get(state, "closed"));
    room->created_ns = get_i64(state, "created_ns") ? get_i64(state, "created_ns") : e->now_ns();
    room->closed_ns = get_i64(state, "closed_ns");
    json_t *peers = json_object_get(state, "peers");
    json_t *producers = json_object_get(state, "producers");
    room->peer_cap = json_array_size(peers) + 1;
    room->peers = calloc(room->peer_cap, sizeof(*room->peers));
    room->producer_cap = json_array_size(producers) + 1;
    room->producers = calloc(room->producer_cap, sizeof(*room->producers));
    if (!room->peers || !room->producers)
        abort();
    size_t i;
    json_t *v;
    json_array_foreach(peers, i, v)
    {
        struct cap_peer *p = &room->peers[room->peer_count++];
        set_id(p->peer_id, v, "peer_id");
        set_id(p->display_name, v, "display_name");
        p->is_host = json_is_true(json_object_get(v, "is_host"));
        p->is_co_host = json_is_true(json_object_get(v, "is_co_host"));
        p->is_panelist = json_is_true(json_object_get(v, "is_panelist"));
        p->present = json_is_true(json_object_get(v, "present"));
        p->joined_ns = get_i64(v, "joined_ns");
        p->left_ns = get_i64(v, "left_ns");
    }
    json_array_foreach(producers, i, v)
    {
        struct cap_producer *p = &room->producers[room->producer_count++];
        set_id(p->producer_id, v, "producer_id");
        set_id(p->peer_id, v, "peer_id");
        snprintf(p->kind, sizeof(p->kind), "%s", json_string_value(json_object_get(v, "kind")) ?: "video");
        snprintf(p->track_type, sizeof(p->track_type), "%s",
                 json_string_value(json_object_get(v, "track_type")) ?: "");
        snprintf(p->codec, sizeof(p->codec), "%s", json_string_value(json_object_get(v, "codec")) ?: "");
        p->payload_type = (uint8_t)get_i64(v, "payload_type");
        p->ssrc = (uint32_t)get_i64(v, "ssrc");
        p->clock_rate = (uint32_t)get_i64(v, "clock_rate");
        p->channels = (uint32_t)get_i64(v, "channels");
        p->fmtp = strdup(json_string_value(json_object_get(v, "fmtp")) ?: "");
        p->is_screenshare = json_is_true(json_object_get(v, "is_screenshare"));
        p->paused = json_is_true(json_object_get(v, "paused"));
        p->closed = json_is_true(json_object_get(v, "closed"));
        p->created_ns = get_i64(v, "created_ns");
    }
    if (e->room_count == e->room_cap) {
        size_t n = e->room_cap ? e->room_cap * 2 : 8;
        struct cap_room **p = realloc(e->rooms, n * sizeof(*p));
        if (!p)
            abort();
        e->rooms = p;
        e->room_cap = n;
    }
    e->rooms[e->room_count++] = room;
    return room;
}
