/*
 * The wall clock (kernel/realtime.c).  realtime_init(), after time_init(),
 * takes the UTC time the loader read from the firmware just before it
 * jumped (boot_info), or else reads the CMOS real-time clock, and from then
 * on keeps it as an offset from the monotonic time_ns().  Nothing else
 * moves it except realtime_set() (network time, later).
 */
#ifndef KERNEL_REALTIME_H
#define KERNEL_REALTIME_H

#include <stdbool.h>
#include <stdint.h>

/* 0, or -ENODEV when neither the firmware nor the CMOS gave a valid time
 * (the clock then starts at 1970-01-01 and says so). */
int realtime_init(void);
/* UTC nanoseconds since 1970-01-01. */
int64_t realtime_ns(void);
/* "UEFI", "CMOS", "set" or "none". */
const char *realtime_source(void);
void realtime_set(int64_t unix_ns, const char *source);
/* When the clock was last set (time_ns()) and by how much it moved; false
 * when it never was. */
bool realtime_last_set(uint64_t *at_ns, int64_t *step_ns);
/* The CMOS clock now, as UTC ns (it is kept in UTC by qemu and by the
 * usual appliance setup), or -ENODEV / -ETIMEDOUT. */
int realtime_read_cmos(int64_t *unix_ns);

#endif
