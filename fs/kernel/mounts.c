/*
 * The mount table: boot mounts from config.txt, mkfs/mount/umount, the
 * shutdown step that commits every filesystem, metrics and the status line.
 *
 * Formatting is the one irreversible thing here, so it is decided in one
 * place (fsk_may_format): a disk is formatted only when the probe read it
 * without error and found it blank, or, for an explicit `mkfs -f`, found
 * data or an old cowfs but no partition table and no other filesystem.
 */
#include "fs/kernel/mounts.h"
#include "fs/probe.h"
#include "boot/bootinfo.h"
#include "drivers/blk/blk.h"
#include "platform/kernel/pcache_kernel.h"
#include "platform/kernel/platform_kernel.h"
#include "kernel/initcall.h"
#include "kernel/kernel.h"
#include "kernel/errno.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/metrics.h"
#include "kernel/mm.h"
#include "kernel/statusline.h"
#include "kernel/sync.h"
#include "kernel/time.h"

static struct mutex fsk_lock;
static bool fsk_ready;
static struct fsk_mount *fsk_table[FSK_MAX_MOUNTS];
static unsigned fsk_gen;        /* bumped whenever the table changes */

static void fsk_init_lock(void)
{
	if (!fsk_ready) {
		mutex_init(&fsk_lock, "fs-mounts");
		fsk_ready = true;
	}
}

struct fsk_mount *fsk_at(unsigned i)
{
	unsigned n = 0;
	for (unsigned k = 0; k < FSK_MAX_MOUNTS; k++)
		if (fsk_table[k] && n++ == i)
			return fsk_table[k];
	return NULL;
}

static struct fsk_mount *fsk_by_name(const char *name)
{
	for (unsigned k = 0; k < FSK_MAX_MOUNTS; k++)
		if (fsk_table[k] && !strcmp(fsk_table[k]->name, name))
			return fsk_table[k];
	return NULL;
}

struct fsk_mount *fsk_by_dev(const char *dev)
{
	for (unsigned k = 0; k < FSK_MAX_MOUNTS; k++)
		if (fsk_table[k] && !strcmp(fsk_table[k]->dev, dev))
			return fsk_table[k];
	return NULL;
}

/* A use of fm by a command (path.c takes it under fsk_lock). */
struct fsk_mount *fsk_get_locked(const char *name);
struct fsk_mount *fsk_get_locked(const char *name)
{
	fsk_init_lock();
	mutex_lock(&fsk_lock);
	struct fsk_mount *fm = fsk_by_name(name);
	if (fm)
		__atomic_add_fetch(&fm->users, 1, __ATOMIC_ACQ_REL);
	mutex_unlock(&fsk_lock);
	return fm;
}

unsigned fsk_generation(void)
{
	return __atomic_load_n(&fsk_gen, __ATOMIC_ACQUIRE);
}

void fsk_each(void (*fn)(struct fsk_mount *fm, void *arg), void *arg)
{
	fsk_init_lock();
	mutex_lock(&fsk_lock);
	for (unsigned k = 0; k < FSK_MAX_MOUNTS; k++)
		if (fsk_table[k])
			fn(fsk_table[k], arg);
	mutex_unlock(&fsk_lock);
}

struct fsk_mount *fsk_get_if(bool (*match)(struct fsk_mount *fm, void *arg), void *arg)
{
	struct fsk_mount *found = NULL;
	fsk_init_lock();
	mutex_lock(&fsk_lock);
	for (unsigned k = 0; k < FSK_MAX_MOUNTS && !found; k++)
		if (fsk_table[k] && match(fsk_table[k], arg))
			found = fsk_table[k];
	if (found)
		__atomic_add_fetch(&found->users, 1, __ATOMIC_ACQ_REL);
	mutex_unlock(&fsk_lock);
	return found;
}

void fsk_put(struct fsk_mount *fm)
{
	if (fm)
		__atomic_sub_fetch(&fm->users, 1, __ATOMIC_ACQ_REL);
}

/* Whether formatting dev is allowed; prints the refusal naming what the
 * probe found. */
static bool fsk_may_format(const char *dev, struct plat_bdev *b, bool force, struct cowfs_probe *p)
{
	int err = cowfs_probe_disk(b, p);
	if (err) {
		kprintf("fs: %s: cannot read the disk to see what it holds (%s): not formatted\n", dev,
			strerror(err));
		return false;
	}
	if (p->kind == COWFS_PROBE_BLANK)
		return true;
	if (force && (p->kind == COWFS_PROBE_COWFS || p->what[0] == 'd'))   /* "data (...)" */
		return true;
	kprintf("fs: %s holds %s: not formatted%s\n", dev, p->what,
		p->kind == COWFS_PROBE_FOREIGN && p->what[0] == 'd' ? " (mkfs -f formats over data)" :
		p->kind == COWFS_PROBE_COWFS ? " (mkfs -f formats over it)" :
		" (erase it on another machine first if it is really unused)");
	return false;
}

static int fsk_format(const char *dev, struct plat_bdev *b, const char *label)
{
	struct cowfs_mkfs_opts o = { .label = label };
	uint64_t t0 = time_ns();
	int err = cowfs_mkfs(b, &o);
	if (err)
		kprintf("fs: %s: mkfs failed: %s\n", dev, strerror(err));
	else
		kprintf("fs: %s: new filesystem (%llu MiB) in %llu ms\n", dev,
			(unsigned long long)(plat_bdev_size(b) >> 20),
			(unsigned long long)((time_ns() - t0) / 1000000));
	return err;
}

int fsk_mkfs(const char *dev, bool force, const char *label)
{
	struct blk_dev *d = blk_find(dev);
	if (!d) {
		kprintf("mkfs: no disk '%s' (see lsblk)\n", dev);
		return -ENOENT;
	}
	fsk_init_lock();
	mutex_lock(&fsk_lock);
	int err = -EBUSY;
	if (fsk_by_dev(dev)) {
		kprintf("mkfs: %s is mounted (umount it first)\n", dev);
		goto out;
	}
	struct plat_bdev *b = plat_kernel_bdev_open(d);
	err = -ENOMEM;
	if (!b)
		goto out;
	struct cowfs_probe p;
	err = fsk_may_format(dev, b, force, &p) ? fsk_format(dev, b, label) : -EEXIST;
	plat_bdev_close(b);
out:
	mutex_unlock(&fsk_lock);
	return err;
}

int fsk_mount(const char *dev, const char *name, enum fsk_format fmt, bool readonly)
{
	struct blk_dev *d = blk_find(dev);
	struct fsk_mount *fm = NULL;
	struct plat_bdev *b = NULL;
	int err, slot = -1;

	if (!name)
		name = dev;
	if (!d) {
		kprintf("fs: no disk '%s' (see lsblk)\n", dev);
		return -ENOENT;
	}
	fsk_init_lock();
	mutex_lock(&fsk_lock);
	err = -EBUSY;
	if (fsk_by_dev(dev) || fsk_by_name(name)) {
		kprintf("fs: %s or /%s is already mounted\n", dev, name);
		goto out;
	}
	for (int k = 0; k < FSK_MAX_MOUNTS && slot < 0; k++)
		if (!fsk_table[k])
			slot = k;
	err = -ENOSPC;
	if (slot < 0) {
		kprintf("fs: %u filesystems are mounted already (the most there can be)\n", FSK_MAX_MOUNTS);
		goto out;
	}
	err = -ENOMEM;
	fm = kzalloc(sizeof(*fm));
	b = plat_kernel_bdev_open(d);
	if (!fm || !b)
		goto out;

	struct cowfs_probe p;
	err = cowfs_probe_disk(b, &p);
	if (err) {
		kprintf("fs: %s: cannot read the disk (%s): not mounted\n", dev, strerror(err));
		goto out;
	}
	if (p.kind != COWFS_PROBE_COWFS) {
		err = -EINVAL;
		if (p.kind == COWFS_PROBE_BLANK && fmt == FSK_FORMAT_NEVER) {
			kprintf("fs: %s is blank: not mounted (config.txt `format = blank` or `mkfs %s` formats it)\n",
				dev, dev);
			goto out;
		}
		if (fmt == FSK_FORMAT_NEVER || !fsk_may_format(dev, b, fmt == FSK_FORMAT_FORCE, &p))
			goto out;
		err = fsk_format(dev, b, name);
		if (err)
			goto out;
	}

	struct cowfs_vfs_opts o = {
		.fs = { .readonly = readonly },
		.pc = pcache_kernel_pcache(),
		.wq = pcache_kernel_workq(),
	};
	uint64_t t0 = time_ns();
	err = cowfs_vfs_mount(b, &o, &fm->m);
	if (err) {
		kprintf("fs: %s: mount failed: %s\n", dev, strerror(err));
		goto out;
	}
	fm->mounted_ns = time_ns() - t0;
	strlcpy(fm->name, name, sizeof(fm->name));
	strlcpy(fm->dev, dev, sizeof(fm->dev));
	fm->blk = d;
	fm->bdev = b;
	fm->readonly = readonly;
	fsk_table[slot] = fm;
	__atomic_add_fetch(&fsk_gen, 1, __ATOMIC_RELEASE);
	struct cowfs_statfs st;
	cowfs_statfs(fm->m, &st);
	kprintf("fs: %s mounted on /%s%s: %llu of %llu MiB free, %llu inodes, %llu us\n", dev, name,
		readonly ? " read-only" : "", (unsigned long long)(st.free_blocks * st.block_size >> 20),
		(unsigned long long)(st.total_blocks * st.block_size >> 20), (unsigned long long)st.inodes,
		(unsigned long long)(fm->mounted_ns / 1000));
	mutex_unlock(&fsk_lock);
	return 0;
out:
	if (b)
		plat_bdev_close(b);
	kfree(fm);
	mutex_unlock(&fsk_lock);
	return err;
}

static int fsk_unmount_locked(struct fsk_mount *fm)
{
	int err = cowfs_vfs_unmount(fm->m);
	if (err)
		kprintf("fs: /%s (%s): unmount: %s; the last commit stands\n", fm->name, fm->dev, strerror(err));
	plat_bdev_close(fm->bdev);
	for (unsigned k = 0; k < FSK_MAX_MOUNTS; k++)
		if (fsk_table[k] == fm)
			fsk_table[k] = NULL;
	__atomic_add_fetch(&fsk_gen, 1, __ATOMIC_RELEASE);
	kfree(fm);
	return err;
}

int fsk_umount(const char *name)
{
	fsk_init_lock();
	mutex_lock(&fsk_lock);
	struct fsk_mount *fm = fsk_by_name(name);
	if (!fm)
		fm = fsk_by_dev(name);
	int err = -ENOENT;
	if (!fm) {
		kprintf("umount: nothing is mounted on /%s\n", name);
	} else if (__atomic_load_n(&fm->users, __ATOMIC_ACQUIRE)) {
		err = -EBUSY;
		kprintf("umount: /%s is in use\n", fm->name);
	} else {
		char n[64];
		strlcpy(n, fm->name, sizeof(n));
		err = fsk_unmount_locked(fm);
		if (!err)
			kprintf("fs: /%s unmounted\n", n);
	}
	mutex_unlock(&fsk_lock);
	return err;
}

/* ---- boot ---------------------------------------------------------------- */

/* The mount point config.txt gives dev ("nvme0n1:/data" -> "data"), the
 * device name itself when listed without one or with `mount = all`, NULL
 * when dev is not to be mounted. */
static bool fsk_config_name(const char *mounts, const char *dev, char *name, size_t size)
{
	if (!strcmp(mounts, "none"))
		return false;
	if (!strcmp(mounts, "all")) {
		strlcpy(name, dev, size);
		return true;
	}
	size_t dl = strlen(dev);
	for (const char *p = mounts; *p;) {
		const char *e = p;
		while (*e && *e != ',')
			e++;
		const char *colon = p;
		while (colon < e && *colon != ':')
			colon++;
		if ((size_t)(colon - p) == dl && !strncmp(p, dev, dl)) {
			size_t n = colon < e ? (size_t)(e - colon - 2) : dl;
			const char *src = colon < e ? colon + 2 : dev;
			if (n >= size)
				n = size - 1;
			memcpy(name, src, n);
			name[n] = 0;
			return true;
		}
		p = *e ? e + 1 : e;
	}
	return false;
}

static int fsk_boot(void)
{
	const char *mounts = boot_info->config.mounts;
	enum fsk_format fmt = boot_info->config.format_blank ? FSK_FORMAT_BLANK : FSK_FORMAT_NEVER;
	char name[64];

	fsk_init_lock();
	if (!pcache_kernel_pcache()) {
		kprintf("fs: no page cache: filesystems are not mounted\n");
		return 0;
	}
	for (unsigned i = 0; i < blk_count(); i++) {
		struct blk_dev *d = blk_get(i);
		if (!d || d->dead || !fsk_config_name(mounts, d->name, name, sizeof(name)))
			continue;
		/* Self-tests overwrite scratch disks at will: a filesystem
		 * there would be destroyed under its own feet. */
		if (blk_is_scratch(d))
			kprintf("fs: %s is a scratch disk for self-tests: not mounted\n", d->name);
		else
			fsk_mount(d->name, name, fmt, false);
	}
	/* A disk named in config.txt that is not there. */
	if (strcmp(mounts, "all") && strcmp(mounts, "none"))
		for (const char *p = mounts; *p;) {
			char dev[32];
			size_t n = 0;
			while (p[n] && p[n] != ',' && p[n] != ':')
				n++;
			if (n < sizeof(dev)) {
				memcpy(dev, p, n);
				dev[n] = 0;
				if (!blk_find(dev))
					kprintf("fs: config.txt mounts %s, but there is no such disk\n", dev);
			}
			while (*p && *p != ',')
				p++;
			if (*p)
				p++;
		}
	return 0;
}
INITCALL(fs_mounts, INIT_LATE, 5, fsk_boot);

/* Shutdown (before the page cache step 20 and the disk flushes 30): write
 * back and commit every filesystem, so the next mount finds it clean. */
static int fsk_shutdown(uint64_t deadline_ns)
{
	int first = 0;
	(void)deadline_ns;   /* cowfs waits are bounded by the block layer's own deadlines */
	if (!fsk_ready)
		return 0;
	mutex_lock(&fsk_lock);
	for (unsigned k = 0; k < FSK_MAX_MOUNTS; k++) {
		struct fsk_mount *fm = fsk_table[k];
		if (!fm)
			continue;
		char n[64];
		strlcpy(n, fm->name, sizeof(n));
		int err = fsk_unmount_locked(fm);
		if (err && !first)
			first = err;
		if (!err)
			kprintf("shutdown: /%s committed and unmounted\n", n);
	}
	mutex_unlock(&fsk_lock);
	return first;
}
SHUTDOWN_STEP(filesystems, 10, fsk_shutdown);

/* ---- metrics and status line --------------------------------------------- */

static void fsk_metrics(struct metric_sink *s)
{
	if (!fsk_ready)
		return;
	mutex_lock(&fsk_lock);
	for (unsigned i = 0; fsk_at(i); i++) {
		struct fsk_mount *fm = fsk_at(i);
		struct cowfs_statfs st;
		if (cowfs_statfs(fm->m, &st))
			continue;
		metric(s, "appliance_fs_size_bytes", METRIC_GAUGE, "Filesystem size", "mount", fm->name,
		       (int64_t)(st.total_blocks * st.block_size), 0);
		metric(s, "appliance_fs_free_bytes", METRIC_GAUGE, "Filesystem free space", "mount", fm->name,
		       (int64_t)(st.free_blocks * st.block_size), 0);
		metric(s, "appliance_fs_inodes", METRIC_GAUGE, "Inodes in use", "mount", fm->name,
		       (int64_t)st.inodes, 0);
		metric(s, "appliance_fs_last_scrub_timestamp_seconds", METRIC_GAUGE,
		       "End of the last scrub (Unix time), 0 = never", "mount", fm->name, fm->scrub_unix_s, 0);
		metric(s, "appliance_fs_last_scrub_errors", METRIC_GAUGE, "Problems the last scrub found", "mount",
		       fm->name, (int64_t)fm->scrub_errors, 0);
	}
	mutex_unlock(&fsk_lock);
}
METRICS_PROVIDER(fs, fsk_metrics);

static void fsk_status(char *buf, size_t size)
{
	size_t len = (size_t)ksnprintf(buf, size, "fs:");
	unsigned n = 0;
	/* Never wait behind a mount or mkfs in progress: show the last line. */
	if (!fsk_ready || !mutex_trylock(&fsk_lock)) {
		ksnprintf(buf, size, fsk_ready ? "fs: busy" : "fs: none");
		return;
	}
	for (struct fsk_mount *fm; (fm = fsk_at(n)) && len + 1 < size; n++) {
		struct cowfs_statfs st;
		if (cowfs_statfs(fm->m, &st) || !st.total_blocks)
			continue;
		unsigned pct = (unsigned)(100 * (st.total_blocks - st.free_blocks) / st.total_blocks);
		len += (size_t)ksnprintf(buf + len, size - len, " /%s %u%%", fm->name, pct);
	}
	mutex_unlock(&fsk_lock);
	if (!n)
		ksnprintf(buf, size, "fs: none");
}
STATUSLINE_ITEM(filesystems, 30, fsk_status);
