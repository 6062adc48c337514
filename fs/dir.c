/*
 * Directories (docs/format.md §6).  A name lives in three items:
 *   DIR_ENTRY (dir, hash(name))  {ino, type, dir_seq, name_len, name}...  lookup
 *   DIR_INDEX (dir, dir_seq)     {ino, type, name_len, name}              readdir
 *   INODE_REF (ino, dir)         {dir_seq, name_len, name}...             back-reference
 * Names whose hashes collide share one DIR_ENTRY item; all names of one
 * inode in one directory share one INODE_REF item.  Every size is checked
 * before the first change, so a refused add changes nothing.
 */
#include "fs/inode.h"
#include "fs/cowfs_int.h"

#define S_IFMT_  0170000u
#define S_IFDIR_ 0040000u

/* Packed lists: DIR_ENTRY records have a 19-byte head (name_len at 17),
 * INODE_REF records a 10-byte head (name_len at 8). */
#define DE_HEAD 19u
#define IR_HEAD 10u
#define DI_HEAD 11u

struct list_item {
	struct cowfs_key k;
	uint8_t buf[4096];            /* > the largest item (16 KiB nodes: 4011) */
	uint32_t len;
	bool exists;
};

static int list_read(struct cowfs_tree *t, struct list_item *li)
{
	int err = cowfs_bt_lookup(t, &li->k, li->buf, sizeof(li->buf), &li->len);
	li->exists = !err;
	if (err == -PLAT_ENOENT) {
		li->len = 0;
		err = 0;
	}
	return err;
}

static int list_write(struct cowfs_tree *t, struct list_item *li)
{
	if (!li->len)
		return li->exists ? cowfs_bt_delete(t, &li->k) : 0;
	if (li->exists)
		return cowfs_bt_update(t, &li->k, li->buf, li->len);
	return cowfs_bt_insert(t, &li->k, li->buf, li->len);
}

/* Offset of the record whose name (head h) equals name, or of the one
 * whose u64 at 0 equals seq when name is NULL; -1 if none. -EIO-worthy
 * malformed lists end the scan with *bad set. */
static int64_t list_find(const struct list_item *li, uint32_t h, const char *name, size_t len, uint64_t seq,
			 bool *bad)
{
	uint32_t off = 0;
	*bad = false;
	while (off < li->len) {
		if (li->len - off < h) {
			*bad = true;
			return -1;
		}
		uint32_t nl = cfs_get16(li->buf + off + h - 2);
		if (li->len - off - h < nl) {
			*bad = true;
			return -1;
		}
		if (name ? nl == len && !plat_memcmp(li->buf + off + h, name, len) : cfs_get64(li->buf + off) == seq)
			return off;
		off += h + nl;
	}
	return -1;
}

static void list_cut(struct list_item *li, uint32_t off, uint32_t h)
{
	uint32_t n = h + cfs_get16(li->buf + off + h - 2);
	plat_memmove(li->buf + off, li->buf + off + n, li->len - off - n);
	li->len -= n;
}

static int bad_list(struct cowfs_tree *t, const struct list_item *li)
{
	plat_log(PLAT_LOG_ERR, "cowfs: tree %llu: item (%llu, %u, %llu) is malformed",
		 (unsigned long long)t->id, (unsigned long long)li->k.objectid, li->k.type,
		 (unsigned long long)li->k.offset);
	return -PLAT_EIO;
}

uint64_t cowfs_name_hash(const char *name, size_t len)
{
	return crc32c(0, name, len) & (UINT64_MAX >> 1);
}

int cowfs_name_valid(const char *name, size_t len)
{
	if (len == 0)
		return -PLAT_EINVAL;
	if (len > CFS_NAME_MAX)
		return -PLAT_ENAMETOOLONG;
	for (size_t i = 0; i < len; i++)
		if (name[i] == '/' || name[i] == 0)
			return -PLAT_EINVAL;
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return -PLAT_EINVAL;
	return 0;
}

static void entry_key(uint64_t dir, const char *name, size_t len, struct cowfs_key *k)
{
	k->objectid = dir;
	k->type = CFS_ITEM_DIR_ENTRY;
	k->offset = cowfs_name_hash(name, len);
}

int cowfs_dir_lookup(struct cowfs_tree *t, uint64_t dir, const char *name, size_t len, uint64_t *ino,
		     uint8_t *type)
{
	bool bad;
	int err = cowfs_name_valid(name, len);
	if (err)
		return err;
	struct list_item *li = plat_alloc(sizeof(*li));
	if (!li)
		return -PLAT_ENOMEM;
	entry_key(dir, name, len, &li->k);
	if ((err = list_read(t, li)))
		goto out;
	int64_t off = list_find(li, DE_HEAD, name, len, 0, &bad);
	if (bad)
		err = bad_list(t, li);
	else if (off < 0)
		err = -PLAT_ENOENT;
	if (!err && ino)
		*ino = cfs_get64(li->buf + off);
	if (!err && type)
		*type = li->buf[off + 8];
out:
	plat_free(li);
	return err;
}

static int dir_add(struct cowfs_tree *t, uint64_t dir, const char *name, size_t len, uint64_t ino, uint8_t type,
		   struct list_item *dir_li, struct list_item *ref_li);
static int dir_remove(struct cowfs_tree *t, uint64_t dir, const char *name, size_t len,
		      struct list_item *dir_li, struct list_item *ref_li);

int cowfs_dir_add(struct cowfs_tree *t, uint64_t dir, const char *name, size_t len, uint64_t ino, uint8_t type)
{
	struct list_item *li = plat_alloc(2 * sizeof(*li));
	if (!li)
		return -PLAT_ENOMEM;
	int err = dir_add(t, dir, name, len, ino, type, &li[0], &li[1]);
	plat_free(li);
	return err;
}

int cowfs_dir_remove(struct cowfs_tree *t, uint64_t dir, const char *name, size_t len)
{
	struct list_item *li = plat_alloc(2 * sizeof(*li));
	if (!li)
		return -PLAT_ENOMEM;
	int err = dir_remove(t, dir, name, len, &li[0], &li[1]);
	plat_free(li);
	return err;
}

static int dir_add(struct cowfs_tree *t, uint64_t dir, const char *name, size_t len, uint64_t ino, uint8_t type,
		   struct list_item *dir_li, struct list_item *ref_li)
{
	struct cowfs_inode d;
	bool bad;
	uint32_t max = cowfs_max_item_size(t->fs);
	int err = cowfs_name_valid(name, len);
	if (err)
		return err;
	if ((err = cowfs_inode_read(t, dir, &d)))
		return err;
	if ((d.mode & S_IFMT_) != S_IFDIR_)
		return -PLAT_ENOTDIR;
	entry_key(dir, name, len, &dir_li->k);
	ref_li->k = (struct cowfs_key){ ino, CFS_ITEM_INODE_REF, dir };
	if ((err = list_read(t, dir_li)) || (err = list_read(t, ref_li)))
		return err;
	if (list_find(dir_li, DE_HEAD, name, len, 0, &bad) >= 0)
		return -PLAT_EEXIST;
	if (bad)
		return bad_list(t, dir_li);
	if (dir_li->len + DE_HEAD + len > max || ref_li->len + IR_HEAD + len > max)
		return -PLAT_EMLINK;

	uint64_t seq = d.next_dir_seq++;
	uint8_t *p = dir_li->buf + dir_li->len;
	cfs_put64(p, ino);
	p[8] = type;
	cfs_put64(p + 9, seq);
	cfs_put16(p + 17, (uint16_t)len);
	plat_memcpy(p + DE_HEAD, name, len);
	dir_li->len += DE_HEAD + (uint32_t)len;

	p = ref_li->buf + ref_li->len;
	cfs_put64(p, seq);
	cfs_put16(p + 8, (uint16_t)len);
	plat_memcpy(p + IR_HEAD, name, len);
	ref_li->len += IR_HEAD + (uint32_t)len;

	uint8_t idx[DI_HEAD + CFS_NAME_MAX];
	cfs_put64(idx, ino);
	idx[8] = type;
	cfs_put16(idx + 9, (uint16_t)len);
	plat_memcpy(idx + DI_HEAD, name, len);
	struct cowfs_key ik = { dir, CFS_ITEM_DIR_INDEX, seq };

	if ((err = cowfs_inode_write(t, &d)) || (err = list_write(t, dir_li)) || (err = list_write(t, ref_li)))
		return err;
	return cowfs_bt_insert(t, &ik, idx, DI_HEAD + (uint32_t)len);
}

static int dir_remove(struct cowfs_tree *t, uint64_t dir, const char *name, size_t len,
		      struct list_item *dir_li, struct list_item *ref_li)
{
	bool bad;
	int err = cowfs_name_valid(name, len);
	if (err)
		return err;
	entry_key(dir, name, len, &dir_li->k);
	if ((err = list_read(t, dir_li)))
		return err;
	int64_t off = list_find(dir_li, DE_HEAD, name, len, 0, &bad);
	if (bad)
		return bad_list(t, dir_li);
	if (off < 0)
		return -PLAT_ENOENT;
	uint64_t ino = cfs_get64(dir_li->buf + off), seq = cfs_get64(dir_li->buf + off + 9);
	ref_li->k = (struct cowfs_key){ ino, CFS_ITEM_INODE_REF, dir };
	if ((err = list_read(t, ref_li)))
		return err;
	int64_t roff = list_find(ref_li, IR_HEAD, NULL, 0, seq, &bad);
	if (roff < 0) {
		plat_log(PLAT_LOG_ERR, "cowfs: tree %llu: %llu/%.*s names inode %llu, which has no back-reference",
			 (unsigned long long)t->id, (unsigned long long)dir, (int)len, name,
			 (unsigned long long)ino);
		return -PLAT_EIO;
	}
	list_cut(dir_li, (uint32_t)off, DE_HEAD);
	list_cut(ref_li, (uint32_t)roff, IR_HEAD);
	struct cowfs_key ik = { dir, CFS_ITEM_DIR_INDEX, seq };
	if ((err = list_write(t, dir_li)) || (err = list_write(t, ref_li)))
		return err;
	return cowfs_bt_delete(t, &ik);
}

struct rd_ctx {
	struct cowfs_tree *t;
	cowfs_readdir_fn cb;
	void *arg;
	int err;
};

static int rd_one(void *arg, const struct cowfs_key *k, const void *data, uint32_t len)
{
	struct rd_ctx *c = arg;
	const uint8_t *d = data;
	if (len < DI_HEAD || len != DI_HEAD + cfs_get16(d + 9)) {
		c->err = -PLAT_EIO;
		plat_log(PLAT_LOG_ERR, "cowfs: tree %llu: directory %llu: index item %llu is malformed",
			 (unsigned long long)c->t->id, (unsigned long long)k->objectid,
			 (unsigned long long)k->offset);
		return 1;
	}
	return c->cb(c->arg, (const char *)d + DI_HEAD, cfs_get16(d + 9), cfs_get64(d), d[8], k->offset + 1);
}

int cowfs_dir_readdir(struct cowfs_tree *t, uint64_t dir, uint64_t cookie, cowfs_readdir_fn cb, void *arg)
{
	struct rd_ctx c = { t, cb, arg, 0 };
	struct cowfs_key from = { dir, CFS_ITEM_DIR_INDEX, cookie }, to = { dir, CFS_ITEM_DIR_INDEX, UINT64_MAX };
	int r = cowfs_bt_iterate(t, &from, &to, rd_one, &c);
	return c.err ? c.err : r < 0 ? r : 0;
}

int cowfs_dir_empty(struct cowfs_tree *t, uint64_t dir)
{
	struct cowfs_key k = { dir, CFS_ITEM_DIR_INDEX, 0 };
	int err = cowfs_bt_next(t, &k, NULL, 0, NULL);
	if (err == -PLAT_ENOENT)
		return 1;
	if (err)
		return err;
	return k.objectid == dir && k.type == CFS_ITEM_DIR_INDEX ? 0 : 1;
}
