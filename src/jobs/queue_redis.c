/* The Redis Streams job queue (queue.h), with hiredis. Keys (one Redis, not Cluster):
 *   capstan:jobs          stream of job entries {job}; consumer group "workers"
 *   capstan:job:{id}      hash: the job's state, progress, request, result, lease token, owner
 *   capstan:events        stream of durable HookEvents {id, body}; consumer group "outbox"
 *   capstan:live          pub/sub channel of every event (SSE)
 *   capstan:latest:{recording}:{kind|*}  the newest job id about a recording
 * A worker takes new entries with XREADGROUP and entries idle longer than the visibility
 * timeout with XAUTOCLAIM (their worker stopped renewing: it died); renewing is an XCLAIM
 * JUSTID that resets the entry's idle time. Every change of a job's state is a Lua script
 * that first compares the attempt token, so it is atomic with its XACK and its event. */
#include "jobs/queue.h"

#include "capstan/error.h"
#include "util/clock.h"
#include "util/log.h"

#include <hiredis/hiredis.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOBS_STREAM "capstan:jobs"
#define JOBS_GROUP "workers"
#define EVENTS_STREAM "capstan:events"
#define EVENTS_GROUP "outbox"
#define LIVE_CHANNEL "capstan:live"
#define JOB_KEY_PREFIX "capstan:job:"
#define LATEST_PREFIX "capstan:latest:"
#define COMMAND_TIMEOUT_MS 10000
#define MAX_BLOCK_MS 1000
#define EVENTS_RECLAIM_MS 30000
#define MAX_ARGS 24
#define KEY_MAX 256

struct redis_queue {
    struct cap_queue base;
    pthread_mutex_t lock; /* every use of ctx */
    redisContext *ctx;
    char host[256];
    int port;
    char user[128], password[256];
    int db;
    bool subscribed;
};

/* ---- scripts: each compares the attempt token before it changes anything ---- */

/* KEYS: job, jobs stream, events stream, latest key, latest-any key.
 * ARGV: id, kind, params, recording_id, now, event id, event body, channel. */
static const char enqueue_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
    "local entry = redis.call('XADD', KEYS[2], '*', 'job', ARGV[1])\n"
    "redis.call('HSET', KEYS[1], 'id', ARGV[1], 'kind', ARGV[2], 'state', 'queued',\n"
    "  'progress', '0', 'params', ARGV[3], 'recording_id', ARGV[4], 'attempts', '0',\n"
    "  'attempt', '', 'owner', '', 'created_ms', ARGV[5], 'updated_ms', ARGV[5],\n"
    "  'entry', entry)\n"
    "redis.call('XADD', KEYS[3], '*', 'id', ARGV[6], 'body', ARGV[7])\n"
    "redis.call('PUBLISH', ARGV[8], ARGV[7])\n"
    "if ARGV[4] ~= '' then\n"
    "  redis.call('SET', KEYS[4], ARGV[1])\n"
    "  redis.call('SET', KEYS[5], ARGV[1])\n"
    "end\n"
    "return 1\n";

/* KEYS: job. ARGV: expected token, new token, worker, now, entry. Returns attempts or 0. */
static const char take_lua[] =
    "local state = redis.call('HGET', KEYS[1], 'state')\n"
    "local cur = redis.call('HGET', KEYS[1], 'attempt') or ''\n"
    "if not state or state == 'ready' or state == 'failed' or cur ~= ARGV[1] then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'state', 'processing', 'attempt', ARGV[2], 'owner', ARGV[3],\n"
    "  'updated_ms', ARGV[4], 'progress', '0', 'entry', ARGV[5])\n"
    "return redis.call('HINCRBY', KEYS[1], 'attempts', 1)\n";

/* KEYS: job, jobs stream, events stream. ARGV: expected token, error, now, group, entry,
 * event id, event body, channel. */
static const char give_up_lua[] =
    "local state = redis.call('HGET', KEYS[1], 'state')\n"
    "local cur = redis.call('HGET', KEYS[1], 'attempt') or ''\n"
    "if not state or state == 'ready' or state == 'failed' or cur ~= ARGV[1] then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'state', 'failed', 'error', ARGV[2], 'owner', '', 'attempt', '',\n"
    "  'updated_ms', ARGV[3])\n"
    "redis.call('XACK', KEYS[2], ARGV[4], ARGV[5])\n"
    "redis.call('XDEL', KEYS[2], ARGV[5])\n"
    "redis.call('XADD', KEYS[3], '*', 'id', ARGV[6], 'body', ARGV[7])\n"
    "redis.call('PUBLISH', ARGV[8], ARGV[7])\n"
    "return 1\n";

/* KEYS: job, jobs stream. ARGV: token, group, worker, entry, progress ('' = unchanged), now,
 * channel, progress event ('' = none). */
static const char renew_lua[] =
    "if redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[1] or\n"
    "   redis.call('HGET', KEYS[1], 'state') ~= 'processing' then return 0 end\n"
    "redis.call('XCLAIM', KEYS[2], ARGV[2], ARGV[3], 0, ARGV[4], 'JUSTID')\n"
    "if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'progress', ARGV[5]) end\n"
    "redis.call('HSET', KEYS[1], 'updated_ms', ARGV[6])\n"
    "if ARGV[8] ~= '' then redis.call('PUBLISH', ARGV[7], ARGV[8]) end\n"
    "return 1\n";

/* KEYS: job, jobs stream, events stream. ARGV: token, group, entry, state, result, error,
 * now, event id, channel, event body. */
static const char finish_lua[] =
    "if redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[1] or\n"
    "   redis.call('HGET', KEYS[1], 'state') ~= 'processing' then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'state', ARGV[4], 'result', ARGV[5], 'error', ARGV[6],\n"
    "  'owner', '', 'updated_ms', ARGV[7])\n"
    "if ARGV[4] == 'ready' then redis.call('HSET', KEYS[1], 'progress', '1') end\n"
    "redis.call('XACK', KEYS[2], ARGV[2], ARGV[3])\n"
    "redis.call('XDEL', KEYS[2], ARGV[3])\n"
    "redis.call('XADD', KEYS[3], '*', 'id', ARGV[8], 'body', ARGV[10])\n"
    "redis.call('PUBLISH', ARGV[9], ARGV[10])\n"
    "return 1\n";

/* ---- commands ---- */

struct args {
    int n;
    const char *v[MAX_ARGS];
    size_t len[MAX_ARGS];
    char numbers[8][24];
    int number_count;
};

static void arg(struct args *a, const char *s)
{
    if (a->n < MAX_ARGS) {
        a->v[a->n] = s;
        a->len[a->n++] = strlen(s);
    }
}

static void arg_bin(struct args *a, const char *s, size_t len)
{
    if (a->n < MAX_ARGS) {
        a->v[a->n] = s;
        a->len[a->n++] = len;
    }
}

static void arg_int(struct args *a, long long v)
{
    if (a->number_count < 8) {
        char *buf = a->numbers[a->number_count++];
        snprintf(buf, sizeof(a->numbers[0]), "%lld", v);
        arg(a, buf);
    }
}

static void set_timeout(redisContext *c, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    redisSetTimeout(c, tv);
}

static void disconnect(struct redis_queue *rq)
{
    if (rq->ctx)
        redisFree(rq->ctx);
    rq->ctx = NULL;
    rq->subscribed = false;
}

static int connect_redis(struct redis_queue *rq, char *why, size_t why_size)
{
    if (rq->ctx && !rq->ctx->err)
        return 0;
    disconnect(rq);
    struct timeval tv = {5, 0};
    rq->ctx = redisConnectWithTimeout(rq->host, rq->port, tv);
    if (!rq->ctx || rq->ctx->err) {
        snprintf(why, why_size, "cannot connect to Redis at %s:%d: %s", rq->host, rq->port,
                 rq->ctx ? rq->ctx->errstr : "out of memory");
        disconnect(rq);
        return CAP_EIO;
    }
    redisEnableKeepAlive(rq->ctx);
    set_timeout(rq->ctx, COMMAND_TIMEOUT_MS);
    redisReply *r = NULL;
    if (rq->password[0]) {
        r = rq->user[0] ? redisCommand(rq->ctx, "AUTH %s %s", rq->user, rq->password)
                        : redisCommand(rq->ctx, "AUTH %s", rq->password);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(why, why_size, "Redis AUTH failed: %s", r ? r->str : rq->ctx->errstr);
            freeReplyObject(r);
            disconnect(rq);
            return CAP_EIO;
        }
        freeReplyObject(r);
    }
    if (rq->db) {
        r = redisCommand(rq->ctx, "SELECT %d", rq->db);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(why, why_size, "Redis SELECT %d failed: %s", rq->db,
                     r ? r->str : rq->ctx->errstr);
            freeReplyObject(r);
            disconnect(rq);
            return CAP_EIO;
        }
        freeReplyObject(r);
    }
    /* Consumer groups from the start of their streams, made once; BUSYGROUP means made. */
    const char *groups[][2] = {{JOBS_STREAM, JOBS_GROUP}, {EVENTS_STREAM, EVENTS_GROUP}};
    for (size_t i = 0; i < 2; i++) {
        r = redisCommand(rq->ctx, "XGROUP CREATE %s %s 0 MKSTREAM", groups[i][0], groups[i][1]);
        bool ok = r && (r->type != REDIS_REPLY_ERROR || strncmp(r->str, "BUSYGROUP", 9) == 0);
        if (!ok) {
            snprintf(why, why_size,
                     "Redis XGROUP CREATE %s failed: %s (Redis 6.2 or newer is needed)",
                     groups[i][0], r ? r->str : rq->ctx->errstr);
            freeReplyObject(r);
            disconnect(rq);
            return CAP_EIO;
        }
        freeReplyObject(r);
    }
    return 0;
}

/* One command; reconnects once when the connection broke. The reply is the caller's; a
 * Redis error reply is logged and returned as CAP_EIO. */
static int command(struct redis_queue *rq, struct args *a, int timeout_ms, redisReply **out)
{
    *out = NULL;
    for (int tries = 0; tries < 2; tries++) {
        char why[256];
        if (connect_redis(rq, why, sizeof(why)) != 0) {
            CAP_WARN(NULL, "job queue: %s", why);
            return CAP_EIO;
        }
        set_timeout(rq->ctx, timeout_ms);
        redisReply *r = redisCommandArgv(rq->ctx, a->n, a->v, a->len);
        if (!r) {
            CAP_WARN(NULL, "job queue: Redis %s: %s", a->v[0], rq->ctx->errstr);
            disconnect(rq);
            continue;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            CAP_ERROR(NULL, "job queue: Redis %s: %s", a->v[0], r->str);
            freeReplyObject(r);
            return CAP_EIO;
        }
        *out = r;
        return 0;
    }
    return CAP_EIO;
}

static void job_key(char *out, size_t size, const char *id)
{
    snprintf(out, size, JOB_KEY_PREFIX "%s", id);
}

static const char *field(const redisReply *hash, const char *name)
{
    if (!hash || hash->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < hash->elements; i += 2)
        if (hash->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(hash->element[i]->str, name) == 0)
            return hash->element[i + 1]->type == REDIS_REPLY_STRING ? hash->element[i + 1]->str
                                                                    : NULL;
    return NULL;
}

static json_t *parse_field(const redisReply *hash, const char *name)
{
    const char *text = field(hash, name);
    return text && *text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
}

static void copy_field(const redisReply *hash, const char *name, char *out, size_t size)
{
    const char *text = field(hash, name);
    snprintf(out, size, "%s", text ? text : "");
}

static void read_job(const redisReply *hash, struct cap_job *out)
{
    cap_job_deinit(out);
    cap_job_init(out);
    copy_field(hash, "id", out->id, sizeof(out->id));
    copy_field(hash, "kind", out->kind, sizeof(out->kind));
    if (cap_job_state_parse(field(hash, "state"), &out->state) != 0)
        out->state = CAP_JOB_FAILED;
    const char *text = field(hash, "progress");
    out->progress = text ? strtod(text, NULL) : 0;
    out->params = parse_field(hash, "params");
    out->result = parse_field(hash, "result");
    copy_field(hash, "error", out->error, sizeof(out->error));
    copy_field(hash, "recording_id", out->recording_id, sizeof(out->recording_id));
    text = field(hash, "attempts");
    out->attempts = text ? atoi(text) : 0;
    copy_field(hash, "owner", out->owner, sizeof(out->owner));
    text = field(hash, "created_ms");
    out->created_ms = text ? strtoll(text, NULL, 10) : 0;
    text = field(hash, "updated_ms");
    out->updated_ms = text ? strtoll(text, NULL, 10) : 0;
}

/* HGETALL of a job: 0 with *out (non-empty), CAP_ENOENT, or CAP_EIO. */
static int load_hash(struct redis_queue *rq, const char *job_id, redisReply **out)
{
    char key[KEY_MAX];
    job_key(key, sizeof(key), job_id);
    struct args a = {0};
    arg(&a, "HGETALL");
    arg(&a, key);
    int err = command(rq, &a, COMMAND_TIMEOUT_MS, out);
    if (err)
        return err;
    if ((*out)->type != REDIS_REPLY_ARRAY || (*out)->elements == 0) {
        freeReplyObject(*out);
        *out = NULL;
        return CAP_ENOENT;
    }
    return 0;
}

static int64_t script_result(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
}

/* ---- operations ---- */

static int rq_enqueue(struct cap_queue *q, struct cap_job *job)
{
    struct redis_queue *rq = (struct redis_queue *)q;
    size_t params_len, event_len;
    char *params;
    json_t *started;
    int err = cap_queue_prepare_job(q, job, &params, &params_len, &started);
    if (err)
        return err;
    char *event = cap_job_dump(started, &event_len);
    if (!event) {
        json_decref(started);
        free(params);
        return CAP_ENOMEM;
    }
    char key[KEY_MAX], latest[KEY_MAX * 2], latest_any[KEY_MAX * 2];
    job_key(key, sizeof(key), job->id);
    snprintf(latest, sizeof(latest), LATEST_PREFIX "%s:%s", job->recording_id, job->kind);
    snprintf(latest_any, sizeof(latest_any), LATEST_PREFIX "%s:*", job->recording_id);
    struct args a = {0};
    arg(&a, "EVAL");
    arg(&a, enqueue_lua);
    arg(&a, "5");
    arg(&a, key);
    arg(&a, JOBS_STREAM);
    arg(&a, EVENTS_STREAM);
    arg(&a, latest);
    arg(&a, latest_any);
    arg(&a, job->id);
    arg(&a, job->kind);
    arg_bin(&a, params, params_len);
    arg(&a, job->recording_id);
    arg_int(&a, job->created_ms);
    arg(&a, json_string_value(json_object_get(started, "id")));
    arg_bin(&a, event, event_len);
    arg(&a, LIVE_CHANNEL);
    redisReply *r;
    pthread_mutex_lock(&rq->lock);
    err = command(rq, &a, COMMAND_TIMEOUT_MS, &r);
    pthread_mutex_unlock(&rq->lock);
    if (!err && script_result(r) != 1)
        err = CAP_EEXIST;
    freeReplyObject(r);
    json_decref(started);
    free(event);
    free(params);
    return err;
}

static int rq_get(struct cap_queue *q, const char *job_id, struct cap_job *out)
{
    struct redis_queue *rq = (struct redis_queue *)q;
    redisReply *r;
    pthread_mutex_lock(&rq->lock);
    int err = load_hash(rq, job_id, &r);
    pthread_mutex_unlock(&rq->lock);
    if (!err)
        read_job(r, out);
    freeReplyObject(r);
    return err;
}

static int rq_latest(struct cap_queue *q, const char *recording_id, const char *kind,
                     struct cap_job *out)
{
    struct redis_queue *rq = (struct redis_queue *)q;
    char latest[KEY_MAX * 2];
    snprintf(latest, sizeof(latest), LATEST_PREFIX "%s:%s", recording_id, kind ? kind : "*");
    struct args a = {0};
    arg(&a, "GET");
    arg(&a, latest);
    redisReply *r;
    pthread_mutex_lock(&rq->lock);
    int err = command(rq, &a, COMMAND_TIMEOUT_MS, &r);
    char id[CAP_JOB_ID_MAX] = "";
    if (!err && r->type == REDIS_REPLY_STRING)
        snprintf(id, sizeof(id), "%s", r->str);
    freeReplyObject(r);
    r = NULL;
    if (!err && !id[0])
        err = CAP_ENOENT;
    if (!err)
        err = load_hash(rq, id, &r);
    pthread_mutex_unlock(&rq->lock);
    if (!err)
        read_job(r, out);
    freeReplyObject(r);
    return err;
}

/* Acknowledges and drops a job entry that has nothing left to do. */
static void drop_entry(struct redis_queue *rq, const char *entry)
{
    struct args a = {0};
    redisReply *r;
    arg(&a, "XACK");
    arg(&a, JOBS_STREAM);
    arg(&a, JOBS_GROUP);
    arg(&a, entry);
    if (command(rq, &a, COMMAND_TIMEOUT_MS, &r) == 0)
        freeReplyObject(r);
    a = (struct args){0};
    arg(&a, "XDEL");
    arg(&a, JOBS_STREAM);
    arg(&a, entry);
    if (command(rq, &a, COMMAND_TIMEOUT_MS, &r) == 0)
        freeReplyObject(r);
}

/* Fails a job whose workers kept vanishing. */
static void give_up(struct redis_queue *rq, const char *entry, struct cap_job *job,
                    const char *token)
{
    struct cap_queue *q = &rq->base;
    int64_t now = cap_queue_now_ms(q);
    char why[CAP_JOB_ERROR_MAX];
    snprintf(why, sizeof(why),
             "gave up after %d attempts: every worker that took it stopped renewing its lease",
             job->attempts);
    snprintf(job->error, sizeof(job->error), "%s", why);
    json_t *event =
        cap_job_event(job, q->cfg.node, now, "Failed", json_pack("{s:s}", "error", why));
    size_t len;
    char *text = event ? cap_job_dump(event, &len) : NULL;
    if (text) {
        char key[KEY_MAX];
        job_key(key, sizeof(key), job->id);
        struct args a = {0};
        arg(&a, "EVAL");
        arg(&a, give_up_lua);
        arg(&a, "3");
        arg(&a, key);
        arg(&a, JOBS_STREAM);
        arg(&a, EVENTS_STREAM);
        arg(&a, token);
        arg(&a, why);
        arg_int(&a, now);
        arg(&a, JOBS_GROUP);
        arg(&a, entry);
        arg(&a, json_string_value(json_object_get(event, "id")));
        arg_bin(&a, text, len);
        arg(&a, LIVE_CHANNEL);
        redisReply *r;
        if (command(rq, &a, COMMAND_TIMEOUT_MS, &r) == 0) {
            if (script_result(r) == 1) {
                struct cap_log_ctx ctx = {.job = job->id};
                CAP_WARN(&ctx, "%s", why);
            }
            freeReplyObject(r);
        }
    }
    free(text);
    json_decref(event);
}

/* Tries to take the job of one stream entry this consumer now holds. 1 taken, 0 not. */
static int take_entry(struct redis_queue *rq, const redisReply *entry, const char *worker,
                      struct cap_job *out, struct cap_job_lease *lease)
{
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2 ||
        entry->element[0]->type != REDIS_REPLY_STRING)
        return 0;
    const char *entry_id = entry->element[0]->str;
    const char *job_id = field(entry->element[1], "job");
    if (!job_id) {
        drop_entry(rq, entry_id);
        return 0;
    }
    redisReply *hash;
    int err = load_hash(rq, job_id, &hash);
    if (err == CAP_ENOENT) {
        drop_entry(rq, entry_id);
        return 0;
    }
    if (err)
        return err;
    read_job(hash, out);
    char expected[CAP_JOB_TOKEN_MAX];
    copy_field(hash, "attempt", expected, sizeof(expected));
    freeReplyObject(hash);
    if (cap_job_state_terminal(out->state)) {
        /* Finished, but its XACK did not land (or it was reclaimed after): nothing to do. */
        drop_entry(rq, entry_id);
        return 0;
    }
    struct cap_queue *q = &rq->base;
    if (out->attempts >= cap_queue_max_attempts(q)) {
        give_up(rq, entry_id, out, expected);
        return 0;
    }
    if ((err = cap_job_random_id("att_", lease->token, sizeof(lease->token))))
        return err;
    int64_t now = cap_queue_now_ms(q);
    char key[KEY_MAX];
    job_key(key, sizeof(key), job_id);
    struct args a = {0};
    arg(&a, "EVAL");
    arg(&a, take_lua);
    arg(&a, "1");
    arg(&a, key);
    arg(&a, expected);
    arg(&a, lease->token);
    arg(&a, worker);
    arg_int(&a, now);
    arg(&a, entry_id);
    redisReply *r;
    if ((err = command(rq, &a, COMMAND_TIMEOUT_MS, &r)))
        return err;
    int64_t attempts = script_result(r);
    freeReplyObject(r);
    if (attempts <= 0)
        return 0; /* another worker changed it first */
    out->state = CAP_JOB_PROCESSING;
    out->attempts = (int)attempts;
    out->progress = 0;
    out->updated_ms = now;
    snprintf(out->owner, sizeof(out->owner), "%s", worker);
    cap_job_lease_for(lease, out);
    snprintf(lease->worker, sizeof(lease->worker), "%s", worker);
    snprintf(lease->entry, sizeof(lease->entry), "%s", entry_id);
    lease->attempt = (int)attempts;
    return 1;
}

/* Entries idle longer than the visibility timeout: their worker stopped renewing. */
static int reclaim(struct redis_queue *rq, const char *worker, struct cap_job *out,
                   struct cap_job_lease *lease)
{
    char cursor[64] = "0-0";
    for (int round = 0; round < 64; round++) {
        struct args a = {0};
        arg(&a, "XAUTOCLAIM");
        arg(&a, JOBS_STREAM);
        arg(&a, JOBS_GROUP);
        arg(&a, worker);
        arg_int(&a, cap_queue_visibility_ms(&rq->base));
        arg(&a, cursor);
        arg(&a, "COUNT");
        arg(&a, "1");
        redisReply *r;
        int err = command(rq, &a, COMMAND_TIMEOUT_MS, &r);
        if (err)
            return err;
        int taken = 0;
        if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2) {
            const redisReply *entries = r->element[1];
            for (size_t i = 0;
                 entries->type == REDIS_REPLY_ARRAY && i < entries->elements && taken == 0; i++)
                taken = take_entry(rq, entries->element[i], worker, out, lease);
            if (r->element[0]->type == REDIS_REPLY_STRING)
                snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        }
        freeReplyObject(r);
        if (taken != 0)
            return taken;
        if (strcmp(cursor, "0-0") == 0)
            return 0;
    }
    return 0;
}

static int rq_claim(struct cap_queue *q, const char *worker, int wait_ms, struct cap_job *out,
                    struct cap_job_lease *lease)
{
    struct redis_queue *rq = (struct redis_queue *)q;
    int64_t deadline = cap_clock_mono_ns() + (int64_t)wait_ms * CAP_NS_PER_MS;
    pthread_mutex_lock(&rq->lock);
    int result = 0;
    for (;;) {
        result = reclaim(rq, worker, out, lease);
        if (result != 0)
            break;
        int64_t left = (deadline - cap_clock_mono_ns()) / CAP_NS_PER_MS;
        struct args a = {0};
        arg(&a, "XREADGROUP");
        arg(&a, "GROUP");
        arg(&a, JOBS_GROUP);
        arg(&a, worker);
        arg(&a, "COUNT");
        arg(&a, "1");
        if (left > 0) {
            arg(&a, "BLOCK");
            arg_int(&a, left < MAX_BLOCK_MS ? left : MAX_BLOCK_MS);
        }
        arg(&a, "STREAMS");
        arg(&a, JOBS_STREAM);
        arg(&a, ">");
        redisReply *r;
        result = command(rq, &a, COMMAND_TIMEOUT_MS + MAX_BLOCK_MS, &r);
        if (result)
            break;
        /* [[stream, [[entry, [field, value...]]]]] or nil on timeout */
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->elements == 2) {
            const redisReply *entries = r->element[0]->element[1];
            for (size_t i = 0;
                 entries->type == REDIS_REPLY_ARRAY && i < entries->elements && result == 0; i++)
                result = take_entry(rq, entries->element[i], worker, out, lease);
        }
        freeReplyObject(r);
        if (result != 0 || cap_clock_mono_ns() >= deadline)
            break;
    }
    pthread_mutex_unlock(&rq->lock);
    return result;
}

static int rq_renew(struct cap_queue *q, const struct cap_job_lease *lease, double progress)
{
    struct redis_queue *rq = (struct redis_queue *)q;
    int64_t now = cap_queue_now_ms(q);
    char key[KEY_MAX], progress_text[32] = "";
    job_key(key, sizeof(key), lease->job_id);
    char *event_text = NULL;
    size_t event_len = 0;
    if (progress >= 0) {
        snprintf(progress_text, sizeof(progress_text), "%.4f", progress > 1 ? 1.0 : progress);
        struct cap_job view;
        cap_job_init(&view);
        snprintf(view.id, sizeof(view.id), "%s", lease->job_id);
        snprintf(view.kind, sizeof(view.kind), "%s", lease->kind);
        snprintf(view.recording_id, sizeof(view.recording_id), "%s", lease->recording_id);
        json_t *event =
            cap_job_event(&view, q->cfg.node, now, "Progress",
                          json_pack("{s:s, s:f, s:i, s:s}", "status", "processing", "progress",
                                    progress > 1 ? 1.0 : progress, "attempt", lease->attempt,
                                    "worker", lease->worker));
        event_text = event ? cap_job_dump(event, &event_len) : NULL;
        json_decref(event);
    }
    struct args a = {0};
    arg(&a, "EVAL");
    arg(&a, renew_lua);
    arg(&a, "2");
    arg(&a, key);
    arg(&a, JOBS_STREAM);
    arg(&a, lease->token);
    arg(&a, JOBS_GROUP);
    arg(&a, lease->worker);
    arg(&a, lease->entry);
    arg(&a, progress_text);
    arg_int(&a, now);
    arg(&a, LIVE_CHANNEL);
    arg_bin(&a, event_text ? event_text : "", event_len);
    redisReply *r;
    pthread_mutex_lock(&rq->lock);
    int err = command(rq, &a, COMMAND_TIMEOUT_MS, &r);
    pthread_mutex_unlock(&rq->lock);
    if (!err && script_result(r) != 1)
        err = CAP_ESTATE;
    freeReplyObject(r);
    free(event_text);
    return err;
}

static int rq_finish(struct cap_queue *q, const struct cap_job_lease *lease, bool ok,
                     json_t *result, const char *error)
{
    struct redis_queue *rq = (struct redis_queue *)q;
    int64_t now = cap_queue_now_ms(q);
    const char *why = ok ? "" : (error && *error ? error : "failed");
    size_t result_len = 0, event_len = 0;
    char *result_text = ok && result ? cap_job_dump(result, &result_len) : NULL;
    if (ok && result && !result_text)
        return CAP_ENOMEM;
    if (result_len > CAP_JOB_MAX_JSON) {
        free(result_text);
        return CAP_ELIMIT;
    }
    struct cap_job view;
    cap_job_init(&view);
    snprintf(view.id, sizeof(view.id), "%s", lease->job_id);
    snprintf(view.kind, sizeof(view.kind), "%s", lease->kind);
    snprintf(view.recording_id, sizeof(view.recording_id), "%s", lease->recording_id);
    json_t *body =
        ok ? json_deep_copy(result ? result : json_object()) : json_pack("{s:s}", "error", why);
    json_t *event = cap_job_event(&view, q->cfg.node, now, ok ? "Completed" : "Failed", body);
    char *event_text = event ? cap_job_dump(event, &event_len) : NULL;
    int err = event_text ? 0 : CAP_ENOMEM;
    if (!err) {
        char key[KEY_MAX];
        job_key(key, sizeof(key), lease->job_id);
        struct args a = {0};
        arg(&a, "EVAL");
        arg(&a, finish_lua);
        arg(&a, "3");
        arg(&a, key);
        arg(&a, JOBS_STREAM);
        arg(&a, EVENTS_STREAM);
        arg(&a, lease->token);
        arg(&a, JOBS_GROUP);
        arg(&a, lease->entry);
        arg(&a, ok ? "ready" : "failed");
        arg_bin(&a, result_text ? result_text : "", result_len);
        arg(&a, why);
        arg_int(&a, now);
        arg(&a, json_string_value(json_object_get(event, "id")));
        arg(&a, LIVE_CHANNEL);
        arg_bin(&a, event_text, event_len);
        redisReply *r;
        pthread_mutex_lock(&rq->lock);
        err = command(rq, &a, COMMAND_TIMEOUT_MS, &r);
        pthread_mutex_unlock(&rq->lock);
        if (!err && script_result(r) != 1)
            err = CAP_ESTATE;
        freeReplyObject(r);
    }
    free(event_text);
    json_decref(event);
    free(result_text);
    return err;
}

/* Hands the entries of an XREADGROUP / XAUTOCLAIM list to fn; acknowledges and deletes
 * each taken. Returns how many were taken; stops at the first fn refuses. */
static int consume_events(struct redis_queue *rq, const redisReply *entries, cap_queue_event_fn fn,
                          void *user, bool *refused)
{
    int taken = 0;
    for (size_t i = 0; entries && entries->type == REDIS_REPLY_ARRAY && i < entries->elements;
         i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        const char *entry_id = e->element[0]->str;
        const char *id = field(e->element[1], "id");
        const char *body = field(e->element[1], "body");
        if (id && body && fn(user, id, body, strlen(body)) != 0) {
            *refused = true;
            break;
        }
        struct args a = {0};
        redisReply *r;
        arg(&a, "XACK");
        arg(&a, EVENTS_STREAM);
        arg(&a, EVENTS_GROUP);
        arg(&a, entry_id);
        if (command(rq, &a, COMMAND_TIMEOUT_MS, &r) == 0)
            freeReplyObject(r);
        a = (struct args){0};
        arg(&a, "XDEL");
        arg(&a, EVENTS_STREAM);
        arg(&a, entry_id);
        if (command(rq, &a, COMMAND_TIMEOUT_MS, &r) == 0)
            freeReplyObject(r);
        taken += id && body;
    }
    return taken;
}

static int rq_drain_events(struct cap_queue *q, const char *consumer, int wait_ms,
                           cap_queue_event_fn fn, void *user)
{
    struct redis_queue *rq = (struct redis_queue *)q;
    bool refused = false;
    int taken = 0;
    pthread_mutex_lock(&rq->lock);
    /* Events a consumer read and never acknowledged (it died): anyone may take them. */
    struct args a = {0};
    arg(&a, "XAUTOCLAIM");
    arg(&a, EVENTS_STREAM);
    arg(&a, EVENTS_GROUP);
    arg(&a, consumer);
    arg_int(&a, EVENTS_RECLAIM_MS);
    arg(&a, "0-0");
    arg(&a, "COUNT");
    arg(&a, "64");
    redisReply *r;
    int err = command(rq, &a, COMMAND_TIMEOUT_MS, &r);
    if (!err) {
        if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2)
            taken += consume_events(rq, r->element[1], fn, user, &refused);
        freeReplyObject(r);
    }
    if (!err && !refused) {
        a = (struct args){0};
        arg(&a, "XREADGROUP");
        arg(&a, "GROUP");
        arg(&a, EVENTS_GROUP);
        arg(&a, consumer);
        arg(&a, "COUNT");
        arg(&a, "64");
        int block = taken ? 0 : (wait_ms < MAX_BLOCK_MS ? wait_ms : MAX_BLOCK_MS);
        if (block > 0) {
            arg(&a, "BLOCK");
            arg_int(&a, block);
        }
        arg(&a, "STREAMS");
        arg(&a, EVENTS_STREAM);
        arg(&a, ">");
        err = command(rq, &a, COMMAND_TIMEOUT_MS + MAX_BLOCK_MS, &r);
        if (!err) {
            if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->elements == 2)
                taken += consume_events(rq, r->element[0]->element[1], fn, user, &refused);
            freeReplyObject(r);
        }
    }
    pthread_mutex_unlock(&rq->lock);
    return err && !taken ? err : taken;
}

/* One pub/sub message from the subscribed connection within wait_ms: 1 (in *out), 0, or
 * CAP_EIO. Polls the socket itself, since a read timeout would break the connection. */
static int next_message(struct redis_queue *rq, int wait_ms, redisReply **out)
{
    void *reply = NULL;
    if (redisGetReplyFromReader(rq->ctx, &reply) != REDIS_OK)
        return CAP_EIO;
    if (!reply) {
        struct pollfd p = {.fd = rq->ctx->fd, .events = POLLIN};
        int n = poll(&p, 1, wait_ms);
        if (n == 0 || (n < 0 && errno == EINTR))
            return 0;
        if (n < 0 || redisBufferRead(rq->ctx) != REDIS_OK)
            return CAP_EIO;
        if (redisGetReplyFromReader(rq->ctx, &reply) != REDIS_OK)
            return CAP_EIO;
        if (!reply)
            return 0;
    }
    *out = reply;
    return 1;
}

static int rq_listen(struct cap_queue *q, int wait_ms, cap_queue_event_fn fn, void *user)
{
    struct redis_queue *rq = (struct redis_queue *)q;
    pthread_mutex_lock(&rq->lock);
    char why[256];
    int err = 0;
    if (!rq->subscribed) {
        if ((err = connect_redis(rq, why, sizeof(why))) == 0) {
            redisReply *r = redisCommand(rq->ctx, "SUBSCRIBE %s", LIVE_CHANNEL);
            if (r && r->type == REDIS_REPLY_ARRAY)
                rq->subscribed = true;
            else
                err = CAP_EIO;
            freeReplyObject(r);
        } else {
            CAP_WARN(NULL, "job queue: %s", why);
        }
    }
    int count = 0;
    int64_t deadline = cap_clock_mono_ns() + (int64_t)wait_ms * CAP_NS_PER_MS;
    while (!err) {
        int64_t left = (deadline - cap_clock_mono_ns()) / CAP_NS_PER_MS;
        if (left < 0)
            break;
        redisReply *r = NULL;
        int got = next_message(rq, (int)left, &r);
        if (got < 0) {
            err = got;
            break;
        }
        if (got == 0)
            break;
        /* ["message", channel, payload] */
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
            r->element[2]->type == REDIS_REPLY_STRING &&
            strcmp(r->element[0]->str, "message") == 0) {
            fn(user, "", r->element[2]->str, r->element[2]->len);
            count++;
        }
        freeReplyObject(r);
    }
    if (err)
        disconnect(rq);
    pthread_mutex_unlock(&rq->lock);
    return err && !count ? err : count;
}

static void rq_close(struct cap_queue *q)
{
    struct redis_queue *rq = (struct redis_queue *)q;
    disconnect(rq);
    pthread_mutex_destroy(&rq->lock);
    free(rq);
}

static const struct cap_queue_ops redis_ops = {
    .name = "redis",
    .enqueue = rq_enqueue,
    .get = rq_get,
    .latest = rq_latest,
    .claim = rq_claim,
    .renew = rq_renew,
    .finish = rq_finish,
    .drain_events = rq_drain_events,
    .listen = rq_listen,
    .close = rq_close,
};

/* redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] */
static int parse_url(struct redis_queue *rq, const char *url, char *why, size_t why_size)
{
    const char *p = url + 8;
    const char *at = strchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon || (size_t)(colon - p) >= sizeof(rq->user) ||
            (size_t)(at - colon - 1) >= sizeof(rq->password))
            goto bad;
        snprintf(rq->user, sizeof(rq->user), "%.*s", (int)(colon - p), p);
        snprintf(rq->password, sizeof(rq->password), "%.*s", (int)(at - colon - 1), colon + 1);
        p = at + 1;
    }
    size_t host_len = strcspn(p, ":/");
    if (host_len == 0 || host_len >= sizeof(rq->host))
        goto bad;
    snprintf(rq->host, sizeof(rq->host), "%.*s", (int)host_len, p);
    p += host_len;
    rq->port = 6379;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port <= 0 || port > 65535)
            goto bad;
        rq->port = (int)port;
        p = end;
    }
    if (*p == '/' && p[1]) {
        char *end;
        long db = strtol(p + 1, &end, 10);
        if (end == p + 1 || *end || db < 0 || db > 1000)
            goto bad;
        rq->db = (int)db;
    } else if (*p && strcmp(p, "/") != 0) {
        goto bad;
    }
    return 0;
bad:
    snprintf(why, why_size, "queue URL '%.200s' is not redis://[:PASSWORD@]HOST[:PORT][/DB]", url);
    return CAP_EINVAL;
}

int cap_queue_redis_open(struct cap_queue **out, const char *url,
                         const struct cap_queue_config *cfg, char *why, size_t why_size)
{
    struct redis_queue *rq = calloc(1, sizeof(*rq));
    if (!rq)
        return CAP_ENOMEM;
    rq->base.ops = &redis_ops;
    if (cfg)
        rq->base.cfg = *cfg;
    pthread_mutex_init(&rq->lock, NULL);
    int err = parse_url(rq, url, why, why_size);
    if (!err)
        err = connect_redis(rq, why, why_size);
    if (err) {
        rq_close(&rq->base);
        return err;
    }
    *out = &rq->base;
    return 0;
}
