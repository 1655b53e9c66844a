/* SQLite catalog (catalog.h): two tables of JSON state, written through on every change. */
#include "store/catalog.h"

#include "capstan/error.h"
#include "util/log.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

struct cap_catalog {
    sqlite3 *db;
    pthread_mutex_t lock;
};

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS rooms (room_id TEXT PRIMARY KEY, state TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS recordings (recording_id TEXT PRIMARY KEY, room_id TEXT NOT NULL,"
    " state_name TEXT NOT NULL, state TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS recordings_room ON recordings(room_id);";

int cap_catalog_open(struct cap_catalog **out, const char *path)
{
    struct cap_catalog *cat = calloc(1, sizeof(*cat));
    if (!cat)
        return CAP_ENOMEM;
    if (sqlite3_open_v2(path, &cat->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        CAP_ERROR(NULL, "catalog %s: %s", path, cat->db ? sqlite3_errmsg(cat->db) : "cannot open");
        sqlite3_close(cat->db);
        free(cat);
        return CAP_EIO;
    }
    sqlite3_busy_timeout(cat->db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(cat->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        CAP_ERROR(NULL, "catalog %s: %s", path, msg ? msg : "schema failed");
        sqlite3_free(msg);
        sqlite3_close(cat->db);
        free(cat);
        return CAP_EIO;
    }
    pthread_mutex_init(&cat->lock, NULL);
    *out = cat;
    return 0;
}

void cap_catalog_close(struct cap_catalog *cat)
{
    if (!cat)
        return;
    sqlite3_close(cat->db);
    pthread_mutex_destroy(&cat->lock);
    free(cat);
}

static int run(struct cap_catalog *cat, const char *sql, const char *const *args, int count)
{
    pthread_mutex_lock(&cat->lock);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(cat->db, sql, -1, &st, NULL);
    for (int i = 0; rc == SQLITE_OK && i < count; i++)
        rc = sqlite3_bind_text(st, i + 1, args[i], -1, SQLITE_TRANSIENT);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        CAP_ERROR(NULL, "catalog: %s", sqlite3_errmsg(cat->db));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&cat->lock);
    return rc == SQLITE_DONE ? 0 : CAP_EIO;
}

int cap_catalog_put_room(struct cap_catalog *cat, const char *room_id, json_t *state)
{
    char *text = json_dumps(state, JSON_COMPACT);
    if (!text)
        return CAP_ENOMEM;
    const char *args[] = {room_id, text};
    int err = run(cat, "INSERT INTO rooms(room_id, state) VALUES(?1, ?2) "
                       "ON CONFLICT(room_id) DO UPDATE SET state = excluded.state", args, 2);
    free(text);
    return err;
}

int cap_catalog_put_recording(struct cap_catalog *cat, const char *recording_id, const char *room_id,
                              const char *state_name, json_t *state)
{
    char *text = json_dumps(state, JSON_COMPACT);
    if (!text)
        return CAP_ENOMEM;
    const char *args[] = {recording_id, room_id, state_name, text};
    int err = run(cat, "INSERT INTO recordings(recording_id, room_id, state_name, state) "
                       "VALUES(?1, ?2, ?3, ?4) ON CONFLICT(recording_id) DO UPDATE SET "
                       "state_name = excluded.state_name, state = excluded.state", args, 4);
    free(text);
    return err;
}

static int each(struct cap_catalog *cat, const char *sql, void (*fn)(void *, json_t *), void *user)
{
    pthread_mutex_lock(&cat->lock);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(cat->db, sql, -1, &st, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(st, 0);
        json_t *state = text ? json_loads(text, 0, NULL) : NULL;
        if (state)
            fn(user, state);
        json_decref(state);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&cat->lock);
    return rc == SQLITE_DONE || rc == SQLITE_OK ? 0 : CAP_EIO;
}

int cap_catalog_each_room(struct cap_catalog *cat, void (*fn)(void *user, json_t *state), void *user)
{
    return each(cat, "SELECT state FROM rooms ORDER BY rowid", fn, user);
}

int cap_catalog_each_recording(struct cap_catalog *cat, void (*fn)(void *user, json_t *state),
                               void *user)
{
    return each(cat, "SELECT state FROM recordings ORDER BY rowid", fn, user);
}
