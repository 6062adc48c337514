/*
 * The host client library (tools/apfp_client.c) against a small server on
 * 127.0.0.1 made of the portable server core: handshake, calls, pipelined
 * requests, reconnection after the server drops the connection (repeating
 * only operations that may be repeated), timeouts, refused connections and
 * a wrong secret, each with its sentence; the CLI's `admin` (tools/
 * apfp_admin.c) following a command's streamed output.
 */
#define TEST_SUITE "apfp_client"
#include "tests/host/test.h"
#include "tools/apfp_client.h"
#include "tools/apfp_admin.h"
#include "proto/server.h"
#include "platform/platform.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const uint8_t psk[] = "client test secret, 32 bytes ok";

enum mode { SERVE, SILENT };

struct server {
	int lfd;
	uint16_t port;
	enum mode mode;
	unsigned drop_after;            /* close each connection after this many requests (0: never) */
	unsigned connections, requests;
	volatile bool stop;
	pthread_t thread;
};

static bool read_all(int fd, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = read(fd, p, n);
		if (r <= 0)
			return false;
		p += r;
		n -= (size_t)r;
	}
	return true;
}

static bool read_frame(int fd, uint8_t *buf, size_t cap, size_t *len)
{
	if (!read_all(fd, buf, PROTO_HDR_SIZE))
		return false;
	uint32_t body = (uint32_t)buf[12] | (uint32_t)buf[13] << 8 | (uint32_t)buf[14] << 16 |
			(uint32_t)buf[15] << 24;
	size_t tag = buf[6] & PROTO_F_TAGGED ? PROTO_TAG_SIZE : 0;
	if (PROTO_HDR_SIZE + body + tag > cap)
		return false;
	*len = PROTO_HDR_SIZE + body + tag;
	return read_all(fd, buf + PROTO_HDR_SIZE, body + tag);
}

/* ADMIN as the appliance streams it: "line 1" while the command runs, an
 * empty piece (nothing new within the server's wait), then "line 2" and
 * the end.  At each continuation it looks at what the CLI wrote to its
 * stdout (a file, admin_out): the bytes received so far must be there
 * already, flushed before the CLI asked for more. */
static struct {
	int out_fd;
	unsigned step, flushed, bad;
} admin_srv;

static int f_admin(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_admin_req *q = req;
	struct proto_admin_rep *r = rep;
	static const char *const pieces[] = { "line 1\n", "", "line 2\n" };
	char seen[16] = { 0 };
	(void)fs;
	unsigned step = admin_srv.step++;
	if (step >= 3 || q->command.len != 10 || memcmp(q->command.p, "scrub /vol", 10) ||
	    q->run != (step ? 9u : 0u) || q->offset != (step ? 7u : 0u)) {
		admin_srv.bad++;
		return -EINVAL;
	}
	if (step && pread(admin_srv.out_fd, seen, sizeof(seen) - 1, 0) == 7 && !strcmp(seen, "line 1\n"))
		admin_srv.flushed++;
	size_t n = strlen(pieces[step]);
	memcpy(c->scratch, pieces[step], n);
	r->run = 9;
	r->done = step == 2;
	r->result = r->done ? 0 : PROTO_ADMIN_RUNNING;
	r->output.p = c->scratch;
	r->output.len = (uint32_t)n;
	return 0;
}

static void serve_one(struct server *s, int fd)
{
	static const struct proto_export_cfg exp[] = { { "vol", 7, 1, 1, 0, 0 } };
	static struct proto_fs_ops ops = { .op = { [PROTO_OP_ADMIN] = f_admin } };
	static uint8_t in[8192], out[8192], scratch[4096];
	struct proto_server srv;
	struct proto_server_cfg cfg = { psk, 32, true, PROTO_MAX_BODY, 64, 42, NULL };
	struct proto_auth_server a;
	struct proto_session sess;
	struct proto_reqtab tab;
	struct proto_err err;
	uint8_t nonce[32];
	size_t len, n;

	proto_server_init(&srv, &ops, NULL, "handle key", 10);
	proto_server_set_exports(&srv, exp, 1);
	plat_random(nonce, sizeof(nonce));
	proto_auths_init(&a, &cfg, nonce, 1, 0, &sess);
	while (a.state != PROTO_AUTH_DONE) {
		if (!read_frame(fd, in, sizeof(in), &len))
			return;
		int rc = proto_auths_step(&a, in, len, out, sizeof(out), &n);
		if ((n && write(fd, out, n) != (ssize_t)n) || rc < 0)
			return;         /* a refusal is sent before closing */
	}
	proto_reqtab_init(&tab, sess.max_inflight);
	for (unsigned served = 0; !s->drop_after || served < s->drop_after; served++) {
		if (!read_frame(fd, in, sizeof(in), &len))
			return;
		if (proto_server_handle(&srv, &sess, &tab, in, len, out, sizeof(out), &n, scratch, sizeof(scratch),
					&err) < 0 || write(fd, out, n) != (ssize_t)n)
			return;
		__atomic_add_fetch(&s->requests, 1, __ATOMIC_RELAXED);
	}
}

static void *server_main(void *arg)
{
	struct server *s = arg;

	while (!s->stop) {
		int fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		__atomic_add_fetch(&s->connections, 1, __ATOMIC_RELAXED);
		if (s->mode == SERVE)
			serve_one(s, fd);
		else
			while (!s->stop)
				usleep(10000);
		close(fd);
	}
	return NULL;
}

static void server_start(struct server *s, enum mode mode, unsigned drop_after)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	struct timeval tv = { 0, 200000 };

	memset(s, 0, sizeof(*s));
	s->mode = mode;
	s->drop_after = drop_after;
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(s->lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));   /* accept wakes to see stop */
	if (bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) || listen(s->lfd, 8) ||
	    getsockname(s->lfd, (struct sockaddr *)&a, &al))
		abort();
	s->port = ntohs(a.sin_port);
	pthread_create(&s->thread, NULL, server_main, s);
}

static void server_stop(struct server *s)
{
	s->stop = true;
	pthread_join(s->thread, NULL);
	close(s->lfd);
}

static struct apfpc_cfg cfg_for(const struct server *s, unsigned reconnects, unsigned timeout_ms)
{
	return (struct apfpc_cfg){ .host = "127.0.0.1", .port = s->port, .secret = psk, .secret_len = 32,
				   .timeout_ms = timeout_ms, .max_inflight = 8, .reconnects = reconnects,
				   .client_id = "test" };
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

TEST(calls_and_exports)
{
	struct server s;
	struct apfpc c;
	struct proto_client_reply r;
	struct apfpc_cfg cfg;

	plat_init();
	server_start(&s, SERVE, 0);
	cfg = cfg_for(&s, 0, 5000);
	EXPECT_EQ_INT(apfpc_open(&c, &cfg), 0);
	EXPECT(c.sess.keyed && c.sess.version == PROTO_VERSION_MAX);
	EXPECT_EQ_INT(apfpc_call(&c, PROTO_OP_PING, NULL, &r), 0);
	EXPECT_EQ_INT(apfpc_call(&c, PROTO_OP_EXPORTS, NULL, &r), 0);
	const struct proto_exports_rep *e = (const void *)r.msg;
	struct proto_export x;
	uint32_t pos = 0;
	EXPECT_EQ_INT(e->exports.count, 1);
	EXPECT_EQ_INT(proto_list_next(&e->exports, PROTO_L_EXPORT, &pos, &x), 1);
	EXPECT(x.name.len == 3 && !memcmp(x.name.p, "vol", 3));
	/* an operation the server has no filesystem for: the error in words */
	struct proto_fh_req q = { x.root };
	EXPECT_EQ_INT(apfpc_call(&c, PROTO_OP_GETATTR, &q, &r), -PLAT_ENOTSUP);
	EXPECT(strstr(c.err, "GETATTR") != NULL);
	apfpc_close(&c);
	server_stop(&s);
}

TEST(pipelined_requests)
{
	struct server s;
	struct apfpc c;
	struct proto_client_reply r;
	struct apfpc_cfg cfg;
	uint32_t id, sent = 0, seen = 0;

	server_start(&s, SERVE, 0);
	cfg = cfg_for(&s, 0, 5000);
	EXPECT_EQ_INT(apfpc_open(&c, &cfg), 0);
	for (unsigned i = 0; i < c.sess.max_inflight; i++) {
		EXPECT_EQ_INT(apfpc_send(&c, PROTO_OP_PING, NULL, &id), 0);
		sent |= 1u << (id % 32);
	}
	EXPECT_EQ_INT(c.sess.max_inflight, 8);
	EXPECT_EQ_INT(apfpc_send(&c, PROTO_OP_PING, NULL, &id), -PLAT_EBUSY);  /* the negotiated limit */
	for (unsigned i = 0; i < c.sess.max_inflight; i++) {
		EXPECT_EQ_INT(apfpc_recv(&c, &r), 0);
		seen |= 1u << (r.hdr.id % 32);
	}
	EXPECT_EQ_INT(seen, sent);
	EXPECT_EQ_INT(__builtin_popcount(seen), 8);
	apfpc_close(&c);
	server_stop(&s);
}

TEST(reconnects_after_the_server_drops)
{
	struct server s;
	struct apfpc c;
	struct proto_client_reply r;
	struct apfpc_cfg cfg;

	server_start(&s, SERVE, 2);             /* every connection ends after 2 requests */
	cfg = cfg_for(&s, 2, 5000);
	EXPECT_EQ_INT(apfpc_open(&c, &cfg), 0);
	for (int i = 0; i < 5; i++)
		EXPECT_EQ_INT(apfpc_call(&c, PROTO_OP_PING, NULL, &r), 0);
	EXPECT_EQ_INT(c.reconnected, 2);
	EXPECT_EQ_INT(s.connections, 3);
	apfpc_close(&c);
	/* without reconnects the third call fails, in words */
	cfg.reconnects = 0;
	EXPECT_EQ_INT(apfpc_open(&c, &cfg), 0);
	EXPECT_EQ_INT(apfpc_call(&c, PROTO_OP_PING, NULL, &r), 0);
	EXPECT_EQ_INT(apfpc_call(&c, PROTO_OP_PING, NULL, &r), 0);
	int rc = apfpc_call(&c, PROTO_OP_PING, NULL, &r);
	EXPECT(rc == -ECONNRESET || rc == -EPIPE);
	EXPECT(strstr(c.err, "closed the connection") || strstr(c.err, "sending to"));
	apfpc_close(&c);
	server_stop(&s);
}

/* A REMOVE may have been done before the connection broke: it is not
 * sent again on its own, the caller hears of the break. */
TEST(no_repeat_of_mutations)
{
	struct server s;
	struct apfpc c;
	struct proto_client_reply r;
	struct apfpc_cfg cfg;
	struct proto_dirop_req q = { .name = { "f", 1 } };

	server_start(&s, SERVE, 1);             /* every connection ends after 1 request */
	cfg = cfg_for(&s, 3, 5000);
	EXPECT_EQ_INT(apfpc_open(&c, &cfg), 0);
	EXPECT_EQ_INT(apfpc_call(&c, PROTO_OP_PING, NULL, &r), 0);
	int rc = apfpc_call(&c, PROTO_OP_REMOVE, &q, &r);
	EXPECT(rc == -ECONNRESET || rc == -EPIPE);
	EXPECT_EQ_INT(c.reconnected, 0);
	EXPECT_EQ_INT(s.connections, 1);
	/* a REMOVE that never left is sent on a new connection */
	EXPECT_EQ_INT(apfpc_call(&c, PROTO_OP_REMOVE, &q, &r), -PLAT_ESTALE);   /* forged handle */
	EXPECT_EQ_INT(c.reconnected, 1);
	EXPECT(strstr(c.err, "REMOVE") != NULL);
	apfpc_close(&c);
	server_stop(&s);
}

TEST(timeouts_refusals_and_wrong_secret)
{
	struct server s;
	struct apfpc c;
	struct apfpc_cfg cfg;

	server_start(&s, SILENT, 0);            /* accepts, never answers */
	cfg = cfg_for(&s, 0, 300);
	double t0 = now_s();
	EXPECT_EQ_INT(apfpc_open(&c, &cfg), -ETIMEDOUT);
	double took = now_s() - t0;
	EXPECT(took >= 0.25 && took < 3);
	EXPECT(strstr(c.err, "no reply from 127.0.0.1") != NULL);
	apfpc_close(&c);
	server_stop(&s);

	uint16_t closed = s.port;               /* nobody listens there any more */
	cfg.port = closed;
	EXPECT_EQ_INT(apfpc_open(&c, &cfg), -ECONNREFUSED);
	EXPECT(strstr(c.err, "connection refused") || strstr(c.err, "Connection refused"));
	apfpc_close(&c);

	server_start(&s, SERVE, 0);
	cfg = cfg_for(&s, 0, 5000);
	cfg.secret = (const uint8_t *)"not the secret at all, 32 bytes.";
	EXPECT_EQ_INT(apfpc_open(&c, &cfg), -EACCES);
	EXPECT(strstr(c.err, "authentication failed") != NULL);
	apfpc_close(&c);
	server_stop(&s);
}

/* `apfp admin` prints each piece as it comes (flushed before it asks for
 * the next), takes an empty piece of a running command as "ask again",
 * and ends with the command's result. */
TEST(admin_cli_streams_pieces)
{
	struct server s;
	struct apfpc c;
	struct apfpc_cfg cfg;
	char path[] = "/tmp/apfp-admin-out-XXXXXX", got[32] = { 0 };
	char *argv[] = { "admin", "scrub", "/vol", NULL };

	int out = mkstemp(path);
	EXPECT(out >= 0);
	if (out < 0)
		return;
	unlink(path);
	memset(&admin_srv, 0, sizeof(admin_srv));
	admin_srv.out_fd = out;
	server_start(&s, SERVE, 0);
	cfg = cfg_for(&s, 0, 5000);
	EXPECT_EQ_INT(apfpc_open(&c, &cfg), 0);
	/* The CLI's stdout is the file while it runs. */
	fflush(stdout);
	int saved = dup(STDOUT_FILENO);
	dup2(out, STDOUT_FILENO);
	int rc = apfp_admin(&c, 3, argv);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	EXPECT_EQ_INT(rc, 0);
	EXPECT_EQ_INT(admin_srv.step, 3);
	EXPECT_EQ_INT(admin_srv.bad, 0);
	EXPECT_EQ_INT(admin_srv.flushed, 2);
	EXPECT_EQ_INT((int)pread(out, got, sizeof(got) - 1, 0), 14);
	EXPECT_STREQ(got, "line 1\nline 2\n");
	apfpc_close(&c);
	server_stop(&s);
	close(out);
}

TEST_MAIN()
