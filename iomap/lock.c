/*
 * iomap_rwsem and the debug lock-order checker (see lock.h).
 */
#include "iomap/lock.h"

uint64_t iomap_lock_wait_ns = IOMAP_LOCK_WAIT_NS;

int iomap_rwsem_init(struct iomap_rwsem *l, const char *name, unsigned cls)
{
	l->state = 0;
	l->writers_waiting = 0;
	l->readers_waiting = 0;
	l->owner = 0;
	l->cls = cls;
	l->name = name;
	l->wq = plat_waitq_new(name);
	return l->wq ? 0 : -PLAT_ENOMEM;
}

void iomap_rwsem_destroy(struct iomap_rwsem *l)
{
	PLAT_ASSERT(plat_load(&l->state) == 0);
	plat_waitq_free(l->wq);
	l->wq = NULL;
}

static bool rw_try_shared(struct iomap_rwsem *l, bool polite)
{
	int s = plat_load(&l->state);
	while (s >= 0) {
		if (polite && plat_load(&l->writers_waiting))
			return false;
		if (plat_cas(&l->state, &s, s + 1))
			return true;
	}
	return false;
}

static bool rw_try_excl(struct iomap_rwsem *l)
{
	int zero = 0;
	if (!plat_cas(&l->state, &zero, -1))
		return false;
	l->owner = plat_thread_id();
	return true;
}

static bool rw_shared_cond(void *arg) { return rw_try_shared(arg, true); }
static bool rw_excl_cond(void *arg) { return rw_try_excl(arg); }

int iomap_lock(struct iomap_rwsem *l, unsigned flags)
{
	bool shared = flags & IOMAP_LOCK_SHARED;
	int ret = 0;
	iomap_lockdep_acquire(l->cls, flags & IOMAP_LOCK_TRY);
	if (shared ? rw_try_shared(l, true) : rw_try_excl(l))
		return 0;
	if (flags & IOMAP_LOCK_TRY) {
		ret = -PLAT_EAGAIN;
	} else if (shared) {
		plat_add(&l->readers_waiting, 1);
		ret = plat_wait_until(l->wq, rw_shared_cond, l, plat_time_ns() + iomap_lock_wait_ns);
		plat_sub(&l->readers_waiting, 1);
	} else {
		plat_add(&l->writers_waiting, 1);
		ret = plat_wait_until(l->wq, rw_excl_cond, l, plat_time_ns() + iomap_lock_wait_ns);
		plat_sub(&l->writers_waiting, 1);
		if (ret)
			plat_wake_all(l->wq);   /* readers held off by us */
	}
	if (ret) {
		if (ret == -PLAT_ETIMEDOUT)
			plat_log(PLAT_LOG_ERR, "%s: lock wait timed out", l->name);
		iomap_lockdep_release(l->cls);
	}
	return ret;
}

void iomap_unlock(struct iomap_rwsem *l, unsigned flags)
{
	if (flags & IOMAP_LOCK_SHARED) {
		int s = plat_sub(&l->state, 1);
		PLAT_ASSERT(s >= 0);
		if (s == 0)
			plat_wake_all(l->wq);
	} else {
		PLAT_ASSERT(plat_load(&l->state) == -1 && l->owner == plat_thread_id());
		l->owner = 0;
		plat_store(&l->state, 0);
		plat_wake_all(l->wq);
	}
	iomap_lockdep_release(l->cls);
}

bool iomap_rwsem_held(struct iomap_rwsem *l, bool exclusive)
{
	int s = plat_load(&l->state);
	if (exclusive)
		return s == -1 && l->owner == plat_thread_id();
	return s != 0;
}

/*
 * Lock-order checker.  The per-thread word holds a 6-bit count per class
 * (classes 1..4).  Acquiring class c while any class > c is held breaks
 * the documented order; try-locks are exempt because they cannot wait.
 */
unsigned long iomap_lockdep_violations;
bool iomap_lockdep_panic = true;
const char *iomap_lockdep_last;

extern bool iomap_debug;
static const char *const iomap_lc_names[] = { "?", "inode", "invalidate", "extent", "folio" };

void iomap_lockdep_acquire(unsigned cls, bool trylock)
{
	if (!iomap_debug)
		return;
	uint32_t *w = plat_thread_lockdep();
	if (!trylock) {
		for (unsigned c = cls + 1; c <= IOMAP_LC_FOLIO; c++) {
			if ((*w >> (6 * c)) & 63) {
				iomap_lockdep_last = iomap_lc_names[cls];
				plat_add(&iomap_lockdep_violations, 1);
				plat_log(PLAT_LOG_ERR, "lock order: %s lock taken while holding %s lock",
					 iomap_lc_names[cls], iomap_lc_names[c]);
				if (iomap_lockdep_panic)
					plat_panic(__FILE__, __LINE__, "lock order violation");
				break;
			}
		}
	}
	*w += 1u << (6 * cls);
}

void iomap_lockdep_release(unsigned cls)
{
	if (!iomap_debug)
		return;
	uint32_t *w = plat_thread_lockdep();
	PLAT_ASSERT((*w >> (6 * cls)) & 63);
	*w -= 1u << (6 * cls);
}
