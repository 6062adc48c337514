/*
 * `apfp ... HOST:PORT admin [--chunk N] [--wait S] [--trace] COMMAND [ARGS...]`:
 * run a shell command of the appliance remotely (docs/protocol.md §5.4)
 * and print its output as the appliance prints it.
 *
 * The words after `admin` become one command line (words with blanks or
 * quotes are quoted again, so the appliance's shell splits them as they
 * were given).  The first reply carries what the command printed in its
 * first moments (all of it when it ended by then); the rest is asked for
 * by continuation requests (the run's id and the bytes received), each
 * answered with what is new within about a second, until the server says
 * it is done.  Every piece is written to stdout and flushed as it
 * arrives, so a long scrub shows its progress lines live.  --chunk N asks
 * for at most N bytes per reply (tests use it to exercise continuation);
 * --wait S follows the command at most S seconds (default 3600), after
 * which the CLI gives up (exit 2) and the command runs on to its end on
 * the appliance; --trace writes one line per reply on stderr (offset,
 * bytes, whether the command still runs), which tests read.
 *
 * Exit status: 0 the command succeeded; 6 it ran and failed (its status
 * on stderr); otherwise the CLI's own codes (tools/apfp.c): 3 refused (no
 * secret, a wrong secret, or a command not on the appliance's list), 4
 * another admin command is running, 2 connection lost or --wait passed.
 */
#define _GNU_SOURCE
#include "tools/apfp_admin.h"
#include "proto/codec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EX_REMOTE_FAILED 6

/* argv joined with blanks; words that need it in "double quotes" (the
 * appliance's tokenizer has no escapes: a word holding a quote cannot be
 * sent). */
static int join_words(int argc, char **argv, char *out, size_t cap)
{
	size_t n = 0;
	for (int i = 0; i < argc; i++) {
		const char *w = argv[i];
		bool quote = !*w || strpbrk(w, " \t");
		if (strchr(w, '"')) {
			fprintf(stderr, "apfp: admin: a word with a double quote cannot be sent: %s\n", w);
			return -EINVAL;
		}
		int k = snprintf(out + n, cap - n, "%s%s%s%s", i ? " " : "", quote ? "\"" : "", w, quote ? "\"" : "");
		if (k < 0 || (size_t)k >= cap - n) {
			fprintf(stderr, "apfp: admin: the command is longer than %u bytes\n", PROTO_ADMIN_CMD_MAX);
			return -EINVAL;
		}
		n += (size_t)k;
	}
	return 0;
}

int apfp_admin(struct apfpc *c, int argc, char **argv)
{
	static char line[PROTO_ADMIN_CMD_MAX + 1];
	struct proto_admin_req q = { 0 };
	struct proto_client_reply r;
	unsigned wait_s = 3600;
	bool trace = false;
	int i = 1, rc;

	for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
		if (!strcmp(argv[i], "--chunk") && i + 1 < argc)
			q.max = (uint32_t)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--wait") && i + 1 < argc)
			wait_s = (unsigned)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--trace"))
			trace = true;
		else
			break;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: apfp ... HOST:PORT admin [--chunk N] [--wait S] [--trace] COMMAND [ARGS...]\n");
		return -EINVAL;
	}
	if ((rc = join_words(argc - i, argv + i, line, sizeof(line))) < 0)
		return rc;
	q.command.p = line;
	q.command.len = (uint16_t)strlen(line);
	/* Each request is answered within about a second (the server's
	 * waits are bounded): the connection's own timeout covers it. */
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		memset(&r, 0, sizeof(r));
		if ((rc = apfpc_call(c, PROTO_OP_ADMIN, &q, &r)) < 0) {
			if (r.hdr.status == PROTO_E_PERM)
				snprintf(c->err, sizeof(c->err), "admin: '%s' is not a command the appliance runs "
					 "remotely (its console log says why)", line);
			else if (r.hdr.status == PROTO_E_ACCES)
				snprintf(c->err, sizeof(c->err), "admin: refused: remote administration needs the "
					 "secret (--secret-file), not an anonymous session");
			else if (r.hdr.status == PROTO_E_BUSY)
				snprintf(c->err, sizeof(c->err), "admin: another admin command is running: retry");
			return rc;
		}
		const struct proto_admin_rep *a = (const void *)r.msg;
		if (trace)
			fprintf(stderr, "admin: reply at offset %llu: %u bytes, %s\n", (unsigned long long)q.offset,
				a->output.len, a->done ? "done" : a->result == PROTO_ADMIN_RUNNING ? "running" : "ended");
		fwrite(a->output.p, 1, a->output.len, stdout);
		fflush(stdout);
		if (a->done) {
			int32_t result = (int32_t)a->result;
			if (!result)
				return 0;
			if (result < 0)
				fprintf(stderr, "apfp: admin: '%s' failed on the appliance: %s\n", line,
					strerror(-result));
			else
				fprintf(stderr, "apfp: admin: '%s' failed on the appliance (status %d)\n", line,
					result);
			/* The CLI's exit codes say nothing of a remote failure:
			 * this one exits with its own. */
			apfpc_close(c);
			exit(EX_REMOTE_FAILED);
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec >= (time_t)wait_s) {
			snprintf(c->err, sizeof(c->err), "admin: '%s' still running on the appliance after %u s "
				 "(--wait): it runs on there, its output is no longer followed", line, wait_s);
			return -ETIMEDOUT;
		}
		q.run = a->run;
		q.offset += a->output.len;
	}
}
