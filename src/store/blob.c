/* The blob store front (blob.h): opening a store by URL (a local folder, or S3 through
 * s3.c), the local-folder backend, and the copies between a store prefix and a local folder
 * that workers and `capstan convert` use. */
#include "store/blob.h"

#include "capstan/error.h"
#include "store/s3.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/why.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LISTED_KEYS 1000000     /* one listing held in memory by download_prefix */
#define TEMP_PREFIX ".capstan-put-" /* a local put in progress; listings skip it */
#define COPY_BLOCK (1u << 20)

/* ---- keys ---- */

/* A key (or a listing prefix, which may end with '/') that maps to a path under a root:
 * relative, no empty, "." or ".." segment, no control characters. */
static bool key_ok(const char *key, bool is_prefix)
{
    size_t n = strlen(key);
    if (n == 0)
        return is_prefix;
    if (key[0] == '/' || n > 1024)
        return false;
    const char *seg = key;
    for (const char *p = key;; p++) {
        if (*p && (unsigned char)*p < 0x20)
            return false;
        if (*p == '/' || *p == '\0') {
            size_t len = (size_t)(p - seg);
            bool last = *p == '\0';
            if (len == 0 && !(last && is_prefix))
                return false;
            if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
                return false;
            if (last)
                return true;
            seg = p + 1;
        }
    }
}

/* ---- the local backend ---- */

struct local_store {
    struct cap_blob_store base;
    char root[PATH_MAX];
};

static int local_path(struct local_store *ls, const char *key, char *out, size_t size)
{
    if (!key_ok(key, false)) {
        cap_set_why(ls->base.why, sizeof(ls->base.why), "bad key '%.200s'", key);
        return CAP_EINVAL;
    }
    if (snprintf(out, size, "%s/%s", ls->root, key) >= (int)size) {
        cap_set_why(ls->base.why, sizeof(ls->base.why), "key too long for a path: '%.200s'", key);
        return CAP_ELIMIT;
    }
    return 0;
}

static int make_parent(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    return cap_mkdir_p(dir);
}

/* Copies length bytes (0: to the end) from in at offset into out at its position. */
static int copy_range(int in, uint64_t offset, uint64_t length, int out)
{
    uint8_t *block = malloc(COPY_BLOCK);
    if (!block)
        return CAP_ENOMEM;
    int err = 0;
    uint64_t done = 0;
    while (length == 0 || done < length) {
        size_t want = COPY_BLOCK;
        if (length && length - done < want)
            want = (size_t)(length - done);
        ssize_t n = cap_pread_full(in, block, want, (off_t)(offset + done));
        if (n < 0) {
            err = (int)n;
            break;
        }
        if (n == 0)
            break;
        if ((err = cap_write_all(out, block, (size_t)n)))
            break;
        done += (uint64_t)n;
    }
    free(block);
    if (!err && length && done < length)
        err = CAP_ETRUNC;
    return err;
}

/* Writes a new file next to path under a temporary name, then renames it over path, so a
 * reader sees the old object or the new one, never half of one. */
static int local_write_atomic(struct local_store *ls, const char *path, int src_fd,
                              const void *data, size_t len)
{
    int err = make_parent(path);
    if (err) {
        cap_set_why(ls->base.why, sizeof(ls->base.why), "cannot make the folder of %s: %s", path,
                cap_strerror(err));
        return err;
    }
    char tmp[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int dir_len = (int)(slash - path);
    if (snprintf(tmp, sizeof(tmp), "%.*s/" TEMP_PREFIX "XXXXXX", dir_len, path) >= (int)sizeof(tmp))
        return CAP_ELIMIT;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        err = -errno;
        cap_set_why(ls->base.why, sizeof(ls->base.why), "cannot create %s: %s", tmp, strerror(errno));
        return err;
    }
    fchmod(fd, 0644);
    err = src_fd >= 0 ? copy_range(src_fd, 0, 0, fd) : cap_write_all(fd, data, len);
    if (!err && fsync(fd) != 0)
        err = -errno;
    if (close(fd) != 0 && !err)
        err = -errno;
    if (!err && rename(tmp, path) != 0)
        err = -errno;
    if (err) {
        unlink(tmp);
        cap_set_why(ls->base.why, sizeof(ls->base.why), "cannot write %s: %s", path, cap_strerror(err));
        return err;
    }
    return cap_fsync_parent(path);
}

static int local_put_file(struct cap_blob_store *s, const char *key, const char *src)
{
    struct local_store *ls = (struct local_store *)s;
    char path[PATH_MAX];
    int err = local_path(ls, key, path, sizeof(path));
    if (err)
        return err;
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        err = errno == ENOENT ? CAP_ENOENT : -errno;
        cap_set_why(s->why, sizeof(s->why), "cannot open %s: %s", src, strerror(errno));
        return err;
    }
    struct stat a, b;
    if (fstat(in, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
        close(in); /* the store's folder holds this very file already */
        return 0;
    }
    err = local_write_atomic(ls, path, in, NULL, 0);
    close(in);
    return err;
}

static int local_put_buf(struct cap_blob_store *s, const char *key, const void *data, size_t len,
                         const char *content_type)
{
    (void)content_type;
    struct local_store *ls = (struct local_store *)s;
    char path[PATH_MAX];
    int err = local_path(ls, key, path, sizeof(path));
    return err ? err : local_write_atomic(ls, path, -1, data, len);
}

static int local_get_file(struct cap_blob_store *s, const char *key, uint64_t offset,
                          uint64_t length, const char *dest)
{
    struct local_store *ls = (struct local_store *)s;
    char path[PATH_MAX];
    int err = local_path(ls, key, path, sizeof(path));
    if (err)
        return err;
    int in = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (in < 0 || fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (in >= 0)
            close(in);
        cap_set_why(s->why, sizeof(s->why), "no object '%.200s' in %s", key, s->where);
        return CAP_ENOENT;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (offset > size || (offset == size && size > 0)) {
        close(in);
        cap_set_why(s->why, sizeof(s->why),
                "range starts at %llu, past the end of '%.200s' (%llu bytes)",
                (unsigned long long)offset, key, (unsigned long long)size);
        return CAP_ERANGE;
    }
    if (length == 0 || length > size - offset)
        length = size - offset;
    if ((err = make_parent(dest)) != 0) {
        close(in);
        cap_set_why(s->why, sizeof(s->why), "cannot make the folder of %s: %s", dest,
                cap_strerror(err));
        return err;
    }
    int out = open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
        err = -errno;
        close(in);
        cap_set_why(s->why, sizeof(s->why), "cannot create %s: %s", dest, cap_strerror(err));
        return err;
    }
    err = length ? copy_range(in, offset, length, out) : 0;
    if (close(out) != 0 && !err)
        err = -errno;
    close(in);
    if (err)
        cap_set_why(s->why, sizeof(s->why), "copying '%.200s' to %s: %s", key, dest, cap_strerror(err));
    return err;
}

static int local_head(struct cap_blob_store *s, const char *key, struct cap_blob_info *out)
{
    struct local_store *ls = (struct local_store *)s;
    char path[PATH_MAX];
    int err = local_path(ls, key, path, sizeof(path));
    if (err)
        return err;
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        cap_set_why(s->why, sizeof(s->why), "no object '%.200s' in %s", key, s->where);
        return CAP_ENOENT;
    }
    out->size = (uint64_t)st.st_size;
    out->etag[0] = '\0';
    return 0;
}

static int local_del(struct cap_blob_store *s, const char *key)
{
    struct local_store *ls = (struct local_store *)s;
    char path[PATH_MAX];
    int err = local_path(ls, key, path, sizeof(path));
    if (err)
        return err;
    if (unlink(path) != 0 && errno != ENOENT) {
        err = -errno;
        cap_set_why(s->why, sizeof(s->why), "cannot delete %s: %s", path, strerror(errno));
        return err;
    }
    /* Folders left empty go too, as they would in S3 where folders do not exist. */
    size_t root_len = strlen(ls->root);
    for (char *slash = strrchr(path, '/'); slash && (size_t)(slash - path) > root_len;
         slash = strrchr(path, '/')) {
        *slash = '\0';
        if (rmdir(path) != 0)
            break;
    }
    return 0;
}

struct listed {
    char *key;
    uint64_t size;
};

struct key_list {
    struct listed *items;
    size_t count, cap;
};

static void key_list_free(struct key_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i].key);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

static int key_list_add(struct key_list *l, const char *key, uint64_t size)
{
    if (l->count == MAX_LISTED_KEYS)
        return CAP_ELIMIT;
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct listed *items = realloc(l->items, cap * sizeof(*items));
        if (!items)
            return CAP_ENOMEM;
        l->items = items;
        l->cap = cap;
    }
    if (!(l->items[l->count].key = strdup(key)))
        return CAP_ENOMEM;
    l->items[l->count++].size = size;
    return 0;
}

static int compare_listed(const void *a, const void *b)
{
    return strcmp(((const struct listed *)a)->key, ((const struct listed *)b)->key);
}

/* A temporary file of a write in progress (ours, or util/fs's "name.tmp.PID"). */
static bool temp_name(const char *name)
{
    if (strncmp(name, TEMP_PREFIX, strlen(TEMP_PREFIX)) == 0)
        return true;
    const char *t = strstr(name, ".tmp.");
    if (!t || !t[5])
        return false;
    for (t += 5; *t; t++)
        if (*t < '0' || *t > '9')
            return false;
    return true;
}

/* Adds every regular file under dir/rel whose key starts with prefix. */
static int walk(const char *root, const char *rel, const char *prefix, struct key_list *out,
                int depth)
{
    if (depth > 64)
        return CAP_ELIMIT;
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof(dir), "%s%s%s", root, *rel ? "/" : "", rel) >= (int)sizeof(dir))
        return CAP_ELIMIT;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
    int err = 0;
    struct dirent *e;
    while (!err && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || temp_name(e->d_name))
            continue;
        char key[PATH_MAX];
        if (snprintf(key, sizeof(key), "%s%s%s", rel, *rel ? "/" : "", e->d_name) >=
            (int)sizeof(key))
            continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/%s", root, key) >= (int)sizeof(path))
            continue;
        struct stat st;
        if (lstat(path, &st) != 0)
            continue;
        size_t klen = strlen(key), plen = strlen(prefix);
        if (S_ISDIR(st.st_mode)) {
            /* Descend only where keys can still start with the prefix. */
            size_t n = klen < plen ? klen : plen;
            if (strncmp(key, prefix, n) == 0)
                err = walk(root, key, prefix, out, depth + 1);
        } else if (S_ISREG(st.st_mode) && strncmp(key, prefix, plen) == 0) {
            err = key_list_add(out, key, (uint64_t)st.st_size);
        }
    }
    closedir(d);
    return err;
}

static int local_list(struct cap_blob_store *s, const char *prefix, cap_blob_list_fn fn, void *user)
{
    struct local_store *ls = (struct local_store *)s;
    if (!key_ok(prefix, true)) {
        cap_set_why(s->why, sizeof(s->why), "bad prefix '%.200s'", prefix);
        return CAP_EINVAL;
    }
    struct key_list l = {0};
    int err = walk(ls->root, "", prefix, &l, 0);
    if (err) {
        cap_set_why(s->why, sizeof(s->why), "listing %s: %s", ls->root, cap_strerror(err));
        key_list_free(&l);
        return err;
    }
    if (l.count > 1)
        qsort(l.items, l.count, sizeof(*l.items), compare_listed);
    for (size_t i = 0; i < l.count; i++) {
        struct cap_blob_info info = {.size = l.items[i].size};
        if (fn(user, l.items[i].key, &info) != 0)
            break;
    }
    key_list_free(&l);
    return 0;
}

static int local_presign(struct cap_blob_store *s, const char *method, const char *key,
                         int expires_s, char **out)
{
    (void)method, (void)key, (void)expires_s, (void)out;
    cap_set_why(s->why, sizeof(s->why),
            "a local store has no URLs of its own: the API's signed /files/ links serve its files");
    return CAP_EUNSUPPORTED;
}

static int local_etag_matches(struct cap_blob_store *s, const char *path, const char *etag)
{
    (void)s, (void)path, (void)etag;
    return CAP_EUNSUPPORTED;
}

static void local_close(struct cap_blob_store *s)
{
    free(s);
}

static const struct cap_blob_store_ops local_ops = {
    .name = "local",
    .put_file = local_put_file,
    .put_buf = local_put_buf,
    .get_file = local_get_file,
    .head = local_head,
    .del = local_del,
    .list = local_list,
    .presign = local_presign,
    .close = local_close,
    .etag_matches = local_etag_matches,
};

static int open_local(struct cap_blob_store **out, const char *dir, char *why, size_t why_size)
{
    if (!*dir) {
        cap_set_why(why, why_size, "empty storage path");
        return CAP_EINVAL;
    }
    struct local_store *ls = calloc(1, sizeof(*ls));
    if (!ls)
        return CAP_ENOMEM;
    /* A folder that is not there yet is made by the first put, not by opening (a listing
     * must not leave folders behind). */
    struct stat st;
    int err = 0;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode) || !realpath(dir, ls->root))
            err = CAP_EINVAL;
    } else if (errno == ENOENT) {
        char cwd[PATH_MAX];
        if (dir[0] == '/')
            err = snprintf(ls->root, sizeof(ls->root), "%s", dir) >= (int)sizeof(ls->root)
                      ? CAP_ELIMIT
                      : 0;
        else if (!getcwd(cwd, sizeof(cwd)) ||
                 snprintf(ls->root, sizeof(ls->root), "%s/%s", cwd, dir) >= (int)sizeof(ls->root))
            err = CAP_ELIMIT;
    } else {
        err = -errno;
    }
    if (!err && strlen(ls->root) > PATH_MAX - 1100)
        err = CAP_ELIMIT;
    if (err) {
        cap_set_why(why, why_size, "storage folder %s: %s", dir,
                err == CAP_EINVAL ? "not a folder" : cap_strerror(err));
        free(ls);
        return err;
    }
    size_t n = strlen(ls->root);
    while (n > 1 && ls->root[n - 1] == '/')
        ls->root[--n] = '\0';
    ls->base.ops = &local_ops;
    snprintf(ls->base.where, sizeof(ls->base.where), "%.500s", ls->root);
    *out = &ls->base;
    return 0;
}

/* ---- opening by URL ---- */

bool cap_blob_url_is_s3(const char *url)
{
    return url && (strncmp(url, "s3://", 5) == 0 || strncmp(url, "http://", 7) == 0 ||
                   strncmp(url, "https://", 8) == 0);
}

int cap_blob_open(struct cap_blob_store **out, const char *url, char *why, size_t why_size)
{
    cap_set_why(why, why_size, "%s", "");
    if (!url) {
        cap_set_why(why, why_size, "no storage URL");
        return CAP_EINVAL;
    }
    if (cap_blob_url_is_s3(url)) {
        struct cap_s3_config *cfg = calloc(1, sizeof(*cfg));
        if (!cfg)
            return CAP_ENOMEM;
        int err = cap_s3_parse_url(url, cfg, why, why_size);
        if (!err)
            err = cap_s3_open(out, cfg, why, why_size);
        memset(cfg->secret_key, 0, sizeof(cfg->secret_key));
        free(cfg);
        return err;
    }
    if (strncmp(url, "file://", 7) == 0) {
        if (url[7] != '/') {
            cap_set_why(why, why_size, "a file: URL needs an absolute path (file:///dir), not '%.200s'",
                    url);
            return CAP_EINVAL;
        }
        return open_local(out, url + 7, why, why_size);
    }
    if (strstr(url, "://")) {
        cap_set_why(why, why_size,
                "unknown storage URL scheme in '%.100s' (use a folder, file:///dir or "
                "s3://bucket/prefix)",
                url);
        return CAP_EINVAL;
    }
    return open_local(out, url, why, why_size);
}

void cap_blob_close(struct cap_blob_store *s)
{
    if (s)
        s->ops->close(s);
}

/* ---- copies between a prefix and a folder ---- */

static int collect(void *user, const char *key, const struct cap_blob_info *info)
{
    return key_list_add(user, key, info->size) ? 1 : 0;
}

/* "a/b" -> "a/b/" so a prefix names a folder, never "a/bc". */
static int folder_prefix(const char *prefix, char *out, size_t size)
{
    size_t n = strlen(prefix);
    while (n && prefix[0] == '/')
        prefix++, n--;
    int w = snprintf(out, size, "%s%s", prefix, n && prefix[n - 1] != '/' ? "/" : "");
    return w < 0 || (size_t)w >= size ? CAP_ELIMIT : 0;
}

int cap_blob_download_prefix(struct cap_blob_store *s, const char *prefix, const char *local_dir)
{
    char folder[1100];
    if (folder_prefix(prefix, folder, sizeof(folder)) != 0) {
        cap_set_why(s->why, sizeof(s->why), "prefix too long");
        return CAP_ELIMIT;
    }
    struct key_list l = {0};
    int err = cap_blob_list(s, folder, collect, &l);
    if (!err && l.count == MAX_LISTED_KEYS) {
        cap_set_why(s->why, sizeof(s->why), "more than %d objects under '%.200s'", MAX_LISTED_KEYS,
                folder);
        err = CAP_ELIMIT;
    }
    if (!err && (err = cap_mkdir_p(local_dir)) != 0)
        cap_set_why(s->why, sizeof(s->why), "cannot make %s: %s", local_dir, cap_strerror(err));
    size_t plen = strlen(folder);
    for (size_t i = 0; !err && i < l.count; i++) {
        const char *rel = l.items[i].key + plen;
        if (!key_ok(rel, false)) {
            CAP_WARN(NULL, "download from %s: skipped '%.200s' (not a safe file name)", s->where,
                     l.items[i].key);
            continue;
        }
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/%s", local_dir, rel) >= (int)sizeof(path)) {
            cap_set_why(s->why, sizeof(s->why), "path too long for '%.200s'", l.items[i].key);
            err = CAP_ELIMIT;
            break;
        }
        err = cap_blob_get_file(s, l.items[i].key, 0, 0, path);
    }
    size_t count = l.count;
    key_list_free(&l);
    return err ? err : (int)count;
}

int cap_blob_upload_dir(struct cap_blob_store *s, const char *local_dir, const char *prefix)
{
    char folder[1100] = "";
    if (*prefix && folder_prefix(prefix, folder, sizeof(folder)) != 0) {
        cap_set_why(s->why, sizeof(s->why), "prefix too long");
        return CAP_ELIMIT;
    }
    struct key_list l = {0};
    int err = walk(local_dir, "", "", &l, 0);
    if (err)
        cap_set_why(s->why, sizeof(s->why), "listing %s: %s", local_dir, cap_strerror(err));
    if (!err && l.count > 1)
        qsort(l.items, l.count, sizeof(*l.items), compare_listed);
    for (size_t i = 0; !err && i < l.count; i++) {
        char key[2200], path[PATH_MAX];
        if (snprintf(key, sizeof(key), "%s%s", folder, l.items[i].key) >= (int)sizeof(key) ||
            snprintf(path, sizeof(path), "%s/%s", local_dir, l.items[i].key) >= (int)sizeof(path)) {
            cap_set_why(s->why, sizeof(s->why), "path too long for '%.200s'", l.items[i].key);
            err = CAP_ELIMIT;
            break;
        }
        err = cap_blob_put_file_confirmed(s, key, path);
    }
    size_t count = l.count;
    key_list_free(&l);
    return err ? err : (int)count;
}

/* ---- confirmed puts ---- */

int cap_blob_put_file_confirmed(struct cap_blob_store *s, const char *key, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        cap_set_why(s->why, sizeof(s->why), "%s: %s", path, errno ? strerror(errno) : "not a file");
        return CAP_ENOENT;
    }
    struct cap_blob_info info;
    /* Already there (a restart after the upload but before the local copy went)? */
    if (cap_blob_head(s, key, &info) == 0 && info.size == (uint64_t)st.st_size &&
        s->ops->etag_matches(s, path, info.etag) == 0)
        return 0;
    int err = cap_blob_put_file(s, key, path);
    if (!err)
        err = cap_blob_head(s, key, &info);
    if (err)
        return err;
    int match = info.size == (uint64_t)st.st_size ? s->ops->etag_matches(s, path, info.etag)
                                                  : CAP_ECHECKSUM;
    if (match == CAP_ECHECKSUM) {
        cap_set_why(s->why, sizeof(s->why),
                "'%.200s' after upload: %llu bytes, ETag %s; the file %s has %llu bytes", key,
                (unsigned long long)info.size, info.etag[0] ? info.etag : "none", path,
                (unsigned long long)st.st_size);
        return CAP_ECHECKSUM;
    }
    return match == CAP_EUNSUPPORTED ? 0 : match;
}
