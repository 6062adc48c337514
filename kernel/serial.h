/*
 * 16550 UART console (COM1, port 0x3f8).
 *
 * serial_init() runs first thing at boot (polled output).  Input becomes
 * interrupt driven after serial_enable_irq(), which needs the IOAPIC; bytes
 * received then go to the console input ring (kernel/conin.h), which is
 * where the shell reads them.  Until then conin polls with serial_poll().
 */
#ifndef KERNEL_SERIAL_H
#define KERNEL_SERIAL_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

void serial_init(uint32_t baud);
void serial_write(const char *s, size_t n);   /* polled, never sleeps */
int serial_enable_irq(void);                   /* 0 or -errno */
#include <stdbool.h>
/* True once received bytes arrive through the interrupt. */
bool serial_input_irq(void);
/* Polled input: the next byte or -EAGAIN (always -EAGAIN once interrupt
 * driven: the bytes are in conin's ring then). */
int serial_poll(void);

#endif
