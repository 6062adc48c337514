/*
 * Line editor state machine; see kernel/lineedit.h.
 *
 * No kernel or libc headers beyond the freestanding ones: the byte loops
 * below stand in for memmove/strcmp so this file builds unchanged on the
 * host for unit tests.
 */
#include "kernel/lineedit.h"

enum lineedit_esc {
	LE_ESC_NONE,    /* ordinary input */
	LE_ESC_START,   /* saw ESC */
	LE_ESC_CSI,     /* saw ESC [ ; collecting a numeric parameter */
	LE_ESC_SS3,     /* saw ESC O */
};

#define LE_CTRL(c) ((c) & 0x1f)
#define LE_ESC_PARAM_CAP 9999u

/* ---- output buffer ---- */

/* le->out is sized for the largest single response (a full redraw), so a
 * byte that does not fit means a bug; dropping it keeps memory safe. */
static void lineedit_out(struct lineedit *le, const char *s, size_t n)
{
	for (size_t i = 0; i < n && le->out_len < sizeof(le->out); i++)
		le->out[le->out_len++] = s[i];
}

static void lineedit_out_str(struct lineedit *le, const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	lineedit_out(le, s, n);
}

static void lineedit_out_num(struct lineedit *le, size_t v)
{
	char buf[24];
	size_t i = sizeof(buf);
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v && i > 0);
	lineedit_out(le, buf + i, sizeof(buf) - i);
}

static void lineedit_bell(struct lineedit *le)
{
	lineedit_out(le, "\a", 1);
}

static size_t lineedit_plen(const struct lineedit *le)
{
	size_t n = 0;
	while (le->prompt[n])
		n++;
	return n;
}

static void lineedit_csi_n(struct lineedit *le, size_t n, char final)
{
	lineedit_out(le, "\x1b[", 2);
	if (n != 1)
		lineedit_out_num(le, n);
	lineedit_out(le, &final, 1);
}

/* After output that ended exactly at the right margin the terminal holds
 * the cursor there with a wrap pending; move it to the next row now so
 * its position is term_pos / cols, term_pos % cols without exception. */
static void lineedit_settle_wrap(struct lineedit *le)
{
	if (le->term_pos > 0 && le->term_pos % le->cols == 0)
		lineedit_out(le, "\r\n", 2);
}

/* Move the cursor from term_pos to pos (offsets from the prompt's start). */
static void lineedit_move_to(struct lineedit *le, size_t pos)
{
	size_t cols = le->cols;
	size_t from_row = le->term_pos / cols, to_row = pos / cols;
	size_t from_col = le->term_pos % cols, to_col = pos % cols;

	if (from_row == to_row) {
		if (to_col < from_col)
			lineedit_csi_n(le, from_col - to_col, 'D');
		else if (to_col > from_col)
			lineedit_csi_n(le, to_col - from_col, 'C');
	} else {
		if (from_row > to_row)
			lineedit_csi_n(le, from_row - to_row, 'A');
		else
			lineedit_csi_n(le, to_row - from_row, 'B');
		lineedit_out(le, "\r", 1);
		if (to_col)
			lineedit_csi_n(le, to_col, 'C');
	}
	le->term_pos = pos;
}

/* Does the line on screen (before or after this change) use more than one
 * terminal row?  Single-row lines keep the short, classic redraw. */
static bool lineedit_multirow(const struct lineedit *le)
{
	return le->drawn_len >= le->cols || lineedit_plen(le) + le->len >= le->cols ||
	       le->term_pos >= le->cols;
}

/* Repaint the whole line: up to the prompt's row, column 0, prompt, text,
 * clear what is left of an older, longer line (to the end of the row, or
 * of the screen when rows are involved), then put the cursor at its
 * logical position. */
static void lineedit_redraw(struct lineedit *le)
{
	size_t plen = lineedit_plen(le), end = plen + le->len;
	bool multi = lineedit_multirow(le);

	if (le->term_pos >= le->cols)
		lineedit_csi_n(le, le->term_pos / le->cols, 'A');
	lineedit_out(le, "\r", 1);
	lineedit_out_str(le, le->prompt);
	lineedit_out(le, le->line, le->len);
	lineedit_out(le, multi ? "\x1b[J" : "\x1b[K", 3);
	le->term_pos = le->drawn_len = end;
	if (!multi) {
		if (le->cursor < le->len) {
			lineedit_out(le, "\x1b[", 2);
			lineedit_out_num(le, le->len - le->cursor);
			lineedit_out(le, "D", 1);
		}
		le->term_pos = plen + le->cursor;
		return;
	}
	lineedit_settle_wrap(le);
	lineedit_move_to(le, plen + le->cursor);
}

/* ---- line buffer ---- */

static void lineedit_set_line(struct lineedit *le, const char *s)
{
	size_t n = 0;
	while (s[n] && n < LINEEDIT_MAX) {
		le->line[n] = s[n];
		n++;
	}
	le->line[n] = 0;
	le->len = le->cursor = n;
	le->overflow = false;
}

/* Remove [from, to) and keep the NUL terminator in place. */
static void lineedit_erase(struct lineedit *le, size_t from, size_t to)
{
	size_t n = to - from;
	for (size_t i = from; i + n <= le->len; i++)
		le->line[i] = le->line[i + n];
	le->len -= n;
	if (le->cursor > to)
		le->cursor -= n;
	else if (le->cursor > from)
		le->cursor = from;
}

static void lineedit_insert(struct lineedit *le, char c)
{
	if (le->len >= LINEEDIT_MAX) {
		le->overflow = true;
		lineedit_bell(le);
		return;
	}
	for (size_t i = le->len + 1; i > le->cursor; i--)
		le->line[i] = le->line[i - 1];
	le->line[le->cursor++] = c;
	le->len++;
	if (le->cursor == le->len) {
		lineedit_out(le, &c, 1);   /* appending: plain echo suffices */
		le->term_pos++;
		if (le->term_pos > le->drawn_len)
			le->drawn_len = le->term_pos;
		lineedit_settle_wrap(le);
	} else {
		lineedit_redraw(le);
	}
}

static void lineedit_backspace(struct lineedit *le)
{
	if (le->cursor == 0) {
		lineedit_bell(le);
		return;
	}
	/* "\b \b" cannot climb to the row above: at column 0, redraw. */
	bool at_end = le->cursor == le->len && le->term_pos % le->cols != 0;
	lineedit_erase(le, le->cursor - 1, le->cursor);
	if (at_end) {
		lineedit_out(le, "\b \b", 3);
		le->term_pos--;
	} else {
		lineedit_redraw(le);
	}
}

static void lineedit_delete(struct lineedit *le)
{
	if (le->cursor == le->len) {
		lineedit_bell(le);
		return;
	}
	lineedit_erase(le, le->cursor, le->cursor + 1);
	lineedit_redraw(le);
}

static void lineedit_left(struct lineedit *le)
{
	if (le->cursor == 0)
		return;
	le->cursor--;
	lineedit_move_to(le, lineedit_plen(le) + le->cursor);
}

static void lineedit_right(struct lineedit *le)
{
	if (le->cursor == le->len)
		return;
	le->cursor++;
	lineedit_move_to(le, lineedit_plen(le) + le->cursor);
}

/* Word moves (Ctrl/Alt-Left/Right, Alt-B/F): words are runs of non-spaces. */
static void lineedit_word_left(struct lineedit *le)
{
	size_t p = le->cursor;
	while (p > 0 && le->line[p - 1] == ' ')
		p--;
	while (p > 0 && le->line[p - 1] != ' ')
		p--;
	le->cursor = p;
	lineedit_move_to(le, lineedit_plen(le) + p);
}

static void lineedit_word_right(struct lineedit *le)
{
	size_t p = le->cursor;
	while (p < le->len && le->line[p] == ' ')
		p++;
	while (p < le->len && le->line[p] != ' ')
		p++;
	le->cursor = p;
	lineedit_move_to(le, lineedit_plen(le) + p);
}

static void lineedit_home(struct lineedit *le)
{
	le->cursor = 0;
	lineedit_redraw(le);
}

static void lineedit_end(struct lineedit *le)
{
	le->cursor = le->len;
	lineedit_redraw(le);
}

static void lineedit_kill_line(struct lineedit *le)
{
	lineedit_erase(le, 0, le->len);
	le->overflow = false;
	lineedit_redraw(le);
}

static void lineedit_kill_to_end(struct lineedit *le)
{
	bool multi = lineedit_multirow(le);
	lineedit_erase(le, le->cursor, le->len);
	lineedit_out(le, multi ? "\x1b[J" : "\x1b[K", 3);
}

/* Enter and Ctrl-C leave the cursor after the whole line, so what follows
 * starts below it rather than inside a wrapped line. */
static void lineedit_leave(struct lineedit *le)
{
	if (lineedit_multirow(le))
		lineedit_move_to(le, lineedit_plen(le) + le->len);
}

/* Ctrl-W: the spaces just before the cursor, then the word before them. */
static void lineedit_kill_word(struct lineedit *le)
{
	size_t from = le->cursor;
	while (from > 0 && le->line[from - 1] == ' ')
		from--;
	while (from > 0 && le->line[from - 1] != ' ')
		from--;
	if (from == le->cursor)
		return;
	lineedit_erase(le, from, le->cursor);
	lineedit_redraw(le);
}

/* ---- history ---- */

static const char *lineedit_hist_entry(const struct lineedit *le, unsigned i)
{
	return le->hist[(le->hist_head + LINEEDIT_HISTORY - 1 - i) % LINEEDIT_HISTORY];
}

static bool lineedit_streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

/* Blank lines and a repeat of the newest entry are not worth a slot. */
static void lineedit_hist_add(struct lineedit *le)
{
	bool blank = true;
	for (size_t i = 0; i < le->len; i++)
		if (le->line[i] != ' ')
			blank = false;
	if (blank)
		return;
	if (le->hist_count > 0 && lineedit_streq(lineedit_hist_entry(le, 0), le->line))
		return;
	char *slot = le->hist[le->hist_head];
	for (size_t i = 0; i <= le->len; i++)
		slot[i] = le->line[i];
	le->hist_head = (le->hist_head + 1) % LINEEDIT_HISTORY;
	if (le->hist_count < LINEEDIT_HISTORY)
		le->hist_count++;
}

static void lineedit_hist_up(struct lineedit *le)
{
	if (le->hist_pos + 1 >= (int)le->hist_count) {
		lineedit_bell(le);
		return;
	}
	/* Entering the history keeps the half-typed line to come back to. */
	if (le->hist_pos < 0)
		for (size_t i = 0; i <= le->len; i++)
			le->hist_saved[i] = le->line[i];
	le->hist_pos++;
	lineedit_set_line(le, lineedit_hist_entry(le, (unsigned)le->hist_pos));
	lineedit_redraw(le);
}

static void lineedit_hist_down(struct lineedit *le)
{
	if (le->hist_pos < 0) {
		lineedit_bell(le);
		return;
	}
	le->hist_pos--;
	if (le->hist_pos < 0)
		lineedit_set_line(le, le->hist_saved);
	else
		lineedit_set_line(le, lineedit_hist_entry(le, (unsigned)le->hist_pos));
	lineedit_redraw(le);
}

unsigned lineedit_history_count(const struct lineedit *le)
{
	return le->hist_count;
}

const char *lineedit_history_get(const struct lineedit *le, unsigned i)
{
	return i < le->hist_count ? lineedit_hist_entry(le, i) : NULL;
}

/* ---- escape sequences ---- */

/* Final byte of ESC [ ... or ESC O ...; `param` is the first number (0 if
 * none), used by the VT220 "ESC [ n ~" keys, `mod` the second (xterm's
 * modifier: 3 Alt, 5 Ctrl, 7 both). */
static void lineedit_esc_final(struct lineedit *le, uint8_t c, unsigned param, unsigned mod)
{
	bool word = mod == 3 || mod == 5 || mod == 7 || (mod == 0 && param == 5);
	switch (c) {
	case 'A': lineedit_hist_up(le); break;
	case 'B': lineedit_hist_down(le); break;
	case 'C': word ? lineedit_word_right(le) : lineedit_right(le); break;
	case 'D': word ? lineedit_word_left(le) : lineedit_left(le); break;
	case 'c': lineedit_word_right(le); break;     /* rxvt Ctrl-Right (ESC O c) */
	case 'd': lineedit_word_left(le); break;      /* rxvt Ctrl-Left */
	case 'H': lineedit_home(le); break;
	case 'F': lineedit_end(le); break;
	case 'R':
		/* Cursor-position report ESC [ row ; col R answering
		 * lineedit_query_size from the bottom right corner. */
		if (mod >= 20 && mod <= 1000)
			le->cols = mod;
		break;
	case '~':
		if (param == 1 || param == 7)
			lineedit_home(le);
		else if (param == 4 || param == 8)
			lineedit_end(le);
		else if (param == 3)
			lineedit_delete(le);
		break;
	default:
		break;          /* unknown keys are ignored, not inserted */
	}
}

/* Returns true when the byte belonged to an escape sequence. */
static bool lineedit_esc_feed(struct lineedit *le, uint8_t c)
{
	switch (le->esc) {
	case LE_ESC_START:
		if (c == '[') {
			le->esc = LE_ESC_CSI;
			le->esc_param = le->esc_param2 = 0;
			le->esc_nparams = 0;
		} else if (c == 'O') {
			le->esc = LE_ESC_SS3;
		} else if (c == 0x1b) {
			/* ESC ESC [ A is Alt-Up on some terminals: restart. */
		} else if (c == 'b' || c == 'f') {
			le->esc = LE_ESC_NONE;    /* Alt-B / Alt-F: word moves */
			c == 'b' ? lineedit_word_left(le) : lineedit_word_right(le);
		} else {
			le->esc = LE_ESC_NONE;    /* Alt-key or stray ESC: drop */
		}
		return true;
	case LE_ESC_SS3:
		le->esc = LE_ESC_NONE;
		lineedit_esc_final(le, c, 0, 0);
		return true;
	case LE_ESC_CSI:
		if (c >= '0' && c <= '9') {
			unsigned *p = le->esc_nparams >= 2 ? &le->esc_param2 : &le->esc_param;
			if (*p <= LE_ESC_PARAM_CAP)
				*p = *p * 10 + (c - '0');
			if (le->esc_nparams == 0)
				le->esc_nparams = 1;
			return true;
		}
		if (c == ';') {
			le->esc_nparams = le->esc_nparams < 2 ? 2 : le->esc_nparams + 1;
			return true;
		}
		if (c == '?')
			return true;
		le->esc = LE_ESC_NONE;
		if (c >= 0x40 && c <= 0x7e) {
			lineedit_esc_final(le, c, le->esc_param, le->esc_nparams >= 2 ? le->esc_param2 : 0);
			return true;
		}
		return false;  /* malformed: let the byte act on its own */
	default:
		return false;
	}
}

/* ---- public ---- */

void lineedit_init(struct lineedit *le, const char *prompt)
{
	uint8_t *p = (uint8_t *)le;
	for (size_t i = 0; i < sizeof(*le); i++)
		p[i] = 0;
	size_t n = 0;
	while (prompt && prompt[n] && n < LINEEDIT_PROMPT_MAX) {
		le->prompt[n] = prompt[n];
		n++;
	}
	le->prompt[n] = 0;
	le->hist_pos = -1;
	le->cols = LINEEDIT_COLS_DEFAULT;
}

void lineedit_query_size(struct lineedit *le)
{
	lineedit_out_str(le, "\x1b" "7\x1b[999;999H\x1b[6n\x1b" "8");
}

/* last_cr deliberately survives: the LF of a CR LF pair arrives after the
 * caller has already started the next line. */
void lineedit_start(struct lineedit *le)
{
	le->line[0] = 0;
	le->len = le->cursor = 0;
	le->esc = LE_ESC_NONE;
	le->hist_pos = -1;
	le->overflow = false;
	le->out_len = 0;
	lineedit_out_str(le, le->prompt);
	le->term_pos = le->drawn_len = lineedit_plen(le);
	lineedit_settle_wrap(le);
}

int lineedit_feed(struct lineedit *le, uint8_t c)
{
	le->out_len = 0;

	bool after_cr = le->last_cr;
	le->last_cr = (c == '\r');
	if (c == '\n' && after_cr)
		return LINEEDIT_CONTINUE;

	if (le->esc != LE_ESC_NONE && lineedit_esc_feed(le, c)) {
		le->last_cr = false;   /* a CR eaten by ESC was no Enter */
		return LINEEDIT_CONTINUE;
	}

	switch (c) {
	case '\r':
	case '\n':
		lineedit_leave(le);
		le->hist_pos = -1;
		if (le->overflow) {
			/* Running what is left of a cut line could do harm. */
			lineedit_out_str(le, "\r\nline too long: more than ");
			lineedit_out_num(le, LINEEDIT_MAX);
			lineedit_out_str(le, " characters; not run\r\n");
			le->overflow = false;
			return LINEEDIT_CANCEL;
		}
		lineedit_hist_add(le);
		lineedit_out(le, "\r\n", 2);
		return LINEEDIT_DONE;
	case LE_CTRL('C'):
		lineedit_leave(le);
		lineedit_erase(le, 0, le->len);
		le->hist_pos = -1;
		le->overflow = false;
		lineedit_out(le, "^C\r\n", 4);
		return LINEEDIT_CANCEL;
	case 0x1b:
		le->esc = LE_ESC_START;
		break;
	case 0x7f:
	case 0x08:
		lineedit_backspace(le);
		break;
	case LE_CTRL('D'):
		if (le->cursor < le->len)
			lineedit_delete(le);
		break;
	case LE_CTRL('A'): lineedit_home(le); break;
	case LE_CTRL('E'): lineedit_end(le); break;
	case LE_CTRL('B'): lineedit_left(le); break;
	case LE_CTRL('F'): lineedit_right(le); break;
	case LE_CTRL('P'): lineedit_hist_up(le); break;
	case LE_CTRL('N'): lineedit_hist_down(le); break;
	case LE_CTRL('U'): lineedit_kill_line(le); break;
	case LE_CTRL('K'): lineedit_kill_to_end(le); break;
	case LE_CTRL('W'): lineedit_kill_word(le); break;
	case LE_CTRL('L'):
		lineedit_out(le, "\x1b[H\x1b[2J", 7);
		le->term_pos = le->drawn_len = 0;
		lineedit_redraw(le);
		break;
	default:
		if (c >= 0x20 && c < 0x7f)
			lineedit_insert(le, (char)c);
		/* other control bytes and non-ASCII are ignored */
		break;
	}
	return LINEEDIT_CONTINUE;
}
