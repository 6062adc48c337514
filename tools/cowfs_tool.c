/*
 * cowfs host tool: make, inspect and check a cowfs image file.
 *
 *   cowfs mkfs [-n NODE_SIZE] [-L LABEL] [-s SIZE] IMAGE
 *   cowfs info IMAGE
 *   cowfs check IMAGE          exit 0 clean, 4 errors found, 8 could not run (fsck(8))
 *
 * Installed also as mkfs.cowfs (same options as `cowfs mkfs`).  SIZE takes
 * K, M, G or T suffixes; the image file is created or grown to SIZE, never
 * shrunk.  Works through the same fs/ code as everything else, over the
 * host platform's file block device.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "platform/host/platform_host.h"
#include "fs/cowfs_int.h"
#include "fs/inode.h"

#define EXIT_USAGE 16     /* fsck(8): usage or syntax error */
#define EXIT_OPER 8       /* fsck(8): operational error */
#define EXIT_UNCORRECTED 4

/* One line naming the argument and what is wrong with it. */
static int bad_arg(const char *arg, const char *why)
{
	fprintf(stderr, "cowfs: %s: %s\n", arg, why);
	return EXIT_USAGE;
}

static int usage(void)
{
	fprintf(stderr, "usage: cowfs mkfs [-n 4096|8192|16384] [-L LABEL] [-s SIZE] IMAGE\n"
		"       cowfs info IMAGE\n"
		"       cowfs check IMAGE\n");
	return EXIT_USAGE;
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	uint64_t mul = 1;
	if (end == s)
		return -1;
	switch (*end) {
	case 'K': case 'k': mul = 1ull << 10; end++; break;
	case 'M': case 'm': mul = 1ull << 20; end++; break;
	case 'G': case 'g': mul = 1ull << 30; end++; break;
	case 'T': case 't': mul = 1ull << 40; end++; break;
	}
	if (*end || v > UINT64_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}

/* The image as a block device; size 0 = as it is. */
static struct plat_bdev *open_image(const char *path, uint64_t size, bool create)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		if (!create) {
			fprintf(stderr, "cowfs: %s: no such image file\n", path);
			return NULL;
		}
		st.st_size = 0;
	}
	if (size < (uint64_t)st.st_size)
		size = (uint64_t)st.st_size;
	if (size < CFS_MIN_BLOCKS * CFS_BLOCK_SIZE) {
		fprintf(stderr, "cowfs: %s: %llu bytes: an image needs at least %u (use -s)\n", path,
			(unsigned long long)size, CFS_MIN_BLOCKS * CFS_BLOCK_SIZE);
		return NULL;
	}
	struct plat_bdev *b = plat_host_bdev_open(path, size, 512, 2, false);
	if (!b)
		fprintf(stderr, "cowfs: %s: cannot open\n", path);
	return b;
}

static int cmd_mkfs(int argc, char **argv)
{
	struct cowfs_mkfs_opts o = { 0 };
	uint64_t size = 0;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *opt = argv[i];
		if (i + 1 >= argc)
			return bad_arg(opt, "needs a value");
		const char *v = argv[++i];
		if (!strcmp(opt, "-n")) {
			char *end;
			unsigned long n = strtoul(v, &end, 10);
			if (*end || (n != 4096 && n != 8192 && n != 16384))
				return bad_arg("-n", "node size must be 4096, 8192 or 16384");
			o.node_size = (uint32_t)n;
		} else if (!strcmp(opt, "-L")) {
			if (strlen(v) >= CFS_LABEL_SIZE)
				return bad_arg("-L", "label longer than 63 bytes");
			o.label = v;
		} else if (!strcmp(opt, "-s")) {
			if (parse_size(v, &size))
				return bad_arg("-s", "size must be a number with an optional K, M, G or T suffix");
		} else {
			return bad_arg(opt, "unknown option (mkfs takes -n, -L, -s)");
		}
	}
	if (i != argc - 1)
		return bad_arg("mkfs", "needs exactly one IMAGE after the options");
	struct plat_bdev *b = open_image(argv[i], size, true);
	if (!b)
		return EXIT_OPER;
	int err = cowfs_mkfs(b, &o);
	uint64_t blocks = plat_bdev_size(b) / CFS_BLOCK_SIZE;
	plat_bdev_close(b);
	if (err) {
		fprintf(stderr, "cowfs: mkfs %s: %s\n", argv[i], plat_strerror(err));
		return EXIT_OPER;
	}
	printf("cowfs: %s: %llu blocks of 4096, node size %u\n", argv[i], (unsigned long long)blocks,
	       o.node_size ? o.node_size : 16384);
	return 0;
}

struct ns_ctx { struct cowfs *fs; char *msg; size_t msglen; int err; };

static int ns_one(void *arg, const struct cowfs_subvol_info *si)
{
	struct ns_ctx *c = arg;
	struct cowfs_tree *t;
	struct cowfs_inode root;
	char sub[900];
	int err = cowfs_tree_open(c->fs, si->id, false, &t);
	if (!err && cowfs_inode_read(t, CFS_ROOT_INO, &root) == -PLAT_ENOENT)
		return 0;   /* a tree without a namespace (no root directory yet) */
	if (!err)
		err = cowfs_check_namespace(t, sub, sizeof(sub), NULL);
	if (err) {
		snprintf(c->msg, c->msglen, "subvolume %llu: namespace: %s", (unsigned long long)si->id,
			 err == -PLAT_EIO ? sub : plat_strerror(err));
		c->err = err;
		return 1;
	}
	return 0;
}

/* The namespace rules in every subvolume that has a root directory. */
static int check_namespaces(struct cowfs *fs, char *msg, size_t msglen)
{
	struct ns_ctx c = { fs, msg, msglen, 0 };
	int err = cowfs_subvol_list(fs, ns_one, &c);
	return c.err ? c.err : err < 0 ? err : 0;
}

static int cmd_info_check(int argc, char **argv, bool check)
{
	if (argc != 2)
		return bad_arg(argv[0], "needs exactly one IMAGE");
	struct plat_bdev *b = open_image(argv[1], 0, false);
	if (!b)
		return EXIT_OPER;
	struct cowfs *fs;
	struct cowfs_mount_opts mo = { .readonly = true };
	int err = cowfs_mount(b, &mo, &fs);
	if (err) {
		fprintf(stderr, "cowfs: %s: does not mount: %s\n", argv[1], plat_strerror(err));
		plat_bdev_close(b);
		return check ? EXIT_UNCORRECTED : EXIT_OPER;
	}
	struct cowfs_info in;
	cowfs_info(fs, &in);
	int ret = 0;
	if (check) {
		char msg[1024];
		err = cowfs_check(fs, msg, sizeof(msg));
		if (!err)
			err = check_namespaces(fs, msg, sizeof(msg));
		if (err) {
			printf("cowfs: %s: %s\n", argv[1], msg);
			ret = EXIT_UNCORRECTED;
		} else {
			printf("cowfs: %s: clean, commit %llu, %llu of %llu blocks used\n", argv[1],
			       (unsigned long long)in.committed_gen, (unsigned long long)in.used_blocks,
			       (unsigned long long)in.total_blocks);
		}
	} else {
		printf("label=%s commit=%llu blocks=%llu used=%llu node_size=%u fsid=", fs->label,
		       (unsigned long long)in.committed_gen, (unsigned long long)in.total_blocks,
		       (unsigned long long)in.used_blocks, in.node_size);
		for (unsigned i = 0; i < CFS_FSID_SIZE; i++)
			printf("%02x", fs->fsid[i]);
		printf("\n");
	}
	cowfs_unmount(fs);
	plat_bdev_close(b);
	return ret;
}

int cowfs_tool(int argc, char **argv)
{
	const char *prog = strrchr(argv[0], '/');
	prog = prog ? prog + 1 : argv[0];
	if (!strcmp(prog, "mkfs.cowfs"))
		return cmd_mkfs(argc, argv);
	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "mkfs"))
		return cmd_mkfs(argc - 1, argv + 1);
	if (!strcmp(argv[1], "info"))
		return cmd_info_check(argc - 1, argv + 1, false);
	if (!strcmp(argv[1], "check"))
		return cmd_info_check(argc - 1, argv + 1, true);
	return bad_arg(argv[1], "unknown command (mkfs, info, check)");
}

#ifndef COWFS_TOOL_TEST
int main(int argc, char **argv)
{
	return cowfs_tool(argc, argv);
}
#endif
