/*
 * cowfs-fuse: mount a cowfs image file with FUSE (libfuse3, low-level API)
 * through the same fs/ + iomap code the appliance runs.
 *
 *   cowfs-fuse IMAGE MOUNTPOINT [-f] [-o ro,direct_io,FUSE options...]
 *
 * -f stays in the foreground (tests); otherwise it becomes a daemon once
 * the image mounted.  -o ro mounts read-only; -o direct_io makes the
 * kernel send every read and write here (no kernel page cache: the
 * filesystem's own page cache serves them).  Unmount with
 * `fusermount3 -u MOUNTPOINT`: everything is committed before it exits.
 *
 * Node ids are inode numbers, except the root: FUSE's node 1 is cowfs
 * inode 256.  The kernel's lookup counts are not mirrored into the inode
 * cache: an inode is kept while open (cowfs_open/release), and a name
 * removed while only looked up makes later getattr calls say ENOENT.
 */
#define _GNU_SOURCE
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <fuse_lowlevel.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include "platform/host/platform_host.h"
#include "fs/vfs.h"
#include "tools/fuse_common.h"

#define MAX_IO (1u << 20)
#define TIMEOUT_S 1.0

struct cfuse {
	struct cowfs_mount *m;
	bool ro, direct_io;
};

static struct cfuse *cf(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static uint64_t to_ino(fuse_ino_t n)
{
	return n == FUSE_ROOT_ID ? CFS_ROOT_INO : n;
}

static fuse_ino_t to_node(uint64_t ino)
{
	return ino == CFS_ROOT_INO ? FUSE_ROOT_ID : ino;
}

static void to_stat(const struct cowfs_inode *in, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = to_node(in->ino);
	st->st_mode = in->mode;
	st->st_nlink = in->nlink;
	st->st_uid = in->uid;
	st->st_gid = in->gid;
	st->st_size = (off_t)in->size;
	st->st_blocks = (blkcnt_t)(in->blocks * 8);     /* 4 KiB blocks in 512-byte units */
	st->st_blksize = 4096;
	st->st_atim = (struct timespec){ (time_t)in->atime.sec, in->atime.nsec };
	st->st_mtim = (struct timespec){ (time_t)in->mtime.sec, in->mtime.nsec };
	st->st_ctim = (struct timespec){ (time_t)in->ctime.sec, in->ctime.nsec };
	st->st_rdev = (dev_t)in->rdev;
}

static void reply_entry(fuse_req_t req, int err, const struct cowfs_inode *in)
{
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	struct fuse_entry_param e = { .ino = to_node(in->ino), .generation = in->gen,
				      .attr_timeout = TIMEOUT_S, .entry_timeout = TIMEOUT_S };
	to_stat(in, &e.attr);
	fuse_reply_entry(req, &e);
}

static void op_init(void *ud, struct fuse_conn_info *conn)
{
	(void)ud;
	conn->max_write = MAX_IO;
	conn->max_read = MAX_IO;
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want &= ~(unsigned)FUSE_CAP_SPLICE_WRITE;
	/* open(O_TRUNC) then reaches us as a setattr of the size: with the
	 * capability on it would come as an open flag that must truncate. */
	conn->want &= ~(unsigned)FUSE_CAP_ATOMIC_O_TRUNC;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct cowfs_inode in;
	reply_entry(req, cowfs_lookup(cf(req)->m, to_ino(parent), name, strlen(name), &in), &in);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t n)
{
	(void)ino, (void)n;
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cowfs_inode in;
	struct stat st;
	(void)fi;
	int err = cowfs_getattr(cf(req)->m, to_ino(ino), &in);
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	to_stat(&in, &st);
	fuse_reply_attr(req, &st, TIMEOUT_S);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *a, int to_set, struct fuse_file_info *fi)
{
	struct cowfs_setattr sa = { 0 };
	struct cowfs_inode in;
	struct stat st;
	(void)fi;
	if (to_set & FUSE_SET_ATTR_MODE)
		sa.valid |= CFS_SET_MODE, sa.mode = a->st_mode & 07777;
	if (to_set & FUSE_SET_ATTR_UID)
		sa.valid |= CFS_SET_UID, sa.uid = a->st_uid;
	if (to_set & FUSE_SET_ATTR_GID)
		sa.valid |= CFS_SET_GID, sa.gid = a->st_gid;
	if (to_set & FUSE_SET_ATTR_SIZE)
		sa.valid |= CFS_SET_SIZE, sa.size = (uint64_t)a->st_size;
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		sa.valid |= CFS_SET_ATIME_NOW;
	else if (to_set & FUSE_SET_ATTR_ATIME)
		sa.valid |= CFS_SET_ATIME,
			sa.atime = (struct cowfs_time){ (uint64_t)a->st_atim.tv_sec, (uint32_t)a->st_atim.tv_nsec };
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		sa.valid |= CFS_SET_MTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		sa.valid |= CFS_SET_MTIME,
			sa.mtime = (struct cowfs_time){ (uint64_t)a->st_mtim.tv_sec, (uint32_t)a->st_mtim.tv_nsec };
	int err = cowfs_setattr(cf(req)->m, to_ino(ino), &sa, &in);
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	to_stat(&in, &st);
	fuse_reply_attr(req, &st, TIMEOUT_S);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[4096];
	size_t len;
	int err = cowfs_readlink(cf(req)->m, to_ino(ino), buf, sizeof(buf) - 1, &len);
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	buf[len < sizeof(buf) - 1 ? len : sizeof(buf) - 1] = 0;
	fuse_reply_readlink(req, buf);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct cowfs_inode in;
	const struct fuse_ctx *c = fuse_req_ctx(req);
	struct cowfs_mount *m = cf(req)->m;
	size_t len = strlen(name);
	if (S_ISREG(mode))
		reply_entry(req, cowfs_create(m, to_ino(parent), name, len, mode & 07777, c->uid, c->gid, &in), &in);
	else
		reply_entry(req, cowfs_mknod(m, to_ino(parent), name, len, mode, rdev, c->uid, c->gid, &in), &in);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct cowfs_inode in;
	const struct fuse_ctx *c = fuse_req_ctx(req);
	reply_entry(req, cowfs_mkdir(cf(req)->m, to_ino(parent), name, strlen(name), mode & 07777, c->uid, c->gid,
				     &in), &in);
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
	struct cowfs_inode in;
	const struct fuse_ctx *c = fuse_req_ctx(req);
	reply_entry(req, cowfs_symlink(cf(req)->m, to_ino(parent), name, strlen(name), target, strlen(target),
				       c->uid, c->gid, &in), &in);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *name)
{
	struct cowfs_inode in;
	reply_entry(req, cowfs_link(cf(req)->m, to_ino(ino), to_ino(newparent), name, strlen(name), &in), &in);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -cowfs_unlink(cf(req)->m, to_ino(parent), name, strlen(name)));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -cowfs_rmdir(cf(req)->m, to_ino(parent), name, strlen(name)));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	unsigned f = 0;
	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		fuse_reply_err(req, EINVAL);     /* RENAME_WHITEOUT: no overlay support */
		return;
	}
	if (flags & RENAME_NOREPLACE)
		f |= CFS_RENAME_NOREPLACE;
	if (flags & RENAME_EXCHANGE)
		f |= CFS_RENAME_EXCHANGE;
	fuse_reply_err(req, -cowfs_rename(cf(req)->m, to_ino(parent), name, strlen(name), to_ino(newparent), newname,
					  strlen(newname), f));
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int err = cowfs_open(cf(req)->m, to_ino(ino));
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	fi->direct_io = cf(req)->direct_io || (fi->flags & O_DIRECT);
	fi->keep_cache = !fi->direct_io;
	fuse_reply_open(req, fi);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
	struct cowfs_inode in;
	const struct fuse_ctx *c = fuse_req_ctx(req);
	struct cowfs_mount *m = cf(req)->m;
	int err = cowfs_create(m, to_ino(parent), name, strlen(name), mode & 07777, c->uid, c->gid, &in);
	if (!err)
		err = cowfs_open(m, in.ino);
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	fi->direct_io = cf(req)->direct_io || (fi->flags & O_DIRECT);
	struct fuse_entry_param e = { .ino = to_node(in.ino), .generation = in.gen, .attr_timeout = TIMEOUT_S,
				      .entry_timeout = TIMEOUT_S };
	to_stat(&in, &e.attr);
	if (fuse_reply_create(req, &e, fi))
		cowfs_release(m, in.ino);       /* the opener went away */
}

/* O_DIRECT reaches the filesystem's direct path when the request is
 * block-aligned (the kernel's buffer is ours to align: it is a copy). */
static unsigned io_flags(struct fuse_file_info *fi, uint64_t off, size_t len, const void *buf)
{
	if ((fi->flags & O_DIRECT) && !(off % 4096) && !(len % 4096) && !((uintptr_t)buf % 4096))
		return CFS_IO_DIRECT;
	return 0;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	void *buf;
	if (size > MAX_IO)
		size = MAX_IO;
	if (posix_memalign(&buf, 4096, size ? size : 1)) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	int64_t n = cowfs_read(cf(req)->m, to_ino(ino), (uint64_t)off, buf, size,
			       io_flags(fi, (uint64_t)off, size, buf));
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	unsigned fl = io_flags(fi, (uint64_t)off, size, data);
	if (fi->flags & O_DSYNC)
		fl |= CFS_IO_DSYNC;
	int64_t n = cowfs_write(cf(req)->m, to_ino(ino), (uint64_t)off, data, size, fl);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino, (void)fi;
	fuse_reply_err(req, 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	cowfs_release(cf(req)->m, to_ino(ino));
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)fi;
	fuse_reply_err(req, -cowfs_fsync(cf(req)->m, to_ino(ino), datasync != 0));
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino, (void)datasync, (void)fi;
	/* A directory's entries are durable with the next commit: make it now. */
	fuse_reply_err(req, -cowfs_vfs_sync(cf(req)->m));
}

/* ---- fallocate and lseek (fs/falloc.c) ---- */

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, struct fuse_file_info *fi)
{
	(void)fi;
	if (off < 0 || len <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	/* Collapse and insert are passed on for callers of this library that
	 * send them; Linux's FUSE client refuses both itself (EOPNOTSUPP)
	 * without asking, so a mount through the kernel never sees them. */
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE | FALLOC_FL_COLLAPSE_RANGE |
		     FALLOC_FL_INSERT_RANGE)) {
		fuse_reply_err(req, EOPNOTSUPP);      /* unshare, no-hide-stale: not supported */
		return;
	}
	unsigned cmode = (mode & FALLOC_FL_KEEP_SIZE ? CFS_FALLOC_KEEP_SIZE : 0) |
			 (mode & FALLOC_FL_PUNCH_HOLE ? CFS_FALLOC_PUNCH_HOLE : 0) |
			 (mode & FALLOC_FL_ZERO_RANGE ? CFS_FALLOC_ZERO_RANGE : 0) |
			 (mode & FALLOC_FL_COLLAPSE_RANGE ? CFS_FALLOC_COLLAPSE_RANGE : 0) |
			 (mode & FALLOC_FL_INSERT_RANGE ? CFS_FALLOC_INSERT_RANGE : 0);
	fuse_reply_err(req, -cowfs_fallocate(cf(req)->m, to_ino(ino), cmode, (uint64_t)off, (uint64_t)len));
}

/* The kernel asks only for SEEK_DATA and SEEK_HOLE; it does the rest. */
static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	(void)fi;
	uint64_t r;
	int data = fusec_seek_data(off, whence);
	int err = data < 0 ? data : cowfs_seek(cf(req)->m, to_ino(ino), (uint64_t)off, data ? CFS_SEEK_DATA : CFS_SEEK_HOLE, &r);
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_lseek(req, (off_t)r);
}

/* copy_file_range (cp --reflink=auto, cp of coreutils 9): a reflink of
 * block-aligned ranges, else a copy (cowfs_copy_range).  The kernel wrote
 * back the source's cached range and drops the destination's after the
 * call.  FICLONE / FICLONERANGE never reach a FUSE filesystem (the kernel
 * answers them itself), so cp --reflink=always gets EOPNOTSUPP. */
static void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, struct fuse_file_info *fi_in,
			       fuse_ino_t ino_out, off_t off_out, struct fuse_file_info *fi_out, size_t len, int flags)
{
	(void)fi_in, (void)fi_out;
	bool cloned;
	if (off_in < 0 || off_out < 0 || flags) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	int64_t n = cowfs_copy_range(cf(req)->m, to_ino(ino_in), (uint64_t)off_in, to_ino(ino_out), (uint64_t)off_out,
				     len, 0, &cloned);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

struct dirbuf {
	fuse_req_t req;
	char *buf;
	size_t size, used;
};

static int fill_dir(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type, uint64_t next_cookie)
{
	struct dirbuf *d = arg;
	char nm[CFS_NAME_MAX + 1];
	struct stat st = { .st_ino = to_node(ino), .st_mode = (mode_t)type << 12 };
	plat_memcpy(nm, name, len);
	nm[len] = 0;
	size_t n = fuse_add_direntry(d->req, d->buf + d->used, d->size - d->used, nm, &st, (off_t)next_cookie);
	if (n > d->size - d->used)
		return 1;               /* full: the next call resumes at this entry's cookie */
	d->used += n;
	return 0;
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	struct dirbuf d = { req, malloc(size), size, 0 };
	if (!d.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	int err = cowfs_readdir(cf(req)->m, to_ino(ino), (uint64_t)off, fill_dir, &d);
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_buf(req, d.buf, d.used);
	free(d.buf);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct cowfs_statfs s;
	(void)ino;
	int err = cowfs_statfs(cf(req)->m, &s);
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	struct statvfs v = { .f_bsize = s.block_size, .f_frsize = s.block_size, .f_blocks = s.total_blocks,
			     .f_bfree = s.free_blocks, .f_bavail = s.free_blocks, .f_files = s.inodes + s.free_blocks,
			     .f_ffree = s.free_blocks, .f_favail = s.free_blocks, .f_namemax = s.name_max };
	fuse_reply_statfs(req, &v);
}

/* ---- extended attributes (fs/xattr.c): size 0 asks for the size ---- */

struct xa_args { fuse_ino_t ino; const char *name; };

static int get_value(fuse_req_t req, void *buf, size_t size, size_t *len, const void *arg)
{
	const struct xa_args *a = arg;
	return cowfs_getxattr(cf(req)->m, to_ino(a->ino), a->name, strlen(a->name), buf, size, len);
}

static int get_names(fuse_req_t req, void *buf, size_t size, size_t *len, const void *arg)
{
	const struct xa_args *a = arg;
	return cowfs_listxattr(cf(req)->m, to_ino(a->ino), buf, size, len);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct xa_args a = { ino, name };
	fusec_reply_sized(req, size, get_value, &a);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
			int flags)
{
	_Static_assert(CFS_XATTR_CREATE == XATTR_CREATE && CFS_XATTR_REPLACE == XATTR_REPLACE, "xattr flags");
	int f = fusec_xattr_flags(flags);
	fuse_reply_err(req, f < 0 ? -f : -cowfs_setxattr(cf(req)->m, to_ino(ino), name, strlen(name), value, size,
							 (unsigned)f));
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct xa_args a = { ino, NULL };
	fusec_reply_sized(req, size, get_names, &a);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, -cowfs_removexattr(cf(req)->m, to_ino(ino), name, strlen(name)));
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init, .lookup = op_lookup, .forget = op_forget, .getattr = op_getattr, .setattr = op_setattr,
	.readlink = op_readlink, .mknod = op_mknod, .mkdir = op_mkdir, .symlink = op_symlink, .link = op_link,
	.unlink = op_unlink, .rmdir = op_rmdir, .rename = op_rename, .open = op_open, .create = op_create,
	.read = op_read, .write = op_write, .flush = op_flush, .release = op_release, .fsync = op_fsync,
	.readdir = op_readdir, .fsyncdir = op_fsyncdir, .statfs = op_statfs,
	.getxattr = op_getxattr, .setxattr = op_setxattr, .listxattr = op_listxattr, .removexattr = op_removexattr,
	.fallocate = op_fallocate, .lseek = op_lseek, .copy_file_range = op_copy_file_range,
};

/* ---- options ---- */

struct cfopts {
	int ro, direct_io, foreground, help;
	char *snapshot;
};

static const struct fuse_opt cf_opts[] = {
	{ "ro", offsetof(struct cfopts, ro), 1 },
	FUSE_OPT_KEY("ro", FUSE_OPT_KEY_KEEP),          /* and the kernel mount is read-only too */
	{ "direct_io", offsetof(struct cfopts, direct_io), 1 },
	{ "snapshot=%s", offsetof(struct cfopts, snapshot), 0 },
	{ "-f", offsetof(struct cfopts, foreground), 1 },
	{ "-h", offsetof(struct cfopts, help), 1 },
	{ "--help", offsetof(struct cfopts, help), 1 },
	FUSE_OPT_END
};

static int usage(void)
{
	fprintf(stderr, "usage: cowfs-fuse [--snapshot NAME] IMAGE MOUNTPOINT [-f] [-o ro,direct_io,snapshot=NAME,FUSE options]\n");
	return 2;
}

/* Read-only mounts are enforced by the filesystem (cowfs_mount_opts). */
static struct plat_bdev *open_image(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "cowfs-fuse: %s: not an image file\n", path);
		return NULL;
	}
	struct plat_bdev *b = plat_host_bdev_open(path, (uint64_t)st.st_size, 512, 2, false);
	if (!b)
		fprintf(stderr, "cowfs-fuse: %s: cannot open\n", path);
	return b;
}

int main(int argc, char **argv)
{
	struct cfopts o = { 0 };
	/* --snapshot NAME before the paths is -o snapshot=NAME. */
	char *snap_arg = NULL;
	if (argc >= 3 && strcmp(argv[1], "--snapshot") == 0) {
		snap_arg = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc < 3 || argv[1][0] == '-' || argv[2][0] == '-')
		return usage();
	/* The daemon changes to / before it opens the image again. */
	char image_abs[PATH_MAX];
	if (!realpath(argv[1], image_abs)) {
		fprintf(stderr, "cowfs-fuse: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	const char *image = image_abs, *mountpoint = argv[2];
	/* FUSE sees argv[0] and the options after the two paths. */
	argv[2] = argv[0];
	struct fuse_args args = FUSE_ARGS_INIT(argc - 2, argv + 2);
	if (fuse_opt_parse(&args, &o, cf_opts, NULL) || o.help)
		return usage();
	if (snap_arg)
		o.snapshot = snap_arg;
	char fsname[PATH_MAX + 128];
	snprintf(fsname, sizeof(fsname), "-ofsname=%s,subtype=cowfs,default_permissions,max_read=%u", image, MAX_IO);
	fuse_opt_add_arg(&args, fsname);
	if (o.snapshot) {               /* a snapshot is mounted as it was taken */
		o.ro = 1;
		fuse_opt_add_arg(&args, "-oro");
	}

	/* Mount check before any thread or fork, so errors reach the terminal. */
	struct plat_bdev *b = open_image(image);
	if (!b)
		return 1;
	struct cowfs *probe;
	struct cowfs_mount_opts ro = { .readonly = true };
	int err = cowfs_mount(b, &ro, &probe);
	if (err) {
		fprintf(stderr, "cowfs-fuse: %s: does not mount: %s\n", image, plat_strerror(err));
		return 1;
	}
	/* What fails after fuse_daemonize is said to nobody, and mount(8) has
	 * already returned 0: a read-only mount also needs the root directory,
	 * which images from before mkfs made it get at their first read-write
	 * mount. */
	struct cowfs_tree *t;
	uint64_t snap = 0;
	if (o.snapshot && (err = cowfs_snapshot_lookup(probe, CFS_TREE_FS, o.snapshot, strlen(o.snapshot), &snap)))
		fprintf(stderr, "cowfs-fuse: %s: no snapshot named \"%s\" (cowfs snapshot IMAGE list): %s\n", image,
			o.snapshot, plat_strerror(err));
	else if (o.ro && (err = cowfs_tree_open(probe, o.snapshot ? snap : CFS_TREE_FS, false, &t)))
		fprintf(stderr, "cowfs-fuse: %s: %s\n", image, err == -PLAT_ENOENT ?
			"a filesystem with no root directory yet (made by an older mkfs): mount it read-write once "
			"before read-only" : plat_strerror(err));
	cowfs_unmount(probe);
	plat_bdev_close(b);
	if (err)
		return 1;

	struct cfuse c = { .ro = o.ro, .direct_io = o.direct_io };
	struct fuse_session *se = fuse_session_new(&args, &ops, sizeof(ops), &c);
	if (!se)
		return 1;
	int ret = 1;
	if (fuse_set_signal_handlers(se))
		goto out_session;
	if (fuse_session_mount(se, mountpoint)) {
		fprintf(stderr, "cowfs-fuse: %s: cannot mount\n", mountpoint);
		goto out_signals;
	}
	fuse_daemonize(o.foreground);
	b = open_image(image);
	struct cowfs_vfs_opts vo = { .fs = { .readonly = o.ro != 0 }, .snapshot = o.snapshot };
	if (!b || (err = cowfs_vfs_mount(b, &vo, &c.m))) {
		fprintf(stderr, "cowfs-fuse: %s: mount failed: %s\n", image, b ? plat_strerror(err) : "no image");
		goto out_unmount;
	}
	struct fuse_loop_config *lc = fuse_loop_cfg_create();
	fuse_loop_cfg_set_max_threads(lc, 16);
	ret = fuse_session_loop_mt(se, lc) ? 1 : 0;
	fuse_loop_cfg_destroy(lc);
	err = cowfs_vfs_unmount(c.m);
	if (err) {
		fprintf(stderr, "cowfs-fuse: %s: unmount: %s\n", image, plat_strerror(err));
		ret = 1;
	}
out_unmount:
	if (b)
		plat_bdev_close(b);
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	return ret;
}
