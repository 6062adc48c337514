/*
 * Extended attribute items (docs/format.md §6, "Extended attributes"):
 * entry parsing shared by the mounted filesystem (fs/xattr.c) and fsck,
 * deleting an inode's attributes, and the structure check.
 */
#include "fs/xattr.h"
#include "fs/inode.h"
#include "fs/cowfs_int.h"

int cowfs_xattr_entry_parse(const uint8_t *item, uint32_t len, uint32_t off, struct cowfs_xattr_entry *e)
{
	if (off >= len || len - off < CFS_XATTR_HEAD)
		return -PLAT_EIO;
	const uint8_t *p = item + off;
	e->off = off;
	e->name_len = cfs_get16(p);
	e->tag = p[2];
	e->value_len = cfs_get32(p + 3);
	e->name = p + CFS_XATTR_HEAD;
	e->value = e->tag ? NULL : e->name + e->name_len;
	if (e->name_len == 0 || e->name_len > CFS_XATTR_NAME_MAX || e->value_len > CFS_XATTR_VALUE_MAX)
		return -PLAT_EIO;
	uint64_t size = CFS_XATTR_HEAD + (uint64_t)e->name_len + (e->tag ? 0 : e->value_len);
	if (size > len - off)
		return -PLAT_EIO;
	e->size = (uint32_t)size;
	return 0;
}

int cowfs_xattr_bad(struct cowfs_tree *t, const struct cowfs_key *k, const char *what)
{
	plat_log(PLAT_LOG_ERR, "cowfs: tree %llu: inode %llu: extended attribute item %llu: %s",
		 (unsigned long long)t->id, (unsigned long long)k->objectid, (unsigned long long)k->offset,
		 what);
	return -PLAT_EIO;
}

int cowfs_xattr_item_read(struct cowfs_tree *t, uint64_t ino, const char *name, size_t len,
			  struct cowfs_xattr_item *it)
{
	it->k = (struct cowfs_key){ ino, CFS_ITEM_XATTR, cowfs_name_hash(name, len) };
	int err = cowfs_bt_lookup(t, &it->k, it->buf, sizeof(it->buf), &it->len);
	it->exists = !err;
	if (err == -PLAT_ENOENT) {
		it->len = 0;
		return 0;
	}
	if (!err && it->len > sizeof(it->buf))
		return cowfs_xattr_bad(t, &it->k, "larger than any item");
	return err;
}

int cowfs_xattr_item_find(struct cowfs_tree *t, const struct cowfs_xattr_item *it, const char *name, size_t len,
			  struct cowfs_xattr_entry *e)
{
	for (uint32_t off = 0; off < it->len; off += e->size) {
		if (cowfs_xattr_entry_parse(it->buf, it->len, off, e))
			return cowfs_xattr_bad(t, &it->k, "malformed entry");
		if (e->name_len == len && !plat_memcmp(e->name, name, len))
			return 1;
	}
	return 0;
}

/* The value of entry e (in item k) into buf (e->value_len bytes). */
static int value_read(struct cowfs_tree *t, const struct cowfs_key *k, const struct cowfs_xattr_entry *e, uint8_t *buf)
{
	if (!e->tag) {
		plat_memcpy(buf, e->value, e->value_len);
		return 0;
	}
	uint32_t sum = 0, l;
	for (uint32_t i = 0; sum < e->value_len; i++) {
		struct cowfs_key ck = cowfs_xattr_chunk_key(k->objectid, k->offset, e->tag, i);
		int err = cowfs_bt_lookup(t, &ck, buf + sum, e->value_len - sum, &l);
		if (err == -PLAT_ENOENT)
			return cowfs_xattr_bad(t, k, "a chunk of an out-of-line value is missing");
		if (err)
			return err;
		if (l == 0 || l > e->value_len - sum)
			return cowfs_xattr_bad(t, k, "value chunks do not add up to the value's length");
		sum += l;
	}
	return 0;
}

int cowfs_xattr_get(struct cowfs_tree *t, uint64_t ino, const char *name, size_t len, void *buf, size_t cap,
		    size_t *vlen)
{
	struct cowfs_xattr_entry e;
	struct cowfs_xattr_item *it = plat_alloc(sizeof(*it));
	if (!it)
		return -PLAT_ENOMEM;
	int err = cowfs_xattr_item_read(t, ino, name, len, it);
	if (!err && !(err = cowfs_xattr_item_find(t, it, name, len, &e)))
		err = -PLAT_ENODATA;
	if (err < 0)
		goto out;
	err = 0;
	if (vlen)
		*vlen = e.value_len;
	if (cap && cap < e.value_len)
		err = -PLAT_ERANGE;
	else if (cap)
		err = value_read(t, &it->k, &e, buf);
out:
	plat_free(it);
	return err;
}

/* Deletes every item (ino, type, *). */
struct list_ctx {
	struct cowfs_tree *t;
	char *buf;
	size_t cap, total;
	int err;
};

static int list_item(void *arg, const struct cowfs_key *k, const void *data, uint32_t len)
{
	struct list_ctx *c = arg;
	struct cowfs_xattr_entry e;
	for (uint32_t off = 0; off < len; off += e.size) {
		if (cowfs_xattr_entry_parse(data, len, off, &e)) {
			c->err = cowfs_xattr_bad(c->t, k, "malformed entry");
			return 1;
		}
		if (c->cap && c->total + e.name_len + 1 <= c->cap) {
			plat_memcpy(c->buf + c->total, e.name, e.name_len);
			c->buf[c->total + e.name_len] = 0;
		}
		c->total += e.name_len + 1u;
	}
	return 0;
}

int cowfs_xattr_list(struct cowfs_tree *t, uint64_t ino, char *buf, size_t cap, size_t *total)
{
	struct list_ctx c = { t, buf, cap, 0, 0 };
	struct cowfs_key from = { ino, CFS_ITEM_XATTR, 0 }, to = { ino, CFS_ITEM_XATTR, UINT64_MAX };
	int r = cowfs_bt_iterate(t, &from, &to, list_item, &c);
	int err = c.err ? c.err : r < 0 ? r : 0;
	if (!err && cap && c.total > cap)
		err = -PLAT_ERANGE;
	if (!err && total)
		*total = c.total;
	return err;
}

static int delete_type(struct cowfs_tree *t, uint64_t ino, uint8_t type)
{
	for (;;) {
		struct cowfs_key k = { ino, type, 0 };
		int err = cowfs_bt_next(t, &k, NULL, 0, NULL);
		if (err == -PLAT_ENOENT || (!err && (k.objectid != ino || k.type != type)))
			return 0;
		if (err || (err = cowfs_bt_delete(t, &k)))
			return err;
	}
}

int cowfs_xattr_delete_all(struct cowfs_tree *t, uint64_t ino)
{
	int err = delete_type(t, ino, CFS_ITEM_XATTR);
	return err ? err : delete_type(t, ino, CFS_ITEM_XATTR_VALUE);
}

/* ---- check (one step of the directory check's walk, fs/check_dir.c) ---- */

static int xfail(struct cowfs_tree *t, const struct cowfs_key *k, char *msg, size_t msglen, const char *what)
{
	plat_snprintf(msg, msglen, "tree %llu, inode %llu, extended attribute item %llu: %s",
		      (unsigned long long)t->id, (unsigned long long)k->objectid, (unsigned long long)k->offset, what);
	return -PLAT_EIO;
}

/* An out-of-line value (never empty: an empty value always fits inline):
 * chunks 0..n-1, each non-empty, adding up to exactly value_len. */
static const char *check_chunks(struct cowfs_tree *t, struct cowfs_xattr_check *x, const struct cowfs_key *k,
				const struct cowfs_xattr_entry *e, int *err)
{
	uint32_t sum = 0, i = 0, l;
	if (e->value_len == 0)
		return "an empty value stored out of line";
	for (; sum < e->value_len; i++) {
		struct cowfs_key ck = cowfs_xattr_chunk_key(k->objectid, k->offset, e->tag, i);
		*err = cowfs_bt_lookup(t, &ck, x->buf, sizeof(x->buf), &l);
		if (*err == -PLAT_ENOENT)
			return "a chunk of an out-of-line value is missing";
		if (*err)
			return NULL;
		if (l == 0 || l > e->value_len - sum)
			return "value chunks do not add up to the value's length";
		sum += l;
	}
	x->chunks_expected += i;
	return NULL;
}

static const char *check_entries(struct cowfs_tree *t, struct cowfs_xattr_check *x, const struct cowfs_key *k,
				 const uint8_t *data, uint32_t len, int *err)
{
	uint8_t tags[(CFS_XATTR_TAGS + 1) / 8] = { 0 };
	struct cowfs_xattr_entry e;
	if (k->offset >> 32)
		return "key offset is not a name hash";
	if (len == 0)
		return "empty item";
	for (uint32_t off = 0; off < len; off += e.size) {
		if (cowfs_xattr_entry_parse(data, len, off, &e))
			return "malformed entry";
		if (cowfs_name_hash((const char *)e.name, e.name_len) != k->offset)
			return "an entry's name has another hash";
		if (!e.tag)
			continue;
		if (tags[e.tag / 8] & (1u << (e.tag % 8)))
			return "two entries share a value tag";
		tags[e.tag / 8] |= (uint8_t)(1u << (e.tag % 8));
		const char *why = check_chunks(t, x, k, &e, err);
		if (why || *err)
			return why;
	}
	return NULL;
}

int cowfs_xattr_check_item(struct cowfs_tree *t, struct cowfs_xattr_check *x, const struct cowfs_key *k,
			   const void *data, uint32_t len, char *msg, size_t msglen)
{
	int err = 0;
	if (k->type == CFS_ITEM_XATTR_VALUE) {
		x->chunks_seen++;
		return 0;
	}
	if (k->type != CFS_ITEM_XATTR)
		return 0;
	const char *why = check_entries(t, x, k, data, len, &err);
	return why ? xfail(t, k, msg, msglen, why) : err;
}

int cowfs_xattr_check_done(struct cowfs_tree *t, const struct cowfs_xattr_check *x, char *msg, size_t msglen)
{
	if (x->chunks_seen == x->chunks_expected)
		return 0;
	plat_snprintf(msg, msglen, "tree %llu: %llu extended attribute value chunks, %llu belong to an attribute",
		      (unsigned long long)t->id, (unsigned long long)x->chunks_seen,
		      (unsigned long long)x->chunks_expected);
	return -PLAT_EIO;
}
