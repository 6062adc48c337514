/*
 * Data transforms and encoded extents: COW-35 (ordered stages declared by
 * map flags, buffered and direct paths), COW-36 (ENCODED maps, io_size,
 * whole-extent I/O), COW-37 (RMW from an encoded source), COW-42
 * (physical-mapping refusal), §8.7 "compressed extent" and "a source that
 * is a compressed extent".  The filesystem is tests/host/testfs_xf.c.
 */
#define TEST_SUITE "iomap_xform"
#include <stdlib.h>
#include <string.h>
#include "tests/host/test.h"
#include "tests/host/testfs_xf.h"
#include "tests/host/testfs.h"
#include "iomap/report.h"

#define ALL (IOMAP_F_CSUM | IOMAP_F_CRYPT | IOMAP_F_ENCODED)

/* Compressible: runs of bytes with a few literals. */
static void fill_runs(uint8_t *p, uint64_t n, unsigned seed)
{
	for (uint64_t i = 0; i < n; i++)
		p[i] = (uint8_t)((i / 97 + seed) * 7) ^ (i % 1000 == 0 ? 0x5a : 0);
}

static void fill_random(uint8_t *p, uint64_t n, uint64_t seed)
{
	for (uint64_t i = 0; i < n; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		p[i] = (uint8_t)(seed >> 56);
	}
}

static uint64_t dev_reads(struct xt_fs *fs)
{
	struct plat_host_bdev_stats st;
	plat_host_bdev_stats(fs->bdev, &st);
	return st.reads;
}

/* A file on a fresh filesystem whose new writes get wflags. */
static struct xt_inode *xf_open(uint16_t wflags, unsigned blkbits, struct xt_fs **fs)
{
	EXPECT_EQ_INT(xt_create(wflags, blkbits, fs), 0);
	return xt_inode_new(*fs);
}

static void xf_close(struct xt_fs *fs, struct xt_inode *xi)
{
	EXPECT_EQ_INT(xt_inode_free(xi), 0);
	xt_destroy(fs);
}

/* Writes n bytes at pos, writes them back and drops the cache: the next
 * read decodes what is on disk. */
static void xf_write_drop(struct xt_inode *xi, uint64_t pos, const void *p, uint64_t n)
{
	EXPECT_EQ_INT(xt_write(xi, pos, p, n), (int)n);
	EXPECT_EQ_INT(xt_sync_drop(xi), 0);
}

/* Reads n bytes at pos into buf and expects them to equal want. */
static void xf_expect_read(struct xt_inode *xi, uint64_t pos, uint8_t *buf, const void *want, uint64_t n)
{
	EXPECT_EQ_INT(xt_read(xi, pos, buf, n), (int)n);
	EXPECT(memcmp(buf, want, n) == 0);
}

/* COW-35/36: compress -> encrypt -> checksum on write; read back after the
 * cache is dropped goes verify -> decrypt -> decompress. */
TEST(cow35_cow36_stages_roundtrip_buffered)
{
	struct xt_fs *fs;
	struct xt_inode *xi = xf_open(ALL, 12, &fs);
	static uint8_t data[65536], buf[65536], raw[4096];
	fill_runs(data, sizeof(data), 1);
	xf_write_drop(xi, 0, data, sizeof(data));
	struct xt_ext e = xt_ext_at(xi, 0);
	EXPECT_EQ_INT(e.type, IOMAP_ENCODED);
	EXPECT(e.io_size > 0 && e.io_size < e.len);               /* compressed */
	EXPECT_EQ_INT(e.io_size % 4096, 0);
	EXPECT_EQ_INT(e.flags, IOMAP_F_CSUM | IOMAP_F_CRYPT);
	EXPECT(fs->encodes > 0);
	/* The stored bytes are neither the plain data nor the plain RLE stream. */
	EXPECT_EQ_INT(plat_bdev_rw(fs->bdev, PLAT_BIO_READ, e.addr, raw, 4096), 0);
	EXPECT(memcmp(raw, data, 4096) != 0);
	EXPECT(((uint32_t *)raw)[0] != (uint32_t)e.len);          /* length header is encrypted */
	EXPECT_EQ_INT(fs->csum[e.addr >> 12], xt_crc32c(0, raw, 4096));
	memset(buf, 0, sizeof(buf));
	xf_expect_read(xi, 0, buf, data, sizeof(buf));
	EXPECT(fs->decodes > 0);
	EXPECT_EQ_INT(fs->csum_failures, 0);
	/* fiemap reports the encoded extent. */
	struct iomap_fiemap_extent fe[8];
	int n = iomap_fiemap(&xi->ino, 0, sizeof(data), &xt_ops, fe, 8);
	EXPECT(n >= 1 && (fe[0].flags & IOMAP_FIEMAP_ENCODED));
	xf_close(fs, xi);
}

/* COW-35: a corrupted stored block is an -EIO with a message, never stale
 * or undecoded bytes: buffered read, direct read and RMW all refuse. */
TEST(cow35_checksum_mismatch_is_eio)
{
	struct xt_fs *fs;
	struct xt_inode *xi = xf_open(IOMAP_F_CSUM | IOMAP_F_CRYPT, 12, &fs);
	static uint8_t data[16384], buf[16384];
	fill_random(data, sizeof(data), 3);
	xf_write_drop(xi, 0, data, sizeof(data));
	struct xt_ext e = xt_ext_at(xi, 8192);
	EXPECT_EQ_INT(e.type, IOMAP_MAPPED);
	uint8_t sec[512];
	uint64_t bad = e.addr + (8192 - e.off);
	EXPECT_EQ_INT(plat_bdev_rw(fs->bdev, PLAT_BIO_READ, bad, sec, 512), 0);
	sec[100] ^= 1;                                 /* one bit flips on the medium */
	EXPECT_EQ_INT(plat_bdev_rw(fs->bdev, PLAT_BIO_WRITE, bad, sec, 512), 0);
	memset(buf, 0xAB, sizeof(buf));
	EXPECT_EQ_INT(xt_read(xi, 8192, buf, 4096), -PLAT_EIO);
	EXPECT(buf[0] == 0xAB);                        /* nothing handed out */
	EXPECT(fs->csum_failures >= 1);
	/* The good blocks still read. */
	EXPECT_EQ_INT(xt_read(xi, 0, buf, 4096), 4096);
	EXPECT(memcmp(buf, data, 4096) == 0);
	/* Direct read of the bad block: -EIO too. */
	static uint8_t dbuf[4096] __attribute__((aligned(4096)));
	EXPECT_EQ_INT(iomap_dio_rw(&xi->ino, 8192, dbuf, 4096, 0, &xt_ops, &xt_dio_ops), -PLAT_EIO);
	/* RMW from the bad source block (COW-37 path): the write fails. */
	EXPECT(xt_write(xi, 8192 + 10, "x", 1) < 0);
	xf_close(fs, xi);
}

/* COW-36: reading one byte reads the whole stored extent once and fills
 * every logical page it covers. */
TEST(cow36_partial_read_decodes_whole_extent)
{
	struct xt_fs *fs;
	struct xt_inode *xi = xf_open(ALL, 12, &fs);
	static uint8_t data[16384];
	fill_runs(data, sizeof(data), 2);
	xf_write_drop(xi, 0, data, sizeof(data));
	struct xt_ext e = xt_ext_at(xi, 0);
	EXPECT_EQ_INT(e.type, IOMAP_ENCODED);
	EXPECT_EQ_INT(e.off, 0);
	EXPECT_EQ_INT(e.len, 16384);
	uint64_t r0 = dev_reads(fs), d0 = fs->decodes;
	/* A buffered read of the last byte of page 2 (read_folio path). */
	struct folio *f = NULL;
	EXPECT_EQ_INT(pcache_get_folio(&xi->ino.mapping, 2, 0, PCACHE_CREAT | PCACHE_LOCK, &f), 0);
	EXPECT_EQ_INT(iomap_read_folio(f, &xt_ops), 0);
	EXPECT_EQ_INT(folio_wait_unlocked(f, plat_time_ns() + PCACHE_WAIT_NS), 0);
	EXPECT(folio_test(f, FOLIO_UPTODATE));
	EXPECT(memcmp(f->data, data + 8192, 4096) == 0);
	folio_put(f);
	EXPECT_EQ_INT(dev_reads(fs) - r0, 1);                /* io_size bytes, one read */
	EXPECT_EQ_INT(fs->decodes - d0, 1);
	for (uint64_t p = 0; p < 4; p++) {                    /* all logical pages cached */
		struct folio *g = pcache_lookup(&xi->ino.mapping, p);
		EXPECT(g != NULL);
		if (g) {
			EXPECT(folio_test(g, FOLIO_UPTODATE));
			EXPECT(memcmp(g->data, data + p * 4096, 4096) == 0);
			folio_put(g);
		}
	}
	/* Reading the rest costs no I/O. */
	static uint8_t buf[16384];
	xf_expect_read(xi, 0, buf, data, sizeof(buf));
	EXPECT_EQ_INT(dev_reads(fs) - r0, 1);
	/* A direct read of a middle block also decodes the whole extent. */
	static uint8_t dbuf[4096] __attribute__((aligned(4096)));
	EXPECT_EQ_INT(iomap_dio_rw(&xi->ino, 4096, dbuf, 4096, 0, &xt_ops, &xt_dio_ops), 4096);
	EXPECT(memcmp(dbuf, data + 4096, 4096) == 0);
	EXPECT_EQ_INT(dev_reads(fs) - r0, 2);
	xf_close(fs, xi);
}

/* COW-36/37, §8.7 "compressed extent: partial overwrite": the write
 * decodes the encoded source (not in cache), COWs the whole extent, and
 * the new extent(s) replace the old one with a correct io_size. */
TEST(cow36_cow37_partial_overwrite_cows_whole_extent)
{
	struct xt_fs *fs;
	struct xt_inode *xi = xf_open(ALL, 12, &fs);
	static uint8_t data[16384], buf[16384];
	fill_runs(data, sizeof(data), 3);
	xf_write_drop(xi, 0, data, sizeof(data));
	struct xt_ext old = xt_ext_at(xi, 0);
	EXPECT_EQ_INT(old.type, IOMAP_ENCODED);
	/* 100 bytes in the middle of block 1, unaligned. */
	memset(data + 5000, 0x77, 100);
	xf_write_drop(xi, 5000, data + 5000, 100);
	/* Every block of the old extent was rewritten: none maps old.addr. */
	for (uint64_t p = 0; p < sizeof(data); p += 4096) {
		struct xt_ext e = xt_ext_at(xi, p);
		EXPECT(e.len != 0);
		EXPECT(e.addr != old.addr);
		EXPECT_EQ_INT(e.type, IOMAP_ENCODED);
		EXPECT(e.io_size > 0 && e.io_size < e.enc_len);
	}
	xf_expect_read(xi, 0, buf, data, sizeof(buf));
	xf_close(fs, xi);
}

/* COW-35: an encoder that cannot shrink the data declines; the core stores
 * the bytes with the other stages only and tells end_io (no ENCODED). */
TEST(cow35_incompressible_stored_unencoded)
{
	struct xt_fs *fs;
	struct xt_inode *xi = xf_open(ALL, 12, &fs);
	static uint8_t data[32768], buf[32768];
	fill_random(data, sizeof(data), 9);
	xf_write_drop(xi, 0, data, sizeof(data));
	struct xt_ext e = xt_ext_at(xi, 0);
	EXPECT_EQ_INT(e.type, IOMAP_MAPPED);
	EXPECT_EQ_INT(e.flags, IOMAP_F_CSUM | IOMAP_F_CRYPT);
	xf_expect_read(xi, 0, buf, data, sizeof(buf));
	xf_close(fs, xi);
}

/* COW-35 on the direct path: a direct write is encrypted and checksummed
 * through a bounce (the caller's buffer stays plain), and a buffered read
 * of it decodes. */
TEST(cow35_direct_write_and_read_through_stages)
{
	struct xt_fs *fs;
	struct xt_inode *xi = xf_open(IOMAP_F_CSUM | IOMAP_F_CRYPT, 12, &fs);
	static uint8_t data[32768] __attribute__((aligned(4096))), keep[32768], buf[32768], raw[4096];
	fill_random(data, sizeof(data), 5);
	memcpy(keep, data, sizeof(data));
	EXPECT_EQ_INT(iomap_dio_rw(&xi->ino, 0, data, sizeof(data), IOMAP_DIO_WRITE, &xt_ops, &xt_dio_ops),
		      (int)sizeof(data));
	EXPECT(memcmp(data, keep, sizeof(data)) == 0);
	struct xt_ext e = xt_ext_at(xi, 0);
	EXPECT_EQ_INT(e.type, IOMAP_MAPPED);
	EXPECT_EQ_INT(e.flags, IOMAP_F_CSUM | IOMAP_F_CRYPT);
	EXPECT_EQ_INT(plat_bdev_rw(fs->bdev, PLAT_BIO_READ, e.addr, raw, 4096), 0);
	EXPECT(memcmp(raw, keep, 4096) != 0);
	EXPECT_EQ_INT(fs->csum[e.addr >> 12], xt_crc32c(0, raw, 4096));
	memset(data, 0, sizeof(data));
	EXPECT_EQ_INT(iomap_dio_rw(&xi->ino, 0, data, sizeof(data), 0, &xt_ops, &xt_dio_ops), (int)sizeof(data));
	EXPECT(memcmp(data, keep, sizeof(data)) == 0);
	xf_expect_read(xi, 0, buf, keep, sizeof(buf));
	xf_close(fs, xi);
}

/* A direct write whose only stage is a checksum sums the caller's buffer
 * and the device reads it from there: no bounce copy, and the checksum is
 * over the bytes that reached the device. */
TEST(cow35_direct_write_checksum_only_needs_no_bounce)
{
	struct xt_fs *fs;
	struct xt_inode *xi = xf_open(IOMAP_F_CSUM, 12, &fs);
	static uint8_t data[65536] __attribute__((aligned(4096))), raw[4096];
	fill_random(data, sizeof(data), 9);
	EXPECT_EQ_INT(iomap_dio_rw(&xi->ino, 0, data, sizeof(data), IOMAP_DIO_WRITE, &xt_ops, &xt_dio_ops),
		      (int)sizeof(data));
	EXPECT(fs->crc_in >= data && fs->crc_in < data + sizeof(data));
	struct xt_ext e = xt_ext_at(xi, 0);
	EXPECT_EQ_INT(e.flags, IOMAP_F_CSUM);
	EXPECT_EQ_INT(plat_bdev_rw(fs->bdev, PLAT_BIO_READ, e.addr + 8192, raw, 4096), 0);
	EXPECT(memcmp(raw, data + 8192, 4096) == 0);
	EXPECT_EQ_INT(fs->csum[(e.addr + 8192) >> 12], xt_crc32c(0, raw, 4096));
	/* With a rewriting stage the stages get their own copy. */
	struct xt_inode *xc = xt_inode_new(fs);
	fs->wflags = IOMAP_F_CSUM | IOMAP_F_CRYPT;
	EXPECT_EQ_INT(iomap_dio_rw(&xc->ino, 0, data, sizeof(data), IOMAP_DIO_WRITE, &xt_ops, &xt_dio_ops),
		      (int)sizeof(data));
	EXPECT(fs->crc_in < data || fs->crc_in >= data + sizeof(data));
	memset(raw, 0, sizeof(raw));
	EXPECT_EQ_INT(iomap_dio_rw(&xc->ino, 4096, raw, 4096, 0, &xt_ops, &xt_dio_ops), 4096);
	EXPECT(memcmp(raw, data + 4096, 4096) == 0);
	EXPECT_EQ_INT(xt_inode_free(xc), 0);
	EXPECT_EQ_INT(fs->csum_failures, 0);
	xf_close(fs, xi);
}

/* COW-35 "order fixed per filesystem but configurable": with the order
 * rle -> crc32c -> cipher the checksum covers the plaintext (compressed)
 * bytes, so it no longer matches the stored block; reads still verify. */
TEST(cow35_stage_order_is_the_filesystems)
{
	struct xt_fs *fs;
	EXPECT_EQ_INT(xt_create(ALL, 12, &fs), 0);
	static const struct iomap_xform_stage *const order[] = { &xt_rle, &xt_crc, &xt_cipher };
	fs->xops.stages = order;
	struct xt_inode *xi = xt_inode_new(fs);
	static uint8_t data[32768], buf[32768], raw[4096];
	fill_runs(data, sizeof(data), 6);
	xf_write_drop(xi, 0, data, sizeof(data));
	struct xt_ext e = xt_ext_at(xi, 0);
	EXPECT_EQ_INT(e.type, IOMAP_ENCODED);
	EXPECT_EQ_INT(plat_bdev_rw(fs->bdev, PLAT_BIO_READ, e.addr, raw, 4096), 0);
	EXPECT(fs->csum[e.addr >> 12] != xt_crc32c(0, raw, 4096));   /* not over the stored bytes */
	xf_expect_read(xi, 0, buf, data, sizeof(buf));
	EXPECT_EQ_INT(fs->csum_failures, 0);
	/* A flipped stored bit decrypts to a flipped plaintext bit: caught. */
	raw[7] ^= 0x10;
	EXPECT_EQ_INT(plat_bdev_rw(fs->bdev, PLAT_BIO_WRITE, e.addr, raw, 4096), 0);
	EXPECT_EQ_INT(pcache_invalidate_range(&xi->ino.mapping, 0, UINT64_MAX, true), 0);
	EXPECT_EQ_INT(xt_read(xi, 0, buf, 4096), -PLAT_EIO);
	EXPECT(fs->csum_failures > 0);
	xf_close(fs, xi);
}

/* Block size < page size: stages run per 1 KiB block. */
TEST(cow35_small_blocks)
{
	struct xt_fs *fs;
	struct xt_inode *xi = xf_open(ALL, 10, &fs);
	static uint8_t data[20000], buf[20000];
	fill_runs(data, sizeof(data), 4);
	xf_write_drop(xi, 300, data, sizeof(data));
	xf_expect_read(xi, 300, buf, data, sizeof(buf));
	memset(data + 7000, 0x11, 3000);
	xf_write_drop(xi, 7300, data + 7000, 3000);
	xf_expect_read(xi, 300, buf, data, sizeof(buf));
	EXPECT_EQ_INT(fs->csum_failures, 0);
	xf_close(fs, xi);
}

/* COW-7/36: the validator knows the new type and its rules. */
TEST(cow36_validator_rules)
{
	struct xt_fs *fs;
	struct xt_inode *xi = xf_open(ALL, 12, &fs);
	struct iomap_iter it = { .inode = &xi->ino, .pos = 0, .len = 4096, .flags = IOMAP_READ };
	it.iomap = (struct iomap){ .offset = 0, .length = 8192, .addr = 4096, .bdev = fs->bdev,
				   .type = IOMAP_ENCODED, .io_size = 4096 };
	EXPECT(iomap_check_mapping(&it) == NULL);
	it.iomap.io_size = 0;
	EXPECT(iomap_check_mapping(&it) && !strncmp(iomap_check_mapping(&it), "encoded", 7));
	it.iomap.io_size = 4096;
	it.flags = IOMAP_WRITE;
	EXPECT(iomap_check_mapping(&it) && !strncmp(iomap_check_mapping(&it), "encoded", 7));
	it.flags = IOMAP_READ;
	it.iomap = (struct iomap){ .offset = 0, .length = 8192, .addr = IOMAP_NULL_ADDR, .bdev = fs->bdev,
				   .type = IOMAP_HOLE, .flags = IOMAP_F_CSUM };
	EXPECT(iomap_check_mapping(&it) && !strncmp(iomap_check_mapping(&it), "xform", 5));
	xf_close(fs, xi);
}

/* COW-42: physical mappings refuse shared, COW, encoded and delalloc
 * extents with a specific reason; a plain mapped extent is accepted. */
TEST(cow42_swap_bmap_refusal)
{
	struct tfs_config cfg = { .dev_bytes = 16ull << 20, .blkbits = 12, .max_folio_order = 2,
				  .max_file_bytes = 4ull << 20 };
	struct tfs *t;
	EXPECT_EQ_INT(tfs_create(&cfg, 8ull << 20, 0, &t), 0);
	struct tfs_inode *a = tfs_inode_new(t), *b = tfs_inode_new(t);
	EXPECT_EQ_INT(tfs_set_mapped(a, 0, 16384, NULL), 0);
	int64_t phys = iomap_bmap(&a->ino, 4096 + 5, &tfs_read_ops);
	EXPECT_EQ_INT(phys, (int64_t)((tfs_blk_get(a, 4096).addr << 12) + 5));
	EXPECT_EQ_INT(iomap_swap_activate(&a->ino, 16384, &tfs_read_ops), 0);
	EXPECT_EQ_INT(tfs_clone(b, 0, a, 0, 8192), 0);   /* a's first two blocks now shared */
	EXPECT_EQ_INT(iomap_bmap(&a->ino, 0, &tfs_read_ops), -PLAT_EINVAL);
	EXPECT_EQ_INT(iomap_swap_activate(&a->ino, 16384, &tfs_read_ops), -PLAT_EINVAL);
	EXPECT_EQ_INT(iomap_bmap(&a->ino, 8192, &tfs_read_ops) > 0, 1);
	EXPECT_EQ_INT(tfs_write(a, 16384, "abc", 3), 3);  /* delalloc */
	EXPECT_EQ_INT(iomap_bmap(&a->ino, 16384, &tfs_read_ops), -PLAT_EINVAL);
	struct iomap m = { .type = IOMAP_MAPPED, .flags = IOMAP_F_SHARED };
	EXPECT(strstr(iomap_physical_refusal(&m, NULL), "shared") != NULL);
	m.flags = 0;
	struct iomap src = { .type = IOMAP_MAPPED };
	EXPECT(strstr(iomap_physical_refusal(&m, &src), "COW") != NULL);
	m.type = IOMAP_DELALLOC;
	EXPECT(strstr(iomap_physical_refusal(&m, NULL), "delalloc") != NULL);
	m.type = IOMAP_ENCODED;
	EXPECT(strstr(iomap_physical_refusal(&m, NULL), "encoded") != NULL);
	m.type = IOMAP_MAPPED;
	m.flags = IOMAP_F_CSUM;
	EXPECT(strstr(iomap_physical_refusal(&m, NULL), "transformed") != NULL);
	m.flags = 0;
	EXPECT(iomap_physical_refusal(&m, NULL) == NULL);
	tfs_inode_free(a);
	tfs_inode_free(b);
	tfs_destroy(t);
	/* An encoded file is refused too. */
	struct xt_fs *fs;
	struct xt_inode *xi = xf_open(ALL, 12, &fs);
	static uint8_t data[16384];
	fill_runs(data, sizeof(data), 1);
	xf_write_drop(xi, 0, data, sizeof(data));
	EXPECT_EQ_INT(iomap_swap_activate(&xi->ino, sizeof(data), &xt_ops), -PLAT_EINVAL);
	xf_close(fs, xi);
}

TEST_MAIN()
