/* The recorder service: the engine behind one lock, and the edges that carry out what it
 * decides: ingest (ports, tracks), the recording files, the catalog, and the event sink
 * (webhooks). Both front doors (HTTP now, others later) call these functions. It also
 * brings back, after a crash, what was live: rooms, and recordings marked interrupted
 * that continue if their RTP keeps arriving. */
#ifndef CAP_API_SERVICE_H
#define CAP_API_SERVICE_H

#include "engine/engine.h"
#include "ingest/ingest.h"

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>

/* Where events go (the webhook outbox); emit must be safe to call with the engine locked. */
struct cap_event_sink {
    int (*emit)(void *user, const char *event_id, const char *body, size_t len);
    int64_t (*backlog)(void *user);
    void *user;
};

struct cap_service_config {
    const char *data_dir;
    const char *rtp_host;           /* bind address and the host the API tells SFUs */
    const char *rtp_advertise;      /* host to tell SFUs, if different; NULL = rtp_host */
    uint16_t port_lo, port_hi;
    int64_t sync_interval_ns;       /* default 1 s */
    uint64_t max_chunk_bytes;
    int64_t max_chunk_ns;
    int64_t recover_window_ns;      /* how long an interrupted recording waits for its RTP */
    int node;
    struct cap_event_sink sink;
    /* A store URL other than the data folder itself (an S3 bucket, say): closed chunks and
     * the recording files go up to it and sealed chunks leave the spool once confirmed there. */
    const char *storage_url;
    uint64_t spool_quota_bytes;     /* backlog past this raises the alarm; 0: none */
    bool spool_keep;                /* upload but keep local copies (tests) */
};

struct cap_service;

int cap_service_open(struct cap_service **out, const struct cap_service_config *cfg);
void cap_service_close(struct cap_service *svc);

/* A JSON answer: HTTP status and body (owned by the caller). */
struct cap_reply {
    int status;
    json_t *body;
};

/* Each takes the request's path parameters and JSON body (may be NULL) and fills reply. */
void cap_service_put_room(struct cap_service *svc, const char *room_id, json_t *body, struct cap_reply *r);
void cap_service_close_room(struct cap_service *svc, const char *room_id, struct cap_reply *r);
void cap_service_get_room(struct cap_service *svc, const char *room_id, struct cap_reply *r);
void cap_service_peer_join(struct cap_service *svc, const char *room_id, json_t *body, struct cap_reply *r);
void cap_service_peer_leave(struct cap_service *svc, const char *room_id, const char *peer_id,
                            struct cap_reply *r);
void cap_service_producer_create(struct cap_service *svc, const char *room_id, json_t *body,
                                 struct cap_reply *r);
void cap_service_producer_update(struct cap_service *svc, const char *room_id, const char *producer_id,
                                 json_t *body, struct cap_reply *r);
void cap_service_producer_close(struct cap_service *svc, const char *room_id, const char *producer_id,
                                struct cap_reply *r);
void cap_service_producer_pause(struct cap_service *svc, const char *room_id, const char *producer_id,
                                bool paused, struct cap_reply *r);
void cap_service_active_speaker(struct cap_service *svc, const char *room_id, json_t *body,
                                struct cap_reply *r);
void cap_service_start_recording(struct cap_service *svc, const char *room_id, json_t *body,
                                 struct cap_reply *r);
void cap_service_get_recording(struct cap_service *svc, const char *recording_id, struct cap_reply *r);
void cap_service_list_recordings(struct cap_service *svc, const char *room_id, struct cap_reply *r);
/* action: "stop", "pause" or "resume" */
void cap_service_recording_action(struct cap_service *svc, const char *recording_id, const char *action,
                                  struct cap_reply *r);

void cap_service_health(struct cap_service *svc, struct cap_reply *r);
/* Prometheus text exposition; caller frees. */
char *cap_service_metrics(struct cap_service *svc);

/* An error answer in the API's shape. */
void cap_reply_error(struct cap_reply *r, int status, int code, const char *message);

#endif
