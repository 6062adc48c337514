/*
 * nfsbench: the workloads of `apfp bench` (tools/apfp_bench.c) over NFSv3,
 * for the file protocol table of `make bench-peer` (KIND=proto, docs/peer.md):
 * the same requests one by one, against Linux's nfsd in the peer guest.
 *
 *   nfsbench HOST NFSPORT MOUNTPORT EXPORT [-s MIB] [-n FILES] [-g GETATTRS]
 *            [--depth N] [--read-depth N]
 *
 * In a directory of its own under the export's root, removed afterwards:
 *   write   one file of -s MiB (default 64): UNSTABLE WRITEs of the
 *           server's largest size (FSINFO wtmax, at most 1 MiB, the file
 *           protocol's PROTO_MAX_IO) with --depth (default 16, apfp's)
 *           in flight, then COMMIT: MB/s to stable
 *   read    it back with --read-depth (default 4, apfp's) READs in flight
 *   create  -n empty files (default 500), one GUARDED CREATE at a time
 *   getattr -g GETATTRs (default 2000) of the big file, one at a time:
 *           latency p50 and p99 in microseconds
 * One line in apfp bench's format with "nfs" for "apfp":
 *   bench nfs write_MBps=... read_MBps=... create_per_s=... getattr_us_p50=...
 *
 * The ports are given (qemu's user network forwards them): no portmapper.
 * Debian's libnfs (libnfs-dev) does the RPC; only its raw NFSv3 and MOUNT
 * calls are used, so each operation is exactly one RPC like apfp's.
 * Every wait has a deadline (--timeout seconds per wait, default 60).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-mount.h>
#include <nfsc/libnfs-raw-nfs.h>

#define MAX_IO (1u << 20)
#define MAX_DEPTH 64

static double timeout_s = 60;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One outstanding call: its completion, status and reply. */
struct call {
	bool done;
	int status;
	void *data;
	char err[200];
	/* the transfer's bookkeeping, for pipelined READ/WRITE */
	struct xfer *x;
	uint64_t off;
	uint32_t len;
};

struct xfer {
	unsigned inflight;
	int rc;
	uint64_t moved;
	bool verf_set;
	char verf[NFS3_WRITEVERFSIZE];
};

static void note(struct call *c, int status, void *data)
{
	c->done = true;
	c->status = status;
	c->data = data;
	if (status != RPC_STATUS_SUCCESS)
		snprintf(c->err, sizeof(c->err), "%s",
			 status == RPC_STATUS_CANCEL ? "cancelled" : data ? (const char *)data : "rpc error");
}

/* One turn of the event loop (up to 100 ms). */
static int service_once(struct rpc_context *rpc, const char *what)
{
	struct pollfd p = { .fd = rpc_get_fd(rpc), .events = (short)rpc_which_events(rpc) };
	int n = poll(&p, 1, 100);
	if (n < 0 && errno != EINTR)
		return -errno;
	if (rpc_service(rpc, n > 0 ? p.revents : 0) < 0) {
		fprintf(stderr, "nfsbench: %s: %s\n", what, rpc_get_error(rpc));
		return -EIO;
	}
	return 0;
}

/* Run the event loop until *done or the deadline; -ETIMEDOUT or the
 * connection's error as -EIO. */
static int wait_until(struct rpc_context *rpc, const bool *done, const char *what)
{
	double deadline = now() + timeout_s;
	while (!*done) {
		if (now() > deadline) {
			fprintf(stderr, "nfsbench: %s: no answer in %.0f s\n", what, timeout_s);
			return -ETIMEDOUT;
		}
		int rc = service_once(rpc, what);
		if (rc)
			return rc;
	}
	return 0;
}

static void on_call(struct rpc_context *rpc, int status, void *data, void *priv)
{
	(void)rpc;
	note(priv, status, data);
}

/* The NFS status of a reply (all NFSv3 results start with it), checked. */
static int nfs_ok(const struct call *c, const char *what)
{
	if (c->status != RPC_STATUS_SUCCESS) {
		fprintf(stderr, "nfsbench: %s: %s\n", what, c->err);
		return -EIO;
	}
	nfsstat3 st = *(const nfsstat3 *)c->data;
	if (st != NFS3_OK) {
		fprintf(stderr, "nfsbench: %s: NFS status %d (%s)\n", what, (int)st,
			strerror(-nfsstat3_to_errno((int)st)));
		return nfsstat3_to_errno((int)st);
	}
	return 0;
}

static int connect_to(struct rpc_context *rpc, const char *host, int port, int prog, int vers, const char *what)
{
	struct call c = { 0 };
	if (rpc_connect_port_async(rpc, host, port, prog, vers, on_call, &c))
		return fprintf(stderr, "nfsbench: %s: %s\n", what, rpc_get_error(rpc)), -EIO;
	int rc = wait_until(rpc, &c.done, what);
	if (!rc && c.status != RPC_STATUS_SUCCESS)
		return fprintf(stderr, "nfsbench: %s: %s\n", what, c.err), -ECONNREFUSED;
	return rc;
}

/* The export's root handle from the MOUNT service (copied into *fh). */
static int mount_root(const char *host, int port, const char *export, nfs_fh3 *fh)
{
	struct rpc_context *m = rpc_init_context();
	struct call c = { 0 };
	int rc;
	if (!m)
		return -ENOMEM;
	rpc_set_uid(m, 0);
	rpc_set_gid(m, 0);
	if ((rc = connect_to(m, host, port, MOUNT_PROGRAM, MOUNT_V3, "connecting to mountd")))
		goto out;
	if (rpc_mount3_mnt_async(m, on_call, (char *)export, &c)) {
		rc = -EIO;
		goto out;
	}
	if ((rc = wait_until(m, &c.done, "MNT")))
		goto out;
	if (c.status != RPC_STATUS_SUCCESS) {
		fprintf(stderr, "nfsbench: MNT %s: %s\n", export, c.err);
		rc = -EIO;
		goto out;
	}
	const mountres3 *r = c.data;
	if (r->fhs_status != MNT3_OK) {
		fprintf(stderr, "nfsbench: MNT %s: mount status %d\n", export, (int)r->fhs_status);
		rc = -EACCES;
		goto out;
	}
	const fhandle3 *h = &r->mountres3_u.mountinfo.fhandle;
	fh->data.data_len = h->fhandle3_len;
	if (!(fh->data.data_val = malloc(h->fhandle3_len)))
		rc = -ENOMEM;
	else
		memcpy(fh->data.data_val, h->fhandle3_val, h->fhandle3_len);
out:
	rpc_destroy_context(m);
	return rc;
}

static int copy_fh(nfs_fh3 *dst, const post_op_fh3 *src, const char *what)
{
	if (!src->handle_follows) {
		fprintf(stderr, "nfsbench: %s: the server returned no handle\n", what);
		return -EPROTO;
	}
	dst->data.data_len = src->post_op_fh3_u.handle.data.data_len;
	if (!(dst->data.data_val = malloc(dst->data.data_len)))
		return -ENOMEM;
	memcpy(dst->data.data_val, src->post_op_fh3_u.handle.data.data_val, dst->data.data_len);
	return 0;
}

static sattr3 mode_only(unsigned mode)
{
	sattr3 a = { 0 };
	a.mode.set_it = 1;
	a.mode.set_mode3_u.mode = mode;
	return a;
}

static int do_mkdir(struct rpc_context *rpc, nfs_fh3 *dir, const char *name, nfs_fh3 *out)
{
	MKDIR3args a = { .where = { .dir = *dir, .name = (char *)name }, .attributes = mode_only(0755) };
	struct call c = { 0 };
	int rc;
	if (rpc_nfs3_mkdir_async(rpc, on_call, &a, &c))
		return -EIO;
	if ((rc = wait_until(rpc, &c.done, "MKDIR")) || (rc = nfs_ok(&c, "MKDIR")))
		return rc;
	return copy_fh(out, &((MKDIR3res *)c.data)->MKDIR3res_u.resok.obj, "MKDIR");
}

/* One GUARDED CREATE; the new handle into *out when out is not NULL. */
static int do_create(struct rpc_context *rpc, nfs_fh3 *dir, const char *name, nfs_fh3 *out)
{
	CREATE3args a = { .where = { .dir = *dir, .name = (char *)name } };
	struct call c = { 0 };
	int rc;
	a.how.mode = GUARDED;
	a.how.createhow3_u.obj_attributes = mode_only(0644);
	if (rpc_nfs3_create_async(rpc, on_call, &a, &c))
		return -EIO;
	if ((rc = wait_until(rpc, &c.done, "CREATE")) || (rc = nfs_ok(&c, "CREATE")))
		return rc;
	return out ? copy_fh(out, &((CREATE3res *)c.data)->CREATE3res_u.resok.obj, "CREATE") : 0;
}

static int do_remove(struct rpc_context *rpc, nfs_fh3 *dir, const char *name, bool is_dir)
{
	struct call c = { 0 };
	int rc, q;
	if (is_dir) {
		RMDIR3args a = { .object = { .dir = *dir, .name = (char *)name } };
		q = rpc_nfs3_rmdir_async(rpc, on_call, &a, &c);
	} else {
		REMOVE3args a = { .object = { .dir = *dir, .name = (char *)name } };
		q = rpc_nfs3_remove_async(rpc, on_call, &a, &c);
	}
	if (q)
		return -EIO;
	if ((rc = wait_until(rpc, &c.done, is_dir ? "RMDIR" : "REMOVE")))
		return rc;
	return nfs_ok(&c, is_dir ? "RMDIR" : "REMOVE");
}

static int do_getattr(struct rpc_context *rpc, nfs_fh3 *fh)
{
	GETATTR3args a = { .object = *fh };
	struct call c = { 0 };
	int rc;
	if (rpc_nfs3_getattr_async(rpc, on_call, &a, &c))
		return -EIO;
	if ((rc = wait_until(rpc, &c.done, "GETATTR")))
		return rc;
	return nfs_ok(&c, "GETATTR");
}

static int do_fsinfo(struct rpc_context *rpc, nfs_fh3 *root, uint32_t *rtmax, uint32_t *wtmax)
{
	FSINFO3args a = { .fsroot = *root };
	struct call c = { 0 };
	int rc;
	if (rpc_nfs3_fsinfo_async(rpc, on_call, &a, &c))
		return -EIO;
	if ((rc = wait_until(rpc, &c.done, "FSINFO")) || (rc = nfs_ok(&c, "FSINFO")))
		return rc;
	const FSINFO3resok *r = &((FSINFO3res *)c.data)->FSINFO3res_u.resok;
	*rtmax = r->rtmax;
	*wtmax = r->wtmax;
	return 0;
}

/* --- the pipelined transfer ------------------------------------------------ */

static void on_io(struct rpc_context *rpc, int status, void *data, void *priv, bool write)
{
	(void)rpc;
	struct call *c = priv;
	struct xfer *x = c->x;
	note(c, status, data);
	x->inflight--;
	if (x->rc)
		return;
	if (status != RPC_STATUS_SUCCESS) {
		fprintf(stderr, "nfsbench: %s at %llu: %s\n", write ? "WRITE" : "READ", (unsigned long long)c->off,
			c->err);
		x->rc = -EIO;
		return;
	}
	int st = *(const nfsstat3 *)data;
	if (st != NFS3_OK) {
		fprintf(stderr, "nfsbench: %s at %llu: NFS status %d\n", write ? "WRITE" : "READ",
			(unsigned long long)c->off, st);
		x->rc = nfsstat3_to_errno(st);
		return;
	}
	uint32_t n;
	if (write) {
		const WRITE3resok *ok = &((WRITE3res *)data)->WRITE3res_u.resok;
		n = ok->count;
		/* A verifier that changes means the server restarted and lost
		 * unstable data: the run is not valid. */
		if (x->verf_set && memcmp(x->verf, ok->verf, sizeof(x->verf))) {
			fprintf(stderr, "nfsbench: the write verifier changed (server restart)\n");
			x->rc = -EIO;
			return;
		}
		memcpy(x->verf, ok->verf, sizeof(x->verf));
		x->verf_set = true;
	} else {
		n = ((READ3res *)data)->READ3res_u.resok.count;
	}
	if (n != c->len) {
		/* Short transfers do not happen for a regular file of this size
		 * on Linux's nfsd; treat one as an error rather than resend. */
		fprintf(stderr, "nfsbench: %s at %llu: %u of %u bytes\n", write ? "WRITE" : "READ",
			(unsigned long long)c->off, n, c->len);
		x->rc = -EIO;
		return;
	}
	x->moved += n;
}

static void on_write(struct rpc_context *rpc, int status, void *data, void *priv)
{
	on_io(rpc, status, data, priv, true);
}

static void on_read(struct rpc_context *rpc, int status, void *data, void *priv)
{
	on_io(rpc, status, data, priv, false);
}

/* size bytes of buf (repeated) to or from fh, depth requests in flight,
 * chunk bytes each. */
static int transfer(struct rpc_context *rpc, nfs_fh3 *fh, uint64_t size, uint32_t chunk, unsigned depth,
		    char *buf, bool write)
{
	struct call calls[MAX_DEPTH] = { 0 };
	struct xfer x = { 0 };
	const char *what = write ? "WRITE" : "READ";
	int rc = 0;
	uint64_t off = 0;
	double deadline = now() + timeout_s;
	while ((off < size || x.inflight) && !x.rc) {
		while (off < size && x.inflight < depth) {
			/* A free slot: one whose call is done (or never used). */
			struct call *c = NULL;
			for (unsigned i = 0; i < depth && !c; i++)
				if (!calls[i].x || calls[i].done)
					c = &calls[i];
			memset(c, 0, sizeof(*c));
			c->x = &x;
			c->off = off;
			c->len = (uint32_t)(size - off < chunk ? size - off : chunk);
			int q;
			if (write) {
				WRITE3args a = { .file = *fh, .offset = off, .count = c->len, .stable = UNSTABLE };
				a.data.data_len = c->len;
				a.data.data_val = buf;
				q = rpc_nfs3_write_async(rpc, on_write, &a, c);
			} else {
				READ3args a = { .file = *fh, .offset = off, .count = c->len };
				q = rpc_nfs3_read_async(rpc, on_read, &a, c);
			}
			if (q) {
				fprintf(stderr, "nfsbench: queueing a %s: %s\n", what, rpc_get_error(rpc));
				return -EIO;
			}
			x.inflight++;
			off += c->len;
		}
		/* Progress within the deadline: it restarts with every reply. */
		unsigned before = x.inflight;
		if ((rc = service_once(rpc, what)))
			return rc;
		if (x.inflight < before) {
			deadline = now() + timeout_s;
		} else if (now() > deadline) {
			fprintf(stderr, "nfsbench: %s: no reply in %.0f s\n", what, timeout_s);
			return -ETIMEDOUT;
		}
	}
	if (x.rc) {
		/* The calls still out finish before their slots go (bounded). */
		deadline = now() + timeout_s;
		while (x.inflight && now() < deadline && !service_once(rpc, what))
			;
		return x.rc;
	}
	if (x.moved != size) {
		fprintf(stderr, "nfsbench: moved %llu of %llu bytes\n", (unsigned long long)x.moved,
			(unsigned long long)size);
		return -EIO;
	}
	if (!write)
		return 0;
	COMMIT3args a = { .file = *fh, .offset = 0, .count = 0 };
	struct call c = { 0 };
	if (rpc_nfs3_commit_async(rpc, on_call, &a, &c))
		return -EIO;
	if ((rc = wait_until(rpc, &c.done, "COMMIT")) || (rc = nfs_ok(&c, "COMMIT")))
		return rc;
	if (memcmp(((COMMIT3res *)c.data)->COMMIT3res_u.resok.verf, x.verf, sizeof(x.verf))) {
		fprintf(stderr, "nfsbench: the COMMIT verifier differs from the WRITEs' (server restart)\n");
		return -EIO;
	}
	return 0;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static unsigned arg_num(const char *s, unsigned max)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	return *end || !v || v > max ? 0 : (unsigned)v;
}

static int usage(void)
{
	fprintf(stderr, "usage: nfsbench HOST NFSPORT MOUNTPORT EXPORT [-s MIB] [-n FILES] [-g GETATTRS] "
			"[--depth N] [--read-depth N] [--timeout S]\n");
	return 1;
}

int main(int argc, char **argv)
{
	unsigned mib = 64, files = 500, getattrs = 2000, depth = 16, rdepth = 4, nport, mport, secs = 0;
	const char *pos[4];
	unsigned npos = 0;
	for (int i = 1; i < argc; i++) {
		unsigned *slot = !strcmp(argv[i], "-s") ? &mib : !strcmp(argv[i], "-n") ? &files
			: !strcmp(argv[i], "-g") ? &getattrs : !strcmp(argv[i], "--depth") ? &depth
			: !strcmp(argv[i], "--read-depth") ? &rdepth : !strcmp(argv[i], "--timeout") ? &secs : NULL;
		if (slot && i + 1 < argc) {
			unsigned max = slot == &depth || slot == &rdepth ? MAX_DEPTH : 1u << 20;
			if (!(*slot = arg_num(argv[++i], max)))
				return usage();
			if (slot == &secs)
				timeout_s = secs;
		} else if (!slot && npos < 4 && argv[i][0] != '-') {
			pos[npos++] = argv[i];
		} else {
			return usage();
		}
	}
	if (npos != 4 || !(nport = arg_num(pos[1], 65535)) || !(mport = arg_num(pos[2], 65535)))
		return usage();
	const char *host = pos[0], *export = pos[3];

	nfs_fh3 root = { 0 }, dir = { 0 }, big = { 0 }, small = { 0 };
	struct rpc_context *rpc = NULL;
	double *lat = calloc(getattrs, sizeof(*lat));
	char *buf = malloc(MAX_IO);
	uint64_t size = (uint64_t)mib << 20;
	double t0, write_s = 0, read_s = 0, create_s = 0;
	unsigned created = 0;
	bool have_dir = false, have_big = false, have_small = false;
	char dname[64];
	uint32_t rtmax, wtmax, wchunk = 0, rchunk = 0;
	int rc;
	if (!lat || !buf)
		return fprintf(stderr, "nfsbench: out of memory\n"), 1;
	/* The same pattern as apfp bench writes: bytes that do not compress. */
	uint64_t seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull;
	for (unsigned i = 0; i < MAX_IO; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		buf[i] = (char)(seed >> 56);
	}
	snprintf(dname, sizeof(dname), ".nfs-bench-%d", (int)getpid());

	if ((rc = mount_root(host, (int)mport, export, &root)))
		goto out;
	if (!(rpc = rpc_init_context())) {
		rc = -ENOMEM;
		goto out;
	}
	/* root, like apfp bench's session with the secret (the export has
	 * no_root_squash: the peer's own administrator). */
	rpc_set_uid(rpc, 0);
	rpc_set_gid(rpc, 0);
	if ((rc = connect_to(rpc, host, (int)nport, NFS_PROGRAM, NFS_V3, "connecting to nfsd")))
		goto out;
	if ((rc = do_fsinfo(rpc, &root, &rtmax, &wtmax)))
		goto out;
	wchunk = wtmax < MAX_IO ? wtmax : MAX_IO;
	rchunk = rtmax < MAX_IO ? rtmax : MAX_IO;
	if ((rc = do_mkdir(rpc, &root, dname, &dir)))
		goto out;
	have_dir = true;
	if ((rc = do_create(rpc, &dir, "big", &big)))
		goto out;
	have_big = true;

	t0 = now();
	rc = transfer(rpc, &big, size, wchunk, depth, buf, true);
	write_s = now() - t0;
	if (rc)
		goto out;
	t0 = now();
	rc = transfer(rpc, &big, size, rchunk, rdepth, buf, false);
	read_s = now() - t0;
	if (rc)
		goto out;

	if ((rc = do_mkdir(rpc, &dir, "small", &small)))
		goto out;
	have_small = true;
	t0 = now();
	for (; created < files; created++) {
		char name[32];
		snprintf(name, sizeof(name), "f%u", created);
		if ((rc = do_create(rpc, &small, name, NULL)))
			goto out;
	}
	create_s = now() - t0;

	for (unsigned i = 0; i < getattrs; i++) {
		t0 = now();
		if ((rc = do_getattr(rpc, &big)))
			goto out;
		lat[i] = (now() - t0) * 1e6;
	}
	qsort(lat, getattrs, sizeof(*lat), by_value);
out:
	/* Everything made goes again (best effort, the first error kept). */
	if (rpc) {
		int r = 0;
		for (unsigned i = 0; i < created; i++) {
			char name[32];
			snprintf(name, sizeof(name), "f%u", i);
			int e = do_remove(rpc, &small, name, false);
			r = r ? r : e;
		}
		if (have_small)
			r = r ? r : do_remove(rpc, &dir, "small", true);
		if (have_big)
			r = r ? r : do_remove(rpc, &dir, "big", false);
		if (have_dir)
			r = r ? r : do_remove(rpc, &root, dname, true);
		rc = rc ? rc : r;
		rpc_destroy_context(rpc);
	}
	free(root.data.data_val);
	free(dir.data.data_val);
	free(big.data.data_val);
	free(small.data.data_val);
	free(buf);
	if (rc) {
		free(lat);
		fprintf(stderr, "nfsbench: failed: %s\n", strerror(-rc));
		return 2;
	}
	printf("bench nfs write_MBps=%.1f read_MBps=%.1f create_per_s=%.0f getattr_us_p50=%.0f "
	       "getattr_us_p99=%.0f size_MiB=%u files=%u getattrs=%u depth=%u read_depth=%u "
	       "wchunk=%u rchunk=%u\n",
	       (double)size / 1e6 / write_s, (double)size / 1e6 / read_s, files / create_s, lat[getattrs / 2],
	       lat[(size_t)getattrs * 99 / 100], mib, files, getattrs, depth, rdepth, wchunk, rchunk);
	free(lat);
	return 0;
}
