/*
 * The loader's page tables for the jump into the kernel (see bootinfo.h for
 * the layout they give the kernel).  Portable: tables are built through an
 * allocator callback, so the host tests can build and walk them in ordinary
 * memory.  In the loader, firmware memory is identity mapped, so a table's
 * address is its physical address.
 */
#ifndef BOOT_PAGING_H
#define BOOT_PAGING_H

#include <stdint.h>

struct paging_alloc {
	/* A zeroed, 4 KiB-aligned page, or NULL when the pool is empty. */
	void *(*page)(void *ctx);
	void *ctx;
	/* Physical address of a page from page(), and back (both identity in
	 * the loader). */
	uint64_t (*phys)(void *ctx, void *page);
	void *(*virt)(void *ctx, uint64_t phys);
};

/* Pages paging_build() may ask for, for RAM up to `top` and a kernel span
 * of `kernel_size` bytes. */
uint64_t paging_pages_needed(uint64_t top, uint64_t kernel_size);

/* Map [0, top) at 0 and at hhdm with 2 MiB pages, and the kernel span
 * [kernel_virt, +kernel_size) to kernel_phys with 4 KiB pages.  top is
 * rounded up to 1 GiB.  Returns the PML4's physical address, or 0 when the
 * allocator ran dry or the kernel span overlaps the direct map. */
uint64_t paging_build(const struct paging_alloc *a, uint64_t top, uint64_t hhdm,
		      uint64_t kernel_virt, uint64_t kernel_phys, uint64_t kernel_size);

/* Walk tables built above.  Returns the physical address va maps to, or
 * UINT64_MAX when unmapped. */
uint64_t paging_translate(const struct paging_alloc *a, uint64_t pml4_phys, uint64_t va);

#endif
