/*
 * The protocol end to end (the harness of tests/host/apfp_serve_env.h: the
 * host server over an image, or the appliance): MKNOD (docs/protocol.md
 * §5.3) -- a fifo, a socket and devices seen alike by the reply, GETATTR,
 * LOOKUP, READDIRPLUS and READDIR's type byte, and the refusals: the name
 * exists, a type with a call of its own, a device number on a fifo, a size,
 * a device from another uid than 0, a snapshot.
 */
#define TEST_SUITE "apfp_serve_special"
#include "tests/host/test.h"
#include "tests/host/apfp_serve_env.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The special file of each type in directory d, seen by LOOKUP, GETATTR,
 * READDIRPLUS and READDIR alike (type, rdev, mode, owner). */
struct special { const char *name; uint8_t type; uint32_t major, minor; };
static const struct special specials[] = {
	{ "fifo", PROTO_T_FIFO, 0, 0 }, { "sock", PROTO_T_SOCK, 0, 0 },
	{ "null", PROTO_T_CHR, 1, 3 }, { "disk", PROTO_T_BLK, 259, 0x12345 },
};
#define NSPECIAL (sizeof(specials) / sizeof(specials[0]))

static bool attr_is(const struct proto_attr *a, const struct special *s)
{
	return a->type == s->type && a->rdev_major == s->major && a->rdev_minor == s->minor && a->mode == 0640 &&
	       a->uid == 1234 && a->gid == 4321 && a->size == 0;
}

struct special_seen { unsigned plus, plain; bool bad; };

static int special_cb(void *arg, const char *name, const struct apfp_obj *o)
{
	struct special_seen *s = arg;
	for (unsigned i = 0; i < NSPECIAL; i++)
		if (!strcmp(name, specials[i].name)) {
			s->bad |= !attr_is(&o->attr, &specials[i]);
			s->plus |= 1u << i;
		}
	return 0;
}

TEST(mknod_special_files_and_refusals)
{
	struct apfp_obj d, o, again;
	struct proto_attr a;
	struct proto_client_reply r;
	EXPECT_EQ_INT(apfp_mkdir(&c, &root.fh, "special", 0777, &d), 0);
	for (unsigned i = 0; i < NSPECIAL; i++) {
		const struct special *s = &specials[i];
		EXPECT_EQ_INT(apfp_mknod_as(&c, &d.fh, s->name, s->type, 0640, s->major, s->minor, 1234, 4321, &o), 0);
		EXPECT(attr_is(&o.attr, s));
		EXPECT_EQ_INT(apfp_getattr(&c, &o.fh, &a), 0);
		EXPECT(attr_is(&a, s));
		EXPECT_EQ_INT(apfp_lookup(&c, &d.fh, s->name, &again), 0);
		EXPECT(attr_is(&again.attr, s) && !memcmp(&again.fh, &o.fh, sizeof(o.fh)));
		/* the name exists */
		EXPECT_EQ_INT(apfp_mknod_as(&c, &d.fh, s->name, s->type, 0640, s->major, s->minor, 0, 0, &o), -EEXIST);
	}
	struct special_seen seen = { 0 };
	EXPECT_EQ_INT(apfp_readdir(&c, &d.fh, special_cb, &seen), 0);
	EXPECT(!seen.bad && seen.plus == (1u << NSPECIAL) - 1);
	/* READDIR's type byte */
	struct proto_readdir_req rq = { .dir = d.fh, .maxcount = 4096 };
	EXPECT_EQ_INT(status(PROTO_OP_READDIR, &rq, &r), 0);
	const struct proto_readdir_rep *rep = (const void *)r.msg;
	struct proto_dirent e;
	uint32_t pos = 0;
	while (!r.hdr.status && proto_list_next(&rep->entries, PROTO_L_DIRENT, &pos, &e) > 0)
		for (unsigned i = 0; i < NSPECIAL; i++)
			if (e.name.len == strlen(specials[i].name) && !memcmp(e.name.p, specials[i].name, e.name.len)) {
				EXPECT_EQ_INT(e.type, specials[i].type);
				seen.plain |= 1u << i;
			}
	EXPECT_EQ_INT(seen.plain, (1u << NSPECIAL) - 1);

	/* Refusals: the types with calls of their own, a device number on a
	 * fifo, a size, a device made by another uid than 0, a snapshot. */
	struct proto_mknod_req q = { .dir = d.fh, .name = { "x", 1 }, .type = PROTO_T_REG };
	EXPECT_EQ_INT(status(PROTO_OP_MKNOD, &q, &r), PROTO_E_INVAL);
	q.type = PROTO_T_DIR;
	EXPECT_EQ_INT(status(PROTO_OP_MKNOD, &q, &r), PROTO_E_INVAL);
	q.type = PROTO_T_FIFO;
	q.rdev_minor = 1;
	EXPECT_EQ_INT(status(PROTO_OP_MKNOD, &q, &r), PROTO_E_INVAL);
	q.rdev_minor = 0;
	q.sattr.mask = PROTO_SA_SIZE;
	EXPECT_EQ_INT(status(PROTO_OP_MKNOD, &q, &r), PROTO_E_INVAL);
	q.sattr.mask = 0;
	EXPECT_EQ_INT(apfp_lookup(&c, &d.fh, "x", &o), -ENOENT);
	q.name = (struct proto_str){ "f", 1 };
	EXPECT_EQ_INT(apfp_lookup(&c, &d.fh, "fifo", &o), 0);
	q.dir = o.fh;                   /* a fifo is no directory */
	EXPECT_EQ_INT(status(PROTO_OP_MKNOD, &q, &r), PROTO_E_NOTDIR);
	struct apfpc user;
	static const uint32_t user_ids[2] = { 1000, 1000 };
	EXPECT_EQ_INT(connect_as(&user, user_ids), 0);
	EXPECT_EQ_INT(apfp_mknod_as(&user, &d.fh, "dev", PROTO_T_CHR, 0600, 1, 3, 1000, 1000, &o), -EPERM);
	EXPECT_EQ_INT(apfp_mknod_as(&user, &d.fh, "dev", PROTO_T_BLK, 0600, 8, 1, 1000, 1000, &o), -EPERM);
	EXPECT_EQ_INT(apfp_lookup(&c, &d.fh, "dev", &o), -ENOENT);
	/* fifos and sockets: anyone; the header's ids own it without sattr */
	struct proto_mknod_req uq = { .dir = d.fh, .name = { "ufifo", 5 }, .type = PROTO_T_FIFO };
	memset(&r, 0, sizeof(r));
	EXPECT_EQ_INT(apfpc_call(&user, PROTO_OP_MKNOD, &uq, &r), 0);
	EXPECT_EQ_INT(r.hdr.status, 0);
	const struct proto_newobj_rep *nr = (const void *)r.msg;
	EXPECT(nr->attr.type == PROTO_T_FIFO && nr->attr.uid == 1000 && nr->attr.gid == 1000 &&
	       nr->attr.mode == 0644);
	apfpc_close(&user);
	uint32_t id = 0;
	EXPECT_EQ_INT(apfp_snap_create(&c, &root.fh, "mknod-snap", &id), 0);
	struct proto_fh_req lq = { root.fh };
	EXPECT_EQ_INT(status(PROTO_OP_SNAP_LIST, &lq, &r), 0);
	struct proto_snap sn;
	pos = 0;
	EXPECT_EQ_INT(proto_list_next(&((const struct proto_snap_list_rep *)r.msg)->snaps, PROTO_L_SNAP, &pos, &sn), 1);
	struct proto_mknod_req sq = { .dir = sn.root, .name = { "y", 1 }, .type = PROTO_T_FIFO };
	EXPECT_EQ_INT(status(PROTO_OP_MKNOD, &sq, &r), PROTO_E_ROFS);
	EXPECT_EQ_INT(apfp_snap_delete(&c, &root.fh, "mknod-snap"), 0);
	/* renamed, linked and removed like any file */
	EXPECT_EQ_INT(apfp_rename(&c, &d.fh, "fifo", &d.fh, "fifo2", 0), 0);
	EXPECT_EQ_INT(apfp_lookup(&c, &d.fh, "null", &o), 0);
	EXPECT_EQ_INT(apfp_link(&c, &o.fh, &d.fh, "null2", &a), 0);
	EXPECT(a.nlink == 2 && a.type == PROTO_T_CHR && a.rdev_major == 1 && a.rdev_minor == 3);
	const char *const gone[] = { "fifo2", "sock", "null", "null2", "disk", "ufifo" };
	for (unsigned i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
		EXPECT_EQ_INT(apfp_remove(&c, &d.fh, gone[i], false), 0);
}

int main(void)
{
	return apfp_serve_suite_main("apfp-serve-special", test_main);
}
