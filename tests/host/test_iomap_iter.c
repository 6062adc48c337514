/*
 * iomap iterator, mapping validator and per-inode locks.
 * Requirement numbers: COW-n = iomap-cow-btrfs.md §8, DIO-n / DIO-Tn =
 * iomap-dio-locking-folio-ops.md Part C, EXT-n = iomap-ext4-... §4.
 */
#define TEST_SUITE "iomap_iter"
#include "tests/host/test.h"
#include "iomap/iomap.h"
#include <pthread.h>

/* A scripted filesystem: begin returns maps[] in order. */
struct script {
	struct iomap maps[8], srcs[8];
	unsigned n, next;
	uint64_t end_pos[8], end_len[8];
	int64_t end_written[8];
	unsigned ends;
	bool src_was_zero[8];
	void *priv_seen[8];
};
static struct script S;
static struct iomap_inode INO = { .blkbits = 12 };

static int sc_begin(struct iomap_inode *inode, uint64_t pos, uint64_t len, unsigned flags,
		    struct iomap *iomap, struct iomap *srcmap)
{
	(void)inode; (void)pos; (void)len; (void)flags;
	if (S.next >= S.n)
		return -PLAT_EIO;
	S.src_was_zero[S.next] = srcmap->type == IOMAP_NONE && srcmap->length == 0;
	*iomap = S.maps[S.next];
	*srcmap = S.srcs[S.next];
	iomap->private = &S.maps[S.next];
	S.next++;
	return 0;
}

static int sc_end(struct iomap_inode *inode, uint64_t pos, uint64_t len, int64_t written, unsigned flags,
		  struct iomap *iomap)
{
	(void)inode; (void)flags;
	S.end_pos[S.ends] = pos;
	S.end_len[S.ends] = len;
	S.end_written[S.ends] = written;
	S.priv_seen[S.ends] = iomap->private;
	S.ends++;
	return 0;
}

static const struct iomap_ops sc_ops = { sc_begin, sc_end };

static struct iomap MAP(uint64_t off, uint64_t len, int type, uint64_t addr)
{
	struct iomap m = { .offset = off, .length = len, .type = (uint16_t)type, .addr = addr,
			   .bdev = (struct plat_bdev *)&INO };
	if (type == IOMAP_HOLE || type == IOMAP_DELALLOC)
		m.addr = IOMAP_NULL_ADDR;
	return m;
}

static void reset(void)
{
	memset(&S, 0, sizeof(S));
}

/* COW-4: each step is clamped to request, destination and source ends;
 * COW-5: end receives exactly the bytes processed; COW-6: private travels
 * from begin to end; COW-1: the srcmap is zeroed before every begin. */
TEST(cow4_clamp_and_end_written)
{
	reset();
	S.maps[0] = MAP(0, 64 << 10, IOMAP_DELALLOC, 0);
	S.srcs[0] = MAP(0, 8 << 10, IOMAP_MAPPED, 1 << 20);
	S.maps[1] = MAP(0, 32 << 10, IOMAP_DELALLOC, 0);
	S.maps[2] = MAP(32 << 10, 64 << 10, IOMAP_MAPPED, 4 << 20);
	S.n = 3;
	struct iomap_iter it = { .inode = &INO, .pos = 4096, .len = 40 << 10, .flags = IOMAP_WRITE };
	uint64_t lens[4];
	unsigned rounds = 0;
	int ret;
	while ((ret = iomap_iter(&it, &sc_ops)) > 0) {
		lens[rounds] = iomap_length(&it);
		EXPECT(iomap_iter_srcmap(&it) == (rounds == 0 ? &it.srcmap : &it.iomap)); /* COW-3 */
		it.processed = (int64_t)lens[rounds];
		rounds++;
	}
	EXPECT_EQ_INT(ret, 0);
	EXPECT_EQ_INT(rounds, 3);
	EXPECT_EQ_INT(lens[0], 4096);               /* source ends at 8 KiB */
	EXPECT_EQ_INT(lens[1], (32 << 10) - 8192);  /* destination ends at 32 KiB */
	EXPECT_EQ_INT(lens[2], (44 << 10) - (32 << 10)); /* request end */
	EXPECT_EQ_INT(S.ends, 3);
	EXPECT_EQ_INT(S.end_written[0], 4096);
	EXPECT(S.src_was_zero[0] && S.src_was_zero[1] && S.src_was_zero[2]);
	EXPECT(S.priv_seen[1] == &S.maps[1]);
	EXPECT_EQ_INT(it.done, 40 << 10);
}

/* COW-5: a short actor ends the iteration and end sees the short count. */
TEST(cow5_short_actor)
{
	reset();
	S.maps[0] = MAP(0, 64 << 10, IOMAP_MAPPED, 1 << 20);
	S.n = 1;
	struct iomap_iter it = { .inode = &INO, .pos = 0, .len = 16384, .flags = IOMAP_WRITE };
	int ret, rounds = 0;
	while ((ret = iomap_iter(&it, &sc_ops)) > 0) {
		it.processed = rounds++ ? 0 : 4096;
	}
	EXPECT_EQ_INT(ret, -PLAT_EIO); /* second begin: script exhausted */
	EXPECT_EQ_INT(S.end_written[0], 4096);
	EXPECT_EQ_INT(S.end_len[0], 16384);
	reset();
	S.maps[0] = MAP(0, 64 << 10, IOMAP_MAPPED, 1 << 20);
	S.maps[1] = MAP(4096, 64 << 10, IOMAP_MAPPED, 1 << 20);
	S.n = 2;
	it = (struct iomap_iter){ .inode = &INO, .pos = 0, .len = 16384, .flags = IOMAP_WRITE };
	rounds = 0;
	while ((ret = iomap_iter(&it, &sc_ops)) > 0)
		it.processed = rounds++ ? 0 : 4096;
	EXPECT_EQ_INT(ret, 0);
	EXPECT_EQ_INT(it.done, 4096);
	EXPECT_EQ_INT(S.end_written[1], 0);
}

/* DIO-34: a stale pass with zero progress still re-maps at the same pos. */
TEST(dio34_stale_restart)
{
	reset();
	S.maps[0] = MAP(0, 64 << 10, IOMAP_DELALLOC, 0);
	S.maps[1] = MAP(0, 64 << 10, IOMAP_DELALLOC, 0);
	S.n = 2;
	struct iomap_iter it = { .inode = &INO, .pos = 8192, .len = 4096, .flags = IOMAP_WRITE };
	int ret, rounds = 0;
	while ((ret = iomap_iter(&it, &sc_ops)) > 0) {
		if (rounds++ == 0) {
			it.iomap.flags |= IOMAP_F_STALE;
			it.processed = 0;
		} else {
			it.processed = 4096;
		}
	}
	EXPECT_EQ_INT(ret, 0);
	EXPECT_EQ_INT(rounds, 2);
	EXPECT_EQ_INT(S.end_written[0], 0);
	EXPECT_EQ_INT(S.end_pos[1], 8192);
	EXPECT_EQ_INT(it.stale_restarts, 1);
}

/* Actor errors propagate and end still runs (COW-24: no waiter hangs). */
TEST(cow24_actor_error_calls_end)
{
	reset();
	S.maps[0] = MAP(0, 64 << 10, IOMAP_MAPPED, 1 << 20);
	S.n = 1;
	struct iomap_iter it = { .inode = &INO, .pos = 0, .len = 8192, .flags = IOMAP_WRITE };
	int ret;
	while ((ret = iomap_iter(&it, &sc_ops)) > 0)
		it.processed = -PLAT_ENOSPC;
	EXPECT_EQ_INT(ret, -PLAT_ENOSPC);
	EXPECT_EQ_INT(S.ends, 1);
	EXPECT_EQ_INT(S.end_written[0], 0);
}

static const char *check(struct iomap m, struct iomap s, uint64_t pos, unsigned flags)
{
	struct iomap_iter it = { .inode = &INO, .pos = pos, .len = 4096, .flags = flags };
	it.iomap = m;
	it.srcmap = s;
	return iomap_check_mapping(&it);
}

static bool has(const char *r, const char *prefix)
{
	return r && strncmp(r, prefix, strlen(prefix)) == 0;
}

/* COW-7: the debug validator names each broken rule. */
TEST(cow7_validator_rules)
{
	struct iomap none = { 0 };
	EXPECT(check(MAP(0, 8192, IOMAP_MAPPED, 4096), none, 4096, 0) == NULL);
	EXPECT(has(check(MAP(0, 0, IOMAP_MAPPED, 4096), none, 0, 0), "length"));
	EXPECT(has(check(MAP(8192, 4096, IOMAP_MAPPED, 4096), none, 4096, 0), "offset"));
	EXPECT(has(check(MAP(0, 4096, IOMAP_MAPPED, 4096), none, 4096, 0), "pos"));
	struct iomap h = MAP(0, 4096, IOMAP_HOLE, 0);
	h.addr = 8192;
	EXPECT(has(check(h, none, 0, 0), "addr"));
	EXPECT(has(check(MAP(0, 4096, IOMAP_MAPPED, IOMAP_NULL_ADDR), none, 0, 0), "addr"));
	EXPECT(has(check(MAP(512, 4096, IOMAP_MAPPED, 4096), none, 1024, 0), "align"));
	struct iomap bad = MAP(0, 4096, 9, 0);
	EXPECT(has(check(bad, none, 0, 0), "type"));
	/* Source map on a read: refused. */
	EXPECT(has(check(MAP(0, 8192, IOMAP_DELALLOC, 0), MAP(0, 8192, IOMAP_MAPPED, 4096), 0, IOMAP_READ),
		   "srcmap: source map on a read"));
	/* Source not covering pos. */
	EXPECT(has(check(MAP(0, 8192, IOMAP_DELALLOC, 0), MAP(0, 4096, IOMAP_MAPPED, 4096), 4096, IOMAP_WRITE),
		   "srcmap: source does not cover"));
	/* COW with inline: illegal combination. */
	struct iomap in = MAP(0, 4096, IOMAP_INLINE, 0);
	in.addr = IOMAP_NULL_ADDR;
	in.inline_data = &in;
	EXPECT(has(check(in, MAP(0, 4096, IOMAP_MAPPED, 4096), 0, IOMAP_WRITE), "cow"));
	EXPECT(check(MAP(0, 8192, IOMAP_DELALLOC, 0), MAP(0, 8192, IOMAP_MAPPED, 4096), 0, IOMAP_WRITE) == NULL);
	EXPECT(check(MAP(0, 8192, IOMAP_DELALLOC, 0), MAP(0, 8192, IOMAP_MAPPED, 4096), 0, IOMAP_ZERO) == NULL);
}

/* COW-9: every mapping with data on disk names its device, the source map
 * too; a mapping with an address but no device is refused by its own rule
 * (every other test mapping sets a device, so only this catches the rule
 * going missing). */
TEST(cow9_mapping_needs_device)
{
	struct iomap none = { 0 };
	struct iomap m = MAP(0, 8192, IOMAP_MAPPED, 4096);
	m.bdev = NULL;
	EXPECT(has(check(m, none, 4096, 0), "addr: mapped/unwritten mapping without address or device"));
	m.type = IOMAP_UNWRITTEN;
	EXPECT(has(check(m, none, 4096, 0), "addr: mapped/unwritten mapping without address or device"));
	struct iomap e = MAP(0, 8192, IOMAP_ENCODED, 4096);
	e.io_size = 4096;
	EXPECT(check(e, none, 4096, 0) == NULL);
	e.bdev = NULL;
	EXPECT(has(check(e, none, 4096, 0), "encoded: encoded mapping without address, device"));
	struct iomap s = MAP(0, 8192, IOMAP_MAPPED, 4096);
	s.bdev = NULL;
	EXPECT(has(check(MAP(0, 8192, IOMAP_DELALLOC, 0), s, 0, IOMAP_WRITE),
		   "srcmap: mapped source without address or device"));
	/* A hole needs no device. */
	struct iomap h = MAP(0, 8192, IOMAP_HOLE, 0);
	h.bdev = NULL;
	EXPECT(check(h, none, 4096, 0) == NULL);
}

/* COW-7: with debug on, the iterator refuses a bad mapping with -EIO and
 * still calls end. */
TEST(cow7_iterator_validates)
{
	reset();
	S.maps[0] = MAP(8192, 4096, IOMAP_MAPPED, 4096);  /* starts after pos */
	S.n = 1;
	unsigned long before = iomap_bad_mappings;
	struct iomap_iter it = { .inode = &INO, .pos = 0, .len = 4096, .flags = IOMAP_READ };
	int ret = iomap_iter(&it, &sc_ops);
	EXPECT_EQ_INT(ret, -PLAT_EIO);
	EXPECT_EQ_INT(iomap_bad_mappings, before + 1);
	EXPECT_EQ_INT(S.ends, 1);
}

/* DIO-1: exclusive, shared, try modes; a failed try returns EAGAIN. */
TEST(dio1_rwsem_modes)
{
	struct iomap_rwsem l;
	EXPECT_EQ_INT(iomap_rwsem_init(&l, "t", IOMAP_LC_INODE), 0);
	EXPECT_EQ_INT(iomap_lock(&l, IOMAP_LOCK_SHARED), 0);
	EXPECT_EQ_INT(iomap_lock(&l, IOMAP_LOCK_SHARED | IOMAP_LOCK_TRY), 0);
	EXPECT_EQ_INT(iomap_lock(&l, IOMAP_LOCK_TRY), -PLAT_EAGAIN);
	EXPECT(iomap_rwsem_held(&l, false));
	iomap_unlock(&l, IOMAP_LOCK_SHARED);
	iomap_unlock(&l, IOMAP_LOCK_SHARED);
	EXPECT_EQ_INT(iomap_lock(&l, 0), 0);
	EXPECT(iomap_rwsem_held(&l, true));
	EXPECT_EQ_INT(iomap_lock(&l, IOMAP_LOCK_SHARED | IOMAP_LOCK_TRY), -PLAT_EAGAIN);
	EXPECT_EQ_INT(iomap_lock(&l, IOMAP_LOCK_TRY), -PLAT_EAGAIN);
	iomap_unlock(&l, 0);
	iomap_rwsem_destroy(&l);
}

struct rw_arg {
	struct iomap_rwsem *l;
	int stop, inside, max_inside, writer_done;
	long rounds;
};

static void *reader_thread(void *p)
{
	struct rw_arg *a = p;
	while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
		if (iomap_lock(a->l, IOMAP_LOCK_SHARED))
			break;
		int n = __atomic_add_fetch(&a->inside, 1, __ATOMIC_ACQ_REL);
		int m = __atomic_load_n(&a->max_inside, __ATOMIC_RELAXED);
		while (n > m && !__atomic_compare_exchange_n(&a->max_inside, &m, n, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			;
		plat_sleep_ns(20000);
		__atomic_sub_fetch(&a->inside, 1, __ATOMIC_ACQ_REL);
		iomap_unlock(a->l, IOMAP_LOCK_SHARED);
		__atomic_add_fetch(&a->rounds, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* DIO-T4 (shared holders overlap) and DIO-T8 (an exclusive locker is not
 * starved by a continuous stream of shared lockers). */
TEST(dio_t8_writer_not_starved)
{
	struct iomap_rwsem l;
	iomap_rwsem_init(&l, "t8", IOMAP_LC_INODE);
	struct rw_arg a = { .l = &l };
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, reader_thread, &a);
	plat_sleep_ns(20 * 1000000ull);
	long rounds_before = __atomic_load_n(&a.rounds, __ATOMIC_ACQUIRE);
	EXPECT_EQ_INT(iomap_lock(&l, 0), 0);
	long rounds_while_waiting = __atomic_load_n(&a.rounds, __ATOMIC_ACQUIRE) - rounds_before;
	EXPECT_EQ_INT(__atomic_load_n(&a.inside, __ATOMIC_ACQUIRE), 0);
	iomap_unlock(&l, 0);
	__atomic_store_n(&a.stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	/* Not a stopwatch: once the writer waits, each reader may finish the
	 * round it is in (and one more that raced with the writer's arrival),
	 * but none may start again before the writer had its turn. */
	if (rounds_while_waiting > 8)
		printf("# %ld reader rounds completed while the writer waited\n", rounds_while_waiting);
	EXPECT(rounds_while_waiting <= 8);
	EXPECT(a.max_inside >= 2);
	iomap_rwsem_destroy(&l);
}

struct timeout_arg { struct iomap_rwsem *l; unsigned flags; int ret; uint64_t deadline, done; };

static void *lock_and_release(void *p)
{
	struct timeout_arg *a = p;
	a->deadline = plat_time_ns() + iomap_lock_wait_ns;
	a->ret = iomap_lock(a->l, a->flags);
	a->done = plat_time_ns();
	if (a->ret == 0)
		iomap_unlock(a->l, a->flags);
	return NULL;
}

static void wait_for_count(int *counter, int n)
{
	for (int i = 0; i < 5000 && __atomic_load_n(counter, __ATOMIC_ACQUIRE) < n; i++)
		plat_sleep_ns(1000000);
}

/* Every wait has a deadline: a blocked locker gives up with -ETIMEDOUT (a
 * diagnosed deadlock, logged), leaves no trace of its wait, and an exclusive
 * waiter that gives up wakes the shared lockers it was holding off (DIO-T8's
 * politeness must not turn a timeout into a second hang). */
TEST(dio_lock_wait_gives_up_at_its_deadline)
{
	struct iomap_rwsem l;
	EXPECT_EQ_INT(iomap_rwsem_init(&l, "deadline", IOMAP_LC_INODE), 0);
	uint64_t saved = iomap_lock_wait_ns;
	EXPECT_EQ_INT(iomap_lock(&l, IOMAP_LOCK_SHARED), 0);   /* held by the test throughout */

	iomap_lock_wait_ns = 50 * 1000000ull;
	struct timeout_arg w = { &l, 0, 1, 0, 0 }, r = { &l, IOMAP_LOCK_SHARED, 1, 0, 0 };
	pthread_t tw, tr;
	pthread_create(&tw, NULL, lock_and_release, &w);
	wait_for_count(&l.writers_waiting, 1);
	iomap_lock_wait_ns = 20000 * 1000000ull;  /* the reader may wait far longer */
	pthread_create(&tr, NULL, lock_and_release, &r);
	wait_for_count(&l.readers_waiting, 1);
	pthread_join(tw, NULL);
	pthread_join(tr, NULL);
	EXPECT_EQ_INT(w.ret, -PLAT_ETIMEDOUT);
	/* The reader got in because it was woken, not because its own wait ran
	 * out (at which point the condition would hold again anyway). */
	EXPECT_EQ_INT(r.ret, 0);
	EXPECT(r.done < r.deadline);
	EXPECT_EQ_INT(plat_load(&l.writers_waiting), 0);
	EXPECT_EQ_INT(plat_load(&l.readers_waiting), 0);

	/* A shared locker behind an exclusive holder times out the same way. */
	iomap_unlock(&l, IOMAP_LOCK_SHARED);
	EXPECT_EQ_INT(iomap_lock(&l, 0), 0);
	iomap_lock_wait_ns = 50 * 1000000ull;
	struct timeout_arg s = { &l, IOMAP_LOCK_SHARED, 1, 0, 0 };
	pthread_t ts;
	pthread_create(&ts, NULL, lock_and_release, &s);
	pthread_join(ts, NULL);
	EXPECT_EQ_INT(s.ret, -PLAT_ETIMEDOUT);
	iomap_unlock(&l, 0);
	EXPECT_EQ_INT(plat_load(&l.state), 0);
	iomap_lock_wait_ns = saved;
	iomap_rwsem_destroy(&l);
}

/* COW-38 / DIO-10: lock order inode -> invalidate -> extent -> folio is
 * asserted; try-locks are exempt (COW-39). */
TEST(cow38_lock_order_checker)
{
	struct iomap_rwsem ino, ext;
	iomap_rwsem_init(&ino, "ino", IOMAP_LC_INODE);
	iomap_rwsem_init(&ext, "ext", IOMAP_LC_EXTENT);
	iomap_lockdep_panic = false;
	unsigned long v0 = iomap_lockdep_violations;
	EXPECT_EQ_INT(iomap_lock(&ino, 0), 0);
	EXPECT_EQ_INT(iomap_lock(&ext, 0), 0);
	iomap_unlock(&ext, 0);
	iomap_unlock(&ino, 0);
	EXPECT_EQ_INT(iomap_lockdep_violations, v0);
	/* Wrong order: extent, then inode. */
	iomap_lock(&ext, 0);
	iomap_lock(&ino, IOMAP_LOCK_TRY);      /* try: allowed */
	EXPECT_EQ_INT(iomap_lockdep_violations, v0);
	iomap_unlock(&ino, 0);
	iomap_lock(&ino, 0);
	EXPECT_EQ_INT(iomap_lockdep_violations, v0 + 1);
	EXPECT_STREQ(iomap_lockdep_last, "inode");
	iomap_unlock(&ino, 0);
	iomap_unlock(&ext, 0);
	/* Folio held (writeback) then a blocking extent lock: violation. */
	iomap_lockdep_acquire(IOMAP_LC_FOLIO, false);
	iomap_lock(&ext, 0);
	EXPECT_EQ_INT(iomap_lockdep_violations, v0 + 2);
	iomap_unlock(&ext, 0);
	iomap_lockdep_release(IOMAP_LC_FOLIO);
	iomap_lockdep_panic = true;
	iomap_rwsem_destroy(&ino);
	iomap_rwsem_destroy(&ext);
}

int main(void)
{
	iomap_debug = true;
	return test_main();
}
