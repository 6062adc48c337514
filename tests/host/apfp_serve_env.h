/*
 * The harness of the end-to-end protocol suites (test_apfp_serve*.c): the
 * host server (tools/apfp_serve.c, the portable core with cowfs's
 * operations) in the test's process on 127.0.0.1 over a fresh image, or,
 * in external mode, the appliance (the qemu test tests/qemu/test_proto_fs.py
 * sets APFP_TEST_SERVER = 127.0.0.1:PORT, APFP_TEST_SECRET = the token,
 * APFP_TEST_EXPORT = the export; every suite then works in a directory of
 * its own run), one connection `c` to it and the export's root `root`.
 *
 *   int main(void) { return apfp_serve_suite_main("apfp-serve-x"); }
 *
 * The suite's tests see `c` connected as uid 0 (MKNOD makes devices only for
 * it) and `root`.  In host mode the server is stopped after the tests (if
 * a test has not) and the image checked by cowfs's fsck.
 */
#ifndef TESTS_HOST_APFP_SERVE_ENV_H
#define TESTS_HOST_APFP_SERVE_ENV_H

#include "tools/apfp_ops.h"
#include "tests/host/apfp_env.h"

#define APFP_SERVE_IMAGE_BYTES (256ull << 20)

extern struct apfp_env apfp_serve_env;  /* host mode: the image and secret */
extern const char *apfp_serve_ext;      /* external mode: the appliance's address, else NULL */
extern char apfp_serve_run[64];         /* external mode: the run's directory under the export's root */
extern struct apfpc c;
extern struct apfp_obj root;

/* Runs the suite's tests (test_main of tests/host/test.h, passed by the
 * suite since it is static there) against the host server on a fresh image
 * in a folder named after prefix, or the appliance; the exit status. */
int apfp_serve_suite_main(const char *prefix, int (*run_tests)(void));
/* Host mode: stop the server (its exit status; close c first), start it
 * again (on another port: connect_client() after). */
int apfp_serve_stop(void);
void apfp_serve_start(void);
/* Host mode, the server stopped: cowfs's check of the image (0 clean). */
int apfp_serve_check_image(void);
/* A connection whose requests carry uid/gid ids[0], ids[1] (NULL: this
 * process's); c is connect_client()'s, as uid 0, with root. */
int connect_as(struct apfpc *cc, const uint32_t *ids);
int connect_client(void);

/* The wire status of one call on c (UINT32_MAX when the connection failed). */
uint32_t status(uint8_t op, const void *req, struct proto_client_reply *r);
/* n bytes of the suites' pattern from seed (a 64-bit LCG's top byte; the
 * qemu test computes the same). */
void pattern(uint8_t *p, size_t n, uint64_t seed);
/* Create name in d and write all of buf in 1 MiB requests of stability
 * `stable`; read a whole file (up to cap bytes) back. */
int put_file(const struct apfp_obj *d, const char *name, const uint8_t *buf, size_t len, uint8_t stable,
	     struct apfp_obj *out);
int get_file(const struct proto_handle *fh, uint8_t *buf, size_t cap, size_t *len);

#endif
