/*
 * A small work queue (iomap/workq.c): completion work that may sleep
 * (filesystem end_io hooks, direct I/O completion, O_DSYNC flushes) runs
 * here instead of in a bio's end_io context.  Work items run in FIFO order
 * on `nthreads` threads; with 0 threads iomap_workq_queue runs the item on
 * the calling thread.
 */
#ifndef IOMAP_WORKQ_H
#define IOMAP_WORKQ_H

#include "platform/platform.h"

struct iomap_work {
	void (*fn)(struct iomap_work *w);
	struct iomap_work *next;
};

struct iomap_workq;
int iomap_workq_create(const char *name, unsigned nthreads, struct iomap_workq **out);
void iomap_workq_queue(struct iomap_workq *wq, struct iomap_work *w);
/* Runs every queued item, then stops the threads. */
void iomap_workq_destroy(struct iomap_workq *wq);

#endif
