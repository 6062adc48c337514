/*
 * Self-tests of the kernel block-device glue (platform_kernel_bdev.c) on a
 * RAM disk: a bio whose wrapper cannot be allocated still completes from
 * the completion thread, never on the submitter's stack (where the caller
 * may hold locks its end_io takes).
 */
#include "platform/platform.h"
#include "platform/kernel/platform_kernel.h"
#include "drivers/blk/memdisk.h"
#include "kernel/errno.h"
#include "kernel/kernel.h"
#include "kernel/mm.h"
#include "kernel/sched.h"
#include "kernel/selftest.h"
#include "kernel/time.h"

struct pkb_state {
	volatile int done;
	int status;
	struct thread *ran_on;
};

static void pkb_end_io(struct plat_bio *bio)
{
	struct pkb_state *st = bio->private;
	st->status = bio->status;
	st->ran_on = thread_current();
	__atomic_store_n(&st->done, 1, __ATOMIC_SEQ_CST);
}

SELFTEST(plat_bdev, alloc_failure_completes_on_the_completion_thread)
{
	static const struct memdisk_opts o = { .size = 64 << 10, .lba_size = 512 };
	struct blk_dev *d = blk_find("tplat0");
	if (!d)
		d = memdisk_create("tplat0", &o);
	ST_EXPECT(d != NULL);
	struct plat_bdev *b = d ? plat_kernel_bdev_open(d) : NULL;
	uint8_t *buf = kmalloc(4096);
	ST_EXPECT(b && buf);
	if (!b || !buf) {
		kfree(buf);
		return;
	}
	for (unsigned round = 0; round < 2; round++) {
		struct plat_bio bio = { 0 };
		struct pkb_state st = { 0 };
		bio.bdev = b;
		bio.op = PLAT_BIO_READ;
		bio.len = 4096;
		bio.nvec = bio.maxvec = 1;
		bio.vec = bio.inline_vec;
		bio.vec[0].buf = buf;
		bio.vec[0].len = 4096;
		bio.end_io = pkb_end_io;
		bio.private = &st;
		/* Round 0: the wrapper fails; round 1: a normal bio. */
		plat_kbio_fail_next = round == 0 ? b : NULL;
		plat_bdev_submit(&bio);
		ST_EXPECT(st.ran_on != thread_current());      /* not inside submit */
		uint64_t deadline = time_ns() + 10 * NS_PER_S;
		while (!__atomic_load_n(&st.done, __ATOMIC_SEQ_CST) && time_ns() < deadline)
			thread_sleep_ns(NS_PER_MS);
		ST_EXPECT(st.done);
		ST_EXPECT(st.done && st.ran_on != thread_current());
		ST_EXPECT(st.status == (round == 0 ? -PLAT_ENOMEM : 0));
		if (!st.done)
			return;          /* bio and buf may still be used: leak them */
	}
	plat_bdev_close(b);
	kfree(buf);
}
