/*
 * Inside the file protocol server (net/apfp.h): a connection and its
 * buffers, shared by its two halves.  net/apfp.c is the lwIP side (slots,
 * memory accounting, cutting frames, sending replies, the callbacks), all
 * under net_lock; net/apfp_work.c is the worker side (run queues, the
 * handshake and the server core on each frame, the start).
 *
 * The workers never take net_lock: a connection's whole frames, its done
 * frames, its queued/busy flags and the run queues are under wlock (a
 * spinlock, taken after net_lock when both are held).  A worker puts each
 * executed frame with its reply on the connection's done list and wakes
 * the network thread, which finishes it under net_lock (apfp_complete():
 * memory, state, sending, reading on).  Before, a worker slept on net_lock
 * for each frame, and the network thread, taking it again for its next
 * receive batch before the woken worker ran (milliseconds under TCG),
 * kept it waiting for 0.3-0.9 s of a 2 s 128 MiB put.
 */
#ifndef NET_APFP_CONN_H
#define NET_APFP_CONN_H

#include "net/apfp.h"
#include "proto/server.h"
#include "proto/auth.h"
#include "kernel/time.h"

#include <stddef.h>

#define PEND_MAX 64             /* received pbuf chains not yet framed */

enum conn_state { CS_FREE, CS_HANDSHAKE, CS_OPEN, CS_CLOSING };

struct buf {
	struct buf *next;
	size_t len, cap;        /* bytes of data / allocated (accounted) */
	uint64_t ready_ns;      /* a frame: whole; a reply: queued (the wait counters) */
	struct buf *reply;      /* a done frame: its reply (may be NULL) */
	bool close, handshake;  /* a done frame: close after the reply; it was a handshake step */
	struct proto_rxtag tag; /* a received frame's tag, computed as it was copied in */
	uint8_t data[];
};

struct pbuf;
struct tcp_pcb;

struct conn {
	enum conn_state state;
	struct tcp_pcb *pcb;            /* NULL once closed or dropped by lwIP */
	uint32_t peer_ip;
	uint16_t peer_port;
	uint64_t born_ns, last_ns;
	uint32_t max_body;              /* negotiated, set when OPEN */
	uint64_t rx_seq;                /* sequence number of the next frame read when OPEN */
	bool anonymous;
	/* reader, under net_lock */
	struct pbuf *pend[PEND_MAX];    /* ring of received chains */
	unsigned pend_head, pend_n;
	struct buf *rx;                 /* the frame being read */
	size_t rx_have;
	bool rx_last;                   /* the frame being read is over the limit: read no more */
	bool stop_reading, peer_closed, close_after_send, stalled;
	bool fatal;                     /* the core closed it: later frames are not run */
	bool hs_step;                   /* a handshake frame is queued or being processed */
	struct buf *in_head, *in_tail;  /* whole frames for the worker (wlock) */
	struct buf *done_head, *done_tail; /* executed frames for apfp_complete() (wlock) */
	struct buf *out_head, *out_tail;/* replies lwIP has not taken yet */
	size_t out_off;                 /* bytes of out_head already written */
	size_t mem;                     /* accounted bytes of rx, in and out */
	bool queued, busy;              /* on the run list / owned by a worker (wlock) */
	bool on_done;                   /* on the list apfp_complete() works through (wlock) */
	struct conn *done_next;
	bool bulk;                      /* the newest frame is a READ or WRITE (schedule) */
	struct conn *run_next;
	uint64_t frames_in, frames_out;
	uint64_t queued_ns, stall_ns, last_rx_ns; /* since when: on a run list, stalled, last receive callback */
	struct apfp_waits w;            /* under net_lock */
	/* the worker that holds it (busy) */
	bool wfatal;                    /* a frame closed it: run no later ones */
	struct proto_auth_server auth;
	struct proto_session sess;
	struct proto_reqtab tab;
};

extern struct apfp_stats apfp_st;       /* updated under net_lock (mem, waits) or atomically */
#define ADD(field, v) __atomic_add_fetch(&apfp_st.field, (v), __ATOMIC_RELAXED)

/* A wait of one stage ended (net_lock held): into the connection's and the
 * total counters. */
#define WAIT_ADD(c, field, v) do { (c)->w.field += (v); apfp_st.w.field += (v); } while (0)
static inline void wait_max(uint64_t *m, uint64_t v)
{
	if (v > *m)
		*m = v;
}

static inline void list_push(struct buf **head, struct buf **tail, struct buf *b)
{
	b->next = NULL;
	if (*tail)
		(*tail)->next = b;
	else
		*head = b;
	*tail = b;
}

static inline struct buf *list_pop(struct buf **head, struct buf **tail)
{
	struct buf *b = *head;
	if (b) {
		*head = b->next;
		if (!*head)
			*tail = NULL;
	}
	return b;
}

static inline uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* apfp.c (net_lock held unless said) */
extern const char *const apfp_state_names[];
struct buf *buf_new(size_t cap);        /* any context */
const char *peer_str(const struct conn *c, char *b, size_t n);  /* any context */
void mem_add(struct conn *c, size_t n);
void mem_sub(struct conn *c, size_t n);
void drop_pending(struct conn *c);
void conn_free(struct conn *c);
/* Queue a reply (may be NULL or empty: dropped). */
void conn_reply(struct conn *c, struct buf *out);
int conn_send(struct conn *c);          /* an err_t */
int conn_feed(struct conn *c);          /* an err_t */
void resume_stalled(void);
int apfp_listen(void);                  /* net_lock not held: accept on APFP_PORT */

/* apfp_work.c */
void work_push(struct conn *c, struct buf *f);  /* net_lock held: a whole frame for the workers */
/* No worker holds it, nothing waits for one or for apfp_complete(): the
 * lwIP side may free it. */
bool conn_idle(struct conn *c);
struct conn *done_take_all(void);       /* the connections with done frames, chained by done_next */
struct buf *done_take(struct conn *c);  /* its done frames, chained by next */
const struct proto_server_cfg *apfp_auth_cfg(void);

#endif
