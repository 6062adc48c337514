/*
 * Serial shell (kernel/shell.c, kernel/lineedit.c, kernel/shell_cmds.c).
 *
 * Commands are registered in a table (shell_register) so drivers can add
 * their own.  A command returns 0 on success; on bad arguments it prints its
 * one-line usage and returns -EINVAL.
 */
#ifndef KERNEL_SHELL_H
#define KERNEL_SHELL_H

struct shell_cmd {
	const char *name;
	const char *usage;     /* "name ARGS" */
	const char *help;      /* one line */
	int (*run)(int argc, char **argv);
};

void shell_register(const struct shell_cmd *cmd);
/* Runs the prompt loop on the current thread; never returns. */
__attribute__((noreturn)) void shell_run(void);
/* Split and run one command line; returns the command's status. */
int shell_exec(char *line);

#endif
