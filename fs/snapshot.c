/*
 * Snapshots and clones of subvolume trees (docs/format.md §10).
 *
 * A snapshot is a second ROOT_ITEM pointing at the same root node: taking
 * one costs one refcount item and one root item, whatever the size of the
 * tree.  From then on both trees shadow what they change (btree.c's
 * node_cow), pushing the sharing down one level per copied node, and a
 * node is freed only when its last reference goes.
 *
 * The root must be a committed node: a node of the running transaction is
 * changed in place, which would change the snapshot too.  So a source whose
 * root changed in this transaction is committed first.
 */
#include "fs/cowfs_int.h"

static int root_item_get(struct cowfs *fs, uint64_t id, uint8_t *ri)
{
	struct cowfs_key k = { id, CFS_ITEM_ROOT, 0 };
	uint32_t len;
	int err = cowfs_bt_lookup(&fs->root_tree, &k, ri, CFS_ROOT_ITEM_SIZE, &len);
	if (!err && len != CFS_ROOT_ITEM_SIZE)
		err = -PLAT_EIO;
	return err;
}

int cowfs_snapshot_create(struct cowfs *fs, uint64_t src_id, uint64_t dst_id, bool readonly)
{
	uint8_t ri[CFS_ROOT_ITEM_SIZE];
	struct cowfs_tree *src, *dst;
	int err = cowfs_writable(fs);
	if (err)
		return err;
	if (src_id < CFS_TREE_FS || dst_id < CFS_TREE_FS)
		return -PLAT_EINVAL;
	if ((err = cowfs_tree_open(fs, src_id, false, &src)))
		return err;
	err = root_item_get(fs, dst_id, ri);
	if (err != -PLAT_ENOENT)
		return err ? err : -PLAT_EEXIST;
	if (src->root.gen == fs->gen || src->root_changed) {
		if ((err = cowfs_commit(fs)))
			return err;
	}
	/* 1. One more parent for the source's root. */
	if ((err = cowfs_ref_inc(fs, src->root.blocknr, fs->node_blocks)))
		goto fail;
	/* 2. The new tree's root item: same root, its own flags. */
	plat_memset(ri, 0, sizeof(ri));
	cfs_bptr_put(ri + CFS_RI_PTR, &src->root);
	cfs_put64(ri + CFS_RI_FLAGS, readonly ? CFS_ROOT_RDONLY : 0);
	cfs_put64(ri + CFS_RI_PARENT, src_id);
	struct cowfs_key k = { dst_id, CFS_ITEM_ROOT, 0 };
	if ((err = cowfs_bt_insert(&fs->root_tree, &k, ri, sizeof(ri))))
		goto fail;
	if ((err = cowfs_tree_open(fs, dst_id, false, &dst)))
		goto fail;
	fs->dirty_changes++;
	return 0;
fail:
	cowfs_fail(fs, err, "snapshot of tree %llu failed half-way", (unsigned long long)src_id);
	return err;
}

/* ---- names: ROOT_REF (parent, 17, child) -> {dir u64, name_len u16, name} ---- */

#define REF_HDR 10u

struct name_find {
	const char *name;
	size_t len;
	uint64_t id;
};

static int name_find_cb(void *arg, const struct cowfs_key *k, const void *data, uint32_t len)
{
	struct name_find *f = arg;
	const uint8_t *d = data;
	if (k->type != CFS_ITEM_ROOT_REF || len < REF_HDR)
		return 0;
	uint16_t nl = (uint16_t)(d[8] | d[9] << 8);
	if (nl == f->len && REF_HDR + nl <= len && !plat_memcmp(d + REF_HDR, f->name, nl)) {
		f->id = k->offset;
		return 1;
	}
	return 0;
}

static int name_ok(const char *name, size_t len)
{
	if (!len || len > CFS_NAME_MAX_SNAP)
		return len ? -PLAT_ENAMETOOLONG : -PLAT_EINVAL;
	for (size_t i = 0; i < len; i++)
		if (name[i] == '/' || name[i] == 0)
			return -PLAT_EINVAL;
	return 0;
}

int cowfs_snapshot_lookup(struct cowfs *fs, uint64_t src, const char *name, size_t len, uint64_t *id)
{
	struct name_find f = { name, len, 0 };
	struct cowfs_key from = { src, CFS_ITEM_ROOT_REF, 0 }, to = { src, CFS_ITEM_ROOT_REF, UINT64_MAX };
	int err = name_ok(name, len);
	if (err)
		return err;
	err = cowfs_bt_iterate(&fs->root_tree, &from, &to, name_find_cb, &f);
	if (err < 0)
		return err;
	if (!f.id)
		return -PLAT_ENOENT;
	*id = f.id;
	return 0;
}

static int max_id_cb(void *arg, uint64_t id, const uint8_t *ri)
{
	(void)ri;
	*(uint64_t *)arg = id;                 /* in id order: the last is the largest */
	return 0;
}

/* The next free tree id above every existing one. */
static int next_tree_id(struct cowfs *fs, uint64_t *id)
{
	uint64_t last = CFS_TREE_FS;
	int err = cowfs_root_items(fs, CFS_TREE_FS, max_id_cb, &last);
	*id = last + 1;
	return err < 0 ? err : 0;
}

int cowfs_snapshot_named(struct cowfs *fs, uint64_t src, const char *name, size_t len, bool readonly, uint64_t *id)
{
	uint64_t existing;
	int err = cowfs_snapshot_lookup(fs, src, name, len, &existing);
	if (!err)
		return -PLAT_EEXIST;
	if (err != -PLAT_ENOENT)
		return err;
	if ((err = next_tree_id(fs, id)) || (err = cowfs_snapshot_create(fs, src, *id, readonly)))
		return err;
	uint8_t ref[REF_HDR + CFS_NAME_MAX_SNAP];
	plat_memset(ref, 0, REF_HDR);
	ref[8] = (uint8_t)len;
	ref[9] = (uint8_t)(len >> 8);
	plat_memcpy(ref + REF_HDR, name, len);
	struct cowfs_key k = { src, CFS_ITEM_ROOT_REF, *id };
	err = cowfs_bt_insert(&fs->root_tree, &k, ref, (uint32_t)(REF_HDR + len));
	if (err)
		cowfs_fail(fs, err, "naming snapshot %llu failed", (unsigned long long)*id);
	return err;
}

int cowfs_snapshot_delete_named(struct cowfs *fs, uint64_t src, const char *name, size_t len)
{
	uint64_t id;
	int err = cowfs_snapshot_lookup(fs, src, name, len, &id);
	return err ? err : cowfs_snapshot_delete(fs, id);
}

/* The ROOT_REF naming tree id (its parent's), if any. */
static int ref_of(struct cowfs *fs, uint64_t parent, uint64_t id, char *name, bool remove)
{
	uint8_t ref[REF_HDR + CFS_NAME_MAX_SNAP];
	uint32_t len;
	struct cowfs_key k = { parent, CFS_ITEM_ROOT_REF, id };
	int err = cowfs_bt_lookup(&fs->root_tree, &k, ref, sizeof(ref), &len);
	if (err)
		return err;
	uint16_t nl = (uint16_t)(ref[8] | ref[9] << 8);
	if (len < REF_HDR || nl > CFS_NAME_MAX_SNAP || REF_HDR + nl != len)
		return -PLAT_EIO;
	if (name) {
		plat_memcpy(name, ref + REF_HDR, nl);
		name[nl] = 0;
	}
	return remove ? cowfs_bt_delete(&fs->root_tree, &k) : 0;
}

int cowfs_snapshot_delete(struct cowfs *fs, uint64_t id)
{
	uint8_t ri[CFS_ROOT_ITEM_SIZE];
	struct cowfs_tree *t;
	int err = cowfs_writable(fs);
	if (err)
		return err;
	if (id < CFS_TREE_FS)
		return -PLAT_EINVAL;
	if ((err = root_item_get(fs, id, ri)) || (err = cowfs_tree_open(fs, id, false, &t)))
		return err;
	/* The tree must be whole on the device before it is marked: commit
	 * its changes of this transaction first (a dying tree is never
	 * changed again, and its dirty nodes would otherwise be lost). */
	if (t->root.gen == fs->gen || t->root_changed) {
		if ((err = cowfs_commit(fs)) || (err = root_item_get(fs, id, ri)))
			return err;
	}
	/* 1. Mark it: flag, no progress yet. */
	uint64_t flags = cfs_get64(ri + CFS_RI_FLAGS) | CFS_ROOT_DROPPING;
	cfs_put64(ri + CFS_RI_FLAGS, flags);
	plat_memset(ri + CFS_RI_DROP, 0, CFS_ROOT_ITEM_SIZE - CFS_RI_DROP);
	struct cowfs_key k = { id, CFS_ITEM_ROOT, 0 };
	err = cowfs_bt_update(&fs->root_tree, &k, ri, sizeof(ri));
	/* 2. Its name goes at once. */
	uint64_t parent = cfs_get64(ri + CFS_RI_PARENT);
	if (!err && parent) {
		err = ref_of(fs, parent, id, NULL, true);
		if (err == -PLAT_ENOENT)
			err = 0;                 /* an unnamed one */
	}
	if (err) {
		cowfs_fail(fs, err, "delete of tree %llu failed half-way", (unsigned long long)id);
		return err;
	}
	/* 3. Closed: lookups now say ENOENT. */
	for (struct cowfs_tree **pp = &fs->trees; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			plat_free(t);
			break;
		}
	fs->dirty_changes++;
	return 0;
}

struct list_ctx {
	struct cowfs *fs;
	cowfs_subvol_fn cb;
	void *arg;
};

static int list_cb(void *arg, uint64_t id, const uint8_t *ri)
{
	struct list_ctx *c = arg;
	if (cfs_get64(ri + CFS_RI_FLAGS) & CFS_ROOT_DROPPING)
		return 0;
	struct cowfs_bptr p;
	cfs_bptr_get(ri + CFS_RI_PTR, &p);
	struct cowfs_subvol_info si = {
		.id = id,
		.parent = cfs_get64(ri + CFS_RI_PARENT),
		.readonly = cfs_get64(ri + CFS_RI_FLAGS) & CFS_ROOT_RDONLY,
		.root_gen = p.gen,
	};
	int err;
	if (si.parent && (err = ref_of(c->fs, si.parent, si.id, si.name, false)) && err != -PLAT_ENOENT)
		return err;
	return c->cb(c->arg, &si);
}

int cowfs_subvol_list(struct cowfs *fs, cowfs_subvol_fn cb, void *arg)
{
	struct list_ctx c = { fs, cb, arg };
	int err = cowfs_root_items(fs, CFS_TREE_FS, list_cb, &c);
	return err < 0 ? err : 0;
}
