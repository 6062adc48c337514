/*
 * Kernel page tables.
 *
 * vmm_init() replaces the loader's tables with the kernel's own (layout in
 * kernel/mm.h).  All page-table pages come from the page allocator and are
 * reached through the direct map, which both the loader's and our tables
 * provide, so editing tables never needs a temporary mapping.
 * vmm_lock serialises every table change; leaf entries are only ever added
 * to non-present slots (except vmm_identity_unmap), so no TLB shootdown is
 * needed for the other CPUs.
 */
#include "kernel/mm.h"
#include "kernel/kernel.h"
#include "kernel/cpu.h"
#include "kernel/errno.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/panic.h"
#include "kernel/sync.h"
#include <stdbool.h>

#define MMIO_BASE  0xffffc00000000000ULL
#define MMIO_LIMIT (MMIO_BASE + (64ULL << 30))
#define MMIO_CACHE 64
#define LARGE_PAGE (2ULL << 20)

extern char __text_start[], __rodata_start[], __data_start[], __kernel_end[];

static spinlock_t vmm_lock = SPINLOCK_INIT("vmm");
static uint64_t vmm_pml4;         /* physical; 0 until vmm_init */
static uint64_t vmm_nx;           /* PTE_NX when the CPU supports it */
static uint64_t vmm_mmio_next = MMIO_BASE;
static struct { uint64_t phys, size; uint64_t va, flags; } vmm_mmio_cache[MMIO_CACHE];
static unsigned vmm_mmio_ncache, vmm_mmio_victim;

static inline uint64_t *vmm_table(uint64_t phys)
{
	return PHYS_TO_VIRT(phys & PTE_ADDR);
}

static inline unsigned vmm_index(uint64_t va, unsigned level)
{
	return (va >> (12 + 9 * (level - 1))) & 511;
}

/* Entry for va at `level` (1 = PT, 2 = PD, 3 = PDPT), creating the tables
 * above it; NULL when out of memory or a large page is in the way. */
static uint64_t *vmm_slot(uint64_t pml4, uint64_t va, unsigned level)
{
	uint64_t *t = vmm_table(pml4);
	for (unsigned l = 4; l > level; l--) {
		uint64_t *e = &t[vmm_index(va, l)];
		if (!(*e & PTE_P)) {
			uint64_t p = pmm_alloc_pages(0);
			if (!p)
				return NULL;
			memset(PHYS_TO_VIRT(p), 0, PAGE_SIZE);
			/* Upper levels allow everything; leaves restrict. */
			*e = p | PTE_P | PTE_W;
		} else if (*e & PTE_PS) {
			return NULL;
		}
		t = vmm_table(*e);
	}
	return &t[vmm_index(va, level)];
}

static int vmm_map_range(uint64_t pml4, uint64_t va, uint64_t phys, uint64_t size,
			 uint64_t flags, bool large)
{
	uint64_t end = va + size;
	while (va < end) {
		bool big = large && !(va & (LARGE_PAGE - 1)) && !(phys & (LARGE_PAGE - 1)) &&
			   end - va >= LARGE_PAGE;
		uint64_t *e = vmm_slot(pml4, va, big ? 2 : 1);
		if (!e)
			return -ENOMEM;
		*e = phys | flags | PTE_P | (big ? PTE_PS : 0);
		va += big ? LARGE_PAGE : PAGE_SIZE;
		phys += big ? LARGE_PAGE : PAGE_SIZE;
	}
	return 0;
}

static void vmm_enable_nx(void)
{
	uint32_t a, b, c, d;
	cpuid(0x80000000, 0, &a, &b, &c, &d);
	if (a < 0x80000001) {
		kprintf("vmm: CPU has no extended CPUID leaves, running without NX\n");
		return;
	}
	cpuid(0x80000001, 0, &a, &b, &c, &d);
	if (!(d & (1u << 20))) {
		kprintf("vmm: CPU lacks NX, data pages stay executable\n");
		return;
	}
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | (1ULL << 11));
	vmm_nx = PTE_NX;
}

static bool vmm_direct_type(uint32_t type)
{
	return type == BOOT_MEM_USABLE || type == BOOT_MEM_ACPI_RECLAIM ||
	       type == BOOT_MEM_ACPI_NVS || type == BOOT_MEM_LOADER || type == BOOT_MEM_RUNTIME;
}

/* Direct map: every RAM-like range, plus RESERVED ranges that sit below the
 * top of RAM (firmware-owned RAM, not device holes).  Adjacent ranges are
 * merged first so 2 MiB pages span type boundaries. */
static void vmm_map_direct(uint64_t pml4, const struct boot_info *bi)
{
	const struct boot_mem_range *mm = bi->mem_map;
	uint64_t ram_top = 0, run_s = 0, run_e = 0, mapped = 0;

	for (uint64_t i = 0; i < bi->mem_map_count; i++)
		if (vmm_direct_type(mm[i].type))
			ram_top = MAX(ram_top, mm[i].base_phys + mm[i].pages * PAGE_SIZE);
	for (uint64_t i = 0; i <= bi->mem_map_count; i++) {
		uint64_t s = 0, e = 0;
		if (i < bi->mem_map_count) {
			s = mm[i].base_phys;
			e = s + mm[i].pages * PAGE_SIZE;
			bool want = vmm_direct_type(mm[i].type) ||
				    (mm[i].type == BOOT_MEM_RESERVED && e <= ram_top);
			if (!want || s >= e)
				continue;
			if (run_e == s && run_e) {
				run_e = e;
				continue;
			}
		}
		if (run_e > run_s) {
			if (vmm_map_range(pml4, (uint64_t)PHYS_TO_VIRT(run_s), run_s, run_e - run_s,
					  PTE_W | vmm_nx, true))
				panic("vmm: out of memory building the direct map");
			mapped += run_e - run_s;
		}
		run_s = s;
		run_e = e;
	}
	kprintf("vmm: direct map %llu MiB at %#llx\n", (unsigned long long)(mapped >> 20),
		(unsigned long long)BOOT_HHDM_BASE);
}

/* boot_info and what it points to must survive the switch; if the loader
 * put any of it outside the ranges above, map those pages explicitly. */
static void vmm_keep(uint64_t pml4, const void *p, uint64_t size, const char *what)
{
	uint64_t va = ALIGN_DOWN((uint64_t)p, PAGE_SIZE);
	uint64_t end = ALIGN_UP((uint64_t)p + size, PAGE_SIZE);

	if (!p || (uint64_t)p < BOOT_HHDM_BASE || (uint64_t)p >= MMIO_BASE)
		return;
	for (; va < end; va += PAGE_SIZE) {
		uint64_t *e = vmm_slot(pml4, va, 1);
		if (e && !(*e & PTE_P)) {
			*e = VIRT_TO_PHYS(va) | PTE_P | PTE_W | vmm_nx;
			kprintf("vmm: %s at %#llx was outside the memory map's RAM, mapped\n",
				what, (unsigned long long)va);
		}
	}
}

static void vmm_map_kernel(uint64_t pml4, const struct boot_info *bi, char *s, char *e,
			   uint64_t flags)
{
	uint64_t va = (uint64_t)s;
	if (vmm_map_range(pml4, va, bi->kernel_phys + (va - bi->kernel_virt),
			  ALIGN_UP((uint64_t)e, PAGE_SIZE) - va, flags, false))
		panic("vmm: out of memory mapping the kernel image");
}

void vmm_init(const struct boot_info *bi)
{
	vmm_enable_nx();
	vmm_pat_init_cpu();
	uint64_t pml4 = pmm_alloc_pages(0);
	if (!pml4)
		panic("vmm: no page for the top-level page table");
	memset(PHYS_TO_VIRT(pml4), 0, PAGE_SIZE);

	vmm_map_direct(pml4, bi);
	vmm_keep(pml4, bi, sizeof(*bi), "boot info");
	vmm_keep(pml4, bi->mem_map, bi->mem_map_count * sizeof(*bi->mem_map), "memory map");
	vmm_keep(pml4, bi->kernel_elf, bi->kernel_elf_size, "kernel ELF copy");

	vmm_map_kernel(pml4, bi, __text_start, __rodata_start, 0);
	vmm_map_kernel(pml4, bi, __rodata_start, __data_start, vmm_nx);
	vmm_map_kernel(pml4, bi, __data_start, __kernel_end, PTE_W | vmm_nx);

	/* CR0.WP: read-only pages stay read-only for the kernel too. */
	uint64_t cr0;
	__asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
	__asm__ volatile("mov %0, %%cr0" :: "r"(cr0 | (1ULL << 16)));
	write_cr3(pml4);
	vmm_pml4 = pml4;
	kprintf("vmm: kernel page tables active (text RX, rodata R, data RW%s)\n",
		vmm_nx ? ", NX" : ", no NX");
}

uint64_t vmm_kernel_cr3(void)
{
	return vmm_pml4;
}

uint64_t vmm_query_pte(const void *va, unsigned *level)
{
	uint64_t v = (uint64_t)va;
	uint64_t *t = vmm_table(read_cr3());

	for (unsigned l = 4; l >= 1; l--) {
		uint64_t e = t[vmm_index(v, l)];
		if (!(e & PTE_P))
			return 0;
		if (l == 1 || (l <= 3 && (e & PTE_PS))) {
			if (level)
				*level = l;
			return e;
		}
		t = vmm_table(e);
	}
	return 0;
}

uint64_t vmm_virt_to_phys(const void *va)
{
	unsigned level;
	uint64_t e = vmm_query_pte(va, &level);
	if (!e)
		return 0;
	uint64_t span = 1ULL << (12 + 9 * (level - 1));
	uint64_t base = (e & PTE_ADDR) & ~(span - 1);
	return base | ((uint64_t)va & (span - 1));
}

/*
 * Page attribute table.  A 4 KiB PTE picks its memory type from PAT entry
 * (PAT << 2 | PCD << 1 | PWT).  The power-on table gives entries 0-3 WB, WT,
 * UC-, UC and repeats them in 4-7; we change only entry 4 to write-combining,
 * which no mapping used before, so no cache flush is needed.  Every CPU must
 * hold the same table: vmm_init programs the boot CPU, smp.c each AP before
 * it can print (and so touch the framebuffer's WC mapping).
 */
#define PAT_ENTRY_WC 4
#define PAT_TYPE_WC  0x01ULL

void vmm_pat_init_cpu(void)
{
	uint64_t pat = rdmsr(MSR_PAT);
	pat &= ~(0xffULL << (8 * PAT_ENTRY_WC));
	wrmsr(MSR_PAT, pat | PAT_TYPE_WC << (8 * PAT_ENTRY_WC));
}

static void *vmm_map_io(uint64_t phys, size_t size, uint64_t flags)
{
	void *ret = NULL;

	if (size == 0 || !vmm_pml4)
		return NULL;
	uint64_t f = spin_lock_irqsave(&vmm_lock);
	for (unsigned i = 0; i < vmm_mmio_ncache; i++) {
		if (vmm_mmio_cache[i].flags == flags && phys >= vmm_mmio_cache[i].phys &&
		    phys + size <= vmm_mmio_cache[i].phys + vmm_mmio_cache[i].size) {
			ret = (void *)(vmm_mmio_cache[i].va + (phys - vmm_mmio_cache[i].phys));
			goto out;
		}
	}
	uint64_t base = ALIGN_DOWN(phys, PAGE_SIZE);
	uint64_t len = ALIGN_UP(phys + size, PAGE_SIZE) - base;
	uint64_t va = vmm_mmio_next;
	/* One unmapped guard page after each window catches overruns. */
	if (va + len + PAGE_SIZE > MMIO_LIMIT) {
		kprintf("vmm: MMIO window exhausted mapping %#llx (+%zu)\n",
			(unsigned long long)phys, size);
		goto out;
	}
	if (vmm_map_range(vmm_pml4, va, base, len, flags, false)) {
		kprintf("vmm: out of memory for page tables mapping MMIO %#llx\n",
			(unsigned long long)phys);
		goto out;
	}
	vmm_mmio_next = va + len + PAGE_SIZE;
	unsigned slot = vmm_mmio_ncache < MMIO_CACHE ? vmm_mmio_ncache++
						     : vmm_mmio_victim++ % MMIO_CACHE;
	vmm_mmio_cache[slot].phys = base;
	vmm_mmio_cache[slot].size = len;
	vmm_mmio_cache[slot].va = va;
	vmm_mmio_cache[slot].flags = flags;
	ret = (void *)(va + (phys - base));
out:
	spin_unlock_irqrestore(&vmm_lock, f);
	return ret;
}

void *vmm_map_mmio(uint64_t phys, size_t size)
{
	return vmm_map_io(phys, size, PTE_W | PTE_PCD | PTE_PWT | vmm_nx);
}

void *vmm_map_wc(uint64_t phys, size_t size)
{
	return vmm_map_io(phys, size, PTE_W | PTE_PAT4K | vmm_nx);
}

int vmm_identity_map(uint64_t phys, size_t size)
{
	uint64_t base = ALIGN_DOWN(phys, PAGE_SIZE);
	uint64_t len = ALIGN_UP(phys + size, PAGE_SIZE) - base;

	if (!vmm_pml4 || size == 0 || base + len > (1ULL << 32))
		return -EINVAL;
	uint64_t f = spin_lock_irqsave(&vmm_lock);
	int err = vmm_map_range(vmm_pml4, base, base, len, PTE_W, false);
	spin_unlock_irqrestore(&vmm_lock, f);
	return err;
}

void vmm_identity_unmap(uint64_t phys, size_t size)
{
	uint64_t base = ALIGN_DOWN(phys, PAGE_SIZE);
	uint64_t end = ALIGN_UP(phys + size, PAGE_SIZE);

	if (!vmm_pml4)
		return;
	uint64_t f = spin_lock_irqsave(&vmm_lock);
	for (uint64_t va = base; va < end; va += PAGE_SIZE) {
		uint64_t *t = vmm_table(vmm_pml4);
		uint64_t *e = NULL;
		for (unsigned l = 4; l >= 1; l--) {
			e = &t[vmm_index(va, l)];
			if (!(*e & PTE_P) || (l > 1 && (*e & PTE_PS))) {
				e = NULL;
				break;
			}
			if (l > 1)
				t = vmm_table(*e);
		}
		if (e) {
			*e = 0;
			invlpg(va);
		}
	}
	spin_unlock_irqrestore(&vmm_lock, f);
}
