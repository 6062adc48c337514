/*
 * The file protocol server (docs/protocol.md) on tcp/2049: connections on
 * lwIP's raw API (net/apfp.c), the portable server core (proto/server.h)
 * running on worker threads (net/apfp_work.c), the counters and the
 * `proto` shell command (net/apfp_cmds.c).
 *
 * Threading: lwIP callbacks (under net_lock) only move bytes: they cut the
 * stream into frames (header first, so a length over the connection's
 * limit is never read or allocated) and queue them on the connection; the
 * workers run the handshake and the server core on each frame in arrival
 * order, never under the lock, and hand the executed frame with its reply
 * back to the network thread, which sends the reply (net/apfp_conn.h).
 * Each CPU (up to APFP_QUEUES) has its own workers and run queue; a
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

/* Where a frame's time goes between the stages of a connection, per
 * connection and in total (`proto stat`): the reader (lwIP callbacks on the
 * network thread), the hand-off to a worker (often on another CPU), the
 * worker, and the reply back through lwIP.  Updated under net_lock; two
 * time_ns() reads per frame and one per receive callback. */
#define APFP_GAP_BUCKETS 8
/* Upper bounds (microseconds) of the receive-callback gap buckets; the last
 * bucket holds the rest. */
#define APFP_GAP_BOUNDS_US { 100, 500, 1000, 2000, 5000, 20000, 100000 }
#define APFP_OPS 128                            /* opcodes counted (proto/wire.h stays under it) */

struct apfp_waits {
	uint64_t wakes, wake_ns, wake_max_ns;           /* connection queued for a worker -> a worker took it */
	uint64_t handoffs, handoff_ns, handoff_max_ns;  /* frame whole -> a worker started it */
	uint64_t busy_ns;                               /* workers executing frames */
	uint64_t stalls, stall_ns;                      /* reader waiting for the memory bound */
	uint64_t feed_ns;                               /* reader copying frames out of lwIP's buffers */
	uint64_t replies, reply_wait_ns, reply_wait_max_ns; /* reply queued -> its last byte given to tcp_write */
	uint64_t bytes_sent, bytes_acked;               /* given to tcp_write / acknowledged by the peer */
	uint64_t recv_cbs, recv_bytes;                  /* receive callbacks with data */
	uint64_t recv_gap[APFP_GAP_BUCKETS];            /* time since the previous one (or the accept) */
	uint64_t recv_gap_long_ns;                      /* sum of the gaps over 2 ms */
	uint64_t recved_calls, recved_bytes, wnd_updates; /* tcp_recved(); those that sent a window update */
};

struct apfp_stats {
	uint64_t accepted, refused_limit, refused_nomem, handshake_timeouts, idle_drops;
	uint64_t sessions_keyed, sessions_anon, auth_failures, protocol_closes, peer_closes;
	uint64_t frames_in, frames_out, bytes_in, bytes_out, requests, request_errors;
	uint64_t mem, mem_high;                  /* bytes held in frames and replies */
	uint64_t read_stalls;                    /* times a connection waited for memory */
	uint64_t remote_runs;                    /* connections run by another CPU's worker */
	uint64_t tags_on_copy, tags_late;        /* frame tags computed while copied in / by the worker */
	struct apfp_waits w;                     /* all connections, closed ones included */
	uint64_t op_runs[APFP_OPS], op_busy_ns[APFP_OPS]; /* frames executed by opcode, handshake included */
};

struct apfp_conn_info {
	uint32_t peer_ip;
	uint16_t peer_port;
	const char *state;
	uint64_t age_ns, idle_ns;
	uint64_t frames_in, frames_out;
	uint32_t mem;
	bool anonymous;
	struct apfp_waits w;
};

/* apfp.c */
void apfp_get_stats(struct apfp_stats *s);
/* Connections in use now, up to max; returns how many were filled. */
unsigned apfp_list(struct apfp_conn_info *out, unsigned max);
unsigned apfp_open_count(void);

/* apfp_work.c: configuration as started: false when the server is off (why: a word). */
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
