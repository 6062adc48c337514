/*
 * PS/2 keyboard on the i8042 controller (ports 0x60 data, 0x64 status and
 * command), IRQ 1 through the IOAPIC.  Keys become the bytes a serial
 * terminal would send and go to the console input ring (kernel/conin.h), so
 * the shell takes them beside the serial line.
 *
 * Controller protocol: a byte may be written (command to 0x64, data to 0x60)
 * only while status bit 1 (input buffer full) is clear, and read from 0x60
 * only while status bit 0 (output buffer full) is set; bit 5 says the byte
 * came from the second (mouse) port.  Every such wait here has a deadline.
 * The configuration byte (commands 0x20 read / 0x60 write) holds the port 1
 * interrupt enable (bit 0), the port 2 interrupt enable (bit 1), the port 1
 * clock disable (bit 4) and translation (bit 6).
 *
 * Scancodes: the keyboard speaks set 2; with translation on (what firmware
 * normally leaves) the controller turns that into set 1 before we see it.
 * We keep whatever the firmware configured and decode accordingly: set 1
 * directly (make = code, break = code | 0x80, E0 prefixes the extended
 * keys, E1 starts Pause), set 2 by mapping each code to its set 1 equivalent
 * (break = F0 prefix, E0 and E1 as in set 1).  The boot argument kbd=set2
 * turns translation off and selects set 2 on the keyboard (for tests).
 *
 * Keys become what xterm sends: characters (Shift, Caps Lock, Ctrl-letter
 * as control codes, Alt as an ESC prefix), arrows ESC [ A-D, Ctrl-arrows
 * ESC [ 1 ; 5 C/D, Home ESC [ H, End ESC [ F, Delete ESC [ 3 ~, Backspace
 * DEL, Enter CR.  Function keys, Insert and Page Up/Down are ignored.
 */
#include "kernel/acpi.h"
#include "kernel/apic.h"
#include "kernel/conin.h"
#include "kernel/cpu.h"
#include "kernel/errno.h"
#include "kernel/initcall.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/time.h"
#include "kernel/trap.h"

#define KBD_DATA   0x60
#define KBD_STATUS 0x64
#define KBD_ST_OUT_FULL 0x01
#define KBD_ST_IN_FULL  0x02
#define KBD_ST_AUX      0x20
#define KBD_CMD_READ_CONFIG  0x20
#define KBD_CMD_WRITE_CONFIG 0x60
#define KBD_CMD_DISABLE_AUX  0xa7
#define KBD_CMD_DISABLE_KBD  0xad
#define KBD_CMD_ENABLE_KBD   0xae
#define KBD_CFG_IRQ1      0x01
#define KBD_CFG_IRQ12     0x02
#define KBD_CFG_NO_CLOCK1 0x10
#define KBD_CFG_TRANSLATE 0x40
#define KBD_DEV_SET_SCANCODES 0xf0
#define KBD_DEV_ENABLE_SCAN   0xf4
#define KBD_DEV_ACK           0xfa
#define KBD_WAIT_NS  (100 * NS_PER_MS)   /* per byte; real controllers answer in microseconds */
#define KBD_FLUSH_MAX 64                  /* stale bytes drained at init */
#define KBD_IRQ_BATCH 16
#define KBD_FADT_BOOT_ARCH 109            /* IAPC_BOOT_ARCH offset in the FADT */
#define KBD_BOOT_ARCH_8042 0x0002

/* Set 1 make codes of the keys that are not characters. */
enum {
	K_ESC = 0x01, K_BKSP = 0x0e, K_TAB = 0x0f, K_ENTER = 0x1c, K_CTRL = 0x1d,
	K_LSHIFT = 0x2a, K_RSHIFT = 0x36, K_ALT = 0x38, K_CAPS = 0x3a,
	K_HOME = 0x47, K_UP = 0x48, K_LEFT = 0x4b, K_RIGHT = 0x4d, K_END = 0x4f,
	K_DOWN = 0x50, K_DEL = 0x53,
};

/* Characters of set 1 codes 0x00-0x39 and 0x47-0x53 (keypad, Num Lock assumed on). */
static const char kbd_plain[0x54] =
	"\0\x1b" "1234567890-=\x7f\t" "qwertyuiop[]\r\0" "asdfghjkl;'`\0\\" "zxcvbnm,./\0*\0 "
	"\0\0\0\0\0\0\0\0\0\0\0\0\0" "789-456+1230.";
static const char kbd_shift[0x54] =
	"\0\x1b" "!@#$%^&*()_+\x7f\t" "QWERTYUIOP{}\r\0" "ASDFGHJKL:\"~\0|" "ZXCVBNM<>?\0*\0 "
	"\0\0\0\0\0\0\0\0\0\0\0\0\0" "789-456+1230.";

/* Set 2 code -> set 1 code, for every key this driver knows (0 = unknown). */
static const uint8_t kbd_set2_to_set1[0x84] = {
	[0x76] = 0x01, [0x16] = 0x02, [0x1e] = 0x03, [0x26] = 0x04, [0x25] = 0x05,
	[0x2e] = 0x06, [0x36] = 0x07, [0x3d] = 0x08, [0x3e] = 0x09, [0x46] = 0x0a,
	[0x45] = 0x0b, [0x4e] = 0x0c, [0x55] = 0x0d, [0x66] = 0x0e, [0x0d] = 0x0f,
	[0x15] = 0x10, [0x1d] = 0x11, [0x24] = 0x12, [0x2d] = 0x13, [0x2c] = 0x14,
	[0x35] = 0x15, [0x3c] = 0x16, [0x43] = 0x17, [0x44] = 0x18, [0x4d] = 0x19,
	[0x54] = 0x1a, [0x5b] = 0x1b, [0x5a] = 0x1c, [0x14] = 0x1d, [0x1c] = 0x1e,
	[0x1b] = 0x1f, [0x23] = 0x20, [0x2b] = 0x21, [0x34] = 0x22, [0x33] = 0x23,
	[0x3b] = 0x24, [0x42] = 0x25, [0x4b] = 0x26, [0x4c] = 0x27, [0x52] = 0x28,
	[0x0e] = 0x29, [0x12] = 0x2a, [0x5d] = 0x2b, [0x1a] = 0x2c, [0x22] = 0x2d,
	[0x21] = 0x2e, [0x2a] = 0x2f, [0x32] = 0x30, [0x31] = 0x31, [0x3a] = 0x32,
	[0x41] = 0x33, [0x49] = 0x34, [0x4a] = 0x35, [0x59] = 0x36, [0x7c] = 0x37,
	[0x11] = 0x38, [0x29] = 0x39, [0x58] = 0x3a, [0x05] = 0x3b, [0x06] = 0x3c,
	[0x04] = 0x3d, [0x0c] = 0x3e, [0x03] = 0x3f, [0x0b] = 0x40, [0x83] = 0x41,
	[0x0a] = 0x42, [0x01] = 0x43, [0x09] = 0x44, [0x77] = 0x45, [0x7e] = 0x46,
	[0x6c] = 0x47, [0x75] = 0x48, [0x7d] = 0x49, [0x7b] = 0x4a, [0x6b] = 0x4b,
	[0x73] = 0x4c, [0x74] = 0x4d, [0x79] = 0x4e, [0x69] = 0x4f, [0x72] = 0x50,
	[0x7a] = 0x51, [0x70] = 0x52, [0x71] = 0x53, [0x78] = 0x57, [0x07] = 0x58,
};

/* Decoder state: touched only by the IRQ handler (one CPU at a time: the
 * IOAPIC delivers IRQ 1 to one CPU and it is edge triggered). */
static bool kbd_set2;
static bool kbd_e0, kbd_break;
static unsigned kbd_skip;            /* bytes left of a Pause sequence */
static bool kbd_lshift, kbd_rshift, kbd_lctrl, kbd_rctrl, kbd_lalt, kbd_ralt, kbd_caps;
static uint64_t kbd_keys, kbd_unknown;

/* ---- controller access, every wait bounded ------------------------------ */

static int kbd_wait(uint8_t mask, bool set)
{
	uint64_t deadline = time_ns() + KBD_WAIT_NS;
	do {
		if (!!(inb(KBD_STATUS) & mask) == set)
			return 0;
		cpu_pause();
	} while (time_ns() < deadline);
	return -ETIMEDOUT;
}

static int kbd_command(uint8_t cmd)
{
	int err = kbd_wait(KBD_ST_IN_FULL, false);
	if (!err)
		outb(KBD_STATUS, cmd);
	return err;
}

static int kbd_send(uint8_t byte)
{
	int err = kbd_wait(KBD_ST_IN_FULL, false);
	if (!err)
		outb(KBD_DATA, byte);
	return err;
}

static int kbd_read(void)
{
	int err = kbd_wait(KBD_ST_OUT_FULL, true);
	return err ? err : inb(KBD_DATA);
}

/* A byte to the keyboard itself, which answers ACK (0xfa). */
static int kbd_device(uint8_t byte)
{
	int err = kbd_send(byte);
	if (err)
		return err;
	/* Scancodes of keys pressed meanwhile may come first; a keyboard
	 * that only ever sends those is as good as none. */
	for (unsigned i = 0; i < KBD_FLUSH_MAX; i++) {
		int r = kbd_read();
		if (r < 0 || r == KBD_DEV_ACK)
			return r < 0 ? r : 0;
	}
	return -EIO;
}

/* ---- decoding ----------------------------------------------------------- */

static void kbd_emit(const char *s)
{
	conin_push(s, strlen(s));
	kbd_keys++;
}

/* One key event in set 1 terms. */
static void kbd_key(uint8_t code, bool brk, bool e0)
{
	bool make = !brk;

	switch (code) {
	case K_LSHIFT:
		if (!e0)         /* E0 2A: the "fake shift" around Print Screen */
			kbd_lshift = make;
		return;
	case K_RSHIFT:
		if (!e0)
			kbd_rshift = make;
		return;
	case K_CTRL:
		*(e0 ? &kbd_rctrl : &kbd_lctrl) = make;
		return;
	case K_CAPS:
		if (make)
			kbd_caps = !kbd_caps;
		return;
	case K_ALT:
		*(e0 ? &kbd_ralt : &kbd_lalt) = make;
		return;
	}
	bool ctrl = kbd_lctrl || kbd_rctrl, alt = kbd_lalt || kbd_ralt;
	if (brk)
		return;
	if (e0) {
		static const struct { uint8_t code; const char *seq; } ext[] = {
			{ K_UP, "\x1b[A" }, { K_DOWN, "\x1b[B" }, { K_RIGHT, "\x1b[C" },
			{ K_LEFT, "\x1b[D" }, { K_HOME, "\x1b[H" }, { K_END, "\x1b[F" },
			{ K_DEL, "\x1b[3~" }, { K_ENTER, "\r" }, { 0x35, "/" },
		};
		/* Ctrl-Left/Right move by words: ESC [ 1 ; 5 D/C, as xterm sends. */
		if (ctrl && (code == K_LEFT || code == K_RIGHT)) {
			kbd_emit(code == K_LEFT ? "\x1b[1;5D" : "\x1b[1;5C");
			return;
		}
		for (unsigned i = 0; i < ARRAY_SIZE(ext); i++)
			if (ext[i].code == code) {
				kbd_emit(ext[i].seq);
				return;
			}
		kbd_unknown++;
		return;
	}
	if (code >= sizeof(kbd_plain) || !kbd_plain[code]) {
		kbd_unknown++;     /* function keys, Num Lock, ... */
		return;
	}
	bool shift = kbd_lshift || kbd_rshift;
	char c = kbd_plain[code];
	if (c >= 'a' && c <= 'z' && kbd_caps)
		shift = !shift;
	if (shift)
		c = kbd_shift[code];
	if (ctrl && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
		c &= 0x1f;        /* Ctrl-A .. Ctrl-Z, as a terminal sends them */
	/* Alt-X is ESC X, as a terminal with "meta sends escape" has it
	 * (the line editor's Alt-B / Alt-F). */
	char s[3] = { '\x1b', c, 0 };
	kbd_emit(alt ? s : s + 1);
}

static void kbd_byte(uint8_t b)
{
	if (kbd_skip) {
		kbd_skip--;
		return;
	}
	if (b == 0xe0) {
		kbd_e0 = true;
		return;
	}
	if (b == 0xe1) {
		kbd_skip = kbd_set2 ? 7 : 5;   /* Pause: no break code, ignored */
		return;
	}
	if (kbd_set2 && b == 0xf0) {
		kbd_break = true;
		return;
	}
	bool e0 = kbd_e0, brk;
	uint8_t code;
	kbd_e0 = false;
	if (kbd_set2) {
		brk = kbd_break;
		kbd_break = false;
		code = b < sizeof(kbd_set2_to_set1) ? kbd_set2_to_set1[b] : 0;
		if (!code) {
			kbd_unknown++;
			return;
		}
	} else {
		brk = b & 0x80;
		code = b & 0x7f;
	}
	kbd_key(code, brk, e0);
}

static void kbd_irq(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < KBD_IRQ_BATCH; i++) {
		uint8_t st = inb(KBD_STATUS);
		if (!(st & KBD_ST_OUT_FULL))
			break;
		uint8_t b = inb(KBD_DATA);
		if (!(st & KBD_ST_AUX))
			kbd_byte(b);
	}
}

/* ---- bring-up ----------------------------------------------------------- */

static bool kbd_fadt_says_absent(void)
{
	const uint8_t *fadt = acpi_find_table("FACP", 0);
	if (!fadt || *(const uint32_t *)(fadt + 4) < KBD_FADT_BOOT_ARCH + 2 || fadt[8] < 2)
		return false;   /* no FADT or too old to carry the flag */
	uint16_t arch;
	memcpy(&arch, fadt + KBD_FADT_BOOT_ARCH, sizeof(arch));
	return !(arch & KBD_BOOT_ARCH_8042);
}

static int kbd_init(void)
{
	int err, cfg;
	const char *want = arg_get("kbd");

	if (want && strcmp(want, "off") == 0) {
		kprintf("kbd: off (boot argument kbd=off)\n");
		return 0;
	}
	if (want && strcmp(want, "set2") != 0)
		want = NULL;     /* args_check() has named the bad value */
	if (inb(KBD_STATUS) == 0xff) {
		kprintf("kbd: no i8042 controller (status port reads 0xff)%s\n",
			kbd_fadt_says_absent() ? ", as the FADT says" : "");
		return 0;
	}
	/* Quiet both ports while configuring, and drop stale bytes. */
	if ((err = kbd_command(KBD_CMD_DISABLE_KBD)) || (err = kbd_command(KBD_CMD_DISABLE_AUX)))
		goto err_timeout;
	for (unsigned i = 0; i < KBD_FLUSH_MAX && (inb(KBD_STATUS) & KBD_ST_OUT_FULL); i++)
		(void)inb(KBD_DATA);
	if ((err = kbd_command(KBD_CMD_READ_CONFIG)) != 0)
		goto err_timeout;
	if ((cfg = kbd_read()) < 0) {
		err = cfg;
		goto err_timeout;
	}
	if (want)
		cfg &= ~KBD_CFG_TRANSLATE;
	kbd_set2 = !(cfg & KBD_CFG_TRANSLATE);
	cfg = (cfg | KBD_CFG_IRQ1) & ~(KBD_CFG_IRQ12 | KBD_CFG_NO_CLOCK1);
	if ((err = kbd_command(KBD_CMD_WRITE_CONFIG)) || (err = kbd_send((uint8_t)cfg)) ||
	    (err = kbd_command(KBD_CMD_ENABLE_KBD)))
		goto err_timeout;
	if (want && ((err = kbd_device(KBD_DEV_SET_SCANCODES)) || (err = kbd_device(2))))
		kprintf("kbd: keyboard did not accept scancode set 2 (%s)\n", strerror(err));
	if ((err = kbd_device(KBD_DEV_ENABLE_SCAN)) != 0)
		kprintf("kbd: no answer from a keyboard (%s); listening anyway\n", strerror(err));

	uint16_t flags = 0;
	uint32_t gsi = acpi_isa_irq_to_gsi(1, &flags);
	int vec = irq_alloc_vector(kbd_irq, NULL);
	if (vec < 0) {
		kprintf("kbd: no interrupt vector left (%s)\n", strerror(vec));
		return vec;
	}
	if ((err = ioapic_route(gsi, (uint8_t)vec, lapic_id(), flags)) != 0) {
		kprintf("kbd: cannot route IRQ 1 (GSI %u): %s\n", gsi, strerror(err));
		irq_free_vector(vec);
		return err;
	}
	/* A byte that arrived before the route existed raised an edge nobody
	 * saw; drain it so the next one interrupts. */
	kbd_irq(NULL);
	kprintf("kbd: i8042 keyboard on IRQ 1 (GSI %u), scancode set %s\n", gsi,
		kbd_set2 ? "2" : "1 (translated by the controller)");
	return 0;

err_timeout:
	kprintf("kbd: i8042 controller does not respond (%s), no keyboard\n", strerror(err));
	return 0;   /* no keyboard is a normal machine, not a failed boot */
}
INITCALL(kbd, INIT_CORE, 10, kbd_init);
KERNEL_ARG_WORD(kbd, "set2|off", "PS/2 keyboard: scancode set 2 without translation, or not used");
