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
	/* The largest redraw fits in the output buffer. */
	feed("\x1b[C");
	clear_out();
	feed("\x0c");
	EXPECT_EQ_INT(out_len, 7 + 1 + strlen(PROMPT) + LINEEDIT_MAX + 3 + 6);
	feed("\r");
	EXPECT_EQ_INT(strlen(le.line), LINEEDIT_MAX);
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
