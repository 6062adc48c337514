/*
 * The file protocol server (docs/protocol.md) on tcp/2049: connections on
 * lwIP's raw API (net/apfp.c), the portable server core (proto/server.h)
 * running on worker threads, the counters and the `proto` shell command
 * (net/apfp_cmds.c).
 *
 * Threading: lwIP callbacks (under net_lock) only move bytes: they cut the
 * stream into frames (header first, so a length over the connection's
 * limit is never read or allocated) and queue them on the connection; the
 * workers run the handshake and the server core on each frame in arrival
 * order, outside the lock, then queue the reply and send it under the
 * lock.  Each CPU (up to APFP_QUEUES) has its own workers and run queue; a
 * connection is queued on the CPU that found its frame (the network
 * thread's CPU), elsewhere only when no local worker waits.  One worker
 * owns a connection at a time (its handshake, session
 * and request table), so frames of one connection are processed in order;
 * different connections run on different workers.
 *
 * Limits (all counted): connections (proto_max_conn, default 64; one more
 * is answered CONNLIMIT and closed), the handshake deadline (10 s), the idle
 * deadline (proto_idle_s, default 300 s without a frame in or a byte
 * acknowledged and nothing executing), the negotiated frame limit (checked
 * on the header, before the body is read), and memory: a connection starts
 * reading a new frame only while its frames and replies hold less than
 * APFP_CONN_MEM and all connections together less than APFP_TOTAL_MEM;
 * until then its bytes stay unacknowledged in lwIP and TCP's window pushes
 * back on the client.
 */
#ifndef NET_APFP_H
#define NET_APFP_H

#include <stdint.h>
#include <stdbool.h>

#define APFP_PORT        2049
#define APFP_CONN_CAP    128                    /* connection slots; proto_max_conn <= this */
#define APFP_CONN_MEM    (4u << 20)             /* frames + replies of one connection */
#define APFP_TOTAL_MEM   (64u << 20)            /* ... of all connections */
#define APFP_QUEUES      4                      /* CPUs with workers (the first ones) */
#define APFP_WORKERS_PER_CPU 2

struct apfp_stats {
	uint64_t accepted, refused_limit, refused_nomem, handshake_timeouts, idle_drops;
	uint64_t sessions_keyed, sessions_anon, auth_failures, protocol_closes, peer_closes;
	uint64_t frames_in, frames_out, bytes_in, bytes_out, requests, request_errors;
	uint64_t mem, mem_high;                  /* bytes held in frames and replies */
	uint64_t read_stalls;                    /* times a connection waited for memory */
	uint64_t remote_runs;                    /* connections run by another CPU's worker */
	uint64_t tags_on_copy, tags_late;        /* frame tags computed while copied in / by the worker */
};

struct apfp_conn_info {
	uint32_t peer_ip;
	uint16_t peer_port;
	const char *state;
	uint64_t age_ns, idle_ns;
	uint64_t frames_in, frames_out;
	uint32_t mem;
	bool anonymous;
};

/* apfp.c */
void apfp_get_stats(struct apfp_stats *s);
/* Connections in use now, up to max; returns how many were filled. */
unsigned apfp_list(struct apfp_conn_info *out, unsigned max);
unsigned apfp_open_count(void);
/* Configuration as started: false when the server is off (why: a word). */
bool apfp_running(const char **why);
unsigned apfp_max_conn(void);
unsigned apfp_idle_s(void);
bool apfp_keyed(void);          /* a token is configured */
bool apfp_anon(void);           /* anonymous read-only sessions allowed */

/* apfp_admin.c: add the ADMIN operation (remote administration,
 * docs/protocol.md §5.4) to the server's operations; once, before serving. */
struct proto_server;
void apfp_admin_attach(struct proto_server *srv);

#endif
