/*
 * Memory: physical pages, kernel page tables, kernel heap.
 *
 * Call order at boot: pmm_init(bi) -> vmm_init(bi) -> heap_init().
 * After vmm_init the kernel runs on its own page tables:
 *   - kernel text read-only + executable, rodata read-only + NX, data/bss
 *     writable + NX (sections from linker.ld symbols);
 *   - all RAM at PHYS_TO_VIRT(phys), writable, NX, write-back cached;
 *   - no identity map (low 1 MiB is mapped only while APs start, see smp.c);
 *   - device memory only through vmm_map_mmio(): uncached, NX (framebuffers
 *     through vmm_map_wc(): write-combining).
 */
#ifndef KERNEL_MM_H
#define KERNEL_MM_H

#include <stdint.h>
#include <stddef.h>
#include "boot/bootinfo.h"

#define PAGE_SIZE 4096ULL
#define PAGE_SHIFT 12
#define PHYS_TO_VIRT(p) ((void *)((uint64_t)(p) + BOOT_HHDM_BASE))
#define VIRT_TO_PHYS(v) ((uint64_t)(v) - BOOT_HHDM_BASE) /* direct map only */

/* Physical page allocator (kernel/pmm.c).  Thread and IRQ safe. */
void pmm_init(const struct boot_info *bi);
/* 2^order contiguous pages, naturally aligned; 0 when out of memory.
 * The pages are not zeroed. */
uint64_t pmm_alloc_pages(unsigned order);
void pmm_free_pages(uint64_t phys, unsigned order);
/* Contiguous pages below `limit` (e.g. 1 MiB for the SMP trampoline). */
uint64_t pmm_alloc_below(uint64_t limit, size_t pages);
uint64_t pmm_total_bytes(void);
uint64_t pmm_free_bytes(void);
/* RAM where firmware code ran, held back until the rest is used up
 * (kernel/pmm.c says why); pmm_release_held gives it out now, zeroed, and
 * returns the pages added and where the first of them is (self-tests). */
uint64_t pmm_held_bytes(void);
uint64_t pmm_release_held(uint64_t *first_phys);

/* Kernel page tables (kernel/vmm.c). */
void vmm_init(const struct boot_info *bi);
/* Map [phys, phys+size) uncached (PCD|PWT), NX, writable; returns the
 * virtual address or NULL.  Repeated calls for the same range are cheap. */
void *vmm_map_mmio(uint64_t phys, size_t size);
/* Map [phys, phys+size) write-combining (PAT entry 4), NX, writable: for
 * framebuffers, where stores are gathered into bursts; reads are uncached.
 * Needs vmm_pat_init_cpu() on every CPU that touches it. */
void *vmm_map_wc(uint64_t phys, size_t size);
/* Program this CPU's page attribute table (entry 4 = write-combining). */
void vmm_pat_init_cpu(void);
/* Identity-map [phys, phys+size) executable (for the AP trampoline) and
 * remove it again. */
int vmm_identity_map(uint64_t phys, size_t size);
void vmm_identity_unmap(uint64_t phys, size_t size);
/* Physical address of a mapped kernel virtual address, or 0 if unmapped. */
uint64_t vmm_virt_to_phys(const void *va);
uint64_t vmm_kernel_cr3(void);
/* Page-table entry bits, and the leaf entry mapping va in the current
 * tables (level 1 = 4 KiB, 2 = 2 MiB, 3 = 1 GiB), 0 if unmapped.  Walking
 * never faults, so it is safe on garbage addresses (backtraces, tests). */
#define PTE_P   (1ULL << 0)
#define PTE_W   (1ULL << 1)
#define PTE_PWT (1ULL << 3)
#define PTE_PCD (1ULL << 4)
#define PTE_PS  (1ULL << 7)
#define PTE_PAT4K (1ULL << 7)   /* in a 4 KiB PTE the same bit selects PAT entries 4-7 */
#define PTE_NX  (1ULL << 63)
#define PTE_ADDR 0x000ffffffffff000ULL
uint64_t vmm_query_pte(const void *va, unsigned *level);

/* Kernel heap (kernel/heap.c).  Thread safe, not for IRQ context. */
void heap_init(void);
void *kmalloc(size_t size);              /* 16-byte aligned */
void *kzalloc(size_t size);
/* align: a power of two up to 8 KiB (use pmm_alloc_pages beyond). */
void *kmalloc_aligned(size_t size, size_t align);
void *krealloc(void *p, size_t size);
void kfree(void *p);
size_t heap_used_bytes(void);
/* The heap's use-after-free check of a free object of size bytes (a
 * multiple of 16): the first byte after the free-list link that is not the
 * poison, or -1 (exposed for its self-test). */
#define HEAP_POISON 0xdf
int heap_poison_first_bad(const uint8_t *obj, uint32_t size);

#endif
