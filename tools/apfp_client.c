/*
 * The host client library (tools/apfp_client.h): blocking sockets, every
 * wait bounded by poll() with the configured timeout.
 */
#define _GNU_SOURCE
#include "tools/apfp_client.h"
#include "platform/platform.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int fail(struct apfpc *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct apfpc *c, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	return rc;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void drop(struct apfpc *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* Wait until fd is ready for `events` or the deadline: 0, -ETIMEDOUT. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		uint64_t now = now_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		struct pollfd p = { fd, events, 0 };
		int n = poll(&p, 1, (int)(deadline - now));
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

static int send_all(struct apfpc *c, const uint8_t *p, size_t n)
{
	uint64_t deadline = now_ms() + c->cfg.timeout_ms;

	while (n) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int rc = wait_fd(c->fd, POLLOUT, deadline);
			if (rc < 0)
				return fail(c, rc, "sending to %s:%u: the server took nothing for %u ms", c->cfg.host,
					    c->cfg.port, c->cfg.timeout_ms);
			continue;
		}
		return fail(c, -errno, "sending to %s:%u: %s", c->cfg.host, c->cfg.port, strerror(errno));
	}
	return 0;
}

static int recv_exact(struct apfpc *c, uint8_t *p, size_t n, uint64_t deadline)
{
	while (n) {
		ssize_t r = recv(c->fd, p, n, MSG_DONTWAIT);
		if (r > 0) {
			p += r;
			n -= (size_t)r;
			continue;
		}
		if (r == 0)
			return fail(c, -ECONNRESET, "%s:%u closed the connection", c->cfg.host, c->cfg.port);
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			int rc = wait_fd(c->fd, POLLIN, deadline);
			if (rc < 0)
				return fail(c, rc, "no reply from %s:%u in %u ms", c->cfg.host, c->cfg.port,
					    c->cfg.timeout_ms);
			continue;
		}
		return fail(c, -errno, "receiving from %s:%u: %s", c->cfg.host, c->cfg.port, strerror(errno));
	}
	return 0;
}

/* One whole frame (header, body, tag if flagged) into c->buf: its length,
 * or a negative errno.  The length is checked before the body is read. */
static int recv_frame(struct apfpc *c, uint32_t max_body)
{
	uint64_t deadline = now_ms() + c->cfg.timeout_ms;
	int rc;

	if ((rc = recv_exact(c, c->buf, PROTO_HDR_SIZE, deadline)) < 0)
		return rc;
	uint32_t len = (uint32_t)c->buf[12] | (uint32_t)c->buf[13] << 8 | (uint32_t)c->buf[14] << 16 |
		       (uint32_t)c->buf[15] << 24;
	size_t tag = c->buf[6] & PROTO_F_TAGGED ? PROTO_TAG_SIZE : 0;
	if (len > max_body || PROTO_HDR_SIZE + (size_t)len + tag > c->cap)
		return fail(c, -EMSGSIZE, "%s:%u sent a frame of %u bytes, more than the %u agreed", c->cfg.host,
			    c->cfg.port, len, max_body);
	if ((rc = recv_exact(c, c->buf + PROTO_HDR_SIZE, len + tag, deadline)) < 0)
		return rc;
	return (int)(PROTO_HDR_SIZE + len + tag);
}

static int dial(struct apfpc *c)
{
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *ai;
	char port[8];
	int rc, one = 1;

	snprintf(port, sizeof(port), "%u", c->cfg.port);
	if ((rc = getaddrinfo(c->cfg.host, port, &hints, &ai)) != 0)
		return fail(c, -EHOSTUNREACH, "%s: %s", c->cfg.host, gai_strerror(rc));
	c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->fd < 0) {
		freeaddrinfo(ai);
		return fail(c, -errno, "socket: %s", strerror(errno));
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	rc = connect(c->fd, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (rc < 0 && errno != EINPROGRESS) {
		rc = -errno;
		drop(c);
		return fail(c, rc, "connecting to %s:%u: %s", c->cfg.host, c->cfg.port, strerror(-rc));
	}
	if (rc < 0) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if ((rc = wait_fd(c->fd, POLLOUT, now_ms() + c->cfg.timeout_ms)) < 0) {
			drop(c);
			return fail(c, rc, "connecting to %s:%u: no answer in %u ms", c->cfg.host, c->cfg.port,
				    c->cfg.timeout_ms);
		}
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		if (soerr) {
			drop(c);
			return fail(c, -soerr, "connecting to %s:%u: %s", c->cfg.host, c->cfg.port, strerror(soerr));
		}
	}
	return 0;
}

static int handshake(struct apfpc *c)
{
	struct proto_client_cfg pc = {
		.psk = c->cfg.anonymous ? NULL : c->cfg.secret, .psk_len = c->cfg.anonymous ? 0 : c->cfg.secret_len,
		.client_id = c->cfg.client_id ? c->cfg.client_id : "apfp", .want_anon = c->cfg.anonymous,
		.max_body = PROTO_MAX_BODY,
		.max_inflight = (uint16_t)(c->cfg.max_inflight ? c->cfg.max_inflight : PROTO_MAX_INFLIGHT),
	};
	struct proto_auth_client a;
	uint8_t nonce[PROTO_NONCE_SIZE];
	size_t n = 0;
	int rc;

	if ((rc = plat_random(nonce, sizeof(nonce))) < 0)
		return fail(c, rc, "no random bytes for the handshake: %s", strerror(-rc));
	proto_authc_init(&a, &pc, nonce, &c->sess);
	if ((rc = proto_authc_step(&a, NULL, 0, c->buf, c->cap, &n)) < 0)
		return fail(c, rc, "%s", a.err.msg);
	while (a.state != PROTO_AUTH_DONE) {
		if ((rc = send_all(c, c->buf, n)) < 0)
			return rc;
		int len = recv_frame(c, PROTO_HANDSHAKE_MAX_BODY);
		if (len < 0)
			return len;
		if ((rc = proto_authc_step(&a, c->buf, (size_t)len, c->buf, c->cap, &n)) < 0)
			return fail(c, rc, "%s", a.err.msg);
	}
	proto_wipe(&a, sizeof(a));
	proto_client_init(&c->cl, &c->sess);
	return 0;
}

static int connect_once(struct apfpc *c)
{
	int rc = dial(c);

	if (rc == 0 && (rc = handshake(c)) < 0)
		drop(c);
	return rc;
}

int apfpc_open(struct apfpc *c, const struct apfpc_cfg *cfg)
{
	memset(c, 0, sizeof(*c));
	c->cfg = *cfg;
	if (!c->cfg.timeout_ms)
		c->cfg.timeout_ms = 10000;
	c->fd = -1;
	c->cap = PROTO_HDR_SIZE + PROTO_MAX_BODY + PROTO_TAG_SIZE;
	if (!(c->buf = malloc(c->cap)))
		return fail(c, -ENOMEM, "out of memory");
	return connect_once(c);
}

void apfpc_close(struct apfpc *c)
{
	drop(c);
	if (c->buf)
		proto_wipe(&c->sess, sizeof(c->sess));
	free(c->buf);
	c->buf = NULL;
}

int apfpc_send(struct apfpc *c, uint8_t op, const void *req, uint32_t *id)
{
	struct proto_err e;
	int n;

	if (c->fd < 0)
		return fail(c, -ENOTCONN, "not connected to %s:%u", c->cfg.host, c->cfg.port);
	uint32_t uid = c->cfg.as_ids ? c->cfg.uid : (uint32_t)getuid();
	uint32_t gid = c->cfg.as_ids ? c->cfg.gid : (uint32_t)getgid();
	if ((n = proto_client_request(&c->cl, op, uid, gid, req, c->buf, c->cap, id, &e)) < 0)
		return fail(c, n, "%s", e.msg);
	int rc = send_all(c, c->buf, (size_t)n);
	if (rc < 0)
		drop(c);
	return rc;
}

int apfpc_recv(struct apfpc *c, struct proto_client_reply *r)
{
	struct proto_err e;
	int len, rc;

	if (c->fd < 0)
		return fail(c, -ENOTCONN, "not connected to %s:%u", c->cfg.host, c->cfg.port);
	if ((len = recv_frame(c, c->sess.max_body)) < 0) {
		drop(c);
		return len;
	}
	if ((rc = proto_client_reply(&c->cl, c->buf, (size_t)len, r, &e)) < 0) {
		drop(c);
		return fail(c, rc, "%s", e.msg);
	}
	if (r->err)
		fail(c, r->err, "%s", e.msg);
	return 0;
}

/* Operations a server runs twice without harm: repeated after a reconnect. */
static bool idempotent(uint8_t op)
{
	switch (op) {
	case PROTO_OP_PING: case PROTO_OP_EXPORTS: case PROTO_OP_GETATTR: case PROTO_OP_LOOKUP:
	case PROTO_OP_READLINK: case PROTO_OP_READ: case PROTO_OP_READDIR: case PROTO_OP_READDIRPLUS:
	case PROTO_OP_FSSTAT: case PROTO_OP_SEEK: case PROTO_OP_GETXATTR: case PROTO_OP_LISTXATTR:
	case PROTO_OP_SNAP_LIST: case PROTO_OP_COMMIT: case PROTO_OP_FSYNC:
		return true;
	default:
		return false;
	}
}

int apfpc_call(struct apfpc *c, uint8_t op, const void *req, struct proto_client_reply *r)
{
	uint32_t id;
	int rc;

	for (unsigned attempt = 0;; attempt++) {
		bool sent = false;      /* the whole request left: the server may have run it */
		if (c->fd < 0) {
			rc = fail(c, -ENOTCONN, "not connected to %s:%u", c->cfg.host, c->cfg.port);
		} else if ((rc = apfpc_send(c, op, req, &id)) == 0) {
			sent = true;
			if ((rc = apfpc_recv(c, r)) == 0)
				return r->err ? r->err : 0;
		}
		if (c->fd >= 0 || attempt >= c->cfg.reconnects || (sent && !idempotent(op)))
			return rc;
		/* the connection broke: make it again (backing off) and repeat */
		usleep((useconds_t)(100000u << (attempt < 4 ? attempt : 4)));
		if (connect_once(c) == 0)
			c->reconnected++;
	}
}
