/*
 * Shell commands that manage filesystems: mkfs, mount, umount, df, sync,
 * fsck, scrub, snapshot, clone.  Output lines are parsed by tests/qemu/test_fs*.py: change them
 * together.
 */
#include "fs/kernel/mounts.h"
#include "drivers/blk/blk.h"
#include "kernel/errno.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/mm.h"
#include "kernel/shell.h"
#include "kernel/time.h"
#include "kernel/realtime.h"

/* "/name" or "name" -> "name". */
static const char *mount_name(const char *s)
{
	while (*s == '/')
		s++;
	return s;
}

static int cmd_mkfs(int argc, char **argv)
{
	bool force = false;
	const char *label = NULL, *dev = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-f"))
			force = true;
		else if (!strcmp(argv[i], "-L") && i + 1 < argc)
			label = argv[++i];
		else if (argv[i][0] != '-' && !dev)
			dev = argv[i];
		else {
			kprintf("mkfs: unexpected '%s' (usage: mkfs [-f] [-L LABEL] DEV)\n", argv[i]);
			return 1;
		}
	}
	if (!dev) {
		kprintf("mkfs: which disk? (usage: mkfs [-f] [-L LABEL] DEV; see lsblk)\n");
		return 1;
	}
	if (label && strlen(label) >= 64) {
		kprintf("mkfs: label '%s' is longer than 63 bytes\n", label);
		return 1;
	}
	return fsk_mkfs(dev, force, label) ? 1 : 0;
}
SHELL_COMMAND(mkfs, "mkfs [-f] [-L LABEL] DEV",
	      "make a filesystem on a blank disk (-f: also over data or an old cowfs)", cmd_mkfs);

static void list_mounts(void)
{
	unsigned n = 0;
	for (struct fsk_mount *fm; (fm = fsk_at(n)); n++)
		kprintf("%s on /%s type cowfs (%s)\n", fm->dev, fm->name, fm->readonly ? "ro" : "rw");
	if (!n)
		kprintf("nothing is mounted\n");
}

static int cmd_mount(int argc, char **argv)
{
	bool ro = false;
	const char *dev = NULL, *name = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-r"))
			ro = true;
		else if (argv[i][0] == '/' && !name)
			name = mount_name(argv[i]);
		else if (argv[i][0] != '-' && argv[i][0] != '/' && !dev)
			dev = argv[i];
		else {
			kprintf("mount: unexpected '%s' (usage: mount [-r] DEV [/NAME])\n", argv[i]);
			return 1;
		}
	}
	if (!dev && !name && !ro) {
		list_mounts();
		return 0;
	}
	if (!dev) {
		kprintf("mount: which disk? (usage: mount [-r] DEV [/NAME])\n");
		return 1;
	}
	if (name && (!*name || strchr(name, '/') || strlen(name) >= 64)) {
		kprintf("mount: '/%s' is not a mount point name (one component, under 64 bytes)\n", name);
		return 1;
	}
	return fsk_mount(dev, name, FSK_FORMAT_NEVER, ro) ? 1 : 0;
}
SHELL_COMMAND(mount, "mount [[-r] DEV [/NAME]]", "list mounts, or mount DEV's filesystem on /NAME (default /DEV)",
	      cmd_mount);

static int cmd_umount(int argc, char **argv)
{
	if (argc != 2) {
		kprintf("umount: usage: umount /NAME|DEV\n");
		return 1;
	}
	return fsk_umount(mount_name(argv[1])) ? 1 : 0;
}
SHELL_COMMAND(umount, "umount /NAME|DEV", "commit and unmount a filesystem", cmd_umount);

static int cmd_df(int argc, char **argv)
{
	(void)argv;
	if (argc > 1) {
		kprintf("df: takes no arguments\n");
		return 1;
	}
	kprintf("%-12s %-10s %10s %10s %10s %5s %9s\n", "mount", "disk", "size-MiB", "used-MiB", "free-MiB", "use%",
		"inodes");
	for (unsigned i = 0; fsk_at(i); i++) {
		struct fsk_mount *fm = fsk_at(i);
		struct cowfs_statfs st;
		int err = cowfs_statfs(fm->m, &st);
		if (err) {
			kprintf("/%-11s %-10s %s\n", fm->name, fm->dev, strerror(err));
			continue;
		}
		uint64_t used = st.total_blocks - st.free_blocks;
		char name[72];
		ksnprintf(name, sizeof(name), "/%s", fm->name);
		kprintf("%-12s %-10s %10llu %10llu %10llu %4llu%% %9llu\n", name, fm->dev,
			(unsigned long long)(st.total_blocks * st.block_size >> 20),
			(unsigned long long)(used * st.block_size >> 20),
			(unsigned long long)(st.free_blocks * st.block_size >> 20),
			(unsigned long long)(st.total_blocks ? 100 * used / st.total_blocks : 0),
			(unsigned long long)st.inodes);
	}
	return 0;
}
SHELL_COMMAND(df, "df", "mounted filesystems: size, use, inodes", cmd_df);

static int cmd_sync(int argc, char **argv)
{
	int rc = 0;
	for (unsigned i = 0; fsk_at(i); i++) {
		struct fsk_mount *fm = fsk_at(i);
		if (argc > 1 && strcmp(fm->name, mount_name(argv[1])))
			continue;
		uint64_t t0 = time_ns();
		int err = cowfs_vfs_sync(fm->m);
		if (err) {
			kprintf("sync: /%s: %s\n", fm->name, strerror(err));
			rc = 1;
		} else {
			kprintf("sync: /%s committed in %llu ms\n", fm->name,
				(unsigned long long)((time_ns() - t0) / 1000000));
		}
	}
	return rc;
}
SHELL_COMMAND(sync, "sync [/NAME]", "write back and commit every (or one) mounted filesystem", cmd_sync);

/* The mounted filesystem `arg` names ("/NAME" or "NAME"): a use on it in
 * p, its path in path; 0, or 1 with the failure printed. */
static int mount_arg(const char *cmd, const char *arg, struct fsk_path *p, char *path, size_t size)
{
	ksnprintf(path, size, "/%s", mount_name(arg));
	int err = fsk_resolve(path, false, p);
	return err ? fsk_fail(cmd, path, err) : 0;
}

static int cmd_fsck(int argc, char **argv)
{
	if (argc != 2) {
		kprintf("fsck: usage: fsck /NAME (a mounted filesystem; checks its last commit)\n");
		return 1;
	}
	struct fsk_path p;
	char path[80];
	if (mount_arg("fsck", argv[1], &p, path, sizeof(path)))
		return 1;
	int err;
	char msg[200];
	uint64_t t0 = time_ns();
	err = cowfs_vfs_check(p.fm->m, msg, sizeof(msg));
	uint64_t ms = (time_ns() - t0) / 1000000;
	if (err)
		kprintf("fsck: %s: damaged: %s (%llu ms)\n", path, msg, (unsigned long long)ms);
	else
		kprintf("fsck: %s: clean (%llu ms)\n", path, (unsigned long long)ms);
	fsk_put(p.fm);
	return err ? 1 : 0;
}
SHELL_COMMAND(fsck, "fsck /NAME", "check a mounted filesystem's trees, space map and directories", cmd_fsck);

/* ---- scrub ---- */

static void scrub_report(void *arg, const char *line)
{
	kprintf("scrub: %s: %s\n", (const char *)arg, line);
}

static void scrub_progress(void *arg, uint64_t done, uint64_t total)
{
	static uint64_t next_ns;
	(void)arg;
	if (shell_progress_due(&next_ns))
		kprintf("scrub: %llu of about %llu blocks\n", (unsigned long long)done, (unsigned long long)total);
}

static int cmd_scrub(int argc, char **argv)
{
	if (argc != 2) {
		kprintf("scrub: usage: scrub /MOUNT\n");
		return 1;
	}
	struct fsk_path p;
	char path[80];
	if (mount_arg("scrub", argv[1], &p, path, sizeof(path)))
		return 1;
	int err;
	struct cowfs_scrub_stats st;
	err = cowfs_vfs_scrub(p.fm->m, &st, scrub_report, scrub_progress, path);
	if (!err) {
		char line[512];
		uint64_t bad = cowfs_scrub_errors(&st);
		p.fm->scrub_errors = bad;
		p.fm->scrub_unix_s = realtime_ns() / 1000000000;
		cowfs_scrub_summary(&st, line, sizeof(line));
		kprintf("scrub: %s: %s\n", path, line);
		err = bad ? -EIO : 0;
	} else {
		kprintf("scrub: %s: could not run: %s\n", path, strerror(err));
	}
	fsk_put(p.fm);
	return err ? 1 : 0;
}
SHELL_COMMAND(scrub, "scrub /MOUNT", "read back and verify everything a filesystem holds", cmd_scrub);

/* ---- snapshots ---- */

static int snap_list_cb(void *arg, const struct cowfs_subvol_info *si)
{
	unsigned *n = arg;
	(*n)++;
	kprintf("%-24s %-9s tree %llu, root generation %llu\n", si->name[0] ? si->name : "(unnamed)",
		si->readonly ? "snapshot" : "clone", (unsigned long long)si->id, (unsigned long long)si->root_gen);
	return 0;
}

/* snapshot create|list|delete /MOUNT [NAME]; clone /MOUNT NAME. */
static int snapshot_cmd(const char *cmd, const char *verb, const char *mount, const char *name)
{
	struct fsk_path p;
	char path[80];
	if (mount_arg(cmd, mount, &p, path, sizeof(path)))
		return 1;
	int err;
	uint64_t t0 = time_ns();
	if (!strcmp(verb, "list")) {
		unsigned n = 0;
		err = cowfs_snapshot_list(p.fm->m, snap_list_cb, &n);
		if (!err && !n)
			kprintf("%s: no snapshots\n", path);
	} else if (!strcmp(verb, "delete")) {
		err = cowfs_snapshot_remove(p.fm->m, name, strlen(name));
		if (!err)
			kprintf("%s: snapshot %s deleted in %llu ms\n", path, name,
				(unsigned long long)((time_ns() - t0) / 1000000));
	} else {
		bool clone = !strcmp(verb, "clone");
		err = cowfs_snapshot(p.fm->m, name, strlen(name), !clone);
		if (!err)
			kprintf("%s: %s %s created in %llu ms\n", path, clone ? "clone" : "snapshot", name,
				(unsigned long long)((time_ns() - t0) / 1000000));
	}
	fsk_put(p.fm);
	if (err) {
		kprintf("%s: %s%s%s: %s\n", cmd, path, name ? " " : "", name ? name : "", strerror(err));
		return 1;
	}
	return 0;
}

static int cmd_snapshot(int argc, char **argv)
{
	bool list = argc == 3 && !strcmp(argv[1], "list");
	bool named = argc == 4 && (!strcmp(argv[1], "create") || !strcmp(argv[1], "delete"));
	if (!list && !named) {
		kprintf("snapshot: usage: snapshot create|delete /MOUNT NAME | snapshot list /MOUNT\n");
		return 1;
	}
	return snapshot_cmd("snapshot", argv[1], argv[2], named ? argv[3] : NULL);
}
SHELL_COMMAND(snapshot, "snapshot create|delete /MOUNT NAME | list /MOUNT",
	      "read-only snapshots of a filesystem: instant, shared until changed", cmd_snapshot);

static int cmd_clone(int argc, char **argv)
{
	if (argc != 3) {
		kprintf("clone: usage: clone /MOUNT NAME (a writable snapshot; delete with snapshot delete)\n");
		return 1;
	}
	return snapshot_cmd("clone", "clone", argv[1], argv[2]);
}
SHELL_COMMAND(clone, "clone /MOUNT NAME", "a writable snapshot of a filesystem", cmd_clone);
