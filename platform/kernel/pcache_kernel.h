/*
 * The kernel's iomap instance (platform/kernel/pcache_kernel.c): one page cache for the
 * whole kernel, created at boot after drivers_init() with a memory budget
 * (boot argument pcache_mb=N, default a quarter of free RAM; iomap_debug
 * turns on the core's mapping and lock-order checks), background
 * writeback threads and one completion work queue; and a block-device file
 * (platform/kernel/bdev_file.h) per disk, opened on first use by name.
 */
#ifndef PLATFORM_PCACHE_KERNEL_H
#define PLATFORM_PCACHE_KERNEL_H

#include <stdint.h>

struct pcache;
struct bdev_file;

/* Boot: 0, or -errno (the kernel runs on without a page cache). */
int pcache_kernel_init(void);
/* NULL before pcache_kernel_init() or when it failed. */
struct pcache *pcache_kernel_pcache(void);
uint64_t pcache_kernel_budget(void);
struct iomap_workq *pcache_kernel_workq(void);
/* The cached file of block device `dev` (opened on first use): 0,
 * -ENOENT (no such disk), -ENODEV (no page cache), -ENOMEM. */
int pcache_kernel_file(const char *dev, struct bdev_file **out);
/* Open files in order, NULL past the last. */
struct bdev_file *pcache_kernel_file_at(unsigned i);
/* One line for `mem`. */
void pcache_kernel_mem_line(void);

#endif
