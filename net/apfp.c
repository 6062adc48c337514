/*
 * The file protocol server's connections (net/apfp.h): lwIP raw API under
 * net_lock for the bytes, worker threads for the protocol.
 *
 * A connection's life:
 *   accept -> HANDSHAKE: frames are read one at a time (the handshake is
 *             lock-step) and fed to proto_auths_step() on a worker;
 *          -> OPEN: frames are read while memory allows and fed to
 *             proto_server_handle() on a worker, in arrival order;
 *          -> CLOSING: our side is closed or lwIP dropped the pcb; the
 *             slot is freed once no worker holds it.
 * The bytes of a frame are acknowledged (tcp_recved) only as they are
 * copied into the frame's buffer, so a connection that may not start a
 * new frame (memory bound, handshake step in progress) leaves its data in
 * lwIP and the client's TCP window closes.
 */
#include "net/net.h"
#include "net/apfp.h"
#include "net/apfp_fs.h"
#include "proto/server.h"
#include "proto/auth.h"
#include "proto/sha256.h"
#include "boot/bootinfo.h"
#include "kernel/errno.h"
#include "kernel/initcall.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/mm.h"
#include "kernel/random.h"
#include "kernel/sched.h"
#include "kernel/smp.h"
#include "kernel/sync.h"
#include "kernel/time.h"

#include "lwip/tcp.h"

KERNEL_ARG_UINT(proto_max_conn, 1, APFP_CONN_CAP, "file protocol: most connections at once (default 64)");
KERNEL_ARG_UINT(proto_idle_s, 2, 86400, "file protocol: drop a connection idle this many seconds (default 300)");
KERNEL_ARG_FLAG(proto_anon, "file protocol: allow anonymous read-only sessions although a token is set");

#define PEND_MAX 64             /* received pbuf chains not yet framed */
#define SMALL_REPLY 4096        /* reply body room of operations with small replies */

enum conn_state { CS_FREE, CS_HANDSHAKE, CS_OPEN, CS_CLOSING };
static const char *const state_names[] = { "free", "handshake", "open", "closing" };

struct buf {
	struct buf *next;
	size_t len, cap;        /* bytes of data / allocated (accounted) */
	struct proto_rxtag tag; /* a received frame's tag, computed as it was copied in */
	uint8_t data[];
};

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
	struct buf *in_head, *in_tail;  /* whole frames for the worker */
	struct buf *out_head, *out_tail;/* replies lwIP has not taken yet */
	size_t out_off;                 /* bytes of out_head already written */
	size_t mem;                     /* accounted bytes of rx, in and out */
	bool queued, busy;              /* on the run list / owned by a worker */
	bool bulk;                      /* the newest frame is a READ or WRITE (schedule) */
	struct conn *run_next;
	uint64_t frames_in, frames_out;
	/* the worker that holds it (busy) */
	struct proto_auth_server auth;
	struct proto_session sess;
	struct proto_reqtab tab;
};

static struct conn conns[APFP_CONN_CAP];
static struct apfp_stats st;            /* updated under net_lock (mem) or atomically */
static uint64_t total_mem;              /* under net_lock */
/* Work goes to the workers of the CPU that found it (the network thread's,
 * usually): waking a thread on an idle other CPU costs milliseconds under
 * TCG (4x slower round trips measured), a local switch does not.  Only
 * when none of the local workers waits does it go to a CPU that has one.
 * Bulk data (READ and WRITE frames) goes the other way, to another CPU's
 * workers first: a worker summing and copying a megabyte on the network
 * thread's CPU takes turns with it while the other CPUs idle (a 128 MiB put
 * kept one CPU busy and the other ~95 % idle).  A busy connection keeps
 * its worker, so a stream of frames costs one remote wake-up, not one
 * per frame. */
struct runq {
	struct conn *head, *tail;
	unsigned idle;                  /* workers waiting on it (net_lock) */
	struct waitq wq;
};
static struct runq runqs[APFP_QUEUES];
static unsigned nqueues = 1;
static struct mutex rl_lock;            /* the rate limiter is shared by all handshakes */
static struct proto_ratelimit ratelimit;
static struct proto_server srv;
static struct proto_server_cfg auth_cfg;
static unsigned max_conn = PROTO_DEFAULT_MAX_CONN, idle_s = PROTO_IDLE_TIMEOUT_S;
static bool running;
static const char *off_why = "not started";

#define ADD(field, v) __atomic_add_fetch(&st.field, (v), __ATOMIC_RELAXED)

static const char *peer_str(const struct conn *c, char *b, size_t n)
{
	uint32_t a = c->peer_ip;
	ksnprintf(b, n, "%u.%u.%u.%u:%u", a & 0xff, (a >> 8) & 0xff, (a >> 16) & 0xff, a >> 24, c->peer_port);
	return b;
}

static struct buf *buf_new(size_t cap)
{
	struct buf *b = kmalloc(sizeof(*b) + cap);
	if (b) {
		b->next = NULL;
		b->len = 0;
		b->cap = cap;
		b->tag.begun = b->tag.done = false;
	}
	return b;
}

/* Memory accounting (net_lock held). */
static void mem_add(struct conn *c, size_t n)
{
	c->mem += n;
	total_mem += n;
	st.mem = total_mem;
	if (total_mem > st.mem_high)
		st.mem_high = total_mem;
}

static void mem_sub(struct conn *c, size_t n)
{
	c->mem -= n;
	total_mem -= n;
	st.mem = total_mem;
}

static void list_push(struct buf **head, struct buf **tail, struct buf *b)
{
	b->next = NULL;
	if (*tail)
		(*tail)->next = b;
	else
		*head = b;
	*tail = b;
}

static struct buf *list_pop(struct buf **head, struct buf **tail)
{
	struct buf *b = *head;
	if (b) {
		*head = b->next;
		if (!*head)
			*tail = NULL;
	}
	return b;
}

/* ---- slots and the run list (net_lock held) ------------------------------------ */
static void schedule(struct conn *c)
{
	if (c->queued || c->busy)
		return;
	unsigned self = this_cpu()->index % nqueues, q = self;
	if (c->bulk) {
		for (unsigned i = 1; i < nqueues; i++)
			if (runqs[(self + i) % nqueues].idle) {
				q = (self + i) % nqueues;
				break;
			}
	} else {
		for (unsigned i = 0; i < nqueues && !runqs[q].idle; i++)
			if (runqs[i].idle)
				q = i;
	}
	ADD(remote_runs, q != self);
	struct runq *rq = &runqs[q];
	c->queued = true;
	c->run_next = NULL;
	if (rq->tail)
		rq->tail->run_next = c;
	else
		rq->head = c;
	rq->tail = c;
	waitq_wake_one(&rq->wq);
}

static void drop_pending(struct conn *c)
{
	while (c->pend_n) {
		pbuf_free(c->pend[c->pend_head]);
		c->pend_head = (c->pend_head + 1) % PEND_MAX;
		c->pend_n--;
	}
	if (c->rx) {
		mem_sub(c, c->rx->cap);
		kfree(c->rx);
		c->rx = NULL;
	}
}

static void conn_free(struct conn *c)
{
	struct buf *b;

	drop_pending(c);
	while ((b = list_pop(&c->in_head, &c->in_tail))) {
		mem_sub(c, b->cap);
		kfree(b);
	}
	while ((b = list_pop(&c->out_head, &c->out_tail))) {
		mem_sub(c, b->cap);
		kfree(b);
	}
	proto_wipe(&c->auth, sizeof(c->auth));
	proto_wipe(&c->sess, sizeof(c->sess));
	c->state = CS_FREE;
}

/* Close our side (graceful after what lwIP already holds, or abort) and
 * free the slot unless a worker holds it.  Returns what a callback of
 * this pcb must return. */
static err_t conn_shut(struct conn *c, bool abort)
{
	struct tcp_pcb *pcb = c->pcb;
	err_t r = ERR_OK;

	c->pcb = NULL;
	c->state = CS_CLOSING;
	c->stop_reading = true;
	if (pcb) {
		if (abort) {
			net_tcp_detach(pcb);
			tcp_abort(pcb);
			r = ERR_ABRT;
		} else {
			r = (err_t)net_tcp_close(pcb);
		}
	}
	drop_pending(c);
	if (!c->busy && !c->queued)
		conn_free(c);
	return r;
}

/* ---- sending (net_lock held) ------------------------------------------------------ */
static err_t conn_send(struct conn *c)
{
	struct buf *b;

	if (!c->pcb)
		return ERR_OK;
	while ((b = c->out_head)) {
		size_t left = b->len - c->out_off, room = tcp_sndbuf(c->pcb);
		size_t n = MIN(MIN(left, room), (size_t)0xffff);
		if (!n)
			break;
		bool more = n < left || b->next;
		if (tcp_write(c->pcb, b->data + c->out_off, (u16_t)n,
			      TCP_WRITE_FLAG_COPY | (more ? TCP_WRITE_FLAG_MORE : 0)) != ERR_OK)
			break;
		ADD(bytes_out, n);
		c->out_off += n;
		if (c->out_off == b->len) {
			list_pop(&c->out_head, &c->out_tail);
			mem_sub(c, b->cap);
			kfree(b);
			c->out_off = 0;
			ADD(frames_out, 1);
			c->frames_out++;
		}
	}
	tcp_output(c->pcb);
	if (!c->out_head && c->close_after_send && !c->busy && !c->in_head)
		return conn_shut(c, false);
	return ERR_OK;
}

/* ---- reading (net_lock held) -------------------------------------------------------- */
static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static size_t pend_bytes(const struct conn *c)
{
	size_t n = 0;
	for (unsigned i = 0; i < c->pend_n; i++)
		n += c->pend[(c->pend_head + i) % PEND_MAX]->tot_len;
	return n;
}

/* The tag of frame b covers its bytes up to the tag: feed the part of the
 * n bytes just copied to p that lies there, while they are fresh in the
 * cache (one pass over the data instead of a second one on the worker). */
static void tag_feed(struct buf *b, const uint8_t *p, size_t n)
{
	size_t at = (size_t)(p - b->data), end = b->len - PROTO_TAG_SIZE;

	if (b->tag.begun && at < end)
		proto_rxtag_update(&b->tag, p, MIN(n, end - at));
}

/* Copy n bytes from the pending chains into dst (NULL: only look at
 * them) and, when consume, drop and acknowledge them; when mac, dst is
 * in that frame and its tag is fed what was copied. */
static void pend_take(struct conn *c, uint8_t *dst, size_t n, bool consume, struct buf *mac)
{
	unsigned i = 0;
	size_t off = 0;

	while (n) {
		struct pbuf *p = c->pend[(c->pend_head + (consume ? 0 : i)) % PEND_MAX];
		size_t take = MIN(n, (size_t)p->tot_len - (consume ? 0 : off));
		pbuf_copy_partial(p, dst, (u16_t)take, consume ? 0 : (u16_t)off);
		if (mac)
			tag_feed(mac, dst, take);
		dst += take;
		n -= take;
		if (consume) {
			struct pbuf *rest = pbuf_free_header(p, (u16_t)take);
			tcp_recved(c->pcb, (u16_t)take);
			if (rest) {
				c->pend[c->pend_head] = rest;
			} else {
				c->pend_head = (c->pend_head + 1) % PEND_MAX;
				c->pend_n--;
			}
		} else if ((off += take) == p->tot_len) {
			i++;
			off = 0;
		}
	}
}

/* May this connection start reading a new frame of `len` bytes? */
static bool may_start(struct conn *c, size_t len)
{
	if (c->state == CS_HANDSHAKE && c->hs_step)
		return false;           /* lock-step: one handshake frame at a time */
	if (c->mem && c->mem + len > APFP_CONN_MEM)
		return false;
	if (total_mem + len > APFP_TOTAL_MEM)
		return false;
	return true;
}

static err_t conn_feed(struct conn *c)
{
	while (c->pcb && !c->stop_reading && c->pend_n) {
		if (!c->rx) {
			uint8_t h[PROTO_HDR_SIZE];
			if (pend_bytes(c) < PROTO_HDR_SIZE)
				break;
			pend_take(c, h, PROTO_HDR_SIZE, false, NULL);
			uint32_t limit = c->state == CS_OPEN ? c->max_body : PROTO_HANDSHAKE_MAX_BODY;
			uint32_t len = le32(h + 12);
			bool tagged = h[6] & PROTO_F_TAGGED;
			/* Over the limit: only the header is read; the core
			 * answers TOOBIG (or closes) and nothing more is read. */
			bool over = len > limit;
			size_t flen = PROTO_HDR_SIZE + (over ? 0 : len + (tagged ? PROTO_TAG_SIZE : 0));
			if (!may_start(c, flen)) {
				if (!c->stalled)
					ADD(read_stalls, 1);
				c->stalled = true;
				break;
			}
			c->stalled = false;
			if (!(c->rx = buf_new(flen))) {
				ADD(refused_nomem, 1);
				return conn_shut(c, true);
			}
			c->rx->len = flen;
			c->rx_have = 0;
			c->rx_last = over;
			mem_add(c, flen);
			/* Every frame that keeps an open keyed session going
			 * is tagged with the next sequence number; a guess
			 * that turns out wrong (the connection then closes)
			 * only costs the worker computing it again. */
			if (c->state == CS_OPEN && c->sess.keyed && tagged && !over)
				proto_rxtag_begin(&c->rx->tag, &c->sess, c->rx_seq++);
		}
		size_t n = MIN(pend_bytes(c), c->rx->len - c->rx_have);
		pend_take(c, c->rx->data + c->rx_have, n, true, c->rx);
		c->rx_have += n;
		ADD(bytes_in, n);
		if (c->rx_have < c->rx->len)
			break;
		proto_rxtag_end(&c->rx->tag);
		c->bulk = c->rx->data[5] == PROTO_OP_READ || c->rx->data[5] == PROTO_OP_WRITE;
		list_push(&c->in_head, &c->in_tail, c->rx);
		c->rx = NULL;
		c->last_ns = time_ns();
		c->frames_in++;
		ADD(frames_in, 1);
		if (c->state == CS_HANDSHAKE)
			c->hs_step = true;
		if (c->rx_last)
			c->stop_reading = true;
		schedule(c);
	}
	return ERR_OK;
}

/* Connections that waited for memory try again (net_lock held). */
static void resume_stalled(void)
{
	for (unsigned i = 0; i < APFP_CONN_CAP; i++)
		if (conns[i].state != CS_FREE && conns[i].stalled && conns[i].pcb)
			conn_feed(&conns[i]);
}

/* ---- lwIP callbacks (net_lock held) ---------------------------------------------------- */
static err_t apfp_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct conn *c = arg;

	(void)pcb;
	if (!c) {
		if (p)
			pbuf_free(p);
		return ERR_OK;
	}
	if (!p || err != ERR_OK) {              /* the peer closed its side */
		if (p)
			pbuf_free(p);
		ADD(peer_closes, 1);
		c->peer_closed = true;
		c->stop_reading = true;
		if (c->busy || c->queued || c->in_head || c->out_head) {
			c->close_after_send = true;   /* answer what was asked, then close */
			return ERR_OK;
		}
		return conn_shut(c, false);
	}
	if (c->stop_reading) {                  /* closing: nothing more is read */
		tcp_recved(pcb, p->tot_len);
		pbuf_free(p);
		return ERR_OK;
	}
	if (c->pend_n == PEND_MAX)
		return ERR_MEM;                 /* lwIP keeps it and offers it again */
	c->pend[(c->pend_head + c->pend_n) % PEND_MAX] = p;
	c->pend_n++;
	return conn_feed(c);
}

static err_t apfp_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	struct conn *c = arg;

	(void)pcb;
	(void)len;
	if (!c)
		return ERR_OK;
	c->last_ns = time_ns();
	return conn_send(c);
}

static void apfp_err(void *arg, err_t err)
{
	struct conn *c = arg;

	(void)err;
	if (!c)
		return;
	c->pcb = NULL;                          /* lwIP freed it */
	ADD(peer_closes, 1);
	conn_shut(c, false);
}

static err_t apfp_poll(void *arg, struct tcp_pcb *pcb)
{
	struct conn *c = arg;
	char peer[24];

	(void)pcb;
	if (!c)
		return ERR_OK;
	uint64_t now = time_ns();
	if (c->state == CS_HANDSHAKE && now - c->born_ns > PROTO_HANDSHAKE_TIMEOUT_S * NS_PER_S) {
		ADD(handshake_timeouts, 1);
		kprintf("proto: %s: handshake not completed in %u s: dropped\n", peer_str(c, peer, sizeof(peer)),
			PROTO_HANDSHAKE_TIMEOUT_S);
		return conn_shut(c, true);
	}
	if (!c->busy && !c->queued && !c->in_head && now - c->last_ns > (uint64_t)idle_s * NS_PER_S) {
		ADD(idle_drops, 1);
		kprintf("proto: %s: idle for %u s: dropped\n", peer_str(c, peer, sizeof(peer)), idle_s);
		return conn_shut(c, true);
	}
	return conn_send(c);
}

/* Over the connection limit: the HELLO reply every client waits for first
 * (request id 0, version 1) says CONNLIMIT, then the connection closes. */
static err_t refuse_connlimit(struct tcp_pcb *pcb)
{
	struct proto_hdr h = { .version = PROTO_HELLO_VERSION, .opcode = PROTO_OP_HELLO, .flags = PROTO_F_REPLY,
			       .id = 0, .status = PROTO_E_CONNLIMIT };
	uint8_t f[PROTO_HDR_SIZE];

	ADD(refused_limit, 1);
	net_tcp_detach(pcb);
	if (proto_encode_error(f, sizeof(f), &h, PROTO_E_CONNLIMIT) != PROTO_HDR_SIZE ||
	    tcp_write(pcb, f, sizeof(f), TCP_WRITE_FLAG_COPY) != ERR_OK) {
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	return (err_t)net_tcp_close(pcb);
}

static err_t apfp_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	uint8_t nonce[PROTO_NONCE_SIZE];
	struct conn *c = NULL;
	unsigned used = 0;

	(void)arg;
	if (err != ERR_OK || !pcb)
		return ERR_VAL;
	for (unsigned i = 0; i < APFP_CONN_CAP; i++) {
		if (conns[i].state != CS_FREE)
			used++;
		else if (!c)
			c = &conns[i];
	}
	if (used >= max_conn || !c)
		return refuse_connlimit(pcb);
	if (random_bytes(nonce, sizeof(nonce)) < 0) {
		ADD(refused_nomem, 1);
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	memset(c, 0, __builtin_offsetof(struct conn, auth));
	c->state = CS_HANDSHAKE;
	c->pcb = pcb;
	c->peer_ip = ip4_addr_get_u32(ip_2_ip4(&pcb->remote_ip));
	c->peer_port = pcb->remote_port;
	c->born_ns = c->last_ns = time_ns();
	proto_auths_init(&c->auth, &auth_cfg, nonce, c->peer_ip, c->born_ns, &c->sess);
	proto_wipe(nonce, sizeof(nonce));
	ADD(accepted, 1);
	tcp_arg(pcb, c);
	tcp_recv(pcb, apfp_recv);
	tcp_sent(pcb, apfp_sent);
	tcp_err(pcb, apfp_err);
	tcp_poll(pcb, apfp_poll, 2);            /* every second */
	tcp_nagle_disable(pcb);
	return ERR_OK;
}

/* ---- workers ----------------------------------------------------------------------- */
static bool op_has_big_reply(uint8_t op)
{
	return op == PROTO_OP_READ || op == PROTO_OP_READDIR || op == PROTO_OP_READDIRPLUS || op == PROTO_OP_READLINK ||
	       op == PROTO_OP_GETXATTR || op == PROTO_OP_LISTXATTR || op == PROTO_OP_SNAP_LIST ||
	       op == PROTO_OP_EXPORTS || op == PROTO_OP_ADMIN;
}

/* One handshake frame: the reply, and whether to close after it. */
static struct buf *do_handshake(struct conn *c, const struct buf *f, bool *close)
{
	struct buf *out = buf_new(PROTO_HDR_SIZE + PROTO_HANDSHAKE_MAX_BODY);
	char peer[24];
	size_t n = 0;
	int rc;

	if (!out) {
		*close = true;
		return NULL;
	}
	c->auth.now_ns = time_ns();
	mutex_lock(&rl_lock);
	rc = proto_auths_step(&c->auth, f->data, f->len, out->data, out->cap, &n);
	mutex_unlock(&rl_lock);
	out->len = n;
	if (rc < 0) {
		*close = true;
		ADD(auth_failures, 1);
		kprintf("proto: %s: handshake refused: %s\n", peer_str(c, peer, sizeof(peer)), c->auth.err.msg);
	} else if (c->auth.state == PROTO_AUTH_DONE) {
		proto_reqtab_init(&c->tab, c->sess.max_inflight);
		if (c->sess.keyed)
			ADD(sessions_keyed, 1);
		else
			ADD(sessions_anon, 1);
	}
	return out;
}

/* proto_server_handle() with the client's address in the call (the log
 * lines of ADMIN name it): receive, execute, seal, release the id. */
static int serve_frame(struct conn *c, const struct buf *f, struct buf *out, size_t cap, size_t *n,
		       uint8_t *scratch, size_t scratch_cap, struct proto_err *err)
{
	struct proto_request r;
	char peer[24];
	int rc, len;

	*n = 0;
	if (f->tag.done && f->tag.seq == c->sess.seq_recv)
		ADD(tags_on_copy, 1);
	else if (c->sess.keyed)
		ADD(tags_late, 1);
	rc = proto_server_receive_pre(&srv, &c->sess, &c->tab, f->data, f->len, &f->tag, &r, err);
	if (rc < 0 && !r.status)
		return rc;
	r.call.peer = peer_str(c, peer, sizeof(peer));
	/* Remote administration is logged, refusals at the gate included
	 * (net/apfp_admin.c logs what passes it). */
	if (r.status && r.hdr.opcode == PROTO_OP_ADMIN)
		kprintf("admin: %s refused: %s (%s)\n", peer, err->msg[0] ? err->msg : proto_status_str(r.status),
			proto_status_name(r.status));
	len = proto_server_execute(&srv, &c->sess, &r, out->data, cap, scratch, scratch_cap, err);
	if (len >= 0)
		len = proto_session_seal(&c->sess, out->data, (size_t)len, cap);
	if (r.claimed)
		proto_reqtab_end(&c->tab, r.hdr.id);
	if (len < 0)
		return len;
	*n = (size_t)len;
	return rc;
}

/* One request frame. */
static struct buf *do_request(struct conn *c, const struct buf *f, bool *close)
{
	size_t body = op_has_big_reply(f->len > 5 ? f->data[5] : 0) ? c->sess.max_body : SMALL_REPLY;
	size_t cap = PROTO_HDR_SIZE + body + PROTO_TAG_SIZE, n = 0;
	struct buf *out = buf_new(cap);
	uint8_t *scratch = kmalloc(body);
	struct proto_err err = { { 0 } };
	char peer[24];
	int rc;

	if (!out || !scratch) {
		kfree(out);
		kfree(scratch);
		*close = true;
		return NULL;
	}
	apfp_fs_refresh(&srv);
	rc = serve_frame(c, f, out, cap, &n, scratch, body, &err);
	kfree(scratch);
	out->len = n;
	ADD(requests, 1);
	if (n >= PROTO_HDR_SIZE && le32(out->data + 16))
		ADD(request_errors, 1);
	if (rc < 0) {
		*close = true;
		ADD(protocol_closes, 1);
		kprintf("proto: %s: closed: %s\n", peer_str(c, peer, sizeof(peer)),
			err.msg[0] ? err.msg : strerror(rc));
	}
	if (n + 256 < cap) {                    /* keep only what is sent */
		struct buf *small = buf_new(n);
		if (small) {
			memcpy(small->data, out->data, n);
			small->len = n;
			kfree(out);
			out = small;
		}
	}
	return out;
}

static bool run_ready(void *arg)
{
	struct runq *rq = arg;
	return __atomic_load_n(&rq->head, __ATOMIC_ACQUIRE) != NULL;
}

/* One worker, pinned to a CPU, serving that CPU's queue. */
static void apfp_worker(void *arg)
{
	struct runq *rq = arg;

	for (;;) {
		struct conn *c;
		net_lock();
		while (!(c = rq->head)) {
			rq->idle++;
			net_unlock();
			waitq_wait_until(&rq->wq, run_ready, rq, UINT64_MAX);
			net_lock();
			rq->idle--;
		}
		rq->head = c->run_next;
		if (!rq->head)
			rq->tail = NULL;
		c->queued = false;
		c->busy = true;
		/* From here until busy is cleared the slot stays this
		 * connection's: conn_shut() leaves freeing it to us. */
		for (;;) {
			struct buf *f = list_pop(&c->in_head, &c->in_tail);
			bool skip = c->state == CS_CLOSING || c->fatal;
			bool handshake = c->state == CS_HANDSHAKE;
			net_unlock();
			if (!f) {
				net_lock();
				break;
			}
			struct buf *out = NULL;
			bool close = false;
			if (!skip)
				out = handshake ? do_handshake(c, f, &close) : do_request(c, f, &close);
			net_lock();
			mem_sub(c, f->cap);
			kfree(f);
			if (out && out->len) {
				list_push(&c->out_head, &c->out_tail, out);
				mem_add(c, out->cap);
			} else {
				kfree(out);
			}
			if (handshake) {
				c->hs_step = false;
				if (c->auth.state == PROTO_AUTH_DONE && c->state == CS_HANDSHAKE) {
					c->state = CS_OPEN;
					c->max_body = c->sess.max_body;
					c->rx_seq = c->sess.seq_recv;
					c->anonymous = !c->sess.keyed;
				}
			}
			if (close) {
				c->fatal = true;
				c->close_after_send = true;
				c->stop_reading = true;
				drop_pending(c);
			}
			conn_send(c);                   /* never closes while busy */
			conn_feed(c);
			resume_stalled();
		}
		c->busy = false;
		if (c->state == CS_CLOSING && !c->queued)
			conn_free(c);
		else if (c->in_head)
			schedule(c);
		else
			conn_send(c);                   /* closes when that was asked and all is out */
		net_unlock();
	}
}

/* ---- start ------------------------------------------------------------------------------- */
static int apfp_start(void)
{
	static uint8_t handle_key[32];
	const char *token = boot_info->config.token;
	const char *a;
	unsigned long long v;
	int rc;

	if (!net_if_count()) {
		off_why = "no network";
		return 0;
	}
	if ((a = arg_get("proto_max_conn")) && !parse_u64(a, &v) && v >= 1 && v <= APFP_CONN_CAP)
		max_conn = (unsigned)v;
	if ((a = arg_get("proto_idle_s")) && !parse_u64(a, &v) && v >= 2 && v <= 86400)
		idle_s = (unsigned)v;
	if ((rc = random_bytes(&auth_cfg.boot_id, sizeof(auth_cfg.boot_id))) < 0) {
		off_why = "no random source";
		kprintf("proto: the file server is off: no random source for keys and nonces (%s: the CPU has %s)\n",
			strerror(rc), rc == -ENODEV ? "neither RDSEED nor RDRAND" : "a failing generator");
		return 0;
	}
	/* The handle key must outlive restarts so handles do: derived from the
	 * token when there is one; without one it is made per boot (handles
	 * then go stale at a restart) until the filesystem keeps a key. */
	if (token[0])
		proto_hkdf_extract("apfp handle key", 15, token, strlen(token), handle_key);
	else if (random_bytes(handle_key, sizeof(handle_key)) < 0)
		return 0;
	if ((rc = apfp_fs_init(&srv, handle_key, sizeof(handle_key))) < 0) {
		off_why = "no random write verifier";
		return 0;
	}
	apfp_admin_attach(&srv);
	proto_rl_init(&ratelimit);
	mutex_init(&rl_lock, "apfp-rl");
	auth_cfg.psk = (const uint8_t *)token;
	auth_cfg.psk_len = strlen(token);
	auth_cfg.anon_ok = !token[0] || arg_present("proto_anon");
	auth_cfg.max_body = PROTO_MAX_BODY;
	auth_cfg.max_inflight = PROTO_MAX_INFLIGHT;
	auth_cfg.rl = &ratelimit;
	nqueues = MIN(ncpus_online, (unsigned)APFP_QUEUES);
	for (unsigned q = 0; q < nqueues; q++) {
		waitq_init(&runqs[q].wq, "apfp-run");
		for (unsigned i = 0; i < APFP_WORKERS_PER_CPU; i++)
			if (!thread_create("apfp", apfp_worker, &runqs[q], (int)q)) {
				off_why = "no memory for workers";
				return -ENOMEM;
			}
	}
	net_lock();
	rc = net_tcp_listen(APFP_PORT, TCP_DEFAULT_LISTEN_BACKLOG, apfp_accept, NULL);
	net_unlock();
	if (rc < 0) {
		off_why = "cannot listen";
		kprintf("proto: the file server is off: cannot listen on tcp/%u: %s\n", APFP_PORT, strerror(rc));
		return rc;
	}
	running = true;
	off_why = NULL;
	char names[160] = "";
	for (unsigned i = 0; i < srv.nexports; i++) {
		const struct proto_export_cfg *e = &srv.exports[i];
		size_t at = strlen(names);
		ksnprintf(names + at, sizeof(names) - at, "%s/%s%s%s", i ? ", " : ": ", e->name,
			 e->flags & PROTO_EXP_RO ? " ro" : "", e->flags & PROTO_EXP_ANON ? " anon" : "");
	}
	if (token[0])
		kprintf("proto: file server on tcp/%u: token required%s; up to %u connections; %u exports%s; "
			"keys from %s\n", APFP_PORT,
			auth_cfg.anon_ok ? ", anonymous read-only sessions allowed" : ", no anonymous access",
			max_conn, srv.nexports, names, random_source());
	else
		kprintf("proto: file server on tcp/%u: no token configured: anonymous read-only access only; "
			"up to %u connections; %u exports%s; keys from %s\n", APFP_PORT, max_conn,
			srv.nexports, names, random_source());
	return 0;
}
INITCALL(apfp, INIT_LATE, 20, apfp_start);

/* ---- what apfp_cmds.c shows ------------------------------------------------------------- */
void apfp_get_stats(struct apfp_stats *s)
{
	*s = st;                                /* racy reads of counters are fine */
}

unsigned apfp_list(struct apfp_conn_info *out, unsigned max)
{
	unsigned n = 0;
	uint64_t now = time_ns();

	net_lock();
	for (unsigned i = 0; i < APFP_CONN_CAP && n < max; i++) {
		struct conn *c = &conns[i];
		if (c->state == CS_FREE)
			continue;
		out[n++] = (struct apfp_conn_info){ c->peer_ip, c->peer_port, state_names[c->state],
						    now - c->born_ns, now - c->last_ns, c->frames_in,
						    c->frames_out, (uint32_t)c->mem, c->anonymous };
	}
	net_unlock();
	return n;
}

unsigned apfp_open_count(void)
{
	unsigned n = 0;
	for (unsigned i = 0; i < APFP_CONN_CAP; i++)
		n += __atomic_load_n(&conns[i].state, __ATOMIC_RELAXED) != CS_FREE;
	return n;
}

bool apfp_running(const char **why)
{
	if (why)
		*why = off_why;
	return running;
}

unsigned apfp_max_conn(void) { return max_conn; }
unsigned apfp_idle_s(void) { return idle_s; }
bool apfp_keyed(void) { return auth_cfg.psk_len != 0; }
bool apfp_anon(void) { return auth_cfg.anon_ok; }
