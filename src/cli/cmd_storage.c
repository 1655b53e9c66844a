/* capstan storage: look at and try a blob store (a folder or S3) the way capstan uses it:
 * check the credentials and bucket, list, head, get (with a range), put (confirmed by size
 * and ETag), delete, and presign. What operators run before pointing --storage at it. */
#include "cli/cli.h"

#include "capstan/error.h"
#include "store/blob.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const help =
    "usage: capstan storage ACTION URL [ARGS]\n"
    "\n"
    "URL is what --storage takes: a folder, file:///dir, or\n"
    "s3://bucket/prefix?endpoint=http://host:port&region=R&access_key=K&secret_key=S\n"
    "(credentials also from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY; see docs/operations.md).\n"
    "Keys are relative to the URL's prefix.\n"
    "\n"
    "  check URL                    put, head, read back and delete a small probe object\n"
    "  ls URL [PREFIX]              list keys with their sizes and ETags\n"
    "  head URL KEY                 size and ETag of one object\n"
    "  get URL KEY FILE [OFFSET [LENGTH]]  download (a byte range of) an object\n"
    "  put URL KEY FILE             upload a file, then confirm size and ETag\n"
    "  rm URL KEY                   delete an object (deleting a missing one is not an error)\n"
    "  presign URL KEY [GET|PUT] [SECONDS]  a URL anyone can use until it expires (3600 s)\n";

static const char *cmd = "storage";

static int parse_u64(const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-')
        return -1;
    *out = v;
    return 0;
}

static int print_entry(void *user, const char *key, const struct cap_blob_info *info)
{
    (void)user;
    printf("%12" PRIu64 "  %-36s  %s\n", info->size, info->etag[0] ? info->etag : "-", key);
    return 0;
}

static int fail_store(struct cap_blob_store *s, const char *action, int err)
{
    int code =
        cli_fail(cmd, CLI_EXIT_FAILURE, "%s: %s", action, s->why[0] ? s->why : cap_strerror(err));
    cap_blob_close(s);
    return code;
}

/* Put, head, ranged read and delete of one small object under a unique key. */
static int check(struct cap_blob_store *s)
{
    char key[96], probe[64], path[64] = "/tmp/capstan-probe-XXXXXX";
    snprintf(key, sizeof(key), ".capstan-check/%ld-%d", (long)time(NULL), (int)getpid());
    int len = snprintf(probe, sizeof(probe), "capstan storage check %s\n", key);
    int fd = mkstemp(path);
    if (fd < 0)
        return cli_fail(cmd, CLI_EXIT_FAILURE, "cannot make a temporary file: %s", strerror(errno));
    close(fd);
    int err = cap_blob_put_buf(s, key, probe, (size_t)len, "text/plain");
    struct cap_blob_info info;
    if (!err)
        err = cap_blob_head(s, key, &info);
    if (!err && info.size != (uint64_t)len)
        err = CAP_ECHECKSUM;
    if (!err)
        err = cap_blob_get_file(s, key, 8, 7, path);
    char back[16] = "";
    FILE *f = err ? NULL : fopen(path, "r");
    if (f) {
        size_t n = fread(back, 1, sizeof(back) - 1, f);
        back[n] = '\0';
        fclose(f);
    }
    unlink(path);
    if (!err && strcmp(back, "storage") != 0)
        err = CAP_ECHECKSUM;
    int del = cap_blob_delete(s, key);
    if (err || del) {
        fprintf(stderr, "capstan storage: check failed: %s\n",
                s->why[0] ? s->why : cap_strerror(err ? err : del));
        return CLI_EXIT_FAILURE;
    }
    printf("ok: %s (%s): put, head, ranged get and delete work\n", s->where, s->ops->name);
    return 0;
}

int cmd_storage(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(help, stdout);
        return 0;
    }
    if (argc < 3)
        return cli_fail(cmd, CLI_EXIT_USAGE, "say what to do and where: ACTION URL (see --help)");
    const char *action = argv[1], *url = argv[2];
    static const struct {
        const char *name;
        int min, max; /* arguments after the URL */
    } actions[] = {{"check", 0, 0}, {"ls", 0, 1}, {"head", 1, 1},   {"get", 2, 4},
                   {"put", 2, 2},   {"rm", 1, 1}, {"presign", 1, 3}};
    int argn = argc - 3;
    bool known = false;
    for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
        if (strcmp(action, actions[i].name) != 0)
            continue;
        known = true;
        if (argn < actions[i].min || argn > actions[i].max)
            return cli_fail(cmd, CLI_EXIT_USAGE,
                            "%s takes %d to %d arguments after the URL (see --help)", action,
                            actions[i].min, actions[i].max);
    }
    if (!known)
        return cli_fail(cmd, CLI_EXIT_USAGE, "unknown action '%s' (see --help)", action);
    uint64_t offset = 0, length = 0;
    int expires = 3600;
    const char *method = "GET";
    if (strcmp(action, "get") == 0 && ((argn > 2 && parse_u64(argv[5], &offset) != 0) ||
                                       (argn > 3 && parse_u64(argv[6], &length) != 0)))
        return cli_fail(cmd, CLI_EXIT_USAGE, "get: OFFSET and LENGTH are byte counts");
    if (strcmp(action, "presign") == 0) {
        if (argn > 1)
            method = argv[4];
        if (strcmp(method, "GET") != 0 && strcmp(method, "PUT") != 0)
            return cli_fail(cmd, CLI_EXIT_USAGE, "presign: the method is GET or PUT, not '%s'",
                            method);
        uint64_t sec;
        if (argn > 2 && (parse_u64(argv[5], &sec) != 0 || sec < 1 || sec > 604800))
            return cli_fail(cmd, CLI_EXIT_USAGE, "presign: SECONDS is 1 to 604800");
        if (argn > 2)
            expires = (int)sec;
    }
    struct cap_blob_store *s;
    char why[512];
    int err = cap_blob_open(&s, url, why, sizeof(why));
    if (err)
        return cli_fail(cmd, CLI_EXIT_FAILURE, "%s", why[0] ? why : cap_strerror(err));
    if (strcmp(action, "check") == 0) {
        int code = check(s);
        cap_blob_close(s);
        return code;
    }
    if (strcmp(action, "ls") == 0) {
        err = cap_blob_list(s, argn ? argv[3] : "", print_entry, NULL);
    } else if (strcmp(action, "head") == 0) {
        struct cap_blob_info info;
        err = cap_blob_head(s, argv[3], &info);
        if (!err)
            printf("size %" PRIu64 "\netag %s\n", info.size, info.etag[0] ? info.etag : "-");
    } else if (strcmp(action, "get") == 0) {
        err = cap_blob_get_file(s, argv[3], offset, length, argv[4]);
    } else if (strcmp(action, "put") == 0) {
        err = cap_blob_put_file_confirmed(s, argv[3], argv[4]);
    } else if (strcmp(action, "rm") == 0) {
        err = cap_blob_delete(s, argv[3]);
    } else {
        char *signed_url = NULL;
        err = cap_blob_presign(s, method, argv[3], expires, &signed_url);
        if (!err)
            puts(signed_url);
        free(signed_url);
    }
    if (err)
        return fail_store(s, action, err);
    cap_blob_close(s);
    return 0;
}
