/*
 * Directory structure check (part of cowfs_check): every name is stored
 * three times (fs/dir.c) and the three must agree:
 *   DIR_ENTRY (dir, hash) record {ino, type, seq, name}, hash = hash(name)
 *   <-> DIR_INDEX (dir, seq) {ino, type, name}
 *   <-> INODE_REF (ino, dir) record {seq, name};
 * the directory and the named inode exist and the directory is one.
 * Entries are checked one by one; the three counts must then be equal, so
 * an index item or back-reference without an entry is found too.  The
 * same walk checks extended attribute items (fs/xattr_tree.c).
 */
#include "fs/inode.h"
#include "fs/cowfs_int.h"
#include "fs/xattr.h"

struct dchk {
	struct cowfs_tree *t;
	char *msg;
	size_t msglen;
	uint64_t entries, index, refs;
	uint8_t buf[4096];
	struct cowfs_xattr_check xa;  /* extended attributes (fs/xattr_tree.c) */
};

static int dfail(struct dchk *c, uint64_t dir, const uint8_t *name, size_t len, const char *what)
{
	plat_snprintf(c->msg, c->msglen, "tree %llu, directory %llu, name \"%.*s\": %s",
		      (unsigned long long)c->t->id, (unsigned long long)dir, (int)(len > 60 ? 60 : len),
		      (const char *)name, what);
	return -PLAT_EIO;
}

/* Whether the list item (records with head h, name_len at h-2) at key k
 * holds a record whose u64 at 0 is seq and whose name is name. */
static bool ref_has(struct dchk *c, const struct cowfs_key *k, uint64_t seq, const uint8_t *name, size_t len)
{
	uint32_t l;
	if (cowfs_bt_lookup(c->t, k, c->buf, sizeof(c->buf), &l))
		return false;
	for (uint32_t off = 0; off + 10 <= l;) {
		uint32_t nl = cfs_get16(c->buf + off + 8);
		if (off + 10 + nl > l)
			return false;
		if (cfs_get64(c->buf + off) == seq && nl == len && !plat_memcmp(c->buf + off + 10, name, len))
			return true;
		off += 10 + nl;
	}
	return false;
}

static int check_entry(struct dchk *c, uint64_t dir, uint64_t hash, const uint8_t *r, uint32_t nl)
{
	const uint8_t *name = r + 19;
	uint64_t ino = cfs_get64(r), seq = cfs_get64(r + 9);
	struct cowfs_inode in;
	uint32_t l;
	if (cowfs_name_hash((const char *)name, nl) != hash)
		return dfail(c, dir, name, nl, "stored under the wrong name hash");
	if (cowfs_inode_read(c->t, dir, &in) || (in.mode & 0170000u) != 0040000u)
		return dfail(c, dir, name, nl, "the directory inode is missing or not a directory");
	if (seq < CFS_FIRST_DIR_SEQ || seq >= in.next_dir_seq)
		return dfail(c, dir, name, nl, "sequence number outside what the directory handed out");
	if (cowfs_inode_read(c->t, ino, &in))
		return dfail(c, dir, name, nl, "names an inode that does not exist");
	struct cowfs_key k = { dir, CFS_ITEM_DIR_INDEX, seq };
	if (cowfs_bt_lookup(c->t, &k, c->buf, sizeof(c->buf), &l) || l < 11 || cfs_get64(c->buf) != ino ||
	    c->buf[8] != r[8] || cfs_get16(c->buf + 9) != nl || l != 11 + nl || plat_memcmp(c->buf + 11, name, nl))
		return dfail(c, dir, name, nl, "index item missing or different");
	k = (struct cowfs_key){ ino, CFS_ITEM_INODE_REF, dir };
	if (!ref_has(c, &k, seq, name, nl))
		return dfail(c, dir, name, nl, "back-reference from the inode missing");
	c->entries++;
	return 0;
}

static int dchk_item(void *arg, const struct cowfs_key *k, const void *data, uint32_t len)
{
	struct dchk *c = arg;
	const uint8_t *d = data;
	static const uint8_t none[1] = { 0 };
	if (k->type == CFS_ITEM_XATTR || k->type == CFS_ITEM_XATTR_VALUE)
		return cowfs_xattr_check_item(c->t, &c->xa, k, data, len, c->msg, c->msglen);
	if (k->type == CFS_ITEM_DIR_INDEX) {
		c->index++;
	} else if (k->type == CFS_ITEM_INODE_REF) {
		for (uint32_t off = 0; off < len; off += 10 + cfs_get16(d + off + 8)) {
			if (len - off < 10 || len - off - 10 < cfs_get16(d + off + 8))
				return dfail(c, k->offset, none, 0, "malformed back-reference item");
			c->refs++;
		}
	} else if (k->type == CFS_ITEM_DIR_ENTRY) {
		for (uint32_t off = 0; off < len;) {
			if (len - off < 19 || len - off - 19 < cfs_get16(d + off + 17))
				return dfail(c, k->objectid, none, 0, "malformed entry item");
			uint32_t nl = cfs_get16(d + off + 17);
			/* check_entry reuses c->buf: copy the record first. */
			uint8_t r[19 + CFS_NAME_MAX];
			if (nl > CFS_NAME_MAX)
				return dfail(c, k->objectid, none, 0, "name longer than 255 bytes");
			plat_memcpy(r, d + off, 19 + nl);
			int err = check_entry(c, k->objectid, k->offset, r, nl);
			if (err)
				return err;
			off += 19 + nl;
		}
	}
	return 0;
}

int cowfs_check_dirs(struct cowfs_tree *t, char *msg, size_t msglen)
{
	struct dchk *c = plat_zalloc(sizeof(*c));
	if (!c)
		return -PLAT_ENOMEM;
	c->t = t;
	c->msg = msg;
	c->msglen = msglen;
	struct cowfs_key from = { 0, 0, 0 }, to = { UINT64_MAX, 255, UINT64_MAX };
	int err = cowfs_bt_iterate(t, &from, &to, dchk_item, c);
	if (!err && (c->index != c->entries || c->refs != c->entries)) {
		plat_snprintf(msg, msglen, "tree %llu: %llu names, %llu index items, %llu back-references",
			      (unsigned long long)t->id, (unsigned long long)c->entries,
			      (unsigned long long)c->index, (unsigned long long)c->refs);
		err = -PLAT_EIO;
	}
	if (!err)
		err = cowfs_xattr_check_done(t, &c->xa, msg, msglen);
	plat_free(c);
	return err < 0 ? err : err ? -PLAT_EIO : 0;
}
