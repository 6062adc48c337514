/*
 * Screen console on the UEFI GOP framebuffer (kernel/fbcon.c) and its status
 * line (kernel/fbcon_status.c).
 *
 * The screen mirrors the serial console: kprintf() and console_write()
 * (kernel/kprintf.c) hand every byte to fbcon_write() as well as to the UART,
 * screen first, so by the time a byte is on the serial line it is on the
 * screen too.  The top text row is a status line (fbcon_set_status); the rows
 * below it are a terminal that understands what the shell's line editor
 * emits: CR, LF, BS, TAB, BEL (ignored), ESC 7 / ESC 8 (save / restore the
 * cursor), and the CSI sequences cursor up / down / right / left (A B C D),
 * position (H), erase in line (K), erase in display (J), colours (m: 0, 1,
 * 7, 22, 27, 30-37, 39, 40-47, 49, 90-97) and the cursor position request
 * (6n, answered through fbcon_take_reply).
 * Bytes outside printable ASCII show as '?' (a UTF-8 sequence as one '?').
 *
 * Call order:
 *   fbcon_init(bi)    right after serial_init: takes the geometry; text is
 *                     kept in the shadow from then on, nothing drawn yet
 *   fbcon_map()       after vmm_init: maps the framebuffer, draws the shadow
 *   fbcon_write()     any context, any time (no allocation, one spinlock)
 *   fbcon_force_unlock()  by panic/trap (through kprintf_force_unlock)
 * Every call is a no-op when the loader found no framebuffer.
 *
 * Shadow buffer: the text (character + colour per cell) lives in RAM, and a
 * second array remembers what each cell on the screen currently shows.  A
 * write changes only the text; at its end one flush redraws the cells whose
 * text differs from what is shown.  Scrolling is a memmove of the text, and
 * video memory is only ever written, never read.
 */
#ifndef KERNEL_FBCON_H
#define KERNEL_FBCON_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>
#include "boot/bootinfo.h"

/* Glyphs for characters first..last, row_bytes * height bytes each, most
 * significant bit leftmost.  Generated at build time from a Debian console
 * font by tools/psf.py (build/k/fbcon_font.c). */
struct fbcon_font {
	uint32_t width, height, row_bytes;
	uint32_t first, last;
	const uint8_t *glyphs;
};
extern const struct fbcon_font fbcon_font;

void fbcon_init(const struct boot_info *bi);
void fbcon_map(void);
void fbcon_write(const char *s, size_t n);
/* The screen's answer to the last query it was sent (CSI 6n: cursor
 * position report), or 0 bytes.  console_write() passes it to the console
 * input once it has dropped its lock. */
size_t fbcon_take_reply(char *buf, size_t size);
/* Replace the status line (cut to the screen width). */
void fbcon_set_status(const char *text);
void fbcon_force_unlock(void);
/* Whether a screen is in use, and its text size (rows include the status line). */
bool fbcon_active(void);
void fbcon_geometry(unsigned *cols, unsigned *rows);

/* For kernel/fbcon_test.c only: take the screen lock with IRQs off as if
 * `owner_cpu` held it (what a fault in the middle of drawing leaves), and
 * turn the screen back on with everything redrawn. */
uint64_t fbcon_test_hold(unsigned owner_cpu);
void fbcon_test_resume(uint64_t irq_flags);
const void *fbcon_test_mapping(void);

#endif
