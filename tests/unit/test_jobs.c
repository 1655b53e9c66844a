/* jobs: the SQLite queue's semantics with a clock the tests move: claims, leases that run
 * out and are reclaimed with a new attempt token, late finishers discarded, give-up after
 * max attempts, durable events exactly once, and many threads with their own handles
 * claiming every job exactly once. The same semantics on a real redis-server (its Lua
 * scripts, XAUTOCLAIM reclaims, pub/sub). Also the job model's ids, keys and events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "capstan/error.h"
#include "jobs/job.h"
#include "jobs/queue.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define VISIBILITY_MS 1000

struct fixture {
    char dir[64];
    char path[128];
    _Atomic int64_t now_ms;
    struct cap_queue *q;
    /* live events seen through the config's callback */
    pthread_mutex_t lock;
    char live[64][64]; /* event names */
    int live_count;
};

static int64_t test_clock(void *user)
{
    return atomic_load(&((struct fixture *)user)->now_ms);
}

/* The event's name: the one key of event.Compose.event. */
static void event_name(const char *body, size_t len, char *out, size_t size)
{
    json_t *doc = json_loadb(body, len, 0, NULL);
    json_t *inner =
        json_object_get(json_object_get(json_object_get(doc, "event"), "Compose"), "event");
    const char *name = "";
    void *it = json_object_iter(inner);
    if (it)
        name = json_object_iter_key(it);
    snprintf(out, size, "%s", name);
    json_decref(doc);
}

static int on_live(void *user, const char *id, const char *body, size_t len)
{
    (void)id;
    struct fixture *f = user;
    pthread_mutex_lock(&f->lock);
    if (f->live_count < 64)
        event_name(body, len, f->live[f->live_count++], sizeof(f->live[0]));
    pthread_mutex_unlock(&f->lock);
    return 0;
}

static struct cap_queue_config config_of(struct fixture *f)
{
    return (struct cap_queue_config){.node = 7,
                                     .visibility_ms = VISIBILITY_MS,
                                     .max_attempts = 3,
                                     .live = on_live,
                                     .live_user = f,
                                     .clock_ms = test_clock,
                                     .clock_user = f};
}

static struct cap_queue *open_queue(struct fixture *f)
{
    struct cap_queue_config cfg = config_of(f);
    struct cap_queue *q = NULL;
    char why[256] = "";
    int err = cap_queue_open(&q, f->path, &cfg, why, sizeof(why));
    if (err)
        fail_msg("open: %s", why);
    return q;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/capstan-test-jobs-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/jobs.db", f->dir);
    atomic_store(&f->now_ms, INT64_C(1700000000000));
    pthread_mutex_init(&f->lock, NULL);
    f->q = open_queue(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cap_queue_close(f->q);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    pthread_mutex_destroy(&f->lock);
    free(f);
    return 0;
}

static void enqueue(struct cap_queue *q, const char *kind, const char *recording, char *id_out)
{
    struct cap_job job;
    cap_job_init(&job);
    snprintf(job.kind, sizeof(job.kind), "%s", kind);
    snprintf(job.recording_id, sizeof(job.recording_id), "%s", recording ? recording : "");
    job.params = json_pack("{s:s, s:{}}", "record_path", "rooms/r/rec", "transmux");
    assert_int_equal(cap_queue_enqueue(q, &job), 0);
    assert_int_equal(strncmp(job.id, "job_", 4), 0);
    if (id_out)
        strcpy(id_out, job.id);
    cap_job_deinit(&job);
}

/* Durable events drained now, as "name:job_id" strings. */
struct drained {
    char items[64][128];
    int count;
    int refuse_after; /* refuse once this many were taken; -1 never */
};

static int on_durable(void *user, const char *id, const char *body, size_t len)
{
    struct drained *d = user;
    if (d->refuse_after >= 0 && d->count >= d->refuse_after)
        return 1;
    char name[32];
    event_name(body, len, name, sizeof(name));
    json_t *doc = json_loadb(body, len, 0, NULL);
    const char *job = json_string_value(
        json_object_get(json_object_get(json_object_get(doc, "event"), "Compose"), "job_id"));
    /* the id is deterministic per job and event */
    char expect[160];
    snprintf(expect, sizeof(expect), "evt_%s_", job);
    assert_int_equal(strncmp(id, expect, strlen(expect)), 0);
    assert_int_equal(json_integer_value(json_object_get(doc, "node")), 7);
    snprintf(d->items[d->count++], sizeof(d->items[0]), "%s:%s", name, job);
    json_decref(doc);
    return 0;
}

static int drain(struct cap_queue *q, struct drained *d)
{
    int total = 0, n;
    while ((n = cap_queue_drain_events(q, "test", 0, on_durable, d)) > 0)
        total += n;
    assert_true(n >= 0);
    return total;
}

static void test_claim_hands_a_queued_job_out_once(void **state)
{
    struct fixture *f = *state;
    char id[CAP_JOB_ID_MAX];
    enqueue(f->q, "transmux", "rec1", id);
    struct cap_job job;
    struct cap_job_lease lease;
    cap_job_init(&job);
    assert_int_equal(cap_queue_get(f->q, id, &job), 0);
    assert_int_equal(job.state, CAP_JOB_QUEUED);
    assert_string_equal(json_string_value(json_object_get(job.params, "record_path")),
                        "rooms/r/rec");

    assert_int_equal(cap_queue_claim(f->q, "w1", 0, &job, &lease), 1);
    assert_string_equal(job.id, id);
    assert_int_equal(job.state, CAP_JOB_PROCESSING);
    assert_int_equal(job.attempts, 1);
    assert_string_equal(job.owner, "w1");
    assert_string_equal(lease.job_id, id);
    assert_int_equal(lease.attempt, 1);
    assert_true(strlen(lease.token) > 4);

    struct cap_job other;
    struct cap_job_lease other_lease;
    cap_job_init(&other);
    assert_int_equal(cap_queue_claim(f->q, "w2", 0, &other, &other_lease), 0);
    cap_job_deinit(&other);
    cap_job_deinit(&job);
}

static void test_finish_is_compare_and_set_on_the_attempt_token(void **state)
{
    struct fixture *f = *state;
    char id[CAP_JOB_ID_MAX];
    enqueue(f->q, "transmux", "rec1", id);
    struct cap_job job;
    struct cap_job_lease lease;
    cap_job_init(&job);
    assert_int_equal(cap_queue_claim(f->q, "w1", 0, &job, &lease), 1);
    json_t *result = json_pack("{s:{s:s}}", "transmux", "metadata_json", "{}");
    assert_int_equal(cap_queue_finish(f->q, &lease, true, result, NULL), 0);
    /* the same lease cannot finish twice, nor renew */
    assert_int_equal(cap_queue_finish(f->q, &lease, true, result, NULL), CAP_ESTATE);
    assert_int_equal(cap_queue_finish(f->q, &lease, false, NULL, "late"), CAP_ESTATE);
    assert_int_equal(cap_queue_renew(f->q, &lease, 0.5), CAP_ESTATE);
    json_decref(result);

    assert_int_equal(cap_queue_get(f->q, id, &job), 0);
    assert_int_equal(job.state, CAP_JOB_READY);
    assert_true(job.progress == 1.0);
    assert_string_equal(job.owner, "");
    assert_non_null(json_object_get(job.result, "transmux"));
    cap_job_deinit(&job);

    struct drained d = {.refuse_after = -1};
    assert_int_equal(drain(f->q, &d), 2);
    char expect[128];
    snprintf(expect, sizeof(expect), "Started:%s", id);
    assert_string_equal(d.items[0], expect);
    snprintf(expect, sizeof(expect), "Completed:%s", id);
    assert_string_equal(d.items[1], expect);
    /* drained means acknowledged: nothing comes back */
    assert_int_equal(drain(f->q, &d), 0);
}

static void test_a_lapsed_lease_is_reclaimed_and_the_late_finisher_discarded(void **state)
{
    struct fixture *f = *state;
    char id[CAP_JOB_ID_MAX];
    enqueue(f->q, "transmux", NULL, id);
    struct cap_queue *other = open_queue(f);
    struct cap_job a_job, b_job;
    struct cap_job_lease a, b;
    cap_job_init(&a_job);
    cap_job_init(&b_job);
    assert_int_equal(cap_queue_claim(f->q, "dies", 0, &a_job, &a), 1);
    /* still leased: nobody else gets it */
    atomic_fetch_add(&f->now_ms, VISIBILITY_MS - 1);
    assert_int_equal(cap_queue_claim(other, "rescuer", 0, &b_job, &b), 0);
    atomic_fetch_add(&f->now_ms, 2);
    assert_int_equal(cap_queue_claim(other, "rescuer", 0, &b_job, &b), 1);
    assert_string_equal(b_job.id, id);
    assert_int_equal(b.attempt, 2);
    assert_string_not_equal(a.token, b.token);

    /* the first holder comes back: its renewal and its result are refused */
    assert_int_equal(cap_queue_renew(f->q, &a, 0.9), CAP_ESTATE);
    json_t *late = json_pack("{s:s}", "from", "dies");
    assert_int_equal(cap_queue_finish(f->q, &a, true, late, NULL), CAP_ESTATE);
    json_decref(late);
    json_t *good = json_pack("{s:s}", "from", "rescuer");
    assert_int_equal(cap_queue_finish(other, &b, true, good, NULL), 0);
    json_decref(good);

    assert_int_equal(cap_queue_get(f->q, id, &a_job), 0);
    assert_int_equal(a_job.state, CAP_JOB_READY);
    assert_int_equal(a_job.attempts, 2);
    assert_string_equal(json_string_value(json_object_get(a_job.result, "from")), "rescuer");
    struct drained d = {.refuse_after = -1};
    drain(f->q, &d);
    int completed = 0;
    for (int i = 0; i < d.count; i++)
        completed += strncmp(d.items[i], "Completed:", 10) == 0;
    assert_int_equal(completed, 1);
    cap_job_deinit(&a_job);
    cap_job_deinit(&b_job);
    cap_queue_close(other);
}

static void test_renewal_keeps_the_job_from_being_reclaimed(void **state)
{
    struct fixture *f = *state;
    enqueue(f->q, "compose", NULL, NULL);
    struct cap_job job;
    struct cap_job_lease lease, stolen;
    cap_job_init(&job);
    assert_int_equal(cap_queue_claim(f->q, "w1", 0, &job, &lease), 1);
    for (int i = 0; i < 5; i++) {
        atomic_fetch_add(&f->now_ms, VISIBILITY_MS * 2 / 3);
        assert_int_equal(cap_queue_renew(f->q, &lease, 0.1 * i), 0);
        assert_int_equal(cap_queue_claim(f->q, "thief", 0, &job, &stolen), 0);
    }
    assert_int_equal(cap_queue_get(f->q, lease.job_id, &job), 0);
    assert_true(job.progress > 0.39 && job.progress < 0.41);
    assert_int_equal(job.attempts, 1);
    /* progress went out live, after the Started of the enqueue */
    pthread_mutex_lock(&f->lock);
    assert_string_equal(f->live[0], "Started");
    assert_string_equal(f->live[f->live_count - 1], "Progress");
    pthread_mutex_unlock(&f->lock);
    cap_job_deinit(&job);
}

static void test_a_job_whose_workers_keep_vanishing_fails_after_max_attempts(void **state)
{
    struct fixture *f = *state;
    char id[CAP_JOB_ID_MAX];
    enqueue(f->q, "transmux", NULL, id);
    struct cap_job job;
    struct cap_job_lease lease;
    cap_job_init(&job);
    for (int attempt = 1; attempt <= 3; attempt++) {
        assert_int_equal(cap_queue_claim(f->q, "crashy", 0, &job, &lease), 1);
        assert_int_equal(lease.attempt, attempt);
        atomic_fetch_add(&f->now_ms, VISIBILITY_MS + 1);
    }
    assert_int_equal(cap_queue_claim(f->q, "next", 0, &job, &lease), 0);
    assert_int_equal(cap_queue_get(f->q, id, &job), 0);
    assert_int_equal(job.state, CAP_JOB_FAILED);
    assert_non_null(strstr(job.error, "gave up after 3 attempts"));
    struct drained d = {.refuse_after = -1};
    drain(f->q, &d);
    char expect[128];
    snprintf(expect, sizeof(expect), "Failed:%s", id);
    assert_int_equal(d.count, 2);
    assert_string_equal(d.items[1], expect);
    cap_job_deinit(&job);
}

static void test_a_failed_job_keeps_its_error_and_fires_failed(void **state)
{
    struct fixture *f = *state;
    char id[CAP_JOB_ID_MAX];
    enqueue(f->q, "export", "rec9", id);
    struct cap_job job;
    struct cap_job_lease lease;
    cap_job_init(&job);
    assert_int_equal(cap_queue_claim(f->q, "w", 0, &job, &lease), 1);
    assert_int_equal(cap_queue_finish(f->q, &lease, false, NULL, "no recording at 'rooms/r/rec'"),
                     0);
    assert_int_equal(cap_queue_get(f->q, id, &job), 0);
    assert_int_equal(job.state, CAP_JOB_FAILED);
    assert_string_equal(job.error, "no recording at 'rooms/r/rec'");
    assert_null(job.result);
    json_t *view = cap_job_to_json(&job);
    assert_string_equal(json_string_value(json_object_get(view, "status")), "failed");
    assert_string_equal(json_string_value(json_object_get(view, "recording_id")), "rec9");
    json_decref(view);
    cap_job_deinit(&job);
}

static void test_jobs_are_claimed_oldest_first_and_latest_is_per_recording_and_kind(void **state)
{
    struct fixture *f = *state;
    char ids[3][CAP_JOB_ID_MAX];
    enqueue(f->q, "transmux", "recA", ids[0]);
    atomic_fetch_add(&f->now_ms, 1);
    enqueue(f->q, "export", "recA", ids[1]);
    atomic_fetch_add(&f->now_ms, 1);
    enqueue(f->q, "transmux", "recA", ids[2]);
    struct cap_job job;
    struct cap_job_lease lease;
    cap_job_init(&job);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cap_queue_claim(f->q, "w", 0, &job, &lease), 1);
        assert_string_equal(job.id, ids[i]);
    }
    assert_int_equal(cap_queue_latest(f->q, "recA", "transmux", &job), 0);
    assert_string_equal(job.id, ids[2]);
    assert_int_equal(cap_queue_latest(f->q, "recA", "export", &job), 0);
    assert_string_equal(job.id, ids[1]);
    assert_int_equal(cap_queue_latest(f->q, "recA", NULL, &job), 0);
    assert_string_equal(job.id, ids[2]);
    assert_int_equal(cap_queue_latest(f->q, "recB", "export", &job), CAP_ENOENT);
    assert_int_equal(cap_queue_get(f->q, "job_nope", &job), CAP_ENOENT);
    cap_job_deinit(&job);
}

static void test_bad_jobs_are_refused(void **state)
{
    struct fixture *f = *state;
    struct cap_job job;
    cap_job_init(&job);
    strcpy(job.kind, "explode");
    job.params = json_object();
    assert_int_equal(cap_queue_enqueue(f->q, &job), CAP_EINVAL);
    strcpy(job.kind, "transmux");
    json_decref(job.params);
    job.params = json_array();
    assert_int_equal(cap_queue_enqueue(f->q, &job), CAP_EINVAL);
    cap_job_deinit(&job);
    struct cap_queue *q = NULL;
    char why[256] = "";
    struct cap_queue_config cfg = {0};
    assert_int_equal(cap_queue_open(&q, "amqp://x", &cfg, why, sizeof(why)), CAP_EINVAL);
    assert_non_null(strstr(why, "redis://"));
    assert_int_equal(cap_queue_open(&q, "redis://", &cfg, why, sizeof(why)), CAP_EINVAL);
    assert_int_equal(cap_queue_open(&q, "redis://host:99999", &cfg, why, sizeof(why)), CAP_EINVAL);
    assert_int_equal(
        cap_queue_open(&q, "sqlite:/nonexistent-dir/x/jobs.db", &cfg, why, sizeof(why)), CAP_EIO);
}

static void test_an_event_the_consumer_refuses_stays_for_the_next_drain(void **state)
{
    struct fixture *f = *state;
    enqueue(f->q, "transmux", NULL, NULL);
    enqueue(f->q, "transmux", NULL, NULL);
    struct drained d = {.refuse_after = 1};
    assert_int_equal(cap_queue_drain_events(f->q, "test", 0, on_durable, &d), 1);
    d.refuse_after = -1;
    assert_int_equal(drain(f->q, &d), 1);
    assert_int_equal(d.count, 2);
    assert_string_not_equal(d.items[0], d.items[1]);
}

/* ---- many handles, many threads ---- */

#define CONCURRENT_JOBS 60
#define CONCURRENT_THREADS 4

struct racer {
    struct fixture *f;
    int index;
    int finished;
    int errors; /* checked by the main thread: cmocka's asserts belong there */
};

static void *race(void *arg)
{
    struct racer *r = arg;
    struct cap_queue *q = open_queue(r->f);
    char name[16];
    snprintf(name, sizeof(name), "racer-%d", r->index);
    for (;;) {
        struct cap_job job;
        struct cap_job_lease lease;
        cap_job_init(&job);
        int rc = cap_queue_claim(q, name, 0, &job, &lease);
        if (rc < 0)
            r->errors++;
        if (rc <= 0) {
            cap_job_deinit(&job);
            break;
        }
        json_t *result = json_pack("{s:s}", "by", name);
        if (cap_queue_finish(q, &lease, true, result, NULL) == 0)
            r->finished++;
        else
            r->errors++;
        json_decref(result);
        cap_job_deinit(&job);
    }
    cap_queue_close(q);
    return NULL;
}

static void test_threads_with_their_own_handles_claim_every_job_exactly_once(void **state)
{
    struct fixture *f = *state;
    char ids[CONCURRENT_JOBS][CAP_JOB_ID_MAX];
    for (int i = 0; i < CONCURRENT_JOBS; i++)
        enqueue(f->q, "transmux", NULL, ids[i]);
    pthread_t threads[CONCURRENT_THREADS];
    struct racer racers[CONCURRENT_THREADS];
    for (int i = 0; i < CONCURRENT_THREADS; i++) {
        racers[i] = (struct racer){.f = f, .index = i};
        assert_int_equal(pthread_create(&threads[i], NULL, race, &racers[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < CONCURRENT_THREADS; i++) {
        pthread_join(threads[i], NULL);
        total += racers[i].finished;
        assert_int_equal(racers[i].errors, 0);
    }
    assert_int_equal(total, CONCURRENT_JOBS);
    struct cap_job job;
    cap_job_init(&job);
    for (int i = 0; i < CONCURRENT_JOBS; i++) {
        assert_int_equal(cap_queue_get(f->q, ids[i], &job), 0);
        assert_int_equal(job.state, CAP_JOB_READY);
        assert_int_equal(job.attempts, 1);
    }
    cap_job_deinit(&job);
    struct drained d = {.refuse_after = -1};
    int completed = 0, n;
    while ((n = cap_queue_drain_events(f->q, "test", 0, on_durable, &d)) > 0) {
        for (int i = 0; i < d.count; i++)
            completed += strncmp(d.items[i], "Completed:", 10) == 0;
        d.count = 0;
    }
    assert_int_equal(completed, CONCURRENT_JOBS);
}

/* ---- the same semantics on a real redis-server (skipped when there is none) ---- */

struct redis_fixture {
    pid_t pid;
    char url[64];
    char dir[64];
};

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int redis_setup(void **state)
{
    if (access("/usr/bin/redis-server", X_OK) != 0) {
        *state = NULL;
        return 0;
    }
    struct redis_fixture *r = calloc(1, sizeof(*r));
    snprintf(r->dir, sizeof(r->dir), "/tmp/capstan-test-redis-XXXXXX");
    assert_non_null(mkdtemp(r->dir));
    int port = free_port();
    assert_true(port > 0);
    snprintf(r->url, sizeof(r->url), "redis://127.0.0.1:%d", port);
    r->pid = fork();
    if (r->pid == 0) {
        char port_text[16];
        snprintf(port_text, sizeof(port_text), "%d", port);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execl("/usr/bin/redis-server", "redis-server", "--port", port_text, "--bind", "127.0.0.1",
              "--save", "", "--appendonly", "no", "--dir", r->dir, (char *)NULL);
        _exit(127);
    }
    /* Wait until it answers: an open with a short retry loop. */
    struct cap_queue *q = NULL;
    char why[256];
    struct cap_queue_config cfg = {0};
    for (int i = 0; i < 200 && !q; i++) {
        if (cap_queue_open(&q, r->url, &cfg, why, sizeof(why)) != 0)
            usleep(20000);
    }
    assert_non_null(q);
    cap_queue_close(q);
    *state = r;
    return 0;
}

static int redis_teardown(void **state)
{
    struct redis_fixture *r = *state;
    if (!r)
        return 0;
    kill(r->pid, SIGTERM);
    waitpid(r->pid, NULL, 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", r->dir);
    assert_int_equal(system(cmd), 0);
    free(r);
    return 0;
}

#define REDIS_VISIBILITY_MS 300

static struct cap_queue *open_redis(struct redis_fixture *r, int max_attempts)
{
    struct cap_queue_config cfg = {
        .node = 7, .visibility_ms = REDIS_VISIBILITY_MS, .max_attempts = max_attempts};
    struct cap_queue *q = NULL;
    char why[256] = "";
    if (cap_queue_open(&q, r->url, &cfg, why, sizeof(why)) != 0)
        fail_msg("open: %s", why);
    return q;
}

/* Sleeps past the visibility timeout: Redis measures idle time with its own clock. */
static void past_the_lease(void)
{
    usleep((REDIS_VISIBILITY_MS + 150) * 1000);
}

static void test_redis_reclaims_a_lapsed_lease_and_discards_the_late_finisher(void **state)
{
    struct redis_fixture *r = *state;
    if (!r)
        skip();
    struct cap_queue *a = open_redis(r, 3), *b = open_redis(r, 3);
    char id[CAP_JOB_ID_MAX];
    enqueue(a, "transmux", "recR", id);
    struct cap_job job;
    struct cap_job_lease la, lb;
    cap_job_init(&job);
    assert_int_equal(cap_queue_claim(a, "a", 0, &job, &la), 1);
    assert_string_equal(job.id, id);
    assert_int_equal(cap_queue_claim(b, "b", 0, &job, &lb), 0);
    /* renewing keeps it */
    for (int i = 0; i < 3; i++) {
        usleep(REDIS_VISIBILITY_MS * 2 / 3 * 1000);
        assert_int_equal(cap_queue_renew(a, &la, 0.25 * i), 0);
        assert_int_equal(cap_queue_claim(b, "b", 0, &job, &lb), 0);
    }
    past_the_lease();
    assert_int_equal(cap_queue_claim(b, "b", 0, &job, &lb), 1);
    assert_string_equal(job.id, id);
    assert_int_equal(lb.attempt, 2);
    assert_int_equal(cap_queue_renew(a, &la, 0.9), CAP_ESTATE);
    json_t *res = json_pack("{s:s}", "by", "a");
    assert_int_equal(cap_queue_finish(a, &la, true, res, NULL), CAP_ESTATE);
    json_decref(res);
    res = json_pack("{s:s}", "by", "b");
    assert_int_equal(cap_queue_finish(b, &lb, true, res, NULL), 0);
    assert_int_equal(cap_queue_finish(b, &lb, true, res, NULL), CAP_ESTATE);
    json_decref(res);
    assert_int_equal(cap_queue_get(a, id, &job), 0);
    assert_int_equal(job.state, CAP_JOB_READY);
    assert_int_equal(job.attempts, 2);
    assert_string_equal(json_string_value(json_object_get(job.result, "by")), "b");
    assert_int_equal(cap_queue_latest(a, "recR", "transmux", &job), 0);
    assert_string_equal(job.id, id);
    /* acknowledged: nobody gets it again, however long we wait */
    past_the_lease();
    assert_int_equal(cap_queue_claim(a, "a", 0, &job, &la), 0);
    struct drained d = {.refuse_after = -1};
    while (cap_queue_drain_events(a, "serve", 0, on_durable, &d) > 0)
        ;
    int started = 0, completed = 0;
    for (int i = 0; i < d.count; i++) {
        started += strncmp(d.items[i], "Started:", 8) == 0;
        completed += strncmp(d.items[i], "Completed:", 10) == 0;
    }
    assert_int_equal(started, 1);
    assert_int_equal(completed, 1);
    assert_int_equal(cap_queue_drain_events(b, "serve", 0, on_durable, &d), 0);
    cap_job_deinit(&job);
    cap_queue_close(a);
    cap_queue_close(b);
}

static void test_redis_gives_a_job_up_after_max_attempts(void **state)
{
    struct redis_fixture *r = *state;
    if (!r)
        skip();
    struct cap_queue *q = open_redis(r, 2);
    char id[CAP_JOB_ID_MAX];
    enqueue(q, "compose", NULL, id);
    struct cap_job job;
    struct cap_job_lease lease;
    cap_job_init(&job);
    for (int attempt = 1; attempt <= 2; attempt++) {
        assert_int_equal(cap_queue_claim(q, "crashy", 0, &job, &lease), 1);
        assert_int_equal(lease.attempt, attempt);
        past_the_lease();
    }
    assert_int_equal(cap_queue_claim(q, "next", 0, &job, &lease), 0);
    assert_int_equal(cap_queue_get(q, id, &job), 0);
    assert_int_equal(job.state, CAP_JOB_FAILED);
    assert_non_null(strstr(job.error, "gave up after 2 attempts"));
    struct drained d = {.refuse_after = -1};
    while (cap_queue_drain_events(q, "serve", 0, on_durable, &d) > 0)
        ;
    char expect[128];
    snprintf(expect, sizeof(expect), "Failed:%s", id);
    assert_string_equal(d.items[d.count - 1], expect);
    cap_job_deinit(&job);
    cap_queue_close(q);
}

static int on_count(void *user, const char *id, const char *body, size_t len)
{
    (void)id;
    (void)body;
    (void)len;
    (*(int *)user)++;
    return 0;
}

static void test_redis_live_events_reach_a_listener(void **state)
{
    struct redis_fixture *r = *state;
    if (!r)
        skip();
    struct cap_queue *listener = open_redis(r, 3), *q = open_redis(r, 3);
    int seen = 0;
    /* the first call subscribes */
    assert_true(cap_queue_listen(listener, 10, on_count, &seen) >= 0);
    enqueue(q, "transmux", NULL, NULL);
    struct cap_job job;
    struct cap_job_lease lease;
    cap_job_init(&job);
    assert_int_equal(cap_queue_claim(q, "w", 0, &job, &lease), 1);
    assert_int_equal(cap_queue_renew(q, &lease, 0.5), 0);
    assert_int_equal(cap_queue_finish(q, &lease, false, NULL, "boom"), 0);
    for (int i = 0; i < 50 && seen < 3; i++)
        assert_true(cap_queue_listen(listener, 100, on_count, &seen) >= 0);
    assert_int_equal(seen, 3); /* Started, Progress, Failed */
    cap_job_deinit(&job);
    cap_queue_close(listener);
    cap_queue_close(q);
}

/* ---- the model ---- */

static void test_job_events_have_the_hookevent_shape(void **state)
{
    (void)state;
    struct cap_job job;
    cap_job_init(&job);
    strcpy(job.id, "job_abc");
    strcpy(job.kind, "transmux");
    json_t *e =
        cap_job_event(&job, 3, 1731132577151, "Failed", json_pack("{s:s}", "error", "boom"));
    assert_string_equal(json_string_value(json_object_get(e, "id")), "evt_job_abc_failed");
    assert_int_equal(json_integer_value(json_object_get(e, "node")), 3);
    assert_int_equal(json_integer_value(json_object_get(e, "ts")), 1731132577151);
    json_t *compose = json_object_get(json_object_get(e, "event"), "Compose");
    assert_string_equal(json_string_value(json_object_get(compose, "app")), "capstan");
    assert_string_equal(json_string_value(json_object_get(compose, "job_id")), "job_abc");
    assert_true(json_is_null(json_object_get(compose, "recording_id")));
    json_t *failed = json_object_get(json_object_get(compose, "event"), "Failed");
    assert_string_equal(json_string_value(json_object_get(failed, "error")), "boom");
    json_decref(e);
}

static void test_storage_keys_are_checked(void **state)
{
    (void)state;
    const char *good[] = {"rooms/r1/rec_1", "a", "rooms/room-1.x/rec:2@b"};
    const char *bad[] = {"",          "/rooms/r", "rooms/../etc", "rooms//r",  "rooms/r/",
                         "rooms/./r", "..",       "rooms/r r",    "rooms/r?x", "rooms\\r"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(cap_job_key_valid(good[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(cap_job_key_valid(bad[i]));
    assert_false(cap_job_key_valid(NULL));
    enum cap_job_state s;
    assert_int_equal(cap_job_state_parse("processing", &s), 0);
    assert_int_equal(s, CAP_JOB_PROCESSING);
    assert_int_equal(cap_job_state_parse("done", &s), CAP_EINVAL);
    char a[CAP_JOB_ID_MAX], b[CAP_JOB_ID_MAX];
    assert_int_equal(cap_job_random_id("job_", a, sizeof(a)), 0);
    assert_int_equal(cap_job_random_id("job_", b, sizeof(b)), 0);
    assert_int_equal(strlen(a), 28);
    assert_string_not_equal(a, b);
    char tiny[8];
    assert_int_equal(cap_job_random_id("job_", tiny, sizeof(tiny)), CAP_ELIMIT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_claim_hands_a_queued_job_out_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_finish_is_compare_and_set_on_the_attempt_token, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_a_lapsed_lease_is_reclaimed_and_the_late_finisher_discarded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_renewal_keeps_the_job_from_being_reclaimed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_a_job_whose_workers_keep_vanishing_fails_after_max_attempts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_failed_job_keeps_its_error_and_fires_failed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_jobs_are_claimed_oldest_first_and_latest_is_per_recording_and_kind, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_bad_jobs_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_event_the_consumer_refuses_stays_for_the_next_drain,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_threads_with_their_own_handles_claim_every_job_exactly_once, setup, teardown),
        cmocka_unit_test(test_job_events_have_the_hookevent_shape),
        cmocka_unit_test_setup_teardown(
            test_redis_reclaims_a_lapsed_lease_and_discards_the_late_finisher, redis_setup,
            redis_teardown),
        cmocka_unit_test_setup_teardown(test_redis_gives_a_job_up_after_max_attempts, redis_setup,
                                        redis_teardown),
        cmocka_unit_test_setup_teardown(test_redis_live_events_reach_a_listener, redis_setup,
                                        redis_teardown),
        cmocka_unit_test(test_storage_keys_are_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
