/* The SQLite job queue (queue.h): one jobs table whose lease columns (attempt token, owner,
 * lease end) make claims, renewals and the terminal write compare-and-sets, and a
 * job_events table of durable HookEvents written in the same transactions. Every process
 * and thread opens its own handle on the same file (WAL, busy timeout). */
#include "jobs/queue.h"

#include "capstan/error.h"
#include "util/clock.h"
#include "util/log.h"
#include "store/sqlite_error.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUSY_TIMEOUT_MS 10000
/* A waiting claim or drain wakes at once for what this process stores; it looks again at
 * least this often for what time or another process changes (an expired lease). */
#define RECHECK_MS 1000
#define DRAIN_BATCH 64

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS jobs ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE,"
    "  kind TEXT NOT NULL,"
    "  state TEXT NOT NULL,"
    "  progress REAL NOT NULL DEFAULT 0,"
    "  params TEXT NOT NULL,"
    "  result TEXT,"
    "  error TEXT,"
    "  recording_id TEXT,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  attempt TEXT,"
    "  owner TEXT,"
    "  lease_until_ms INTEGER,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS jobs_open ON jobs (seq) WHERE state IN ('queued', 'processing');"
    "CREATE INDEX IF NOT EXISTS jobs_recording ON jobs (recording_id, kind, seq);"
    "CREATE TABLE IF NOT EXISTS job_events ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE,"
    "  body TEXT NOT NULL);";

#define JOB_COLUMNS                                                                                \
    "id, kind, state, progress, params, result, error, recording_id, attempts, owner, "            \
    "created_ms, updated_ms"

enum statement {
    STMT_BEGIN,
    STMT_COMMIT,
    STMT_ROLLBACK,
    STMT_INSERT_JOB,
    STMT_GET_JOB,
    STMT_LATEST,
    STMT_LATEST_ANY,
    STMT_NEXT_OPEN,
    STMT_TAKE,
    STMT_GIVE_UP,
    STMT_RENEW,
    STMT_FINISH,
    STMT_INSERT_EVENT,
    STMT_EVENTS,
    STMT_DELETE_EVENT,
    STMT_COUNT_,
};

static const char *const statement_sql[STMT_COUNT_] = {
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_INSERT_JOB] =
        "INSERT INTO jobs (id, kind, state, params, recording_id, created_ms, updated_ms)"
        " VALUES (?1, ?2, 'queued', ?3, ?4, ?5, ?5)",
    [STMT_GET_JOB] = "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?1",
    [STMT_LATEST] = "SELECT " JOB_COLUMNS " FROM jobs WHERE recording_id = ?1 AND kind = ?2"
                    " ORDER BY seq DESC LIMIT 1",
    [STMT_LATEST_ANY] =
        "SELECT " JOB_COLUMNS " FROM jobs WHERE recording_id = ?1 ORDER BY seq DESC LIMIT 1",
    [STMT_NEXT_OPEN] = "SELECT id, attempts FROM jobs WHERE state IN ('queued', 'processing')"
                       " AND (state = 'queued' OR lease_until_ms <= ?1) ORDER BY seq LIMIT 1",
    [STMT_TAKE] =
        "UPDATE jobs SET state = 'processing', attempts = attempts + 1, attempt = ?2, owner = ?3,"
        " lease_until_ms = ?4, updated_ms = ?5, progress = 0 WHERE id = ?1",
    [STMT_GIVE_UP] = "UPDATE jobs SET state = 'failed', error = ?2, attempt = NULL, owner = NULL,"
                     " lease_until_ms = NULL, updated_ms = ?3 WHERE id = ?1",
    [STMT_RENEW] =
        "UPDATE jobs SET lease_until_ms = ?3, progress = coalesce(?4, progress), updated_ms = ?5"
        " WHERE id = ?1 AND attempt = ?2 AND state = 'processing'",
    [STMT_FINISH] = "UPDATE jobs SET state = ?3, result = ?4, error = ?5,"
                    " progress = CASE WHEN ?3 = 'ready' THEN 1 ELSE progress END,"
                    " owner = NULL, lease_until_ms = NULL, updated_ms = ?6"
                    " WHERE id = ?1 AND attempt = ?2 AND state = 'processing'",
    [STMT_INSERT_EVENT] = "INSERT OR IGNORE INTO job_events (id, body) VALUES (?1, ?2)",
    [STMT_EVENTS] = "SELECT seq, id, body FROM job_events ORDER BY seq LIMIT ?1",
    [STMT_DELETE_EVENT] = "DELETE FROM job_events WHERE seq = ?1",
};

struct sqlite_queue {
    struct cap_queue base;
    pthread_mutex_t lock; /* every use of db */
    pthread_cond_t changed; /* with lock: generation moved */
    uint64_t generation;    /* bumped with every stored event: a job queued, ended, given up */
    sqlite3 *db;
    sqlite3_stmt *stmt[STMT_COUNT_];
};

static int db_failure(struct sqlite_queue *sq, int rc, const char *what)
{
    CAP_ERROR(NULL, "job queue: %s: %s", what, sqlite3_errmsg(sq->db));
    return cap_sqlite_error(rc);
}

static sqlite3_stmt *stmt(struct sqlite_queue *sq, enum statement which)
{
    sqlite3_stmt *s = sq->stmt[which];
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

static int exec_simple(struct sqlite_queue *sq, enum statement which)
{
    int rc = sqlite3_step(stmt(sq, which));
    sqlite3_reset(sq->stmt[which]);
    return rc == SQLITE_DONE ? 0 : db_failure(sq, rc, statement_sql[which]);
}

static int step_done(struct sqlite_queue *sq, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : db_failure(sq, rc, what);
}

static void bind_text(sqlite3_stmt *s, int i, const char *text)
{
    if (text)
        sqlite3_bind_text(s, i, text, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, i);
}

static json_t *parse_column(sqlite3_stmt *s, int col)
{
    const char *text = (const char *)sqlite3_column_text(s, col);
    if (!text)
        return NULL;
    return json_loads(text, JSON_DECODE_ANY, NULL);
}

static void copy_column(sqlite3_stmt *s, int col, char *out, size_t size)
{
    const char *text = (const char *)sqlite3_column_text(s, col);
    snprintf(out, size, "%s", text ? text : "");
}

/* Reads a row of JOB_COLUMNS into out (replacing what it held). */
static void read_job(sqlite3_stmt *s, struct cap_job *out)
{
    cap_job_deinit(out);
    cap_job_init(out);
    copy_column(s, 0, out->id, sizeof(out->id));
    copy_column(s, 1, out->kind, sizeof(out->kind));
    const char *state = (const char *)sqlite3_column_text(s, 2);
    if (cap_job_state_parse(state, &out->state) != 0)
        out->state = CAP_JOB_FAILED;
    out->progress = sqlite3_column_double(s, 3);
    out->params = parse_column(s, 4);
    out->result = parse_column(s, 5);
    copy_column(s, 6, out->error, sizeof(out->error));
    copy_column(s, 7, out->recording_id, sizeof(out->recording_id));
    out->attempts = sqlite3_column_int(s, 8);
    copy_column(s, 9, out->owner, sizeof(out->owner));
    out->created_ms = sqlite3_column_int64(s, 10);
    out->updated_ms = sqlite3_column_int64(s, 11);
}

/* Runs a statement bound with a job id (and maybe more) that returns one job row. */
static int fetch_job(struct sqlite_queue *sq, sqlite3_stmt *s, struct cap_job *out)
{
    int rc = sqlite3_step(s);
    int err = 0;
    if (rc == SQLITE_ROW)
        read_job(s, out);
    else if (rc == SQLITE_DONE)
        err = CAP_ENOENT;
    else
        err = db_failure(sq, rc, "reading a job");
    sqlite3_reset(s);
    return err;
}

static void publish_live(struct sqlite_queue *sq, json_t *event)
{
    const struct cap_queue_config *cfg = &sq->base.cfg;
    if (!cfg->live || !event)
        return;
    size_t len;
    char *text = cap_job_dump(event, &len);
    if (text)
        cfg->live(cfg->live_user, json_string_value(json_object_get(event, "id")), text, len);
    free(text);
}

/* Stores a durable event inside the caller's transaction. */
static int store_event(struct sqlite_queue *sq, json_t *event)
{
    if (!event)
        return CAP_ENOMEM;
    size_t len;
    char *text = cap_job_dump(event, &len);
    if (!text)
        return CAP_ENOMEM;
    sqlite3_stmt *s = stmt(sq, STMT_INSERT_EVENT);
    bind_text(s, 1, json_string_value(json_object_get(event, "id")));
    sqlite3_bind_text(s, 2, text, (int)len, SQLITE_TRANSIENT);
    int err = step_done(sq, s, "storing a job event");
    free(text);
    if (!err) { /* waiters wake on the lock, after the caller's commit or rollback */
        sq->generation++;
        pthread_cond_broadcast(&sq->changed);
    }
    return err;
}

static void rollback(struct sqlite_queue *sq)
{
    exec_simple(sq, STMT_ROLLBACK);
}

/* Ends a transaction: commits it if err is 0, else (or if the commit fails) rolls it back. */
static int finish_transaction(struct sqlite_queue *sq, int err)
{
    if (!err)
        err = exec_simple(sq, STMT_COMMIT);
    if (err)
        rollback(sq);
    return err;
}

static int sq_enqueue(struct cap_queue *q, struct cap_job *job)
{
    struct sqlite_queue *sq = (struct sqlite_queue *)q;
    size_t len;
    char *params;
    json_t *started;
    int err = cap_queue_prepare_job(q, job, &params, &len, &started);
    if (err)
        return err;
    pthread_mutex_lock(&sq->lock);
    err = exec_simple(sq, STMT_BEGIN);
    if (!err) {
        sqlite3_stmt *s = stmt(sq, STMT_INSERT_JOB);
        bind_text(s, 1, job->id);
        bind_text(s, 2, job->kind);
        sqlite3_bind_text(s, 3, params, (int)len, SQLITE_TRANSIENT);
        bind_text(s, 4, job->recording_id[0] ? job->recording_id : NULL);
        sqlite3_bind_int64(s, 5, job->created_ms);
        err = step_done(sq, s, "storing a job");
        if (!err)
            err = store_event(sq, started);
        err = finish_transaction(sq, err);
    }
    pthread_mutex_unlock(&sq->lock);
    if (!err)
        publish_live(sq, started);
    json_decref(started);
    free(params);
    return err;
}

static int sq_get(struct cap_queue *q, const char *job_id, struct cap_job *out)
{
    struct sqlite_queue *sq = (struct sqlite_queue *)q;
    pthread_mutex_lock(&sq->lock);
    sqlite3_stmt *s = stmt(sq, STMT_GET_JOB);
    bind_text(s, 1, job_id);
    int err = fetch_job(sq, s, out);
    pthread_mutex_unlock(&sq->lock);
    return err;
}

static int sq_latest(struct cap_queue *q, const char *recording_id, const char *kind,
                     struct cap_job *out)
{
    struct sqlite_queue *sq = (struct sqlite_queue *)q;
    pthread_mutex_lock(&sq->lock);
    sqlite3_stmt *s = stmt(sq, kind ? STMT_LATEST : STMT_LATEST_ANY);
    bind_text(s, 1, recording_id);
    if (kind)
        bind_text(s, 2, kind);
    int err = fetch_job(sq, s, out);
    pthread_mutex_unlock(&sq->lock);
    return err;
}

/* One claim attempt in a transaction: 1 claimed, 0 nothing open, or CAP_E*. A job that
 * used up its attempts is failed here and the next one looked at. */
static int try_claim(struct sqlite_queue *sq, const char *worker, struct cap_job *out,
                     struct cap_job_lease *lease, json_t **gave_up)
{
    struct cap_queue *q = &sq->base;
    int64_t now = cap_queue_now_ms(q);
    int err = exec_simple(sq, STMT_BEGIN);
    if (err)
        return err;
    for (;;) {
        sqlite3_stmt *s = stmt(sq, STMT_NEXT_OPEN);
        sqlite3_bind_int64(s, 1, now);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE) {
            sqlite3_reset(s);
            err = exec_simple(sq, STMT_COMMIT);
            return err ? err : 0;
        }
        if (rc != SQLITE_ROW) {
            err = db_failure(sq, rc, "looking for a job");
            break;
        }
        char id[CAP_JOB_ID_MAX];
        copy_column(s, 0, id, sizeof(id));
        int attempts = sqlite3_column_int(s, 1);
        sqlite3_reset(s);
        if (attempts >= cap_queue_max_attempts(q)) {
            char why[CAP_JOB_ERROR_MAX];
            snprintf(why, sizeof(why),
                     "gave up after %d attempts: every worker that took it stopped "
                     "renewing its lease",
                     attempts);
            s = stmt(sq, STMT_GIVE_UP);
            bind_text(s, 1, id);
            bind_text(s, 2, why);
            sqlite3_bind_int64(s, 3, now);
            if ((err = step_done(sq, s, "failing a job")))
                break;
            s = stmt(sq, STMT_GET_JOB);
            bind_text(s, 1, id);
            if ((err = fetch_job(sq, s, out)))
                break;
            json_t *event =
                cap_job_event(out, q->cfg.node, now, "Failed", json_pack("{s:s}", "error", why));
            if ((err = store_event(sq, event))) {
                json_decref(event);
                break;
            }
            json_decref(*gave_up);
            *gave_up = event; /* published once committed */
            continue;
        }
        if ((err = cap_job_random_id("att_", lease->token, sizeof(lease->token))))
            break;
        s = stmt(sq, STMT_TAKE);
        bind_text(s, 1, id);
        bind_text(s, 2, lease->token);
        bind_text(s, 3, worker);
        sqlite3_bind_int64(s, 4, now + cap_queue_visibility_ms(q));
        sqlite3_bind_int64(s, 5, now);
        if ((err = step_done(sq, s, "claiming a job")))
            break;
        s = stmt(sq, STMT_GET_JOB);
        bind_text(s, 1, id);
        if ((err = fetch_job(sq, s, out)))
            break;
        if ((err = exec_simple(sq, STMT_COMMIT)))
            break;
        cap_job_lease_for(lease, out);
        snprintf(lease->worker, sizeof(lease->worker), "%s", worker);
        lease->entry[0] = '\0';
        lease->attempt = out->attempts;
        return 1;
    }
    rollback(sq);
    return err;
}

/* Waits (without the lock held) until the generation is no longer `seen`, or ms pass. */
static void wait_change(struct sqlite_queue *sq, uint64_t seen, int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&sq->lock);
    while (sq->generation == seen)
        if (pthread_cond_timedwait(&sq->changed, &sq->lock, &until) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&sq->lock);
}

static int sq_claim(struct cap_queue *q, const char *worker, int wait_ms, struct cap_job *out,
                    struct cap_job_lease *lease)
{
    struct sqlite_queue *sq = (struct sqlite_queue *)q;
    int64_t deadline = cap_clock_mono_ns() + (int64_t)wait_ms * CAP_NS_PER_MS;
    for (;;) {
        json_t *gave_up = NULL;
        pthread_mutex_lock(&sq->lock);
        int rc = try_claim(sq, worker, out, lease, &gave_up);
        uint64_t seen = sq->generation;
        pthread_mutex_unlock(&sq->lock);
        if (gave_up && rc >= 0)
            publish_live(sq, gave_up);
        json_decref(gave_up);
        if (rc != 0 && rc != CAP_EAGAIN)
            return rc;
        int64_t left = (deadline - cap_clock_mono_ns()) / CAP_NS_PER_MS;
        if (left <= 0)
            return 0;
        wait_change(sq, seen, left < RECHECK_MS ? left : RECHECK_MS);
    }
}

static json_t *progress_event(const struct cap_queue *q, const struct cap_job_lease *lease,
                              double progress, int64_t now)
{
    struct cap_job view;
    cap_job_init(&view);
    snprintf(view.id, sizeof(view.id), "%s", lease->job_id);
    snprintf(view.kind, sizeof(view.kind), "%s", lease->kind);
    snprintf(view.recording_id, sizeof(view.recording_id), "%s", lease->recording_id);
    json_t *body = json_pack("{s:s, s:f, s:i, s:s}", "status", "processing", "progress",
                             progress < 0 ? 0.0 : progress, "attempt", lease->attempt, "worker",
                             lease->worker);
    return cap_job_event(&view, q->cfg.node, now, "Progress", body);
}

static int sq_renew(struct cap_queue *q, const struct cap_job_lease *lease, double progress)
{
    struct sqlite_queue *sq = (struct sqlite_queue *)q;
    int64_t now = cap_queue_now_ms(q);
    pthread_mutex_lock(&sq->lock);
    sqlite3_stmt *s = stmt(sq, STMT_RENEW);
    bind_text(s, 1, lease->job_id);
    bind_text(s, 2, lease->token);
    sqlite3_bind_int64(s, 3, now + cap_queue_visibility_ms(q));
    if (progress >= 0)
        sqlite3_bind_double(s, 4, progress > 1 ? 1 : progress);
    sqlite3_bind_int64(s, 5, now);
    int err = step_done(sq, s, "renewing a lease");
    if (!err && sqlite3_changes(sq->db) == 0)
        err = CAP_ESTATE;
    pthread_mutex_unlock(&sq->lock);
    if (!err && progress >= 0) {
        json_t *event = progress_event(q, lease, progress, now);
        publish_live(sq, event);
        json_decref(event);
    }
    return err;
}

static int sq_finish(struct cap_queue *q, const struct cap_job_lease *lease, bool ok,
                     json_t *result, const char *error)
{
    struct sqlite_queue *sq = (struct sqlite_queue *)q;
    int64_t now = cap_queue_now_ms(q);
    char *result_text = NULL;
    size_t result_len = 0;
    if (ok && result && !(result_text = cap_job_dump(result, &result_len)))
        return CAP_ENOMEM;
    if (result_len > CAP_JOB_MAX_JSON) {
        free(result_text);
        return CAP_ELIMIT;
    }
    struct cap_job job;
    cap_job_init(&job);
    json_t *event = NULL;
    pthread_mutex_lock(&sq->lock);
    int err = exec_simple(sq, STMT_BEGIN);
    if (!err) {
        sqlite3_stmt *s = stmt(sq, STMT_FINISH);
        bind_text(s, 1, lease->job_id);
        bind_text(s, 2, lease->token);
        bind_text(s, 3, ok ? "ready" : "failed");
        if (result_text)
            sqlite3_bind_text(s, 4, result_text, (int)result_len, SQLITE_TRANSIENT);
        bind_text(s, 5, ok ? NULL : (error && *error ? error : "failed"));
        sqlite3_bind_int64(s, 6, now);
        err = step_done(sq, s, "finishing a job");
        if (!err && sqlite3_changes(sq->db) == 0)
            err = CAP_ESTATE;
        if (!err) {
            s = stmt(sq, STMT_GET_JOB);
            bind_text(s, 1, lease->job_id);
            err = fetch_job(sq, s, &job);
        }
        if (!err) {
            json_t *body = ok ? json_deep_copy(result ? result : json_object())
                              : json_pack("{s:s}", "error", job.error);
            event = cap_job_event(&job, q->cfg.node, now, ok ? "Completed" : "Failed", body);
            err = store_event(sq, event);
        }
        err = finish_transaction(sq, err);
    }
    pthread_mutex_unlock(&sq->lock);
    if (!err)
        publish_live(sq, event);
    json_decref(event);
    cap_job_deinit(&job);
    free(result_text);
    return err;
}

static int sq_drain_events(struct cap_queue *q, const char *consumer, int wait_ms,
                           cap_queue_event_fn fn, void *user)
{
    (void)consumer;
    struct sqlite_queue *sq = (struct sqlite_queue *)q;
    int64_t deadline = cap_clock_mono_ns() + (int64_t)wait_ms * CAP_NS_PER_MS;
    for (;;) {
        int taken = 0, err = 0;
        pthread_mutex_lock(&sq->lock);
        sqlite3_stmt *s = stmt(sq, STMT_EVENTS);
        sqlite3_bind_int(s, 1, DRAIN_BATCH);
        int64_t done[DRAIN_BATCH];
        int rc;
        /* fn runs under the lock: it only writes to the outbox, never back to this queue. */
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            const char *id = (const char *)sqlite3_column_text(s, 1);
            const char *body = (const char *)sqlite3_column_text(s, 2);
            int len = sqlite3_column_bytes(s, 2);
            if (fn(user, id ? id : "", body ? body : "", (size_t)len) != 0)
                break;
            done[taken++] = sqlite3_column_int64(s, 0);
        }
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            err = db_failure(sq, rc, "reading job events");
        sqlite3_reset(s);
        for (int i = 0; i < taken && !err; i++) {
            s = stmt(sq, STMT_DELETE_EVENT);
            sqlite3_bind_int64(s, 1, done[i]);
            err = step_done(sq, s, "acknowledging a job event");
        }
        uint64_t seen = sq->generation;
        pthread_mutex_unlock(&sq->lock);
        if (err)
            return err;
        if (taken)
            return taken;
        int64_t left = (deadline - cap_clock_mono_ns()) / CAP_NS_PER_MS;
        if (left <= 0)
            return 0;
        wait_change(sq, seen, left < RECHECK_MS ? left : RECHECK_MS);
    }
}

static int sq_listen(struct cap_queue *q, int wait_ms, cap_queue_event_fn fn, void *user)
{
    (void)q;
    (void)wait_ms;
    (void)fn;
    (void)user;
    return CAP_EUNSUPPORTED;
}

static void sq_close(struct cap_queue *q)
{
    struct sqlite_queue *sq = (struct sqlite_queue *)q;
    for (int i = 0; i < STMT_COUNT_; i++)
        sqlite3_finalize(sq->stmt[i]);
    sqlite3_close(sq->db);
    pthread_cond_destroy(&sq->changed);
    pthread_mutex_destroy(&sq->lock);
    free(sq);
}

static const struct cap_queue_ops sqlite_ops = {
    .name = "sqlite",
    .enqueue = sq_enqueue,
    .get = sq_get,
    .latest = sq_latest,
    .claim = sq_claim,
    .renew = sq_renew,
    .finish = sq_finish,
    .drain_events = sq_drain_events,
    .listen = sq_listen,
    .close = sq_close,
};

int cap_queue_sqlite_open(struct cap_queue **out, const char *path,
                          const struct cap_queue_config *cfg, char *why, size_t why_size)
{
    struct sqlite_queue *sq = calloc(1, sizeof(*sq));
    if (!sq)
        return CAP_ENOMEM;
    sq->base.ops = &sqlite_ops;
    if (cfg)
        sq->base.cfg = *cfg;
    pthread_mutex_init(&sq->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&sq->changed, &attr);
    pthread_condattr_destroy(&attr);
    int rc = sqlite3_open_v2(
        path, &sq->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(why, why_size, "cannot open the job queue %s: %s", path,
                 sq->db ? sqlite3_errmsg(sq->db) : "out of memory");
        sq_close(&sq->base);
        return CAP_EIO;
    }
    sqlite3_busy_timeout(sq->db, BUSY_TIMEOUT_MS);
    char *msg = NULL;
    rc =
        sqlite3_exec(sq->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(sq->db, schema_sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        snprintf(why, why_size, "job queue %s: %s", path, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        sq_close(&sq->base);
        return CAP_EIO;
    }
    for (int i = 0; i < STMT_COUNT_; i++) {
        rc = sqlite3_prepare_v3(sq->db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                &sq->stmt[i], NULL);
        if (rc != SQLITE_OK) {
            snprintf(why, why_size, "job queue %s: %s", path, sqlite3_errmsg(sq->db));
            sq_close(&sq->base);
            return CAP_EIO;
        }
    }
    *out = &sq->base;
    return 0;
}
