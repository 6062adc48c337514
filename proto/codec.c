/*
 * The codec engine: one walk over a message's field table (codec_int.h)
 * that either writes a C structure to the wire or reads it back.
 *
 * Invariant: nothing is read past the end of the received bytes.  Every
 * read goes through rd_take(), which checks the length against what is
 * left before returning a pointer; lengths from the wire are compared with
 * the bytes left (truncated -> EBADMSG) before the field's own limit, and
 * nothing is ever allocated from a wire length.
 *
 * Invariant: encoder and decoder accept the same values.  field_check()
 * runs on the encoder's input before a field is written and on the
 * decoder's output after it is read.
 */
#include "proto/codec_int.h"
#include "platform/platform.h"

struct wr {
	uint8_t *p;
	size_t cap, len;
	bool nodata;            /* PROTO_ENC_NODATA: count data, do not copy */
};

struct rd {
	const uint8_t *p;
	size_t len, pos;
};

/* Where an error happened, for the message. */
struct where {
	const char *msg;        /* "READ request" */
	const char *top;        /* field of the message */
	const char *field;      /* innermost field */
	struct proto_err *err;
};

static int fail(struct where *w, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct where *w, int code, const char *fmt, ...)
{
	char why[96];
	va_list ap;

	if (!w->err)
		return code;
	va_start(ap, fmt);
	plat_vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (w->top && w->field && w->top != w->field)
		plat_snprintf(w->err->msg, sizeof(w->err->msg), "%s, field %s.%s: %s", w->msg, w->top,
			      w->field, why);
	else if (w->field)
		plat_snprintf(w->err->msg, sizeof(w->err->msg), "%s, field %s: %s", w->msg, w->field, why);
	else
		plat_snprintf(w->err->msg, sizeof(w->err->msg), "%s: %s", w->msg, why);
	return code;
}

/* ---- little-endian primitives ------------------------------------------------ */
static inline void le_put(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t le_get(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint8_t *wr_take(struct wr *w, size_t n)
{
	if (n > w->cap - w->len)
		return NULL;
	w->len += n;
	return w->p + w->len - n;
}

static const uint8_t *rd_take(struct rd *r, size_t n)
{
	if (n > r->len - r->pos)
		return NULL;
	r->pos += n;
	return r->p + r->pos - n;
}

/* ---- checks shared by both directions --------------------------------------------- */
static int check_name(const struct proto_str *s, uint32_t lim, bool component, struct where *w)
{
	if (s->len == 0)
		return fail(w, -PLAT_EINVAL, "empty");
	if (s->len > lim)
		return fail(w, -PLAT_ENAMETOOLONG, "%u bytes, longer than %u", s->len, lim);
	for (uint16_t i = 0; i < s->len; i++) {
		if (s->p[i] == 0)
			return fail(w, -PLAT_EINVAL, "contains a NUL byte at %u", i);
		if (component && s->p[i] == '/')
			return fail(w, -PLAT_EINVAL, "contains '/' (names are single components)");
	}
	if (component && (s->len == 1 || s->len == 2) && s->p[0] == '.' && s->p[s->len - 1] == '.')
		return fail(w, -PLAT_EINVAL, "\"%.*s\" is not a name", s->len, s->p);
	return 0;
}

static int field_check(const struct pf_field *f, const void *v, struct where *w)
{
	switch (f->type) {
	case PF_BOOL: {
		uint8_t b;
		plat_memcpy(&b, v, 1);      /* read the byte: a wire value may not be 0/1 */
		if (b > 1)
			return fail(w, -PLAT_EBADMSG, "boolean is %u", b);
		return 0;
	}
	case PF_ENUM: {
		uint8_t e = *(const uint8_t *)v;
		if (e < f->min || e > f->lim)
			return fail(w, -PLAT_EBADMSG, "value %u not in %u..%u", e, f->min, f->lim);
		return 0;
	}
	case PF_U32_MAX:
		if (*(const uint32_t *)v > f->lim)
			return fail(w, -PLAT_EINVAL, "%u exceeds the limit %u", *(const uint32_t *)v, f->lim);
		return 0;
	case PF_FLAGS:
		if (*(const uint32_t *)v & ~f->lim)
			return fail(w, -PLAT_EINVAL, "unknown flags 0x%x", *(const uint32_t *)v & ~f->lim);
		return 0;
	case PF_NAME:
	case PF_TEXT:
		return check_name(v, f->lim, f->type == PF_NAME, w);
	case PF_DATA: {
		const struct proto_bytes *b = v;
		if (b->len > f->lim)
			return fail(w, -PLAT_EINVAL, "%u bytes, more than %u", b->len, f->lim);
		if (b->len && !b->p)
			return fail(w, -PLAT_EINVAL, "%u bytes but no buffer", b->len);
		return 0;
	}
	case PF_TIME:
		if (((const struct proto_time *)v)->nsec >= 1000000000u)
			return fail(w, -PLAT_EBADMSG, "nanoseconds %u >= 10^9",
				    ((const struct proto_time *)v)->nsec);
		return 0;
	default:
		return 0;
	}
}

/* ---- the walk ------------------------------------------------------------------------- */
static int put_layout(struct wr *o, const struct pf_layout *l, const void *s, struct where *w);
static int get_layout(struct rd *r, const struct pf_layout *l, void *s, struct where *w);

static int put_field(struct wr *o, const struct pf_field *f, const void *v, struct where *w)
{
	static const uint8_t width[] = { [PF_U8] = 1, [PF_BOOL] = 1, [PF_ENUM] = 1, [PF_U16] = 2,
		[PF_U32] = 4, [PF_U32_MAX] = 4, [PF_FLAGS] = 4, [PF_U64] = 8 };
	uint8_t *p;
	int rc;

	w->field = f->name;
	if ((rc = field_check(f, v, w)) < 0)
		return rc;
	switch (f->type) {
	case PF_U8: case PF_BOOL: case PF_ENUM: case PF_U16:
	case PF_U32: case PF_U32_MAX: case PF_FLAGS: case PF_U64: {
		unsigned n = width[f->type];
		uint64_t x = n == 1 ? *(const uint8_t *)v : n == 2 ? *(const uint16_t *)v :
			     n == 4 ? *(const uint32_t *)v : *(const uint64_t *)v;
		if (!(p = wr_take(o, n)))
			break;
		le_put(p, x, n);
		return 0;
	}
	case PF_FIXED: case PF_HANDLE:
		if (!(p = wr_take(o, f->lim)))
			break;
		plat_memcpy(p, v, f->lim);
		return 0;
	case PF_NAME: case PF_TEXT: {
		const struct proto_str *s = v;
		if (!(p = wr_take(o, 2 + (size_t)s->len)))
			break;
		le_put(p, s->len, 2);
		plat_memcpy(p + 2, s->p, s->len);
		return 0;
	}
	case PF_DATA: {
		const struct proto_bytes *b = v;
		if (!(p = wr_take(o, 4)))
			break;
		le_put(p, b->len, 4);
		if (o->nodata)
			return 1;       /* the caller appends the bytes */
		if (!(p = wr_take(o, b->len)))
			break;
		if (b->len)
			plat_memcpy(p, b->p, b->len);
		return 0;
	}
	case PF_TIME: {
		const struct proto_time *t = v;
		if (!(p = wr_take(o, 12)))
			break;
		le_put(p, (uint64_t)t->sec, 8);
		le_put(p + 8, t->nsec, 4);
		return 0;
	}
	case PF_STRUCT:
		return put_layout(o, &pf_structs[f->lim], v, w);
	case PF_LIST: {
		const struct proto_list *l = v;
		if (!(p = wr_take(o, 4 + (size_t)l->len)))
			break;
		le_put(p, l->count, 4);
		if (l->len)
			plat_memcpy(p + 4, l->p, l->len);
		return 0;
	}
	}
	return fail(w, -PLAT_EMSGSIZE, "does not fit in %zu bytes", o->cap);
}

static int get_field(struct rd *r, const struct pf_field *f, void *v, struct where *w)
{
	const uint8_t *p;
	int rc;

	w->field = f->name;
	switch (f->type) {
	case PF_U8: case PF_BOOL: case PF_ENUM:
		if (!(p = rd_take(r, 1)))
			goto truncated;
		*(uint8_t *)v = p[0];
		break;
	case PF_U16:
		if (!(p = rd_take(r, 2)))
			goto truncated;
		*(uint16_t *)v = (uint16_t)le_get(p, 2);
		break;
	case PF_U32: case PF_U32_MAX: case PF_FLAGS:
		if (!(p = rd_take(r, 4)))
			goto truncated;
		*(uint32_t *)v = (uint32_t)le_get(p, 4);
		break;
	case PF_U64:
		if (!(p = rd_take(r, 8)))
			goto truncated;
		*(uint64_t *)v = le_get(p, 8);
		break;
	case PF_FIXED: case PF_HANDLE:
		if (!(p = rd_take(r, f->lim)))
			goto truncated;
		plat_memcpy(v, p, f->lim);
		break;
	case PF_NAME: case PF_TEXT: {
		struct proto_str *s = v;
		if (!(p = rd_take(r, 2)))
			goto truncated;
		s->len = (uint16_t)le_get(p, 2);
		if (!(s->p = (const char *)rd_take(r, s->len)))
			return fail(w, -PLAT_EBADMSG, "length %u runs past the end of the body", s->len);
		break;
	}
	case PF_DATA: {
		struct proto_bytes *b = v;
		if (!(p = rd_take(r, 4)))
			goto truncated;
		b->len = (uint32_t)le_get(p, 4);
		if (!(b->p = rd_take(r, b->len)))
			return fail(w, -PLAT_EBADMSG, "length %u runs past the end of the body", b->len);
		break;
	}
	case PF_TIME: {
		struct proto_time *t = v;
		if (!(p = rd_take(r, 12)))
			goto truncated;
		t->sec = (int64_t)le_get(p, 8);
		t->nsec = (uint32_t)le_get(p + 8, 4);
		break;
	}
	case PF_STRUCT:
		return get_layout(r, &pf_structs[f->lim], v, w);
	case PF_LIST: {
		struct proto_list *l = v;
		const struct pf_layout *el = &pf_structs[f->lim];
		uint8_t tmp[256] __attribute__((aligned(16)));
		size_t start;

		if (!(p = rd_take(r, 4)))
			goto truncated;
		l->count = (uint32_t)le_get(p, 4);
		start = r->pos;
		/* Each element takes at least one byte, so a huge count
		 * ends at the end of the body. */
		for (uint32_t i = 0; i < l->count; i++) {
			PLAT_ASSERT(el->size <= sizeof(tmp));
			if ((rc = get_layout(r, el, tmp, w)) < 0)
				return rc;
		}
		l->p = r->p + start;
		l->len = (uint32_t)(r->pos - start);
		w->field = f->name;
		return 0;
	}
	}
	return field_check(f, v, w);
truncated:
	return fail(w, -PLAT_EBADMSG, "truncated at byte %zu of %zu", r->pos, r->len);
}

static int put_layout(struct wr *o, const struct pf_layout *l, const void *s, struct where *w)
{
	const char *why = NULL;
	int rc;

	for (unsigned i = 0; i < l->n; i++)
		if ((rc = put_field(o, &l->f[i], (const uint8_t *)s + l->f[i].off, w)) < 0)
			return rc;
	if (l->check && (rc = l->check(s, &why)) < 0)
		return fail(w, rc, "%s", why);
	return 0;
}

static int get_layout(struct rd *r, const struct pf_layout *l, void *s, struct where *w)
{
	const char *why = NULL;
	int rc;

	plat_memset(s, 0, l->size);
	for (unsigned i = 0; i < l->n; i++)
		if ((rc = get_field(r, &l->f[i], (uint8_t *)s + l->f[i].off, w)) < 0)
			return rc;
	if (l->check && (rc = l->check(s, &why)) < 0)
		return fail(w, rc, "%s", why);
	return 0;
}

/* Top-level walks: the top field name is kept for messages. */
static int put_msg(struct wr *o, const struct pf_layout *l, const void *s, struct where *w)
{
	int rc = 0;
	for (unsigned i = 0; i < l->n; i++) {
		w->top = l->f[i].name;
		if (l->f[i].type == PF_DATA && o->nodata && i + 1 != l->n)
			return fail(w, -PLAT_EINVAL, "data left out but it is not the last field");
		if ((rc = put_field(o, &l->f[i], (const uint8_t *)s + l->f[i].off, w)) < 0)
			return rc;
	}
	return rc;      /* 1: data left out */
}

static int get_msg(struct rd *r, const struct pf_layout *l, void *s, struct where *w)
{
	int rc;

	plat_memset(s, 0, l->size);
	for (unsigned i = 0; i < l->n; i++) {
		w->top = l->f[i].name;
		if ((rc = get_field(r, &l->f[i], (uint8_t *)s + l->f[i].off, w)) < 0)
			return rc;
	}
	w->top = w->field = NULL;
	if (r->pos != r->len)
		return fail(w, -PLAT_EBADMSG, "%zu trailing bytes after the last field", r->len - r->pos);
	return 0;
}

/* ---- header ----------------------------------------------------------------------------- */
void proto_hdr_put(uint8_t out[PROTO_HDR_SIZE], const struct proto_hdr *h)
{
	le_put(out, PROTO_MAGIC, 4);
	out[4] = h->version;
	out[5] = h->opcode;
	le_put(out + 6, h->flags, 2);
	le_put(out + 8, h->id, 4);
	le_put(out + 12, h->length, 4);
	le_put(out + 16, h->status, 4);
	le_put(out + 20, h->uid, 4);
	le_put(out + 24, h->gid, 4);
	le_put(out + 28, 0, 4);
}

int proto_hdr_decode(const uint8_t *buf, size_t len, uint8_t version, uint32_t max_body,
		     struct proto_hdr *h, struct proto_err *err)
{
	struct where w = { .msg = "frame header", .err = err };
	uint32_t magic;

	if (len < PROTO_HDR_SIZE)
		return fail(&w, -PLAT_EBADMSG, "truncated: %zu of %u bytes", len, PROTO_HDR_SIZE);
	magic = (uint32_t)le_get(buf, 4);
	if (magic != PROTO_MAGIC)
		return fail(&w, -PLAT_EBADMSG, "bad magic 0x%08x: the peer does not speak APFP", magic);
	h->version = buf[4];
	h->opcode = buf[5];
	h->flags = (uint16_t)le_get(buf + 6, 2);
	h->id = (uint32_t)le_get(buf + 8, 4);
	h->length = (uint32_t)le_get(buf + 12, 4);
	h->status = (uint32_t)le_get(buf + 16, 4);
	h->uid = (uint32_t)le_get(buf + 20, 4);
	h->gid = (uint32_t)le_get(buf + 24, 4);
	if (h->flags & ~PROTO_F_ALL)
		return fail(&w, -PLAT_EBADMSG, "unknown flags 0x%x", h->flags & ~PROTO_F_ALL);
	if (le_get(buf + 28, 4))
		return fail(&w, -PLAT_EBADMSG, "reserved word is not zero");
	if (!(h->flags & PROTO_F_REPLY) && h->status)
		return fail(&w, -PLAT_EBADMSG, "a request carries status %u", h->status);
	if (h->version != version)
		return fail(&w, -PLAT_EPROTO, "protocol version %u, this connection speaks %u",
			    h->version, version);
	if (h->length > max_body)
		return fail(&w, -PLAT_EMSGSIZE, "body of %u bytes exceeds the limit of %u", h->length,
			    max_body);
	if (!proto_op_known(h->opcode))
		return fail(&w, -PLAT_ENOSYS, "unknown opcode 0x%02x", h->opcode);
	return 0;
}

/* ---- messages ------------------------------------------------------------------------------- */
bool proto_op_known(unsigned op)
{
	return op < PROTO_OP_LIMIT && pf_msgs[op].name;
}

const char *proto_op_name(unsigned op)
{
	return proto_op_known(op) ? pf_msgs[op].name : "unknown opcode";
}

size_t proto_msg_size(unsigned op, bool reply)
{
	if (!proto_op_known(op))
		return 0;
	return reply ? pf_msgs[op].rep.size : pf_msgs[op].req.size;
}

bool proto_op_keyed_only(unsigned op)
{
	return proto_op_known(op) && pf_msgs[op].keyed_only;
}

bool proto_op_mutates(unsigned op)
{
	return proto_op_known(op) && pf_msgs[op].mutates;
}

static void where_msg(char *buf, size_t n, const struct proto_hdr *h)
{
	plat_snprintf(buf, n, "%s %s", proto_op_name(h->opcode),
		      h->flags & PROTO_F_REPLY ? "reply" : "request");
}

int proto_encode(uint8_t *buf, size_t cap, struct proto_hdr *h, const void *msg, unsigned flags,
		 struct proto_err *err)
{
	char name[48];
	struct where w = { .msg = name, .err = err };
	struct wr o = { .p = buf, .cap = cap, .nodata = flags & PROTO_ENC_NODATA };
	const struct pf_layout *l;
	size_t data_len = 0;
	int rc;

	where_msg(name, sizeof(name), h);
	if (!proto_op_known(h->opcode))
		return fail(&w, -PLAT_ENOSYS, "unknown opcode 0x%02x", h->opcode);
	if (h->flags & ~PROTO_F_ALL)
		return fail(&w, -PLAT_EINVAL, "unknown header flags 0x%x", h->flags);
	if (cap < PROTO_HDR_SIZE)
		return fail(&w, -PLAT_EMSGSIZE, "buffer of %zu bytes is smaller than a header", cap);
	o.len = PROTO_HDR_SIZE;
	l = h->flags & PROTO_F_REPLY ? &pf_msgs[h->opcode].rep : &pf_msgs[h->opcode].req;
	if ((h->flags & PROTO_F_REPLY) && h->status)
		l = NULL;
	else if (!(h->flags & PROTO_F_REPLY))
		h->status = 0;
	if (l && l->n) {
		if (!msg)
			return fail(&w, -PLAT_EINVAL, "no message structure");
		if ((rc = put_msg(&o, l, msg, &w)) < 0)
			return rc;
		if (rc == 1)    /* data left out: it is the last field */
			data_len = ((const struct proto_bytes *)((const uint8_t *)msg +
				    l->f[l->n - 1].off))->len;
	}
	if (o.len - PROTO_HDR_SIZE + data_len > UINT32_MAX)
		return fail(&w, -PLAT_EMSGSIZE, "body too long");
	h->length = (uint32_t)(o.len - PROTO_HDR_SIZE + data_len);
	proto_hdr_put(buf, h);
	return (int)o.len;
}

int proto_encode_error(uint8_t *buf, size_t cap, const struct proto_hdr *req, uint32_t status)
{
	struct proto_hdr h = *req;

	if (cap < PROTO_HDR_SIZE)
		return -PLAT_EMSGSIZE;
	h.flags = PROTO_F_REPLY;
	h.length = 0;
	h.status = status;
	h.uid = h.gid = 0;
	proto_hdr_put(buf, &h);
	return PROTO_HDR_SIZE;
}

int proto_decode_body(const struct proto_hdr *h, const uint8_t *body, size_t len, void *msg,
		      struct proto_err *err)
{
	char name[48];
	struct where w = { .msg = name, .err = err };
	struct rd r = { .p = body, .len = len };
	const struct pf_layout *l;

	where_msg(name, sizeof(name), h);
	if (!proto_op_known(h->opcode))
		return fail(&w, -PLAT_ENOSYS, "unknown opcode 0x%02x", h->opcode);
	if (len != h->length)
		return fail(&w, -PLAT_EBADMSG, "body is %zu bytes, header says %u", len, h->length);
	if ((h->flags & PROTO_F_REPLY) && h->status) {
		if (len)
			return fail(&w, -PLAT_EBADMSG, "error reply (%s) with a %zu-byte body",
				    proto_status_name(h->status), len);
		return 0;
	}
	l = h->flags & PROTO_F_REPLY ? &pf_msgs[h->opcode].rep : &pf_msgs[h->opcode].req;
	if (l->n && !msg)
		return fail(&w, -PLAT_EINVAL, "no message structure");
	if (!l->n) {
		if (len)
			return fail(&w, -PLAT_EBADMSG, "%zu bytes in a body that has no fields", len);
		return 0;
	}
	return get_msg(&r, l, msg, &w);
}

/* ---- lists ------------------------------------------------------------------------------------- */
int proto_list_add(struct proto_listbuf *lb, enum proto_list_kind kind, const void *elem,
		   struct proto_err *err)
{
	struct where w = { .msg = "list element", .err = err };
	struct wr o = { .p = lb->buf, .cap = lb->cap, .len = lb->len };
	int rc;

	if ((unsigned)kind >= PROTO_L_COUNT)
		return fail(&w, -PLAT_EINVAL, "unknown list kind %d", kind);
	rc = put_layout(&o, &pf_structs[kind], elem, &w);
	if (rc == -PLAT_EMSGSIZE)
		return -PLAT_ENOSPC;    /* lb->len unchanged: the element is not in */
	if (rc < 0)
		return rc;
	lb->len = (uint32_t)o.len;
	lb->count++;
	return 0;
}

int proto_list_next(const struct proto_list *l, enum proto_list_kind kind, uint32_t *pos,
		    void *elem)
{
	struct where w = { .msg = "list element" };
	struct rd r = { .p = l->p, .len = l->len, .pos = *pos };
	int rc;

	if ((unsigned)kind >= PROTO_L_COUNT)
		return -PLAT_EINVAL;
	if (r.pos >= r.len)
		return 0;
	if ((rc = get_layout(&r, &pf_structs[kind], elem, &w)) < 0)
		return rc;
	*pos = (uint32_t)r.pos;
	return 1;
}
