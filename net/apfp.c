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
 *
 * This file is the lwIP side, all under net_lock; the workers and the start
 * are in net/apfp_work.c, what they share in net/apfp_conn.h.  Each stage
 * counts its waits (struct apfp_waits): receive callbacks and their gaps,
 * the reader's copying and memory stalls, window updates, replies waiting
 * for lwIP's send buffer, bytes acknowledged.
 */
#include "net/net.h"
#include "net/apfp_conn.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/mm.h"
#include "kernel/random.h"
#include "kernel/time.h"

#include "lwip/tcp.h"

const char *const apfp_state_names[] = { "free", "handshake", "open", "closing" };

static struct conn conns[APFP_CONN_CAP];
struct apfp_stats apfp_st;
static uint64_t total_mem;              /* under net_lock */
static const uint64_t gap_bounds_us[APFP_GAP_BUCKETS - 1] = APFP_GAP_BOUNDS_US;

const char *peer_str(const struct conn *c, char *b, size_t n)
{
	uint32_t a = c->peer_ip;
	ksnprintf(b, n, "%u.%u.%u.%u:%u", a & 0xff, (a >> 8) & 0xff, (a >> 16) & 0xff, a >> 24, c->peer_port);
	return b;
}

struct buf *buf_new(size_t cap)
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
void mem_add(struct conn *c, size_t n)
{
	c->mem += n;
	total_mem += n;
	apfp_st.mem = total_mem;
	if (total_mem > apfp_st.mem_high)
		apfp_st.mem_high = total_mem;
}

void mem_sub(struct conn *c, size_t n)
{
	c->mem -= n;
	total_mem -= n;
	apfp_st.mem = total_mem;
}

/* The reader waited for memory until now (if it did). */
static void stall_end(struct conn *c, uint64_t now)
{
	if (c->stalled) {
		c->stalled = false;
		WAIT_ADD(c, stall_ns, now - c->stall_ns);
	}
}

/* ---- slots (net_lock held) ------------------------------------ */
void drop_pending(struct conn *c)
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

void conn_free(struct conn *c)
{
	struct buf *b;

	stall_end(c, time_ns());
	drop_pending(c);
	while ((b = list_pop(&c->in_head, &c->in_tail))) {
		mem_sub(c, b->cap);
		kfree(b);
	}
	while ((b = list_pop(&c->out_head, &c->out_tail))) {
		mem_sub(c, b->cap);
		kfree(b);
	}
	while ((b = list_pop(&c->done_head, &c->done_tail))) {
		mem_sub(c, b->cap);
		kfree(b->reply);
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
	if (conn_idle(c))
		conn_free(c);
	return r;
}

/* ---- sending (net_lock held) ------------------------------------------------------ */
void conn_reply(struct conn *c, struct buf *out)
{
	if (out && out->len) {
		out->ready_ns = time_ns();
		list_push(&c->out_head, &c->out_tail, out);
		mem_add(c, out->cap);
	} else {
		kfree(out);
	}
}

int conn_send(struct conn *c)
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
		WAIT_ADD(c, bytes_sent, n);
		c->out_off += n;
		if (c->out_off == b->len) {
			uint64_t waited = time_ns() - b->ready_ns;
			WAIT_ADD(c, replies, 1);
			WAIT_ADD(c, reply_wait_ns, waited);
			wait_max(&c->w.reply_wait_max_ns, waited);
			wait_max(&apfp_st.w.reply_wait_max_ns, waited);
			list_pop(&c->out_head, &c->out_tail);
			mem_sub(c, b->cap);
			kfree(b);
			c->out_off = 0;
			ADD(frames_out, 1);
			c->frames_out++;
		}
	}
	tcp_output(c->pcb);
	if (!c->out_head && c->close_after_send && conn_idle(c))
		return conn_shut(c, false);
	return ERR_OK;
}

/* ---- reading (net_lock held) -------------------------------------------------------- */
/* Give n bytes of window back; counts the calls and those after which
 * lwIP sent a window update (it does when the advertised right edge moves
 * by TCP_WND_UPDATE_THRESHOLD or more: tcp_recved() in lwIP's tcp.c). */
static void recved(struct conn *c, struct tcp_pcb *pcb, u16_t n)
{
	u32_t edge = pcb->rcv_ann_right_edge;

	tcp_recved(pcb, n);
	WAIT_ADD(c, recved_calls, 1);
	WAIT_ADD(c, recved_bytes, n);
	if ((u32_t)(pcb->rcv_nxt + pcb->rcv_wnd - edge) >= (u32_t)TCP_WND_UPDATE_THRESHOLD)
		WAIT_ADD(c, wnd_updates, 1);
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
			recved(c, c->pcb, (u16_t)take);
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

int conn_feed(struct conn *c)
{
	uint64_t t0 = time_ns();
	err_t r = ERR_OK;

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
				if (!c->stalled) {
					ADD(read_stalls, 1);
					WAIT_ADD(c, stalls, 1);
					c->stall_ns = t0;
				}
				c->stalled = true;
				break;
			}
			stall_end(c, t0);
			if (!(c->rx = buf_new(flen))) {
				ADD(refused_nomem, 1);
				r = conn_shut(c, true);
				break;
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
		c->last_ns = c->rx->ready_ns = time_ns();
		struct buf *f = c->rx;
		c->rx = NULL;
		c->frames_in++;
		ADD(frames_in, 1);
		if (c->state == CS_HANDSHAKE)
			c->hs_step = true;
		if (c->rx_last)
			c->stop_reading = true;
		work_push(c, f);
	}
	WAIT_ADD(c, feed_ns, time_ns() - t0);
	return r;
}

/* Connections that waited for memory try again (net_lock held). */
void resume_stalled(void)
{
	for (unsigned i = 0; i < APFP_CONN_CAP; i++)
		if (conns[i].state != CS_FREE && conns[i].stalled && conns[i].pcb)
			conn_feed(&conns[i]);
}

/* ---- finishing what the workers executed (the network thread, net_lock held) ---------- */
static void conn_complete(struct conn *c)
{
	struct buf *f, *next;

	if (c->state == CS_FREE)
		return;                 /* cannot happen: a slot on the done list is not idle */
	for (f = done_take(c); f; f = next) {
		next = f->next;
		mem_sub(c, f->cap);
		conn_reply(c, f->reply);
		if (f->handshake) {
			c->hs_step = false;
			if (c->auth.state == PROTO_AUTH_DONE && c->state == CS_HANDSHAKE) {
				c->state = CS_OPEN;
				c->max_body = c->sess.max_body;
				c->rx_seq = c->sess.seq_recv;
				c->anonymous = !c->sess.keyed;
			}
		}
		if (f->close) {
			c->fatal = true;
			c->close_after_send = true;
			c->stop_reading = true;
			drop_pending(c);
		}
		kfree(f);
	}
	if (c->state == CS_CLOSING) {
		if (conn_idle(c))
			conn_free(c);
		return;
	}
	conn_send(c);                   /* closes when that was asked, all is out and no worker holds it */
	if (c->state != CS_FREE && c->state != CS_CLOSING)
		conn_feed(c);
}

/* The network thread's hook (net_set_hook): replies out, memory back,
 * reading on. */
static void apfp_complete(void)
{
	struct conn *c = done_take_all(), *next;

	if (!c)
		return;
	for (; c; c = next) {
		next = c->done_next;
		conn_complete(c);
	}
	resume_stalled();
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
		if (!conn_idle(c) || c->out_head) {
			c->close_after_send = true;   /* answer what was asked, then close */
			return ERR_OK;
		}
		return conn_shut(c, false);
	}
	uint64_t now = time_ns(), gap = now - c->last_rx_ns;
	unsigned bucket = 0;
	while (bucket < APFP_GAP_BUCKETS - 1 && gap >= gap_bounds_us[bucket] * NS_PER_US)
		bucket++;
	c->last_rx_ns = now;
	WAIT_ADD(c, recv_cbs, 1);
	WAIT_ADD(c, recv_bytes, p->tot_len);
	WAIT_ADD(c, recv_gap[bucket], 1);
	if (gap > 2 * NS_PER_MS)
		WAIT_ADD(c, recv_gap_long_ns, gap);
	if (c->stop_reading) {                  /* closing: nothing more is read */
		recved(c, pcb, p->tot_len);
		pbuf_free(p);
		return ERR_OK;
	}
	if (c->pend_n == PEND_MAX)
		return ERR_MEM;                 /* lwIP keeps it and offers it again */
	c->pend[(c->pend_head + c->pend_n) % PEND_MAX] = p;
	c->pend_n++;
	return (err_t)conn_feed(c);
}

static err_t apfp_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	struct conn *c = arg;

	(void)pcb;
	if (!c)
		return ERR_OK;
	c->last_ns = time_ns();
	WAIT_ADD(c, bytes_acked, len);
	return (err_t)conn_send(c);
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
	if (conn_idle(c) && now - c->last_ns > (uint64_t)apfp_idle_s() * NS_PER_S) {
		ADD(idle_drops, 1);
		kprintf("proto: %s: idle for %u s: dropped\n", peer_str(c, peer, sizeof(peer)), apfp_idle_s());
		return conn_shut(c, true);
	}
	return (err_t)conn_send(c);
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
	if (used >= apfp_max_conn() || !c)
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
	c->last_rx_ns = c->born_ns;
	proto_auths_init(&c->auth, apfp_auth_cfg(), nonce, c->peer_ip, c->born_ns, &c->sess);
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

int apfp_listen(void)
{
	net_set_hook(apfp_complete);
	net_lock();
	int rc = net_tcp_listen(APFP_PORT, TCP_DEFAULT_LISTEN_BACKLOG, apfp_accept, NULL);
	net_unlock();
	return rc;
}

/* ---- what apfp_cmds.c shows ------------------------------------------------------------- */
void apfp_get_stats(struct apfp_stats *s)
{
	*s = apfp_st;                           /* racy reads of counters are fine */
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
		out[n++] = (struct apfp_conn_info){ c->peer_ip, c->peer_port, apfp_state_names[c->state],
						    now - c->born_ns, now - c->last_ns, c->frames_in,
						    c->frames_out, (uint32_t)c->mem, c->anonymous, c->w };
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
