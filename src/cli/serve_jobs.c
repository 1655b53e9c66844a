/* The job side of `capstan serve` (serve_jobs.h). Live events reach the hub directly from
 * the SQLite queue (same process) or through the pump's Redis subscription; durable job
 * events reach the outbox only through the pump, whichever process finished the job. */
#include "cli/serve_jobs.h"

#include "capstan/error.h"
#include "jobs/pump.h"
#include "jobs/worker.h"
#include "util/log.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HUB_CAPACITY 4096

struct serve_jobs {
    struct serve_jobs_config cfg;
    char queue_url[PATH_MAX + 16];
    char storage_url[PATH_MAX + 4096];
    char work_dir[PATH_MAX + 16];
    char name[64];
    struct cap_queue_config qcfg;
    struct cap_event_hub *hub;
    struct cap_queue *queue;
    struct cap_jobs_api *api;
    struct cap_job_pump *pump;
    struct cap_worker_pool *pool;
};

static int to_hub(void *user, const char *id, const char *body, size_t len)
{
    (void)id;
    cap_event_hub_publish(((struct serve_jobs *)user)->hub, body, len);
    return 0;
}

/* A durable job event into the webhook outbox (idempotent: the id is the job's). */
static int to_outbox(void *user, const char *id, const char *body, size_t len)
{
    struct serve_jobs *sj = user;
    if (!sj->cfg.webhooks)
        return 0;
    int err = cap_outbox_enqueue(sj->cfg.outbox, id, body, len);
    if (err == CAP_EEXIST)
        return 0;
    if (err) {
        CAP_WARN(NULL, "cannot put job event %s in the outbox: %s (kept for later)", id,
                 cap_strerror(err));
        return 1;
    }
    if (sj->cfg.sender)
        cap_webhook_sender_wake(sj->cfg.sender);
    return 0;
}

int serve_jobs_open(struct serve_jobs **out, const struct serve_jobs_config *cfg, char *why,
                    size_t why_size)
{
    struct serve_jobs *sj = calloc(1, sizeof(*sj));
    if (!sj)
        return CAP_ENOMEM;
    sj->cfg = *cfg;
    if (cfg->queue_url && *cfg->queue_url && strcmp(cfg->queue_url, "sqlite") != 0 &&
        strcmp(cfg->queue_url, "embedded") != 0)
        snprintf(sj->queue_url, sizeof(sj->queue_url), "%s", cfg->queue_url);
    else
        snprintf(sj->queue_url, sizeof(sj->queue_url), "sqlite:%s/jobs.db", cfg->data_dir);
    snprintf(sj->storage_url, sizeof(sj->storage_url), "%s",
             cfg->storage_url && *cfg->storage_url ? cfg->storage_url : cfg->data_dir);
    snprintf(sj->work_dir, sizeof(sj->work_dir), "%s/work", cfg->data_dir);
    char host[32] = "";
    gethostname(host, sizeof(host) - 1);
    snprintf(sj->name, sizeof(sj->name), "serve%d-%s-%d", cfg->node, host, (int)getpid());
    sj->qcfg = (struct cap_queue_config){.node = cfg->node, .visibility_ms = cfg->visibility_ms};
    int err = cap_event_hub_new(&sj->hub, HUB_CAPACITY);
    if (!err) {
        sj->qcfg.live = to_hub;
        sj->qcfg.live_user = sj;
        err = cap_queue_open(&sj->queue, sj->queue_url, &sj->qcfg, why, why_size);
    }
    if (!err) {
        struct cap_jobs_api_config acfg = {.queue = sj->queue,
                                           .hub = sj->hub,
                                           .svc = cfg->svc,
                                           .data_dir = cfg->data_dir,
                                           .auto_convert = cfg->auto_convert};
        err = cap_jobs_api_new(&sj->api, &acfg);
    }
    if (err) {
        if (!why[0])
            snprintf(why, why_size, "%s", cap_strerror(err));
        serve_jobs_close(sj);
        return err;
    }
    *out = sj;
    return 0;
}

struct cap_jobs_api *serve_jobs_api(struct serve_jobs *sj)
{
    return sj ? sj->api : NULL;
}

int serve_jobs_start(struct serve_jobs *sj, char *why, size_t why_size)
{
    struct cap_job_pump_config pcfg = {
        .queue_url = sj->queue_url,
        .queue = sj->qcfg,
        .consumer = sj->name,
        .durable = to_outbox,
        .durable_user = sj,
        .live = cap_queue_url_is_redis(sj->queue_url) ? to_hub : NULL,
        .live_user = sj,
    };
    int err = cap_job_pump_start(&sj->pump, &pcfg, why, why_size);
    if (err || sj->cfg.workers <= 0)
        return err;
    struct cap_worker_config wcfg = {
        .queue_url = sj->queue_url,
        .queue = sj->qcfg,
        .storage_url = sj->storage_url,
        .work_dir = sj->work_dir,
        .name = sj->name,
        .threads = (int)sj->cfg.workers,
    };
    return cap_worker_pool_start(&sj->pool, &wcfg, why, why_size);
}

void serve_jobs_on_event(struct serve_jobs *sj, const char *body, size_t len)
{
    if (sj)
        cap_jobs_api_on_event(sj->api, body, len);
}

void serve_jobs_close(struct serve_jobs *sj)
{
    if (!sj)
        return;
    cap_jobs_api_shutdown(sj->api);
    cap_worker_pool_stop(sj->pool);
    cap_job_pump_stop(sj->pump);
    cap_jobs_api_free(sj->api);
    cap_queue_close(sj->queue);
    cap_event_hub_free(sj->hub);
    free(sj);
}
