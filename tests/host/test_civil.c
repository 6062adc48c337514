/* Calendar arithmetic of the wall clock (kernel/civil.c and
 * boot_days_from_civil in boot/bootinfo.h), against the host's libc. */
#define TEST_SUITE "civil"
#include "tests/host/test.h"
#include "kernel/civil.h"
#include "boot/bootinfo.h"
#include <stdarg.h>
#include <time.h>

/* civil.c formats with the kernel's ksnprintf; the host's will do. */
int ksnprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

TEST(known_days)
{
	EXPECT_EQ_INT(boot_days_from_civil(1970, 1, 1), 0);
	EXPECT_EQ_INT(boot_days_from_civil(1970, 3, 1), 59);
	EXPECT_EQ_INT(boot_days_from_civil(2000, 2, 29), 11016);     /* a 400-year leap day */
	EXPECT_EQ_INT(boot_days_from_civil(2000, 3, 1), 11017);
	EXPECT_EQ_INT(boot_days_from_civil(2100, 3, 1) - boot_days_from_civil(2100, 2, 28), 1); /* no leap */
	EXPECT_EQ_INT(boot_days_from_civil(1969, 12, 31), -1);
}

/* Every day from 1970 to 2400 against gmtime(), and back. */
TEST(every_day_matches_libc)
{
	int bad = 0;
	for (int64_t d = 0; d < 157000 && bad < 5; d++) {
		time_t t = (time_t)(d * 86400);
		struct tm tm;
		gmtime_r(&t, &tm);
		int64_t y;
		unsigned m, day;
		civil_from_days(d, &y, &m, &day);
		if (y != tm.tm_year + 1900 || m != (unsigned)tm.tm_mon + 1 || day != (unsigned)tm.tm_mday ||
		    boot_days_from_civil(y, m, day) != d)
			bad++;
	}
	EXPECT_EQ_INT(bad, 0);
}

TEST(unix_ns_round_trip_and_format)
{
	struct civil_time t = { 2026, 12, 3, 8, 45, 5, 123456789 };
	int64_t ns = civil_to_unix_ns(&t);
	EXPECT_EQ_INT(ns / 1000000000, 1796287505);    /* date -u -d '2026-12-03 08:45:05' +%s */
	struct civil_time back;
	civil_from_unix_ns(ns, &back);
	EXPECT(back.year == 2026 && back.month == 12 && back.day == 3 && back.hour == 8 &&
	       back.minute == 45 && back.second == 5 && back.nsec == 123456789);
	char buf[48];
	civil_format(buf, sizeof(buf), ns);
	EXPECT(strcmp(buf, "2026-12-03 08:45:05.123 UTC") == 0);
	civil_from_unix_ns(-1, &back);                 /* one ns before the epoch */
	EXPECT(back.year == 1969 && back.month == 12 && back.day == 31 && back.second == 59 &&
	       back.nsec == 999999999);
}

TEST_MAIN()
