/* fsync through the intent log (fs/log.c, fs/file_log.c, docs/format.md
 * §9): device operations per 4 KiB append + fsync against the goal (at
 * most 2 FLUSHes, on average at most 4 block writes, and one cache flush:
 * the log block goes without FUA, its FLUSH covers it and the data); a
 * power cut at every filesystem write, and at every FLUSH (a log block on
 * media before its data), of an fsync-heavy workload with every fsync'd
 * file's size and bytes intact after the replay and the check clean (the
 * check and `cowfs check` also accept the image before the replay); a log
 * whose last fsync's data is not on media ends before it; replay cut
 * at each of its own writes and run again; torn and damaged log blocks end
 * the log where they are; the cases the log does not record commit
 * instead and are durable.  Name records: test_cowfs_namelog.c. */
#define TEST_SUITE "cowfs_fsynclog"
#include "tests/host/test.h"
#include "tests/host/cowfs_test.h"
#include "fs/file.h"

int cowfs_tool(int argc, char **argv);

#define EXPECT_MSG(cond, ...)                                                   \
	do {                                                                    \
		if (!(cond)) {                                                  \
			char m_[300];                                           \
			snprintf(m_, sizeof(m_), __VA_ARGS__);                  \
			test_fail_at(__FILE__, __LINE__, m_);                   \
		}                                                               \
	} while (0)

#define NF 3
#define CAP (1u << 20)

struct env {
	struct ct_image im;
	struct cowfs_mount *m;
	const struct cowfs_hooks *hooks;
	bool no_log;
};

static int mount_env(struct env *e)
{
	/* Commits only when the workload asks: the same writes every run. */
	struct cowfs_vfs_opts o = { .fs = { .hooks = e->hooks }, .data_cache_bytes = 8 << 20,
				    .commit_interval_ms = 3600000, .no_fsync_log = e->no_log };
	return cowfs_vfs_mount(e->im.bdev, &o, &e->m);
}

static int fresh(struct env *e, const char *name)
{
	if (!ct_image_create(&e->im, name, 16 << 20))
		return -1;
	struct cowfs_mkfs_opts mk = { .node_size = 4096 };
	int err = cowfs_mkfs(e->im.bdev, &mk);
	plat_host_bdev_set_volatile(e->im.bdev, true);
	return err ? err : mount_env(e);
}

/* Power goes now: what was not flushed is lost, nothing more is written. */
static void power_cut(struct env *e)
{
	plat_host_bdev_crash(e->im.bdev);
	plat_host_bdev_inject(e->im.bdev, PLAT_BIO_WRITE, 0, UINT64_MAX, -PLAT_EIO, UINT32_MAX);
	cowfs_vfs_unmount(e->m);
	e->m = NULL;
	e->hooks = NULL;
	ct_image_reopen(&e->im);
}

/* Byte i of file f: any prefix of the appends reads the same. */
static uint8_t byte_of(unsigned f, uint64_t i)
{
	return (uint8_t)((i * 2654435761u) >> 11 ^ (f * 77 + 1));
}

static int append(struct env *e, uint64_t ino, unsigned f, uint64_t size, uint64_t n)
{
	static uint8_t buf[64 << 10];
	for (uint64_t i = 0; i < n; i++)
		buf[i] = byte_of(f, size + i);
	return cowfs_write(e->m, ino, size, buf, n, 0) == (int64_t)n ? 0 : -1;
}

/* Size within [lo, hi] and every byte as appended; NULL or why not. */
static const char *content_ok(struct env *e, uint64_t ino, unsigned f, uint64_t lo, uint64_t hi)
{
	static uint8_t buf[CAP];
	struct cowfs_inode a;
	if (cowfs_getattr(e->m, ino, &a))
		return "an fsync'd file is gone";
	if (a.size < lo || a.size > hi) {
		fprintf(stderr, "file %u: size %llu, fsync'd %llu, written %llu\n", f, (unsigned long long)a.size,
			(unsigned long long)lo, (unsigned long long)hi);
		return a.size < lo ? "an fsync'd file lost its size" : "a file is longer than was written";
	}
	if (cowfs_read(e->m, ino, 0, buf, a.size, 0) != (int64_t)a.size)
		return "reading an fsync'd file failed";
	for (uint64_t i = 0; i < a.size; i++)
		if (buf[i] != byte_of(f, i)) {
			fprintf(stderr, "file %u: byte %llu wrong\n", f, (unsigned long long)i);
			return "an fsync'd file's bytes differ";
		}
	return NULL;
}

static const char *check_online(struct env *e)
{
	static char msg[200];
	return cowfs_vfs_check(e->m, msg, sizeof(msg)) ? msg : NULL;
}

/* The image as it is (a pending log included): the structure check on a
 * read-only mount, which must not replay or complain, and the tool. */
static const char *check_offline(struct env *e)
{
	static char msg[200];
	struct cowfs *fs;
	struct cowfs_mount_opts ro = { .readonly = true };
	if (cowfs_mount(e->im.bdev, &ro, &fs))
		return "read-only mount before the replay failed";
	int err = cowfs_check(fs, msg, sizeof(msg));
	cowfs_unmount(fs);
	if (err)
		return msg;
	char *argv[] = { "cowfs", "check", e->im.path, NULL };
	if (cowfs_tool(3, argv) != 0)
		return "cowfs check reported problems before the replay";
	return NULL;
}

static uint64_t mkfile(struct env *e, const char *name)
{
	struct cowfs_inode a;
	EXPECT_EQ_INT(cowfs_create(e->m, CFS_ROOT_INO, name, strlen(name), 0644, 0, 0, &a), 0);
	return a.ino;
}

/* ---- device operations per append + fsync ---- */

static struct ct_costs measure(bool no_log, unsigned ops, uint64_t *logged)
{
	struct env e = { .no_log = no_log };
	EXPECT_EQ_INT(fresh(&e, "fl-cost"), 0);
	uint64_t ino = mkfile(&e, "f");
	EXPECT_EQ_INT(append(&e, ino, 0, 0, 4096), 0);
	EXPECT_EQ_INT(cowfs_fsync(e.m, ino, false), 0);      /* a new name: commits */
	struct plat_host_bdev_stats a, b;
	plat_host_bdev_stats(e.im.bdev, &a);
	uint64_t before = e.m->fsync_logged;
	for (unsigned i = 1; i <= ops; i++) {
		EXPECT_EQ_INT(append(&e, ino, 0, (uint64_t)i * 4096, 4096), 0);
		EXPECT_EQ_INT(cowfs_fsync(e.m, ino, false), 0);
	}
	plat_host_bdev_stats(e.im.bdev, &b);
	*logged = e.m->fsync_logged - before;
	power_cut(&e);
	EXPECT_EQ_INT(mount_env(&e), 0);
	struct cowfs_inode at;
	EXPECT_EQ_INT(cowfs_lookup(e.m, CFS_ROOT_INO, "f", 1, &at), 0);
	const char *why = content_ok(&e, at.ino, 0, (uint64_t)(ops + 1) * 4096, (uint64_t)(ops + 1) * 4096);
	EXPECT_MSG(!why, "%s", why ? why : "");
	cowfs_vfs_unmount(e.m);
	ct_image_remove(&e.im);
	return ct_costs_per_op(&a, &b, ops);
}

TEST(append_fsync_costs_at_most_two_flushes_and_four_writes)
{
	const unsigned ops = 64;
	uint64_t logged, logged0;
	struct ct_costs on = measure(false, ops, &logged), off = measure(true, ops, &logged0);
	ct_costs_print("fsync_append", true, ops, on);
	ct_costs_print("fsync_append", false, ops, off);
	EXPECT_EQ_INT(logged, ops);
	EXPECT_EQ_INT(logged0, 0);
	EXPECT(on.flushes <= 2.0);
	EXPECT(on.writes <= 4.0);
	EXPECT(on.flushes + on.fua <= 1.0);   /* one FLUSH covers the data and the log block */
	EXPECT(on.writes < off.writes);       /* the commit it replaces costs more */
}

/* ---- power cuts ---- */

/* Appends of odd sizes (the last block is rewritten each time, so a
 * logged block is freed in the transaction that logged it), fsync after
 * each, a commit now and then, one file renamed (fsync commits). */
/* Cuts at FLUSH k instead of write k (cut_flushes): the power goes as the
 * FLUSH is sent, so a log block written just before may be on media
 * while the data it names is not (each unflushed write survives with
 * probability 1/2). */
static bool cut_flushes;
static uint64_t flush_count, flush_cut_at, unwritten_cuts;

static void cut_before_flush_k(void *arg)
{
	struct ct_cut *c = arg;
	if (!c->cut && ++flush_count == flush_cut_at) {
		c->cut_at = c->count + 1;          /* the power goes here */
		ct_cut_before_write(c, 0, NULL, 0, 0);
		return;
	}
	ct_cut_before_flush(c);
}

static uint64_t cut_run(uint64_t cut_at, uint64_t seed, const char **why)
{
	struct env e = { 0 };
	struct ct_cut c = { &e.im, 0, cut_at && !cut_flushes ? cut_at : UINT64_MAX, seed | 1, false, NULL, 0, 0, 0 };
	struct cowfs_hooks hooks = { ct_cut_before_write, cut_flushes ? cut_before_flush_k : ct_cut_before_flush, &c };
	flush_count = 0;
	flush_cut_at = cut_flushes && cut_at ? cut_at : UINT64_MAX;
	uint64_t ino[NF], synced[NF] = { 0 }, size[NF] = { 0 };
	static const char *names[NF] = { "a", "b", "c" };
	*why = NULL;
	if (fresh(&e, "fl-cut")) {
		*why = "mkfs or mount failed";
		goto out;
	}
	for (unsigned f = 0; f < NF; f++)
		ino[f] = mkfile(&e, names[f]);
	cowfs_vfs_sync(e.m);
	cowfs_vfs_unmount(e.m);
	ct_image_reopen(&e.im);
	plat_host_bdev_set_volatile(e.im.bdev, true);
	e.hooks = &hooks;
	if (mount_env(&e)) {
		*why = "mount failed";
		goto out;
	}
	flush_count = 0;                   /* the workload's FLUSHes from here */
	for (unsigned r = 0; r < 8 && !c.cut; r++)
		for (unsigned f = 0; f < NF && !c.cut; f++) {
			uint64_t n = 1000 + 1500 * ((r + f) % 4);
			if (append(&e, ino[f], f, size[f], n))
				break;
			size[f] += n;
			if (r == 3 && f == 1)
				cowfs_rename(e.m, CFS_ROOT_INO, "b", 1, CFS_ROOT_INO, "b2", 2, 0);
			if (r == 5 && f == 0)
				cowfs_vfs_sync(e.m);
			if (cowfs_fsync(e.m, ino[f], f == 2) == 0 && !c.cut)
				synced[f] = size[f];
		}
	if (!cut_at) {
		if (e.m->fsync_logged < 15)
			*why = "the workload logged fewer fsyncs than expected";
		goto out;
	}
	if (!c.cut) {
		cowfs_vfs_unmount(e.m);
		e.m = NULL;
		goto out;
	}
	power_cut(&e);
	if ((*why = check_offline(&e)))
		goto out;
	if (mount_env(&e)) {
		*why = "mount (with the replay) after the power cut failed";
		goto out;
	}
	unwritten_cuts += e.m->fs->log_unwritten_cuts;
	for (unsigned f = 0; f < NF && !*why; f++)
		*why = content_ok(&e, ino[f], f, synced[f], size[f]);
	if (!*why)
		*why = check_online(&e);
out:
	if (e.m)
		cowfs_vfs_unmount(e.m);
	ct_cut_free(&c);
	ct_image_remove(&e.im);
	return cut_flushes ? flush_count : c.count;
}

TEST(power_cut_at_every_write_keeps_every_fsync)
{
	cut_flushes = false;
	ct_cut_every_write(__FILE__, __LINE__, cut_run, getenv("COWFS_STRESS") ? 10 : 2, 25);
}

/* The window the log's order opens: log block written, FLUSH not done.
 * Every fsync that returned survives; one that did not is replayed whole
 * or not at all (its data checked against the record's checksums), and
 * some cuts do find a log block on media without its data. */
TEST(power_cut_at_every_flush_keeps_every_fsync)
{
	cut_flushes = true;
	unwritten_cuts = 0;
	ct_cut_every_write(__FILE__, __LINE__, cut_run, getenv("COWFS_STRESS") ? 10 : 4, 15);
	cut_flushes = false;
	printf("# replays ended before an fsync whose data was not on media: %llu\n",
	       (unsigned long long)unwritten_cuts);
	EXPECT(unwritten_cuts > 0);
}

/* ---- a pending log, then things done to it ---- */

/* An image whose last commit has a log of `fsyncs` appends of 4 KiB to
 * file "p" (one log block each) over 8 KiB committed. */
static void pending_log(struct env *e, const char *name, unsigned fsyncs, uint64_t *ino)
{
	memset(e, 0, sizeof(*e));
	EXPECT_EQ_INT(fresh(e, name), 0);
	*ino = mkfile(e, "p");
	EXPECT_EQ_INT(append(e, *ino, 0, 0, 8192), 0);
	EXPECT_EQ_INT(cowfs_vfs_sync(e->m), 0);
	for (unsigned i = 0; i < fsyncs; i++) {
		EXPECT_EQ_INT(append(e, *ino, 0, 8192 + (uint64_t)i * 4096, 4096), 0);
		EXPECT_EQ_INT(cowfs_fsync(e->m, *ino, false), 0);
	}
	EXPECT_EQ_INT(e->m->fsync_logged, fsyncs);
	power_cut(e);
}

static void collect_blk(void *arg, uint64_t blk, uint64_t seq)
{
	((uint64_t *)arg)[seq] = blk;
}

/* The pending log's blocks, in order. */
static unsigned log_blocks(struct env *e, uint64_t *out)
{
	struct cowfs *fs;
	struct cowfs_mount_opts ro = { .readonly = true };
	memset(out, 0, 16 * sizeof(*out));
	EXPECT_EQ_INT(cowfs_mount(e->im.bdev, &ro, &fs), 0);
	EXPECT_EQ_INT(cowfs_log_blocks(fs, collect_blk, out), 0);
	cowfs_unmount(fs);
	unsigned n = 0;
	while (n < 16 && out[n])
		n++;
	return n;
}

static void copy_file(const char *from, const char *to)
{
	static uint8_t buf[1 << 16];
	int a = open(from, O_RDONLY), b = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ssize_t n;
	while ((n = read(a, buf, sizeof(buf))) > 0)
		EXPECT_EQ_INT(write(b, buf, (size_t)n), n);
	close(a);
	close(b);
}

TEST(replay_cut_at_each_of_its_writes_runs_again)
{
	struct env e;
	uint64_t ino;
	pending_log(&e, "fl-replay", 4, &ino);
	char saved[128];
	snprintf(saved, sizeof(saved), "%s.saved", e.im.path);
	plat_bdev_close(e.im.bdev);
	e.im.bdev = NULL;
	copy_file(e.im.path, saved);
	bool finished = false;
	for (uint64_t k = 1; k < 100 && !finished; k++) {
		copy_file(saved, e.im.path);
		ct_image_reopen(&e.im);
		plat_host_bdev_set_volatile(e.im.bdev, true);
		struct ct_cut c = { &e.im, 0, k, k * 7 + 1, false, NULL, 0, 0, 0 };
		struct cowfs_hooks hooks = { ct_cut_before_write, ct_cut_before_flush, &c };
		e.hooks = &hooks;
		int err = mount_env(&e);
		if (!err) {
			finished = !c.cut;       /* the replay's commit went through */
			cowfs_vfs_unmount(e.m);
		}
		e.m = NULL;
		e.hooks = NULL;
		ct_cut_free(&c);
		ct_image_reopen(&e.im);
		EXPECT_EQ_INT(mount_env(&e), 0);
		if (!e.m)
			break;
		const char *why = content_ok(&e, ino, 0, 8192 + 4 * 4096, 8192 + 4 * 4096);
		if (!why)
			why = check_online(&e);
		EXPECT_MSG(!why, "replay cut at its write %llu: %s", (unsigned long long)k, why ? why : "");
		cowfs_vfs_unmount(e.m);
		e.m = NULL;
		if (why)
			break;
	}
	EXPECT(finished);
	unlink(saved);
	ct_image_remove(&e.im);
}

static void flip(struct env *e, uint64_t blk, uint64_t at)
{
	int fd = open(e->im.path, O_RDWR);
	uint8_t x;
	EXPECT_EQ_INT(pread(fd, &x, 1, (off_t)(blk * 4096 + at)), 1);
	x ^= 0x10;
	EXPECT_EQ_INT(pwrite(fd, &x, 1, (off_t)(blk * 4096 + at)), 1);
	close(fd);
	ct_image_reopen(&e->im);
}

TEST(torn_log_block_ends_the_log)
{
	for (unsigned torn = 0; torn < 3; torn++) {
		struct env e;
		uint64_t ino, blk[16];
		pending_log(&e, "fl-torn", 3, &ino);
		EXPECT_EQ_INT(log_blocks(&e, blk), 3);
		flip(&e, blk[torn], 100 + torn * 500);
		EXPECT_EQ_INT(log_blocks(&e, blk), torn);
		EXPECT_EQ_INT(mount_env(&e), 0);
		uint64_t want = 8192 + (uint64_t)torn * 4096;   /* the fsyncs before the torn block */
		/* An empty log (its first block torn) is not appended to: blocks
		 * past the torn one may still be there.  The first fsync commits
		 * (before anything else commits: the check below does, and a
		 * commit starts a new log). */
		if (torn == 0) {
			EXPECT_EQ_INT(append(&e, ino, 0, want, 4096), 0);
			EXPECT_EQ_INT(cowfs_fsync(e.m, ino, false), 0);
			EXPECT_EQ_INT(e.m->fsync_commits, 1);
			EXPECT_EQ_INT(e.m->fsync_logged, 0);
		}
		uint64_t size = want + (torn == 0 ? 4096 : 0);
		const char *why = content_ok(&e, ino, 0, size, size);
		if (!why)
			why = check_online(&e);
		EXPECT_MSG(!why, "block %u torn: %s", torn, why ? why : "");
		cowfs_vfs_unmount(e.m);
		ct_image_remove(&e.im);
	}
}

/* The last fsync's log block is on media, its data block is not (the
 * power went between the log write and the FLUSH; here the block is made
 * to hold something else): the check and `cowfs check` accept the image,
 * the replay ends before that fsync and keeps the ones before it. */
TEST(log_block_without_its_data_ends_the_log)
{
	struct env e;
	uint64_t ino, blk[16];
	pending_log(&e, "fl-nodata", 3, &ino);
	EXPECT_EQ_INT(log_blocks(&e, blk), 3);
	uint8_t b[4096];
	int fd = open(e.im.path, O_RDONLY);
	EXPECT_EQ_INT(pread(fd, b, 4096, (off_t)(blk[2] * 4096)), 4096);
	close(fd);
	const uint8_t *ext = b + CFS_LH_SIZE + cfs_get16(b + CFS_LH_SIZE + 2);
	EXPECT_EQ_INT(ext[0], CFS_LR_EXTENT);
	uint64_t data = cfs_get64(ext + CFS_LR_HDR + 8);
	flip(&e, data, 77);
	const char *why = check_offline(&e);
	EXPECT_MSG(!why, "before the replay: %s", why ? why : "");
	EXPECT_EQ_INT(mount_env(&e), 0);
	EXPECT_EQ_INT(e.m->fs->log_unwritten_cuts, 1);
	why = content_ok(&e, ino, 0, 8192 + 2 * 4096, 8192 + 2 * 4096);
	if (!why)
		why = check_online(&e);
	EXPECT_MSG(!why, "%s", why ? why : "");
	cowfs_vfs_unmount(e.m);
	ct_image_remove(&e.im);
}

/* One fsync whose records take two log blocks (120 one-block extents from
 * direct appends): replayed whole, or -- its last block torn -- not at all. */
TEST(fsync_over_two_log_blocks_is_all_or_nothing)
{
	for (int tear = 0; tear < 2; tear++) {
		struct env e;
		uint64_t ino, blk[16];
		memset(&e, 0, sizeof(e));
		EXPECT_EQ_INT(fresh(&e, "fl-multi"), 0);
		ino = mkfile(&e, "p");
		EXPECT_EQ_INT(append(&e, ino, 0, 0, 8192), 0);
		EXPECT_EQ_INT(cowfs_vfs_sync(e.m), 0);
		uint8_t *buf = aligned_alloc(4096, 4096);
		for (uint64_t i = 0; i < 120; i++) {
			uint64_t off = 8192 + i * 4096;
			for (unsigned j = 0; j < 4096; j++)
				buf[j] = byte_of(0, off + j);
			EXPECT_EQ_INT(cowfs_write(e.m, ino, off, buf, 4096, CFS_IO_DIRECT), 4096);
		}
		free(buf);
		EXPECT_EQ_INT(cowfs_fsync(e.m, ino, false), 0);
		EXPECT_EQ_INT(e.m->fsync_logged, 1);
		power_cut(&e);
		EXPECT_EQ_INT(log_blocks(&e, blk), 2);
		if (tear)
			flip(&e, blk[1], 3000);
		EXPECT_EQ_INT(mount_env(&e), 0);
		uint64_t want = tear ? 8192 : 8192 + 120 * 4096;
		const char *why = content_ok(&e, ino, 0, want, want);
		if (!why)
			why = check_online(&e);
		EXPECT_MSG(!why, "%s: %s", tear ? "last block torn" : "whole", why ? why : "");
		cowfs_vfs_unmount(e.m);
		ct_image_remove(&e.im);
	}
}

/* A log record naming a block the committed trees use, or one of the
 * log's own blocks: the check names it; the mount replays up to it and
 * loses nothing committed. */
TEST(log_naming_a_used_block_is_found_and_not_replayed)
{
	for (int own = 0; own < 2; own++) {
		struct env e;
		uint64_t ino, blk[16];
		pending_log(&e, "fl-bad", 2, &ino);
		EXPECT_EQ_INT(log_blocks(&e, blk), 2);
		struct cowfs *fs;
		struct cowfs_mount_opts ro = { .readonly = true };
		EXPECT_EQ_INT(cowfs_mount(e.im.bdev, &ro, &fs), 0);
		uint64_t used = own ? blk[0] : fs->root_tree.root.blocknr;
		char msg[200] = "";
		EXPECT_EQ_INT(cowfs_check(fs, msg, sizeof(msg)), 0);
		cowfs_unmount(fs);
		/* Second block: its records are the INODE, then the EXTENT;
		 * point that at the block in use. */
		uint8_t b[4096];
		int fd = open(e.im.path, O_RDWR);
		EXPECT_EQ_INT(pread(fd, b, 4096, (off_t)(blk[1] * 4096)), 4096);
		uint8_t *ext = b + CFS_LH_SIZE + cfs_get16(b + CFS_LH_SIZE + 2);
		EXPECT_EQ_INT(b[CFS_LH_SIZE], CFS_LR_INODE);
		EXPECT_EQ_INT(ext[0], CFS_LR_EXTENT);
		cfs_put64(ext + CFS_LR_HDR + 8, used);
		cfs_put32(b, crc32c(0, b + 4, 4092));
		EXPECT_EQ_INT(pwrite(fd, b, 4096, (off_t)(blk[1] * 4096)), 4096);
		close(fd);
		ct_image_reopen(&e.im);
		EXPECT_EQ_INT(cowfs_mount(e.im.bdev, &ro, &fs), 0);
		EXPECT_EQ_INT(cowfs_check(fs, msg, sizeof(msg)), -PLAT_EIO);
		EXPECT(strstr(msg, "intent log") != NULL);
		cowfs_unmount(fs);
		EXPECT_EQ_INT(mount_env(&e), 0);
		const char *why = e.m ? content_ok(&e, ino, 0, 12288, 12288) : "no mount";
		if (!why)
			why = check_online(&e);
		EXPECT_MSG(!why, "%s: %s", own ? "a log block" : "a tree node", why ? why : "");
		if (e.m)
			cowfs_vfs_unmount(e.m);
		ct_image_remove(&e.im);
	}
}

/* A block a log record names, freed by the same transaction (an
 * overwrite that is not fsync'd), is not handed out before the next
 * commit: another file's data on it would be what the replay points the
 * first file at. */
TEST(logged_block_freed_in_its_transaction_is_not_reused)
{
	struct env e = { 0 };
	EXPECT_EQ_INT(fresh(&e, "fl-reuse"), 0);
	uint64_t a = mkfile(&e, "a"), b = mkfile(&e, "b");
	EXPECT_EQ_INT(cowfs_vfs_sync(e.m), 0);
	EXPECT_EQ_INT(append(&e, a, 0, 0, 4096), 0);
	EXPECT_EQ_INT(cowfs_fsync(e.m, a, false), 0);
	EXPECT_EQ_INT(e.m->fsync_logged, 1);
	uint64_t d1 = ct_dev_addr(e.m, a, 0) / 4096;
	uint8_t *other = aligned_alloc(4096, 4096);
	memset(other, 0xee, 4096);
	EXPECT_EQ_INT(cowfs_write(e.m, a, 0, other, 4096, CFS_IO_DIRECT), 4096);
	free(other);
	EXPECT(ct_dev_addr(e.m, a, 0) / 4096 != d1);
	e.m->fs->al.cursor = d1;           /* next-fit would take d1 next, were it free */
	EXPECT_EQ_INT(append(&e, b, 1, 0, 4096), 0);
	EXPECT_EQ_INT(cowfs_fsync(e.m, b, false), 0);
	EXPECT_EQ_INT(e.m->fsync_logged, 2);
	EXPECT(ct_dev_addr(e.m, b, 0) / 4096 != d1);
	power_cut(&e);
	EXPECT_EQ_INT(mount_env(&e), 0);
	const char *why = e.m ? content_ok(&e, a, 0, 4096, 4096) : "no mount";
	if (!why)
		why = content_ok(&e, b, 1, 4096, 4096);
	if (!why)
		why = check_online(&e);
	EXPECT_MSG(!why, "%s", why ? why : "");
	if (e.m)
		cowfs_vfs_unmount(e.m);
	ct_image_remove(&e.im);
}

/* What the log does not record commits, and is as durable. */
/* New names, renames and directories go through the log (their records
 * are tested in test_cowfs_namelog.c); a truncate commits.  All of it
 * survives a power cut. */
TEST(which_fsyncs_log_and_which_commit)
{
	struct env e = { 0 };
	EXPECT_EQ_INT(fresh(&e, "fl-fall"), 0);
	(void)mkfile(&e, "first");
	cowfs_vfs_sync(e.m);      /* a fresh mount's log is not appended to: the first commit starts one */
	uint64_t a = mkfile(&e, "a");
	EXPECT_EQ_INT(append(&e, a, 0, 0, 5000), 0);
	EXPECT_EQ_INT(cowfs_fsync(e.m, a, false), 0);            /* new name: logged */
	EXPECT_EQ_INT(e.m->fsync_logged, 1);
	EXPECT_EQ_INT(e.m->fsync_commits, 0);
	EXPECT_EQ_INT(append(&e, a, 0, 5000, 5000), 0);
	EXPECT_EQ_INT(cowfs_fsync(e.m, a, false), 0);            /* data only: logged */
	EXPECT_EQ_INT(e.m->fsync_logged, 2);
	struct cowfs_setattr sa = { .valid = CFS_SET_SIZE, .size = 6000 };
	EXPECT_EQ_INT(cowfs_setattr(e.m, a, &sa, NULL), 0);
	EXPECT_EQ_INT(cowfs_fsync(e.m, a, false), 0);            /* truncate: commits */
	EXPECT_EQ_INT(e.m->fsync_commits, 1);
	EXPECT_EQ_INT(cowfs_rename(e.m, CFS_ROOT_INO, "a", 1, CFS_ROOT_INO, "a2", 2, 0), 0);
	EXPECT_EQ_INT(append(&e, a, 0, 6000, 3000), 0);
	EXPECT_EQ_INT(cowfs_fsync(e.m, a, false), 0);            /* rename: logged */
	EXPECT_EQ_INT(e.m->fsync_logged, 3);
	uint64_t b = mkfile(&e, "b");
	EXPECT_EQ_INT(cowfs_fsync(e.m, CFS_ROOT_INO, false), 0);  /* a directory: logged */
	EXPECT_EQ_INT(e.m->fsync_logged, 4);
	EXPECT_EQ_INT(append(&e, b, 1, 0, 4096), 0);
	EXPECT_EQ_INT(append(&e, a, 0, 9000, 1000), 0);
	EXPECT_EQ_INT(cowfs_fsync(e.m, b, false), 0);            /* logged: a's append is not */
	EXPECT_EQ_INT(e.m->fsync_logged, 5);
	EXPECT_EQ_INT(e.m->fsync_commits, 1);
	power_cut(&e);
	EXPECT_EQ_INT(mount_env(&e), 0);
	struct cowfs_inode x;
	EXPECT_EQ_INT(cowfs_lookup(e.m, CFS_ROOT_INO, "a2", 2, &x), 0);
	EXPECT_EQ_INT(cowfs_lookup(e.m, CFS_ROOT_INO, "a", 1, NULL), -PLAT_ENOENT);
	const char *why = content_ok(&e, x.ino, 0, 9000, 9000);
	if (!why)
		why = content_ok(&e, b, 1, 4096, 4096);
	if (!why)
		why = check_online(&e);
	EXPECT_MSG(!why, "%s", why ? why : "");
	cowfs_vfs_unmount(e.m);
	ct_image_remove(&e.im);
}

/* An extended attribute set since the last commit is not in the log: the
 * file's fsync commits, and the attribute survives a power cut. */
TEST(fsync_after_setxattr_commits)
{
	struct env e = { 0 };
	char v[8] = { 0 };
	size_t vlen = 0;
	EXPECT_EQ_INT(fresh(&e, "fl-xattr"), 0);
	uint64_t a = mkfile(&e, "a");
	EXPECT_EQ_INT(cowfs_fsync(e.m, a, false), 0);            /* new name: commits */
	EXPECT_EQ_INT(append(&e, a, 0, 0, 5000), 0);
	EXPECT_EQ_INT(cowfs_setxattr(e.m, a, "user.k", 6, "value", 5, 0), 0);
	uint64_t commits = e.m->fsync_commits;
	EXPECT_EQ_INT(cowfs_fsync(e.m, a, false), 0);
	EXPECT_EQ_INT(e.m->fsync_commits, commits + 1);
	power_cut(&e);
	EXPECT_EQ_INT(mount_env(&e), 0);
	EXPECT_EQ_INT(cowfs_getxattr(e.m, a, "user.k", 6, v, sizeof(v), &vlen), 0);
	EXPECT(vlen == 5 && !memcmp(v, "value", 5));
	const char *why = content_ok(&e, a, 0, 5000, 5000);
	EXPECT_MSG(!why, "%s", why ? why : "");
	cowfs_vfs_unmount(e.m);
	ct_image_remove(&e.im);
}

TEST_MAIN()
