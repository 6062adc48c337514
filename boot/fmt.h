/* A libc-free message formatter shared by the loader's portable parts.
 * Conversions: %s, %.*s, %u (unsigned), %lx (uint64_t, hex), %%. */
#ifndef BOOT_FMT_H
#define BOOT_FMT_H

#include <stdarg.h>
#include <stddef.h>

void fmt_message(char *out, size_t cap, const char *fmt, ...);
void fmt_vmessage(char *out, size_t cap, const char *fmt, va_list ap);
size_t fmt_strlen(const char *s);

#endif
