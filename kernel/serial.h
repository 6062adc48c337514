/*
 * 16550 UART console (COM1, port 0x3f8).
 *
 * serial_init() runs first thing at boot (polled output).  Input becomes
 * interrupt driven after serial_enable_irq(), which needs the IOAPIC; bytes
 * received go into a ring that serial_getc() drains, sleeping the calling
 * thread until input arrives or the deadline passes.
 */
#ifndef KERNEL_SERIAL_H
#define KERNEL_SERIAL_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

void serial_init(uint32_t baud);
void serial_write(const char *s, size_t n);   /* polled, never sleeps */
int serial_enable_irq(void);                   /* 0 or -errno */
/* Next input byte, or -ETIMEDOUT when timeout_ns passes (0 = wait forever). */
int serial_getc(uint64_t timeout_ns);
/* While capture is on (the shell runs a command), a Ctrl-C received is not
 * queued but counted; serial_intr_count() is the running total.  Needs
 * interrupt-driven input. */
void serial_capture_intr(bool on);
unsigned serial_intr_count(void);

#endif
