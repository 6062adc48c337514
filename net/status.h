/* The status server's content (net/status.c) and its HTTP front (net/http.c). */
#ifndef NET_STATUS_H
#define NET_STATUS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* Append-only text buffer; output past cap is cut and flagged. */
struct sbuf {
	char *buf;
	size_t len, cap;
	bool truncated;
};
void sbuf_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void status_metrics_text(struct sbuf *b);   /* Prometheus text format 0.0.4 */
void status_json(struct sbuf *b);           /* identity, metrics, log tail */
const char *status_html(size_t *len);       /* the page (static) */

#define NET_PORT_HTTP 80

#endif
