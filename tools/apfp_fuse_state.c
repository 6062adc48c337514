/*
 * apfp-fuse: connection pool, node table and unstable-write log
 * (tools/apfp_fuse.h).
 */
#include "tools/apfp_fuse.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- connections ----------------------------------------------------------- */

int afuse_init(struct afuse *a)
{
	a->nbuckets = 4096;
	a->buckets = calloc(a->nbuckets, sizeof(*a->buckets));
	if (!a->buckets)
		return -ENOMEM;
	pthread_mutex_init(&a->nodes_lock, NULL);
	for (unsigned i = 0; i < AFUSE_MAX_CONNS; i++)
		pthread_mutex_init(&a->conns[i].lock, NULL);
	return 0;
}

void afuse_fini(struct afuse *a)
{
	for (unsigned i = 0; i < AFUSE_MAX_CONNS; i++)
		if (a->conns[i].open)
			apfpc_close(&a->conns[i].c);
	for (size_t b = 0; b < a->nbuckets; b++) {
		for (struct afuse_node *n = a->buckets[b], *next; n; n = next) {
			next = n->next;
			if (n->wl)
				for (unsigned i = 0; i < n->wl->n; i++)
					free((void *)n->wl->e[i].data);
			free(n->wl);
			free(n);
		}
	}
	free(a->buckets);
}

static _Thread_local int my_slot = -1;
static atomic_uint next_slot;

struct afuse_conn *afuse_get(struct afuse *a, int *err)
{
	if (my_slot < 0)
		my_slot = (int)(atomic_fetch_add(&next_slot, 1) % a->nconns);
	struct afuse_conn *k = &a->conns[my_slot];
	pthread_mutex_lock(&k->lock);
	if (!k->open) {
		int rc = apfpc_open(&k->c, &a->cfg);
		if (rc) {
			*err = afuse_fail(a, k, "connecting", rc);
			apfpc_close(&k->c);     /* its buffer: the next request tries again */
			pthread_mutex_unlock(&k->lock);
			return NULL;
		}
		k->open = true;
	}
	return k;
}

void afuse_put(struct afuse_conn *k)
{
	pthread_mutex_unlock(&k->lock);
}

/* Failures of the connection itself, as opposed to the server's answers. */
static bool transport_error(int rc)
{
	switch (rc) {
	case -ETIMEDOUT: case -ECONNREFUSED: case -ECONNRESET: case -ENOTCONN: case -EPIPE: case -EHOSTUNREACH:
	case -ENETUNREACH: case -ECONNABORTED:
		return true;
	default:
		return false;
	}
}

int afuse_fail(struct afuse *a, struct afuse_conn *k, const char *what, int rc)
{
	static atomic_llong last_said;
	if (rc >= 0)
		return 0;
	bool broken = transport_error(rc) || (k->open && k->c.fd < 0);
	if (!broken)
		return -rc;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	long long now = ts.tv_sec, prev = atomic_load(&last_said);
	if (now != prev && atomic_compare_exchange_strong(&last_said, &prev, now))
		fprintf(stderr, "apfp-fuse: %s:%u/%s: %s: %s\n", a->cfg.host, a->cfg.port, a->export, what,
			k->c.err[0] ? k->c.err : strerror(-rc));
	return rc == -ETIMEDOUT ? ETIMEDOUT : EIO;
}

/* ---- nodes ------------------------------------------------------------------- */

uint64_t afuse_node_id(struct afuse *a, const struct proto_attr *attr)
{
	return attr->ino == a->root.attr.ino ? 1 : attr->ino;
}

static struct afuse_node **slot_of(struct afuse *a, uint64_t id)
{
	struct afuse_node **p = &a->buckets[(id * 0x9e3779b97f4a7c15ull >> 40) % a->nbuckets];
	while (*p && (*p)->id != id)
		p = &(*p)->next;
	return p;
}

int afuse_node_ref(struct afuse *a, const struct apfp_obj *o, uint64_t *id)
{
	*id = afuse_node_id(a, &o->attr);
	pthread_mutex_lock(&a->nodes_lock);
	struct afuse_node **p = slot_of(a, *id), *n = *p;
	if (!n) {
		n = calloc(1, sizeof(*n));
		if (!n) {
			pthread_mutex_unlock(&a->nodes_lock);
			return -ENOMEM;
		}
		n->id = *id;
		pthread_mutex_init(&n->wlock, NULL);
		*p = n;
	}
	/* A newer generation is a new file under a reused number: the kernel
	 * learns it from the entry's generation, we from the handle. */
	n->fh = o->fh;
	n->gen = o->attr.gen;
	n->nlookup++;
	pthread_mutex_unlock(&a->nodes_lock);
	return 0;
}

void afuse_node_forget(struct afuse *a, uint64_t id, uint64_t count)
{
	if (id == 1)
		return;                 /* the root is never looked up, never forgotten */
	pthread_mutex_lock(&a->nodes_lock);
	struct afuse_node **p = slot_of(a, id), *n = *p;
	if (n) {
		n->nlookup = n->nlookup > count ? n->nlookup - count : 0;
		if (!n->nlookup) {
			*p = n->next;
			/* released files committed their writes; anything left
			 * here was written through a file that was never
			 * released, which the kernel does not do */
			if (n->wl)
				for (unsigned i = 0; i < n->wl->n; i++)
					free((void *)n->wl->e[i].data);
			free(n->wl);
			free(n);
		}
	}
	pthread_mutex_unlock(&a->nodes_lock);
}

struct afuse_node *afuse_node_find_locked(struct afuse *a, uint64_t id)
{
	return *slot_of(a, id);
}

struct afuse_node *afuse_node_find(struct afuse *a, uint64_t id)
{
	pthread_mutex_lock(&a->nodes_lock);
	struct afuse_node *n = *slot_of(a, id);
	pthread_mutex_unlock(&a->nodes_lock);
	return n;
}

int afuse_node_fh(struct afuse *a, uint64_t id, struct proto_handle *fh)
{
	if (id == 1) {
		*fh = a->root.fh;
		return 0;
	}
	pthread_mutex_lock(&a->nodes_lock);
	struct afuse_node *n = *slot_of(a, id);
	if (n)
		*fh = n->fh;
	pthread_mutex_unlock(&a->nodes_lock);
	return n ? 0 : -ESTALE;
}

/* ---- unstable writes ------------------------------------------------------- */

/* A write that cannot be sent again after a lost connection would leave the
 * caller unsure what happened: writing the same bytes at the same offset
 * twice is harmless, so repeat it once here (the library repeats only what
 * any server may run twice). */
static int write_once_more(struct apfpc *c, const struct proto_handle *fh, uint64_t off, const void *buf,
			   uint32_t len, uint8_t stable, uint32_t *n, struct proto_verf *verf)
{
	int rc = apfp_write(c, fh, off, buf, len, stable, n, verf);
	if (rc < 0 && c->fd < 0)
		rc = apfp_write(c, fh, off, buf, len, stable, n, verf);
	return rc;
}

struct resend_list {
	struct proto_wlog_entry e[PROTO_WLOG_MAX];
	unsigned n;
};

static void collect_resend(void *arg, const struct proto_wlog_entry *e)
{
	struct resend_list *l = arg;
	l->e[l->n++] = *e;
}

static bool data_in(const struct proto_wlog_entry *e, unsigned n, const void *data)
{
	for (unsigned i = 0; i < n; i++)
		if (e[i].data == data)
			return true;
	return false;
}

/* With nd->wlock held. */
static int commit_locked(struct afuse *a, struct afuse_conn *k, struct afuse_node *nd)
{
	struct proto_wlog *wl = nd->wl;
	if (!wl || !wl->n)
		return 0;
	struct resend_list *rs = malloc(sizeof(*rs));
	const void **before = malloc(PROTO_WLOG_MAX * sizeof(*before));
	int rc = 0;
	if (!rs || !before) {
		rc = -ENOMEM;
		goto out;
	}
	/* A verifier that keeps changing is a server restarting in a loop:
	 * give up after a few rounds rather than resend forever. */
	for (unsigned round = 0; wl->n; round++) {
		if (round == 4) {
			rc = -EIO;
			fprintf(stderr, "apfp-fuse: the server's write verifier changed %u times during one commit\n",
				round);
			break;
		}
		unsigned nb = wl->n;
		struct proto_verf verf;
		for (unsigned i = 0; i < nb; i++)
			before[i] = wl->e[i].data;
		if ((rc = apfp_commit(&k->c, &nd->fh, &verf)))
			break;
		rs->n = 0;
		proto_wlog_commit(wl, &nd->fh, 0, 0, &verf, collect_resend, rs);
		for (unsigned i = 0; i < nb; i++)
			if (!data_in(wl->e, wl->n, before[i]) && !data_in(rs->e, rs->n, before[i]))
				free((void *)before[i]);
		nd->unstable_bytes = 0;
		for (unsigned i = 0; i < wl->n; i++)
			nd->unstable_bytes += wl->e[i].len;
		if (rs->n)
			fprintf(stderr, "apfp-fuse: the server restarted (write verifier changed): writing %u "
				"uncommitted writes again\n", rs->n);
		for (unsigned i = 0; i < rs->n; i++) {
			struct proto_wlog_entry *e = &rs->e[i];
			uint32_t n = 0;
			if (!rc)
				rc = write_once_more(&k->c, &e->fh, e->offset, e->data, e->len, PROTO_UNSTABLE, &n,
						     &verf);
			if (!rc && n != e->len)
				rc = -EIO;
			if (!rc && !proto_wlog_add(wl, &e->fh, e->offset, e->len, e->data, &verf)) {
				nd->unstable_bytes += e->len;
				a->resent++;
				continue;
			}
			free((void *)e->data);  /* lost: the error below says so */
			if (!rc)
				rc = -EIO;
		}
		if (rc)
			break;
	}
out:
	free(rs);
	free(before);
	return rc;
}

bool afuse_pending(struct afuse_node *nd)
{
	pthread_mutex_lock(&nd->wlock);
	bool any = nd->wl && nd->wl->n;
	pthread_mutex_unlock(&nd->wlock);
	return any;
}

int afuse_commit(struct afuse *a, struct afuse_conn *k, struct afuse_node *nd)
{
	pthread_mutex_lock(&nd->wlock);
	int rc = commit_locked(a, k, nd);
	pthread_mutex_unlock(&nd->wlock);
	return rc;
}

int afuse_write_unstable(struct afuse *a, struct afuse_conn *k, struct afuse_node *nd, uint64_t off,
			 const void *buf, uint32_t len, uint32_t *n)
{
	void *copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, buf, len);
	struct proto_verf verf;
	int rc = write_once_more(&k->c, &nd->fh, off, copy, len, PROTO_UNSTABLE, n, &verf);
	if (rc || !*n) {
		free(copy);
		return rc;
	}
	pthread_mutex_lock(&nd->wlock);
	if (!nd->wl && !(nd->wl = calloc(1, sizeof(*nd->wl)))) {
		rc = -ENOMEM;
		goto out_unlock;
	}
	if (nd->wl->n == PROTO_WLOG_MAX || nd->unstable_bytes + *n > AFUSE_UNSTABLE_MAX)
		rc = commit_locked(a, k, nd);
	if (!rc)
		rc = proto_wlog_add(nd->wl, &nd->fh, off, *n, copy, &verf);
	if (!rc) {
		nd->unstable_bytes += *n;
		pthread_mutex_unlock(&nd->wlock);
		return 0;
	}
out_unlock:
	pthread_mutex_unlock(&nd->wlock);
	free(copy);
	return rc;
}

int afuse_commit_all(struct afuse *a)
{
	int err = 0, first = 0;
	struct afuse_conn *k = afuse_get(a, &err);
	if (!k)
		return -err;
	pthread_mutex_lock(&a->nodes_lock);
	for (size_t b = 0; b < a->nbuckets; b++)
		for (struct afuse_node *n = a->buckets[b]; n; n = n->next)
			if (afuse_pending(n) && (err = afuse_commit(a, k, n)) && !first)
				first = err;
	pthread_mutex_unlock(&a->nodes_lock);
	afuse_put(k);
	return first;
}
