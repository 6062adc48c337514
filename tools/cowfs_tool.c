/*
 * cowfs host tool: make, inspect and check a cowfs image file.
 *
 *   cowfs mkfs [-n NODE_SIZE] [-L LABEL] [-s SIZE] IMAGE
 *   cowfs info IMAGE
 *   cowfs check [--repair] IMAGE   exit 0 clean, 1 errors corrected, 4 errors left,
 *                                  8 could not run (fsck(8))
 *   cowfs scrub IMAGE              read back and verify everything; exit 0 or 4
 *   cowfs snapshot IMAGE list | create NAME | clone NAME | delete NAME
 *   cowfs IMAGE DIR [-o OPTIONS]   mount it with cowfs-fuse (below)
 *
 * Installed also as mkfs.cowfs (same options as `cowfs mkfs`) and
 * fsck.cowfs (`fsck.cowfs [-y|--repair] IMAGE`).  SIZE takes
 * K, M, G or T suffixes; the image file is created or grown to SIZE, never
 * shrunk.  Works through the same fs/ code as everything else, over the
 * host platform's file block device.
 *
 * `mount -t fuse.cowfs IMAGE DIR` (and fstab's `IMAGE DIR fuse.cowfs ...`)
 * has mount.fuse3 run `cowfs IMAGE DIR -o OPTIONS`: called so, with DIR a
 * directory, the tool hands its arguments to cowfs-fuse, taken from the
 * folder the tool itself lives in, else from PATH.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>
#include "platform/host/platform_host.h"
#include "fs/cowfs_int.h"
#include "fs/inode.h"

#define EXIT_USAGE 16     /* fsck(8): usage or syntax error */
#define EXIT_OPER 8       /* fsck(8): operational error */
#define EXIT_UNCORRECTED 4
#define EXIT_CORRECTED 1

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
		"       cowfs check [--repair] IMAGE\n"
		"       cowfs scrub IMAGE\n"
		"       cowfs snapshot IMAGE list|create NAME|clone NAME|delete NAME\n"
		"       cowfs IMAGE DIR [-o OPTIONS]   (mount with cowfs-fuse; mount -t fuse.cowfs IMAGE DIR)\n");
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

static void print_line(void *arg, const char *line)
{
	printf("cowfs: %s: %s\n", (const char *)arg, line);
}

struct nsr_ctx { struct cowfs *fs; const char *image; unsigned fixed; int err; };

static int nsr_one(void *arg, const struct cowfs_subvol_info *si)
{
	struct nsr_ctx *c = arg;
	struct cowfs_tree *t;
	struct cowfs_inode root;
	unsigned n = 0;
	int err = cowfs_tree_open(c->fs, si->id, false, &t);
	if (!err && (si->readonly || cowfs_inode_read(t, CFS_ROOT_INO, &root) == -PLAT_ENOENT))
		return 0;   /* a read-only snapshot keeps its state; a tree without a namespace */
	if (!err)
		err = cowfs_repair_namespace(t, print_line, (void *)c->image, &n);
	c->fixed += n;
	return err ? (c->err = err) : 0;
}

/* The namespace fixes of every writable subvolume, committed. */
static int repair_namespaces(struct cowfs *fs, const char *image, unsigned *fixed)
{
	struct nsr_ctx c = { fs, image, 0, 0 };
	int err = cowfs_subvol_list(fs, nsr_one, &c);
	*fixed += c.fixed;
	if (c.err || err < 0)
		return c.err ? c.err : err;
	return c.fixed ? cowfs_commit(fs) : 0;
}

/* check --repair: check, repair what is safe, check again. */
static int cmd_repair(const char *image)
{
	struct plat_bdev *b = open_image(image, 0, false);
	struct cowfs *fs;
	char msg[1024];
	unsigned fixed = 0;
	if (!b)
		return EXIT_OPER;
	int err = cowfs_mount(b, NULL, &fs);
	if (err) {
		fprintf(stderr, "cowfs: %s: does not mount: %s (not repairable here)\n", image, plat_strerror(err));
		plat_bdev_close(b);
		return EXIT_UNCORRECTED;
	}
	int ret = 0;
	bool structure = cowfs_check(fs, msg, sizeof(msg)) != 0;
	if (structure || check_namespaces(fs, msg, sizeof(msg))) {
		printf("cowfs: %s: %s\n", image, msg);
		err = structure ? cowfs_repair(fs, print_line, (void *)image, &fixed) : 0;
		if (!err && !cowfs_check(fs, msg, sizeof(msg)))
			err = repair_namespaces(fs, image, &fixed);
		if (!err && !cowfs_check(fs, msg, sizeof(msg)) && !check_namespaces(fs, msg, sizeof(msg))) {
			printf("cowfs: %s: %u problems corrected; clean now\n", image, fixed);
			ret = EXIT_CORRECTED;
		} else {
			printf("cowfs: %s: errors left: %s\n", image, err ? plat_strerror(err) : msg);
			ret = EXIT_UNCORRECTED;
		}
	}
	/* A last guard: namespace damage left (two names of a directory, a
	 * loop of "..") must never be called clean. */
	if (ret != EXIT_UNCORRECTED && check_namespaces(fs, msg, sizeof(msg))) {
		printf("cowfs: %s: errors left (not repaired): %s\n", image, msg);
		ret = EXIT_UNCORRECTED;
	} else if (!ret) {
		printf("cowfs: %s: clean\n", image);
	}
	if (cowfs_unmount(fs) && ret != EXIT_UNCORRECTED)
		ret = EXIT_OPER;
	plat_bdev_close(b);
	return ret;
}

static void scrub_progress(void *arg, uint64_t done, uint64_t total)
{
	(void)arg;
	if (isatty(2))
		fprintf(stderr, "\rscrub: %llu of about %llu blocks", (unsigned long long)done,
			(unsigned long long)total);
}

static int cmd_scrub(int argc, char **argv)
{
	if (argc != 2)
		return bad_arg(argv[0], "needs exactly one IMAGE");
	struct plat_bdev *b = open_image(argv[1], 0, false);
	struct cowfs *fs;
	struct cowfs_mount_opts mo = { .readonly = true };
	struct cowfs_scrub_stats st;
	if (!b)
		return EXIT_OPER;
	int err = cowfs_mount(b, &mo, &fs);
	if (!err) {
		err = cowfs_scrub(fs, &st, print_line, scrub_progress, argv[1]);
		if (isatty(2))
			fprintf(stderr, "\n");
		cowfs_unmount(fs);
	}
	plat_bdev_close(b);
	if (err) {
		fprintf(stderr, "cowfs: %s: scrub could not run: %s\n", argv[1], plat_strerror(err));
		return EXIT_OPER;
	}
	char line[512];
	cowfs_scrub_summary(&st, line, sizeof(line));
	printf("cowfs: %s: scrub %s\n", argv[1], line);
	return cowfs_scrub_errors(&st) ? EXIT_UNCORRECTED : 0;
}

static int snap_print(void *arg, const struct cowfs_subvol_info *si)
{
	(void)arg;
	if (si->parent == CFS_TREE_FS)
		printf("%-24s %-9s tree %llu\n", si->name[0] ? si->name : "(unnamed)",
		       si->readonly ? "snapshot" : "clone", (unsigned long long)si->id);
	return 0;
}

static int cmd_snapshot(int argc, char **argv)
{
	bool list = argc == 3 && !strcmp(argv[2], "list");
	bool named = argc == 4 && (!strcmp(argv[2], "create") || !strcmp(argv[2], "clone") ||
				   !strcmp(argv[2], "delete"));
	if (!list && !named)
		return bad_arg("snapshot", "usage: snapshot IMAGE list|create NAME|clone NAME|delete NAME");
	struct plat_bdev *b = open_image(argv[1], 0, false);
	struct cowfs *fs;
	struct cowfs_mount_opts mo = { .readonly = list };
	uint64_t id;
	if (!b)
		return EXIT_OPER;
	int err = cowfs_mount(b, &mo, &fs);
	if (!err) {
		const char *name = named ? argv[3] : "";
		size_t len = strlen(name);
		struct cowfs_tree *t;
		if (list)
			err = cowfs_subvol_list(fs, snap_print, NULL);
		else if ((err = cowfs_tree_open(fs, CFS_TREE_FS, true, &t)))
			;                    /* the default subvolume (made on first use) */
		else if (!strcmp(argv[2], "delete"))
			err = cowfs_snapshot_delete_named(fs, CFS_TREE_FS, name, len);
		else
			err = cowfs_snapshot_named(fs, CFS_TREE_FS, name, len, !strcmp(argv[2], "create"), &id);
		int uerr = cowfs_unmount(fs);
		if (!err)
			err = uerr;
	}
	plat_bdev_close(b);
	if (err) {
		fprintf(stderr, "cowfs: %s: snapshot %s%s%s: %s\n", argv[1], argv[2], named ? " " : "",
			named ? argv[3] : "", plat_strerror(err));
		return EXIT_OPER;
	}
	return 0;
}

/* mount.fuse3's call: argv[1] the image, argv[2] the mount point. */
static int mount_helper(char **argv)
{
	char self[PATH_MAX], fuse[PATH_MAX + 16];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = 0;
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			snprintf(fuse, sizeof(fuse), "%s/cowfs-fuse", self);
			if (access(fuse, X_OK) == 0) {
				argv[0] = fuse;
				execv(fuse, argv);
			}
		}
	}
	argv[0] = (char *)"cowfs-fuse";
	execvp("cowfs-fuse", argv);
	fprintf(stderr, "cowfs: cannot run cowfs-fuse to mount %s on %s: %s\n", argv[1], argv[2], strerror(errno));
	return EXIT_OPER;
}

int cowfs_tool(int argc, char **argv)
{
	const char *prog = strrchr(argv[0], '/');
	prog = prog ? prog + 1 : argv[0];
	if (!strcmp(prog, "mkfs.cowfs"))
		return cmd_mkfs(argc, argv);
	if (!strcmp(prog, "fsck.cowfs")) {
		bool repair = argc == 3 && (!strcmp(argv[1], "-y") || !strcmp(argv[1], "--repair"));
		if (argc != 2 && !repair)
			return bad_arg(prog, "usage: fsck.cowfs [-y|--repair] IMAGE");
		return repair ? cmd_repair(argv[2]) : cmd_info_check(argc, argv, true);
	}
	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "mkfs"))
		return cmd_mkfs(argc - 1, argv + 1);
	if (!strcmp(argv[1], "info"))
		return cmd_info_check(argc - 1, argv + 1, false);
	if (!strcmp(argv[1], "check") && argc == 4 && !strcmp(argv[2], "--repair"))
		return cmd_repair(argv[3]);
	if (!strcmp(argv[1], "check"))
		return cmd_info_check(argc - 1, argv + 1, true);
	if (!strcmp(argv[1], "scrub"))
		return cmd_scrub(argc - 1, argv + 1);
	if (!strcmp(argv[1], "snapshot"))
		return cmd_snapshot(argc - 1, argv + 1);
	struct stat st;
	if (argc >= 3 && stat(argv[2], &st) == 0 && S_ISDIR(st.st_mode))
		return mount_helper(argv);
	return bad_arg(argv[1], "unknown command (mkfs, info, check, scrub, snapshot, or IMAGE DIR to mount)");
}

#ifndef COWFS_TOOL_TEST
int main(int argc, char **argv)
{
	return cowfs_tool(argc, argv);
}
#endif
