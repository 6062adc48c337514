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

static char args_buf[sizeof(((struct boot_config *)0)->cmdline) + 1];
static const char *args_key[ARGS_MAX];
static const char *args_val[ARGS_MAX];
static unsigned args_count;
static volatile int args_state;

static void args_split(void)
{
	char *p = args_buf;

	strlcpy(args_buf, boot_info->config.cmdline, sizeof(args_buf));
	while (*p && args_count < ARGS_MAX) {
		while (*p == ' ' || *p == '\t')
			*p++ = '\0';
		if (!*p)
			break;
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
