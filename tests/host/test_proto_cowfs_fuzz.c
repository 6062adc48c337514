/*
 * Hostile requests against the real filesystem: random, well-formed
 * requests of every operation (proto/serve_cowfs.c behind the server core)
 * with handles the server sealed -- of live files, of removed ones, of
 * inode numbers that never existed, of snapshots -- and names, offsets,
 * counts, modes, flags and stabilities drawn from edge values, on a small
 * image that fills up.  Every request must get a reply that decodes; no
 * reply may be SERVERFAULT (an error the server did not map) or IO (the
 * image is healthy); the filesystem must check clean every few thousand
 * requests, after an unmount and after a remount.  The codec's own fuzzing
 * (malformed frames) is test_proto_fuzz.
 */
#define TEST_SUITE "proto_cowfs_fuzz"
#include "tests/host/test.h"
#include "tests/host/cowfs_test.h"
#include "proto/serve_cowfs.h"
#include "fs/vfs.h"

#define ITERATIONS 40000
#define CHECK_EVERY 5000
#define POOL 48

static struct ct_image im;
static struct cowfs_mount *mnt;
static struct proto_server srv;
static struct proto_cowfs pc;
static struct proto_export_cfg exp_cfg;
static struct proto_fh pool[POOL];
static unsigned npool;
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static unsigned long statuses[11000];
static unsigned long ok_by_op[PROTO_OP_LIMIT];

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t pick(const uint64_t *v, size_t n)
{
	return v[rnd() % n];
}
#define PICK(arr) pick(arr, sizeof(arr) / sizeof(arr[0]))

static struct cowfs_mount *get(void *arg, uint64_t fsid, void **use)
{
	(void)arg;
	*use = NULL;
	return fsid == exp_cfg.fsid ? mnt : NULL;
}

static void put(void *arg, void *use)
{
	(void)arg; (void)use;
}

static void remember(const struct proto_handle *h)
{
	struct proto_fh fh;
	if (proto_handle_open(&srv.hkey, h, &fh))
		return;
	for (unsigned i = 0; i < npool; i++)
		if (!memcmp(&pool[i], &fh, sizeof(fh)))
			return;
	if (npool < POOL)
		pool[npool++] = fh;
	else
		pool[1 + rnd() % (POOL - 1)] = fh;      /* slot 0 stays the root */
}

/* A handle: mostly one the server gave out, sometimes a made-up inode
 * (sealed, so it passes the MAC and reaches the filesystem). */
static struct proto_handle handle(void)
{
	struct proto_fh fh = pool[rnd() % npool];
	struct proto_handle h;
	switch (rnd() % 16) {
	case 0: fh.ino = rnd() % 600; break;
	case 1: fh.gen ^= 1; break;
	case 2: fh.snap = 1 + rnd() % 3; break;
	default: break;
	}
	proto_handle_seal(&srv.hkey, &fh, &h);
	return h;
}

static struct proto_str name(void)
{
	static char longest[256];
	static const char *const names[] = { "a", "b", "c", "dir", "file", "link", "x.y", "-", "  " };
	if (!longest[0])
		memset(longest, 'n', 255);
	if (rnd() % 20 == 0)
		return (struct proto_str){ longest, 255 };
	const char *n = names[rnd() % (sizeof(names) / sizeof(names[0]))];
	return (struct proto_str){ n, (uint16_t)strlen(n) };
}

static const uint64_t offsets[] = { 0, 1, 511, 4095, 4096, 4097, 65536, 1 << 20, (1 << 20) + 1, 1ull << 30,
				    1ull << 40, (1ull << 62), UINT64_MAX - 4096, UINT64_MAX };
static const uint64_t counts[] = { 0, 1, 100, 4095, 4096, 8193, 65536, 1 << 20 };

static struct proto_sattr sattr(void)
{
	static const uint64_t sizes[] = { 0, 1, 4096, 5000, 1 << 20, 1ull << 40, UINT64_MAX };
	struct proto_sattr s = { .mask = (uint32_t)(rnd() & PROTO_SA_ALL) };
	if ((s.mask & PROTO_SA_ATIME) && (s.mask & PROTO_SA_ATIME_NOW))
		s.mask &= ~PROTO_SA_ATIME_NOW;
	if ((s.mask & PROTO_SA_MTIME) && (s.mask & PROTO_SA_MTIME_NOW))
		s.mask &= ~PROTO_SA_MTIME_NOW;
	if (rnd() % 3)
		s.mask &= ~PROTO_SA_SIZE;       /* huge truncates are rarer than other changes */
	s.mode = (uint32_t)(rnd() & 07777);
	s.uid = (uint32_t)(rnd() % 3);
	s.gid = (uint32_t)(rnd() % 3);
	s.size = PICK(sizes);
	s.atime = (struct proto_time){ (int64_t)(rnd() % 4000000000ull) - (rnd() % 8 ? 0 : 5), (uint32_t)(rnd() % 1000000000) };
	s.mtime = (struct proto_time){ (int64_t)(rnd() % 4000000000ull), (uint32_t)(rnd() % 1000000000) };
	return s;
}

static const uint8_t ops[] = {
	PROTO_OP_GETATTR, PROTO_OP_SETATTR, PROTO_OP_LOOKUP, PROTO_OP_READLINK, PROTO_OP_READ, PROTO_OP_WRITE,
	PROTO_OP_COMMIT, PROTO_OP_CREATE, PROTO_OP_MKDIR, PROTO_OP_SYMLINK, PROTO_OP_LINK, PROTO_OP_REMOVE,
	PROTO_OP_RMDIR, PROTO_OP_RENAME, PROTO_OP_READDIR, PROTO_OP_READDIRPLUS, PROTO_OP_FSSTAT, PROTO_OP_FSYNC,
	PROTO_OP_FALLOCATE, PROTO_OP_SEEK, PROTO_OP_COPY, PROTO_OP_GETXATTR, PROTO_OP_SETXATTR,
	PROTO_OP_LISTXATTR, PROTO_OP_REMOVEXATTR, PROTO_OP_SNAP_CREATE, PROTO_OP_SNAP_LIST, PROTO_OP_SNAP_DELETE,
	PROTO_OP_MKNOD,
};

static uint8_t wdata[1 << 16];

/* A random request of op into msg (its wire structure). */
static void request(uint8_t op, void *msg)
{
	switch (op) {
	case PROTO_OP_GETATTR: case PROTO_OP_READLINK: case PROTO_OP_FSSTAT: case PROTO_OP_LISTXATTR:
	case PROTO_OP_SNAP_LIST:
		*(struct proto_fh_req *)msg = (struct proto_fh_req){ handle() };
		break;
	case PROTO_OP_LOOKUP: case PROTO_OP_REMOVE: case PROTO_OP_RMDIR:
		*(struct proto_dirop_req *)msg = (struct proto_dirop_req){ handle(), name() };
		break;
	case PROTO_OP_SETATTR:
		*(struct proto_setattr_req *)msg = (struct proto_setattr_req){ handle(), sattr() };
		break;
	case PROTO_OP_READ:
		*(struct proto_read_req *)msg = (struct proto_read_req){ handle(), PICK(offsets),
									 (uint32_t)PICK(counts) };
		break;
	case PROTO_OP_WRITE: {
		uint32_t len = (uint32_t)(rnd() % sizeof(wdata));
		*(struct proto_write_req *)msg = (struct proto_write_req){ handle(), PICK(offsets) + rnd() % 3,
									   (uint8_t)(rnd() % 3), { wdata, len } };
		break;
	}
	case PROTO_OP_COMMIT:
		*(struct proto_commit_req *)msg = (struct proto_commit_req){ handle(), PICK(offsets), PICK(counts) };
		break;
	case PROTO_OP_CREATE: {
		struct proto_create_req *q = msg;
		*q = (struct proto_create_req){ handle(), name(), (uint8_t)(rnd() % 3), { { (uint8_t)rnd() } }, sattr() };
		if (q->how == PROTO_CREATE_EXCLUSIVE && rnd() % 4)
			q->sattr.mask = 0;
		break;
	}
	case PROTO_OP_MKDIR:
		*(struct proto_mkdir_req *)msg = (struct proto_mkdir_req){ handle(), name(), sattr() };
		break;
	case PROTO_OP_SYMLINK: {
		static const char *const targets[] = { "a", "../../..", "/etc/passwd", "dir/file" };
		const char *t = targets[rnd() % 4];
		*(struct proto_symlink_req *)msg = (struct proto_symlink_req){ handle(), name(),
									       { t, (uint16_t)strlen(t) }, sattr() };
		break;
	}
	case PROTO_OP_MKNOD: {
		/* every type (the wrong ones too), device numbers on every type
		 * now and then, at the edges of the range */
		static const uint64_t majors[] = { 0, 1, 8, 259, PROTO_RDEV_MAJOR_MAX };
		static const uint64_t minors[] = { 0, 1, 255, 256, PROTO_RDEV_MINOR_MAX };
		struct proto_mknod_req *q = msg;
		*q = (struct proto_mknod_req){ handle(), name(), (uint8_t)(PROTO_T_REG + rnd() % PROTO_T_FIFO), sattr(),
					       0, 0 };
		if (q->type == PROTO_T_BLK || q->type == PROTO_T_CHR || rnd() % 8 == 0) {
			q->rdev_major = (uint32_t)PICK(majors);
			q->rdev_minor = (uint32_t)PICK(minors);
		}
		break;
	}
	case PROTO_OP_LINK:
		*(struct proto_link_req *)msg = (struct proto_link_req){ handle(), handle(), name() };
		break;
	case PROTO_OP_RENAME:
		*(struct proto_rename_req *)msg = (struct proto_rename_req){ handle(), name(), handle(), name(),
									     (uint32_t)(rnd() % 4) };
		break;
	case PROTO_OP_READDIR: case PROTO_OP_READDIRPLUS:
		*(struct proto_readdir_req *)msg = (struct proto_readdir_req){ handle(), rnd() % 4 ? 0 : rnd() % 40,
									       { { 0 } }, (uint32_t)PICK(counts) + 50 };
		break;
	case PROTO_OP_FSYNC:
		*(struct proto_fsync_req *)msg = (struct proto_fsync_req){ handle(), rnd() & 1 };
		break;
	case PROTO_OP_FALLOCATE:
		*(struct proto_fallocate_req *)msg = (struct proto_fallocate_req){ handle(), (uint8_t)(rnd() % 6),
										   PICK(offsets), PICK(counts) };
		break;
	case PROTO_OP_SEEK:
		*(struct proto_seek_req *)msg = (struct proto_seek_req){ handle(), PICK(offsets), (uint8_t)(rnd() & 1) };
		break;
	case PROTO_OP_COPY:
		*(struct proto_copy_req *)msg = (struct proto_copy_req){ handle(), PICK(offsets), handle(),
									 PICK(offsets), PICK(counts), (uint32_t)(rnd() & 1) };
		break;
	case PROTO_OP_GETXATTR: case PROTO_OP_REMOVEXATTR:
		*(struct proto_xattr_req *)msg = (struct proto_xattr_req){ handle(), name() };
		break;
	case PROTO_OP_SETXATTR:
		*(struct proto_setxattr_req *)msg = (struct proto_setxattr_req){ handle(), name(),
										 { wdata, (uint32_t)(rnd() % 300) },
										 (uint32_t)(rnd() % 3) };
		break;
	case PROTO_OP_SNAP_CREATE: case PROTO_OP_SNAP_DELETE:
		*(struct proto_snap_req *)msg = (struct proto_snap_req){ handle(), name() };
		break;
	}
}

/* Handles in a successful reply join the pool. */
static void harvest(uint8_t op, const void *rep)
{
	switch (op) {
	case PROTO_OP_LOOKUP: remember(&((const struct proto_lookup_rep *)rep)->fh); break;
	case PROTO_OP_CREATE: case PROTO_OP_MKDIR: case PROTO_OP_SYMLINK: case PROTO_OP_MKNOD:
		remember(&((const struct proto_newobj_rep *)rep)->fh);
		break;
	case PROTO_OP_SNAP_CREATE: remember(&((const struct proto_snap_create_rep *)rep)->root); break;
	case PROTO_OP_READDIRPLUS: {
		const struct proto_readdir_rep *r = rep;
		struct proto_direntplus e;
		uint32_t pos = 0;
		while (proto_list_next(&r->entries, PROTO_L_DIRENTPLUS, &pos, &e) > 0)
			remember(&e.fh);
		break;
	}
	}
}

static const char *check_fs(void)
{
	static char msg[300];
	return cowfs_vfs_check(mnt, msg, sizeof(msg)) ? msg : NULL;
}

static int mount_image(void)
{
	struct cowfs_vfs_opts o = { .data_cache_bytes = 4 << 20, .commit_interval_ms = 300 };
	return cowfs_vfs_mount(im.bdev, &o, &mnt);
}

TEST(random_requests_against_cowfs)
{
	static uint8_t in[PROTO_HDR_SIZE + (1 << 17)], out[PROTO_HDR_SIZE + (1 << 17)], scratch[1 << 17];
	static _Alignas(16) uint8_t msg[512], rep[512];
	struct proto_session sess = { .access = PROTO_ACCESS_RW, .version = PROTO_VERSION_MAX,
				      .max_body = 1 << 17, .max_inflight = 8 };
	struct proto_reqtab tab;
	struct proto_err err;
	unsigned sent = 0, fs_ok = 0, bad = 0;

	EXPECT(ct_image_create(&im, "proto_cowfs_fuzz", 48ull << 20) != NULL);
	EXPECT_EQ_INT(cowfs_mkfs(im.bdev, &(struct cowfs_mkfs_opts){ .node_size = 4096 }), 0);
	EXPECT_EQ_INT(mount_image(), 0);
	EXPECT_EQ_INT(proto_cowfs_init(&pc, get, put, NULL), 0);
	proto_server_init(&srv, &proto_cowfs_ops, &pc, "fuzz handle key, 32 bytes long!!", 32);
	EXPECT_EQ_INT(proto_cowfs_export(mnt, &exp_cfg), 0);
	exp_cfg.name = "fuzz";
	exp_cfg.flags = PROTO_EXP_ANON;
	proto_server_set_exports(&srv, &exp_cfg, 1);
	pool[npool++] = (struct proto_fh){ exp_cfg.fsid, exp_cfg.root_ino, exp_cfg.root_gen, 0 };
	for (size_t i = 0; i < sizeof(wdata); i++)
		wdata[i] = (uint8_t)(i * 7 + 1);
	proto_reqtab_init(&tab, 8);

	for (unsigned it = 0; it < ITERATIONS && !bad; it++) {
		uint8_t op = ops[rnd() % sizeof(ops)];
		struct proto_hdr h = { .version = PROTO_VERSION_MAX, .opcode = op, .id = it, .uid = (uint32_t)(rnd() % 3) };
		size_t n = 0;
		memset(msg, 0, sizeof(msg));
		request(op, msg);
		int len = proto_encode(in, sizeof(in), &h, msg, 0, &err);
		if (len < 0)
			continue;       /* the client side refuses it already */
		sent++;
		int rc = proto_server_handle(&srv, &sess, &tab, in, (size_t)len, out, sizeof(out), &n, scratch,
					     sizeof(scratch), &err);
		struct proto_hdr rh;
		if (rc < 0 || n < PROTO_HDR_SIZE ||
		    proto_hdr_decode(out, n, PROTO_VERSION_MAX, sizeof(out), &rh, &err) ||
		    proto_decode_body(&rh, out + PROTO_HDR_SIZE, n - PROTO_HDR_SIZE, rep, &err)) {
			fprintf(stderr, "%s: reply does not decode: %s\n", proto_op_name(op), err.msg);
			bad++;
			break;
		}
		if (rh.status < sizeof(statuses) / sizeof(statuses[0]))
			statuses[rh.status]++;
		if (rh.status == PROTO_E_SERVERFAULT || rh.status == PROTO_E_IO) {
			fprintf(stderr, "request %u: %s answered %s\n", it, proto_op_name(op), proto_status_name(rh.status));
			bad++;
		}
		if (!rh.status) {
			fs_ok++;
			ok_by_op[op]++;
			harvest(op, rep);
		}
		if ((it + 1) % CHECK_EVERY == 0) {
			const char *why = check_fs();
			if (why) {
				fprintf(stderr, "after %u requests: %s\n", it + 1, why);
				bad++;
			}
		}
	}
	EXPECT_EQ_INT(bad, 0);
	/* the fuzz really reached the filesystem: most operations succeeded sometimes */
	EXPECT(sent > ITERATIONS * 9 / 10);
	EXPECT(fs_ok > ITERATIONS / 8);
	unsigned reached = 0;
	for (unsigned op = 0; op < PROTO_OP_LIMIT; op++)
		reached += ok_by_op[op] > 0;
	EXPECT(reached >= 20);  /* every operation cowfs serves succeeded at least once */
	EXPECT(npool > 10);
	EXPECT(statuses[PROTO_E_STALE] > 0 && statuses[PROTO_E_NOENT] > 0 && statuses[PROTO_E_EXIST] > 0);
	fprintf(stderr, "%u requests: %u ok (%u operations), %lu STALE, %lu NOENT, %lu EXIST, %lu INVAL, %lu NOSPC, "
		"%lu NOTSUP, %u handles\n", sent, fs_ok, reached, statuses[PROTO_E_STALE], statuses[PROTO_E_NOENT],
		statuses[PROTO_E_EXIST], statuses[PROTO_E_INVAL], statuses[PROTO_E_NOSPC], statuses[PROTO_E_NOTSUP],
		npool);
	EXPECT_EQ_INT(cowfs_vfs_unmount(mnt), 0);
	ct_image_reopen(&im);
	EXPECT_EQ_INT(mount_image(), 0);
	const char *why = check_fs();
	EXPECT(why == NULL);
	if (why)
		fprintf(stderr, "after remount: %s\n", why);
	EXPECT_EQ_INT(cowfs_vfs_unmount(mnt), 0);
	ct_image_remove(&im);
}

TEST_MAIN()
