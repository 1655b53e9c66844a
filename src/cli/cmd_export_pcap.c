/* capstan export-pcap DIR --out FILE: a recording's packets back into a capture. */
#include "cli/cli.h"

#include "track/pcap.h"

#include <getopt.h>
#include <stdio.h>

static const char *const help =
    "usage: capstan export-pcap DIR --out FILE\n"
    "\n"
    "Writes every RTP and RTCP packet of the recording folder DIR into one pcap file, in\n"
    "arrival order, with their recorded arrival times and (for imported captures) their\n"
    "original addresses and ports. Timestamps are nanosecond-precision when needed.\n";

int cmd_export_pcap(int argc, char **argv)
{
    static const struct option options[] = {
        {"out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "export-pcap";
    const char *out = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:h", options, NULL)) != -1) {
        if (c == 'o') {
            out = optarg;
        } else if (c == 'h') {
            fputs(help, stdout);
            return 0;
        } else {
            return cli_fail(cmd, CLI_EXIT_USAGE, "unknown or incomplete option '%s' (see --help)",
                            argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return cli_fail(cmd, CLI_EXIT_USAGE, "expected exactly one recording DIR (see --help)");
    if (!out)
        return cli_fail(cmd, CLI_EXIT_USAGE, "--out FILE is required (see --help)");
    char why[512] = "";
    struct cap_export_report rep;
    int err = cap_pcap_export(argv[optind], out, &rep, why, sizeof(why));
    if (err)
        return cli_fail(cmd, CLI_EXIT_FAILURE, "%s", why[0] ? why : cap_strerror(err));
    printf("exported %llu packets to %s\n", (unsigned long long)rep.packets, out);
    if (rep.skipped)
        fprintf(stderr, "capstan export-pcap: skipped %llu records too large for a UDP datagram\n",
                (unsigned long long)rep.skipped);
    return 0;
}
