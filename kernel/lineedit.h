/*
 * Line editor for a serial terminal (kernel/lineedit.c).
 *
 * Pure C with no kernel headers, so the same file builds into the kernel and
 * into the host unit test (tests/host/test_lineedit.c).  The editor is a state
 * machine fed one input byte at a time; after each call the bytes to send back
 * to the terminal are in le->out[0 .. le->out_len) and the line being edited
 * is le->line (always NUL terminated).
 *
 *   lineedit_init(&le, "appliance> ");
 *   lineedit_start(&le);                 // emits the prompt
 *   for (;;) {
 *           int r = lineedit_feed(&le, byte);
 *           write(le.out, le.out_len);
 *           if (r == LINEEDIT_DONE) use(le.line), lineedit_start(&le);
 *           if (r == LINEEDIT_CANCEL) lineedit_start(&le);
 *   }
 *
 * Keys: printable insert at the cursor; Backspace (0x7f, 0x08); Delete
 * (ESC [ 3 ~); Left/Right (ESC [ D / C); Home (ESC [ H, ESC [ 1 ~, ESC [ 7 ~,
 * ESC O H, Ctrl-A); End (ESC [ F, ESC [ 4 ~, ESC [ 8 ~, ESC O F, Ctrl-E);
 * Ctrl-U kill the whole line; Ctrl-K kill to end; Ctrl-W kill the word before
 * the cursor; Ctrl-C abandon the line; Ctrl-L redraw; Up/Down (ESC [ A / B)
 * walk the history of the last LINEEDIT_HISTORY entered lines; Enter is CR or
 * LF, and CR LF counts as one Enter.  Ctrl-Left/Right (ESC [ 1 ; 5 D / C,
 * ESC [ 5 D / C, ESC O d / c) and Alt-Left/Right, Alt-B/F move by words.
 *
 * Long lines wrap on the terminal.  The editor keeps the terminal's width
 * (80 columns until the terminal says otherwise: lineedit_query_size()
 * asks with a cursor-position report, whose answer ESC [ rows ; cols R
 * arrives as input and is consumed here) and where it left the cursor, so
 * a redraw first climbs to the prompt's row and then clears to the end of
 * the screen: recalling a wrapped line and killing it leaves nothing stale.
 * A line longer than LINEEDIT_MAX rings the bell for each byte that does
 * not fit, and Enter then refuses to run the cut line ("line too long").
 */
#ifndef KERNEL_LINEEDIT_H
#define KERNEL_LINEEDIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define LINEEDIT_MAX 255          /* characters in a line, without the NUL */
#define LINEEDIT_HISTORY 32       /* lines remembered */
#define LINEEDIT_PROMPT_MAX 32    /* longer prompts are cut */
#define LINEEDIT_COLS_DEFAULT 80
/* Worst case output of one byte: a full redraw of the longest line plus
 * cursor moves and the refusal message of an over-long line. */
#define LINEEDIT_OUT_MAX (LINEEDIT_PROMPT_MAX + LINEEDIT_MAX + 96)

enum lineedit_result {
	LINEEDIT_CONTINUE = 0,    /* keep feeding */
	LINEEDIT_DONE,            /* Enter: le->line holds the line */
	LINEEDIT_CANCEL,          /* Ctrl-C: the line was abandoned */
};

struct lineedit {
	char prompt[LINEEDIT_PROMPT_MAX + 1];
	char line[LINEEDIT_MAX + 1];
	size_t len, cursor;

	/* Escape sequence parser. */
	int esc;                  /* enum in lineedit.c */
	unsigned esc_param, esc_param2;   /* ESC [ p1 ; p2 final */
	unsigned esc_nparams;

	/* Terminal geometry: columns, and where the cursor is on it as an
	 * offset from the prompt's first column (row = pos / cols). */
	unsigned cols;
	size_t term_pos;
	size_t drawn_len;         /* prompt + text on screen after the last draw */
	bool overflow;            /* bytes were refused: Enter will not run it */

	bool last_cr;             /* previous byte was CR: swallow a following LF */

	/* History ring: hist[(hist_head - 1 - i) % N] is the i-th most recent. */
	char hist[LINEEDIT_HISTORY][LINEEDIT_MAX + 1];
	unsigned hist_count, hist_head;
	int hist_pos;             /* -1 = editing the new line, else entry index */
	char hist_saved[LINEEDIT_MAX + 1]; /* the new line while browsing */

	char out[LINEEDIT_OUT_MAX];
	size_t out_len;
};

void lineedit_init(struct lineedit *le, const char *prompt);
/* Begin a new, empty line and emit the prompt.  History is kept. */
void lineedit_start(struct lineedit *le);
/* Feed one byte; returns enum lineedit_result. */
int lineedit_feed(struct lineedit *le, uint8_t byte);
/* Emit the terminal-size query (a cursor-position report from the bottom
 * right corner; cursor saved and restored).  Feed the answer as input. */
void lineedit_query_size(struct lineedit *le);
/* Number of history entries and the i-th most recent (0 = newest), or NULL. */
unsigned lineedit_history_count(const struct lineedit *le);
const char *lineedit_history_get(const struct lineedit *le, unsigned i);

#endif
