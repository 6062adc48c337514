/*
 * Console input (kernel/conin.c): every input device's bytes, merged for the
 * shell.
 *
 * Devices (the serial line, the PS/2 keyboard) push bytes from their
 * interrupt handlers with conin_push(); keys arrive as the same bytes a
 * serial terminal sends (arrows as ESC [ A .. D, Enter as CR), so the line
 * editor cannot tell the sources apart.  The shell reads with conin_getc().
 * While serial input is not interrupt driven (before serial_enable_irq, or
 * when it failed) conin_getc() also polls the UART itself.
 */
#ifndef KERNEL_CONIN_H
#define KERNEL_CONIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Queue input bytes; any context.  Bytes that do not fit are dropped and
 * counted (conin_dropped). */
void conin_push(const char *s, size_t n);
/* Next input byte, or -ETIMEDOUT when timeout_ns passes (0 = wait forever).
 * Sleeps when interrupts are on; thread context only. */
int conin_getc(uint64_t timeout_ns);
uint64_t conin_dropped(void);
/* While capture is on (the shell runs a command), a Ctrl-C from any input
 * device is not queued but counted; conin_intr_count() is the running
 * total.  Polled serial input (no interrupt) is not seen until read. */
void conin_capture_intr(bool on);
unsigned conin_intr_count(void);

#endif
