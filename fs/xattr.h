/*
 * Extended attributes in a subvolume tree (docs/format.md §6: XATTR and
 * XATTR_VALUE items): the byte layout of an attribute entry, the keys of
 * out-of-line value chunks, deleting an inode's attributes, and their
 * check (fsck).  The mounted filesystem's calls are in fs/vfs.h
 * (fs/xattr.c).
 */
#ifndef FS_XATTR_H
#define FS_XATTR_H

#include "fs/cowfs.h"

#define CFS_XATTR_NAME_MAX  255u
#define CFS_XATTR_VALUE_MAX (64u << 10)
/* Entry head: name_len u16, tag u8, value_len u32; then the name and,
 * for tag 0, the value. */
#define CFS_XATTR_HEAD      7u
#define CFS_XATTR_TAGS      255u

struct cowfs_xattr_entry {
	uint32_t off, size;          /* where the entry is in its item, its bytes there */
	const uint8_t *name;
	uint16_t name_len;
	uint8_t tag;                 /* 0: value inline at `value` */
	uint32_t value_len;
	const uint8_t *value;
};

/* The entry at byte `off` of an XATTR item of `len` bytes: 0, or -EIO
 * when it does not parse (lengths past the item, a name of 0 or more
 * than 255 bytes, a value over 64 KiB). */
int cowfs_xattr_entry_parse(const uint8_t *item, uint32_t len, uint32_t off, struct cowfs_xattr_entry *e);

static inline struct cowfs_key cowfs_xattr_chunk_key(uint64_t ino, uint64_t hash, uint8_t tag, uint32_t chunk)
{
	return (struct cowfs_key){ ino, CFS_ITEM_XATTR_VALUE, hash << 24 | (uint64_t)tag << 16 | chunk };
}
/* Chunks of an out-of-line value of value_len bytes, chunk size c. */
static inline uint32_t cowfs_xattr_chunks(uint32_t value_len, uint32_t c) { return (value_len + c - 1) / c; }

/* One XATTR item, read whole (set, remove). */
struct cowfs_xattr_item {
	struct cowfs_key k;
	uint32_t len;
	bool exists;
	uint8_t buf[4096];           /* > the largest item (16 KiB nodes: 4059) */
};
/* The item name's hash selects; absent = empty (exists false). */
int cowfs_xattr_item_read(struct cowfs_tree *t, uint64_t ino, const char *name, size_t len,
			  struct cowfs_xattr_item *it);
/* 1 and *e when the item holds name, 0 when not, -EIO when malformed. */
int cowfs_xattr_item_find(struct cowfs_tree *t, const struct cowfs_xattr_item *it, const char *name, size_t len,
			  struct cowfs_xattr_entry *e);
/* Logs what is wrong with item k; -EIO. */
int cowfs_xattr_bad(struct cowfs_tree *t, const struct cowfs_key *k, const char *what);
/* The value of ino's attribute `name` in tree t (no locking: the mounted
 * filesystem's cowfs_getxattr, or a snapshot's tree): *vlen = its length;
 * cap 0 only asks the length; -ERANGE when cap is too small, -ENODATA
 * when absent, -EIO when damaged. */
int cowfs_xattr_get(struct cowfs_tree *t, uint64_t ino, const char *name, size_t len, void *buf, size_t cap,
		    size_t *vlen);

/* Every name of ino's attributes in tree t, each followed by a NUL, into
 * buf (no locking, as cowfs_xattr_get); *total = the bytes needed; cap 0
 * only asks the size; -ERANGE when cap is too small. */
int cowfs_xattr_list(struct cowfs_tree *t, uint64_t ino, char *buf, size_t cap, size_t *total);
/* Deletes every XATTR and XATTR_VALUE item of ino (the inode is being
 * freed, or fsck removes attributes of an inode that does not exist). */
int cowfs_xattr_delete_all(struct cowfs_tree *t, uint64_t ino);
/* fsck (a step of the directory check's walk, fs/check_dir.c): every
 * XATTR item parses, its names hash to its key, tags are unique,
 * out-of-line values have exactly their chunks; at the end every chunk
 * belongs to an entry.  0, or -EIO with the problem in msg. */
struct cowfs_xattr_check {
	uint64_t chunks_expected, chunks_seen;
	uint8_t buf[4096];           /* > the largest item */
};
int cowfs_xattr_check_item(struct cowfs_tree *t, struct cowfs_xattr_check *x, const struct cowfs_key *k,
			   const void *data, uint32_t len, char *msg, size_t msglen);
int cowfs_xattr_check_done(struct cowfs_tree *t, const struct cowfs_xattr_check *x, char *msg, size_t msglen);

#endif
