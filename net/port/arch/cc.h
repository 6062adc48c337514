/*
 * lwIP compiler/platform glue for the kernel (see net/README.md).
 * lwIP sees no libc: string.h and stdlib.h in net/port/ map onto
 * kernel/kstring.h, diagnostics go to kprintf and assertions panic.
 */
#ifndef NET_PORT_ARCH_CC_H
#define NET_PORT_ARCH_CC_H

#include <stdint.h>

#define BYTE_ORDER LITTLE_ENDIAN
#define LWIP_NO_INTTYPES_H 1
#define X8_F  "02x"
#define U16_F "u"
#define S16_F "d"
#define X16_F "x"
#define U32_F "u"
#define S32_F "d"
#define X32_F "x"
#define SZT_F "lu"
#define LWIP_NO_CTYPE_H 1
#define LWIP_NO_LIMITS_H 0

void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
__attribute__((noreturn, format(printf, 1, 2))) void panic(const char *fmt, ...);
uint32_t net_rand(void);

#define LWIP_PLATFORM_DIAG(x) do { kprintf x; } while (0)
#define LWIP_PLATFORM_ASSERT(x) panic("lwip assertion \"%s\" failed at %s:%d", x, __FILE__, __LINE__)
#define LWIP_RAND() (net_rand())

#endif
