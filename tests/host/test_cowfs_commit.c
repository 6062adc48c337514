#define TEST_SUITE "cowfs_commit"
#include "tests/host/test.h"
#include "tests/host/cowfs_test.h"
TEST(placeholder_mkfs_mount)
{
	struct ct_image im;
	struct cowfs *fs;
	EXPECT(ct_image_create(&im, "c0", 16 << 20) != NULL);
	EXPECT_EQ_INT(cowfs_mkfs(im.bdev, NULL), 0);
	EXPECT_EQ_INT(cowfs_mount(im.bdev, NULL, &fs), 0);
	char msg[200];
	EXPECT_EQ_INT(cowfs_check(fs, msg, sizeof(msg)), 0);
	EXPECT_EQ_INT(cowfs_unmount(fs), 0);
	ct_image_remove(&im);
}
TEST_MAIN()
