/*
 * Test support for proto/: valid messages of every opcode with
 * pseudo-random field values (walking the codec's own field tables, so a
 * new operation is covered without touching the tests), a field-by-field
 * comparison, a handshake between a client and a server session, and the
 * fuzz oracle shared by the gcc mutator test and the libFuzzer target.
 */
#ifndef TESTS_HOST_PROTO_SAMPLES_H
#define TESTS_HOST_PROTO_SAMPLES_H

#include "proto/codec.h"

#define SAMPLE_MSG_MAX 1024     /* bytes of the largest message structure */
#define SAMPLE_ARENA (64u << 10)

struct sample {
	uint64_t rng;
	uint8_t arena[SAMPLE_ARENA];    /* strings, data, lists of the message */
	size_t used;
	_Alignas(16) uint8_t msg[SAMPLE_MSG_MAX];
	struct proto_hdr hdr;
};

/* Fill s->msg and s->hdr with a valid random message of (op, reply);
 * returns 0 or -1 if op is unknown. */
int sample_fill(struct sample *s, unsigned op, bool reply, uint64_t seed);
/* Field-by-field equality of two message structures of (op, reply);
 * on difference *what names the field. */
bool sample_equal(unsigned op, bool reply, const void *a, const void *b, const char **what);
uint64_t sample_rand(uint64_t *state);
/* Replace every handle of the message in s->msg with one sealed under
 * `key` (so frames get past the server's handle check). */
struct proto_handle_key;
void sample_seal_handles(struct sample *s, const struct proto_handle_key *key);
/* The handle key of the server the fuzz oracle feeds. */
extern const char proto_fuzz_handle_key[33];

/* A client and a server session set up by a real handshake (fixed
 * nonces; the server allows anonymous access and 64 requests): 0, or the
 * first failing step's errno. */
struct proto_session;
int proto_test_connect(const uint8_t psk[32], bool anon, uint16_t max_inflight,
		       struct proto_session *cs, struct proto_session *ss);

/* The fuzz oracle: decode arbitrary bytes as a frame; if accepted, the
 * re-encoding must reproduce them exactly.  Also feeds them to a server
 * handshake and to the handle check.  Aborts on a violated property. */
void proto_fuzz_one(const uint8_t *data, size_t len);
/* How many fuzzed frames reached a filesystem operation of the server. */
extern unsigned long proto_fuzz_fs_calls;
/* How many fuzzed frames the client core accepted as a reply. */
extern unsigned long proto_fuzz_client_accepts;

#endif
