/* Self-tests for the page allocator, kernel page tables and heap. */
#include "kernel/selftest.h"
#include "kernel/mm.h"
#include "kernel/kstring.h"
#include "kernel/kernel.h"
#include "kernel/cpu.h"
#include "kernel/kprintf.h"

SELFTEST(mm, pmm_alloc_free)
{
	uint64_t blocks[8];
	uint64_t free0 = pmm_free_bytes(), want = 0;

	for (unsigned o = 0; o < 8; o++) {
		blocks[o] = pmm_alloc_pages(o);
		ST_EXPECT(blocks[o] != 0);
		ST_EXPECT((blocks[o] & ((PAGE_SIZE << o) - 1)) == 0);  /* naturally aligned */
		want += PAGE_SIZE << o;
		if (blocks[o])
			memset(PHYS_TO_VIRT(blocks[o]), 0x50 + o, PAGE_SIZE << o);
	}
	ST_EXPECT(pmm_free_bytes() == free0 - want);
	for (unsigned i = 0; i < 8; i++)
		for (unsigned j = i + 1; j < 8; j++)
			ST_EXPECT(blocks[i] + (PAGE_SIZE << i) <= blocks[j] ||
				  blocks[j] + (PAGE_SIZE << j) <= blocks[i]);
	for (unsigned o = 0; o < 8; o++) {
		const uint8_t *p = PHYS_TO_VIRT(blocks[o]);
		ST_EXPECT(p[0] == 0x50 + o && p[(PAGE_SIZE << o) - 1] == 0x50 + o);
		pmm_free_pages(blocks[o], o);
	}
	ST_EXPECT(pmm_free_bytes() == free0);
	ST_EXPECT(pmm_alloc_pages(40) == 0);
	ST_EXPECT(pmm_total_bytes() >= pmm_free_bytes());
}

SELFTEST(mm, pmm_many_pages)
{
	static uint64_t pages[512];
	uint64_t free0 = pmm_free_bytes();
	unsigned n = 0;
	for (; n < 512; n++) {
		pages[n] = pmm_alloc_pages(0);
		ST_EXPECT(pages[n] != 0);   /* page 0 is never handed out */
		if (!pages[n])
			break;
		*(uint64_t *)PHYS_TO_VIRT(pages[n]) = pages[n];
	}
	for (unsigned i = 0; i < n; i++)
		ST_EXPECT(*(uint64_t *)PHYS_TO_VIRT(pages[i]) == pages[i]);  /* no overlap */
	while (n > 0)
		pmm_free_pages(pages[--n], 0);
	ST_EXPECT(pmm_free_bytes() == free0);
}

SELFTEST(mm, pmm_alloc_below)
{
	uint64_t free0 = pmm_free_bytes();
	uint64_t a = pmm_alloc_below(1 << 20, 2);
	uint64_t b = pmm_alloc_below(1 << 20, 1);
	ST_EXPECT(a != 0 && a + 2 * PAGE_SIZE <= (1 << 20));
	ST_EXPECT(b != 0 && b + PAGE_SIZE <= (1 << 20));
	ST_EXPECT(b + PAGE_SIZE <= a || a + 2 * PAGE_SIZE <= b);
	ST_EXPECT(pmm_free_bytes() == free0 - 3 * PAGE_SIZE);
	uint64_t c = pmm_alloc_below(16ULL << 20, 4);
	ST_EXPECT(c != 0 && c + 4 * PAGE_SIZE <= (16ULL << 20));
	if (a)
		pmm_free_pages(a, 1);
	if (b)
		pmm_free_pages(b, 0);
	if (c)
		pmm_free_pages(c, 2);
	ST_EXPECT(pmm_free_bytes() == free0);
}

extern char __data_start[], __rodata_start[];
static volatile uint64_t mm_test_data = 1;
static const uint64_t mm_test_rodata = 2;

/* The ranges where firmware code ran are held back at boot and, given
 * out, are zeroed first (the code in them is gone). */
SELFTEST(mm, pmm_held_code_ranges_given_out_zeroed)
{
	uint64_t held = pmm_held_bytes(), first = 0;
	ST_EXPECT(held > 0);            /* UEFI always leaves boot-services code */
	uint64_t added = pmm_release_held(&first);
	ST_EXPECT(added > 0 && added * PAGE_SIZE <= held);
	ST_EXPECT(pmm_held_bytes() == 0);
	ST_EXPECT(first != 0);
	if (first) {
		const uint64_t *w = PHYS_TO_VIRT(first);
		bool zero = true;
		for (unsigned i = 0; i < PAGE_SIZE / 8; i++)
			zero &= w[i] == 0;
		ST_EXPECT(zero);
	}
	ST_EXPECT(pmm_release_held(NULL) == 0);   /* once */
}

SELFTEST(vmm, section_rights)
{
	unsigned level;
	uint64_t d = vmm_query_pte((const void *)&mm_test_data, &level);
	uint64_t r = vmm_query_pte(&mm_test_rodata, &level);
	uint64_t t = vmm_query_pte((const void *)(uintptr_t)vmm_init, &level);
	ST_EXPECT((d & PTE_P) && (d & PTE_W) && (d & PTE_NX));
	ST_EXPECT((r & PTE_P) && !(r & PTE_W) && (r & PTE_NX));
	ST_EXPECT((t & PTE_P) && !(t & PTE_W) && !(t & PTE_NX));
	ST_EXPECT(vmm_virt_to_phys((const void *)&mm_test_data) ==
		  boot_info->kernel_phys + ((uint64_t)&mm_test_data - boot_info->kernel_virt));
	/* No identity map once the kernel's tables are live. */
	ST_EXPECT(vmm_query_pte((const void *)0x200000, &level) == 0);
	ST_EXPECT((read_cr3() & PTE_ADDR) == vmm_kernel_cr3());
}

SELFTEST(vmm, direct_map)
{
	uint64_t p = pmm_alloc_pages(0);
	unsigned level = 0;
	ST_EXPECT(p != 0);
	if (!p)
		return;
	void *v = PHYS_TO_VIRT(p);
	uint64_t e = vmm_query_pte(v, &level);
	ST_EXPECT(vmm_virt_to_phys(v) == p);
	ST_EXPECT((e & PTE_W) && (e & PTE_NX) && !(e & (PTE_PCD | PTE_PWT)));
	pmm_free_pages(p, 0);
}

SELFTEST(vmm, mmio_uncached)
{
	/* The LAPIC page: present on every x86-64 machine. */
	volatile uint8_t *a = vmm_map_mmio(0xfee00020, 16);
	volatile uint8_t *b = vmm_map_mmio(0xfee00030, 4);
	unsigned level = 0;
	ST_EXPECT(a != NULL && ((uint64_t)a & 0xfff) == 0x20);
	ST_EXPECT(b == a + 0x10);            /* cached: same window */
	uint64_t e = vmm_query_pte((const void *)a, &level);
	ST_EXPECT(level == 1 && (e & PTE_PCD) && (e & PTE_PWT) && (e & PTE_NX) && (e & PTE_W));
	ST_EXPECT(vmm_virt_to_phys((const void *)a) == 0xfee00020);
	ST_EXPECT(vmm_map_mmio(0x1000, 0) == NULL);
}

/* The check that a free object was not written: every byte after the
 * free-list link, in every size class, is looked at. */
SELFTEST(heap, poison_check_sees_every_byte)
{
	static uint8_t obj[4096];
	for (uint32_t size = 16; size <= sizeof(obj); size *= 2) {
		memset(obj, HEAP_POISON, size);
		ST_EXPECT(heap_poison_first_bad(obj, size) == -1);
		for (uint32_t i = 0; i < size; i++) {
			obj[i] ^= 0x40;
			int got = heap_poison_first_bad(obj, size);
			obj[i] ^= 0x40;
			if (got != (i < sizeof(void *) ? -1 : (int)i)) {
				ST_EXPECT(got == (i < sizeof(void *) ? -1 : (int)i));
				kprintf("    size %u: byte %u changed, check says %d\n", size, i, got);
				break;
			}
		}
	}
}

SELFTEST(heap, stress)
{
	static void *ptrs[300];
	static size_t sizes[300];
	size_t base = heap_used_bytes();

	for (unsigned i = 0; i < 300; i++) {
		sizes[i] = (i * 37 + 1) % 3000 + 1;
		if (i % 50 == 7)
			sizes[i] = 20000 + i;     /* some large allocations */
		ptrs[i] = kmalloc(sizes[i]);
		ST_EXPECT(ptrs[i] != NULL && ((uint64_t)ptrs[i] & 15) == 0);
		if (ptrs[i])
			memset(ptrs[i], (int)(i & 0xff), sizes[i]);
	}
	ST_EXPECT(heap_used_bytes() > base);
	for (unsigned i = 0; i < 300; i++) {
		const uint8_t *p = ptrs[i];
		bool ok = p != NULL;
		for (size_t k = 0; ok && k < sizes[i]; k++)
			ok = p[k] == (uint8_t)i;
		ST_EXPECT(ok);
	}
	/* Free odd then even to exercise partially full slabs. */
	for (unsigned i = 1; i < 300; i += 2)
		kfree(ptrs[i]);
	for (unsigned i = 0; i < 300; i += 2)
		kfree(ptrs[i]);
	ST_EXPECT(heap_used_bytes() == base);
}

SELFTEST(heap, aligned_realloc)
{
	size_t base = heap_used_bytes();
	void *a = kmalloc_aligned(100, 64);
	void *b = kmalloc_aligned(5000, 4096);
	void *c = kmalloc_aligned(10, 256);
	ST_EXPECT(a && ((uint64_t)a & 63) == 0);
	ST_EXPECT(b && ((uint64_t)b & 4095) == 0);
	ST_EXPECT(c && ((uint64_t)c & 255) == 0);
	ST_EXPECT(kmalloc_aligned(16, 3) == NULL);
	uint8_t *z = kzalloc(700);
	bool zero = z != NULL;
	for (unsigned i = 0; zero && i < 700; i++)
		zero = z[i] == 0;
	ST_EXPECT(zero);
	char *r = kmalloc(20);
	strlcpy(r, "realloc keeps this", 20);
	r = krealloc(r, 9000);
	ST_EXPECT(r && strcmp(r, "realloc keeps this") == 0);
	kfree(r);
	kfree(z);
	kfree(a);
	kfree(b);
	kfree(c);
	ST_EXPECT(heap_used_bytes() == base);
}

SELFTEST(heap, full_slabs)
{
	/* More 16-byte objects than one slab holds: exercises slab growth,
	 * the whole allocation bitmap and slab release. */
	static uint64_t *objs[2100];
	size_t base = heap_used_bytes();
	bool ok = true;

	for (unsigned i = 0; i < 2100; i++) {
		objs[i] = kmalloc(16);
		ok = ok && objs[i] != NULL;
		if (objs[i])
			objs[i][0] = i, objs[i][1] = ~(uint64_t)i;
	}
	ST_EXPECT(ok);
	ST_EXPECT(heap_used_bytes() == base + 2100 * 16);
	for (unsigned i = 0; i < 2100; i++)
		ok = ok && objs[i] && objs[i][0] == i && objs[i][1] == ~(uint64_t)i;
	ST_EXPECT(ok);
	for (unsigned i = 0; i < 2100; i++)
		kfree(objs[i]);
	ST_EXPECT(heap_used_bytes() == base);
}
