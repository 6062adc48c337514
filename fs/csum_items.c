/*
 * DATA_CSUM items as runs (docs/format.md §6): an item keyed by its first
 * data block holds the crc32c of that block and of the blocks after it.
 * One item (one B+tree operation) per contiguous run instead of one per
 * 4 KiB block: a 1 MiB direct write recorded 256 items and freed 256,
 * each a root-to-leaf descent under the mount lock.
 *
 * Items never overlap: putting a run first trims or splits every item that
 * covers one of its blocks, and so does deleting a range.  Items written
 * by older versions (one block each) are runs of one.
 */
#include "fs/cowfs_int.h"

/* Bytes of an item this file reads without allocating (CFS_CSUM_RUN_MAX
 * sums); a longer item, from another writer, is read into the heap. */
#define LOCAL_BYTES (CFS_CSUM_RUN_MAX * 4)

struct csum_item {
	struct cowfs_key k;
	uint64_t first, end;       /* blocks [first, end) */
	uint8_t *data;             /* local or heap */
	uint32_t len;
	uint8_t local[LOCAL_BYTES];
};

static void item_release(struct csum_item *it)
{
	if (it->data != it->local)
		plat_free(it->data);
	it->data = it->local;
}

/* The item with the largest first block below `end`, when it covers a
 * block at or past `blk`; -ENOENT when there is none.  One descent: the
 * key and the data of the item come together (cowfs_bt_prev_item); only
 * an item longer than the local buffer is read again. */
static int item_find(struct cowfs_tree *t, uint64_t blk, uint64_t end, struct csum_item *it)
{
	it->data = it->local;
	it->k = (struct cowfs_key){ end - 1, CFS_ITEM_DATA_CSUM, UINT64_MAX };
	int err = cowfs_bt_prev_item(t, &it->k, it->local, sizeof(it->local), &it->len);
	if (err)
		return err;
	if (it->k.type != CFS_ITEM_DATA_CSUM)
		return -PLAT_ENOENT;
	if (it->len > sizeof(it->local)) {
		uint32_t len = it->len;
		if (!(it->data = plat_alloc(len))) {
			it->data = it->local;
			return -PLAT_ENOMEM;
		}
		err = cowfs_bt_lookup(t, &it->k, it->data, len, &it->len);
		if (err) {
			item_release(it);
			return err;
		}
	}
	if (!it->len || it->len % 4) {
		item_release(it);
		return -PLAT_EIO;   /* fsck and scrub name it */
	}
	it->first = it->k.objectid;
	it->end = it->first + it->len / 4;
	if (it->end <= blk) {
		item_release(it);
		return -PLAT_ENOENT;
	}
	return 0;
}

/* Removes [blk, end) from the items that overlap it, the found item `it`
 * (the highest) first. */
static int del_from(struct cowfs_tree *t, uint64_t blk, uint64_t end, struct csum_item *it)
{
	int err = 0;
	/* From the highest overlapping item down: what remains of each lies
	 * outside [blk, end), so the next search finds the next one.  Items
	 * never overlap, so one that starts at or before blk is the last. */
	for (bool more = true; more;) {
		more = it->first > blk;
		if (it->first < blk) {
			/* Keep the head under the same key. */
			if (it->end > end)
				err = cowfs_bt_insert(t, &(struct cowfs_key){ end, CFS_ITEM_DATA_CSUM, 0 },
						      it->data + (end - it->first) * 4, (uint32_t)(it->end - end) * 4);
			if (!err)
				err = cowfs_bt_update(t, &it->k, it->data, (uint32_t)(blk - it->first) * 4);
		} else {
			err = cowfs_bt_delete(t, &it->k);
			if (!err && it->end > end)
				err = cowfs_bt_insert(t, &(struct cowfs_key){ end, CFS_ITEM_DATA_CSUM, 0 },
						      it->data + (end - it->first) * 4, (uint32_t)(it->end - end) * 4);
		}
		item_release(it);
		if (err || !more)
			break;
		err = item_find(t, blk, end, it);
		if (err)
			break;
	}
	return err == -PLAT_ENOENT ? 0 : err;
}

int cowfs_csum_del(struct cowfs_tree *t, uint64_t blk, uint64_t n)
{
	if (!n)
		return 0;
	struct csum_item *it = plat_alloc(sizeof(*it));
	if (!it)
		return -PLAT_ENOMEM;
	int err = item_find(t, blk, blk + n, it);
	err = err == -PLAT_ENOENT ? 0 : err ? err : del_from(t, blk, blk + n, it);
	plat_free(it);
	return err;
}

int cowfs_csum_put(struct cowfs_tree *t, uint64_t blk, const uint32_t *sums, uint64_t n)
{
	if (!n)
		return 0;
	struct csum_item *it = plat_alloc(sizeof(*it));
	if (!it)
		return -PLAT_ENOMEM;
	uint64_t end = blk + n;
	int err = item_find(t, blk, end, it);
	if (!err && it->first <= blk && end <= it->end) {
		/* One item covers the run (a reused block whose old item
		 * stayed): its slice replaced in one tree operation. */
		for (uint64_t i = 0; i < n; i++)
			cfs_put32(it->data + (blk - it->first + i) * 4, sums[i]);
		err = cowfs_bt_update(t, &it->k, it->data, it->len);
		item_release(it);
		plat_free(it);
		return err;
	}
	/* Otherwise what overlaps goes first (nothing, for fresh blocks:
	 * the one search above was all). */
	err = err == -PLAT_ENOENT ? 0 : err ? err : del_from(t, blk, end, it);
	plat_free(it);
	uint8_t v[LOCAL_BYTES];
	/* The largest item a node takes (a quarter of a 4 KiB node's room:
	 * ~240 blocks) bounds a run's item too. */
	uint32_t max = cowfs_max_item_size(t->fs) / 4;
	if (max > CFS_CSUM_RUN_MAX)
		max = CFS_CSUM_RUN_MAX;
	for (uint64_t done = 0; !err && done < n;) {
		uint32_t c = n - done < max ? (uint32_t)(n - done) : max;
		for (uint32_t i = 0; i < c; i++)
			cfs_put32(v + 4 * i, sums[done + i]);
		err = cowfs_bt_insert(t, &(struct cowfs_key){ blk + done, CFS_ITEM_DATA_CSUM, 0 }, v, c * 4);
		done += c;
	}
	return err;
}

int cowfs_csum_get(struct cowfs_tree *t, uint64_t blk, uint64_t n, uint32_t *sums, uint64_t *found)
{
	uint64_t cur = blk, end = blk + n;
	struct csum_item *it = plat_alloc(sizeof(*it));
	if (!it)
		return -PLAT_ENOMEM;
	int err = 0;
	while (cur < end) {
		/* The item covering cur starts at or before it. */
		err = item_find(t, cur, cur + 1, it);
		if (err)
			break;
		uint64_t stop = it->end < end ? it->end : end;
		for (uint64_t b = cur; b < stop; b++)
			sums[b - blk] = cfs_get32(it->data + (b - it->first) * 4);
		cur = stop;
		item_release(it);
	}
	plat_free(it);
	*found = cur - blk;
	return err == -PLAT_ENOENT ? 0 : err;
}
