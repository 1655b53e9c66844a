/* Shared pieces of the subcommands: how they fail, and their entry points. */
#ifndef CAP_CLI_CLI_H
#define CAP_CLI_CLI_H

#define CLI_EXIT_FAILURE 1   /* the command ran and failed (bad file, I/O) */
#define CLI_EXIT_USAGE 2     /* the command line itself is wrong */

/* Prints "capstan CMD: message" on stderr and returns code, for `return cli_fail(...)`. */
int cli_fail(const char *cmd, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Parses a whole decimal number from lo to hi for option `name`; otherwise says so (as
 * cli_fail) and returns CLI_EXIT_USAGE. */
int cli_parse_long(const char *cmd, const char *name, const char *text, long lo, long hi, long *out);
/* --log-level: sets the process's log level, or says what it takes (as cli_fail). */
int cli_set_log_level(const char *cmd, const char *text);

int cmd_import_pcap(int argc, char **argv);
int cmd_import_mjr(int argc, char **argv);
int cmd_export_pcap(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_storage(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_worker(int argc, char **argv);

#endif
