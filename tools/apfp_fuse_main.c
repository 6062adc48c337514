/*
 * apfp-fuse: command line, the first connection (errors reach the terminal
 * before the mount), the FUSE session.  Usage in tools/apfp_fuse.c.
 */
#define _GNU_SOURCE
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include <errno.h>
#include <fuse_lowlevel.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tools/apfp_fuse.h"

struct afopts {
	char *secret_file, *attr_timeout, *entry_timeout, *timeout, *conns;
	int anon, writeback, ro, foreground, help;
};

#define OPT(t, f) { t, offsetof(struct afopts, f), 1 }
static const struct fuse_opt af_opts[] = {
	{ "secret_file=%s", offsetof(struct afopts, secret_file), 0 },
	{ "attr_timeout=%s", offsetof(struct afopts, attr_timeout), 0 },
	{ "entry_timeout=%s", offsetof(struct afopts, entry_timeout), 0 },
	{ "timeout=%s", offsetof(struct afopts, timeout), 0 },
	{ "conns=%s", offsetof(struct afopts, conns), 0 },
	OPT("anon", anon), OPT("writeback", writeback), OPT("ro", ro),
	FUSE_OPT_KEY("ro", FUSE_OPT_KEY_KEEP),          /* and the kernel mount is read-only too */
	OPT("-f", foreground), OPT("-h", help), OPT("--help", help),
	FUSE_OPT_END
};

static int usage(void)
{
	fprintf(stderr,
		"usage: apfp-fuse HOST:PORT/EXPORT MOUNTPOINT [-f] [-o OPTIONS]\n"
		"  -o secret_file=F | anon     the shared secret (first line of F), or a read-only anonymous session\n"
		"     attr_timeout=S,entry_timeout=S   kernel caching of attributes and names (default 1)\n"
		"     writeback                the kernel's writeback cache\n"
		"     ro                       read-only mount\n"
		"     timeout=S                each wait on the server (default 10)\n"
		"     conns=N                  connections to the server (default 8, at most %d)\n"
		"  as mount(8): mount -t fuse.apfp-fuse HOST:PORT/EXPORT MOUNTPOINT -o secret_file=F\n",
		AFUSE_MAX_CONNS);
	return 2;
}

/* HOST:PORT/EXPORT into its parts (host copied into hostbuf). */
static int parse_source(const char *src, char *host, size_t hostcap, uint16_t *port, char *export, size_t expcap)
{
	const char *colon = strrchr(src, ':'), *slash = colon ? strchr(colon, '/') : NULL;
	if (!colon || !slash || colon == src || (size_t)(colon - src) >= hostcap || !slash[1] ||
	    strlen(slash + 1) >= expcap)
		return -EINVAL;
	char *endp;
	unsigned long p = strtoul(colon + 1, &endp, 10);
	if (endp != slash || !p || p > 65535)
		return -EINVAL;
	memcpy(host, src, (size_t)(colon - src));
	host[colon - src] = 0;
	*port = (uint16_t)p;
	strcpy(export, slash + 1);
	return 0;
}

static int read_secret(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "apfp-fuse: %s: %s\n", path, strerror(errno));
		return -1;
	}
	size_t n = fread(buf, 1, cap, f);
	bool more = fgetc(f) != EOF;
	fclose(f);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		n--;
	if (!n || more) {
		fprintf(stderr, "apfp-fuse: %s: %s\n", path, n ? "secret too long" : "empty secret");
		return -1;
	}
	*len = n;
	return 0;
}

static bool seconds(const char *s, double *out, double min, double max)
{
	char *endp;
	if (!s)
		return true;
	double v = strtod(s, &endp);
	if (*endp || v < min || v > max)
		return false;
	*out = v;
	return true;
}

int main(int argc, char **argv)
{
	static struct afuse a;
	static uint8_t secret[4096];
	static char host[256];
	struct afopts o = { 0 };
	size_t secret_len = 0;

	if (argc < 3 || argv[1][0] == '-' || argv[2][0] == '-')
		return usage();
	const char *source = argv[1], *mountpoint = argv[2];
	argv[2] = argv[0];              /* FUSE sees argv[0] and the options after the two paths */
	struct fuse_args args = FUSE_ARGS_INIT(argc - 2, argv + 2);
	if (fuse_opt_parse(&args, &o, af_opts, NULL) || o.help)
		return usage();
	if (parse_source(source, host, sizeof(host), &a.cfg.port, a.export, sizeof(a.export))) {
		fprintf(stderr, "apfp-fuse: %s: not HOST:PORT/EXPORT\n", source);
		return usage();
	}
	double timeout = 10, conns = 8;
	a.attr_timeout = a.entry_timeout = 1.0;
	if (!seconds(o.attr_timeout, &a.attr_timeout, 0, 86400) || !seconds(o.entry_timeout, &a.entry_timeout, 0, 86400) ||
	    !seconds(o.timeout, &timeout, 0.1, 3600) || !seconds(o.conns, &conns, 1, AFUSE_MAX_CONNS)) {
		fprintf(stderr, "apfp-fuse: attr_timeout, entry_timeout and timeout are seconds (timeout >= 0.1), "
			"conns 1..%d\n", AFUSE_MAX_CONNS);
		return 2;
	}
	if (o.anon == !!o.secret_file) {
		fprintf(stderr, "apfp-fuse: give -o secret_file=F or -o anon (one of them)\n");
		return 2;
	}
	if (o.secret_file && read_secret(o.secret_file, secret, sizeof(secret), &secret_len))
		return 1;
	a.cfg = (struct apfpc_cfg){ .host = host, .port = a.cfg.port, .secret = o.secret_file ? secret : NULL,
				    .secret_len = secret_len, .anonymous = o.anon != 0,
				    .timeout_ms = (unsigned)(timeout * 1000), .max_inflight = 4, .reconnects = 3,
				    .client_id = "apfp-fuse" };
	a.nconns = (unsigned)conns;
	a.writeback = o.writeback;
	a.ro = o.ro || o.anon;
	if (afuse_init(&a))
		return 1;

	/* The export must be reachable before anything is mounted, so a wrong
	 * address, secret or name is said on the terminal. */
	int rc, ret = 1;
	struct apfpc *c0 = &a.conns[0].c;
	if ((rc = apfpc_open(c0, &a.cfg))) {
		fprintf(stderr, "apfp-fuse: %s\n", c0->err);
		goto out_state;
	}
	a.conns[0].open = true;
	if ((rc = apfp_export_root(c0, a.export, &a.root))) {
		fprintf(stderr, "apfp-fuse: %s:%u: export %s: %s\n", host, a.cfg.port, a.export,
			rc == -ENOENT ? "no such export" : c0->err[0] ? c0->err : strerror(-rc));
		goto out_state;
	}
	char fsopts[600];
	snprintf(fsopts, sizeof(fsopts), "-ofsname=%s,subtype=apfp-fuse,default_permissions,max_read=%u%s", source,
		 AFUSE_MAX_IO, a.ro && !o.ro ? ",ro" : "");
	fuse_opt_add_arg(&args, fsopts);

	struct fuse_session *se = fuse_session_new(&args, apfp_fuse_ops(), sizeof(struct fuse_lowlevel_ops), &a);
	a.se = se;
	if (!se)
		goto out_state;
	if (fuse_set_signal_handlers(se))
		goto out_session;
	if (fuse_session_mount(se, mountpoint)) {
		fprintf(stderr, "apfp-fuse: %s: cannot mount\n", mountpoint);
		goto out_signals;
	}
	fuse_daemonize(o.foreground);
	struct fuse_loop_config *lc = fuse_loop_cfg_create();
	fuse_loop_cfg_set_max_threads(lc, 2 * a.nconns);
	rc = fuse_session_loop_mt(se, lc);         /* > 0: the signal that stopped it, a normal end */
	if (rc < 0)
		fprintf(stderr, "apfp-fuse: %s: %s\n", mountpoint, strerror(-rc));
	ret = rc < 0 ? 1 : 0;
	fuse_loop_cfg_destroy(lc);
	/* Stopped by a signal with files open: their writes were never
	 * committed by a release; do it now, as the last thing we can. */
	if ((rc = afuse_commit_all(&a))) {
		fprintf(stderr, "apfp-fuse: committing the open files' writes at exit: %s\n", strerror(-rc));
		ret = 1;
	}
	if (a.resent)
		fprintf(stderr, "apfp-fuse: %llu uncommitted writes were written again after server restarts\n",
			(unsigned long long)a.resent);
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_state:
	afuse_fini(&a);
	fuse_opt_free_args(&args);
	return ret;
}
