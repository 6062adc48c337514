/*
 * Small TCP services for tests and diagnostics, on lwIP's raw API (all
 * callbacks run under net_lock):
 *
 *   echo  port 7   every byte back.  Received data is acknowledged
 *                  (tcp_recved) only once it is queued for sending, so a
 *                  client that does not read stalls itself, not the stack.
 *   sum   port 9   reads until the client shuts its side down, then answers
 *                  "bytes=N crc32=XXXXXXXX\n" (zlib CRC-32) and closes.
 *   gen   port 19  reads one line "LENGTH SEED\n" and sends LENGTH bytes of
 *                  the test pattern (drivers/blk/pattern.h; byte i of the
 *                  stream is byte i of the pattern for SEED), then closes.
 *
 * Every connection has a state block from a fixed pool (NET_SVC_MAX); when
 * it is exhausted new connections are refused (aborted) and counted.  An
 * idle connection is dropped after NET_SVC_IDLE_S seconds (tcp_poll), so
 * half-open or abandoned clients cannot hold the pool.
 */
#include "net/net.h"
#include "drivers/blk/pattern.h"
#include "kernel/errno.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"

#include "lwip/tcp.h"

#define NET_SVC_MAX     96
#define NET_SVC_IDLE_S  30
#define NET_GEN_CHUNK   4096

enum svc_kind { SVC_ECHO, SVC_SUM, SVC_GEN };

struct svc_conn {
	bool used;
	enum svc_kind kind;
	struct tcp_pcb *pcb;
	struct pbuf *pending;        /* echo: received, not yet queued */
	uint64_t bytes;              /* sum: received; gen: sent */
	uint64_t length;             /* gen: requested */
	uint64_t seed;
	uint32_t crc;
	char req[64];
	unsigned reqlen;
	bool peer_closed;
	unsigned idle_polls;
};

static struct svc_conn svc_pool[NET_SVC_MAX];
static struct {
	uint64_t accepted, refused, idle_drops, errors;
} svc_stats;
static uint8_t svc_genbuf[NET_GEN_CHUNK + 8];

static struct svc_conn *svc_alloc(void)
{
	for (unsigned i = 0; i < NET_SVC_MAX; i++)
		if (!svc_pool[i].used) {
			memset(&svc_pool[i], 0, sizeof(svc_pool[i]));
			svc_pool[i].used = true;
			return &svc_pool[i];
		}
	return NULL;
}

static void svc_free(struct svc_conn *c)
{
	if (c->pending)
		pbuf_free(c->pending);
	c->pending = NULL;
	c->used = false;
}

/* Close gracefully (abort without memory for the FIN): returns the value
 * a callback must return. */
static err_t svc_close(struct svc_conn *c)
{
	struct tcp_pcb *pcb = c->pcb;
	svc_free(c);
	return (err_t)net_tcp_close(pcb);
}

/* Echo: queue as much pending data as the send buffer takes. */
static void svc_echo_flush(struct svc_conn *c)
{
	while (c->pending) {
		struct pbuf *p = c->pending;
		u32_t room = tcp_sndbuf(c->pcb);
		u16_t n = p->len < room ? p->len : (u16_t)room;
		if (n == 0 || tcp_write(c->pcb, p->payload, n, TCP_WRITE_FLAG_COPY) != ERR_OK)
			break;
		tcp_recved(c->pcb, n);
		if (n < p->len) {
			pbuf_remove_header(p, n);
			break;
		}
		c->pending = p->next;
		if (p->next)
			pbuf_ref(p->next);
		pbuf_free(p);
	}
	tcp_output(c->pcb);
}

static void svc_gen_fill(struct svc_conn *c)
{
	while (c->bytes < c->length) {
		u32_t room = tcp_sndbuf(c->pcb);
		if (room < 1024 && c->length - c->bytes > room)
			break;
		uint64_t off = c->bytes & ~7ULL;
		unsigned skip = (unsigned)(c->bytes - off);
		uint64_t left = c->length - c->bytes;
		unsigned n = NET_GEN_CHUNK - skip;
		if (n > left)
			n = (unsigned)left;
		if (n > room)
			n = room;
		pattern_fill(svc_genbuf, off, ALIGN_UP(skip + n, 8u), c->seed);
		if (tcp_write(c->pcb, svc_genbuf + skip, (u16_t)n, TCP_WRITE_FLAG_COPY |
			      (c->bytes + n < c->length ? TCP_WRITE_FLAG_MORE : 0)) != ERR_OK)
			break;
		c->bytes += n;
	}
	tcp_output(c->pcb);
}

static bool svc_gen_parse(struct svc_conn *c)
{
	/* "LENGTH SEED" */
	char *sp = strchr(c->req, ' ');
	unsigned long long len, seed;
	if (!sp)
		return false;
	*sp = 0;
	if (parse_u64(c->req, &len) < 0 || parse_u64(sp + 1, &seed) < 0)
		return false;
	c->length = len;
	c->seed = seed;
	return true;
}

static err_t svc_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	struct svc_conn *c = arg;
	(void)pcb;
	(void)len;
	if (!c)
		return ERR_OK;
	c->idle_polls = 0;
	if (c->kind == SVC_ECHO) {
		svc_echo_flush(c);
		if (c->peer_closed && !c->pending)
			return svc_close(c);
	} else if (c->kind == SVC_GEN && c->length) {
		svc_gen_fill(c);
		if (c->bytes == c->length && tcp_sndqueuelen(c->pcb) == 0)
			return svc_close(c);
	} else if (c->kind == SVC_SUM && c->peer_closed && tcp_sndqueuelen(c->pcb) == 0) {
		return svc_close(c);
	}
	return ERR_OK;
}

static err_t svc_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct svc_conn *c = arg;
	if (!c) {
		if (p)
			pbuf_free(p);
		return ERR_OK;
	}
	c->idle_polls = 0;
	if (!p || err != ERR_OK) {
		if (p)
			pbuf_free(p);
		c->peer_closed = true;
		if (c->kind == SVC_SUM) {
			char line[64];
			int n = ksnprintf(line, sizeof(line), "bytes=%llu crc32=%08x\n",
					  (unsigned long long)c->bytes, c->crc);
			tcp_write(pcb, line, (u16_t)n, TCP_WRITE_FLAG_COPY);
			tcp_output(pcb);
			return ERR_OK;          /* closed from svc_sent once acked */
		}
		if (c->kind == SVC_ECHO && c->pending)
			return ERR_OK;          /* closed once the rest is echoed */
		if (c->kind == SVC_GEN && c->bytes < c->length)
			return ERR_OK;
		return svc_close(c);
	}
	switch (c->kind) {
	case SVC_ECHO:
		if (c->pending)
			pbuf_cat(c->pending, p);
		else
			c->pending = p;
		svc_echo_flush(c);
		return ERR_OK;
	case SVC_SUM:
		for (struct pbuf *q = p; q; q = q->next)
			c->crc = pattern_crc32(c->crc, q->payload, q->len);
		c->bytes += p->tot_len;
		tcp_recved(pcb, p->tot_len);
		pbuf_free(p);
		return ERR_OK;
	case SVC_GEN:
		tcp_recved(pcb, p->tot_len);
		for (struct pbuf *q = p; q && !c->length; q = q->next) {
			for (u16_t i = 0; i < q->len; i++) {
				char ch = ((char *)q->payload)[i];
				if (ch == '\n' || ch == '\r') {
					c->req[c->reqlen] = 0;
					if (!svc_gen_parse(c)) {
						pbuf_free(p);
						svc_stats.errors++;
						tcp_write(pcb, "error: want 'LENGTH SEED'\n", 26, TCP_WRITE_FLAG_COPY);
						return svc_close(c);
					}
					break;
				}
				if (c->reqlen + 1 >= sizeof(c->req)) {
					pbuf_free(p);
					svc_stats.errors++;
					return svc_close(c);
				}
				c->req[c->reqlen++] = ch;
			}
		}
		pbuf_free(p);
		if (c->length)
			svc_gen_fill(c);
		return ERR_OK;
	}
	pbuf_free(p);
	return ERR_OK;
}

static void svc_err(void *arg, err_t err)
{
	struct svc_conn *c = arg;
	(void)err;
	if (c) {
		c->pending = NULL;      /* the pcb (and its queued pbufs) is gone */
		svc_free(c);
	}
}

static err_t svc_poll(void *arg, struct tcp_pcb *pcb)
{
	struct svc_conn *c = arg;
	if (!c)
		return ERR_OK;
	/* tcp_poll interval is 2 s (4 coarse ticks of 500 ms). */
	if (++c->idle_polls * 2 >= NET_SVC_IDLE_S) {
		svc_stats.idle_drops++;
		net_tcp_detach(pcb);
		svc_free(c);
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	if (c->kind == SVC_ECHO)
		svc_echo_flush(c);
	else if (c->kind == SVC_GEN && c->length)
		svc_gen_fill(c);
	return ERR_OK;
}

static err_t svc_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	if (err != ERR_OK || !pcb)
		return ERR_VAL;
	struct svc_conn *c = svc_alloc();
	if (!c) {
		svc_stats.refused++;
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	svc_stats.accepted++;
	c->kind = (enum svc_kind)(uintptr_t)arg;
	c->pcb = pcb;
	tcp_arg(pcb, c);
	tcp_recv(pcb, svc_recv);
	tcp_sent(pcb, svc_sent);
	tcp_err(pcb, svc_err);
	tcp_poll(pcb, svc_poll, 4);
	tcp_nagle_disable(pcb);
	return ERR_OK;
}

static int svc_listen(uint16_t port, enum svc_kind kind)
{
	return net_tcp_listen(port, TCP_DEFAULT_LISTEN_BACKLOG, svc_accept, (void *)(uintptr_t)kind);
}

int net_services_start(void)
{
	int rc = 0;
	net_lock();
	if (svc_listen(NET_PORT_ECHO, SVC_ECHO) < 0 || svc_listen(NET_PORT_SUM, SVC_SUM) < 0 ||
	    svc_listen(NET_PORT_GEN, SVC_GEN) < 0)
		rc = -1;
	net_unlock();
	if (rc == 0)
		kprintf("net: services: echo tcp/%u, sum tcp/%u, gen tcp/%u\n", NET_PORT_ECHO, NET_PORT_SUM,
			NET_PORT_GEN);
	return rc < 0 ? -ENOMEM : 0;
}

void net_services_stats(uint64_t *accepted, uint64_t *refused, uint64_t *idle, uint64_t *errors, unsigned *open)
{
	*accepted = svc_stats.accepted;
	*refused = svc_stats.refused;
	*idle = svc_stats.idle_drops;
	*errors = svc_stats.errors;
	unsigned n = 0;
	for (unsigned i = 0; i < NET_SVC_MAX; i++)
		n += svc_pool[i].used;
	*open = n;
}
