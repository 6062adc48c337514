/*
 * Path resolution for the shell: "/MOUNT/a/b" -> (mount, inode).
 *
 * The first component names a mount; the rest is looked up one name at a
 * time with cowfs_lookup().  Symbolic links in the middle of a path are
 * followed (relative ones from the directory holding them, absolute ones
 * from the top, possibly into another mount), at most FSK_MAX_LINKS of
 * them per resolution, so a loop ends in -ELOOP.
 */
#include "fs/kernel/mounts.h"
#include "kernel/errno.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/mm.h"

#define FSK_MAX_LINKS 8

struct fsk_mount *fsk_get_locked(const char *name);

struct walk {
	char buf[FSK_PATH_MAX];
	char tmp[FSK_PATH_MAX];
};

static int walk(struct walk *w, const char *path, bool nofollow, bool parent, struct fsk_path *out)
{
	unsigned links = 0;
	struct cowfs_inode attr;
	const char *p;
	uint64_t dir;
	int err;

	out->fm = NULL;
	if (path[0] != '/')
		return -EINVAL;
	if (strlen(path) >= sizeof(w->buf))
		return -ENAMETOOLONG;
	strlcpy(w->buf, path, sizeof(w->buf));
restart:
	/* w->buf is absolute: take the mount. */
	p = w->buf;
	while (*p == '/')
		p++;
	{
		char name[64];
		size_t n = 0;
		while (p[n] && p[n] != '/')
			n++;
		if (n == 0 || n >= sizeof(name))
			return n ? -ENOENT : -EINVAL;
		memcpy(name, p, n);
		name[n] = 0;
		fsk_put(out->fm);
		out->fm = fsk_get_locked(name);
		if (!out->fm)
			return -ENOENT;
		p += n;
	}
	dir = CFS_ROOT_INO;
	err = cowfs_getattr(out->fm->m, dir, &attr);
	if (err)
		goto fail;
	for (;;) {
		while (*p == '/')
			p++;
		if (!*p) {
			if (parent) {
				err = -EINVAL;        /* no last component: the mount itself */
				goto fail;
			}
			out->ino = dir;
			out->attr = attr;
			return 0;
		}
		const char *e = p;
		while (*e && *e != '/')
			e++;
		const char *next = e;
		while (*next == '/')
			next++;
		bool last = !*next;
		size_t len = (size_t)(e - p);
		if (len > CFS_NAME_MAX) {
			err = -ENAMETOOLONG;
			goto fail;
		}
		if (parent && last) {
			if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.')) {
				err = -EINVAL;
				goto fail;
			}
			out->ino = dir;
			out->attr = attr;
			memcpy(out->name, p, len);
			out->name[len] = 0;
			out->namelen = len;
			return 0;
		}
		struct cowfs_inode child;
		err = cowfs_lookup(out->fm->m, dir, p, len, &child);
		if (err)
			goto fail;
		if (CFS_S_ISLNK(child.mode) && !(last && nofollow)) {
			size_t tlen;
			if (++links > FSK_MAX_LINKS) {
				err = -ELOOP;
				goto fail;
			}
			err = cowfs_readlink(out->fm->m, child.ino, w->tmp, sizeof(w->tmp) - 1, &tlen);
			if (err)
				goto fail;
			if (tlen + 1 + strlen(next) + 1 > sizeof(w->tmp)) {
				err = -ENAMETOOLONG;
				goto fail;
			}
			w->tmp[tlen] = '/';
			strlcpy(w->tmp + tlen + 1, next, sizeof(w->tmp) - tlen - 1);
			strlcpy(w->buf, w->tmp, sizeof(w->buf));
			if (w->buf[0] == '/')
				goto restart;
			p = w->buf;              /* relative: on from the same directory */
			continue;
		}
		if (!last && !CFS_S_ISDIR(child.mode)) {
			err = -ENOTDIR;
			goto fail;
		}
		dir = child.ino;
		attr = child;
		p = next;
	}
fail:
	fsk_put(out->fm);
	out->fm = NULL;
	return err;
}

static int walk_alloc(const char *path, bool nofollow, bool parent, struct fsk_path *out)
{
	struct walk *w = kmalloc(sizeof(*w));     /* 2 KiB: not on a 16 KiB stack */
	if (!w)
		return -ENOMEM;
	int err = walk(w, path, nofollow, parent, out);
	kfree(w);
	return err;
}

int fsk_resolve(const char *path, bool nofollow, struct fsk_path *out)
{
	return walk_alloc(path, nofollow, false, out);
}

int fsk_resolve_parent(const char *path, struct fsk_path *out)
{
	return walk_alloc(path, false, true, out);
}

int fsk_fail(const char *cmd, const char *path, int err)
{
	const char *why = strerror(err);
	if (err == -EINVAL && path && path[0] != '/')
		why = "paths start with /MOUNT (see df)";
	kprintf("%s: %s: %s\n", cmd, path ? path : "", why);
	return 1;
}
