/*
 * UEFI loader: config.txt and kernel.elf from the ESP's /appliance folder,
 * the kernel's page tables and boot_info, then ExitBootServices and jump.
 *
 * Everything that can fail is done while boot services are still up, so a
 * failure can still be shown on the firmware console (console_fatal); after
 * ExitBootServices nothing allocates and nothing can fail except the
 * memory-map race, which is retried.
 */
#include <efi.h>
#include <efilib.h>

#include "boot/bootinfo.h"
#include "boot/config.h"
#include "boot/console.h"
#include "boot/elf.h"
#include "boot/paging.h"

#define LOADER_STACK_SIZE (64 * 1024)
#define LOADER_MMAP_SLACK 64        /* descriptors added by our own allocations */

static EFI_GUID loader_acpi20_guid = ACPI_20_TABLE_GUID;
static EFI_GUID loader_acpi10_guid = ACPI_TABLE_GUID;

static void *loader_alloc_pages(UINTN bytes, const char *what)
{
	EFI_PHYSICAL_ADDRESS addr = 0;
	UINTN pages = (bytes + 4095) / 4096;
	EFI_STATUS st = uefi_call_wrapper(BS->AllocatePages, 4, AllocateAnyPages, EfiLoaderData,
					  pages, &addr);
	if (EFI_ERROR(st))
		console_fatal("cannot allocate %u KiB for %s: %s", (unsigned)(pages * 4), what,
			      console_status(st));
	return (void *)(UINTN)addr;
}

/* Read a whole file from the ESP.  Returns NULL if it does not exist and
 * `optional`; an optional file may also be empty (*size_out 0); any other
 * failure is fatal. */
static void *loader_read_file(EFI_FILE_HANDLE root, CHAR16 *path, const char *name,
			      UINTN max_size, UINTN *size_out, BOOLEAN optional)
{
	EFI_FILE_HANDLE fh;
	EFI_FILE_INFO *info;
	EFI_STATUS st;
	UINTN size;
	void *buf;

	st = uefi_call_wrapper(root->Open, 5, root, &fh, path, EFI_FILE_MODE_READ, 0);
	if (st == EFI_NOT_FOUND && optional)
		return NULL;
	if (EFI_ERROR(st))
		console_fatal("cannot open %s on the EFI system partition: %s", name, console_status(st));
	info = LibFileInfo(fh);
	if (!info)
		console_fatal("cannot read the size of %s", name);
	size = info->FileSize;
	FreePool(info);
	if ((size == 0 && !optional) || size > max_size)
		console_fatal("%s is %u bytes; expected %u to %u", name, (unsigned)size, optional ? 0u : 1u,
			      (unsigned)max_size);
	buf = loader_alloc_pages(size + 1, name);
	st = size ? uefi_call_wrapper(fh->Read, 3, fh, &size, buf) : EFI_SUCCESS;
	uefi_call_wrapper(fh->Close, 1, fh);
	if (EFI_ERROR(st))
		console_fatal("cannot read %s: %s", name, console_status(st));
	((char *)buf)[size] = 0;
	*size_out = size;
	return buf;
}

static uint64_t loader_find_rsdp(void)
{
	uint64_t v1 = 0;
	for (UINTN i = 0; i < ST->NumberOfTableEntries; i++) {
		EFI_CONFIGURATION_TABLE *t = &ST->ConfigurationTable[i];
		if (CompareGuid(&t->VendorGuid, &loader_acpi20_guid) == 0)
			return (uint64_t)(UINTN)t->VendorTable;
		if (CompareGuid(&t->VendorGuid, &loader_acpi10_guid) == 0)
			v1 = (uint64_t)(UINTN)t->VendorTable;
	}
	return v1;
}

static void loader_framebuffer(struct boot_framebuffer *fb)
{
	EFI_GRAPHICS_OUTPUT_PROTOCOL *gop = NULL;
	if (EFI_ERROR(LibLocateProtocol(&GraphicsOutputProtocol, (void **)&gop)) || !gop || !gop->Mode)
		return;
	EFI_GRAPHICS_OUTPUT_MODE_INFORMATION *mi = gop->Mode->Info;
	if (mi->PixelFormat == PixelBltOnly)
		return;
	fb->base_phys = gop->Mode->FrameBufferBase;
	fb->width = mi->HorizontalResolution;
	fb->height = mi->VerticalResolution;
	fb->pitch = mi->PixelsPerScanLine * 4;
	fb->bpp = 32;
	if (mi->PixelFormat == PixelRedGreenBlueReserved8BitPerColor) {
		fb->red_mask = 0x0000ff; fb->green_mask = 0x00ff00; fb->blue_mask = 0xff0000;
	} else if (mi->PixelFormat == PixelBlueGreenRedReserved8BitPerColor) {
		fb->red_mask = 0xff0000; fb->green_mask = 0x00ff00; fb->blue_mask = 0x0000ff;
	} else {
		fb->red_mask = mi->PixelInformation.RedMask;
		fb->green_mask = mi->PixelInformation.GreenMask;
		fb->blue_mask = mi->PixelInformation.BlueMask;
	}
}

/* --- memory map ---------------------------------------------------------- */

struct loader_mmap {
	UINT8 *buf;
	UINTN cap, size, key, desc_size;
	UINT32 desc_ver;
};

static EFI_STATUS loader_get_mmap(struct loader_mmap *m)
{
	m->size = m->cap;
	return uefi_call_wrapper(BS->GetMemoryMap, 5, &m->size, (EFI_MEMORY_DESCRIPTOR *)m->buf,
				 &m->key, &m->desc_size, &m->desc_ver);
}

static void loader_mmap_alloc(struct loader_mmap *m)
{
	m->cap = 0;
	m->buf = NULL;
	if (loader_get_mmap(m) != EFI_BUFFER_TOO_SMALL)
		console_fatal("GetMemoryMap did not report its size");
	m->cap = m->size + LOADER_MMAP_SLACK * m->desc_size;
	m->buf = loader_alloc_pages(m->cap, "the memory map");
	EFI_STATUS st = loader_get_mmap(m);
	if (EFI_ERROR(st))
		console_fatal("GetMemoryMap failed: %s", console_status(st));
}

/* Highest address of RAM (not MMIO) in the map, at least 4 GiB. */
static uint64_t loader_mmap_top(const struct loader_mmap *m)
{
	uint64_t top = 4ULL << 30;
	for (UINTN off = 0; off + m->desc_size <= m->size; off += m->desc_size) {
		EFI_MEMORY_DESCRIPTOR *d = (EFI_MEMORY_DESCRIPTOR *)(m->buf + off);
		if (d->Type == EfiMemoryMappedIO || d->Type == EfiMemoryMappedIOPortSpace)
			continue;
		uint64_t end = d->PhysicalStart + d->NumberOfPages * 4096;
		if (end > top)
			top = end;
	}
	return top;
}

static uint32_t loader_mem_type(UINT32 efi_type)
{
	switch (efi_type) {
	case EfiConventionalMemory:
	case EfiBootServicesCode:
	case EfiBootServicesData:
	case EfiLoaderCode:          /* this loader: dead once the kernel runs */
		return BOOT_MEM_USABLE;
	case EfiLoaderData:          /* kernel, boot_info, tables, ELF copy */
		return BOOT_MEM_LOADER;
	case EfiACPIReclaimMemory: return BOOT_MEM_ACPI_RECLAIM;
	case EfiACPIMemoryNVS: return BOOT_MEM_ACPI_NVS;
	case EfiMemoryMappedIO:
	case EfiMemoryMappedIOPortSpace: return BOOT_MEM_MMIO;
	case EfiUnusableMemory: return BOOT_MEM_BAD;
	case EfiRuntimeServicesCode:
	case EfiRuntimeServicesData: return BOOT_MEM_RUNTIME;
	default: return BOOT_MEM_RESERVED;
	}
}

/* Convert, sort and merge the firmware map into out[]; no allocation, so it
 * is safe between the last GetMemoryMap and ExitBootServices. */
static uint64_t loader_convert_mmap(const struct loader_mmap *m, struct boot_mem_range *out,
				    uint64_t cap)
{
	uint64_t n = 0;
	for (UINTN off = 0; off + m->desc_size <= m->size && n < cap; off += m->desc_size) {
		EFI_MEMORY_DESCRIPTOR *d = (EFI_MEMORY_DESCRIPTOR *)(m->buf + off);
		BOOLEAN code = d->Type == EfiBootServicesCode || d->Type == EfiLoaderCode;
		struct boot_mem_range r = { d->PhysicalStart, d->NumberOfPages, loader_mem_type(d->Type),
					    code ? BOOT_MEM_F_WAS_CODE : 0 };
		uint64_t i = n++;
		while (i > 0 && out[i - 1].base_phys > r.base_phys) {   /* insertion sort */
			out[i] = out[i - 1];
			i--;
		}
		out[i] = r;
	}
	uint64_t merged = 0;
	for (uint64_t i = 0; i < n; i++) {
		struct boot_mem_range *prev = merged ? &out[merged - 1] : NULL;
		if (prev && prev->type == out[i].type && prev->flags == out[i].flags &&
		    prev->base_phys + prev->pages * 4096 == out[i].base_phys)
			prev->pages += out[i].pages;
		else
			out[merged++] = out[i];
	}
	return merged;
}

/* --- page-table pool ----------------------------------------------------- */

struct loader_pool {
	UINT8 *base;
	UINTN used, pages;
};

static void *loader_pool_page(void *ctx)
{
	struct loader_pool *p = ctx;
	if (p->used == p->pages)
		return NULL;
	UINT8 *page = p->base + 4096 * p->used++;
	for (UINTN i = 0; i < 4096; i++)
		page[i] = 0;
	return page;
}

static uint64_t loader_pool_phys(void *ctx, void *page) { (void)ctx; return (uint64_t)(UINTN)page; }
static void *loader_pool_virt(void *ctx, uint64_t phys) { (void)ctx; return (void *)(UINTN)phys; }

/* --- the jump ------------------------------------------------------------ */

static __attribute__((noreturn)) void loader_jump(uint64_t cr3, uint64_t stack_top, uint64_t entry,
						  struct boot_info *bi)
{
	__asm__ volatile(
		"cli\n\t"
		"mov %0, %%cr3\n\t"
		"mov %1, %%rsp\n\t"
		"xor %%ebp, %%ebp\n\t"
		"push %%rbp\n\t"        /* fake return address: stack aligned as after a call */
		"jmp *%2\n\t"
		:: "r"(cr3), "r"(stack_top), "r"(entry), "D"(bi) : "memory");
	__builtin_unreachable();
}

/* UEFI GetTime -> UTC.  A TimeZone other than EFI_UNSPECIFIED_TIMEZONE
 * (2047, local time, which is what OVMF and most boards report with an RTC
 * kept in UTC) is the offset in minutes, UTC = local - TimeZone (UEFI 2.7
 * and later). */
static void loader_realtime(struct boot_info *bi)
{
	EFI_TIME t;
	EFI_STATUS st = uefi_call_wrapper(RT->GetTime, 2, &t, NULL);
	bi->realtime_tsc = __builtin_ia32_rdtsc();
	if (EFI_ERROR(st) || t.Year < 1970 || t.Year > 2399 || t.Month < 1 || t.Month > 12 || t.Day < 1 ||
	    t.Day > 31 || t.Hour > 23 || t.Minute > 59 || t.Second > 59 || t.Nanosecond > 999999999) {
		console_print("loader: no usable time from the firmware; the kernel reads the CMOS clock\n");
		return;
	}
	int64_t secs = boot_days_from_civil(t.Year, t.Month, t.Day) * 86400 + t.Hour * 3600 + t.Minute * 60 +
		       t.Second;
	if (t.TimeZone != EFI_UNSPECIFIED_TIMEZONE && t.TimeZone >= -1440 && t.TimeZone <= 1440)
		secs -= (int64_t)t.TimeZone * 60;
	bi->realtime_unix_ns = secs * 1000000000 + t.Nanosecond;
	bi->realtime_valid = 1;
}

EFI_STATUS EFIAPI efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	EFI_LOADED_IMAGE *li;
	EFI_FILE_HANDLE root;
	struct boot_info *bi;
	struct elf_image img;
	struct loader_mmap mm;
	struct loader_pool pool;
	char err[256];
	UINTN cfg_size = 0, elf_size = 0;
	uint64_t tsc_start = __builtin_ia32_rdtsc();

	InitializeLib(image, systab);
	uefi_call_wrapper(BS->SetWatchdogTimer, 4, 0, 0, 0, NULL);
	console_init();
	console_print("loader: appliance UEFI loader\n");

	if (EFI_ERROR(uefi_call_wrapper(BS->HandleProtocol, 3, image, &LoadedImageProtocol, (void **)&li)))
		console_fatal("cannot find the loaded-image protocol");
	root = LibOpenRoot(li->DeviceHandle);
	if (!root)
		console_fatal("cannot open the EFI system partition this loader came from");

	bi = loader_alloc_pages(sizeof(*bi), "boot info");
	for (UINTN i = 0; i < sizeof(*bi); i++)
		((UINT8 *)bi)[i] = 0;
	bi->magic = BOOT_INFO_MAGIC;
	bi->version = BOOT_INFO_VERSION;
	bi->size = sizeof(*bi);
	bi->hhdm_base = BOOT_HHDM_BASE;
	bi->loader_tsc = tsc_start;

	/* 1. Configuration: absent or empty means defaults; a bad line stops
	 * here. */
	char *cfg = loader_read_file(root, L"\\appliance\\config.txt", "/appliance/config.txt",
				     CONFIG_MAX_SIZE, &cfg_size, TRUE);
	if (cfg) {
		if (config_parse(cfg, cfg_size, &bi->config, err, sizeof(err)) != 0)
			console_fatal("%s", err);
		console_print(cfg_size ? "loader: config.txt ok\n"
				       : "loader: /appliance/config.txt is empty, using defaults\n");
	} else {
		config_defaults(&bi->config);
		console_print("loader: no /appliance/config.txt, using defaults\n");
	}

	/* 2. The kernel: checked, then copied into one contiguous span. */
	void *elf = loader_read_file(root, L"\\appliance\\kernel.elf", "/appliance/kernel.elf",
				     256u << 20, &elf_size, FALSE);
	if (elf_inspect(elf, elf_size, &img, err, sizeof(err)) != 0)
		console_fatal("%s", err);
	void *kernel = loader_alloc_pages(img.span_hi - img.span_lo, "the kernel image");
	elf_load(elf, &img, kernel);
	bi->kernel_phys = (uint64_t)(UINTN)kernel;
	bi->kernel_virt = img.span_lo;
	bi->kernel_size = img.span_hi - img.span_lo;
	bi->kernel_elf = (const void *)((uint64_t)(UINTN)elf + BOOT_HHDM_BASE);
	bi->kernel_elf_size = elf_size;
	console_print("loader: kernel.elf %u KiB, entry 0x%lx\n", (unsigned)(elf_size / 1024), img.entry);

	/* 3. Firmware facts. */
	bi->rsdp_phys = loader_find_rsdp();
	if (!bi->rsdp_phys)
		console_fatal("the firmware provides no ACPI RSDP; the kernel needs ACPI");
	loader_framebuffer(&bi->fb);

	/* 4. Everything that allocates: stack, page tables, memory-map room. */
	UINT8 *stack = loader_alloc_pages(LOADER_STACK_SIZE, "the kernel stack");
	loader_mmap_alloc(&mm);
	uint64_t top = loader_mmap_top(&mm);
	pool.pages = paging_pages_needed(top, bi->kernel_size);
	pool.base = loader_alloc_pages(pool.pages * 4096, "page tables");
	pool.used = 0;
	struct paging_alloc pa = { loader_pool_page, &pool, loader_pool_phys, loader_pool_virt };
	uint64_t cr3 = paging_build(&pa, top, BOOT_HHDM_BASE, bi->kernel_virt, bi->kernel_phys,
				    bi->kernel_size);
	if (!cr3)
		console_fatal("cannot build page tables (pool of %u pages too small)", (unsigned)pool.pages);
	uint64_t range_cap = mm.cap / mm.desc_size + LOADER_MMAP_SLACK;
	struct boot_mem_range *ranges = loader_alloc_pages(range_cap * sizeof(*ranges), "boot memory map");
	console_print("loader: starting kernel\n");

	/* The wall clock, as close to the jump as the firmware allows. */
	loader_realtime(bi);

	/* 5. Exit boot services.  The map key changes whenever the firmware
	 * allocates, so fetch the map again right before exiting and retry
	 * a bounded number of times if the firmware raced us. */
	EFI_STATUS st = EFI_INVALID_PARAMETER;
	for (int attempt = 0; attempt < 8 && EFI_ERROR(st); attempt++) {
		if (EFI_ERROR(loader_get_mmap(&mm)))
			continue;
		bi->mem_map_count = loader_convert_mmap(&mm, ranges, range_cap);
		st = uefi_call_wrapper(BS->ExitBootServices, 2, image, mm.key);
	}
	if (EFI_ERROR(st))
		console_fatal("ExitBootServices failed: %s", console_status(st));
	console_after_exit();
	bi->mem_map = (struct boot_mem_range *)((uint64_t)(UINTN)ranges + BOOT_HHDM_BASE);

	loader_jump(cr3, (uint64_t)(UINTN)stack + LOADER_STACK_SIZE, img.entry,
		    (struct boot_info *)((uint64_t)(UINTN)bi + BOOT_HHDM_BASE));
}
