/*
 * Kernel ELF checks and loading.  Portable: the loader calls it on the file
 * read from the ESP, the host tests call it on crafted images.
 *
 * elf_inspect() accepts only what the kernel build produces: ELF64,
 * little-endian, x86-64, ET_EXEC, PT_LOAD segments inside the file, all in
 * the higher half, spanning at most ELF_MAX_SPAN, and an entry point inside
 * an executable segment.  elf_load() then copies the segments into one
 * buffer laid out like the span (bss and gaps zeroed).
 */
#ifndef BOOT_ELF_H
#define BOOT_ELF_H

#include <stddef.h>
#include <stdint.h>

#define ELF_MAX_SPAN   (64ULL << 20)
#define ELF_MIN_VADDR  0xffffffff80000000ULL
#define ELF_MAX_LOADS  16

struct elf_segment {
	uint64_t vaddr, memsz, offset, filesz;
	uint32_t flags;               /* PF_X 1, PF_W 2, PF_R 4 */
};

struct elf_image {
	uint64_t entry;
	uint64_t span_lo, span_hi;    /* page aligned */
	unsigned nsegs;
	struct elf_segment segs[ELF_MAX_LOADS];
};

/* 0, or -1 with a one-line reason in err. */
int elf_inspect(const void *file, size_t size, struct elf_image *img, char *err, size_t errlen);
/* dest holds span_hi - span_lo bytes. */
void elf_load(const void *file, const struct elf_image *img, void *dest);

#endif
