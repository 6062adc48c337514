/* The wall clock: see realtime.h. */
#include "kernel/realtime.h"
#include "kernel/civil.h"
#include "kernel/acpi.h"
#include "kernel/cpu.h"
#include "kernel/errno.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/time.h"
#include "boot/bootinfo.h"

#define CMOS_INDEX 0x70
#define CMOS_DATA  0x71
#define CMOS_NMI_OFF 0x80              /* keep NMIs masked while indexing */
#define CMOS_STATUS_A 0x0a
#define CMOS_STATUS_B 0x0b
#define CMOS_A_UPDATING 0x80           /* update in progress: fields change */
#define CMOS_B_24H    0x02
#define CMOS_B_BINARY 0x04
#define CMOS_UPDATE_WAIT_US 20000      /* an update cycle takes under 2 ms */
#define FADT_CENTURY_OFFSET 108

KERNEL_ARG_WORD(realtime, "uefi|cmos", "where the wall clock comes from at boot (default: the firmware, "
		"else the CMOS clock)");

static int64_t rt_offset_ns;           /* realtime = time_ns() + offset */
static const char *rt_source = "none";
static uint64_t rt_set_at_ns;          /* time_ns() of the last realtime_set, 0 = never */
static int64_t rt_set_step_ns;         /* how far that set moved the clock */

static uint8_t cmos_read(uint8_t reg)
{
	outb(CMOS_INDEX, CMOS_NMI_OFF | reg);
	return inb(CMOS_DATA);
}

static unsigned cmos_value(uint8_t raw, bool binary)
{
	return binary ? raw : (raw & 0x0f) + (raw >> 4) * 10u;
}

/* Read the fields twice with no update in between: the clock ticks while
 * we read, and an update cycle makes them inconsistent. */
int realtime_read_cmos(int64_t *unix_ns)
{
	uint8_t a[7], b[7];
	uint64_t t0 = time_ns();
	uint8_t century_reg = 0;
	const uint8_t *fadt = acpi_find_table("FACP", 0);
	if (fadt && *(const uint32_t *)(fadt + 4) > FADT_CENTURY_OFFSET)
		century_reg = fadt[FADT_CENTURY_OFFSET];
	for (;;) {
		if (time_ns() - t0 > CMOS_UPDATE_WAIT_US * NS_PER_US * 5)
			return -ETIMEDOUT;
		while (cmos_read(CMOS_STATUS_A) & CMOS_A_UPDATING)
			if (time_ns() - t0 > CMOS_UPDATE_WAIT_US * NS_PER_US * 5)
				return -ETIMEDOUT;
		static const uint8_t regs[6] = { 0x00, 0x02, 0x04, 0x07, 0x08, 0x09 };
		for (int i = 0; i < 6; i++)
			a[i] = cmos_read(regs[i]);
		a[6] = century_reg ? cmos_read(century_reg) : 0;
		for (int i = 0; i < 6; i++)
			b[i] = cmos_read(regs[i]);
		b[6] = century_reg ? cmos_read(century_reg) : 0;
		if (!(cmos_read(CMOS_STATUS_A) & CMOS_A_UPDATING) && !__builtin_memcmp(a, b, sizeof(a)))
			break;
	}
	uint8_t sb = cmos_read(CMOS_STATUS_B);
	bool bin = sb & CMOS_B_BINARY;
	struct civil_time t = { 0 };
	t.second = cmos_value(a[0], bin);
	t.minute = cmos_value(a[1], bin);
	unsigned hour = cmos_value(a[2] & 0x7f, bin);
	if (!(sb & CMOS_B_24H)) {             /* 12-hour clock: bit 7 is PM */
		hour %= 12;
		if (a[2] & 0x80)
			hour += 12;
	}
	t.hour = hour;
	t.day = cmos_value(a[3], bin);
	t.month = cmos_value(a[4], bin);
	unsigned yy = cmos_value(a[5], bin);
	unsigned cc = century_reg ? cmos_value(a[6], bin) : 20;
	t.year = cc * 100 + yy;
	if (t.month < 1 || t.month > 12 || t.day < 1 || t.day > 31 || t.hour > 23 || t.minute > 59 ||
	    t.second > 59 || t.year < 1970)
		return -ENODEV;
	*unix_ns = civil_to_unix_ns(&t);
	return 0;
}

int realtime_init(void)
{
	const struct boot_info *bi = boot_info;
	char buf[48];
	const char *want = arg_get("realtime");
	bool cmos_only = want && !__builtin_strcmp(want, "cmos");
	if (!cmos_only && bi && bi->realtime_valid && time_tsc_hz()) {
		/* The loader read the clock before we started: carry it over
		 * the TSC ticks between its reading and our entry. */
		uint64_t ticks = time_entry_tsc() - bi->realtime_tsc;
		int64_t delta_ns = (int64_t)(ticks / time_tsc_hz() * NS_PER_S +
					     ticks % time_tsc_hz() * NS_PER_S / time_tsc_hz());
		rt_offset_ns = bi->realtime_unix_ns + delta_ns;
		rt_source = "UEFI";
	} else {
		int64_t now;
		int rc = realtime_read_cmos(&now);
		if (rc) {
			kprintf("time: no wall clock (firmware time unusable, CMOS: %s); starting at 1970-01-01\n",
				strerror(rc));
			return -ENODEV;
		}
		rt_offset_ns = now - (int64_t)time_ns();
		rt_source = "CMOS";
	}
	civil_format(buf, sizeof(buf), realtime_ns());
	kprintf("time: %s (from %s)\n", buf, rt_source);
	return 0;
}

int64_t realtime_ns(void)
{
	return (int64_t)time_ns() + __atomic_load_n(&rt_offset_ns, __ATOMIC_RELAXED);
}

const char *realtime_source(void)
{
	return rt_source;
}

void realtime_set(int64_t unix_ns, const char *source)
{
	int64_t now = (int64_t)time_ns();
	rt_set_step_ns = unix_ns - realtime_ns();
	__atomic_store_n(&rt_offset_ns, unix_ns - now, __ATOMIC_RELAXED);
	rt_set_at_ns = (uint64_t)now ? (uint64_t)now : 1;
	rt_source = source;
}

bool realtime_last_set(uint64_t *at_ns, int64_t *step_ns)
{
	*at_ns = rt_set_at_ns;
	*step_ns = rt_set_step_ns;
	return rt_set_at_ns != 0;
}
