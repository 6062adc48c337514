#include "boot/elf.h"
#include "boot/fmt.h"

/* The ELF64 structures we read, declared here so this builds without libc. */
struct elf64_ehdr {
	unsigned char ident[16];
	uint16_t type, machine;
	uint32_t version;
	uint64_t entry, phoff, shoff;
	uint32_t flags;
	uint16_t ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};

struct elf64_phdr {
	uint32_t type, flags;
	uint64_t offset, vaddr, paddr, filesz, memsz, align;
};

#define ELF_PT_LOAD  1
#define ELF_ET_EXEC  2
#define ELF_EM_X86_64 62
#define ELF_PF_X 1

static const void *elf_at(const void *file, uint64_t off)
{
	return (const unsigned char *)file + off;
}

int elf_inspect(const void *file, size_t size, struct elf_image *img, char *err, size_t errlen)
{
	const struct elf64_ehdr *eh = file;
	uint64_t lo = UINT64_MAX, hi = 0;
	int entry_ok = 0;

	img->nsegs = 0;
	if (size < sizeof(*eh) || eh->ident[0] != 0x7f || eh->ident[1] != 'E' ||
	    eh->ident[2] != 'L' || eh->ident[3] != 'F') {
		fmt_message(err, errlen, "kernel.elf is not an ELF file");
		return -1;
	}
	if (eh->ident[4] != 2 || eh->ident[5] != 1 || eh->machine != ELF_EM_X86_64) {
		fmt_message(err, errlen, "kernel.elf is not a 64-bit little-endian x86-64 ELF");
		return -1;
	}
	if (eh->type != ELF_ET_EXEC) {
		fmt_message(err, errlen, "kernel.elf is ELF type %u, expected an executable (2)", eh->type);
		return -1;
	}
	if (eh->phentsize != sizeof(struct elf64_phdr) || eh->phnum == 0 ||
	    eh->phoff > size || (uint64_t)eh->phnum * sizeof(struct elf64_phdr) > size - eh->phoff) {
		fmt_message(err, errlen, "kernel.elf program headers are missing or outside the file");
		return -1;
	}
	for (unsigned i = 0; i < eh->phnum; i++) {
		const struct elf64_phdr *ph = elf_at(file, eh->phoff + i * sizeof(*ph));
		if (ph->type != ELF_PT_LOAD || ph->memsz == 0)
			continue;
		if (img->nsegs == ELF_MAX_LOADS) {
			fmt_message(err, errlen, "kernel.elf has more than %u loadable segments", ELF_MAX_LOADS);
			return -1;
		}
		if (ph->filesz > ph->memsz || ph->offset > size || ph->filesz > size - ph->offset) {
			fmt_message(err, errlen, "kernel.elf segment %u lies outside the file (truncated?)", i);
			return -1;
		}
		if (ph->vaddr < ELF_MIN_VADDR || ph->memsz > ELF_MAX_SPAN ||
		    ph->vaddr + ph->memsz < ph->vaddr) {
			fmt_message(err, errlen, "kernel.elf segment %u at 0x%lx is not in the higher half",
				    i, ph->vaddr);
			return -1;
		}
		img->segs[img->nsegs++] = (struct elf_segment){
			ph->vaddr, ph->memsz, ph->offset, ph->filesz, ph->flags,
		};
		if (ph->vaddr < lo)
			lo = ph->vaddr;
		if (ph->vaddr + ph->memsz > hi)
			hi = ph->vaddr + ph->memsz;
		if ((ph->flags & ELF_PF_X) && eh->entry >= ph->vaddr && eh->entry < ph->vaddr + ph->memsz)
			entry_ok = 1;
	}
	if (img->nsegs == 0) {
		fmt_message(err, errlen, "kernel.elf has no loadable segments");
		return -1;
	}
	lo &= ~0xfffULL;
	hi = (hi + 0xfff) & ~0xfffULL;
	if (hi - lo > ELF_MAX_SPAN) {
		fmt_message(err, errlen, "kernel.elf spans 0x%lx bytes, more than the 64 MiB allowed", hi - lo);
		return -1;
	}
	if (!entry_ok) {
		fmt_message(err, errlen, "kernel.elf entry point 0x%lx is not inside an executable segment",
			    eh->entry);
		return -1;
	}
	img->entry = eh->entry;
	img->span_lo = lo;
	img->span_hi = hi;
	return 0;
}

void elf_load(const void *file, const struct elf_image *img, void *dest)
{
	unsigned char *d = dest;
	uint64_t span = img->span_hi - img->span_lo;

	for (uint64_t i = 0; i < span; i++)
		d[i] = 0;
	for (unsigned s = 0; s < img->nsegs; s++) {
		const struct elf_segment *seg = &img->segs[s];
		const unsigned char *src = elf_at(file, seg->offset);
		unsigned char *dst = d + (seg->vaddr - img->span_lo);
		for (uint64_t i = 0; i < seg->filesz; i++)
			dst[i] = src[i];
	}
}
