/*
 * Bulk transfers over one client connection (tools/apfp_client.h): a whole
 * file written or read in 1 MiB requests kept in flight up to the
 * negotiated limit, for the CLI's put, get and bench.
 *
 * Writing: WRITEs go out UNSTABLE; each answered UNSTABLE is remembered in
 * a proto_wlog (proto/client.h) with its reply's verifier, and a COMMIT
 * ends the transfer (and every PROTO_WLOG_MAX writes).  When the COMMIT's
 * verifier differs from a write's, the server restarted (or lost cached
 * data) since: those writes are read again from the source and sent
 * again, then committed again.  A connection that breaks is made again
 * (the library's reconnects) and the writes or reads that were in flight
 * are sent again: both are safe to repeat for a file only we write.
 *
 * Reading: READs at increasing offsets; a short reply asks for the rest;
 * the end of file ends the transfer early (the file shrank).
 *
 * Data is fetched from, or handed to, the caller's callbacks by offset
 * (pread/pwrite style), so nothing is kept in memory for a resend.
 * Replies may arrive in any order: a sink that must see data in order
 * sets depth 1.
 */
#ifndef TOOLS_APFP_XFER_H
#define TOOLS_APFP_XFER_H

#include "tools/apfp_client.h"

/* Reads in flight by default: 4 MiB of replies.  The appliance holds at
 * most 4 MiB of one connection's frames and replies (docs/protocol.md §7);
 * with more 1 MiB reads in flight a 48 MiB get took 7x longer under qemu
 * (depth 8: 77 s, depth 4: 11 s). */
#define APFP_READ_DEPTH 4

struct apfp_xfer {
	/* put: fill buf with exactly len bytes of the source at off */
	int (*src)(void *arg, uint64_t off, void *buf, uint32_t len);
	/* get: len bytes of the file at off */
	int (*sink)(void *arg, uint64_t off, const void *buf, uint32_t len);
	void *arg;
	/* bytes answered so far (may be called often: rate-limit drawing) */
	void (*progress)(void *progress_arg, uint64_t done, uint64_t total);
	void *progress_arg;
	/* tests: called once before each COMMIT, all writes answered */
	void (*before_commit)(void *arg);
	unsigned depth;         /* requests in flight; 0: the negotiated limit for
				 * writes, at most APFP_READ_DEPTH for reads */
	uint32_t io_size;       /* bytes per request; 0: PROTO_MAX_IO */
	/* out */
	uint64_t bytes;         /* data bytes answered (resends included) */
	unsigned commits;
	unsigned resent;        /* writes handed back by a changed verifier */
	unsigned broken;        /* connections that broke and were made again */
	bool local_error;       /* the failure came from src or sink */
};

/* Write size bytes of x->src to fh from offset 0, then make them stable.
 * 0 or a negative errno (the connection's sentence in c->err). */
int apfp_xfer_put(struct apfpc *c, const struct proto_handle *fh, uint64_t size, struct apfp_xfer *x);
/* Read fh from offset 0 up to size bytes (or its end) into x->sink; the
 * bytes the file had in *got. */
int apfp_xfer_get(struct apfpc *c, const struct proto_handle *fh, uint64_t size, struct apfp_xfer *x,
		  uint64_t *got);

#endif
