/*
 * Handle sealing.  Invariant: a handle is trusted only after its MAC has
 * been recomputed and compared in constant time; the fields are parsed
 * from the bytes the MAC covers, so no unauthenticated byte reaches a
 * lookup.  The MAC is HMAC-SHA256 truncated to 128 bits (as RFC 4868's
 * HMAC-SHA-256-128), enough against guessing: each forgery attempt is a
 * network round trip.
 */
#include "proto/handle.h"
#include "platform/platform.h"

#define FH_BODY 24

static void fh_mac(const struct proto_handle_key *hk, const uint8_t body[FH_BODY],
		   uint8_t mac[SHA256_DIGEST])
{
	struct proto_hmac h;

	proto_hmac_start(&h, &hk->k);
	proto_hmac_update(&h, body, FH_BODY);
	proto_hmac_final(&h, mac);
}

void proto_handle_key_init(struct proto_handle_key *hk, const void *secret, size_t len)
{
	proto_hmac_key_init(&hk->k, secret, len);
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

void proto_handle_seal(const struct proto_handle_key *hk, const struct proto_fh *fh,
		       struct proto_handle *out)
{
	uint8_t mac[SHA256_DIGEST];

	put64(out->b, fh->fsid);
	put64(out->b + 8, fh->ino);
	put64(out->b + 16, (uint64_t)fh->snap << 32 | fh->gen);
	fh_mac(hk, out->b, mac);
	plat_memcpy(out->b + FH_BODY, mac, PROTO_HANDLE_SIZE - FH_BODY);
}

int proto_handle_open(const struct proto_handle_key *hk, const struct proto_handle *h,
		      struct proto_fh *fh)
{
	uint8_t mac[SHA256_DIGEST];
	uint64_t gs;

	fh_mac(hk, h->b, mac);
	if (!proto_ct_equal(mac, h->b + FH_BODY, PROTO_HANDLE_SIZE - FH_BODY))
		return -PLAT_EBADMSG;
	fh->fsid = get64(h->b);
	fh->ino = get64(h->b + 8);
	gs = get64(h->b + 16);
	fh->gen = (uint32_t)gs;
	fh->snap = (uint32_t)(gs >> 32);
	return 0;
}
