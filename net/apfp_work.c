/*
 * The file protocol server's workers (net/apfp.h): the run queues a
 * connection with whole frames waits on, the threads that run the
 * handshake and the server core on its frames outside net_lock, and the
 * server's start.  The lwIP side is net/apfp.c; what both share is in
 * net/apfp_conn.h.
 */
#include "net/net.h"
#include "net/apfp_conn.h"
#include "net/apfp_fs.h"
#include "proto/sha256.h"
#include "boot/bootinfo.h"
#include "kernel/errno.h"
#include "kernel/initcall.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/mm.h"
#include "kernel/random.h"
#include "kernel/sched.h"
#include "kernel/smp.h"
#include "kernel/sync.h"
#include "kernel/time.h"

#include "lwip/tcp.h"

KERNEL_ARG_UINT(proto_max_conn, 1, APFP_CONN_CAP, "file protocol: most connections at once (default 64)");
KERNEL_ARG_UINT(proto_idle_s, 2, 86400, "file protocol: drop a connection idle this many seconds (default 300)");
KERNEL_ARG_FLAG(proto_anon, "file protocol: allow anonymous read-only sessions although a token is set");

#define SMALL_REPLY 4096        /* reply body room of operations with small replies */

/* Work goes to the workers of the CPU that found it (the network thread's,
 * usually): waking a thread on an idle other CPU costs milliseconds under
 * TCG (4x slower round trips measured), a local switch does not.  Only
 * when none of the local workers waits does it go to a CPU that has one.
 * Bulk data (READ and WRITE frames) goes the other way, to another CPU's
 * workers first: a worker summing and copying a megabyte on the network
 * thread's CPU takes turns with it while the other CPUs idle (a 128 MiB put
 * kept one CPU busy and the other ~95 % idle).  A busy connection keeps
 * its worker, so a stream of frames costs one remote wake-up, not one
 * per frame. */
struct runq {
	struct conn *head, *tail;
	unsigned idle;                  /* workers waiting on it (wlock) */
	struct waitq wq;
};
static spinlock_t wlock = SPINLOCK_INIT("apfp-work");  /* net/apfp_conn.h says what it covers */
static struct conn *done_conns;         /* connections with work for apfp_complete() (wlock) */
static struct runq runqs[APFP_QUEUES];
static unsigned nqueues = 1;
static struct mutex rl_lock;            /* the rate limiter is shared by all handshakes */
static struct proto_ratelimit ratelimit;
static struct proto_server srv;
static struct proto_server_cfg auth_cfg;
static unsigned max_conn = PROTO_DEFAULT_MAX_CONN, idle_s = PROTO_IDLE_TIMEOUT_S;
static bool running;
static const char *off_why = "not started";

/* ---- the run queues and the done list (wlock held) ---------------------------------- */
static void schedule(struct conn *c)
{
	if (c->queued || c->busy)
		return;
	unsigned self = this_cpu()->index % nqueues, q = self;
	if (c->bulk) {
		for (unsigned i = 1; i < nqueues; i++)
			if (runqs[(self + i) % nqueues].idle) {
				q = (self + i) % nqueues;
				break;
			}
	} else {
		for (unsigned i = 0; i < nqueues && !runqs[q].idle; i++)
			if (runqs[i].idle)
				q = i;
	}
	ADD(remote_runs, q != self);
	struct runq *rq = &runqs[q];
	c->queued = true;
	c->queued_ns = time_ns();
	c->run_next = NULL;
	if (rq->tail)
		rq->tail->run_next = c;
	else
		rq->head = c;
	rq->tail = c;
	waitq_wake_one(&rq->wq);
}

/* The connection goes on the list apfp_complete() works through. */
static void done_mark(struct conn *c)
{
	if (!c->on_done) {
		c->on_done = true;
		c->done_next = done_conns;
		done_conns = c;
	}
}

void work_push(struct conn *c, struct buf *f)
{
	uint64_t fl = spin_lock_irqsave(&wlock);
	list_push(&c->in_head, &c->in_tail, f);
	schedule(c);
	spin_unlock_irqrestore(&wlock, fl);
}

bool conn_idle(struct conn *c)
{
	uint64_t fl = spin_lock_irqsave(&wlock);
	bool idle = !c->busy && !c->queued && !c->in_head && !c->done_head && !c->on_done;
	spin_unlock_irqrestore(&wlock, fl);
	return idle;
}

struct conn *done_take_all(void)
{
	if (!__atomic_load_n(&done_conns, __ATOMIC_ACQUIRE))
		return NULL;
	uint64_t fl = spin_lock_irqsave(&wlock);
	struct conn *list = done_conns;
	done_conns = NULL;
	for (struct conn *c = list; c; c = c->done_next)
		c->on_done = false;
	spin_unlock_irqrestore(&wlock, fl);
	return list;
}

struct buf *done_take(struct conn *c)
{
	uint64_t fl = spin_lock_irqsave(&wlock);
	struct buf *f = c->done_head;
	c->done_head = c->done_tail = NULL;
	spin_unlock_irqrestore(&wlock, fl);
	return f;
}

/* ---- workers ----------------------------------------------------------------------- */
static bool op_has_big_reply(uint8_t op)
{
	return op == PROTO_OP_READ || op == PROTO_OP_READDIR || op == PROTO_OP_READDIRPLUS || op == PROTO_OP_READLINK ||
	       op == PROTO_OP_GETXATTR || op == PROTO_OP_LISTXATTR || op == PROTO_OP_SNAP_LIST ||
	       op == PROTO_OP_EXPORTS || op == PROTO_OP_ADMIN;
}

/* One handshake frame: the reply, and whether to close after it. */
static struct buf *do_handshake(struct conn *c, const struct buf *f, bool *close)
{
	struct buf *out = buf_new(PROTO_HDR_SIZE + PROTO_HANDSHAKE_MAX_BODY);
	char peer[24];
	size_t n = 0;
	int rc;

	if (!out) {
		*close = true;
		return NULL;
	}
	c->auth.now_ns = time_ns();
	mutex_lock(&rl_lock);
	rc = proto_auths_step(&c->auth, f->data, f->len, out->data, out->cap, &n);
	mutex_unlock(&rl_lock);
	out->len = n;
	if (rc < 0) {
		*close = true;
		ADD(auth_failures, 1);
		kprintf("proto: %s: handshake refused: %s\n", peer_str(c, peer, sizeof(peer)), c->auth.err.msg);
	} else if (c->auth.state == PROTO_AUTH_DONE) {
		proto_reqtab_init(&c->tab, c->sess.max_inflight);
		if (c->sess.keyed)
			ADD(sessions_keyed, 1);
		else
			ADD(sessions_anon, 1);
	}
	return out;
}

/* proto_server_handle() with the client's address in the call (the log
 * lines of ADMIN name it): receive, execute, seal, release the id. */
static int serve_frame(struct conn *c, const struct buf *f, struct buf *out, size_t cap, size_t *n,
		       uint8_t *scratch, size_t scratch_cap, struct proto_err *err)
{
	struct proto_request r;
	char peer[24];
	int rc, len;

	*n = 0;
	if (f->tag.done && f->tag.seq == c->sess.seq_recv)
		ADD(tags_on_copy, 1);
	else if (c->sess.keyed)
		ADD(tags_late, 1);
	rc = proto_server_receive_pre(&srv, &c->sess, &c->tab, f->data, f->len, &f->tag, &r, err);
	if (rc < 0 && !r.status)
		return rc;
	r.call.peer = peer_str(c, peer, sizeof(peer));
	/* Remote administration is logged, refusals at the gate included
	 * (net/apfp_admin.c logs what passes it). */
	if (r.status && r.hdr.opcode == PROTO_OP_ADMIN)
		kprintf("admin: %s refused: %s (%s)\n", peer, err->msg[0] ? err->msg : proto_status_str(r.status),
			proto_status_name(r.status));
	len = proto_server_execute(&srv, &c->sess, &r, out->data, cap, scratch, scratch_cap, err);
	if (len >= 0)
		len = proto_session_seal(&c->sess, out->data, (size_t)len, cap);
	if (r.claimed)
		proto_reqtab_end(&c->tab, r.hdr.id);
	if (len < 0)
		return len;
	*n = (size_t)len;
	return rc;
}

/* One request frame. */
static struct buf *do_request(struct conn *c, const struct buf *f, bool *close)
{
	size_t body = op_has_big_reply(f->len > 5 ? f->data[5] : 0) ? c->sess.max_body : SMALL_REPLY;
	size_t cap = PROTO_HDR_SIZE + body + PROTO_TAG_SIZE, n = 0;
	struct buf *out = buf_new(cap);
	uint8_t *scratch = kmalloc(body);
	struct proto_err err = { { 0 } };
	char peer[24];
	int rc;

	if (!out || !scratch) {
		kfree(out);
		kfree(scratch);
		*close = true;
		return NULL;
	}
	apfp_fs_refresh(&srv);
	rc = serve_frame(c, f, out, cap, &n, scratch, body, &err);
	kfree(scratch);
	out->len = n;
	ADD(requests, 1);
	if (n >= PROTO_HDR_SIZE && le32(out->data + 16))
		ADD(request_errors, 1);
	if (rc < 0) {
		*close = true;
		ADD(protocol_closes, 1);
		kprintf("proto: %s: closed: %s\n", peer_str(c, peer, sizeof(peer)),
			err.msg[0] ? err.msg : strerror(rc));
	}
	if (n + 256 < cap) {                    /* keep only what is sent */
		struct buf *small = buf_new(n);
		if (small) {
			memcpy(small->data, out->data, n);
			small->len = n;
			kfree(out);
			out = small;
		}
	}
	return out;
}

static bool run_ready(void *arg)
{
	struct runq *rq = arg;
	return __atomic_load_n(&rq->head, __ATOMIC_ACQUIRE) != NULL;
}

/* One worker, pinned to a CPU, serving that CPU's queue.  It never takes
 * net_lock (net/apfp_conn.h): executed frames go to the connection's done
 * list and the network thread finishes them. */
static void apfp_worker(void *arg)
{
	struct runq *rq = arg;
	uint64_t fl = spin_lock_irqsave(&wlock);

	for (;;) {
		struct conn *c;
		while (!(c = rq->head)) {
			rq->idle++;
			spin_unlock_irqrestore(&wlock, fl);
			waitq_wait_until(&rq->wq, run_ready, rq, UINT64_MAX);
			fl = spin_lock_irqsave(&wlock);
			rq->idle--;
		}
		rq->head = c->run_next;
		if (!rq->head)
			rq->tail = NULL;
		c->queued = false;
		c->busy = true;
		uint64_t now = time_ns(), waited = now - c->queued_ns;
		WAIT_ADD(c, wakes, 1);
		WAIT_ADD(c, wake_ns, waited);
		wait_max(&c->w.wake_max_ns, waited);
		wait_max(&apfp_st.w.wake_max_ns, waited);
		/* From here until busy is cleared the slot stays this
		 * connection's: the lwIP side frees it only when conn_idle(). */
		struct buf *f;
		while ((f = list_pop(&c->in_head, &c->in_tail))) {
			/* The state changes under net_lock; a handshake step is
			 * lock-step (the next one is read only after this one was
			 * completed), so what is read here is settled. */
			enum conn_state state = __atomic_load_n(&c->state, __ATOMIC_ACQUIRE);
			bool skip = state == CS_CLOSING || c->wfatal;
			bool handshake = state == CS_HANDSHAKE;
			uint8_t op = f->len > 5 ? f->data[5] % APFP_OPS : 0;
			now = time_ns();
			waited = now - f->ready_ns;
			WAIT_ADD(c, handoffs, 1);
			WAIT_ADD(c, handoff_ns, waited);
			wait_max(&c->w.handoff_max_ns, waited);
			wait_max(&apfp_st.w.handoff_max_ns, waited);
			spin_unlock_irqrestore(&wlock, fl);
			struct buf *out = NULL;
			bool close = false;
			if (!skip)
				out = handshake ? do_handshake(c, f, &close) : do_request(c, f, &close);
			if (close)
				c->wfatal = true;
			f->reply = out;
			f->close = close;
			f->handshake = handshake;
			uint64_t busy = time_ns() - now;
			fl = spin_lock_irqsave(&wlock);
			WAIT_ADD(c, busy_ns, busy);
			apfp_st.op_runs[op]++;
			apfp_st.op_busy_ns[op] += busy;
			list_push(&c->done_head, &c->done_tail, f);
			done_mark(c);
			spin_unlock_irqrestore(&wlock, fl);
			net_wake();                     /* the reply goes out from the network thread */
			fl = spin_lock_irqsave(&wlock);
		}
		c->busy = false;
		done_mark(c);                           /* it may be freed or closed now */
		spin_unlock_irqrestore(&wlock, fl);
		net_wake();
		fl = spin_lock_irqsave(&wlock);
	}
}

/* ---- start ------------------------------------------------------------------------------- */
static int apfp_start(void)
{
	static uint8_t handle_key[32];
	const char *token = boot_info->config.token;
	const char *a;
	unsigned long long v;
	int rc;

	if (!net_if_count()) {
		off_why = "no network";
		return 0;
	}
	if ((a = arg_get("proto_max_conn")) && !parse_u64(a, &v) && v >= 1 && v <= APFP_CONN_CAP)
		max_conn = (unsigned)v;
	if ((a = arg_get("proto_idle_s")) && !parse_u64(a, &v) && v >= 2 && v <= 86400)
		idle_s = (unsigned)v;
	if ((rc = random_bytes(&auth_cfg.boot_id, sizeof(auth_cfg.boot_id))) < 0) {
		off_why = "no random source";
		kprintf("proto: the file server is off: no random source for keys and nonces (%s: the CPU has %s)\n",
			strerror(rc), rc == -ENODEV ? "neither RDSEED nor RDRAND" : "a failing generator");
		return 0;
	}
	/* The handle key must outlive restarts so handles do: derived from the
	 * token when there is one; without one it is made per boot (handles
	 * then go stale at a restart) until the filesystem keeps a key. */
	if (token[0])
		proto_hkdf_extract("apfp handle key", 15, token, strlen(token), handle_key);
	else if (random_bytes(handle_key, sizeof(handle_key)) < 0)
		return 0;
	if ((rc = apfp_fs_init(&srv, handle_key, sizeof(handle_key))) < 0) {
		off_why = "no random write verifier";
		return 0;
	}
	apfp_admin_attach(&srv);
	proto_rl_init(&ratelimit);
	mutex_init(&rl_lock, "apfp-rl");
	auth_cfg.psk = (const uint8_t *)token;
	auth_cfg.psk_len = strlen(token);
	auth_cfg.anon_ok = !token[0] || arg_present("proto_anon");
	auth_cfg.max_body = PROTO_MAX_BODY;
	auth_cfg.max_inflight = PROTO_MAX_INFLIGHT;
	auth_cfg.rl = &ratelimit;
	nqueues = MIN(ncpus_online, (unsigned)APFP_QUEUES);
	for (unsigned q = 0; q < nqueues; q++) {
		waitq_init(&runqs[q].wq, "apfp-run");
		for (unsigned i = 0; i < APFP_WORKERS_PER_CPU; i++)
			if (!thread_create("apfp", apfp_worker, &runqs[q], (int)q)) {
				off_why = "no memory for workers";
				return -ENOMEM;
			}
	}
	rc = apfp_listen();
	if (rc < 0) {
		off_why = "cannot listen";
		kprintf("proto: the file server is off: cannot listen on tcp/%u: %s\n", APFP_PORT, strerror(rc));
		return rc;
	}
	running = true;
	off_why = NULL;
	char names[160] = "";
	for (unsigned i = 0; i < srv.nexports; i++) {
		const struct proto_export_cfg *e = &srv.exports[i];
		size_t at = strlen(names);
		ksnprintf(names + at, sizeof(names) - at, "%s/%s%s%s", i ? ", " : ": ", e->name,
			 e->flags & PROTO_EXP_RO ? " ro" : "", e->flags & PROTO_EXP_ANON ? " anon" : "");
	}
	if (token[0])
		kprintf("proto: file server on tcp/%u: token required%s; up to %u connections; %u exports%s; "
			"keys from %s\n", APFP_PORT,
			auth_cfg.anon_ok ? ", anonymous read-only sessions allowed" : ", no anonymous access",
			max_conn, srv.nexports, names, random_source());
	else
		kprintf("proto: file server on tcp/%u: no token configured: anonymous read-only access only; "
			"up to %u connections; %u exports%s; keys from %s\n", APFP_PORT, max_conn,
			srv.nexports, names, random_source());
	return 0;
}
INITCALL(apfp, INIT_LATE, 20, apfp_start);

/* ---- configuration --------------------------------------------------------------------- */
const struct proto_server_cfg *apfp_auth_cfg(void)
{
	return &auth_cfg;
}

bool apfp_running(const char **why)
{
	if (why)
		*why = off_why;
	return running;
}

unsigned apfp_max_conn(void) { return max_conn; }
unsigned apfp_idle_s(void) { return idle_s; }
bool apfp_keyed(void) { return auth_cfg.psk_len != 0; }
bool apfp_anon(void) { return auth_cfg.anon_ok; }
