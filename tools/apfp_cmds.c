/*
 * The apfp CLI's namespace commands (tools/apfp_cli.h): ls, stat, mkdir,
 * rm, mv, ln, df, snapshot, clone.
 */
#define _GNU_SOURCE
#include "tools/apfp_cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void cli_basename(const char *path, char name[256])
{
	size_t len = strlen(path);
	while (len > 1 && path[len - 1] == '/')
		len--;
	size_t start = len;
	while (start && path[start - 1] != '/')
		start--;
	size_t n = len - start > 255 ? 255 : len - start;
	memcpy(name, path + start, n);
	name[n] = 0;
}

int cli_dest(struct cli *k, const char *path, const char *src_name, struct apfp_obj *dir, char name[256])
{
	int rc = apfp_resolve(&k->c, path, dir);
	if (!rc && dir->attr.type == PROTO_T_DIR) {
		snprintf(name, 256, "%s", src_name);
		return 0;
	}
	if (rc && rc != -ENOENT)
		return rc;
	return apfp_resolve_parent(&k->c, path, dir, name);
}

static const char *type_name(uint8_t t)
{
	static const char *const names[] = { [PROTO_T_REG] = "file", [PROTO_T_DIR] = "dir", [PROTO_T_LNK] = "symlink",
		[PROTO_T_BLK] = "blockdev", [PROTO_T_CHR] = "chardev", [PROTO_T_SOCK] = "socket", [PROTO_T_FIFO] = "fifo" };
	return t <= PROTO_T_FIFO && names[t] ? names[t] : "file";
}

static bool is_dev(const struct proto_attr *a)
{
	return a->type == PROTO_T_BLK || a->type == PROTO_T_CHR;
}

/* ls -l's size column: a device's "major, minor" as ls(1) shows it. */
static void size_string(const struct proto_attr *a, char out[24])
{
	if (is_dev(a))
		snprintf(out, 24, "%u, %u", a->rdev_major, a->rdev_minor);
	else
		snprintf(out, 24, "%llu", (unsigned long long)a->size);
}

static void mode_string(const struct proto_attr *a, char out[11])
{
	static const char rwx[] = "rwxrwxrwx", type[] = "?-dlbcsp";      /* indexed by PROTO_T_* */
	out[0] = a->type <= PROTO_T_FIFO ? type[a->type] : '?';
	for (int i = 0; i < 9; i++)
		out[1 + i] = a->mode & (0400u >> i) ? rwx[i] : '-';
	out[10] = 0;
}

static void time_string(struct proto_time t, char *out, size_t cap)
{
	time_t s = (time_t)t.sec;
	struct tm tm;
	if (!gmtime_r(&s, &tm) || !strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(out, cap, "%lld", (long long)t.sec);
}

static void json_attr(const char *name, const struct proto_attr *a, const char *target)
{
	printf("{\"name\":");
	cli_json_str(stdout, name);
	if (is_dev(a))
		printf(",\"rdev_major\":%u,\"rdev_minor\":%u", a->rdev_major, a->rdev_minor);
	printf(",\"type\":\"%s\",\"mode\":%u,\"nlink\":%u,\"uid\":%u,\"gid\":%u,\"size\":%llu,\"used\":%llu,"
	       "\"ino\":%llu,\"gen\":%u,\"fsid\":%llu,\"atime\":%lld.%09u,\"mtime\":%lld.%09u,\"ctime\":%lld.%09u,"
	       "\"btime\":%lld.%09u",
	       type_name(a->type), a->mode, a->nlink, a->uid, a->gid, (unsigned long long)a->size,
	       (unsigned long long)a->used, (unsigned long long)a->ino, a->gen, (unsigned long long)a->fsid,
	       (long long)a->atime.sec, a->atime.nsec, (long long)a->mtime.sec, a->mtime.nsec,
	       (long long)a->ctime.sec, a->ctime.nsec, (long long)a->btime.sec, a->btime.nsec);
	if (target) {
		printf(",\"target\":");
		cli_json_str(stdout, target);
	}
	printf("}");
}

/* ---- ls ----------------------------------------------------------------------- */

static int collect(void *arg, const char *name, const struct apfp_obj *o)
{
	struct cli_entries *l = arg;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct cli_entry *n = realloc(l->e, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		l->e = n;
		l->cap = cap;
	}
	snprintf(l->e[l->n].name, sizeof(l->e[l->n].name), "%s", name);
	l->e[l->n++].o = *o;
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct cli_entry *)a)->name, ((const struct cli_entry *)b)->name);
}

int cli_list_dir(struct cli *k, const struct apfp_obj *dir, struct cli_entries *l)
{
	memset(l, 0, sizeof(*l));
	int rc = apfp_readdir(&k->c, &dir->fh, collect, l);
	if (!rc && l->n)
		qsort(l->e, l->n, sizeof(*l->e), by_name);
	return rc;
}

int cmd_ls(struct cli *k, int argc, char **argv)
{
	bool f[128];
	char **op;
	int nop, rc;
	if ((rc = cli_opts(argc, argv, "l", f, &op, &nop)) || nop != 1)
		return rc ? rc : EX_USAGE;
	struct apfp_obj o;
	struct cli_entries l = { 0 };
	if ((rc = apfp_resolve(&k->c, op[0], &o)))
		return cli_fail(k, op[0], rc);
	if (o.attr.type == PROTO_T_DIR) {
		if ((rc = cli_list_dir(k, &o, &l))) {
			free(l.e);
			return cli_fail(k, op[0], rc);
		}
	} else {
		l.e = calloc(1, sizeof(*l.e));
		if (!l.e)
			return cli_local("memory", ENOMEM);
		cli_basename(op[0], l.e[0].name);
		l.e[0].o = o;
		l.n = 1;
	}
	if (k->json)
		printf("[");
	for (size_t i = 0; i < l.n; i++) {
		const struct cli_entry *e = &l.e[i];
		char target[PROTO_TARGET_MAX + 1] = "";
		if (e->o.attr.type == PROTO_T_LNK && (f['l'] || k->json) &&
		    (rc = apfp_readlink(&k->c, &e->o.fh, target, sizeof(target)))) {
			free(l.e);
			return cli_fail(k, e->name, rc);
		}
		if (k->json) {
			if (i)
				printf(",");
			json_attr(e->name, &e->o.attr, e->o.attr.type == PROTO_T_LNK ? target : NULL);
		} else if (f['l']) {
			char mode[11], when[32], size[24];
			mode_string(&e->o.attr, mode);
			size_string(&e->o.attr, size);
			time_string(e->o.attr.mtime, when, sizeof(when));
			printf("%s %3u %5u %5u %12s %s %s%s%s\n", mode, e->o.attr.nlink, e->o.attr.uid, e->o.attr.gid,
			       size, when, e->name, *target ? " -> " : "", target);
		} else {
			printf("%s\n", e->name);
		}
	}
	if (k->json)
		printf("]\n");
	free(l.e);
	return EX_OK;
}

int cmd_stat(struct cli *k, int argc, char **argv)
{
	struct apfp_obj o;
	char target[PROTO_TARGET_MAX + 1] = "", name[256];
	int rc;
	(void)argc;
	if ((rc = apfp_resolve(&k->c, argv[1], &o)))
		return cli_fail(k, argv[1], rc);
	if (o.attr.type == PROTO_T_LNK && (rc = apfp_readlink(&k->c, &o.fh, target, sizeof(target))))
		return cli_fail(k, argv[1], rc);
	const struct proto_attr *a = &o.attr;
	if (k->json) {
		cli_basename(argv[1], name);
		json_attr(name, a, a->type == PROTO_T_LNK ? target : NULL);
		printf("\n");
		return EX_OK;
	}
	char mode[11], t[4][32];
	mode_string(a, mode);
	time_string(a->atime, t[0], sizeof(t[0]));
	time_string(a->mtime, t[1], sizeof(t[1]));
	time_string(a->ctime, t[2], sizeof(t[2]));
	time_string(a->btime, t[3], sizeof(t[3]));
	printf("  path: %s%s%s\n  type: %s\n  size: %llu  used: %llu\n  mode: %04o (%s)  links: %u  uid: %u  gid: %u\n"
	       " inode: %llu  generation: %u  fsid: %016llx  change: %llu\naccess: %s.%09u UTC\nmodify: %s.%09u UTC\n"
	       "change: %s.%09u UTC\n birth: %s.%09u UTC\n",
	       argv[1], *target ? " -> " : "", target, type_name(a->type), (unsigned long long)a->size,
	       (unsigned long long)a->used, a->mode, mode, a->nlink, a->uid, a->gid, (unsigned long long)a->ino, a->gen,
	       (unsigned long long)a->fsid, (unsigned long long)a->change, t[0], a->atime.nsec, t[1], a->mtime.nsec,
	       t[2], a->ctime.nsec, t[3], a->btime.nsec);
	if (is_dev(a))
		printf("device: %u, %u (major, minor)\n", a->rdev_major, a->rdev_minor);
	return EX_OK;
}

/* ---- mkdir, rm, mv, ln ------------------------------------------------------------ */
static int mkdir_p(struct cli *k, const char *path)
{
	char exp[256], comp[256];
	const char *p = path + strspn(path, "/");
	size_t n = strcspn(p, "/");
	struct apfp_obj cur;
	int rc;
	if (!n || n > 255)
		return cli_fail(k, path, -EINVAL);
	memcpy(exp, p, n);
	exp[n] = 0;
	if ((rc = apfp_resolve(&k->c, exp, &cur)))
		return cli_fail(k, exp, rc);
	for (p += n; *p;) {
		p += strspn(p, "/");
		n = strcspn(p, "/");
		if (!n)
			break;
		if (n > 255)
			return cli_fail(k, path, -ENAMETOOLONG);
		memcpy(comp, p, n);
		comp[n] = 0;
		p += n;
		if (!strcmp(comp, "."))
			continue;
		struct apfp_obj next;
		rc = apfp_lookup(&k->c, &cur.fh, comp, &next);
		if (rc == -ENOENT)
			rc = apfp_mkdir(&k->c, &cur.fh, comp, 0755, &next);
		if (!rc && next.attr.type != PROTO_T_DIR)
			rc = -ENOTDIR;
		if (rc)
			return cli_fail(k, path, rc);
		cur = next;
	}
	return EX_OK;
}

int cmd_mkdir(struct cli *k, int argc, char **argv)
{
	bool f[128];
	char **op, name[256];
	int nop, rc;
	struct apfp_obj parent, o;
	if ((rc = cli_opts(argc, argv, "p", f, &op, &nop)) || nop != 1)
		return rc ? rc : EX_USAGE;
	if (f['p'])
		return mkdir_p(k, op[0]);
	if ((rc = apfp_resolve_parent(&k->c, op[0], &parent, name)) ||
	    (rc = apfp_mkdir(&k->c, &parent.fh, name, 0755, &o)))
		return cli_fail(k, op[0], rc);
	return EX_OK;
}

/* Remove everything under dir (depth first), then dir itself from parent. */
static int rm_tree(struct cli *k, const struct apfp_obj *parent, const char *name, const struct apfp_obj *dir,
		   unsigned depth)
{
	struct cli_entries l;
	int rc = depth > 256 ? -ELOOP : cli_list_dir(k, dir, &l);
	for (size_t i = 0; !rc && i < l.n; i++)
		rc = l.e[i].o.attr.type == PROTO_T_DIR ? rm_tree(k, dir, l.e[i].name, &l.e[i].o, depth + 1)
						      : apfp_remove(&k->c, &dir->fh, l.e[i].name, false);
	if (depth <= 256)
		free(l.e);
	return rc ? rc : apfp_remove(&k->c, &parent->fh, name, true);
}

int cmd_rm(struct cli *k, int argc, char **argv)
{
	bool f[128];
	char **op, name[256];
	int nop, rc;
	struct apfp_obj parent, o;
	if ((rc = cli_opts(argc, argv, "r", f, &op, &nop)) || nop != 1)
		return rc ? rc : EX_USAGE;
	if ((rc = apfp_resolve_parent(&k->c, op[0], &parent, name)) == -EINVAL) {
		fprintf(stderr, "apfp: %s: an export's root is not removed\n", op[0]);
		return EX_USAGE;
	}
	if (rc || (rc = apfp_lookup(&k->c, &parent.fh, name, &o)))
		return cli_fail(k, op[0], rc);
	if (o.attr.type == PROTO_T_DIR && !f['r']) {
		fprintf(stderr, "apfp: %s: is a directory (rm -r removes it and everything in it)\n", op[0]);
		return EX_SERVER;
	}
	rc = o.attr.type == PROTO_T_DIR ? rm_tree(k, &parent, name, &o, 0) : apfp_remove(&k->c, &parent.fh, name, false);
	return rc ? cli_fail(k, op[0], rc) : EX_OK;
}

int cmd_mv(struct cli *k, int argc, char **argv)
{
	char from_name[256], to_name[256];
	struct apfp_obj from, to;
	int rc;
	(void)argc;
	if ((rc = apfp_resolve_parent(&k->c, argv[1], &from, from_name)))
		return cli_fail(k, argv[1], rc);
	if ((rc = cli_dest(k, argv[2], from_name, &to, to_name)))
		return cli_fail(k, argv[2], rc);
	if ((rc = apfp_rename(&k->c, &from.fh, from_name, &to.fh, to_name, 0)))
		return cli_fail(k, argv[1], rc);
	return EX_OK;
}

int cmd_ln(struct cli *k, int argc, char **argv)
{
	bool f[128];
	char **op, name[256], src_name[256];
	int nop, rc;
	struct apfp_obj dir, o;
	if ((rc = cli_opts(argc, argv, "s", f, &op, &nop)) || nop != 2)
		return rc ? rc : EX_USAGE;
	cli_basename(op[0], src_name);
	if ((rc = cli_dest(k, op[1], src_name, &dir, name)))
		return cli_fail(k, op[1], rc);
	if (f['s'])
		rc = apfp_symlink(&k->c, &dir.fh, name, op[0], &o);
	else if (!(rc = apfp_resolve(&k->c, op[0], &o)))
		rc = apfp_link(&k->c, &o.fh, &dir.fh, name, NULL);
	return rc ? cli_fail(k, rc == -ENOENT && !f['s'] ? op[0] : op[1], rc) : EX_OK;
}

/* ---- df, snapshot, clone ------------------------------------------------------------ */
static void human(uint64_t b, char *out, size_t cap)
{
	static const char units[] = "BKMGTP";
	double v = (double)b;
	unsigned u = 0;
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	snprintf(out, cap, u ? "%.1f%c" : "%.0f%c", v, units[u]);
}

int cmd_df(struct cli *k, int argc, char **argv)
{
	struct proto_client_reply r;
	char names[64][256];
	unsigned n = 0;
	int rc;
	if (argc > 1) {
		snprintf(names[n++], sizeof(names[0]), "%s", argv[1]);
	} else {
		if ((rc = apfpc_call(&k->c, PROTO_OP_EXPORTS, NULL, &r)) < 0)
			return cli_fail(k, "exports", rc);
		const struct proto_exports_rep *e = (const void *)r.msg;
		struct proto_export x;
		uint32_t pos = 0;
		while (n < 64 && proto_list_next(&e->exports, PROTO_L_EXPORT, &pos, &x) > 0) {
			memcpy(names[n], x.name.p, x.name.len);
			names[n++][x.name.len] = 0;
		}
	}
	if (k->json)
		printf("[");
	else
		printf("%-16s %10s %10s %10s %5s %12s %12s\n", "export", "size", "used", "avail", "use%", "files",
		       "free_files");
	for (unsigned i = 0; i < n; i++) {
		struct apfp_obj root;
		struct proto_fsstat_rep s;
		if (strchr(names[i], '/')) {
			fprintf(stderr, "apfp: df: %s: give an export's name\n", names[i]);
			return EX_USAGE;
		}
		if ((rc = apfp_resolve(&k->c, names[i], &root)) || (rc = apfp_fsstat(&k->c, &root.fh, &s)))
			return cli_fail(k, names[i], rc);
		uint64_t used = s.total_bytes - s.free_bytes;
		if (k->json) {
			printf("%s{\"export\":", i ? "," : "");
			cli_json_str(stdout, names[i]);
			printf(",\"total_bytes\":%llu,\"used_bytes\":%llu,\"free_bytes\":%llu,\"avail_bytes\":%llu,"
			       "\"total_files\":%llu,\"free_files\":%llu,\"max_name\":%u,\"max_io\":%u}",
			       (unsigned long long)s.total_bytes, (unsigned long long)used, (unsigned long long)s.free_bytes,
			       (unsigned long long)s.avail_bytes, (unsigned long long)s.total_files,
			       (unsigned long long)s.free_files, s.max_name, s.max_io);
		} else {
			char t[16], u[16], a[16];
			human(s.total_bytes, t, sizeof(t));
			human(used, u, sizeof(u));
			human(s.avail_bytes, a, sizeof(a));
			printf("%-16s %10s %10s %10s %4u%% %12llu %12llu\n", names[i], t, u, a,
			       s.total_bytes ? (unsigned)(used * 100 / s.total_bytes) : 0, (unsigned long long)s.total_files,
			       (unsigned long long)s.free_files);
		}
	}
	if (k->json)
		printf("]\n");
	return EX_OK;
}

struct snap_print { struct cli *k; unsigned n; };

static int print_snap(void *arg, uint32_t id, const char *name)
{
	struct snap_print *p = arg;
	if (p->k->json) {
		printf("%s{\"id\":%u,\"name\":", p->n ? "," : "", id);
		cli_json_str(stdout, name);
		printf("}");
	} else {
		printf("%u %s\n", id, name);
	}
	p->n++;
	return 0;
}

int cmd_snapshot(struct cli *k, int argc, char **argv)
{
	const char *sub = argv[1], *exp = argv[2];
	struct apfp_obj root;
	int rc;
	bool list = !strcmp(sub, "list");
	if (list ? argc != 3 : (argc != 4 || (strcmp(sub, "create") && strcmp(sub, "delete")))) {
		fprintf(stderr, "apfp: snapshot create|delete EXPORT NAME, or snapshot list EXPORT\n");
		return EX_USAGE;
	}
	if (strchr(exp, '/')) {
		fprintf(stderr, "apfp: snapshot: %s: give an export's name\n", exp);
		return EX_USAGE;
	}
	if ((rc = apfp_resolve(&k->c, exp, &root)))
		return cli_fail(k, exp, rc);
	if (list) {
		struct snap_print p = { k, 0 };
		if (k->json)
			printf("[");
		if ((rc = apfp_snap_list(&k->c, &root.fh, print_snap, &p)))
			return cli_fail(k, exp, rc);
		if (k->json)
			printf("]\n");
		return EX_OK;
	}
	if (!strcmp(sub, "create")) {
		uint32_t id = 0;
		if ((rc = apfp_snap_create(&k->c, &root.fh, argv[3], &id)))
			return cli_fail(k, argv[3], rc);
		printf("snapshot %s of %s: id %u\n", argv[3], exp, id);
		return EX_OK;
	}
	if ((rc = apfp_snap_delete(&k->c, &root.fh, argv[3])))
		return cli_fail(k, argv[3], rc);
	return EX_OK;
}

int cmd_clone(struct cli *k, int argc, char **argv)
{
	char src_name[256], name[256];
	struct apfp_obj src, dir, dst;
	int rc;
	(void)argc;
	if ((rc = apfp_resolve(&k->c, argv[1], &src)))
		return cli_fail(k, argv[1], rc);
	if (src.attr.type != PROTO_T_REG)
		return cli_fail(k, argv[1], src.attr.type == PROTO_T_DIR ? -EISDIR : -EINVAL);
	cli_basename(argv[1], src_name);
	if ((rc = cli_dest(k, argv[2], src_name, &dir, name)) ||
	    (rc = apfp_create(&k->c, &dir.fh, name, src.attr.mode, PROTO_CREATE_UNCHECKED, &dst)))
		return cli_fail(k, argv[2], rc);
	if (dst.attr.ino == src.attr.ino) {
		fprintf(stderr, "apfp: %s and %s are the same file\n", argv[1], argv[2]);
		return EX_USAGE;
	}
	struct proto_sattr sa = { .mask = PROTO_SA_SIZE, .size = 0 };
	if (dst.attr.size && (rc = apfp_setattr(&k->c, &dst.fh, &sa, NULL)))
		return cli_fail(k, argv[2], rc);
	uint64_t off = 0, size = src.attr.size;
	unsigned cloned = 0, calls = 0;
	while (off < size) {
		uint64_t n = 0;
		bool cl = false;
		if ((rc = apfp_copy(&k->c, &src.fh, off, &dst.fh, off, size - off, &n, &cl)))
			return cli_fail(k, argv[2], rc);
		if (!n)
			break;  /* the source shrank under us */
		off += n;
		cloned += cl;
		calls++;
	}
	if (k->json)
		printf("{\"bytes\":%llu,\"calls\":%u,\"cloned\":%s}\n", (unsigned long long)off, calls,
		       cloned ? "true" : "false");
	return EX_OK;
}
