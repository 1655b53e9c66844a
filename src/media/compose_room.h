/* The room as compose sees it over time, from the recording's own files: who is in the
 * room (peer_present / peer_joined / peer_left, room_closed), each peer's display name
 * (metadata.json participants, timeline events), which tracks are live (producer_started
 * / producer_closed) or paused (producer_paused, track_paused_by_policy,
 * recording_paused and their resumes), and when the recording stopped. Times are ns after
 * the recording's time zero. A missing or partial file only means less is known. */
#ifndef CAP_MEDIA_COMPOSE_ROOM_H
#define CAP_MEDIA_COMPOSE_ROOM_H

#include "capstan/track.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAP_ROOM_MAX_PEERS 1024
#define CAP_ROOM_MAX_TRACKS 4096
#define CAP_ROOM_MAX_SWITCHES 100000

/* A boolean over time: the value of the last switch at or before t (initial before any). */
struct cap_switches {
    int64_t *t_ns;
    bool *on;
    size_t count, cap;
    bool initial;
};

struct cap_room_peer {
    char peer_id[CAP_TRACK_ID_MAX];
    char display_name[CAP_TRACK_ID_MAX];
    bool has_presence;                 /* the timeline says when it was in the room */
    struct cap_switches present;
    int64_t first_seen_ns;             /* earliest event naming it, for a stable tile order */
};

struct cap_room_track {
    char track_id[CAP_TRACK_ID_MAX];
    char peer_id[CAP_TRACK_ID_MAX];
    bool has_life;                     /* producer_started / producer_closed seen */
    struct cap_switches live;
    struct cap_switches paused;
};

struct cap_room_model {
    struct cap_room_peer *peers;
    size_t peer_count;
    struct cap_room_track *tracks;
    size_t track_count;
    struct cap_switches recording_paused;
    int64_t stopped_ns;                /* recording_stopped, -1 if the timeline has none */
};

/* Reads rec_dir/metadata.json and rec_dir/timeline.json (either may be missing). Returns 0,
 * CAP_ENOMEM, or CAP_ELIMIT past the caps above. */
int cap_room_model_load(const char *rec_dir, struct cap_room_model *out);
/* The same from already parsed documents (either may be NULL): for tests. */
int cap_room_model_build(json_t *metadata, json_t *timeline, struct cap_room_model *out);
void cap_room_model_deinit(struct cap_room_model *m);

/* NULL if unknown. */
struct cap_room_peer *cap_room_find_peer(struct cap_room_model *m, const char *peer_id);
struct cap_room_track *cap_room_find_track(struct cap_room_model *m, const char *track_id);
/* Adds a peer that has tracks but no timeline presence (name = id). */
struct cap_room_peer *cap_room_add_peer(struct cap_room_model *m, const char *peer_id);

bool cap_switches_at(const struct cap_switches *s, int64_t t_ns);
/* The time of the first switch after t, INT64_MAX if none (when the value may change next). */
int64_t cap_switches_next(const struct cap_switches *s, int64_t t_ns);

/* A track is live at t: started and not closed (true if the timeline never says), and
 * neither it nor the recording is paused. */
bool cap_room_track_live(const struct cap_room_model *m, const struct cap_room_track *t, int64_t t_ns);

/* A screen track's owner: "sharescreen_alice" -> "alice" (mediasoup's convention). */
const char *cap_room_owner_peer(const char *peer_id);

#endif
