/* Sample messages for the proto tests: see proto_samples.h. */
#include "tests/host/proto_samples.h"
#include "proto/codec_int.h"
#include "proto/handle.h"
#include "proto/auth.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t sample_rand(uint64_t *x)
{
	/* xorshift64*: deterministic for a seed */
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 0x2545f4914f6cdd1dull;
}

static void *arena(struct sample *s, size_t n)
{
	void *p;
	if (s->used + n > sizeof(s->arena)) {
		fprintf(stderr, "sample arena exhausted\n");
		abort();
	}
	p = s->arena + s->used;
	s->used += n;
	return p;
}

static void fill_layout(struct sample *s, const struct pf_layout *l, void *v, int depth);

static void fill_str(struct sample *s, const struct pf_field *f, struct proto_str *str)
{
	static const char name_chars[] = "abcdefghijklmnopqrstuvwxyz0123456789._- ~#";
	uint64_t r = sample_rand(&s->rng);
	uint32_t len = r % 8 == 0 ? f->lim : 1 + (uint32_t)(r >> 8) % 24;
	char *p = arena(s, len);

	for (uint32_t i = 0; i < len; i++) {
		uint64_t c = sample_rand(&s->rng);
		if (f->type == PF_NAME)
			p[i] = name_chars[c % (sizeof(name_chars) - 1)];
		else
			p[i] = (char)(1 + c % 255);     /* anything but NUL, '/' included */
	}
	if (f->type == PF_NAME && len <= 2 && p[0] == '.' && p[len - 1] == '.')
		p[0] = 'x';
	str->p = p;
	str->len = (uint16_t)len;
}

static void fill_field(struct sample *s, const struct pf_field *f, void *v, int depth)
{
	uint64_t r = sample_rand(&s->rng);

	switch (f->type) {
	case PF_U8: *(uint8_t *)v = (uint8_t)r; break;
	case PF_BOOL: *(bool *)v = r & 1; break;
	case PF_ENUM: *(uint8_t *)v = (uint8_t)(f->min + r % (f->lim - f->min + 1)); break;
	case PF_U16: *(uint16_t *)v = (uint16_t)r; break;
	case PF_U32: *(uint32_t *)v = (uint32_t)r; break;
	case PF_U32_MAX: *(uint32_t *)v = (uint32_t)(r % ((uint64_t)f->lim + 1)); break;
	case PF_FLAGS: *(uint32_t *)v = (uint32_t)r & f->lim; break;
	case PF_U64: *(uint64_t *)v = r; break;
	case PF_FIXED: case PF_HANDLE:
		for (uint32_t i = 0; i < f->lim; i++)
			((uint8_t *)v)[i] = (uint8_t)sample_rand(&s->rng);
		break;
	case PF_NAME: case PF_TEXT: fill_str(s, f, v); break;
	case PF_DATA: {
		struct proto_bytes *b = v;
		b->len = r % 5 == 0 ? 0 : (uint32_t)(r >> 8) % 300;
		b->p = arena(s, b->len);
		for (uint32_t i = 0; i < b->len; i++)
			((uint8_t *)b->p)[i] = (uint8_t)sample_rand(&s->rng);
		break;
	}
	case PF_TIME: {
		struct proto_time *t = v;
		t->sec = (int64_t)r;
		t->nsec = (uint32_t)(sample_rand(&s->rng) % 1000000000u);
		break;
	}
	case PF_STRUCT:
		fill_layout(s, &pf_structs[f->lim], v, depth + 1);
		break;
	case PF_LIST: {
		struct proto_listbuf lb;
		unsigned n = r % 4;
		_Alignas(16) uint8_t elem[256];
		struct proto_err err;

		proto_listbuf_init(&lb, arena(s, 8192), 8192);
		for (unsigned i = 0; i < n; i++) {
			fill_layout(s, &pf_structs[f->lim], elem, depth + 1);
			if (proto_list_add(&lb, f->lim, elem, &err) < 0) {
				fprintf(stderr, "sample list element rejected: %s\n", err.msg);
				abort();
			}
		}
		*(struct proto_list *)v = proto_list_of(&lb);
		break;
	}
	}
}

static void fill_layout(struct sample *s, const struct pf_layout *l, void *v, int depth)
{
	memset(v, 0, l->size);
	for (unsigned i = 0; i < l->n; i++)
		fill_field(s, &l->f[i], (uint8_t *)v + l->f[i].off, depth);
	if (l == &pf_structs[PS_SATTR]) {
		struct proto_sattr *sa = v;
		if (sa->mask & PROTO_SA_ATIME)
			sa->mask &= ~PROTO_SA_ATIME_NOW;
		if (sa->mask & PROTO_SA_MTIME)
			sa->mask &= ~PROTO_SA_MTIME_NOW;
	}
}

int sample_fill(struct sample *s, unsigned op, bool reply, uint64_t seed)
{
	const struct pf_layout *l;

	if (!proto_op_known(op))
		return -1;
	s->rng = seed * 0x9e3779b97f4a7c15ull + op * 2 + reply + 1;
	s->used = 0;
	l = reply ? &pf_msgs[op].rep : &pf_msgs[op].req;
	if (l->size > SAMPLE_MSG_MAX)
		abort();
	memset(s->msg, 0, sizeof(s->msg));
	if (l->n)
		fill_layout(s, l, s->msg, 0);
	memset(&s->hdr, 0, sizeof(s->hdr));
	s->hdr.version = op == PROTO_OP_HELLO ? PROTO_HELLO_VERSION : PROTO_VERSION_MAX;
	s->hdr.opcode = (uint8_t)op;
	s->hdr.flags = reply ? PROTO_F_REPLY : 0;
	s->hdr.id = (uint32_t)sample_rand(&s->rng);
	if (!reply) {
		s->hdr.uid = (uint32_t)sample_rand(&s->rng);
		s->hdr.gid = (uint32_t)sample_rand(&s->rng);
	}
	return 0;
}

static bool layout_equal(const struct pf_layout *l, const uint8_t *a, const uint8_t *b, const char **what)
{
	for (unsigned i = 0; i < l->n; i++) {
		const struct pf_field *f = &l->f[i];
		const void *x = a + f->off, *y = b + f->off;
		bool eq = true;

		*what = f->name;
		switch (f->type) {
		case PF_U8: case PF_BOOL: case PF_ENUM: eq = !memcmp(x, y, 1); break;
		case PF_U16: eq = !memcmp(x, y, 2); break;
		case PF_U32: case PF_U32_MAX: case PF_FLAGS: eq = !memcmp(x, y, 4); break;
		case PF_U64: eq = !memcmp(x, y, 8); break;
		case PF_FIXED: case PF_HANDLE: eq = !memcmp(x, y, f->lim); break;
		case PF_NAME: case PF_TEXT: {
			const struct proto_str *p = x, *q = y;
			eq = p->len == q->len && !memcmp(p->p, q->p, p->len);
			break;
		}
		case PF_DATA: {
			const struct proto_bytes *p = x, *q = y;
			eq = p->len == q->len && (!p->len || !memcmp(p->p, q->p, p->len));
			break;
		}
		case PF_TIME: {
			const struct proto_time *p = x, *q = y;
			eq = p->sec == q->sec && p->nsec == q->nsec;
			break;
		}
		case PF_STRUCT:
			if (!layout_equal(&pf_structs[f->lim], x, y, what))
				return false;
			break;
		case PF_LIST: {
			const struct proto_list *p = x, *q = y;
			eq = p->count == q->count && p->len == q->len && (!p->len || !memcmp(p->p, q->p, p->len));
			break;
		}
		}
		if (!eq)
			return false;
	}
	return true;
}

bool sample_equal(unsigned op, bool reply, const void *a, const void *b, const char **what)
{
	const struct pf_layout *l = reply ? &pf_msgs[op].rep : &pf_msgs[op].req;
	*what = "";
	return layout_equal(l, a, b, what);
}

void sample_seal_handles(struct sample *s, const struct proto_handle_key *key)
{
	const struct pf_layout *l = s->hdr.flags & PROTO_F_REPLY ? &pf_msgs[s->hdr.opcode].rep
								 : &pf_msgs[s->hdr.opcode].req;
	for (unsigned i = 0; i < l->n; i++) {
		if (l->f[i].type == PF_HANDLE) {
			struct proto_fh fh = { 1, sample_rand(&s->rng) % 100, 1, (uint32_t)(i & 1) };
			proto_handle_seal(key, &fh, (struct proto_handle *)(s->msg + l->f[i].off));
		}
	}
}

int proto_test_connect(const uint8_t psk[32], bool anon, uint16_t max_inflight,
		       struct proto_session *cs, struct proto_session *ss)
{
	struct proto_client_cfg cc = { anon ? NULL : psk, anon ? 0 : 32, "test", anon, PROTO_MAX_BODY,
				       max_inflight };
	struct proto_server_cfg sc = { psk, 32, true, PROTO_MAX_BODY, 64, 1, NULL };
	struct proto_auth_client c;
	struct proto_auth_server s;
	uint8_t nc[32], ns[32], a[1024], b[1024];
	size_t na, nb;
	int rc;

	memset(nc, 0x11, 32);
	memset(ns, 0x22, 32);
	proto_authc_init(&c, &cc, nc, cs);
	proto_auths_init(&s, &sc, ns, 1, 0, ss);
	if ((rc = proto_authc_step(&c, NULL, 0, a, sizeof(a), &na)) < 0 ||
	    (rc = proto_auths_step(&s, a, na, b, sizeof(b), &nb)) < 0 ||
	    (rc = proto_authc_step(&c, b, nb, a, sizeof(a), &na)) < 0 ||
	    (rc = proto_auths_step(&s, a, na, b, sizeof(b), &nb)) < 0 ||
	    (rc = proto_authc_step(&c, b, nb, NULL, 0, &na)) < 0)
		return rc;
	return s.state == PROTO_AUTH_DONE && c.state == PROTO_AUTH_DONE ? 0 : -PLAT_EPROTO;
}
