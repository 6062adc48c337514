/* Host tests for the loader's page-table builder (boot/paging.c): tables
 * are built in ordinary memory with fake physical addresses and walked. */
#define TEST_SUITE "boot.paging"
#include "tests/host/test.h"
#include "boot/paging.h"

#include <stdint.h>

#define FAKE_BASE 0x40000000ULL   /* fake physical address of pool page 0 */

struct pool {
	unsigned char *mem;
	uint64_t used, pages;
};

static void *pool_page(void *ctx)
{
	struct pool *p = ctx;
	if (p->used == p->pages)
		return NULL;
	void *pg = p->mem + 4096 * p->used++;
	memset(pg, 0, 4096);
	return pg;
}
static uint64_t pool_phys(void *ctx, void *page)
{
	struct pool *p = ctx;
	return FAKE_BASE + (uint64_t)((unsigned char *)page - p->mem);
}
static void *pool_virt(void *ctx, uint64_t phys)
{
	struct pool *p = ctx;
	return p->mem + (phys - FAKE_BASE);
}

#define HHDM 0xffff800000000000ULL
#define KV   0xffffffff80100000ULL

static uint64_t build(struct pool *p, struct paging_alloc *a, uint64_t top, uint64_t ksize)
{
	p->pages = paging_pages_needed(top, ksize);
	p->used = 0;
	p->mem = aligned_alloc(4096, p->pages * 4096);
	*a = (struct paging_alloc){ pool_page, p, pool_phys, pool_virt };
	return paging_build(a, top, HHDM, KV, 0x7000000, ksize);
}

TEST(direct_map_identity_and_hhdm)
{
	struct pool p;
	struct paging_alloc a;
	uint64_t cr3 = build(&p, &a, 6ULL << 30, 3 << 20);
	EXPECT(cr3 == FAKE_BASE);
	EXPECT(paging_translate(&a, cr3, 0x1234) == 0x1234);
	EXPECT(paging_translate(&a, cr3, HHDM + 0x1234) == 0x1234);
	EXPECT(paging_translate(&a, cr3, (5ULL << 30) + 0x2345) == (5ULL << 30) + 0x2345);
	EXPECT(paging_translate(&a, cr3, HHDM + (6ULL << 30) - 1) == (6ULL << 30) - 1);
	EXPECT(paging_translate(&a, cr3, 6ULL << 30) == UINT64_MAX);
	EXPECT(paging_translate(&a, cr3, HHDM + (6ULL << 30)) == UINT64_MAX);
	free(p.mem);
}

TEST(kernel_span_mapped_page_by_page)
{
	struct pool p;
	struct paging_alloc a;
	uint64_t cr3 = build(&p, &a, 4ULL << 30, 3 << 20);
	EXPECT(paging_translate(&a, cr3, KV) == 0x7000000);
	EXPECT(paging_translate(&a, cr3, KV + 0x123456) == 0x7123456);
	EXPECT(paging_translate(&a, cr3, KV + (3 << 20) - 1) == 0x7000000 + (3 << 20) - 1);
	EXPECT(paging_translate(&a, cr3, KV + (3 << 20)) == UINT64_MAX);
	EXPECT(paging_translate(&a, cr3, KV - 1) == UINT64_MAX);
	EXPECT(p.used <= p.pages);
	free(p.mem);
}

TEST(pool_too_small_fails_cleanly)
{
	struct pool p = { aligned_alloc(4096, 3 * 4096), 0, 3 };
	struct paging_alloc a = { pool_page, &p, pool_phys, pool_virt };
	EXPECT(paging_build(&a, 8ULL << 30, HHDM, KV, 0x7000000, 1 << 20) == 0);
	EXPECT_EQ_INT(p.used, 3);
	free(p.mem);
}

TEST(kernel_inside_direct_map_rejected)
{
	struct pool p;
	struct paging_alloc a;
	p.pages = 64;
	p.used = 0;
	p.mem = aligned_alloc(4096, p.pages * 4096);
	a = (struct paging_alloc){ pool_page, &p, pool_phys, pool_virt };
	EXPECT(paging_build(&a, 4ULL << 30, HHDM, HHDM + 0x100000, 0, 4096) == 0);
	free(p.mem);
}

TEST_MAIN()
