/* Work queue (see workq.h). */
#include "iomap/workq.h"

struct iomap_workq {
	struct plat_spin *lock;
	struct iomap_work *head, *tail;
	struct plat_waitq *wq;
	int stop;
	unsigned nthreads;
	struct plat_thread **threads;
};

static struct iomap_work *wq_pop(struct iomap_workq *q)
{
	plat_spin_lock(q->lock);
	struct iomap_work *w = q->head;
	if (w) {
		q->head = w->next;
		if (!q->head)
			q->tail = NULL;
	}
	plat_spin_unlock(q->lock);
	return w;
}

static bool wq_cond(void *arg)
{
	struct iomap_workq *q = arg;
	return plat_load(&q->head) != NULL || plat_load(&q->stop);
}

static void wq_thread(void *arg)
{
	struct iomap_workq *q = arg;
	for (;;) {
		struct iomap_work *w = wq_pop(q);
		if (w) {
			w->fn(w);
			continue;
		}
		if (plat_load(&q->stop))
			return;
		plat_wait_until(q->wq, wq_cond, q, plat_time_ns() + 1000000000ull);
	}
}

int iomap_workq_create(const char *name, unsigned nthreads, struct iomap_workq **out)
{
	struct iomap_workq *q = plat_zalloc(sizeof(*q));
	if (!q)
		return -PLAT_ENOMEM;
	q->lock = plat_spin_new(name);
	q->wq = plat_waitq_new(name);
	q->threads = plat_zalloc((nthreads + 1) * sizeof(*q->threads));
	if (!q->lock || !q->wq || !q->threads) {
		iomap_workq_destroy(q);
		return -PLAT_ENOMEM;
	}
	for (unsigned i = 0; i < nthreads; i++) {
		q->threads[i] = plat_thread_create(name, wq_thread, q);
		if (!q->threads[i]) {
			iomap_workq_destroy(q);
			return -PLAT_ENOMEM;
		}
		q->nthreads++;
	}
	*out = q;
	return 0;
}

void iomap_workq_queue(struct iomap_workq *q, struct iomap_work *w)
{
	if (!q || !q->nthreads) {
		w->fn(w);
		return;
	}
	w->next = NULL;
	plat_spin_lock(q->lock);
	if (q->tail)
		q->tail->next = w;
	else
		q->head = w;
	q->tail = w;
	plat_spin_unlock(q->lock);
	plat_wake_all(q->wq);
}

void iomap_workq_destroy(struct iomap_workq *q)
{
	if (!q)
		return;
	plat_store(&q->stop, 1);
	if (q->wq)
		plat_wake_all(q->wq);
	for (unsigned i = 0; i < q->nthreads; i++)
		if (plat_thread_join(q->threads[i], plat_time_ns() + 60ull * 1000000000ull))
			plat_log(PLAT_LOG_ERR, "workq: thread did not stop");
	struct iomap_work *w;
	while (q->lock && (w = wq_pop(q)))
		w->fn(w);
	plat_free(q->threads);
	plat_waitq_free(q->wq);
	plat_spin_free(q->lock);
	plat_free(q);
}
