/*
 * CRC-32C (Castagnoli), the checksum of every cowfs metadata block and data
 * block (docs/format.md §1).
 *
 *   crc32c(0, buf, n)                 checksum of buf
 *   crc32c(crc32c(0, a, na), b, nb)   checksum of a followed by b
 *
 * Uses the SSE4.2 crc32 instruction when cpuid reports it (a general-
 * register instruction, so it is fine in the kernel's -mgeneral-regs-only
 * build), else a 256-entry table.  The two paths are exported for tests.
 */
#ifndef FS_CRC32C_H
#define FS_CRC32C_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

uint32_t crc32c(uint32_t crc, const void *buf, size_t len);
uint32_t crc32c_table(uint32_t crc, const void *buf, size_t len);
/* Only when crc32c_have_sse42(). */
uint32_t crc32c_sse42(uint32_t crc, const void *buf, size_t len);
bool crc32c_have_sse42(void);

#endif
