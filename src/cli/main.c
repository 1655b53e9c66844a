/* capstan: the command-line front door. One table of subcommands, one file each. */
#include "cli/cli.h"
#include "util/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define CAPSTAN_VERSION "0.1.0"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"serve", cmd_serve, "run the recorder: control API, RTP ingest, spool, webhooks"},
    {"worker", cmd_worker, "run job workers (transmux, compose, export) from a Redis queue"},
    {"convert", cmd_convert, "turn a recording into media: per-track files, or the room composed into one"},
    {"import-pcap", cmd_import_pcap, "import RTP/RTCP from a pcap or pcapng capture into a recording"},
    {"import-mjr", cmd_import_mjr, "import Janus .mjr recordings (one track per file) into a recording"},
    {"export-pcap", cmd_export_pcap, "write a recording's packets back out as a pcap capture"},
    {"inspect", cmd_inspect, "report a recording's tracks: codecs, packets, times, loss"},
    {"storage", cmd_storage, "check, list, fetch, put and presign objects in a store (folder or S3)"},
};

int cli_fail(const char *cmd, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "capstan %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

int cli_parse_long(const char *cmd, const char *name, const char *text, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || *end || end == text || v < lo || v > hi)
        return cli_fail(cmd, CLI_EXIT_USAGE, "%s takes a number from %ld to %ld, not '%s'", name, lo,
                        hi, text);
    *out = v;
    return 0;
}

int cli_set_log_level(const char *cmd, const char *text)
{
    enum cap_log_level level;
    if (cap_log_parse_level(text, &level) != 0)
        return cli_fail(cmd, CLI_EXIT_USAGE, "--log-level takes error, warn, info or debug");
    cap_log_set_level(level);
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out, "capstan %s: records real-time media rooms as raw RTP and turns them into media\n\n"
                 "usage: capstan COMMAND [OPTIONS]\n\ncommands:\n",
            CAPSTAN_VERSION);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-13s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'capstan COMMAND --help' tells more. Docs: docs/ in the source tree.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("capstan %s\n", CAPSTAN_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "capstan: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
