/*
 * Bounded fuzz run over damaged images (gcc, ASan/UBSan): the oracle of
 * cowfs_fuzz_one.c with deterministic inputs -- every block of the image
 * hit at its header bytes, its first item and its end by each kind of edit,
 * then random edit lists.  The long coverage-guided run is `make
 * cowfs-fuzz` (libFuzzer, part of `make stress`).
 *
 *   test_cowfs_fuzz                    the bounded run
 *   test_cowfs_fuzz --write-seeds DIR  seed inputs for libFuzzer
 */
#define TEST_SUITE "cowfs_fuzz"
#include "tests/host/test.h"
#include "tests/host/cowfs_fuzz.h"

static void edit(uint8_t *e, uint64_t blk, uint32_t off, uint8_t val, uint8_t mode)
{
	e[0] = (uint8_t)blk;
	e[1] = (uint8_t)(blk >> 8);
	e[2] = (uint8_t)off;
	e[3] = (uint8_t)(off >> 8);
	e[4] = val;
	e[5] = mode;
}

/* Header fields (docs/format.md §4.1 and §3), the first leaf item, the
 * block's last bytes. */
static const uint32_t hot_offsets[] = { 0, 4, 9, 24, 33, 40, 48, 50, 64, 70, 85, 4095 };

TEST(every_block_every_kind_of_damage)
{
	uint8_t e[COWFS_FUZZ_EDIT];
	size_t n = cowfs_fuzz_image_blocks();
	for (uint64_t b = 0; b < n; b++)
		for (unsigned i = 0; i < sizeof(hot_offsets) / sizeof(hot_offsets[0]); i++)
			for (uint8_t mode = 0; mode < 4; mode++) {
				if (mode >= 2 && i)
					continue;          /* sector zero / block copy: once per block */
				edit(e, b, hot_offsets[i], (uint8_t)(0x40 >> (i % 7)), mode);
				cowfs_fuzz_one(e, sizeof(e));
			}
	EXPECT(n > 100);
	/* The oracle must see both outcomes, or it tests nothing: damage the
	 * check finds, and damage in blocks nothing uses (free space, older
	 * superblock slots).  One edit never stops a mount: there are 16
	 * superblock copies and the previous commit to fall back to. */
	struct cowfs_fuzz_stats st;
	cowfs_fuzz_get_stats(&st);
	printf("# %llu damaged images: %llu mounted, %llu of those checked clean\n", (unsigned long long)st.runs,
	       (unsigned long long)st.mounted, (unsigned long long)st.clean);
	EXPECT(st.mounted > 0 && st.clean < st.mounted && st.clean > 0);
}

TEST(random_edit_lists)
{
	uint64_t s = 0x1234567;
	unsigned iters = getenv("COWFS_STRESS") ? 200000 : 2000;
	for (unsigned it = 0; it < iters; it++) {
		uint8_t buf[COWFS_FUZZ_EDIT * 8];
		unsigned edits = 1 + (unsigned)(s % 8);
		for (unsigned i = 0; i < sizeof(buf); i++) {
			s ^= s << 13;
			s ^= s >> 7;
			s ^= s << 17;
			buf[i] = (uint8_t)s;
		}
		cowfs_fuzz_one(buf, edits * COWFS_FUZZ_EDIT);
	}
	EXPECT(iters > 0);
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--write-seeds")) {
		/* One seed per block: a single bit flip in its header. */
		for (uint64_t b = 0; b < cowfs_fuzz_image_blocks(); b++) {
			char p[512];
			uint8_t e[COWFS_FUZZ_EDIT];
			edit(e, b, 40, 1, 0);
			snprintf(p, sizeof(p), "%s/block-%llu", argv[2], (unsigned long long)b);
			FILE *f = fopen(p, "wb");
			if (!f || fwrite(e, sizeof(e), 1, f) != 1)
				return 1;
			fclose(f);
		}
		return 0;
	}
	return test_main();
}
