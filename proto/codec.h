/*
 * The one encoder/decoder of the protocol, used by the server and the
 * client (docs/protocol.md §1, §5).
 *
 * Receiving a frame:
 *   1. read PROTO_HDR_SIZE bytes, proto_hdr_decode() them: it checks magic,
 *      flags, reserved bits, version and length against the negotiated
 *      limit before anything else is read or allocated;
 *   2. read `length` body bytes (plus the tag on keyed sessions, checked by
 *      proto_session_open() in proto/auth.h before parsing);
 *   3. proto_decode_body() into the structure of the opcode (wire.h;
 *      proto_msg_size() says how large).  It checks every length against
 *      the bytes left and the field's limit, every enum and flag set,
 *      names (one component: not empty, ".", "..", no '/' or NUL,
 *      <= 255 bytes), and that the body is consumed exactly.
 * Sending: proto_encode() applies the same checks to the structure, then
 * writes header and body.
 *
 * Every function returns 0 (or a length) or a negative errno, and fills
 * `err->msg` with words naming the message and field when it fails:
 *   -PLAT_EBADMSG       malformed (truncated, trailing bytes, bad magic,
 *                       bad enum/bool/flags, length beyond the body)
 *   -PLAT_EPROTO        wrong protocol version
 *   -PLAT_EMSGSIZE      frame longer than the limit / buffer too small
 *   -PLAT_ENOSYS        unknown opcode (the header is otherwise sound, so
 *                       the body can be skipped and BADOP answered)
 *   -PLAT_EINVAL        a name that is not a single component, bad sattr
 *   -PLAT_ENAMETOOLONG  name, target, xattr name or client id too long
 * proto_status_from_errno() turns them into the wire status to answer.
 */
#ifndef PROTO_CODEC_H
#define PROTO_CODEC_H

#include "proto/wire.h"
#include "platform/errno.h"

struct proto_err { char msg[160]; };

/* ---- header ---------------------------------------------------------------- */
void proto_hdr_put(uint8_t out[PROTO_HDR_SIZE], const struct proto_hdr *h);
/* `version` is the one expected on this connection (1 before HELLO). */
int proto_hdr_decode(const uint8_t *buf, size_t len, uint8_t version, uint32_t max_body,
		     struct proto_hdr *h, struct proto_err *err);
/* After a failed proto_hdr_decode: can the stream continue? (Only an
 * unknown opcode leaves the framing intact.) */
static inline bool proto_hdr_error_fatal(int err) { return err != -PLAT_ENOSYS; }

/* ---- opcodes ------------------------------------------------------------------ */
bool proto_op_known(unsigned op);
const char *proto_op_name(unsigned op);          /* "READ", or "op 0x5e" style "unknown" */
/* Size of the structure a body of this opcode decodes into (0: no fields). */
size_t proto_msg_size(unsigned op, bool reply);
/* Operations that change the filesystem (refused on read-only sessions). */
bool proto_op_mutates(unsigned op);
/* Operations only keyed sessions may send (ADMIN): ACCES on anonymous ones. */
bool proto_op_keyed_only(unsigned op);

/* ---- bodies ------------------------------------------------------------------- */
/* Leave the bytes of the data field (READ reply, WRITE request, GETXATTR
 * reply; always the last field) out of the buffer: its length is encoded
 * and counted in h->length, the caller sends the bytes after the returned
 * prefix. */
#define PROTO_ENC_NODATA 0x1u

/* Encode header and body of message `msg` (the structure for h->opcode and
 * the direction in h->flags; NULL for messages without fields) into buf.
 * Sets h->length; returns the bytes written (PROTO_HDR_SIZE + body, less
 * the data with PROTO_ENC_NODATA).  A reply with h->status != 0 has an
 * empty body and msg is ignored. */
int proto_encode(uint8_t *buf, size_t cap, struct proto_hdr *h, const void *msg, unsigned flags,
		 struct proto_err *err);
/* The error reply to request `req`: header only. */
int proto_encode_error(uint8_t *buf, size_t cap, const struct proto_hdr *req, uint32_t status);
/* Decode the body of a frame whose header is h into msg (proto_msg_size
 * bytes, zeroed first). */
int proto_decode_body(const struct proto_hdr *h, const uint8_t *body, size_t len, void *msg,
		      struct proto_err *err);

/* ---- lists (readdir entries, exports, snapshots, xattr names) ------------ */
struct proto_listbuf { uint8_t *buf; uint32_t cap, len, count; };
static inline void proto_listbuf_init(struct proto_listbuf *lb, void *buf, uint32_t cap)
{
	lb->buf = buf;
	lb->cap = cap;
	lb->len = 0;
	lb->count = 0;
}
/* Append one element (struct proto_dirent, ... per kind), checked like a
 * decoded one: 0, -PLAT_ENOSPC when it does not fit (the list is unchanged:
 * a readdir stops there), or a check error. */
int proto_list_add(struct proto_listbuf *lb, enum proto_list_kind kind, const void *elem,
		   struct proto_err *err);
static inline struct proto_list proto_list_of(const struct proto_listbuf *lb)
{
	struct proto_list l = { lb->buf, lb->len, lb->count };
	return l;
}
/* Walk a list: *pos starts at 0; returns 1 with *elem filled, 0 at the end,
 * negative if the list is malformed (never for a decoded one). */
int proto_list_next(const struct proto_list *l, enum proto_list_kind kind, uint32_t *pos,
		    void *elem);

/* ---- status codes --------------------------------------------------------------- */
const char *proto_status_name(uint32_t status);  /* "STALE" */
const char *proto_status_str(uint32_t status);   /* "the file of this handle is gone" */
/* The negative errno a client reports for a wire status (0 for PROTO_OK). */
int proto_status_errno(uint32_t status);
/* The wire status a server answers for a negative errno of the filesystem
 * or of the decoder (PROTO_E_SERVERFAULT for ones without a code). */
uint32_t proto_status_from_errno(int err);

#endif
