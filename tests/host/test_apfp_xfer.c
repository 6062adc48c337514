/*
 * The bulk transfers of the CLI (tools/apfp_xfer.c) against a server that
 * dies: build/apfp-serve's code runs in a child process over an image and
 * is killed with SIGKILL (no unmount, no commit: only what a COMMIT made
 * stable survives) and started again on the same port with a new write
 * verifier.
 *
 * - killed after every write was answered, before the COMMIT: the COMMIT
 *   reconnects, sees another verifier, every write is sent again and
 *   committed again; a second kill then shows the data was really made
 *   stable (without the resend the file would be empty);
 * - killed in the middle of the writes: the connection breaks, what was
 *   in flight is sent again on a new one, the writes the dead server had
 *   answered are sent again at the COMMIT;
 * - killed in the middle of a read: the reads in flight are asked again;
 * - no restart: nothing is sent twice, one COMMIT.
 */
#define TEST_SUITE "apfp_xfer"
#include "tests/host/test.h"
#include "tools/apfp_xfer.h"
#include "tools/apfp_ops.h"
#include "tests/host/apfp_env.h"
#include "platform/platform.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int apfp_serve_main(int argc, char **argv);

#define IMAGE_BYTES (128ull << 20)
#define FILE_BYTES ((9u << 20) + 12345)

static struct apfp_env env;
static char *const dir = env.dir, *const secret_file = env.secret_file, *const port_file = env.port_file,
	    *const vol_arg = env.vol_arg;
static pid_t server = -1;
static uint16_t port;           /* 0 until the first start: then the same on every restart */
static struct apfpc c;
static struct apfp_obj root;
static uint8_t *data;

static bool server_alive(void *arg)
{
	(void)arg;
	return waitpid(server, NULL, WNOHANG) != server;
}

static void server_start(void)
{
	char port_arg[16];
	snprintf(port_arg, sizeof(port_arg), "%u", port);
	unlink(port_file);
	fflush(NULL);
	server = fork();
	if (server == 0) {
		char *argv[] = { "apfp-serve", "--port", port_arg, "--port-file", port_file, "--secret-file",
				 secret_file, vol_arg, NULL };
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);    /* its "listening" line is not a test result */
		_exit(apfp_serve_main(8, argv));
	}
	uint16_t p = apfp_env_port(&env, server_alive, NULL);
	if (p) {
		port = p;
		return;
	}
	fprintf(stderr, "apfp-serve did not start on port %u\n", port);
	abort();
}

/* SIGKILL: the filesystem keeps only its last commit. */
static void server_kill(void)
{
	kill(server, SIGKILL);
	waitpid(server, NULL, 0);
	server = -1;
}

static void restart(void)
{
	server_kill();
	server_start();
}

static int connect_client(void)
{
	static const uint8_t psk[] = "apfp xfer test secret, 32 bytes!";
	struct apfpc_cfg cfg = { .host = "127.0.0.1", .port = port, .secret = psk, .secret_len = sizeof(psk) - 1,
				 .timeout_ms = 10000, .max_inflight = 8, .reconnects = 4, .client_id = "test" };
	int rc = apfpc_open(&c, &cfg);
	if (rc)
		fprintf(stderr, "connect: %s\n", c.err);
	return rc ? rc : apfp_export_root(&c, "vol", &root);
}

static void setup(void)
{
	apfp_env_make(&env, "apfp-xfer", "apfp xfer test secret, 32 bytes!\n", IMAGE_BYTES);
	if (!(data = malloc(FILE_BYTES)))
		abort();
	uint64_t seed = 12345;
	for (size_t i = 0; i < FILE_BYTES; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		data[i] = (uint8_t)(seed >> 56);
	}
	server_start();
	if (connect_client())
		abort();
}

struct hooks {
	unsigned commits_seen;          /* before_commit calls */
	unsigned kill_at_commit;        /* restart before this COMMIT (1 = the first; 0 never) */
	uint64_t kill_at_off;           /* restart when the source is asked for this offset */
	bool killed;
};

static int src(void *arg, uint64_t off, void *buf, uint32_t len)
{
	struct hooks *h = arg;
	if (h->kill_at_off && off == h->kill_at_off && !h->killed) {
		h->killed = true;
		restart();
	}
	memcpy(buf, data + off, len);
	return 0;
}

static void before_commit(void *arg)
{
	struct hooks *h = arg;
	if (++h->commits_seen == h->kill_at_commit) {
		h->killed = true;
		restart();
	}
}

/* A new empty file whose name is stable (the directory committed), so a
 * kill can only lose its data. */
static int new_file(const char *name, struct apfp_obj *f)
{
	int rc = apfp_create(&c, &root.fh, name, 0644, PROTO_CREATE_GUARDED, f);
	return rc ? rc : apfp_commit(&c, &root.fh, NULL);
}

/* The file as it is after a SIGKILL and a restart: matches data? */
static bool survives_kill(const struct apfp_obj *f, uint64_t size)
{
	restart();
	struct proto_attr a;
	if (apfp_getattr(&c, &f->fh, &a)) {
		fprintf(stderr, "getattr after the kill: %s\n", c.err);
		return false;
	}
	if (a.size != size) {
		fprintf(stderr, "size %llu after the kill, %llu written\n", (unsigned long long)a.size,
			(unsigned long long)size);
		return false;
	}
	uint8_t *buf = malloc(PROTO_MAX_IO);
	bool same = buf != NULL;
	for (uint64_t off = 0; same && off < size;) {
		uint32_t n = 0, want = size - off < PROTO_MAX_IO ? (uint32_t)(size - off) : PROTO_MAX_IO;
		bool eof;
		same = !apfp_read(&c, &f->fh, off, buf, want, &n, &eof) && n && !memcmp(buf, data + off, n);
		if (!same)
			fprintf(stderr, "data differs in the MiB at %llu\n", (unsigned long long)off);
		off += n;
	}
	free(buf);
	return same;
}

TEST(no_restart_sends_each_write_once)
{
	struct apfp_obj f;
	struct hooks h = { 0 };
	struct apfp_xfer x = { .src = src, .arg = &h, .before_commit = before_commit };
	EXPECT_EQ_INT(new_file("plain", &f), 0);
	EXPECT_EQ_INT(apfp_xfer_put(&c, &f.fh, FILE_BYTES, &x), 0);
	EXPECT_EQ_INT(x.commits, 1);
	EXPECT_EQ_INT(x.resent, 0);
	EXPECT_EQ_INT(x.broken, 0);
	EXPECT_EQ_INT(x.bytes, FILE_BYTES);
	EXPECT(survives_kill(&f, FILE_BYTES));
}

TEST(server_killed_before_commit_writes_are_sent_again)
{
	struct apfp_obj f;
	struct hooks h = { .kill_at_commit = 1 };
	struct apfp_xfer x = { .src = src, .arg = &h, .before_commit = before_commit };
	EXPECT_EQ_INT(new_file("killed-before-commit", &f), 0);
	EXPECT_EQ_INT(apfp_xfer_put(&c, &f.fh, FILE_BYTES, &x), 0);
	EXPECT(h.killed);
	EXPECT_EQ_INT(x.commits, 2);
	EXPECT_EQ_INT(x.resent, (FILE_BYTES + PROTO_MAX_IO - 1) / PROTO_MAX_IO);    /* every write */
	EXPECT_EQ_INT(x.bytes, 2ull * FILE_BYTES);
	EXPECT(survives_kill(&f, FILE_BYTES));
}

TEST(server_killed_between_writes_connection_made_again)
{
	struct apfp_obj f;
	struct hooks h = { .kill_at_off = 4u << 20 };
	struct apfp_xfer x = { .src = src, .arg = &h, .before_commit = before_commit, .depth = 2 };
	EXPECT_EQ_INT(new_file("killed-between-writes", &f), 0);
	EXPECT_EQ_INT(apfp_xfer_put(&c, &f.fh, FILE_BYTES, &x), 0);
	EXPECT(h.killed);
	EXPECT_EQ_INT(x.broken, 1);
	/* the writes the dead server answered (at least the first two MiB of
	 * the four it had been sent) came back at the COMMIT */
	EXPECT(x.resent >= 2 && x.resent <= 4);
	EXPECT(x.commits >= 2);
	EXPECT(survives_kill(&f, FILE_BYTES));
}

struct sink { uint8_t *buf; uint64_t kill_at_off; bool killed; unsigned calls; };

static int sink(void *arg, uint64_t off, const void *buf, uint32_t len)
{
	struct sink *s = arg;
	if (off + len > FILE_BYTES)
		return -EFBIG;
	memcpy(s->buf + off, buf, len);
	s->calls++;
	if (off == s->kill_at_off && !s->killed) {
		s->killed = true;
		restart();
	}
	return 0;
}

TEST(server_killed_during_a_read_reads_are_asked_again)
{
	struct apfp_obj f;
	struct sink s = { .buf = calloc(1, FILE_BYTES), .kill_at_off = 2u << 20 };
	struct apfp_xfer x = { .sink = sink, .arg = &s, .depth = 4 };
	uint64_t got = 0;
	EXPECT_EQ_INT(apfp_lookup(&c, &root.fh, "plain", &f), 0);
	EXPECT_EQ_INT(apfp_xfer_get(&c, &f.fh, FILE_BYTES, &x, &got), 0);
	EXPECT(s.killed);
	EXPECT_EQ_INT(x.broken, 1);
	EXPECT_EQ_INT(got, FILE_BYTES);
	EXPECT(!memcmp(s.buf, data, FILE_BYTES));
	/* A size larger than the file: the end of file ends the transfer. */
	memset(s.buf, 0, FILE_BYTES);
	s.killed = true;
	EXPECT_EQ_INT(apfp_xfer_get(&c, &f.fh, FILE_BYTES + (5u << 20), &x, &got), 0);
	EXPECT_EQ_INT(got, FILE_BYTES);
	EXPECT(!memcmp(s.buf, data, FILE_BYTES));
	free(s.buf);
}

int main(void)
{
	setup();
	int rc = test_main();
	apfpc_close(&c);
	if (server > 0) {
		int st = 0;
		kill(server, SIGTERM);
		waitpid(server, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr, "apfp-serve exit status %#x\n", st);
			rc = rc ? rc : 1;
		}
	}
	free(data);
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		rc = rc ? rc : 1;
	return rc;
}
