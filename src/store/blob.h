/* Blob store: where recordings and outputs live, under the storage keys of DESIGN.md §3.4.
 * One small vtable, two backends: a local directory (the embedded default) and S3 (any
 * S3-compatible server, libcurl with its AWS SigV4 signing). Keys are relative
 * ("rooms/r1/rec1/metadata.json"); a store opened on "s3://bucket/prefix" puts them under
 * the prefix, a local store under its directory. Every call is blocking and thread-safe
 * on distinct handles; one handle is used by one thread at a time. */
#ifndef CAP_STORE_BLOB_H
#define CAP_STORE_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cap_blob_store;

struct cap_blob_info {
    uint64_t size;
    char etag[80];                 /* "" when the backend has none */
};

/* Called for each key under a prefix; return non-zero to stop the listing. */
typedef int (*cap_blob_list_fn)(void *user, const char *key, const struct cap_blob_info *info);

struct cap_blob_store_ops {
    const char *name;              /* "local" or "s3" */
    int (*put_file)(struct cap_blob_store *s, const char *key, const char *path);
    int (*put_buf)(struct cap_blob_store *s, const char *key, const void *data, size_t len,
                   const char *content_type);
    /* length 0: to the end. Writes to path (created or truncated). */
    int (*get_file)(struct cap_blob_store *s, const char *key, uint64_t offset, uint64_t length,
                    const char *path);
    int (*head)(struct cap_blob_store *s, const char *key, struct cap_blob_info *out); /* CAP_ENOENT */
    int (*del)(struct cap_blob_store *s, const char *key);
    int (*list)(struct cap_blob_store *s, const char *prefix, cap_blob_list_fn fn, void *user);
    /* A URL anyone can GET (or PUT) for expires_s seconds; *out is malloc'd. */
    int (*presign)(struct cap_blob_store *s, const char *method, const char *key, int expires_s,
                   char **out);
    void (*close)(struct cap_blob_store *s);
    /* Whether etag (as head() reported it) is one this backend gives an object holding exactly
     * the bytes of path: 0 yes, CAP_ECHECKSUM no, CAP_EUNSUPPORTED when the backend has no
     * ETags to tell by (then only sizes compare). S3: the file's MD5, or for a multipart
     * upload the MD5 of its parts' MD5s and "-N". */
    int (*etag_matches)(struct cap_blob_store *s, const char *path, const char *etag);
};

/* Every call fills why with the reason when it fails (network, HTTP status, S3 error code
 * and message); where names the store for logs, never with its credentials. */
struct cap_blob_store {
    const struct cap_blob_store_ops *ops;
    char where[512];
    char why[512];
};

/* url: a local path, "file:///abs/dir", or
 * "s3://bucket/prefix?endpoint=http://host:port&region=us-east-1[&path_style=1]".
 * S3 credentials come from the URL's access_key/secret_key parameters, else from
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. why gets a message on failure.
 * Also accepted: the reference's custom_s3 form "http(s)://KEY:SECRET@host:port/bucket/prefix
 * [?path_style=true]" (the endpoint is the URL's own host). Other S3 parameters: create_bucket=1
 * (create the bucket at open if it is missing), part_mb=N (multipart part size, 5..5120,
 * default 16; larger files are uploaded in parts), retries=N (attempts after the first on
 * connection errors and 5xx, default 3). endpoint, region and credentials also come from
 * AWS_ENDPOINT_URL, AWS_REGION / AWS_DEFAULT_REGION. Opening never needs the server to be
 * up, except with create_bucket=1. */
int cap_blob_open(struct cap_blob_store **out, const char *url, char *why, size_t why_size);
void cap_blob_close(struct cap_blob_store *s);
bool cap_blob_url_is_s3(const char *url);

static inline int cap_blob_put_file(struct cap_blob_store *s, const char *key, const char *path)
{
    return s->ops->put_file(s, key, path);
}
static inline int cap_blob_get_file(struct cap_blob_store *s, const char *key, uint64_t offset,
                                    uint64_t length, const char *path)
{
    return s->ops->get_file(s, key, offset, length, path);
}
static inline int cap_blob_head(struct cap_blob_store *s, const char *key, struct cap_blob_info *out)
{
    return s->ops->head(s, key, out);
}
static inline int cap_blob_delete(struct cap_blob_store *s, const char *key)
{
    return s->ops->del(s, key);
}
static inline int cap_blob_put_buf(struct cap_blob_store *s, const char *key, const void *data,
                                   size_t len, const char *content_type)
{
    return s->ops->put_buf(s, key, data, len, content_type);
}
static inline int cap_blob_presign(struct cap_blob_store *s, const char *method, const char *key,
                                   int expires_s, char **out)
{
    return s->ops->presign(s, method, key, expires_s, out);
}
static inline const char *cap_blob_why(const struct cap_blob_store *s)
{
    return s->why;
}
static inline int cap_blob_list(struct cap_blob_store *s, const char *prefix, cap_blob_list_fn fn,
                                void *user)
{
    return s->ops->list(s, prefix, fn, user);
}

/* Copies every object under prefix into local_dir (keys relative to prefix become paths),
 * and every file under local_dir up under prefix: how workers fetch a recording and
 * publish outputs. A prefix names a folder ("rooms/r/rec" never matches "rooms/r/rec2/...");
 * "" is the whole store. Each upload is confirmed (cap_blob_put_file_confirmed). Both return
 * the number of files copied, or a negative CAP_E* with why filled. */
int cap_blob_download_prefix(struct cap_blob_store *s, const char *prefix, const char *local_dir);
int cap_blob_upload_dir(struct cap_blob_store *s, const char *local_dir, const char *prefix);

/* Makes sure key holds exactly the bytes of path: if the store already has an object of the
 * same size and ETag it is left alone, else the file is put; either way the object is then
 * checked with head() (size, and ETag where the backend has them). 0 once confirmed,
 * CAP_ECHECKSUM if the store holds something else after the put, or the put's error. */
int cap_blob_put_file_confirmed(struct cap_blob_store *s, const char *key, const char *path);

/* PUTs a file to a presigned URL (the reference's compose custom_s3). */
int cap_blob_put_url(const char *url, const char *path, char *why, size_t why_size);

#endif
