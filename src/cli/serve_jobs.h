/* The job side of `capstan serve`: the queue the API writes to (SQLite in the data folder,
 * or Redis), the event hub behind GET /events, the job routes, the pump that moves job
 * events into the webhook outbox, and the built-in workers. */
#ifndef CAP_CLI_SERVE_JOBS_H
#define CAP_CLI_SERVE_JOBS_H

#include "api/jobs_api.h"
#include "hooks/outbox.h"
#include "hooks/webhook.h"

#include <stdbool.h>
#include <stddef.h>

struct serve_jobs_config {
    const char *data_dir;
    const char *queue_url;    /* NULL: sqlite:DATA/jobs.db */
    const char *storage_url;  /* where workers read recordings; NULL: the data folder */
    const char *auto_convert; /* NULL or a convert kind */
    long workers;             /* threads; 0: none here */
    long visibility_ms;
    int node;
    struct cap_service *svc;
    struct cap_outbox *outbox; /* job events go here when webhooks are set */
    struct cap_webhook_sender *sender;
    bool webhooks;
};

struct serve_jobs;

/* Opens the queue, hub and routes (not yet the threads). why gets a message on failure. */
int serve_jobs_open(struct serve_jobs **out, const struct serve_jobs_config *cfg, char *why,
                    size_t why_size);
/* The routes, for the HTTP server. */
struct cap_jobs_api *serve_jobs_api(struct serve_jobs *sj);
/* Starts the event pump and the workers. */
int serve_jobs_start(struct serve_jobs *sj, char *why, size_t why_size);
/* A service event: to the hub and auto-convert. Safe before start and from any thread. */
void serve_jobs_on_event(struct serve_jobs *sj, const char *body, size_t len);
/* Stops workers (running jobs finish first) and the pump, closes everything. Call after
 * the HTTP server stopped. */
void serve_jobs_close(struct serve_jobs *sj);

#endif
