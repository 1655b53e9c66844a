/* store: SigV4 against AWS's published example vectors (header signing and a presigned
 * URL), S3 store URLs good and bad, the local backend, and S3 ETags computed from files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "capstan/error.h"
#include "store/blob.h"
#include "store/s3.h"
#include "store/sigv4.h"
#include "util/fs.h"

#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The example credentials and request of AWS's S3 SigV4 documentation. */
#define EXAMPLE_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define EXAMPLE_DATE "20130524T000000Z"
#define EMPTY CAP_SIGV4_EMPTY_SHA256

struct vector {
    const char *name;
    const char *canonical_request;
    const char *signature;
};

/* "Examples: Signature Calculations" of S3's header-based SigV4 page. */
static const struct vector header_vectors[] = {
    {"GET object with a range",
     "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
     "x-amz-content-sha256:" EMPTY "\nx-amz-date:" EXAMPLE_DATE "\n\n"
     "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY,
     "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"},
    {"PUT object",
     "PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 "
     "GMT\nhost:examplebucket.s3.amazonaws.com\n"
     "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
     "x-amz-date:" EXAMPLE_DATE "\nx-amz-storage-class:REDUCED_REDUNDANCY\n\n"
     "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
     "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
     "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"},
    {"GET bucket lifecycle",
     "GET\n/\nlifecycle=\nhost:examplebucket.s3.amazonaws.com\nx-amz-content-sha256:" EMPTY
     "\nx-amz-date:" EXAMPLE_DATE "\n\nhost;x-amz-content-sha256;x-amz-date\n" EMPTY,
     "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"},
    {"list objects",
     "GET\n/\nmax-keys=2&prefix=J\nhost:examplebucket.s3.amazonaws.com\nx-amz-content-sha256:" EMPTY
     "\nx-amz-date:" EXAMPLE_DATE "\n\nhost;x-amz-content-sha256;x-amz-date\n" EMPTY,
     "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"},
};

static void test_header_signatures_match_the_aws_examples(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(header_vectors) / sizeof(header_vectors[0]); i++) {
        char sig[CAP_SIGV4_HEX_LEN + 1];
        assert_int_equal(cap_sigv4_sign(header_vectors[i].canonical_request, EXAMPLE_SECRET,
                                        EXAMPLE_DATE, "us-east-1", "s3", sig),
                         0);
        if (strcmp(sig, header_vectors[i].signature) != 0)
            fail_msg("%s: got %s, want %s", header_vectors[i].name, sig,
                     header_vectors[i].signature);
    }
}

static void test_payload_hash_of_the_put_example(void **state)
{
    (void)state;
    char hash[CAP_SIGV4_HEX_LEN + 1];
    cap_sigv4_sha256_hex("Welcome to Amazon S3.", 21, hash);
    assert_string_equal(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    cap_sigv4_sha256_hex("", 0, hash);
    assert_string_equal(hash, EMPTY);
}

static void test_signing_key_matches_the_aws_general_example(void **state)
{
    (void)state;
    /* The "derive a signing key" example of the general SigV4 documentation (IAM, 2012). */
    uint8_t key[32];
    assert_int_equal(cap_sigv4_signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215",
                                           "us-east-1", "iam", key),
                     0);
    static const uint8_t want[32] = {0xf4, 0x78, 0x0e, 0x2d, 0x9f, 0x65, 0xfa, 0x89,
                                     0x5f, 0x9c, 0x67, 0xb3, 0x2c, 0xe1, 0xba, 0xf0,
                                     0xb0, 0xd8, 0xa4, 0x35, 0x05, 0xa0, 0x00, 0xa1,
                                     0xa9, 0xe0, 0x90, 0xd4, 0x14, 0xdb, 0x40, 0x4d};
    assert_memory_equal(key, want, 32);
    assert_int_equal(cap_sigv4_signing_key("x", "2012021", "us-east-1", "s3", key), CAP_EINVAL);
    assert_int_equal(cap_sigv4_signing_key("x", "2012O215", "us-east-1", "s3", key), CAP_EINVAL);
}

static void test_presigned_url_matches_the_aws_example(void **state)
{
    (void)state;
    struct cap_sigv4_presign_request req = {
        .method = "GET",
        .scheme = "https",
        .host = "examplebucket.s3.amazonaws.com",
        .path = "/test.txt",
        .access_key = "AKIAIOSFODNN7EXAMPLE",
        .secret_key = EXAMPLE_SECRET,
        .region = "us-east-1",
        .service = "s3",
        .amz_date = EXAMPLE_DATE,
        .expires_s = 86400,
    };
    char *url = NULL;
    assert_int_equal(cap_sigv4_presign(&req, &url), 0);
    assert_string_equal(
        url, "https://examplebucket.s3.amazonaws.com/test.txt"
             "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
             "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
             "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
             "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    free(url);
}

static void test_presign_rejects_bad_requests(void **state)
{
    (void)state;
    struct cap_sigv4_presign_request good = {
        .method = "GET",
        .scheme = "https",
        .host = "h",
        .path = "/k",
        .access_key = "a",
        .secret_key = "s",
        .region = "us-east-1",
        .service = "s3",
        .amz_date = EXAMPLE_DATE,
        .expires_s = 60,
    };
    char *url = NULL;
    struct cap_sigv4_presign_request r = good;
    r.expires_s = 0;
    assert_int_equal(cap_sigv4_presign(&r, &url), CAP_EINVAL);
    r = good;
    r.expires_s = CAP_SIGV4_MAX_EXPIRES + 1;
    assert_int_equal(cap_sigv4_presign(&r, &url), CAP_EINVAL);
    r = good;
    r.path = "k";
    assert_int_equal(cap_sigv4_presign(&r, &url), CAP_EINVAL);
    r = good;
    r.amz_date = "2013-05-24T00:00:00Z";
    assert_int_equal(cap_sigv4_presign(&r, &url), CAP_EINVAL);
    assert_null(url);
}

static void test_uri_encoding_keeps_only_unreserved_and_slashes(void **state)
{
    (void)state;
    struct cap_buf b;
    cap_buf_init(&b, 1024);
    const char *in = "rooms/r 1/a+b=c~d_e-f.g/\xc3\xa9*";
    assert_int_equal(cap_sigv4_uri_encode(&b, in, strlen(in), true), 0);
    assert_int_equal(cap_buf_append_byte(&b, 0), 0);
    assert_string_equal((char *)b.data, "rooms/r%201/a%2Bb%3Dc~d_e-f.g/%C3%A9%2A");
    cap_buf_reset(&b);
    assert_int_equal(cap_sigv4_uri_encode(&b, "a/b", 3, false), 0);
    assert_int_equal(cap_buf_append_byte(&b, 0), 0);
    assert_string_equal((char *)b.data, "a%2Fb");
    cap_buf_deinit(&b);
}

/* ---- store URLs ---- */

static void clear_aws_env(void)
{
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_ENDPOINT_URL_S3");
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
}

static void test_s3_url_with_endpoint_is_path_style(void **state)
{
    (void)state;
    clear_aws_env();
    struct cap_s3_config c;
    char why[512];
    assert_int_equal(
        cap_s3_parse_url(
            "s3://my-bucket/rec/ords/?endpoint=http%3A%2F%2F127.0.0.1%3A9000&region=eu-west-1"
            "&access_key=AK&secret_key=se%2Fcr+et&part_mb=5&create_bucket=1",
            &c, why, sizeof(why)),
        0);
    assert_string_equal(c.scheme, "http");
    assert_string_equal(c.host, "127.0.0.1:9000");
    assert_string_equal(c.bucket, "my-bucket");
    assert_string_equal(c.prefix, "rec/ords");
    assert_string_equal(c.region, "eu-west-1");
    assert_string_equal(c.access_key, "AK");
    assert_string_equal(c.secret_key, "se/cr+et");
    assert_true(c.path_style);
    assert_true(c.create_bucket);
    assert_true(c.check_etag);
    assert_int_equal(c.part_size, 5u << 20);
    assert_int_equal(c.retries, CAP_S3_DEFAULT_RETRIES);
}

static void test_s3_url_without_endpoint_is_aws_virtual_hosted(void **state)
{
    (void)state;
    clear_aws_env();
    setenv("AWS_ACCESS_KEY_ID", "envkey", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
    setenv("AWS_REGION", "ap-south-1", 1);
    struct cap_s3_config c;
    char why[512];
    assert_int_equal(cap_s3_parse_url("s3://bucket", &c, why, sizeof(why)), 0);
    assert_string_equal(c.scheme, "https");
    assert_string_equal(c.host, "s3.ap-south-1.amazonaws.com");
    assert_string_equal(c.prefix, "");
    assert_false(c.path_style);
    assert_string_equal(c.access_key, "envkey");
    assert_string_equal(c.secret_key, "envsecret");
    assert_int_equal(c.part_size, (uint64_t)CAP_S3_DEFAULT_PART_MB << 20);
    setenv("AWS_ENDPOINT_URL", "https://minio.example:9000/", 1);
    assert_int_equal(cap_s3_parse_url("s3://bucket/p", &c, why, sizeof(why)), 0);
    assert_string_equal(c.host, "minio.example:9000");
    assert_true(c.path_style);
    clear_aws_env();
}

static void test_custom_s3_url_of_the_reference(void **state)
{
    (void)state;
    clear_aws_env();
    struct cap_s3_config c;
    char why[512];
    assert_int_equal(
        cap_s3_parse_url("http://user:pass%40word@[::1]:4569/bucket/out/a%20b?path_style=true", &c,
                         why, sizeof(why)),
        0);
    assert_string_equal(c.scheme, "http");
    assert_string_equal(c.host, "[::1]:4569");
    assert_string_equal(c.access_key, "user");
    assert_string_equal(c.secret_key, "pass@word");
    assert_string_equal(c.bucket, "bucket");
    assert_string_equal(c.prefix, "out/a b");
    assert_true(c.path_style);
}

struct bad_url {
    const char *url;
    const char *why_contains;
};

static void test_bad_s3_urls_say_what_is_wrong(void **state)
{
    (void)state;
    clear_aws_env();
    static const struct bad_url bad[] = {
        {"s3://", "bad bucket name"},
        {"s3://Bucket_Upper?access_key=a&secret_key=b", "bad bucket name"},
        {"s3://ab?access_key=a&secret_key=b", "bad bucket name"},
        {"s3://bucket/a//b?access_key=a&secret_key=b", "empty, '.' or '..'"},
        {"s3://bucket/a/../b?access_key=a&secret_key=b", "empty, '.' or '..'"},
        {"s3://bucket?access_key=a&secret_key=b&colour=blue", "unknown S3 URL parameter 'colour'"},
        {"s3://bucket?access_key=a&secret_key=b&part_mb=1",
         "part_mb takes a number from 5 to 5120"},
        {"s3://bucket?access_key=a&secret_key=b&path_style=maybe", "path_style takes 1 or 0"},
        {"s3://bucket?access_key=a&secret_key=b&endpoint=ftp://h", "endpoint must be http"},
        {"s3://bucket?access_key=a&secret_key=b&endpoint=http://h:99999", "bad host or port"},
        {"s3://bucket?access_key=a&secret_key=b&endpoint=http://h/path",
         "only scheme, host and port"},
        {"s3://bucket?access_key=a&secret_key=b&region", "has no value"},
        {"s3://bucket?access_key=a%2&secret_key=b", "bad %-encoding"},
        {"s3://bucket/p", "no S3 credentials"},
        {"http://host:1/bucket", "no S3 credentials"},
        {"http://a:b@host:1", "names no bucket"},
        {"http://a:b@/bucket", "no host"},
        {"http://ab@host:1/bucket", "KEY:SECRET@host"},
        {"http://a:b@h:1/bucket?endpoint=http://x:2", "its own endpoint"},
        {"https://b.s3.amazonaws.com/bucket/k?X-Amz-Signature=abc", "presigned URL"},
        {"https://a:b@h/b.dots?path_style=0", "cannot be virtual-hosted"},
        {"s3://bucket?access_key=a&secret_key=b&region=eu%2Fwest", "bad region"},
        {"s3://bucket?access_key=a%3Ab&secret_key=b", "bad access key"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cap_s3_config c;
        char why[512] = "";
        int err = cap_s3_parse_url(bad[i].url, &c, why, sizeof(why));
        if (err != CAP_EINVAL || !strstr(why, bad[i].why_contains))
            fail_msg("%s: err %d, why '%s' (want '%s')", bad[i].url, err, why, bad[i].why_contains);
    }
}

static void test_open_rejects_unknown_schemes_and_opens_without_a_server(void **state)
{
    (void)state;
    clear_aws_env();
    struct cap_blob_store *s = NULL;
    char why[512];
    assert_int_equal(cap_blob_open(&s, "ftp://x/y", why, sizeof(why)), CAP_EINVAL);
    assert_non_null(strstr(why, "unknown storage URL scheme"));
    assert_int_equal(cap_blob_open(&s, "file://relative", why, sizeof(why)), CAP_EINVAL);
    assert_true(cap_blob_url_is_s3("s3://b"));
    assert_false(cap_blob_url_is_s3("/data"));
    /* Port 1 on loopback: nothing listens; opening must not need the server. */
    assert_int_equal(
        cap_blob_open(&s,
                      "s3://bucket/pre?endpoint=http://127.0.0.1:1&access_key=a&secret_key=b"
                      "&retries=0",
                      why, sizeof(why)),
        0);
    assert_string_equal(s->ops->name, "s3");
    assert_null(strstr(s->where, "secret"));
    assert_non_null(strstr(s->where, "s3://bucket/pre"));
    struct cap_blob_info info;
    assert_int_equal(cap_blob_head(s, "k", &info), CAP_EAGAIN);
    assert_non_null(strstr(cap_blob_why(s), "HEAD k"));
    char *url = NULL;
    assert_int_equal(cap_blob_presign(s, "GET", "rooms/a b.ctrk", 300, &url), 0);
    assert_non_null(strstr(
        url, "http://127.0.0.1:1/bucket/pre/rooms/a%20b.ctrk?X-Amz-Algorithm=AWS4-HMAC-SHA256"));
    assert_non_null(strstr(url, "&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature="));
    free(url);
    assert_int_equal(cap_blob_presign(s, "DELETE", "k", 300, &url), CAP_EINVAL);
    assert_int_equal(cap_blob_presign(s, "GET", "k", 0, &url), CAP_EINVAL);
    cap_blob_close(s);
}

/* ---- files ---- */

static char *make_temp_dir(void)
{
    char tmpl[] = "/tmp/capstan-blob-XXXXXX";
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    return strdup(dir);
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(cap_write_all(fd, data, len), 0);
    close(fd);
}

static char *read_all(const char *path, size_t *len)
{
    char *text = NULL;
    assert_int_equal(cap_read_file(path, 64u << 20, &text, len), 0);
    return text;
}

struct listing {
    char keys[16][256];
    uint64_t sizes[16];
    size_t count;
    size_t stop_after;
};

static int collect(void *user, const char *key, const struct cap_blob_info *info)
{
    struct listing *l = user;
    if (l->count < 16) {
        snprintf(l->keys[l->count], sizeof(l->keys[0]), "%s", key);
        l->sizes[l->count] = info->size;
    }
    l->count++;
    return l->stop_after && l->count == l->stop_after;
}

static void test_local_store_round_trips_objects(void **state)
{
    (void)state;
    char *root = make_temp_dir();
    char store_dir[512], src[512], got[512];
    snprintf(store_dir, sizeof(store_dir), "%s/store", root);
    snprintf(src, sizeof(src), "%s/src.bin", root);
    snprintf(got, sizeof(got), "%s/out/got.bin", root);
    write_file(src, "0123456789abcdef", 16);
    struct cap_blob_store *s;
    char why[512];
    assert_int_equal(cap_blob_open(&s, store_dir, why, sizeof(why)), 0);
    assert_string_equal(s->ops->name, "local");
    assert_int_equal(cap_blob_put_file(s, "rooms/r1/rec1/tracks/p-audio/00000001.ctrk", src), 0);
    assert_int_equal(
        cap_blob_put_buf(s, "rooms/r1/rec1/metadata.json", "{}\n", 3, "application/json"), 0);
    assert_int_equal(cap_blob_put_buf(s, "rooms/r10/x", "z", 1, NULL), 0);
    struct cap_blob_info info;
    assert_int_equal(cap_blob_head(s, "rooms/r1/rec1/tracks/p-audio/00000001.ctrk", &info), 0);
    assert_int_equal(info.size, 16);
    assert_string_equal(info.etag, "");
    assert_int_equal(cap_blob_head(s, "rooms/r1/nothing", &info), CAP_ENOENT);
    /* Range reads, to the end and in the middle; a range past the end is refused. */
    assert_int_equal(cap_blob_get_file(s, "rooms/r1/rec1/tracks/p-audio/00000001.ctrk", 10, 0, got),
                     0);
    size_t len;
    char *text = read_all(got, &len);
    assert_int_equal(len, 6);
    assert_memory_equal(text, "abcdef", 6);
    free(text);
    assert_int_equal(cap_blob_get_file(s, "rooms/r1/rec1/tracks/p-audio/00000001.ctrk", 2, 3, got),
                     0);
    text = read_all(got, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(text, "234", 3);
    free(text);
    assert_int_equal(cap_blob_get_file(s, "rooms/r1/rec1/tracks/p-audio/00000001.ctrk", 16, 0, got),
                     CAP_ERANGE);
    assert_int_equal(cap_blob_get_file(s, "missing", 0, 0, got), CAP_ENOENT);
    /* A prefix is a string prefix: "rooms/r1" also finds r10, "rooms/r1/" does not. */
    struct listing l = {0};
    assert_int_equal(cap_blob_list(s, "rooms/r1/", collect, &l), 0);
    assert_int_equal(l.count, 2);
    assert_string_equal(l.keys[0], "rooms/r1/rec1/metadata.json");
    assert_string_equal(l.keys[1], "rooms/r1/rec1/tracks/p-audio/00000001.ctrk");
    assert_int_equal(l.sizes[1], 16);
    memset(&l, 0, sizeof(l));
    assert_int_equal(cap_blob_list(s, "rooms/r1", collect, &l), 0);
    assert_int_equal(l.count, 3);
    memset(&l, 0, sizeof(l));
    l.stop_after = 1;
    assert_int_equal(cap_blob_list(s, "", collect, &l), 0);
    assert_int_equal(l.count, 1);
    /* Bad keys never reach the file system. */
    assert_int_equal(cap_blob_put_buf(s, "../escape", "x", 1, NULL), CAP_EINVAL);
    assert_int_equal(cap_blob_put_buf(s, "/abs", "x", 1, NULL), CAP_EINVAL);
    assert_int_equal(cap_blob_put_buf(s, "a//b", "x", 1, NULL), CAP_EINVAL);
    assert_int_equal(cap_blob_put_buf(s, "a/./b", "x", 1, NULL), CAP_EINVAL);
    assert_int_equal(cap_blob_list(s, "../", collect, &l), CAP_EINVAL);
    /* Deleting removes the folders it leaves empty; deleting twice is fine. */
    assert_int_equal(cap_blob_delete(s, "rooms/r10/x"), 0);
    assert_int_equal(cap_blob_delete(s, "rooms/r10/x"), 0);
    char r10[PATH_MAX];
    snprintf(r10, sizeof(r10), "%s/rooms/r10", store_dir);
    struct stat st;
    assert_int_not_equal(stat(r10, &st), 0);
    char *url = NULL;
    assert_int_equal(cap_blob_presign(s, "GET", "rooms/r1/rec1/metadata.json", 60, &url),
                     CAP_EUNSUPPORTED);
    cap_blob_close(s);
    /* Opening a folder that is not there does not make it; the first put does. */
    char later[600];
    snprintf(later, sizeof(later), "%s/not-yet", root);
    assert_int_equal(cap_blob_open(&s, later, why, sizeof(why)), 0);
    memset(&l, 0, sizeof(l));
    assert_int_equal(cap_blob_list(s, "", collect, &l), 0);
    assert_int_equal(l.count, 0);
    assert_int_not_equal(stat(later, &st), 0);
    assert_int_equal(cap_blob_put_buf(s, "a/b", "x", 1, NULL), 0);
    assert_int_equal(stat(later, &st), 0);
    cap_blob_close(s);
    snprintf(later, sizeof(later), "%s/src.bin", root);
    assert_int_equal(cap_blob_open(&s, later, why, sizeof(why)), CAP_EINVAL);
    assert_non_null(strstr(why, "not a folder"));
    cap_remove_tree(root);
    free(root);
}

static void test_prefix_download_and_folder_upload_mirror_each_other(void **state)
{
    (void)state;
    char *root = make_temp_dir();
    char store_dir[512], in[512], out[512], path[PATH_MAX];
    snprintf(store_dir, sizeof(store_dir), "%s/store", root);
    snprintf(in, sizeof(in), "%s/in", root);
    snprintf(out, sizeof(out), "%s/out", root);
    snprintf(path, sizeof(path), "%s/tracks/p-video", in);
    assert_int_equal(cap_mkdir_p(path), 0);
    snprintf(path, sizeof(path), "%s/tracks/p-video/00000001.ctrk", in);
    write_file(path, "chunk-one", 9);
    snprintf(path, sizeof(path), "%s/metadata.json", in);
    write_file(path, "{\"a\":1}", 7);
    struct cap_blob_store *s;
    char why[512];
    assert_int_equal(cap_blob_open(&s, store_dir, why, sizeof(why)), 0);
    assert_int_equal(cap_blob_upload_dir(s, in, "rooms/r/rec"), 2);
    assert_int_equal(cap_blob_put_buf(s, "rooms/r/record-other/x", "x", 1, NULL), 0);
    assert_int_equal(cap_blob_download_prefix(s, "rooms/r/rec", out), 2);
    snprintf(path, sizeof(path), "%s/tracks/p-video/00000001.ctrk", out);
    size_t len;
    char *text = read_all(path, &len);
    assert_int_equal(len, 9);
    assert_memory_equal(text, "chunk-one", 9);
    free(text);
    snprintf(path, sizeof(path), "%s/x", out);
    struct stat st;
    assert_int_not_equal(stat(path, &st), 0);
    /* A confirmed put of the same bytes again is fine; so is one over different bytes. */
    snprintf(path, sizeof(path), "%s/metadata.json", in);
    assert_int_equal(cap_blob_put_file_confirmed(s, "rooms/r/rec/metadata.json", path), 0);
    write_file(path, "{\"a\":22}", 8);
    assert_int_equal(cap_blob_put_file_confirmed(s, "rooms/r/rec/metadata.json", path), 0);
    struct cap_blob_info info;
    assert_int_equal(cap_blob_head(s, "rooms/r/rec/metadata.json", &info), 0);
    assert_int_equal(info.size, 8);
    snprintf(path, sizeof(path), "%s/none", in);
    assert_int_equal(cap_blob_put_file_confirmed(s, "k", path), CAP_ENOENT);
    cap_blob_close(s);
    cap_remove_tree(root);
    free(root);
}

static void md5_hex_of(const void *data, size_t len, char out[33])
{
    uint8_t d[16];
    unsigned int n;
    EVP_Digest(data, len, d, &n, EVP_md5(), NULL);
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void test_s3_etag_is_the_md5_or_the_multipart_form(void **state)
{
    (void)state;
    clear_aws_env();
    char *root = make_temp_dir();
    char small[512], large[512];
    snprintf(small, sizeof(small), "%s/small", root);
    snprintf(large, sizeof(large), "%s/large", root);
    write_file(small, "hello\n", 6);
    size_t big = (11u << 20) + 123; /* three parts of 5 MiB: 5, 5 and 1 MiB + 123 bytes */
    uint8_t *data = malloc(big);
    assert_non_null(data);
    for (size_t i = 0; i < big; i++)
        data[i] = (uint8_t)(i * 2654435761u >> 13);
    write_file(large, data, big);
    struct cap_blob_store *s;
    char why[512];
    assert_int_equal(
        cap_blob_open(&s,
                      "s3://bucket?endpoint=http://127.0.0.1:1&access_key=a&secret_key=b&part_mb=5",
                      why, sizeof(why)),
        0);
    assert_int_equal(s->ops->etag_matches(s, small, "\"b1946ac92492d2347c6235b4d2611184\""), 0);
    assert_int_equal(s->ops->etag_matches(s, small, "B1946AC92492D2347C6235B4D2611184"), 0);
    assert_int_equal(s->ops->etag_matches(s, small, "\"b1946ac92492d2347c6235b4d2611185\""),
                     CAP_ECHECKSUM);
    /* The multipart form: MD5 over the three parts' binary MD5s, then "-3". */
    uint8_t concat[48];
    size_t part = 5u << 20;
    for (int i = 0; i < 3; i++) {
        size_t off = (size_t)i * part, len = big - off < part ? big - off : part;
        unsigned int n;
        EVP_Digest(data + off, len, concat + 16 * i, &n, EVP_md5(), NULL);
    }
    char want[48];
    md5_hex_of(concat, sizeof(concat), want);
    strcat(want, "-3");
    assert_int_equal(s->ops->etag_matches(s, large, want), 0);
    want[0] = want[0] == 'a' ? 'b' : 'a';
    assert_int_equal(s->ops->etag_matches(s, large, want), CAP_ECHECKSUM);
    /* A server that gives a multipart object its whole MD5 (s3rver) is understood too. */
    char whole[33];
    md5_hex_of(data, big, whole);
    assert_int_equal(s->ops->etag_matches(s, large, whole), 0);
    cap_blob_close(s);
    assert_int_equal(
        cap_blob_open(
            &s, "s3://bucket?endpoint=http://127.0.0.1:1&access_key=a&secret_key=b&check_etag=0",
            why, sizeof(why)),
        0);
    assert_int_equal(s->ops->etag_matches(s, small, "whatever"), CAP_EUNSUPPORTED);
    cap_blob_close(s);
    free(data);
    cap_remove_tree(root);
    free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_signatures_match_the_aws_examples),
        cmocka_unit_test(test_payload_hash_of_the_put_example),
        cmocka_unit_test(test_signing_key_matches_the_aws_general_example),
        cmocka_unit_test(test_presigned_url_matches_the_aws_example),
        cmocka_unit_test(test_presign_rejects_bad_requests),
        cmocka_unit_test(test_uri_encoding_keeps_only_unreserved_and_slashes),
        cmocka_unit_test(test_s3_url_with_endpoint_is_path_style),
        cmocka_unit_test(test_s3_url_without_endpoint_is_aws_virtual_hosted),
        cmocka_unit_test(test_custom_s3_url_of_the_reference),
        cmocka_unit_test(test_bad_s3_urls_say_what_is_wrong),
        cmocka_unit_test(test_open_rejects_unknown_schemes_and_opens_without_a_server),
        cmocka_unit_test(test_local_store_round_trips_objects),
        cmocka_unit_test(test_prefix_download_and_folder_upload_mirror_each_other),
        cmocka_unit_test(test_s3_etag_is_the_md5_or_the_multipart_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
