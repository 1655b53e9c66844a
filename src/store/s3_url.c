/* S3 store URLs (s3.h): "s3://bucket/prefix?params" and the reference's custom_s3 form
 * "http(s)://KEY:SECRET@host:port/bucket/prefix", with defaults from the AWS_* environment.
 * Every mistake gets a message naming it. */
#include "store/s3.h"

#include "capstan/error.h"
#include "util/why.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..len) into out; '+' stays '+' (secrets contain it). */
static int decode_into(const char *s, size_t len, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= len)
                return CAP_EINVAL;
            int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
            if (hi < 0 || lo < 0)
                return CAP_EINVAL;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (c == '\0' || o + 1 >= size)
            return CAP_EINVAL;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

/* S3 bucket names: 3..63 of a-z 0-9 . -, starting and ending with a letter or digit. */
static bool bucket_ok(const char *b)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && c != '.' && c != '-')
            return false;
        if ((i == 0 || i == n - 1) && !alnum)
            return false;
    }
    return true;
}

/* host[:port] of an endpoint: letters, digits, '.', '-', '_', or an IPv6 literal in brackets. */
static bool host_ok(const char *h)
{
    if (!*h)
        return false;
    const char *p = h;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (!close || close == p + 1)
            return false;
        for (const char *q = p + 1; q < close; q++)
            if (hex_value(*q) < 0 && *q != ':' && *q != '.')
                return false;
        p = close + 1;
    } else {
        for (; *p && *p != ':'; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_'))
                return false;
        if (p == h)
            return false;
    }
    if (*p == '\0')
        return true;
    if (*p != ':' || !p[1])
        return false;
    char *end;
    long port = strtol(p + 1, &end, 10);
    return *end == '\0' && port > 0 && port <= 65535;
}

/* "http(s)://host[:port][/]" into scheme and host. */
static int parse_endpoint(const char *url, struct cap_s3_config *cfg, char *why, size_t why_size)
{
    const char *rest;
    if (strncmp(url, "http://", 7) == 0) {
        strcpy(cfg->scheme, "http");
        rest = url + 7;
    } else if (strncmp(url, "https://", 8) == 0) {
        strcpy(cfg->scheme, "https");
        rest = url + 8;
    } else {
        cap_set_why(why, why_size,
                "endpoint must be http://HOST[:PORT] or https://HOST[:PORT], not '%.200s'", url);
        return CAP_EINVAL;
    }
    size_t n = strcspn(rest, "/?#");
    if (n >= sizeof(cfg->host) || (rest[n] && strcmp(rest + n, "/") != 0)) {
        cap_set_why(why, why_size, "endpoint '%.200s' must be only scheme, host and port", url);
        return CAP_EINVAL;
    }
    memcpy(cfg->host, rest, n);
    cfg->host[n] = '\0';
    if (!host_ok(cfg->host)) {
        cap_set_why(why, why_size, "endpoint '%.200s': bad host or port", url);
        return CAP_EINVAL;
    }
    return 0;
}

static int parse_bool(const char *name, const char *v, bool *out, char *why, size_t why_size)
{
    if (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0) {
        *out = true;
    } else if (strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0) {
        *out = false;
    } else {
        cap_set_why(why, why_size, "%s takes 1 or 0 (true or false), not '%.50s'", name, v);
        return CAP_EINVAL;
    }
    return 0;
}

static int parse_int(const char *name, const char *v, long lo, long hi, long *out, char *why,
                     size_t why_size)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        cap_set_why(why, why_size, "%s takes a number from %ld to %ld, not '%.50s'", name, lo, hi, v);
        return CAP_EINVAL;
    }
    *out = x;
    return 0;
}

/* The prefix part of a URL: no leading or trailing '/', no empty, "." or ".." segment. */
static int set_prefix(struct cap_s3_config *cfg, const char *p, size_t len, bool encoded, char *why,
                      size_t why_size)
{
    char tmp[sizeof(cfg->prefix)];
    int err = encoded ? decode_into(p, len, tmp, sizeof(tmp)) : 0;
    if (!encoded) {
        if (len >= sizeof(tmp))
            err = CAP_ELIMIT;
        else
            memcpy(tmp, p, len), tmp[len] = '\0';
    }
    if (err) {
        cap_set_why(why, why_size, "bad or too long prefix '%.*s'", (int)(len > 200 ? 200 : len), p);
        return CAP_EINVAL;
    }
    size_t n = strlen(tmp);
    while (n && tmp[n - 1] == '/')
        tmp[--n] = '\0';
    const char *seg = tmp;
    for (const char *q = tmp;; q++) {
        if (*q && (unsigned char)*q < 0x20) {
            cap_set_why(why, why_size, "prefix '%.200s' has a control character", tmp);
            return CAP_EINVAL;
        }
        if (*q == '/' || !*q) {
            size_t sl = (size_t)(q - seg);
            if (n && (sl == 0 || (sl == 1 && seg[0] == '.') ||
                      (sl == 2 && seg[0] == '.' && seg[1] == '.'))) {
                cap_set_why(why, why_size, "prefix '%.200s' has an empty, '.' or '..' part", tmp);
                return CAP_EINVAL;
            }
            if (!*q)
                break;
            seg = q + 1;
        }
    }
    memcpy(cfg->prefix, tmp, n + 1);
    return 0;
}

static bool region_ok(const char *r)
{
    size_t n = strlen(r);
    if (n == 0 || n > 63)
        return false;
    for (; *r; r++)
        if (!((*r >= 'a' && *r <= 'z') || (*r >= 'A' && *r <= 'Z') || (*r >= '0' && *r <= '9') ||
              *r == '-'))
            return false;
    return true;
}

static bool has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

static const char *env_first(const char *a, const char *b)
{
    const char *v = getenv(a);
    if ((!v || !*v) && b)
        v = getenv(b);
    return v && *v ? v : NULL;
}

static int copy_field(char *dst, size_t size, const char *src, const char *name, char *why,
                      size_t why_size)
{
    if (strlen(src) >= size) {
        cap_set_why(why, why_size, "%s too long", name);
        return CAP_EINVAL;
    }
    strcpy(dst, src);
    return 0;
}

struct url_params {
    const char *endpoint;
    bool path_style_given;
    bool path_style;
    bool check_etag;
};

static int apply_param(struct cap_s3_config *cfg, struct url_params *up, const char *name,
                       const char *value, char *decoded_store, char *why, size_t why_size)
{
    long n;
    int err = 0;
    if (strcmp(name, "endpoint") == 0) {
        up->endpoint = decoded_store;
    } else if (strcmp(name, "region") == 0) {
        err = copy_field(cfg->region, sizeof(cfg->region), value, "region", why, why_size);
    } else if (strcmp(name, "access_key") == 0) {
        err = copy_field(cfg->access_key, sizeof(cfg->access_key), value, "access_key", why,
                         why_size);
    } else if (strcmp(name, "secret_key") == 0) {
        err = copy_field(cfg->secret_key, sizeof(cfg->secret_key), value, "secret_key", why,
                         why_size);
    } else if (strcmp(name, "path_style") == 0) {
        up->path_style_given = true;
        err = parse_bool(name, value, &up->path_style, why, why_size);
    } else if (strcmp(name, "create_bucket") == 0) {
        err = parse_bool(name, value, &cfg->create_bucket, why, why_size);
    } else if (strcmp(name, "check_etag") == 0) {
        err = parse_bool(name, value, &up->check_etag, why, why_size);
    } else if (strcmp(name, "part_mb") == 0) {
        if (!(err = parse_int(name, value, CAP_S3_MIN_PART_MB, CAP_S3_MAX_PART_MB, &n, why,
                              why_size)))
            cfg->part_size = (uint64_t)n << 20;
    } else if (strcmp(name, "retries") == 0) {
        if (!(err = parse_int(name, value, 0, 20, &n, why, why_size)))
            cfg->retries = (int)n;
    } else if (strcmp(name, "max_keys") == 0) {
        if (!(err = parse_int(name, value, 1, 1000, &n, why, why_size)))
            cfg->max_keys = (int)n;
    } else {
        cap_set_why(
            why, why_size,
            "unknown S3 URL parameter '%.50s' (known: endpoint, region, access_key, secret_key, "
            "path_style, create_bucket, part_mb, retries, check_etag, max_keys)",
            name);
        err = CAP_EINVAL;
    }
    return err;
}

int cap_s3_parse_url(const char *url, struct cap_s3_config *cfg, char *why, size_t why_size)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->part_size = (uint64_t)CAP_S3_DEFAULT_PART_MB << 20;
    cfg->retries = CAP_S3_DEFAULT_RETRIES;
    cfg->max_keys = 1000;
    bool custom = strncmp(url, "s3://", 5) != 0;
    const char *rest;
    if (!custom) {
        rest = url + 5;
    } else if (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0) {
        rest = url + (url[4] == 's' ? 8 : 7);
        strcpy(cfg->scheme, url[4] == 's' ? "https" : "http");
    } else {
        cap_set_why(why, why_size, "an S3 URL starts with s3://, http:// or https://");
        return CAP_EINVAL;
    }
    if (strlen(url) > 4096) {
        cap_set_why(why, why_size, "S3 URL too long");
        return CAP_EINVAL;
    }
    const char *query = strchr(rest, '?');
    size_t main_len = query ? (size_t)(query - rest) : strlen(rest);
    if (memchr(rest, '#', main_len)) {
        cap_set_why(why, why_size, "an S3 URL has no #fragment");
        return CAP_EINVAL;
    }
    const char *path = rest;
    if (custom) {
        /* [KEY:SECRET@]host[:port]/bucket[/prefix] */
        size_t auth_len = strcspn(rest, "/?");
        const char *at = memchr(rest, '@', auth_len);
        const char *hostpart = rest;
        if (at) {
            const char *colon = memchr(rest, ':', (size_t)(at - rest));
            if (!colon) {
                cap_set_why(why, why_size, "credentials in an S3 URL are KEY:SECRET@host");
                return CAP_EINVAL;
            }
            if (decode_into(rest, (size_t)(colon - rest), cfg->access_key,
                            sizeof(cfg->access_key)) != 0 ||
                decode_into(colon + 1, (size_t)(at - colon - 1), cfg->secret_key,
                            sizeof(cfg->secret_key)) != 0) {
                cap_set_why(why, why_size, "bad credentials in the S3 URL");
                return CAP_EINVAL;
            }
            hostpart = at + 1;
        }
        size_t host_len = (size_t)(rest + auth_len - hostpart);
        if (host_len == 0 || host_len >= sizeof(cfg->host)) {
            cap_set_why(why, why_size, "no host in the S3 URL");
            return CAP_EINVAL;
        }
        memcpy(cfg->host, hostpart, host_len);
        cfg->host[host_len] = '\0';
        if (!host_ok(cfg->host)) {
            cap_set_why(why, why_size, "bad host or port '%.200s' in the S3 URL", cfg->host);
            return CAP_EINVAL;
        }
        path = rest + auth_len;
        if (*path != '/') {
            cap_set_why(why, why_size, "the S3 URL names no bucket (http://host:port/BUCKET/prefix)");
            return CAP_EINVAL;
        }
        path++;
        main_len -= (size_t)(path - rest);
    }
    size_t bucket_len = strcspn(path, "/?");
    if (bucket_len >= sizeof(cfg->bucket) || bucket_len > main_len) {
        cap_set_why(why, why_size, "bad bucket name in the S3 URL");
        return CAP_EINVAL;
    }
    memcpy(cfg->bucket, path, bucket_len);
    cfg->bucket[bucket_len] = '\0';
    if (!bucket_ok(cfg->bucket)) {
        cap_set_why(why, why_size,
                "bad bucket name '%.63s' (3 to 63 of a-z 0-9 . -, starting and ending with a "
                "letter or digit)",
                cfg->bucket);
        return CAP_EINVAL;
    }
    const char *prefix = path + bucket_len;
    size_t prefix_len = main_len - bucket_len;
    if (prefix_len && *prefix == '/')
        prefix++, prefix_len--;
    int err = set_prefix(cfg, prefix, prefix_len, custom, why, why_size);
    if (err)
        return err;

    struct url_params up = {.check_etag = true};
    char *store = NULL;
    if (query) {
        store = strdup(query + 1);
        if (!store)
            return CAP_ENOMEM;
        size_t decoded_cap = strlen(store) + 1;
        char *decoded = malloc(decoded_cap);
        if (!decoded) {
            free(store);
            return CAP_ENOMEM;
        }
        for (char *save = NULL, *item = strtok_r(store, "&", &save); !err && item;
             item = strtok_r(NULL, "&", &save)) {
            char *eq = strchr(item, '=');
            if (!eq) {
                cap_set_why(why, why_size, "S3 URL parameter '%.50s' has no value", item);
                err = CAP_EINVAL;
                break;
            }
            *eq = '\0';
            if (strncmp(item, "X-Amz-", 6) == 0) {
                cap_set_why(why, why_size, "this is a presigned URL for one object, not a store");
                err = CAP_EINVAL;
                break;
            }
            if (decode_into(eq + 1, strlen(eq + 1), decoded, decoded_cap) != 0) {
                cap_set_why(why, why_size, "S3 URL parameter %.50s: bad %%-encoding", item);
                err = CAP_EINVAL;
                break;
            }
            /* The endpoint value is kept: decoded in place of its raw text. */
            if (strcmp(item, "endpoint") == 0)
                strcpy(eq + 1, decoded);
            err = apply_param(cfg, &up, item, decoded, eq + 1, why, why_size);
        }
        free(decoded);
    }
    if (!err && custom && up.endpoint) {
        cap_set_why(why, why_size, "an http(s):// S3 URL is its own endpoint: no endpoint= parameter");
        err = CAP_EINVAL;
    }
    const char *endpoint = up.endpoint ? up.endpoint
                           : custom    ? NULL
                                       : env_first("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL");
    if (!err && endpoint)
        err = parse_endpoint(endpoint, cfg, why, why_size);
    if (!err && !cfg->region[0]) {
        const char *r = env_first("AWS_REGION", "AWS_DEFAULT_REGION");
        err = copy_field(cfg->region, sizeof(cfg->region), r ? r : "us-east-1", "region", why,
                         why_size);
    }
    if (!err && !custom && !endpoint) {
        /* AWS itself: virtual-hosted buckets at the regional endpoint. */
        strcpy(cfg->scheme, "https");
        if (snprintf(cfg->host, sizeof(cfg->host), "s3.%s.amazonaws.com", cfg->region) >=
            (int)sizeof(cfg->host))
            err = CAP_EINVAL;
    }
    cfg->path_style = up.path_style_given ? up.path_style : (custom || endpoint);
    cfg->check_etag = up.check_etag;
    if (!err && !cfg->access_key[0] && !cfg->secret_key[0]) {
        const char *k = getenv("AWS_ACCESS_KEY_ID"), *s = getenv("AWS_SECRET_ACCESS_KEY");
        if (k && s) {
            err = copy_field(cfg->access_key, sizeof(cfg->access_key), k, "AWS_ACCESS_KEY_ID", why,
                             why_size);
            if (!err)
                err = copy_field(cfg->secret_key, sizeof(cfg->secret_key), s,
                                 "AWS_SECRET_ACCESS_KEY", why, why_size);
        }
    }
    if (!err && !region_ok(cfg->region)) {
        cap_set_why(why, why_size, "bad region '%.63s' (letters, digits and '-')", cfg->region);
        err = CAP_EINVAL;
    }
    if (!err && (strchr(cfg->access_key, ':') || strchr(cfg->access_key, '/') ||
                 has_control(cfg->access_key) || has_control(cfg->secret_key))) {
        cap_set_why(why, why_size, "bad access key: no ':', '/' or control characters");
        err = CAP_EINVAL;
    }
    if (!err && (!cfg->access_key[0] || !cfg->secret_key[0])) {
        cap_set_why(why, why_size,
                "no S3 credentials: give access_key and secret_key in the URL, or set "
                "AWS_ACCESS_KEY_ID "
                "and AWS_SECRET_ACCESS_KEY");
        err = CAP_EINVAL;
    }
    if (!err && !cfg->path_style && strchr(cfg->bucket, '.') && strcmp(cfg->scheme, "https") == 0) {
        cap_set_why(why, why_size,
                "a bucket with dots cannot be virtual-hosted over https: add path_style=1");
        err = CAP_EINVAL;
    }
    if (store) {
        memset(store, 0, strlen(query + 1));
        free(store);
    }
    return err;
}
