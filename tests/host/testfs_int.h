/* Test filesystem internals shared by testfs*.c.  All of them need the
 * caller to hold fs->lock except tfs_range. */
#ifndef TESTS_HOST_TESTFS_INT_H
#define TESTS_HOST_TESTFS_INT_H

#include "tests/host/testfs.h"

#define BB(ti) ((ti)->ino.blkbits)
#define BS(ti) (1ull << BB(ti))

uint64_t tfs_free_locked(struct tfs *fs);
uint64_t tfs_alloc(struct tfs *fs, uint64_t want, bool reserved, uint64_t *addr);
void tfs_decref(struct tfs *fs, uint64_t b);
bool tfs_reserve(struct tfs *fs);
void tfs_unreserve(struct tfs *fs);
struct tfs_blk tfs_blk_at(struct tfs_inode *ti, uint64_t b);
bool tfs_shared(struct tfs_inode *ti, uint64_t b);
uint64_t tfs_data_run(struct tfs_inode *ti, uint64_t b0, uint64_t b1);
void tfs_fill_data_map(struct tfs_inode *ti, uint64_t b0, uint64_t n, struct iomap *m);
void tfs_range(struct tfs_inode *ti, uint64_t pos, uint64_t len, uint64_t *b0, uint64_t *b1);
void tfs_blk_release(struct tfs_inode *ti, struct tfs_blk *k);
int tfs_lock_drain(struct tfs_inode *ti);
int tfs_dio_write_begin(struct tfs_inode *ti, uint64_t b0, uint64_t b1, unsigned flags,
			struct iomap *iomap, struct iomap *srcmap);

#endif
