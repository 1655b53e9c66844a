/* The job routes of the HTTP API (docs/api.md): POST /api/convert/job and GET
 * /api/convert/job/{id} as raw-record-upload-and-convert.md has them, PUT|GET
 * /recordings/{id}/composition and POST /recordings/{id}/export as
 * preview-composition-export.md has them, export_status on GET /recordings/{id}, GET
 * /events (server-sent events from the hub), and auto-convert when a room closes. */
#ifndef CAP_API_JOBS_API_H
#define CAP_API_JOBS_API_H

#include "api/event_hub.h"
#include "api/service.h"
#include "jobs/queue.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Job error codes (6xxx: jobs), beside the engine's. */
#define CAP_API_JOB_NOT_FOUND 6001         /* 404 */
#define CAP_API_COMPOSITION_NOT_FOUND 6002 /* 404 */
#define CAP_API_QUEUE_UNAVAILABLE 6003     /* 503 */
#define CAP_API_TOO_MANY_STREAMS 6004      /* 503 */
#define CAP_API_BAD_COMPOSITION 6005       /* 400 */

struct cap_jobs_api_config {
    struct cap_queue *queue; /* shared by the HTTP threads (the backends lock) */
    struct cap_event_hub *hub;
    struct cap_service *svc;
    const char *data_dir;     /* compositions live in the recordings' folders */
    const char *auto_convert; /* NULL, "transmux", "compose" or "convert" */
};

struct cap_jobs_api;

int cap_jobs_api_new(struct cap_jobs_api **out, const struct cap_jobs_api_config *cfg);
/* Ends every event stream (resuming their connections); call before the HTTP server stops. */
void cap_jobs_api_shutdown(struct cap_jobs_api *api);
void cap_jobs_api_free(struct cap_jobs_api *api);

void cap_jobs_api_convert(struct cap_jobs_api *api, json_t *body, struct cap_reply *r);
void cap_jobs_api_get_job(struct cap_jobs_api *api, const char *job_id, struct cap_reply *r);
void cap_jobs_api_put_composition(struct cap_jobs_api *api, const char *recording_id, json_t *body,
                                  struct cap_reply *r);
void cap_jobs_api_get_composition(struct cap_jobs_api *api, const char *recording_id,
                                  struct cap_reply *r);
void cap_jobs_api_export(struct cap_jobs_api *api, const char *recording_id, json_t *body,
                         struct cap_reply *r);
/* Adds export_status and export {job_id, export_id, status, progress, key, url} to a
 * recording's view (a 200 reply body of the service). */
void cap_jobs_api_decorate_recording(struct cap_jobs_api *api, json_t *recording);

/* An event of this node (the service's sink and the job pump call it): to the hub, and
 * auto-convert when it is a recording stopped because its room closed. */
int cap_jobs_api_on_event(struct cap_jobs_api *api, const char *body, size_t len);

struct MHD_Connection;
struct MHD_Response;
/* The text/event-stream response of GET /events?since=&job_id=&recording_id= (NULL when
 * too many streams are open: the caller answers 503). */
struct MHD_Response *cap_jobs_api_event_stream(struct cap_jobs_api *api,
                                               struct MHD_Connection *conn);

#endif
