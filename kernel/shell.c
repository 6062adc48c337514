/*
 * Serial shell: prompt loop, tokenizer and command table.
 *
 * Built-in commands sit in the .shell_cmds linker section (SHELL_COMMAND);
 * drivers may add more at run time with shell_register().  Input is edited
 * by kernel/lineedit.c and echoed straight to the UART; command output goes
 * through kprintf so it also lands in the kernel log.
 */
#include "kernel/shell.h"
#include "kernel/lineedit.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/serial.h"
#include "kernel/sched.h"
#include "kernel/sync.h"
#include "kernel/time.h"
#include "kernel/errno.h"

#define SHELL_PROMPT "appliance> "
/* serial_getc() sleeps at most this long per call; an idle console simply
 * loops, so the wait is bounded without ever giving up on the operator. */
#define SHELL_INPUT_WAIT_NS (60 * NS_PER_S)
/* Back-off after an unexpected input error, so a broken UART cannot spin. */
#define SHELL_ERROR_BACKOFF_NS (1 * NS_PER_S)

extern const struct shell_cmd __shell_cmds_start[], __shell_cmds_end[];

static const struct shell_cmd *shell_dynamic[SHELL_MAX_DYNAMIC];
static spinlock_t shell_lock = SPINLOCK_INIT("shell");
static struct lineedit shell_le;   /* 9 KiB with history: not on a stack */

static unsigned shell_nbuiltin(void)
{
	return (unsigned)(__shell_cmds_end - __shell_cmds_start);
}

const struct shell_cmd *shell_cmd_at(unsigned index)
{
	unsigned nb = shell_nbuiltin();
	if (index < nb)
		return &__shell_cmds_start[index];
	index -= nb;

	/* Run-time entries are compacted on removal, so the first NULL ends
	 * the walk. */
	const struct shell_cmd *c = NULL;
	uint64_t f = spin_lock_irqsave(&shell_lock);
	if (index < SHELL_MAX_DYNAMIC)
		c = shell_dynamic[index];
	spin_unlock_irqrestore(&shell_lock, f);
	return c;
}

const struct shell_cmd *shell_find(const char *name)
{
	const struct shell_cmd *c;
	for (unsigned i = 0; (c = shell_cmd_at(i)) != NULL; i++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

int shell_register(const struct shell_cmd *cmd)
{
	int err = -ENOSPC;

	if (!cmd || !cmd->name || !cmd->run || !cmd->usage)
		return -EINVAL;
	for (unsigned i = 0; i < shell_nbuiltin(); i++)
		if (strcmp(__shell_cmds_start[i].name, cmd->name) == 0)
			return -EEXIST;
	/* Duplicate check and insertion under one lock hold, so two drivers
	 * racing with the same name cannot both get in. */
	uint64_t f = spin_lock_irqsave(&shell_lock);
	for (unsigned i = 0; i < SHELL_MAX_DYNAMIC; i++) {
		if (shell_dynamic[i] == NULL) {
			shell_dynamic[i] = cmd;
			err = 0;
			break;
		}
		if (strcmp(shell_dynamic[i]->name, cmd->name) == 0) {
			err = -EEXIST;
			break;
		}
	}
	spin_unlock_irqrestore(&shell_lock, f);
	if (err == -ENOSPC)
		kprintf("shell: cannot register '%s': table of %d run-time commands is full\n",
			cmd->name, SHELL_MAX_DYNAMIC);
	return err;
}

int shell_unregister(const struct shell_cmd *cmd)
{
	int err = -ENOENT;
	uint64_t f = spin_lock_irqsave(&shell_lock);
	for (unsigned i = 0; i < SHELL_MAX_DYNAMIC; i++) {
		if (shell_dynamic[i] != cmd)
			continue;
		for (unsigned j = i; j + 1 < SHELL_MAX_DYNAMIC; j++)
			shell_dynamic[j] = shell_dynamic[j + 1];
		shell_dynamic[SHELL_MAX_DYNAMIC - 1] = NULL;
		err = 0;
		break;
	}
	spin_unlock_irqrestore(&shell_lock, f);
	return err;
}

static bool shell_is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* In place: the write pointer never passes the read pointer, because each
 * word only loses characters (quotes) and gains one NUL for the separator
 * it consumed. */
int shell_tokenize(char *line, char **argv, int max)
{
	char *r = line, *w = line;
	int argc = 0;

	for (;;) {
		while (shell_is_space(*r))
			r++;
		if (*r == 0)
			break;
		if (argc == max)
			return -E2BIG;
		argv[argc++] = w;

		bool quoted = false;
		while (*r && (quoted || !shell_is_space(*r))) {
			if (*r == '"')
				quoted = !quoted;
			else
				*w++ = *r;
			r++;
		}
		if (quoted)
			return -EINVAL;
		bool end = *r == 0;
		if (!end)
			r++;
		*w++ = 0;
		if (end)
			break;
	}
	return argc;
}

int shell_exec(char *line)
{
	char *argv[SHELL_MAX_ARGS + 1];
	int argc = shell_tokenize(line, argv, SHELL_MAX_ARGS);

	if (argc == -E2BIG) {
		kprintf("too many words: at most %d per command\n", SHELL_MAX_ARGS);
		return argc;
	}
	if (argc == -EINVAL) {
		kprintf("unterminated \" quote\n");
		return argc;
	}
	if (argc == 0)
		return 0;
	argv[argc] = NULL;

	const struct shell_cmd *cmd = shell_find(argv[0]);
	if (!cmd) {
		kprintf("unknown command '%s': type 'help'\n", argv[0]);
		return -ENOENT;
	}
	int st = cmd->run(argc, argv);
	if (st == -EINVAL)
		kprintf("usage: %s\n", cmd->usage);
	else if (st < 0)
		kprintf("%s: %s\n", cmd->name, strerror(st));
	return st;
}

static void shell_flush_echo(void)
{
	if (shell_le.out_len)
		serial_write(shell_le.out, shell_le.out_len);
}

/* Read one edited line; returns LINEEDIT_DONE or LINEEDIT_CANCEL. */
static int shell_read_line(void)
{
	lineedit_start(&shell_le);
	shell_flush_echo();
	for (;;) {
		int c = serial_getc(SHELL_INPUT_WAIT_NS);
		if (c == -ETIMEDOUT)
			continue;
		if (c < 0) {
			kprintf("shell: serial input failed (%s), retrying\n", strerror(c));
			thread_sleep_ns(SHELL_ERROR_BACKOFF_NS);
			continue;
		}
		int r = lineedit_feed(&shell_le, (uint8_t)c);
		shell_flush_echo();
		if (r != LINEEDIT_CONTINUE)
			return r;
	}
}

void shell_run(void)
{
	char line[LINEEDIT_MAX + 1];

	lineedit_init(&shell_le, SHELL_PROMPT);
	kprintf("shell: type 'help' for commands\n");
	for (;;) {
		if (shell_read_line() != LINEEDIT_DONE)
			continue;
		/* The tokenizer writes into the line: work on a copy so the
		 * editor's buffer stays intact. */
		strlcpy(line, shell_le.line, sizeof(line));
		shell_exec(line);
	}
}
