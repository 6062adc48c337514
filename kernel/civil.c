/* Calendar arithmetic (civil.h): the inverse of boot_days_from_civil. */
#include "kernel/civil.h"
#include "kernel/kprintf.h"
#include "boot/bootinfo.h"

/* Shift to eras of 400 years starting 0000-03-01 (146097 days each), so
 * that the leap day is the last day of a year. */
void civil_from_days(int64_t days, int64_t *year, unsigned *month, unsigned *day)
{
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t day_of_era = z - era * 146097;                              /* 0..146096 */
	int64_t year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36524 -
			       day_of_era / 146096) / 365;                  /* 0..399 */
	int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
	unsigned mar_month = (unsigned)((5 * day_of_year + 2) / 153);      /* March = 0 */
	*day = (unsigned)(day_of_year - (153 * mar_month + 2) / 5 + 1);
	*month = mar_month < 10 ? mar_month + 3 : mar_month - 9;
	*year = year_of_era + era * 400 + (*month <= 2);
}

void civil_from_unix_ns(int64_t unix_ns, struct civil_time *out)
{
	int64_t secs = unix_ns / 1000000000, ns = unix_ns % 1000000000;
	if (ns < 0) {
		ns += 1000000000;
		secs--;
	}
	int64_t days = secs / 86400, rem = secs % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	civil_from_days(days, &out->year, &out->month, &out->day);
	out->hour = (unsigned)(rem / 3600);
	out->minute = (unsigned)(rem / 60 % 60);
	out->second = (unsigned)(rem % 60);
	out->nsec = (unsigned)ns;
}

int64_t civil_to_unix_ns(const struct civil_time *t)
{
	int64_t secs = boot_days_from_civil(t->year, t->month, t->day) * 86400 + t->hour * 3600 +
		       t->minute * 60 + t->second;
	return secs * 1000000000 + t->nsec;
}

int civil_format(char *buf, size_t size, int64_t unix_ns)
{
	struct civil_time t;
	civil_from_unix_ns(unix_ns, &t);
	return ksnprintf(buf, size, "%04lld-%02u-%02u %02u:%02u:%02u.%03u UTC", (long long)t.year, t.month,
			 t.day, t.hour, t.minute, t.second, t.nsec / 1000000);
}
