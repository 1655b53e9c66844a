/* The S3 backend (s3.h): every blob store call as S3 REST requests through one libcurl easy
 * handle, signed by libcurl's AWS SigV4 (CURLOPT_AWS_SIGV4); presigned URLs by sigv4.c.
 * Bodies stream from and to files; files above the part size go up as multipart uploads;
 * connection errors and 5xx answers are retried with exponential backoff, 4xx never. */
#include "store/s3.h"

#include "capstan/error.h"
#include "store/sigv4.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/why.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define USER_AGENT "capstan/0.1"
#define MAX_XML_BODY (8u << 20) /* a listing page or an error: far below this */
#define CONNECT_TIMEOUT_S 10L
#define STALL_SECONDS 60L /* a transfer moving no byte for this long fails */
#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 8000
#define READ_BLOCK (1u << 20)

/* ---- the store ---- */

struct s3_store {
    struct cap_blob_store base;
    struct cap_s3_config cfg;
    CURL *curl;
    char sigv4[128]; /* "aws:amz:REGION:s3" */
    char userpwd[520];
    char curl_error[CURL_ERROR_SIZE];
    uint64_t random_state;
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static CURLcode init_result;

static void init_libraries(void)
{
    init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
    xmlInitParser();
}

/* A body sent from memory or from a range of a file (re-read from the start on a retry). */
struct body_source {
    const uint8_t *data;
    int fd; /* -1: data */
    uint64_t offset, length;
    uint64_t sent;
};

struct response {
    long status;
    char etag[80];
    struct cap_buf body; /* errors and XML answers */
    int out_fd;          /* a successful GET's body goes here (-1: into body) */
    uint64_t written;
    int write_error;
};

struct request {
    const char *method; /* GET, HEAD, PUT, POST, DELETE */
    const char *url;
    const char *payload_hash; /* x-amz-content-sha256 */
    const char *content_md5;  /* base64, or NULL */
    const char *content_type;
    const char *range;        /* "bytes=A-B", or NULL */
    struct body_source *body; /* NULL: no body */
    const char *what;         /* for messages: "PUT rooms/..." */
};

static size_t on_header(char *line, size_t size, size_t count, void *user)
{
    struct response *r = user;
    size_t n = size * count;
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        r->etag[0] = '\0'; /* a new response (after 100 Continue, say) */
    } else if (n > 5 && strncasecmp(line, "ETag:", 5) == 0) {
        const char *v = line + 5;
        size_t len = n - 5;
        while (len && (*v == ' ' || *v == '\t'))
            v++, len--;
        while (len && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
            len--;
        if (len >= sizeof(r->etag))
            len = sizeof(r->etag) - 1;
        memcpy(r->etag, v, len);
        r->etag[len] = '\0';
    }
    return n;
}

static size_t on_body(char *data, size_t size, size_t count, void *user)
{
    struct s3_store *s = ((void **)user)[0];
    struct response *r = ((void **)user)[1];
    size_t n = size * count;
    long status = 0;
    curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
    if (r->out_fd >= 0 && status >= 200 && status < 300) {
        int err = cap_write_all(r->out_fd, data, n);
        if (err) {
            r->write_error = err;
            return 0;
        }
        r->written += n;
        return n;
    }
    /* An error body or an XML answer: kept up to a cap, the rest ignored. */
    size_t room = r->body.max - r->body.len;
    cap_buf_append(&r->body, data, n < room ? n : room);
    return n;
}

static size_t on_read(char *out, size_t size, size_t count, void *user)
{
    struct body_source *b = user;
    size_t want = size * count;
    uint64_t left = b->length - b->sent;
    if (want > left)
        want = (size_t)left;
    if (want == 0)
        return 0;
    if (b->fd < 0) {
        memcpy(out, b->data + b->sent, want);
    } else {
        ssize_t got = cap_pread_full(b->fd, out, want, (off_t)(b->offset + b->sent));
        if (got <= 0)
            return CURL_READFUNC_ABORT; /* the file shrank: the upload must not claim it is whole */
        want = (size_t)got;
    }
    b->sent += want;
    return want;
}

static bool transient_curl_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:
        return true;
    default:
        return false;
    }
}

static bool transient_status(long status)
{
    return status == 429 || status >= 500;
}

static uint64_t next_random(struct s3_store *s)
{
    /* xorshift64: jitter only, so retries from many recorders do not line up */
    uint64_t x = s->random_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return s->random_state = x;
}

static void backoff(struct s3_store *s, int attempt)
{
    int64_t ms = BACKOFF_FIRST_MS;
    for (int i = 0; i < attempt && ms < BACKOFF_MAX_MS; i++)
        ms *= 2;
    if (ms > BACKOFF_MAX_MS)
        ms = BACKOFF_MAX_MS;
    ms += (int64_t)(next_random(s) % (uint64_t)(ms / 2 + 1));
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* One attempt. Returns the CURLcode; r->status is the HTTP status when there was one. */
static CURLcode perform_once(struct s3_store *s, const struct request *rq, struct response *r)
{
    CURL *c = s->curl;
    curl_easy_reset(c);
    struct curl_slist *headers = NULL;
    char line[256];
    snprintf(line, sizeof(line), "x-amz-content-sha256: %s", rq->payload_hash);
    headers = curl_slist_append(headers, line);
    if (rq->content_md5) {
        snprintf(line, sizeof(line), "Content-MD5: %s", rq->content_md5);
        headers = curl_slist_append(headers, line);
    }
    if (rq->content_type) {
        snprintf(line, sizeof(line), "Content-Type: %s", rq->content_type);
        headers = curl_slist_append(headers, line);
    }
    if (rq->range) {
        snprintf(line, sizeof(line), "Range: %s", rq->range);
        headers = curl_slist_append(headers, line);
    }
    /* Not "Expect:" to turn 100-continue off: libcurl 7.88 would sign that header although it
     * is never sent, and the server's signature would differ. */
    if (!headers)
        return CURLE_OUT_OF_MEMORY;
    void *ctx[2] = {s, r};
    curl_easy_setopt(c, CURLOPT_URL, rq->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, s->sigv4);
    curl_easy_setopt(c, CURLOPT_USERPWD, s->userpwd);
    curl_easy_setopt(c, CURLOPT_USERAGENT, USER_AGENT);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, STALL_SECONDS);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, s->curl_error);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, ctx);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (strcmp(rq->method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(rq->method, "PUT") == 0) {
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
                         (curl_off_t)(rq->body ? rq->body->length : 0));
    } else if (strcmp(rq->method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(rq->body ? rq->body->length : 0));
        if (!rq->body)
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    } else if (strcmp(rq->method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
    }
    if (rq->body) {
        rq->body->sent = 0;
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, rq->body);
    }
    s->curl_error[0] = '\0';
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(headers);
    return rc;
}

/* The text of the first element called name under node (any depth), or NULL. */
static xmlNode *find_element(xmlNode *node, const char *name)
{
    for (xmlNode *n = node; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        if (strcmp((const char *)n->name, name) == 0)
            return n;
        xmlNode *found = find_element(n->children, name);
        if (found)
            return found;
    }
    return NULL;
}

static void element_text(xmlNode *parent, const char *name, char *out, size_t size)
{
    out[0] = '\0';
    xmlNode *n = parent ? find_element(parent->children, name) : NULL;
    if (!n)
        return;
    xmlChar *text = xmlNodeGetContent(n);
    if (text) {
        snprintf(out, size, "%s", (const char *)text);
        xmlFree(text);
    }
}

static xmlDoc *parse_xml(const struct cap_buf *body)
{
    if (body->len == 0 || body->len > INT32_MAX)
        return NULL;
    return xmlReadMemory((const char *)body->data, (int)body->len, "s3.xml", NULL,
                         XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

static const char *status_text(long status)
{
    switch (status) {
    case 301:
    case 307:
        return "(redirected: wrong region, or try path_style=1)";
    case 400:
        return "(bad request)";
    case 403:
        return "(forbidden: wrong credentials or clock, or no permission)";
    case 404:
        return "(not found)";
    case 416:
        return "(range not satisfiable)";
    default:
        return status >= 500 ? "(server error)" : "";
    }
}

/* why <- "what: HTTP 403 AccessDenied: Access Denied" from an S3 error answer. */
static void describe_failure(struct s3_store *s, const struct request *rq, const struct response *r)
{
    char code[128] = "", message[256] = "";
    xmlDoc *doc = parse_xml(&r->body);
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (root && strcmp((const char *)root->name, "Error") == 0) {
        element_text(root, "Code", code, sizeof(code));
        element_text(root, "Message", message, sizeof(message));
    }
    if (doc)
        xmlFreeDoc(doc);
    if (!code[0]) /* a HEAD answer has no body to say why */
        snprintf(code, sizeof(code), "%s", status_text(r->status));
    cap_set_why(s->base.why, sizeof(s->base.why), "%s: HTTP %ld%s%s%s%s (%s)", rq->what, r->status,
            code[0] ? " " : "", code, message[0] ? ": " : "", message, s->base.where);
}

static int status_error(long status)
{
    if (status == 404)
        return CAP_ENOENT;
    if (status == 416)
        return CAP_ERANGE;
    if (transient_status(status))
        return CAP_EAGAIN;
    return CAP_EINVAL;
}

/* Runs a request with retries. 0: a 2xx answer; else the error, with why filled. */
static int call(struct s3_store *s, const struct request *rq, struct response *r)
{
    int attempts = 1 + s->cfg.retries;
    for (int attempt = 0;; attempt++) {
        cap_buf_reset(&r->body);
        r->status = 0;
        r->etag[0] = '\0';
        r->written = 0;
        r->write_error = 0;
        if (r->out_fd >= 0 &&
            (ftruncate(r->out_fd, 0) != 0 || lseek(r->out_fd, 0, SEEK_SET) != 0)) {
            cap_set_why(s->base.why, sizeof(s->base.why), "%s: cannot rewind the output file: %s",
                    rq->what, strerror(errno));
            return -errno;
        }
        CURLcode rc = perform_once(s, rq, r);
        if (r->write_error) {
            cap_set_why(s->base.why, sizeof(s->base.why), "%s: writing the download: %s", rq->what,
                    cap_strerror(r->write_error));
            return r->write_error;
        }
        if (rc == CURLE_OK && r->status >= 200 && r->status < 300)
            return 0;
        bool transient = rc != CURLE_OK ? transient_curl_error(rc) : transient_status(r->status);
        if (rc != CURLE_OK)
            cap_set_why(s->base.why, sizeof(s->base.why), "%s: %s (%s)", rq->what,
                    s->curl_error[0] ? s->curl_error : curl_easy_strerror(rc), s->base.where);
        else
            describe_failure(s, rq, r);
        if (!transient || attempt + 1 >= attempts) {
            if (rc != CURLE_OK)
                return transient ? CAP_EAGAIN : CAP_EIO;
            return status_error(r->status);
        }
        CAP_DEBUG(NULL, "%s; retrying (attempt %d of %d)", s->base.why, attempt + 2, attempts);
        backoff(s, attempt);
    }
}

static void response_init(struct response *r, int out_fd)
{
    memset(r, 0, sizeof(*r));
    cap_buf_init(&r->body, MAX_XML_BODY);
    r->out_fd = out_fd;
}

static void response_deinit(struct response *r)
{
    cap_buf_deinit(&r->body);
}

/* ---- URLs ---- */

/* The object's full key: the store prefix, '/', key. */
static int full_key(struct s3_store *s, const char *key, struct cap_buf *out)
{
    if (!key || (!*key && !s->cfg.prefix[0]) || key[0] == '/' || strlen(key) > 1024) {
        cap_set_why(s->base.why, sizeof(s->base.why), "bad key '%.200s'", key ? key : "(null)");
        return CAP_EINVAL;
    }
    int err =
        cap_buf_printf(out, "%s%s%s", s->cfg.prefix, s->cfg.prefix[0] && *key ? "/" : "", key);
    return err ? err : cap_buf_append_byte(out, 0);
}

/* The canonical path ("/bucket/key" or "/key") of a full key (NULL: the bucket itself). */
static int canonical_path(struct s3_store *s, const char *fullkey, struct cap_buf *out)
{
    int err = s->cfg.path_style ? cap_buf_printf(out, "/%s", s->cfg.bucket) : 0;
    if (!err && (fullkey || !s->cfg.path_style))
        err = cap_buf_append_byte(out, '/');
    if (!err && fullkey)
        err = cap_sigv4_uri_encode(out, fullkey, strlen(fullkey), true);
    return err;
}

static const char *request_host(struct s3_store *s, char *buf, size_t size)
{
    if (s->cfg.path_style)
        return s->cfg.host;
    snprintf(buf, size, "%s.%s", s->cfg.bucket, s->cfg.host);
    return buf;
}

/* scheme://host/path[?query]; the query must already be canonical (sorted, encoded): libcurl
 * 7.88 signs the query string as it is given. */
static int build_url(struct s3_store *s, const char *fullkey, const char *query,
                     struct cap_buf *out)
{
    char host[400];
    int err = cap_buf_printf(out, "%s://%s", s->cfg.scheme, request_host(s, host, sizeof(host)));
    if (!err)
        err = canonical_path(s, fullkey, out);
    if (!err && query && *query)
        err = cap_buf_printf(out, "?%s", query);
    return err ? err : cap_buf_append_byte(out, 0);
}

static int object_url(struct s3_store *s, const char *key, const char *query, struct cap_buf *url,
                      struct cap_buf *fullkey)
{
    int err = full_key(s, key, fullkey);
    return err ? err : build_url(s, (const char *)fullkey->data, query, url);
}

static int call(struct s3_store *s, const struct request *rq, struct response *r);

/* One request on one object: its URL (with query) goes into rq, then call. */
static int call_object(struct s3_store *s, const char *key, const char *query, struct request *rq,
                       struct response *r)
{
    struct cap_buf url, fk;
    cap_buf_init(&url, 8192);
    cap_buf_init(&fk, 2048);
    int err = object_url(s, key, query, &url, &fk);
    if (!err) {
        rq->url = (const char *)url.data;
        err = call(s, rq, r);
        rq->url = NULL;
    }
    cap_buf_deinit(&url);
    cap_buf_deinit(&fk);
    return err;
}

/* ---- hashes ---- */

static void base64(const uint8_t *in, size_t len, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

static void hex(const uint8_t *in, size_t len, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = d[in[i] >> 4];
        out[2 * i + 1] = d[in[i] & 15];
    }
    out[2 * len] = '\0';
}

/* MD5 of a file range. */
static int md5_range(int fd, uint64_t offset, uint64_t length, uint8_t digest[16])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t *block = malloc(READ_BLOCK);
    int err = ctx && block && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) ? 0 : CAP_ENOMEM;
    uint64_t done = 0;
    while (!err && done < length) {
        size_t want = length - done < READ_BLOCK ? (size_t)(length - done) : READ_BLOCK;
        ssize_t n = cap_pread_full(fd, block, want, (off_t)(offset + done));
        if (n < 0)
            err = (int)n;
        else if ((size_t)n < want)
            err = CAP_ETRUNC;
        else
            EVP_DigestUpdate(ctx, block, (size_t)n), done += (uint64_t)n;
    }
    unsigned int dlen = 0;
    if (!err)
        EVP_DigestFinal_ex(ctx, digest, &dlen);
    EVP_MD_CTX_free(ctx);
    free(block);
    return err;
}

static void md5_buf(const void *data, size_t len, uint8_t digest[16])
{
    unsigned int n = 0;
    EVP_Digest(len ? data : "", len, digest, &n, EVP_md5(), NULL);
}

/* ---- operations ---- */

static int put_single(struct s3_store *s, const char *key, struct body_source *body,
                      const uint8_t md5[16], const char *payload_hash, const char *content_type)
{
    char what[300], md5_b64[32], md5_hex[33];
    base64(md5, 16, md5_b64);
    hex(md5, 16, md5_hex);
    snprintf(what, sizeof(what), "PUT %.250s", key);
    struct response r;
    response_init(&r, -1);
    struct request rq = {.method = "PUT",
                         .payload_hash = payload_hash,
                         .content_md5 = md5_b64,
                         .content_type = content_type,
                         .body = body,
                         .what = what};
    int err = call_object(s, key, NULL, &rq, &r);
    if (!err && s->cfg.check_etag && r.etag[0] &&
        strncasecmp(r.etag + (r.etag[0] == '"'), md5_hex, 32) != 0) {
        cap_set_why(s->base.why, sizeof(s->base.why),
                "%s: the server's ETag %s is not the MD5 %s of what was sent", what, r.etag,
                md5_hex);
        err = CAP_ECHECKSUM;
    }
    response_deinit(&r);
    return err;
}

static int abort_multipart(struct s3_store *s, const char *key, const char *upload_id)
{
    struct cap_buf query;
    cap_buf_init(&query, 4096);
    int err = cap_buf_printf(&query, "uploadId=");
    if (!err)
        err = cap_sigv4_uri_encode(&query, upload_id, strlen(upload_id), false);
    if (!err)
        err = cap_buf_append_byte(&query, 0);
    struct response r;
    response_init(&r, -1);
    char what[300];
    snprintf(what, sizeof(what), "abort multipart upload of %.250s", key);
    if (!err) {
        struct request rq = {.method = "DELETE", .payload_hash = CAP_SIGV4_EMPTY_SHA256, .what = what};
        err = call_object(s, key, (const char *)query.data, &rq, &r);
    }
    response_deinit(&r);
    cap_buf_deinit(&query);
    return err;
}

static int put_multipart(struct s3_store *s, const char *key, int fd, uint64_t size)
{
    uint64_t part = s->cfg.part_size;
    uint64_t parts = (size + part - 1) / part;
    if (parts > CAP_S3_MAX_PARTS) {
        cap_set_why(s->base.why, sizeof(s->base.why),
                "PUT %.200s: %llu bytes need more than %d parts of %llu MiB", key,
                (unsigned long long)size, CAP_S3_MAX_PARTS, (unsigned long long)(part >> 20));
        return CAP_ELIMIT;
    }
    char what[300];
    snprintf(what, sizeof(what), "start multipart upload of %.250s", key);
    struct cap_buf url, fk, query, complete;
    cap_buf_init(&url, 8192);
    cap_buf_init(&fk, 2048);
    cap_buf_init(&query, 4096);
    cap_buf_init(&complete, 1u << 20);
    struct response r;
    response_init(&r, -1);
    char upload_id[1024] = "";
    int err = object_url(s, key, "uploads=", &url, &fk);
    if (!err) {
        struct request rq = {.method = "POST",
                             .url = (const char *)url.data,
                             .payload_hash = CAP_SIGV4_EMPTY_SHA256,
                             .content_type = "application/octet-stream",
                             .what = what};
        err = call(s, &rq, &r);
    }
    if (!err) {
        xmlDoc *doc = parse_xml(&r.body);
        xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
        if (root)
            element_text(root, "UploadId", upload_id, sizeof(upload_id));
        if (doc)
            xmlFreeDoc(doc);
        if (!upload_id[0]) {
            cap_set_why(s->base.why, sizeof(s->base.why), "%s: no UploadId in the answer", what);
            err = CAP_EFORMAT;
        }
    }
    if (!err)
        err = cap_buf_printf(&complete, "<CompleteMultipartUpload>");
    for (uint64_t i = 0; !err && i < parts; i++) {
        uint64_t off = i * part, len = size - off < part ? size - off : part;
        uint8_t md5[16];
        char md5_b64[32], md5_hex[33];
        if ((err = md5_range(fd, off, len, md5)) != 0) {
            cap_set_why(s->base.why, sizeof(s->base.why), "reading part %llu of %.200s: %s",
                    (unsigned long long)i + 1, key, cap_strerror(err));
            break;
        }
        base64(md5, 16, md5_b64);
        hex(md5, 16, md5_hex);
        cap_buf_reset(&query);
        cap_buf_reset(&url);
        cap_buf_reset(&fk);
        err = cap_buf_printf(&query, "partNumber=%llu&uploadId=", (unsigned long long)i + 1);
        if (!err)
            err = cap_sigv4_uri_encode(&query, upload_id, strlen(upload_id), false);
        if (!err)
            err = cap_buf_append_byte(&query, 0);
        if (!err)
            err = object_url(s, key, (const char *)query.data, &url, &fk);
        if (err)
            break;
        snprintf(what, sizeof(what), "PUT part %llu of %.250s", (unsigned long long)i + 1, key);
        struct body_source body = {.fd = fd, .offset = off, .length = len};
        struct request rq = {.method = "PUT",
                             .url = (const char *)url.data,
                             .payload_hash = "UNSIGNED-PAYLOAD",
                             .content_md5 = md5_b64,
                             .body = &body,
                             .what = what};
        if ((err = call(s, &rq, &r)) != 0)
            break;
        if (s->cfg.check_etag && strncasecmp(r.etag + (r.etag[0] == '"'), md5_hex, 32) != 0) {
            cap_set_why(s->base.why, sizeof(s->base.why),
                    "%s: the server's ETag %s is not the MD5 %s of the part", what,
                    r.etag[0] ? r.etag : "(none)", md5_hex);
            err = CAP_ECHECKSUM;
            break;
        }
        /* The ETag the server gave the part is what completing it names (checked to be the
         * part's MD5 unless check_etag=0). */
        if (r.etag[0])
            err = cap_buf_printf(&complete,
                                 "<Part><PartNumber>%llu</PartNumber><ETag>%s</ETag></Part>",
                                 (unsigned long long)i + 1, r.etag);
        else
            err = cap_buf_printf(&complete,
                                 "<Part><PartNumber>%llu</PartNumber><ETag>\"%s\"</ETag></Part>",
                                 (unsigned long long)i + 1, md5_hex);
    }
    if (!err)
        err = cap_buf_printf(&complete, "</CompleteMultipartUpload>");
    if (!err) {
        char sha[CAP_SIGV4_HEX_LEN + 1];
        cap_sigv4_sha256_hex(complete.data, complete.len, sha);
        cap_buf_reset(&query);
        cap_buf_reset(&url);
        cap_buf_reset(&fk);
        err = cap_buf_printf(&query, "uploadId=");
        if (!err)
            err = cap_sigv4_uri_encode(&query, upload_id, strlen(upload_id), false);
        if (!err)
            err = cap_buf_append_byte(&query, 0);
        if (!err)
            err = object_url(s, key, (const char *)query.data, &url, &fk);
        snprintf(what, sizeof(what), "complete multipart upload of %.250s", key);
        struct body_source body = {.data = complete.data, .fd = -1, .length = complete.len};
        struct request rq = {.method = "POST",
                             .url = (const char *)url.data,
                             .payload_hash = sha,
                             .content_type = "application/xml",
                             .body = &body,
                             .what = what};
        if (!err)
            err = call(s, &rq, &r);
        /* S3 may answer 200 and still report an error in the body. */
        if (!err) {
            xmlDoc *doc = parse_xml(&r.body);
            xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
            if (!root || strcmp((const char *)root->name, "Error") == 0) {
                r.status = 500;
                describe_failure(s, &rq, &r);
                err = CAP_EAGAIN;
            }
            if (doc)
                xmlFreeDoc(doc);
        }
    }
    if (err && upload_id[0]) {
        char keep[sizeof(s->base.why)];
        memcpy(keep, s->base.why, sizeof(keep));
        if (abort_multipart(s, key, upload_id) != 0)
            CAP_WARN(NULL, "could not abort the multipart upload of %.200s: %s", key, s->base.why);
        memcpy(s->base.why, keep, sizeof(keep));
    }
    response_deinit(&r);
    cap_buf_deinit(&url);
    cap_buf_deinit(&fk);
    cap_buf_deinit(&query);
    cap_buf_deinit(&complete);
    return err;
}

static int s3_put_file(struct cap_blob_store *bs, const char *key, const char *path)
{
    struct s3_store *s = (struct s3_store *)bs;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int err = fd < 0 && errno == ENOENT ? CAP_ENOENT : fd < 0 ? -errno : CAP_EINVAL;
        cap_set_why(bs->why, sizeof(bs->why), "cannot read %s: %s", path,
                fd < 0 ? strerror(errno) : "not a file");
        if (fd >= 0)
            close(fd);
        return err;
    }
    uint64_t size = (uint64_t)st.st_size;
    int err;
    if (size > s->cfg.part_size) {
        err = put_multipart(s, key, fd, size);
    } else {
        uint8_t md5[16];
        err = md5_range(fd, 0, size, md5);
        if (err) {
            cap_set_why(bs->why, sizeof(bs->why), "reading %s: %s", path, cap_strerror(err));
        } else {
            struct body_source body = {.fd = fd, .length = size};
            err = put_single(s, key, &body, md5, "UNSIGNED-PAYLOAD", "application/octet-stream");
        }
    }
    close(fd);
    return err;
}

static int s3_put_buf(struct cap_blob_store *bs, const char *key, const void *data, size_t len,
                      const char *content_type)
{
    struct s3_store *s = (struct s3_store *)bs;
    uint8_t md5[16];
    md5_buf(data, len, md5);
    char sha[CAP_SIGV4_HEX_LEN + 1];
    cap_sigv4_sha256_hex(data, len, sha);
    struct body_source body = {.data = data, .fd = -1, .length = len};
    return put_single(s, key, &body, md5, sha,
                      content_type ? content_type : "application/octet-stream");
}

static int s3_get_file(struct cap_blob_store *bs, const char *key, uint64_t offset, uint64_t length,
                       const char *path)
{
    struct s3_store *s = (struct s3_store *)bs;
    if (length && offset + length < offset) {
        cap_set_why(bs->why, sizeof(bs->why), "bad range");
        return CAP_EINVAL;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        cap_mkdir_p(dir);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int err = -errno;
        cap_set_why(bs->why, sizeof(bs->why), "cannot create %s: %s", path, strerror(errno));
        return err;
    }
    char range[64], what[300];
    if (length)
        snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)offset,
                 (unsigned long long)(offset + length - 1));
    else
        snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)offset);
    bool ranged = offset || length;
    snprintf(what, sizeof(what), "GET %.250s", key);
    struct response r;
    response_init(&r, fd);
    struct request rq = {.method = "GET",
                         .payload_hash = CAP_SIGV4_EMPTY_SHA256,
                         .range = ranged ? range : NULL,
                         .what = what};
    int err = call_object(s, key, NULL, &rq, &r);
    if (!err && ranged && r.status != 206) {
        cap_set_why(bs->why, sizeof(bs->why), "%s: the server ignored the range %s", what, range);
        err = CAP_EUNSUPPORTED;
    }
    if (close(fd) != 0 && !err)
        err = -errno;
    if (err)
        unlink(path);
    response_deinit(&r);
    return err;
}

static int s3_head(struct cap_blob_store *bs, const char *key, struct cap_blob_info *out)
{
    struct s3_store *s = (struct s3_store *)bs;
    char what[300];
    snprintf(what, sizeof(what), "HEAD %.250s", key);
    struct response r;
    response_init(&r, -1);
    struct request rq = {.method = "HEAD", .payload_hash = CAP_SIGV4_EMPTY_SHA256, .what = what};
    int err = call_object(s, key, NULL, &rq, &r);
    if (!err) {
        curl_off_t len = -1;
        curl_easy_getinfo(s->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
        if (len < 0) {
            cap_set_why(bs->why, sizeof(bs->why), "%s: no Content-Length in the answer", what);
            err = CAP_EFORMAT;
        } else {
            out->size = (uint64_t)len;
            snprintf(out->etag, sizeof(out->etag), "%s", r.etag);
        }
    }
    response_deinit(&r);
    return err;
}

static int s3_del(struct cap_blob_store *bs, const char *key)
{
    struct s3_store *s = (struct s3_store *)bs;
    char what[300];
    snprintf(what, sizeof(what), "DELETE %.250s", key);
    struct response r;
    response_init(&r, -1);
    struct request rq = {.method = "DELETE", .payload_hash = CAP_SIGV4_EMPTY_SHA256, .what = what};
    int err = call_object(s, key, NULL, &rq, &r);
    if (err == CAP_ENOENT)
        err = 0; /* deleting what is not there is done */
    response_deinit(&r);
    return err;
}

int cap_s3_parse_list(const void *xml, size_t len, const char *prefix, cap_blob_list_fn fn,
                      void *user, char *token, size_t token_size, bool *stop, char *why,
                      size_t why_size)
{
    token[0] = '\0';
    struct cap_buf body = {.data = (uint8_t *)xml, .len = len, .cap = len, .max = len};
    pthread_once(&init_once, init_libraries);
    xmlDoc *doc = parse_xml(&body);
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!root || strcmp((const char *)root->name, "ListBucketResult") != 0) {
        if (doc)
            xmlFreeDoc(doc);
        cap_set_why(why, why_size, "listing: not a ListBucketResult");
        return CAP_EFORMAT;
    }
    size_t strip = strlen(prefix);
    int err = 0;
    for (xmlNode *n = root->children; n && !*stop && !err; n = n->next) {
        if (n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, "Contents") != 0)
            continue;
        char key[2048], size_text[32];
        struct cap_blob_info info = {0};
        element_text(n, "Key", key, sizeof(key));
        element_text(n, "Size", size_text, sizeof(size_text));
        element_text(n, "ETag", info.etag, sizeof(info.etag));
        char *end;
        errno = 0;
        info.size = strtoull(size_text, &end, 10);
        if (!key[0] || end == size_text || *end || errno || size_text[0] == '-') {
            cap_set_why(why, why_size, "listing: an entry without a key or a size");
            err = CAP_EFORMAT;
            break;
        }
        /* Only keys under the store's prefix: anything else is the server's mistake. */
        if (strncmp(key, prefix, strip) != 0 || !key[strip])
            continue;
        if (fn(user, key + strip, &info) != 0)
            *stop = true;
    }
    char truncated[16];
    element_text(root, "IsTruncated", truncated, sizeof(truncated));
    if (!err && !*stop && strcmp(truncated, "true") == 0) {
        element_text(root, "NextContinuationToken", token, token_size);
        if (!token[0]) {
            cap_set_why(why, why_size, "listing: truncated without a continuation token");
            err = CAP_EFORMAT;
        }
    }
    xmlFreeDoc(doc);
    return err;
}

static int s3_list(struct cap_blob_store *bs, const char *prefix, cap_blob_list_fn fn, void *user)
{
    struct s3_store *s = (struct s3_store *)bs;
    if (!prefix || prefix[0] == '/' || strlen(prefix) > 1024) {
        cap_set_why(bs->why, sizeof(bs->why), "bad prefix '%.200s'", prefix ? prefix : "(null)");
        return CAP_EINVAL;
    }
    struct cap_buf full, query, url;
    cap_buf_init(&full, 4096);
    cap_buf_init(&query, 8192);
    cap_buf_init(&url, 16384);
    /* Keys are listed relative to the store's prefix. */
    int err = cap_buf_printf(&full, "%s%s%s", s->cfg.prefix, s->cfg.prefix[0] ? "/" : "", prefix);
    char store_prefix[sizeof(s->cfg.prefix) + 1];
    snprintf(store_prefix, sizeof(store_prefix), "%s%s", s->cfg.prefix,
             s->cfg.prefix[0] ? "/" : "");
    char token[2048] = "";
    bool stop = false;
    struct response r;
    response_init(&r, -1);
    do {
        /* Parameters in canonical order: continuation-token, list-type, max-keys, prefix. */
        cap_buf_reset(&query);
        cap_buf_reset(&url);
        if (!err && token[0]) {
            err = cap_buf_printf(&query, "continuation-token=");
            if (!err)
                err = cap_sigv4_uri_encode(&query, token, strlen(token), false);
            if (!err)
                err = cap_buf_append_byte(&query, '&');
        }
        if (!err)
            err = cap_buf_printf(&query, "list-type=2&max-keys=%d&prefix=", s->cfg.max_keys);
        if (!err)
            err = cap_sigv4_uri_encode(&query, (const char *)full.data, full.len, false);
        if (!err)
            err = cap_buf_append_byte(&query, 0);
        if (!err)
            err = build_url(s, NULL, (const char *)query.data, &url);
        if (err)
            break;
        char what[300];
        snprintf(what, sizeof(what), "LIST %.250s", (const char *)query.data);
        struct request rq = {.method = "GET",
                             .url = (const char *)url.data,
                             .payload_hash = CAP_SIGV4_EMPTY_SHA256,
                             .what = what};
        if ((err = call(s, &rq, &r)) != 0)
            break;
        err = cap_s3_parse_list(r.body.data, r.body.len, store_prefix, fn, user, token,
                                sizeof(token), &stop, s->base.why, sizeof(s->base.why));
    } while (!err && !stop && token[0]);
    response_deinit(&r);
    cap_buf_deinit(&full);
    cap_buf_deinit(&query);
    cap_buf_deinit(&url);
    return err;
}

static int s3_presign(struct cap_blob_store *bs, const char *method, const char *key, int expires_s,
                      char **out)
{
    struct s3_store *s = (struct s3_store *)bs;
    if (!method || (strcmp(method, "GET") != 0 && strcmp(method, "PUT") != 0)) {
        cap_set_why(bs->why, sizeof(bs->why), "presigned URLs are for GET or PUT");
        return CAP_EINVAL;
    }
    if (expires_s < 1 || expires_s > CAP_SIGV4_MAX_EXPIRES) {
        cap_set_why(bs->why, sizeof(bs->why), "a presigned URL lives 1 to %d seconds, not %d",
                CAP_SIGV4_MAX_EXPIRES, expires_s);
        return CAP_EINVAL;
    }
    struct cap_buf fk, path;
    cap_buf_init(&fk, 2048);
    cap_buf_init(&path, 8192);
    int err = full_key(s, key, &fk);
    if (!err)
        err = canonical_path(s, (const char *)fk.data, &path);
    if (!err)
        err = cap_buf_append_byte(&path, 0);
    char amz_date[CAP_SIGV4_DATE_LEN + 1], host[400];
    cap_sigv4_amz_date(time(NULL), amz_date);
    if (!err) {
        struct cap_sigv4_presign_request req = {
            .method = method,
            .scheme = s->cfg.scheme,
            .host = request_host(s, host, sizeof(host)),
            .path = (const char *)path.data,
            .access_key = s->cfg.access_key,
            .secret_key = s->cfg.secret_key,
            .region = s->cfg.region,
            .service = "s3",
            .amz_date = amz_date,
            .expires_s = expires_s,
        };
        err = cap_sigv4_presign(&req, out);
    }
    cap_buf_deinit(&fk);
    cap_buf_deinit(&path);
    return err;
}

/* The ETag S3 gives a multipart upload of the file with this store's part size: the MD5 of
 * the parts' binary MD5s, "-", the number of parts. */
static int multipart_etag(struct s3_store *s, int fd, uint64_t size, char *out, size_t out_size)
{
    uint64_t part = s->cfg.part_size, parts = (size + part - 1) / part;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int err = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) ? 0 : CAP_ENOMEM;
    uint8_t md5[16];
    for (uint64_t i = 0; !err && i < parts; i++) {
        uint64_t off = i * part;
        err = md5_range(fd, off, size - off < part ? size - off : part, md5);
        if (!err)
            EVP_DigestUpdate(ctx, md5, 16);
    }
    unsigned int n = 0;
    if (!err) {
        EVP_DigestFinal_ex(ctx, md5, &n);
        hex(md5, 16, out);
        snprintf(out + 32, out_size - 32, "-%llu", (unsigned long long)parts);
    }
    EVP_MD_CTX_free(ctx);
    return err;
}

static int s3_etag_matches(struct cap_blob_store *bs, const char *path, const char *etag)
{
    struct s3_store *s = (struct s3_store *)bs;
    if (!s->cfg.check_etag)
        return CAP_EUNSUPPORTED;
    /* Without quotes; "abc-3" is a multipart ETag, 32 hex digits alone an MD5. */
    char want[80];
    size_t n = 0;
    for (const char *p = etag; *p && n + 1 < sizeof(want); p++)
        if (*p != '"')
            want[n++] = *p;
    want[n] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int err = fd < 0 && errno == ENOENT ? CAP_ENOENT : -errno;
        cap_set_why(bs->why, sizeof(bs->why), "cannot read %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return err;
    }
    char have[80];
    int err;
    if (strchr(want, '-')) {
        err = multipart_etag(s, fd, (uint64_t)st.st_size, have, sizeof(have));
    } else {
        /* Also what some servers (s3rver) report for a multipart upload. */
        uint8_t md5[16];
        err = md5_range(fd, 0, (uint64_t)st.st_size, md5);
        if (!err)
            hex(md5, 16, have);
    }
    close(fd);
    if (err) {
        cap_set_why(bs->why, sizeof(bs->why), "reading %s: %s", path, cap_strerror(err));
        return err;
    }
    return strcasecmp(want, have) == 0 ? 0 : CAP_ECHECKSUM;
}

static void s3_close(struct cap_blob_store *bs)
{
    struct s3_store *s = (struct s3_store *)bs;
    curl_easy_cleanup(s->curl);
    memset(s->userpwd, 0, sizeof(s->userpwd));
    memset(s->cfg.secret_key, 0, sizeof(s->cfg.secret_key));
    free(s);
}

static const struct cap_blob_store_ops s3_ops = {
    .name = "s3",
    .put_file = s3_put_file,
    .put_buf = s3_put_buf,
    .get_file = s3_get_file,
    .head = s3_head,
    .del = s3_del,
    .list = s3_list,
    .presign = s3_presign,
    .close = s3_close,
    .etag_matches = s3_etag_matches,
};

/* create_bucket=1: HEAD the bucket, and PUT it if it is not there. */
static int ensure_bucket(struct s3_store *s)
{
    struct cap_buf url;
    cap_buf_init(&url, 8192);
    int err = build_url(s, NULL, NULL, &url);
    struct response r;
    response_init(&r, -1);
    char what[128];
    snprintf(what, sizeof(what), "HEAD bucket %s", s->cfg.bucket);
    struct request rq = {.method = "HEAD",
                         .url = (const char *)url.data,
                         .payload_hash = CAP_SIGV4_EMPTY_SHA256,
                         .what = what};
    if (!err)
        err = call(s, &rq, &r);
    if (err == CAP_ENOENT) {
        char body_text[256] = "";
        if (strcmp(s->cfg.region, "us-east-1") != 0)
            snprintf(body_text, sizeof(body_text),
                     "<CreateBucketConfiguration><LocationConstraint>%s</LocationConstraint></"
                     "CreateBucketConfiguration>",
                     s->cfg.region);
        size_t len = strlen(body_text);
        char sha[CAP_SIGV4_HEX_LEN + 1];
        cap_sigv4_sha256_hex(body_text, len, sha);
        struct body_source body = {.data = (const uint8_t *)body_text, .fd = -1, .length = len};
        snprintf(what, sizeof(what), "create bucket %s", s->cfg.bucket);
        struct request put = {.method = "PUT",
                              .url = (const char *)url.data,
                              .payload_hash = sha,
                              .body = &body,
                              .what = what};
        err = call(s, &put, &r);
        if (err == CAP_EINVAL && r.status == 409)
            err = 0; /* created meanwhile by someone else (ours) */
    }
    response_deinit(&r);
    cap_buf_deinit(&url);
    return err;
}

int cap_s3_open(struct cap_blob_store **out, const struct cap_s3_config *cfg, char *why,
                size_t why_size)
{
    pthread_once(&init_once, init_libraries);
    if (init_result != CURLE_OK) {
        cap_set_why(why, why_size, "libcurl: %s", curl_easy_strerror(init_result));
        return CAP_EIO;
    }
    struct s3_store *s = calloc(1, sizeof(*s));
    if (!s)
        return CAP_ENOMEM;
    s->cfg = *cfg;
    s->curl = curl_easy_init();
    if (!s->curl) {
        free(s);
        return CAP_ENOMEM;
    }
    s->base.ops = &s3_ops;
    snprintf(s->sigv4, sizeof(s->sigv4), "aws:amz:%s:s3", cfg->region);
    snprintf(s->userpwd, sizeof(s->userpwd), "%s:%s", cfg->access_key, cfg->secret_key);
    snprintf(s->base.where, sizeof(s->base.where), "s3://%s%s%.200s at %s://%.200s", cfg->bucket,
             cfg->prefix[0] ? "/" : "", cfg->prefix, cfg->scheme, cfg->host);
    s->random_state = (uint64_t)time(NULL) ^ ((uint64_t)(uintptr_t)s << 16) ^ 0x9e3779b97f4a7c15u;
    if (cfg->create_bucket) {
        int err = ensure_bucket(s);
        if (err) {
            cap_set_why(why, why_size, "%s", s->base.why);
            s3_close(&s->base);
            return err;
        }
    }
    *out = &s->base;
    return 0;
}

/* ---- a PUT to a presigned URL ---- */

static size_t discard(char *data, size_t size, size_t count, void *user)
{
    (void)data, (void)user;
    return size * count;
}

int cap_blob_put_url(const char *url, const char *path, char *why, size_t why_size)
{
    if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
        cap_set_why(why, why_size, "a presigned URL starts with http:// or https://");
        return CAP_EINVAL;
    }
    pthread_once(&init_once, init_libraries);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        cap_set_why(why, why_size, "cannot read %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return CAP_ENOENT;
    }
    CURL *c = curl_easy_init();
    if (!c) {
        close(fd);
        return CAP_ENOMEM;
    }
    int err = CAP_EAGAIN;
    char error[CURL_ERROR_SIZE];
    for (int attempt = 0; attempt <= CAP_S3_DEFAULT_RETRIES && err == CAP_EAGAIN; attempt++) {
        if (attempt) {
            struct timespec ts = {.tv_sec = attempt, .tv_nsec = 0};
            nanosleep(&ts, NULL);
        }
        curl_easy_reset(c);
        struct body_source body = {.fd = fd, .length = (uint64_t)st.st_size};
        struct curl_slist *headers = curl_slist_append(NULL, "Expect:");
        error[0] = '\0';
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)st.st_size);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, &body);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, STALL_SECONDS);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_USERAGENT, USER_AGENT);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
        CURLcode rc = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(headers);
        if (rc == CURLE_OK && status >= 200 && status < 300) {
            err = 0;
        } else if (rc != CURLE_OK) {
            cap_set_why(why, why_size, "PUT to the presigned URL: %s",
                    error[0] ? error : curl_easy_strerror(rc));
            err = transient_curl_error(rc) ? CAP_EAGAIN : CAP_EIO;
        } else {
            cap_set_why(why, why_size, "PUT to the presigned URL: HTTP %ld", status);
            err = status_error(status);
        }
    }
    curl_easy_cleanup(c);
    close(fd);
    return err;
}
