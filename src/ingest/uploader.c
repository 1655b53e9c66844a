/* The spool uploader (uploader.h). Each pass lists the spool, works out what the store lacks
 * and what may go from local disk, then uploads in recording, track and chunk order.
 *
 * Which chunks are touched: only sealed ones (index and footer valid), which the writer never
 * changes again. Which may be deleted after a confirmed upload: every sealed chunk that has a
 * newer sealed chunk beside it, and all of them once the recording is over (metadata.json's
 * state is neither "recording" nor "paused"). The newest sealed chunk of a live track stays
 * so that a writer reopened after a restart continues the numbering (it numbers after the
 * highest chunk on disk) instead of starting again at 1 and overwriting keys in the store.
 * JSON files are rewritten by atomic rename; each version is uploaded once and kept locally. */
#include "ingest/uploader.h"

#include "capstan/error.h"
#include "store/blob.h"
#include "track/chunk_format.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_SCAN_NS CAP_NS_PER_SEC
#define DEFAULT_MAX_BACKOFF_NS (30 * CAP_NS_PER_SEC)
#define FIRST_BACKOFF_NS CAP_NS_PER_SEC
#define ALARM_EVERY_NS (60 * CAP_NS_PER_SEC)
#define MAX_JSON_BYTES (16u << 20)
#define MAX_CHUNKS_PER_TRACK 1000000
#define SEEN_BUCKETS 4096

static const char *const json_names[] = {"metadata.json", "timeline.json", "policy.json"};

/* A file version known to be in the store: a kept chunk, or the last JSON uploaded. */
struct seen {
    struct seen *next;
    char *path;
    uint64_t size;
    int64_t mtime_ns;
    uint64_t pass;
};

struct item {
    char *path;
    char *key;
    uint64_t size;
    int64_t mtime_ns;
    bool json;
    bool upload; /* false: already in the store, only to delete */
    bool delete_after;
};

struct work {
    struct item *items;
    size_t count, cap;
};

struct cap_uploader {
    struct cap_uploader_config cfg;
    char data_dir[PATH_MAX];
    struct cap_blob_store *store;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stopping;
    bool woken;
    /* uploader thread only */
    struct seen *seen[SEEN_BUCKETS];
    uint64_t pass;
    int backoff_step;
    int64_t last_failure_log;
    int64_t last_alarm;
    bool was_over;
    /* read by anyone */
    _Atomic uint64_t backlog_files, backlog_bytes, uploads, failures, deleted;
    atomic_bool over_quota, store_ok;
};

/* ---- what is already in the store ---- */

static size_t bucket_of(const char *path)
{
    uint64_t h = 1469598103934665603u;
    for (; *path; path++)
        h = (h ^ (uint8_t)*path) * 1099511628211u;
    return (size_t)(h % SEEN_BUCKETS);
}

static struct seen *seen_find(struct cap_uploader *u, const char *path)
{
    for (struct seen *s = u->seen[bucket_of(path)]; s; s = s->next)
        if (strcmp(s->path, path) == 0)
            return s;
    return NULL;
}

static void seen_put(struct cap_uploader *u, const char *path, uint64_t size, int64_t mtime_ns)
{
    struct seen *s = seen_find(u, path);
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s || !(s->path = strdup(path))) {
            free(s);
            return; /* forgetting only costs a second upload of the same bytes */
        }
        size_t b = bucket_of(path);
        s->next = u->seen[b];
        u->seen[b] = s;
    }
    s->size = size;
    s->mtime_ns = mtime_ns;
    s->pass = u->pass;
}

static void seen_remove(struct cap_uploader *u, const char *path)
{
    for (struct seen **pp = &u->seen[bucket_of(path)]; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->path, path) == 0) {
            struct seen *s = *pp;
            *pp = s->next;
            free(s->path);
            free(s);
            return;
        }
    }
}

/* Forgets files no pass has seen since older_than (their recording folder is gone). */
static void seen_prune(struct cap_uploader *u, uint64_t older_than)
{
    for (size_t b = 0; b < SEEN_BUCKETS; b++) {
        for (struct seen **pp = &u->seen[b]; *pp;) {
            struct seen *s = *pp;
            if (s->pass < older_than) {
                *pp = s->next;
                free(s->path);
                free(s);
            } else {
                pp = &s->next;
            }
        }
    }
}

static bool seen_current(struct cap_uploader *u, const char *path, uint64_t size, int64_t mtime_ns)
{
    struct seen *s = seen_find(u, path);
    if (!s || s->size != size || s->mtime_ns != mtime_ns)
        return false;
    s->pass = u->pass;
    return true;
}

/* ---- looking at the spool ---- */

static int64_t mtime_of(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * CAP_NS_PER_SEC + st->st_mtim.tv_nsec;
}

/* 1 if the chunk is sealed (a valid footer pointing at a valid index record that ends where
 * the footer starts), 0 if not (still being written, or torn). */
static int chunk_sealed(const char *path, uint64_t size)
{
    if (size < CAP_CHUNK_PREFIX_LEN + CAP_CHUNK_RECORD_OVERHEAD + CAP_CHUNK_FOOTER_LEN)
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    uint8_t footer[CAP_CHUNK_FOOTER_LEN];
    int sealed = 0;
    int64_t off = -1;
    if (cap_pread_full(fd, footer, sizeof(footer), (off_t)(size - CAP_CHUNK_FOOTER_LEN)) ==
        (ssize_t)sizeof(footer))
        off = cap_chunk_decode_footer(footer);
    uint64_t end = size - CAP_CHUNK_FOOTER_LEN;
    if (off >= CAP_CHUNK_PREFIX_LEN && (uint64_t)off < end &&
        end - (uint64_t)off <= CAP_CHUNK_INDEX_MAX + CAP_CHUNK_RECORD_OVERHEAD) {
        size_t len = (size_t)(end - (uint64_t)off);
        uint8_t *rec = malloc(len);
        struct cap_chunk_record_header hdr;
        if (rec && cap_pread_full(fd, rec, len, (off_t)off) == (ssize_t)len &&
            cap_chunk_check_record(rec, len, &hdr) == (long)len && hdr.type == CAP_RECORD_INDEX)
            sealed = 1;
        free(rec);
    }
    close(fd);
    return sealed;
}

/* A recording is live unless its metadata.json says it is over; unreadable means live. */
static bool recording_live(const char *rec_dir)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/metadata.json", rec_dir) >= (int)sizeof(path))
        return true;
    json_t *meta = json_load_file(path, 0, NULL);
    const char *state =
        json_string_value(json_object_get(json_object_get(meta, "recording"), "state"));
    bool live = !state || strcmp(state, "recording") == 0 || strcmp(state, "paused") == 0;
    json_decref(meta);
    return live;
}

static int work_add(struct work *w, const char *path, const char *key, const struct stat *st,
                    bool json, bool upload, bool delete_after)
{
    if (w->count == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        struct item *items = realloc(w->items, cap * sizeof(*items));
        if (!items)
            return CAP_ENOMEM;
        w->items = items;
        w->cap = cap;
    }
    struct item *it = &w->items[w->count];
    it->path = strdup(path);
    it->key = strdup(key);
    if (!it->path || !it->key) {
        free(it->path);
        free(it->key);
        return CAP_ENOMEM;
    }
    it->size = (uint64_t)st->st_size;
    it->mtime_ns = mtime_of(st);
    it->json = json;
    it->upload = upload;
    it->delete_after = delete_after;
    w->count++;
    return 0;
}

static void work_free(struct work *w)
{
    for (size_t i = 0; i < w->count; i++) {
        free(w->items[i].path);
        free(w->items[i].key);
    }
    free(w->items);
    memset(w, 0, sizeof(*w));
}

/* The names in a folder that pass keep (sorted; folders only when dirs). */
static int list_names(const char *dir, bool dirs, char ***out, size_t *count)
{
    *out = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t cap = 0;
    struct dirent *e;
    int err = 0;
    while (!err && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        bool is_dir = e->d_type == DT_DIR;
        if (e->d_type == DT_UNKNOWN) {
            struct stat st;
            char path[PATH_MAX];
            is_dir = snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) < (int)sizeof(path) &&
                     stat(path, &st) == 0 && S_ISDIR(st.st_mode);
        }
        if (dirs != is_dir || (!dirs && cap_chunk_seq_of_name(e->d_name) == 0))
            continue;
        if (*count == cap) {
            cap = cap ? cap * 2 : 16;
            char **grown = realloc(*out, cap * sizeof(*grown));
            if (!grown) {
                err = CAP_ENOMEM;
                break;
            }
            *out = grown;
        }
        if (!((*out)[*count] = strdup(e->d_name)))
            err = CAP_ENOMEM;
        else
            (*count)++;
    }
    closedir(d);
    return err;
}

static void free_names(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int compare_chunk_names(const void *a, const void *b)
{
    uint32_t x = cap_chunk_seq_of_name(*(char *const *)a),
             y = cap_chunk_seq_of_name(*(char *const *)b);
    return x < y ? -1 : x > y;
}

/* The chunks of one track folder. */
static int scan_track(struct cap_uploader *u, const char *dir, const char *key_prefix, bool live,
                      struct work *w)
{
    char **names;
    size_t count;
    int err = list_names(dir, false, &names, &count);
    if (err || count == 0)
        return err;
    if (count > MAX_CHUNKS_PER_TRACK)
        count = MAX_CHUNKS_PER_TRACK;
    qsort(names, count, sizeof(*names), compare_chunk_names);
    /* Sealed or not, and in the store or not, before deciding what may go. */
    bool *sealed = calloc(count, sizeof(*sealed)), *stored = calloc(count, sizeof(*stored));
    struct stat *st = calloc(count, sizeof(*st));
    char path[PATH_MAX], key[PATH_MAX];
    uint32_t newest_sealed = 0;
    err = sealed && stored && st ? 0 : CAP_ENOMEM;
    for (size_t i = 0; !err && i < count; i++) {
        if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >= (int)sizeof(path) ||
            stat(path, &st[i]) != 0)
            continue;
        stored[i] = seen_current(u, path, (uint64_t)st[i].st_size, mtime_of(&st[i]));
        sealed[i] = stored[i] || chunk_sealed(path, (uint64_t)st[i].st_size) == 1;
        if (sealed[i])
            newest_sealed = cap_chunk_seq_of_name(names[i]);
    }
    for (size_t i = 0; !err && i < count; i++) {
        if (!sealed[i])
            continue;
        uint32_t seq = cap_chunk_seq_of_name(names[i]);
        bool deletable = !u->cfg.keep_local && (seq < newest_sealed || !live);
        if (!stored[i] || deletable) {
            if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >= (int)sizeof(path) ||
                snprintf(key, sizeof(key), "%s/%s", key_prefix, names[i]) >= (int)sizeof(key))
                continue;
            err = work_add(w, path, key, &st[i], false, !stored[i], deletable);
        }
    }
    free(sealed);
    free(stored);
    free(st);
    free_names(names, count);
    return err;
}

/* One recording folder: its tracks' chunks, then its JSON files. */
static int scan_recording(struct cap_uploader *u, const char *rec_dir, const char *rec_key,
                          struct work *w)
{
    bool live = recording_live(rec_dir);
    char tracks_dir[PATH_MAX], dir[PATH_MAX], key[PATH_MAX];
    if (snprintf(tracks_dir, sizeof(tracks_dir), "%s/tracks", rec_dir) >= (int)sizeof(tracks_dir))
        return 0;
    char **tracks;
    size_t count;
    int err = list_names(tracks_dir, true, &tracks, &count);
    if (!err && count > 1)
        qsort(tracks, count, sizeof(*tracks), compare_names);
    for (size_t i = 0; !err && i < count; i++) {
        if (snprintf(dir, sizeof(dir), "%s/%s", tracks_dir, tracks[i]) >= (int)sizeof(dir) ||
            snprintf(key, sizeof(key), "%s/tracks/%s", rec_key, tracks[i]) >= (int)sizeof(key))
            continue;
        err = scan_track(u, dir, key, live, w);
    }
    free_names(tracks, count);
    for (size_t i = 0; !err && i < sizeof(json_names) / sizeof(json_names[0]); i++) {
        struct stat st;
        if (snprintf(dir, sizeof(dir), "%s/%s", rec_dir, json_names[i]) >= (int)sizeof(dir) ||
            snprintf(key, sizeof(key), "%s/%s", rec_key, json_names[i]) >= (int)sizeof(key) ||
            stat(dir, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        /* A metadata.json that says the recording is over goes up only in a pass that
         * listed the tracks after it said so, that is with every last chunk before it:
         * a worker takes a final metadata.json in the store as "the recording is whole". */
        if (i == 0 && live && !recording_live(rec_dir))
            continue;
        if (!seen_current(u, dir, (uint64_t)st.st_size, mtime_of(&st)))
            err = work_add(w, dir, key, &st, true, true, false);
    }
    return err;
}

static int scan(struct cap_uploader *u, struct work *w)
{
    char rooms_dir[PATH_MAX], room_dir[PATH_MAX], rec_dir[PATH_MAX], rec_key[PATH_MAX];
    if (snprintf(rooms_dir, sizeof(rooms_dir), "%s/rooms", u->data_dir) >= (int)sizeof(rooms_dir))
        return CAP_ELIMIT;
    char **rooms;
    size_t room_count;
    int err = list_names(rooms_dir, true, &rooms, &room_count);
    if (!err && room_count > 1)
        qsort(rooms, room_count, sizeof(*rooms), compare_names);
    for (size_t r = 0; !err && r < room_count; r++) {
        if (snprintf(room_dir, sizeof(room_dir), "%s/%s", rooms_dir, rooms[r]) >=
            (int)sizeof(room_dir))
            continue;
        char **recs;
        size_t rec_count;
        err = list_names(room_dir, true, &recs, &rec_count);
        if (!err && rec_count > 1)
            qsort(recs, rec_count, sizeof(*recs), compare_names);
        for (size_t i = 0; !err && i < rec_count; i++) {
            if (snprintf(rec_dir, sizeof(rec_dir), "%s/%s", room_dir, recs[i]) >=
                    (int)sizeof(rec_dir) ||
                snprintf(rec_key, sizeof(rec_key), "rooms/%s/%s", rooms[r], recs[i]) >=
                    (int)sizeof(rec_key))
                continue;
            err = scan_recording(u, rec_dir, rec_key, w);
        }
        free_names(recs, rec_count);
    }
    free_names(rooms, room_count);
    return err;
}

/* ---- uploading ---- */

/* Reads the JSON file once and puts exactly those bytes: it may be replaced meanwhile. */
static int upload_json(struct cap_uploader *u, const struct item *it)
{
    char *text;
    size_t len;
    int err = cap_read_file(it->path, MAX_JSON_BYTES, &text, &len);
    if (err) {
        snprintf(u->store->why, sizeof(u->store->why), "cannot read %s: %s", it->path,
                 cap_strerror(err));
        return err;
    }
    err = cap_blob_put_buf(u->store, it->key, text, len, "application/json");
    struct cap_blob_info info;
    if (!err)
        err = cap_blob_head(u->store, it->key, &info);
    if (!err && info.size != len) {
        snprintf(u->store->why, sizeof(u->store->why),
                 "%s: %llu bytes in the store after putting %zu", it->key,
                 (unsigned long long)info.size, len);
        err = CAP_ECHECKSUM;
    }
    free(text);
    return err;
}

/* Store unreachable or failing as a whole (as opposed to one object refused). */
static bool store_down(int err)
{
    return err == CAP_EAGAIN || err == CAP_EIO;
}

static void report_failure(struct cap_uploader *u, const struct item *it, int err, int64_t retry_ns)
{
    int64_t now = cap_clock_mono_ns();
    bool was_ok = atomic_load(&u->store_ok);
    if (!store_down(err)) {
        CAP_ERROR(NULL, "upload of %s refused: %s (%s); other files go on, this one is retried",
                  it->key, u->store->why[0] ? u->store->why : cap_strerror(err), cap_strerror(err));
        return;
    }
    atomic_store(&u->store_ok, false);
    if (was_ok || now - u->last_failure_log >= ALARM_EVERY_NS) {
        u->last_failure_log = now;
        CAP_ERROR(NULL,
                  "cannot reach the store: %s; %llu files (%llu bytes) wait in the spool; retrying "
                  "in %lld s "
                  "with backoff",
                  u->store->why[0] ? u->store->why : cap_strerror(err),
                  (unsigned long long)atomic_load(&u->backlog_files),
                  (unsigned long long)atomic_load(&u->backlog_bytes),
                  (long long)(retry_ns / CAP_NS_PER_SEC));
    }
}

static void remove_local(struct cap_uploader *u, const struct item *it)
{
    if (unlink(it->path) != 0 && errno != ENOENT) {
        CAP_ERROR(NULL, "uploaded %s but cannot delete %s: %s", it->key, it->path, strerror(errno));
        return;
    }
    seen_remove(u, it->path);
    atomic_fetch_add(&u->deleted, 1);
}

static int64_t next_backoff(struct cap_uploader *u)
{
    int64_t wait = FIRST_BACKOFF_NS;
    for (int i = 0; i < u->backoff_step && wait < u->cfg.max_backoff_ns; i++)
        wait *= 2;
    return wait < u->cfg.max_backoff_ns ? wait : u->cfg.max_backoff_ns;
}

static void check_quota(struct cap_uploader *u)
{
    uint64_t bytes = atomic_load(&u->backlog_bytes);
    bool over = u->cfg.quota_bytes && bytes > u->cfg.quota_bytes;
    atomic_store(&u->over_quota, over);
    int64_t now = cap_clock_mono_ns();
    if (over && (!u->was_over || now - u->last_alarm >= ALARM_EVERY_NS)) {
        u->last_alarm = now;
        CAP_ERROR(
            NULL,
            "ALARM spool over quota: %llu bytes in %llu files wait for the store (quota %llu "
            "bytes); "
            "recording goes on into local disk, nothing is dropped, until the store takes them",
            (unsigned long long)bytes, (unsigned long long)atomic_load(&u->backlog_files),
            (unsigned long long)u->cfg.quota_bytes);
    } else if (!over && u->was_over) {
        CAP_WARN(NULL, "spool back under its quota: %llu bytes wait for the store",
                 (unsigned long long)bytes);
    }
    u->was_over = over;
}

/* One pass. Returns 0, or the error that stopped it because the store is down. */
/* "rooms/R/REC/" of a key under a recording. */
static void recording_key_of(const char *key, char *out, size_t size)
{
    const char *p = key;
    for (int slashes = 0; *p && slashes < 3; p++)
        if (*p == '/')
            slashes++;
    snprintf(out, size, "%.*s", (int)(p - key), key);
}

static int run_pass(struct cap_uploader *u, bool final)
{
    u->pass++;
    struct work w = {0};
    int err = scan(u, &w);
    if (err)
        CAP_ERROR(NULL, "uploader: cannot list the spool %s: %s", u->data_dir, cap_strerror(err));
    uint64_t files = 0, bytes = 0;
    for (size_t i = 0; i < w.count; i++)
        if (w.items[i].upload)
            files++, bytes += w.items[i].size;
    atomic_store(&u->backlog_files, files);
    atomic_store(&u->backlog_bytes, bytes);
    check_quota(u);
    int down = 0;
    char failed_rec[PATH_MAX] = ""; /* the recording whose chunk failed in this pass */
    for (size_t i = 0; i < w.count && !down; i++) {
        struct item *it = &w.items[i];
        /* Its files go up only after all of its chunks (items come recording by recording,
         * chunks before files). */
        if (it->json && failed_rec[0] && strncmp(it->key, failed_rec, strlen(failed_rec)) == 0)
            continue;
        if (!final) {
            pthread_mutex_lock(&u->lock);
            bool stop = u->stopping;
            pthread_mutex_unlock(&u->lock);
            if (stop)
                break; /* the final pass does the rest */
        }
        if (it->upload) {
            u->store->why[0] = '\0';
            int e = it->json ? upload_json(u, it)
                             : cap_blob_put_file_confirmed(u->store, it->key, it->path);
            if (e == CAP_ENOENT && access(it->path, F_OK) != 0)
                continue; /* gone meanwhile (a recording folder removed) */
            if (e) {
                if (!it->json)
                    recording_key_of(it->key, failed_rec, sizeof(failed_rec));
                atomic_fetch_add(&u->failures, 1);
                report_failure(u, it, e, next_backoff(u));
                if (store_down(e))
                    down = e;
                continue;
            }
            if (!atomic_load(&u->store_ok))
                CAP_INFO(NULL, "store reachable again (%s): uploading the spool's backlog",
                         u->store->where);
            atomic_store(&u->store_ok, true);
            atomic_fetch_add(&u->uploads, 1);
            atomic_fetch_sub(&u->backlog_files, 1);
            atomic_fetch_sub(&u->backlog_bytes, it->size);
            CAP_DEBUG(NULL, "uploaded %s (%llu bytes)", it->key, (unsigned long long)it->size);
            if (!it->delete_after)
                seen_put(u, it->path, it->size, it->mtime_ns);
        }
        if (it->delete_after)
            remove_local(u, it);
    }
    check_quota(u);
    work_free(&w);
    /* Entries of files no pass has met for a while: their folders are gone. */
    if (u->pass > 16)
        seen_prune(u, u->pass - 16);
    return down;
}

static void *uploader_main(void *arg)
{
    struct cap_uploader *u = arg;
    int64_t next_due = cap_clock_mono_ns();
    bool backing_off = false;
    for (;;) {
        pthread_mutex_lock(&u->lock);
        while (!u->stopping && !(u->woken && !backing_off)) {
            int64_t now = cap_clock_mono_ns();
            if (now >= next_due)
                break;
            int64_t wait = next_due - now;
            struct timespec until = cap_clock_deadline_ns(wait);
            pthread_cond_timedwait(&u->cond, &u->lock, &until);
        }
        bool stopping = u->stopping;
        u->woken = false;
        pthread_mutex_unlock(&u->lock);
        if (stopping) {
            int err = run_pass(u, true);
            if (err)
                CAP_ERROR(
                    NULL,
                    "stopping with %llu files (%llu bytes) not yet in the store: they stay in the "
                    "spool and go up at the next start",
                    (unsigned long long)atomic_load(&u->backlog_files),
                    (unsigned long long)atomic_load(&u->backlog_bytes));
            return NULL;
        }
        int err = run_pass(u, false);
        if (err) {
            next_due = cap_clock_mono_ns() + next_backoff(u);
            if (u->backoff_step < 30)
                u->backoff_step++;
            backing_off = true;
        } else {
            u->backoff_step = 0;
            backing_off = false;
            next_due = cap_clock_mono_ns() + u->cfg.scan_interval_ns;
        }
    }
}

/* ---- lifecycle ---- */

int cap_uploader_start(struct cap_uploader **out, const struct cap_uploader_config *cfg, char *why,
                       size_t why_size)
{
    if (!cfg->data_dir || !cfg->storage_url || strlen(cfg->data_dir) >= PATH_MAX - 2 * 1024) {
        snprintf(why, why_size, "uploader: no data folder or storage URL");
        return CAP_EINVAL;
    }
    struct cap_uploader *u = calloc(1, sizeof(*u));
    if (!u)
        return CAP_ENOMEM;
    u->cfg = *cfg;
    snprintf(u->data_dir, sizeof(u->data_dir), "%s", cfg->data_dir);
    u->cfg.data_dir = u->data_dir;
    u->cfg.storage_url = NULL; /* not kept: it may carry credentials */
    if (u->cfg.scan_interval_ns <= 0)
        u->cfg.scan_interval_ns = DEFAULT_SCAN_NS;
    if (u->cfg.max_backoff_ns <= 0)
        u->cfg.max_backoff_ns = DEFAULT_MAX_BACKOFF_NS;
    int err = cap_blob_open(&u->store, cfg->storage_url, why, why_size);
    if (err) {
        free(u);
        return err;
    }
    atomic_store(&u->store_ok, true);
    pthread_mutex_init(&u->lock, NULL);
    pthread_cond_init(&u->cond, NULL);
    if (pthread_create(&u->thread, NULL, uploader_main, u) != 0) {
        snprintf(why, why_size, "uploader: cannot start its thread");
        cap_blob_close(u->store);
        pthread_mutex_destroy(&u->lock);
        pthread_cond_destroy(&u->cond);
        free(u);
        return CAP_ENOMEM;
    }
    CAP_INFO(NULL, "uploading the spool %s to %s%s", u->data_dir, u->store->where,
             u->cfg.keep_local ? " (keeping local copies)" : "");
    *out = u;
    return 0;
}

void cap_uploader_wake(struct cap_uploader *u)
{
    if (!u)
        return;
    pthread_mutex_lock(&u->lock);
    u->woken = true;
    pthread_cond_signal(&u->cond);
    pthread_mutex_unlock(&u->lock);
}

void cap_uploader_stop(struct cap_uploader *u)
{
    if (!u)
        return;
    pthread_mutex_lock(&u->lock);
    u->stopping = true;
    pthread_cond_signal(&u->cond);
    pthread_mutex_unlock(&u->lock);
    pthread_join(u->thread, NULL);
    seen_prune(u, UINT64_MAX);
    cap_blob_close(u->store);
    pthread_mutex_destroy(&u->lock);
    pthread_cond_destroy(&u->cond);
    free(u);
}

void cap_uploader_get_stats(const struct cap_uploader *u, struct cap_uploader_stats *out)
{
    struct cap_uploader *m = (struct cap_uploader *)u;
    out->backlog_files = atomic_load(&m->backlog_files);
    out->backlog_bytes = atomic_load(&m->backlog_bytes);
    out->uploads = atomic_load(&m->uploads);
    out->failures = atomic_load(&m->failures);
    out->deleted = atomic_load(&m->deleted);
    out->over_quota = atomic_load(&m->over_quota);
    out->store_ok = atomic_load(&m->store_ok);
}

/* ---- counts of chunks that live only in the store ---- */

struct remote_chunk {
    char name[32];
    uint64_t size;
};

struct remote_list {
    struct remote_chunk *items;
    size_t count, cap;
    const char *local_dir;
};

static int collect_remote(void *user, const char *key, const struct cap_blob_info *info)
{
    struct remote_list *l = user;
    const char *name = strrchr(key, '/');
    name = name ? name + 1 : key;
    if (cap_chunk_seq_of_name(name) == 0 || strlen(name) >= sizeof(l->items[0].name))
        return 0;
    char path[PATH_MAX];
    struct stat st;
    if (snprintf(path, sizeof(path), "%s/%s", l->local_dir, name) < (int)sizeof(path) &&
        stat(path, &st) == 0)
        return 0; /* still in the spool: counted from there */
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        struct remote_chunk *grown = realloc(l->items, cap * sizeof(*grown));
        if (!grown)
            return 1;
        l->items = grown;
        l->cap = cap;
    }
    snprintf(l->items[l->count].name, sizeof(l->items[0].name), "%s", name);
    l->items[l->count++].size = info->size;
    return 0;
}

/* Reads a byte range of an object through a temporary file. */
static int fetch_range(struct cap_blob_store *s, const char *key, uint64_t off, uint64_t len,
                       const char *tmp, uint8_t *out)
{
    int err = cap_blob_get_file(s, key, off, len, tmp);
    if (err)
        return err;
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = cap_pread_full(fd, out, (size_t)len, 0);
    close(fd);
    return n == (ssize_t)len ? 0 : CAP_ETRUNC;
}

static int remote_summary(struct cap_blob_store *s, const char *key, uint64_t size, const char *tmp,
                          struct cap_chunk_summary *out)
{
    if (size < CAP_CHUNK_PREFIX_LEN + CAP_CHUNK_RECORD_OVERHEAD + CAP_CHUNK_FOOTER_LEN)
        return CAP_EFORMAT;
    uint8_t footer[CAP_CHUNK_FOOTER_LEN];
    int err = fetch_range(s, key, size - CAP_CHUNK_FOOTER_LEN, CAP_CHUNK_FOOTER_LEN, tmp, footer);
    if (err)
        return err;
    int64_t off = cap_chunk_decode_footer(footer);
    uint64_t end = size - CAP_CHUNK_FOOTER_LEN;
    if (off < CAP_CHUNK_PREFIX_LEN || (uint64_t)off >= end ||
        end - (uint64_t)off > CAP_CHUNK_INDEX_MAX + CAP_CHUNK_RECORD_OVERHEAD)
        return CAP_EFORMAT;
    size_t len = (size_t)(end - (uint64_t)off);
    uint8_t *rec = malloc(len);
    if (!rec)
        return CAP_ENOMEM;
    struct cap_chunk_record_header hdr;
    err = fetch_range(s, key, (uint64_t)off, len, tmp, rec);
    if (!err &&
        (cap_chunk_check_record(rec, len, &hdr) != (long)len || hdr.type != CAP_RECORD_INDEX))
        err = CAP_EFORMAT;
    if (!err)
        err = cap_chunk_decode_index(rec + CAP_CHUNK_RECORD_HEADER_LEN, hdr.length, out);
    free(rec);
    return err;
}

int cap_uploader_remote_totals(const char *storage_url, const char *track_key,
                               const char *local_dir, struct cap_chunk_summary *sum)
{
    memset(sum, 0, sizeof(*sum));
    struct cap_blob_store *s;
    char why[512];
    int err = cap_blob_open(&s, storage_url, why, sizeof(why));
    if (err) {
        CAP_ERROR(NULL, "cannot open the store to count %s: %s", track_key, why);
        return err;
    }
    char prefix[PATH_MAX], tmp[PATH_MAX];
    const char *tmpdir = getenv("TMPDIR");
    snprintf(prefix, sizeof(prefix), "%s/", track_key);
    snprintf(tmp, sizeof(tmp), "%s/capstan-index-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    int fd = mkstemp(tmp);
    if (fd < 0) {
        cap_blob_close(s);
        return -errno;
    }
    close(fd);
    struct remote_list l = {.local_dir = local_dir};
    err = cap_blob_list(s, prefix, collect_remote, &l);
    for (size_t i = 0; !err && i < l.count; i++) {
        char key[PATH_MAX];
        if (snprintf(key, sizeof(key), "%s%s", prefix, l.items[i].name) >= (int)sizeof(key))
            continue;
        struct cap_chunk_summary c;
        err = remote_summary(s, key, l.items[i].size, tmp, &c);
        if (err == CAP_EFORMAT) {
            CAP_WARN(NULL, "%s in the store is not a sealed chunk: not counted", key);
            err = 0;
            continue;
        }
        sum->rtp_records += c.rtp_records;
        sum->rtcp_records += c.rtcp_records;
        sum->event_records += c.event_records;
        sum->rtp_bytes += c.rtp_bytes;
        sum->keyframes += c.keyframes;
    }
    if (err)
        CAP_WARN(NULL, "cannot count the chunks of %s in the store: %s", track_key,
                 s->why[0] ? s->why : cap_strerror(err));
    unlink(tmp);
    free(l.items);
    cap_blob_close(s);
    return err;
}
