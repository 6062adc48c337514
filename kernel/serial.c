/*
 * 16550 UART on COM1 (0x3f8): polled output, interrupt-driven input.
 *
 * Output is always polled so the console works from any context, including
 * the fault path.  Input goes through a 1 KiB ring filled by the IRQ 4
 * handler once serial_enable_irq() succeeded; before that (or if it failed)
 * serial_getc() polls the line status register.
 */
#include "kernel/serial.h"
#include "kernel/cpu.h"
#include "kernel/errno.h"
#include "kernel/kprintf.h"
#include "kernel/sync.h"
#include "kernel/time.h"
#include "kernel/trap.h"
#include "kernel/apic.h"
#include "kernel/acpi.h"
#include "kernel/smp.h"

#define COM1 0x3f8
#define UART_RBR 0   /* receive buffer (read) */
#define UART_THR 0   /* transmit holding (write) */
#define UART_DLL 0   /* divisor low (DLAB=1) */
#define UART_IER 1
#define UART_DLM 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define LSR_DATA_READY 0x01
#define LSR_OVERRUN    0x02
#define LSR_THR_EMPTY  0x20
#define IER_RX_AVAIL   0x01
#define SERIAL_RING 1024
/* ~1 ms per byte at 9600 baud; this bound is far beyond that even under TCG. */
#define SERIAL_TX_SPIN 1000000

static inline void serial_out(unsigned reg, uint8_t v) { outb(COM1 + reg, v); }
static inline uint8_t serial_in(unsigned reg) { return inb(COM1 + reg); }

static uint8_t serial_ring[SERIAL_RING];
static volatile unsigned serial_head, serial_tail;  /* head: next write */
static spinlock_t serial_lock = SPINLOCK_INIT("serial");
static struct waitq serial_wq = WAITQ_INIT("serial-rx");
static volatile bool serial_irq_on;
static volatile bool serial_present = true;
static uint64_t serial_overruns, serial_dropped;
/* Interrupt capture: while on, a received Ctrl-C (0x03) is counted instead
 * of queued, so a command that is running sees it at once and the line
 * editor never sees a stale one afterwards. */
static volatile bool serial_capture;
static volatile unsigned serial_intr;

void serial_init(uint32_t baud)
{
	bool bad = baud == 0 || baud > 115200 || 115200 % baud != 0;
	uint16_t div = bad ? 1 : (uint16_t)(115200 / baud);

	serial_out(UART_IER, 0x00);
	serial_out(UART_LCR, 0x80);          /* DLAB: divisor follows */
	serial_out(UART_DLL, div & 0xff);
	serial_out(UART_DLM, div >> 8);
	serial_out(UART_LCR, 0x03);          /* 8 data bits, no parity, 1 stop */
	serial_out(UART_FCR, 0xc7);          /* FIFO on, clear, 14-byte trigger */
	serial_out(UART_MCR, 0x0b);          /* DTR, RTS, OUT2 (IRQ gate) */
	/* A missing UART reads back 0xff everywhere: remember, so writes do not
	 * spin on a status bit that never means anything. */
	serial_present = serial_in(UART_LSR) != 0xff;
	if (bad)
		kprintf("serial: baud %u unsupported (115200 must be a multiple of it), using 115200\n",
			baud);
}

static void serial_putc_raw(char c)
{
	for (unsigned i = 0; i < SERIAL_TX_SPIN; i++) {
		if (serial_in(UART_LSR) & LSR_THR_EMPTY) {
			serial_out(UART_THR, (uint8_t)c);
			return;
		}
		cpu_pause();
	}
	/* The transmitter never drained: stop using it rather than spend
	 * SERIAL_TX_SPIN reads on every later byte.  No message: we are inside
	 * kprintf with the console lock held; the log ring keeps everything. */
	serial_present = false;
}

void serial_write(const char *s, size_t n)
{
	if (!serial_present)
		return;
	for (size_t i = 0; i < n; i++)
		serial_putc_raw(s[i]);
}

static void serial_irq(void *arg)
{
	(void)arg;
	uint64_t f = spin_lock_irqsave(&serial_lock);
	for (unsigned i = 0; i < 64; i++) {
		uint8_t lsr = serial_in(UART_LSR);
		if (lsr & LSR_OVERRUN)
			serial_overruns++;
		if (!(lsr & LSR_DATA_READY))
			break;
		uint8_t c = serial_in(UART_RBR);
		if (c == 0x03 && serial_capture) {
			__atomic_add_fetch(&serial_intr, 1, __ATOMIC_RELEASE);
			continue;
		}
		unsigned next = (serial_head + 1) % SERIAL_RING;
		if (next == serial_tail) {
			serial_dropped++;   /* ring full: reader is not keeping up */
			continue;
		}
		serial_ring[serial_head] = c;
		serial_head = next;
	}
	spin_unlock_irqrestore(&serial_lock, f);
	waitq_wake_all(&serial_wq);
}

int serial_enable_irq(void)
{
	uint16_t flags = 0;
	uint32_t gsi = acpi_isa_irq_to_gsi(4, &flags);
	int vec = irq_alloc_vector(serial_irq, NULL);
	int err;

	if (vec < 0)
		return vec;
	err = ioapic_route(gsi, (uint8_t)vec, lapic_id(), flags);
	if (err)
		goto err_vector;
	serial_irq_on = true;
	serial_out(UART_IER, IER_RX_AVAIL);
	/* Drain anything that arrived before the IRQ was armed: an edge that
	 * already fired would otherwise never repeat. */
	serial_irq(NULL);
	return 0;

err_vector:
	irq_free_vector(vec);
	return err;
}

static bool serial_ring_nonempty(void *arg)
{
	(void)arg;
	return serial_head != serial_tail;
}

static int serial_ring_pop(void)
{
	int c = -EAGAIN;
	uint64_t f = spin_lock_irqsave(&serial_lock);
	if (serial_head != serial_tail) {
		c = serial_ring[serial_tail];
		serial_tail = (serial_tail + 1) % SERIAL_RING;
	}
	spin_unlock_irqrestore(&serial_lock, f);
	return c;
}

static int serial_getc_polled(uint64_t timeout_ns)
{
	uint64_t hz = time_tsc_hz();

	if (hz) {
		uint64_t deadline = timeout_ns ? time_ns() + timeout_ns : UINT64_MAX;
		while (time_ns() < deadline) {
			if (serial_in(UART_LSR) & LSR_DATA_READY)
				return serial_in(UART_RBR);
			cpu_pause();
		}
		return -ETIMEDOUT;
	}
	/* Before time_init(): a bounded iteration count, roughly timeout_ns
	 * worth of port reads (each ~1 us under emulation). */
	uint64_t spins = timeout_ns ? timeout_ns / 1000 + 1 : UINT64_MAX;
	for (uint64_t i = 0; i < spins; i++) {
		if (serial_in(UART_LSR) & LSR_DATA_READY)
			return serial_in(UART_RBR);
		cpu_pause();
	}
	return -ETIMEDOUT;
}

int serial_getc(uint64_t timeout_ns)
{
	if (serial_irq_on) {
		int c = serial_ring_pop();
		if (c >= 0)
			return c;
	}
	if (!serial_irq_on || !cpu_irqs_enabled())
		return serial_getc_polled(timeout_ns);

	uint64_t deadline = timeout_ns ? time_ns() + timeout_ns : UINT64_MAX;
	for (;;) {
		int c = serial_ring_pop();
		if (c >= 0)
			return c;
		if (waitq_wait_until(&serial_wq, serial_ring_nonempty, NULL, deadline) == -ETIMEDOUT)
			break;
	}
	int c = serial_ring_pop();
	return c >= 0 ? c : -ETIMEDOUT;
}

void serial_capture_intr(bool on)
{
	serial_capture = on;
}

unsigned serial_intr_count(void)
{
	return __atomic_load_n(&serial_intr, __ATOMIC_ACQUIRE);
}
