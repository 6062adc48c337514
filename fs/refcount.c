/*
 * References to shared blocks (docs/format.md §10).
 *
 * After a snapshot two subvolume trees point at the same nodes, and after
 * a reflink (or a snapshot's leaf copies) two files at the same data
 * extents.  Like XFS's refcount btree, only blocks with more than one
 * reference have an item: REFCOUNT (first block, 0) -> {nblocks u64, refs
 * u32}.  No item means exactly one reference, so a filesystem that never
 * shared anything has an empty (or no) refcount tree and pays nothing: the
 * lookups below are skipped while refs_present is false.
 *
 * The refcount tree itself is never shared, so changing it never needs
 * these functions (no recursion).
 */
#include "fs/cowfs_int.h"

#define REF_ITEM_SIZE 12u

int cowfs_refs_load(struct cowfs *fs)
{
	int err = cowfs_tree_get(fs, CFS_TREE_REFCOUNT, false, &fs->ref_tree);
	if (err == -PLAT_ENOENT) {
		fs->ref_tree = NULL;
		return 0;
	}
	if (err)
		return err;
	struct cowfs_key k = { 0, 0, 0 };
	err = cowfs_bt_next(fs->ref_tree, &k, NULL, 0, NULL);
	fs->refs_present = err == 0;
	return err == -PLAT_ENOENT ? 0 : err;
}

int cowfs_ref_get(struct cowfs *fs, uint64_t blk, uint32_t *refs)
{
	*refs = 1;
	if (!fs->refs_present)
		return 0;
	uint8_t v[REF_ITEM_SIZE];
	uint32_t len;
	struct cowfs_key k = { blk, CFS_ITEM_REFCOUNT, 0 };
	int err = cowfs_bt_lookup(fs->ref_tree, &k, v, sizeof(v), &len);
	if (err == -PLAT_ENOENT)
		return 0;
	if (err)
		return err;
	if (len != REF_ITEM_SIZE || cfs_get32(v + 8) < 2) {
		cowfs_fail(fs, -PLAT_EIO, "refcount item for block %llu is damaged", (unsigned long long)blk);
		return -PLAT_EIO;
	}
	*refs = cfs_get32(v + 8);
	return 0;
}

int cowfs_ref_inc(struct cowfs *fs, uint64_t blk, uint32_t nblocks)
{
	uint32_t refs;
	if (!fs->ref_tree) {
		int err = cowfs_tree_get(fs, CFS_TREE_REFCOUNT, true, &fs->ref_tree);
		if (err)
			return err;
	}
	fs->refs_present = true;
	int err = cowfs_ref_get(fs, blk, &refs);
	if (err)
		return err;
	if (refs == UINT32_MAX)
		return -PLAT_EMLINK;
	uint8_t v[REF_ITEM_SIZE];
	struct cowfs_key k = { blk, CFS_ITEM_REFCOUNT, 0 };
	cfs_put64(v, nblocks);
	cfs_put32(v + 8, refs + 1);
	return refs == 1 ? cowfs_bt_insert(fs->ref_tree, &k, v, sizeof(v))
			 : cowfs_bt_update(fs->ref_tree, &k, v, sizeof(v));
}

int cowfs_ref_dec(struct cowfs *fs, uint64_t blk, bool *last)
{
	uint32_t refs;
	int err = cowfs_ref_get(fs, blk, &refs);
	*last = false;
	if (err)
		return err;
	if (refs == 1) {
		*last = true;
		return 0;
	}
	struct cowfs_key k = { blk, CFS_ITEM_REFCOUNT, 0 };
	if (refs == 2)
		return cowfs_bt_delete(fs->ref_tree, &k);
	uint8_t v[REF_ITEM_SIZE];
	uint32_t len;
	err = cowfs_bt_lookup(fs->ref_tree, &k, v, sizeof(v), &len);
	if (err)
		return err;
	cfs_put32(v + 8, refs - 1);
	return cowfs_bt_update(fs->ref_tree, &k, v, sizeof(v));
}
