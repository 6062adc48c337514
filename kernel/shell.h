/*
 * Serial shell (kernel/shell.c, kernel/lineedit.c, kernel/shell_cmds.c).
 *
 * Commands are registered in a table (shell_register) so drivers can add
 * their own.  A command returns 0 on success; on bad arguments it prints its
 * one-line usage and returns -EINVAL.
 *
 * Built-in commands live in the .shell_cmds linker section:
 *     static int cmd_foo(int argc, char **argv) { ... }
 *     SHELL_COMMAND(foo, "foo [N]", "does foo", cmd_foo);
 * Status convention: 0 ok; -EINVAL makes the shell print "usage: <usage>"
 * (for a wrong word count or an unknown word; a bad value gets its own
 * line from shell_arg_num); any other negative errno is printed as
 * "<name>: <error>"; a positive value means failure the command has already
 * reported itself.
 */
#ifndef KERNEL_SHELL_H
#define KERNEL_SHELL_H

#include <stdbool.h>
#include <stdint.h>

struct shell_cmd {
	const char *name;
	const char *usage;     /* "name ARGS" */
	const char *help;      /* one line */
	int (*run)(int argc, char **argv);
};

#define SHELL_COMMAND(cname, cusage, chelp, cfn)                                \
	static const struct shell_cmd shell_cmd_desc_##cname                     \
		__attribute__((used, section(".shell_cmds"), aligned(8))) =      \
		{ #cname, (cusage), (chelp), (cfn) }

#define SHELL_MAX_ARGS 32
#define SHELL_MAX_DYNAMIC 16   /* commands added at run time */

/* Add a command at run time (the struct must stay alive); 0, -EEXIST when
 * the name is taken, -ENOSPC when the table is full. */
int shell_register(const struct shell_cmd *cmd);
int shell_unregister(const struct shell_cmd *cmd);
/* Built-in command or run-time one by name; NULL when unknown. */
const struct shell_cmd *shell_find(const char *name);
/* Walk all commands: index 0.. until NULL. */
const struct shell_cmd *shell_cmd_at(unsigned index);
/* Split `line` in place on spaces; "double quotes" group words (and may be
 * empty).  Returns argc, -E2BIG for more than `max` words, -EINVAL for an
 * unterminated quote. */
int shell_tokenize(char *line, char **argv, int max);
/* Runs the prompt loop on the current thread; never returns. */
__attribute__((noreturn)) void shell_run(void);
/* Print a command's usage wrapped to SHELL_USAGE_WIDTH columns, one line
 * per " | "-separated form, the first starting with `lead`; with_help puts
 * the help text at SHELL_HELP_COLUMN (or under the usage when it is long). */
#define SHELL_USAGE_WIDTH 78
#define SHELL_HELP_COLUMN 32
void shell_print_usage(const struct shell_cmd *c, const char *lead, bool with_help);
/* Split and run one command line; returns the command's status. */
int shell_exec(char *line);
/* Run an already split line (argv[argc] == NULL), printing usage or the
 * error as shell_exec does.  console: the console's command (Ctrl-C
 * interrupts it); false for commands from elsewhere (remote
 * administration), which leave the console's Ctrl-C to the console. */
int shell_exec_args(int argc, char **argv, bool console);

/* Argument checks of the commands that never return (shell_cmds.c), for
 * the self-tests: 0 or -EINVAL, nothing else happens. */
int cmd_reboot_parse(int argc, char **argv);
int cmd_poweroff_parse(int argc, char **argv, int *status);
int cmd_fault_parse(int argc, char **argv, const char **kind);

/* Ctrl-C while a command runs.  The shell notes the console's Ctrl-C count
 * when a command starts; a long command polls shell_interrupted() between
 * steps (any thread may), stops early and says "interrupted".  Only the
 * outermost command is interrupted (a command another runs through
 * shell_exec, as self-tests do, never is); outside a command it is false. */
bool shell_interrupted(void);
/* Progress lines of long commands: true when another SHELL_PROGRESS_NS have
 * passed since *next_ns was armed (it starts at 0: arms, returns false). */
#define SHELL_PROGRESS_NS (5ull * 1000000000ull)
bool shell_progress_due(uint64_t *next_ns);
/* thread_join with progress(arg) called every SHELL_PROGRESS_NS while it
 * waits; 0, or thread_join's error (-ETIMEDOUT after timeout_ns). */
struct thread;
int shell_join_progress(struct thread *t, uint64_t timeout_ns, void (*progress)(void *), void *arg);

/* Numeric arguments.  shell_arg_num parses `text` (decimal, 0x hex, k/m/g
 * suffixes) as argument `what` of command `cmd` in [min, max]; on failure
 * it prints one line naming the argument and why, e.g.
 *   blk: COUNT '-5' is negative
 *   bench: qd '300' is too large (at most 256)
 * and returns SHELL_REPORTED, which the command returns as its status.
 * shell_arg_kv does the same for "key=N" words: SHELL_NOT_KEY (no print)
 * when `text` is not that key. */
#define SHELL_REPORTED 1
#define SHELL_NOT_KEY  2
int shell_arg_num(const char *cmd, const char *what, const char *text,
		  unsigned long long min, unsigned long long max, unsigned long long *out);
int shell_arg_kv(const char *cmd, const char *key, const char *text,
		 unsigned long long min, unsigned long long max, unsigned long long *out);

#endif
