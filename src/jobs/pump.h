/* The event pump of `capstan serve`: moves the queue's durable job events (Started,
 * Completed, Failed) into whatever keeps the webhook outbox, and, on Redis, the live
 * events every worker publishes (progress included) to the SSE hub. Workers never touch
 * the outbox: on Redis their events wait in a stream until a serve takes them. */
#ifndef CAP_JOBS_PUMP_H
#define CAP_JOBS_PUMP_H

#include "jobs/queue.h"

struct cap_job_pump_config {
    const char *queue_url;
    struct cap_queue_config queue;
    const char *consumer;       /* this node's name in the events consumer group */
    cap_queue_event_fn durable; /* must be idempotent per event id (the outbox is) */
    void *durable_user;
    cap_queue_event_fn live; /* NULL: no live relay (the SQLite queue calls it itself) */
    void *live_user;
};

struct cap_job_pump;

int cap_job_pump_start(struct cap_job_pump **out, const struct cap_job_pump_config *cfg, char *why,
                       size_t why_size);
void cap_job_pump_stop(struct cap_job_pump *pump);

#endif
