/*
 * File handles (docs/protocol.md §4): 40 bytes = filesystem id, inode,
 * generation, snapshot id, and a 16-byte MAC under a persistent server key.
 *
 * The server seals every handle it hands out and opens every handle it
 * receives before looking anything up.  Opening only proves the server
 * made the handle; whether the file still exists with that generation is
 * the filesystem's answer (-ESTALE -> PROTO_E_STALE).
 */
#ifndef PROTO_HANDLE_H
#define PROTO_HANDLE_H

#include "proto/wire.h"
#include "proto/sha256.h"

struct proto_fh {
	uint64_t fsid, ino;
	uint32_t gen;
	uint32_t snap;          /* 0 = live filesystem */
};

struct proto_handle_key { struct proto_hmac_key k; };

/* The key is the appliance's persistent handle secret (not a session
 * key), so handles survive restarts; at least 32 bytes. */
void proto_handle_key_init(struct proto_handle_key *hk, const void *secret, size_t len);
void proto_handle_seal(const struct proto_handle_key *hk, const struct proto_fh *fh,
		       struct proto_handle *out);
/* 0 with *fh filled, or -PLAT_EBADMSG when the MAC does not match (forged
 * or corrupted: answer PROTO_E_BADHANDLE, look nothing up). */
int proto_handle_open(const struct proto_handle_key *hk, const struct proto_handle *h,
		      struct proto_fh *fh);

#endif
