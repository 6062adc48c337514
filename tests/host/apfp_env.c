/*
 * The on-disk setup of the apfp-serve host tests (tests/host/apfp_env.h).
 */
#include "tests/host/apfp_env.h"
#include "fs/vfs.h"
#include "platform/platform.h"
#include "platform/host/platform_host.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void apfp_env_make(struct apfp_env *e, const char *prefix, const char *psk, uint64_t bytes)
{
	snprintf(e->dir, sizeof(e->dir), "/tmp/%s-XXXXXX", prefix);
	if (!mkdtemp(e->dir))
		abort();
	snprintf(e->image, sizeof(e->image), "%s/vol.img", e->dir);
	snprintf(e->secret_file, sizeof(e->secret_file), "%s/secret", e->dir);
	snprintf(e->port_file, sizeof(e->port_file), "%s/port", e->dir);
	snprintf(e->vol_arg, sizeof(e->vol_arg), "vol=%s", e->image);
	size_t len = strlen(psk);
	int fd = open(e->secret_file, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	if (fd < 0 || write(fd, psk, len) != (ssize_t)len || close(fd))
		abort();
	fd = open(e->image, O_CREAT | O_RDWR | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)bytes) || close(fd))
		abort();
	plat_init();
	struct plat_bdev *b = plat_host_bdev_open(e->image, bytes, 512, 2, false);
	if (!b || cowfs_mkfs(b, NULL))
		abort();
	plat_bdev_close(b);
}

uint16_t apfp_env_port(const struct apfp_env *e, bool (*alive)(void *arg), void *arg)
{
	for (int i = 0; i < 500; i++) {         /* 10 s */
		FILE *f = fopen(e->port_file, "r");
		unsigned p = 0;
		if (f) {
			int ok = fscanf(f, "%u", &p);
			fclose(f);
			if (ok == 1 && p && p < 65536)
				return (uint16_t)p;
		}
		if (alive && !alive(arg))
			break;
		usleep(20000);
	}
	return 0;
}
