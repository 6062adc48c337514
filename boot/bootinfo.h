/*
 * The contract between the UEFI loader and the kernel.
 *
 * The loader calls the kernel's ELF entry point as
 *     void kernel_entry(struct boot_info *bi)      (System V ABI, bi in %rdi)
 * with interrupts disabled, boot services exited, a 64 KiB stack and CR3
 * pointing at page tables that map:
 *   - every kernel PT_LOAD segment at its linked virtual address
 *     (the whole image span is one physically contiguous allocation);
 *   - [0, max(top of RAM, 4 GiB)) identity-mapped and again at BOOT_HHDM_BASE
 *     (the "direct map"), writable, 2 MiB pages.
 * Every pointer inside boot_info is a direct-map virtual address, except the
 * fields named *_phys.  The kernel is expected to build its own page tables
 * early and must not rely on the identity map after that.
 *
 * Versioning: the kernel refuses a boot_info whose magic differs or whose
 * version is older than BOOT_INFO_VERSION; fields are only ever appended.
 */
#ifndef BOOT_BOOTINFO_H
#define BOOT_BOOTINFO_H

#include <stdint.h>

#define BOOT_INFO_MAGIC   0x4f464e49544f4f42ULL /* "BOOTINFO" */
#define BOOT_INFO_VERSION 2
#define BOOT_HHDM_BASE    0xffff800000000000ULL

enum boot_mem_type {
	BOOT_MEM_USABLE = 1,    /* free for the kernel */
	BOOT_MEM_RESERVED,      /* firmware, holes, anything unknown */
	BOOT_MEM_ACPI_RECLAIM,  /* ACPI tables: usable once parsed */
	BOOT_MEM_ACPI_NVS,
	BOOT_MEM_MMIO,
	BOOT_MEM_LOADER,        /* kernel image, boot info, stack, page tables */
	BOOT_MEM_BAD,
	BOOT_MEM_RUNTIME,       /* UEFI runtime services code/data */
};

struct boot_mem_range {
	uint64_t base_phys;
	uint64_t pages;         /* 4 KiB pages */
	uint32_t type;          /* enum boot_mem_type */
	uint32_t flags;         /* BOOT_MEM_F_* */
};
/* A usable range where firmware or loader code ran (EfiBootServicesCode,
 * EfiLoaderCode): the kernel zeroes it once before handing it out
 * (kernel/pmm.c says why). */
#define BOOT_MEM_F_WAS_CODE 1u

enum boot_net_mode {
	BOOT_NET_NONE = 0,
	BOOT_NET_DHCP,
	BOOT_NET_STATIC,
};

/* An IPv4 address and UDP/TCP port from config.txt ("10.0.2.2:123"). */
struct boot_endpoint {
	uint8_t  ip[4];
	uint16_t port;
};
#define BOOT_NTP_MAX 2

/* Parsed, validated /appliance/config.txt (defaults where a key is absent).
 * With net = dhcp, ip/netmask/gateway (optional, ip and netmask together) are
 * the fallback used when no DHCP answer arrives in time. */
struct boot_config {
	uint32_t net_mode;      /* enum boot_net_mode */
	uint8_t  ip[4], netmask[4], gateway[4];
	uint32_t console_baud;  /* default 115200 */
	char     disks[128];    /* comma-separated device names, "all" by default */
	char     token[128];    /* access token for the file protocol, may be "" */
	char     cmdline[256];  /* kernel arguments, space separated */
	char     hostname[64];  /* mDNS/DHCP host name, "" = derive from the MAC */
	struct boot_endpoint ntp[BOOT_NTP_MAX]; /* SNTP servers; port 0 = unused */
	struct boot_endpoint syslog;            /* remote syslog (UDP); port 0 = none */
	char     mounts[160];   /* "all" (default), "none" or DEV[:/NAME],... */
	uint32_t format_blank;  /* format = blank: make a filesystem on blank disks */
	char     exports[160];  /* "all" (default), "none" or NAME[:ro][:anon],... (mount names) */
};

struct boot_framebuffer {
	uint64_t base_phys;     /* 0 when there is no framebuffer */
	uint32_t width, height;
	uint32_t pitch;         /* bytes per scan line */
	uint32_t bpp;
	uint32_t red_mask, green_mask, blue_mask;
	uint32_t reserved;
};

struct boot_info {
	uint64_t magic;
	uint32_t version;
	uint32_t size;                  /* sizeof(struct boot_info) as built */

	struct boot_mem_range *mem_map; /* sorted by base, non-overlapping */
	uint64_t mem_map_count;

	uint64_t rsdp_phys;             /* ACPI 2.0+ RSDP, or 1.0 if no 2.0 */
	uint64_t hhdm_base;             /* == BOOT_HHDM_BASE */

	uint64_t kernel_phys;           /* physical base of the image span */
	uint64_t kernel_virt;           /* lowest linked address of the span */
	uint64_t kernel_size;
	const void *kernel_elf;         /* the whole ELF file, for symbols */
	uint64_t kernel_elf_size;

	uint64_t loader_tsc;            /* TSC when the loader started */

	struct boot_framebuffer fb;
	struct boot_config config;

	/* Version 2.  Wall-clock time from the firmware (UEFI GetTime) just
	 * before boot services were exited, as UTC nanoseconds since 1970,
	 * and the TSC at that moment; realtime_valid is 0 when GetTime
	 * failed or returned a date outside 1970..2399. */
	int64_t  realtime_unix_ns;
	uint64_t realtime_tsc;
	uint32_t realtime_valid;
	uint32_t reserved2;
};

/* Days from 1970-01-01 to year-month-day of the proleptic Gregorian
 * calendar (month 1..12, day 1..31), for the loader's firmware time and
 * the kernel's CMOS clock.  Counted in 400-year eras of 146097 days from
 * 1 March of year 0, so that February, with its leap day, ends each year. */
static inline int64_t boot_days_from_civil(int64_t year, unsigned month, unsigned day)
{
	int64_t y = month <= 2 ? year - 1 : year;           /* years start in March */
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t year_of_era = y - era * 400;                 /* 0..399 */
	unsigned mar_month = month > 2 ? month - 3 : month + 9;   /* March = 0 */
	int64_t day_of_year = (153 * mar_month + 2) / 5 + day - 1;
	int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
	return era * 146097 + day_of_era - 719468;          /* 719468: 0000-03-01 to 1970-01-01 */
}

#endif
