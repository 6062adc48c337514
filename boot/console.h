/*
 * Loader messages: every line goes to the UEFI console and to COM1.  When
 * the firmware's console already includes a serial terminal (the ConOut
 * variable names a UART, as OVMF's does), the line is written only once.
 * After ExitBootServices only the raw serial path remains.
 */
#ifndef BOOT_CONSOLE_H
#define BOOT_CONSOLE_H

#include <efi.h>

void console_init(void);
void console_print(const char *fmt, ...);
/* Print "loader: error: MESSAGE", then stop: wait for a key and reset. */
__attribute__((noreturn)) void console_fatal(const char *fmt, ...);
void console_after_exit(void);
const char *console_status(EFI_STATUS st);

#endif
