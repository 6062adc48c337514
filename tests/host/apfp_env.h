/*
 * What the host tests that run apfp-serve's code need on disk: a private
 * folder under /tmp with a secret file and a fresh cowfs image, and the
 * server's arguments naming them.
 */
#ifndef TESTS_HOST_APFP_ENV_H
#define TESTS_HOST_APFP_ENV_H

#include <stdbool.h>
#include <stdint.h>

struct apfp_env {
	char dir[64];
	char image[256], secret_file[256], port_file[256];
	char vol_arg[300];              /* "vol=IMAGE" */
};

/* Make it (psk written as is, the image of `bytes` made by cowfs_mkfs);
 * aborts when it cannot: nothing could be tested. */
void apfp_env_make(struct apfp_env *e, const char *prefix, const char *psk, uint64_t bytes);

/* The port the server wrote to port_file, waiting up to 10 s (and no
 * longer than alive(arg) says it runs, when given); 0 when it did not. */
uint16_t apfp_env_port(const struct apfp_env *e, bool (*alive)(void *arg), void *arg);

#endif
