/*
 * apfp: a small command-line client of the file protocol
 * (tools/apfp_client.h).
 *
 *   apfp [--secret-file F | --anon] [--timeout MS] HOST:PORT COMMAND
 *     ping [N]             N round trips (default 1), the mean time
 *     exports              the export list
 *     bench-null [N]       PING round trips per second at queue depth 1
 *                          and 8 (N each, default 2000)
 *     hold SECONDS         a session held open that long (tests)
 *     admin COMMAND [ARGS] a shell command run on the appliance (tools/apfp_admin.c; exit 6: it failed)
 *
 * Exit status: 0 done; 1 usage; 2 no connection, timeout or connection
 * lost; 3 authentication refused; 4 refused for now (connection limit,
 * rate limit, busy); 5 any other error from the server.
 */
#define _GNU_SOURCE
#include "tools/apfp_client.h"
#include "tools/apfp_admin.h"
#include "platform/platform.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { EX_OK, EX_USAGE, EX_CONN, EX_AUTH, EX_LATER, EX_SERVER };

static int usage(void)
{
	fprintf(stderr, "usage: apfp [--secret-file FILE | --anon] [--timeout MS] HOST:PORT COMMAND\n"
			"commands: ping [N] | exports | bench-null [N] | hold SECONDS | admin COMMAND [ARGS...]\n");
	return EX_USAGE;
}

static int exit_for(int rc)
{
	switch (-rc) {
	case 0: return EX_OK;
	case EACCES: case EPERM: return EX_AUTH;
	case EAGAIN: case EBUSY: return EX_LATER;
	case ECONNRESET: case ECONNREFUSED: case ETIMEDOUT: case ENOTCONN: case EPIPE: case EHOSTUNREACH:
		return EX_CONN;
	default: return EX_SERVER;
	}
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int read_secret(const char *path, uint8_t *out, size_t cap, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "apfp: %s: %s\n", path, strerror(errno));
		return -1;
	}
	size_t n = fread(out, 1, cap, f);
	bool more = fgetc(f) != EOF;
	fclose(f);
	while (n && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' ' || out[n - 1] == '\t'))
		n--;
	if (more || !n) {
		fprintf(stderr, "apfp: %s: %s\n", path, more ? "longer than 4096 bytes" : "empty");
		return -1;
	}
	*len = n;
	return 0;
}

/* QD round trips of PING kept in flight until count are answered. */
static int bench(struct apfpc *c, unsigned qd, unsigned count, double *ops)
{
	struct proto_client_reply r;
	unsigned sent = 0, done = 0, inflight = 0;
	uint32_t id;
	int rc;
	double t0 = now_s();

	while (done < count) {
		while (inflight < qd && sent < count) {
			if ((rc = apfpc_send(c, PROTO_OP_PING, NULL, &id)) < 0)
				return rc;
			sent++;
			inflight++;
		}
		if ((rc = apfpc_recv(c, &r)) < 0)
			return rc;
		if (r.err)
			return r.err;
		inflight--;
		done++;
	}
	*ops = count / (now_s() - t0);
	return 0;
}

static int run(struct apfpc *c, int argc, char **argv)
{
	struct proto_client_reply r;
	const char *cmd = argv[0];
	int rc;

	if (!strcmp(cmd, "ping")) {
		unsigned n = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 0) : 1;
		double t0 = now_s();
		for (unsigned i = 0; i < n; i++)
			if ((rc = apfpc_call(c, PROTO_OP_PING, NULL, &r)) < 0)
				return rc;
		printf("ping: %u replies from %s:%u, %.0f us each (%s session, version %u)\n", n, c->cfg.host,
		       c->cfg.port, n ? (now_s() - t0) * 1e6 / n : 0.0, c->sess.keyed ? "keyed" : "anonymous",
		       c->sess.version);
		return 0;
	}
	if (!strcmp(cmd, "exports")) {
		if ((rc = apfpc_call(c, PROTO_OP_EXPORTS, NULL, &r)) < 0)
			return rc;
		const struct proto_exports_rep *e = (const void *)r.msg;
		struct proto_export x;
		uint32_t pos = 0;
		unsigned n = 0;
		while (proto_list_next(&e->exports, PROTO_L_EXPORT, &pos, &x) > 0) {
			printf("%.*s%s%s\n", (int)x.name.len, x.name.p, x.flags & PROTO_EXP_RO ? " ro" : " rw",
			       x.flags & PROTO_EXP_ANON ? " anonymous" : "");
			n++;
		}
		printf("exports: %u\n", n);
		return 0;
	}
	if (!strcmp(cmd, "bench-null")) {
		unsigned n = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 0) : 2000;
		static const unsigned qds[] = { 1, 8 };
		for (unsigned i = 0; i < 2; i++) {
			double ops = 0;
			if ((rc = bench(c, qds[i], n, &ops)) < 0)
				return rc;
			printf("bench proto null qd=%u ops_per_s=%.0f count=%u\n", qds[i], ops, n);
		}
		return 0;
	}
	if (!strcmp(cmd, "admin"))
		return apfp_admin(c, argc, argv);
	if (!strcmp(cmd, "hold") && argc == 2) {
		unsigned s = (unsigned)strtoul(argv[1], NULL, 0);
		printf("hold: connected\n");
		fflush(stdout);
		for (unsigned i = 0; i < s; i++)
			sleep(1);
		return apfpc_call(c, PROTO_OP_PING, NULL, &r);
	}
	fprintf(stderr, "apfp: unknown command '%s'\n", cmd);
	return -EINVAL;
}

int main(int argc, char **argv)
{
	static uint8_t secret[4096];
	struct apfpc_cfg cfg = { .timeout_ms = 10000, .max_inflight = 8, .reconnects = 2, .client_id = "apfp-cli" };
	struct apfpc c;
	size_t secret_len = 0;
	int i = 1, rc;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--anon")) {
			cfg.anonymous = true;
		} else if (!strcmp(argv[i], "--secret-file") && i + 1 < argc) {
			if (read_secret(argv[++i], secret, sizeof(secret), &secret_len) < 0)
				return EX_USAGE;
		} else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
			cfg.timeout_ms = (unsigned)strtoul(argv[++i], NULL, 0);
		} else {
			return usage();
		}
	}
	if (argc - i < 2)
		return usage();
	static char host[256];
	char *colon = strrchr(argv[i], ':');
	if (!colon || colon == argv[i] || (size_t)(colon - argv[i]) >= sizeof(host))
		return usage();
	memcpy(host, argv[i], (size_t)(colon - argv[i]));
	cfg.host = host;
	cfg.port = (uint16_t)strtoul(colon + 1, NULL, 10);
	if (!cfg.anonymous && !secret_len) {
		fprintf(stderr, "apfp: give --secret-file FILE or --anon\n");
		return EX_USAGE;
	}
	cfg.secret = secret;
	cfg.secret_len = secret_len;
	plat_init();
	if ((rc = apfpc_open(&c, &cfg)) < 0) {
		fprintf(stderr, "apfp: %s\n", c.err);
		apfpc_close(&c);
		return exit_for(rc);
	}
	rc = run(&c, argc - i - 1, argv + i + 1);
	if (rc < 0 && rc != -EINVAL)
		fprintf(stderr, "apfp: %s\n", c.err);
	apfpc_close(&c);
	return rc == -EINVAL ? EX_USAGE : exit_for(rc);
}
