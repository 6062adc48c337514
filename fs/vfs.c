/*
 * The mounted filesystem: mount and unmount, the inode cache, the
 * filesystem lock, and the background work (commits every
 * commit_interval_ms, the background delete of snapshots).
 *
 * Inode cache.  A vnode is created on the first cowfs_vget of an inode and
 * stays cached (vget/vput only count users) until unmount, or until it is
 * doomed: no names (nlink 0), no users, not open -- then it is queued and
 * cowfs_vfs_unlock() frees it after releasing the lock, because dropping
 * its page cache may wait for writeback, whose completion needs the lock.
 * A doomed vnode is invisible to cowfs_vget (-ENOENT) while it waits.
 *
 * Inode records.  vn->rec is authoritative while cached; changes mark it
 * dirty and every commit first writes the dirty records into the tree
 * (vfs_write_records), so a commit always holds the attributes that go
 * with the data and names it holds.
 */
#include "fs/vfs_int.h"
#include "fs/file.h"
#include "fs/xattr.h"

#define VFS_HASH 1024u
#define VFS_DEFAULT_INTERVAL_MS 5000u
#define VFS_DEFAULT_DATA_CACHE (64ull << 20)
#define VFS_DROP_BUDGET 256u              /* nodes freed per background step */

void cowfs_vfs_lock(struct cowfs_mount *m) { plat_mutex_lock(m->lock); }

struct cowfs_time cowfs_now(void)
{
	int64_t ns = plat_realtime_ns();
	if (ns < 0)
		ns = 0;
	return (struct cowfs_time){ (uint64_t)ns / 1000000000u, (uint32_t)((uint64_t)ns % 1000000000u) };
}

static struct cowfs_vnode **vfs_bucket(struct cowfs_mount *m, uint64_t ino)
{
	return &m->vhash[(ino * 0x9E3779B97F4A7C15ull >> 40) & m->vhash_mask];
}

static void vfs_unhash(struct cowfs_vnode *vn)
{
	for (struct cowfs_vnode **p = vfs_bucket(vn->m, vn->rec.ino); *p; p = &(*p)->hnext)
		if (*p == vn) {
			*p = vn->hnext;
			vn->m->vnodes--;
			return;
		}
}

int cowfs_vget(struct cowfs_mount *m, uint64_t ino, struct cowfs_vnode **out)
{
	struct cowfs_vnode **b = vfs_bucket(m, ino);
	for (struct cowfs_vnode *v = *b; v; v = v->hnext)
		if (v->rec.ino == ino) {
			if (v->doomed)
				return -PLAT_ENOENT;
			v->refs++;
			*out = v;
			return 0;
		}
	struct cowfs_vnode *v = plat_zalloc(sizeof(*v));
	if (!v)
		return -PLAT_ENOMEM;
	int err = cowfs_inode_read(m->tree, ino, &v->rec);
	if (err) {
		plat_free(v);
		return err;
	}
	v->m = m;
	v->refs = 1;
	v->hnext = *b;
	*b = v;
	m->vnodes++;
	*out = v;
	return 0;
}

void cowfs_vput(struct cowfs_vnode *vn)
{
	PLAT_ASSERT(vn->refs > 0);
	if (--vn->refs || vn->opens || vn->rec.nlink || vn->doomed)
		return;
	vn->doomed = true;
	vn->evict_next = vn->m->evict_list;
	vn->m->evict_list = vn;
}

void cowfs_vdirty(struct cowfs_vnode *vn)
{
	vn->rec_dirty = true;
	/* Inside a namespace operation: the intent log carries this record. */
	if (vn->m->tree->watch) {
		struct cowfs_key k = { vn->rec.ino, CFS_ITEM_INODE, 0 };
		cowfs_keyset_add(vn->m->tree->watch, &k);
	}
}

/* A doomed vnode: its data (page cache, extents), its items, itself.  The
 * page cache goes without the lock, the items with it. */
static void vfs_evict(struct cowfs_mount *m, struct cowfs_vnode *vn)
{
	cowfs_file_drop_cache(vn);
	plat_mutex_lock(m->lock);
	int err = cowfs_writable(m->fs);
	if (!err)
		err = cowfs_file_free_data(vn);
	struct cowfs_key sym = { vn->rec.ino, CFS_ITEM_SYMLINK, 0 };
	struct cowfs_key orph = { CFS_ORPHAN_OBJECTID, CFS_ITEM_ORPHAN, vn->rec.ino };
	if (!err && (err = cowfs_bt_delete(m->tree, &sym)) == -PLAT_ENOENT)
		err = 0;
	if (!err)
		err = cowfs_xattr_delete_all(m->tree, vn->rec.ino);
	if (!err)
		err = cowfs_inode_delete(m->tree, vn->rec.ino);
	if (!err && (err = cowfs_bt_delete(m->tree, &orph)) == -PLAT_ENOENT)
		err = 0;
	if (err && err != -PLAT_EROFS)
		plat_log(PLAT_LOG_ERR, "cowfs: freeing inode %llu: %s (its ORPHAN item frees it at the next mount)",
			 (unsigned long long)vn->rec.ino, plat_strerror(err));
	vfs_unhash(vn);
	plat_mutex_unlock(m->lock);
	plat_free(vn);
}

void cowfs_vfs_unlock(struct cowfs_mount *m)
{
	struct cowfs_vnode *list = m->evict_list;
	m->evict_list = NULL;
	plat_mutex_unlock(m->lock);
	while (list) {
		struct cowfs_vnode *vn = list;
		list = vn->evict_next;
		vfs_evict(m, vn);
	}
}

/* Every dirty inode record into the tree (lock held). */
static int vfs_write_records(struct cowfs_mount *m)
{
	for (uint64_t i = 0; i <= m->vhash_mask; i++)
		for (struct cowfs_vnode *v = m->vhash[i]; v; v = v->hnext) {
			if (!v->rec_dirty || v->doomed)
				continue;
			int err = cowfs_inode_write(m->tree, &v->rec);
			if (err)
				return err;
			v->rec_dirty = false;
		}
	return 0;
}

int cowfs_vfs_commit_locked(struct cowfs_mount *m)
{
	int err = cowfs_writable(m->fs);
	if (!err)
		err = vfs_write_records(m);
	if (!err)
		err = cowfs_commit(m->fs);
	return err;
}

/* ---- background work ---- */

static bool vfs_wake_cond(void *arg)
{
	struct cowfs_mount *m = arg;
	return plat_load(&m->stopping) || plat_load(&m->kick);
}

static void vfs_worker(void *arg)
{
	struct cowfs_mount *m = arg;
	while (!plat_load(&m->stopping)) {
		plat_wait_until(m->worker_wq, vfs_wake_cond, m,
				plat_time_ns() + (uint64_t)m->interval_ms * 1000000ull);
		plat_store(&m->kick, false);
		if (plat_load(&m->stopping))
			break;
		/* Data first, so the commit holds it; then the commit; then a
		 * throttled step of any background snapshot delete. */
		cowfs_file_writeback_all(m);
		cowfs_vfs_lock(m);
		if (!m->fs->readonly) {
			bool more = false;
			cowfs_vfs_commit_locked(m);
			if (!cowfs_drop_step(m->fs, VFS_DROP_BUDGET, &more) && more)
				plat_store(&m->kick, true);    /* go on soon, one step per round */
		}
		cowfs_vfs_unlock(m);
	}
}

/* ---- mount ---- */

static int vfs_root(struct cowfs_mount *m)
{
	struct cowfs_inode root;
	int err = cowfs_inode_read(m->tree, CFS_ROOT_INO, &root);
	if (err != -PLAT_ENOENT)
		return err;
	if (m->fs->readonly) {
		plat_log(PLAT_LOG_ERR, "cowfs: %s: the root directory is missing (read-only: not made)",
			 plat_bdev_name(m->fs->bdev));
		return -PLAT_EIO;
	}
	root = (struct cowfs_inode){ .ino = CFS_ROOT_INO, .mode = CFS_S_IFDIR | 0755, .nlink = 2,
				     .next_dir_seq = CFS_FIRST_DIR_SEQ };
	root.atime = root.mtime = root.ctime = root.btime = cowfs_now();
	return cowfs_inode_create(m->tree, &root);     /* committed with the first changes */
}

static void vfs_free(struct cowfs_mount *m)
{
	if (m->own_wq && m->wq)
		iomap_workq_destroy(m->wq);
	if (m->ra_wq)
		iomap_workq_destroy(m->ra_wq);
	if (m->own_pc && m->pc)
		pcache_destroy(m->pc);
	if (m->lock)
		plat_mutex_free(m->lock);
	if (m->worker_wq)
		plat_waitq_free(m->worker_wq);
	plat_free(m->vhash);
	cowfs_keyset_free(&m->ns_keys);
	plat_free(m);
}

int cowfs_vfs_mount(struct plat_bdev *b, const struct cowfs_vfs_opts *o, struct cowfs_mount **out)
{
	struct cowfs_vfs_opts def = { 0 };
	struct cowfs_mount *m = plat_zalloc(sizeof(*m));
	int err;
	if (!o)
		o = &def;
	if (!m)
		return -PLAT_ENOMEM;
	m->bdev = b;
	m->interval_ms = o->commit_interval_ms ? o->commit_interval_ms : VFS_DEFAULT_INTERVAL_MS;
	m->vhash_mask = VFS_HASH - 1;
	m->fsync_log = !o->no_fsync_log;
	m->vhash = plat_zalloc(VFS_HASH * sizeof(*m->vhash));
	m->lock = plat_mutex_new("cowfs");
	m->worker_wq = plat_waitq_new("cowfs-worker");
	err = m->vhash && m->lock && m->worker_wq ? 0 : -PLAT_ENOMEM;
	m->pc = o->pc;
	m->wq = o->wq;
	if (!err && !m->pc) {
		uint64_t budget = o->data_cache_bytes ? o->data_cache_bytes : VFS_DEFAULT_DATA_CACHE;
		struct pcache_config pcfg = { budget, budget / 2, budget / 4, 1, 1000ull * 1000000ull };
		m->own_pc = true;
		err = pcache_create(&pcfg, &m->pc);
	}
	if (!err && !m->wq) {
		m->own_wq = true;
		err = iomap_workq_create("cowfs-io", 1, &m->wq);
	}
	if (!err)
		err = iomap_workq_create("cowfs-ra", 1, &m->ra_wq);
	struct cowfs_mount_opts mo = o->fs;
	if (o->snapshot)
		mo.readonly = true;     /* a snapshot is read as it was taken */
	if (!err)
		err = cowfs_mount(b, &mo, &m->fs);
	if (err)
		goto fail;
	uint64_t tree = CFS_TREE_FS;
	if (o->snapshot && (err = cowfs_snapshot_lookup(m->fs, CFS_TREE_FS, o->snapshot, plat_strlen(o->snapshot), &tree)))
		plat_log(PLAT_LOG_ERR, "cowfs: %s: no snapshot named \"%s\" (%s)", plat_bdev_name(b), o->snapshot,
			 plat_strerror(err));
	if (!err)
		err = cowfs_tree_open(m->fs, tree, !m->fs->readonly, &m->tree);
	/* mkfs makes the root directory; images made before it did get theirs
	 * at their first read-write mount (vfs_root). */
	if (err == -PLAT_ENOENT && !o->snapshot)
		plat_log(PLAT_LOG_ERR, "cowfs: %s: a filesystem with no root directory yet (made by an older mkfs): "
			 "mount it read-write once before read-only", plat_bdev_name(b));
	if (!err)
		err = vfs_root(m);
	if (!err && !m->fs->readonly)
		err = cowfs_orphans_cleanup(m, NULL);
	if (err) {
		cowfs_unmount(m->fs);
		goto fail;
	}
	if (!m->fs->readonly && !(m->worker = plat_thread_create("cowfs-commit", vfs_worker, m))) {
		cowfs_unmount(m->fs);
		err = -PLAT_ENOMEM;
		goto fail;
	}
	*out = m;
	return 0;
fail:
	vfs_free(m);
	return err;
}

int cowfs_vfs_sync(struct cowfs_mount *m)
{
	int err = cowfs_file_writeback_all(m);
	cowfs_vfs_lock(m);
	int cerr = m->fs->readonly ? 0 : cowfs_vfs_commit_locked(m);

	cowfs_vfs_unlock(m);
	return err ? err : cerr;
}

int cowfs_vfs_unmount(struct cowfs_mount *m)
{
	int err = 0;
	if (m->worker) {
		plat_store(&m->stopping, true);
		plat_wake_all(m->worker_wq);
		/* The worker uses the mount: never free it under a running
		 * worker, but say so when the wait is long. */
		while (plat_thread_join(m->worker, plat_time_ns() + 10000000000ull))
			plat_log(PLAT_LOG_WARN, "cowfs: unmount still waiting for the commit thread");
	}
	if (!m->fs->readonly)
		err = cowfs_file_writeback_all(m);
	/* Every vnode's page cache goes (written back above), then the
	 * records are committed and the vnodes freed. */
	for (uint64_t i = 0; i <= m->vhash_mask; i++)
		for (struct cowfs_vnode *v = m->vhash[i]; v; v = v->hnext)
			cowfs_file_drop_cache(v);
	plat_mutex_lock(m->lock);
	int cerr = m->fs->readonly ? 0 : vfs_write_records(m);
	for (uint64_t i = 0; i <= m->vhash_mask; i++)
		while (m->vhash[i]) {
			struct cowfs_vnode *v = m->vhash[i];
			m->vhash[i] = v->hnext;
			plat_free(v);
		}
	plat_mutex_unlock(m->lock);
	int uerr = cowfs_unmount(m->fs);
	vfs_free(m);
	return err ? err : cerr ? cerr : uerr;
}

struct cowfs *cowfs_vfs_fs(struct cowfs_mount *m) { return m->fs; }

int cowfs_statfs(struct cowfs_mount *m, struct cowfs_statfs *out)
{
	struct cowfs_info in;
	cowfs_vfs_lock(m);
	cowfs_info(m->fs, &in);
	uint64_t reserved = cowfs_file_reserved(m);
	uint64_t inodes = 0;
	struct cowfs_key k;
	if (!cowfs_bt_last(m->tree, &k))
		inodes = k.objectid >= CFS_ROOT_INO ? k.objectid - CFS_ROOT_INO + 1 : 0;
	cowfs_vfs_unlock(m);
	/* Pinned blocks (freed, reusable once the next commit is durable,
	 * docs/format.md §7) count as free: they are, a commit later. */
	uint64_t busy = in.used_blocks + reserved;
	*out = (struct cowfs_statfs){
		.block_size = CFS_BLOCK_SIZE,
		.total_blocks = in.total_blocks,
		.free_blocks = busy < in.total_blocks ? in.total_blocks - busy : 0,
		.inodes = inodes,
		.name_max = CFS_NAME_MAX,
	};
	return 0;
}

int cowfs_getattr(struct cowfs_mount *m, uint64_t ino, struct cowfs_inode *out)
{
	struct cowfs_vnode *vn;
	cowfs_vfs_lock(m);
	int err = cowfs_vget(m, ino, &vn);
	if (!err) {
		*out = vn->rec;
		cowfs_file_attr(vn, out);     /* the in-memory size of a file being written */
		cowfs_vput(vn);
	}
	cowfs_vfs_unlock(m);
	return err;
}

int cowfs_open(struct cowfs_mount *m, uint64_t ino)
{
	struct cowfs_vnode *vn;
	cowfs_vfs_lock(m);
	int err = cowfs_vget(m, ino, &vn);
	if (!err) {
		vn->opens++;
		cowfs_vput(vn);
	}
	cowfs_vfs_unlock(m);
	return err;
}

void cowfs_release(struct cowfs_mount *m, uint64_t ino)
{
	struct cowfs_vnode **b = vfs_bucket(m, ino);
	cowfs_vfs_lock(m);
	for (struct cowfs_vnode *v = *b; v; v = v->hnext)
		if (v->rec.ino == ino && v->opens) {
			v->opens--;
			v->refs++;
			cowfs_vput(v);        /* the last close of an unlinked file frees it */
			break;
		}
	cowfs_vfs_unlock(m);
}

int cowfs_vfs_drop_pending(struct cowfs_mount *m)
{
	cowfs_vfs_lock(m);
	int err = cowfs_drop_all(m->fs);
	if (!err)
		err = cowfs_vfs_commit_locked(m);
	cowfs_vfs_unlock(m);
	return err;
}
