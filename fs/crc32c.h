/*
 * CRC-32C (Castagnoli), the checksum of every cowfs metadata block and data
 * block (docs/format.md §1).
 *
 *   crc32c(0, buf, n)                 checksum of buf
 *   crc32c(crc32c(0, a, na), b, nb)   checksum of a followed by b
 *
 * Three implementations: the SSE4.2 crc32 instruction when cpuid reports
 * it (a general-register instruction, so it is fine in the kernel's
 * -mgeneral-regs-only build), slice-by-8 tables, and the byte table.  All
 * are exported for tests.
 */
#ifndef FS_CRC32C_H
#define FS_CRC32C_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

uint32_t crc32c(uint32_t crc, const void *buf, size_t len);
uint32_t crc32c_table(uint32_t crc, const void *buf, size_t len);
uint32_t crc32c_slice8(uint32_t crc, const void *buf, size_t len);
/* Only when crc32c_have_sse42(). */
uint32_t crc32c_sse42(uint32_t crc, const void *buf, size_t len);
bool crc32c_have_sse42(void);

/*
 * Which implementation crc32c() uses: SSE4.2 when present until
 * crc32c_calibrate() has timed the candidates with the given clock and
 * kept the faster (the filesystem calls it once, at its first mount).
 * rate_mbps (may be NULL) receives each candidate's MB/s, 0 if not run.
 */
enum crc32c_impl { CRC32C_TABLE, CRC32C_SLICE8, CRC32C_SSE42 };
enum crc32c_impl crc32c_calibrate(uint64_t (*now_ns)(void), uint64_t rate_mbps[3]);
enum crc32c_impl crc32c_current(void);
int crc32c_use(enum crc32c_impl impl);          /* -1 if not available */
const char *crc32c_impl_name(enum crc32c_impl impl);

#endif
