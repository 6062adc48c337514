/*
 * Self-tests for the shell: tokenizer, command lookup, status and usage
 * handling, run-time registration.  Commands that never return (reboot,
 * poweroff, fault) are never run: their argument checks are tested
 * directly, and the table only has to hold them (builtins_present).
 */
#include "kernel/selftest.h"
#include "kernel/shell.h"
#include "kernel/kernel.h"
#include "kernel/kstring.h"
#include "kernel/errno.h"

/* shell_exec() tokenizes in place, so give it a writable copy. */
static int shell_test_exec(const char *s)
{
	char buf[256];
	strlcpy(buf, s, sizeof(buf));
	return shell_exec(buf);
}

SELFTEST(shell, tokenize_spaces)
{
	char line[] = "  mem   cpus\tthreads  ";
	char *argv[8];
	int argc = shell_tokenize(line, argv, 8);
	ST_EXPECT(argc == 3);
	if (argc == 3) {
		ST_EXPECT(strcmp(argv[0], "mem") == 0);
		ST_EXPECT(strcmp(argv[1], "cpus") == 0);
		ST_EXPECT(strcmp(argv[2], "threads") == 0);
	}
}

SELFTEST(shell, tokenize_quotes)
{
	char line[] = "echo \"a  b\" c\"d e\"f \"\" x";
	char *argv[8];
	int argc = shell_tokenize(line, argv, 8);
	ST_EXPECT(argc == 5);
	if (argc == 5) {
		ST_EXPECT(strcmp(argv[0], "echo") == 0);
		ST_EXPECT(strcmp(argv[1], "a  b") == 0);
		ST_EXPECT(strcmp(argv[2], "cd ef") == 0);
		ST_EXPECT(strcmp(argv[3], "") == 0);
		ST_EXPECT(strcmp(argv[4], "x") == 0);
	}
}

SELFTEST(shell, tokenize_empty)
{
	char empty[] = "", blanks[] = "    \t ";
	char *argv[4];
	ST_EXPECT(shell_tokenize(empty, argv, 4) == 0);
	ST_EXPECT(shell_tokenize(blanks, argv, 4) == 0);
	ST_EXPECT(shell_test_exec("") == 0);
	ST_EXPECT(shell_test_exec("   ") == 0);
}

SELFTEST(shell, tokenize_errors)
{
	char open_quote[] = "echo \"abc";
	char many[] = "a b c d e";
	char *argv[4];
	ST_EXPECT(shell_tokenize(open_quote, argv, 4) == -EINVAL);
	ST_EXPECT(shell_tokenize(many, argv, 4) == -E2BIG);
	ST_EXPECT(shell_test_exec("echo \"oops") == -EINVAL);
}

SELFTEST(shell, unknown_command)
{
	ST_EXPECT(shell_test_exec("no-such-command") == -ENOENT);
	ST_EXPECT(shell_test_exec("  MEM") == -ENOENT);   /* case matters */
	ST_EXPECT(shell_find("no-such-command") == NULL);
}

SELFTEST(shell, builtins_present)
{
	static const char *const names[] = {
		"help", "mem", "cpus", "pci", "uptime", "log", "reboot", "poweroff",
		"selftest", "fault", "echo", "version",
	};
	for (unsigned i = 0; i < ARRAY_SIZE(names); i++) {
		const struct shell_cmd *c = shell_find(names[i]);
		ST_EXPECT(c != NULL);
		if (c) {
			ST_EXPECT(strcmp(c->name, names[i]) == 0);
			/* Usage strings start with the command name. */
			ST_EXPECT(strncmp(c->usage, names[i], strlen(names[i])) == 0);
			ST_EXPECT(c->help && c->help[0]);
		}
	}
}

SELFTEST(shell, no_duplicate_names)
{
	const struct shell_cmd *a, *b;
	for (unsigned i = 0; (a = shell_cmd_at(i)) != NULL; i++)
		for (unsigned j = i + 1; (b = shell_cmd_at(j)) != NULL; j++)
			ST_EXPECT(strcmp(a->name, b->name) != 0);
}

SELFTEST(shell, usage_on_bad_args)
{
	static const char *const bad[] = {
		"mem extra", "uptime now", "version 2", "pci 0", "cpus bogus",
		"cpus threads more", "log 1 2", "selftest a b", "help a b",
	};
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++)
		ST_EXPECT(shell_test_exec(bad[i]) == -EINVAL);
	/* A bad value is named on its own line instead of the usage. */
	static const char *const bad_value[] = {
		"log abc", "log 0", "log -1", "log 99999999999999999999999",
	};
	for (unsigned i = 0; i < ARRAY_SIZE(bad_value); i++)
		ST_EXPECT(shell_test_exec(bad_value[i]) == SHELL_REPORTED);
}

SELFTEST(shell, arg_num_names_the_problem)
{
	unsigned long long v = 77;
	ST_EXPECT(shell_arg_num("t", "N", "12", 0, 100, &v) == 0 && v == 12);
	ST_EXPECT(shell_arg_num("t", "N", "4k", 0, 1u << 20, &v) == 0 && v == 4096);
	v = 77;
	ST_EXPECT(shell_arg_num("t", "N", "-1", 0, 100, &v) == SHELL_REPORTED && v == 77);
	ST_EXPECT(shell_arg_num("t", "N", "abc", 0, 100, &v) == SHELL_REPORTED);
	ST_EXPECT(shell_arg_num("t", "N", "101", 0, 100, &v) == SHELL_REPORTED);
	ST_EXPECT(shell_arg_num("t", "N", "0", 1, 100, &v) == SHELL_REPORTED);
	ST_EXPECT(shell_arg_num("t", "N", "99999999999999999999999", 0, ~0ull, &v) == SHELL_REPORTED);
	ST_EXPECT(v == 77);
	ST_EXPECT(shell_arg_kv("t", "qd", "qd=8", 1, 256, &v) == 0 && v == 8);
	ST_EXPECT(shell_arg_kv("t", "qd", "bs=8", 1, 256, &v) == SHELL_NOT_KEY);
	ST_EXPECT(shell_arg_kv("t", "qd", "qd=0", 1, 256, &v) == SHELL_REPORTED);
}

/* Tokenize s and run a parser on it. */
static int shell_test_argv(const char *s, char *buf, size_t len, char **argv)
{
	strlcpy(buf, s, len);
	return shell_tokenize(buf, argv, 4);
}

SELFTEST(shell, power_and_fault_arguments)
{
	char buf[64], *argv[4];
	int argc, status = -1;
	const char *kind = NULL;

	argc = shell_test_argv("reboot", buf, sizeof(buf), argv);
	ST_EXPECT(cmd_reboot_parse(argc, argv) == 0);
	argc = shell_test_argv("reboot now", buf, sizeof(buf), argv);
	ST_EXPECT(cmd_reboot_parse(argc, argv) == -EINVAL);

	argc = shell_test_argv("poweroff", buf, sizeof(buf), argv);
	ST_EXPECT(cmd_poweroff_parse(argc, argv, &status) == 0 && status == 0);
	argc = shell_test_argv("poweroff 255", buf, sizeof(buf), argv);
	ST_EXPECT(cmd_poweroff_parse(argc, argv, &status) == 0 && status == 255);
	argc = shell_test_argv("poweroff 7", buf, sizeof(buf), argv);
	ST_EXPECT(cmd_poweroff_parse(argc, argv, &status) == 0 && status == 7);
	/* A wrong word count gets the usage (-EINVAL); a bad value is named
	 * on its own line (SHELL_REPORTED). */
	static const char *const bad_off[] = { "poweroff 1 2", "poweroff 256", "poweroff x",
					       "poweroff -1", "poweroff 7x" };
	for (unsigned i = 0; i < ARRAY_SIZE(bad_off); i++) {
		status = 99;
		argc = shell_test_argv(bad_off[i], buf, sizeof(buf), argv);
		ST_EXPECT(cmd_poweroff_parse(argc, argv, &status) == (i == 0 ? -EINVAL : SHELL_REPORTED));
		ST_EXPECT(status == 99);          /* untouched on error */
	}

	argc = shell_test_argv("fault gp", buf, sizeof(buf), argv);
	ST_EXPECT(cmd_fault_parse(argc, argv, &kind) == 0 && kind && strcmp(kind, "gp") == 0);
	static const char *const bad_fault[] = { "fault", "fault xx", "fault pf ud", "fault PF" };
	for (unsigned i = 0; i < ARRAY_SIZE(bad_fault); i++) {
		argc = shell_test_argv(bad_fault[i], buf, sizeof(buf), argv);
		ST_EXPECT(cmd_fault_parse(argc, argv, &kind) == -EINVAL);
	}
}

SELFTEST(shell, good_commands_succeed)
{
	ST_EXPECT(shell_test_exec("echo shell selftest \"quoted words\"") == 0);
	ST_EXPECT(shell_test_exec("version") == 0);
	ST_EXPECT(shell_test_exec("uptime") == 0);
	ST_EXPECT(shell_test_exec("mem") == 0);
	ST_EXPECT(shell_test_exec("help") == 0);
	ST_EXPECT(shell_test_exec("help mem") == 0);
	ST_EXPECT(shell_test_exec("log 2") == 0);
	ST_EXPECT(shell_test_exec("help no-such-command") != 0);
	/* Unknown suite is reported without starting a nested run. */
	ST_EXPECT(shell_test_exec("selftest no-such-suite") != 0);
}

static int shell_test_argc;
static char shell_test_arg1[32];

static int shell_test_probe(int argc, char **argv)
{
	shell_test_argc = argc;
	if (argc > 1)
		strlcpy(shell_test_arg1, argv[1], sizeof(shell_test_arg1));
	return argc == 4 ? 7 : -EINVAL;
}

static const struct shell_cmd shell_test_probe_cmd = {
	"st-probe", "st-probe A B C", "self-test probe", shell_test_probe,
};
static const struct shell_cmd shell_test_dup_cmd = {
	"mem", "mem", "duplicate of a built-in", shell_test_probe,
};

SELFTEST(shell, runtime_register)
{
	ST_EXPECT(shell_register(&shell_test_probe_cmd) == 0);
	ST_EXPECT(shell_register(&shell_test_probe_cmd) == -EEXIST);
	ST_EXPECT(shell_register(&shell_test_dup_cmd) == -EEXIST);
	ST_EXPECT(shell_find("st-probe") == &shell_test_probe_cmd);

	/* The command's own status comes back, and argv is tokenized. */
	ST_EXPECT(shell_test_exec("st-probe \"x y\" b c") == 7);
	ST_EXPECT(shell_test_argc == 4);
	ST_EXPECT(strcmp(shell_test_arg1, "x y") == 0);
	ST_EXPECT(shell_test_exec("st-probe 1") == -EINVAL);
	ST_EXPECT(shell_test_argc == 2);

	ST_EXPECT(shell_unregister(&shell_test_probe_cmd) == 0);
	ST_EXPECT(shell_unregister(&shell_test_probe_cmd) == -ENOENT);
	ST_EXPECT(shell_test_exec("st-probe a b c") == -ENOENT);
}
