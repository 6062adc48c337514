/* The end-to-end protocol suites' harness: see apfp_serve_env.h. */
#include "tests/host/apfp_serve_env.h"
#include "fs/vfs.h"
#include "platform/platform.h"
#include "platform/host/platform_host.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int apfp_serve_main(int argc, char **argv);

struct apfp_env apfp_serve_env;
const char *apfp_serve_ext;
char apfp_serve_run[64];
struct apfpc c;
struct apfp_obj root;

static pthread_t server;
static bool running;
static int server_rc;
static uint16_t port;
static const char *ext_export;
static char ext_host[64];

static void *server_thread(void *arg)
{
	(void)arg;
	char *argv[] = { "apfp-serve", "--port", "0", "--port-file", apfp_serve_env.port_file, "--secret-file",
			 apfp_serve_env.secret_file, apfp_serve_env.vol_arg, NULL };
	server_rc = apfp_serve_main(8, argv);
	return NULL;
}

void apfp_serve_start(void)
{
	unlink(apfp_serve_env.port_file);
	pthread_create(&server, NULL, server_thread, NULL);
	running = true;
	if ((port = apfp_env_port(&apfp_serve_env, NULL, NULL)))
		return;
	fprintf(stderr, "server did not start\n");
	abort();
}

int apfp_serve_stop(void)
{
	kill(getpid(), SIGTERM);
	pthread_join(server, NULL);
	running = false;
	return server_rc;
}

int apfp_serve_check_image(void)
{
	struct plat_bdev *b = plat_host_bdev_open(apfp_serve_env.image, APFP_SERVE_IMAGE_BYTES, 512, 2, false);
	struct cowfs_mount *m = NULL;
	char msg[512] = "";
	int rc = b ? cowfs_vfs_mount(b, NULL, &m) : -EIO;
	if (!rc) {
		rc = cowfs_vfs_check(m, msg, sizeof(msg));
		int urc = cowfs_vfs_unmount(m);
		rc = rc ? rc : urc;
	}
	if (msg[0])
		fprintf(stderr, "check: %s\n", msg);
	if (b)
		plat_bdev_close(b);
	return rc;
}

int connect_as(struct apfpc *cc, const uint32_t *ids)
{
	static const uint8_t psk[] = "apfp serve test secret, 32 bytes";
	const char *secret = apfp_serve_ext ? getenv("APFP_TEST_SECRET") : (const char *)psk;
	struct apfpc_cfg cfg = { .host = "127.0.0.1", .port = port, .secret = (const uint8_t *)secret,
				 .secret_len = strlen(secret), .timeout_ms = 60000, .max_inflight = 8,
				 .client_id = "test", .as_ids = ids != NULL, .uid = ids ? ids[0] : 0,
				 .gid = ids ? ids[1] : 0 };
	if (apfp_serve_ext)
		cfg.host = ext_host;
	int rc = apfpc_open(cc, &cfg);
	if (rc)
		fprintf(stderr, "connect: %s\n", cc->err);
	return rc;
}

int connect_client(void)
{
	static const uint32_t root_ids[2] = { 0, 0 };     /* devices need uid 0 (MKNOD) */
	int rc = connect_as(&c, root_ids);
	if (!rc)
		rc = apfp_export_root(&c, apfp_serve_ext ? ext_export : "vol", &root);
	return rc;
}

uint32_t status(uint8_t op, const void *req, struct proto_client_reply *r)
{
	memset(&r->hdr, 0, sizeof(r->hdr));
	int rc = apfpc_call(&c, op, req, r);
	if (rc < 0 && !r->hdr.status) {
		fprintf(stderr, "%s: %s\n", proto_op_name(op), c.err);
		return UINT32_MAX;
	}
	return r->hdr.status;
}

void pattern(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		p[i] = (uint8_t)(seed >> 56);
	}
}

int put_file(const struct apfp_obj *d, const char *name, const uint8_t *buf, size_t len, uint8_t stable,
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

int get_file(const struct proto_handle *fh, uint8_t *buf, size_t cap, size_t *len)
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

/* External mode: connect to the appliance and work in a run directory of
 * this process (the qemu test finds it by the line printed). */
static void setup_external(void)
{
	char *colon = strrchr(apfp_serve_ext, ':');
	char name[64];
	struct apfp_obj d;
	ext_export = getenv("APFP_TEST_EXPORT");
	if (!colon || (size_t)(colon - apfp_serve_ext) >= sizeof(ext_host) || !getenv("APFP_TEST_SECRET") ||
	    !ext_export)
		abort();
	memcpy(ext_host, apfp_serve_ext, (size_t)(colon - apfp_serve_ext));
	port = (uint16_t)atoi(colon + 1);
	plat_init();
	if (connect_client())
		abort();
	snprintf(name, sizeof(name), "run-%d-%ld", (int)getpid(), (long)time(NULL));
	snprintf(apfp_serve_run, sizeof(apfp_serve_run), "%s", name);
	if (apfp_mkdir(&c, &root.fh, name, 0755, &d)) {
		fprintf(stderr, "mkdir %s: %s\n", name, c.err);
		abort();
	}
	root = d;
	printf("# run directory %s\n", name);
	fflush(stdout);
}

int apfp_serve_suite_main(const char *prefix, int (*run_tests)(void))
{
	if ((apfp_serve_ext = getenv("APFP_TEST_SERVER"))) {
		setup_external();
		int rc = run_tests();
		apfpc_close(&c);
		return rc;
	}
	apfp_env_make(&apfp_serve_env, prefix, "apfp serve test secret, 32 bytes\n", APFP_SERVE_IMAGE_BYTES);
	apfp_serve_start();
	if (connect_client())
		abort();
	int rc = run_tests();
	if (running) {          /* the image must check clean once the server is gone */
		apfpc_close(&c);
		if (apfp_serve_stop() || apfp_serve_check_image()) {
			printf("# %s: the server's exit or the image's check failed\n", prefix);
			rc = rc ? rc : 1;
		}
	}
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", apfp_serve_env.dir);
	if (system(cmd))
		rc = rc ? rc : 1;
	return rc;
}
