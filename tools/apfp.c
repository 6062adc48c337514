/*
 * apfp: the command-line client of the file protocol (tools/apfp_client.h,
 * tools/apfp_ops.h).  This file: options, the connection, exit status,
 * the session commands; the file commands are in tools/apfp_cmds.c,
 * tools/apfp_tree.c and tools/apfp_bench.c.  usage() below is the manual.
 */
#define _GNU_SOURCE
#include "tools/apfp_cli.h"
#include "tools/apfp_admin.h"
#include "platform/platform.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage_text[] =
	"usage: apfp [--secret-file FILE | --anon] [--timeout MS] [--depth N] [--json] HOST:PORT COMMAND [ARGS]\n"
	"Paths on the server are EXPORT/PATH (EXPORT alone is the export's root directory; symbolic links in them\n"
	"are not followed).\n"
	"commands:\n"
	"  ping [N]                   N round trips (default 1), the mean time\n"
	"  exports                    the export list\n"
	"  ls [-l] PATH               a directory's entries, or one file (-l: long form)\n"
	"  stat PATH                  a file's attributes\n"
	"  cat PATH                   a file's data to stdout\n"
	"  get [-r] REMOTE LOCAL      copy a file (-r: a directory tree; symlinks recreated) from the server;\n"
	"                             into LOCAL/NAME when LOCAL is a directory\n"
	"  put [-r] LOCAL REMOTE      copy a file or tree to the server (unstable writes, then COMMIT; writes\n"
	"                             a server restart lost are sent again); into REMOTE/NAME when a directory\n"
	"  mkdir [-p] PATH            make a directory (-p: and its parents; no error if it exists)\n"
	"  rm [-r] PATH               remove a file or link (-r: a directory and everything in it)\n"
	"  mv FROM TO                 rename (into TO/NAME when TO is a directory; one export)\n"
	"  ln [-s] TARGET LINKPATH    hard link to the remote file TARGET; -s: symbolic link with text TARGET\n"
	"  df [EXPORT]                space and files of one or every export\n"
	"  snapshot create EXPORT NAME | snapshot delete EXPORT NAME | snapshot list EXPORT\n"
	"  clone FROM TO              server-side copy of a file (into TO/NAME when TO is a directory)\n"
	"  bench EXPORT [-s MIB] [-n FILES] [-g GETATTRS]\n"
	"                             write and read throughput of one MIB file (default 64), FILES small file\n"
	"                             creates (default 500), GETATTRS getattr latencies (default 2000); prints\n"
	"                             'bench apfp write_MBps=... read_MBps=... create_per_s=... getattr_us_p50=...'\n"
	"  bench-null [N]             PING round trips per second at queue depth 1 and 8 (N each, default 2000)\n"
	"  hold SECONDS               a session held open that long (tests)\n"
	"  admin [--chunk N] [--wait S] [--trace] COMMAND [ARGS]\n"
	"                             a shell command of the appliance's allow-list run there, its output printed\n"
	"                             as it is printed there (exit 6 when the command failed there, 3 when refused;\n"
	"                             --wait: give up following it after S seconds, default 3600)\n"
	"--depth N: requests kept in flight by get, put and bench (1..64; default 16 for writes, 4 for reads, which\n"
	"           the appliance serves fastest; the server may allow fewer).\n"
	"--json: ls, stat, df, exports, snapshot list and bench print JSON on stdout.\n"
	"Progress bars (bytes, rate, time left) go to stderr for transfers of 8 MiB or more when it is a terminal.\n"
	"exit status: 0 done; 1 usage; 2 no connection, timeout or connection lost; 3 authentication or\n"
	"permission refused; 4 refused for now (connection limit, rate limit, busy); 5 any other error from the\n"
	"server; 6 no such remote path or export, or a local file error.\n";

static int usage(void)
{
	fprintf(stderr, "%.*s(apfp --help lists the commands)\n", (int)strcspn(usage_text, "\n") + 1, usage_text);
	return EX_USAGE;
}

double cli_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int cli_exit_for(int rc)
{
	switch (-rc) {
	case 0: return EX_OK;
	case EACCES: case EPERM: return EX_AUTH;
	case EAGAIN: case EBUSY: return EX_LATER;
	case ENOENT: return EX_NOTFOUND;
	case ECONNRESET: case ECONNREFUSED: case ETIMEDOUT: case ENOTCONN: case EPIPE: case EHOSTUNREACH:
		return EX_CONN;
	default: return EX_SERVER;
	}
}

int cli_fail(struct cli *k, const char *what, int rc)
{
	if (k->c.fd < 0) {      /* the connection is gone: the library's sentence says why */
		fprintf(stderr, "apfp: %s: %s\n", what, k->c.err);
		return EX_CONN;
	}
	fprintf(stderr, "apfp: %s: %s\n", what, rc == -ENOENT ? "no such file, directory or export" : strerror(-rc));
	return cli_exit_for(rc);
}

int cli_local(const char *what, int err)
{
	fprintf(stderr, "apfp: %s: %s\n", what, strerror(err));
	return EX_NOTFOUND;
}

int cli_opts(int argc, char **argv, const char *allowed, bool flags[128], char ***ops, int *nops)
{
	int i = 1;
	memset(flags, 0, 128 * sizeof(bool));
	for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		}
		for (const char *p = argv[i] + 1; *p; p++) {
			if (!strchr(allowed, *p) || (unsigned char)*p >= 128) {
				fprintf(stderr, "apfp: %s: unknown option -%c\n", argv[0], *p);
				return EX_USAGE;
			}
			flags[(unsigned char)*p] = true;
		}
	}
	*ops = argv + i;
	*nops = argc - i;
	return 0;
}

void cli_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

/* ---- progress bars ----------------------------------------------------------- */
#define BAR_MIN_BYTES (8ull << 20)

static void bar_draw(void *arg, uint64_t done, uint64_t total)
{
	struct cli_bar *b = arg;
	double now = cli_now(), dt = now - b->t0;
	if (now - b->last < 0.1 && done < total)
		return;
	b->last = now;
	b->shown = true;
	double rate = dt > 0 ? (double)done / dt : 0;
	double left = rate > 0 ? (double)(total - done) / rate : 0;
	unsigned pct = total ? (unsigned)(done * 100 / total) : 100;
	char bar[21];
	for (unsigned i = 0; i < 20; i++)
		bar[i] = i < pct / 5 ? '#' : '.';
	bar[20] = 0;
	fprintf(stderr, "\r%.30s [%s] %3u%% %.1f/%.1f MiB %.1f MB/s %u:%02u left\033[K", b->name, bar, pct,
		(double)done / 1048576, (double)total / 1048576, rate / 1e6, (unsigned)left / 60, (unsigned)left % 60);
}

void cli_bar_start(struct cli *k, struct cli_bar *b, const char *name, uint64_t total, struct apfp_xfer *x)
{
	*b = (struct cli_bar){ .name = name, .t0 = cli_now() };
	if (k->tty && total >= BAR_MIN_BYTES) {
		x->progress = bar_draw;
		x->progress_arg = b;
	}
}

void cli_bar_end(struct cli_bar *b)
{
	if (b->shown)
		fprintf(stderr, "\r\033[K");
	b->shown = false;
}

/* ---- session commands ---------------------------------------------------------- */

/* QD round trips of PING kept in flight until count are answered. */
static int bench_null(struct apfpc *c, unsigned qd, unsigned count, double *ops)
{
	struct proto_client_reply r;
	unsigned sent = 0, done = 0, inflight = 0;
	uint32_t id;
	int rc;
	double t0 = cli_now();

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
	*ops = count / (cli_now() - t0);
	return 0;
}

static int cmd_exports(struct cli *k)
{
	struct proto_client_reply r;
	int rc;
	if ((rc = apfpc_call(&k->c, PROTO_OP_EXPORTS, NULL, &r)) < 0)
		return cli_fail(k, "exports", rc);
	const struct proto_exports_rep *e = (const void *)r.msg;
	struct proto_export x;
	uint32_t pos = 0;
	unsigned n = 0;
	if (k->json)
		printf("[");
	while (proto_list_next(&e->exports, PROTO_L_EXPORT, &pos, &x) > 0) {
		char name[256];
		memcpy(name, x.name.p, x.name.len);
		name[x.name.len] = 0;
		if (k->json) {
			printf("%s{\"name\":", n ? "," : "");
			cli_json_str(stdout, name);
			printf(",\"ro\":%s,\"anonymous\":%s}", x.flags & PROTO_EXP_RO ? "true" : "false",
			       x.flags & PROTO_EXP_ANON ? "true" : "false");
		} else {
			printf("%s%s%s\n", name, x.flags & PROTO_EXP_RO ? " ro" : " rw",
			       x.flags & PROTO_EXP_ANON ? " anonymous" : "");
		}
		n++;
	}
	if (k->json)
		printf("]\n");
	else
		printf("exports: %u\n", n);
	return EX_OK;
}

static int cmd_session(struct cli *k, int argc, char **argv)
{
	struct apfpc *c = &k->c;
	struct proto_client_reply r;
	const char *cmd = argv[0];
	int rc;

	if (!strcmp(cmd, "ping")) {
		unsigned n = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 0) : 1;
		double t0 = cli_now();
		for (unsigned i = 0; i < n; i++)
			if ((rc = apfpc_call(c, PROTO_OP_PING, NULL, &r)) < 0)
				return cli_fail(k, "ping", rc);
		printf("ping: %u replies from %s:%u, %.0f us each (%s session, version %u)\n", n, c->cfg.host,
		       c->cfg.port, n ? (cli_now() - t0) * 1e6 / n : 0.0, c->sess.keyed ? "keyed" : "anonymous",
		       c->sess.version);
		return EX_OK;
	}
	if (!strcmp(cmd, "bench-null")) {
		unsigned n = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 0) : 2000;
		static const unsigned qds[] = { 1, 8 };
		for (unsigned i = 0; i < 2; i++) {
			double ops = 0;
			if ((rc = bench_null(c, qds[i], n, &ops)) < 0)
				return cli_fail(k, "bench-null", rc);
			printf("bench proto null qd=%u ops_per_s=%.0f count=%u\n", qds[i], ops, n);
		}
		return EX_OK;
	}
	/* hold SECONDS */
	unsigned s = (unsigned)strtoul(argv[1], NULL, 0);
	printf("hold: connected\n");
	fflush(stdout);
	for (unsigned i = 0; i < s; i++)
		sleep(1);
	if ((rc = apfpc_call(c, PROTO_OP_PING, NULL, &r)) < 0)
		return cli_fail(k, "hold", rc);
	return EX_OK;
}

/* admin COMMAND [ARGS] (tools/apfp_admin.c) */
static int cmd_admin(struct cli *k, int argc, char **argv)
{
	k->c.err[0] = 0;
	int rc = apfp_admin(&k->c, argc, argv);
	if (rc == -EINVAL && k->c.fd >= 0 && !k->c.err[0])
		return EX_USAGE;        /* apfp_admin printed the usage */
	if (rc >= 0)
		return EX_OK;
	/* apfp_admin's sentence says what the refusal means */
	fprintf(stderr, "apfp: %s\n", k->c.err[0] ? k->c.err : strerror(-rc));
	return k->c.fd < 0 ? EX_CONN : cli_exit_for(rc);
}

static const struct {
	const char *name;
	int (*fn)(struct cli *k, int argc, char **argv);
	int min_args, max_args;         /* operands after the command, options included */
} commands[] = {
	{ "ping", cmd_session, 0, 1 }, { "bench-null", cmd_session, 0, 1 }, { "hold", cmd_session, 1, 1 },
	{ "exports", NULL, 0, 0 },
	{ "ls", cmd_ls, 1, 2 }, { "stat", cmd_stat, 1, 1 }, { "cat", cmd_cat, 1, 1 },
	{ "get", cmd_get, 2, 3 }, { "put", cmd_put, 2, 3 }, { "mkdir", cmd_mkdir, 1, 2 },
	{ "rm", cmd_rm, 1, 2 }, { "mv", cmd_mv, 2, 2 }, { "ln", cmd_ln, 2, 3 }, { "df", cmd_df, 0, 1 },
	{ "snapshot", cmd_snapshot, 2, 3 }, { "clone", cmd_clone, 2, 2 }, { "bench", cmd_bench, 1, 7 },
	{ "admin", cmd_admin, 1, 64 },
};

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

int main(int argc, char **argv)
{
	static uint8_t secret[4096];
	static struct cli k;
	struct apfpc_cfg cfg = { .timeout_ms = 10000, .max_inflight = 16, .reconnects = 2, .client_id = "apfp-cli" };
	size_t secret_len = 0;
	int i = 1, rc;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--anon")) {
			cfg.anonymous = true;
		} else if (!strcmp(argv[i], "--json")) {
			k.json = true;
		} else if (!strcmp(argv[i], "--secret-file") && i + 1 < argc) {
			if (read_secret(argv[++i], secret, sizeof(secret), &secret_len) < 0)
				return EX_USAGE;
		} else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
			cfg.timeout_ms = (unsigned)strtoul(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "--depth") && i + 1 < argc) {
			k.depth = (unsigned)strtoul(argv[++i], NULL, 0);
			if (!k.depth || k.depth > PROTO_MAX_INFLIGHT)
				return usage();
			cfg.max_inflight = k.depth;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage_text, stdout);
			return EX_OK;
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

	int nargs = argc - i - 2;
	char **args = argv + i + 1;
	for (; nargs > 0 && !strcmp(args[0], "--json"); nargs--, args++)
		k.json = true;          /* also accepted after HOST:PORT */
	unsigned cmd = 0;
	while (cmd < sizeof(commands) / sizeof(commands[0]) && strcmp(commands[cmd].name, args[0]))
		cmd++;
	if (cmd == sizeof(commands) / sizeof(commands[0])) {
		fprintf(stderr, "apfp: unknown command '%s'\n", args[0]);
		return usage();
	}
	if (nargs < commands[cmd].min_args || nargs > commands[cmd].max_args) {
		fprintf(stderr, "apfp: %s: wrong number of arguments\n", args[0]);
		return usage();
	}
	k.tty = isatty(2);
	plat_init();
	if ((rc = apfpc_open(&k.c, &cfg)) < 0) {
		fprintf(stderr, "apfp: %s\n", k.c.err);
		apfpc_close(&k.c);
		return cli_exit_for(rc) == EX_NOTFOUND ? EX_SERVER : cli_exit_for(rc);
	}
	rc = commands[cmd].fn ? commands[cmd].fn(&k, nargs + 1, args) : cmd_exports(&k);
	if (fflush(stdout) && rc == EX_OK)
		rc = cli_local("stdout", errno);
	apfpc_close(&k.c);
	return rc;
}
