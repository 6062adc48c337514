/*
 * `apfp ... HOST:PORT admin [--chunk N] [--wait S] COMMAND [ARGS...]`:
 * run a shell command of the appliance remotely (docs/protocol.md §5.4)
 * and print its output as it streams in.
 *
 * The words after `admin` become one command line (words with blanks or
 * quotes are quoted again, so the appliance's shell splits them as they
 * were given).  The first reply carries the first piece of the output; the
 * rest is asked for by continuation requests (the run's id and the bytes
 * received) until the server says it is done.  --chunk N asks for at most
 * N bytes per reply (tests use it to exercise continuation), --wait S
 * waits S seconds (default 600: a scrub of a large disk) for the first
 * reply, which only comes when the command has finished.
 *
 * Exit status: 0 the command succeeded; 6 it ran and failed (its status
 * on stderr); otherwise the CLI's own codes (tools/apfp.c): 3 refused (no
 * secret, a wrong secret, or a command not on the appliance's list), 4
 * another admin command is running, 2 connection lost.
 */
#define _GNU_SOURCE
#include "tools/apfp_admin.h"
#include "proto/codec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	unsigned wait_s = 600;
	int i = 1, rc;

	for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
		if (!strcmp(argv[i], "--chunk") && i + 1 < argc)
			q.max = (uint32_t)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--wait") && i + 1 < argc)
			wait_s = (unsigned)strtoul(argv[++i], NULL, 0);
		else
			break;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: apfp ... HOST:PORT admin [--chunk N] [--wait S] COMMAND [ARGS...]\n");
		return -EINVAL;
	}
	if ((rc = join_words(argc - i, argv + i, line, sizeof(line))) < 0)
		return rc;
	q.command.p = line;
	q.command.len = (uint16_t)strlen(line);
	if (c->cfg.timeout_ms < wait_s * 1000u)
		c->cfg.timeout_ms = wait_s * 1000u;
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
		fwrite(a->output.p, 1, a->output.len, stdout);
		if (a->done) {
			fflush(stdout);
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
		if (!a->output.len) {
			snprintf(c->err, sizeof(c->err), "admin: the server sent an empty piece of unfinished output");
			return -EPROTO;
		}
		q.run = a->run;
		q.offset += a->output.len;
	}
}
