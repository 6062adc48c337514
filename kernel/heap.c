/*
 * Kernel heap: size classes 16..2048 bytes carved from 16 KiB slabs, and
 * larger (or strongly aligned) requests straight from the page allocator.
 *
 * Every heap block (slab or large allocation) is a naturally aligned block
 * of at least 16 KiB whose first bytes are a header with a magic value; so
 * kfree() finds the header of any heap pointer at ALIGN_DOWN(p, 16 KiB)
 * and can check that p really is an object it handed out.
 * Slabs keep an allocation bitmap: freeing an object whose bit is clear is
 * a double free.  Freed objects are filled with HEAP_POISON and checked on
 * reuse, which catches writes after free.
 */
#include "kernel/mm.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/panic.h"
#include "kernel/sync.h"
#include <stdbool.h>

#define HEAP_BLOCK (16 * 1024)
#define HEAP_BLOCK_ORDER 2
#define HEAP_SLAB_MAGIC  0x42414c5350414548ULL  /* "HEAPSLAB" */
#define HEAP_LARGE_MAGIC 0x4752414c50414548ULL  /* "HEAPLARG" */
#define HEAP_NCLASS 8
#define HEAP_SLAB_HDR 256
#define HEAP_LARGE_HDR 64
#define HEAP_MAX_ALIGN 8192

struct heap_slab {
	uint64_t magic;
	struct heap_slab *next, *prev;   /* class list */
	void *free;                      /* free object list */
	uint32_t size, nfree, nobj, cls;
	uint64_t bitmap[((HEAP_BLOCK - HEAP_SLAB_HDR) / 16 + 63) / 64];  /* 1 = allocated */
};
_Static_assert(sizeof(struct heap_slab) <= HEAP_SLAB_HDR, "slab header too big");

struct heap_large {
	uint64_t magic;
	uint32_t order, offset;   /* pages order; user pointer offset */
	size_t size;              /* requested bytes */
};

static spinlock_t heap_lock = SPINLOCK_INIT("heap");
static struct heap_slab *heap_classes[HEAP_NCLASS];
static size_t heap_used;
static bool heap_ready;

void heap_init(void)
{
	heap_ready = true;
	kprintf("heap: size classes 16..2048 bytes, larger from pages\n");
}

size_t heap_used_bytes(void)
{
	return heap_used;
}

static unsigned heap_class(size_t size)
{
	unsigned c = 0;
	while ((16u << c) < size)
		c++;
	return c;
}

/* Word by word: objects are 16-byte multiples, and a byte loop here was
 * ~7 % of the guest's time receiving a file under TCG.  The first word is
 * the free list's link. */
int heap_poison_first_bad(const uint8_t *obj, uint32_t size)
{
	const uint64_t poison = 0x0101010101010101ULL * HEAP_POISON;
	for (uint32_t w = sizeof(void *); w < size; w += 8) {
		uint64_t v;
		memcpy(&v, obj + w, 8);
		if (v == poison)
			continue;
		for (uint32_t i = w; i < w + 8; i++)
			if (obj[i] != HEAP_POISON)
				return (int)i;
	}
	return -1;
}

static void heap_poison_check(struct heap_slab *s, uint8_t *obj)
{
	int i = heap_poison_first_bad(obj, s->size);
	if (i >= 0)
		panic("heap: free object %p (%u bytes) was written after free (byte %d is %#x)",
		      obj, s->size, i, obj[i]);
}

static struct heap_slab *heap_slab_new(unsigned cls)
{
	uint64_t phys = pmm_alloc_pages(HEAP_BLOCK_ORDER);
	if (!phys)
		return NULL;
	struct heap_slab *s = PHYS_TO_VIRT(phys);
	memset(s, 0, HEAP_SLAB_HDR);
	s->magic = HEAP_SLAB_MAGIC;
	s->size = 16u << cls;
	s->cls = cls;
	s->nobj = (HEAP_BLOCK - HEAP_SLAB_HDR) / s->size;
	s->nfree = s->nobj;
	uint8_t *base = (uint8_t *)s + HEAP_SLAB_HDR;
	memset(base, HEAP_POISON, (size_t)s->nobj * s->size);
	for (uint32_t i = s->nobj; i-- > 0;) {
		*(void **)(base + i * s->size) = s->free;
		s->free = base + i * s->size;
	}
	s->next = heap_classes[cls];
	if (s->next)
		s->next->prev = s;
	heap_classes[cls] = s;
	return s;
}

static void heap_slab_unlink(struct heap_slab *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		heap_classes[s->cls] = s->next;
	if (s->next)
		s->next->prev = s->prev;
}

static void *heap_alloc_small(unsigned cls)
{
	struct heap_slab *s = heap_classes[cls];
	while (s && s->nfree == 0)
		s = s->next;
	if (!s && !(s = heap_slab_new(cls)))
		return NULL;
	uint8_t *obj = s->free;
	heap_poison_check(s, obj);
	s->free = *(void **)obj;
	s->nfree--;
	uint32_t idx = (uint32_t)(obj - ((uint8_t *)s + HEAP_SLAB_HDR)) / s->size;
	s->bitmap[idx / 64] |= 1ULL << (idx % 64);
	heap_used += s->size;
	/* Keep slabs with room at the front so allocation stays O(1) mostly. */
	if (s->nfree == 0 && s->next) {
		heap_slab_unlink(s);
		struct heap_slab *t = heap_classes[cls];
		while (t->next)
			t = t->next;
		t->next = s;
		s->prev = t;
		s->next = NULL;
	}
	return obj;
}

static void *heap_alloc_large(size_t size, size_t align)
{
	size_t off = MAX((size_t)HEAP_LARGE_HDR, align);
	unsigned order = HEAP_BLOCK_ORDER;
	while ((PAGE_SIZE << order) < size + off)
		order++;
	uint64_t phys = pmm_alloc_pages(order);
	if (!phys)
		return NULL;
	struct heap_large *h = PHYS_TO_VIRT(phys);
	h->magic = HEAP_LARGE_MAGIC;
	h->order = order;
	h->offset = (uint32_t)off;
	h->size = size;
	heap_used += PAGE_SIZE << order;
	return (uint8_t *)h + off;
}

void *kmalloc_aligned(size_t size, size_t align)
{
	void *p = NULL;

	if (align == 0 || (align & (align - 1)) || align > HEAP_MAX_ALIGN) {
		kprintf("kmalloc: alignment %zu unsupported (power of two up to %u)\n", align,
			HEAP_MAX_ALIGN);
		return NULL;
	}
	if (align < 16)
		align = 16;
	if (size == 0)
		size = 1;
	if (!heap_ready)
		panic("kmalloc(%zu) before heap_init", size);
	if (size > (1ULL << 40))
		return NULL;
	uint64_t f = spin_lock_irqsave(&heap_lock);
	/* Power-of-two classes of at least `align` bytes are aligned to it
	 * while align <= the 256-byte slab header. */
	size_t need = MAX(size, align <= HEAP_SLAB_HDR ? align : 0);
	if (need <= 2048 && align <= HEAP_SLAB_HDR)
		p = heap_alloc_small(heap_class(need));
	else
		p = heap_alloc_large(size, align);
	spin_unlock_irqrestore(&heap_lock, f);
	return p;
}

void *kmalloc(size_t size)
{
	return kmalloc_aligned(size, 16);
}

void *kzalloc(size_t size)
{
	void *p = kmalloc(size);
	if (p)
		memset(p, 0, size);
	return p;
}

/* Header of a heap pointer, or a panic naming the pointer. */
static uint64_t *heap_header(const void *p, const char *who)
{
	uint64_t *h = (uint64_t *)ALIGN_DOWN((uint64_t)p, HEAP_BLOCK);
	if ((uint64_t)p < BOOT_HHDM_BASE || vmm_virt_to_phys(h) == 0 || ((uint64_t)p & 15))
		panic("%s: bad pointer %p (not from kmalloc)", who, p);
	if (*h == HEAP_SLAB_MAGIC) {
		struct heap_slab *s = (struct heap_slab *)h;
		uint64_t off = (uint64_t)p - (uint64_t)h;
		if (off < HEAP_SLAB_HDR || (off - HEAP_SLAB_HDR) % s->size ||
		    (off - HEAP_SLAB_HDR) / s->size >= s->nobj)
			panic("%s: bad pointer %p (not an object start in a %u-byte slab)", who, p,
			      s->size);
		return h;
	}
	if (*h == HEAP_LARGE_MAGIC) {
		struct heap_large *l = (struct heap_large *)h;
		if ((uint64_t)p != (uint64_t)h + l->offset)
			panic("%s: bad pointer %p (inside a large block)", who, p);
		return h;
	}
	panic("%s: bad pointer %p (no heap header, or block already freed)", who, p);
}

static size_t heap_usable(const void *p)
{
	uint64_t *h = heap_header(p, "krealloc");
	if (*h == HEAP_SLAB_MAGIC)
		return ((struct heap_slab *)h)->size;
	struct heap_large *l = (struct heap_large *)h;
	return (PAGE_SIZE << l->order) - l->offset;
}

void kfree(void *p)
{
	if (!p)
		return;
	uint64_t f = spin_lock_irqsave(&heap_lock);
	uint64_t *h = heap_header(p, "kfree");
	if (*h == HEAP_LARGE_MAGIC) {
		struct heap_large *l = (struct heap_large *)h;
		unsigned order = l->order;
		l->magic = 0;   /* a second kfree now finds no header */
		heap_used -= PAGE_SIZE << order;
		pmm_free_pages(VIRT_TO_PHYS(h), order);
		goto out;
	}
	struct heap_slab *s = (struct heap_slab *)h;
	uint32_t idx = (uint32_t)(((uint8_t *)p - ((uint8_t *)s + HEAP_SLAB_HDR)) / s->size);
	if (!(s->bitmap[idx / 64] & (1ULL << (idx % 64)))) {
		spin_unlock_irqrestore(&heap_lock, f);
		panic("kfree: double free of %p (%u-byte object)", p, s->size);
	}
	s->bitmap[idx / 64] &= ~(1ULL << (idx % 64));
	memset(p, HEAP_POISON, s->size);
	*(void **)p = s->free;
	s->free = p;
	s->nfree++;
	heap_used -= s->size;
	/* An empty slab goes back to the page allocator unless it is the
	 * class's only one (avoids thrashing on alloc/free pairs). */
	if (s->nfree == s->nobj && (s->prev || s->next)) {
		heap_slab_unlink(s);
		s->magic = 0;
		pmm_free_pages(VIRT_TO_PHYS(s), HEAP_BLOCK_ORDER);
	} else if (s->prev) {
		/* Move to the front: it has room now. */
		heap_slab_unlink(s);
		s->prev = NULL;
		s->next = heap_classes[s->cls];
		if (s->next)
			s->next->prev = s;
		heap_classes[s->cls] = s;
	}
out:
	spin_unlock_irqrestore(&heap_lock, f);
}

void *krealloc(void *p, size_t size)
{
	if (!p)
		return kmalloc(size);
	if (size == 0) {
		kfree(p);
		return NULL;
	}
	size_t have = heap_usable(p);
	if (size <= have)
		return p;
	void *n = kmalloc(size);
	if (!n)
		return NULL;
	memcpy(n, p, have);
	kfree(p);
	return n;
}
