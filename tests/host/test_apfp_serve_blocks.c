/*
 * The protocol end to end (the harness of tests/host/apfp_serve_env.h: the
 * host server over an image, or the appliance): the operations on a file's
 * blocks and on snapshots -- fsstat, server-side copy (a reflink when
 * aligned: cloned, free space and bytes checked; CLONE_ONLY's refusals),
 * snapshots created, listed, refused as targets and deleted, reads through
 * their handles (their xattrs, seek and copy out into a live file),
 * fallocate (punch, zero, allocate, collapse, insert) and seek data/hole.
 */
#define TEST_SUITE "apfp_serve_blocks"
#include "tests/host/test.h"
#include "tests/host/apfp_serve_env.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TEST(fsstat_copy_and_snapshots)
{
	struct proto_fsstat_rep st;
	EXPECT_EQ_INT(apfp_fsstat(&c, &root.fh, &st), 0);
	EXPECT(st.total_bytes > 200ull << 20 && st.total_bytes <= APFP_SERVE_IMAGE_BYTES);
	EXPECT(st.free_bytes > 0 && st.free_bytes < st.total_bytes);
	EXPECT_EQ_INT(st.max_name, 255);
	EXPECT_EQ_INT(st.max_io, PROTO_MAX_IO);

	/* server-side copy */
	static uint8_t w[300000], rb[300000];
	struct apfp_obj src, dst;
	pattern(w, sizeof(w), 77);
	EXPECT_EQ_INT(put_file(&root, "copy-src", w, sizeof(w), PROTO_UNSTABLE, &src), 0);
	EXPECT_EQ_INT(apfp_create(&c, &root.fh, "copy-dst", 0644, PROTO_CREATE_GUARDED, &dst), 0);
	struct proto_copy_req cq = { src.fh, 1000, dst.fh, 0, sizeof(w), 0 };
	struct proto_client_reply r;
	EXPECT_EQ_INT(status(PROTO_OP_COPY, &cq, &r), 0);
	EXPECT_EQ_INT(((const struct proto_copy_rep *)r.msg)->count, sizeof(w) - 1000);
	size_t got = 0;
	EXPECT_EQ_INT(get_file(&dst.fh, rb, sizeof(rb), &got), 0);
	EXPECT_EQ_INT(got, sizeof(w) - 1000);
	EXPECT(!memcmp(rb, w + 1000, got));
	EXPECT(!((const struct proto_copy_rep *)r.msg)->cloned);
	cq.flags = PROTO_COPY_CLONE_ONLY;        /* offset 1000: no reflink (FICLONERANGE's rule) */
	EXPECT_EQ_INT(status(PROTO_OP_COPY, &cq, &r), PROTO_E_INVAL);

	/* snapshots: create, list, refuse changes through them, delete */
	uint32_t id = 0;
	EXPECT_EQ_INT(apfp_snap_create(&c, &root.fh, "before", &id), 0);
	EXPECT(id > 0);
	struct proto_snap_req sq = { root.fh, { "before", 6 } };
	EXPECT_EQ_INT(status(PROTO_OP_SNAP_CREATE, &sq, &r), PROTO_E_EXIST);
	struct proto_fh_req lq = { root.fh };
	EXPECT_EQ_INT(status(PROTO_OP_SNAP_LIST, &lq, &r), 0);
	const struct proto_snap_list_rep *l = (const void *)r.msg;
	EXPECT_EQ_INT(l->snaps.count, 1);
	struct proto_snap s;
	uint32_t pos = 0;
	EXPECT_EQ_INT(proto_list_next(&l->snaps, PROTO_L_SNAP, &pos, &s), 1);
	EXPECT_EQ_INT(s.id, id);
	EXPECT(s.name.len == 6 && !memcmp(s.name.p, "before", 6));
	struct proto_handle sroot = s.root;
	struct proto_mkdir_req mq = { .dir = sroot, .name = { "x", 1 } };
	EXPECT_EQ_INT(status(PROTO_OP_MKDIR, &mq, &r), PROTO_E_ROFS);
	EXPECT_EQ_INT(apfp_snap_delete(&c, &root.fh, "before"), 0);
	EXPECT_EQ_INT(apfp_snap_delete(&c, &root.fh, "before"), -ENOENT);
	EXPECT_EQ_INT(status(PROTO_OP_SNAP_LIST, &lq, &r), 0);
	EXPECT_EQ_INT(((const struct proto_snap_list_rep *)r.msg)->snaps.count, 0);
}

static uint64_t free_bytes(void)
{
	struct proto_fsstat_rep st;
	EXPECT_EQ_INT(apfp_fsstat(&c, &root.fh, &st), 0);
	return st.free_bytes;
}

/* COPY of block-aligned ranges is a reflink (fs/reflink.c): cloned, the
 * bytes equal, no data space used (FSSTAT), writes afterwards apart; an
 * unaligned COPY copies (its space is used at once: reserved); CLONE_ONLY
 * clones or refuses (INVAL unaligned, ISDIR). */
TEST(copy_of_aligned_ranges_shares_blocks)
{
	const size_t n = 8u << 20;
	uint8_t *w = malloc(n), *rb = malloc(n + 4096);
	struct apfp_obj src, dst, cp, d;
	struct proto_client_reply r;
	pattern(w, n, 91);
	EXPECT_EQ_INT(put_file(&root, "rl-src", w, n, PROTO_FILE_SYNC, &src), 0);
	EXPECT_EQ_INT(apfp_create(&c, &root.fh, "rl-dst", 0644, PROTO_CREATE_GUARDED, &dst), 0);
	EXPECT_EQ_INT(apfp_create(&c, &root.fh, "rl-copy", 0644, PROTO_CREATE_GUARDED, &cp), 0);
	uint64_t f0 = free_bytes();
	uint64_t done = 0;
	while (done < n) {
		uint64_t got = 0;
		bool cloned = false;
		EXPECT_EQ_INT(apfp_copy(&c, &src.fh, done, &dst.fh, done, n - done, &got, &cloned), 0);
		EXPECT(cloned);
		if (!got)
			break;
		done += got;
	}
	EXPECT_EQ_INT(done, n);
	uint64_t f1 = free_bytes();
	fprintf(stderr, "# 8 MiB COPY by reflink: %lld bytes of free space used\n", (long long)(f0 - f1));
	EXPECT(f1 + (1u << 20) > f0);            /* metadata only */
	size_t got = 0;
	EXPECT_EQ_INT(get_file(&dst.fh, rb, n + 4096, &got), 0);
	EXPECT_EQ_INT(got, n);
	EXPECT(!memcmp(rb, w, n));
	/* The same bytes copied (an unaligned destination): the space goes. */
	struct proto_copy_req cq = { src.fh, 0, cp.fh, 512, n, 0 };
	EXPECT_EQ_INT(status(PROTO_OP_COPY, &cq, &r), 0);
	EXPECT(!((const struct proto_copy_rep *)r.msg)->cloned);
	EXPECT(free_bytes() + n <= f1 + (1u << 20));
	/* Writes after the clone: the other file keeps its bytes. */
	uint8_t x[4096];
	memset(x, 0xab, sizeof(x));
	uint32_t wn = 0;
	EXPECT_EQ_INT(apfp_write(&c, &dst.fh, 8192, x, sizeof(x), PROTO_FILE_SYNC, &wn, NULL), 0);
	EXPECT_EQ_INT(get_file(&src.fh, rb, n + 4096, &got), 0);
	EXPECT(got == n && !memcmp(rb, w, n));
	memcpy(w + 8192, x, sizeof(x));
	EXPECT_EQ_INT(get_file(&dst.fh, rb, n + 4096, &got), 0);
	EXPECT(got == n && !memcmp(rb, w, n));
	/* CLONE_ONLY: a whole-block range clones; unaligned is INVAL; a
	 * directory ISDIR. */
	cq = (struct proto_copy_req){ src.fh, 4096, cp.fh, 0, 3 * 4096, PROTO_COPY_CLONE_ONLY };
	EXPECT_EQ_INT(status(PROTO_OP_COPY, &cq, &r), 0);
	EXPECT(((const struct proto_copy_rep *)r.msg)->cloned);
	EXPECT_EQ_INT(((const struct proto_copy_rep *)r.msg)->count, 3 * 4096);
	cq.dst_offset = 100;
	EXPECT_EQ_INT(status(PROTO_OP_COPY, &cq, &r), PROTO_E_INVAL);
	EXPECT_EQ_INT(apfp_mkdir(&c, &root.fh, "rl-dir", 0755, &d), 0);
	cq.dst = d.fh;
	cq.dst_offset = 0;
	EXPECT_EQ_INT(status(PROTO_OP_COPY, &cq, &r), PROTO_E_ISDIR);
	free(w);
	free(rb);
}

static int names_cb(void *arg, const char *name, const struct apfp_obj *obj)
{
	(void)obj;
	strcat(arg, name);
	strcat(arg, ",");
	return 0;
}

/* Snapshot handles read the snapshot (fs/snap_read.c): lookup, getattr,
 * read, readdir(plus) and readlink see the state at the snapshot
 * while the live tree changes; mutations are ROFS; a deleted snapshot's
 * handles are STALE. */
TEST(reads_through_snapshot_handles)
{
	static uint8_t w[300000], rb[300000 + 4096];
	uint8_t nw[4096];
	char names[256] = "", target[64];
	struct apfp_obj d, f, l, x, n, sd, sf, sl, sp;
	struct proto_client_reply r;
	struct proto_attr a;
	pattern(w, sizeof(w), 31);
	EXPECT_EQ_INT(apfp_mkdir(&c, &root.fh, "snapdir", 0755, &d), 0);
	EXPECT_EQ_INT(put_file(&d, "f", w, sizeof(w), PROTO_UNSTABLE, &f), 0);
	EXPECT_EQ_INT(apfp_symlink(&c, &d.fh, "l", "f", &l), 0);
	EXPECT_EQ_INT(put_file(&d, "gone", w, 5000, PROTO_UNSTABLE, &x), 0);
	struct proto_snap_req sq = { root.fh, { "reads", 5 } };
	EXPECT_EQ_INT(status(PROTO_OP_SNAP_CREATE, &sq, &r), 0);
	struct proto_handle sroot = ((const struct proto_snap_create_rep *)r.msg)->root;
	/* The live tree changes after the snapshot. */
	memset(nw, 0x5a, sizeof(nw));
	uint32_t wn = 0;
	EXPECT_EQ_INT(apfp_write(&c, &f.fh, 4096, nw, sizeof(nw), PROTO_FILE_SYNC, &wn, NULL), 0);
	EXPECT_EQ_INT(apfp_remove(&c, &d.fh, "gone", false), 0);
	EXPECT_EQ_INT(put_file(&d, "new", w, 100, PROTO_UNSTABLE, &n), 0);
	/* Through the snapshot: the old state (on the appliance, in the run's
	 * directory). */
	struct apfp_obj base = { .fh = sroot };
	if (apfp_serve_run[0])
		EXPECT_EQ_INT(apfp_lookup(&c, &sroot, apfp_serve_run, &base), 0);
	EXPECT_EQ_INT(apfp_lookup(&c, &base.fh, "snapdir", &sd), 0);
	EXPECT_EQ_INT(sd.attr.type, PROTO_T_DIR);
	EXPECT_EQ_INT(apfp_lookup(&c, &sd.fh, "f", &sf), 0);
	EXPECT_EQ_INT(sf.attr.size, sizeof(w));
	EXPECT_EQ_INT(sf.attr.ino, f.attr.ino);
	size_t got = 0;
	EXPECT_EQ_INT(get_file(&sf.fh, rb, sizeof(rb), &got), 0);
	EXPECT(got == sizeof(w) && !memcmp(rb, w, sizeof(w)));
	EXPECT_EQ_INT(get_file(&f.fh, rb, sizeof(rb), &got), 0);
	EXPECT(got == sizeof(w) && !memcmp(rb + 4096, nw, sizeof(nw)));    /* the live file has the change */
	EXPECT_EQ_INT(apfp_getattr(&c, &sf.fh, &a), 0);
	EXPECT_EQ_INT(a.size, sizeof(w));
	EXPECT_EQ_INT(apfp_lookup(&c, &sd.fh, "l", &sl), 0);
	EXPECT_EQ_INT(apfp_readlink(&c, &sl.fh, target, sizeof(target)), 0);
	EXPECT_STREQ(target, "f");
	EXPECT_EQ_INT(apfp_readdir(&c, &sd.fh, names_cb, names), 0);
	EXPECT_STREQ(names, "f,l,gone,");
	EXPECT_EQ_INT(apfp_lookup(&c, &sd.fh, "new", &x), -ENOENT);
	EXPECT_EQ_INT(apfp_lookup(&c, &base.fh, "snapdir", &sp), 0);
	EXPECT(!memcmp(&sp.fh, &sd.fh, sizeof(sd.fh)));          /* handles in the snapshot are stable */
	/* Refusals: changes ROFS, a directory read ISDIR. */
	EXPECT_EQ_INT(apfp_write(&c, &sf.fh, 0, nw, sizeof(nw), PROTO_FILE_SYNC, &wn, NULL), -EROFS);
	EXPECT_EQ_INT(apfp_create(&c, &sd.fh, "z", 0644, PROTO_CREATE_GUARDED, &x), -EROFS);
	uint32_t rn = 0;
	bool eof = false;
	EXPECT_EQ_INT(apfp_read(&c, &sd.fh, 0, rb, 100, &rn, &eof), -EISDIR);
	/* Deleted: its handles are stale. */
	EXPECT_EQ_INT(apfp_snap_delete(&c, &root.fh, "reads"), 0);
	EXPECT_EQ_INT(apfp_getattr(&c, &sf.fh, &a), -ESTALE);
	EXPECT_EQ_INT(apfp_read(&c, &sf.fh, 0, rb, 100, &rn, &eof), -ESTALE);
	EXPECT_EQ_INT(apfp_getattr(&c, &f.fh, &a), 0);
}

/* Snapshot handles also answer GETXATTR, LISTXATTR and SEEK from the
 * snapshot, and COPY from a snapshot's file into a live one (bytes, never
 * shared); what would change the snapshot is ROFS. */
TEST(snapshot_xattrs_seek_and_copy_out)
{
	static uint8_t w[64 * 1024], rb[200000], model[200000];
	struct apfp_obj f, sf, dst;
	struct proto_client_reply r;
	char val[32], names[64];
	size_t len = 0;
	uint64_t off = 0, n = 0;
	pattern(w, sizeof(w), 41);
	/* A sparse file: 8 KiB of data, a hole to 40 KiB, 4 KiB, a hole to 100000. */
	EXPECT_EQ_INT(put_file(&root, "snapx", w, 8192, PROTO_FILE_SYNC, &f), 0);
	uint32_t wn = 0;
	EXPECT_EQ_INT(apfp_write(&c, &f.fh, 40960, w + 8192, 4096, PROTO_FILE_SYNC, &wn, NULL), 0);
	struct proto_sattr sa = { .mask = PROTO_SA_SIZE, .size = 100000 };
	EXPECT_EQ_INT(apfp_setattr(&c, &f.fh, &sa, NULL), 0);
	EXPECT_EQ_INT(apfp_setxattr(&c, &f.fh, "user.a", "old", 3, 0), 0);
	EXPECT_EQ_INT(apfp_setxattr(&c, &f.fh, "user.b", "bee", 3, 0), 0);
	struct proto_snap_req sq = { root.fh, { "xs", 2 } };
	EXPECT_EQ_INT(status(PROTO_OP_SNAP_CREATE, &sq, &r), 0);
	struct proto_handle sroot = ((const struct proto_snap_create_rep *)r.msg)->root;
	struct apfp_obj base = { .fh = sroot };
	if (apfp_serve_run[0])
		EXPECT_EQ_INT(apfp_lookup(&c, &sroot, apfp_serve_run, &base), 0);
	EXPECT_EQ_INT(apfp_lookup(&c, &base.fh, "snapx", &sf), 0);
	/* The live file changes after the snapshot. */
	EXPECT_EQ_INT(apfp_setxattr(&c, &f.fh, "user.a", "new!", 4, PROTO_XATTR_REPLACE), 0);
	EXPECT_EQ_INT(apfp_removexattr(&c, &f.fh, "user.b"), 0);
	EXPECT_EQ_INT(apfp_write(&c, &f.fh, 16384, w, 4096, PROTO_FILE_SYNC, &wn, NULL), 0);
	/* Extended attributes as they were. */
	EXPECT_EQ_INT(apfp_getxattr(&c, &sf.fh, "user.a", val, sizeof(val), &len), 0);
	EXPECT(len == 3 && !memcmp(val, "old", 3));
	EXPECT_EQ_INT(apfp_getxattr(&c, &sf.fh, "user.b", val, sizeof(val), &len), 0);
	EXPECT(len == 3 && !memcmp(val, "bee", 3));
	EXPECT_EQ_INT(apfp_getxattr(&c, &sf.fh, "user.b", val, 2, &len), -ERANGE);
	EXPECT_EQ_INT(apfp_getxattr(&c, &sf.fh, "user.none", val, sizeof(val), &len), -ENODATA);
	EXPECT_EQ_INT(apfp_getxattr(&c, &f.fh, "user.b", val, sizeof(val), &len), -ENODATA);   /* live: gone */
	EXPECT_EQ_INT(apfp_listxattr(&c, &sf.fh, names, sizeof(names), &len), 0);
	EXPECT(len == 14 && (!memcmp(names, "user.a\0user.b\0", 14) || !memcmp(names, "user.b\0user.a\0", 14)));
	EXPECT_EQ_INT(apfp_listxattr(&c, &sf.fh, names, 5, &len), -ERANGE);
	/* Writes through the snapshot: ROFS. */
	EXPECT_EQ_INT(apfp_setxattr(&c, &sf.fh, "user.c", "x", 1, 0), -EROFS);
	EXPECT_EQ_INT(apfp_removexattr(&c, &sf.fh, "user.a"), -EROFS);
	EXPECT_EQ_INT(apfp_fallocate(&c, &sf.fh, PROTO_FALLOC_PUNCH, 0, 4096, NULL), -EROFS);
	/* SEEK in the snapshot's map (the live file has data at 16 KiB now). */
	EXPECT_EQ_INT(apfp_seek(&c, &sf.fh, 0, PROTO_SEEK_HOLE, &off), 0);
	EXPECT_EQ_INT(off, 8192);
	EXPECT_EQ_INT(apfp_seek(&c, &sf.fh, 8192, PROTO_SEEK_DATA, &off), 0);
	EXPECT_EQ_INT(off, 40960);
	EXPECT_EQ_INT(apfp_seek(&c, &f.fh, 8192, PROTO_SEEK_DATA, &off), 0);
	EXPECT_EQ_INT(off, 16384);
	EXPECT_EQ_INT(apfp_seek(&c, &sf.fh, 100, PROTO_SEEK_DATA, &off), 0);
	EXPECT_EQ_INT(off, 100);
	EXPECT_EQ_INT(apfp_seek(&c, &sf.fh, 40960, PROTO_SEEK_HOLE, &off), 0);
	EXPECT_EQ_INT(off, 45056);
	EXPECT_EQ_INT(apfp_seek(&c, &sf.fh, 50000, PROTO_SEEK_HOLE, &off), 0);
	EXPECT_EQ_INT(off, 50000);
	EXPECT_EQ_INT(apfp_seek(&c, &sf.fh, 45056, PROTO_SEEK_DATA, &off), -ENXIO);
	EXPECT_EQ_INT(apfp_seek(&c, &sf.fh, 100000, PROTO_SEEK_HOLE, &off), -ENXIO);
	/* COPY out of the snapshot into a live file: the old bytes. */
	memset(model, 0, sizeof(model));
	memcpy(model, w, 8192);
	memcpy(model + 40960, w + 8192, 4096);
	EXPECT_EQ_INT(apfp_create(&c, &root.fh, "fromsnap", 0644, PROTO_CREATE_GUARDED, &dst), 0);
	bool cloned = true;
	uint64_t done = 0;
	while (done < 100000) {
		int rc = apfp_copy(&c, &sf.fh, done, &dst.fh, done, 100000 - done, &n, &cloned);
		EXPECT_EQ_INT(rc, 0);
		if (rc || !n)
			break;
		done += n;
	}
	EXPECT_EQ_INT(done, 100000);
	EXPECT(!cloned);
	size_t got = 0;
	EXPECT_EQ_INT(get_file(&dst.fh, rb, sizeof(rb), &got), 0);
	EXPECT_EQ_INT(got, 100000);
	EXPECT(!memcmp(rb, model, 100000));
	struct proto_copy_req cq = { sf.fh, 0, dst.fh, 0, 4096, PROTO_COPY_CLONE_ONLY };
	EXPECT_EQ_INT(status(PROTO_OP_COPY, &cq, &r), PROTO_E_INVAL);      /* never shared */
	cq = (struct proto_copy_req){ f.fh, 0, sf.fh, 0, 4096, 0 };
	EXPECT_EQ_INT(status(PROTO_OP_COPY, &cq, &r), PROTO_E_ROFS);       /* into the snapshot */
	EXPECT_EQ_INT(apfp_snap_delete(&c, &root.fh, "xs"), 0);
	EXPECT_EQ_INT(apfp_getxattr(&c, &sf.fh, "user.a", val, sizeof(val), &len), -ESTALE);
}

/* FALLOCATE and SEEK map onto cowfs_fallocate / cowfs_seek (fs/falloc.c). */
TEST(fallocate_punch_zero_and_seek)
{
	static uint8_t w[65536], rb[200000], model[200000];
	struct apfp_obj f;
	struct proto_client_reply r;
	pattern(w, sizeof(w), 5);
	EXPECT_EQ_INT(put_file(&root, "sparse", w, sizeof(w), PROTO_FILE_SYNC, &f), 0);
	memcpy(model, w, sizeof(w));
	/* Punch blocks 2..5 and a partial edge: size unchanged, zeros read. */
	struct proto_fallocate_req fq = { f.fh, PROTO_FALLOC_PUNCH, 8192 - 10, 4 * 4096 + 10 };
	EXPECT_EQ_INT(status(PROTO_OP_FALLOCATE, &fq, &r), 0);
	EXPECT_EQ_INT(((const struct proto_wcc_rep *)r.msg)->wcc.after.size, sizeof(w));
	memset(model + 8192 - 10, 0, 4 * 4096 + 10);
	size_t got = 0;
	EXPECT_EQ_INT(get_file(&f.fh, rb, sizeof(rb), &got), 0);
	EXPECT_EQ_INT(got, sizeof(w));
	EXPECT(!memcmp(rb, model, sizeof(w)));
	struct proto_seek_req sq = { f.fh, 0, PROTO_SEEK_HOLE };
	EXPECT_EQ_INT(status(PROTO_OP_SEEK, &sq, &r), 0);
	EXPECT_EQ_INT(((const struct proto_seek_rep *)r.msg)->offset, 8192);
	sq = (struct proto_seek_req){ f.fh, 8192, PROTO_SEEK_DATA };
	EXPECT_EQ_INT(status(PROTO_OP_SEEK, &sq, &r), 0);
	EXPECT_EQ_INT(((const struct proto_seek_rep *)r.msg)->offset, 6 * 4096);
	sq = (struct proto_seek_req){ f.fh, sizeof(w), PROTO_SEEK_DATA };
	EXPECT_EQ_INT(status(PROTO_OP_SEEK, &sq, &r), PROTO_E_NXIO);
	/* Zero range past the end grows the file; allocate grows it further
	 * (a hole: SEEK_DATA from there finds nothing). */
	fq = (struct proto_fallocate_req){ f.fh, PROTO_FALLOC_ZERO, 60000, 40000 };
	EXPECT_EQ_INT(status(PROTO_OP_FALLOCATE, &fq, &r), 0);
	memset(model + 60000, 0, 40000);
	fq = (struct proto_fallocate_req){ f.fh, PROTO_FALLOC_ALLOC_KEEP_SIZE, 100000, 50000 };
	EXPECT_EQ_INT(status(PROTO_OP_FALLOCATE, &fq, &r), 0);
	EXPECT_EQ_INT(((const struct proto_wcc_rep *)r.msg)->wcc.after.size, 100000);
	fq = (struct proto_fallocate_req){ f.fh, PROTO_FALLOC_ALLOC, 100000, 50000 };
	EXPECT_EQ_INT(status(PROTO_OP_FALLOCATE, &fq, &r), 0);
	EXPECT_EQ_INT(((const struct proto_wcc_rep *)r.msg)->wcc.after.size, 150000);
	EXPECT_EQ_INT(get_file(&f.fh, rb, sizeof(rb), &got), 0);
	EXPECT_EQ_INT(got, 150000);
	EXPECT(!memcmp(rb, model, 150000));
	sq = (struct proto_seek_req){ f.fh, 65536, PROTO_SEEK_DATA };
	EXPECT_EQ_INT(status(PROTO_OP_SEEK, &sq, &r), PROTO_E_NXIO);
	/* Collapse blocks 1..2, then insert a 3-block hole at block 4. */
	fq = (struct proto_fallocate_req){ f.fh, PROTO_FALLOC_COLLAPSE, 4096, 8192 };
	EXPECT_EQ_INT(status(PROTO_OP_FALLOCATE, &fq, &r), 0);
	EXPECT_EQ_INT(((const struct proto_wcc_rep *)r.msg)->wcc.after.size, 150000 - 8192);
	memmove(model + 4096, model + 3 * 4096, 150000 - 3 * 4096);
	fq = (struct proto_fallocate_req){ f.fh, PROTO_FALLOC_INSERT, 4 * 4096, 3 * 4096 };
	EXPECT_EQ_INT(status(PROTO_OP_FALLOCATE, &fq, &r), 0);
	EXPECT_EQ_INT(((const struct proto_wcc_rep *)r.msg)->wcc.after.size, 150000 + 4096);
	memmove(model + 7 * 4096, model + 4 * 4096, 150000 - 8192 - 4 * 4096);
	memset(model + 4 * 4096, 0, 3 * 4096);
	EXPECT_EQ_INT(get_file(&f.fh, rb, sizeof(rb), &got), 0);
	EXPECT_EQ_INT(got, 150000 + 4096);
	EXPECT(!memcmp(rb, model, 150000 + 4096));
	/* Refusals (the codec admits only the six modes): an empty range,
	 * a directory, an unaligned collapse, an insert at the end of file. */
	fq = (struct proto_fallocate_req){ f.fh, PROTO_FALLOC_ALLOC, 0, 0 };
	EXPECT_EQ_INT(status(PROTO_OP_FALLOCATE, &fq, &r), PROTO_E_INVAL);
	fq = (struct proto_fallocate_req){ root.fh, PROTO_FALLOC_ALLOC, 0, 4096 };
	EXPECT_EQ_INT(status(PROTO_OP_FALLOCATE, &fq, &r), PROTO_E_ISDIR);
	fq = (struct proto_fallocate_req){ f.fh, PROTO_FALLOC_COLLAPSE, 100, 4096 };
	EXPECT_EQ_INT(status(PROTO_OP_FALLOCATE, &fq, &r), PROTO_E_INVAL);
	fq = (struct proto_fallocate_req){ f.fh, PROTO_FALLOC_INSERT, 150000 + 4096, 4096 };
	EXPECT_EQ_INT(status(PROTO_OP_FALLOCATE, &fq, &r), PROTO_E_INVAL);
}

int main(void)
{
	return apfp_serve_suite_main("apfp-serve-blocks", test_main);
}
