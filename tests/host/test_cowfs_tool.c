/* The cowfs host tool (tools/cowfs_tool.c), run in-process: mkfs, info
 * and check of an image, fsck(8) exit codes, a one-line error naming the
 * argument for bad input, and scrub's summary line and exit status over
 * an image holding file data. */
#define TEST_SUITE "cowfs_tool"
#include <fcntl.h>
#include <stdarg.h>
#include "tests/host/test.h"
#include "tests/host/cowfs_test.h"

int cowfs_tool(int argc, char **argv);

/* run("cowfs", "mkfs", ..., NULL): the tool's exit status. */
static int run(const char *a0, ...)
{
	char *argv[16] = { (char *)a0 };
	int argc = 1;
	va_list ap;
	va_start(ap, a0);
	while (argc < 15 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	fflush(stdout);
	return cowfs_tool(argc, argv);
}

static void image_path(char *p, size_t n, const char *name)
{
	snprintf(p, n, "/tmp/cowfs-tool-%s-%d.img", name, getpid());
	unlink(p);
}

TEST(mkfs_info_check_clean)
{
	char p[96];
	image_path(p, sizeof(p), "ok");
	EXPECT_EQ_INT(run("cowfs", "mkfs", "-s", "8M", "-L", "data", p, NULL), 0);
	/* not ok lines would break the protocol: tool output goes to stdout
	 * as plain lines, which summary.py ignores. */
	EXPECT_EQ_INT(run("cowfs", "info", p, NULL), 0);
	EXPECT_EQ_INT(run("cowfs", "check", p, NULL), 0);
	EXPECT_EQ_INT(run("/usr/sbin/mkfs.cowfs", "-n", "4096", p, NULL), 0);
	EXPECT_EQ_INT(run("cowfs", "check", p, NULL), 0);
	struct plat_bdev *b = plat_host_bdev_open(p, 8 << 20, 512, 0, false);
	struct cowfs *fs;
	EXPECT_EQ_INT(cowfs_mount(b, NULL, &fs), 0);
	if (fs) {
		EXPECT_EQ_INT(fs->node_size, 4096);
		EXPECT_EQ_INT(fs->total_blocks, 2048);
		cowfs_unmount(fs);
	}
	plat_bdev_close(b);
	unlink(p);
}

TEST(check_reports_damage_with_exit_4)
{
	char p[96];
	image_path(p, sizeof(p), "bad");
	EXPECT_EQ_INT(run("cowfs", "mkfs", "-s", "4M", "-n", "4096", p, NULL), 0);
	/* Flip a bit in the free-space tree's root leaf: mount fails to load
	 * the allocator from any commit. */
	struct plat_bdev *b = plat_host_bdev_open(p, 4 << 20, 512, 0, false);
	struct cowfs *fs;
	uint64_t blk = 0;
	EXPECT_EQ_INT(cowfs_mount(b, NULL, &fs), 0);
	if (fs) {
		blk = fs->free_tree.root.blocknr;
		cowfs_unmount(fs);
	}
	plat_bdev_close(b);
	int fd = open(p, O_RDWR);
	uint8_t c;
	EXPECT_EQ_INT(pread(fd, &c, 1, (off_t)(blk * 4096 + 700)), 1);
	c ^= 1;
	EXPECT_EQ_INT(pwrite(fd, &c, 1, (off_t)(blk * 4096 + 700)), 1);
	close(fd);
	EXPECT_EQ_INT(run("cowfs", "check", p, NULL), 4);
	EXPECT_EQ_INT(run("cowfs", "info", p, NULL), 8);
	unlink(p);
}

TEST(bad_arguments)
{
	char p[96];
	image_path(p, sizeof(p), "args");
	EXPECT_EQ_INT(run("cowfs", NULL), 16);
	EXPECT_EQ_INT(run("cowfs", "format", p, NULL), 16);
	EXPECT_EQ_INT(run("cowfs", "mkfs", "-n", "1000", p, NULL), 16);
	EXPECT_EQ_INT(run("cowfs", "mkfs", "-s", "12Q", p, NULL), 16);
	EXPECT_EQ_INT(run("cowfs", "mkfs", "-s", NULL), 16);
	EXPECT_EQ_INT(run("cowfs", "mkfs", "-x", "1", p, NULL), 16);
	EXPECT_EQ_INT(run("cowfs", "mkfs", p, p, NULL), 16);
	/* too small, and a missing image for info/check */
	EXPECT_EQ_INT(run("cowfs", "mkfs", "-s", "64K", p, NULL), 8);
	EXPECT_EQ_INT(run("cowfs", "check", p, NULL), 8);
	/* not a cowfs image */
	int fd = open(p, O_CREAT | O_RDWR, 0644);
	EXPECT_EQ_INT(ftruncate(fd, 1 << 20), 0);
	close(fd);
	EXPECT_EQ_INT(run("cowfs", "check", p, NULL), 4);
	unlink(p);
}

TEST(repair_scrub_snapshot)
{
	char p[96];
	image_path(p, sizeof(p), "rep");
	EXPECT_EQ_INT(run("cowfs", "mkfs", "-s", "8M", "-n", "4096", p, NULL), 0);
	EXPECT_EQ_INT(run("cowfs", "snapshot", p, "create", "first", NULL), 0);
	EXPECT_EQ_INT(run("cowfs", "snapshot", p, "clone", "work", NULL), 0);
	EXPECT_EQ_INT(run("cowfs", "snapshot", p, "create", "first", NULL), 8);     /* name taken */
	EXPECT_EQ_INT(run("cowfs", "snapshot", p, "list", NULL), 0);
	EXPECT_EQ_INT(run("cowfs", "snapshot", p, "delete", "work", NULL), 0);
	EXPECT_EQ_INT(run("cowfs", "snapshot", p, "delete", "work", NULL), 8);
	EXPECT_EQ_INT(run("cowfs", "snapshot", p, "rename", "x", NULL), 16);
	EXPECT_EQ_INT(run("cowfs", "scrub", p, NULL), 0);
	EXPECT_EQ_INT(run("fsck.cowfs", p, NULL), 0);
	EXPECT_EQ_INT(run("cowfs", "check", "--repair", p, NULL), 0);           /* clean: nothing to do */
	/* Leak blocks: the check says so (4), repair fixes it (1), clean after (0). */
	struct plat_bdev *b = plat_host_bdev_open(p, 8 << 20, 512, 0, false);
	struct cowfs *fs;
	uint64_t blk = 0;
	EXPECT_EQ_INT(cowfs_mount(b, NULL, &fs), 0);
	EXPECT_EQ_INT(cowfs_alloc_blocks(fs, 3, &blk), 0);
	fs->dirty_changes++;                 /* commit the space map alone */
	EXPECT_EQ_INT(cowfs_commit(fs), 0);
	EXPECT_EQ_INT(cowfs_unmount(fs), 0);
	plat_bdev_close(b);
	EXPECT_EQ_INT(run("cowfs", "check", p, NULL), 4);
	EXPECT_EQ_INT(run("fsck.cowfs", "-y", p, NULL), 1);
	EXPECT_EQ_INT(run("cowfs", "check", p, NULL), 0);
	/* A damaged node: scrub names it (4); repair cannot fix it (4). */
	b = plat_host_bdev_open(p, 8 << 20, 512, 0, false);
	EXPECT_EQ_INT(cowfs_mount(b, NULL, &fs), 0);
	struct cowfs_tree *t = NULL;
	EXPECT_EQ_INT(cowfs_tree_open(fs, CFS_TREE_FS + 1, false, &t), 0);
	blk = t ? t->root.blocknr : 0;
	cowfs_unmount(fs);
	plat_bdev_close(b);
	int fd = open(p, O_RDWR);
	uint8_t c = 0x55;
	EXPECT_EQ_INT(pwrite(fd, &c, 1, (off_t)(blk * 4096 + 100)), 1);
	close(fd);
	EXPECT_EQ_INT(run("cowfs", "scrub", p, NULL), 4);
	EXPECT_EQ_INT(run("cowfs", "check", "--repair", p, NULL), 4);
	unlink(p);
}

/* run() with the tool's stdout captured into out. */
static int run_captured(char *out, size_t n, const char *a0, const char *a1, const char *a2)
{
	char tmp[96];
	snprintf(tmp, sizeof(tmp), "/tmp/cowfs-tool-out-%d.txt", getpid());
	fflush(stdout);
	int saved = dup(1), fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 1);
	int rc = run(a0, a1, a2, NULL);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	ssize_t got = pread(fd, out, n - 1, 0);
	out[got > 0 ? got : 0] = 0;
	close(fd);
	unlink(tmp);
	return rc;
}

/* 40 data blocks of inode 300 at file offset 0, written with their
 * checksums the way the file layer leaves them; *blk = the first. */
static void put_file_data(const char *p, uint64_t *blk)
{
	struct plat_bdev *b = plat_host_bdev_open(p, 8 << 20, 512, 0, false);
	struct cowfs *fs;
	struct cowfs_tree *t = NULL, *csum = NULL;
	uint8_t *data = aligned_alloc(4096, 40 * 4096);
	for (unsigned i = 0; i < 40 * 4096; i++)
		data[i] = (uint8_t)(i * 7 + i / 4096);
	EXPECT_EQ_INT(cowfs_mount(b, NULL, &fs), 0);
	EXPECT_EQ_INT(cowfs_tree_open(fs, CFS_TREE_FS, true, &t), 0);
	EXPECT_EQ_INT(cowfs_tree_get(fs, CFS_TREE_CSUM, true, &csum), 0);
	EXPECT_EQ_INT(cowfs_alloc_blocks(fs, 40, blk), 0);
	EXPECT_EQ_INT(plat_bdev_rw(b, PLAT_BIO_WRITE, *blk * 4096, data, 40 * 4096), 0);
	EXPECT_EQ_INT(cowfs_extent_item_put(t, 300, 0, *blk, 40, fs->gen), 0);
	for (unsigned i = 0; i < 40; i++) {
		uint8_t v[4];
		struct cowfs_key k = { *blk + i, CFS_ITEM_DATA_CSUM, 0 };
		cfs_put32(v, crc32c(0, data + i * 4096, 4096));
		EXPECT_EQ_INT(cowfs_bt_insert(csum, &k, v, 4), 0);
	}
	EXPECT_EQ_INT(cowfs_commit(fs), 0);
	EXPECT_EQ_INT(cowfs_unmount(fs), 0);
	plat_bdev_close(b);
	free(data);
}

TEST(scrub_summary_and_exit_status_with_data)
{
	char p[96], out[4096], want[200];
	uint64_t blk = 0;
	image_path(p, sizeof(p), "scrubdata");
	EXPECT_EQ_INT(run("cowfs", "mkfs", "-s", "8M", "-n", "4096", p, NULL), 0);
	put_file_data(p, &blk);
	EXPECT_EQ_INT(run_captured(out, sizeof(out), "cowfs", "scrub", p), 0);
	snprintf(want, sizeof(want), "cowfs: %s: scrub clean: ", p);
	EXPECT(strstr(out, want) == out);
	/* The 40 contiguous blocks: one device read. */
	EXPECT(strstr(out, " 40 data blocks (0 references met again, 0 unwritten not read) in 1 data reads, "));
	EXPECT(strstr(out, "errors: 0 superblock, 0 node, 0 extent, 0 data checksum mismatch, 0 data without "
			   "checksum, 0 data read; 0 errors\n"));
	int fd = open(p, O_RDWR);
	uint8_t c = 0;
	EXPECT_EQ_INT(pread(fd, &c, 1, (off_t)((blk + 7) * 4096 + 99)), 1);
	c ^= 0x40;
	EXPECT_EQ_INT(pwrite(fd, &c, 1, (off_t)((blk + 7) * 4096 + 99)), 1);
	close(fd);
	EXPECT_EQ_INT(run_captured(out, sizeof(out), "cowfs", "scrub", p), 4);
	snprintf(want, sizeof(want), "cowfs: %s: data block %llu (device byte %llu): checksum mismatch: inode 300 "
		 "offset 28672 in the default subvolume\n", p, (unsigned long long)(blk + 7),
		 (unsigned long long)((blk + 7) * 4096));
	EXPECT(strstr(out, want) == out);
	snprintf(want, sizeof(want), "cowfs: %s: scrub found damage: ", p);
	EXPECT(strstr(out, want));
	EXPECT(strstr(out, " 40 data blocks (") && strstr(out, ", 1 data checksum mismatch, ") &&
	       strstr(out, "; 1 errors\n"));
	unlink(p);
}

TEST_MAIN()
