/*
 * Boot arguments: boot_info->config.cmdline split once into "key" or
 * "key=value" tokens.
 *
 * The split happens lazily on first use (panic may need "panic=poweroff"
 * before anything else ran).  args_state moves 0 -> 1 (splitting) -> 2
 * (ready) with an atomic exchange so two CPUs never split at once; a loser
 * waits a bounded number of iterations (the split takes microseconds).
 */
#include "kernel/kernel.h"
#include "kernel/kstring.h"
#include "kernel/cpu.h"
#include "kernel/kprintf.h"

#define ARGS_MAX 32

extern const struct kernel_arg __kernel_args_start[], __kernel_args_end[];

static char args_buf[sizeof(((struct boot_config *)0)->cmdline) + 1];
static const char *args_key[ARGS_MAX];
static const char *args_val[ARGS_MAX];
static unsigned args_count;
static const char *args_dropped;    /* first token past ARGS_MAX */
static volatile int args_state;

static void args_split(void)
{
	char *p = args_buf;

	strlcpy(args_buf, boot_info->config.cmdline, sizeof(args_buf));
	while (*p) {
		while (*p == ' ' || *p == '\t')
			*p++ = '\0';
		if (!*p)
			break;
		if (args_count == ARGS_MAX) {
			args_dropped = p;
			break;
		}
		args_key[args_count] = p;
		args_val[args_count] = "";
		bool split = false;
		while (*p && *p != ' ' && *p != '\t') {
			if (*p == '=' && !split) {   /* first '=' splits */
				*p = '\0';
				args_val[args_count] = p + 1;
				split = true;
			}
			p++;
		}
		args_count++;
	}
}

static bool args_ready(void)
{
	if (args_state == 2)
		return true;
	if (boot_info == NULL || boot_info->magic != BOOT_INFO_MAGIC)
		return false;
	int expected = 0;
	if (__atomic_compare_exchange_n(&args_state, &expected, 1, false,
					__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		args_split();
		__atomic_store_n(&args_state, 2, __ATOMIC_RELEASE);
		return true;
	}
	for (unsigned long i = 0; i < 100000000UL && args_state != 2; i++)
		cpu_pause();
	if (args_state != 2)
		kprintf("args: gave up waiting for another CPU to split the boot arguments\n");
	return args_state == 2;
}

const char *arg_get(const char *key)
{
	if (!args_ready())
		return NULL;
	for (unsigned i = 0; i < args_count; i++)
		if (strcmp(args_key[i], key) == 0)
			return args_val[i];
	return NULL;
}

bool arg_present(const char *key)
{
	const char *eq = strchr(key, '=');

	if (!eq)
		return arg_get(key) != NULL;
	/* "key=value" asks whether that exact pair was given. */
	char k[64];
	size_t n = (size_t)(eq - key);
	if (n >= sizeof(k))
		return false;
	memcpy(k, key, n);
	k[n] = '\0';
	const char *v = arg_get(k);
	return v && strcmp(v, eq + 1) == 0;
}

/* ---- declarations and the boot check ---- */

const struct kernel_arg *kernel_arg_at(unsigned index)
{
	const struct kernel_arg *a = __kernel_args_start + index;
	return a < __kernel_args_end ? a : NULL;
}

static const struct kernel_arg *kernel_arg_find(const char *name)
{
	for (const struct kernel_arg *a = __kernel_args_start; a < __kernel_args_end; a++)
		if (strcmp(a->name, name) == 0)
			return a;
	return NULL;
}

/* Is `v` one of the '|'-separated words? */
static bool args_word_in(const char *words, const char *v)
{
	size_t n = strlen(v);
	for (const char *w = words; *w;) {
		const char *end = strchr(w, '|');
		size_t len = end ? (size_t)(end - w) : strlen(w);
		if (len == n && strncmp(w, v, n) == 0)
			return true;
		if (!end)
			break;
		w = end + 1;
	}
	return false;
}

const char *kernel_arg_reject(const struct kernel_arg *a, const char *value)
{
	unsigned long long v;

	switch (a->kind) {
	case KARG_FLAG:
		return value[0] ? "takes no value" : NULL;
	case KARG_UINT:
		if (!value[0])
			return "needs a value";
		if (value[0] == '-')
			return "is negative";
		if (parse_u64(value, &v))
			return "is not a number";
		if (v < a->min)
			return "is below the smallest allowed value";
		if (v > a->max)
			return "is above the largest allowed value";
		return NULL;
	case KARG_WORD:
		return args_word_in(a->values, value) ? NULL : "is not one of the allowed words";
	case KARG_TEXT:
		return value[0] ? NULL : "needs a value";
	}
	return "has an unknown kind";
}

unsigned args_check(void)
{
	unsigned bad = 0;

	if (!args_ready())
		return 0;
	for (unsigned i = 0; i < args_count; i++) {
		const struct kernel_arg *a = kernel_arg_find(args_key[i]);
		const char *why;
		bool dup = false;
		for (unsigned j = 0; j < i; j++)
			dup |= strcmp(args_key[j], args_key[i]) == 0;
		if (!a) {
			kprintf("args: unknown boot argument '%s' ignored (the shell's 'args' lists the known ones)\n",
				args_key[i]);
			bad++;
		} else if (dup) {
			kprintf("args: '%s' given twice; the first one counts\n", args_key[i]);
			bad++;
		} else if ((why = kernel_arg_reject(a, args_val[i])) != NULL) {
			if (a->kind == KARG_UINT)
				kprintf("args: %s=%s %s (%llu..%llu)\n", a->name, args_val[i], why,
					a->min, a->max);
			else if (a->kind == KARG_WORD)
				kprintf("args: %s=%s %s (%s)\n", a->name, args_val[i], why, a->values);
			else
				kprintf("args: %s%s%s %s\n", a->name, args_val[i][0] ? "=" : "",
					args_val[i], why);
			bad++;
		}
	}
	if (args_dropped) {
		kprintf("args: more than %d boot arguments; ignoring '%s' and the rest\n", ARGS_MAX,
			args_dropped);
		bad++;
	}
	return bad;
}
