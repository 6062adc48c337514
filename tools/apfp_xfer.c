/*
 * Bulk transfers (tools/apfp_xfer.h).
 *
 * One engine for both directions: ranges still to send (new data from a
 * cursor, and ranges handed back: short replies, requests lost with a
 * broken connection, writes a changed verifier may have lost), and the
 * requests in flight with the range each one carries.
 */
#include "tools/apfp_xfer.h"
#include "tools/apfp_ops.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Broken connections in a row (no reply in between) before giving up; the
 * library's own reconnects bound each attempt. */
#define MAX_STRIKES 4
/* COMMITs in one transfer that may find a new verifier before giving up:
 * a server that restarts that often is not going to keep the data. */
#define MAX_VERF_CHANGES 8

struct range { uint64_t off; uint32_t len; };
struct flight { uint32_t id; struct range g; };

struct engine {
	struct apfpc *c;
	struct apfp_xfer *x;
	struct range *todo;             /* handed back, sent before new data */
	size_t ntodo, cap;
	struct flight fl[PROTO_MAX_INFLIGHT];
	unsigned nfl;
	uint64_t next, end;             /* new data: [next, end) */
	uint32_t io;
	unsigned strikes;
	bool oom;
	bool reading;
};

static void engine_init(struct engine *e, struct apfpc *c, struct apfp_xfer *x, uint64_t size)
{
	memset(e, 0, sizeof(*e));
	e->c = c;
	e->x = x;
	e->end = size;
	e->io = x->io_size && x->io_size <= PROTO_MAX_IO ? x->io_size : PROTO_MAX_IO;
	x->bytes = 0;
	x->commits = x->resent = x->broken = 0;
	x->local_error = false;
}

static unsigned depth(const struct engine *e)
{
	unsigned d = e->c->sess.max_inflight ? e->c->sess.max_inflight : 1;
	unsigned want = e->x->depth ? e->x->depth : e->reading ? APFP_READ_DEPTH : PROTO_MAX_INFLIGHT;
	if (d > PROTO_MAX_INFLIGHT)
		d = PROTO_MAX_INFLIGHT;
	return want < d ? want : d;
}

static void give_back(struct engine *e, uint64_t off, uint32_t len)
{
	if (e->ntodo == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 16;
		struct range *n = realloc(e->todo, cap * sizeof(*n));
		if (!n) {
			e->oom = true;
			return;
		}
		e->todo = n;
		e->cap = cap;
	}
	e->todo[e->ntodo++] = (struct range){ off, len };
}

static bool have_work(const struct engine *e)
{
	return e->ntodo || e->next < e->end;
}

static struct range take(struct engine *e)
{
	if (e->ntodo)
		return e->todo[--e->ntodo];
	struct range g = { e->next, e->end - e->next < e->io ? (uint32_t)(e->end - e->next) : e->io };
	e->next += g.len;
	return g;
}

static bool land(struct engine *e, uint32_t id, struct range *g)
{
	for (unsigned i = 0; i < e->nfl; i++)
		if (e->fl[i].id == id) {
			*g = e->fl[i].g;
			e->fl[i] = e->fl[--e->nfl];
			return true;
		}
	return false;
}

/* The connection broke (rc): what was in flight goes back to the list and
 * the connection is made again.  0 to carry on, or the error to stop. */
static int broken(struct engine *e, int rc)
{
	struct proto_client_reply r;
	for (unsigned i = 0; i < e->nfl; i++)
		give_back(e, e->fl[i].g.off, e->fl[i].g.len);
	e->nfl = 0;
	if (e->oom || ++e->strikes > MAX_STRIKES || e->c->fd >= 0)
		return rc;      /* fd still open: not a broken connection, an error of the request */
	char why[sizeof(e->c->err)];
	snprintf(why, sizeof(why), "%s", e->c->err);
	if (apfpc_call(e->c, PROTO_OP_PING, NULL, &r) < 0) {
		snprintf(e->c->err, sizeof(e->c->err), "%.280s; connecting again failed", why);
		return rc;
	}
	e->x->broken++;
	return 0;
}

/* Send one request carrying range g: 0 (sent, or the connection broke and
 * was made again with g given back), or the error to stop. */
static int launch(struct engine *e, uint8_t op, const void *req, struct range g)
{
	uint32_t id;
	int rc = apfpc_send(e->c, op, req, &id);
	if (rc < 0) {
		give_back(e, g.off, g.len);
		return broken(e, rc);
	}
	e->fl[e->nfl++] = (struct flight){ id, g };
	return 0;
}

/* One reply and the range its request carried: 1, 0 when the connection
 * broke and was made again (nothing received), or the error to stop. */
static int receive(struct engine *e, struct proto_client_reply *r, struct range *g)
{
	if (e->oom)
		return -ENOMEM;         /* a range given back was lost */
	int rc = apfpc_recv(e->c, r);
	if (rc < 0)
		return broken(e, rc);
	if (!land(e, r->hdr.id, g))
		return -EPROTO;         /* the client core matched it to a request: not ours */
	if (r->err)
		return r->err;
	e->strikes = 0;
	return 1;
}

static void progress(struct engine *e, uint64_t total)
{
	if (e->x->progress)
		e->x->progress(e->x->progress_arg, e->x->bytes < total ? e->x->bytes : total, total);
}

static void resend(void *arg, const struct proto_wlog_entry *w)
{
	give_back(arg, w->offset, w->len);
}

int apfp_xfer_put(struct apfpc *c, const struct proto_handle *fh, uint64_t size, struct apfp_xfer *x)
{
	struct engine e;
	struct proto_wlog *wl = malloc(sizeof(*wl));
	unsigned changes = 0;
	int rc = 0;

	engine_init(&e, c, x, size);
	uint8_t *buf = malloc(e.io);
	if (!buf || !wl) {
		rc = -ENOMEM;
		goto out;
	}
	proto_wlog_init(wl);
	for (;;) {
		/* Fill the pipeline; keep room in the log for every reply. */
		while (e.nfl < depth(&e) && wl->n + e.nfl < PROTO_WLOG_MAX && have_work(&e)) {
			struct range g = take(&e);
			if ((rc = x->src(x->arg, g.off, buf, g.len)) < 0) {
				x->local_error = true;
				goto out;
			}
			struct proto_write_req q = { *fh, g.off, PROTO_UNSTABLE, { buf, g.len } };
			if ((rc = launch(&e, PROTO_OP_WRITE, &q, g)))
				goto out;
		}
		if (e.nfl) {
			struct proto_client_reply r;
			struct range g;
			if ((rc = receive(&e, &r, &g)) <= 0) {
				if (rc)
					goto out;
				continue;
			}
			const struct proto_write_rep *w = (const void *)r.msg;
			if (w->count > g.len || !w->count) {
				snprintf(c->err, sizeof(c->err), "WRITE of %u bytes answered %u: a broken server", g.len,
					 w->count);
				rc = w->count ? -EBADMSG : -EIO;
				goto out;
			}
			if (w->committed == PROTO_UNSTABLE &&
			    (rc = proto_wlog_add(wl, fh, g.off, w->count, NULL, &w->verf)) < 0)
				goto out;       /* cannot happen: room was kept */
			if (w->count < g.len)
				give_back(&e, g.off + w->count, g.len - w->count);
			x->bytes += w->count;
			progress(&e, size);
			continue;
		}
		if (e.oom) {
			rc = -ENOMEM;
			goto out;
		}
		if (!have_work(&e) && !wl->n) {
			rc = 0;
			break;          /* everything answered and stable */
		}
		/* Nothing in flight: the log is full or all is written. */
		if (x->before_commit)
			x->before_commit(x->arg);
		struct proto_verf v;
		if ((rc = apfp_commit(c, fh, &v)))
			goto out;
		x->commits++;
		int handed = proto_wlog_commit(wl, fh, 0, 0, &v, resend, &e);
		if (handed > 0) {
			x->resent += (unsigned)handed;
			if (++changes > MAX_VERF_CHANGES) {
				snprintf(c->err, sizeof(c->err), "the server's write verifier changed %u times during "
					 "one transfer: it keeps losing unstable data", changes);
				rc = -EIO;
				goto out;
			}
		}
	}
out:
	free(buf);
	free(wl);
	free(e.todo);
	return rc;
}

int apfp_xfer_get(struct apfpc *c, const struct proto_handle *fh, uint64_t size, struct apfp_xfer *x,
		  uint64_t *got)
{
	struct engine e;
	uint64_t eof_at = UINT64_MAX, seen = 0;
	int rc = 0;

	engine_init(&e, c, x, size);
	e.reading = true;
	for (;;) {
		while (e.nfl < depth(&e) && have_work(&e)) {
			struct range g = take(&e);
			if (g.off >= eof_at)
				continue;
			if (g.off + g.len > eof_at)
				g.len = (uint32_t)(eof_at - g.off);
			struct proto_read_req q = { *fh, g.off, g.len };
			if ((rc = launch(&e, PROTO_OP_READ, &q, g)))
				goto out;
		}
		if (!e.nfl && !e.oom)
			break;
		struct proto_client_reply r;
		struct range g;
		if ((rc = receive(&e, &r, &g)) <= 0) {
			if (rc)
				goto out;
			continue;
		}
		const struct proto_read_rep *d = (const void *)r.msg;
		uint32_t n = d->data.len;
		if (n > g.len) {
			snprintf(c->err, sizeof(c->err), "READ of %u bytes answered %u: a broken server", g.len, n);
			rc = -EBADMSG;
			goto out;
		}
		if (n && (rc = x->sink(x->arg, g.off, d->data.p, n)) < 0) {
			x->local_error = true;
			goto out;
		}
		if (g.off + n > seen)
			seen = g.off + n;
		if (d->eof) {
			if (g.off + n < eof_at)
				eof_at = g.off + n;     /* the file is shorter than it was */
		} else if (n < g.len) {
			if (!n) {
				snprintf(c->err, sizeof(c->err), "READ at %llu returned nothing before the end of file",
					 (unsigned long long)g.off);
				rc = -EIO;
				goto out;
			}
			give_back(&e, g.off + n, g.len - n);
		}
		x->bytes += n;
		progress(&e, size);
	}
	*got = seen < eof_at ? seen : eof_at;
	rc = 0;
out:
	free(e.todo);
	return rc;
}
