/*
 * Calendar arithmetic for the wall clock (kernel/civil.c; pure, host-tested).
 * Dates are proleptic Gregorian, times UTC; days count from 1970-01-01
 * (boot_days_from_civil in boot/bootinfo.h goes the other way).
 */
#ifndef KERNEL_CIVIL_H
#define KERNEL_CIVIL_H

#include <stddef.h>
#include <stdint.h>

struct civil_time {
	int64_t year;
	unsigned month, day;           /* 1..12, 1..31 */
	unsigned hour, minute, second; /* 0..23, 0..59, 0..59 */
	unsigned nsec;
};

void civil_from_days(int64_t days, int64_t *year, unsigned *month, unsigned *day);
void civil_from_unix_ns(int64_t unix_ns, struct civil_time *out);
int64_t civil_to_unix_ns(const struct civil_time *t);
/* "2026-12-03 08:45:05.123 UTC"; returns the length written. */
int civil_format(char *buf, size_t size, int64_t unix_ns);

#endif
