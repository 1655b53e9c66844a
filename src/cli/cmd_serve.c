/* capstan serve: the recorder daemon. Reads flags (each also a CAPSTAN_* environment
 * variable), starts the service (engine, ingest, catalog), the webhook outbox and sender,
 * and the HTTP API, then runs until SIGINT or SIGTERM. */
#include "cli/cli.h"

#include "api/http.h"
#include "api/service.h"
#include "cli/serve_jobs.h"
#include "hooks/outbox.h"
#include "hooks/webhook.h"
#include "store/blob.h"
#include "store/s3.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_KEYS 32
#define MAX_WEBHOOKS 16

static const char *const help =
    "usage: capstan serve [OPTIONS]\n"
    "\n"
    "Runs the recorder: the HTTP control API an SFU talks to, RTP ingest, the durable spool\n"
    "of raw track chunks, recording metadata, and webhooks. Every option can also be given as\n"
    "an environment variable CAPSTAN_<OPTION> (e.g. CAPSTAN_DATA=/var/lib/capstan); a flag\n"
    "wins over the variable. Repeatable options take comma-separated lists in the variable.\n"
    "\n"
    "  --data DIR             where recordings, the catalog and the outbox live (./data)\n"
    "  --http HOST:PORT       API address (127.0.0.1:8080; port 0 picks a free one)\n"
    "  --rtp-host HOST        address RTP is received on and told to SFUs (127.0.0.1)\n"
    "  --rtp-advertise HOST   address told to SFUs, if not --rtp-host (e.g. behind NAT)\n"
    "  --rtp-ports LO-HI      one UDP+TCP port per recording from this range (20000-29999)\n"
    "  --api-key KEY:ROLE     an API key; ROLE is admin, sfu, worker or viewer (repeatable).\n"
    "                         With none, an admin key is generated once into DIR/api-key\n"
    "  --webhook URL          a webhook endpoint (repeatable)\n"
    "  --webhook-secret S     HMAC-SHA256 key for the X-Capstan-Signature header\n"
    "  --fsync-ms N           make received packets durable at least every N ms (1000)\n"
    "  --chunk-mb N           rotate track chunks at N MiB (64)\n"
    "  --chunk-seconds N      rotate track chunks every N seconds (60)\n"
    "  --recover-seconds N    after a crash, how long a live recording waits for its RTP to\n"
    "                         continue before it stays interrupted (60)\n"
    "  --node N               node number in webhook events (1)\n"
    "  --log-level LEVEL      error, warn, info or debug (info)\n"
    "  --storage URL          where recordings end up: the data folder (default), another\n"
    "                         folder, or s3://BUCKET/PREFIX?endpoint=http://HOST:PORT&region=R\n"
    "                         (credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or URL\n"
    "                         access_key=&secret_key=). Sealed chunks and the recording files\n"
    "                         go up as they close; local chunks go once the store has them\n"
    "  --spool-quota-mb N     alarm (log and metric) when more than N MiB wait for the store;\n"
    "                         recording goes on, nothing is dropped (0: no quota)\n"
    "  --spool-keep           upload but never delete the local chunks\n"
    "  --queue URL            job queue: sqlite (DATA/jobs.db, the default) or\n"
    "                         redis://[:PASSWORD@]HOST:PORT[/DB] (workers anywhere)\n"
    "  --workers N            job worker threads in this process (1; 0: none here)\n"
    "  --visibility-ms N      a job whose worker stops renewing its lease for N ms is\n"
    "                         handed to another worker (30000)\n"
    "  --auto-convert KIND    when a room closes, convert its stopped recordings:\n"
    "                         transmux, compose or convert (both)\n";

static volatile sig_atomic_t stopping;
static sem_t stop_sem; /* posted by the handler (sem_post is async-signal-safe): main sleeps on it */

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
    sem_post(&stop_sem);
}

struct serve_options {
    const char *data;
    char http_host[64];
    uint16_t http_port;
    const char *rtp_host;
    const char *rtp_advertise;
    uint16_t port_lo, port_hi;
    struct cap_api_key keys[MAX_KEYS];
    size_t key_count;
    const char *webhooks[MAX_WEBHOOKS];
    size_t webhook_count;
    const char *webhook_secret;
    long fsync_ms, chunk_mb, chunk_seconds, recover_seconds, node;
    const char *queue;
    long workers, visibility_ms;
    const char *auto_convert;
    const char *storage;
    long spool_quota_mb;
    bool spool_keep;
};

static const char *cmd = "serve";

static int parse_host_port(const char *text, char *host, size_t size, uint16_t *port)
{
    const char *colon = strrchr(text, ':');
    if (!colon)
        return -1;
    size_t n = (size_t)(colon - text);
    if (n >= size)
        return -1;
    /* [::1]:8080 */
    if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
        memcpy(host, text + 1, n - 2);
        host[n - 2] = '\0';
    } else {
        memcpy(host, text, n);
        host[n] = '\0';
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 0 || p > 65535 || end == colon + 1)
        return -1;
    *port = (uint16_t)p;
    return 0;
}

static int add_key(struct serve_options *o, const char *spec)
{
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec || strlen(spec) >= sizeof(o->keys[0].key) + 10)
        return cli_fail(cmd, CLI_EXIT_USAGE, "--api-key takes KEY:ROLE, not '%s'", spec);
    enum cap_role role = cap_role_parse(colon + 1);
    if (role == CAP_ROLE_NONE)
        return cli_fail(cmd, CLI_EXIT_USAGE, "--api-key role must be admin, sfu, worker or viewer, not '%s'",
                        colon + 1);
    if ((size_t)(colon - spec) < 16)
        return cli_fail(cmd, CLI_EXIT_USAGE, "--api-key: a key needs at least 16 characters");
    if (o->key_count == MAX_KEYS)
        return cli_fail(cmd, CLI_EXIT_USAGE, "at most %d API keys", MAX_KEYS);
    struct cap_api_key *k = &o->keys[o->key_count++];
    snprintf(k->key, sizeof(k->key), "%.*s", (int)(colon - spec), spec);
    k->role = role;
    return 0;
}

static int add_webhook(struct serve_options *o, const char *url)
{
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return cli_fail(cmd, CLI_EXIT_USAGE, "--webhook takes an http:// or https:// URL, not '%s'", url);
    if (o->webhook_count == MAX_WEBHOOKS)
        return cli_fail(cmd, CLI_EXIT_USAGE, "at most %d webhooks", MAX_WEBHOOKS);
    o->webhooks[o->webhook_count++] = url;
    return 0;
}

/* One option, from a flag or from its environment variable. */
static int apply_option(struct serve_options *o, const char *name, const char *value)
{
    if (strcmp(name, "data") == 0) {
        o->data = value;
    } else if (strcmp(name, "http") == 0) {
        if (parse_host_port(value, o->http_host, sizeof(o->http_host), &o->http_port) != 0)
            return cli_fail(cmd, CLI_EXIT_USAGE, "--http takes HOST:PORT, not '%s'", value);
    } else if (strcmp(name, "rtp-host") == 0) {
        o->rtp_host = value;
    } else if (strcmp(name, "rtp-advertise") == 0) {
        o->rtp_advertise = value;
    } else if (strcmp(name, "rtp-ports") == 0) {
        unsigned lo, hi;
        char extra;
        if (sscanf(value, "%u-%u%c", &lo, &hi, &extra) != 2 || lo == 0 || hi > 65535 || lo > hi)
            return cli_fail(cmd, CLI_EXIT_USAGE, "--rtp-ports takes LO-HI (1..65535), not '%s'", value);
        o->port_lo = (uint16_t)lo;
        o->port_hi = (uint16_t)hi;
    } else if (strcmp(name, "api-key") == 0) {
        return add_key(o, value);
    } else if (strcmp(name, "webhook") == 0) {
        return add_webhook(o, value);
    } else if (strcmp(name, "webhook-secret") == 0) {
        o->webhook_secret = value;
    } else if (strcmp(name, "fsync-ms") == 0) {
        return cli_parse_long(cmd, "--fsync-ms", value, 1, 3600000, &o->fsync_ms);
    } else if (strcmp(name, "chunk-mb") == 0) {
        return cli_parse_long(cmd, "--chunk-mb", value, 1, 4096, &o->chunk_mb);
    } else if (strcmp(name, "chunk-seconds") == 0) {
        return cli_parse_long(cmd, "--chunk-seconds", value, 1, 86400, &o->chunk_seconds);
    } else if (strcmp(name, "recover-seconds") == 0) {
        return cli_parse_long(cmd, "--recover-seconds", value, 1, 86400, &o->recover_seconds);
    } else if (strcmp(name, "node") == 0) {
        return cli_parse_long(cmd, "--node", value, 0, 1000000, &o->node);
    } else if (strcmp(name, "log-level") == 0) {
        return cli_set_log_level(cmd, value);
    } else if (strcmp(name, "storage") == 0) {
        /* Checked now for a clear message; the store itself is only reached once running. */
        struct cap_s3_config s3;
        char why[512];
        if (cap_blob_url_is_s3(value) && cap_s3_parse_url(value, &s3, why, sizeof(why)) != 0)
            return cli_fail(cmd, CLI_EXIT_USAGE, "--storage: %s", why);
        if (!cap_blob_url_is_s3(value) && (strstr(value, "://") && strncmp(value, "file:///", 8) != 0))
            return cli_fail(cmd, CLI_EXIT_USAGE, "--storage takes a folder, file:///DIR or s3://BUCKET/PREFIX?..., not '%.100s'",
                            value);
        o->storage = value;
    } else if (strcmp(name, "spool-quota-mb") == 0) {
        return cli_parse_long(cmd, "--spool-quota-mb", value, 0, 1L << 30, &o->spool_quota_mb);
    } else if (strcmp(name, "spool-keep") == 0) {
        o->spool_keep = true;
    } else if (strcmp(name, "queue") == 0) {
        if (strcmp(value, "sqlite") != 0 && strcmp(value, "embedded") != 0 && strncmp(value, "sqlite:", 7) != 0 &&
            strncmp(value, "redis://", 8) != 0)
            return cli_fail(cmd, CLI_EXIT_USAGE, "--queue takes sqlite or redis://HOST:PORT, not '%s'", value);
        o->queue = value;
    } else if (strcmp(name, "workers") == 0) {
        return cli_parse_long(cmd, "--workers", value, 0, 256, &o->workers);
    } else if (strcmp(name, "visibility-ms") == 0) {
        return cli_parse_long(cmd, "--visibility-ms", value, 100, 86400000, &o->visibility_ms);
    } else if (strcmp(name, "auto-convert") == 0) {
        if (strcmp(value, "transmux") != 0 && strcmp(value, "compose") != 0 && strcmp(value, "convert") != 0)
            return cli_fail(cmd, CLI_EXIT_USAGE, "--auto-convert takes transmux, compose or convert, not '%s'", value);
        o->auto_convert = value;
    }
    return 0;
}

static const struct option options[] = {
    {"data", required_argument, NULL, 0},          {"http", required_argument, NULL, 0},
    {"rtp-host", required_argument, NULL, 0},      {"rtp-advertise", required_argument, NULL, 0},
    {"rtp-ports", required_argument, NULL, 0},     {"api-key", required_argument, NULL, 0},
    {"webhook", required_argument, NULL, 0},       {"webhook-secret", required_argument, NULL, 0},
    {"fsync-ms", required_argument, NULL, 0},      {"chunk-mb", required_argument, NULL, 0},
    {"chunk-seconds", required_argument, NULL, 0}, {"recover-seconds", required_argument, NULL, 0},
    {"node", required_argument, NULL, 0},          {"log-level", required_argument, NULL, 0},
    {"storage", required_argument, NULL, 0},       {"queue", required_argument, NULL, 0},
    {"workers", required_argument, NULL, 0},       {"help", no_argument, NULL, 'h'},
    {"visibility-ms", required_argument, NULL, 0}, {"auto-convert", required_argument, NULL, 0},
    {"spool-quota-mb", required_argument, NULL, 0}, {"spool-keep", no_argument, NULL, 0},
    {NULL, 0, NULL, 0},
};

static bool repeatable(const char *name)
{
    return strcmp(name, "api-key") == 0 || strcmp(name, "webhook") == 0;
}

static int apply_environment(struct serve_options *o, char **storage)
{
    for (const struct option *opt = options; opt->name; opt++) {
        if (opt->has_arg != required_argument)
            continue;
        char var[64] = "CAPSTAN_";
        for (size_t i = 0; opt->name[i] && i < 50; i++)
            var[8 + i] = opt->name[i] == '-' ? '_' : (char)(opt->name[i] - 32 * (opt->name[i] >= 'a' && opt->name[i] <= 'z'));
        const char *value = getenv(var);
        if (!value || !*value)
            continue;
        if (!repeatable(opt->name)) {
            int err = apply_option(o, opt->name, value);
            if (err)
                return err;
            continue;
        }
        /* A comma-separated list; the copy lives as long as the process. */
        char *copy = strdup(value);
        *storage = copy;
        for (char *item = strtok(copy, ","); item; item = strtok(NULL, ",")) {
            int err = apply_option(o, opt->name, item);
            if (err)
                return err;
        }
    }
    return 0;
}

/* With no key configured: the one in DATA/api-key, or a new one written there. */
static int default_key(struct serve_options *o, bool *generated)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/api-key", o->data) >= (int)sizeof(path))
        return cli_fail(cmd, CLI_EXIT_USAGE, "--data path too long");
    char *text;
    size_t len;
    *generated = false;
    if (cap_read_file(path, 4096, &text, &len) == 0) {
        text[strcspn(text, "\r\n")] = '\0';
        int err = add_key(o, text);
        free(text);
        return err;
    }
    uint8_t raw[24];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, raw, sizeof(raw)) != (ssize_t)sizeof(raw)) {
        if (fd >= 0)
            close(fd);
        return cli_fail(cmd, CLI_EXIT_FAILURE, "cannot read /dev/urandom for a key");
    }
    close(fd);
    char line[80] = "cap_";
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(line + 4 + 2 * i, 3, "%02x", raw[i]);
    strcat(line, ":admin\n");
    int err = cap_mkdir_p(o->data);
    if (!err)
        err = cap_write_file_atomic(path, line, strlen(line));
    if (!err)
        chmod(path, 0600);
    if (err)
        return cli_fail(cmd, CLI_EXIT_FAILURE, "cannot write %s: %s", path, cap_strerror(err));
    line[strcspn(line, "\n")] = '\0';
    *generated = true;
    return add_key(o, line);
}

struct sink_ctx {
    struct cap_outbox *outbox;
    struct cap_webhook_sender *sender;
    bool webhooks;
    struct serve_jobs *_Atomic jobs;   /* set once the job side is open */
};

static int sink_emit(void *user, const char *event_id, const char *body, size_t len)
{
    struct sink_ctx *s = user;
    int err = s->webhooks ? cap_outbox_enqueue(s->outbox, event_id, body, len) : 0;
    if (!err && s->sender)
        cap_webhook_sender_wake(s->sender);
    /* GET /events and auto-convert see every event, webhooks or not. */
    serve_jobs_on_event(atomic_load(&s->jobs), body, len);
    return err;
}

static int64_t sink_backlog(void *user)
{
    struct sink_ctx *s = user;
    return cap_outbox_backlog(s->outbox);
}

int cmd_serve(int argc, char **argv)
{
    struct serve_options o;
    memset(&o, 0, sizeof(o));
    o.data = "./data";
    strcpy(o.http_host, "127.0.0.1");
    o.http_port = 8080;
    o.rtp_host = "127.0.0.1";
    o.port_lo = 20000;
    o.port_hi = 29999;
    o.fsync_ms = 1000;
    o.chunk_mb = 64;
    o.chunk_seconds = 60;
    o.recover_seconds = 60;
    o.node = 1;
    o.workers = 1;
    o.visibility_ms = CAP_QUEUE_DEFAULT_VISIBILITY_MS;
    char *env_storage = NULL;
    int code = apply_environment(&o, &env_storage);
    if (code)
        return code;
    /* Flags replace what the environment gave for repeatable options. */
    bool flag_keys = false, flag_hooks = false;
    int c, index;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", options, &index)) != -1) {
        if (c == 'h') {
            fputs(help, stdout);
            return 0;
        }
        if (c != 0)
            return cli_fail(cmd, CLI_EXIT_USAGE, "unknown or incomplete option '%s' (see --help)", argv[optind - 1]);
        const char *name = options[index].name;
        if (strcmp(name, "api-key") == 0 && !flag_keys) {
            flag_keys = true;
            o.key_count = 0;
        }
        if (strcmp(name, "webhook") == 0 && !flag_hooks) {
            flag_hooks = true;
            o.webhook_count = 0;
        }
        if ((code = apply_option(&o, name, optarg)))
            return code;
    }
    if (optind != argc)
        return cli_fail(cmd, CLI_EXIT_USAGE, "unexpected argument '%s' (see --help)", argv[optind]);

    int err = cap_mkdir_p(o.data);
    if (err)
        return cli_fail(cmd, CLI_EXIT_FAILURE, "--data %s: %s", o.data, cap_strerror(err));
    /* A local --storage folder is made like the data folder. */
    if (o.storage && !cap_blob_url_is_s3(o.storage) &&
        (err = cap_mkdir_p(strncmp(o.storage, "file://", 7) == 0 ? o.storage + 7 : o.storage)))
        return cli_fail(cmd, CLI_EXIT_FAILURE, "--storage %s: %s", o.storage, cap_strerror(err));
    char data_dir[PATH_MAX];
    if (!realpath(o.data, data_dir))
        return cli_fail(cmd, CLI_EXIT_FAILURE, "--data %s: %s", o.data, strerror(errno));
    o.data = data_dir;
    bool generated = false;
    if (o.key_count == 0 && (code = default_key(&o, &generated)))
        return code;

    signal(SIGPIPE, SIG_IGN);
    sem_init(&stop_sem, 0, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    struct sink_ctx sink = {.webhooks = o.webhook_count > 0};
    char outbox_path[PATH_MAX + 16];
    snprintf(outbox_path, sizeof(outbox_path), "%s/outbox.db", o.data);
    if ((err = cap_outbox_open(&sink.outbox, outbox_path)))
        return cli_fail(cmd, CLI_EXIT_FAILURE, "%s: %s", outbox_path, cap_strerror(err));
    cap_outbox_set_endpoints(sink.outbox, o.webhooks, o.webhook_count);
    if (o.webhook_count) {
        struct cap_webhook_config wcfg = {.urls = o.webhooks, .url_count = o.webhook_count,
                                          .secret = o.webhook_secret};
        if ((err = cap_webhook_sender_start(&sink.sender, sink.outbox, &wcfg))) {
            cap_outbox_close(sink.outbox);
            return cli_fail(cmd, CLI_EXIT_FAILURE, "webhooks: %s", cap_strerror(err));
        }
    }

    struct cap_service_config scfg = {
        .data_dir = o.data,
        .rtp_host = o.rtp_host,
        .rtp_advertise = o.rtp_advertise,
        .port_lo = o.port_lo,
        .port_hi = o.port_hi,
        .sync_interval_ns = o.fsync_ms * CAP_NS_PER_MS,
        .max_chunk_bytes = (uint64_t)o.chunk_mb << 20,
        .max_chunk_ns = o.chunk_seconds * CAP_NS_PER_SEC,
        .recover_window_ns = o.recover_seconds * CAP_NS_PER_SEC,
        .node = (int)o.node,
        .sink = {.emit = sink_emit, .backlog = sink_backlog, .user = &sink},
        .storage_url = o.storage,
        .spool_quota_bytes = (uint64_t)o.spool_quota_mb << 20,
        .spool_keep = o.spool_keep,
    };
    struct cap_service *svc;
    if ((err = cap_service_open(&svc, &scfg))) {
        cap_webhook_sender_stop(sink.sender);
        cap_outbox_close(sink.outbox);
        return cli_fail(cmd, CLI_EXIT_FAILURE, "cannot start the recorder in %s (--rtp-host %s): %s",
                        o.data, o.rtp_host, cap_strerror(err));
    }
    char why[256] = "";
    struct serve_jobs_config jcfg = {.data_dir = o.data, .queue_url = o.queue, .auto_convert = o.auto_convert,
                                     .workers = o.workers, .visibility_ms = o.visibility_ms, .node = (int)o.node,
                                     .storage_url = o.storage,
                                     .svc = svc, .outbox = sink.outbox, .sender = sink.sender,
                                     .webhooks = o.webhook_count > 0};
    struct serve_jobs *jobs;
    if ((err = serve_jobs_open(&jobs, &jcfg, why, sizeof(why)))) {
        cap_service_close(svc);
        cap_webhook_sender_stop(sink.sender);
        cap_outbox_close(sink.outbox);
        return cli_fail(cmd, CLI_EXIT_FAILURE, "jobs: %s", why);
    }
    atomic_store(&sink.jobs, jobs);
    struct cap_http_config hcfg = {.host = o.http_host, .port = o.http_port, .keys = o.keys,
                                   .key_count = o.key_count, .svc = svc, .jobs = serve_jobs_api(jobs)};
    struct cap_http *http = NULL;
    err = cap_http_start(&http, &hcfg, why, sizeof(why));
    if (!err && (err = serve_jobs_start(jobs, why, sizeof(why))))
        cap_http_stop(http);
    if (err) {
        atomic_store(&sink.jobs, NULL);
        serve_jobs_close(jobs);
        cap_service_close(svc);
        cap_webhook_sender_stop(sink.sender);
        cap_outbox_close(sink.outbox);
        return cli_fail(cmd, CLI_EXIT_FAILURE, "%s", why);
    }
    uint16_t port = cap_http_port(http);
    const char *host = strchr(o.http_host, ':') ? "[::1]" : o.http_host;
    printf("capstan serving on http://%s:%u (data in %s, RTP on %s ports %u-%u)\n", host, port, o.data,
           o.rtp_host, o.port_lo, o.port_hi);
    if (generated)
        printf("generated an admin API key (stored in %s/api-key, shown only now): %s\n", o.data, o.keys[0].key);
    else if (o.key_count == 1 && !flag_keys && !getenv("CAPSTAN_API_KEY"))
        printf("admin API key: in %s/api-key\n", o.data);
    printf("try: curl -H 'Authorization: Bearer %s' -X PUT http://%s:%u/rooms/demo -d '{\"room_name\":\"Demo\"}'\n",
           generated ? o.keys[0].key : "$KEY", host, port);
    printf("health: http://%s:%u/health  metrics: http://%s:%u/metrics  docs: docs/api.md\n", host, port, host, port);
    fflush(stdout);
    CAP_INFO(NULL, "serving on %s:%u", host, port);

    /* Any thread may take the signal; the flag is what counts, the semaphore wakes main. */
    while (!stopping)
        sem_wait(&stop_sem);

    CAP_INFO(NULL, "stopping");
    cap_http_stop(http);
    atomic_store(&sink.jobs, NULL);
    serve_jobs_close(jobs);
    cap_service_close(svc);
    cap_webhook_sender_stop(sink.sender);
    cap_outbox_close(sink.outbox);
    free(env_storage);
    return 0;
}
