/* Host tests for the loader's kernel ELF checks (boot/elf.c). */
#define TEST_SUITE "boot.elf"
#include "tests/host/test.h"
#include "boot/elf.h"

#include <elf.h>
#include <stdint.h>

/* A minimal valid kernel: one RX segment with the entry point and one RW
 * segment with bss. */
struct fake_elf {
	Elf64_Ehdr eh;
	Elf64_Phdr ph[2];
	unsigned char text[64];
	unsigned char data[32];
};

static void fake_build(struct fake_elf *f)
{
	memset(f, 0, sizeof(*f));
	memcpy(f->eh.e_ident, ELFMAG, SELFMAG);
	f->eh.e_ident[EI_CLASS] = ELFCLASS64;
	f->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	f->eh.e_type = ET_EXEC;
	f->eh.e_machine = EM_X86_64;
	f->eh.e_entry = 0xffffffff80100010ULL;
	f->eh.e_phoff = offsetof(struct fake_elf, ph);
	f->eh.e_phentsize = sizeof(Elf64_Phdr);
	f->eh.e_phnum = 2;
	f->ph[0] = (Elf64_Phdr){ PT_LOAD, PF_R | PF_X, offsetof(struct fake_elf, text),
				 0xffffffff80100000ULL, 0, sizeof(f->text), sizeof(f->text), 4096 };
	f->ph[1] = (Elf64_Phdr){ PT_LOAD, PF_R | PF_W, offsetof(struct fake_elf, data),
				 0xffffffff80102000ULL, 0, sizeof(f->data), 8192, 4096 };
	memset(f->text, 0xcc, sizeof(f->text));
	memset(f->data, 0x5a, sizeof(f->data));
}

static int inspect(struct fake_elf *f, size_t size, struct elf_image *img, char *err)
{
	return elf_inspect(f, size, img, err, 256);
}

TEST(valid_kernel_loads_with_zeroed_bss)
{
	struct fake_elf f;
	struct elf_image img;
	char err[256];
	fake_build(&f);
	EXPECT_EQ_INT(inspect(&f, sizeof(f), &img, err), 0);
	EXPECT_EQ_INT(img.nsegs, 2);
	EXPECT(img.span_lo == 0xffffffff80100000ULL);
	EXPECT(img.span_hi == 0xffffffff80104000ULL);
	unsigned char *dest = malloc(img.span_hi - img.span_lo);
	memset(dest, 0xee, img.span_hi - img.span_lo);
	elf_load(&f, &img, dest);
	EXPECT_EQ_INT(dest[0], 0xcc);
	EXPECT_EQ_INT(dest[63], 0xcc);
	EXPECT_EQ_INT(dest[64], 0);             /* gap between segments zeroed */
	EXPECT_EQ_INT(dest[0x2000], 0x5a);
	EXPECT_EQ_INT(dest[0x2000 + 32], 0);    /* bss zeroed */
	EXPECT_EQ_INT(dest[0x3fff], 0);
	free(dest);
}

TEST(rejects_non_elf_and_truncated_header)
{
	struct fake_elf f;
	struct elf_image img;
	char err[256];
	fake_build(&f);
	EXPECT(inspect(&f, 10, &img, err) != 0);
	EXPECT_STREQ(err, "kernel.elf is not an ELF file");
	f.eh.e_ident[1] = 'X';
	EXPECT(inspect(&f, sizeof(f), &img, err) != 0);
	EXPECT_STREQ(err, "kernel.elf is not an ELF file");
}

TEST(rejects_wrong_class_machine_and_type)
{
	struct fake_elf f;
	struct elf_image img;
	char err[256];
	fake_build(&f);
	f.eh.e_ident[EI_CLASS] = ELFCLASS32;
	EXPECT(inspect(&f, sizeof(f), &img, err) != 0);
	EXPECT(strstr(err, "64-bit") != NULL);
	fake_build(&f);
	f.eh.e_machine = EM_AARCH64;
	EXPECT(inspect(&f, sizeof(f), &img, err) != 0);
	EXPECT(strstr(err, "x86-64") != NULL);
	fake_build(&f);
	f.eh.e_type = ET_DYN;
	EXPECT(inspect(&f, sizeof(f), &img, err) != 0);
	EXPECT_STREQ(err, "kernel.elf is ELF type 3, expected an executable (2)");
}

TEST(rejects_segments_outside_file)
{
	struct fake_elf f;
	struct elf_image img;
	char err[256];
	fake_build(&f);
	EXPECT(inspect(&f, offsetof(struct fake_elf, data) + 4, &img, err) != 0);
	EXPECT(strstr(err, "segment 1 lies outside the file") != NULL);
	fake_build(&f);
	f.eh.e_phoff = sizeof(f) - 8;
	EXPECT(inspect(&f, sizeof(f), &img, err) != 0);
	EXPECT(strstr(err, "program headers") != NULL);
	fake_build(&f);
	f.ph[0].p_filesz = f.ph[0].p_memsz + 1;
	EXPECT(inspect(&f, sizeof(f), &img, err) != 0);
}

TEST(rejects_low_half_huge_span_and_bad_entry)
{
	struct fake_elf f;
	struct elf_image img;
	char err[256];
	fake_build(&f);
	f.ph[1].p_vaddr = 0x100000;
	EXPECT(inspect(&f, sizeof(f), &img, err) != 0);
	EXPECT(strstr(err, "not in the higher half") != NULL);
	fake_build(&f);
	f.ph[1].p_vaddr = 0xffffffff80100000ULL + ELF_MAX_SPAN;
	EXPECT(inspect(&f, sizeof(f), &img, err) != 0);
	EXPECT(strstr(err, "more than the 64 MiB") != NULL);
	fake_build(&f);
	f.eh.e_entry = 0xffffffff80102000ULL;   /* in the RW segment */
	EXPECT(inspect(&f, sizeof(f), &img, err) != 0);
	EXPECT(strstr(err, "not inside an executable segment") != NULL);
	fake_build(&f);
	f.ph[0].p_type = PT_NOTE;
	f.ph[1].p_type = PT_NOTE;
	EXPECT(inspect(&f, sizeof(f), &img, err) != 0);
	EXPECT_STREQ(err, "kernel.elf has no loadable segments");
}

TEST_MAIN()
