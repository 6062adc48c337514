#include <efi.h>
#include <efilib.h>
#include <stdarg.h>

#include "boot/console.h"
#include "boot/fmt.h"

#define COM1 0x3f8

static BOOLEAN console_firmware_has_serial;
static BOOLEAN console_boot_services_gone;

static void console_outb(UINT16 port, UINT8 v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
static UINT8 console_inb(UINT16 port) { UINT8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }

static void console_serial_putc(char c)
{
	/* Wait for the transmit holding register, but never forever: a
	 * machine without a UART reads 0xff or 0 here. */
	for (unsigned i = 0; i < 100000 && !(console_inb(COM1 + 5) & 0x20); i++)
		__asm__ volatile("pause");
	console_outb(COM1, (UINT8)c);
}

/* Does the ConOut variable (a multi-instance device path) name a UART? */
static BOOLEAN console_conout_has_uart(void)
{
	UINTN size = 0;
	UINT8 *dp = LibGetVariableAndSize(L"ConOut", &EfiGlobalVariable, &size);
	BOOLEAN found = FALSE;
	UINTN off = 0;

	if (!dp)
		return FALSE;
	while (off + 4 <= size) {
		UINT8 type = dp[off], sub = dp[off + 1];
		UINT16 len = (UINT16)(dp[off + 2] | (dp[off + 3] << 8));
		if (type == MESSAGING_DEVICE_PATH && sub == MSG_UART_DP)
			found = TRUE;
		if (len < 4 || (type == 0x7f && sub == 0xff))
			break;
		off += len;
	}
	FreePool(dp);
	return found;
}

void console_init(void)
{
	/* 115200 8N1, FIFO on: the firmware may not have set COM1 up. */
	console_outb(COM1 + 1, 0x00);
	console_outb(COM1 + 3, 0x80);
	console_outb(COM1 + 0, 0x01);
	console_outb(COM1 + 1, 0x00);
	console_outb(COM1 + 3, 0x03);
	console_outb(COM1 + 2, 0xc7);
	console_firmware_has_serial = console_conout_has_uart();
}

void console_after_exit(void)
{
	console_boot_services_gone = TRUE;
}

static void console_emit(const char *line)
{
	CHAR16 wide[260];
	UINTN n = 0;

	if (!console_boot_services_gone) {
		for (const char *p = line; *p; p++) {
			if (*p == '\n')
				wide[n++] = L'\r';
			wide[n++] = (CHAR16)(unsigned char)*p;
			if (n >= 256) {
				wide[n] = 0;
				uefi_call_wrapper(ST->ConOut->OutputString, 2, ST->ConOut, wide);
				n = 0;
			}
		}
		wide[n] = 0;
		uefi_call_wrapper(ST->ConOut->OutputString, 2, ST->ConOut, wide);
	}
	if (console_boot_services_gone || !console_firmware_has_serial) {
		for (const char *p = line; *p; p++) {
			if (*p == '\n')
				console_serial_putc('\r');
			console_serial_putc(*p);
		}
	}
}

void console_print(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	fmt_vmessage(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	console_emit(line);
}

__attribute__((noreturn)) void console_fatal(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	UINTN index;

	va_start(ap, fmt);
	fmt_vmessage(line, sizeof(line), fmt, ap);
	va_end(ap);
	console_emit("loader: error: ");
	console_emit(line);
	console_emit("\nloader: stopped; press a key to restart\n");
	if (!console_boot_services_gone) {
		uefi_call_wrapper(BS->WaitForEvent, 3, 1, &ST->ConIn->WaitForKey, &index);
		uefi_call_wrapper(RT->ResetSystem, 4, EfiResetCold, EFI_SUCCESS, 0, NULL);
	}
	for (;;)
		__asm__ volatile("cli; hlt");
}

const char *console_status(EFI_STATUS st)
{
	switch (st) {
	case EFI_SUCCESS: return "success";
	case EFI_NOT_FOUND: return "not found";
	case EFI_OUT_OF_RESOURCES: return "out of memory";
	case EFI_INVALID_PARAMETER: return "invalid parameter";
	case EFI_UNSUPPORTED: return "unsupported";
	case EFI_DEVICE_ERROR: return "device error";
	case EFI_VOLUME_CORRUPTED: return "volume corrupted";
	case EFI_ACCESS_DENIED: return "access denied";
	case EFI_BUFFER_TOO_SMALL: return "buffer too small";
	case EFI_NO_MEDIA: return "no media";
	case EFI_MEDIA_CHANGED: return "media changed";
	case EFI_WRITE_PROTECTED: return "write protected";
	default: return "unexpected firmware status";
	}
}
