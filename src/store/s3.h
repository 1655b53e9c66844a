/* The S3 backend of the blob store (internal to src/store): its configuration as parsed from
 * a store URL, and how it is opened. blob.c parses; s3.c talks to the server. */
#ifndef CAP_STORE_S3_H
#define CAP_STORE_S3_H

#include "store/blob.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAP_S3_DEFAULT_PART_MB 16
#define CAP_S3_MIN_PART_MB 5 /* S3's smallest part but the last */
#define CAP_S3_MAX_PART_MB 5120
#define CAP_S3_MAX_PARTS 10000
#define CAP_S3_DEFAULT_RETRIES 3

struct cap_s3_config {
    char scheme[8]; /* of the endpoint: "http" or "https" */
    char host[256]; /* endpoint host[:port], as its Host header carries it */
    char bucket[64];
    char prefix[1024]; /* keys go under it; no leading or trailing '/'; "" = bucket root */
    char region[64];
    char access_key[256];
    char secret_key[256];
    bool path_style; /* endpoint/bucket/key (default for custom endpoints), else bucket.endpoint/key
                      */
    bool create_bucket;
    uint64_t part_size; /* multipart part size; files larger than this go in parts */
    int retries;        /* attempts after the first, on connection errors and 5xx */
    int max_keys;       /* listing page size (1..1000) */
    bool check_etag;    /* ETag is the MD5 (false for SSE-KMS buckets, whose ETags are not) */
};

/* Parses "s3://bucket[/prefix][?params]" or "http(s)://[KEY:SECRET@]host[:port]/bucket[/prefix]
 * [?params]" (see cap_blob_open), with the environment's defaults. why says what is wrong. */
int cap_s3_parse_url(const char *url, struct cap_s3_config *cfg, char *why, size_t why_size);

int cap_s3_open(struct cap_blob_store **out, const struct cap_s3_config *cfg, char *why,
                size_t why_size);

/* One ListObjectsV2 answer: fn for each entry under prefix (the store's, "" or ending in
 * '/'), with the prefix cut from its key; token gets NextContinuationToken when the listing
 * goes on ("" at its end); *stop is set when fn asks to stop. 0, or CAP_EFORMAT with why. */
int cap_s3_parse_list(const void *xml, size_t len, const char *prefix, cap_blob_list_fn fn,
                      void *user, char *token, size_t token_size, bool *stop, char *why,
                      size_t why_size);

#endif
