/*
 * The protocol end to end on the host: the server (tools/apfp_serve.c,
 * the portable core with cowfs's operations, proto/serve_cowfs.c) runs in
 * this process on 127.0.0.1 over an image file, and the client library's
 * typed operations (tools/apfp_ops.c) drive every operation the server
 * answers: data of many sizes, names, links, renames, readdir cookies and
 * their verifier, stale and forged handles, write stability and the
 * verifier across a server restart, snapshots (reads through their
 * handles; their xattrs, seek and copy out), server-side copy (a reflink
 * when aligned: space and bytes checked), fallocate
 * (punch, zero, allocate) and seek data/hole; the
 * image is checked by cowfs's fsck afterwards.
 */
#define TEST_SUITE "apfp_serve"
#include "tests/host/test.h"
#include "tools/apfp_ops.h"
#include "tests/host/apfp_env.h"
#include "fs/vfs.h"
#include "platform/platform.h"
#include "platform/host/platform_host.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int apfp_serve_main(int argc, char **argv);

#define IMAGE_BYTES (256ull << 20)

static struct apfp_env env;
static char *const dir = env.dir, *const image = env.image, *const secret_file = env.secret_file,
	    *const port_file = env.port_file, *const vol_arg = env.vol_arg;
static pthread_t server;
static int server_rc;
static uint16_t port;
static struct apfpc c;
static struct apfp_obj root;

static void *server_thread(void *arg)
{
	(void)arg;
	char *argv[] = { "apfp-serve", "--port", "0", "--port-file", port_file, "--secret-file", secret_file,
			 vol_arg, NULL };
	server_rc = apfp_serve_main(8, argv);
	return NULL;
}

static void server_start(void)
{
	unlink(port_file);
	pthread_create(&server, NULL, server_thread, NULL);
	if ((port = apfp_env_port(&env, NULL, NULL)))
		return;
	fprintf(stderr, "server did not start\n");
	abort();
}

static void server_stop(void)
{
	kill(getpid(), SIGTERM);
	pthread_join(server, NULL);
}

/* External mode (the qemu test, against the appliance): APFP_TEST_SERVER
 * = 127.0.0.1:PORT, APFP_TEST_SECRET = the token, APFP_TEST_EXPORT = the
 * export; every test then works in a directory of its own run. */
static const char *ext_server, *ext_export;
static char run_name[64];       /* external mode: the run's directory under the export's root */
static char ext_host[64];

/* A connection whose requests carry uid/gid `ids` (NULL: this process's). */
static int connect_as(struct apfpc *cc, const uint32_t *ids)
{
	static const uint8_t psk[] = "apfp serve test secret, 32 bytes";
	const char *secret = ext_server ? getenv("APFP_TEST_SECRET") : (const char *)psk;
	struct apfpc_cfg cfg = { .host = "127.0.0.1", .port = port, .secret = (const uint8_t *)secret,
				 .secret_len = strlen(secret), .timeout_ms = 60000, .max_inflight = 8,
				 .client_id = "test", .as_ids = ids != NULL, .uid = ids ? ids[0] : 0,
				 .gid = ids ? ids[1] : 0 };
	if (ext_server)
		cfg.host = ext_host;
	int rc = apfpc_open(cc, &cfg);
	if (rc)
		fprintf(stderr, "connect: %s\n", cc->err);
	return rc;
}

static int connect_client(void)
{
	static const uint32_t root_ids[2] = { 0, 0 };     /* devices need uid 0 (MKNOD) */
	int rc = connect_as(&c, root_ids);
	if (!rc)
		rc = apfp_export_root(&c, ext_server ? ext_export : "vol", &root);
	return rc;
}

static void setup(void)
{
	apfp_env_make(&env, "apfp-serve", "apfp serve test secret, 32 bytes\n", IMAGE_BYTES);
	server_start();
	if (connect_client())
		abort();
}

/* The wire status of one call (UINT32_MAX when the connection failed). */
static uint32_t status(uint8_t op, const void *req, struct proto_client_reply *r)
{
	memset(&r->hdr, 0, sizeof(r->hdr));
	int rc = apfpc_call(&c, op, req, r);
	if (rc < 0 && !r->hdr.status) {
		fprintf(stderr, "%s: %s\n", proto_op_name(op), c.err);
		return UINT32_MAX;
	}
	return r->hdr.status;
}

static void pattern(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		p[i] = (uint8_t)(seed >> 56);
	}
}

/* Write all of buf in 1 MiB requests, read it back, compare. */
static int put_file(const struct apfp_obj *d, const char *name, const uint8_t *buf, size_t len, uint8_t stable,
		    struct apfp_obj *out)
{
	int rc = apfp_create(&c, &d->fh, name, 0644, PROTO_CREATE_GUARDED, out);
	for (size_t off = 0; !rc && off < len;) {
		uint32_t n = 0, want = len - off > PROTO_MAX_IO ? PROTO_MAX_IO : (uint32_t)(len - off);
		rc = apfp_write(&c, &out->fh, off, buf + off, want, stable, &n, NULL);
		if (!rc && !n)
			rc = -EIO;
		off += n;
	}
	return rc;
}

static int get_file(const struct proto_handle *fh, uint8_t *buf, size_t cap, size_t *len)
{
	size_t off = 0;
	for (;;) {
		uint32_t n = 0, want = cap - off > PROTO_MAX_IO ? PROTO_MAX_IO : (uint32_t)(cap - off);
		bool eof = false;
		int rc = apfp_read(&c, fh, off, buf + off, want, &n, &eof);
		if (rc)
			return rc;
		off += n;
		if (eof || !n || off == cap)
			break;
	}
	*len = off;
	return 0;
}

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

TEST(fsstat_copy_and_snapshots)
{
	struct proto_fsstat_rep st;
	EXPECT_EQ_INT(apfp_fsstat(&c, &root.fh, &st), 0);
	EXPECT(st.total_bytes > 200ull << 20 && st.total_bytes <= IMAGE_BYTES);
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
	if (run_name[0])
		EXPECT_EQ_INT(apfp_lookup(&c, &sroot, run_name, &base), 0);
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
	if (run_name[0])
		EXPECT_EQ_INT(apfp_lookup(&c, &sroot, run_name, &base), 0);
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

/* The special file of each type in directory d, seen by LOOKUP, GETATTR,
 * READDIRPLUS and READDIR alike (type, rdev, mode, owner). */
struct special { const char *name; uint8_t type; uint32_t major, minor; };
static const struct special specials[] = {
	{ "fifo", PROTO_T_FIFO, 0, 0 }, { "sock", PROTO_T_SOCK, 0, 0 },
	{ "null", PROTO_T_CHR, 1, 3 }, { "disk", PROTO_T_BLK, 259, 0x12345 },
};
#define NSPECIAL (sizeof(specials) / sizeof(specials[0]))

static bool attr_is(const struct proto_attr *a, const struct special *s)
{
	return a->type == s->type && a->rdev_major == s->major && a->rdev_minor == s->minor && a->mode == 0640 &&
	       a->uid == 1234 && a->gid == 4321 && a->size == 0;
}

struct special_seen { unsigned plus, plain; bool bad; };

static int special_cb(void *arg, const char *name, const struct apfp_obj *o)
{
	struct special_seen *s = arg;
	for (unsigned i = 0; i < NSPECIAL; i++)
		if (!strcmp(name, specials[i].name)) {
			s->bad |= !attr_is(&o->attr, &specials[i]);
			s->plus |= 1u << i;
		}
	return 0;
}

TEST(mknod_special_files_and_refusals)
{
	struct apfp_obj d, o, again;
	struct proto_attr a;
	struct proto_client_reply r;
	EXPECT_EQ_INT(apfp_mkdir(&c, &root.fh, "special", 0777, &d), 0);
	for (unsigned i = 0; i < NSPECIAL; i++) {
		const struct special *s = &specials[i];
		EXPECT_EQ_INT(apfp_mknod_as(&c, &d.fh, s->name, s->type, 0640, s->major, s->minor, 1234, 4321, &o), 0);
		EXPECT(attr_is(&o.attr, s));
		EXPECT_EQ_INT(apfp_getattr(&c, &o.fh, &a), 0);
		EXPECT(attr_is(&a, s));
		EXPECT_EQ_INT(apfp_lookup(&c, &d.fh, s->name, &again), 0);
		EXPECT(attr_is(&again.attr, s) && !memcmp(&again.fh, &o.fh, sizeof(o.fh)));
		/* the name exists */
		EXPECT_EQ_INT(apfp_mknod_as(&c, &d.fh, s->name, s->type, 0640, s->major, s->minor, 0, 0, &o), -EEXIST);
	}
	struct special_seen seen = { 0 };
	EXPECT_EQ_INT(apfp_readdir(&c, &d.fh, special_cb, &seen), 0);
	EXPECT(!seen.bad && seen.plus == (1u << NSPECIAL) - 1);
	/* READDIR's type byte */
	struct proto_readdir_req rq = { .dir = d.fh, .maxcount = 4096 };
	EXPECT_EQ_INT(status(PROTO_OP_READDIR, &rq, &r), 0);
	const struct proto_readdir_rep *rep = (const void *)r.msg;
	struct proto_dirent e;
	uint32_t pos = 0;
	while (!r.hdr.status && proto_list_next(&rep->entries, PROTO_L_DIRENT, &pos, &e) > 0)
		for (unsigned i = 0; i < NSPECIAL; i++)
			if (e.name.len == strlen(specials[i].name) && !memcmp(e.name.p, specials[i].name, e.name.len)) {
				EXPECT_EQ_INT(e.type, specials[i].type);
				seen.plain |= 1u << i;
			}
	EXPECT_EQ_INT(seen.plain, (1u << NSPECIAL) - 1);

	/* Refusals: the types with calls of their own, a device number on a
	 * fifo, a size, a device made by another uid than 0, a snapshot. */
	struct proto_mknod_req q = { .dir = d.fh, .name = { "x", 1 }, .type = PROTO_T_REG };
	EXPECT_EQ_INT(status(PROTO_OP_MKNOD, &q, &r), PROTO_E_INVAL);
	q.type = PROTO_T_DIR;
	EXPECT_EQ_INT(status(PROTO_OP_MKNOD, &q, &r), PROTO_E_INVAL);
	q.type = PROTO_T_FIFO;
	q.rdev_minor = 1;
	EXPECT_EQ_INT(status(PROTO_OP_MKNOD, &q, &r), PROTO_E_INVAL);
	q.rdev_minor = 0;
	q.sattr.mask = PROTO_SA_SIZE;
	EXPECT_EQ_INT(status(PROTO_OP_MKNOD, &q, &r), PROTO_E_INVAL);
	q.sattr.mask = 0;
	EXPECT_EQ_INT(apfp_lookup(&c, &d.fh, "x", &o), -ENOENT);
	q.name = (struct proto_str){ "f", 1 };
	EXPECT_EQ_INT(apfp_lookup(&c, &d.fh, "fifo", &o), 0);
	q.dir = o.fh;                   /* a fifo is no directory */
	EXPECT_EQ_INT(status(PROTO_OP_MKNOD, &q, &r), PROTO_E_NOTDIR);
	struct apfpc user;
	static const uint32_t user_ids[2] = { 1000, 1000 };
	EXPECT_EQ_INT(connect_as(&user, user_ids), 0);
	EXPECT_EQ_INT(apfp_mknod_as(&user, &d.fh, "dev", PROTO_T_CHR, 0600, 1, 3, 1000, 1000, &o), -EPERM);
	EXPECT_EQ_INT(apfp_mknod_as(&user, &d.fh, "dev", PROTO_T_BLK, 0600, 8, 1, 1000, 1000, &o), -EPERM);
	EXPECT_EQ_INT(apfp_lookup(&c, &d.fh, "dev", &o), -ENOENT);
	/* fifos and sockets: anyone; the header's ids own it without sattr */
	struct proto_mknod_req uq = { .dir = d.fh, .name = { "ufifo", 5 }, .type = PROTO_T_FIFO };
	memset(&r, 0, sizeof(r));
	EXPECT_EQ_INT(apfpc_call(&user, PROTO_OP_MKNOD, &uq, &r), 0);
	EXPECT_EQ_INT(r.hdr.status, 0);
	const struct proto_newobj_rep *nr = (const void *)r.msg;
	EXPECT(nr->attr.type == PROTO_T_FIFO && nr->attr.uid == 1000 && nr->attr.gid == 1000 &&
	       nr->attr.mode == 0644);
	apfpc_close(&user);
	uint32_t id = 0;
	EXPECT_EQ_INT(apfp_snap_create(&c, &root.fh, "mknod-snap", &id), 0);
	struct proto_fh_req lq = { root.fh };
	EXPECT_EQ_INT(status(PROTO_OP_SNAP_LIST, &lq, &r), 0);
	struct proto_snap sn;
	pos = 0;
	EXPECT_EQ_INT(proto_list_next(&((const struct proto_snap_list_rep *)r.msg)->snaps, PROTO_L_SNAP, &pos, &sn), 1);
	struct proto_mknod_req sq = { .dir = sn.root, .name = { "y", 1 }, .type = PROTO_T_FIFO };
	EXPECT_EQ_INT(status(PROTO_OP_MKNOD, &sq, &r), PROTO_E_ROFS);
	EXPECT_EQ_INT(apfp_snap_delete(&c, &root.fh, "mknod-snap"), 0);
	/* renamed, linked and removed like any file */
	EXPECT_EQ_INT(apfp_rename(&c, &d.fh, "fifo", &d.fh, "fifo2", 0), 0);
	EXPECT_EQ_INT(apfp_lookup(&c, &d.fh, "null", &o), 0);
	EXPECT_EQ_INT(apfp_link(&c, &o.fh, &d.fh, "null2", &a), 0);
	EXPECT(a.nlink == 2 && a.type == PROTO_T_CHR && a.rdev_major == 1 && a.rdev_minor == 3);
	const char *const gone[] = { "fifo2", "sock", "null", "null2", "disk", "ufifo" };
	for (unsigned i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
		EXPECT_EQ_INT(apfp_remove(&c, &d.fh, gone[i], false), 0);
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
	if (ext_server) {
		EXPECT_EQ_INT(load_state(), 0);         /* written by the run before the reboot */
		goto after_restart;
	}
	apfpc_close(&c);
	server_stop();
	EXPECT_EQ_INT(server_rc, 0);

	/* the image is consistent */
	struct plat_bdev *b = plat_host_bdev_open(image, IMAGE_BYTES, 512, 2, false);
	struct cowfs_mount *m = NULL;
	char msg[512] = "";
	EXPECT(b != NULL);
	EXPECT_EQ_INT(cowfs_vfs_mount(b, NULL, &m), 0);
	if (m) {
		EXPECT_EQ_INT(cowfs_vfs_check(m, msg, sizeof(msg)), 0);
		EXPECT_EQ_INT(cowfs_vfs_unmount(m), 0);
	}
	if (msg[0])
		fprintf(stderr, "check: %s\n", msg);
	plat_bdev_close(b);

	server_start();
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
	if (!ext_server)        /* on the appliance other clients made newer inodes since */
		EXPECT_EQ_INT(again.attr.ino, reused.attr.ino);
	EXPECT_EQ_INT(apfp_getattr(&c, &reused.fh, &a), -ESTALE);
	EXPECT_EQ_INT(apfp_getattr(&c, &again.fh, &a), 0);
	if (ext_server)
		return;
	apfpc_close(&c);
	server_stop();
	EXPECT_EQ_INT(server_rc, 0);
}

static void setup_external(void)
{
	char *colon = strrchr(ext_server, ':');
	char name[64];
	struct apfp_obj d;
	if (!colon || (size_t)(colon - ext_server) >= sizeof(ext_host) || !getenv("APFP_TEST_SECRET") || !ext_export)
		abort();
	memcpy(ext_host, ext_server, (size_t)(colon - ext_server));
	port = (uint16_t)atoi(colon + 1);
	plat_init();
	if (connect_client())
		abort();
	snprintf(name, sizeof(name), "run-%d-%ld", (int)getpid(), (long)time(NULL));
	snprintf(run_name, sizeof(run_name), "%s", name);
	if (apfp_mkdir(&c, &root.fh, name, 0755, &d)) {
		fprintf(stderr, "mkdir %s: %s\n", name, c.err);
		abort();
	}
	root = d;
	printf("# run directory %s\n", name);
	fflush(stdout);
}

int main(void)
{
	if ((ext_server = getenv("APFP_TEST_SERVER"))) {
		ext_export = getenv("APFP_TEST_EXPORT");
		setup_external();
		int rc = test_main();
		apfpc_close(&c);
		return rc;
	}
	setup();
	int rc = test_main();
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		rc = rc ? rc : 1;
	return rc;
}
