/*
 * Remote administration (docs/protocol.md §5.4): the ADMIN operation runs
 * one shell command of an allow-list for a client holding the secret (the
 * server core refuses anonymous sessions before this file is reached) and
 * answers what the command prints, as it prints it.
 *
 * A command runs on a thread of its own whose output is captured
 * (kout_capture, kernel/kprintf.h) into its run's sink: it prints neither
 * on the console nor into the log, which only get one line when it starts
 * and one when it ends, naming the client.  The request that starts it
 * waits for its end at most ADMIN_FIRST_WAIT_NS and answers what is there
 * (a short command: all of it, done); each continuation waits at most
 * ADMIN_MORE_WAIT_NS for bytes it has not seen or the end.  So a request
 * holds its worker a bounded time, never the network lock (workers run
 * operations without it), and a client that goes away leaves nothing
 * waiting: the command ends on its own and its run is dropped
 * ADMIN_KEEP_NS after its end or its last request.
 *
 * One command at a time: a second ADMIN while one runs is answered BUSY.
 * The output is kept (at most ADMIN_RUNS runs) until its last byte was
 * sent after the end, for the client's continuation requests.
 *
 * reboot and poweroff would never return: their arguments are checked
 * like at the console, the reply says what will happen, and the command's
 * thread carries it out ADMIN_ACT_DELAY_NS after its end, when the reply
 * has left.
 */
#include "net/apfp.h"
#include "proto/server.h"
#include "kernel/errno.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/mm.h"
#include "kernel/power.h"
#include "kernel/random.h"
#include "kernel/sched.h"
#include "kernel/shell.h"
#include "kernel/sync.h"
#include "kernel/time.h"

#define ADMIN_RUNS 4
#define ADMIN_KEEP_NS (60 * NS_PER_S)
#define ADMIN_ACT_DELAY_NS (1 * NS_PER_S)
#define ADMIN_FIRST_WAIT_NS (300 * NS_PER_MS)   /* the first reply: the end, or what is there by then */
#define ADMIN_MORE_WAIT_NS (1 * NS_PER_S)       /* a continuation: new bytes or the end */
#define ADMIN_JOIN_NS (1 * NS_PER_S)            /* the previous command's thread, already past its end */
#define ADMIN_NOTE_NS (60 * NS_PER_S)           /* "still running" on the console */
#define ADMIN_CUT_NOTE "\n[output cut at 256 KiB]\n"
#define REPLY_OVERHEAD 32                       /* run, result, done, data length: 17 bytes */

/* What a remote client may run: looking at the appliance, its filesystems'
 * upkeep, and power.  Writing files, formatting, network changes, fault
 * injection and benchmarks stay on the console. */
static const char *const allowed[] = {
	"status", "uptime", "date", "version", "mem", "cpus", "lsblk", "blkstat", "df", "ls", "stat", "log",
	"proto", "netstat", "sync", "snapshot", "scrub", "fsck", "reboot", "poweroff",
};

/* One command and its output.  The slot (id, cmd, running, result, the
 * times, sink.buf) is under runs_lock; the bytes fill under sink.lock
 * while the thread runs. */
struct admin_run {
	uint64_t id;                    /* 0: slot free */
	char cmd[PROTO_ADMIN_CMD_MAX + 1];
	char line[PROTO_ADMIN_CMD_MAX + 1];     /* split in place by the thread */
	char peer[24];
	struct kout_sink sink;
	bool running;                   /* the thread has not ended the command (atomic reads) */
	int32_t result;
	int power;                      /* 0, or 'r' / 'o' to carry out after the end */
	int power_status;
	uint64_t used_ns, started_ns, noted_ns;
};

static struct admin_run runs[ADMIN_RUNS];
static struct mutex runs_lock;          /* runs[], last_thread */
static struct waitq runs_wq;            /* output added, a command ended */
static struct thread *last_thread;      /* the last command's, joined by the next start */
static struct proto_fs_ops ops;

static bool is_allowed(const char *word)
{
	for (unsigned i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		if (!strcmp(word, allowed[i]))
			return true;
	return false;
}

/* reboot and poweroff: checked and announced here, done later. */
static int power_prepare(struct admin_run *r, int argc, char **argv)
{
	int rc;
	if (!strcmp(argv[0], "reboot")) {
		if ((rc = cmd_reboot_parse(argc, argv)))
			return rc;
		r->power = 'r';
		kprintf("rebooting in 1 s\n");
		return 0;
	}
	if ((rc = cmd_poweroff_parse(argc, argv, &r->power_status)))
		return rc;
	r->power = 'o';
	kprintf("powering off in 1 s (status %d)\n", r->power_status);
	return 0;
}

static void run_free(struct admin_run *r)
{
	kfree(r->sink.buf);
	memset(r, 0, sizeof(*r));
}

/* The end of a command (runs_lock held, capture over): the note when the
 * output was cut, the buffer trimmed to what was printed, the status. */
static void run_end(struct admin_run *r, int result)
{
	if (r->sink.cut) {
		r->sink.cap += sizeof(ADMIN_CUT_NOTE) - 1;      /* the room kept for it */
		kout_append(&r->sink, ADMIN_CUT_NOTE, sizeof(ADMIN_CUT_NOTE) - 1);
	}
	/* Readers copy under runs_lock, which is held: the buffer may move. */
	char *kept = kmalloc(r->sink.len ? r->sink.len : 1);
	if (kept) {
		memcpy(kept, r->sink.buf, r->sink.len);
		kfree(r->sink.buf);
		r->sink.buf = kept;
		r->sink.cap = r->sink.len;
	}
	r->result = result;
	r->used_ns = time_ns();
	__atomic_store_n(&r->running, false, __ATOMIC_RELEASE);
}

static void admin_thread(void *arg)
{
	struct admin_run *r = arg;
	char *argv[SHELL_MAX_ARGS + 1];
	char peer[sizeof(r->peer)], cmd[sizeof(r->cmd)], why[64];
	int result, power, power_status;

	kout_capture(&r->sink);
	int argc = shell_tokenize(r->line, argv, SHELL_MAX_ARGS);
	argv[argc] = NULL;
	if (!strcmp(argv[0], "reboot") || !strcmp(argv[0], "poweroff")) {
		result = power_prepare(r, argc, argv);
		if (result == -EINVAL)
			kprintf("usage: %s\n", shell_find(argv[0])->usage);
	} else {
		result = shell_exec_args(argc, argv, false);
	}
	kout_capture(NULL);

	/* After run_end the slot may be freed by the request that sends
	 * the last bytes: what comes later is copied first. */
	mutex_lock(&runs_lock);
	strlcpy(peer, r->peer, sizeof(peer));
	strlcpy(cmd, r->cmd, sizeof(cmd));
	power = result ? 0 : r->power;
	power_status = r->power_status;
	run_end(r, result);
	size_t len = r->sink.len;
	mutex_unlock(&runs_lock);
	waitq_wake_all(&runs_wq);
	kprintf("admin: %s '%s': result %d, %zu bytes\n", peer, cmd, result, len);

	if (power) {
		ksnprintf(why, sizeof(why), "admin %s from %s", power == 'r' ? "reboot" : "poweroff", peer);
		thread_sleep_ns(ADMIN_ACT_DELAY_NS);
		if (power == 'r')
			power_reset_clean(why);
		power_off_clean(power_status, why);
	}
}

/* The next bytes of r's output from offset into the reply (runs_lock
 * held); done when the command has ended and they are its last. */
static int reply_from(struct admin_run *r, uint64_t offset, uint32_t max, struct proto_call *call,
		      struct proto_admin_rep *rep)
{
	/* Whether it ended first: then len is final and the copy sees all. */
	bool ended = !__atomic_load_n(&r->running, __ATOMIC_ACQUIRE);
	if (offset > kout_len(&r->sink))
		return -EINVAL;
	size_t room = call->scratch_cap > REPLY_OVERHEAD ? call->scratch_cap - REPLY_OVERHEAD : 0;
	size_t n = MIN(room, (size_t)PROTO_MAX_IO);
	if (max)
		n = MIN(n, (size_t)max);
	n = kout_copy(&r->sink, (size_t)offset, call->scratch, n);
	rep->run = r->id;
	rep->result = ended ? (uint32_t)r->result : PROTO_ADMIN_RUNNING;
	rep->done = ended && offset + n == kout_len(&r->sink);
	rep->output.p = call->scratch;
	rep->output.len = (uint32_t)n;
	r->used_ns = time_ns();
	return 0;
}

/* Drop the ended runs nobody asked for in ADMIN_KEEP_NS (runs_lock
 * held); a running one is kept whatever its age. */
static void runs_expire(void)
{
	uint64_t now = time_ns();
	for (unsigned i = 0; i < ADMIN_RUNS; i++)
		if (runs[i].id && !__atomic_load_n(&runs[i].running, __ATOMIC_ACQUIRE) &&
		    now - runs[i].used_ns > ADMIN_KEEP_NS)
			run_free(&runs[i]);
}

/* A slot for a new run (no command runs): a free one (expired runs are
 * freed first), else the least recently used one, dropped (runs_lock
 * held). */
static struct admin_run *run_slot(void)
{
	struct admin_run *lru = &runs[0];
	runs_expire();
	for (unsigned i = 0; i < ADMIN_RUNS; i++) {
		if (!runs[i].id)
			return &runs[i];
		if (runs[i].used_ns < lru->used_ns)
			lru = &runs[i];
	}
	run_free(lru);
	return lru;
}

static bool any_running(void)
{
	for (unsigned i = 0; i < ADMIN_RUNS; i++)
		if (runs[i].id && __atomic_load_n(&runs[i].running, __ATOMIC_ACQUIRE))
			return true;
	return false;
}

static struct admin_run *run_find(uint64_t id)
{
	for (unsigned i = 0; i < ADMIN_RUNS; i++)
		if (runs[i].id == id)
			return &runs[i];
	return NULL;
}

/* What a request waits for: run `id` ended, or (more) its output grew
 * past `offset`, or the slot no longer holds it.  Slots are static, so
 * reading one that was reused is harmless. */
struct run_wait {
	struct admin_run *r;
	uint64_t id;
	size_t offset;
	bool more;
};

static bool run_wait_over(void *arg)
{
	struct run_wait *w = arg;
	if (__atomic_load_n(&w->r->id, __ATOMIC_ACQUIRE) != w->id || !__atomic_load_n(&w->r->running, __ATOMIC_ACQUIRE))
		return true;
	return w->more && kout_len(&w->r->sink) > w->offset;
}

/* Wait (runs_lock held, dropped meanwhile) until w is over or the
 * deadline; the run again, or NULL when it was dropped meanwhile. */
static struct admin_run *run_wait(struct run_wait *w, uint64_t wait_ns)
{
	mutex_unlock(&runs_lock);
	waitq_wait_until(&runs_wq, run_wait_over, w, time_ns() + wait_ns);
	mutex_lock(&runs_lock);
	return w->r->id == w->id ? w->r : NULL;
}

static int continue_run(const struct proto_admin_req *q, const char *peer, struct proto_call *call,
			struct proto_admin_rep *rep)
{
	int rc = -ESTALE;
	mutex_lock(&runs_lock);
	runs_expire();
	struct admin_run *r = run_find(q->run);
	if (!r || strlen(r->cmd) != q->command.len || memcmp(r->cmd, q->command.p, q->command.len))
		goto out;
	rc = -EINVAL;
	if (q->offset > kout_len(&r->sink))
		goto out;
	if (__atomic_load_n(&r->running, __ATOMIC_ACQUIRE) && q->offset == kout_len(&r->sink)) {
		uint64_t now = time_ns();
		r->used_ns = now;
		if (now - r->noted_ns >= ADMIN_NOTE_NS) {
			r->noted_ns = now;
			kprintf("admin: %s '%s' still running after %llu s\n", peer, r->cmd,
				(unsigned long long)((now - r->started_ns) / NS_PER_S));
		}
		struct run_wait w = { r, r->id, (size_t)q->offset, true };
		rc = -ESTALE;
		if (!(r = run_wait(&w, ADMIN_MORE_WAIT_NS)))
			goto out;
	}
	if ((rc = reply_from(r, q->offset, q->max, call, rep)) == 0 && rep->done)
		run_free(r);
out:
	mutex_unlock(&runs_lock);
	return rc;
}

/* Start the command cmd for peer in a new run and answer its first bytes
 * (runs_lock held). */
static int start_run(const char *cmd, const char *peer, uint32_t max, struct proto_call *call,
		     struct proto_admin_rep *rep)
{
	if (last_thread && thread_join(last_thread, ADMIN_JOIN_NS) == 0)
		last_thread = NULL;
	struct admin_run *r = run_slot();
	char *out = kmalloc(PROTO_ADMIN_OUTPUT_MAX);
	if (!out)
		return -ENOMEM;
	strlcpy(r->cmd, cmd, sizeof(r->cmd));
	strlcpy(r->line, cmd, sizeof(r->line));
	strlcpy(r->peer, peer, sizeof(r->peer));
	/* The room of the "cut" note is kept back until the end. */
	kout_sink_init(&r->sink, out, PROTO_ADMIN_OUTPUT_MAX - (sizeof(ADMIN_CUT_NOTE) - 1), &runs_wq);
	r->started_ns = r->noted_ns = r->used_ns = time_ns();
	r->running = true;
	uint64_t id;
	do {
		if (random_bytes(&id, sizeof(id)) < 0)
			id = time_ns();         /* names a run, guards nothing: the session is keyed */
	} while (!id || run_find(id));
	__atomic_store_n(&r->id, id, __ATOMIC_RELEASE);
	kprintf("admin: %s ran '%s'\n", peer, cmd);
	struct thread *t = thread_create("admin", admin_thread, r, THREAD_ANY_CPU);
	if (!t) {
		kprintf("admin: %s '%s': no thread to run it\n", peer, cmd);
		run_free(r);
		return -ENOMEM;
	}
	if (!last_thread)
		last_thread = t;        /* else it stays unjoined: its struct is lost, its stack is not */
	struct run_wait w = { r, id, 0, false };
	if (!(r = run_wait(&w, ADMIN_FIRST_WAIT_NS)))
		return -ESTALE;
	int rc = reply_from(r, 0, max, call, rep);
	if (rc == 0 && rep->done)
		run_free(r);
	return rc;
}

static int admin_op(void *fs, struct proto_call *call, const void *req, void *rep_)
{
	const struct proto_admin_req *q = req;
	struct proto_admin_rep *rep = rep_;
	const char *peer = call->peer ? call->peer : "(unknown client)";
	char cmd[PROTO_ADMIN_CMD_MAX + 1], first[PROTO_ADMIN_CMD_MAX + 1];
	char *argv[SHELL_MAX_ARGS + 1];
	int rc;

	(void)fs;
	if (q->run)
		return continue_run(q, peer, call, rep);
	memcpy(cmd, q->command.p, q->command.len);
	cmd[q->command.len] = 0;
	strlcpy(first, cmd, sizeof(first));
	int argc = shell_tokenize(first, argv, SHELL_MAX_ARGS);
	if (argc <= 0) {
		kprintf("admin: %s refused '%s': %s\n", peer, cmd,
			argc == -E2BIG ? "more than 32 words" : argc ? "unterminated quote" : "no command");
		return -EINVAL;
	}
	if (!is_allowed(argv[0])) {
		kprintf("admin: %s refused '%s': %s is not a remote command\n", peer, cmd, argv[0]);
		return -EPERM;
	}
	mutex_lock(&runs_lock);
	if (any_running()) {
		mutex_unlock(&runs_lock);
		kprintf("admin: %s refused '%s': another admin command is running\n", peer, cmd);
		return -(int)PROTO_E_BUSY;
	}
	rc = start_run(cmd, peer, q->max, call, rep);
	mutex_unlock(&runs_lock);
	return rc;
}

void apfp_admin_attach(struct proto_server *srv)
{
	mutex_init(&runs_lock, "apfp-admin-runs");
	waitq_init(&runs_wq, "apfp-admin");
	ops = *srv->ops;
	ops.op[PROTO_OP_ADMIN] = admin_op;
	srv->ops = &ops;
}
