/* metadata.json, timeline.json and policy.json builders (recording_files.h). Timeline
 * times are milliseconds after the recording's time zero, as in the reference note. */
#include "engine/recording_files.h"

#include "util/clock.h"
#include "util/json.h"

#include <string.h>

#define CAPSTAN_VERSION_STRING "0.1.0"

json_t *cap_json_time(int64_t unix_ns)
{
    char text[40];
    cap_clock_format_iso8601(unix_ns, text, sizeof(text));
    return json_string(text);
}

json_t *cap_policy_default(void)
{
    return json_pack("{s:{s:{s:b,s:s}, s:{s:b,s:b,s:s,s:s,s:b,s:b,s:b,s:i,s:b}}, s:{s:s,s:[],s:[]}}",
                     "features", "screen_share", "enabled", 1, "who_can_share", "all",
                     "recording", "enabled", 1, "auto_record", 0, "who_can_record", "host",
                     "who_can_download", "all", "record_audio", 1, "record_video", 1,
                     "record_screenshare", 1, "retention_days", 30, "notify_participants", 1,
                     "roles", "host_id", "", "co_host_ids", "panelist_ids");
}

static int64_t ms_after(const struct cap_file_recording *rec, int64_t t)
{
    return (t - rec->started_ns) / CAP_NS_PER_MS;
}

json_t *cap_metadata_json(const struct cap_file_recording *rec, json_t *policy)
{
    json_t *recording_policy = json_object_get(json_object_get(policy, "features"), "recording");
    json_t *participants = json_array();
    for (size_t i = 0; i < rec->track_count; i++) {
        const struct cap_file_track *t = &rec->tracks[i];
        json_t *peer = NULL;
        size_t k;
        json_t *p;
        json_array_foreach(participants, k, p)
        {
            if (strcmp(json_string_value(json_object_get(p, "peer_id")), t->peer_id) == 0)
                peer = p;
        }
        if (!peer) {
            peer = json_pack("{s:s, s:s, s:o, s:o, s:b, s:b, s:[]}", "peer_id", t->peer_id,
                             "display_name", t->peer_id, "joined_at", cap_json_time(t->started_ns),
                             "left_at", cap_json_time(t->ended_ns), "is_host", 0, "is_co_host", 0,
                             "tracks");
            json_array_append_new(participants, peer);
        }
        char file[300];
        snprintf(file, sizeof(file), "tracks/%s/", t->track_id);
        json_array_append_new(
            json_object_get(peer, "tracks"),
            json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:o, s:I, s:I}", "track_id",
                      t->track_id, "kind", t->kind, "codec", t->codec, "file", file, "ssrc",
                      (json_int_t)t->ssrc, "clock_rate", (json_int_t)t->clock_rate, "channels",
                      (json_int_t)t->channels, "started_at", cap_json_time(t->started_ns),
                      "ended_at", cap_json_time(t->ended_ns), "packets", (json_int_t)t->packets,
                      "bytes", (json_int_t)t->bytes));
    }
    json_t *snapshot = json_pack(
        "{s:O, s:O, s:O, s:O}", "recording_enabled", json_object_get(recording_policy, "enabled"),
        "who_can_record", json_object_get(recording_policy, "who_can_record"), "auto_record",
        json_object_get(recording_policy, "auto_record"), "retention_days",
        json_object_get(recording_policy, "retention_days"));
    json_t *timeline = cap_timeline_json(rec);
    json_t *events = json_incref(json_object_get(timeline, "events"));
    json_decref(timeline);
    json_t *meta = json_pack("{s:s, s:{s:s, s:s, s:s, s:s, s:o, s:o, s:I}, s:o, s:o, s:o, s:{s:s, s:s, "
                     "s:s, s:s}}",
                     "$schema", "recording-metadata-v1", "room", "room_id", rec->room_id,
                     "room_name", rec->room_name ? rec->room_name : rec->room_id, "host_id", "",
                     "meeting_type", "", "started_at", cap_json_time(rec->started_ns), "ended_at",
                     cap_json_time(rec->ended_ns), "duration_seconds",
                     (json_int_t)((rec->ended_ns - rec->started_ns) / CAP_NS_PER_SEC),
                     "policy_snapshot", snapshot ? snapshot : json_object(), "participants",
                     participants, "timeline", json_pack("{s:o}", "events", events),
                     "recording", "recording_id", rec->recording_id, "started_by",
                     rec->started_by ? rec->started_by : "", "service_version",
                     CAPSTAN_VERSION_STRING, "source", rec->source ? rec->source : "");
    json_object_set_new(json_object_get(meta, "recording"), "time_zero_ns",
                        json_integer((json_int_t)rec->started_ns));
    return meta;
}

json_t *cap_timeline_json(const struct cap_file_recording *rec)
{
    json_t *events = json_array();
    json_array_append_new(events, json_pack("{s:I, s:s}", "t", (json_int_t)0, "type", "recording_started"));
    for (size_t i = 0; i < rec->track_count; i++) {
        const struct cap_file_track *t = &rec->tracks[i];
        json_array_append_new(events, json_pack("{s:I, s:s, s:s, s:s, s:s}", "t",
                                                (json_int_t)ms_after(rec, t->started_ns), "type",
                                                "producer_started", "peer_id", t->peer_id, "kind",
                                                t->kind, "track_id", t->track_id));
    }
    for (size_t i = 0; i < rec->track_count; i++) {
        const struct cap_file_track *t = &rec->tracks[i];
        json_array_append_new(events, json_pack("{s:I, s:s, s:s, s:s, s:s}", "t",
                                                (json_int_t)ms_after(rec, t->ended_ns), "type",
                                                "producer_closed", "peer_id", t->peer_id, "kind",
                                                t->kind, "track_id", t->track_id));
    }
    json_array_append_new(events, json_pack("{s:I, s:s}", "t", (json_int_t)ms_after(rec, rec->ended_ns),
                                            "type", "recording_stopped"));
    /* Events in time order; equal times keep their insertion order. */
    size_t n = json_array_size(events);
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0; j--) {
            json_t *a = json_array_get(events, j - 1), *b = json_array_get(events, j);
            if (json_integer_value(json_object_get(a, "t")) <= json_integer_value(json_object_get(b, "t")))
                break;
            json_incref(a);
            json_array_set(events, j - 1, b);
            json_array_set_new(events, j, a);
        }
    }
    return json_pack("{s:s, s:s, s:o, s:o}", "recording_id", rec->recording_id, "room_id",
                     rec->room_id, "started_at", cap_json_time(rec->started_ns), "events", events);
}

int cap_recording_files_write_default(const char *dir, const struct cap_file_recording *rec)
{
    json_t *policy = cap_policy_default();
    int err = cap_json_write_file(dir, "metadata.json", cap_metadata_json(rec, policy));
    if (!err)
        err = cap_json_write_file(dir, "timeline.json", cap_timeline_json(rec));
    if (!err)
        err = cap_json_write_file(dir, "policy.json", policy);
    else
        json_decref(policy);
    return err;
}
