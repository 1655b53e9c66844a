/* The event pump (pump.h): one thread drains durable events, one (Redis only) relays the
 * live channel; each on a queue handle of its own, each waking at least once a second to
 * see whether it should stop. */
#include "jobs/pump.h"

#include "capstan/error.h"
#include "util/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WAIT_MS 1000

struct cap_job_pump {
    struct cap_job_pump_config cfg;
    char consumer[128];
    struct cap_queue *drain_queue, *live_queue;
    pthread_t drain_thread, live_thread;
    bool drain_started, live_started;
    atomic_bool stopping;
};

static void *drain_main(void *arg)
{
    struct cap_job_pump *p = arg;
    while (!atomic_load(&p->stopping)) {
        int n = cap_queue_drain_events(p->drain_queue, p->consumer, WAIT_MS, p->cfg.durable,
                                       p->cfg.durable_user);
        if (n < 0) {
            CAP_WARN(NULL, "job events: %s", cap_strerror(n));
            struct timespec ts = {1, 0};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

static void *live_main(void *arg)
{
    struct cap_job_pump *p = arg;
    while (!atomic_load(&p->stopping)) {
        int n = cap_queue_listen(p->live_queue, WAIT_MS, p->cfg.live, p->cfg.live_user);
        if (n < 0) {
            struct timespec ts = {1, 0};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

int cap_job_pump_start(struct cap_job_pump **out, const struct cap_job_pump_config *cfg, char *why,
                       size_t why_size)
{
    struct cap_job_pump *p = calloc(1, sizeof(*p));
    if (!p)
        return CAP_ENOMEM;
    p->cfg = *cfg;
    snprintf(p->consumer, sizeof(p->consumer), "%s", cfg->consumer ? cfg->consumer : "serve");
    int err = cap_queue_open(&p->drain_queue, cfg->queue_url, &cfg->queue, why, why_size);
    if (!err && cfg->live && cap_queue_url_is_redis(cfg->queue_url))
        err = cap_queue_open(&p->live_queue, cfg->queue_url, &cfg->queue, why, why_size);
    if (!err && pthread_create(&p->drain_thread, NULL, drain_main, p) == 0)
        p->drain_started = true;
    else if (!err)
        err = CAP_EIO;
    if (!err && p->live_queue) {
        if (pthread_create(&p->live_thread, NULL, live_main, p) == 0)
            p->live_started = true;
        else
            err = CAP_EIO;
    }
    if (err) {
        if (!why[0])
            snprintf(why, why_size, "cannot start the job event threads");
        cap_job_pump_stop(p);
        return err;
    }
    *out = p;
    return 0;
}

void cap_job_pump_stop(struct cap_job_pump *p)
{
    if (!p)
        return;
    atomic_store(&p->stopping, true);
    if (p->drain_started)
        pthread_join(p->drain_thread, NULL);
    if (p->live_started)
        pthread_join(p->live_thread, NULL);
    cap_queue_close(p->drain_queue);
    cap_queue_close(p->live_queue);
    free(p);
}
