/* Opening a job queue by URL (queue.h), and what both backends share. */
#include "jobs/queue.h"

#include "capstan/error.h"
#include "util/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool cap_queue_url_is_redis(const char *url)
{
    return url && strncmp(url, "redis://", 8) == 0;
}

int cap_queue_open(struct cap_queue **out, const char *url, const struct cap_queue_config *cfg,
                   char *why, size_t why_size)
{
    if (!url || !*url) {
        snprintf(why, why_size, "no queue URL");
        return CAP_EINVAL;
    }
    if (cap_queue_url_is_redis(url))
        return cap_queue_redis_open(out, url, cfg, why, why_size);
    if (strncmp(url, "sqlite:", 7) == 0)
        return cap_queue_sqlite_open(out, url + 7, cfg, why, why_size);
    size_t n = strlen(url);
    if (n > 3 && strcmp(url + n - 3, ".db") == 0)
        return cap_queue_sqlite_open(out, url, cfg, why, why_size);
    snprintf(why, why_size, "queue '%.200s' is neither redis://HOST:PORT nor sqlite:PATH", url);
    return CAP_EINVAL;
}

void cap_queue_close(struct cap_queue *q)
{
    if (q)
        q->ops->close(q);
}

int64_t cap_queue_now_ms(const struct cap_queue *q)
{
    if (q->cfg.clock_ms)
        return q->cfg.clock_ms(q->cfg.clock_user);
    return cap_clock_wall_ns() / CAP_NS_PER_MS;
}

int64_t cap_queue_visibility_ms(const struct cap_queue *q)
{
    return q->cfg.visibility_ms > 0 ? q->cfg.visibility_ms : CAP_QUEUE_DEFAULT_VISIBILITY_MS;
}

int cap_queue_prepare_job(const struct cap_queue *q, struct cap_job *job, char **params,
                          size_t *params_len, json_t **started)
{
    if (!cap_job_kind_valid(job->kind) || !json_is_object(job->params))
        return CAP_EINVAL;
    *params = cap_job_dump(job->params, params_len);
    if (!*params)
        return CAP_ENOMEM;
    int err = *params_len > CAP_JOB_MAX_JSON ? CAP_ELIMIT
                                             : cap_job_random_id("job_", job->id, sizeof(job->id));
    if (!err) {
        job->state = CAP_JOB_QUEUED;
        job->created_ms = job->updated_ms = cap_queue_now_ms(q);
        *started = cap_job_event(job, q->cfg.node, job->created_ms, "Started", NULL);
        if (!*started)
            err = CAP_ENOMEM;
    }
    if (err) {
        free(*params);
        *params = NULL;
    }
    return err;
}

int cap_queue_max_attempts(const struct cap_queue *q)
{
    return q->cfg.max_attempts > 0 ? q->cfg.max_attempts : CAP_QUEUE_DEFAULT_MAX_ATTEMPTS;
}
