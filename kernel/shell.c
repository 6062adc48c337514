/*
 * Serial shell: prompt loop, tokenizer and command table.
 *
 * Built-in commands sit in the .shell_cmds linker section (SHELL_COMMAND);
 * drivers may add more at run time with shell_register().  Input is edited
 * by kernel/lineedit.c and echoed to the consoles; command output goes
 * through kprintf so it also lands in the kernel log.
 */
#include "kernel/shell.h"
#include "kernel/lineedit.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/conin.h"
#include "kernel/sched.h"
#include "kernel/sync.h"
#include "kernel/time.h"
#include "kernel/errno.h"

#define SHELL_PROMPT "appliance> "
/* conin_getc() sleeps at most this long per call; an idle console simply
 * loops, so the wait is bounded without ever giving up on the operator. */
#define SHELL_INPUT_WAIT_NS (60 * NS_PER_S)
/* Back-off after an unexpected input error, so a broken UART cannot spin. */
#define SHELL_ERROR_BACKOFF_NS (1 * NS_PER_S)

extern const struct shell_cmd __shell_cmds_start[], __shell_cmds_end[];

static const struct shell_cmd *shell_dynamic[SHELL_MAX_DYNAMIC];
static spinlock_t shell_lock = SPINLOCK_INIT("shell");
static struct lineedit shell_le;   /* 9 KiB with history: not on a stack */
static unsigned shell_depth;               /* commands running (shell_exec nests) */
static unsigned shell_intr_base;           /* conin_intr_count() at its start */

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
	return shell_exec_args(argc, argv, true);
}

int shell_exec_args(int argc, char **argv, bool console)
{
	const struct shell_cmd *cmd = shell_find(argv[0]);
	if (!cmd) {
		kprintf("unknown command '%s': type 'help'\n", argv[0]);
		return -ENOENT;
	}
	/* Commands may nest (self-tests run shell_exec): the outermost one
	 * owns the capture and the base count, and only it is interrupted, so
	 * Ctrl-C during `selftest` stops between tests instead of failing the
	 * command a test runs.  A command from elsewhere (remote
	 * administration) leaves the console's Ctrl-C alone. */
	bool outer = console && __atomic_fetch_add(&shell_depth, 1, __ATOMIC_ACQ_REL) == 0;
	if (outer) {
		shell_intr_base = conin_intr_count();
		conin_capture_intr(true);
	}
	int st = cmd->run(argc, argv);
	if (outer)
		conin_capture_intr(false);
	if (console)
		__atomic_sub_fetch(&shell_depth, 1, __ATOMIC_ACQ_REL);
	if (st == -EINVAL)
		shell_print_usage(cmd, "usage: ", false);
	else if (st < 0)
		kprintf("%s: %s\n", cmd->name, strerror(st));
	return st;
}

/* One line of at most SHELL_USAGE_WIDTH columns from words of `s` starting
 * at *pos (words never split; a longer word gets a line of its own).
 * Returns the line's length, 0 at the end. */
static size_t shell_usage_line(const char *s, size_t *pos, size_t width, char *out, size_t cap)
{
	size_t n = 0, i = *pos;
	while (s[i] == ' ')
		i++;
	while (s[i]) {
		size_t w = 0;
		while (s[i + w] && s[i + w] != ' ')
			w++;
		/* " | " separates alternative forms: each starts a line. */
		if (n && ((n + 1 + w > width) || (w == 1 && s[i] == '|')))
			break;
		if (n + (n ? 1 : 0) + w >= cap)
			break;
		if (n)
			out[n++] = ' ';
		memcpy(out + n, s + i, w);
		n += w;
		i += w;
		while (s[i] == ' ')
			i++;
	}
	if (s[i] == '|' && s[i + 1] == ' ')
		i += 2;
	out[n] = 0;
	*pos = i;
	return n;
}

void shell_print_usage(const struct shell_cmd *c, const char *lead, bool with_help)
{
	char line[SHELL_USAGE_WIDTH + 1];
	size_t pos = 0, lead_len = strlen(lead), n;
	bool first = true;

	size_t help_len = strlen(c->help);
	bool cont = false;      /* this line continues a form cut by the width */
	while ((n = shell_usage_line(c->usage, &pos, SHELL_USAGE_WIDTH - lead_len - (cont ? 4 : 0), line,
				     sizeof(line))) > 0) {
		bool last = c->usage[pos] == 0;
		/* The help text goes beside the last usage line when both fit
		 * in the width, else on a line of its own below. */
		bool beside = with_help && last && lead_len + n <= SHELL_HELP_COLUMN - 1 &&
			      SHELL_HELP_COLUMN + help_len <= SHELL_USAGE_WIDTH;
		/* Later lines of one command line up under the first. */
		const char *pre = first ? lead : "";
		int pad = first ? 0 : (int)lead_len + (cont ? 4 : 0);
		if (beside)
			kprintf("%*s%s%-*s %s\n", pad, "", pre, (int)(SHELL_HELP_COLUMN - 1 - lead_len), line,
				c->help);
		else
			kprintf("%*s%s%s\n", pad, "", pre, line);
		if (with_help && last && !beside) {
			/* Below the usage, wrapped like it. */
			char hl[SHELL_USAGE_WIDTH + 1];
			size_t hpos = 0;
			while (shell_usage_line(c->help, &hpos, SHELL_USAGE_WIDTH - lead_len - 4, hl, sizeof(hl)))
				kprintf("%*s%s\n", (int)lead_len + 4, "", hl);
		}
		first = false;
		/* shell_usage_line stops after " | " at a new form; anything
		 * else left means the width cut this form. */
		cont = c->usage[pos] && !(pos >= 2 && c->usage[pos - 2] == '|' && c->usage[pos - 1] == ' ');
	}
}

bool shell_interrupted(void)
{
	return __atomic_load_n(&shell_depth, __ATOMIC_ACQUIRE) == 1 &&
	       conin_intr_count() != shell_intr_base;
}

bool shell_progress_due(uint64_t *next_ns)
{
	uint64_t now = time_ns();
	if (*next_ns == 0) {
		*next_ns = now + SHELL_PROGRESS_NS;
		return false;
	}
	if (now < *next_ns)
		return false;
	*next_ns = now + SHELL_PROGRESS_NS;
	return true;
}

int shell_join_progress(struct thread *t, uint64_t timeout_ns, void (*progress)(void *), void *arg)
{
	uint64_t deadline = time_ns() + timeout_ns, next = 0;
	shell_progress_due(&next);
	for (;;) {
		uint64_t now = time_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		uint64_t until = MIN(deadline, next);
		int rc = thread_join(t, until > now ? until - now : 1);
		if (rc != -ETIMEDOUT)
			return rc;
		if (shell_progress_due(&next) && progress)
			progress(arg);
	}
}

/* Why `text` is no number: negative, too large for 64 bits, or not one. */
static const char *shell_num_problem(const char *text)
{
	const char *p = text;
	bool hex = p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
	if (*p == '-')
		return "is negative";
	if (hex)
		p += 2;
	bool digits = *p != 0;
	for (; *p; p++) {
		bool dec = *p >= '0' && *p <= '9';
		bool hx = (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F');
		bool unit = p[1] == 0 && p != text && strchr("kKmMgG", *p);
		if (!(dec || (hex && hx) || unit))
			digits = false;
	}
	return digits ? "is too large" : "is not a number";
}

int shell_arg_num(const char *cmd, const char *what, const char *text,
		  unsigned long long min, unsigned long long max, unsigned long long *out)
{
	unsigned long long v;

	if (parse_u64(text, &v) != 0) {
		kprintf("%s: %s '%s' %s\n", cmd, what, text, shell_num_problem(text));
		return SHELL_REPORTED;
	}
	if (v > max) {
		kprintf("%s: %s '%s' is too large (at most %llu)\n", cmd, what, text, max);
		return SHELL_REPORTED;
	}
	if (v < min) {
		kprintf("%s: %s '%s' is too small (at least %llu)\n", cmd, what, text, min);
		return SHELL_REPORTED;
	}
	*out = v;
	return 0;
}

int shell_arg_kv(const char *cmd, const char *key, const char *text,
		 unsigned long long min, unsigned long long max, unsigned long long *out)
{
	size_t n = strlen(key);
	if (strncmp(text, key, n) != 0 || text[n] != '=')
		return SHELL_NOT_KEY;
	return shell_arg_num(cmd, key, text + n + 1, min, max, out);
}

static void shell_flush_echo(void)
{
	if (shell_le.out_len)
		console_write(shell_le.out, shell_le.out_len);
}

/* Read one edited line; returns LINEEDIT_DONE or LINEEDIT_CANCEL. */
static int shell_read_line(void)
{
	lineedit_start(&shell_le);
	shell_flush_echo();
	for (;;) {
		int c = conin_getc(SHELL_INPUT_WAIT_NS);
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
	/* Ask the terminal its width (the answer comes back as input and the
	 * editor takes it) so long lines wrap where the terminal wraps them. */
	shell_le.out_len = 0;
	lineedit_query_size(&shell_le);
	shell_flush_echo();
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
