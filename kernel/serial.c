/*
 * 16550 UART on COM1 (0x3f8): polled output, interrupt-driven input.
 *
 * Output is always polled so the console works from any context, including
 * the fault path.  Input: once serial_enable_irq() succeeded the IRQ 4
 * handler hands received bytes to the console input ring (kernel/conin.c);
 * before that (or if it failed) the reader polls with serial_poll().
 */
#include "kernel/serial.h"
#include "kernel/conin.h"
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
#define SERIAL_IRQ_BATCH 64
/* ~1 ms per byte at 9600 baud; this bound is far beyond that even under TCG. */
#define SERIAL_TX_SPIN 1000000

static inline void serial_out(unsigned reg, uint8_t v) { outb(COM1 + reg, v); }
static inline uint8_t serial_in(unsigned reg) { return inb(COM1 + reg); }

static spinlock_t serial_lock = SPINLOCK_INIT("serial");
static volatile bool serial_irq_on;
static volatile bool serial_present = true;
static uint64_t serial_overruns;

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
	char buf[SERIAL_IRQ_BATCH];
	unsigned n = 0;

	uint64_t f = spin_lock_irqsave(&serial_lock);
	while (n < SERIAL_IRQ_BATCH) {
		uint8_t lsr = serial_in(UART_LSR);
		if (lsr & LSR_OVERRUN)
			serial_overruns++;
		if (!(lsr & LSR_DATA_READY))
			break;
		buf[n++] = (char)serial_in(UART_RBR);
	}
	spin_unlock_irqrestore(&serial_lock, f);
	if (n)
		conin_push(buf, n);
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

bool serial_input_irq(void)
{
	return serial_irq_on;
}

int serial_poll(void)
{
	if (serial_irq_on || !serial_present)
		return -EAGAIN;
	if (serial_in(UART_LSR) & LSR_DATA_READY)
		return serial_in(UART_RBR);
	return -EAGAIN;
}
