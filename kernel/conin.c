/*
 * Console input: one ring that every input device fills and the shell drains.
 *
 * Invariant: conin_ring[tail .. head) (mod CONIN_RING) holds the bytes not
 * yet read, oldest first; head moves only under conin_lock in conin_push,
 * tail only under conin_lock in conin_pop, and one slot always stays empty
 * so head == tail means empty.  A full ring drops new bytes rather than old
 * ones: a half-typed line keeps its beginning.
 */
#include "kernel/conin.h"
#include "kernel/cpu.h"
#include "kernel/errno.h"
#include "kernel/serial.h"
#include "kernel/sync.h"
#include "kernel/time.h"

#define CONIN_RING 1024
/* With serial input polled, a sleeping reader looks at the UART this often. */
#define CONIN_POLL_NS (10 * NS_PER_MS)

static uint8_t conin_ring[CONIN_RING];
static volatile unsigned conin_head, conin_tail;
static spinlock_t conin_lock = SPINLOCK_INIT("conin");
static struct waitq conin_wq = WAITQ_INIT("conin");
static uint64_t conin_drops;
/* Interrupt capture: while on, a Ctrl-C (0x03) is counted instead of
 * queued, so a running command sees it at once and the line editor never
 * sees a stale one afterwards. */
static volatile bool conin_capture;
static volatile unsigned conin_intr;

void conin_push(const char *s, size_t n)
{
	uint64_t f = spin_lock_irqsave(&conin_lock);
	for (size_t i = 0; i < n; i++) {
		if (s[i] == 0x03 && conin_capture) {
			__atomic_add_fetch(&conin_intr, 1, __ATOMIC_RELEASE);
			continue;
		}
		unsigned next = (conin_head + 1) % CONIN_RING;
		if (next == conin_tail) {
			conin_drops += n - i;   /* reader is not keeping up */
			break;
		}
		conin_ring[conin_head] = (uint8_t)s[i];
		conin_head = next;
	}
	spin_unlock_irqrestore(&conin_lock, f);
	waitq_wake_all(&conin_wq);
}

static int conin_pop(void)
{
	int c = -EAGAIN;
	uint64_t f = spin_lock_irqsave(&conin_lock);
	if (conin_head != conin_tail) {
		c = conin_ring[conin_tail];
		conin_tail = (conin_tail + 1) % CONIN_RING;
	}
	spin_unlock_irqrestore(&conin_lock, f);
	return c;
}

static bool conin_nonempty(void *arg)
{
	(void)arg;
	return conin_head != conin_tail;
}

int conin_getc(uint64_t timeout_ns)
{
	uint64_t deadline = timeout_ns ? time_ns() + timeout_ns : UINT64_MAX;

	for (;;) {
		int c = conin_pop();
		if (c >= 0)
			return c;
		bool polled = !serial_input_irq();
		if (polled && (c = serial_poll()) >= 0)
			return c;
		uint64_t now = time_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		if (!cpu_irqs_enabled()) {
			cpu_pause();
			continue;
		}
		uint64_t until = polled && deadline - now > CONIN_POLL_NS ? now + CONIN_POLL_NS
									   : deadline;
		waitq_wait_until(&conin_wq, conin_nonempty, NULL, until);
	}
}

uint64_t conin_dropped(void)
{
	return conin_drops;
}

void conin_capture_intr(bool on)
{
	conin_capture = on;
}

unsigned conin_intr_count(void)
{
	return __atomic_load_n(&conin_intr, __ATOMIC_ACQUIRE);
}
