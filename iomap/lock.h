/*
 * Per-inode locks of the iomap core (iomap/lock.c).
 *
 * iomap_rwsem: shared/exclusive sleeping lock with try modes (DIO-1):
 *   iomap_lock(l, 0)                      exclusive
 *   iomap_lock(l, IOMAP_LOCK_SHARED)      shared
 *   ... | IOMAP_LOCK_TRY                  never sleeps: -EAGAIN if busy
 * Blocking modes wait at most iomap_lock_wait_ns (IOMAP_LOCK_WAIT_NS unless
 * a test shortens it) and then return -ETIMEDOUT (a diagnosed deadlock);
 * callers propagate it.  Waiting writers hold off new shared lockers, so a
 * stream of readers cannot starve truncate (DIO-T8); a writer that gives up
 * wakes the readers it held off.
 *
 * Lock order (COW-38, DIO-10, DIO-31), checked when iomap_debug is set by a
 * per-thread record of the classes held:
 *   inode I/O lock (1) -> invalidate lock (2) -> extent range (3) -> folio (4)
 * Taking a class while holding a higher one is a violation, except with
 * IOMAP_LOCK_TRY (writeback under a folio lock try-locks extents, COW-39).
 */
#ifndef IOMAP_LOCK_H
#define IOMAP_LOCK_H

#include "platform/platform.h"

enum iomap_lock_class {
	IOMAP_LC_INODE = 1,
	IOMAP_LC_INVALIDATE = 2,
	IOMAP_LC_EXTENT = 3,
	IOMAP_LC_FOLIO = 4,
};

#define IOMAP_LOCK_SHARED 0x1u
#define IOMAP_LOCK_TRY    0x2u
#define IOMAP_LOCK_WAIT_NS (60ull * 1000000000ull)
extern uint64_t iomap_lock_wait_ns;

struct iomap_rwsem {
	int state;           /* >0 readers, -1 writer, 0 free (atomic) */
	int writers_waiting; /* atomic */
	int readers_waiting; /* atomic (diagnostics, tests) */
	unsigned owner;      /* plat_thread_id of the exclusive holder */
	unsigned cls;
	struct plat_waitq *wq;
	const char *name;
};

int iomap_rwsem_init(struct iomap_rwsem *l, const char *name, unsigned cls);
void iomap_rwsem_destroy(struct iomap_rwsem *l);
int iomap_lock(struct iomap_rwsem *l, unsigned flags);
void iomap_unlock(struct iomap_rwsem *l, unsigned flags);
/* exclusive: held exclusively by the caller; else held in any mode by
 * someone (shared holders are not tracked individually). */
bool iomap_rwsem_held(struct iomap_rwsem *l, bool exclusive);

/* Lock-order checker; no-ops unless iomap_debug (see iomap.h). */
void iomap_lockdep_acquire(unsigned cls, bool trylock);
void iomap_lockdep_release(unsigned cls);
extern unsigned long iomap_lockdep_violations;
extern bool iomap_lockdep_panic;   /* default true; tests may clear it */
extern const char *iomap_lockdep_last;

#endif
