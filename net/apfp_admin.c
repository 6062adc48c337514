/*
 * Remote administration (docs/protocol.md §5.4): the ADMIN operation runs
 * one shell command of an allow-list for a client holding the secret (the
 * server core refuses anonymous sessions before this file is reached) and
 * answers what the command printed, in pieces when it is long.
 *
 * A command runs on a thread of its own whose output is captured
 * (kout_capture, kernel/kprintf.h): it prints neither on the console nor
 * into the log, which only get one line when it starts and one when it
 * ends, naming the client.  One command at a time: a second ADMIN while
 * one runs is answered BUSY.  The output is kept (at most ADMIN_RUNS runs,
 * ADMIN_KEEP_NS after their last request) until its last byte was sent,
 * for the client's continuation requests.
 *
 * reboot and poweroff would never return: their arguments are checked
 * like at the console, the reply says what will happen, and a thread
 * carries it out ADMIN_ACT_DELAY_NS later, after the reply has left.
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
#define ADMIN_NOTE_NS (60 * NS_PER_S)   /* "still running" on the console */
#define ADMIN_CUT_NOTE "\n[output cut at 256 KiB]\n"
#define REPLY_OVERHEAD 32               /* run, result, done, data length: 17 bytes */

/* What a remote client may run: looking at the appliance, its filesystems'
 * upkeep, and power.  Writing files, formatting, network changes, fault
 * injection and benchmarks stay on the console. */
static const char *const allowed[] = {
	"status", "uptime", "date", "version", "mem", "cpus", "lsblk", "blkstat", "df", "ls", "stat", "log",
	"proto", "netstat", "sync", "snapshot", "scrub", "fsck", "reboot", "poweroff",
};

struct admin_run {
	uint64_t id;                    /* 0: slot free */
	char cmd[PROTO_ADMIN_CMD_MAX + 1];
	char *out;
	size_t len;
	int32_t result;
	uint64_t used_ns;
};

/* One command's execution, shared with its thread. */
struct admin_job {
	char line[PROTO_ADMIN_CMD_MAX + 1];     /* split in place by the thread */
	struct kout_sink sink;
	int result;
	int power;                      /* 0, or 'r' / 'o' to carry out afterwards */
	int power_status;
};

static struct admin_run runs[ADMIN_RUNS];
static struct mutex runs_lock;          /* runs[] */
static struct mutex exec_lock;          /* one command at a time */
static char power_why[64];
static int power_what, power_status;
static struct proto_fs_ops ops;

static bool is_allowed(const char *word)
{
	for (unsigned i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		if (!strcmp(word, allowed[i]))
			return true;
	return false;
}

/* reboot and poweroff: checked and announced here, done later. */
static int power_prepare(struct admin_job *j, int argc, char **argv)
{
	int rc;
	if (!strcmp(argv[0], "reboot")) {
		if ((rc = cmd_reboot_parse(argc, argv)))
			return rc;
		j->power = 'r';
		kprintf("rebooting in 1 s\n");
		return 0;
	}
	if ((rc = cmd_poweroff_parse(argc, argv, &j->power_status)))
		return rc;
	j->power = 'o';
	kprintf("powering off in 1 s (status %d)\n", j->power_status);
	return 0;
}

static void admin_thread(void *arg)
{
	struct admin_job *j = arg;
	char *argv[SHELL_MAX_ARGS + 1];

	kout_capture(&j->sink);
	int argc = shell_tokenize(j->line, argv, SHELL_MAX_ARGS);
	argv[argc] = NULL;
	if (!strcmp(argv[0], "reboot") || !strcmp(argv[0], "poweroff")) {
		j->result = power_prepare(j, argc, argv);
		if (j->result == -EINVAL)
			kprintf("usage: %s\n", shell_find(argv[0])->usage);
	} else {
		j->result = shell_exec_args(argc, argv, false);
	}
	kout_capture(NULL);
}

static void power_thread(void *arg)
{
	(void)arg;
	thread_sleep_ns(ADMIN_ACT_DELAY_NS);
	if (power_what == 'r')
		power_reset_clean(power_why);
	power_off_clean(power_status, power_why);
}

/* Copy the output of r from offset into the reply (runs_lock held). */
static int reply_from(struct admin_run *r, uint64_t offset, uint32_t max, struct proto_call *call,
		      struct proto_admin_rep *rep)
{
	if (offset > r->len)
		return -EINVAL;
	size_t n = r->len - (size_t)offset;
	size_t room = call->scratch_cap > REPLY_OVERHEAD ? call->scratch_cap - REPLY_OVERHEAD : 0;
	n = MIN(n, MIN(room, (size_t)PROTO_MAX_IO));
	if (max)
		n = MIN(n, (size_t)max);
	memcpy(call->scratch, r->out + offset, n);
	rep->run = r->id;
	rep->result = (uint32_t)r->result;
	rep->done = offset + n == r->len;
	rep->output.p = call->scratch;
	rep->output.len = (uint32_t)n;
	r->used_ns = time_ns();
	return 0;
}

static void run_free(struct admin_run *r)
{
	kfree(r->out);
	memset(r, 0, sizeof(*r));
}

/* A slot for a new run: a free one (expired runs are freed first), else
 * the least recently used one, dropped (runs_lock held). */
static struct admin_run *run_slot(void)
{
	uint64_t now = time_ns();
	struct admin_run *lru = &runs[0];
	for (unsigned i = 0; i < ADMIN_RUNS; i++)
		if (runs[i].id && now - runs[i].used_ns > ADMIN_KEEP_NS)
			run_free(&runs[i]);
	for (unsigned i = 0; i < ADMIN_RUNS; i++) {
		if (!runs[i].id)
			return &runs[i];
		if (runs[i].used_ns < lru->used_ns)
			lru = &runs[i];
	}
	run_free(lru);
	return lru;
}

static int continue_run(const struct proto_admin_req *q, struct proto_call *call, struct proto_admin_rep *rep)
{
	int rc = -ESTALE;
	mutex_lock(&runs_lock);
	for (unsigned i = 0; i < ADMIN_RUNS; i++) {
		struct admin_run *r = &runs[i];
		if (r->id != q->run)
			continue;
		if (strlen(r->cmd) != q->command.len || memcmp(r->cmd, q->command.p, q->command.len))
			break;
		if ((rc = reply_from(r, q->offset, q->max, call, rep)) == 0 && rep->done)
			run_free(r);
		break;
	}
	mutex_unlock(&runs_lock);
	return rc;
}

/* Run the command of job j on a thread and wait for it (exec_lock held). */
static int execute(struct admin_job *j, const char *peer, const char *cmd)
{
	uint64_t t0 = time_ns();
	struct thread *t = thread_create("admin", admin_thread, j, THREAD_ANY_CPU);
	if (!t)
		return -ENOMEM;
	/* The thread uses j until it ends: wait however long it takes. */
	while (thread_join(t, ADMIN_NOTE_NS) == -ETIMEDOUT)
		kprintf("admin: %s '%s' still running after %llu s\n", peer, cmd,
			(unsigned long long)((time_ns() - t0) / NS_PER_S));
	return 0;
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
		return continue_run(q, call, rep);
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
	if (!mutex_trylock(&exec_lock)) {
		kprintf("admin: %s refused '%s': another admin command is running\n", peer, cmd);
		return -(int)PROTO_E_BUSY;
	}
	struct admin_job *j = kzalloc(sizeof(*j));
	char *out = kmalloc(PROTO_ADMIN_OUTPUT_MAX);
	if (!j || !out) {
		rc = -ENOMEM;
		goto out_unlock;
	}
	strlcpy(j->line, cmd, sizeof(j->line));
	j->sink = (struct kout_sink){ out, PROTO_ADMIN_OUTPUT_MAX - sizeof(ADMIN_CUT_NOTE), 0, 0 };
	kprintf("admin: %s ran '%s'\n", peer, cmd);
	if ((rc = execute(j, peer, cmd)) < 0) {
		kprintf("admin: %s '%s': no thread to run it: %s\n", peer, cmd, strerror(rc));
		goto out_unlock;
	}
	if (j->sink.cut) {
		memcpy(out + j->sink.len, ADMIN_CUT_NOTE, sizeof(ADMIN_CUT_NOTE) - 1);
		j->sink.len += sizeof(ADMIN_CUT_NOTE) - 1;
	}
	kprintf("admin: %s '%s': result %d, %zu bytes\n", peer, cmd, j->result, j->sink.len);

	mutex_lock(&runs_lock);
	struct admin_run *r = run_slot();
	strlcpy(r->cmd, cmd, sizeof(r->cmd));
	/* Keep only what was printed. */
	r->out = kmalloc(j->sink.len ? j->sink.len : 1);
	if (r->out) {
		memcpy(r->out, out, j->sink.len);
	} else {
		r->out = out;
		out = NULL;
	}
	r->len = j->sink.len;
	r->result = j->result;
	do {
		if (random_bytes(&r->id, sizeof(r->id)) < 0)
			r->id = time_ns();      /* names a run, guards nothing: the session is keyed */
	} while (!r->id);
	rc = reply_from(r, 0, q->max, call, rep);
	if (rep->done)
		run_free(r);
	mutex_unlock(&runs_lock);

	if (j->power && !j->result) {
		ksnprintf(power_why, sizeof(power_why), "admin %s from %s", j->power == 'r' ? "reboot" : "poweroff",
			  peer);
		power_what = j->power;
		power_status = j->power_status;
		if (!thread_create("admin-power", power_thread, NULL, THREAD_ANY_CPU))
			kprintf("admin: %s '%s': no thread to carry it out\n", peer, cmd);
	}
out_unlock:
	kfree(out);
	kfree(j);
	mutex_unlock(&exec_lock);
	return rc;
}

void apfp_admin_attach(struct proto_server *srv)
{
	mutex_init(&runs_lock, "apfp-admin-runs");
	mutex_init(&exec_lock, "apfp-admin");
	ops = *srv->ops;
	ops.op[PROTO_OP_ADMIN] = admin_op;
	srv->ops = &ops;
}
