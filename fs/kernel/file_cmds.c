/*
 * Shell commands on files and directories of mounted filesystems: ls, stat,
 * cat, hexdump, write, append, fill, verify, cksum, truncate, cp, mv, rm,
 * mkdir, rmdir, ln, fsync.  Paths are absolute (/MOUNT/...).  Every failure
 * is one line naming the command, the path and the reason.  Output lines
 * are parsed by tests/qemu/test_fs*.py: change them together.
 */
#include "fs/kernel/mounts.h"
#include "iomap/report.h"
#include "drivers/blk/pattern.h"
#include "kernel/civil.h"
#include "kernel/errno.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/mm.h"
#include "kernel/shell.h"
#include "kernel/time.h"

#define TEXT_MAX 1024                        /* write/append: a shell line's worth */
#define IOBUF_ORDER 8                        /* 1 MiB, page aligned (direct I/O) */
#define IOBUF_BYTES (PAGE_SIZE << IOBUF_ORDER)

static uint8_t *iobuf_get(const char *cmd)
{
	uint64_t p = pmm_alloc_pages(IOBUF_ORDER);
	if (!p)
		kprintf("%s: out of memory for a 1 MiB buffer\n", cmd);
	return p ? PHYS_TO_VIRT(p) : NULL;
}

static void iobuf_put(uint8_t *b)
{
	if (b)
		pmm_free_pages(VIRT_TO_PHYS(b), IOBUF_ORDER);
}

static char type_char(uint32_t mode)
{
	switch (mode & CFS_S_IFMT) {
	case CFS_S_IFDIR: return 'd';
	case CFS_S_IFLNK: return 'l';
	case CFS_S_IFIFO: return 'p';
	case CFS_S_IFCHR: return 'c';
	case CFS_S_IFBLK: return 'b';
	case CFS_S_IFSOCK: return 's';
	default: return '-';
	}
}

static const char *type_name(uint32_t mode)
{
	switch (mode & CFS_S_IFMT) {
	case CFS_S_IFDIR: return "directory";
	case CFS_S_IFLNK: return "symlink";
	case CFS_S_IFIFO: return "fifo";
	case CFS_S_IFCHR: return "character device";
	case CFS_S_IFBLK: return "block device";
	case CFS_S_IFSOCK: return "socket";
	default: return "file";
	}
}

static void mode_string(uint32_t mode, char *s)
{
	static const char rwx[] = "rwxrwxrwx";
	s[0] = type_char(mode);
	for (int i = 0; i < 9; i++)
		s[1 + i] = mode & (0400u >> i) ? rwx[i] : '-';
	s[10] = 0;
}

static void time_string(const struct cowfs_time *t, char *buf, size_t n)
{
	struct civil_time c;
	civil_from_unix_ns((int64_t)t->sec * 1000000000, &c);
	ksnprintf(buf, n, "%04lld-%02u-%02u %02u:%02u:%02u", (long long)c.year, c.month, c.day, c.hour, c.minute,
		  c.second);
}

/* ---- ls ---- */

struct ls_ctx {
	struct cowfs_mount *m;
	bool longfmt;
	unsigned n;
};

static int ls_entry(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type, uint64_t next)
{
	struct ls_ctx *c = arg;
	(void)type;
	(void)next;
	c->n++;
	if (!c->longfmt) {
		kprintf("%.*s\n", (int)len, name);
		return 0;
	}
	struct cowfs_inode a;
	int err = cowfs_getattr(c->m, ino, &a);
	if (err) {
		kprintf("?????????? %.*s (%s)\n", (int)len, name, strerror(err));
		return 0;
	}
	char mode[11], when[24];
	mode_string(a.mode, mode);
	time_string(&a.mtime, when, sizeof(when));
	kprintf("%s %3u %5u %5u %12llu %s %.*s", mode, a.nlink, a.uid, a.gid, (unsigned long long)a.size, when,
		(int)len, name);
	if (CFS_S_ISLNK(a.mode)) {
		char t[256];
		size_t tl;
		if (!cowfs_readlink(c->m, ino, t, sizeof(t), &tl))
			kprintf(" -> %.*s", (int)(tl < sizeof(t) ? tl : sizeof(t)), t);
	}
	kprintf("\n");
	return 0;
}

/* readdir calls back under the filesystem lock: entries are collected a
 * batch at a time and printed (with their attributes) after it returns. */
#define LS_BATCH 64
struct ls_batch {
	unsigned n;
	uint64_t next;
	struct { uint64_t ino; uint8_t type; uint16_t len; char name[CFS_NAME_MAX + 1]; } e[LS_BATCH];
};

static int ls_collect(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type, uint64_t next)
{
	struct ls_batch *b = arg;
	if (b->n == LS_BATCH)
		return 1;
	b->e[b->n].ino = ino;
	b->e[b->n].type = type;
	b->e[b->n].len = (uint16_t)len;
	memcpy(b->e[b->n].name, name, len);
	b->n++;
	b->next = next;
	return 0;
}

static int ls_dir(struct ls_ctx *c, uint64_t dir)
{
	struct ls_batch *b = kmalloc(sizeof(*b));
	if (!b)
		return -ENOMEM;
	uint64_t cookie = 2;                    /* from 2: no "." and ".." */
	int err;
	do {
		b->n = 0;
		err = cowfs_readdir(c->m, dir, cookie, ls_collect, b);
		if (err < 0)
			break;
		for (unsigned i = 0; i < b->n; i++)
			ls_entry(c, b->e[i].name, b->e[i].len, b->e[i].ino, b->e[i].type, 0);
		cookie = b->next;
		err = 0;
	} while (b->n == LS_BATCH && !shell_interrupted());
	kfree(b);
	return err;
}

static int cmd_ls(int argc, char **argv)
{
	bool longfmt = argc > 1 && !strcmp(argv[1], "-l");
	int first = longfmt ? 2 : 1;
	if (argc - first > 1) {
		kprintf("ls: usage: ls [-l] [PATH]\n");
		return 1;
	}
	const char *path = argc > first ? argv[first] : "/";
	if (!strcmp(path, "/")) {
		for (unsigned i = 0; fsk_at(i); i++)
			kprintf("%s\n", fsk_at(i)->name);
		return 0;
	}
	struct fsk_path p;
	int err = fsk_resolve(path, false, &p);
	if (err)
		return fsk_fail("ls", path, err);
	struct ls_ctx c = { .m = p.fm->m, .longfmt = longfmt };
	if (!CFS_S_ISDIR(p.attr.mode)) {
		const char *base = path;
		for (const char *q = path; *q; q++)
			if (*q == '/' && q[1])
				base = q + 1;
		ls_entry(&c, base, strlen(base), p.ino, 0, 0);
	} else {
		err = ls_dir(&c, p.ino);
		if (err)
			fsk_fail("ls", path, err);
	}
	fsk_put(p.fm);
	return err ? 1 : 0;
}
SHELL_COMMAND(ls, "ls [-l] [PATH]", "list a directory (/: the mounted filesystems)", cmd_ls);

static int cmd_stat(int argc, char **argv)
{
	if (argc != 2) {
		kprintf("stat: usage: stat PATH\n");
		return 1;
	}
	struct fsk_path p;
	int err = fsk_resolve(argv[1], true, &p);
	if (err)
		return fsk_fail("stat", argv[1], err);
	struct cowfs_inode *a = &p.attr;
	char mode[11], at[24], mt[24], ct[24], bt[24];
	mode_string(a->mode, mode);
	time_string(&a->atime, at, sizeof(at));
	time_string(&a->mtime, mt, sizeof(mt));
	time_string(&a->ctime, ct, sizeof(ct));
	time_string(&a->btime, bt, sizeof(bt));
	kprintf("path %s\ninode %llu\ntype %s\nmode %s (%04o)\nlinks %u\nuid %u gid %u\nsize %llu\nblocks %llu\n",
		argv[1], (unsigned long long)a->ino,
		type_name(a->mode), mode,
		a->mode & 07777, a->nlink, a->uid, a->gid, (unsigned long long)a->size,
		(unsigned long long)a->blocks);
	kprintf("accessed %s.%09u\nmodified %s.%09u\nchanged  %s.%09u\ncreated  %s.%09u\n", at, a->atime.nsec, mt,
		a->mtime.nsec, ct, a->ctime.nsec, bt, a->btime.nsec);
	fsk_put(p.fm);
	return 0;
}
SHELL_COMMAND(stat, "stat PATH", "an inode's attributes", cmd_stat);

/* filefrag -v: where a file's data is, extent by extent (fiemap). */
#define FILEFRAG_BATCH 64
static int cmd_filefrag(int argc, char **argv)
{
	if (argc != 2) {
		kprintf("filefrag: usage: filefrag PATH\n");
		return 1;
	}
	struct fsk_path p;
	int err = fsk_resolve(argv[1], false, &p);
	if (err)
		return fsk_fail("filefrag", argv[1], err);
	struct iomap_fiemap_extent *e = kmalloc(FILEFRAG_BATCH * sizeof(*e));
	uint64_t pos = 0, count = 0;
	int n = e ? 0 : -ENOMEM;
	kprintf("%-6s %14s %14s %12s  flags\n", "extent", "offset", "disk byte", "length");
	while (e && pos < p.attr.size) {
		n = cowfs_fiemap(p.fm->m, p.ino, pos, p.attr.size - pos, e, FILEFRAG_BATCH);
		if (n <= 0)
			break;
		for (int i = 0; i < n; i++, count++) {
			uint32_t f = e[i].flags;
			kprintf("%-6llu %14llu %14llu %12llu %s%s%s%s\n", (unsigned long long)count,
				(unsigned long long)e[i].logical, (unsigned long long)e[i].physical,
				(unsigned long long)e[i].length, f & IOMAP_FIEMAP_DELALLOC ? " delalloc" : "",
				f & IOMAP_FIEMAP_SHARED ? " shared" : "", f & IOMAP_FIEMAP_ENCODED ? " encoded" : "",
				f & IOMAP_FIEMAP_LAST ? " last" : "");
		}
		pos = e[n - 1].logical + e[n - 1].length;
		if (e[n - 1].flags & IOMAP_FIEMAP_LAST)
			break;
	}
	kfree(e);
	fsk_put(p.fm);
	if (n < 0)
		return fsk_fail("filefrag", argv[1], n);
	kprintf("%s: %llu extent%s\n", argv[1], (unsigned long long)count, count == 1 ? "" : "s");
	return 0;
}
SHELL_COMMAND(filefrag, "filefrag PATH", "a file's extents: offset, disk address, length, flags", cmd_filefrag);

/* ---- reading ---- */

/* Reads the whole file through fn(buf, off, n); returns 0 or the error. */
static int read_all(const char *cmd, const char *path, bool direct,
		    int (*fn)(void *arg, const uint8_t *buf, uint64_t off, uint64_t n), void *arg)
{
	struct fsk_path p;
	int err = fsk_resolve(path, false, &p);
	if (err)
		return fsk_fail(cmd, path, err);
	if (CFS_S_ISDIR(p.attr.mode)) {
		fsk_put(p.fm);
		return fsk_fail(cmd, path, -EISDIR);
	}
	uint8_t *buf = iobuf_get(cmd);
	int rc = 1;
	if (!buf)
		goto out;
	for (uint64_t off = 0;;) {
		int64_t n = cowfs_read(p.fm->m, p.ino, off, buf, IOBUF_BYTES, direct ? CFS_IO_DIRECT : 0);
		if (n < 0) {
			kprintf("%s: %s: read at offset %llu: %s\n", cmd, path, (unsigned long long)off,
				strerror((int)n));
			goto out;
		}
		if (n == 0)
			break;
		if (fn(arg, buf, off, (uint64_t)n))
			goto out;
		off += (uint64_t)n;
		if (shell_interrupted()) {
			kprintf("%s: interrupted\n", cmd);
			goto out;
		}
	}
	rc = 0;
out:
	iobuf_put(buf);
	fsk_put(p.fm);
	return rc;
}

static int cat_chunk(void *arg, const uint8_t *buf, uint64_t off, uint64_t n)
{
	(void)arg;
	(void)off;
	kprintf("%.*s", (int)n, (const char *)buf);
	return 0;
}

static int cmd_cat(int argc, char **argv)
{
	if (argc != 2) {
		kprintf("cat: usage: cat PATH\n");
		return 1;
	}
	return read_all("cat", argv[1], false, cat_chunk, NULL);
}
SHELL_COMMAND(cat, "cat PATH", "print a file", cmd_cat);

static int hexdump_chunk(void *arg, const uint8_t *buf, uint64_t off, uint64_t n)
{
	uint64_t *limit = arg;
	for (uint64_t i = 0; i < n && off + i < *limit; i += 16) {
		kprintf("%08llx ", (unsigned long long)(off + i));
		for (uint64_t j = i; j < i + 16; j++)
			j < n ? kprintf(" %02x", buf[j]) : kprintf("   ");
		kprintf("  |");
		for (uint64_t j = i; j < i + 16 && j < n; j++)
			kprintf("%c", buf[j] >= 32 && buf[j] < 127 ? buf[j] : '.');
		kprintf("|\n");
	}
	return off + n >= *limit;   /* stop once past the limit */
}

static int cmd_hexdump(int argc, char **argv)
{
	unsigned long long limit = 4096;
	if (argc == 3 && parse_u64(argv[2], &limit)) {
		kprintf("hexdump: '%s' is not a byte count\n", argv[2]);
		return 1;
	}
	if (argc != 2 && argc != 3) {
		kprintf("hexdump: usage: hexdump PATH [BYTES] (default 4096)\n");
		return 1;
	}
	uint64_t l = limit;
	read_all("hexdump", argv[1], false, hexdump_chunk, &l);
	return 0;
}
SHELL_COMMAND(hexdump, "hexdump PATH [BYTES]", "the first BYTES (4096) of a file in hex", cmd_hexdump);

struct cksum_ctx { uint32_t crc; uint64_t size; };

static int cksum_chunk(void *arg, const uint8_t *buf, uint64_t off, uint64_t n)
{
	struct cksum_ctx *c = arg;
	(void)off;
	c->crc = pattern_crc32(c->crc, buf, n);
	c->size += n;
	return 0;
}

static int cmd_cksum(int argc, char **argv)
{
	bool direct = argc == 3 && !strcmp(argv[1], "-d");
	if (argc != 2 && !direct) {
		kprintf("cksum: usage: cksum [-d] PATH (-d: direct I/O)\n");
		return 1;
	}
	struct cksum_ctx c = { 0, 0 };
	uint64_t t0 = time_ns();
	if (read_all("cksum", argv[argc - 1], direct, cksum_chunk, &c))
		return 1;
	uint64_t us = (time_ns() - t0) / 1000 + 1;
	kprintf("cksum %s size %llu crc32 %08x MBps %llu\n", argv[argc - 1], (unsigned long long)c.size, c.crc,
		(unsigned long long)(c.size / us));
	return 0;
}
SHELL_COMMAND(cksum, "cksum [-d] PATH", "size and CRC-32 (zlib's) of a file, and the read rate", cmd_cksum);

struct verify_ctx { uint64_t seed; const char *path; };

static int verify_chunk(void *arg, const uint8_t *buf, uint64_t off, uint64_t n)
{
	struct verify_ctx *v = arg;
	uint64_t got, want, whole = n & ~7ull;
	long bad = pattern_check(buf, off, whole, v->seed, &got, &want);
	if (bad >= 0) {
		kprintf("verify: %s: wrong data at offset %llu: %016llx, expected %016llx\n", v->path,
			(unsigned long long)(off + (uint64_t)bad), (unsigned long long)got,
			(unsigned long long)want);
		return 1;
	}
	return 0;
}

static int cmd_verify(int argc, char **argv)
{
	unsigned long long seed = 1;
	if (argc < 2 || argc > 3 || (argc == 3 && parse_u64(argv[2], &seed))) {
		kprintf("verify: usage: verify PATH [SEED] (the pattern `fill` writes)\n");
		return 1;
	}
	struct verify_ctx v = { seed, argv[1] };
	if (read_all("verify", argv[1], false, verify_chunk, &v))
		return 1;
	kprintf("verify: %s: ok\n", argv[1]);
	return 0;
}
SHELL_COMMAND(verify, "verify PATH [SEED]", "check a file holds the pattern fill wrote", cmd_verify);

/* ---- writing ---- */

/* The file at path, created (mode 0644) when missing; truncated when asked. */
static int open_for_write(const char *cmd, const char *path, bool trunc, struct fsk_path *out)
{
	int err = fsk_resolve(path, false, out);
	if (err == -ENOENT) {
		struct fsk_path d;
		err = fsk_resolve_parent(path, &d);
		if (err)
			return fsk_fail(cmd, path, err);
		err = cowfs_create(d.fm->m, d.ino, d.name, d.namelen, 0644, 0, 0, &out->attr);
		if (err) {
			fsk_put(d.fm);
			return fsk_fail(cmd, path, err);
		}
		out->fm = d.fm;
		out->ino = out->attr.ino;
		return 0;
	}
	if (err)
		return fsk_fail(cmd, path, err);
	if (CFS_S_ISDIR(out->attr.mode)) {
		fsk_put(out->fm);
		return fsk_fail(cmd, path, -EISDIR);
	}
	if (trunc && out->attr.size) {
		struct cowfs_setattr sa = { .valid = CFS_SET_SIZE, .size = 0 };
		err = cowfs_setattr(out->fm->m, out->ino, &sa, &out->attr);
		if (err) {
			fsk_put(out->fm);
			return fsk_fail(cmd, path, err);
		}
	}
	return 0;
}

static int write_text(const char *cmd, int argc, char **argv, bool append)
{
	if (argc < 2) {
		kprintf("%s: usage: %s PATH [TEXT...]\n", cmd, cmd);
		return 1;
	}
	char *text = kmalloc(TEXT_MAX + 2);
	if (!text)
		return fsk_fail(cmd, argv[1], -ENOMEM);
	size_t n = 0;
	for (int i = 2; i < argc; i++)
		n += (size_t)ksnprintf(text + n, TEXT_MAX + 2 - n, "%s%s", i > 2 ? " " : "", argv[i]);
	if (argc > 2)
		text[n++] = '\n';
	struct fsk_path p;
	int rc = open_for_write(cmd, argv[1], !append, &p);
	if (!rc) {
		int64_t w = cowfs_write(p.fm->m, p.ino, 0, text, n, append ? CFS_IO_APPEND : 0);
		if (w < 0)
			rc = fsk_fail(cmd, argv[1], (int)w);
		fsk_put(p.fm);
	}
	kfree(text);
	return rc;
}

static int cmd_write(int argc, char **argv) { return write_text("write", argc, argv, false); }
static int cmd_append(int argc, char **argv) { return write_text("append", argc, argv, true); }
SHELL_COMMAND(write, "write PATH [TEXT...]", "replace a file's contents with a line of text", cmd_write);
SHELL_COMMAND(append, "append PATH TEXT...", "add a line of text to the end of a file", cmd_append);

/* fill [-d] [-s] PATH SIZE [SEED]: SIZE bytes of the shared pattern
 * (drivers/blk/pattern.h) from offset 0; -d direct I/O, -s fsync at the
 * end.  The host checks the same bytes in the image (tests). */
static int cmd_fill(int argc, char **argv)
{
	bool direct = false, dosync = false;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-d"))
			direct = true;
		else if (!strcmp(argv[i], "-s"))
			dosync = true;
		else
			break;
	}
	unsigned long long size, seed = 1;
	if (argc - i < 2 || argc - i > 3 || parse_u64(argv[i + 1], &size) ||
	    (argc - i == 3 && parse_u64(argv[i + 2], &seed))) {
		kprintf("fill: usage: fill [-d] [-s] PATH SIZE [SEED] (sizes like 64k, 16m)\n");
		return 1;
	}
	if (direct && size % 4096) {
		kprintf("fill: direct I/O needs a SIZE that is a multiple of 4096\n");
		return 1;
	}
	const char *path = argv[i];
	struct fsk_path p;
	if (open_for_write("fill", path, true, &p))
		return 1;
	uint8_t *buf = iobuf_get("fill");
	int rc = 1;
	uint64_t t0 = time_ns();
	for (uint64_t off = 0; buf && off < size;) {
		uint64_t n = size - off < IOBUF_BYTES ? size - off : IOBUF_BYTES;
		pattern_fill(buf, off, (n + 7) & ~7ull, seed);
		int64_t w = cowfs_write(p.fm->m, p.ino, off, buf, n, direct ? CFS_IO_DIRECT : 0);
		if (w < 0) {
			kprintf("fill: %s: write at offset %llu: %s\n", path, (unsigned long long)off,
				strerror((int)w));
			goto out;
		}
		off += (uint64_t)w;
		if (shell_interrupted()) {
			kprintf("fill: interrupted at %llu bytes\n", (unsigned long long)off);
			goto out;
		}
	}
	if (buf && dosync) {
		int err = cowfs_fsync(p.fm->m, p.ino, false);
		if (err) {
			kprintf("fill: %s: fsync: %s\n", path, strerror(err));
			goto out;
		}
	}
	if (buf) {
		uint64_t us = (time_ns() - t0) / 1000 + 1;
		kprintf("fill %s size %llu seed %llu%s MBps %llu\n", path, size, seed, dosync ? " fsynced" : "",
			(unsigned long long)(size / us));
		rc = 0;
	}
out:
	iobuf_put(buf);
	fsk_put(p.fm);
	return rc;
}
SHELL_COMMAND(fill, "fill [-d] [-s] PATH SIZE [SEED]",
	      "write SIZE bytes of a test pattern (-d direct I/O, -s fsync)", cmd_fill);

static int cmd_truncate(int argc, char **argv)
{
	unsigned long long size;
	if (argc != 3 || parse_u64(argv[2], &size)) {
		kprintf("truncate: usage: truncate PATH SIZE\n");
		return 1;
	}
	struct fsk_path p;
	int err = fsk_resolve(argv[1], false, &p);
	if (err)
		return fsk_fail("truncate", argv[1], err);
	struct cowfs_setattr sa = { .valid = CFS_SET_SIZE, .size = size };
	err = CFS_S_ISDIR(p.attr.mode) ? -EISDIR : cowfs_setattr(p.fm->m, p.ino, &sa, NULL);
	fsk_put(p.fm);
	return err ? fsk_fail("truncate", argv[1], err) : 0;
}
SHELL_COMMAND(truncate, "truncate PATH SIZE", "cut or extend a file", cmd_truncate);

static int cmd_fsync(int argc, char **argv)
{
	if (argc != 2) {
		kprintf("fsync: usage: fsync PATH\n");
		return 1;
	}
	struct fsk_path p;
	int err = fsk_resolve(argv[1], false, &p);
	if (err)
		return fsk_fail("fsync", argv[1], err);
	uint64_t t0 = time_ns(), logged, logged2, commits;
	cowfs_fsync_counts(p.fm->m, &logged, &commits);
	err = cowfs_fsync(p.fm->m, p.ino, false);
	/* How it went: through the intent log, or a commit (tests look). */
	cowfs_fsync_counts(p.fm->m, &logged2, &commits);
	bool by_log = logged2 != logged;
	fsk_put(p.fm);
	if (err)
		return fsk_fail("fsync", argv[1], err);
	kprintf("fsync %s us %llu by %s\n", argv[1], (unsigned long long)((time_ns() - t0) / 1000),
		by_log ? "log" : "commit");
	return 0;
}
SHELL_COMMAND(fsync, "fsync PATH", "make a file's data and attributes durable", cmd_fsync);

static int cmd_cp(int argc, char **argv)
{
	if (argc != 3) {
		kprintf("cp: usage: cp FROM TO\n");
		return 1;
	}
	struct fsk_path s, d;
	int err = fsk_resolve(argv[1], false, &s);
	if (err)
		return fsk_fail("cp", argv[1], err);
	if (CFS_S_ISDIR(s.attr.mode)) {
		fsk_put(s.fm);
		return fsk_fail("cp", argv[1], -EISDIR);
	}
	if (open_for_write("cp", argv[2], true, &d)) {
		fsk_put(s.fm);
		return 1;
	}
	uint8_t *buf = iobuf_get("cp");
	int rc = buf ? 0 : 1;
	for (uint64_t off = 0; buf;) {
		int64_t n = cowfs_read(s.fm->m, s.ino, off, buf, IOBUF_BYTES, 0);
		if (n < 0) {
			rc = fsk_fail("cp", argv[1], (int)n);
			break;
		}
		if (n == 0)
			break;
		int64_t w = cowfs_write(d.fm->m, d.ino, off, buf, (uint64_t)n, 0);
		if (w < 0) {
			rc = fsk_fail("cp", argv[2], (int)w);
			break;
		}
		off += (uint64_t)n;
	}
	iobuf_put(buf);
	fsk_put(s.fm);
	fsk_put(d.fm);
	return rc;
}
SHELL_COMMAND(cp, "cp FROM TO", "copy a file", cmd_cp);

static int cmd_mv(int argc, char **argv)
{
	if (argc != 3) {
		kprintf("mv: usage: mv FROM TO\n");
		return 1;
	}
	struct fsk_path s, d;
	int err = fsk_resolve_parent(argv[1], &s);
	if (err)
		return fsk_fail("mv", argv[1], err);
	err = fsk_resolve_parent(argv[2], &d);
	if (err) {
		fsk_put(s.fm);
		return fsk_fail("mv", argv[2], err);
	}
	if (s.fm != d.fm)
		err = -EXDEV;
	else
		err = cowfs_rename(s.fm->m, s.ino, s.name, s.namelen, d.ino, d.name, d.namelen, 0);
	fsk_put(s.fm);
	fsk_put(d.fm);
	return err ? fsk_fail("mv", argv[1], err) : 0;
}
SHELL_COMMAND(mv, "mv FROM TO", "rename (within one filesystem)", cmd_mv);

static int name_op(const char *cmd, const char *path, int (*op)(struct cowfs_mount *, uint64_t, const char *, size_t))
{
	struct fsk_path d;
	int err = fsk_resolve_parent(path, &d);
	if (err)
		return fsk_fail(cmd, path, err);
	err = op(d.fm->m, d.ino, d.name, d.namelen);
	fsk_put(d.fm);
	return err ? fsk_fail(cmd, path, err) : 0;
}

static int cmd_rm(int argc, char **argv)
{
	int rc = argc < 2;
	if (rc)
		kprintf("rm: usage: rm PATH...\n");
	for (int i = 1; i < argc; i++)
		rc |= name_op("rm", argv[i], cowfs_unlink);
	return rc;
}
SHELL_COMMAND(rm, "rm PATH...", "remove files", cmd_rm);

static int cmd_rmdir(int argc, char **argv)
{
	int rc = argc < 2;
	if (rc)
		kprintf("rmdir: usage: rmdir PATH...\n");
	for (int i = 1; i < argc; i++)
		rc |= name_op("rmdir", argv[i], cowfs_rmdir);
	return rc;
}
SHELL_COMMAND(rmdir, "rmdir PATH...", "remove empty directories", cmd_rmdir);

static int cmd_mkdir(int argc, char **argv)
{
	int rc = argc < 2;
	if (rc)
		kprintf("mkdir: usage: mkdir PATH...\n");
	for (int i = 1; i < argc; i++) {
		struct fsk_path d;
		int err = fsk_resolve_parent(argv[i], &d);
		if (!err) {
			err = cowfs_mkdir(d.fm->m, d.ino, d.name, d.namelen, 0755, 0, 0, NULL);
			fsk_put(d.fm);
		}
		if (err)
			rc |= fsk_fail("mkdir", argv[i], err);
	}
	return rc;
}
SHELL_COMMAND(mkdir, "mkdir PATH...", "make directories", cmd_mkdir);

static int cmd_ln(int argc, char **argv)
{
	bool sym = argc == 4 && !strcmp(argv[1], "-s");
	if (argc != 3 && !sym) {
		kprintf("ln: usage: ln [-s] TARGET PATH\n");
		return 1;
	}
	const char *target = argv[argc - 2], *path = argv[argc - 1];
	struct fsk_path d;
	int err = fsk_resolve_parent(path, &d);
	if (err)
		return fsk_fail("ln", path, err);
	if (sym) {
		err = cowfs_symlink(d.fm->m, d.ino, d.name, d.namelen, target, strlen(target), 0, 0, NULL);
	} else {
		struct fsk_path t;
		err = fsk_resolve(target, false, &t);
		if (!err) {
			err = t.fm != d.fm ? -EXDEV :
			      cowfs_link(d.fm->m, t.ino, d.ino, d.name, d.namelen, NULL);
			fsk_put(t.fm);
		}
	}
	fsk_put(d.fm);
	return err ? fsk_fail("ln", path, err) : 0;
}
SHELL_COMMAND(ln, "ln [-s] TARGET PATH", "hard link (or with -s a symbolic link) to TARGET", cmd_ln);
