/* Freestanding string and memory routines (kernel/kstring.c). */
#ifndef KERNEL_KSTRING_H
#define KERNEL_KSTRING_H

#include <stddef.h>

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);
char *strstr(const char *haystack, const char *needle);
/* ASCII letters compared without case. */
int strncasecmp(const char *a, const char *b, size_t n);
size_t strlcpy(char *dst, const char *src, size_t size);
/* Parse an unsigned number: decimal, 0x hex, with optional k/m/g suffix
 * (binary multiples).  Returns 0 on success, -EINVAL on junk or overflow. */
int parse_u64(const char *s, unsigned long long *out);

#endif
