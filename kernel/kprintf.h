/*
 * Console output and the kernel log.
 *
 * kprintf() formats into the kernel log ring and writes the same bytes to
 * every console: the screen (kernel/fbcon.h) and the serial line.  Supported conversions: %d %i %u %x %X
 * %p %s %c %%, with l/ll/z length modifiers, '-', '0' flags, width and
 * precision ("%.*s" included).  Safe from any context, including interrupt
 * handlers and the fault path: output is serialised by an IRQ-saving
 * spinlock, and panic() takes it over by force.
 */
#ifndef KERNEL_KPRINTF_H
#define KERNEL_KPRINTF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include "kernel/sync.h"

int kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int ksnprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kvprintf(const char *fmt, va_list ap);

/* Raw bytes to every console (serial line and screen), not into the log:
 * the shell's echo and escape sequences.  Same lock as kprintf. */
void console_write(const char *s, size_t n);

/* Output capture of one thread (remote administration, net/apfp_admin.c):
 * while a thread has a sink, what it prints with kprintf() or
 * console_write() with interrupts enabled goes into the sink instead of
 * the consoles and the log ring ('\r' dropped).  Other threads, interrupt
 * handlers and the fault path (interrupts off) print as before, so a
 * capture never hides a panic or another thread's message.  Bytes past
 * cap are dropped and counted in `cut`.
 *
 * Other threads may read the sink while it fills (a command's output
 * streamed to a client as it is printed): the owning thread appends under
 * `lock`, one formatted piece at a time, and after each print that added
 * bytes wakes `wake` (when set), so a reader waits for more with
 * waitq_wait_until() and kout_len() as its condition. */
struct kout_sink {
	char *buf;
	size_t cap, len;        /* len: under lock, read lock-free by kout_len() */
	size_t cut;             /* bytes dropped for want of room (under lock) */
	spinlock_t lock;        /* buf[0..len) and len, cut while they change */
	struct waitq *wake;     /* woken after a print added bytes, or NULL */
};
void kout_sink_init(struct kout_sink *k, char *buf, size_t cap, struct waitq *wake);
/* Set (or with NULL end) the calling thread's sink. */
void kout_capture(struct kout_sink *sink);
/* Bytes in the sink so far (a waitq condition may call it). */
size_t kout_len(struct kout_sink *k);
/* Copy at most max bytes from offset off out of the sink; returns how
 * many (0 when off is at or past its end). */
size_t kout_copy(struct kout_sink *k, size_t off, void *dst, size_t max);
/* Append bytes as the owning thread's prints do (a note after the capture
 * ended: "output cut"); bytes past cap are counted in cut. */
void kout_append(struct kout_sink *k, const char *s, size_t n);

/* Human-readable size: "512 B", "4 KiB", "1.5 MiB".  With always_decimal
 * the tenth is printed even when zero ("1.0 GiB"), for columns that
 * scripts split on. */
void kfmt_size(char *buf, size_t size, unsigned long long bytes, int always_decimal);

/* Kernel log ring: the last LOG_RING_SIZE bytes printed since boot. */
#define LOG_RING_SIZE (64 * 1024)
/* Copy out the ring, oldest first; returns bytes copied. */
size_t log_read(char *buf, size_t size);
/* Copy out what was logged since byte *pos (0 = the start of the log),
 * advancing *pos; *lost is how many bytes the ring overwrote before they
 * were read.  For readers that follow the log (remote syslog). */
size_t log_read_from(uint64_t *pos, char *buf, size_t size, uint64_t *lost);

/* Called by panic(): lets the faulting CPU print even if another CPU holds
 * the console lock. */
void kprintf_force_unlock(void);

#endif
