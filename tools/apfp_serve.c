/*
 * apfp-serve: the file protocol served on the host from cowfs images, with
 * the same portable server core and filesystem operations as the appliance
 * (proto/server.h, proto/serve_cowfs.h).  For tests, the network FUSE
 * mount against a local image, and trying the protocol without booting.
 *
 *   apfp-serve [--port P] [--port-file F] [--secret-file F] [--anon] [--ro]
 *              [--max-conn N] [--idle-s S] NAME=IMAGE...
 *
 * Listens on 127.0.0.1 only (port 0: any; the chosen port is printed as
 * "apfp-serve: listening on 127.0.0.1:PORT").  One thread per connection
 * runs the handshake and then its requests in arrival order.  SIGINT or
 * SIGTERM stops accepting, closes connections and unmounts (a commit).
 * The handle key is derived from the secret as in the appliance, so
 * handles survive a restart with the same secret.
 */
#include "proto/serve_cowfs.h"
#include "proto/auth.h"
#include "proto/sha256.h"
#include "fs/vfs.h"
#include "platform/platform.h"
#include "platform/host/platform_host.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_EXPORTS 16

struct vol {
	char name[64];
	struct plat_bdev *b;
	struct cowfs_mount *m;
	uint64_t fsid;
};

static struct vol vols[MAX_EXPORTS];
static unsigned nvols;
static struct proto_export_cfg exports[MAX_EXPORTS];
static struct proto_server srv;
static struct proto_cowfs pc;
static struct proto_server_cfg scfg;
static struct proto_ratelimit rl;
static pthread_mutex_t rl_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned max_conn = PROTO_DEFAULT_MAX_CONN, nconn;
static pthread_mutex_t conn_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t stopping;
static unsigned idle_s = PROTO_IDLE_TIMEOUT_S;

static struct cowfs_mount *vol_get(void *arg, uint64_t fsid, void **use)
{
	(void)arg;
	*use = NULL;
	for (unsigned i = 0; i < nvols; i++)
		if (vols[i].fsid == fsid)
			return vols[i].m;
	return NULL;
}

static void vol_put(void *arg, void *use)
{
	(void)arg; (void)use;   /* mounts live until the server stops */
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Read exactly n bytes; false on EOF, error or the socket's timeout. */
static bool read_all(int fd, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR && !stopping)
			continue;
		if (r <= 0)
			return false;
		p += r;
		n -= (size_t)r;
	}
	return true;
}

static bool write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		p += r;
		n -= (size_t)r;
	}
	return true;
}

/* One frame into buf: the header is checked for its length first, so a
 * huge length is refused before anything is read or allocated. */
static int read_frame(int fd, uint8_t *buf, size_t cap, size_t *len, uint8_t version, uint32_t max_body,
		      struct proto_err *err)
{
	struct proto_hdr h;
	if (!read_all(fd, buf, PROTO_HDR_SIZE))
		return -PLAT_EIO;
	int rc = proto_hdr_decode(buf, PROTO_HDR_SIZE, version, max_body, &h, err);
	if (rc && proto_hdr_error_fatal(rc)) {
		*len = PROTO_HDR_SIZE;  /* the server core answers what it can from the header */
		return rc;
	}
	size_t tag = h.flags & PROTO_F_TAGGED ? PROTO_TAG_SIZE : 0;
	if (PROTO_HDR_SIZE + (size_t)h.length + tag > cap)
		return -PLAT_EMSGSIZE;
	*len = PROTO_HDR_SIZE + h.length + tag;
	return read_all(fd, buf + PROTO_HDR_SIZE, h.length + tag) ? 0 : -PLAT_EIO;
}

struct conn {
	int fd;
	char peer[64];
	uint64_t peer_key;
	struct conn *next;              /* the live connections (conn_lock) */
};
static struct conn *conns;

static void serve(struct conn *c)
{
	size_t cap = PROTO_HDR_SIZE + PROTO_MAX_BODY + PROTO_TAG_SIZE;
	uint8_t *in = malloc(cap), *out = malloc(cap), *scratch = malloc(PROTO_MAX_BODY);
	struct proto_auth_server a;
	struct proto_session sess;
	struct proto_reqtab tab;
	struct proto_err err;
	uint8_t nonce[PROTO_NONCE_SIZE];
	size_t len, n;
	struct timeval hs = { PROTO_HANDSHAKE_TIMEOUT_S, 0 }, idle = { idle_s, 0 };

	if (!in || !out || !scratch || plat_random(nonce, sizeof(nonce)))
		goto out;
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &hs, sizeof(hs));
	pthread_mutex_lock(&rl_lock);
	proto_auths_init(&a, &scfg, nonce, c->peer_key, now_ns(), &sess);
	pthread_mutex_unlock(&rl_lock);
	while (a.state != PROTO_AUTH_DONE) {
		if (!read_all(c->fd, in, PROTO_HDR_SIZE))
			goto out;
		uint32_t body = (uint32_t)in[12] | (uint32_t)in[13] << 8 | (uint32_t)in[14] << 16 |
				(uint32_t)in[15] << 24;
		len = PROTO_HDR_SIZE;
		if (body <= PROTO_HANDSHAKE_MAX_BODY + PROTO_TAG_SIZE) {
			if (!read_all(c->fd, in + PROTO_HDR_SIZE, body))
				goto out;
			len += body;
		}
		a.now_ns = now_ns();
		pthread_mutex_lock(&rl_lock);
		int rc = proto_auths_step(&a, in, len, out, cap, &n);
		pthread_mutex_unlock(&rl_lock);
		if ((n && !write_all(c->fd, out, n)) || rc < 0) {
			fprintf(stderr, "apfp-serve: %s: handshake refused: %s\n", c->peer, a.err.msg);
			goto out;
		}
	}
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof(idle));
	proto_reqtab_init(&tab, sess.max_inflight);
	while (!stopping) {
		int rc = read_frame(c->fd, in, cap, &len, sess.version, sess.max_body, &err);
		if (rc == -PLAT_EIO)
			break;
		if (rc == -PLAT_EMSGSIZE) {
			fprintf(stderr, "apfp-serve: %s: frame over the limit, closing\n", c->peer);
			break;
		}
		rc = proto_server_handle(&srv, &sess, &tab, in, len, out, cap, &n, scratch, PROTO_MAX_BODY, &err);
		if (n && !write_all(c->fd, out, n))
			break;
		if (rc < 0) {
			fprintf(stderr, "apfp-serve: %s: closing: %s\n", c->peer, err.msg);
			break;
		}
	}
out:
	free(in);
	free(out);
	free(scratch);
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	serve(c);
	pthread_mutex_lock(&conn_lock);
	for (struct conn **p = &conns; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	nconn--;
	pthread_mutex_unlock(&conn_lock);
	close(c->fd);
	free(c);
	return NULL;
}

/* Over the limit: a HELLO reply carrying CONNLIMIT, then close (§7). */
static void refuse(int fd)
{
	struct proto_hdr req = { .version = PROTO_HELLO_VERSION, .opcode = PROTO_OP_HELLO };
	uint8_t out[PROTO_HDR_SIZE];
	int n = proto_encode_error(out, sizeof(out), &req, PROTO_E_CONNLIMIT);
	if (n > 0)
		write_all(fd, out, (size_t)n);
	close(fd);
}

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: apfp-serve [--port P] [--port-file F] [--secret-file F] [--anon] [--ro] "
			"[--max-conn N] [--idle-s S] NAME=IMAGE...\n");
	return 2;
}

static int read_secret(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "apfp-serve: %s: %s\n", path, strerror(errno));
		return -1;
	}
	size_t n = fread(buf, 1, cap, f);
	fclose(f);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		n--;
	if (!n) {
		fprintf(stderr, "apfp-serve: %s: empty secret\n", path);
		return -1;
	}
	*len = n;
	return 0;
}

static int mount_vol(struct vol *v, const char *image, bool ro)
{
	struct stat st;
	if (stat(image, &st) || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "apfp-serve: %s: not an image file\n", image);
		return -1;
	}
	if (!(v->b = plat_host_bdev_open(image, (uint64_t)st.st_size, 512, 2, false))) {
		fprintf(stderr, "apfp-serve: %s: cannot open\n", image);
		return -1;
	}
	struct cowfs_vfs_opts o = { .fs = { .readonly = ro } };
	int err = cowfs_vfs_mount(v->b, &o, &v->m);
	if (err) {
		fprintf(stderr, "apfp-serve: %s: does not mount: %s\n", image, plat_strerror(err));
		plat_bdev_close(v->b);
		return -1;
	}
	v->fsid = proto_cowfs_fsid(v->m);
	return 0;
}

/* The test (tests/host/test_apfp_serve.c) runs the server in its own
 * process under another name, twice (a restart). */
#ifndef APFP_SERVE_MAIN
#define APFP_SERVE_MAIN main
#endif
int APFP_SERVE_MAIN(int argc, char **argv)
{
	static uint8_t secret[4096], handle_key[32];
	size_t secret_len = 0;
	bool anon = false, ro = false;
	const char *port_file = NULL;
	unsigned port = 2049;
	int i, rc = 1;

	stopping = 0;
	nvols = 0;
	nconn = 0;
	memset(vols, 0, sizeof(vols));
	memset(exports, 0, sizeof(exports));
	plat_init();

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--anon"))
			anon = true;
		else if (!strcmp(a, "--ro"))
			ro = true;
		else if (!strcmp(a, "--port") && v)
			port = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(a, "--port-file") && v)
			port_file = argv[++i];
		else if (!strcmp(a, "--max-conn") && v)
			max_conn = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(a, "--idle-s") && v)
			idle_s = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(a, "--secret-file") && v) {
			if (read_secret(argv[++i], secret, sizeof(secret), &secret_len))
				return 1;
		} else
			return usage();
	}
	if (i == argc || port > 65535 || !max_conn)
		return usage();
	if (!secret_len && !anon) {
		fprintf(stderr, "apfp-serve: no --secret-file and no --anon: nobody could connect\n");
		return 2;
	}
	for (; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		if (!eq || eq == argv[i] || (size_t)(eq - argv[i]) >= sizeof(vols[0].name) || nvols == MAX_EXPORTS ||
		    memchr(argv[i], '/', (size_t)(eq - argv[i])))
			return usage();
		struct vol *v = &vols[nvols];
		memcpy(v->name, argv[i], (size_t)(eq - argv[i]));
		if (mount_vol(v, eq + 1, ro))
			goto unmount;
		struct proto_export_cfg *e = &exports[nvols++];
		if (proto_cowfs_export(v->m, e)) {
			fprintf(stderr, "apfp-serve: %s: no root directory\n", eq + 1);
			goto unmount;
		}
		e->name = v->name;
		e->flags = (ro ? PROTO_EXP_RO : 0) | (anon ? PROTO_EXP_ANON : 0);
		for (unsigned j = 0; j + 1 < nvols; j++)
			if (vols[j].fsid == v->fsid || !strcmp(vols[j].name, v->name)) {
				fprintf(stderr, "apfp-serve: %s: the same filesystem or name twice\n", argv[i]);
				goto unmount;
			}
	}
	if (secret_len)
		proto_hkdf_extract("apfp handle key", 15, secret, secret_len, handle_key);
	else if (plat_random(handle_key, sizeof(handle_key)))
		goto unmount;
	if (proto_cowfs_init(&pc, vol_get, vol_put, NULL)) {
		fprintf(stderr, "apfp-serve: no random write verifier\n");
		goto unmount;
	}
	proto_server_init(&srv, &proto_cowfs_ops, &pc, handle_key, sizeof(handle_key));
	proto_server_set_exports(&srv, exports, nvols);
	proto_rl_init(&rl);
	scfg = (struct proto_server_cfg){ secret_len ? secret : NULL, secret_len, anon, PROTO_MAX_BODY,
					  PROTO_MAX_INFLIGHT, now_ns() ^ (uint64_t)getpid() << 32, &rl };

	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int one = 1, lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 64) ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl)) {
		fprintf(stderr, "apfp-serve: 127.0.0.1:%u: %s\n", port, strerror(errno));
		goto unmount;
	}
	struct sigaction act = { .sa_handler = on_signal };
	sigaction(SIGINT, &act, NULL);
	sigaction(SIGTERM, &act, NULL);
	printf("apfp-serve: listening on 127.0.0.1:%u, %u export%s, %s\n", ntohs(sa.sin_port), nvols,
	       nvols == 1 ? "" : "s", secret_len ? "secret required" : "anonymous read-only");
	fflush(stdout);
	if (port_file) {    /* written whole, then renamed: a reader never sees half */
		char tmp[4096];
		snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
		FILE *f = fopen(tmp, "w");
		if (!f || fprintf(f, "%u\n", ntohs(sa.sin_port)) < 0 || fclose(f) || rename(tmp, port_file)) {
			fprintf(stderr, "apfp-serve: %s: %s\n", port_file, strerror(errno));
			close(lfd);
			goto unmount;
		}
	}

	while (!stopping) {
		struct pollfd p = { lfd, POLLIN, 0 };
		if (poll(&p, 1, 200) <= 0)
			continue;
		struct sockaddr_in peer;
		socklen_t pl = sizeof(peer);
		int fd = accept(lfd, (struct sockaddr *)&peer, &pl);
		if (fd < 0)
			continue;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		pthread_mutex_lock(&conn_lock);
		bool full = nconn >= max_conn;
		if (!full)
			nconn++;
		pthread_mutex_unlock(&conn_lock);
		if (full) {
			refuse(fd);
			continue;
		}
		struct conn *c = calloc(1, sizeof(*c));
		pthread_t t;
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->peer_key = ntohl(peer.sin_addr.s_addr);
		snprintf(c->peer, sizeof(c->peer), "%s:%u", inet_ntoa(peer.sin_addr), ntohs(peer.sin_port));
		pthread_mutex_lock(&conn_lock);
		c->next = conns;
		conns = c;
		pthread_mutex_unlock(&conn_lock);
		if (pthread_create(&t, NULL, conn_main, c)) {
			conn_main(c);   /* unlinks, closes, frees */
			continue;
		}
		pthread_detach(t);
	}
	close(lfd);
	/* Shut every connection's socket: its thread finishes the request it
	 * is running, fails its next read and leaves.  The filesystems are
	 * unmounted only when none is left (bounded: 10 s). */
	unsigned left = 0;
	for (int w = 0; w < 100; w++) {
		pthread_mutex_lock(&conn_lock);
		for (struct conn *c = conns; c; c = c->next)
			shutdown(c->fd, SHUT_RDWR);
		left = nconn;
		pthread_mutex_unlock(&conn_lock);
		if (!left)
			break;
		usleep(100000);
	}
	if (left) {
		fprintf(stderr, "apfp-serve: %u connections still busy after 10 s; exiting without unmounting "
				"(the last commit is intact)\n", left);
		return 1;
	}
	rc = 0;
unmount:
	for (unsigned j = 0; j < MAX_EXPORTS; j++) {
		if (vols[j].m) {
			int err = cowfs_vfs_unmount(vols[j].m);
			if (err) {
				fprintf(stderr, "apfp-serve: %s: unmount: %s\n", vols[j].name, plat_strerror(err));
				rc = 1;
			}
			plat_bdev_close(vols[j].b);
		}
	}
	return rc;
}
