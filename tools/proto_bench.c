/*
 * Protocol micro-benchmark (make proto-bench, part of make bench).  Prints
 * machine-readable lines:
 *   bench proto NAME key=value ...
 * SHA-256 throughput, the frame tag (Poly1305) of a 1 MiB WRITE frame next
 * to a memcpy of it and to HMAC-SHA256 (the version 1 tag), and encode+decode rates of a
 * small request (GETATTR) and of a 1 MiB WRITE header with the data sent
 * from the caller's buffer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "platform/platform.h"
#include "proto/auth.h"
#include "proto/codec.h"

static double secs(uint64_t ns) { return (double)ns / 1e9; }

int main(void)
{
	const size_t mib = 1u << 20;
	uint8_t *buf = malloc(mib), *copy = malloc(mib), digest[32], tag[16];
	uint64_t t0;
	int rounds = 64;

	plat_init();
	memset(buf, 0x5a, mib);

	t0 = plat_time_ns();
	for (int i = 0; i < rounds; i++)
		sha256(buf, mib, digest);
	double sha = (double)rounds * mib / secs(plat_time_ns() - t0) / 1e6;
	printf("bench proto sha256 MBps=%.0f bytes=%zu\n", sha, (size_t)rounds * mib);

	/* the frame tag of keyed sessions (Poly1305 under a per-frame ChaCha20 key) */
	struct proto_session s = { .keyed = true, .dir_send = PROTO_DIR_C2S };
	memcpy(s.k_send, "benchmark session key, 32 bytes.", 32);
	buf[6] = PROTO_F_TAGGED;
	t0 = plat_time_ns();
	for (int i = 0; i < rounds; i++)
		proto_session_tag(&s, buf, 32 + 62, buf + 94, mib, tag);
	double tag_ms = secs(plat_time_ns() - t0) * 1e3 / rounds;
	t0 = plat_time_ns();
	for (int i = 0; i < rounds; i++) {
		memcpy(copy, buf, mib);
		__asm__ volatile("" ::: "memory");
	}
	double cpy_ms = secs(plat_time_ns() - t0) * 1e3 / rounds;
	printf("bench proto tag_1MiB ms=%.3f memcpy_1MiB_ms=%.3f ratio=%.1f\n", tag_ms, cpy_ms, tag_ms / cpy_ms);

	/* what version 1's tag (HMAC-SHA256 over the frame) cost, same run */
	struct proto_hmac_key hk;
	struct proto_hmac hm;
	proto_hmac_key_init(&hk, "benchmark session key, 32 bytes.", 32);
	t0 = plat_time_ns();
	for (int i = 0; i < rounds; i++) {
		proto_hmac_start(&hm, &hk);
		proto_hmac_update(&hm, buf, mib);
		proto_hmac_final(&hm, digest);
	}
	double hmac_ms = secs(plat_time_ns() - t0) * 1e3 / rounds;
	printf("bench proto hmac_sha256_1MiB ms=%.3f ratio=%.1f (the version 1 tag)\n", hmac_ms, hmac_ms / cpy_ms);

	/* GETATTR request: encode then decode, one million times */
	struct proto_hdr h = { .version = 1, .opcode = PROTO_OP_GETATTR, .id = 1 }, d;
	struct proto_fh_req q, back;
	struct proto_err err;
	uint8_t f[256];
	int n = 0, count = 1000000;
	memset(&q, 7, sizeof(q));
	t0 = plat_time_ns();
	for (int i = 0; i < count; i++) {
		h.id = (uint32_t)i;
		n = proto_encode(f, sizeof(f), &h, &q, 0, &err);
		if (n < 0 || proto_hdr_decode(f, (size_t)n, 1, PROTO_MAX_BODY, &d, &err) < 0 ||
		    proto_decode_body(&d, f + 32, d.length, &back, &err) < 0) {
			fprintf(stderr, "proto_bench: %s\n", err.msg);
			return 1;
		}
	}
	printf("bench proto getattr_codec ns_per_roundtrip=%.0f frame_bytes=%d\n",
	       (double)(plat_time_ns() - t0) / count, n);

	/* 1 MiB WRITE: header encoded without copying the data, then decoded
	 * from a contiguous frame (the data is pointed to, not copied) */
	uint8_t *frame = malloc(PROTO_MAX_BODY + 64);
	struct proto_hdr wh = { .version = 1, .opcode = PROTO_OP_WRITE };
	struct proto_write_req w = { .data = { buf, (uint32_t)mib } }, wback;
	int p = proto_encode(frame, 128, &wh, &w, PROTO_ENC_NODATA, &err);
	memcpy(frame + p, buf, mib);
	t0 = plat_time_ns();
	for (int i = 0; i < count; i++) {
		if (proto_encode(frame, 128, &wh, &w, PROTO_ENC_NODATA, &err) != p ||
		    proto_hdr_decode(frame, (size_t)p + mib, 1, PROTO_MAX_BODY, &d, &err) < 0 ||
		    proto_decode_body(&d, frame + 32, d.length, &wback, &err) < 0) {
			fprintf(stderr, "proto_bench: %s\n", err.msg);
			return 1;
		}
	}
	printf("bench proto write_1MiB_codec ns_per_roundtrip=%.0f (data not copied)\n",
	       (double)(plat_time_ns() - t0) / count);
	free(frame);
	free(buf);
	free(copy);
	plat_fini();
	return 0;
}
