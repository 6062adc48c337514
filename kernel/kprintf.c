/*
 * kprintf: formatting, the console, and the kernel log ring.
 *
 * One formatter (kfmt) drives an output callback, so ksnprintf and kprintf
 * share every conversion.  Console output is serialised by console_lock;
 * bytes go to the log ring verbatim and to the serial line with "\n"
 * expanded to "\r\n".
 */
#include "kernel/kprintf.h"
#include "kernel/serial.h"
#include "kernel/fbcon.h"
#include "kernel/conin.h"
#include "kernel/sync.h"
#include "kernel/kstring.h"
#include "kernel/sched.h"
#include "kernel/smp.h"
#include "kernel/cpu.h"
#include <stdint.h>
#include <stdbool.h>

struct kfmt_out {
	void (*put)(struct kfmt_out *o, char c);
	char *buf;
	size_t size, pos;
};

struct kfmt_spec {
	bool left, zero, plus, space, alt;
	int width, prec;       /* prec < 0: not given */
	int len;               /* 0 int, 1 long, 2 long long/size_t */
};

static void kfmt_pad(struct kfmt_out *o, char c, int n)
{
	while (n-- > 0)
		o->put(o, c);
}

static void kfmt_str(struct kfmt_out *o, const struct kfmt_spec *sp, const char *s)
{
	if (!s)
		s = "(null)";
	int n = (int)strnlen(s, sp->prec >= 0 ? (size_t)sp->prec : (size_t)-1);
	if (!sp->left)
		kfmt_pad(o, ' ', sp->width - n);
	for (int i = 0; i < n; i++)
		o->put(o, s[i]);
	if (sp->left)
		kfmt_pad(o, ' ', sp->width - n);
}

static void kfmt_num(struct kfmt_out *o, const struct kfmt_spec *sp, unsigned long long v,
		     bool neg, unsigned base, bool upper, const char *prefix)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	int n = 0;

	while (v) {
		tmp[n++] = digits[v % base];
		v /= base;
	}
	/* C rule: precision 0 with value 0 prints no digits. */
	if (n == 0 && sp->prec != 0)
		tmp[n++] = '0';
	int zeros = sp->prec > n ? sp->prec - n : 0;
	char sign = neg ? '-' : sp->plus ? '+' : sp->space ? ' ' : 0;
	int plen = (int)strlen(prefix) + (sign ? 1 : 0);
	int total = plen + zeros + n;
	bool zero_pad = sp->zero && !sp->left && sp->prec < 0;

	if (zero_pad && sp->width > total)
		zeros += sp->width - total, total = sp->width;
	if (!sp->left)
		kfmt_pad(o, ' ', sp->width - total);
	if (sign)
		o->put(o, sign);
	for (const char *p = prefix; *p; p++)
		o->put(o, *p);
	kfmt_pad(o, '0', zeros);
	while (n)
		o->put(o, tmp[--n]);
	if (sp->left)
		kfmt_pad(o, ' ', sp->width - total);
}

static void kfmt(struct kfmt_out *o, const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			o->put(o, *fmt);
			continue;
		}
		const char *start = fmt++;
		struct kfmt_spec sp = { .prec = -1 };

		for (;; fmt++) {
			if (*fmt == '-') sp.left = true;
			else if (*fmt == '0') sp.zero = true;
			else if (*fmt == '+') sp.plus = true;
			else if (*fmt == ' ') sp.space = true;
			else if (*fmt == '#') sp.alt = true;
			else break;
		}
		if (*fmt == '*') {
			sp.width = va_arg(ap, int);
			if (sp.width < 0)
				sp.left = true, sp.width = -sp.width;
			fmt++;
		} else {
			while (*fmt >= '0' && *fmt <= '9')
				sp.width = sp.width * 10 + (*fmt++ - '0');
		}
		if (*fmt == '.') {
			fmt++;
			sp.prec = 0;
			if (*fmt == '*') {
				sp.prec = va_arg(ap, int);
				if (sp.prec < 0)
					sp.prec = -1;
				fmt++;
			} else {
				while (*fmt >= '0' && *fmt <= '9')
					sp.prec = sp.prec * 10 + (*fmt++ - '0');
			}
		}
		for (;; fmt++) {
			if (*fmt == 'l') sp.len++;
			else if (*fmt == 'z' || *fmt == 'j' || *fmt == 't') sp.len = 2;
			else if (*fmt == 'h') continue; /* promoted to int anyway */
			else break;
		}

		unsigned long long u;
		long long s;
		switch (*fmt) {
		case 'd': case 'i':
			s = sp.len >= 2 ? va_arg(ap, long long) :
			    sp.len == 1 ? va_arg(ap, long) : va_arg(ap, int);
			u = s < 0 ? 0ULL - (unsigned long long)s : (unsigned long long)s;
			kfmt_num(o, &sp, u, s < 0, 10, false, "");
			break;
		case 'u': case 'x': case 'X': case 'o':
			u = sp.len >= 2 ? va_arg(ap, unsigned long long) :
			    sp.len == 1 ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);
			sp.plus = sp.space = false;
			kfmt_num(o, &sp, u, false, *fmt == 'u' ? 10 : *fmt == 'o' ? 8 : 16, *fmt == 'X',
				 sp.alt && u && (*fmt == 'x' || *fmt == 'X') ? (*fmt == 'x' ? "0x" : "0X") : "");
			break;
		case 'p':
			/* Pointers always print as 0x + 16 digits: kernel addresses
			 * line up in dumps. */
			u = (uintptr_t)va_arg(ap, void *);
			sp.plus = sp.space = false;
			if (sp.prec < 0)
				sp.prec = 16;
			kfmt_num(o, &sp, u, false, 16, false, "0x");
			break;
		case 's':
			kfmt_str(o, &sp, va_arg(ap, const char *));
			break;
		case 'c': {
			char c[2] = { (char)va_arg(ap, int), 0 };
			sp.prec = 1;
			kfmt_str(o, &sp, c);
			break;
		}
		case '%':
			o->put(o, '%');
			break;
		default:
			/* Unknown conversion: print it verbatim so the bug is visible. */
			for (; start <= fmt && *start; start++)
				o->put(o, *start);
			if (!*fmt)
				return;
			break;
		}
	}
}

static void kfmt_put_buf(struct kfmt_out *o, char c)
{
	if (o->pos + 1 < o->size)
		o->buf[o->pos] = c;
	o->pos++;
}

int kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct kfmt_out o = { kfmt_put_buf, buf, size, 0 };
	va_list aq;

	va_copy(aq, ap);
	kfmt(&o, fmt, aq);
	va_end(aq);
	if (size)
		buf[o.pos < size ? o.pos : size - 1] = '\0';
	return (int)o.pos;
}

int ksnprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = kvsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

/* --- console and log ring -------------------------------------------- */

static spinlock_t console_lock = SPINLOCK_INIT("console");
static char log_ring[LOG_RING_SIZE];
static uint64_t log_written;   /* total bytes ever logged; under console_lock */

/* Serial bytes are batched per call so the UART loop is not entered once
 * per character. */
struct kfmt_console {
	struct kfmt_out out;
	char line[128];
	size_t n;
};

/* Screen first: once a byte is on the serial line it is on the screen too,
 * which is what lets a test compare the two. */
static void console_emit(const char *s, size_t n)
{
	fbcon_write(s, n);
	serial_write(s, n);
}

static void console_flush(struct kfmt_console *c)
{
	console_emit(c->line, c->n);
	c->n = 0;
}

static void kfmt_put_console(struct kfmt_out *o, char ch)
{
	struct kfmt_console *c = (struct kfmt_console *)o;

	log_ring[log_written % LOG_RING_SIZE] = ch;
	log_written++;
	if (c->n + 2 > sizeof(c->line))
		console_flush(c);
	if (ch == '\n')
		c->line[c->n++] = '\r';
	c->line[c->n++] = ch;
}

/* --- per-thread capture (kout_sink) ----------------------------------- */
void kout_sink_init(struct kout_sink *k, char *buf, size_t cap, struct waitq *wake)
{
	*k = (struct kout_sink){ .buf = buf, .cap = cap, .wake = wake };
	spin_init(&k->lock, "kout-sink");
}

void kout_capture(struct kout_sink *sink)
{
	thread_current()->out_sink = sink;
}

/* The sink of the printing thread, if it prints with interrupts on (not
 * from a handler, not on the fault path). */
static struct kout_sink *kout_sink_here(void)
{
	if (!smp_percpu_ready || !cpu_irqs_enabled())
		return NULL;
	/* Interrupts off while reading current: no migration in between. */
	uint64_t f = irq_save();
	struct thread *t = this_cpu()->current;
	irq_restore(f);
	return t ? t->out_sink : NULL;
}

size_t kout_len(struct kout_sink *k)
{
	return __atomic_load_n(&k->len, __ATOMIC_ACQUIRE);
}

/* '\r' already dropped by the caller. */
static void kout_add(struct kout_sink *k, const char *s, size_t n)
{
	uint64_t f = spin_lock_irqsave(&k->lock);
	size_t room = k->cap - k->len, take = n < room ? n : room;
	memcpy(k->buf + k->len, s, take);
	k->cut += n - take;
	__atomic_store_n(&k->len, k->len + take, __ATOMIC_RELEASE);
	spin_unlock_irqrestore(&k->lock, f);
}

void kout_append(struct kout_sink *k, const char *s, size_t n)
{
	kout_add(k, s, n);
	if (k->wake)
		waitq_wake_all(k->wake);
}

size_t kout_copy(struct kout_sink *k, size_t off, void *dst, size_t max)
{
	uint64_t f = spin_lock_irqsave(&k->lock);
	size_t n = off < k->len ? k->len - off : 0;
	if (n > max)
		n = max;
	memcpy(dst, k->buf + off, n);
	spin_unlock_irqrestore(&k->lock, f);
	return n;
}

/* A print into a sink is staged here and appended a piece at a time, so
 * the lock is taken per piece and not per character. */
struct kfmt_sink {
	struct kfmt_out out;
	struct kout_sink *k;
	char piece[128];
	size_t n, added;
};

static void kfmt_sink_flush(struct kfmt_sink *s)
{
	kout_add(s->k, s->piece, s->n);
	s->added += s->n;
	s->n = 0;
}

static void kfmt_put_sink(struct kfmt_out *o, char ch)
{
	struct kfmt_sink *s = (struct kfmt_sink *)o;
	if (ch == '\r')
		return;
	if (s->n == sizeof(s->piece))
		kfmt_sink_flush(s);
	s->piece[s->n++] = ch;
}

static void kfmt_sink_done(struct kfmt_sink *s)
{
	kfmt_sink_flush(s);
	if (s->added && s->k->wake)
		waitq_wake_all(s->k->wake);
}

void kvprintf(const char *fmt, va_list ap)
{
	struct kout_sink *sink = kout_sink_here();
	if (sink) {
		struct kfmt_sink o = { .out = { kfmt_put_sink, NULL, 0, 0 }, .k = sink };
		va_list aq;
		va_copy(aq, ap);
		kfmt(&o.out, fmt, aq);
		va_end(aq);
		kfmt_sink_done(&o);
		return;
	}
	struct kfmt_console c = { .out = { kfmt_put_console, NULL, 0, 0 } };
	va_list aq;

	uint64_t f = spin_lock_irqsave(&console_lock);
	va_copy(aq, ap);
	kfmt(&c.out, fmt, aq);
	va_end(aq);
	console_flush(&c);
	spin_unlock_irqrestore(&console_lock, f);
}

void kprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kvprintf(fmt, ap);
	va_end(ap);
}

void console_write(const char *s, size_t n)
{
	char reply[24];
	struct kout_sink *sink = kout_sink_here();
	if (sink) {
		struct kfmt_sink o = { .out = { kfmt_put_sink, NULL, 0, 0 }, .k = sink };
		for (size_t i = 0; i < n; i++)
			kfmt_put_sink(&o.out, s[i]);
		kfmt_sink_done(&o);
		return;
	}

	uint64_t f = spin_lock_irqsave(&console_lock);
	console_emit(s, n);
	spin_unlock_irqrestore(&console_lock, f);
	/* The screen answers queries (cursor position) like a terminal: as
	 * input, sent without holding the console lock. */
	size_t r = fbcon_take_reply(reply, sizeof(reply));
	if (r)
		conin_push(reply, r);
}

size_t log_read(char *buf, size_t size)
{
	uint64_t f = spin_lock_irqsave(&console_lock);
	uint64_t avail = log_written < LOG_RING_SIZE ? log_written : LOG_RING_SIZE;
	size_t n = avail < size ? (size_t)avail : size;
	/* Oldest first, but keep the newest bytes if buf is short. */
	uint64_t start = log_written - n;

	for (size_t i = 0; i < n; i++)
		buf[i] = log_ring[(start + i) % LOG_RING_SIZE];
	spin_unlock_irqrestore(&console_lock, f);
	return n;
}

size_t log_read_from(uint64_t *pos, char *buf, size_t size, uint64_t *lost)
{
	uint64_t f = spin_lock_irqsave(&console_lock);
	uint64_t oldest = log_written > LOG_RING_SIZE ? log_written - LOG_RING_SIZE : 0;
	*lost = *pos < oldest ? oldest - *pos : 0;
	if (*pos < oldest)
		*pos = oldest;
	uint64_t avail = log_written - *pos;
	size_t n = avail < size ? (size_t)avail : size;
	for (size_t i = 0; i < n; i++)
		buf[i] = log_ring[(*pos + i) % LOG_RING_SIZE];
	*pos += n;
	spin_unlock_irqrestore(&console_lock, f);
	return n;
}

void kprintf_force_unlock(void)
{
	/* The holder may be a CPU that is about to be halted, or this very
	 * CPU interrupted inside kprintf: either way it will never release. */
	spin_force_release(&console_lock);
	fbcon_force_unlock();
}

void kfmt_size(char *buf, size_t size, unsigned long long bytes, int always_decimal)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	unsigned u = 0;
	unsigned long long scale = 1;

	while (u + 1 < sizeof(units) / sizeof(units[0]) && bytes >= scale * 1024)
		scale *= 1024, u++;
	unsigned long long whole = bytes / scale, tenth = (bytes % scale) * 10 / scale;
	if (tenth || always_decimal)
		ksnprintf(buf, size, "%llu.%llu %s", whole, tenth, units[u]);
	else
		ksnprintf(buf, size, "%llu %s", whole, units[u]);
}
