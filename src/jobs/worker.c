/* Worker pool (worker.h): each thread loops claim -> run -> finish; a heartbeat thread of
 * its own renews the lease while the job runs, on a queue handle of its own (a Redis
 * connection is used by one thread at a time). */
#include "jobs/worker.h"

#include "capstan/error.h"
#include "jobs/runner.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/log.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define CLAIM_WAIT_MS 1000
#define MAX_BEAT_MS 1000
#define RETRY_MS 1000

struct worker {
    struct cap_worker_pool *pool;
    char name[CAP_JOB_WORKER_MAX];
    struct cap_queue *queue;      /* claims and finishes */
    struct cap_queue *beat_queue; /* renewals, from the heartbeat thread */
    struct cap_blob_store *store;
    pthread_t thread;
    bool started;
    /* The job running now, shared with its heartbeat. */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool beating;
    double progress;  /* latest reported, < 0 before the first */
    atomic_bool lost; /* a renewal found the job reclaimed */
    struct cap_job_lease lease;
};

struct cap_worker_pool {
    struct cap_worker_config cfg;
    char queue_url[1024];
    char storage_url[4096];
    char work_dir[PATH_MAX];
    char local_root[PATH_MAX];
    bool local;
    int lock_fd; /* flock on work_dir/.lock: one pool per work folder */
    atomic_bool stopping;
    atomic_uint_fast64_t claimed, completed, failed, discarded, running;
    struct worker *workers;
    int count;
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t beat_interval_ms(const struct cap_worker_pool *pool)
{
    int64_t vis = pool->cfg.queue.visibility_ms > 0 ? pool->cfg.queue.visibility_ms
                                                    : CAP_QUEUE_DEFAULT_VISIBILITY_MS;
    int64_t every = vis / 3;
    return every < 50 ? 50 : every > MAX_BEAT_MS ? MAX_BEAT_MS : every;
}

/* ---- heartbeat ---- */

static void *heartbeat_main(void *arg)
{
    struct worker *w = arg;
    struct cap_log_ctx ctx = {.job = w->lease.job_id};
    int64_t every = beat_interval_ms(w->pool);
    pthread_mutex_lock(&w->lock);
    while (w->beating) {
        double progress = w->progress;
        struct cap_job_lease lease = w->lease;
        pthread_mutex_unlock(&w->lock);
        int err = cap_queue_renew(w->beat_queue, &lease, progress);
        if (err == CAP_ESTATE && !atomic_load(&w->lost)) {
            atomic_store(&w->lost, true);
            CAP_WARN(&ctx, "lease lost: the job was reclaimed by another worker; its result will "
                           "be discarded");
        } else if (err && err != CAP_ESTATE) {
            CAP_WARN(&ctx, "cannot renew the lease: %s", cap_strerror(err));
        }
        pthread_mutex_lock(&w->lock);
        if (!w->beating)
            break;
        struct timespec until = cap_clock_deadline_ns((int64_t)every * CAP_NS_PER_MS);
        pthread_cond_timedwait(&w->wake, &w->lock, &until);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static void on_progress(void *user, double done)
{
    struct worker *w = user;
    pthread_mutex_lock(&w->lock);
    w->progress = done;
    pthread_mutex_unlock(&w->lock);
}

static bool on_still_held(void *user)
{
    struct worker *w = user;
    /* Ask now rather than trust the last beat: publishing is what must not happen late. */
    pthread_mutex_lock(&w->lock);
    struct cap_job_lease lease = w->lease;
    pthread_mutex_unlock(&w->lock);
    if (atomic_load(&w->lost))
        return false;
    int err = cap_queue_renew(w->queue, &lease, -1);
    if (err == CAP_ESTATE)
        atomic_store(&w->lost, true);
    return !atomic_load(&w->lost);
}

/* ---- one job ---- */

static void run_one(struct worker *w, struct cap_job *job, const struct cap_job_lease *lease)
{
    struct cap_worker_pool *pool = w->pool;
    struct cap_log_ctx ctx = {.job = job->id,
                              .recording = job->recording_id[0] ? job->recording_id : NULL};
    CAP_INFO(&ctx, "%s: running %s job (attempt %d)", w->name, job->kind, lease->attempt);
    atomic_fetch_add(&pool->claimed, 1);
    atomic_fetch_add(&pool->running, 1);
    pthread_mutex_lock(&w->lock);
    w->lease = *lease;
    w->progress = 0;
    w->beating = true;
    atomic_store(&w->lost, false);
    pthread_mutex_unlock(&w->lock);
    pthread_t beat;
    bool beat_started = pthread_create(&beat, NULL, heartbeat_main, w) == 0;
    if (!beat_started)
        CAP_ERROR(&ctx, "cannot start the heartbeat: the lease may run out while the job runs");

    struct cap_job_env env = {.store = w->store,
                              .local_root = pool->local ? pool->local_root : NULL,
                              .work_dir = pool->work_dir};
    struct cap_job_hooks hooks = {.progress = on_progress, .still_held = on_still_held, .user = w};
    json_t *result = NULL;
    char why[CAP_JOB_ERROR_MAX];
    int64_t started = cap_clock_mono_ns();
    int err = cap_job_execute(&env, job, lease, &hooks, &result, why, sizeof(why));

    pthread_mutex_lock(&w->lock);
    w->beating = false;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    if (beat_started)
        pthread_join(beat, NULL);

    if (err == CAP_ESTATE || atomic_load(&w->lost)) {
        atomic_fetch_add(&pool->discarded, 1);
        CAP_WARN(&ctx, "%s: job was reclaimed while it ran; its result is discarded", w->name);
        json_decref(result);
        atomic_fetch_sub(&pool->running, 1);
        return;
    }
    int fin;
    for (int tries = 0;; tries++) {
        fin = cap_queue_finish(w->queue, lease, err == 0, result, err ? why : NULL);
        if (fin == 0 || fin == CAP_ESTATE || tries == 5 || atomic_load(&pool->stopping))
            break;
        CAP_WARN(&ctx, "cannot write the job's state (%s); retrying", cap_strerror(fin));
        sleep_ms(RETRY_MS);
    }
    double seconds = (double)(cap_clock_mono_ns() - started) / 1e9;
    if (fin == CAP_ESTATE) {
        atomic_fetch_add(&pool->discarded, 1);
        CAP_WARN(&ctx,
                 "%s: the job was reclaimed before it finished here; this result is discarded",
                 w->name);
    } else if (fin) {
        CAP_ERROR(&ctx, "%s: cannot write the job's state: %s (it will be reclaimed and run again)",
                  w->name, cap_strerror(fin));
    } else if (err) {
        atomic_fetch_add(&pool->failed, 1);
        CAP_WARN(&ctx, "%s: job failed after %.3f s: %s", w->name, seconds, why);
    } else {
        atomic_fetch_add(&pool->completed, 1);
        CAP_INFO(&ctx, "%s: job ready in %.3f s", w->name, seconds);
    }
    json_decref(result);
    atomic_fetch_sub(&pool->running, 1);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct cap_worker_pool *pool = w->pool;
    while (!atomic_load(&pool->stopping)) {
        struct cap_job job;
        struct cap_job_lease lease;
        cap_job_init(&job);
        memset(&lease, 0, sizeof(lease));
        int rc = cap_queue_claim(w->queue, w->name, CLAIM_WAIT_MS, &job, &lease);
        if (rc == 1)
            run_one(w, &job, &lease);
        cap_job_deinit(&job);
        if (rc < 0) {
            CAP_WARN(NULL, "%s: cannot claim a job: %s", w->name, cap_strerror(rc));
            sleep_ms(RETRY_MS);
        }
    }
    return NULL;
}

/* ---- the pool ---- */

static void free_pool(struct cap_worker_pool *pool)
{
    for (int i = 0; pool->workers && i < pool->count; i++) {
        struct worker *w = &pool->workers[i];
        cap_queue_close(w->queue);
        cap_queue_close(w->beat_queue);
        if (w->store)
            cap_blob_close(w->store);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->wake);
    }
    free(pool->workers);
    if (pool->lock_fd >= 0)
        close(pool->lock_fd);
    free(pool);
}

/* Takes the work folder for this pool alone and clears what attempts of an earlier run
 * (killed mid-job) left in it. */
static int claim_work_dir(struct cap_worker_pool *pool, char *why, size_t why_size)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/.lock", pool->work_dir);
    pool->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (pool->lock_fd < 0) {
        snprintf(why, why_size, "cannot open %s", path);
        return CAP_EIO;
    }
    if (flock(pool->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(why, why_size,
                 "the work folder %s is in use by another worker: give each its own --work-dir",
                 pool->work_dir);
        return CAP_EEXIST;
    }
    DIR *d = opendir(pool->work_dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, "job_", 4) != 0)
            continue;
        char stale[PATH_MAX + 300];
        snprintf(stale, sizeof(stale), "%s/%s", pool->work_dir, e->d_name);
        int err = cap_remove_tree(stale);
        if (err)
            CAP_WARN(NULL, "cannot remove %s: %s", stale, cap_strerror(err));
    }
    if (d)
        closedir(d);
    return 0;
}

static int open_worker(struct cap_worker_pool *pool, struct worker *w, int index, char *why,
                       size_t why_size)
{
    w->pool = pool;
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_cond_init(&w->wake, &attr);
    pthread_condattr_destroy(&attr);
    snprintf(w->name, sizeof(w->name), "%s-%d", pool->cfg.name, index + 1);
    int err = cap_queue_open(&w->queue, pool->queue_url, &pool->cfg.queue, why, why_size);
    if (!err)
        err = cap_queue_open(&w->beat_queue, pool->queue_url, &pool->cfg.queue, why, why_size);
    if (!err && pool->storage_url[0])
        err = cap_blob_open(&w->store, pool->storage_url, why, why_size);
    return err;
}

int cap_worker_pool_start(struct cap_worker_pool **out, const struct cap_worker_config *cfg,
                          char *why, size_t why_size)
{
    if (!cfg->queue_url || cfg->threads < 1 || !cfg->work_dir || !cfg->name) {
        snprintf(why, why_size, "worker pool: queue, threads, work folder and name are required");
        return CAP_EINVAL;
    }
    struct cap_worker_pool *pool = calloc(1, sizeof(*pool));
    if (!pool)
        return CAP_ENOMEM;
    pool->cfg = *cfg;
    snprintf(pool->queue_url, sizeof(pool->queue_url), "%s", cfg->queue_url);
    snprintf(pool->storage_url, sizeof(pool->storage_url), "%s",
             cfg->storage_url ? cfg->storage_url : "");
    snprintf(pool->work_dir, sizeof(pool->work_dir), "%s", cfg->work_dir);
    pool->cfg.queue_url = pool->queue_url;
    pool->cfg.storage_url = pool->storage_url;
    pool->cfg.work_dir = pool->work_dir;
    pool->lock_fd = -1;
    int err = cap_mkdir_p(pool->work_dir);
    if (err) {
        snprintf(why, why_size, "cannot make the work folder %s: %s", pool->work_dir,
                 cap_strerror(err));
        free(pool);
        return err;
    }
    if ((err = claim_work_dir(pool, why, why_size))) {
        close(pool->lock_fd);
        free(pool);
        return err;
    }
    if (pool->storage_url[0] && !cap_blob_url_is_s3(pool->storage_url)) {
        const char *dir = strncmp(pool->storage_url, "file://", 7) == 0 ? pool->storage_url + 7
                                                                        : pool->storage_url;
        if (!realpath(dir, pool->local_root)) {
            snprintf(why, why_size, "storage folder %s does not exist", dir);
            close(pool->lock_fd);
            free(pool);
            return CAP_ENOENT;
        }
        pool->local = true;
    }
    pool->count = cfg->threads;
    pool->workers = calloc((size_t)pool->count, sizeof(*pool->workers));
    if (!pool->workers) {
        free_pool(pool);
        return CAP_ENOMEM;
    }
    for (int i = 0; i < pool->count; i++) {
        if ((err = open_worker(pool, &pool->workers[i], i, why, why_size))) {
            free_pool(pool);
            return err;
        }
    }
    for (int i = 0; i < pool->count; i++) {
        struct worker *w = &pool->workers[i];
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            snprintf(why, why_size, "cannot start worker threads");
            atomic_store(&pool->stopping, true);
            for (int k = 0; k < i; k++)
                pthread_join(pool->workers[k].thread, NULL);
            free_pool(pool);
            return CAP_EIO;
        }
        w->started = true;
    }
    CAP_INFO(NULL, "%d job worker%s on %s queue (%s), storage %s", pool->count,
             pool->count == 1 ? "" : "s", pool->workers[0].queue->ops->name, cfg->name,
             pool->local ? pool->local_root : "s3");
    *out = pool;
    return 0;
}

void cap_worker_pool_stop(struct cap_worker_pool *pool)
{
    if (!pool)
        return;
    atomic_store(&pool->stopping, true);
    for (int i = 0; i < pool->count; i++)
        if (pool->workers[i].started)
            pthread_join(pool->workers[i].thread, NULL);
    free_pool(pool);
}

void cap_worker_pool_stats(struct cap_worker_pool *pool, struct cap_worker_stats *out)
{
    out->claimed = atomic_load(&pool->claimed);
    out->completed = atomic_load(&pool->completed);
    out->failed = atomic_load(&pool->failed);
    out->discarded = atomic_load(&pool->discarded);
    out->running = atomic_load(&pool->running);
}
