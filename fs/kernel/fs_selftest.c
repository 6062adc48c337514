/*
 * cowfs in the kernel: the host suite's random-operations-against-a-model
 * test, run on the real drivers and the kernel's platform.  A RAM disk with
 * 4 KiB and one with 512-byte blocks, and the first scratch disk (boot
 * argument scratch=NAME; never any other disk): mkfs, random inserts,
 * updates and deletes with commits between, a remount half-way, every key
 * compared with the model, and the structure check.
 */
#include "fs/cowfs.h"
#include "drivers/blk/blk.h"
#include "drivers/blk/memdisk.h"
#include "drivers/blk/pattern.h"
#include "platform/kernel/platform_kernel.h"
#include "kernel/errno.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/mm.h"
#include "kernel/selftest.h"

#define FT_KEYS  1500u
#define FT_OPS   5000u
#define FT_TREE  CFS_TREE_FS
#define FT_BYTES (24ull << 20)

struct ft {
	uint16_t ver[FT_KEYS];             /* 0 = absent */
	uint8_t val[512], got[512];
	uint64_t rng;
};

static uint64_t ft_rand(struct ft *t)
{
	t->rng = pattern_splitmix64(t->rng);
	return t->rng;
}

static uint32_t ft_value(struct ft *t, unsigned i, unsigned ver)
{
	uint32_t len = 1 + (uint32_t)((i * 131u + ver * 17u) % 300u);
	for (uint32_t j = 0; j < len; j++)
		t->val[j] = (uint8_t)(pattern_splitmix64(((uint64_t)i << 32) ^ ((uint64_t)ver << 16) ^ j));
	return len;
}

static struct cowfs_key ft_key(unsigned i)
{
	return (struct cowfs_key){ .objectid = 1000 + i / 7, .type = 1, .offset = i };
}

/* Every key in the model is in the tree with its value; no other key is. */
static bool ft_verify(struct ft *t, struct cowfs_tree *tr)
{
	unsigned present = 0;
	for (unsigned i = 0; i < FT_KEYS; i++) {
		struct cowfs_key k = ft_key(i);
		uint32_t len = 0;
		int err = cowfs_bt_lookup(tr, &k, t->got, sizeof(t->got), &len);
		if (!t->ver[i]) {
			if (err != -ENOENT) {
				kprintf("fs selftest: key %u should be absent: %d\n", i, err);
				return false;
			}
			continue;
		}
		present++;
		uint32_t want = ft_value(t, i, t->ver[i]);
		if (err || len != want || memcmp(t->got, t->val, want)) {
			kprintf("fs selftest: key %u version %u: err %d len %u (want %u)\n", i, t->ver[i], err, len,
				want);
			return false;
		}
	}
	struct cowfs_key k = { 0, 0, 0 };
	unsigned seen = 0;
	uint32_t len;
	while (cowfs_bt_next(tr, &k, t->got, sizeof(t->got), &len) == 0) {
		seen++;
		if (++k.offset == 0)
			break;
	}
	if (seen != present)
		kprintf("fs selftest: iteration saw %u items, the model has %u\n", seen, present);
	return seen == present;
}

static void ft_run(bool *st_failed, struct blk_dev *d, uint64_t seed)
{
	struct plat_bdev *b = plat_kernel_bdev_open(d);
	struct ft *t = kzalloc(sizeof(*t));
	struct cowfs *fs = NULL;
	struct cowfs_tree *tr;
	char msg[200];

	ST_EXPECT(b && t);
	if (!b || !t)
		goto out;
	t->rng = seed;
	struct cowfs_mkfs_opts mo = { .node_size = 4096, .total_blocks = FT_BYTES / CFS_BLOCK_SIZE, .bare = true };
	ST_EXPECT(cowfs_mkfs(b, &mo) == 0);
	ST_EXPECT(cowfs_mount(b, NULL, &fs) == 0);
	if (!fs)
		goto out;
	ST_EXPECT(cowfs_tree_open(fs, FT_TREE, true, &tr) == 0);
	for (unsigned op = 0; op < FT_OPS && !*st_failed; op++) {
		unsigned i = (unsigned)(ft_rand(t) % FT_KEYS);
		unsigned r = (unsigned)(ft_rand(t) % 4);
		struct cowfs_key k = ft_key(i);
		if (!t->ver[i]) {
			uint32_t len = ft_value(t, i, 1);
			ST_EXPECT(cowfs_bt_insert(tr, &k, t->val, len) == 0);
			t->ver[i] = 1;
		} else if (r < 2) {
			uint32_t len = ft_value(t, i, t->ver[i] + 1u);
			ST_EXPECT(cowfs_bt_update(tr, &k, t->val, len) == 0);
			t->ver[i]++;
		} else if (r == 2) {
			ST_EXPECT(cowfs_bt_delete(tr, &k) == 0);
			t->ver[i] = 0;
		} else {
			ST_EXPECT(cowfs_bt_insert(tr, &k, t->val, 1) == -EEXIST);
		}
		if (op % 1000 == 999)
			ST_EXPECT(cowfs_commit(fs) == 0);
		if (op == FT_OPS / 2) {
			/* Remount: what was committed is what comes back. */
			ST_EXPECT(cowfs_unmount(fs) == 0);
			fs = NULL;
			ST_EXPECT(cowfs_mount(b, NULL, &fs) == 0);
			if (!fs)
				goto out;
			ST_EXPECT(cowfs_tree_open(fs, FT_TREE, false, &tr) == 0);
			ST_EXPECT(ft_verify(t, tr));
		}
	}
	ST_EXPECT(cowfs_commit(fs) == 0);
	ST_EXPECT(ft_verify(t, tr));
	int err = cowfs_check(fs, msg, sizeof(msg));
	if (err)
		kprintf("fs selftest: %s: check: %s\n", d->name, msg);
	ST_EXPECT(err == 0);
out:
	if (fs)
		ST_EXPECT(cowfs_unmount(fs) == 0);
	if (b)
		plat_bdev_close(b);
	kfree(t);
}

static struct blk_dev *ft_memdisk(const char *name, uint32_t lba)
{
	struct blk_dev *d = blk_find(name);
	if (!d) {
		struct memdisk_opts o = { .size = FT_BYTES, .lba_size = lba, .write_cache = true, .fua = lba == 4096 };
		d = memdisk_create(name, &o);
	}
	return d;
}

SELFTEST(cowfs, model_memdisk_4k)
{
	struct blk_dev *d = ft_memdisk("tfs0", 4096);
	ST_EXPECT(d != NULL);
	if (d)
		ft_run(st_failed, d, 0x4b);
}

SELFTEST(cowfs, model_memdisk_512)
{
	struct blk_dev *d = ft_memdisk("tfs1", 512);
	ST_EXPECT(d != NULL);
	if (d)
		ft_run(st_failed, d, 0x512);
}

SELFTEST(cowfs, model_scratch_disk)
{
	for (unsigned i = 0; i < blk_count(); i++) {
		struct blk_dev *d = blk_get(i);
		if (d && !d->dead && blk_is_scratch(d) && d->nblocks * d->lba_size >= FT_BYTES &&
		    strncmp(d->name, "tmem", 4) && strncmp(d->name, "tfs", 3)) {
			ft_run(st_failed, d, 0xd15c);
			return;
		}
	}
	ST_SKIP("no scratch disk of 24 MiB or more (boot argument scratch=NAME)");
}
