/* Workers: threads that claim jobs from a queue, run them (runner.h) and write their
 * terminal state. While a job runs, a heartbeat beside it renews the lease and publishes
 * progress every third of the visibility timeout (at most every second); when a renewal
 * finds the job reclaimed, the worker publishes nothing and its result is discarded.
 * `capstan serve` runs a pool of them on its SQLite (or Redis) queue; `capstan worker`
 * runs one pool on Redis. */
#ifndef CAP_JOBS_WORKER_H
#define CAP_JOBS_WORKER_H

#include "jobs/queue.h"

#include <stdint.h>

struct cap_worker_config {
    const char *queue_url;
    struct cap_queue_config queue; /* each thread opens its own handles with it */
    const char *storage_url;       /* blob store of recordings and outputs (local path or s3://) */
    const char *work_dir; /* scratch folder, this pool's alone (locked; cleared at start) */
    const char *name;     /* worker name; threads are NAME-1, NAME-2, ... */
    int threads;          /* >= 1 */
};

struct cap_worker_stats {
    uint64_t claimed;
    uint64_t completed; /* ready written */
    uint64_t failed;    /* failed written */
    uint64_t discarded; /* finished after the job was reclaimed: result dropped */
    uint64_t running;   /* jobs being run now */
};

struct cap_worker_pool;

/* Opens every thread's queue and store handles (failing early on a bad URL or an
 * unreachable Redis), then starts the threads. why gets a message on failure. */
int cap_worker_pool_start(struct cap_worker_pool **out, const struct cap_worker_config *cfg,
                          char *why, size_t why_size);
/* Stops claiming, lets running jobs finish, joins the threads and frees the pool. */
void cap_worker_pool_stop(struct cap_worker_pool *pool);
void cap_worker_pool_stats(struct cap_worker_pool *pool, struct cap_worker_stats *out);

#endif
