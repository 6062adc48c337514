/*
 * Extended attributes of a mounted cowfs (fs/vfs.h; docs/format.md §6,
 * "Extended attributes").  An attribute is an entry of the XATTR item
 * keyed by its name's hash (colliding names share the item, as directory
 * entries do); its value follows the name in the item when the item still
 * fits the largest item size, and otherwise goes to XATTR_VALUE chunk
 * items under a tag unique within the item.
 *
 * Like the namespace operations, each call holds the filesystem lock
 * from its first check to its last change, so a change is one step of one
 * transaction; every refusal (flags, sizes, space) is decided before the
 * first tree change, and a failure after it goes through
 * cowfs_half_done() (read-only, nothing half-done committed).
 */
#include "fs/namei_int.h"
#include "fs/file.h"
#include "fs/xattr.h"

static int name_ok(const char *name, size_t len)
{
	if (len == 0 || len > CFS_XATTR_NAME_MAX)
		return -PLAT_ERANGE;   /* what Linux says for an empty or too long name */
	for (size_t i = 0; i < len; i++)
		if (!name[i])
			return -PLAT_EINVAL;
	return 0;
}

/* Deletes the chunks of an out-of-line value (0, 1, ... while present). */
static int chunks_delete(struct cowfs_mount *m, const struct cowfs_key *k, uint8_t tag)
{
	for (uint32_t i = 0;; i++) {
		struct cowfs_key ck = cowfs_xattr_chunk_key(k->objectid, k->offset, tag, i);
		int err = cowfs_bt_delete(m->tree, &ck);
		if (err)
			return err == -PLAT_ENOENT && i > 0 ? 0 : err;
	}
}

static void item_cut(struct cowfs_xattr_item *it, const struct cowfs_xattr_entry *e)
{
	plat_memmove(it->buf + e->off, it->buf + e->off + e->size, it->len - e->off - e->size);
	it->len -= e->size;
}

static int item_write(struct cowfs_mount *m, struct cowfs_xattr_item *it)
{
	if (!it->len)
		return it->exists ? cowfs_bt_delete(m->tree, &it->k) : 0;
	if (it->exists)
		return cowfs_bt_update(m->tree, &it->k, it->buf, it->len);
	return cowfs_bt_insert(m->tree, &it->k, it->buf, it->len);
}

/* Whether the tree changes for `bytes` of new item data fit in the free
 * space, leaving the metadata room that unlink and truncate need (the
 * same 64 blocks buffered writes leave).  Leaves are at least a quarter
 * full, and a transaction copies each node it changes once.  Freed
 * blocks are reusable once the commit after their free is durable: when
 * they are what is missing, commit (at most twice; nothing of this
 * operation is changed yet). */
static bool room_for(struct cowfs_mount *m, uint64_t bytes)
{
	for (int round = 0;; round++) {
		struct cowfs_info in;
		cowfs_info(m->fs, &in);
		uint64_t leaf_bytes = in.node_size / 4, nodes = 2 * (bytes / leaf_bytes + 1) + CFS_MAX_LEVELS;
		uint64_t need = 64 + nodes * (in.node_size / CFS_BLOCK_SIZE);
		uint64_t busy = in.used_blocks + in.pinned_blocks + cowfs_file_reserved(m);
		if (busy + need <= in.total_blocks)
			return true;
		if (!in.pinned_blocks || round == 2)
			return false;
		m->fs->dirty_changes++;
		if (cowfs_vfs_commit_locked(m))
			return false;
	}
}

/* ---- get, list ---- */

int cowfs_getxattr(struct cowfs_mount *m, uint64_t ino, const char *name, size_t len, void *buf, size_t cap,
		   size_t *vlen)
{
	struct cowfs_vnode *vn;
	int err = name_ok(name, len);
	if (err)
		return err;
	cowfs_vfs_lock(m);
	if (!(err = cowfs_vget(m, ino, &vn))) {
		err = cowfs_xattr_get(m->tree, ino, name, len, buf, cap, vlen);
		cowfs_vput(vn);
	}
	cowfs_vfs_unlock(m);
	return err;
}

int cowfs_listxattr(struct cowfs_mount *m, uint64_t ino, char *buf, size_t cap, size_t *total)
{
	struct cowfs_vnode *vn;
	cowfs_vfs_lock(m);
	int err = cowfs_vget(m, ino, &vn);
	if (!err) {
		err = cowfs_xattr_list(m->tree, ino, buf, cap, total);
		cowfs_vput(vn);
	}
	cowfs_vfs_unlock(m);
	return err;
}

/* ---- set, remove ---- */

/* The smallest tag no entry left in the item uses; 0 when all are taken. */
static uint8_t free_tag(const struct cowfs_xattr_item *it)
{
	uint8_t used[(CFS_XATTR_TAGS + 1) / 8] = { 0 };
	struct cowfs_xattr_entry e;
	for (uint32_t off = 0; off < it->len; off += e.size) {
		if (cowfs_xattr_entry_parse(it->buf, it->len, off, &e))
			return 0;   /* (item_find parsed the item already) */
		used[e.tag / 8] |= (uint8_t)(1u << (e.tag % 8));
	}
	for (unsigned t = 1; t <= CFS_XATTR_TAGS; t++)
		if (!(used[t / 8] & (1u << (t % 8))))
			return (uint8_t)t;
	return 0;
}

/* The change itself (lock held, every refusal decided): the old value's
 * chunks go, the new value's chunks and the item are written. */
static int set_apply(struct cowfs_mount *m, struct cowfs_xattr_item *it, uint8_t old_tag, uint8_t tag, const uint8_t *value,
		     uint32_t vlen)
{
	uint32_t c = cowfs_max_item_size(m->fs);
	int err = old_tag ? chunks_delete(m, &it->k, old_tag) : 0;
	for (uint32_t i = 0; !err && tag && i < cowfs_xattr_chunks(vlen, c); i++) {
		struct cowfs_key ck = cowfs_xattr_chunk_key(it->k.objectid, it->k.offset, tag, i);
		uint32_t n = vlen - i * c < c ? vlen - i * c : c;
		err = cowfs_bt_insert(m->tree, &ck, value + (size_t)i * c, n);
	}
	return err ? err : item_write(m, it);
}

/* A set (value non-NULL or vlen 0 with remove false) or a remove. */
struct xa_op {
	bool remove;
	const uint8_t *value;
	uint32_t vlen;
	unsigned flags;
};

/* The new item contents (it) and tags for op on the entry e (NULL when
 * the name is absent): every refusal is decided here, nothing changed. */
static int plan(struct cowfs_mount *m, struct cowfs_xattr_item *it, const struct cowfs_xattr_entry *e,
		const char *name, size_t len, const struct xa_op *op, uint8_t *old_tag, uint8_t *tag)
{
	*old_tag = e ? e->tag : 0;
	*tag = 0;
	if (op->remove || (op->flags & CFS_XATTR_REPLACE))
		if (!e)
			return -PLAT_ENODATA;
	if (e && (op->flags & CFS_XATTR_CREATE))
		return -PLAT_EEXIST;
	if (e)
		item_cut(it, e);
	if (op->remove)
		return 0;
	/* Inline when the item still fits with the value; else only the
	 * name stays here and the value goes to chunks under a free tag. */
	uint32_t max = cowfs_max_item_size(m->fs), base = it->len + CFS_XATTR_HEAD + (uint32_t)len;
	bool inline_value = base + op->vlen <= max;
	if (!inline_value && (base > max || !(*tag = free_tag(it))))
		return -PLAT_ENOSPC;   /* the names of this hash fill their item */
	if (!room_for(m, base + op->vlen))
		return -PLAT_ENOSPC;
	uint8_t *p = it->buf + it->len;
	cfs_put16(p, (uint16_t)len);
	p[2] = *tag;
	cfs_put32(p + 3, op->vlen);
	plat_memcpy(p + CFS_XATTR_HEAD, name, len);
	if (inline_value && op->vlen)
		plat_memcpy(p + CFS_XATTR_HEAD + len, op->value, op->vlen);
	it->len = inline_value ? base + op->vlen : base;
	return 0;
}

static int change(struct cowfs_mount *m, uint64_t ino, const char *name, size_t len, const struct xa_op *op)
{
	struct cowfs_vnode *vn;
	struct cowfs_xattr_entry e;
	uint8_t old_tag, tag;
	struct cowfs_xattr_item *it = plat_alloc(sizeof(*it));
	if (!it)
		return -PLAT_ENOMEM;
	cowfs_vfs_lock(m);
	int err = cowfs_writable(m->fs);
	if (err || (err = cowfs_vget(m, ino, &vn)))
		goto out;
	int found = 0;
	if ((err = cowfs_xattr_item_read(m->tree, ino, name, len, it)) ||
	    (err = found = cowfs_xattr_item_find(m->tree, it, name, len, &e)) < 0 ||
	    (err = plan(m, it, found ? &e : NULL, name, len, op, &old_tag, &tag)))
		goto put;
	/* The first change: a failure from here on leaves half a step. */
	if ((err = set_apply(m, it, old_tag, tag, op->value, op->vlen))) {
		cowfs_half_done(m, err, op->remove ? "removexattr" : "setxattr");
		goto put;
	}
	cowfs_touch(vn, false);
	/* Attribute items are not in the intent log: the file's next fsync
	 * commits instead (fs/file_log.c). */
	vn->nolog_gen = m->fs->gen;
put:
	cowfs_vput(vn);
out:
	cowfs_vfs_unlock(m);
	plat_free(it);
	return err;
}

int cowfs_setxattr(struct cowfs_mount *m, uint64_t ino, const char *name, size_t len, const void *value,
		   size_t vlen, unsigned flags)
{
	int err = name_ok(name, len);
	if (err)
		return err;
	if (vlen > CFS_XATTR_VALUE_MAX)
		return -PLAT_E2BIG;
	if ((flags & ~(CFS_XATTR_CREATE | CFS_XATTR_REPLACE)) || flags == (CFS_XATTR_CREATE | CFS_XATTR_REPLACE))
		return -PLAT_EINVAL;
	struct xa_op op = { false, value, (uint32_t)vlen, flags };
	return change(m, ino, name, len, &op);
}

int cowfs_removexattr(struct cowfs_mount *m, uint64_t ino, const char *name, size_t len)
{
	int err = name_ok(name, len);
	if (err)
		return err;
	struct xa_op op = { true, NULL, 0, 0 };
	return change(m, ino, name, len, &op);
}
