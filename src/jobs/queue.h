/* The job queue: one small vtable, two backends. SQLite (queue_sqlite.c, the embedded
 * default: one table with lease columns, workers inside `capstan serve`) and Redis Streams
 * (queue_redis.c: a stream with a consumer group, a hash per job, workers anywhere).
 *
 * Delivery is at least once, completion exactly once: claim hands a job out with a new
 * attempt token and a lease of visibility_ms; renew extends the lease (and records
 * progress) only while the token is still the job's; a job whose lease ran out is handed
 * to the next claimer with a new token; finish writes the terminal state only if the token
 * is still the job's, so a late finisher's result is discarded (CAP_ESTATE). The terminal
 * state, the acknowledgement and the job's durable event (Completed or Failed) are written
 * in one step (a transaction, or a Lua script), so none happens without the others.
 *
 * Events: enqueue and finish also store a durable HookEvent (Started, Completed, Failed)
 * that drain_events hands to whoever keeps the webhook outbox (capstan serve), and publish
 * every event, plus Progress, live (the SQLite backend to the config's live callback in
 * this process, Redis with PUBLISH) for GET /events.
 *
 * A handle is used by one thread at a time unless the backend says otherwise; both backends
 * lock internally, so the HTTP threads may share one handle. Blocking calls (claim with a
 * wait, drain_events, listen) belong on a handle of their own. */
#ifndef CAP_JOBS_QUEUE_H
#define CAP_JOBS_QUEUE_H

#include "jobs/job.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAP_QUEUE_DEFAULT_VISIBILITY_MS 30000
#define CAP_QUEUE_DEFAULT_MAX_ATTEMPTS 3

/* An event handed to a consumer: id (the HookEvent's) and the JSON text. Return 0 when it
 * is taken care of (it is then acknowledged); non-zero leaves it for a later drain. */
typedef int (*cap_queue_event_fn)(void *user, const char *id, const char *body, size_t len);

struct cap_queue_config {
    int node;              /* "node" of the events this handle writes */
    int64_t visibility_ms; /* lease length; 0: CAP_QUEUE_DEFAULT_VISIBILITY_MS */
    int max_attempts;      /* claims before a job whose workers keep vanishing fails; 0: default */
    /* Live events (SQLite backend: called in this process after the write commits). */
    cap_queue_event_fn live;
    void *live_user;
    /* The wall clock in ms (tests move it); NULL: the real one. */
    int64_t (*clock_ms)(void *user);
    void *clock_user;
};

struct cap_queue;

struct cap_queue_ops {
    const char *name; /* "sqlite" or "redis" */
    /* Stores a new job in state queued (kind, params and recording_id from job; id,
     * created_ms and updated_ms are filled in) with its Started event. */
    int (*enqueue)(struct cap_queue *q, struct cap_job *job);
    /* Fills out (initialised by the caller) with the job's current state; CAP_ENOENT. */
    int (*get)(struct cap_queue *q, const char *job_id, struct cap_job *out);
    /* The newest job of a kind (NULL: any) about a recording; CAP_ENOENT if none. */
    int (*latest)(struct cap_queue *q, const char *recording_id, const char *kind,
                  struct cap_job *out);
    /* Hands out the oldest job that is queued, or processing with its lease run out.
     * Waits up to wait_ms for one. Returns 1 (out and lease filled), 0 (none), or a
     * negative CAP_E*. A job claimed max_attempts times without finishing is failed
     * instead (with its Failed event) and not handed out. */
    int (*claim)(struct cap_queue *q, const char *worker, int wait_ms, struct cap_job *out,
                 struct cap_job_lease *lease);
    /* Extends the lease by visibility_ms and records progress (< 0: unchanged); publishes a
     * live Progress event. 0, or CAP_ESTATE when the job is no longer this lease's. */
    int (*renew)(struct cap_queue *q, const struct cap_job_lease *lease, double progress);
    /* Terminal state: ready with result (borrowed), or failed with error. 0, or CAP_ESTATE
     * when the job is no longer this lease's (the result is then discarded). */
    int (*finish)(struct cap_queue *q, const struct cap_job_lease *lease, bool ok, json_t *result,
                  const char *error);
    /* Hands stored durable events to fn, oldest first, waiting up to wait_ms for the first;
     * acknowledges each that fn takes. consumer names this reader (Redis consumer group
     * member). Returns how many were taken, or a negative CAP_E*. */
    int (*drain_events)(struct cap_queue *q, const char *consumer, int wait_ms,
                        cap_queue_event_fn fn, void *user);
    /* Hands live events (every event published by any handle) to fn for up to wait_ms.
     * Redis only; the SQLite backend delivers live events through config.live and
     * returns CAP_EUNSUPPORTED. Returns how many were handed over or a negative CAP_E*. */
    int (*listen)(struct cap_queue *q, int wait_ms, cap_queue_event_fn fn, void *user);
    void (*close)(struct cap_queue *q);
};

struct cap_queue {
    const struct cap_queue_ops *ops;
    struct cap_queue_config cfg;
};

/* url: "sqlite:PATH" (or a plain path ending in .db) or "redis://[:PASSWORD@]HOST:PORT[/DB]".
 * why gets a message on failure. */
int cap_queue_open(struct cap_queue **out, const char *url, const struct cap_queue_config *cfg,
                   char *why, size_t why_size);
void cap_queue_close(struct cap_queue *q);
bool cap_queue_url_is_redis(const char *url);

/* The backends (used by cap_queue_open). */
int cap_queue_sqlite_open(struct cap_queue **out, const char *path,
                          const struct cap_queue_config *cfg, char *why, size_t why_size);
int cap_queue_redis_open(struct cap_queue **out, const char *url,
                         const struct cap_queue_config *cfg, char *why, size_t why_size);

/* Shared by the backends. */
int64_t cap_queue_now_ms(const struct cap_queue *q);
int64_t cap_queue_visibility_ms(const struct cap_queue *q);
int cap_queue_max_attempts(const struct cap_queue *q);
/* What every backend does before storing a new job: checks its kind and params, gives it an
 * id, the queued state and its times, serialises the params (at most CAP_JOB_MAX_JSON) and
 * makes its Started event. On success the caller frees *params and json_decref()s *started. */
int cap_queue_prepare_job(const struct cap_queue *q, struct cap_job *job, char **params,
                          size_t *params_len, json_t **started);

static inline int cap_queue_enqueue(struct cap_queue *q, struct cap_job *job)
{
    return q->ops->enqueue(q, job);
}
static inline int cap_queue_get(struct cap_queue *q, const char *job_id, struct cap_job *out)
{
    return q->ops->get(q, job_id, out);
}
static inline int cap_queue_latest(struct cap_queue *q, const char *recording_id, const char *kind,
                                   struct cap_job *out)
{
    return q->ops->latest(q, recording_id, kind, out);
}
static inline int cap_queue_claim(struct cap_queue *q, const char *worker, int wait_ms,
                                  struct cap_job *out, struct cap_job_lease *lease)
{
    return q->ops->claim(q, worker, wait_ms, out, lease);
}
static inline int cap_queue_renew(struct cap_queue *q, const struct cap_job_lease *lease,
                                  double progress)
{
    return q->ops->renew(q, lease, progress);
}
static inline int cap_queue_finish(struct cap_queue *q, const struct cap_job_lease *lease, bool ok,
                                   json_t *result, const char *error)
{
    return q->ops->finish(q, lease, ok, result, error);
}
static inline int cap_queue_drain_events(struct cap_queue *q, const char *consumer, int wait_ms,
                                         cap_queue_event_fn fn, void *user)
{
    return q->ops->drain_events(q, consumer, wait_ms, fn, user);
}
static inline int cap_queue_listen(struct cap_queue *q, int wait_ms, cap_queue_event_fn fn,
                                   void *user)
{
    return q->ops->listen(q, wait_ms, fn, user);
}

#endif
