/*
 * The codec: round trip of every message in both directions, the wire
 * layout against docs/protocol.md, and every class of malformed input
 * rejected with an error that names the field.
 */
#define TEST_SUITE "proto_codec"
#include "tests/host/test.h"
#include "tests/host/proto_samples.h"

static struct sample smp;
static uint8_t frame[1 << 16];
_Alignas(16) static uint8_t out_msg[SAMPLE_MSG_MAX];

#define EXPECT_CONTAINS(s, sub) \
	do { if (!strstr((s), (sub))) { char m_[400]; snprintf(m_, sizeof(m_), "\"%s\" lacks \"%s\"", (s), (sub)); \
	     test_fail_at(__FILE__, __LINE__, m_); } } while (0)

static int encode_sample(unsigned op, bool reply, uint64_t seed)
{
	struct proto_err err;
	EXPECT_EQ_INT(sample_fill(&smp, op, reply, seed), 0);
	return proto_encode(frame, sizeof(frame), &smp.hdr, smp.msg, 0, &err);
}

/* The version a frame must carry: 1 for HELLO (docs/protocol.md §2). */
static uint8_t version_of(const uint8_t *f, size_t n)
{
	return n > 5 && f[5] == PROTO_OP_HELLO ? PROTO_HELLO_VERSION : PROTO_VERSION_MAX;
}

/* Decode a whole frame in `frame` of n bytes. */
static int decode(size_t n, struct proto_hdr *h, struct proto_err *err)
{
	int rc = proto_hdr_decode(frame, n, version_of(frame, n), PROTO_MAX_BODY, h, err);
	if (rc < 0)
		return rc;
	return proto_decode_body(h, frame + PROTO_HDR_SIZE, n - PROTO_HDR_SIZE, out_msg, err);
}

TEST(round_trip_every_message)
{
	unsigned ops = 0, cases = 0;

	for (unsigned op = 0; op < 256; op++) {
		if (!proto_op_known(op))
			continue;
		ops++;
		for (int reply = 0; reply < 2; reply++) {
			for (uint64_t seed = 1; seed <= 40; seed++) {
				struct proto_hdr h;
				struct proto_err err;
				const char *what;
				uint8_t again[sizeof(frame)];
				int n = encode_sample(op, reply, seed), n2;

				if (n < 0) {
					EXPECT(!"sample does not encode");
					return;
				}
				EXPECT_EQ_INT(n, PROTO_HDR_SIZE + smp.hdr.length);
				if (decode((size_t)n, &h, &err) < 0) {
					test_fail_at(__FILE__, __LINE__, err.msg);
					return;
				}
				EXPECT_EQ_INT(h.opcode, op);
				EXPECT_EQ_INT(h.id, smp.hdr.id);
				EXPECT_EQ_INT(h.uid, smp.hdr.uid);
				EXPECT_EQ_INT(h.gid, smp.hdr.gid);
				EXPECT_EQ_INT(!!(h.flags & PROTO_F_REPLY), reply);
				if (!sample_equal(op, reply, smp.msg, out_msg, &what)) {
					char m[128];
					snprintf(m, sizeof(m), "%s %s: field %s differs after decode",
						 proto_op_name(op), reply ? "reply" : "request", what);
					test_fail_at(__FILE__, __LINE__, m);
					return;
				}
				n2 = proto_encode(again, sizeof(again), &h, out_msg, 0, &err);
				EXPECT(n2 == n && memcmp(again, frame, (size_t)n) == 0);
				cases++;
			}
		}
	}
	EXPECT_EQ_INT(ops, 34);         /* docs/protocol.md §5 lists 34 operations */
	EXPECT_EQ_INT(cases, 34 * 2 * 40);
}

/* The header and a GETATTR request, byte by byte as docs/protocol.md §1. */
TEST(wire_layout_header_and_getattr)
{
	struct proto_hdr h = { .version = PROTO_VERSION_MAX, .opcode = PROTO_OP_GETATTR, .id = 0x11223344,
			       .uid = 1000, .gid = 0x01020304 };
	struct proto_fh_req q;
	struct proto_err err;
	static const uint8_t want_hdr[32] = {
		'A', 'P', 'F', 'P', 3, 0x10, 0, 0, 0x44, 0x33, 0x22, 0x11, 40, 0, 0, 0,
		0, 0, 0, 0, 0xe8, 0x03, 0, 0, 4, 3, 2, 1, 0, 0, 0, 0 };

	for (int i = 0; i < PROTO_HANDLE_SIZE; i++)
		q.fh.b[i] = (uint8_t)(0xa0 + i);
	EXPECT_EQ_INT(proto_encode(frame, sizeof(frame), &h, &q, 0, &err), 32 + 40);
	EXPECT(memcmp(frame, want_hdr, 32) == 0);
	EXPECT(memcmp(frame + 32, q.fh.b, 40) == 0);
}

/* ADMIN (§5.4): request run u64, offset u64, max u32, command str; reply
 * run u64, result u32, done bool, output data. */
TEST(wire_layout_admin)
{
	struct proto_hdr h = { .version = PROTO_VERSION_MAX, .opcode = PROTO_OP_ADMIN, .id = 9 };
	struct proto_admin_req q = { .run = 0x1122334455667788ull, .offset = 0x10, .max = 0x20,
				     .command = { "df", 2 } };
	struct proto_admin_rep r = { .run = 5, .result = (uint32_t)-22, .done = true,
				     .output = { (const uint8_t *)"ok\n", 3 } };
	struct proto_err err;
	const uint8_t *b = frame + 32;

	EXPECT_EQ_INT(proto_encode(frame, sizeof(frame), &h, &q, 0, &err), 32 + 8 + 8 + 4 + 2 + 2);
	EXPECT_EQ_INT(frame[5], 0x40);
	EXPECT_EQ_INT(b[0], 0x88);
	EXPECT_EQ_INT(b[7], 0x11);
	EXPECT_EQ_INT(b[8], 0x10);
	EXPECT_EQ_INT(b[16], 0x20);
	EXPECT(b[20] == 2 && b[21] == 0 && b[22] == 'd' && b[23] == 'f');
	/* an empty command is refused like any empty text field */
	q.command.len = 0;
	EXPECT_EQ_INT(proto_encode(frame, sizeof(frame), &h, &q, 0, &err), -PLAT_EINVAL);
	h.flags = PROTO_F_REPLY;
	EXPECT_EQ_INT(proto_encode(frame, sizeof(frame), &h, &r, 0, &err), 32 + 8 + 4 + 1 + 4 + 3);
	EXPECT_EQ_INT(b[0], 5);
	EXPECT(b[8] == 0xea && b[11] == 0xff);          /* -22, two's complement */
	EXPECT_EQ_INT(b[12], 1);
	EXPECT(b[13] == 3 && b[17] == 'o');
}

/* WRITE request: handle, offset u64, stable u8, data (u32 length + bytes). */
TEST(wire_layout_write)
{
	struct proto_hdr h = { .version = PROTO_VERSION_MAX, .opcode = PROTO_OP_WRITE, .id = 7 };
	struct proto_write_req q = { .offset = 0x0102030405060708ull, .stable = PROTO_FILE_SYNC,
				     .data = { (const uint8_t *)"hello", 5 } };
	struct proto_err err;
	const uint8_t *b = frame + 32;

	memset(q.fh.b, 0xee, sizeof(q.fh.b));
	EXPECT_EQ_INT(proto_encode(frame, sizeof(frame), &h, &q, 0, &err), 32 + 40 + 8 + 1 + 4 + 5);
	EXPECT_EQ_INT(b[40], 8);
	EXPECT_EQ_INT(b[47], 1);
	EXPECT_EQ_INT(b[48], 2);
	EXPECT_EQ_INT(b[49], 5);
	EXPECT_EQ_INT(b[50], 0);
	EXPECT(memcmp(b + 53, "hello", 5) == 0);
}

TEST(header_errors)
{
	struct proto_hdr h, ok = { .version = 1, .opcode = PROTO_OP_PING, .id = 1 };
	struct proto_err err;
	int n = proto_encode(frame, sizeof(frame), &ok, NULL, 0, &err);

	EXPECT_EQ_INT(n, 32);
	EXPECT_EQ_INT(proto_hdr_decode(frame, 32, 1, PROTO_MAX_BODY, &h, &err), 0);
	EXPECT_EQ_INT(proto_hdr_decode(frame, 31, 1, PROTO_MAX_BODY, &h, &err), -PLAT_EBADMSG);
	EXPECT_CONTAINS(err.msg, "truncated");
	frame[0] = 'X';
	EXPECT_EQ_INT(proto_hdr_decode(frame, 32, 1, PROTO_MAX_BODY, &h, &err), -PLAT_EBADMSG);
	EXPECT_CONTAINS(err.msg, "bad magic");
	EXPECT(proto_hdr_error_fatal(-PLAT_EBADMSG));
	frame[0] = 'A';
	frame[4] = 2;
	EXPECT_EQ_INT(proto_hdr_decode(frame, 32, 1, PROTO_MAX_BODY, &h, &err), -PLAT_EPROTO);
	EXPECT_CONTAINS(err.msg, "version 2");
	frame[4] = 1;
	frame[12] = 0xff; frame[13] = 0xff; frame[14] = 0xff; frame[15] = 0x7f;   /* ~2 GiB body */
	EXPECT_EQ_INT(proto_hdr_decode(frame, 32, 1, PROTO_MAX_BODY, &h, &err), -PLAT_EMSGSIZE);
	EXPECT_CONTAINS(err.msg, "exceeds the limit");
	frame[12] = 0; frame[13] = 0; frame[14] = 1; frame[15] = 0;   /* 64 KiB: over a 32 KiB limit */
	EXPECT_EQ_INT(proto_hdr_decode(frame, 32, 1, 32768, &h, &err), -PLAT_EMSGSIZE);
	EXPECT_EQ_INT(proto_hdr_decode(frame, 32, 1, 65536, &h, &err), 0);
	frame[14] = 0;
	frame[5] = 0x3f;
	EXPECT_EQ_INT(proto_hdr_decode(frame, 32, 1, PROTO_MAX_BODY, &h, &err), -PLAT_ENOSYS);
	EXPECT_CONTAINS(err.msg, "unknown opcode 0x3f");
	EXPECT(!proto_hdr_error_fatal(-PLAT_ENOSYS));
	frame[5] = PROTO_OP_PING;
	frame[6] = 0x4;
	EXPECT_EQ_INT(proto_hdr_decode(frame, 32, 1, PROTO_MAX_BODY, &h, &err), -PLAT_EBADMSG);
	EXPECT_CONTAINS(err.msg, "flags");
	frame[6] = 0;
	frame[31] = 1;
	EXPECT_EQ_INT(proto_hdr_decode(frame, 32, 1, PROTO_MAX_BODY, &h, &err), -PLAT_EBADMSG);
	EXPECT_CONTAINS(err.msg, "reserved");
	frame[31] = 0;
	frame[16] = 5;          /* a request with a status */
	EXPECT_EQ_INT(proto_hdr_decode(frame, 32, 1, PROTO_MAX_BODY, &h, &err), -PLAT_EBADMSG);
}

/* Every strict prefix of every message body is rejected as malformed. */
TEST(truncated_bodies)
{
	for (unsigned op = 0; op < PROTO_OP_LIMIT; op++) {
		if (!proto_op_known(op))
			continue;
		for (int reply = 0; reply < 2; reply++) {
			int n = encode_sample(op, reply, 3);
			struct proto_hdr h;
			struct proto_err err;
			size_t body = (size_t)n - PROTO_HDR_SIZE;

			EXPECT(n >= PROTO_HDR_SIZE);
			EXPECT_EQ_INT(proto_hdr_decode(frame, (size_t)n, version_of(frame, (size_t)n), PROTO_MAX_BODY, &h, &err), 0);
			for (size_t cut = 0; cut < body; cut++) {
				uint8_t *copy = malloc(cut + 1);
				memcpy(copy, frame + PROTO_HDR_SIZE, cut);
				h.length = (uint32_t)cut;
				int rc = proto_decode_body(&h, copy, cut, out_msg, &err);
				free(copy);
				if (rc != -PLAT_EBADMSG) {
					char m[200];
					snprintf(m, sizeof(m), "%s %s cut at %zu of %zu: rc %d", proto_op_name(op),
						 reply ? "reply" : "request", cut, body, rc);
					test_fail_at(__FILE__, __LINE__, m);
					return;
				}
			}
		}
	}
}

TEST(trailing_bytes_and_length_mismatch)
{
	struct proto_hdr h;
	struct proto_err err;
	int n = encode_sample(PROTO_OP_LOOKUP, false, 1);

	frame[n] = 0;
	frame[12]++;            /* header length covers one more byte */
	EXPECT_EQ_INT(decode((size_t)n + 1, &h, &err), -PLAT_EBADMSG);
	EXPECT_CONTAINS(err.msg, "trailing");
	EXPECT_EQ_INT(proto_hdr_decode(frame, (size_t)n, PROTO_VERSION_MAX, PROTO_MAX_BODY, &h, &err), 0);
	EXPECT_EQ_INT(proto_decode_body(&h, frame + 32, (size_t)n - 32, out_msg, &err), -PLAT_EBADMSG);
	EXPECT_CONTAINS(err.msg, "header says");
	/* PING has no fields: any body is malformed */
	struct proto_hdr ping = { .version = PROTO_VERSION_MAX, .opcode = PROTO_OP_PING, .length = 1 };
	EXPECT_EQ_INT(proto_decode_body(&ping, frame, 1, NULL, &err), -PLAT_EBADMSG);
}

static int lookup_encode(const char *name, size_t len, struct proto_err *err)
{
	struct proto_hdr h = { .version = PROTO_VERSION_MAX, .opcode = PROTO_OP_LOOKUP };
	struct proto_dirop_req q = { .name = { name, (uint16_t)len } };
	return proto_encode(frame, sizeof(frame), &h, &q, 0, err);
}

/* Names: one component, 1..255 bytes, no '/', no NUL, not "." or "..";
 * refused by the encoder (client side) and the decoder (server side). */
TEST(names)
{
	static char longname[300];
	struct proto_err err;
	struct proto_hdr h;
	static const struct { const char *s; size_t len; int rc; } cases[] = {
		{ "a/b", 3, -PLAT_EINVAL }, { "a\0b", 3, -PLAT_EINVAL }, { ".", 1, -PLAT_EINVAL },
		{ "..", 2, -PLAT_EINVAL }, { "", 0, -PLAT_EINVAL }, { "/", 1, -PLAT_EINVAL },
		{ "...", 3, 0 }, { ".a", 2, 0 }, { "a.", 2, 0 }, { "..x", 3, 0 }, { "x y", 3, 0 },
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = lookup_encode(cases[i].s, cases[i].len, &err);
		EXPECT_EQ_INT(rc < 0 ? rc : 0, cases[i].rc);
		/* the same bytes placed in a valid frame by hand */
		lookup_encode("abc", 3, &err);
		uint8_t *name = frame + 32 + 40;
		name[0] = (uint8_t)cases[i].len;
		memcpy(name + 2, cases[i].s, cases[i].len);
		frame[12] = (uint8_t)(40 + 2 + cases[i].len);
		rc = decode(32 + 40 + 2 + cases[i].len, &h, &err);
		EXPECT_EQ_INT(rc, cases[i].rc);
		if (cases[i].rc)
			EXPECT_CONTAINS(err.msg, "LOOKUP request, field name");
	}
	memset(longname, 'x', sizeof(longname));
	EXPECT(lookup_encode(longname, 255, &err) > 0);
	EXPECT_EQ_INT(lookup_encode(longname, 256, &err), -PLAT_ENAMETOOLONG);
	EXPECT_CONTAINS(err.msg, "longer than 255");
	/* decoder: a 256-byte name arriving */
	lookup_encode(longname, 255, &err);
	frame[32 + 40] = 0; frame[32 + 41] = 1;
	frame[32 + 40 + 2 + 255] = 'x';
	frame[12] = (uint8_t)((40 + 2 + 256) & 0xff); frame[13] = (uint8_t)((40 + 2 + 256) >> 8);
	EXPECT_EQ_INT(decode(32 + 40 + 2 + 256, &h, &err), -PLAT_ENAMETOOLONG);
	/* a length running past the body */
	lookup_encode("abc", 3, &err);
	frame[32 + 40] = 0xff; frame[32 + 41] = 0xff;
	EXPECT_EQ_INT(decode(32 + 40 + 2 + 3, &h, &err), -PLAT_EBADMSG);
	EXPECT_CONTAINS(err.msg, "runs past the end");
}

TEST(other_string_limits)
{
	static char big[5000];
	struct proto_err err;
	struct proto_hdr h = { .version = PROTO_VERSION_MAX, .opcode = PROTO_OP_SYMLINK };
	struct proto_symlink_req q = { .name = { "l", 1 }, .target = { big, 4095 } };

	memset(big, 'a', sizeof(big));
	big[10] = '/';          /* targets are paths: '/' is fine */
	EXPECT(proto_encode(frame, sizeof(frame), &h, &q, 0, &err) > 0);
	q.target.len = 4096;
	EXPECT_EQ_INT(proto_encode(frame, sizeof(frame), &h, &q, 0, &err), -PLAT_ENAMETOOLONG);
	EXPECT_CONTAINS(err.msg, "SYMLINK request, field target");
	q.target.len = 3;
	q.target.p = "a\0b";
	EXPECT_EQ_INT(proto_encode(frame, sizeof(frame), &h, &q, 0, &err), -PLAT_EINVAL);

	struct proto_hdr hx = { .version = PROTO_VERSION_MAX, .opcode = PROTO_OP_GETXATTR };
	struct proto_xattr_req x = { .name = { big, 256 } };
	EXPECT_EQ_INT(proto_encode(frame, sizeof(frame), &hx, &x, 0, &err), -PLAT_ENAMETOOLONG);

	struct proto_hdr hh = { .version = PROTO_VERSION_MAX, .opcode = PROTO_OP_HELLO };
	struct proto_hello_req hq = { .client_id = { big, 65 } };
	EXPECT_EQ_INT(proto_encode(frame, sizeof(frame), &hh, &hq, 0, &err), -PLAT_ENAMETOOLONG);
	hq.client_id.len = 64;
	EXPECT(proto_encode(frame, sizeof(frame), &hh, &hq, 0, &err) > 0);
}

TEST(io_size_limits)
{
	struct proto_err err;
	struct proto_hdr h = { .version = PROTO_VERSION_MAX, .opcode = PROTO_OP_READ };
	struct proto_read_req r = { .count = PROTO_MAX_IO };
	uint8_t *big = calloc(1, PROTO_MAX_BODY + 64);
	struct proto_hdr hd;

	EXPECT(proto_encode(frame, sizeof(frame), &h, &r, 0, &err) > 0);
	r.count = PROTO_MAX_IO + 1;
	EXPECT_EQ_INT(proto_encode(frame, sizeof(frame), &h, &r, 0, &err), -PLAT_EINVAL);
	EXPECT_CONTAINS(err.msg, "READ request, field count");

	/* a WRITE of 1 MiB fits the largest frame; 1 MiB + 1 is refused on
	 * both sides */
	struct proto_hdr hw = { .version = PROTO_VERSION_MAX, .opcode = PROTO_OP_WRITE };
	struct proto_write_req w = { .data = { big, PROTO_MAX_IO } };
	uint8_t *src = calloc(1, PROTO_MAX_IO + 1);
	w.data.p = src;
	int n = proto_encode(big, PROTO_MAX_BODY + 64, &hw, &w, 0, &err);
	EXPECT(n > 0 && hw.length <= PROTO_MAX_BODY);
	w.data.len = PROTO_MAX_IO + 1;
	EXPECT_EQ_INT(proto_encode(big, PROTO_MAX_BODY + 64, &hw, &w, 0, &err), -PLAT_EINVAL);
	/* decoder: patch the data length to MAX_IO + 1 with the byte present */
	w.data.len = PROTO_MAX_IO;
	n = proto_encode(big, PROTO_MAX_BODY + 64, &hw, &w, 0, &err);
	uint32_t len = PROTO_MAX_IO + 1, body = hw.length + 1;
	memcpy(big + 32 + 40 + 8 + 1, &len, 4);
	memcpy(big + 12, &body, 4);
	EXPECT_EQ_INT(proto_hdr_decode(big, (size_t)n + 1, PROTO_VERSION_MAX, PROTO_MAX_BODY, &hd, &err), 0);
	EXPECT_EQ_INT(proto_decode_body(&hd, big + 32, hd.length, out_msg, &err), -PLAT_EINVAL);
	EXPECT_CONTAINS(err.msg, "WRITE request, field data");
	/* a buffer too small is an error, not an overflow */
	EXPECT_EQ_INT(proto_encode(frame, 100, &hw, &w, 0, &err), -PLAT_EMSGSIZE);
	free(src);
	free(big);
}

/* Patch one byte of a valid frame at the offset of a field and decode. */
static int patched(unsigned op, const void *msg, size_t off, uint8_t val, struct proto_err *err)
{
	struct proto_hdr h = { .version = PROTO_VERSION_MAX, .opcode = (uint8_t)op }, d;
	int n = proto_encode(frame, sizeof(frame), &h, msg, 0, err);
	if (n < 0)
		return 1000;
	frame[32 + off] = val;
	return decode((size_t)n, &d, err);
}

TEST(enums_bools_flags_times)
{
	struct proto_err err;
	struct proto_write_req w = { .stable = PROTO_UNSTABLE };
	struct proto_fsync_req f = { .datasync = true };
	struct proto_rename_req rn = { .from_name = { "a", 1 }, .to_name = { "b", 1 } };
	struct proto_setattr_req sa = { .sattr = { .mask = PROTO_SA_ATIME } };
	struct proto_hdr h = { .version = PROTO_VERSION_MAX, .opcode = PROTO_OP_WRITE };

	EXPECT_EQ_INT(patched(PROTO_OP_WRITE, &w, 48, 2, &err), 0);
	EXPECT_EQ_INT(patched(PROTO_OP_WRITE, &w, 48, 3, &err), -PLAT_EBADMSG);
	EXPECT_CONTAINS(err.msg, "field stable");
	w.stable = 3;
	EXPECT_EQ_INT(proto_encode(frame, sizeof(frame), &h, &w, 0, &err), -PLAT_EBADMSG);
	EXPECT_EQ_INT(patched(PROTO_OP_FSYNC, &f, 40, 2, &err), -PLAT_EBADMSG);
	EXPECT_CONTAINS(err.msg, "boolean");
	/* rename flags at 40 + 3 + 40 + 3 */
	EXPECT_EQ_INT(patched(PROTO_OP_RENAME, &rn, 86, 4, &err), -PLAT_EINVAL);
	EXPECT_CONTAINS(err.msg, "unknown flags");
	EXPECT_EQ_INT(patched(PROTO_OP_RENAME, &rn, 86, 3, &err), 0);
	/* sattr: mask at 40; ATIME with ATIME_NOW is refused */
	EXPECT_EQ_INT(patched(PROTO_OP_SETATTR, &sa, 40, PROTO_SA_ATIME | PROTO_SA_ATIME_NOW, &err),
		      -PLAT_EINVAL);
	EXPECT_CONTAINS(err.msg, "atime");
	/* sattr mode 010000 (mode at 44..47) */
	EXPECT_EQ_INT(patched(PROTO_OP_SETATTR, &sa, 45, 0x10, &err), -PLAT_EINVAL);
	/* atime nanoseconds at 40 + 4*4 + 8 + 8 = 72..75: 0x3b9aca00 = 10^9 */
	sa.sattr.atime.nsec = 999999999;
	EXPECT_EQ_INT(patched(PROTO_OP_SETATTR, &sa, 75, 0x3b, &err), 0);
	/* 999999999 = 0x3b9ac9ff; byte 73 0xc9 -> 0xca makes it 1000000255 */
	EXPECT_EQ_INT(patched(PROTO_OP_SETATTR, &sa, 73, 0xca, &err), -PLAT_EBADMSG);
	EXPECT_CONTAINS(err.msg, "nanoseconds");
	/* attr type 0 in a GETATTR reply */
	struct proto_getattr_rep ga = { .attr = { .type = PROTO_T_DIR } };
	struct proto_hdr gh = { .version = PROTO_VERSION_MAX, .opcode = PROTO_OP_GETATTR, .flags = PROTO_F_REPLY }, d;
	int n = proto_encode(frame, sizeof(frame), &gh, &ga, 0, &err);
	frame[32] = 0;
	EXPECT_EQ_INT(decode((size_t)n, &d, &err), -PLAT_EBADMSG);
	EXPECT_CONTAINS(err.msg, "GETATTR reply, field attr.type");
}

/* MKNOD's request and the attr's device number, byte by byte (§5.1,
 * §5.3), and their limits: an unknown type is malformed (BADMSG, as every
 * enum), a device number past Linux's 12-bit major or 20-bit minor INVAL
 * naming the field, on both sides. */
TEST(wire_layout_mknod_and_rdev)
{
	struct proto_err err;
	struct proto_mknod_req q = { .name = { "n", 1 }, .type = PROTO_T_CHR, .rdev_major = 0x0fff,
				     .rdev_minor = 0xfffff };
	struct proto_hdr h = { .version = PROTO_VERSION_MAX, .opcode = PROTO_OP_MKNOD }, d;
	memset(q.dir.b, 0xd1, sizeof(q.dir.b));
	int n = proto_encode(frame, sizeof(frame), &h, &q, 0, &err);
	EXPECT_EQ_INT(n, 32 + 100);     /* dir 40, name 2+1, type 1, sattr 48, major 4, minor 4 */
	EXPECT_EQ_INT(frame[5], 0x29);
	EXPECT_EQ_INT(frame[32 + 43], PROTO_T_CHR);
	static const uint8_t rdev[8] = { 0xff, 0x0f, 0, 0, 0xff, 0xff, 0x0f, 0 };
	EXPECT(!memcmp(frame + 32 + 92, rdev, 8));
	EXPECT_EQ_INT(decode((size_t)n, &d, &err), 0);
	const struct proto_mknod_req *got = (const void *)out_msg;
	EXPECT(got->type == PROTO_T_CHR && got->rdev_major == 0xfff && got->rdev_minor == 0xfffff);
	EXPECT_EQ_INT(patched(PROTO_OP_MKNOD, &q, 43, PROTO_T_FIFO + 1, &err), -PLAT_EBADMSG);
	EXPECT_CONTAINS(err.msg, "MKNOD request, field type");
	EXPECT_EQ_INT(patched(PROTO_OP_MKNOD, &q, 43, 0, &err), -PLAT_EBADMSG);
	EXPECT_EQ_INT(patched(PROTO_OP_MKNOD, &q, 93, 0x10, &err), -PLAT_EINVAL);      /* major 0x1000 */
	EXPECT_CONTAINS(err.msg, "field rdev_major");
	EXPECT_EQ_INT(patched(PROTO_OP_MKNOD, &q, 98, 0x10, &err), -PLAT_EINVAL);      /* minor 0x1fffff */
	EXPECT_CONTAINS(err.msg, "field rdev_minor");
	q.rdev_major = PROTO_RDEV_MAJOR_MAX + 1;
	EXPECT_EQ_INT(proto_encode(frame, sizeof(frame), &h, &q, 0, &err), -PLAT_EINVAL);
	q.rdev_major = 1;
	q.rdev_minor = PROTO_RDEV_MINOR_MAX + 1;
	EXPECT_EQ_INT(proto_encode(frame, sizeof(frame), &h, &q, 0, &err), -PLAT_EINVAL);
	q.rdev_minor = 1;
	q.type = PROTO_T_FIFO + 1;
	EXPECT_EQ_INT(proto_encode(frame, sizeof(frame), &h, &q, 0, &err), -PLAT_EBADMSG);

	/* attr: type, mode, nlink, uid, gid, size, used, then rdev major and minor */
	struct proto_getattr_rep ga = { .attr = { .type = PROTO_T_BLK, .rdev_major = 259, .rdev_minor = 0x12345,
						  .fsid = 0x1122334455667788ull } };
	struct proto_hdr gh = { .version = PROTO_VERSION_MAX, .opcode = PROTO_OP_GETATTR, .flags = PROTO_F_REPLY };
	n = proto_encode(frame, sizeof(frame), &gh, &ga, 0, &err);
	EXPECT_EQ_INT(n, 32 + 117);
	EXPECT_EQ_INT(frame[32], PROTO_T_BLK);
	static const uint8_t arv[8] = { 0x03, 0x01, 0, 0, 0x45, 0x23, 0x01, 0 };
	EXPECT(!memcmp(frame + 32 + 33, arv, 8));
	EXPECT_EQ_INT(frame[32 + 41], 0x88);    /* fsid follows */
	frame[32] = PROTO_T_FIFO;
	EXPECT_EQ_INT(decode((size_t)n, &d, &err), 0);
	frame[32] = PROTO_T_FIFO + 1;
	EXPECT_EQ_INT(decode((size_t)n, &d, &err), -PLAT_EBADMSG);
}

TEST(error_replies)
{
	struct proto_hdr req = { .version = PROTO_VERSION_MAX, .opcode = PROTO_OP_LOOKUP, .id = 99, .uid = 5 }, h;
	struct proto_err err;

	EXPECT_EQ_INT(proto_encode_error(frame, sizeof(frame), &req, PROTO_E_STALE), 32);
	EXPECT_EQ_INT(decode(32, &h, &err), 0);
	EXPECT_EQ_INT(h.status, PROTO_E_STALE);
	EXPECT_EQ_INT(h.id, 99);
	EXPECT(h.flags & PROTO_F_REPLY);
	EXPECT_EQ_INT(h.uid, 0);
	frame[12] = 1;          /* an error reply with a body */
	EXPECT_EQ_INT(decode(33, &h, &err), -PLAT_EBADMSG);
	EXPECT_CONTAINS(err.msg, "error reply (STALE)");
	EXPECT_EQ_INT(proto_encode_error(frame, 10, &req, PROTO_E_STALE), -PLAT_EMSGSIZE);
	/* encode with a status ignores the message */
	struct proto_hdr r = { .version = PROTO_VERSION_MAX, .opcode = PROTO_OP_READ, .flags = PROTO_F_REPLY,
			       .status = PROTO_E_IO };
	EXPECT_EQ_INT(proto_encode(frame, sizeof(frame), &r, NULL, 0, &err), 32);
	struct proto_hdr bad = { .version = PROTO_VERSION_MAX, .opcode = 0x3f };
	EXPECT_EQ_INT(proto_encode(frame, sizeof(frame), &bad, NULL, 0, &err), -PLAT_ENOSYS);
}

/* PROTO_ENC_NODATA: prefix + the caller's data = the full encoding. */
TEST(nodata_encoding)
{
	struct proto_err err;
	static uint8_t full[4096], pre[4096];
	uint8_t data[777];
	struct proto_read_rep r = { .eof = true, .attr = { .type = PROTO_T_REG, .size = 777 },
				    .data = { data, sizeof(data) } };
	struct proto_hdr h1 = { .version = PROTO_VERSION_MAX, .opcode = PROTO_OP_READ, .flags = PROTO_F_REPLY }, h2 = h1;

	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 13);
	int n = proto_encode(full, sizeof(full), &h1, &r, 0, &err);
	int p = proto_encode(pre, sizeof(pre), &h2, &r, PROTO_ENC_NODATA, &err);
	EXPECT_EQ_INT(p + (int)sizeof(data), n);
	EXPECT_EQ_INT(h1.length, h2.length);
	memcpy(pre + p, data, sizeof(data));
	EXPECT(memcmp(pre, full, (size_t)n) == 0);
	/* not allowed when data is not the last field: no such message, so
	 * a SETXATTR (value then flags) shows it */
	struct proto_setxattr_req sx = { .name = { "user.a", 6 }, .value = { data, 3 } };
	struct proto_hdr hs = { .version = PROTO_VERSION_MAX, .opcode = PROTO_OP_SETXATTR };
	EXPECT_EQ_INT(proto_encode(pre, sizeof(pre), &hs, &sx, PROTO_ENC_NODATA, &err), -PLAT_EINVAL);
}

TEST(lists)
{
	uint8_t buf[300];
	struct proto_listbuf lb;
	struct proto_err err;
	struct proto_dirent d = { .cookie = 1, .ino = 2, .type = PROTO_T_REG }, got;
	char name[8];
	unsigned added = 0;

	proto_listbuf_init(&lb, buf, sizeof(buf));
	for (;;) {
		snprintf(name, sizeof(name), "f%04u", added);
		d.name.p = name;
		d.name.len = 5;
		d.cookie = added + 100;
		uint32_t before = lb.len;
		int rc = proto_list_add(&lb, PROTO_L_DIRENT, &d, &err);
		if (rc == -PLAT_ENOSPC) {
			EXPECT_EQ_INT(lb.len, before);
			break;
		}
		EXPECT_EQ_INT(rc, 0);
		added++;
	}
	EXPECT_EQ_INT(added, 300 / (8 + 8 + 1 + 2 + 5));
	EXPECT_EQ_INT(lb.count, added);
	d.name.p = "..";
	d.name.len = 2;
	proto_listbuf_init(&lb, buf, sizeof(buf));
	EXPECT_EQ_INT(proto_list_add(&lb, PROTO_L_DIRENT, &d, &err), -PLAT_EINVAL);
	EXPECT_EQ_INT(lb.count, 0);

	/* through a READDIR reply and back */
	proto_listbuf_init(&lb, buf, sizeof(buf));
	for (unsigned i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "n%u", i);
		d.name.p = name;
		d.name.len = 2;
		d.cookie = i + 1;
		EXPECT_EQ_INT(proto_list_add(&lb, PROTO_L_DIRENT, &d, &err), 0);
	}
	struct proto_readdir_rep rr = { .eof = true, .entries = proto_list_of(&lb),
					.dir_attr = { .type = PROTO_T_DIR } };
	struct proto_hdr h = { .version = PROTO_VERSION_MAX, .opcode = PROTO_OP_READDIR, .flags = PROTO_F_REPLY }, hd;
	int n = proto_encode(frame, sizeof(frame), &h, &rr, 0, &err);
	EXPECT_EQ_INT(decode((size_t)n, &hd, &err), 0);
	struct proto_readdir_rep *dr = (void *)out_msg;
	uint32_t pos = 0;
	unsigned i = 0;
	while (proto_list_next(&dr->entries, PROTO_L_DIRENT, &pos, &got) == 1) {
		EXPECT_EQ_INT(got.cookie, i + 1);
		EXPECT(got.name.len == 2 && got.name.p[0] == 'n' && got.name.p[1] == (char)('0' + i));
		i++;
	}
	EXPECT_EQ_INT(i, 3);
	/* a list count larger than its elements */
	frame[32 + 8 + 1] = 4;
	EXPECT_EQ_INT(decode((size_t)n, &hd, &err), -PLAT_EBADMSG);
}

TEST(status_codes)
{
	static const uint32_t all[] = { PROTO_E_PERM, PROTO_E_NOENT, PROTO_E_IO, PROTO_E_NXIO,
		PROTO_E_ACCES, PROTO_E_EXIST, PROTO_E_XDEV, PROTO_E_NOTDIR, PROTO_E_ISDIR, PROTO_E_INVAL,
		PROTO_E_FBIG, PROTO_E_NOSPC, PROTO_E_ROFS, PROTO_E_MLINK, PROTO_E_NAMETOOLONG,
		PROTO_E_NOTEMPTY, PROTO_E_NODATA, PROTO_E_NOTSUP, PROTO_E_STALE, PROTO_E_DQUOT,
		PROTO_E_BADHANDLE, PROTO_E_BAD_COOKIE, PROTO_E_TOOSMALL, PROTO_E_SERVERFAULT,
		PROTO_E_BADMSG, PROTO_E_BADOP, PROTO_E_TOOBIG, PROTO_E_BUSY, PROTO_E_VERSION,
		PROTO_E_AUTH, PROTO_E_AUTH_RATE, PROTO_E_NOTAUTH, PROTO_E_CONNLIMIT };

	for (unsigned i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		EXPECT(strcmp(proto_status_name(all[i]), "UNKNOWN") != 0);
		EXPECT(proto_status_errno(all[i]) < 0);
		if (all[i] < 10000)     /* POSIX codes: errno and back */
			EXPECT_EQ_INT(proto_status_from_errno(proto_status_errno(all[i])), all[i]);
	}
	EXPECT_EQ_INT(proto_status_errno(PROTO_OK), 0);
	EXPECT_EQ_INT(proto_status_errno(PROTO_E_BADHANDLE), -PLAT_ESTALE);
	EXPECT_EQ_INT(proto_status_errno(PROTO_E_AUTH_RATE), -PLAT_EAGAIN);
	EXPECT_EQ_INT(proto_status_errno(12345), -PLAT_EIO);
	EXPECT_STREQ(proto_status_name(12345), "UNKNOWN");
	EXPECT_EQ_INT(proto_status_from_errno(-PLAT_ESTALE), PROTO_E_STALE);
	EXPECT_EQ_INT(proto_status_from_errno(-PLAT_EBADMSG), PROTO_E_BADMSG);
	EXPECT_EQ_INT(proto_status_from_errno(-PLAT_EMSGSIZE), PROTO_E_TOOBIG);
	EXPECT_EQ_INT(proto_status_from_errno(-PLAT_EAGAIN), PROTO_E_SERVERFAULT);
	EXPECT_EQ_INT(proto_status_from_errno(-PLAT_ENOMEM), PROTO_E_SERVERFAULT);
	EXPECT_EQ_INT(proto_status_from_errno(-PLAT_ENOSYS), PROTO_E_NOTSUP);
	EXPECT_EQ_INT(proto_status_from_errno(0), PROTO_OK);
	EXPECT_STREQ(proto_op_name(PROTO_OP_READDIRPLUS), "READDIRPLUS");
	EXPECT(proto_op_mutates(PROTO_OP_WRITE) && !proto_op_mutates(PROTO_OP_READ));
}

TEST_MAIN()
