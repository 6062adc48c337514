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
 * Status convention: 0 ok; -EINVAL makes the shell print "usage: <usage>";
 * any other negative errno is printed as "<name>: <error>"; a positive value
 * means failure the command has already reported itself.
 */
#ifndef KERNEL_SHELL_H
#define KERNEL_SHELL_H

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
/* Split and run one command line; returns the command's status. */
int shell_exec(char *line);

/* Argument checks of the commands that never return (shell_cmds.c), for
 * the self-tests: 0 or -EINVAL, nothing else happens. */
int cmd_reboot_parse(int argc, char **argv);
int cmd_poweroff_parse(int argc, char **argv, int *status);
int cmd_fault_parse(int argc, char **argv, const char **kind);

#endif
