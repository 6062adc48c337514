/*
 * Random bytes for keys and nonces (the file protocol's handshake, its
 * handle key, write verifiers): the CPU's hardware generator, RDSEED when
 * present (a conditioned entropy source), else RDRAND (a DRBG the CPU
 * reseeds from that source), checked with cpuid once.  Each 64-bit word is
 * XORed with a mix of the time-stamp counter read at that moment: an
 * independent value cannot lower the entropy of the hardware word, and the
 * output keeps changing even if a broken generator repeats itself.
 *
 * Retries are bounded (RDSEED may run dry under load, RDRAND practically
 * never fails; Intel's guidance is 10 tries), and a word of all zeroes or
 * all ones, or one equal to the previous word, counts as a failed try
 * (firmware bugs made some CPUs return ~0 with success set).
 *
 * A CPU with neither instruction has no source here: random_bytes() fails
 * with -ENODEV and the callers refuse to make keys (the protocol server
 * stays off and says so); nothing falls back to guessable values.
 */
#ifndef KERNEL_RANDOM_H
#define KERNEL_RANDOM_H

#include <stddef.h>
#include <stdint.h>

/* 0, -ENODEV (no hardware generator), or -EIO (it failed every retry;
 * logged).  Any thread; never sleeps. */
int random_bytes(void *buf, size_t len);
/* "RDSEED", "RDRAND" or "none". */
const char *random_source(void);

struct random_stats {
	uint64_t words;         /* 64-bit words delivered */
	uint64_t retries;       /* failed tries that a later try recovered */
	uint64_t failures;      /* calls that failed */
};
void random_get_stats(struct random_stats *s);

#endif
