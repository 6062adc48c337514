/*
 * The apfp CLI's shared pieces (tools/apfp.c: options, connection, exit
 * status; tools/apfp_cmds.c: namespace commands; tools/apfp_tree.c: get,
 * put, cat; tools/apfp_bench.c: bench).  Every command returns the exit
 * status (enum apfp_exit) after printing what went wrong.
 */
#ifndef TOOLS_APFP_CLI_H
#define TOOLS_APFP_CLI_H

#include "tools/apfp_ops.h"
#include "tools/apfp_xfer.h"

#include <stdio.h>

/* Exit status (documented in the usage text and tools/README.md). */
enum apfp_exit {
	EX_OK = 0,
	EX_USAGE = 1,           /* bad command line */
	EX_CONN = 2,            /* no connection, timeout, connection lost */
	EX_AUTH = 3,            /* authentication or permission refused */
	EX_LATER = 4,           /* refused for now: connection or rate limit, busy */
	EX_SERVER = 5,          /* any other error the server answered */
	EX_NOTFOUND = 6,        /* no such remote path or export, or a local file error */
};

struct cli {
	struct apfpc c;
	bool json;
	bool tty;               /* stderr is a terminal: progress bars */
	unsigned depth;         /* --depth: requests in flight (0: apfp_xfer's defaults) */
};

/* A remote operation on `what` failed with rc: say so, return the status. */
int cli_fail(struct cli *k, const char *what, int rc);
/* A local file operation on `what` failed with errno err. */
int cli_local(const char *what, int err);
/* The exit status for a negative errno of the client library. */
int cli_exit_for(int rc);
/* Options of a command: argv[0] is the command; flags are single letters
 * from `allowed`, set in flags['x']; the operands follow in *ops. */
int cli_opts(int argc, char **argv, const char *allowed, bool flags[128], char ***ops, int *nops);
double cli_now(void);
/* JSON string (with quotes) to f. */
void cli_json_str(FILE *f, const char *s);
/* Progress bar on stderr for a transfer of `name` (terminals only, large
 * transfers only): pass as apfp_xfer.progress with a struct cli_bar. */
struct cli_bar { const char *name; double t0, last; bool shown; };
void cli_bar_start(struct cli *k, struct cli_bar *b, const char *name, uint64_t total, struct apfp_xfer *x);
void cli_bar_end(struct cli_bar *b);

/* Where a copy or move of something named src_name to `path` goes: into
 * path when it is a directory (*dir = it, name = src_name), else path's
 * parent and last component.  0 or a negative errno. */
int cli_dest(struct cli *k, const char *path, const char *src_name, struct apfp_obj *dir, char name[256]);
/* The last component of a path (local or remote), without trailing '/'. */
void cli_basename(const char *path, char name[256]);

/* A directory's entries, sorted by name (free e). */
struct cli_entry { char name[256]; struct apfp_obj o; };
struct cli_entries { struct cli_entry *e; size_t n, cap; };
int cli_list_dir(struct cli *k, const struct apfp_obj *dir, struct cli_entries *l);

int cmd_ls(struct cli *k, int argc, char **argv);
int cmd_stat(struct cli *k, int argc, char **argv);
int cmd_mkdir(struct cli *k, int argc, char **argv);
int cmd_rm(struct cli *k, int argc, char **argv);
int cmd_mv(struct cli *k, int argc, char **argv);
int cmd_ln(struct cli *k, int argc, char **argv);
int cmd_df(struct cli *k, int argc, char **argv);
int cmd_snapshot(struct cli *k, int argc, char **argv);
int cmd_clone(struct cli *k, int argc, char **argv);
int cmd_cat(struct cli *k, int argc, char **argv);
int cmd_get(struct cli *k, int argc, char **argv);
int cmd_put(struct cli *k, int argc, char **argv);
int cmd_bench(struct cli *k, int argc, char **argv);

#endif
