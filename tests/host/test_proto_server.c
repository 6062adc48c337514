/*
 * The portable server core over a small in-test fake filesystem (a fixed
 * table of nodes; nothing of it is in the product): a client session and
 * a server session set up by the real handshake exchange sealed frames
 * through proto_server_handle().  Covers the gate every request passes
 * (tags, decoding, read-only sessions, handle MACs, snapshots) and the
 * mapping of filesystem errors (stale handles) to statuses.
 */
#define TEST_SUITE "proto_server"
#include "tests/host/test.h"
#include "proto/server.h"
#include "tests/host/proto_samples.h"

#define FSID 77
#define NNODES 16

struct fnode {
	bool used;
	uint32_t gen;
	uint8_t type;
	uint64_t parent, size, change;
	char name[64];
	uint8_t data[4096];
};

static struct ffs {
	struct fnode n[NNODES];         /* inode number = index; 1 is the root */
	unsigned calls;
	uint32_t last_uid;
} F;

static void ffs_reset(void)
{
	memset(&F, 0, sizeof(F));
	F.n[1].used = true;
	F.n[1].gen = 1;
	F.n[1].type = PROTO_T_DIR;
}

static int node(struct proto_call *c, unsigned i, struct fnode **out)
{
	const struct proto_fh *fh = &c->fh[i];
	if (fh->fsid != FSID || fh->ino >= NNODES || !F.n[fh->ino].used || F.n[fh->ino].gen != fh->gen)
		return -PLAT_ESTALE;
	*out = &F.n[fh->ino];
	return 0;
}

static void attr_of(uint64_t ino, struct proto_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->type = F.n[ino].type;
	a->mode = 0644;
	a->nlink = 1;
	a->size = F.n[ino].size;
	a->fsid = FSID;
	a->ino = ino;
	a->gen = F.n[ino].gen;
	a->change = F.n[ino].change;
	if (!strcmp(F.n[ino].name, "evil"))
		a->type = 0;            /* a filesystem bug: an invalid attribute */
}

static void seal_ino(struct proto_call *c, uint64_t ino, struct proto_handle *h)
{
	struct proto_fh fh = { FSID, ino, F.n[ino].gen, 0 };
	proto_server_seal(c->srv, &fh, h);
}

static int find(uint64_t dir, const struct proto_str *name)
{
	for (int i = 2; i < NNODES; i++)
		if (F.n[i].used && F.n[i].parent == dir && strlen(F.n[i].name) == name->len &&
		    !memcmp(F.n[i].name, name->p, name->len))
			return i;
	return -1;
}

static void pre_of(uint64_t ino, struct proto_pre_attr *p)
{
	p->size = F.n[ino].size;
	p->change = F.n[ino].change;
}

/* Every operation starts here: count the call, open the first handle. */
static int enter(struct proto_call *c, struct fnode **n)
{
	F.calls++;
	F.last_uid = c->uid;
	return node(c, 0, n);
}

/* ... and for a name in the directory of the first handle: its index. */
static int enter_entry(struct proto_call *c, const struct proto_str *name, struct fnode **d)
{
	int rc = enter(c, d), i;
	if (rc < 0)
		return rc;
	if ((i = find(c->fh[0].ino, name)) < 0)
		return -PLAT_ENOENT;
	return i;
}

static int f_getattr(void *fs, struct proto_call *c, const void *req, void *rep)
{
	struct fnode *n;
	int rc;
	(void)fs; (void)req;
	if ((rc = enter(c, &n)) < 0)
		return rc;
	attr_of(c->fh[0].ino, &((struct proto_getattr_rep *)rep)->attr);
	return 0;
}

static int f_lookup(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_dirop_req *q = req;
	struct proto_lookup_rep *r = rep;
	struct fnode *d;
	int i;
	(void)fs;
	if ((i = enter_entry(c, &q->name, &d)) < 0)
		return i;
	seal_ino(c, (uint64_t)i, &r->fh);
	attr_of((uint64_t)i, &r->attr);
	attr_of(c->fh[0].ino, &r->dir_attr);
	return 0;
}

static int f_create(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_create_req *q = req;
	struct proto_newobj_rep *r = rep;
	struct fnode *d;
	int rc, i;
	(void)fs;
	if ((rc = enter(c, &d)) < 0)
		return rc;
	if (find(c->fh[0].ino, &q->name) >= 0)
		return -PLAT_EEXIST;
	for (i = 2; i < NNODES && F.n[i].used; i++)
		;
	if (i == NNODES)
		return -PLAT_ENOSPC;
	pre_of(c->fh[0].ino, &r->dir_wcc.before);
	F.n[i].used = true;
	F.n[i].gen++;
	F.n[i].type = PROTO_T_REG;
	F.n[i].parent = c->fh[0].ino;
	F.n[i].size = 0;
	memcpy(F.n[i].name, q->name.p, q->name.len);
	F.n[i].name[q->name.len] = 0;
	d->change++;
	seal_ino(c, (uint64_t)i, &r->fh);
	attr_of((uint64_t)i, &r->attr);
	attr_of(c->fh[0].ino, &r->dir_wcc.after);
	return 0;
}

static int f_remove(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_dirop_req *q = req;
	struct proto_wcc_rep *r = rep;
	struct fnode *d;
	int i;
	(void)fs;
	if ((i = enter_entry(c, &q->name, &d)) < 0)
		return i;
	pre_of(c->fh[0].ino, &r->wcc.before);
	F.n[i].used = false;
	d->change++;
	attr_of(c->fh[0].ino, &r->wcc.after);
	return 0;
}

static int f_write(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_write_req *q = req;
	struct proto_write_rep *r = rep;
	struct fnode *n;
	int rc;
	(void)fs;
	if ((rc = enter(c, &n)) < 0)
		return rc;
	if (q->offset + q->data.len > sizeof(n->data))
		return -PLAT_EFBIG;
	pre_of(c->fh[0].ino, &r->wcc.before);
	memcpy(n->data + q->offset, q->data.p, q->data.len);
	if (q->offset + q->data.len > n->size)
		n->size = q->offset + q->data.len;
	n->change++;
	r->count = q->data.len;
	r->committed = PROTO_FILE_SYNC;
	memcpy(r->verf.b, "bootverf", 8);
	attr_of(c->fh[0].ino, &r->wcc.after);
	return 0;
}

static int f_read(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_read_req *q = req;
	struct proto_read_rep *r = rep;
	struct fnode *n;
	uint64_t count;
	int rc;
	(void)fs;
	if ((rc = enter(c, &n)) < 0)
		return rc;
	count = q->offset >= n->size ? 0 : n->size - q->offset;
	if (count > q->count)
		count = q->count;
	if (count > c->scratch_cap)
		count = c->scratch_cap;
	memcpy(c->scratch, n->data + q->offset, count);
	r->data.p = c->scratch;
	r->data.len = (uint32_t)count;
	r->eof = q->offset + count >= n->size;
	attr_of(c->fh[0].ino, &r->attr);
	return 0;
}

/* ADMIN: answers what it was asked, so the test sees the request arrive. */
static int f_admin(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_admin_req *q = req;
	struct proto_admin_rep *r = rep;
	(void)fs;
	F.calls++;
	int n = snprintf((char *)c->scratch, c->scratch_cap, "ran '%.*s' for uid %u", (int)q->command.len,
			 q->command.p, c->uid);
	r->run = 7;
	r->result = (uint32_t)-5;
	r->done = true;
	r->output.p = c->scratch;
	r->output.len = (uint32_t)n;
	return 0;
}

static const struct proto_fs_ops fake_ops = { .op = {
	[PROTO_OP_GETATTR] = f_getattr, [PROTO_OP_LOOKUP] = f_lookup,
	[PROTO_OP_CREATE] = f_create, [PROTO_OP_REMOVE] = f_remove, [PROTO_OP_WRITE] = f_write,
	[PROTO_OP_READ] = f_read, [PROTO_OP_ADMIN] = f_admin,
} };

/* ---- a client session against the server ---------------------------------------- */
static const uint8_t secret[32] = "server test secret 0123456789ab";
static struct proto_server srv;
static struct proto_session cs, ss;
static struct proto_reqtab tab;
static uint8_t in[8192], out[8192], scratch[4096];
_Alignas(16) static uint8_t rep_msg[512];
static struct proto_err serr;
static int server_rc;

/* "data" is the fake filesystem; "private" and "archive" are other
 * filesystem ids, refused by the gate before any lookup. */
static const struct proto_export_cfg exports[] = {
	{ "data", FSID, 1, 1, 0, PROTO_EXP_ANON },
	{ "private", FSID + 1, 1, 1, 0, 0 },
	{ "archive", FSID + 2, 1, 1, 0, PROTO_EXP_RO | PROTO_EXP_ANON },
};

static void setup(bool anon)
{
	ffs_reset();
	proto_server_init(&srv, &fake_ops, &F, "persistent handle key of the ser", 32);
	proto_server_set_exports(&srv, exports, 3);
	EXPECT_EQ_INT(proto_test_connect(secret, anon, 8, &cs, &ss), 0);
	proto_reqtab_init(&tab, ss.max_inflight);
}

/* Check a reply frame (sealed) and decode it into rep_msg: its status. */
static int client_reply(const uint8_t *f, size_t len)
{
	size_t tag = cs.keyed ? PROTO_TAG_SIZE : 0;
	struct proto_hdr h;
	struct proto_err err;

	EXPECT_EQ_INT(proto_session_open(&cs, f, len - tag, tag ? f + len - tag : NULL), 0);
	int rc = proto_hdr_decode(f, len - tag, cs.version, cs.max_body, &h, &err);
	if (rc == -PLAT_ENOSYS)         /* BADOP echoes the unknown opcode */
		return (int)h.status;
	EXPECT_EQ_INT(rc, 0);
	EXPECT_EQ_INT(proto_decode_body(&h, f + 32, h.length, rep_msg, &err), 0);
	return (int)h.status;
}

/* Deliver n bytes of `in` to the server; return the reply's status, or
 * -1000 when the server closed without a reply. */
static int deliver(size_t n)
{
	size_t out_len;

	server_rc = proto_server_handle(&srv, &ss, &tab, in, n, out, sizeof(out), &out_len, scratch,
					sizeof(scratch), &serr);
	EXPECT_EQ_INT(tab.n, 0);                /* every id released after its reply */
	return out_len ? client_reply(out, out_len) : -1000;
}

static uint32_t next_id = 42;

static size_t frame_of(uint8_t op, const void *req)
{
	struct proto_hdr h = { .version = cs.version, .opcode = op, .id = next_id, .uid = 1000, .gid = 100,
			       .flags = proto_session_hdr_flags(&cs) };
	struct proto_err err;
	int n = proto_encode(in, sizeof(in), &h, req, 0, &err);
	EXPECT(n > 0);
	n = proto_session_seal(&cs, in, (size_t)n, sizeof(in));
	EXPECT(n > 0);
	return (size_t)n;
}

static int call(uint8_t op, const void *req)
{
	return deliver(frame_of(op, req));
}

static struct proto_handle root_handle(void)
{
	struct proto_exports_rep *r = (void *)rep_msg;
	struct proto_export e;
	uint32_t pos = 0;

	EXPECT_EQ_INT(call(PROTO_OP_EXPORTS, NULL), 0);
	EXPECT_EQ_INT(r->exports.count, cs.keyed ? 3 : 2);
	EXPECT_EQ_INT(proto_list_next(&r->exports, PROTO_L_EXPORT, &pos, &e), 1);
	return e.root;
}

static struct proto_handle create(struct proto_handle dir, const char *name)
{
	struct proto_create_req q = { .dir = dir, .name = { name, (uint16_t)strlen(name) },
				      .how = PROTO_CREATE_GUARDED };
	EXPECT_EQ_INT(call(PROTO_OP_CREATE, &q), 0);
	return ((struct proto_newobj_rep *)rep_msg)->fh;
}

TEST(create_write_read_lookup)
{
	setup(false);
	struct proto_handle root = root_handle(), fh = create(root, "a");
	struct proto_write_req w = { .fh = fh, .stable = PROTO_FILE_SYNC, .data = { (const uint8_t *)"hello", 5 } };
	struct proto_write_rep *wr = (void *)rep_msg;

	EXPECT_EQ_INT(call(PROTO_OP_WRITE, &w), 0);
	EXPECT_EQ_INT(wr->count, 5);
	EXPECT_EQ_INT(wr->committed, PROTO_FILE_SYNC);
	EXPECT_EQ_INT(wr->wcc.before.size, 0);
	EXPECT_EQ_INT(wr->wcc.after.size, 5);
	EXPECT(memcmp(wr->verf.b, "bootverf", 8) == 0);

	struct proto_read_req r = { .fh = fh, .offset = 1, .count = 100 };
	struct proto_read_rep *rr = (void *)rep_msg;
	EXPECT_EQ_INT(call(PROTO_OP_READ, &r), 0);
	EXPECT(rr->data.len == 4 && !memcmp(rr->data.p, "ello", 4) && rr->eof);

	struct proto_dirop_req l = { .dir = root, .name = { "a", 1 } };
	EXPECT_EQ_INT(call(PROTO_OP_LOOKUP, &l), 0);
	EXPECT(!memcmp(((struct proto_lookup_rep *)rep_msg)->fh.b, fh.b, PROTO_HANDLE_SIZE));
	l.name.p = "b";
	EXPECT_EQ_INT(call(PROTO_OP_LOOKUP, &l), PROTO_E_NOENT);
	struct proto_create_req again = { .dir = root, .name = { "a", 1 }, .how = PROTO_CREATE_GUARDED };
	EXPECT_EQ_INT(call(PROTO_OP_CREATE, &again), PROTO_E_EXIST);
	struct proto_fh_req g = { .fh = fh };
	EXPECT_EQ_INT(call(PROTO_OP_GETATTR, &g), 0);
	EXPECT_EQ_INT(F.last_uid, 1000);
	EXPECT_EQ_INT(call(PROTO_OP_PING, NULL), 0);
}

TEST(stale_handles)
{
	setup(false);
	struct proto_handle root = root_handle(), fh = create(root, "a");
	struct proto_dirop_req rm = { .dir = root, .name = { "a", 1 } };
	struct proto_fh_req g = { .fh = fh };

	EXPECT_EQ_INT(call(PROTO_OP_REMOVE, &rm), 0);
	EXPECT_EQ_INT(((struct proto_wcc_rep *)rep_msg)->wcc.after.change, 2);
	EXPECT_EQ_INT(call(PROTO_OP_GETATTR, &g), PROTO_E_STALE);
	/* the inode number is reused with a new generation: still stale */
	struct proto_handle fh2 = create(root, "a");
	EXPECT(memcmp(fh.b, fh2.b, PROTO_HANDLE_SIZE) != 0);
	EXPECT_EQ_INT(call(PROTO_OP_GETATTR, &g), PROTO_E_STALE);
	g.fh = fh2;
	EXPECT_EQ_INT(call(PROTO_OP_GETATTR, &g), 0);
	/* a new server instance with the same key accepts old handles */
	proto_server_init(&srv, &fake_ops, &F, "persistent handle key of the ser", 32);
	proto_server_set_exports(&srv, exports, 3);
	EXPECT_EQ_INT(call(PROTO_OP_GETATTR, &g), 0);
	/* ... but not once its filesystem is no longer exported */
	proto_server_set_exports(&srv, exports + 1, 2);
	EXPECT_EQ_INT(call(PROTO_OP_GETATTR, &g), PROTO_E_STALE);
	EXPECT(strstr(serr.msg, "not exported") != NULL);
}

TEST(forged_handles_never_reach_the_fs)
{
	setup(false);
	struct proto_handle root = root_handle();
	struct proto_fh_req g = { .fh = root };
	unsigned calls;

	EXPECT_EQ_INT(call(PROTO_OP_GETATTR, &g), 0);
	calls = F.calls;
	for (int i = 0; i < PROTO_HANDLE_SIZE; i += 3) {
		g.fh = root;
		g.fh.b[i] ^= 1;
		EXPECT_EQ_INT(call(PROTO_OP_GETATTR, &g), PROTO_E_BADHANDLE);
	}
	EXPECT_EQ_INT(F.calls, calls);
	EXPECT(strstr(serr.msg, "not made by this server") != NULL);
	/* the same inode under another server's key */
	struct proto_server other;
	struct proto_fh fh = { FSID, 1, 1, 0 };
	proto_server_init(&other, &fake_ops, &F, "another key entirely, 32 bytes..", 32);
	proto_server_seal(&other, &fh, &g.fh);
	EXPECT_EQ_INT(call(PROTO_OP_GETATTR, &g), PROTO_E_BADHANDLE);
	EXPECT_EQ_INT(F.calls, calls);
}

TEST(bad_requests_answered_and_connection_goes_on)
{
	setup(false);
	struct proto_handle root = root_handle();
	struct proto_dirop_req l = { .dir = root, .name = { "x", 1 } };
	unsigned calls = F.calls;
	size_t n;

	/* a name that escapes: built by hand, the encoder would refuse it */
	n = frame_of(PROTO_OP_LOOKUP, &l);
	cs.seq_send--;                          /* re-seal after patching */
	in[32 + 40 + 2] = '/';
	n = (size_t)proto_session_seal(&cs, in, n - PROTO_TAG_SIZE, sizeof(in));
	EXPECT_EQ_INT(deliver(n), PROTO_E_INVAL);
	EXPECT_EQ_INT(server_rc, 0);
	EXPECT(strstr(serr.msg, "field name") != NULL);
	/* an unknown opcode */
	n = frame_of(PROTO_OP_PING, NULL);
	cs.seq_send--;
	in[5] = 0x3e;
	n = (size_t)proto_session_seal(&cs, in, n - PROTO_TAG_SIZE, sizeof(in));
	EXPECT_EQ_INT(deliver(n), PROTO_E_BADOP);
	EXPECT_EQ_INT(server_rc, 0);
	/* an operation the filesystem does not provide */
	struct proto_fh_req s = { .fh = root };
	EXPECT_EQ_INT(call(PROTO_OP_SNAP_LIST, &s), PROTO_E_NOTSUP);
	/* HELLO again */
	struct proto_hello_req hq = { .min_version = 1, .max_version = 1, .client_id = { "x", 1 } };
	EXPECT_EQ_INT(call(PROTO_OP_HELLO, &hq), PROTO_E_BADMSG);
	EXPECT_EQ_INT(F.calls, calls);
	/* still in step */
	EXPECT_EQ_INT(call(PROTO_OP_PING, NULL), 0);
	EXPECT_EQ_INT(server_rc, 0);
}

TEST(fatal_frames_close)
{
	setup(false);
	size_t n;

	/* altered after sealing: closed, no answer */
	n = frame_of(PROTO_OP_PING, NULL);
	in[9] ^= 1;
	EXPECT_EQ_INT(deliver(n), -1000);
	EXPECT_EQ_INT(server_rc, -PLAT_EBADMSG);
	EXPECT(strstr(serr.msg, "tag") != NULL);

	/* longer than the session's limit: TOOBIG, then closed */
	setup(false);
	n = frame_of(PROTO_OP_PING, NULL);
	uint32_t huge = PROTO_MAX_BODY + 1;
	memcpy(in + 12, &huge, 4);
	EXPECT_EQ_INT(deliver(n), PROTO_E_TOOBIG);
	EXPECT_EQ_INT(server_rc, -PLAT_EMSGSIZE);

	/* bad magic: closed without an answer */
	setup(false);
	n = frame_of(PROTO_OP_PING, NULL);
	in[0] = 'X';
	EXPECT_EQ_INT(deliver(n), -1000);
	/* a reply frame sent to the server */
	setup(false);
	n = frame_of(PROTO_OP_PING, NULL);
	in[6] |= PROTO_F_REPLY;
	EXPECT_EQ_INT(deliver(n), -1000);
	EXPECT_EQ_INT(server_rc, -PLAT_EBADMSG);
}

TEST(read_only_sessions_and_snapshots)
{
	setup(true);                            /* anonymous: read-only, untagged */
	EXPECT(!cs.keyed && cs.access == PROTO_ACCESS_RO);
	struct proto_handle root = root_handle();
	struct proto_create_req q = { .dir = root, .name = { "a", 1 } };
	unsigned calls = F.calls;
	EXPECT_EQ_INT(call(PROTO_OP_CREATE, &q), PROTO_E_ROFS);
	EXPECT_EQ_INT(F.calls, calls);
	struct proto_fh_req g = { .fh = root };
	EXPECT_EQ_INT(call(PROTO_OP_GETATTR, &g), 0);
	EXPECT_EQ_INT(F.last_uid, 65534);       /* the header's uid is not trusted */

	setup(false);
	struct proto_fh snap = { FSID, 1, 1, 5 };
	proto_server_seal(&srv, &snap, &q.dir);
	calls = F.calls;
	EXPECT_EQ_INT(call(PROTO_OP_CREATE, &q), PROTO_E_ROFS);
	EXPECT(strstr(serr.msg, "snapshot 5") != NULL);
	EXPECT_EQ_INT(F.calls, calls);
	g.fh = q.dir;
	EXPECT_EQ_INT(call(PROTO_OP_GETATTR, &g), 0);     /* reading a snapshot is fine */
}

/* ADMIN runs only for sessions with the secret: an anonymous one is refused
 * at the gate (ACCES, the operation never called), whatever the exports. */
TEST(admin_needs_the_secret)
{
	struct proto_admin_req q = { .command = { "df", 2 } };
	struct proto_admin_rep *r = (void *)rep_msg;

	setup(true);
	unsigned calls = F.calls;
	EXPECT_EQ_INT(call(PROTO_OP_ADMIN, &q), PROTO_E_ACCES);
	EXPECT(strstr(serr.msg, "ADMIN needs the secret") != NULL);
	EXPECT_EQ_INT(F.calls, calls);
	EXPECT_EQ_INT(call(PROTO_OP_PING, NULL), 0);    /* the connection goes on */

	setup(false);
	calls = F.calls;
	EXPECT_EQ_INT(call(PROTO_OP_ADMIN, &q), 0);
	EXPECT_EQ_INT(F.calls, calls + 1);
	EXPECT_EQ_INT(r->run, 7);
	EXPECT_EQ_INT((int32_t)r->result, -5);
	EXPECT(r->done);
	EXPECT_EQ_INT(r->output.len, strlen("ran 'df' for uid 1000"));
	EXPECT(!memcmp(r->output.p, "ran 'df' for uid 1000", r->output.len));

	/* the command line's limit is the codec's: over 255 bytes is refused */
	char longcmd[PROTO_ADMIN_CMD_MAX + 1];
	memset(longcmd, 'x', sizeof(longcmd));
	q.command = (struct proto_str){ longcmd, sizeof(longcmd) };
	struct proto_hdr h = { .version = cs.version, .opcode = PROTO_OP_ADMIN, .id = 1 };
	struct proto_err err;
	EXPECT_EQ_INT(proto_encode(in, sizeof(in), &h, &q, 0, &err), -PLAT_ENAMETOOLONG);
	EXPECT(proto_op_keyed_only(PROTO_OP_ADMIN) && !proto_op_keyed_only(PROTO_OP_READ));
}

/* A filesystem reply that breaks the protocol is not sent: SERVERFAULT. */
TEST(invalid_fs_reply_is_serverfault)
{
	setup(false);
	struct proto_handle root = root_handle();
	struct proto_create_req q = { .dir = root, .name = { "evil", 4 } };
	EXPECT_EQ_INT(call(PROTO_OP_CREATE, &q), PROTO_E_SERVERFAULT);
	struct proto_dirop_req l = { .dir = root, .name = { "evil", 4 } };
	EXPECT_EQ_INT(call(PROTO_OP_LOOKUP, &l), PROTO_E_SERVERFAULT);
	EXPECT(strstr(serr.msg, "attr.type") != NULL);
}

/* Requests received and executed in any order; the outstanding limit
 * answers BUSY, a duplicate id BADMSG, and released ids are reusable. */
TEST(outstanding_requests)
{
	static uint8_t frames[10][128], replies[10][256];
	static struct proto_request r[10];
	size_t flen[10];
	struct proto_err err;

	setup(false);
	EXPECT_EQ_INT(tab.max, 8);
	for (int i = 0; i < 10; i++) {
		next_id = 100 + (uint32_t)(i == 9 ? 3 : i);     /* the 10th reuses id 103 */
		flen[i] = frame_of(PROTO_OP_PING, NULL);
		memcpy(frames[i], in, flen[i]);
	}
	next_id = 42;
	for (int i = 0; i < 8; i++) {
		EXPECT_EQ_INT(proto_server_receive(&srv, &ss, &tab, frames[i], flen[i], &r[i], &err), 0);
		EXPECT_EQ_INT(r[i].status, 0);
	}
	EXPECT_EQ_INT(tab.n, 8);
	EXPECT_EQ_INT(proto_server_receive(&srv, &ss, &tab, frames[8], flen[8], &r[8], &err), 0);
	EXPECT_EQ_INT(r[8].status, PROTO_E_BUSY);
	EXPECT(!r[8].claimed);
	/* execute in reverse order; seal in sending order */
	for (int i = 8; i >= 0; i--) {
		int n = proto_server_execute(&srv, &ss, &r[i], replies[i], sizeof(replies[i]), scratch,
					     sizeof(scratch), &err);
		EXPECT(n > 0);
		n = proto_session_seal(&ss, replies[i], (size_t)n, sizeof(replies[i]));
		EXPECT_EQ_INT(client_reply(replies[i], (size_t)n), i == 8 ? PROTO_E_BUSY : 0);
		if (i == 3) {   /* 103 is still outstanding: a duplicate is refused */
			EXPECT_EQ_INT(proto_server_receive(&srv, &ss, &tab, frames[9], flen[9], &r[9], &err), 0);
			EXPECT_EQ_INT(r[9].status, PROTO_E_BADMSG);
			EXPECT(strstr(err.msg, "already outstanding") != NULL);
			n = proto_server_execute(&srv, &ss, &r[9], replies[9], sizeof(replies[9]), scratch,
						 sizeof(scratch), &err);
			n = proto_session_seal(&ss, replies[9], (size_t)n, sizeof(replies[9]));
			EXPECT_EQ_INT(client_reply(replies[9], (size_t)n), PROTO_E_BADMSG);
		}
		if (r[i].claimed)
			proto_reqtab_end(&tab, r[i].hdr.id);
	}
	EXPECT_EQ_INT(tab.n, 0);
	EXPECT_EQ_INT(call(PROTO_OP_PING, NULL), 0);
}

static struct proto_handle export_root(unsigned i)
{
	struct proto_fh fh = { exports[i].fsid, exports[i].root_ino, exports[i].root_gen, 0 };
	struct proto_handle h;
	proto_server_seal(&srv, &fh, &h);
	return h;
}

TEST(export_rules)
{
	struct proto_exports_rep *r = (void *)rep_msg;
	struct proto_export e;
	uint32_t pos = 0;
	unsigned calls;

	setup(true);                            /* anonymous */
	EXPECT_EQ_INT(call(PROTO_OP_EXPORTS, NULL), 0);
	EXPECT_EQ_INT(r->exports.count, 2);
	while (proto_list_next(&r->exports, PROTO_L_EXPORT, &pos, &e) == 1)
		EXPECT(e.name.len != 7 || memcmp(e.name.p, "private", 7) != 0);
	calls = F.calls;
	struct proto_fh_req g = { .fh = export_root(1) };
	EXPECT_EQ_INT(call(PROTO_OP_GETATTR, &g), PROTO_E_ACCES);
	EXPECT(strstr(serr.msg, "export private needs the secret") != NULL);
	EXPECT_EQ_INT(F.calls, calls);

	setup(false);
	struct proto_create_req q = { .dir = export_root(2), .name = { "a", 1 } };
	EXPECT_EQ_INT(call(PROTO_OP_CREATE, &q), PROTO_E_ROFS);
	EXPECT(strstr(serr.msg, "export archive is read-only") != NULL);
	EXPECT_EQ_INT(F.calls, 0);
	struct proto_fh none = { 999, 1, 1, 0 };
	proto_server_seal(&srv, &none, &g.fh);
	EXPECT_EQ_INT(call(PROTO_OP_GETATTR, &g), PROTO_E_STALE);
	EXPECT_EQ_INT(F.calls, 0);
}

TEST_MAIN()
