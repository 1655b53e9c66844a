/* The job model: one unit of post-processing (transmux, compose, convert = both, export)
 * with its lifecycle queued -> processing -> ready | failed, progress, the request that made
 * it and the result it produced; the lease a worker holds while it runs one; and the
 * HookEvents a job fires (Compose: Started, Progress, Completed, Failed), shaped like
 * raw-record-upload-and-convert.md's ComposeEvent. */
#ifndef CAP_JOBS_JOB_H
#define CAP_JOBS_JOB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAP_JOB_ID_MAX 64
#define CAP_JOB_KIND_MAX 16
#define CAP_JOB_TOKEN_MAX 40
#define CAP_JOB_WORKER_MAX 96
#define CAP_JOB_RECORDING_MAX 128
#define CAP_JOB_ERROR_MAX 512
/* Largest request or result a job carries (they travel through Redis and SQLite rows). */
#define CAP_JOB_MAX_JSON (4u << 20)

enum cap_job_state {
    CAP_JOB_QUEUED = 0,
    CAP_JOB_PROCESSING,
    CAP_JOB_READY,
    CAP_JOB_FAILED,
};

/* "queued", "processing", "ready", "failed". */
const char *cap_job_state_name(enum cap_job_state state);
/* 0, or CAP_EINVAL for an unknown name. */
int cap_job_state_parse(const char *name, enum cap_job_state *out);
static inline bool cap_job_state_terminal(enum cap_job_state s)
{
    return s == CAP_JOB_READY || s == CAP_JOB_FAILED;
}

/* Caller-owned (init/deinit); params and result are owned references. */
struct cap_job {
    char id[CAP_JOB_ID_MAX];
    char kind[CAP_JOB_KIND_MAX]; /* transmux | compose | convert | export */
    enum cap_job_state state;
    double progress;                          /* 0..1 */
    json_t *params;                           /* the request (a JSON object) */
    json_t *result;                           /* ready: what the job made; else NULL */
    char error[CAP_JOB_ERROR_MAX];            /* failed: why */
    char recording_id[CAP_JOB_RECORDING_MAX]; /* "" when the job is about no one recording */
    int attempts;                             /* workers that claimed it so far */
    char owner[CAP_JOB_WORKER_MAX];           /* the worker holding it, "" when none */
    int64_t created_ms, updated_ms;           /* wall clock, ms since the Unix epoch */
};

void cap_job_init(struct cap_job *job);
void cap_job_deinit(struct cap_job *job);

/* What a worker holds while it runs a job: the attempt token makes every later write
 * (progress, the terminal state) a compare-and-set, so a worker whose job was reclaimed
 * cannot overwrite what the new holder does. */
struct cap_job_lease {
    char job_id[CAP_JOB_ID_MAX];
    char token[CAP_JOB_TOKEN_MAX];
    char worker[CAP_JOB_WORKER_MAX];
    char entry[64]; /* backend's handle (the Redis stream entry id) */
    int attempt;
    /* Copied from the job, for the events written under this lease. */
    char kind[CAP_JOB_KIND_MAX];
    char recording_id[CAP_JOB_RECORDING_MAX];
};

/* Fills lease's job fields (id, kind, recording id) from job. */
void cap_job_lease_for(struct cap_job_lease *lease, const struct cap_job *job);

/* A new random id: prefix followed by 24 hex digits. 0 or CAP_EIO. */
int cap_job_random_id(const char *prefix, char *out, size_t size);

/* True for the kinds a queue accepts. */
bool cap_job_kind_valid(const char *kind);

/* The job as the API shows it: {job_id, kind, status, progress, attempts, recording_id,
 * created_at, updated_at, params, result, error}. New reference. */
json_t *cap_job_to_json(const struct cap_job *job);

/* Events. Every job event is a HookEvent:
 *   {"id", "node", "ts", "event": {"Compose": {"app": "capstan", "job_id", "kind",
 *                                              "recording_id", "event": {NAME: BODY}}}}
 * Started {} when the job is created, Completed {transmux?, compose?, ...the result} and
 * Failed {error} once, when the terminal state is written; Progress {status, progress,
 * attempt} (live only, never to webhooks). Durable events have deterministic ids
 * ("evt_" job id "_" name) so a redelivered one is recognised and kept once. Returns a new
 * reference, or NULL on allocation failure. body is stolen (NULL: {}). */
json_t *cap_job_event(const struct cap_job *job, int node, int64_t now_ms, const char *name,
                      json_t *body);

/* A storage key made only of safe characters (letters, digits, - _ . : @ /), relative,
 * without a trailing slash or empty, "." or ".." parts. */
bool cap_job_key_valid(const char *key);

/* Compact JSON text of value (malloc'd) or NULL; len is set when not NULL. */
char *cap_job_dump(const json_t *value, size_t *len);

#endif
