/* AWS Signature Version 4 (sigv4.h): signing key, signature, URI encoding and presigned
 * URLs, with OpenSSL's SHA-256 and HMAC. */
#include "store/sigv4.h"

#include "capstan/error.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char hex_digits[] = "0123456789abcdef";

static void to_hex(const uint8_t *in, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex_digits[in[i] >> 4];
        out[2 * i + 1] = hex_digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

void cap_sigv4_sha256_hex(const void *data, size_t len, char *out)
{
    uint8_t digest[32];
    unsigned int n = 0;
    EVP_Digest(len ? data : "", len, digest, &n, EVP_sha256(), NULL);
    to_hex(digest, sizeof(digest), out);
}

void cap_sigv4_amz_date(time_t t, char *out)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, CAP_SIGV4_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm);
}

static int hmac_sha256(const uint8_t *key, size_t key_len, const char *msg, uint8_t out[32])
{
    unsigned int n = 0;
    if (!HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), out, &n) ||
        n != 32)
        return CAP_EIO;
    return 0;
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return s[n] == '\0';
}

int cap_sigv4_signing_key(const char *secret, const char *date8, const char *region,
                          const char *service, uint8_t key[32])
{
    if (!all_digits(date8, 8) || !*region || !*service)
        return CAP_EINVAL;
    size_t secret_len = strlen(secret);
    uint8_t *first = malloc(secret_len + 4);
    if (!first)
        return CAP_ENOMEM;
    memcpy(first, "AWS4", 4);
    memcpy(first + 4, secret, secret_len);
    uint8_t k[32];
    int err = hmac_sha256(first, secret_len + 4, date8, k);
    free(first);
    if (!err)
        err = hmac_sha256(k, 32, region, k);
    if (!err)
        err = hmac_sha256(k, 32, service, k);
    if (!err)
        err = hmac_sha256(k, 32, "aws4_request", key);
    return err;
}

static bool valid_amz_date(const char *d)
{
    if (strlen(d) != CAP_SIGV4_DATE_LEN || d[8] != 'T' || d[15] != 'Z')
        return false;
    for (int i = 0; i < 15; i++)
        if (i != 8 && (d[i] < '0' || d[i] > '9'))
            return false;
    return true;
}

int cap_sigv4_sign(const char *canonical_request, const char *secret, const char *amz_date,
                   const char *region, const char *service, char *signature)
{
    if (!valid_amz_date(amz_date))
        return CAP_EINVAL;
    char date8[9];
    memcpy(date8, amz_date, 8);
    date8[8] = '\0';
    char request_hash[CAP_SIGV4_HEX_LEN + 1];
    cap_sigv4_sha256_hex(canonical_request, strlen(canonical_request), request_hash);
    struct cap_buf sts;
    cap_buf_init(&sts, 4096);
    int err = cap_buf_printf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", amz_date,
                             date8, region, service, request_hash);
    uint8_t key[32], mac[32];
    if (!err)
        err = cap_sigv4_signing_key(secret, date8, region, service, key);
    if (!err)
        err = cap_buf_append_byte(&sts, 0);
    if (!err)
        err = hmac_sha256(key, sizeof(key), (const char *)sts.data, mac);
    if (!err)
        to_hex(mac, sizeof(mac), signature);
    cap_buf_deinit(&sts);
    return err;
}

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

int cap_sigv4_uri_encode(struct cap_buf *out, const char *s, size_t len, bool keep_slash)
{
    static const char upper[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int err;
        if (unreserved(c) || (keep_slash && c == '/')) {
            err = cap_buf_append_byte(out, c);
        } else {
            char esc[3] = {'%', upper[c >> 4], upper[c & 15]};
            err = cap_buf_append(out, esc, 3);
        }
        if (err)
            return err;
    }
    return 0;
}

static int append_encoded(struct cap_buf *b, const char *s)
{
    return cap_sigv4_uri_encode(b, s, strlen(s), false);
}

int cap_sigv4_presign(const struct cap_sigv4_presign_request *req, char **url_out)
{
    if (!req->method || !req->scheme || !req->host || !*req->host || !req->path ||
        req->path[0] != '/' || !req->access_key || !*req->access_key || !req->secret_key ||
        !req->region || !*req->region || !req->service || !*req->service || !req->amz_date ||
        !valid_amz_date(req->amz_date) || req->expires_s < 1 ||
        req->expires_s > CAP_SIGV4_MAX_EXPIRES)
        return CAP_EINVAL;
    /* The query, in canonical order (parameter names sorted byte-wise) and encoding. */
    struct cap_buf query;
    cap_buf_init(&query, 8192);
    int err = cap_buf_printf(&query, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=");
    if (!err)
        err = append_encoded(&query, req->access_key);
    if (!err)
        err = cap_buf_printf(&query, "%%2F%.8s%%2F", req->amz_date);
    if (!err)
        err = append_encoded(&query, req->region);
    if (!err)
        err = cap_buf_printf(&query, "%%2F");
    if (!err)
        err = append_encoded(&query, req->service);
    if (!err)
        err = cap_buf_printf(
            &query, "%%2Faws4_request&X-Amz-Date=%s&X-Amz-Expires=%d&X-Amz-SignedHeaders=host",
            req->amz_date, req->expires_s);
    struct cap_buf canonical;
    cap_buf_init(&canonical, 16384);
    if (!err)
        err = cap_buf_printf(&canonical, "%s\n%s\n%.*s\nhost:%s\n\nhost\nUNSIGNED-PAYLOAD",
                             req->method, req->path, (int)query.len, (const char *)query.data,
                             req->host);
    if (!err)
        err = cap_buf_append_byte(&canonical, 0);
    char signature[CAP_SIGV4_HEX_LEN + 1];
    if (!err)
        err = cap_sigv4_sign((const char *)canonical.data, req->secret_key, req->amz_date,
                             req->region, req->service, signature);
    struct cap_buf url;
    cap_buf_init(&url, 16384);
    if (!err)
        err = cap_buf_printf(&url, "%s://%s%s?%.*s&X-Amz-Signature=%s", req->scheme, req->host,
                             req->path, (int)query.len, (const char *)query.data, signature);
    if (!err)
        err = cap_buf_append_byte(&url, 0);
    cap_buf_deinit(&query);
    cap_buf_deinit(&canonical);
    if (err) {
        cap_buf_deinit(&url);
        return err;
    }
    *url_out = (char *)url.data;
    return 0;
}
