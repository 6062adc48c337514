/* The cowfs host tool (tools/cowfs_tool.c), run in-process: mkfs, info
 * and check of an image, fsck(8) exit codes, and a one-line error naming
 * the argument for bad input. */
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

TEST_MAIN()
