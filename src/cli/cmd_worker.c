/* capstan worker: job workers only, for scale-out. Claims jobs from a Redis queue, fetches
 * recordings from the blob store, runs them and publishes the outputs; its job events go
 * to Redis, where `capstan serve` takes them into its webhook outbox. Runs until SIGINT or
 * SIGTERM, then lets its running jobs finish. */
#include "cli/cli.h"

#include "capstan/error.h"
#include "jobs/worker.h"
#include "util/log.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const help =
    "usage: capstan worker --queue redis://HOST:PORT --storage URL [OPTIONS]\n"
    "\n"
    "Runs job workers (transmux, compose, export) for a cluster whose `capstan serve` nodes\n"
    "queue jobs in Redis. Every option can also be given as CAPSTAN_<OPTION>.\n"
    "\n"
    "  --queue URL            redis://[:PASSWORD@]HOST:PORT[/DB] (required)\n"
    "  --storage URL          where recordings are and outputs go: "
    "s3://BUCKET/PREFIX?endpoint=...\n"
    "                         or a folder every node shares (required)\n"
    "  --concurrency N        jobs run at once (1)\n"
    "  --work-dir DIR         scratch space for fetched recordings and outputs (./capstan-work)\n"
    "  --visibility-ms N      a job whose worker stops renewing its lease for N ms is handed\n"
    "                         to another worker (30000); use the same value everywhere\n"
    "  --max-attempts N       give a job up after N workers took it and vanished (3)\n"
    "  --name NAME            worker name in the queue and logs (HOST-PID)\n"
    "  --node N               node number in the events this worker writes (1)\n"
    "  --log-level LEVEL      error, warn, info or debug (info)\n";

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static const char *cmd = "worker";

struct worker_options {
    const char *queue, *storage, *work_dir, *name;
    long concurrency, visibility_ms, max_attempts, node;
};

static int apply_option(struct worker_options *o, const char *name, const char *value)
{
    if (strcmp(name, "queue") == 0) {
        if (strncmp(value, "redis://", 8) != 0)
            return cli_fail(cmd, CLI_EXIT_USAGE,
                            "--queue takes redis://HOST:PORT (the SQLite queue's workers run "
                            "inside capstan serve)");
        o->queue = value;
    } else if (strcmp(name, "storage") == 0) {
        o->storage = value;
    } else if (strcmp(name, "work-dir") == 0) {
        o->work_dir = value;
    } else if (strcmp(name, "name") == 0) {
        if (!*value || strlen(value) > 64 || strpbrk(value, " \t\r\n"))
            return cli_fail(cmd, CLI_EXIT_USAGE, "--name takes 1-64 characters without spaces");
        o->name = value;
    } else if (strcmp(name, "concurrency") == 0) {
        return cli_parse_long(cmd, "--concurrency", value, 1, 64, &o->concurrency);
    } else if (strcmp(name, "visibility-ms") == 0) {
        return cli_parse_long(cmd, "--visibility-ms", value, 100, 86400000, &o->visibility_ms);
    } else if (strcmp(name, "max-attempts") == 0) {
        return cli_parse_long(cmd, "--max-attempts", value, 1, 100, &o->max_attempts);
    } else if (strcmp(name, "node") == 0) {
        return cli_parse_long(cmd, "--node", value, 0, 1000000, &o->node);
    } else if (strcmp(name, "log-level") == 0) {
        return cli_set_log_level(cmd, value);
    }
    return 0;
}

static const struct option options[] = {
    {"queue", required_argument, NULL, 0},
    {"storage", required_argument, NULL, 0},
    {"work-dir", required_argument, NULL, 0},
    {"name", required_argument, NULL, 0},
    {"concurrency", required_argument, NULL, 0},
    {"visibility-ms", required_argument, NULL, 0},
    {"max-attempts", required_argument, NULL, 0},
    {"node", required_argument, NULL, 0},
    {"log-level", required_argument, NULL, 0},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int apply_environment(struct worker_options *o)
{
    for (const struct option *opt = options; opt->name; opt++) {
        if (opt->has_arg != required_argument)
            continue;
        char var[64] = "CAPSTAN_";
        for (size_t i = 0; opt->name[i] && i < 50; i++) {
            char c = opt->name[i];
            var[8 + i] = c == '-' ? '_' : (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
        }
        const char *value = getenv(var);
        if (value && *value) {
            int err = apply_option(o, opt->name, value);
            if (err)
                return err;
        }
    }
    return 0;
}

int cmd_worker(int argc, char **argv)
{
    struct worker_options o = {.work_dir = "./capstan-work",
                               .concurrency = 1,
                               .visibility_ms = CAP_QUEUE_DEFAULT_VISIBILITY_MS,
                               .max_attempts = CAP_QUEUE_DEFAULT_MAX_ATTEMPTS,
                               .node = 1};
    int code = apply_environment(&o);
    if (code)
        return code;
    int c, index;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", options, &index)) != -1) {
        if (c == 'h') {
            fputs(help, stdout);
            return 0;
        }
        if (c != 0)
            return cli_fail(cmd, CLI_EXIT_USAGE, "unknown or incomplete option '%s' (see --help)",
                            argv[optind - 1]);
        if ((code = apply_option(&o, options[index].name, optarg)))
            return code;
    }
    if (optind != argc)
        return cli_fail(cmd, CLI_EXIT_USAGE, "unexpected argument '%s' (see --help)", argv[optind]);
    if (!o.queue)
        return cli_fail(cmd, CLI_EXIT_USAGE, "--queue redis://HOST:PORT is required (see --help)");
    if (!o.storage)
        return cli_fail(cmd, CLI_EXIT_USAGE,
                        "--storage URL is required: where the recordings are (see --help)");
    char name[128];
    if (o.name) {
        snprintf(name, sizeof(name), "%s", o.name);
    } else {
        char host[64] = "";
        gethostname(host, sizeof(host) - 1);
        snprintf(name, sizeof(name), "%s-%d", host[0] ? host : "worker", (int)getpid());
    }

    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    struct cap_worker_config cfg = {
        .queue_url = o.queue,
        .queue = {.node = (int)o.node,
                  .visibility_ms = o.visibility_ms,
                  .max_attempts = (int)o.max_attempts},
        .storage_url = o.storage,
        .work_dir = o.work_dir,
        .name = name,
        .threads = (int)o.concurrency,
    };
    struct cap_worker_pool *pool;
    char why[512] = "";
    int err = cap_worker_pool_start(&pool, &cfg, why, sizeof(why));
    if (err)
        return cli_fail(cmd, CLI_EXIT_FAILURE, "%s", why[0] ? why : cap_strerror(err));
    const char *at = strrchr(o.queue, '@'); /* no password on the terminal */
    printf("capstan worker %s: %ld job%s at a time from redis://%s\n", name, o.concurrency,
           o.concurrency == 1 ? "" : "s", at ? at + 1 : o.queue + 8);
    fflush(stdout);
    while (!stopping)
        usleep(100 * 1000);
    struct cap_worker_stats st;
    cap_worker_pool_stats(pool, &st);
    CAP_INFO(NULL,
             "stopping (%llu running jobs finish first); so far %llu jobs claimed, %llu ready, "
             "%llu failed, "
             "%llu discarded",
             (unsigned long long)st.running, (unsigned long long)st.claimed,
             (unsigned long long)st.completed, (unsigned long long)st.failed,
             (unsigned long long)st.discarded);
    cap_worker_pool_stop(pool);
    return 0;
}
