#include "boot/fmt.h"

#include <stdint.h>

size_t fmt_strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

static void fmt_put_unsigned(char *out, size_t cap, size_t *o, uint64_t v, unsigned base)
{
	char digits[24];
	unsigned nd = 0;
	do {
		digits[nd++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (nd && *o + 1 < cap)
		out[(*o)++] = digits[--nd];
}

void fmt_vmessage(char *out, size_t cap, const char *fmt, va_list ap)
{
	size_t o = 0;

	if (cap == 0)
		return;
	for (const char *p = fmt; *p && o + 1 < cap; p++) {
		if (*p != '%') {
			out[o++] = *p;
			continue;
		}
		p++;
		if (*p == '%') {
			out[o++] = '%';
		} else if (*p == 's' || (p[0] == '.' && p[1] == '*' && p[2] == 's')) {
			size_t n;
			const char *s;
			if (*p == '.') {
				n = (size_t)va_arg(ap, int);
				s = va_arg(ap, const char *);
				p += 2;
			} else {
				s = va_arg(ap, const char *);
				n = fmt_strlen(s);
			}
			for (size_t i = 0; i < n && o + 1 < cap; i++)
				out[o++] = s[i];
		} else if (*p == 'u') {
			fmt_put_unsigned(out, cap, &o, va_arg(ap, unsigned), 10);
		} else if (p[0] == 'l' && p[1] == 'x') {
			fmt_put_unsigned(out, cap, &o, va_arg(ap, uint64_t), 16);
			p++;
		} else {
			break;
		}
	}
	out[o] = 0;
}

void fmt_message(char *out, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fmt_vmessage(out, cap, fmt, ap);
	va_end(ap);
}
