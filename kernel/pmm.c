/*
 * Physical page allocator: a binary buddy allocator over the USABLE ranges
 * of the loader's memory map.
 *
 * Free blocks are kept on one doubly linked list per order.  The links
 * live in a side array indexed by page frame, not inside the free pages:
 * writing into every free block at boot would touch all of RAM, which is
 * slow wherever first touch is expensive (under qemu each first write to
 * 2 MiB of guest RAM costs milliseconds when the host backs it with huge
 * pages).  8 bytes per page frame, 0.2% of RAM.  One state byte per page
 * frame records what the page heads:
 *   PMM_FREE  | order   head of a free block of 2^order pages
 *   PMM_ALLOC | order   head of an allocated block
 *   PMM_LOW   | ...     page of the low pool (see below)
 *   0                   inside a block, or not managed at all
 * Every free checks the head byte, so double frees, frees of the wrong
 * order and frees of pages never handed out are caught and panic.
 *
 * The low pool: a few pages below 1 MiB are set aside at init so the SMP
 * trampoline can always get one; the general allocator never returns
 * them.  Physical page 0 is never managed (NULL is the error value).
 */
#include "kernel/mm.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/panic.h"
#include "kernel/sync.h"
#include "kernel/kstring.h"

#define PMM_MAX_ORDER 10
#define PMM_FREE  0x80
#define PMM_ALLOC 0x40
#define PMM_LOW   0x20
#define PMM_ORDER_MASK 0x0f
#define PMM_LOW_PAGES 16
#define PMM_LOW_LIMIT_PFN 256   /* 1 MiB */

#define PMM_NIL UINT32_MAX

struct pmm_link {
	uint32_t next, prev;        /* page frames, PMM_NIL at the ends */
};

static spinlock_t pmm_lock = SPINLOCK_INIT("pmm");
static uint32_t pmm_lists[PMM_MAX_ORDER + 1];
static struct pmm_link *pmm_links;
static uint8_t *pmm_state;
static uint64_t pmm_npages;              /* frames covered by pmm_state */
static uint64_t pmm_total, pmm_free;     /* in pages */
static uint64_t pmm_low_base, pmm_low_count;   /* pfns of the low pool */
static uint8_t pmm_low_len[PMM_LOW_PAGES];     /* run length at a run head */
static uint32_t pmm_low_used;                  /* bitmap over the pool */

static void pmm_list_push(uint64_t pfn, unsigned order)
{
	struct pmm_link *n = &pmm_links[pfn];
	n->prev = PMM_NIL;
	n->next = pmm_lists[order];
	if (n->next != PMM_NIL)
		pmm_links[n->next].prev = (uint32_t)pfn;
	pmm_lists[order] = (uint32_t)pfn;
	pmm_state[pfn] = PMM_FREE | order;
}

static void pmm_list_remove(uint64_t pfn, unsigned order)
{
	struct pmm_link *n = &pmm_links[pfn];
	if (n->prev != PMM_NIL)
		pmm_links[n->prev].next = n->next;
	else
		pmm_lists[order] = n->next;
	if (n->next != PMM_NIL)
		pmm_links[n->next].prev = n->prev;
	pmm_state[pfn] = 0;
}

/* Insert a free block, merging with its buddy while the buddy is a free
 * block of the same order. */
static void pmm_insert(uint64_t pfn, unsigned order)
{
	while (order < PMM_MAX_ORDER) {
		uint64_t buddy = pfn ^ (1ULL << order);
		if (buddy >= pmm_npages || pmm_state[buddy] != (PMM_FREE | order))
			break;
		pmm_list_remove(buddy, order);
		pfn &= ~(1ULL << order);
		order++;
	}
	pmm_list_push(pfn, order);
}

static bool pmm_zero_runs;
static uint64_t pmm_first_added;

static void pmm_add_run(uint64_t s, uint64_t e)
{
	if (pmm_zero_runs) {
		memset(PHYS_TO_VIRT(s << PAGE_SHIFT), 0, (e - s) << PAGE_SHIFT);
		if (!pmm_first_added)
			pmm_first_added = s;
	}
	while (s < e) {
		unsigned o = 0;
		while (o < PMM_MAX_ORDER && !(s & ((2ULL << o) - 1)) && s + (2ULL << o) <= e)
			o++;
		pmm_insert(s, o);
		pmm_free += 1ULL << o;
		s += 1ULL << o;
	}
}

static void pmm_add_range(uint64_t s, uint64_t e, const uint64_t ex[][2], unsigned nex)
{
	uint64_t cur = s;
	for (unsigned i = 0; i < nex; i++) {   /* ex sorted, disjoint */
		if (ex[i][1] <= cur || ex[i][0] >= e)
			continue;
		if (ex[i][0] > cur)
			pmm_add_run(cur, ex[i][0]);
		cur = MAX(cur, ex[i][1]);
	}
	if (cur < e)
		pmm_add_run(cur, e);
}

/*
 * Usable ranges where firmware or loader code ran are held back, and given
 * out (zeroed) only once everything else is used up.
 *
 * Under qemu's TCG, a guest page that code was translated from keeps its
 * translated blocks until a write covers their bytes, and while any block
 * of the page survives, every store to the page takes the emulator's
 * self-modifying-code slow path.  Firmware code pages used for buffers or
 * stacks that are written only in part (a frame in a 2 KiB network slot,
 * the deep end of a stack) stay in that state for good: measured, filling
 * a virtio transmit slot on such a page cost ~150,000 cycles per KiB
 * against ~1,400 elsewhere, a 256 MiB protocol read took 3x as long, and
 * e1000e ran at 1-10% of its speed.  Zeroing the pages at boot retires the
 * blocks but costs ~0.45 s under TCG (each store before the last block
 * goes is slow); holding them back costs nothing until memory runs short
 * (about 4.6 MiB under OVMF).  On hardware none of this matters.
 */
#define PMM_HELD_MAX 64
static struct { uint64_t s, e; } pmm_held[PMM_HELD_MAX];   /* pfns */
static unsigned pmm_held_n;
static uint64_t pmm_held_pages;
static uint64_t pmm_ex[3][2];           /* never added: page 0, the low pool, the state arrays */

/* Lock held (or boot).  Returns the pages added. */
static uint64_t pmm_release_held_locked(void)
{
	uint64_t before = pmm_free;
	pmm_first_added = 0;
	pmm_zero_runs = true;
	for (unsigned i = 0; i < pmm_held_n; i++)
		pmm_add_range(pmm_held[i].s, pmm_held[i].e, pmm_ex, 3);
	pmm_zero_runs = false;
	pmm_held_n = 0;
	pmm_held_pages = 0;
	return pmm_free - before;
}

void pmm_init(const struct boot_info *bi)
{
	const struct boot_mem_range *mm = bi->mem_map;
	uint64_t top = 0, arr_pfn = 0, arr_pages;

	for (uint64_t i = 0; i < bi->mem_map_count; i++)
		if (mm[i].type == BOOT_MEM_USABLE)
			top = MAX(top, (mm[i].base_phys >> PAGE_SHIFT) + mm[i].pages);
	if (top == 0)
		panic("pmm: the memory map has no usable RAM");
	if (top >= PMM_NIL)
		panic("pmm: %llu page frames do not fit the 32-bit free-list links",
		      (unsigned long long)top);
	pmm_npages = top;
	/* State bytes, then the links (8-byte aligned); links need no
	 * zeroing: they are read only for free-block heads. */
	uint64_t state_bytes = ALIGN_UP(top, 8ULL);
	arr_pages = (state_bytes + top * sizeof(struct pmm_link) + PAGE_SIZE - 1) / PAGE_SIZE;

	/* The state array and the low pool come out of usable RAM first; the
	 * array, written on every allocation, not from a range code ran in
	 * (see pmm_held) unless nothing else is large enough. */
	for (int pass = 0; pass < 2 && !arr_pfn; pass++)
		for (uint64_t i = 0; i < bi->mem_map_count && !arr_pfn; i++) {
			uint64_t s = mm[i].base_phys >> PAGE_SHIFT, e = s + mm[i].pages;
			s = MAX(s, (uint64_t)PMM_LOW_LIMIT_PFN);
			if (mm[i].type == BOOT_MEM_USABLE && e > s && e - s >= arr_pages &&
			    (pass || !(mm[i].flags & BOOT_MEM_F_WAS_CODE)))
				arr_pfn = s;
		}
	if (!arr_pfn)
		panic("pmm: no usable range above 1 MiB holds the %llu-page state and link arrays",
		      (unsigned long long)arr_pages);
	pmm_state = PHYS_TO_VIRT(arr_pfn << PAGE_SHIFT);
	memset(pmm_state, 0, state_bytes);
	pmm_links = (struct pmm_link *)(pmm_state + state_bytes);
	for (unsigned o = 0; o <= PMM_MAX_ORDER; o++)
		pmm_lists[o] = PMM_NIL;

	for (uint64_t i = 0; i < bi->mem_map_count && !pmm_low_count; i++) {
		uint64_t s = mm[i].base_phys >> PAGE_SHIFT, e = s + mm[i].pages;
		s = MAX(s, 1ULL);
		e = MIN(e, (uint64_t)PMM_LOW_LIMIT_PFN);
		if (mm[i].type == BOOT_MEM_USABLE && e > s) {
			pmm_low_base = s;
			pmm_low_count = MIN(e - s, (uint64_t)PMM_LOW_PAGES);
		}
	}
	for (uint64_t p = 0; p < pmm_low_count; p++)
		pmm_state[pmm_low_base + p] = PMM_LOW;

	const uint64_t ex[3][2] = {
		{ 0, 1 },
		{ pmm_low_base, pmm_low_base + pmm_low_count },
		{ arr_pfn, arr_pfn + arr_pages },
	};
	memcpy(pmm_ex, ex, sizeof(ex));
	for (uint64_t i = 0; i < bi->mem_map_count; i++) {
		if (mm[i].type != BOOT_MEM_USABLE)
			continue;
		uint64_t s = mm[i].base_phys >> PAGE_SHIFT;
		pmm_total += mm[i].pages;
		if ((mm[i].flags & BOOT_MEM_F_WAS_CODE) && pmm_held_n < PMM_HELD_MAX) {
			pmm_held[pmm_held_n].s = s;
			pmm_held[pmm_held_n++].e = s + mm[i].pages;
			pmm_held_pages += mm[i].pages;
			continue;
		}
		pmm_add_range(s, s + mm[i].pages, ex, 3);
	}
	pmm_free += pmm_low_count;
	kprintf("pmm: %llu MiB usable, %llu MiB free, %llu low pages for the trampoline, "
		"%llu KiB where firmware code ran held back\n",
		(unsigned long long)(pmm_total >> 8), (unsigned long long)(pmm_free >> 8),
		(unsigned long long)pmm_low_count, (unsigned long long)pmm_held_pages * 4);
}

/* Take a free block of `order` lying entirely below limit_pfn; caller holds
 * the lock.  Larger blocks are split, the upper halves going back. */
static uint64_t pmm_take(unsigned order, uint64_t limit_pfn)
{
	for (unsigned o = order; o <= PMM_MAX_ORDER; o++) {
		for (uint32_t p = pmm_lists[o]; p != PMM_NIL; p = pmm_links[p].next) {
			uint64_t pfn = p;
			if (pfn + (1ULL << o) > limit_pfn)
				continue;
			pmm_list_remove(pfn, o);
			while (o > order) {
				o--;
				pmm_list_push(pfn + (1ULL << o), o);
			}
			pmm_state[pfn] = PMM_ALLOC | order;
			pmm_free -= 1ULL << order;
			return pfn;
		}
	}
	/* Everything else is used up: the held-back ranges, zeroed. */
	if (pmm_held_n && pmm_release_held_locked())
		return pmm_take(order, limit_pfn);
	return 0;
}

uint64_t pmm_release_held(uint64_t *first_phys)
{
	uint64_t f = spin_lock_irqsave(&pmm_lock);
	uint64_t n = pmm_release_held_locked();
	if (first_phys)
		*first_phys = pmm_first_added << PAGE_SHIFT;
	spin_unlock_irqrestore(&pmm_lock, f);
	return n;
}

uint64_t pmm_held_bytes(void)
{
	return __atomic_load_n(&pmm_held_pages, __ATOMIC_RELAXED) << PAGE_SHIFT;
}

uint64_t pmm_alloc_pages(unsigned order)
{
	if (order > PMM_MAX_ORDER)
		return 0;
	uint64_t f = spin_lock_irqsave(&pmm_lock);
	uint64_t pfn = pmm_take(order, ~0ULL);
	spin_unlock_irqrestore(&pmm_lock, f);
	return pfn << PAGE_SHIFT;
}

static uint64_t pmm_low_alloc(uint64_t limit_pfn, size_t pages)
{
	for (uint64_t i = 0; i + pages <= pmm_low_count; i++) {
		if (pmm_low_base + i + pages > limit_pfn)
			break;
		uint32_t mask = (uint32_t)(((1ULL << pages) - 1) << i);
		if (pmm_low_used & mask)
			continue;
		pmm_low_used |= mask;
		pmm_low_len[i] = (uint8_t)pages;
		pmm_state[pmm_low_base + i] = PMM_LOW | PMM_ALLOC;
		pmm_free -= pages;
		return pmm_low_base + i;
	}
	return 0;
}

uint64_t pmm_alloc_below(uint64_t limit, size_t pages)
{
	uint64_t limit_pfn = limit >> PAGE_SHIFT, pfn = 0;
	unsigned order = 0;

	if (pages == 0 || pages > (1ULL << PMM_MAX_ORDER))
		return 0;
	while ((1ULL << order) < pages)
		order++;
	uint64_t f = spin_lock_irqsave(&pmm_lock);
	if (pages <= PMM_LOW_PAGES)
		pfn = pmm_low_alloc(limit_pfn, pages);
	if (!pfn)
		pfn = pmm_take(order, limit_pfn);
	spin_unlock_irqrestore(&pmm_lock, f);
	return pfn << PAGE_SHIFT;
}

static const char *pmm_state_name(uint8_t st)
{
	if (st & PMM_FREE)
		return "already free";
	if (st & PMM_ALLOC)
		return "allocated with another order";
	if (st & PMM_LOW)
		return "a free low-pool page";
	return "not the head of an allocated block";
}

void pmm_free_pages(uint64_t phys, unsigned order)
{
	uint64_t pfn = phys >> PAGE_SHIFT;

	if ((phys & (PAGE_SIZE - 1)) || pfn == 0 || pfn >= pmm_npages || order > PMM_MAX_ORDER)
		panic("pmm: free of bad block %#llx order %u (unaligned or outside RAM)",
		      (unsigned long long)phys, order);
	uint64_t f = spin_lock_irqsave(&pmm_lock);
	uint8_t st = pmm_state[pfn];
	if (st == (PMM_LOW | PMM_ALLOC)) {
		/* Low-pool runs are freed whole, whatever order the caller
		 * rounded their length to. */
		uint64_t i = pfn - pmm_low_base, n = pmm_low_len[i];
		pmm_low_used &= ~(uint32_t)(((1ULL << n) - 1) << i);
		pmm_state[pfn] = PMM_LOW;
		pmm_free += n;
	} else if (st == (PMM_ALLOC | order)) {
		pmm_state[pfn] = 0;
		pmm_free += 1ULL << order;
		pmm_insert(pfn, order);
	} else {
		spin_unlock_irqrestore(&pmm_lock, f);
		panic("pmm: double or bad free of %#llx order %u: page is %s (state %#x)",
		      (unsigned long long)phys, order, pmm_state_name(st), st);
	}
	spin_unlock_irqrestore(&pmm_lock, f);
}

uint64_t pmm_total_bytes(void)
{
	return pmm_total * PAGE_SIZE;
}

uint64_t pmm_free_bytes(void)
{
	return pmm_free * PAGE_SIZE;
}
