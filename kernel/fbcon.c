/*
 * Screen console: a text terminal drawn on the GOP framebuffer.
 *
 * Text model.  fbcon_text[row][col] holds what the screen should show: the
 * character in the low byte, the colours in the high byte (foreground in
 * bits 8-11, background in bits 12-15).  Row 0 is the status line; rows
 * 1 .. fbcon_rows-1 are the terminal, and the cursor (fbcon_cx, fbcon_cy)
 * lives there (fbcon_cy counts from the first terminal row).
 *
 * Invariant: fbcon_shown[row][col] is exactly what video memory shows for
 * that cell (the text cell, plus FBCON_SHOWN_CURSOR when drawn as the
 * cursor; FBCON_SHOWN_UNKNOWN before the first draw).  fbcon_flush() makes
 * the screen equal the text by drawing only cells where the two differ, so
 * a scroll costs one memmove of the text plus the cells that really change,
 * and video memory is never read.
 *
 * Locking: fbcon_lock serialises every change to the text and the screen.
 * kprintf takes it inside its console lock; the status thread alone.  A
 * fault while this CPU draws would otherwise deadlock the exception report:
 * fbcon_force_unlock() (called on the fault path) sees that this CPU owns the
 * lock and turns the screen off, so the report still reaches the serial line.
 */
#include "kernel/fbcon.h"
#include "kernel/cpu.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/mm.h"
#include "kernel/smp.h"
#include "kernel/sync.h"

#define FBCON_MAX_COLS 240
#define FBCON_MAX_ROWS 135
#define FBCON_MIN_COLS 20
#define FBCON_MIN_ROWS 4
#define FBCON_SHOWN_CURSOR  0x10000u
#define FBCON_SHOWN_UNKNOWN 0xffffffffu
#define FBCON_CSI_PARAMS 4
#define FBCON_TAB 8

enum { FBCON_COLOR_FG = 7, FBCON_COLOR_BG = 0 };
#define FBCON_ATTR(fg, bg) ((uint16_t)(((fg) | ((bg) << 4)) << 8))
#define FBCON_ATTR_STATUS FBCON_ATTR(0, 7)

enum fbcon_esc { ESC_NONE, ESC_SEEN, ESC_CSI };

/* VGA text-mode palette: the colours SGR 30-37 / 90-97 name. */
static const uint8_t fbcon_palette[16][3] = {
	{ 0x00, 0x00, 0x00 }, { 0xaa, 0x00, 0x00 }, { 0x00, 0xaa, 0x00 }, { 0xaa, 0x55, 0x00 },
	{ 0x00, 0x00, 0xaa }, { 0xaa, 0x00, 0xaa }, { 0x00, 0xaa, 0xaa }, { 0xaa, 0xaa, 0xaa },
	{ 0x55, 0x55, 0x55 }, { 0xff, 0x55, 0x55 }, { 0x55, 0xff, 0x55 }, { 0xff, 0xff, 0x55 },
	{ 0x55, 0x55, 0xff }, { 0xff, 0x55, 0xff }, { 0x55, 0xff, 0xff }, { 0xff, 0xff, 0xff },
};

static spinlock_t fbcon_lock = SPINLOCK_INIT("fbcon");
static bool fbcon_on;            /* geometry known: keep text */
static bool fbcon_mapped;        /* video memory mapped: draw */
static uint64_t fbcon_phys;
static uint32_t fbcon_width, fbcon_height, fbcon_pitch;
static uint8_t *fbcon_fb;
static uint32_t fbcon_pixel[16]; /* palette in the framebuffer's format */
static unsigned fbcon_cols, fbcon_rows;

static uint16_t fbcon_text[FBCON_MAX_ROWS][FBCON_MAX_COLS];
static uint32_t fbcon_shown[FBCON_MAX_ROWS][FBCON_MAX_COLS];

static unsigned fbcon_cx, fbcon_cy;   /* cursor; fbcon_cy in terminal rows */
static bool fbcon_wrap_pending;       /* last column written: wrap before the next char */
static uint16_t fbcon_attr = FBCON_ATTR(FBCON_COLOR_FG, FBCON_COLOR_BG);
static bool fbcon_bold, fbcon_reverse;
static uint8_t fbcon_fg = FBCON_COLOR_FG, fbcon_bg = FBCON_COLOR_BG;
static enum fbcon_esc fbcon_esc;
static unsigned fbcon_param[FBCON_CSI_PARAMS], fbcon_nparam;
static bool fbcon_param_seen;
/* ESC 7 / ESC 8: saved cursor and colours. */
static unsigned fbcon_saved_cx, fbcon_saved_cy;
static uint16_t fbcon_saved_attr = FBCON_ATTR(FBCON_COLOR_FG, FBCON_COLOR_BG);
/* Answer to a cursor position request (CSI 6n), handed to console input by
 * fbcon_take_reply() once the caller has dropped its locks. */
static char fbcon_reply[24];
static size_t fbcon_reply_len;

static unsigned fbcon_term_rows(void)
{
	return fbcon_rows - 1;
}

static unsigned fbcon_mask_shift(uint32_t mask)
{
	unsigned s = 0;
	while (mask && !(mask & 1))
		mask >>= 1, s++;
	return s;
}

static uint32_t fbcon_channel(uint8_t v, uint32_t mask)
{
	/* Scale an 8-bit channel to the mask's width (8 bits everywhere GOP
	 * reports 32 bpp, but a bitmask mode may be narrower). */
	uint32_t bits = mask >> fbcon_mask_shift(mask);
	unsigned width = 0;
	while (bits & 1)
		bits >>= 1, width++;
	uint32_t scaled = width >= 8 ? (uint32_t)v << (width - 8) : (uint32_t)v >> (8 - width);
	return (scaled << fbcon_mask_shift(mask)) & mask;
}

void fbcon_init(const struct boot_info *bi)
{
	const struct boot_framebuffer *fb = &bi->fb;

	if (fb->base_phys == 0)
		return;
	if (fb->bpp != 32 || !fb->red_mask || !fb->green_mask || !fb->blue_mask ||
	    fb->pitch < fb->width * 4) {
		kprintf("fbcon: framebuffer format unsupported (%u bpp, pitch %u for width %u), "
			"no screen console\n", fb->bpp, fb->pitch, fb->width);
		return;
	}
	unsigned cols = MIN(fb->width / fbcon_font.width, (unsigned)FBCON_MAX_COLS);
	unsigned rows = MIN(fb->height / fbcon_font.height, (unsigned)FBCON_MAX_ROWS);
	if (cols < FBCON_MIN_COLS || rows < FBCON_MIN_ROWS) {
		kprintf("fbcon: %ux%u framebuffer too small for %ux%u text, no screen console\n",
			fb->width, fb->height, fbcon_font.width, fbcon_font.height);
		return;
	}
	for (unsigned i = 0; i < 16; i++)
		fbcon_pixel[i] = fbcon_channel(fbcon_palette[i][0], fb->red_mask) |
				 fbcon_channel(fbcon_palette[i][1], fb->green_mask) |
				 fbcon_channel(fbcon_palette[i][2], fb->blue_mask);
	fbcon_phys = fb->base_phys;
	fbcon_width = fb->width;
	fbcon_height = fb->height;
	fbcon_pitch = fb->pitch;
	fbcon_cols = cols;
	fbcon_rows = rows;
	for (unsigned r = 0; r < rows; r++)
		for (unsigned c = 0; c < cols; c++) {
			fbcon_text[r][c] = (r ? fbcon_attr : FBCON_ATTR_STATUS) | ' ';
			fbcon_shown[r][c] = FBCON_SHOWN_UNKNOWN;
		}
	fbcon_on = true;
}

bool fbcon_active(void)
{
	return fbcon_on;
}

void fbcon_geometry(unsigned *cols, unsigned *rows)
{
	*cols = fbcon_cols;
	*rows = fbcon_rows;
}

/* ---- drawing ------------------------------------------------------------ */

static void fbcon_draw_cell(unsigned row, unsigned col, uint32_t cell)
{
	const struct fbcon_font *f = &fbcon_font;
	unsigned ch = cell & 0xff;
	uint32_t fg = fbcon_pixel[(cell >> 8) & 15], bg = fbcon_pixel[(cell >> 12) & 15];

	if (cell & FBCON_SHOWN_CURSOR) {
		uint32_t t = fg;
		fg = bg, bg = t;
	}
	if (ch < f->first || ch > f->last)
		ch = '?';
	const uint8_t *g = f->glyphs + (ch - f->first) * f->row_bytes * f->height;
	uint8_t *line = fbcon_fb + (size_t)row * f->height * fbcon_pitch +
			(size_t)col * f->width * 4;
	/* Two pixels per store where the width allows (half the stores to
	 * video memory); index = left pixel's bit | right pixel's bit << 1. */
	uint64_t pair[4] = { bg | (uint64_t)bg << 32, fg | (uint64_t)bg << 32,
			     bg | (uint64_t)fg << 32, fg | (uint64_t)fg << 32 };
	for (unsigned y = 0; y < f->height; y++, line += fbcon_pitch, g += f->row_bytes) {
		if (f->width % 2 == 0) {
			volatile uint64_t *px = (volatile uint64_t *)line;
			for (unsigned x = 0; x < f->width; x += 2) {
				unsigned l = (g[x >> 3] >> (7 - (x & 7))) & 1;
				unsigned r = (g[(x + 1) >> 3] >> (7 - ((x + 1) & 7))) & 1;
				px[x / 2] = pair[l | r << 1];
			}
			continue;
		}
		volatile uint32_t *px = (volatile uint32_t *)line;
		for (unsigned x = 0; x < f->width; x++)
			px[x] = (g[x >> 3] >> (7 - (x & 7))) & 1 ? fg : bg;
	}
}

static void fbcon_flush(void)
{
	if (!fbcon_mapped)
		return;
	unsigned cur_row = fbcon_cy + 1;
	unsigned cur_col = MIN(fbcon_cx, fbcon_cols - 1);
	for (unsigned r = 0; r < fbcon_rows; r++)
		for (unsigned c = 0; c < fbcon_cols; c++) {
			uint32_t want = fbcon_text[r][c];
			if (r == cur_row && c == cur_col)
				want |= FBCON_SHOWN_CURSOR;
			if (fbcon_shown[r][c] == want)
				continue;
			fbcon_draw_cell(r, c, want);
			fbcon_shown[r][c] = want;
		}
	/* Write-combining buffers drain now: the screen is complete before
	 * the same bytes reach the serial line. */
	__asm__ volatile("sfence" ::: "memory");
}

void fbcon_map(void)
{
	if (!fbcon_on)
		return;
	size_t size = (size_t)fbcon_pitch * fbcon_height;
	uint8_t *fb = vmm_map_wc(fbcon_phys, size);
	if (!fb) {
		kprintf("fbcon: cannot map the framebuffer at %#llx (%zu bytes), no screen console\n",
			(unsigned long long)fbcon_phys, size);
		fbcon_on = false;
		return;
	}
	uint64_t f = spin_lock_irqsave(&fbcon_lock);
	/* The margins right of and below the text are never drawn by a flush:
	 * clear them once (what the firmware left there is not ours). */
	uint32_t text_w = fbcon_cols * fbcon_font.width, text_h = fbcon_rows * fbcon_font.height;
	for (uint32_t y = 0; y < fbcon_height; y++) {
		volatile uint32_t *px = (volatile uint32_t *)(fb + (size_t)y * fbcon_pitch);
		for (uint32_t x = y < text_h ? text_w : 0; x < fbcon_width; x++)
			px[x] = fbcon_pixel[FBCON_COLOR_BG];
	}
	fbcon_fb = fb;
	fbcon_mapped = true;
	fbcon_flush();
	spin_unlock_irqrestore(&fbcon_lock, f);
	kprintf("fbcon: %ux%u framebuffer at %#llx, %ux%u text (font %ux%u)\n", fbcon_width,
		fbcon_height, (unsigned long long)fbcon_phys, fbcon_cols, fbcon_rows,
		fbcon_font.width, fbcon_font.height);
}

/* ---- terminal ----------------------------------------------------------- */

static void fbcon_clear(unsigned row, unsigned from, unsigned to)
{
	/* Erased cells take the current background, as on a VT100. */
	uint16_t blank = FBCON_ATTR(FBCON_COLOR_FG, (fbcon_attr >> 12) & 15) | ' ';
	for (unsigned c = from; c < to && c < fbcon_cols; c++)
		fbcon_text[row + 1][c] = blank;
}

static void fbcon_newline(void)
{
	fbcon_wrap_pending = false;
	if (fbcon_cy + 1 < fbcon_term_rows()) {
		fbcon_cy++;
		return;
	}
	memmove(&fbcon_text[1], &fbcon_text[2], sizeof(fbcon_text[0]) * (fbcon_rows - 2));
	fbcon_clear(fbcon_cy, 0, fbcon_cols);
}

static void fbcon_put(char ch)
{
	if (fbcon_wrap_pending) {
		fbcon_cx = 0;
		fbcon_newline();
	}
	fbcon_text[fbcon_cy + 1][fbcon_cx] = fbcon_attr | (uint8_t)ch;
	if (fbcon_cx + 1 < fbcon_cols)
		fbcon_cx++;
	else
		fbcon_wrap_pending = true;
}

static void fbcon_update_attr(void)
{
	uint8_t fg = fbcon_fg | (fbcon_bold && fbcon_fg < 8 ? 8 : 0);
	fbcon_attr = fbcon_reverse ? FBCON_ATTR(fbcon_bg, fg) : FBCON_ATTR(fg, fbcon_bg);
}

static void fbcon_sgr(void)
{
	if (fbcon_nparam == 0)
		fbcon_param[fbcon_nparam++] = 0;
	for (unsigned i = 0; i < fbcon_nparam; i++) {
		unsigned p = fbcon_param[i];
		if (p == 0) {
			fbcon_fg = FBCON_COLOR_FG, fbcon_bg = FBCON_COLOR_BG;
			fbcon_bold = fbcon_reverse = false;
		} else if (p == 1) {
			fbcon_bold = true;
		} else if (p == 22) {
			fbcon_bold = false;
		} else if (p == 7) {
			fbcon_reverse = true;
		} else if (p == 27) {
			fbcon_reverse = false;
		} else if (p >= 30 && p <= 37) {
			fbcon_fg = (uint8_t)(p - 30);
		} else if (p == 39) {
			fbcon_fg = FBCON_COLOR_FG;
		} else if (p >= 40 && p <= 47) {
			fbcon_bg = (uint8_t)(p - 40);
		} else if (p == 49) {
			fbcon_bg = FBCON_COLOR_BG;
		} else if (p >= 90 && p <= 97) {
			fbcon_fg = (uint8_t)(p - 90 + 8);
		}
	}
	fbcon_update_attr();
}

/* One CSI sequence: parameters in fbcon_param, `final` its last byte. */
static void fbcon_csi(char final)
{
	unsigned n = fbcon_nparam && fbcon_param[0] ? fbcon_param[0] : 1;
	unsigned rows = fbcon_term_rows();

	fbcon_wrap_pending = false;
	switch (final) {
	case 'A':
		fbcon_cy = fbcon_cy > n ? fbcon_cy - n : 0;
		break;
	case 'B':
		fbcon_cy = MIN(fbcon_cy + n, rows - 1);
		break;
	case 'C':
		fbcon_cx = MIN(fbcon_cx + n, fbcon_cols - 1);
		break;
	case 'D':
		fbcon_cx = fbcon_cx > n ? fbcon_cx - n : 0;
		break;
	case 'H': case 'f': {
		unsigned r = fbcon_nparam >= 1 && fbcon_param[0] ? fbcon_param[0] : 1;
		unsigned c = fbcon_nparam >= 2 && fbcon_param[1] ? fbcon_param[1] : 1;
		fbcon_cy = MIN(r, rows) - 1;
		fbcon_cx = MIN(c, fbcon_cols) - 1;
		break;
	}
	case 'K': {
		unsigned mode = fbcon_nparam ? fbcon_param[0] : 0;
		if (mode == 0)
			fbcon_clear(fbcon_cy, fbcon_cx, fbcon_cols);
		else if (mode == 1)
			fbcon_clear(fbcon_cy, 0, fbcon_cx + 1);
		else
			fbcon_clear(fbcon_cy, 0, fbcon_cols);
		break;
	}
	case 'J': {
		unsigned mode = fbcon_nparam ? fbcon_param[0] : 0;
		unsigned from = mode == 0 ? fbcon_cy + 1 : 0, to = mode == 1 ? fbcon_cy : rows;
		if (mode == 0)
			fbcon_clear(fbcon_cy, fbcon_cx, fbcon_cols);
		if (mode == 1)
			fbcon_clear(fbcon_cy, 0, fbcon_cx + 1);
		for (unsigned r = from; r < to; r++)
			fbcon_clear(r, 0, fbcon_cols);
		break;
	}
	case 'm':
		fbcon_sgr();
		break;
	case 'n':
		/* Device status report 6: where is the cursor.  The answer is
		 * input, as from any terminal; the line editor learns the
		 * screen's width from it.  A serial terminal's own answer
		 * arrives later and wins, as its width is the one to wrap for. */
		if (fbcon_nparam && fbcon_param[0] == 6)
			fbcon_reply_len = (size_t)ksnprintf(fbcon_reply, sizeof(fbcon_reply), "\x1b[%u;%uR",
							    fbcon_cy + 1, fbcon_cx + 1);
		break;
	default:
		break;   /* unknown sequences are consumed, not shown */
	}
}

/* Returns true when the byte was part of an escape sequence. */
static bool fbcon_escape(char ch)
{
	if (fbcon_esc == ESC_SEEN) {
		if (ch == '[') {
			fbcon_esc = ESC_CSI;
			fbcon_nparam = 0;
			fbcon_param_seen = false;
			for (unsigned i = 0; i < FBCON_CSI_PARAMS; i++)
				fbcon_param[i] = 0;
		} else {
			fbcon_esc = ESC_NONE;
			if (ch == '7') {
				fbcon_saved_cx = fbcon_cx, fbcon_saved_cy = fbcon_cy;
				fbcon_saved_attr = fbcon_attr;
			} else if (ch == '8') {
				fbcon_cx = fbcon_saved_cx, fbcon_cy = fbcon_saved_cy;
				fbcon_attr = fbcon_saved_attr;
				fbcon_wrap_pending = false;
			}       /* other two-byte sequences: ignored */
		}
		return true;
	}
	if (fbcon_esc != ESC_CSI)
		return false;
	if (ch >= '0' && ch <= '9') {
		if (!fbcon_param_seen && fbcon_nparam < FBCON_CSI_PARAMS)
			fbcon_nparam++, fbcon_param_seen = true;
		if (fbcon_nparam && fbcon_param[fbcon_nparam - 1] < 10000)
			fbcon_param[fbcon_nparam - 1] = fbcon_param[fbcon_nparam - 1] * 10 +
							(unsigned)(ch - '0');
	} else if (ch == ';') {
		if (!fbcon_param_seen && fbcon_nparam < FBCON_CSI_PARAMS)
			fbcon_nparam++;    /* empty parameter: 0 */
		fbcon_param_seen = false;
	} else if (ch >= 0x40 && ch <= 0x7e) {
		fbcon_esc = ESC_NONE;
		fbcon_csi(ch);
	} else if (ch < 0x20 || ch > 0x3f) {
		fbcon_esc = ESC_NONE;   /* malformed: drop the sequence */
	}
	/* '?', '<', '=', '>' (private markers) are skipped. */
	return true;
}

static void fbcon_byte(char ch)
{
	uint8_t b = (uint8_t)ch;

	if (fbcon_esc != ESC_NONE && fbcon_escape(ch))
		return;
	switch (ch) {
	case '\x1b':
		fbcon_esc = ESC_SEEN;
		return;
	case '\r':
		fbcon_cx = 0;
		fbcon_wrap_pending = false;
		return;
	case '\n':
		fbcon_newline();
		return;
	case '\b':
		if (fbcon_cx > 0)
			fbcon_cx--;
		fbcon_wrap_pending = false;
		return;
	case '\t':
		do
			fbcon_put(' ');
		while (fbcon_cx % FBCON_TAB && !fbcon_wrap_pending);
		return;
	default:
		break;
	}
	if (b >= 0x80 && b < 0xc0)
		return;   /* UTF-8 continuation: the lead byte showed '?' */
	if (b < 0x20 || b == 0x7f)
		return;   /* BEL and other controls: nothing to draw */
	fbcon_put(b >= 0x80 ? '?' : ch);
}

void fbcon_write(const char *s, size_t n)
{
	if (!fbcon_on)
		return;
	uint64_t f = spin_lock_irqsave(&fbcon_lock);
	for (size_t i = 0; i < n; i++)
		fbcon_byte(s[i]);
	fbcon_flush();
	spin_unlock_irqrestore(&fbcon_lock, f);
}

size_t fbcon_take_reply(char *buf, size_t size)
{
	if (!fbcon_on)
		return 0;
	uint64_t f = spin_lock_irqsave(&fbcon_lock);
	size_t n = MIN(fbcon_reply_len, size);
	memcpy(buf, fbcon_reply, n);
	fbcon_reply_len = 0;
	spin_unlock_irqrestore(&fbcon_lock, f);
	return n;
}

void fbcon_set_status(const char *text)
{
	if (!fbcon_on)
		return;
	uint64_t f = spin_lock_irqsave(&fbcon_lock);
	size_t len = strlen(text);
	for (unsigned c = 0; c < fbcon_cols; c++) {
		uint8_t ch = c < len ? (uint8_t)text[c] : ' ';
		fbcon_text[0][c] = FBCON_ATTR_STATUS | (ch < 0x20 || ch >= 0x7f ? '?' : ch);
	}
	fbcon_flush();
	spin_unlock_irqrestore(&fbcon_lock, f);
}

const void *fbcon_test_mapping(void)
{
	return fbcon_fb;
}

uint64_t fbcon_test_hold(unsigned owner_cpu)
{
	uint64_t f = spin_lock_irqsave(&fbcon_lock);
	spin_test_give_to(&fbcon_lock, owner_cpu);
	return f;
}

void fbcon_test_resume(uint64_t irq_flags)
{
	uint64_t f = spin_lock_irqsave(&fbcon_lock);
	for (unsigned r = 0; r < fbcon_rows; r++)
		for (unsigned c = 0; c < fbcon_cols; c++)
			fbcon_shown[r][c] = FBCON_SHOWN_UNKNOWN;
	fbcon_on = fbcon_cols != 0;
	fbcon_flush();
	spin_unlock_irqrestore(&fbcon_lock, f);
	irq_restore(irq_flags);
}

void fbcon_force_unlock(void)
{
	unsigned me = smp_percpu_ready ? this_cpu()->index : 0;

	if (!__atomic_load_n(&fbcon_lock.locked, __ATOMIC_ACQUIRE))
		return;
	/* This CPU holds the lock: it faulted while drawing, and drawing again
	 * might fault again.  Another CPU holds it: that CPU is being halted. */
	if (fbcon_lock.owner_cpu == me)
		fbcon_on = false;
	spin_force_release(&fbcon_lock);
}
