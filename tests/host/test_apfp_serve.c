/*
 * The protocol end to end on the host: the server (tools/apfp_serve.c,
 * the portable core with cowfs's operations, proto/serve_cowfs.c) runs in
 * this process on 127.0.0.1 over an image file (tests/host/apfp_serve_env.c;
 * or the appliance, from tests/qemu/test_proto_fs.py), and the client
 * library's typed operations (tools/apfp_ops.c) drive the operations on
 * names and data: data of many sizes, names, links, renames, stale and
 * forged handles, xattrs, readdir cookies and their verifier, setattr and
 * exclusive create, write stability and the verifier across a server
 * restart; the image is checked by cowfs's fsck at the restart and at the
 * end.  test_apfp_serve_blocks.c has copy, snapshots, fallocate and seek,
 * test_apfp_serve_special.c MKNOD.
 */
#define TEST_SUITE "apfp_serve"
#include "tests/host/test.h"
#include "tests/host/apfp_serve_env.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TEST(data_round_trips_of_many_sizes)
{
	static const size_t sizes[] = { 0, 1, 4095, 4096, 4097, 65536 + 3, (1u << 20), (3u << 20) + 17 };
	size_t max = (3u << 20) + 17;
	uint8_t *w = malloc(max), *r = malloc(max + 4096);
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char name[32];
		struct apfp_obj f;
		size_t got = 0;
		snprintf(name, sizeof(name), "data%u", i);
		pattern(w, sizes[i], i + 1);
		EXPECT_EQ_INT(put_file(&root, name, w, sizes[i], i % 3, &f), 0);
		EXPECT_EQ_INT(get_file(&f.fh, r, max + 4096, &got), 0);
		EXPECT_EQ_INT(got, sizes[i]);
		EXPECT(!memcmp(w, r, sizes[i]));
		struct proto_attr a;
		EXPECT_EQ_INT(apfp_getattr(&c, &f.fh, &a), 0);
		EXPECT_EQ_INT(a.size, sizes[i]);
		EXPECT_EQ_INT(a.type, PROTO_T_REG);
		EXPECT_EQ_INT(a.mode, 0644);
	}
	/* A read past the end: no data, eof. */
	struct apfp_obj f;
	uint32_t n = 1;
	bool eof = false;
	EXPECT_EQ_INT(apfp_lookup(&c, &root.fh, "data2", &f), 0);
	EXPECT_EQ_INT(apfp_read(&c, &f.fh, 1u << 20, r, 4096, &n, &eof), 0);
	EXPECT_EQ_INT(n, 0);
	EXPECT(eof);
	/* Sparse: a write far out leaves zeros before it. */
	EXPECT_EQ_INT(apfp_write(&c, &f.fh, 100000, "x", 1, PROTO_UNSTABLE, &n, NULL), 0);
	EXPECT_EQ_INT(apfp_read(&c, &f.fh, 99990, r, 20, &n, &eof), 0);
	EXPECT_EQ_INT(n, 11);
	EXPECT(eof);
	EXPECT(r[0] == 0 && r[9] == 0 && r[10] == 'x');
	free(w);
	free(r);
}

TEST(names_links_renames_and_their_errors)
{
	struct apfp_obj d, f, g, l;
	struct proto_attr a;
	char target[64];
	EXPECT_EQ_INT(apfp_mkdir(&c, &root.fh, "names", 0750, &d), 0);
	EXPECT_EQ_INT(d.attr.type, PROTO_T_DIR);
	EXPECT_EQ_INT(d.attr.mode, 0750);
	EXPECT_EQ_INT(apfp_mkdir(&c, &root.fh, "names", 0750, &g), -EEXIST);
	EXPECT_EQ_INT(apfp_create(&c, &d.fh, "a", 0600, PROTO_CREATE_GUARDED, &f), 0);
	EXPECT_EQ_INT(apfp_create(&c, &d.fh, "a", 0600, PROTO_CREATE_GUARDED, &g), -EEXIST);
	/* UNCHECKED on an existing file opens it: the same handle. */
	EXPECT_EQ_INT(apfp_create(&c, &d.fh, "a", 0600, PROTO_CREATE_UNCHECKED, &g), 0);
	EXPECT(!memcmp(&f.fh, &g.fh, sizeof(f.fh)));
	EXPECT_EQ_INT(apfp_create(&c, &root.fh, "names", 0600, PROTO_CREATE_UNCHECKED, &g), -EISDIR);
	/* hard link: two names, nlink 2 */
	EXPECT_EQ_INT(apfp_link(&c, &f.fh, &d.fh, "b", &a), 0);
	EXPECT_EQ_INT(a.nlink, 2);
	EXPECT_EQ_INT(apfp_link(&c, &d.fh, &root.fh, "dirlink", &a), -EPERM);
	/* symlink and readlink */
	EXPECT_EQ_INT(apfp_symlink(&c, &d.fh, "s", "../some/where", &l), 0);
	EXPECT_EQ_INT(l.attr.type, PROTO_T_LNK);
	EXPECT_EQ_INT(apfp_readlink(&c, &l.fh, target, sizeof(target)), 0);
	EXPECT_STREQ(target, "../some/where");
	EXPECT_EQ_INT(apfp_readlink(&c, &f.fh, target, sizeof(target)), -EINVAL);
	/* rename: NOREPLACE refuses, EXCHANGE swaps, plain replaces */
	EXPECT_EQ_INT(apfp_create(&c, &d.fh, "c", 0600, PROTO_CREATE_GUARDED, &g), 0);
	EXPECT_EQ_INT(apfp_rename(&c, &d.fh, "a", &d.fh, "c", PROTO_RENAME_NOREPLACE), -EEXIST);
	EXPECT_EQ_INT(apfp_rename(&c, &d.fh, "a", &d.fh, "c", PROTO_RENAME_EXCHANGE), 0);
	struct apfp_obj x;
	EXPECT_EQ_INT(apfp_lookup(&c, &d.fh, "c", &x), 0);
	EXPECT_EQ_INT(x.attr.ino, f.attr.ino);
	EXPECT_EQ_INT(apfp_rename(&c, &d.fh, "c", &root.fh, "moved", 0), 0);
	EXPECT_EQ_INT(apfp_lookup(&c, &d.fh, "c", &x), -ENOENT);
	EXPECT_EQ_INT(apfp_walk(&c, &root, "moved", &x), 0);
	EXPECT_EQ_INT(x.attr.ino, f.attr.ino);
	/* a directory into its own subtree */
	struct apfp_obj sub;
	EXPECT_EQ_INT(apfp_mkdir(&c, &d.fh, "sub", 0755, &sub), 0);
	EXPECT_EQ_INT(apfp_rename(&c, &root.fh, "names", &sub.fh, "loop", 0), -EINVAL);
	/* rmdir of a non-empty directory; remove of a directory */
	EXPECT_EQ_INT(apfp_remove(&c, &root.fh, "names", true), -ENOTEMPTY);
	EXPECT_EQ_INT(apfp_remove(&c, &d.fh, "sub", false), -EISDIR);
	EXPECT_EQ_INT(apfp_remove(&c, &d.fh, "sub", true), 0);
	/* walking through a file, and a path with .. */
	EXPECT_EQ_INT(apfp_walk(&c, &root, "moved/x", &x), -ENOTDIR);
	EXPECT_EQ_INT(apfp_walk(&c, &root, "names/../moved", &x), -EINVAL);
	/* reads of a directory, readdir of a file */
	uint8_t buf[16];
	uint32_t n;
	EXPECT_EQ_INT(apfp_read(&c, &d.fh, 0, buf, sizeof(buf), &n, NULL), -EISDIR);
}

TEST(stale_and_forged_handles)
{
	struct apfp_obj f;
	struct proto_attr a;
	EXPECT_EQ_INT(apfp_create(&c, &root.fh, "doomed", 0644, PROTO_CREATE_GUARDED, &f), 0);
	EXPECT_EQ_INT(apfp_remove(&c, &root.fh, "doomed", false), 0);
	EXPECT_EQ_INT(apfp_getattr(&c, &f.fh, &a), -ESTALE);
	uint32_t n;
	EXPECT_EQ_INT(apfp_write(&c, &f.fh, 0, "x", 1, PROTO_UNSTABLE, &n, NULL), -ESTALE);
	/* a new file does not answer for the old handle, even on the same inode number */
	struct apfp_obj g;
	EXPECT_EQ_INT(apfp_create(&c, &root.fh, "doomed", 0644, PROTO_CREATE_GUARDED, &g), 0);
	EXPECT_EQ_INT(apfp_getattr(&c, &f.fh, &a), -ESTALE);
	/* forged: one byte of the inode number changed -> BADHANDLE */
	struct proto_fh_req q = { g.fh };
	struct proto_client_reply r;
	q.fh.b[8] ^= 1;
	EXPECT_EQ_INT(status(PROTO_OP_GETATTR, &q, &r), PROTO_E_BADHANDLE);
}

TEST(xattrs)
{
	struct apfp_obj f;
	struct proto_client_reply r;
	static uint8_t big[65536];
	EXPECT_EQ_INT(apfp_create(&c, &root.fh, "with-xattrs", 0644, PROTO_CREATE_GUARDED, &f), 0);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 13 + 7);
	struct proto_setxattr_req sq = { f.fh, { "user.small", 10 }, { (const uint8_t *)"v1", 2 }, PROTO_XATTR_CREATE };
	EXPECT_EQ_INT(status(PROTO_OP_SETXATTR, &sq, &r), 0);
	EXPECT(((const struct proto_wcc_rep *)r.msg)->wcc.after.change >= ((const struct proto_wcc_rep *)r.msg)->wcc.before.change);
	EXPECT_EQ_INT(status(PROTO_OP_SETXATTR, &sq, &r), PROTO_E_EXIST);       /* CREATE on an existing name */
	sq.flags = PROTO_XATTR_REPLACE;
	sq.name = (struct proto_str){ "user.absent", 11 };
	EXPECT_EQ_INT(status(PROTO_OP_SETXATTR, &sq, &r), PROTO_E_NODATA);      /* REPLACE of a missing one */
	sq = (struct proto_setxattr_req){ f.fh, { "user.big", 8 }, { big, sizeof(big) }, 0 };
	EXPECT_EQ_INT(status(PROTO_OP_SETXATTR, &sq, &r), 0);
	struct proto_xattr_req gq = { f.fh, { "user.big", 8 } };
	EXPECT_EQ_INT(status(PROTO_OP_GETXATTR, &gq, &r), 0);
	const struct proto_getxattr_rep *g = (const void *)r.msg;
	EXPECT(g->value.len == sizeof(big) && !memcmp(g->value.p, big, sizeof(big)));
	gq.name = (struct proto_str){ "user.small", 10 };
	EXPECT_EQ_INT(status(PROTO_OP_GETXATTR, &gq, &r), 0);
	g = (const void *)r.msg;
	EXPECT(g->value.len == 2 && !memcmp(g->value.p, "v1", 2));
	struct proto_fh_req lq = { f.fh };
	EXPECT_EQ_INT(status(PROTO_OP_LISTXATTR, &lq, &r), 0);
	const struct proto_listxattr_rep *l = (const void *)r.msg;
	struct proto_xname x;
	uint32_t pos = 0;
	unsigned seen = 0;
	while (proto_list_next(&l->names, PROTO_L_XNAME, &pos, &x) > 0)
		seen |= (x.name.len == 8 && !memcmp(x.name.p, "user.big", 8)) ? 1u :
			(x.name.len == 10 && !memcmp(x.name.p, "user.small", 10)) ? 2u : 4u;
	EXPECT_EQ_INT(seen, 3);
	EXPECT_EQ_INT(l->names.count, 2);
	EXPECT_EQ_INT(status(PROTO_OP_REMOVEXATTR, &gq, &r), 0);
	EXPECT_EQ_INT(status(PROTO_OP_GETXATTR, &gq, &r), PROTO_E_NODATA);
	EXPECT_EQ_INT(status(PROTO_OP_REMOVEXATTR, &gq, &r), PROTO_E_NODATA);
	EXPECT_EQ_INT(status(PROTO_OP_LISTXATTR, &lq, &r), 0);
	EXPECT_EQ_INT(((const struct proto_listxattr_rep *)r.msg)->names.count, 1);
}

struct seen { unsigned n; unsigned char hit[400]; bool dup, bad; };

static int count_cb(void *arg, const char *name, const struct apfp_obj *o)
{
	struct seen *s = arg;
	unsigned i;
	if (sscanf(name, "entry-%u", &i) != 1 || i >= 400 || o->attr.type != PROTO_T_REG) {
		s->bad = true;
		return 0;
	}
	s->dup |= s->hit[i]++ > 0;
	s->n++;
	return 0;
}

TEST(readdir_cookies_verifier_and_limits)
{
	struct apfp_obj d, f;
	EXPECT_EQ_INT(apfp_mkdir(&c, &root.fh, "many", 0755, &d), 0);
	for (unsigned i = 0; i < 400; i++) {
		char name[64];
		snprintf(name, sizeof(name), "entry-%u-%s", i, "with-a-longer-name-to-fill-replies-faster");
		EXPECT_EQ_INT(apfp_create(&c, &d.fh, name, 0644, PROTO_CREATE_GUARDED, &f), 0);
	}
	struct seen s = { 0 };
	EXPECT_EQ_INT(apfp_readdir(&c, &d.fh, count_cb, &s), 0);
	EXPECT_EQ_INT(s.n, 400);
	EXPECT(!s.dup && !s.bad);

	/* Small replies: several calls, each resuming at the last cookie. */
	struct proto_readdir_req q = { .dir = d.fh, .maxcount = 2048 };
	struct proto_client_reply r;
	unsigned total = 0, calls = 0;
	bool eof = false;
	uint64_t mid_cookie = 0;
	struct proto_verf mid_verf = { { 0 } };
	while (!eof && calls < 1000) {
		EXPECT_EQ_INT(status(PROTO_OP_READDIR, &q, &r), 0);
		if (r.hdr.status)
			break;
		const struct proto_readdir_rep *rep = (const void *)r.msg;
		struct proto_dirent e;
		uint32_t pos = 0;
		EXPECT(rep->entries.count > 0 || rep->eof);
		while (proto_list_next(&rep->entries, PROTO_L_DIRENT, &pos, &e) > 0) {
			q.cookie = e.cookie;
			total++;
		}
		q.verf = rep->verf;
		eof = rep->eof;
		if (++calls == 3) {
			mid_cookie = q.cookie;
			mid_verf = q.verf;
		}
	}
	EXPECT_EQ_INT(total, 400);
	EXPECT(calls > 5);
	/* Removing entries does not disturb a cookie handed out. */
	EXPECT_EQ_INT(apfp_remove(&c, &d.fh, "entry-0-with-a-longer-name-to-fill-replies-faster", false), 0);
	q.cookie = mid_cookie;
	q.verf = mid_verf;
	EXPECT_EQ_INT(status(PROTO_OP_READDIR, &q, &r), 0);
	/* A cookie with another directory's verifier: BAD_COOKIE. */
	q.verf.b[0] ^= 0xff;
	EXPECT_EQ_INT(status(PROTO_OP_READDIR, &q, &r), PROTO_E_BAD_COOKIE);
	/* Not even one entry fits: TOOSMALL. */
	q = (struct proto_readdir_req){ .dir = d.fh, .maxcount = 140 };
	EXPECT_EQ_INT(status(PROTO_OP_READDIRPLUS, &q, &r), PROTO_E_TOOSMALL);
	/* READDIR of a file */
	EXPECT_EQ_INT(apfp_create(&c, &root.fh, "plain", 0644, PROTO_CREATE_GUARDED, &f), 0);
	q.dir = f.fh;
	q.maxcount = 4096;
	EXPECT_EQ_INT(status(PROTO_OP_READDIR, &q, &r), PROTO_E_NOTDIR);
}

TEST(setattr_wcc_and_exclusive_create)
{
	struct apfp_obj f, g;
	struct proto_attr a;
	EXPECT_EQ_INT(apfp_create(&c, &root.fh, "attrs", 0644, PROTO_CREATE_GUARDED, &f), 0);
	struct proto_setattr_req q = { f.fh, { .mask = PROTO_SA_SIZE | PROTO_SA_MODE, .mode = 0600, .size = 12345 } };
	struct proto_client_reply r;
	EXPECT_EQ_INT(status(PROTO_OP_SETATTR, &q, &r), 0);
	const struct proto_wcc_rep *w = (const void *)r.msg;
	EXPECT_EQ_INT(w->wcc.before.size, 0);
	EXPECT_EQ_INT(w->wcc.after.size, 12345);
	EXPECT_EQ_INT(w->wcc.after.mode, 0600);
	EXPECT(w->wcc.after.change != w->wcc.before.change);
	struct proto_sattr sa = { .mask = PROTO_SA_MTIME, .mtime = { 1000000000, 5 } };
	EXPECT_EQ_INT(apfp_setattr(&c, &f.fh, &sa, &a), 0);
	EXPECT_EQ_INT(a.mtime.sec, 1000000000);
	EXPECT_EQ_INT(a.mtime.nsec, 5);
	/* exclusive create: a retransmission (same verifier) gets the file, another verifier EEXIST */
	struct proto_create_req cq = { .dir = root.fh, .name = { "excl", 4 }, .how = PROTO_CREATE_EXCLUSIVE,
				       .verf = { { 1, 2, 3, 4, 5, 6, 7, 8 } } };
	EXPECT_EQ_INT(status(PROTO_OP_CREATE, &cq, &r), 0);
	g.fh = ((const struct proto_newobj_rep *)r.msg)->fh;
	EXPECT_EQ_INT(status(PROTO_OP_CREATE, &cq, &r), 0);
	EXPECT(!memcmp(&g.fh, &((const struct proto_newobj_rep *)r.msg)->fh, sizeof(g.fh)));
	cq.verf.b[7] = 9;
	EXPECT_EQ_INT(status(PROTO_OP_CREATE, &cq, &r), PROTO_E_EXIST);
}

static uint8_t durable_data[200000];
static struct apfp_obj durable, reused;
static struct proto_verf verf_before;

/* One server instance answers one verifier: WRITE (every stability),
 * COMMIT and FSYNC agree; committed is at least what was asked. */
TEST(write_stability_and_one_verifier)
{
	struct proto_verf v;
	uint32_t n;
	pattern(durable_data, sizeof(durable_data), 99);
	EXPECT_EQ_INT(put_file(&root, "durable", durable_data, sizeof(durable_data), PROTO_FILE_SYNC, &durable), 0);
	EXPECT_EQ_INT(apfp_write(&c, &durable.fh, 0, durable_data, 10, PROTO_UNSTABLE, &n, &verf_before), 0);
	EXPECT_EQ_INT(n, 10);
	for (uint8_t st = PROTO_UNSTABLE; st <= PROTO_FILE_SYNC; st++) {
		struct proto_write_req q = { durable.fh, 5, st, { durable_data + 5, 5 } };
		struct proto_client_reply r;
		EXPECT_EQ_INT(status(PROTO_OP_WRITE, &q, &r), 0);
		const struct proto_write_rep *w = (const void *)r.msg;
		EXPECT(w->committed >= st);
		EXPECT_EQ_INT(w->count, 5);
		EXPECT(!memcmp(&w->verf, &verf_before, sizeof(v)));
	}
	EXPECT_EQ_INT(apfp_commit(&c, &durable.fh, &v), 0);
	EXPECT(!memcmp(&v, &verf_before, sizeof(v)));
	struct proto_fsync_req fq = { durable.fh, false };
	struct proto_client_reply r;
	EXPECT_EQ_INT(status(PROTO_OP_FSYNC, &fq, &r), 0);
	EXPECT(!memcmp(&((const struct proto_fsync_rep *)r.msg)->verf, &verf_before, sizeof(v)));
	EXPECT_EQ_INT(((const struct proto_fsync_rep *)r.msg)->attr.size, sizeof(durable_data));
	/* The newest inode, removed: after a restart its number is given out
	 * again, with another generation, and its old handle must be stale. */
	EXPECT_EQ_INT(apfp_create(&c, &root.fh, "reuse-me", 0644, PROTO_CREATE_GUARDED, &reused), 0);
	EXPECT_EQ_INT(apfp_remove(&c, &root.fh, "reuse-me", false), 0);
	EXPECT_EQ_INT(apfp_commit(&c, &durable.fh, &v), 0);
	/* Against the appliance the restart is a reboot between two runs:
	 * the handle and the verifier go to APFP_TEST_STATE for the next. */
	const char *state = getenv("APFP_TEST_STATE");
	FILE *f = state ? fopen(state, "wb") : NULL;
	if (f) {
		EXPECT(fwrite(&durable.fh, sizeof(durable.fh), 1, f) == 1);
		EXPECT(fwrite(&verf_before, sizeof(verf_before), 1, f) == 1);
		EXPECT(fwrite(&reused, sizeof(reused), 1, f) == 1);
		EXPECT(fclose(f) == 0);
	}
}

static int load_state(void)
{
	const char *state = getenv("APFP_TEST_STATE");
	FILE *f = state ? fopen(state, "rb") : NULL;
	int ok = f && fread(&durable.fh, sizeof(durable.fh), 1, f) == 1 &&
		 fread(&verf_before, sizeof(verf_before), 1, f) == 1 && fread(&reused, sizeof(reused), 1, f) == 1;
	if (f)
		fclose(f);
	pattern(durable_data, sizeof(durable_data), 99);
	return ok ? 0 : -1;
}

/* Last (host mode only; the qemu test reboots the appliance instead): the
 * server restarts.  FILE_SYNC data survives, handles still work (the key
 * comes from the secret), the verifier changed. */
TEST(restart_keeps_data_and_handles_and_changes_verifier)
{
	static uint8_t rb[200000];
	struct proto_verf v3;
	if (apfp_serve_ext) {
		EXPECT_EQ_INT(load_state(), 0);         /* written by the run before the reboot */
		goto after_restart;
	}
	apfpc_close(&c);
	EXPECT_EQ_INT(apfp_serve_stop(), 0);
	EXPECT_EQ_INT(apfp_serve_check_image(), 0);     /* the image is consistent */
	apfp_serve_start();
	EXPECT_EQ_INT(connect_client(), 0);
after_restart:;
	size_t got = 0;
	EXPECT_EQ_INT(get_file(&durable.fh, rb, sizeof(rb), &got), 0);
	EXPECT_EQ_INT(got, sizeof(durable_data));
	EXPECT(!memcmp(rb, durable_data, sizeof(durable_data)));
	EXPECT_EQ_INT(apfp_commit(&c, &durable.fh, &v3), 0);
	EXPECT(memcmp(&verf_before, &v3, sizeof(v3)) != 0);
	struct apfp_obj again;
	struct proto_attr a;
	EXPECT_EQ_INT(apfp_create(&c, &root.fh, "reused", 0644, PROTO_CREATE_GUARDED, &again), 0);
	if (!apfp_serve_ext)        /* on the appliance other clients made newer inodes since */
		EXPECT_EQ_INT(again.attr.ino, reused.attr.ino);
	EXPECT_EQ_INT(apfp_getattr(&c, &reused.fh, &a), -ESTALE);
	EXPECT_EQ_INT(apfp_getattr(&c, &again.fh, &a), 0);
}

int main(void)
{
	return apfp_serve_suite_main("apfp-serve", test_main);
}
