/*
 * The apfp CLI's data commands (tools/apfp_cli.h): cat, get and put of
 * files and directory trees, over the bulk transfers of tools/apfp_xfer.h.
 * Trees: directories, regular files and symbolic links (recreated, never
 * followed); anything else is named on stderr, skipped, and makes the exit
 * status 6 once the rest is copied.
 */
#define _GNU_SOURCE
#include "tools/apfp_cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DEPTH 256

struct tree {
	struct cli *k;
	bool skipped;           /* something that is not a file, directory or link */
};

static int src_pread(void *arg, uint64_t off, void *buf, uint32_t len)
{
	int fd = *(int *)arg;
	for (uint32_t done = 0; done < len;) {
		ssize_t n = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ENODATA;   /* shorter than when we began */
		done += (uint32_t)n;
	}
	return 0;
}

/* All of buf at off, or appended when positional is false. */
static int write_full(int fd, uint64_t off, const void *buf, uint32_t len, bool positional)
{
	for (uint32_t done = 0; done < len;) {
		const uint8_t *p = (const uint8_t *)buf + done;
		ssize_t n = positional ? pwrite(fd, p, len - done, (off_t)(off + done)) : write(fd, p, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (uint32_t)n;
	}
	return 0;
}

static int sink_pwrite(void *arg, uint64_t off, const void *buf, uint32_t len)
{
	return write_full(*(int *)arg, off, buf, len, true);
}

/* In order (depth 1): stdout may be a pipe. */
static int sink_write(void *arg, uint64_t off, const void *buf, uint32_t len)
{
	return write_full(*(int *)arg, off, buf, len, false);
}

static int xfer_fail(struct cli *k, const struct apfp_xfer *x, const char *remote, const char *local, int rc)
{
	if (!x->local_error)
		return cli_fail(k, remote, rc);
	if (rc == -ENODATA) {
		fprintf(stderr, "apfp: %s: became shorter while being sent\n", local);
		return EX_NOTFOUND;
	}
	return cli_local(local, -rc);
}

int cmd_cat(struct cli *k, int argc, char **argv)
{
	struct apfp_obj o;
	struct apfp_xfer x = { .sink = sink_write, .depth = 1 };
	int fd = 1, rc;
	uint64_t got;
	(void)argc;
	x.arg = &fd;
	if ((rc = apfp_resolve(&k->c, argv[1], &o)))
		return cli_fail(k, argv[1], rc);
	if (o.attr.type != PROTO_T_REG)
		return cli_fail(k, argv[1], o.attr.type == PROTO_T_DIR ? -EISDIR : -EINVAL);
	if ((rc = apfp_xfer_get(&k->c, &o.fh, o.attr.size, &x, &got)))
		return xfer_fail(k, &x, argv[1], "stdout", rc);
	return EX_OK;
}

/* ---- get ------------------------------------------------------------------------- */
static int get_file(struct cli *k, const struct apfp_obj *o, const char *remote, const char *local)
{
	int fd = open(local, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), rc;
	if (fd < 0)
		return cli_local(local, errno);
	struct apfp_xfer x = { .sink = sink_pwrite, .arg = &fd, .depth = k->depth };
	struct cli_bar bar;
	uint64_t got = 0;
	cli_bar_start(k, &bar, remote, o->attr.size, &x);
	rc = apfp_xfer_get(&k->c, &o->fh, o->attr.size, &x, &got);
	cli_bar_end(&bar);
	if (rc) {
		close(fd);
		return xfer_fail(k, &x, remote, local, rc);
	}
	struct timespec ts[2] = { { (time_t)o->attr.atime.sec, o->attr.atime.nsec },
				  { (time_t)o->attr.mtime.sec, o->attr.mtime.nsec } };
	if (ftruncate(fd, (off_t)got) || fchmod(fd, o->attr.mode & 07777) || futimens(fd, ts)) {
		rc = errno;
		close(fd);
		return cli_local(local, rc);
	}
	return close(fd) ? cli_local(local, errno) : EX_OK;
}

static int get_link(struct cli *k, const struct apfp_obj *o, const char *remote, const char *local)
{
	char target[PROTO_TARGET_MAX + 1];
	struct stat st;
	int rc = apfp_readlink(&k->c, &o->fh, target, sizeof(target));
	if (rc)
		return cli_fail(k, remote, rc);
	if (!lstat(local, &st) && !S_ISDIR(st.st_mode) && unlink(local))
		return cli_local(local, errno);
	return symlink(target, local) ? cli_local(local, errno) : EX_OK;
}

static int get_any(struct tree *t, const struct apfp_obj *o, const char *remote, const char *local, unsigned depth)
{
	struct cli *k = t->k;
	if (o->attr.type == PROTO_T_REG)
		return get_file(k, o, remote, local);
	if (o->attr.type == PROTO_T_LNK)
		return get_link(k, o, remote, local);
	if (depth > MAX_DEPTH)
		return cli_fail(k, remote, -ELOOP);
	struct stat st;
	if (mkdir(local, 0700) && (errno != EEXIST || stat(local, &st) || !S_ISDIR(st.st_mode)))
		return cli_local(local, errno == EEXIST ? ENOTDIR : errno);
	struct cli_entries l;
	int rc = cli_list_dir(k, o, &l), ex = rc ? cli_fail(k, remote, rc) : EX_OK;
	for (size_t i = 0; !ex && i < l.n; i++) {
		char *r = NULL, *p = NULL;
		if (asprintf(&r, "%s/%s", remote, l.e[i].name) < 0 || asprintf(&p, "%s/%s", local, l.e[i].name) < 0)
			ex = cli_local("memory", ENOMEM);
		else
			ex = get_any(t, &l.e[i].o, r, p, depth + 1);
		free(r);
		free(p);
	}
	free(l.e);
	if (!ex && chmod(local, o->attr.mode & 07777))
		ex = cli_local(local, errno);
	return ex;
}

int cmd_get(struct cli *k, int argc, char **argv)
{
	bool f[128];
	char **op, name[256], *local = NULL;
	int nop, rc;
	struct apfp_obj o;
	struct stat st;
	struct tree t = { k, false };
	if ((rc = cli_opts(argc, argv, "r", f, &op, &nop)) || nop != 2)
		return rc ? rc : EX_USAGE;
	if ((rc = apfp_resolve(&k->c, op[0], &o)))
		return cli_fail(k, op[0], rc);
	if (o.attr.type == PROTO_T_DIR && !f['r']) {
		fprintf(stderr, "apfp: %s: is a directory (get -r copies trees)\n", op[0]);
		return EX_USAGE;
	}
	cli_basename(op[0], name);
	if (!stat(op[1], &st) && S_ISDIR(st.st_mode)) {
		if (asprintf(&local, "%s/%s", op[1], name) < 0)
			return cli_local("memory", ENOMEM);
	} else if (!(local = strdup(op[1]))) {
		return cli_local("memory", ENOMEM);
	}
	rc = get_any(&t, &o, op[0], local, 0);
	free(local);
	return rc;
}

/* ---- put ------------------------------------------------------------------------- */
static int put_file(struct cli *k, const struct apfp_obj *dir, const char *name, const char *local,
		    const char *remote)
{
	struct apfp_obj o;
	struct stat st;
	int fd = open(local, O_RDONLY | O_CLOEXEC), rc, ex = EX_OK;
	if (fd < 0)
		return cli_local(local, errno);
	if (fstat(fd, &st)) {
		ex = cli_local(local, errno);
		goto out;
	}
	if ((rc = apfp_create(&k->c, &dir->fh, name, st.st_mode & 07777, PROTO_CREATE_UNCHECKED, &o))) {
		ex = cli_fail(k, remote, rc);
		goto out;
	}
	struct proto_sattr sa = { .mask = PROTO_SA_SIZE, .size = 0 };
	if (o.attr.size && (rc = apfp_setattr(&k->c, &o.fh, &sa, NULL))) {
		ex = cli_fail(k, remote, rc);
		goto out;
	}
	struct apfp_xfer x = { .src = src_pread, .arg = &fd, .depth = k->depth };
	struct cli_bar bar;
	cli_bar_start(k, &bar, local, (uint64_t)st.st_size, &x);
	rc = apfp_xfer_put(&k->c, &o.fh, (uint64_t)st.st_size, &x);
	cli_bar_end(&bar);
	if (rc) {
		ex = xfer_fail(k, &x, remote, local, rc);
		goto out;
	}
	sa = (struct proto_sattr){ .mask = PROTO_SA_MTIME, .mtime = { st.st_mtim.tv_sec, (uint32_t)st.st_mtim.tv_nsec } };
	if ((rc = apfp_setattr(&k->c, &o.fh, &sa, NULL)))
		ex = cli_fail(k, remote, rc);
out:
	close(fd);
	return ex;
}

static int put_link(struct cli *k, const struct apfp_obj *dir, const char *name, const char *local,
		    const char *remote)
{
	char target[PROTO_TARGET_MAX + 2];
	struct apfp_obj o;
	ssize_t n = readlink(local, target, sizeof(target));
	if (n < 0)
		return cli_local(local, errno);
	if ((size_t)n >= sizeof(target) - 1)
		return cli_local(local, ENAMETOOLONG);
	target[n] = 0;
	int rc = apfp_symlink(&k->c, &dir->fh, name, target, &o);
	if (rc == -EEXIST && !(rc = apfp_lookup(&k->c, &dir->fh, name, &o))) {
		/* replace a link or file; never a directory */
		rc = o.attr.type == PROTO_T_DIR ? -EISDIR : apfp_remove(&k->c, &dir->fh, name, false);
		if (!rc)
			rc = apfp_symlink(&k->c, &dir->fh, name, target, &o);
	}
	return rc ? cli_fail(k, remote, rc) : EX_OK;
}

static int put_any(struct tree *t, const struct apfp_obj *dir, const char *name, const char *local,
		   const char *remote, unsigned depth)
{
	struct cli *k = t->k;
	struct stat st;
	if (lstat(local, &st))
		return cli_local(local, errno);
	if (S_ISREG(st.st_mode))
		return put_file(k, dir, name, local, remote);
	if (S_ISLNK(st.st_mode))
		return put_link(k, dir, name, local, remote);
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "apfp: %s: not a file, directory or symbolic link: skipped\n", local);
		t->skipped = true;
		return EX_OK;
	}
	if (depth > MAX_DEPTH)
		return cli_local(local, ELOOP);
	struct apfp_obj d;
	int rc = apfp_mkdir(&k->c, &dir->fh, name, st.st_mode & 07777, &d);
	if (rc == -EEXIST && !(rc = apfp_lookup(&k->c, &dir->fh, name, &d)) && d.attr.type != PROTO_T_DIR)
		rc = -ENOTDIR;
	if (rc)
		return cli_fail(k, remote, rc);
	DIR *dh = opendir(local);
	if (!dh)
		return cli_local(local, errno);
	int ex = EX_OK;
	for (struct dirent *e; !ex && (errno = 0, e = readdir(dh));) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char *r = NULL, *p = NULL;
		if (asprintf(&r, "%s/%s", remote, e->d_name) < 0 || asprintf(&p, "%s/%s", local, e->d_name) < 0)
			ex = cli_local("memory", ENOMEM);
		else
			ex = put_any(t, &d, e->d_name, p, r, depth + 1);
		free(r);
		free(p);
	}
	if (!ex && errno)
		ex = cli_local(local, errno);
	closedir(dh);
	return ex;
}

int cmd_put(struct cli *k, int argc, char **argv)
{
	bool f[128];
	char **op, src_name[256], name[256];
	int nop, rc;
	struct apfp_obj dir;
	struct stat st;
	struct tree t = { k, false };
	if ((rc = cli_opts(argc, argv, "r", f, &op, &nop)) || nop != 2)
		return rc ? rc : EX_USAGE;
	if (lstat(op[0], &st))
		return cli_local(op[0], errno);
	if (S_ISDIR(st.st_mode) && !f['r']) {
		fprintf(stderr, "apfp: %s: is a directory (put -r copies trees)\n", op[0]);
		return EX_USAGE;
	}
	cli_basename(op[0], src_name);
	if (!strcmp(src_name, ".") || !strcmp(src_name, "..") || !*src_name || !strcmp(src_name, "/")) {
		fprintf(stderr, "apfp: %s: name the directory itself (no '.', '..' or '/')\n", op[0]);
		return EX_USAGE;
	}
	if ((rc = cli_dest(k, op[1], src_name, &dir, name)))
		return cli_fail(k, op[1], rc);
	rc = put_any(&t, &dir, name, op[0], op[1], 0);
	return rc ? rc : t.skipped ? EX_NOTFOUND : EX_OK;
}
