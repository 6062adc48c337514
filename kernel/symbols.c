/*
 * Kernel symbols and backtraces.
 *
 * symbols_init() reads .symtab/.strtab of the kernel ELF file that the
 * loader keeps in memory (boot_info->kernel_elf) and keeps code symbols
 * sorted by address in a static table: it runs before the heap exists.
 * Names point into the ELF copy, which lives in loader memory that is never
 * handed to the page allocator and stays in the direct map.
 */
#include "kernel/trap.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/mm.h"
#include <stdbool.h>

#define SYMBOLS_MAX 8192
#define BACKTRACE_DEPTH 32

struct elf64_ehdr {
	uint8_t ident[16];
	uint16_t type, machine;
	uint32_t version;
	uint64_t entry, phoff, shoff;
	uint32_t flags;
	uint16_t ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};

struct elf64_shdr {
	uint32_t name, type;
	uint64_t flags, addr, offset, size;
	uint32_t link, info;
	uint64_t addralign, entsize;
};

struct elf64_sym {
	uint32_t name;
	uint8_t info, other;
	uint16_t shndx;
	uint64_t value, size;
};

#define SHT_SYMTAB 2
#define STT_NOTYPE 0
#define STT_FUNC 2

struct symbol {
	uint64_t addr;
	uint64_t size;      /* 0 for assembly labels: extends to the next one */
	const char *name;
};

extern char __text_start[], __text_end[], __kernel_start[], __kernel_end[];

static struct symbol symbols[SYMBOLS_MAX];
static unsigned symbols_n;

unsigned symbols_count(void)
{
	return symbols_n;
}

static void symbols_sift(unsigned root, unsigned n)
{
	for (;;) {
		unsigned c = 2 * root + 1;
		if (c >= n)
			return;
		if (c + 1 < n && symbols[c + 1].addr > symbols[c].addr)
			c++;
		if (symbols[root].addr >= symbols[c].addr)
			return;
		struct symbol t = symbols[root];
		symbols[root] = symbols[c];
		symbols[c] = t;
		root = c;
	}
}

/* Heapsort: O(n log n) with no allocation, fine for a few thousand. */
static void symbols_sort(void)
{
	unsigned n = symbols_n;
	for (unsigned i = n / 2; i-- > 0;)
		symbols_sift(i, n);
	while (n > 1) {
		struct symbol t = symbols[0];
		symbols[0] = symbols[n - 1];
		symbols[n - 1] = t;
		symbols_sift(0, --n);
	}
}

void symbols_init(const struct boot_info *bi)
{
	const uint8_t *elf = bi->kernel_elf;
	const struct elf64_ehdr *eh = (const void *)elf;
	uint64_t fsize = bi->kernel_elf_size;
	unsigned skipped = 0;

	if (!elf || fsize < sizeof(*eh) || memcmp(eh->ident, "\x7f" "ELF", 4) != 0 ||
	    eh->ident[4] != 2) {
		kprintf("symbols: no 64-bit kernel ELF image from the loader, backtraces unnamed\n");
		return;
	}
	if (eh->shentsize != sizeof(struct elf64_shdr) ||
	    eh->shoff + (uint64_t)eh->shnum * sizeof(struct elf64_shdr) > fsize) {
		kprintf("symbols: section header table out of bounds, backtraces unnamed\n");
		return;
	}
	const struct elf64_shdr *sh = (const void *)(elf + eh->shoff);
	for (unsigned i = 0; i < eh->shnum; i++) {
		if (sh[i].type != SHT_SYMTAB || sh[i].link >= eh->shnum)
			continue;
		const struct elf64_shdr *st = &sh[sh[i].link];
		if (sh[i].offset + sh[i].size > fsize || st->offset + st->size > fsize)
			continue;
		const struct elf64_sym *sym = (const void *)(elf + sh[i].offset);
		const char *str = (const char *)elf + st->offset;
		uint64_t count = sh[i].size / sizeof(*sym);
		for (uint64_t k = 0; k < count; k++) {
			unsigned type = sym[k].info & 0xf;
			uint64_t a = sym[k].value;
			/* Functions, plus assembly labels inside .text (nasm emits
			 * them untyped) so entry stubs show up in backtraces. */
			if (type != STT_FUNC &&
			    !(type == STT_NOTYPE && a >= (uint64_t)__text_start && a < (uint64_t)__text_end))
				continue;
			if (sym[k].name == 0 || sym[k].name >= st->size || a == 0)
				continue;
			if (symbols_n == SYMBOLS_MAX) {
				skipped++;
				continue;
			}
			symbols[symbols_n++] = (struct symbol){ a, sym[k].size, str + sym[k].name };
		}
		break;
	}
	symbols_sort();
	kprintf("symbols: %u code symbols loaded%s\n", symbols_n,
		skipped ? " (table full, some dropped)" : "");
}

const char *symbols_lookup(uint64_t addr, uint64_t *offset)
{
	unsigned lo = 0, hi = symbols_n;

	/* Find the last symbol with symbols[i].addr <= addr. */
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (symbols[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	const struct symbol *s = &symbols[lo - 1];
	if (s->size && addr >= s->addr + s->size)
		return NULL;
	if (!s->size && addr >= (uint64_t)__text_end)
		return NULL;
	if (offset)
		*offset = addr - s->addr;
	return s->name;
}

/* A frame is readable when its 16 bytes are mapped; checked by walking the
 * page tables, which cannot fault, so a corrupt chain ends the walk
 * instead of taking the fault path again. */
static bool backtrace_frame_ok(uint64_t rbp)
{
	if (rbp & 7)
		return false;
	if (rbp < BOOT_HHDM_BASE)   /* kernel stacks live in the higher half */
		return false;
	if (rbp >= (uint64_t)__kernel_start && rbp + 16 <= (uint64_t)__kernel_end)
		return true;
	return vmm_virt_to_phys((void *)rbp) != 0 && vmm_virt_to_phys((void *)(rbp + 15)) != 0;
}

static void backtrace_line(unsigned n, uint64_t addr)
{
	uint64_t off;
	const char *name = symbols_lookup(addr, &off);
	if (name)
		kprintf("  #%u 0x%016llx %s+0x%llx\n", n, (unsigned long long)addr, name,
			(unsigned long long)off);
	else
		kprintf("  #%u 0x%016llx ?\n", n, (unsigned long long)addr);
}

unsigned backtrace_print(uint64_t rbp, uint64_t rip)
{
	unsigned n = 0;

	backtrace_line(n++, rip);
	while (n < BACKTRACE_DEPTH && rbp && backtrace_frame_ok(rbp)) {
		const uint64_t *frame = (const uint64_t *)rbp;
		uint64_t next = frame[0], ret = frame[1];
		if (ret == 0)
			break;
		backtrace_line(n++, ret);
		/* Stacks grow down, so callers' frames are at higher addresses;
		 * anything else is a loop or garbage. */
		if (next <= rbp)
			break;
		rbp = next;
	}
	if (n == BACKTRACE_DEPTH)
		kprintf("  ... (truncated at %u frames)\n", BACKTRACE_DEPTH);
	return n;
}
