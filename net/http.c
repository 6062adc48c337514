/*
 * The status server: a small HTTP/1.1 server on tcp/80 (lwIP raw API, all
 * callbacks under net_lock) serving net/status.c's page, /metrics and
 * /status.json.  Read-only: GET and HEAD only, one request per connection
 * (Connection: close), requests of at most HTTP_REQ_MAX bytes.
 *
 * When config.txt sets a token, every request must carry it, as
 * "Authorization: Bearer TOKEN" (Prometheus' bearer_token) or as the query
 * "?token=TOKEN" (a browser); it is compared in constant time.  Connections
 * come from a fixed pool (HTTP_MAX; refused beyond) and are dropped after
 * HTTP_IDLE_S seconds without progress, so slow or half-open clients
 * cannot hold the server.
 */
#include "net/net.h"
#include "net/status.h"
#include "kernel/errno.h"
#include "kernel/initcall.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/metrics.h"
#include "kernel/mm.h"
#include "boot/bootinfo.h"

#include "lwip/tcp.h"

#define HTTP_MAX      16
#define HTTP_REQ_MAX  2048
#define HTTP_IDLE_S   10
#define HTTP_OUT_MAX  (256 * 1024)
#define HTTP_CHUNK    (16 * 1024)

struct http_conn {
	bool used;
	struct tcp_pcb *pcb;
	char req[HTTP_REQ_MAX];
	unsigned reqlen;
	char *out;                   /* response: head + body */
	size_t out_len, written, acked;
	bool out_static;             /* body not copied: points at the page */
	const char *body;
	size_t body_len, head_len;
	unsigned idle_polls;
};

static struct http_conn http_pool[HTTP_MAX];
static struct {
	uint64_t ok, not_found, bad, unauthorized, refused, idle_drops;
} http_stats;

static struct http_conn *http_alloc(void)
{
	for (unsigned i = 0; i < HTTP_MAX; i++)
		if (!http_pool[i].used) {
			memset(&http_pool[i], 0, sizeof(http_pool[i]));
			http_pool[i].used = true;
			return &http_pool[i];
		}
	return NULL;
}

static void http_free(struct http_conn *c)
{
	kfree(c->out);
	c->out = NULL;
	c->used = false;
}

static void http_close(struct http_conn *c)
{
	net_tcp_close(c->pcb);
	http_free(c);
}

/* Queue as much of the response as the send buffer takes. */
static void http_send_more(struct http_conn *c)
{
	while (c->written < c->out_len) {
		size_t room = tcp_sndbuf(c->pcb);
		if (!room)
			break;
		size_t n = MIN(MIN(c->out_len - c->written, room), (size_t)HTTP_CHUNK);
		const char *src = c->written < c->head_len ? c->out + c->written
							   : c->body + (c->written - c->head_len);
		if (c->written < c->head_len)
			n = MIN(n, c->head_len - c->written);
		if (tcp_write(c->pcb, src, (u16_t)n, TCP_WRITE_FLAG_COPY) != ERR_OK)
			break;
		c->written += n;
	}
	tcp_output(c->pcb);
}

static bool http_token_ok(const char *given, size_t len)
{
	const char *want = boot_info->config.token;
	size_t wl = strlen(want);
	unsigned diff = (unsigned)(wl ^ len);
	for (size_t i = 0; i < wl; i++)       /* every byte, whatever matches */
		diff |= (unsigned)(want[i] ^ (i < len ? given[i] : 0));
	return diff == 0;
}

/* The token from the query string or the Authorization header, if any. */
static bool http_authorized(const char *query, const char *headers)
{
	if (!boot_info->config.token[0])
		return true;
	for (const char *q = query; q && *q;) {
		if (!strncmp(q, "token=", 6)) {
			const char *v = q + 6;
			size_t n = 0;
			while (v[n] && v[n] != '&')
				n++;
			if (http_token_ok(v, n))
				return true;
		}
		q = strchr(q, '&');
		if (q)
			q++;
	}
	for (const char *h = headers; h && *h;) {
		if (!strncasecmp(h, "Authorization: Bearer ", 22)) {
			const char *v = h + 22;
			size_t n = 0;
			while (v[n] && v[n] != '\r')
				n++;
			if (http_token_ok(v, n))
				return true;
		}
		const char *eol = strstr(h, "\r\n");
		h = eol ? eol + 2 : NULL;
	}
	return false;
}

static void http_respond(struct http_conn *c, unsigned code, const char *reason, const char *type,
			 const char *body, size_t body_len, bool copy_body, bool head_only)
{
	size_t cap = 512 + (copy_body ? body_len : 0);
	c->out = kmalloc(cap);
	if (!c->out) {
		tcp_abort(c->pcb);             /* no memory for even the headers */
		return;
	}
	int n = ksnprintf(c->out, 512, "HTTP/1.1 %u %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			  "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n", code, reason, type, body_len,
			  code == 401 ? "WWW-Authenticate: Bearer realm=\"appliance\"\r\n" : "");
	c->head_len = (size_t)n;
	if (head_only)
		body_len = 0;
	if (copy_body) {
		memcpy(c->out + c->head_len, body, body_len);
		c->body = c->out + c->head_len;
	} else {
		c->body = body;
	}
	c->body_len = body_len;
	c->out_len = c->head_len + body_len;
	http_send_more(c);
}

static void http_error(struct http_conn *c, unsigned code, const char *reason, const char *why)
{
	char msg[160];
	int n = ksnprintf(msg, sizeof(msg), "%u %s: %s\n", code, reason, why);
	if (code == 404)
		http_stats.not_found++;
	else if (code == 401)
		http_stats.unauthorized++;
	else
		http_stats.bad++;
	http_respond(c, code, reason, "text/plain; charset=utf-8", msg, (size_t)n, true, false);
}

/* A whole request is in c->req (NUL-terminated): answer it. */
static void http_handle(struct http_conn *c)
{
	char *line_end = strstr(c->req, "\r\n");
	if (!line_end)
		return http_error(c, 400, "Bad Request", "no request line");
	*line_end = 0;
	char *headers = line_end + 2;
	char *method = c->req, *target = strchr(method, ' ');
	if (!target)
		return http_error(c, 400, "Bad Request", "malformed request line");
	*target++ = 0;
	char *version = strchr(target, ' ');
	if (!version || (strcmp(version + 1, "HTTP/1.1") && strcmp(version + 1, "HTTP/1.0")))
		return http_error(c, 400, "Bad Request", "not HTTP/1.0 or HTTP/1.1");
	*version = 0;
	bool head = !strcmp(method, "HEAD");
	if (!head && strcmp(method, "GET"))
		return http_error(c, 405, "Method Not Allowed", "the status server is read-only (GET, HEAD)");
	if (target[0] != '/')
		return http_error(c, 400, "Bad Request", "the target must be a path");
	char *query = strchr(target, '?');
	if (query)
		*query++ = 0;
	if (!http_authorized(query, headers))
		return http_error(c, 401, "Unauthorized", "this appliance requires its token "
				  "(Authorization: Bearer TOKEN, or ?token=TOKEN)");
	if (!strcmp(target, "/") || !strcmp(target, "/index.html")) {
		size_t len;
		const char *page = status_html(&len);
		http_stats.ok++;
		return http_respond(c, 200, "OK", "text/html; charset=utf-8", page, len, false, head);
	}
	bool metrics = !strcmp(target, "/metrics");
	if (!metrics && strcmp(target, "/status.json"))
		return http_error(c, 404, "Not Found", "known paths: / /metrics /status.json");
	struct sbuf b = { kmalloc(HTTP_OUT_MAX), 0, HTTP_OUT_MAX, false };
	if (!b.buf)
		return http_error(c, 503, "Service Unavailable", "out of memory");
	if (metrics)
		status_metrics_text(&b);
	else
		status_json(&b);
	if (b.truncated) {
		kfree(b.buf);
		return http_error(c, 500, "Internal Server Error", "response larger than the server's buffer");
	}
	http_stats.ok++;
	http_respond(c, 200, "OK", metrics ? "text/plain; version=0.0.4; charset=utf-8" : "application/json",
		     b.buf, b.len, true, head);
	kfree(b.buf);
}

static err_t http_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct http_conn *c = arg;
	if (!c) {
		if (p)
			pbuf_free(p);
		return ERR_OK;
	}
	if (!p || err != ERR_OK) {               /* peer closed before asking */
		if (p)
			pbuf_free(p);
		if (!c->out)
			http_close(c);
		return ERR_OK;
	}
	c->idle_polls = 0;
	tcp_recved(pcb, p->tot_len);
	if (c->out) {                            /* already answering: ignore */
		pbuf_free(p);
		return ERR_OK;
	}
	unsigned room = HTTP_REQ_MAX - 1 - c->reqlen;
	unsigned n = p->tot_len < room ? p->tot_len : room;
	pbuf_copy_partial(p, c->req + c->reqlen, (u16_t)n, 0);
	bool overflow = p->tot_len > room;
	pbuf_free(p);
	c->reqlen += n;
	c->req[c->reqlen] = 0;
	if (strstr(c->req, "\r\n\r\n"))
		http_handle(c);
	else if (overflow || c->reqlen == HTTP_REQ_MAX - 1)
		http_error(c, 431, "Request Header Fields Too Large", "requests are limited to 2 KiB");
	return ERR_OK;
}

static err_t http_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	(void)pcb;
	struct http_conn *c = arg;
	if (!c)
		return ERR_OK;
	c->idle_polls = 0;
	c->acked += len;
	if (c->acked >= c->out_len) {
		http_close(c);
		return ERR_OK;
	}
	http_send_more(c);
	return ERR_OK;
}

static void http_err(void *arg, err_t err)
{
	(void)err;
	struct http_conn *c = arg;
	if (c)
		http_free(c);                    /* the pcb is already gone */
}

static err_t http_poll(void *arg, struct tcp_pcb *pcb)
{
	struct http_conn *c = arg;
	if (!c)
		return ERR_OK;
	if (++c->idle_polls >= HTTP_IDLE_S * 2) {   /* tcp_poll every 500 ms */
		http_stats.idle_drops++;
		net_tcp_detach(pcb);
		tcp_abort(pcb);
		http_free(c);
		return ERR_ABRT;
	}
	if (c->out)
		http_send_more(c);
	return ERR_OK;
}

static err_t http_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	(void)arg;
	if (err != ERR_OK || !pcb)
		return ERR_VAL;
	struct http_conn *c = http_alloc();
	if (!c) {
		http_stats.refused++;
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	c->pcb = pcb;
	tcp_arg(pcb, c);
	tcp_recv(pcb, http_recv);
	tcp_sent(pcb, http_sent);
	tcp_err(pcb, http_err);
	tcp_poll(pcb, http_poll, 1);
	return ERR_OK;
}

static int http_start(void)
{
	if (!net_if_count())
		return 0;                        /* no network: nothing to serve on */
	net_lock();
	int rc = net_tcp_listen(NET_PORT_HTTP, 8, http_accept, NULL);
	net_unlock();
	if (!rc)
		kprintf("net: status page on http tcp/%u%s\n", NET_PORT_HTTP,
			boot_info->config.token[0] ? " (token required)" : "");
	return rc;
}
INITCALL(http, INIT_LATE, 10, http_start);

static void http_metrics(struct metric_sink *s)
{
	metric(s, "appliance_http_responses_total", METRIC_COUNTER, "Status server responses", "code", "200",
	       (int64_t)http_stats.ok, 0);
	metric(s, "appliance_http_responses_total", METRIC_COUNTER, "Status server responses", "code", "401",
	       (int64_t)http_stats.unauthorized, 0);
	metric(s, "appliance_http_responses_total", METRIC_COUNTER, "Status server responses", "code", "404",
	       (int64_t)http_stats.not_found, 0);
	metric(s, "appliance_http_responses_total", METRIC_COUNTER, "Status server responses", "code", "4xx",
	       (int64_t)http_stats.bad, 0);
	metric(s, "appliance_http_refused_total", METRIC_COUNTER, "Connections refused: pool full", 0, 0,
	       (int64_t)http_stats.refused, 0);
	metric(s, "appliance_http_idle_drops_total", METRIC_COUNTER, "Connections dropped for idling", 0, 0,
	       (int64_t)http_stats.idle_drops, 0);
}
METRICS_PROVIDER(http, http_metrics);
