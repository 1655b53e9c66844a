/* The job runner: what a worker does with a job it holds, chosen by the job's kind from one
 * table (transmux, compose, convert = transmux then compose, export). It fetches the
 * recording from the blob store (or reads it in place from a local one), runs the media
 * pipeline into a scratch folder of its own attempt, and publishes the outputs only while
 * its lease is still held: to the recording's processed/ keys, or to the request's
 * custom_s3 location. */
#ifndef CAP_JOBS_RUNNER_H
#define CAP_JOBS_RUNNER_H

#include "jobs/job.h"
#include "store/blob.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct cap_job_env {
    struct cap_blob_store *store; /* recordings and default outputs; used by one thread */
    const char *local_root;       /* non-NULL when store is a local folder: read recordings there */
    const char *work_dir; /* scratch; each attempt gets work_dir/JOB-ATTEMPT, removed after */
};

struct cap_job_hooks {
    void (*progress)(void *user, double done); /* 0..1, any rate */
    bool (*still_held)(void *user);            /* false once the lease was lost */
    void *user;
};

/* Runs job under lease. 0 with *result (new reference: the Completed event's body, e.g.
 * {"transmux": TransmuxSummary, "compose": {"media_uri"}}), or a negative CAP_E* with a
 * message in why. CAP_ESTATE: the lease was lost, nothing was published. */
int cap_job_execute(const struct cap_job_env *env, const struct cap_job *job,
                    const struct cap_job_lease *lease, const struct cap_job_hooks *hooks,
                    json_t **result, char *why, size_t why_size);

/* Checks a job's request before it is queued: kind and params as the API builds them.
 * 0, or CAP_EINVAL with a message. */
int cap_job_validate(const char *kind, json_t *params, char *why, size_t why_size);

/* True for the reference's custom_s3 form "http(s)://KEY:SECRET@HOST:PORT/BUCKET/PATH[?...]"
 * (credentials may also come from the environment). */
bool cap_job_custom_s3_valid(const char *custom);

#endif
