/* The webhook outbox in SQLite (outbox.h): an events table in enqueue order and one
 * delivery row per (event, endpoint) that the sender acknowledges or reschedules. Delivered
 * rows are kept for a day so an operator can see what went out, then pruned. */
#include "hooks/outbox.h"

#include "capstan/error.h"
#include "util/clock.h"
#include "util/log.h"
#include "store/sqlite_error.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SCHEMA_VERSION 1
#define BUSY_TIMEOUT_MS 5000

/* seq keeps enqueue order (AUTOINCREMENT: never reused, even after pruning); the partial
 * index makes "oldest pending delivery for this url" one index seek however long the
 * history is. */
static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS events ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE,"
    "  body BLOB NOT NULL,"
    "  created_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS deliveries ("
    "  event_seq INTEGER NOT NULL,"
    "  url TEXT NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_ms INTEGER NOT NULL,"
    "  delivered_ms INTEGER,"
    "  last_error TEXT,"
    "  PRIMARY KEY (event_seq, url));"
    "CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (url, event_seq)"
    "  WHERE delivered_ms IS NULL;"
    "CREATE INDEX IF NOT EXISTS deliveries_done ON deliveries (delivered_ms)"
    "  WHERE delivered_ms IS NOT NULL;";

enum statement {
    STMT_BEGIN,
    STMT_COMMIT,
    STMT_ROLLBACK,
    STMT_INSERT_EVENT,
    STMT_INSERT_DELIVERY,
    STMT_NEXT_PENDING,
    STMT_MARK_DELIVERED,
    STMT_MARK_FAILED,
    STMT_BACKLOG,
    STMT_PRUNE_DELIVERIES,
    STMT_PRUNE_EVENTS,
    STMT_COUNT_,
};

static const char *const statement_sql[STMT_COUNT_] = {
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_INSERT_EVENT] = "INSERT INTO events (id, body, created_ms) VALUES (?1, ?2, ?3)",
    [STMT_INSERT_DELIVERY] = "INSERT OR IGNORE INTO deliveries (event_seq, url, next_attempt_ms)"
                             " VALUES (?1, ?2, ?3)",
    [STMT_NEXT_PENDING] = "SELECT d.event_seq, e.id, e.body, d.attempts, d.next_attempt_ms"
                          " FROM deliveries d JOIN events e ON e.seq = d.event_seq"
                          " WHERE d.url = ?1 AND d.delivered_ms IS NULL"
                          " ORDER BY d.event_seq LIMIT 1",
    [STMT_MARK_DELIVERED] = "UPDATE deliveries SET delivered_ms = ?3, last_error = NULL"
                            " WHERE event_seq = ?1 AND url = ?2 AND delivered_ms IS NULL",
    [STMT_MARK_FAILED] = "UPDATE deliveries SET attempts = attempts + 1, next_attempt_ms = ?3,"
                         " last_error = ?4"
                         " WHERE event_seq = ?1 AND url = ?2 AND delivered_ms IS NULL",
    [STMT_BACKLOG] = "SELECT count(*) FROM deliveries WHERE delivered_ms IS NULL",
    [STMT_PRUNE_DELIVERIES] = "DELETE FROM deliveries WHERE rowid IN (SELECT rowid FROM deliveries"
                              " WHERE delivered_ms IS NOT NULL AND delivered_ms < ?1 LIMIT ?2)",
    [STMT_PRUNE_EVENTS] = "DELETE FROM events WHERE seq IN (SELECT e.seq FROM events e"
                          " WHERE e.created_ms < ?1 AND NOT EXISTS"
                          " (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq) LIMIT ?2)",
};

struct cap_outbox {
    pthread_mutex_t lock; /* guards everything below, including every use of db */
    sqlite3 *db;
    sqlite3_stmt *stmt[STMT_COUNT_];
    char **urls;
    size_t url_count;
};

static int64_t wall_ms(void)
{
    return cap_clock_wall_ns() / CAP_NS_PER_MS;
}

/* Logs what failed with SQLite's own words and returns the matching CAP_E*. */
static int db_failure(struct cap_outbox *ob, int rc, const char *what)
{
    CAP_ERROR(NULL, "webhook outbox: %s: %s", what, sqlite3_errmsg(ob->db));
    return cap_sqlite_error(rc);
}

/* Runs a statement that returns no rows and resets it. */
static int step_done(struct cap_outbox *ob, enum statement which)
{
    sqlite3_stmt *st = ob->stmt[which];
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : rc;
}

static void rollback(struct cap_outbox *ob)
{
    if (!sqlite3_get_autocommit(ob->db))
        step_done(ob, STMT_ROLLBACK);
}

static int read_user_version(struct cap_outbox *ob, int *version)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(ob->db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *version = sqlite3_column_int(st, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : db_failure(ob, rc, "reading the schema version");
}

static int set_journal_wal(struct cap_outbox *ob)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(ob->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        /* An in-memory database reports "memory"; that is fine for tests. */
        if (mode && strcasecmp(mode, "wal") != 0 && strcasecmp(mode, "memory") != 0)
            CAP_WARN(NULL, "webhook outbox: journal mode is %s, not wal", mode);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : db_failure(ob, rc, "enabling WAL");
}

static int apply_schema(struct cap_outbox *ob)
{
    int err = set_journal_wal(ob);
    if (err)
        return err;
    /* FULL: an acknowledged enqueue must survive a power cut, not only a crash. */
    int rc = sqlite3_exec(ob->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return db_failure(ob, rc, "setting synchronous mode");
    int version = 0;
    err = read_user_version(ob, &version);
    if (err)
        return err;
    if (version > SCHEMA_VERSION) {
        CAP_ERROR(NULL, "webhook outbox: schema version %d is newer than this capstan (%d)",
                  version, SCHEMA_VERSION);
        return CAP_EVERSION;
    }
    rc = sqlite3_exec(ob->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(ob->db, schema_sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(ob->db, "PRAGMA user_version=1", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(ob->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        err = db_failure(ob, rc, "creating tables");
        sqlite3_exec(ob->db, "ROLLBACK", NULL, NULL, NULL);
        return err;
    }
    return 0;
}

static void free_urls(struct cap_outbox *ob)
{
    for (size_t i = 0; i < ob->url_count; i++)
        free(ob->urls[i]);
    free(ob->urls);
    ob->urls = NULL;
    ob->url_count = 0;
}

void cap_outbox_close(struct cap_outbox *ob)
{
    if (!ob)
        return;
    for (int i = 0; i < STMT_COUNT_; i++)
        sqlite3_finalize(ob->stmt[i]);
    sqlite3_close(ob->db);
    free_urls(ob);
    pthread_mutex_destroy(&ob->lock);
    free(ob);
}

int cap_outbox_open(struct cap_outbox **out, const char *sqlite_path)
{
    if (!out)
        return CAP_EINVAL;
    *out = NULL;
    if (!sqlite_path || !*sqlite_path)
        return CAP_EINVAL;
    struct cap_outbox *ob = calloc(1, sizeof(*ob));
    if (!ob)
        return CAP_ENOMEM;
    if (pthread_mutex_init(&ob->lock, NULL) != 0) {
        free(ob);
        return CAP_ENOMEM;
    }
    /* NOMUTEX: our own lock already serializes every use of the connection. */
    int rc =
        sqlite3_open_v2(sqlite_path, &ob->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        int err = ob->db ? db_failure(ob, rc, sqlite_path) : CAP_ENOMEM;
        cap_outbox_close(ob);
        return err;
    }
    sqlite3_extended_result_codes(ob->db, 1);
    sqlite3_busy_timeout(ob->db, BUSY_TIMEOUT_MS);
    int err = apply_schema(ob);
    for (int i = 0; i < STMT_COUNT_ && !err; i++) {
        rc = sqlite3_prepare_v3(ob->db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                &ob->stmt[i], NULL);
        if (rc != SQLITE_OK)
            err = db_failure(ob, rc, "preparing statements");
    }
    if (err) {
        cap_outbox_close(ob);
        return err;
    }
    *out = ob;
    return 0;
}

static bool url_is_acceptable(const char *url)
{
    if (!url)
        return false;
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
        return false;
    size_t n = strnlen(url, CAP_OUTBOX_MAX_URL + 1);
    if (n > CAP_OUTBOX_MAX_URL)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

int cap_outbox_set_endpoints(struct cap_outbox *ob, const char *const *urls, size_t count)
{
    if (!ob || (count > 0 && !urls))
        return CAP_EINVAL;
    if (count > CAP_OUTBOX_MAX_ENDPOINTS)
        return CAP_ELIMIT;
    for (size_t i = 0; i < count; i++) {
        if (!url_is_acceptable(urls[i]))
            return CAP_EINVAL;
    }
    char **copy = calloc(count ? count : 1, sizeof(*copy));
    if (!copy)
        return CAP_ENOMEM;
    size_t kept = 0;
    for (size_t i = 0; i < count; i++) {
        bool seen = false;
        for (size_t j = 0; j < kept && !seen; j++)
            seen = strcmp(copy[j], urls[i]) == 0;
        if (seen)
            continue;
        copy[kept] = strdup(urls[i]);
        if (!copy[kept]) {
            for (size_t j = 0; j < kept; j++)
                free(copy[j]);
            free(copy);
            return CAP_ENOMEM;
        }
        kept++;
    }
    pthread_mutex_lock(&ob->lock);
    free_urls(ob);
    ob->urls = copy;
    ob->url_count = kept;
    pthread_mutex_unlock(&ob->lock);
    return 0;
}

static bool event_id_is_acceptable(const char *id)
{
    if (!id || !*id)
        return false;
    size_t n = strnlen(id, CAP_OUTBOX_MAX_EVENT_ID + 1);
    if (n > CAP_OUTBOX_MAX_EVENT_ID)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c <= 0x20 || c >= 0x7f)
            return false;
    }
    return true;
}

/* Inserts the event and its deliveries; the caller holds the lock and the transaction. */
static int insert_event(struct cap_outbox *ob, const char *event_id, const char *body, size_t len)
{
    int64_t now = wall_ms();
    sqlite3_stmt *st = ob->stmt[STMT_INSERT_EVENT];
    sqlite3_bind_text(st, 1, event_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob64(st, 2, len ? body : "", len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    int rc = step_done(ob, STMT_INSERT_EVENT);
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return CAP_EEXIST;
    if (rc)
        return db_failure(ob, rc, "inserting an event");
    int64_t seq = sqlite3_last_insert_rowid(ob->db);
    for (size_t i = 0; i < ob->url_count; i++) {
        st = ob->stmt[STMT_INSERT_DELIVERY];
        sqlite3_bind_int64(st, 1, seq);
        sqlite3_bind_text(st, 2, ob->urls[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        rc = step_done(ob, STMT_INSERT_DELIVERY);
        if (rc)
            return db_failure(ob, rc, "inserting a delivery");
    }
    return 0;
}

int cap_outbox_enqueue(struct cap_outbox *ob, const char *event_id, const char *body, size_t len)
{
    if (!ob || !event_id_is_acceptable(event_id) || (len > 0 && !body))
        return CAP_EINVAL;
    if (len > CAP_OUTBOX_MAX_BODY)
        return CAP_ELIMIT;
    pthread_mutex_lock(&ob->lock);
    int rc = step_done(ob, STMT_BEGIN);
    int err = rc ? db_failure(ob, rc, "starting an enqueue") : 0;
    if (!err)
        err = insert_event(ob, event_id, body, len);
    if (!err) {
        rc = step_done(ob, STMT_COMMIT);
        if (rc)
            err = db_failure(ob, rc, "committing an enqueue");
    }
    if (err)
        rollback(ob);
    pthread_mutex_unlock(&ob->lock);
    return err;
}

int64_t cap_outbox_backlog(struct cap_outbox *ob)
{
    if (!ob)
        return CAP_EINVAL;
    pthread_mutex_lock(&ob->lock);
    sqlite3_stmt *st = ob->stmt[STMT_BACKLOG];
    int rc = sqlite3_step(st);
    int64_t result =
        rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : db_failure(ob, rc, "counting the backlog");
    sqlite3_reset(st);
    pthread_mutex_unlock(&ob->lock);
    return result;
}

void cap_outbox_delivery_deinit(struct cap_outbox_delivery *d)
{
    if (!d)
        return;
    free(d->event_id);
    free(d->body);
    memset(d, 0, sizeof(*d));
}

/* Copies the current row of STMT_NEXT_PENDING into *out. */
static int copy_pending_row(sqlite3_stmt *st, struct cap_outbox_delivery *out)
{
    const char *id = (const char *)sqlite3_column_text(st, 1);
    const void *body = sqlite3_column_blob(st, 2);
    int body_len = sqlite3_column_bytes(st, 2);
    out->event_seq = sqlite3_column_int64(st, 0);
    out->attempts = sqlite3_column_int64(st, 3);
    out->next_attempt_ms = sqlite3_column_int64(st, 4);
    out->event_id = strdup(id ? id : "");
    out->body_len = body_len > 0 ? (size_t)body_len : 0;
    out->body = malloc(out->body_len ? out->body_len : 1);
    if (!out->event_id || !out->body) {
        cap_outbox_delivery_deinit(out);
        return CAP_ENOMEM;
    }
    if (out->body_len)
        memcpy(out->body, body, out->body_len);
    return 1;
}

int cap_outbox_next_pending(struct cap_outbox *ob, const char *url, struct cap_outbox_delivery *out)
{
    if (!ob || !url || !out)
        return CAP_EINVAL;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&ob->lock);
    sqlite3_stmt *st = ob->stmt[STMT_NEXT_PENDING];
    sqlite3_bind_text(st, 1, url, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int result;
    if (rc == SQLITE_ROW)
        result = copy_pending_row(st, out);
    else if (rc == SQLITE_DONE)
        result = 0;
    else
        result = db_failure(ob, rc, "reading the next delivery");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&ob->lock);
    return result;
}

int cap_outbox_mark_delivered(struct cap_outbox *ob, int64_t event_seq, const char *url,
                              int64_t now_ms)
{
    if (!ob || !url)
        return CAP_EINVAL;
    pthread_mutex_lock(&ob->lock);
    sqlite3_stmt *st = ob->stmt[STMT_MARK_DELIVERED];
    sqlite3_bind_int64(st, 1, event_seq);
    sqlite3_bind_text(st, 2, url, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms);
    int rc = step_done(ob, STMT_MARK_DELIVERED);
    int err = rc ? db_failure(ob, rc, "acknowledging a delivery") : 0;
    pthread_mutex_unlock(&ob->lock);
    return err;
}

int cap_outbox_mark_failed(struct cap_outbox *ob, int64_t event_seq, const char *url,
                           int64_t next_attempt_ms, const char *error)
{
    if (!ob || !url)
        return CAP_EINVAL;
    pthread_mutex_lock(&ob->lock);
    sqlite3_stmt *st = ob->stmt[STMT_MARK_FAILED];
    sqlite3_bind_int64(st, 1, event_seq);
    sqlite3_bind_text(st, 2, url, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, next_attempt_ms);
    if (error)
        sqlite3_bind_text(st, 4, error, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 4);
    int rc = step_done(ob, STMT_MARK_FAILED);
    int err = rc ? db_failure(ob, rc, "rescheduling a delivery") : 0;
    pthread_mutex_unlock(&ob->lock);
    return err;
}

static int prune_with(struct cap_outbox *ob, enum statement which, int64_t cutoff_ms, int limit)
{
    sqlite3_stmt *st = ob->stmt[which];
    sqlite3_bind_int64(st, 1, cutoff_ms);
    sqlite3_bind_int(st, 2, limit);
    int rc = step_done(ob, which);
    if (rc)
        return db_failure(ob, rc, "pruning delivered rows");
    return sqlite3_changes(ob->db);
}

int cap_outbox_prune(struct cap_outbox *ob, int64_t cutoff_ms, int limit)
{
    if (!ob || limit <= 0)
        return CAP_EINVAL;
    pthread_mutex_lock(&ob->lock);
    int deliveries = prune_with(ob, STMT_PRUNE_DELIVERIES, cutoff_ms, limit);
    int events = deliveries < 0 ? 0 : prune_with(ob, STMT_PRUNE_EVENTS, cutoff_ms, limit);
    pthread_mutex_unlock(&ob->lock);
    if (deliveries < 0)
        return deliveries;
    if (events < 0)
        return events;
    return deliveries + events;
}
