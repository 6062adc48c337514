/* The disk probe (fs/probe.c): blank disks are recognised, and every disk a
 * user would not want formatted is named: partition tables, other
 * filesystems' signatures, cowfs itself, and plain data anywhere in the
 * probed head and tail. */
#define TEST_SUITE "cowfs_probe"
#include "tests/host/test.h"
#include "tests/host/cowfs_test.h"
#include "fs/probe.h"

#define DISK (16ull << 20)

static void put(struct plat_bdev *b, uint64_t off, const void *p, size_t n)
{
	uint8_t blk[4096] = { 0 };
	uint64_t base = off & ~4095ull;
	EXPECT_EQ_INT(plat_bdev_rw(b, PLAT_BIO_READ, base, blk, 4096), 0);
	memcpy(blk + (off - base), p, n);
	EXPECT_EQ_INT(plat_bdev_rw(b, PLAT_BIO_WRITE, base, blk, 4096), 0);
}

/* A fresh disk with `sig` written at `off`; returns what the probe says. */
static enum cowfs_probe_kind probe_with(uint64_t size, uint64_t off, const char *sig, size_t n, char *what)
{
	struct ct_image im;
	struct plat_bdev *b = ct_image_create(&im, "probe", size);
	struct cowfs_probe p = { .kind = 99 };
	if (sig)
		put(b, off, sig, n);
	EXPECT_EQ_INT(cowfs_probe_disk(b, &p), 0);
	strcpy(what, p.what);
	ct_image_remove(&im);
	return p.kind;
}

TEST(blank_disk)
{
	char w[96];
	EXPECT_EQ_INT(probe_with(DISK, 0, NULL, 0, w), COWFS_PROBE_BLANK);
	EXPECT_STREQ(w, "blank");
	/* Smaller than the probed head and tail together. */
	EXPECT_EQ_INT(probe_with(3 << 20, 0, NULL, 0, w), COWFS_PROBE_BLANK);
}

TEST(signatures_named)
{
	static const struct { uint64_t off; const char *sig; size_t n; const char *what; } c[] = {
		{ 512, "EFI PART", 8, "a GPT partition table" },
		{ 4096, "EFI PART", 8, "a GPT partition table" },
		{ 65536 + 64, "_BHRfS_M", 8, "a btrfs filesystem" },
		{ 0, "XFSB", 4, "an XFS filesystem" },
		{ 1080, "\x53\xef", 2, "an ext2/3/4 filesystem" },
		{ 0, "LUKS\xba\xbe", 6, "a LUKS encrypted volume" },
		{ 4086, "SWAPSPACE2", 10, "Linux swap space" },
		{ 536, "LVM2 001", 8, "an LVM physical volume" },
		{ 32769, "CD001", 5, "an ISO 9660 image" },
		{ 3, "NTFS    ", 8, "an NTFS filesystem" },
		{ 82, "FAT32   ", 8, "a FAT32 filesystem" },
		{ 510, "\x55\xaa", 2, "a boot sector" },
	};
	char w[96];
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		EXPECT_EQ_INT(probe_with(DISK, c[i].off, c[i].sig, c[i].n, w), COWFS_PROBE_FOREIGN);
		EXPECT_STREQ(w, c[i].what);
	}
}

TEST(mbr_with_partitions)
{
	struct ct_image im;
	struct plat_bdev *b = ct_image_create(&im, "probe", DISK);
	uint8_t mbr[512] = { 0 };
	mbr[446 + 16 + 4] = 0x83;              /* second entry: Linux */
	mbr[510] = 0x55;
	mbr[511] = 0xaa;
	put(b, 0, mbr, sizeof(mbr));
	struct cowfs_probe p;
	EXPECT_EQ_INT(cowfs_probe_disk(b, &p), 0);
	EXPECT_EQ_INT(p.kind, COWFS_PROBE_FOREIGN);
	EXPECT_STREQ(p.what, "an MBR partition table");
	ct_image_remove(&im);
}

TEST(data_anywhere_in_head_or_tail)
{
	char w[96];
	EXPECT_EQ_INT(probe_with(DISK, 0, "x", 1, w), COWFS_PROBE_FOREIGN);
	EXPECT_STREQ(w, "data (non-zero bytes at offset 0)");
	EXPECT_EQ_INT(probe_with(DISK, (3ull << 20) + 12345, "x", 1, w), COWFS_PROBE_FOREIGN);
	EXPECT_STREQ(w, "data (non-zero bytes at offset 0x303039)");
	EXPECT_EQ_INT(probe_with(DISK, DISK - 7, "x", 1, w), COWFS_PROBE_FOREIGN);
	EXPECT_STREQ(w, "data (non-zero bytes at offset 0xfffff9)");
	EXPECT_EQ_INT(probe_with(DISK, DISK - 512, "EFI PART", 8, w), COWFS_PROBE_FOREIGN);
	EXPECT_STREQ(w, "a backup GPT partition table");
	/* Between head and tail nobody looks: a disk with data only there is
	 * blank as far as the probe knows (documented limit). */
	EXPECT_EQ_INT(probe_with(DISK, 8ull << 20, "x", 1, w), COWFS_PROBE_BLANK);
}

TEST(cowfs_recognised)
{
	struct ct_image im;
	struct plat_bdev *b = ct_image_create(&im, "probe", DISK);
	EXPECT_EQ_INT(cowfs_mkfs(b, NULL), 0);
	struct cowfs_probe p;
	EXPECT_EQ_INT(cowfs_probe_disk(b, &p), 0);
	EXPECT_EQ_INT(p.kind, COWFS_PROBE_COWFS);
	EXPECT_STREQ(p.what, "a cowfs filesystem");
	ct_image_remove(&im);
}

TEST(read_error_is_an_error)
{
	struct ct_image im;
	struct plat_bdev *b = ct_image_create(&im, "probe", DISK);
	plat_host_bdev_inject(b, PLAT_BIO_READ, 1 << 20, 4096, -PLAT_EIO, 1);
	struct cowfs_probe p;
	EXPECT_EQ_INT(cowfs_probe_disk(b, &p), -PLAT_EIO);
	ct_image_remove(&im);
}

TEST_MAIN()
