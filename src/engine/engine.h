/* The recorder's state and rules: rooms with their policy and roles, peers, producers,
 * recordings and their tracks, the policy checks of the reference note (CHECK 1-5), and
 * the timeline. Plain state plus rules, no I/O: every call that changes something appends
 * effects (ports to open, tracks to start or pause, events to deliver, files to rewrite)
 * that the edges carry out. Callers serialise access (one lock around the engine). */
#ifndef CAP_ENGINE_ENGINE_H
#define CAP_ENGINE_ENGINE_H

#include "capstan/track.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAP_ID_MAX 128

/* Error codes of the API (reference note: 1xxx connection, 2xxx room, 3xxx track,
 * 4xxx storage, 5xxx policy), each with its HTTP status. */
#define CAP_API_ERROR_MAP(X)                                                                       \
    X(UNAUTHENTICATED, 1001, 401, "missing or unknown API key")                                    \
    X(FORBIDDEN, 1002, 403, "this key's role may not do that")                                     \
    X(BAD_REQUEST, 1003, 400, "invalid request")                                                   \
    X(NO_ROUTE, 1004, 404, "no such route")                                                        \
    X(BAD_METHOD, 1005, 405, "method not allowed on this route")                                   \
    X(TOO_LARGE, 1006, 413, "request body too large")                                              \
    X(ROOM_NOT_FOUND, 2001, 404, "room not found")                                                 \
    X(ROOM_CLOSED, 2002, 409, "room is closed")                                                    \
    X(PEER_NOT_FOUND, 2003, 404, "peer not found")                                                 \
    X(PRODUCER_NOT_FOUND, 3001, 404, "producer not found")                                         \
    X(PRODUCER_EXISTS, 3002, 409, "producer already exists")                                       \
    X(RECORDING_NOT_FOUND, 3003, 404, "recording not found")                                       \
    X(RECORDING_STATE, 3004, 409, "recording is not in a state that allows this")                  \
    X(SSRC_IN_USE, 3005, 409, "SSRC already used by another producer of this room")                \
    X(STORAGE, 4001, 500, "storage error")                                                         \
    X(NO_PORT, 4002, 503, "no free RTP port")                                                      \
    X(DISABLED, 5001, 403, "Recording disabled for this room")                                     \
    X(NOT_AUTHORIZED, 5002, 403, "Not authorized to record")                                       \
    X(BAD_POLICY, 5003, 400, "invalid policy")

enum cap_api_error {
    CAP_API_OK = 0,
#define CAP_X_APIERR_(name, code, status, text) CAP_API_##name = code,
    CAP_API_ERROR_MAP(CAP_X_APIERR_)
#undef CAP_X_APIERR_
};

int cap_api_error_status(enum cap_api_error err);
const char *cap_api_error_text(enum cap_api_error err);

/* What went wrong, for the caller to answer with. */
struct cap_engine_error {
    enum cap_api_error code;
    char message[256];
};

enum cap_recording_state {
    CAP_REC_RECORDING,
    CAP_REC_PAUSED,
    CAP_REC_STOPPED,
    CAP_REC_INTERRUPTED, /* the recorder died while it was recording */
};

const char *cap_recording_state_name(enum cap_recording_state s);

struct cap_peer {
    char peer_id[CAP_ID_MAX];
    char display_name[CAP_ID_MAX];
    bool is_host, is_co_host, is_panelist;
    bool present;
    int64_t joined_ns, left_ns;
};

struct cap_producer {
    char producer_id[CAP_ID_MAX];
    char peer_id[CAP_ID_MAX];
    char kind[8];          /* audio | video */
    char track_type[16];   /* mic | camera | screenshare | ... */
    char codec[32];
    uint8_t payload_type;
    uint32_t ssrc;
    uint32_t clock_rate;
    uint32_t channels;
    char *fmtp;            /* heap, "" if none */
    bool is_screenshare;   /* is_screenshare, app_data.share, or a sharescreen_ peer */
    bool paused;
    bool closed;
    int64_t created_ns;
};

/* A producer as recorded by one recording. */
struct cap_rec_track {
    char track_id[CAP_ID_MAX];   /* {peer_id}-{audio|video|screen}[-{n}] */
    char producer_id[CAP_ID_MAX];
    char peer_id[CAP_ID_MAX];
    char kind[8];                /* audio | video | screen */
    struct cap_track_info info;  /* what its chunks say about it */
    bool producer_paused;
    bool policy_paused;          /* a policy update turned its media type off */
    bool closed;
    int64_t started_ns, ended_ns;
    /* What the ingest edge counted, kept here so it outlives the edge and a restart. */
    uint64_t packets, bytes, rtcp_packets;
};

struct cap_recording {
    char recording_id[CAP_ID_MAX];
    char room_id[CAP_ID_MAX];
    char requester_id[CAP_ID_MAX];
    enum cap_recording_state state;
    bool want_audio, want_video, want_screenshare; /* the start request's config */
    json_t *participant_ids;     /* array of strings; empty = everyone */
    int64_t started_ns, stopped_ns;
    char stop_reason[32];
    uint16_t udp_port, tcp_port; /* set by the ingest edge */
    struct cap_rec_track *tracks;
    size_t track_count, track_cap;
    json_t *timeline;            /* array of {"t": ms, "type": ..., ...} */
    json_t *policy_snapshot;     /* the room's policy when it started (and after updates) */
    void *edge;                  /* the ingest edge's handle while its ports are open */
    bool resume_paused;          /* interrupted while paused: recovers as paused */
    int64_t standby_until_ns;    /* interrupted and listening for its RTP until then */
};

struct cap_room {
    char room_id[CAP_ID_MAX];
    char room_name[CAP_ID_MAX];
    char host_id[CAP_ID_MAX];
    char meeting_type[CAP_ID_MAX];
    json_t *policy;              /* {features:{recording:{...}}, roles:{...}} */
    bool closed;
    int64_t created_ns, closed_ns;
    struct cap_peer *peers;
    size_t peer_count, peer_cap;
    struct cap_producer *producers;
    size_t producer_count, producer_cap;
    char active_speaker[CAP_ID_MAX];
};

enum cap_effect_type {
    CAP_FX_RECORDING_OPEN,   /* open ports and the recording folder; set udp/tcp_port */
    CAP_FX_RECORDING_CLOSE,  /* seal every track, close ports */
    CAP_FX_TRACK_ADD,        /* start writing track_index */
    CAP_FX_TRACK_STATE,      /* track_index paused/active/closed changed */
    CAP_FX_TRACK_SSRC,       /* track_index takes a new SSRC (old one in old_ssrc) */
    CAP_FX_PERSIST,          /* rewrite metadata.json / timeline.json / policy.json */
    CAP_FX_EVENT,            /* deliver a webhook event (event_json) */
};

struct cap_effect {
    enum cap_effect_type type;
    struct cap_recording *recording;
    size_t track_index;
    uint32_t old_ssrc;
    json_t *event;           /* CAP_FX_EVENT: owned by the effect list */
};

struct cap_effects {
    struct cap_effect *items;
    size_t count, cap;
};

void cap_effects_init(struct cap_effects *fx);
void cap_effects_deinit(struct cap_effects *fx);

struct cap_engine {
    struct cap_room **rooms;
    size_t room_count, room_cap;
    struct cap_recording **recordings;
    size_t recording_count, recording_cap;
    int node;                    /* HookEvent "node" */
    uint64_t event_seq;
    /* For ids and times; tests set a fixed clock. */
    int64_t (*now_ns)(void);
    void (*random_id)(char *out, size_t size, const char *prefix);
};

int cap_engine_init(struct cap_engine *e, int node);
void cap_engine_deinit(struct cap_engine *e);

struct cap_room *cap_engine_find_room(struct cap_engine *e, const char *room_id);
struct cap_recording *cap_engine_find_recording(struct cap_engine *e, const char *recording_id);
struct cap_room *cap_engine_room_of(struct cap_engine *e, const struct cap_recording *rec);

/* Validates a policy object (types and enum values); fills defaults for what is absent.
 * Returns a new reference or NULL with err set. */
json_t *cap_policy_normalize(json_t *policy, struct cap_engine_error *err);

/* PUT /rooms/{id}: create or update (a new policy applies to live recordings). */
int cap_engine_put_room(struct cap_engine *e, const char *room_id, json_t *body,
                        struct cap_effects *fx, struct cap_engine_error *err);
int cap_engine_close_room(struct cap_engine *e, const char *room_id, struct cap_effects *fx,
                          struct cap_engine_error *err);
int cap_engine_peer_join(struct cap_engine *e, const char *room_id, json_t *body,
                         struct cap_effects *fx, struct cap_engine_error *err);
int cap_engine_peer_leave(struct cap_engine *e, const char *room_id, const char *peer_id,
                          struct cap_effects *fx, struct cap_engine_error *err);
/* POST producers (create) and PUT producers/{id} (update, e.g. a new SSRC). */
int cap_engine_producer_create(struct cap_engine *e, const char *room_id, json_t *body,
                               struct cap_effects *fx, struct cap_engine_error *err);
int cap_engine_producer_update(struct cap_engine *e, const char *room_id, const char *producer_id,
                               json_t *body, struct cap_effects *fx, struct cap_engine_error *err);
int cap_engine_producer_close(struct cap_engine *e, const char *room_id, const char *producer_id,
                              struct cap_effects *fx, struct cap_engine_error *err);
int cap_engine_producer_pause(struct cap_engine *e, const char *room_id, const char *producer_id,
                              bool paused, struct cap_effects *fx, struct cap_engine_error *err);
int cap_engine_active_speaker(struct cap_engine *e, const char *room_id, json_t *body,
                              struct cap_effects *fx, struct cap_engine_error *err);
/* POST /rooms/{id}/recordings: CHECK 1 (enabled) and CHECK 2 (who_can_record). */
int cap_engine_start_recording(struct cap_engine *e, const char *room_id, json_t *body,
                               struct cap_recording **out, struct cap_effects *fx,
                               struct cap_engine_error *err);
int cap_engine_stop_recording(struct cap_engine *e, struct cap_recording *rec, const char *reason,
                              struct cap_effects *fx, struct cap_engine_error *err);
int cap_engine_pause_recording(struct cap_engine *e, struct cap_recording *rec, bool paused,
                               struct cap_effects *fx, struct cap_engine_error *err);

/* A track accepts packets only when its recording records and nothing paused it. */
bool cap_rec_track_active(const struct cap_recording *rec, const struct cap_rec_track *t);

/* Restores a recording from its saved state. One that was live when the recorder died is
 * marked interrupted (its tracks keep their saved state; the ingest edge may continue it
 * if its RTP keeps arriving); one that was paused recovers as paused. */
struct cap_recording *cap_engine_adopt_recording(struct cap_engine *e, json_t *state);
/* A room's state for the catalog (cap_room_json plus exact times), and its restoration
 * after a restart. */
json_t *cap_room_state_json(const struct cap_room *room);
struct cap_room *cap_engine_restore_room(struct cap_engine *e, json_t *state);
/* The state a recording needs to be adopted after a restart. */
json_t *cap_recording_state_json(const struct cap_recording *rec);
/* Marks an interrupted recording live again (its RTP came back): recording, or paused if
 * it was paused. CAP_API_RECORDING_STATE (-1 with err) if it is not interrupted. */
int cap_engine_recover_recording(struct cap_engine *e, struct cap_recording *rec,
                                 struct cap_effects *fx, struct cap_engine_error *err);
/* Marks a live recording interrupted; a stopped one stays stopped (-1 with err). */
int cap_engine_interrupt_recording(struct cap_engine *e, struct cap_recording *rec,
                                   struct cap_effects *fx, struct cap_engine_error *err);

/* JSON views for the API and the files. */
json_t *cap_room_json(const struct cap_room *room);
json_t *cap_recording_json(const struct cap_recording *rec, const char *rtp_host);
json_t *cap_recording_metadata(const struct cap_engine *e, const struct cap_recording *rec);
json_t *cap_recording_timeline(const struct cap_recording *rec);

#endif
