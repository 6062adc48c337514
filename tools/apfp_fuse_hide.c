/*
 * apfp-fuse: files that lose their last name while open (as NFS clients do).
 *
 * The server keeps no open state: once a file's last name goes, the file
 * is freed and every handle to it is stale.  A POSIX program may unlink a
 * file it has open and go on reading and writing it (temporary files,
 * editors, package managers), so this mount renames such a file aside
 * instead -- to ".apfp-hidden-<ino>-<n>" in the same directory -- and
 * removes that name at the file's last release.  It covers unlink and a
 * rename over the file, for files opened through this mount; a name that
 * is not the file's last, a file open only elsewhere, and directories are
 * left to the server.  If the mount dies first the hidden name stays, as
 * .nfs files do; it is an ordinary file that can be removed.
 *
 * The open counts and the hidden name live in the node (apfp_fuse.h) under
 * the node table's lock; a->open_files lets unlink and rename skip the
 * extra LOOKUP when nothing is open.
 */
#define _GNU_SOURCE
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include <errno.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <string.h>
#include "tools/apfp_fuse.h"

void afuse_opened(struct afuse *a, uint64_t id)
{
	pthread_mutex_lock(&a->nodes_lock);
	struct afuse_node *n = afuse_node_find_locked(a, id);
	if (n) {
		n->opens++;
		a->open_files++;
	}
	pthread_mutex_unlock(&a->nodes_lock);
}

bool afuse_released(struct afuse *a, uint64_t id, struct proto_handle *dir, char *name, size_t size)
{
	bool remove = false;
	pthread_mutex_lock(&a->nodes_lock);
	struct afuse_node *n = afuse_node_find_locked(a, id);
	if (n && n->opens) {
		n->opens--;
		a->open_files--;
		if (!n->opens && n->hidden_name[0]) {
			*dir = n->hidden_dir;
			snprintf(name, size, "%s", n->hidden_name);
			n->hidden_name[0] = 0;
			remove = true;
		}
	}
	pthread_mutex_unlock(&a->nodes_lock);
	return remove;
}

int afuse_hide_if_open(struct afuse *a, struct afuse_conn *k, const struct proto_handle *dir, const char *name,
		       bool *hidden)
{
	*hidden = false;
	pthread_mutex_lock(&a->nodes_lock);
	bool any = a->open_files != 0;
	pthread_mutex_unlock(&a->nodes_lock);
	if (!any)
		return 0;
	struct apfp_obj o;
	int rc = apfp_lookup(&k->c, dir, name, &o);
	if (rc == -ENOENT)
		return 0;               /* the operation itself will say so */
	if (rc)
		return rc;
	if (o.attr.type != PROTO_T_REG || o.attr.nlink != 1)
		return 0;               /* another name keeps it, or not a file */
	uint64_t id = afuse_node_id(a, &o.attr);
	char hide[64];
	pthread_mutex_lock(&a->nodes_lock);
	struct afuse_node *n = afuse_node_find_locked(a, id);
	bool open = n && n->opens && n->gen == o.attr.gen && !n->hidden_name[0];
	unsigned seq = a->hidden_seq++;
	pthread_mutex_unlock(&a->nodes_lock);
	if (!open)
		return 0;
	snprintf(hide, sizeof(hide), ".apfp-hidden-%llu-%u", (unsigned long long)o.attr.ino, seq);
	rc = apfp_rename(&k->c, dir, name, dir, hide, PROTO_RENAME_NOREPLACE);
	if (rc)
		return rc;
	*hidden = true;             /* the name is gone, as asked */
	bool kept = false;
	pthread_mutex_lock(&a->nodes_lock);
	n = afuse_node_find_locked(a, id);
	if (n && n->opens) {
		n->hidden_dir = *dir;
		snprintf(n->hidden_name, sizeof(n->hidden_name), "%s", hide);
		kept = true;
	}
	pthread_mutex_unlock(&a->nodes_lock);
	return kept ? 0 : apfp_remove(&k->c, dir, hide, false);   /* released meanwhile */
}
