/* The cowfs image fuzz oracle (tests/host/cowfs_fuzz_one.c). */
#ifndef TESTS_HOST_COWFS_FUZZ_H
#define TESTS_HOST_COWFS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* One edit: block u16 LE (mod the image's blocks), offset u16 LE (mod
 * 4096), value, mode (0 xor, 1 set, 2 zero the 512-byte sector, 3 copy in
 * another block of the image: stale or misplaced). */
#define COWFS_FUZZ_EDIT 6

void cowfs_fuzz_init(void);
void cowfs_fuzz_one(const uint8_t *data, size_t size);
size_t cowfs_fuzz_image_blocks(void);
/* Outcomes so far: runs, mounts that succeeded, and of those the ones the
 * check found clean (the damage hit nothing in use). */
struct cowfs_fuzz_stats { uint64_t runs, mounted, clean; };
void cowfs_fuzz_get_stats(struct cowfs_fuzz_stats *out);

#endif
