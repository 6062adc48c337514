/*
 * What the file server exports: the mounted filesystems (fs/kernel/mounts.h)
 * that config.txt's `export` key names (all of them by default), served by
 * the portable operations of proto/serve_cowfs.h.
 *
 * The export table follows the mount table: a worker compares the mount
 * table's generation before each request and rebuilds the table when a
 * filesystem was mounted or unmounted since.  The server core reads the
 * table without a lock, so a table once published is never changed or
 * freed: a rebuild publishes a new one (a mount or umount from the shell
 * keeps about 2 KiB of old table; nothing else allocates here).  Every
 * table has room for FSK_MAX_MOUNTS entries, so a reader pairing the new
 * pointer with the old count still reads inside it.
 *
 * A handle's filesystem is found by its fsid among the mounts, with a use
 * held while the operation runs, so `umount` answers "in use" rather than
 * pulling the filesystem from under a request.
 */
#include "net/apfp.h"
#include "net/apfp_fs.h"
#include "proto/serve_cowfs.h"
#include "fs/kernel/mounts.h"
#include "boot/bootinfo.h"
#include "kernel/errno.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/mm.h"
#include "kernel/sync.h"

struct exptab {
	struct proto_export_cfg e[FSK_MAX_MOUNTS];
	char names[FSK_MAX_MOUNTS][64];
	unsigned n;
};

static struct proto_cowfs pc;
static struct mutex exp_lock;
static unsigned exp_gen = ~0u;

static bool fsid_match(struct fsk_mount *fm, void *arg)
{
	return proto_cowfs_fsid(fm->m) == *(const uint64_t *)arg;
}

static struct cowfs_mount *exp_get(void *arg, uint64_t fsid, void **use)
{
	(void)arg;
	struct fsk_mount *fm = fsk_get_if(fsid_match, &fsid);
	*use = fm;
	return fm ? fm->m : NULL;
}

static void exp_put(void *arg, void *use)
{
	(void)arg;
	fsk_put(use);
}

/* Bytes of v before the next ':' or ',' (or its end). */
static size_t token_len(const char *v)
{
	size_t n = 0;
	while (v[n] && v[n] != ':' && v[n] != ',')
		n++;
	return n;
}

/* The export options config.txt gives the mount `name`: false when it is
 * not exported.  `export` was checked by the loader (boot/config.c). */
static bool exp_options(const char *name, uint32_t *flags)
{
	const char *v = boot_info->config.exports;
	size_t len = strlen(name);
	*flags = 0;
	if (!strcmp(v, "all"))
		return true;
	if (!strcmp(v, "none"))
		return false;
	while (*v) {
		size_t n = token_len(v);
		bool hit = n == len && !strncmp(v, name, n);
		v += n;
		while (*v == ':') {
			v++;
			if (hit && !strncmp(v, "ro", 2))
				*flags |= PROTO_EXP_RO;
			else if (hit && !strncmp(v, "anon", 4))
				*flags |= PROTO_EXP_ANON;
			v += token_len(v);
		}
		if (hit)
			return true;
		if (*v == ',')
			v++;
	}
	return false;
}

static void exp_add(struct fsk_mount *fm, void *arg)
{
	struct exptab *t = arg;
	uint32_t flags;
	if (t->n == FSK_MAX_MOUNTS || !exp_options(fm->name, &flags))
		return;
	struct proto_export_cfg *e = &t->e[t->n];
	int err = proto_cowfs_export(fm->m, e);
	if (err) {
		kprintf("proto: /%s is not exported: its root directory does not read (%s)\n", fm->name,
			strerror(err));
		return;
	}
	strlcpy(t->names[t->n], fm->name, sizeof(t->names[0]));
	e->name = t->names[t->n];
	e->flags = flags | (fm->readonly ? PROTO_EXP_RO : 0);
	t->n++;
}

void apfp_fs_refresh(struct proto_server *srv)
{
	unsigned gen = fsk_generation();
	if (__atomic_load_n(&exp_gen, __ATOMIC_ACQUIRE) == gen)
		return;
	mutex_lock(&exp_lock);
	gen = fsk_generation();
	if (exp_gen != gen) {
		struct exptab *t = kzalloc(sizeof(*t));
		if (t) {
			fsk_each(exp_add, t);
			__atomic_store_n(&srv->exports, t->e, __ATOMIC_RELEASE);
			__atomic_store_n(&srv->nexports, t->n, __ATOMIC_RELEASE);
			__atomic_store_n(&exp_gen, gen, __ATOMIC_RELEASE);
		}       /* else: the old table stays; tried again at the next request */
	}
	mutex_unlock(&exp_lock);
}

int apfp_fs_init(struct proto_server *srv, const void *handle_key, size_t key_len)
{
	int rc = proto_cowfs_init(&pc, exp_get, exp_put, NULL);
	if (rc)
		return rc;
	mutex_init(&exp_lock, "apfp-exports");
	proto_server_init(srv, &proto_cowfs_ops, &pc, handle_key, key_len);
	proto_server_set_exports(srv, NULL, 0);
	apfp_fs_refresh(srv);
	return 0;
}
