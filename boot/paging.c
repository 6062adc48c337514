#include "boot/paging.h"

#define PTE_PRESENT  0x001ULL
#define PTE_WRITE    0x002ULL
#define PTE_LARGE    0x080ULL
#define PTE_ADDR     0x000ffffffffff000ULL
#define GIB          (1ULL << 30)
#define MIB2         (1ULL << 21)

static unsigned paging_index(uint64_t va, unsigned level) /* level 3 = PML4 */
{
	return (unsigned)(va >> (12 + 9 * level)) & 511;
}

uint64_t paging_pages_needed(uint64_t top, uint64_t kernel_size)
{
	uint64_t gib = (top + GIB - 1) / GIB;
	uint64_t pdpts = (gib + 511) / 512;
	uint64_t pts = (kernel_size + MIB2 - 1) / MIB2 + 1;
	/* PML4 + direct-map PDPTs/PDs (shared by the identity and hhdm
	 * aliases) + kernel PDPT, PD(s) and PTs. */
	return 1 + pdpts + gib + 2 + 2 + pts;
}

/* Return the next-level table under entry `e`, allocating it if empty. */
static uint64_t *paging_next(const struct paging_alloc *a, uint64_t *e)
{
	if (*e & PTE_PRESENT)
		return a->virt(a->ctx, *e & PTE_ADDR);
	uint64_t *t = a->page(a->ctx);
	if (!t)
		return 0;
	*e = a->phys(a->ctx, t) | PTE_PRESENT | PTE_WRITE;
	return t;
}

uint64_t paging_build(const struct paging_alloc *a, uint64_t top, uint64_t hhdm,
		      uint64_t kernel_virt, uint64_t kernel_phys, uint64_t kernel_size)
{
	uint64_t *pml4 = a->page(a->ctx);
	uint64_t gib = (top + GIB - 1) / GIB;

	if (!pml4)
		return 0;
	if (kernel_virt >= hhdm && kernel_virt < hhdm + gib * GIB)
		return 0;

	/* Direct map: one PD per GiB; the PDPTs are shared between the
	 * identity alias (PML4 slot 0..) and the hhdm alias. */
	for (uint64_t g = 0; g < gib; g++) {
		uint64_t va = g * GIB;
		uint64_t *pdpt = paging_next(a, &pml4[paging_index(va, 3)]);
		if (!pdpt)
			return 0;
		uint64_t *pd = paging_next(a, &pdpt[paging_index(va, 2)]);
		if (!pd)
			return 0;
		for (unsigned i = 0; i < 512; i++)
			pd[i] = (va + i * MIB2) | PTE_PRESENT | PTE_WRITE | PTE_LARGE;
	}
	for (uint64_t slot = 0; slot * (512 * GIB) < gib * GIB; slot++)
		pml4[paging_index(hhdm, 3) + slot] = pml4[slot];

	/* The kernel image, 4 KiB pages. */
	for (uint64_t off = 0; off < kernel_size; off += 4096) {
		uint64_t va = kernel_virt + off;
		uint64_t *pdpt = paging_next(a, &pml4[paging_index(va, 3)]);
		uint64_t *pd = pdpt ? paging_next(a, &pdpt[paging_index(va, 2)]) : 0;
		uint64_t *pt = pd ? paging_next(a, &pd[paging_index(va, 1)]) : 0;
		if (!pt)
			return 0;
		pt[paging_index(va, 0)] = (kernel_phys + off) | PTE_PRESENT | PTE_WRITE;
	}
	return a->phys(a->ctx, pml4);
}

uint64_t paging_translate(const struct paging_alloc *a, uint64_t pml4_phys, uint64_t va)
{
	uint64_t table = pml4_phys;
	for (int level = 3; level >= 0; level--) {
		uint64_t *t = a->virt(a->ctx, table);
		uint64_t e = t[paging_index(va, (unsigned)level)];
		if (!(e & PTE_PRESENT))
			return UINT64_MAX;
		if (level == 1 && (e & PTE_LARGE))
			return (e & PTE_ADDR & ~(MIB2 - 1)) + (va & (MIB2 - 1));
		if (level == 0)
			return (e & PTE_ADDR) + (va & 0xfff);
		table = e & PTE_ADDR;
	}
	return UINT64_MAX;
}
