/*
 * Host unit tests for the serial line editor (kernel/lineedit.c).
 *
 *   gcc -std=gnu11 -Wall -Wextra -Werror -fsanitize=address,undefined -I. \
 *       tests/host/test_lineedit.c kernel/lineedit.c -o /tmp/t && /tmp/t
 */
#define TEST_SUITE "lineedit"
#include "tests/host/test.h"
#include "kernel/lineedit.h"

#define PROMPT "p> "

static struct lineedit le;
static char out[1 << 16];
static size_t out_len;
static int last_result;
static int n_done, n_cancel;

/* Fresh editor with the prompt already drawn and the output log cleared. */
static void setup(void)
{
	lineedit_init(&le, PROMPT);
	lineedit_start(&le);
	out_len = 0;
	out[0] = 0;
	n_done = n_cancel = 0;
}

/* Feed bytes as a terminal would; restart the line after Enter/Ctrl-C the
 * way the shell does, and collect everything echoed. */
static void feedn(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		last_result = lineedit_feed(&le, (uint8_t)s[i]);
		if (le.out_len > LINEEDIT_OUT_MAX)
			test_fail_at(__FILE__, __LINE__, "out_len beyond buffer");
		if (out_len + le.out_len < sizeof(out) - 1) {
			memcpy(out + out_len, le.out, le.out_len);
			out_len += le.out_len;
			out[out_len] = 0;
		}
		if (last_result == LINEEDIT_DONE)
			n_done++;
		if (last_result == LINEEDIT_CANCEL)
			n_cancel++;
	}
}
static void feed(const char *s) { feedn(s, strlen(s)); }
static void clear_out(void) { out_len = 0; out[0] = 0; }
/* Enter a line and start the next one, as the shell loop does. */
static void enter(const char *s)
{
	feed(s);
	feed("\r");
	lineedit_start(&le);
}

/* Hides the array bound from -Wformat-truncation in EXPECT_STREQ's message. */
static __attribute__((noinline)) const char *str(const char *p) { return p; }

static bool out_has(const char *needle) { return strstr(out, needle) != NULL; }

TEST(start_emits_prompt)
{
	lineedit_init(&le, PROMPT);
	lineedit_start(&le);
	EXPECT_EQ_INT(le.out_len, 3);
	EXPECT(memcmp(le.out, PROMPT, 3) == 0);
	EXPECT_STREQ(str(le.line), "");
}

TEST(prompt_is_truncated)
{
	char longp[100];
	memset(longp, 'x', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = 0;
	lineedit_init(&le, longp);
	EXPECT_EQ_INT(strlen(le.prompt), LINEEDIT_PROMPT_MAX);
}

TEST(printable_appends_and_echoes)
{
	setup();
	feed("abc");
	EXPECT_STREQ(str(le.line), "abc");
	EXPECT_EQ_INT(le.len, 3);
	EXPECT_EQ_INT(le.cursor, 3);
	EXPECT_STREQ(str(out), "abc");
	EXPECT_EQ_INT(last_result, LINEEDIT_CONTINUE);
}

TEST(insert_in_middle_redraws)
{
	setup();
	feed("abc\x1b[D\x1b[D");
	clear_out();
	feed("X");
	EXPECT_STREQ(str(le.line), "aXbc");
	EXPECT_EQ_INT(le.cursor, 2);
	EXPECT_STREQ(str(out), "\r" PROMPT "aXbc\x1b[K\x1b[2D");
}

TEST(backspace_del_byte)
{
	setup();
	feed("abc\x7f");
	EXPECT_STREQ(str(le.line), "ab");
	EXPECT(out_has("\b \b"));
}

TEST(backspace_bs_byte)
{
	setup();
	feed("abc\x08\x08");
	EXPECT_STREQ(str(le.line), "a");
	EXPECT_EQ_INT(le.cursor, 1);
}

TEST(backspace_in_middle)
{
	setup();
	feed("abcd\x1b[D\x1b[D\x7f");
	EXPECT_STREQ(str(le.line), "acd");    /* the 'b' before the cursor */
	EXPECT_EQ_INT(le.cursor, 1);
	EXPECT(out_has("\r" PROMPT "acd\x1b[K\x1b[2D"));
}

TEST(backspace_at_start_bells)
{
	setup();
	feed("\x7f");
	EXPECT_STREQ(str(le.line), "");
	EXPECT_STREQ(str(out), "\a");
}

TEST(delete_key)
{
	setup();
	feed("abc\x1b[D\x1b[D\x1b[3~");
	EXPECT_STREQ(str(le.line), "ac");
	EXPECT_EQ_INT(le.cursor, 1);
	clear_out();
	feed("\x1b[3~");
	EXPECT_STREQ(str(le.line), "a");
	feed("\x1b[3~");   /* at end: nothing to delete */
	EXPECT_STREQ(str(le.line), "a");
	EXPECT(out_has("\a"));
}

TEST(ctrl_d_deletes_at_cursor)
{
	setup();
	feed("abc\x01\x04");
	EXPECT_STREQ(str(le.line), "bc");
	EXPECT_EQ_INT(le.cursor, 0);
}

TEST(left_right_arrows)
{
	setup();
	feed("ab");
	clear_out();
	feed("\x1b[D");
	EXPECT_EQ_INT(le.cursor, 1);
	EXPECT_STREQ(str(out), "\x1b[D");
	feed("\x1b[D\x1b[D\x1b[D");    /* clamps at 0 */
	EXPECT_EQ_INT(le.cursor, 0);
	clear_out();
	feed("\x1b[C");
	EXPECT_EQ_INT(le.cursor, 1);
	EXPECT_STREQ(str(out), "\x1b[C");
	feed("\x1b[C\x1b[C\x1b[C");    /* clamps at len */
	EXPECT_EQ_INT(le.cursor, 2);
	feed("\x1bOD");                 /* SS3 form of Left */
	EXPECT_EQ_INT(le.cursor, 1);
	feed("\x1b[1;5D");              /* Ctrl-Left: modifier ignored */
	EXPECT_EQ_INT(le.cursor, 0);
	EXPECT_STREQ(str(le.line), "ab");
}

TEST(ctrl_b_ctrl_f)
{
	setup();
	feed("ab\x02");
	EXPECT_EQ_INT(le.cursor, 1);
	feed("\x06");
	EXPECT_EQ_INT(le.cursor, 2);
}

static void check_home(const char *key)
{
	setup();
	feed("abc");
	feed(key);
	EXPECT_EQ_INT(le.cursor, 0);
	feed("X");
	EXPECT_STREQ(str(le.line), "Xabc");
}

TEST(home_keys)
{
	check_home("\x1b[H");
	check_home("\x1b[1~");
	check_home("\x1b[7~");
	check_home("\x1bOH");
	check_home("\x01");
	EXPECT(out_has("\x1b[3D"));    /* redraw walks back from the end */
}

static void check_end(const char *key)
{
	setup();
	feed("abc\x01");
	feed(key);
	EXPECT_EQ_INT(le.cursor, 3);
	feed("X");
	EXPECT_STREQ(str(le.line), "abcX");
}

TEST(end_keys)
{
	check_end("\x1b[F");
	check_end("\x1b[4~");
	check_end("\x1b[8~");
	check_end("\x1bOF");
	check_end("\x05");
}

TEST(ctrl_u_kills_line)
{
	setup();
	feed("hello world\x1b[D\x1b[D\x15");
	EXPECT_STREQ(str(le.line), "");
	EXPECT_EQ_INT(le.len, 0);
	EXPECT_EQ_INT(le.cursor, 0);
	EXPECT(out_has("\r" PROMPT "\x1b[K"));
}

TEST(ctrl_k_kills_to_end)
{
	setup();
	feed("hello world\x01\x1b[C\x1b[C\x0b");
	EXPECT_STREQ(str(le.line), "he");
	EXPECT_EQ_INT(le.cursor, 2);
	EXPECT_EQ_INT(le.len, 2);
}

TEST(ctrl_w_kills_word)
{
	setup();
	feed("mem  cpus  \x17");
	EXPECT_STREQ(str(le.line), "mem  ");
	feed("\x17");
	EXPECT_STREQ(str(le.line), "");
	feed("\x17");                   /* nothing left: no change */
	EXPECT_STREQ(str(le.line), "");
}

TEST(ctrl_w_mid_line)
{
	setup();
	feed("one two three\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x17");
	EXPECT_STREQ(str(le.line), "one  three");  /* "two" only */
	EXPECT_EQ_INT(le.cursor, 4);
}

TEST(ctrl_c_abandons)
{
	setup();
	feed("half typed\x03");
	EXPECT_EQ_INT(last_result, LINEEDIT_CANCEL);
	EXPECT_STREQ(str(le.line), "");
	EXPECT(out_has("^C\r\n"));
	EXPECT_EQ_INT(lineedit_history_count(&le), 0);
}

TEST(ctrl_l_redraws)
{
	setup();
	feed("ab");
	clear_out();
	feed("\x0c");
	EXPECT_STREQ(str(out), "\x1b[H\x1b[2J\r" PROMPT "ab\x1b[K");
	EXPECT_STREQ(str(le.line), "ab");
}

TEST(enter_cr)
{
	setup();
	feed("ls\r");
	EXPECT_EQ_INT(last_result, LINEEDIT_DONE);
	EXPECT_STREQ(str(le.line), "ls");
	EXPECT(out_has("ls\r\n"));
}

TEST(enter_lf)
{
	setup();
	feed("ls\n");
	EXPECT_EQ_INT(last_result, LINEEDIT_DONE);
	EXPECT_STREQ(str(le.line), "ls");
}

TEST(crlf_is_one_enter)
{
	setup();
	feed("a\r");
	EXPECT_EQ_INT(n_done, 1);
	lineedit_start(&le);
	feed("\nb\r\n");
	EXPECT_EQ_INT(n_done, 2);
	EXPECT_STREQ(str(le.line), "b");
	lineedit_start(&le);
	feed("\r\r");                   /* two CRs are two (empty) Enters */
	EXPECT_EQ_INT(n_done, 4);
	feed("\n\n");                   /* first LF pairs with CR, second counts */
	EXPECT_EQ_INT(n_done, 5);
}

TEST(lfcr_is_two_enters)
{
	setup();
	feed("\n\r");
	EXPECT_EQ_INT(n_done, 2);
}

TEST(history_up_down)
{
	setup();
	enter("first");
	enter("second");
	feed("par");
	feed("\x1b[A");
	EXPECT_STREQ(str(le.line), "second");
	EXPECT_EQ_INT(le.cursor, 6);
	feed("\x1b[A");
	EXPECT_STREQ(str(le.line), "first");
	clear_out();
	feed("\x1b[A");                 /* no older entry */
	EXPECT_STREQ(str(le.line), "first");
	EXPECT_STREQ(str(out), "\a");
	feed("\x1b[B");
	EXPECT_STREQ(str(le.line), "second");
	feed("\x1b[B");                 /* back to what was being typed */
	EXPECT_STREQ(str(le.line), "par");
	clear_out();
	feed("\x1b[B");
	EXPECT_STREQ(str(out), "\a");
	EXPECT_STREQ(str(le.line), "par");
}

TEST(history_ctrl_p_n_and_ss3)
{
	setup();
	enter("x1");
	feed("\x10");
	EXPECT_STREQ(str(le.line), "x1");
	feed("\x0e");
	EXPECT_STREQ(str(le.line), "");
	feed("\x1bOA");
	EXPECT_STREQ(str(le.line), "x1");
}

TEST(history_redraw_output)
{
	setup();
	enter("abc");
	clear_out();
	feed("\x1b[A");
	EXPECT_STREQ(str(out), "\r" PROMPT "abc\x1b[K");
}

TEST(history_no_adjacent_duplicates)
{
	setup();
	enter("mem");
	enter("mem");
	enter("cpus");
	enter("mem");
	EXPECT_EQ_INT(lineedit_history_count(&le), 3);
	EXPECT_STREQ(lineedit_history_get(&le, 0), "mem");
	EXPECT_STREQ(lineedit_history_get(&le, 1), "cpus");
	EXPECT_STREQ(lineedit_history_get(&le, 2), "mem");
	EXPECT(lineedit_history_get(&le, 3) == NULL);
}

TEST(history_skips_blank)
{
	setup();
	enter("");
	enter("   ");
	EXPECT_EQ_INT(lineedit_history_count(&le), 0);
	clear_out();
	feed("\x1b[A");
	EXPECT_STREQ(str(out), "\a");
}

TEST(history_keeps_last_32)
{
	setup();
	char buf[16];
	for (int i = 0; i < 40; i++) {
		snprintf(buf, sizeof(buf), "cmd%d", i);
		enter(buf);
	}
	EXPECT_EQ_INT(lineedit_history_count(&le), LINEEDIT_HISTORY);
	EXPECT_STREQ(lineedit_history_get(&le, 0), "cmd39");
	EXPECT_STREQ(lineedit_history_get(&le, 31), "cmd8");
	for (int i = 0; i < 40; i++)
		feed("\x1b[A");
	EXPECT_STREQ(str(le.line), "cmd8");
}

TEST(history_edit_does_not_change_entry)
{
	setup();
	enter("abc");
	feed("\x1b[A\x7fZ");
	EXPECT_STREQ(str(le.line), "abZ");
	feed("\r");
	lineedit_start(&le);
	EXPECT_STREQ(lineedit_history_get(&le, 0), "abZ");
	EXPECT_STREQ(lineedit_history_get(&le, 1), "abc");
}

TEST(history_browse_resets_on_new_line)
{
	setup();
	enter("a");
	enter("b");
	feed("\x1b[A\x1b[A\x03");      /* browse, then abandon */
	lineedit_start(&le);
	feed("\x1b[A");
	EXPECT_STREQ(str(le.line), "b");     /* starts again from the newest */
}

TEST(overflow_bells)
{
	setup();
	char big[LINEEDIT_MAX + 1];
	memset(big, 'a', LINEEDIT_MAX);
	big[LINEEDIT_MAX] = 0;
	feed(big);
	EXPECT_EQ_INT(le.len, LINEEDIT_MAX);
	clear_out();
	feed("b");
	EXPECT_EQ_INT(le.len, LINEEDIT_MAX);
	EXPECT_STREQ(str(out), "\a");
	EXPECT(strchr(le.line, 'b') == NULL);
	feed("\x01");                   /* inserting in the middle is capped too */
	clear_out();
	feed("c");
	EXPECT_STREQ(str(out), "\a");
	EXPECT_EQ_INT(le.line[0], 'a');
	/* The largest redraw fits in the output buffer (feedn checks each). */
	feed("\x1b[C");
	clear_out();
	feed("\x0c");
	EXPECT(out_len > strlen(PROMPT) + LINEEDIT_MAX && out_len <= LINEEDIT_OUT_MAX);
	/* A cut line is not run: Enter refuses it and says why. */
	clear_out();
	feed("\r");
	EXPECT_EQ_INT(last_result, LINEEDIT_CANCEL);
	EXPECT(out_has("line too long: more than 255 characters; not run"));
	EXPECT_EQ_INT(lineedit_history_count(&le), 0);
	/* A line that only reached the limit runs. */
	lineedit_start(&le);
	feed(big);
	feed("\r");
	EXPECT_EQ_INT(last_result, LINEEDIT_DONE);
	EXPECT_EQ_INT(strlen(le.line), LINEEDIT_MAX);
	/* Ctrl-U after an overflow starts over: the new line runs. */
	lineedit_start(&le);
	feed(big);
	feed("bb\x15ls\r");
	EXPECT_EQ_INT(last_result, LINEEDIT_DONE);
	EXPECT_STREQ(str(le.line), "ls");
}

/* ---- a small terminal: what the user sees ----
 *
 * ROWS x COLS cells with xterm's wrapping (writing in the last column
 * leaves the cursor there with a wrap pending; the next printable wraps,
 * a cursor move cancels it), CR, LF, BS, BEL, ESC [ n A/B/C/D, ESC [ K,
 * ESC [ J, ESC [ H, ESC [ 2 J, ESC 7 / 8.  Enough to check that the
 * editor's redraws leave the screen showing exactly the prompt and line. */
#define T_ROWS 12
#define T_COLS 20
static char term[T_ROWS][T_COLS];
static int trow, tcol, tsave_r, tsave_c;
static bool tpending;

static void term_reset(void)
{
	memset(term, ' ', sizeof(term));
	trow = tcol = 0;
	tpending = false;
}

static void term_feed(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c == 0x1b && i + 1 < n && (p[i + 1] == '7' || p[i + 1] == '8')) {
			if (p[i + 1] == '7')
				tsave_r = trow, tsave_c = tcol;
			else
				trow = tsave_r, tcol = tsave_c;
			i++;
			continue;
		}
		if (c == 0x1b && i + 1 < n && p[i + 1] == '[') {
			unsigned a = 0, b = 0, *cur = &a;
			bool any = false;
			i += 2;
			while (i < n && ((p[i] >= '0' && p[i] <= '9') || p[i] == ';')) {
				if (p[i] == ';')
					cur = &b;
				else
					*cur = *cur * 10 + (unsigned)(p[i] - '0'), any = true;
				i++;
			}
			unsigned k = any && a ? a : 1;
			tpending = false;
			switch (p[i]) {
			case 'A': trow = trow - (int)k < 0 ? 0 : trow - (int)k; break;
			case 'B': trow = trow + (int)k >= T_ROWS ? T_ROWS - 1 : trow + (int)k; break;
			case 'C': tcol = tcol + (int)k >= T_COLS ? T_COLS - 1 : tcol + (int)k; break;
			case 'D': tcol = tcol - (int)k < 0 ? 0 : tcol - (int)k; break;
			case 'K': memset(&term[trow][tcol], ' ', (size_t)(T_COLS - tcol)); break;
			case 'J':
				if (a == 2) {
					memset(term, ' ', sizeof(term));
					break;
				}
				memset(&term[trow][tcol], ' ', (size_t)(T_COLS - tcol));
				for (int r = trow + 1; r < T_ROWS; r++)
					memset(term[r], ' ', T_COLS);
				break;
			case 'H':
				trow = any ? (int)(a ? a : 1) - 1 : 0;
				tcol = any ? (int)(b ? b : 1) - 1 : 0;
				trow = trow >= T_ROWS ? T_ROWS - 1 : trow;
				tcol = tcol >= T_COLS ? T_COLS - 1 : tcol;
				break;
			default: break;      /* ESC [ 6 n and others: no effect */
			}
			continue;
		}
		if (c == '\r') {
			tcol = 0, tpending = false;
		} else if (c == '\n') {
			tpending = false;
			if (++trow == T_ROWS) {        /* scroll */
				memmove(term[0], term[1], sizeof(term) - T_COLS);
				memset(term[T_ROWS - 1], ' ', T_COLS);
				trow = T_ROWS - 1;
			}
		} else if (c == '\b') {
			tpending = false;
			if (tcol > 0)
				tcol--;
		} else if (c >= 0x20 && c < 0x7f) {
			if (tpending) {
				tpending = false;
				tcol = 0;
				if (++trow == T_ROWS) {
					memmove(term[0], term[1], sizeof(term) - T_COLS);
					memset(term[T_ROWS - 1], ' ', T_COLS);
					trow = T_ROWS - 1;
				}
			}
			term[trow][tcol] = c;
			if (tcol == T_COLS - 1)
				tpending = true;
			else
				tcol++;
		}
	}
}

/* Feed keys to the editor and its output to the terminal. */
static void tfeed(const char *keys)
{
	for (size_t i = 0; keys[i]; i++) {
		last_result = lineedit_feed(&le, (uint8_t)keys[i]);
		term_feed(le.out, le.out_len);
	}
}

/* The screen from row `top` holds exactly `want` (wrapped at T_COLS) and
 * blanks after it, and the cursor sits on the character after the
 * editor's cursor. */
static bool screen_shows(int top, const char *want, size_t cursor_off)
{
	size_t n = strlen(want);
	for (int r = top; r < T_ROWS; r++)
		for (int c = 0; c < T_COLS; c++) {
			size_t off = (size_t)(r - top) * T_COLS + (size_t)c;
			char e = off < n ? want[off] : ' ';
			if (term[r][c] != e) {
				fprintf(stderr, "# screen row %d col %d: '%c' want '%c'\n", r, c, term[r][c], e);
				return false;
			}
		}
	int want_r = top + (int)(cursor_off / T_COLS), want_c = (int)(cursor_off % T_COLS);
	if (trow != want_r || tcol != want_c) {
		fprintf(stderr, "# cursor at %d,%d want %d,%d\n", trow, tcol, want_r, want_c);
		return false;
	}
	return true;
}

static void tsetup(void)
{
	term_reset();
	lineedit_init(&le, PROMPT);
	/* The terminal answers the size query: 12 rows, 20 columns. */
	tfeed("\x1b[12;20R");
	EXPECT_EQ_INT(le.cols, T_COLS);
	lineedit_start(&le);
	term_feed(le.out, le.out_len);
}

TEST(size_query_and_answer)
{
	lineedit_init(&le, PROMPT);
	EXPECT_EQ_INT(le.cols, LINEEDIT_COLS_DEFAULT);
	le.out_len = 0;
	lineedit_query_size(&le);
	EXPECT(le.out_len > 0 && memchr(le.out, 0x1b, le.out_len) != NULL && strstr(le.out, "[6n") != NULL);
	lineedit_start(&le);
	feed("\x1b[40;132R");                  /* the answer: consumed, not typed */
	EXPECT_EQ_INT(le.cols, 132);
	EXPECT_STREQ(str(le.line), "");
	feed("\x1b[1;3R");                     /* implausible widths are ignored */
	EXPECT_EQ_INT(le.cols, 132);
}

TEST(wrapped_typing_and_editing_on_screen)
{
	tsetup();
	const char *text = "echo 0123456789abcdefghijklmnopqrstuvwxyz";   /* 3 + 41 = 2.2 rows */
	tfeed(text);
	char want[128];
	snprintf(want, sizeof(want), PROMPT "%s", text);
	EXPECT(screen_shows(0, want, strlen(want)));
	/* Insert in the middle of the first row, then backspace across a
	 * row boundary, then Home/End. */
	tfeed("\x01\x1b[C\x1b[CX");
	snprintf(want, sizeof(want), PROMPT "ecXho 0123456789abcdefghijklmnopqrstuvwxyz");
	EXPECT(screen_shows(0, want, strlen(PROMPT) + 3));
	tfeed("\x05");
	EXPECT(screen_shows(0, want, strlen(want)));
	for (int i = 0; i < 8; i++)
		tfeed("\x7f");
	snprintf(want, sizeof(want), PROMPT "ecXho 0123456789abcdefghijklmnopqr");
	EXPECT(screen_shows(0, want, strlen(want)));
	/* Left across the row boundary and back. */
	for (int i = 0; i < 20; i++)
		tfeed("\x1b[D");
	EXPECT(screen_shows(0, want, strlen(want) - 20));
	for (int i = 0; i < 20; i++)
		tfeed("\x1b[C");
	EXPECT(screen_shows(0, want, strlen(want)));
}

TEST(wrapped_recall_then_kill_leaves_nothing)
{
	tsetup();
	tfeed("echo a very long line that wraps over three rows\r");
	EXPECT_EQ_INT(last_result, LINEEDIT_DONE);
	/* The shell prints a newline's worth of output, then a new prompt. */
	term_reset();
	lineedit_start(&le);
	term_feed(le.out, le.out_len);
	tfeed("\x1b[A");                        /* recall: 3 rows */
	EXPECT(screen_shows(0, PROMPT "echo a very long line that wraps over three rows",
			    strlen(PROMPT "echo a very long line that wraps over three rows")));
	tfeed("\x15");                          /* Ctrl-U */
	EXPECT_STREQ(str(le.line), "");
	EXPECT(screen_shows(0, PROMPT, strlen(PROMPT)));
	/* Down to the (empty) new line from a recalled long one, cursor mid-line. */
	tfeed("\x1b[A\x01\x1b[B");
	EXPECT(screen_shows(0, PROMPT, strlen(PROMPT)));
	/* Ctrl-K from the middle of a wrapped line clears the rows below. */
	tfeed("\x1b[A\x01\x1b[C\x1b[C\x0b");
	EXPECT_STREQ(str(le.line), "ec");
	EXPECT(screen_shows(0, PROMPT "ec", strlen(PROMPT "ec")));
	/* Enter from mid-line of a wrapped line lands below all of it. */
	tfeed("\x15" "echo 0123456789abcdefghij\x01\r");
	EXPECT_EQ_INT(trow, 2);
	EXPECT_EQ_INT(tcol, 0);
}

TEST(ctrl_and_alt_arrows_move_by_words)
{
	static const char *const left[] = { "\x1b[1;5D", "\x1b[5D", "\x1bOd", "\x1b[1;3D", "\x1b" "b" };
	static const char *const right[] = { "\x1b[1;5C", "\x1b[5C", "\x1bOc", "\x1b[1;3C", "\x1b" "f" };
	for (unsigned k = 0; k < 5; k++) {
		setup();
		feed("blk read  nvme0n1");
		feed(left[k]);
		EXPECT_EQ_INT(le.cursor, 10);
		feed(left[k]);
		EXPECT_EQ_INT(le.cursor, 4);
		feed(left[k]);
		EXPECT_EQ_INT(le.cursor, 0);
		feed(right[k]);
		EXPECT_EQ_INT(le.cursor, 3);
		feed(right[k]);
		EXPECT_EQ_INT(le.cursor, 8);
		/* Nothing of the sequence was typed into the line. */
		EXPECT_STREQ(str(le.line), "blk read  nvme0n1");
	}
	/* On a wrapped line the word moves cross rows on screen too. */
	tsetup();
	tfeed("echo alpha beta gamma delta epsilon");
	tfeed("\x1b[1;5D\x1b[1;5D\x1b[1;5D");
	EXPECT(screen_shows(0, PROMPT "echo alpha beta gamma delta epsilon", strlen(PROMPT "echo alpha beta ")));
}

TEST(unknown_and_stray_input_ignored)
{
	setup();
	feed("a\x1b[Z");                /* Shift-Tab */
	feed("\x1bx");                  /* Alt-x */
	feed("\t\x80\xff\x07");         /* tab, high bytes, bell */
	feed("\x1b[99~");
	EXPECT_STREQ(str(le.line), "a");
	feed("b");
	EXPECT_STREQ(str(le.line), "ab");
	EXPECT_EQ_INT(n_done, 0);
}

TEST(esc_then_enter)
{
	setup();
	feed("a\x1b\r");                /* ESC swallows the next byte */
	EXPECT_EQ_INT(n_done, 0);
	feed("\n");                     /* that CR was no Enter: LF counts */
	EXPECT_EQ_INT(n_done, 1);
	EXPECT_STREQ(str(le.line), "a");
}

TEST(esc_esc_sequence)
{
	setup();
	feed("ab\x1b\x1b[D");           /* Alt-Left on some terminals */
	EXPECT_STREQ(str(le.line), "ab");
	EXPECT_EQ_INT(le.cursor, 1);
}

TEST(start_resets_line_keeps_history)
{
	setup();
	enter("keep");
	feed("junk");
	lineedit_start(&le);
	EXPECT_STREQ(str(le.line), "");
	EXPECT_EQ_INT(le.cursor, 0);
	EXPECT_EQ_INT(lineedit_history_count(&le), 1);
}

TEST_MAIN()
