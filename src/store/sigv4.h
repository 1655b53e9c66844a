/* AWS Signature Version 4, the parts libcurl does not do for us: the signing key, the
 * signature of a canonical request, S3's URI encoding, and presigned (query-signed) URLs.
 * Facts from the AWS SigV4 and S3 "query string auth" specifications; the unit tests check
 * every step against AWS's published example vectors. */
#ifndef CAP_STORE_SIGV4_H
#define CAP_STORE_SIGV4_H

#include "util/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define CAP_SIGV4_HEX_LEN 64         /* a SHA-256 in lower-case hex, without the NUL */
#define CAP_SIGV4_DATE_LEN 16        /* "20130524T000000Z" */
#define CAP_SIGV4_MAX_EXPIRES 604800 /* 7 days: the longest a presigned URL may live */
#define CAP_SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Lower-case hex SHA-256 of data into out (CAP_SIGV4_HEX_LEN + 1 bytes). */
void cap_sigv4_sha256_hex(const void *data, size_t len, char *out);

/* The SigV4 date of a Unix time: "YYYYMMDDTHHMMSSZ" (CAP_SIGV4_DATE_LEN + 1 bytes). */
void cap_sigv4_amz_date(time_t t, char *out);

/* The 32-byte signing key: HMAC chain over the date (YYYYMMDD), region, service and
 * "aws4_request", keyed by "AWS4" + secret. CAP_EINVAL for a date that is not 8 digits. */
int cap_sigv4_signing_key(const char *secret, const char *date8, const char *region,
                          const char *service, uint8_t key[32]);

/* The hex signature (CAP_SIGV4_HEX_LEN + 1 bytes) of a canonical request signed at amz_date
 * ("YYYYMMDDTHHMMSSZ") for region and service. */
int cap_sigv4_sign(const char *canonical_request, const char *secret, const char *amz_date,
                   const char *region, const char *service, char *signature);

/* Appends the S3 URI encoding of s[0..len): unreserved characters (A-Z a-z 0-9 - _ . ~) as
 * they are, '/' as it is when keep_slash, every other byte as %XX (upper-case hex). */
int cap_sigv4_uri_encode(struct cap_buf *out, const char *s, size_t len, bool keep_slash);

struct cap_sigv4_presign_request {
    const char *method; /* "GET" or "PUT" */
    const char *scheme; /* "http" or "https" */
    const char *host;   /* the Host header the client will send: "host" or "host:port" */
    const char *path;   /* the canonical (already URI-encoded) path, starting with '/' */
    const char *access_key;
    const char *secret_key;
    const char *region;
    const char *service;  /* "s3" */
    const char *amz_date; /* "YYYYMMDDTHHMMSSZ": when the URL starts to be valid */
    int expires_s;        /* 1 .. CAP_SIGV4_MAX_EXPIRES */
};

/* A URL that performs the request with no other credential until it expires: query
 * parameters X-Amz-Algorithm, -Credential, -Date, -Expires, -SignedHeaders (host only) and
 * -Signature, over an UNSIGNED-PAYLOAD. *url_out is malloc'd. CAP_EINVAL for bad input. */
int cap_sigv4_presign(const struct cap_sigv4_presign_request *req, char **url_out);

#endif
