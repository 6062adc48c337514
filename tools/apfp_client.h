/*
 * Host client library of the file protocol (docs/protocol.md): a TCP
 * connection to one server around the portable client core
 * (proto/client.h) and handshake (proto/auth.h), with timeouts on every
 * wait and reconnection.
 *
 * Call order:
 *   apfpc_open(&c, &cfg)          connect + handshake (bounded by cfg.timeout_ms)
 *   apfpc_call(&c, op, req, &rep) one request, its reply; when the connection
 *                                 is broken it is made again (up to
 *                                 cfg.reconnects times, backing off) and the
 *                                 request sent on it, unless the whole request
 *                                 had left already and the operation is not
 *                                 one the server may run twice (PING, reads,
 *                                 lookups, COMMIT...): a REMOVE that may have
 *                                 been done is never repeated behind the
 *                                 caller's back
 *   or, pipelined: apfpc_send() up to the negotiated max_inflight, then
 *                  apfpc_recv() the replies in whatever order they come
 *   apfpc_close(&c)
 * Every failure returns a negative errno and leaves a sentence in c.err
 * ("connecting to 127.0.0.1:2049: connection refused", "server refused
 * HELLO: too many connections (CONNLIMIT)", "no reply in 5000 ms", ...).
 * Not thread safe: one thread per connection.
 */
#ifndef TOOLS_APFP_CLIENT_H
#define TOOLS_APFP_CLIENT_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>
#include "proto/client.h"

struct apfpc_cfg {
	const char *host;               /* dotted quad or name */
	uint16_t port;
	const uint8_t *secret;          /* NULL with anonymous */
	size_t secret_len;
	bool anonymous;
	unsigned timeout_ms;            /* each connect, send and receive */
	unsigned max_inflight;          /* asked for (the server may grant fewer) */
	unsigned reconnects;            /* tries after a broken connection (0: none) */
	const char *client_id;
	bool as_ids;                    /* headers carry uid/gid below, not this process's ids */
	uint32_t uid, gid;
};

struct apfpc {
	struct apfpc_cfg cfg;
	int fd;
	struct proto_session sess;
	struct proto_client cl;
	uint8_t *buf;                   /* one frame in or out */
	size_t cap;
	uint64_t reconnected;           /* times the connection was made again */
	char err[320];
};

int apfpc_open(struct apfpc *c, const struct apfpc_cfg *cfg);
void apfpc_close(struct apfpc *c);
/* Send one request: its id in *id; -EBUSY at max_inflight. */
int apfpc_send(struct apfpc *c, uint8_t op, const void *req, uint32_t *id);
/* Receive one reply (any outstanding request): 0 with *r filled (r->err is
 * the server's verdict as an errno), or a negative errno: the connection
 * is then unusable (closed). */
int apfpc_recv(struct apfpc *c, struct proto_client_reply *r);
/* Send and wait for that reply; r->err says whether the server refused it. */
int apfpc_call(struct apfpc *c, uint8_t op, const void *req, struct proto_client_reply *r);

#endif
