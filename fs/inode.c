/*
 * Inode items (docs/format.md §6, INODE): 112 bytes, little-endian.
 */
#include "fs/inode.h"
#include "fs/cowfs_int.h"

static uint8_t *put_time(uint8_t *p, const struct cowfs_time *t)
{
	cfs_put64(p, t->sec);
	cfs_put32(p + 8, t->nsec);
	return p + 12;
}

static const uint8_t *get_time(const uint8_t *p, struct cowfs_time *t)
{
	t->sec = cfs_get64(p);
	t->nsec = cfs_get32(p + 8);
	return p + 12;
}

void cowfs_inode_encode(const struct cowfs_inode *in, uint8_t *b)
{
	cfs_put32(b, in->mode);
	cfs_put32(b + 4, in->uid);
	cfs_put32(b + 8, in->gid);
	cfs_put32(b + 12, in->nlink);
	cfs_put64(b + 16, in->size);
	cfs_put64(b + 24, in->blocks);
	uint8_t *p = put_time(b + 32, &in->atime);
	p = put_time(p, &in->mtime);
	p = put_time(p, &in->ctime);
	p = put_time(p, &in->btime);
	cfs_put64(p, in->flags);
	cfs_put64(p + 8, in->gen);
	cfs_put64(p + 16, in->rdev);
	cfs_put64(p + 24, in->next_dir_seq);
}

void cowfs_inode_decode(const uint8_t *b, struct cowfs_inode *in)
{
	in->mode = cfs_get32(b);
	in->uid = cfs_get32(b + 4);
	in->gid = cfs_get32(b + 8);
	in->nlink = cfs_get32(b + 12);
	in->size = cfs_get64(b + 16);
	in->blocks = cfs_get64(b + 24);
	const uint8_t *p = get_time(b + 32, &in->atime);
	p = get_time(p, &in->mtime);
	p = get_time(p, &in->ctime);
	p = get_time(p, &in->btime);
	in->flags = cfs_get64(p);
	in->gen = cfs_get64(p + 8);
	in->rdev = cfs_get64(p + 16);
	in->next_dir_seq = cfs_get64(p + 24);
}

static void inode_key(uint64_t ino, struct cowfs_key *k)
{
	k->objectid = ino;
	k->type = CFS_ITEM_INODE;
	k->offset = 0;
}

int cowfs_inode_read(struct cowfs_tree *t, uint64_t ino, struct cowfs_inode *out)
{
	uint8_t b[CFS_INODE_ITEM_SIZE];
	uint32_t len;
	struct cowfs_key k;
	inode_key(ino, &k);
	int err = cowfs_bt_lookup(t, &k, b, sizeof(b), &len);
	if (err)
		return err;
	if (len != CFS_INODE_ITEM_SIZE) {
		plat_log(PLAT_LOG_ERR, "cowfs: tree %llu: inode %llu item has %u bytes, expected %u",
			 (unsigned long long)t->id, (unsigned long long)ino, len, CFS_INODE_ITEM_SIZE);
		return -PLAT_EIO;
	}
	cowfs_inode_decode(b, out);
	out->ino = ino;
	return 0;
}

int cowfs_inode_write(struct cowfs_tree *t, const struct cowfs_inode *in)
{
	uint8_t b[CFS_INODE_ITEM_SIZE];
	struct cowfs_key k;
	inode_key(in->ino, &k);
	cowfs_inode_encode(in, b);
	return cowfs_bt_update(t, &k, b, sizeof(b));
}

int cowfs_inode_create(struct cowfs_tree *t, struct cowfs_inode *in)
{
	uint8_t b[CFS_INODE_ITEM_SIZE];
	struct cowfs_key k;
	/* Every key's objectid is an inode number (or a reserved id below
	 * 256), so the next free number follows the last key's; found once
	 * per mount, then counted in memory. */
	if (in->ino != CFS_ROOT_INO) {
		if (!t->next_ino) {
			struct cowfs_key last;
			int err = cowfs_bt_last(t, &last);
			if (err && err != -PLAT_ENOENT)
				return err;
			t->next_ino = err || last.objectid < CFS_ROOT_INO ? CFS_ROOT_INO + 1 : last.objectid + 1;
		}
		in->ino = t->next_ino;
	}
	if (!in->next_dir_seq)
		in->next_dir_seq = CFS_FIRST_DIR_SEQ;
	inode_key(in->ino, &k);
	cowfs_inode_encode(in, b);
	int err = cowfs_bt_insert(t, &k, b, sizeof(b));
	if (!err && t->next_ino && in->ino >= t->next_ino)
		t->next_ino = in->ino + 1;
	return err;
}

int cowfs_inode_delete(struct cowfs_tree *t, uint64_t ino)
{
	struct cowfs_key k;
	inode_key(ino, &k);
	return cowfs_bt_delete(t, &k);
}
