/*
 * Reproducible test patterns and CRC32 (drivers/blk/pattern.c).
 *
 * The pattern for SEED: the 8-byte little-endian word at absolute device
 * byte offset 8*i is splitmix64((SEED << 40) ^ i).  Host tools recompute it
 * to check a disk image after the VM is gone.
 */
#ifndef DRIVERS_BLK_PATTERN_H
#define DRIVERS_BLK_PATTERN_H

#include <stdint.h>
#include <stddef.h>

uint64_t pattern_splitmix64(uint64_t x);
/* Fill buf, which holds device bytes [byte_off, byte_off+len); both
 * multiples of 8. */
void pattern_fill(void *buf, uint64_t byte_off, size_t len, uint64_t seed);
/* -1 when buf matches, else the byte offset in buf of the first wrong
 * word, with the words read and expected. */
long pattern_check(const void *buf, uint64_t byte_off, size_t len, uint64_t seed,
		   uint64_t *got, uint64_t *want);
/* CRC-32 (IEEE 802.3), incremental like zlib's crc32(): start with 0. */
uint32_t pattern_crc32(uint32_t crc, const void *buf, size_t len);

#endif
