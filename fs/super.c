/*
 * Superblocks, mkfs, mount and unmount (docs/format.md §2, §3).
 *
 * Mount reads the 8 slots of area 0 and of area 1, keeps every copy that
 * verifies (checksum, magic, version, known incompat features, sane
 * geometry), and tries them newest generation first: the first whose root
 * tree and free-space tree load cleanly is mounted.  A torn superblock
 * write fails its checksum; a superblock whose trees fail to verify (a
 * lost write of the commit before it) falls back to the previous commit,
 * whose blocks are still intact (docs/format.md §7).
 */
#include "fs/cowfs_int.h"
#include "fs/inode.h"

#define COWFS_DEFAULT_CACHE (16ull << 20)

/* ---- encoding ---- */

void cowfs_sb_encode(struct cowfs *fs, uint8_t *sb, uint64_t gen)
{
	plat_memset(sb, 0, CFS_BLOCK_SIZE);
	cfs_put32(sb + CFS_SB_SIZE_OFF, CFS_BLOCK_SIZE);
	plat_memcpy(sb + CFS_SB_MAGIC_OFF, CFS_SB_MAGIC, 8);
	cfs_put16(sb + CFS_SB_VMAJOR, CFS_VERSION_MAJOR);
	cfs_put16(sb + CFS_SB_VMINOR, CFS_VERSION_MINOR);
	/* Code that does not replay the log must not mount (it would lose
	 * what fsync made durable), nor code that replays without checking
	 * the data the records name (it could point a file at blocks whose
	 * write never reached media), docs/format.md §9. */
	cfs_put64(sb + CFS_SB_INCOMPAT, CFS_INCOMPAT_LOG | CFS_INCOMPAT_LOG_CSUM | CFS_INCOMPAT_LOG_NAMES);
	cfs_put64(sb + CFS_SB_LOG_START, fs->log_start);
	cfs_put64(sb + CFS_SB_LOG_ID, fs->log_id);
	cfs_put32(sb + CFS_SB_SLOT, (uint32_t)(gen % CFS_SB_SLOTS));
	plat_memcpy(sb + CFS_SB_FSID, fs->fsid, CFS_FSID_SIZE);
	cfs_put64(sb + CFS_SB_GEN, gen);
	cfs_put32(sb + CFS_SB_BSIZE, CFS_BLOCK_SIZE);
	cfs_put32(sb + CFS_SB_NODESIZE, fs->node_size);
	cfs_put64(sb + CFS_SB_TOTAL, fs->total_blocks);
	cfs_put32(sb + CFS_SB_LBA, fs->lba_size);
	cfs_put32(sb + CFS_SB_NSLOTS, CFS_SB_SLOTS);
	cfs_put64(sb + CFS_SB_AREA0_OFF, CFS_SB_AREA0);
	cfs_put64(sb + CFS_SB_AREA1_OFF, fs->total_blocks - CFS_SB_SLOTS);
	cfs_bptr_put(sb + CFS_SB_ROOT, &fs->root_tree.root);
	cfs_put64(sb + CFS_SB_USED, fs->al.used);
	plat_memcpy(sb + CFS_SB_LABEL, fs->label, CFS_LABEL_SIZE);
	cfs_bptr_put(sb + CFS_SB_BACKUP, &fs->backup[0]);
	cfs_bptr_put(sb + CFS_SB_BACKUP + CFS_BPTR_SIZE, &fs->backup[1]);
	cfs_put32(sb + CFS_SB_CSUM, crc32c(0, sb + 4, CFS_BLOCK_SIZE - 4));
}

/* NULL when the block is a superblock this code can mount. */
static const char *sb_check(const uint8_t *sb, uint64_t dev_blocks)
{
	if (plat_memcmp(sb + CFS_SB_MAGIC_OFF, CFS_SB_MAGIC, 8))
		return "no cowfs magic";
	if (cfs_get32(sb + CFS_SB_CSUM) != crc32c(0, sb + 4, CFS_BLOCK_SIZE - 4))
		return "checksum mismatch (torn or corrupt)";
	if (cfs_get16(sb + CFS_SB_VMAJOR) != CFS_VERSION_MAJOR)
		return "unsupported major version";
	if (cfs_get64(sb + CFS_SB_INCOMPAT) & ~CFS_INCOMPAT_KNOWN)
		return "unknown incompatible feature";
	uint32_t ns = cfs_get32(sb + CFS_SB_NODESIZE);
	uint64_t total = cfs_get64(sb + CFS_SB_TOTAL);
	if (cfs_get32(sb + CFS_SB_BSIZE) != CFS_BLOCK_SIZE || (ns != 4096 && ns != 8192 && ns != 16384))
		return "unsupported block or node size";
	if (total < CFS_MIN_BLOCKS || total > dev_blocks)
		return "filesystem larger than the device";
	if (cfs_get64(sb + CFS_SB_GEN) == 0 || cfs_get32(sb + CFS_SB_NSLOTS) != CFS_SB_SLOTS ||
	    cfs_get64(sb + CFS_SB_AREA1_OFF) != total - CFS_SB_SLOTS)
		return "bad geometry";
	return NULL;
}

/* ---- filesystem object ---- */

static struct cowfs *fs_new(struct plat_bdev *b)
{
	struct cowfs *fs = plat_zalloc(sizeof(*fs));
	if (!fs)
		return NULL;
	fs->bdev = b;
	fs->lba_size = plat_bdev_block_size(b);
	fs->root_tree.fs = fs->free_tree.fs = fs;
	fs->root_tree.id = CFS_TREE_ROOT;
	fs->free_tree.id = CFS_TREE_FREE;
	return fs;
}

/* Needs node_size and total_blocks. */
static int fs_setup(struct cowfs *fs, uint64_t cache_bytes, bool fresh)
{
	fs->node_blocks = fs->node_size / CFS_BLOCK_SIZE;
	fs->scratch[0] = plat_alloc_pages(fs->node_size);
	fs->scratch[1] = plat_alloc_pages(fs->node_size);
	if (!fs->scratch[0] || !fs->scratch[1])
		return -PLAT_ENOMEM;
	int err = cowfs_nc_init(fs, cache_bytes ? cache_bytes : COWFS_DEFAULT_CACHE);
	if (!err)
		err = cowfs_alloc_init(fs, fresh);
	return err;
}

static void fs_free(struct cowfs *fs)
{
	cowfs_trees_free(fs);
	cowfs_nc_fini(fs);
	cowfs_alloc_fini(fs);
	for (int i = 0; i < 2; i++)
		if (fs->scratch[i])
			plat_free_pages(fs->scratch[i], fs->node_size);
	plat_free(fs);
}

/* ---- trees by id ---- */

/* The tree's root pointer into its ROOT_ITEM; the item's other fields
 * (snapshot flags, parent, drop progress) are kept. */
int cowfs_root_item_put(struct cowfs *fs, struct cowfs_tree *t)
{
	uint8_t ri[CFS_ROOT_ITEM_SIZE] = { 0 };
	struct cowfs_key k = { t->id, CFS_ITEM_ROOT, 0 };
	uint32_t len;
	int err = cowfs_bt_lookup(&fs->root_tree, &k, ri, sizeof(ri), &len);
	if (err && err != -PLAT_ENOENT)
		return err;
	bool exists = !err;
	cfs_bptr_put(ri + CFS_RI_PTR, &t->root);
	return exists ? cowfs_bt_update(&fs->root_tree, &k, ri, sizeof(ri))
		      : cowfs_bt_insert(&fs->root_tree, &k, ri, sizeof(ri));
}

struct root_walk {
	cowfs_root_item_fn cb;
	void *arg;
};

static int root_walk_cb(void *arg, const struct cowfs_key *k, const void *data, uint32_t len)
{
	struct root_walk *w = arg;
	if (k->type != CFS_ITEM_ROOT || len != CFS_ROOT_ITEM_SIZE)
		return 0;
	return w->cb(w->arg, k->objectid, data);
}

int cowfs_root_items(struct cowfs *fs, uint64_t first, cowfs_root_item_fn cb, void *arg)
{
	struct root_walk w = { cb, arg };
	struct cowfs_key from = { first, CFS_ITEM_ROOT, 0 }, to = { UINT64_MAX, 255, UINT64_MAX };
	return cowfs_bt_iterate(&fs->root_tree, &from, &to, root_walk_cb, &w);
}

static int tree_load(struct cowfs *fs, struct cowfs_tree *t)
{
	uint8_t ri[CFS_ROOT_ITEM_SIZE];
	uint32_t len;
	struct cowfs_key k = { t->id, CFS_ITEM_ROOT, 0 };
	int err = cowfs_bt_lookup(&fs->root_tree, &k, ri, sizeof(ri), &len);
	if (err)
		return err;
	if (len != CFS_ROOT_ITEM_SIZE)
		return -PLAT_EIO;
	if (cfs_get64(ri + CFS_RI_FLAGS) & CFS_ROOT_DROPPING)
		return -PLAT_ENOENT;            /* deleted: being freed in the background */
	cfs_bptr_get(ri + CFS_RI_PTR, &t->root);
	t->readonly = cfs_get64(ri + CFS_RI_FLAGS) & CFS_ROOT_RDONLY;
	return 0;
}

int cowfs_tree_open(struct cowfs *fs, uint64_t id, bool create, struct cowfs_tree **out)
{
	if (id < CFS_TREE_FS)
		return -PLAT_EINVAL;
	return cowfs_tree_get(fs, id, create, out);
}

/* Any tree but the root and free-space trees (which live in struct cowfs). */
int cowfs_tree_get(struct cowfs *fs, uint64_t id, bool create, struct cowfs_tree **out)
{
	if (id == CFS_TREE_ROOT || id == CFS_TREE_FREE)
		return -PLAT_EINVAL;
	for (struct cowfs_tree *t = fs->trees; t; t = t->next)
		if (t->id == id) {
			*out = t;
			return 0;
		}
	struct cowfs_tree *t = plat_zalloc(sizeof(*t));
	if (!t)
		return -PLAT_ENOMEM;
	t->fs = fs;
	t->id = id;
	int err = tree_load(fs, t);
	if (err == -PLAT_ENOENT && create) {
		err = cowfs_writable(fs);
		if (!err)
			err = cowfs_tree_new_root(t);
		if (!err)
			err = cowfs_root_item_put(fs, t);
	}
	if (err) {
		plat_free(t);
		return err;
	}
	t->next = fs->trees;
	fs->trees = t;
	*out = t;
	return 0;
}

void cowfs_trees_free(struct cowfs *fs)
{
	while (fs->trees) {
		struct cowfs_tree *t = fs->trees;
		fs->trees = t->next;
		plat_free(t);
	}
}

/* ---- mkfs ---- */

/* The top subvolume with its root directory (inode 256, mode 0755, owned
 * by root), so that a new filesystem also mounts read-only and its fsck
 * finds the namespace it describes. */
static int mkfs_root_dir(struct cowfs *fs)
{
	struct cowfs_tree *t;
	int err = cowfs_tree_open(fs, CFS_TREE_FS, true, &t);
	if (err)
		return err;
	int64_t ns = plat_realtime_ns();
	uint64_t u = ns < 0 ? 0 : (uint64_t)ns;
	struct cowfs_time now = { u / 1000000000u, (uint32_t)(u % 1000000000u) };
	struct cowfs_inode root = { .ino = CFS_ROOT_INO, .mode = 0040755u /* directory */, .nlink = 2,
				    .next_dir_seq = CFS_FIRST_DIR_SEQ };
	root.atime = root.mtime = root.ctime = root.btime = now;
	return cowfs_inode_create(t, &root);
}

int cowfs_mkfs(struct plat_bdev *b, const struct cowfs_mkfs_opts *o)
{
	struct cowfs_mkfs_opts def = { 0 };
	if (!o)
		o = &def;
	uint64_t dev_blocks = plat_bdev_size(b) / CFS_BLOCK_SIZE;
	uint64_t total = o->total_blocks ? o->total_blocks : dev_blocks;
	uint32_t ns = o->node_size ? o->node_size : 16384;
	if (ns != 4096 && ns != 8192 && ns != 16384) {
		plat_log(PLAT_LOG_ERR, "cowfs: mkfs: node size %u: must be 4096, 8192 or 16384", ns);
		return -PLAT_EINVAL;
	}
	if (total < CFS_MIN_BLOCKS || total > dev_blocks) {
		plat_log(PLAT_LOG_ERR, "cowfs: mkfs: %llu blocks: need %u..%llu", (unsigned long long)total,
			 CFS_MIN_BLOCKS, (unsigned long long)dev_blocks);
		return -PLAT_EINVAL;
	}
	struct cowfs *fs = fs_new(b);
	if (!fs)
		return -PLAT_ENOMEM;
	fs->node_size = ns;
	fs->total_blocks = total;
	fs->gen = 1;
	if (o->fsid) {
		plat_memcpy(fs->fsid, o->fsid, CFS_FSID_SIZE);
	} else {
		uint64_t x = plat_time_ns() ^ (uintptr_t)fs;
		for (unsigned i = 0; i < CFS_FSID_SIZE; i++) {
			x ^= x << 13; x ^= x >> 7; x ^= x << 17;
			fs->fsid[i] = (uint8_t)x;
		}
	}
	if (o->label)
		for (unsigned i = 0; i < CFS_LABEL_SIZE - 1 && o->label[i]; i++)
			fs->label[i] = o->label[i];
	int err = fs_setup(fs, 0, true);
	/* Old superblocks (of any filesystem that was here) must not outlive
	 * mkfs: a stale slot with a higher generation would win at mount. */
	uint8_t *zero = plat_zalloc(CFS_SB_SLOTS * CFS_BLOCK_SIZE);
	if (!err && !zero)
		err = -PLAT_ENOMEM;
	if (!err) {
		struct cowfs_iob *iob = cowfs_iob_new(fs);
		if (!iob) {
			err = -PLAT_ENOMEM;
		} else {
			cowfs_iob_write(iob, CFS_SB_AREA0, zero, CFS_SB_SLOTS * CFS_BLOCK_SIZE, 0);
			cowfs_iob_write(iob, total - CFS_SB_SLOTS, zero, CFS_SB_SLOTS * CFS_BLOCK_SIZE, 0);
			err = cowfs_iob_wait(iob);
		}
	}
	plat_free(zero);
	if (!err)
		err = cowfs_flush(fs);
	if (!err)
		err = cowfs_tree_new_root(&fs->root_tree);
	if (!err)
		err = cowfs_tree_new_root(&fs->free_tree);
	if (!err)
		err = cowfs_alloc_create_items(fs);
	if (!err && !o->bare)
		err = mkfs_root_dir(fs);
	if (!err)
		err = cowfs_commit(fs);
	if (err)
		plat_log(PLAT_LOG_ERR, "cowfs: mkfs on %s failed: %s", plat_bdev_name(b), plat_strerror(err));
	fs_free(fs);
	return err;
}

/* ---- mount ---- */

struct sb_cand {
	uint8_t *sb;
	uint64_t gen;
};

static int mount_from(struct cowfs *fs, const uint8_t *sb, uint64_t cache_bytes)
{
	plat_memcpy(fs->fsid, sb + CFS_SB_FSID, CFS_FSID_SIZE);
	plat_memcpy(fs->label, sb + CFS_SB_LABEL, CFS_LABEL_SIZE);
	fs->label[CFS_LABEL_SIZE - 1] = 0;
	fs->node_size = cfs_get32(sb + CFS_SB_NODESIZE);
	fs->total_blocks = cfs_get64(sb + CFS_SB_TOTAL);
	fs->committed_gen = cfs_get64(sb + CFS_SB_GEN);
	fs->log_start = cfs_get64(sb + CFS_SB_LOG_START);
	fs->log_id = cfs_get64(sb + CFS_SB_LOG_ID);
	fs->gen = fs->committed_gen + 1;
	cfs_bptr_get(sb + CFS_SB_ROOT, &fs->root_tree.root);
	cfs_bptr_get(sb + CFS_SB_BACKUP, &fs->backup[0]);
	cfs_bptr_get(sb + CFS_SB_BACKUP + CFS_BPTR_SIZE, &fs->backup[1]);
	int err = fs_setup(fs, cache_bytes, false);
	if (!err)
		err = tree_load(fs, &fs->free_tree);
	if (!err)
		err = cowfs_alloc_load(fs);
	if (!err)
		err = cowfs_refs_load(fs);
	fs->leaf_data_refs = cowfs_extent_leaf_refs;
	if (!err && fs->al.used != cfs_get64(sb + CFS_SB_USED)) {
		plat_log(PLAT_LOG_ERR, "cowfs: superblock says %llu blocks used, free-space tree %llu",
			 (unsigned long long)cfs_get64(sb + CFS_SB_USED), (unsigned long long)fs->al.used);
		err = -PLAT_EIO;
	}
	return err;
}

/* Valid superblocks of one area into c[]; with fsid, only copies of that
 * filesystem (area 1 of an older, differently sized filesystem may still
 * be on the device). */
static void sb_read_area(struct plat_bdev *b, uint64_t area, uint64_t dev_blocks, uint8_t *buf,
			 const uint8_t *fsid, struct sb_cand *c, unsigned *nc)
{
	if (area + CFS_SB_SLOTS > dev_blocks ||
	    plat_bdev_rw(b, PLAT_BIO_READ, area * CFS_BLOCK_SIZE, buf, CFS_SB_SLOTS * CFS_BLOCK_SIZE))
		return;
	for (unsigned i = 0; i < CFS_SB_SLOTS; i++) {
		uint8_t *sb = buf + i * CFS_BLOCK_SIZE;
		const char *why = sb_check(sb, dev_blocks);
		if (why) {
			if (plat_memcmp(sb + CFS_SB_MAGIC_OFF, CFS_SB_MAGIC, 8) == 0)
				plat_log(PLAT_LOG_WARN, "cowfs: %s: superblock at block %llu ignored: %s",
					 plat_bdev_name(b), (unsigned long long)(area + i), why);
			continue;
		}
		if (fsid && plat_memcmp(sb + CFS_SB_FSID, fsid, CFS_FSID_SIZE))
			continue;
		c[*nc].sb = sb;
		c[*nc].gen = cfs_get64(sb + CFS_SB_GEN);
		(*nc)++;
	}
}

/* Once, at the first mount: the faster crc32c on this machine (crc32c.h). */
static void cowfs_crc32c_choose(void)
{
	static int chosen;
	if (__atomic_exchange_n(&chosen, 1, __ATOMIC_ACQ_REL))
		return;
	uint64_t mbps[3] = { 0 };
	enum crc32c_impl impl = crc32c_calibrate(plat_time_ns, mbps);
	plat_log(PLAT_LOG_INFO, "cowfs: crc32c by %s (measured: slice-by-8 %llu MB/s, sse4.2 %s%llu MB/s)",
		 crc32c_impl_name(impl), (unsigned long long)mbps[CRC32C_SLICE8],
		 crc32c_have_sse42() ? "" : "absent, ", (unsigned long long)mbps[CRC32C_SSE42]);
}

int cowfs_mount(struct plat_bdev *b, const struct cowfs_mount_opts *o, struct cowfs **out)
{
	struct cowfs_mount_opts def = { 0 };
	cowfs_crc32c_choose();
	if (!o)
		o = &def;
	uint64_t dev_blocks = plat_bdev_size(b) / CFS_BLOCK_SIZE;
	uint8_t *buf = plat_alloc(2 * CFS_SB_SLOTS * CFS_BLOCK_SIZE);
	struct sb_cand c[2 * CFS_SB_SLOTS];
	unsigned nc = 0;
	if (!buf)
		return -PLAT_ENOMEM;
	sb_read_area(b, CFS_SB_AREA0, dev_blocks, buf, NULL, c, &nc);
	/* Area 1 sits at the end of the filesystem: where area 0 says, or at
	 * the end of the device when area 0 has nothing valid. */
	uint64_t area1 = dev_blocks - CFS_SB_SLOTS;
	unsigned newest = 0;
	for (unsigned i = 0; i < nc; i++)
		if (c[i].gen > c[newest].gen)
			newest = i;
	const uint8_t *fsid = nc ? c[newest].sb + CFS_SB_FSID : NULL;
	if (nc)
		area1 = cfs_get64(c[newest].sb + CFS_SB_AREA1_OFF);
	sb_read_area(b, area1, dev_blocks, buf + CFS_SB_SLOTS * CFS_BLOCK_SIZE, fsid, c, &nc);
	int err = -PLAT_EINVAL;
	if (!nc)
		plat_log(PLAT_LOG_ERR, "cowfs: %s: no valid cowfs superblock", plat_bdev_name(b));
	/* Newest first; copies of one generation are tried once. */
	uint64_t tried_below = UINT64_MAX;
	while (nc) {
		unsigned best = nc;
		for (unsigned i = 0; i < nc; i++)
			if (c[i].gen < tried_below && (best == nc || c[i].gen > c[best].gen) &&
			    (!o->gen || c[i].gen == o->gen))
				best = i;
		if (best == nc && o->gen && tried_below == UINT64_MAX) {
			plat_log(PLAT_LOG_ERR, "cowfs: %s: no valid superblock of commit %llu",
				 plat_bdev_name(b), (unsigned long long)o->gen);
			err = -PLAT_ENOENT;
		}
		if (best == nc)
			break;
		tried_below = c[best].gen;
		struct cowfs *fs = fs_new(b);
		if (!fs) {
			err = -PLAT_ENOMEM;
			break;
		}
		fs->hooks = o->hooks;
		err = mount_from(fs, c[best].sb, o->cache_bytes);
		if (!err) {
			/* An older commit is for looking at (fsck, tests): writing
			 * on it would reuse blocks of the newer ones. */
			fs->readonly = o->readonly || o->gen;
			if (cfs_get64(c[best].sb + CFS_SB_RO_COMPAT) & ~CFS_RO_COMPAT_KNOWN) {
				plat_log(PLAT_LOG_WARN, "cowfs: %s: unknown read-only-compatible features: read-only",
					 plat_bdev_name(b));
				fs->readonly = true;
			}
			/* The intent log of this commit (replayed and committed
			 * unless read-only); a failure fails the mount. */
			if ((err = cowfs_log_mount(fs))) {
				fs_free(fs);
				break;
			}
			plat_free(buf);
			*out = fs;
			return 0;
		}
		plat_log(PLAT_LOG_ERR, "cowfs: %s: commit %llu does not load (%s), trying the one before",
			 plat_bdev_name(b), (unsigned long long)c[best].gen, plat_strerror(err));
		fs_free(fs);
	}
	plat_free(buf);
	return err;
}

int cowfs_unmount(struct cowfs *fs)
{
	int err = 0;
	if (!fs->readonly && fs->dirty_changes)
		err = cowfs_commit(fs);
	fs_free(fs);
	return err;
}

void cowfs_fsid(struct cowfs *fs, uint8_t out[16])
{
	plat_memcpy(out, fs->fsid, CFS_FSID_SIZE);
}

void cowfs_info(struct cowfs *fs, struct cowfs_info *out)
{
	plat_memset(out, 0, sizeof(*out));
	out->gen = fs->gen;
	out->committed_gen = fs->committed_gen;
	out->total_blocks = fs->total_blocks;
	out->used_blocks = fs->al.used;
	/* Intent log blocks written since the last commit are free again
	 * two commits later, like pinned ones (fs/log.c). */
	out->pinned_blocks = fs->al.pinned + fs->log_n;
	out->node_size = fs->node_size;
	out->cached_nodes = fs->nc.nodes;
	out->dirty_nodes = fs->nc.dirty;
	out->cache_bytes = fs->nc.nodes * fs->node_size;
	out->node_reads = fs->nc.reads;
	out->node_writes = fs->nc.writes;
	out->evictions = fs->nc.evictions;
	out->verify_errors = fs->nc.verify_errors;
}
