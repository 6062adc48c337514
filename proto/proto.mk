# The file protocol (proto/): host tests, the decoder fuzzer and the
# freestanding build check.  Included by tests/tests.mk (*/*.mk hooks).
#
#   make proto-test     build and run the proto host tests (ASan+UBSan)
#   make proto-kcheck   proto/ compiled with the kernel's flags: proves it
#                       needs nothing but the platform interface
#   make proto-fuzz     libFuzzer (clang) on the decoder and the handshake
#                       for PROTO_FUZZ_SECONDS (default 120); part of
#                       `make stress`
# serve_cowfs*.c bind the server core to the filesystem: everything else in
# proto/ is independent of it (and tested without it).
PROTO_FS_SRCS   := proto/serve_cowfs.c proto/serve_cowfs_meta.c
PROTO_FS_HDRS   := proto/serve_cowfs.h proto/serve_cowfs_int.h
PROTO_SRCS      := $(filter-out $(PROTO_FS_SRCS),$(wildcard proto/*.c))
PROTO_HOST_SRCS := $(PROTO_SRCS) $(PLAT_SRCS) $(PLAT_HOST_SRCS)
PROTO_TEST_SUPPORT := tests/host/proto_samples.c tests/host/proto_fuzz_one.c

PROTO_TESTS := test_proto_crypto test_proto_chacha test_proto_codec test_proto_auth test_proto_fuzz test_proto_server test_proto_client
HOST_TESTS += $(PROTO_TESTS)
$(foreach t,$(PROTO_TESTS),$(eval $(t)_SRCS := $$(PROTO_HOST_SRCS) $$(PROTO_TEST_SUPPORT)))
$(foreach t,$(PROTO_TESTS),$(eval $(t)_LDLIBS := -lpthread))

.PHONY: proto-test proto-kcheck proto-fuzz stress

proto-test: $(addprefix $(HOST_BUILD)/,$(PROTO_TESTS))
	@set -e; for t in $(PROTO_TESTS); do $(HOST_BUILD)/$$t; done

# Only these headers may appear in proto/ (docs: platform/README.md).
PROTO_ALLOWED_INCLUDES := stdint.h|stddef.h|stdbool.h|stdarg.h|proto/[a-z0-9_]+\.h|platform/platform\.h|platform/errno\.h
proto-kcheck:
	@mkdir -p $(BUILD)/proto-k
	@set -e; bad=$$(grep -hE '^\s*#\s*include' $(filter-out $(PROTO_FS_SRCS) $(PROTO_FS_HDRS),$(wildcard proto/*.c proto/*.h)) | \
		grep -vE '^\s*#\s*include\s*[<"]($(PROTO_ALLOWED_INCLUDES))[>"]' || true); \
	if [ -n "$$bad" ]; then echo "proto-kcheck: includes outside the platform interface: $$bad"; exit 1; fi; \
	for f in $(PROTO_SRCS); do \
		$(CC) $(filter-out -MMD -MP,$(KCFLAGS)) -nostdinc -isystem $$($(CC) -print-file-name=include) \
			-c $$f -o $(BUILD)/proto-k/$$(basename $$f .c).o; \
	done; \
	undef=$$(nm -u $(BUILD)/proto-k/*.o | grep -v ':$$' | awk '{print $$2}' | sort -u | \
		grep -v -E '^(plat_|proto_|sha256|pf_)|^(memcpy|memmove|memset|memcmp)$$' || true); \
	if [ -n "$$undef" ]; then echo "proto-kcheck: unexpected symbols: $$undef"; exit 1; fi; \
	echo "proto-kcheck: proto/ builds freestanding with KCFLAGS"

# libFuzzer needs clang (Debian: clang, libclang-rt-14-dev; tools/deps.sh).
PROTO_FUZZ_SECONDS ?= 120
PROTO_FUZZ_DIR := $(BUILD)/proto-fuzz
$(PROTO_FUZZ_DIR)/fuzz_proto: tests/fuzz/fuzz_proto.c $(PROTO_HOST_SRCS) $(PROTO_TEST_SUPPORT) \
		$(wildcard proto/*.h)
	@mkdir -p $(dir $@)
	clang -std=gnu11 -O1 -g -I. -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-o $@ tests/fuzz/fuzz_proto.c $(PROTO_HOST_SRCS) $(PROTO_TEST_SUPPORT) -lpthread

proto-fuzz: $(PROTO_FUZZ_DIR)/fuzz_proto $(HOST_BUILD)/test_proto_fuzz
	@mkdir -p $(PROTO_FUZZ_DIR)/corpus
	$(HOST_BUILD)/test_proto_fuzz --write-seeds $(PROTO_FUZZ_DIR)/corpus
	$(PROTO_FUZZ_DIR)/fuzz_proto -max_total_time=$(PROTO_FUZZ_SECONDS) -max_len=8192 \
		-print_final_stats=1 $(PROTO_FUZZ_DIR)/corpus

# `stress` only gains a prerequisite here, so other components hook their
# long runs in the same way.
stress: proto-fuzz

# `bench` only gains a prerequisite here (as iomap/iomap.mk does).
.PHONY: proto-bench
bench: proto-bench
proto-bench:
	@mkdir -p $(BUILD)
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -I. -o $(BUILD)/proto_bench tools/proto_bench.c \
		$(PROTO_HOST_SRCS) -lpthread
	$(BUILD)/proto_bench

# The host client library and its command-line tool: build/apfp (part of
# `make`; the qemu test tests/qemu/test_proto_net.py runs it).
.PHONY: apfp-tool
all: apfp-tool
apfp-tool: $(BUILD)/apfp
APFP_TOOL_SRCS := tools/apfp.c tools/apfp_cmds.c tools/apfp_tree.c tools/apfp_bench.c tools/apfp_xfer.c \
		  tools/apfp_ops.c tools/apfp_client.c tools/apfp_admin.c $(PROTO_HOST_SRCS)
$(BUILD)/apfp: $(APFP_TOOL_SRCS) $(wildcard proto/*.h tools/apfp*.h platform/*.h platform/host/*.h)
	@mkdir -p $(BUILD)
	$(CC) -std=gnu11 -O2 -g $(WARN) -I. -o $@ $(APFP_TOOL_SRCS) -lpthread

# The client library against a loopback server made of the server core.
HOST_TESTS += test_apfp_client
test_apfp_client_SRCS := tools/apfp_client.c tools/apfp_admin.c $(PROTO_HOST_SRCS)
test_apfp_client_LDLIBS := -lpthread

# The host server: the same core and filesystem operations over image files.
all: $(BUILD)/apfp-serve
APFP_SERVE_SRCS = $(sort tools/apfp_serve.c $(PROTO_FS_SRCS) $(FS_VFS_HOST_SRCS) $(PROTO_HOST_SRCS))
$(BUILD)/apfp-serve: $(APFP_SERVE_SRCS) $(wildcard proto/*.h fs/*.h platform/*.h platform/host/*.h)
	@mkdir -p $(BUILD)
	$(CC) -std=gnu11 -O2 -g $(WARN) -I. -o $@ $(APFP_SERVE_SRCS) -lpthread

# The host server in the test's process, over an image, driven by the
# client library's typed operations (tests/host/apfp_serve_env.c): names
# and data, blocks and snapshots, special files.
APFP_SERVE_TESTS := test_apfp_serve test_apfp_serve_blocks test_apfp_serve_special
$(foreach t,$(APFP_SERVE_TESTS),$(eval $(t)_SRCS = $$(APFP_SERVE_SRCS) tools/apfp_client.c tools/apfp_ops.c \
	tests/host/apfp_env.c tests/host/apfp_serve_env.c))
$(foreach t,$(APFP_SERVE_TESTS),$(eval $(t)_CFLAGS := -DAPFP_SERVE_MAIN=apfp_serve_main))
$(foreach t,$(APFP_SERVE_TESTS),$(eval $(t)_LDLIBS := -lpthread))

# Random well-formed requests of every operation against cowfs.
test_proto_cowfs_fuzz_SRCS = $(sort $(PROTO_FS_SRCS) $(FS_VFS_HOST_SRCS) $(PROTO_HOST_SRCS))
test_proto_cowfs_fuzz_LDLIBS := -lpthread

# The network FUSE mount (libfuse3, as build/cowfs-fuse) and its test with
# ordinary tools against build/apfp-serve (tests/fuse/test_apfp_fuse.py:
# every case skipped, not passed, without /dev/fuse).
all: $(BUILD)/apfp-fuse
APFP_FUSE_SRCS := tools/apfp_fuse_main.c tools/apfp_fuse.c tools/apfp_fuse_x.c tools/apfp_fuse_state.c tools/apfp_fuse_hide.c \
	tools/fuse_common.c tools/apfp_ops.c \
	tools/apfp_client.c $(PROTO_HOST_SRCS)
$(BUILD)/apfp-fuse: $(APFP_FUSE_SRCS) $(wildcard proto/*.h tools/apfp_*.h tools/fuse_common.h platform/*.h platform/host/*.h)
	@mkdir -p $(BUILD)
	$(CC) -std=gnu11 -O2 -g $(WARN) -I. $$(pkg-config --cflags fuse3) -o $@ $(APFP_FUSE_SRCS) \
		$$(pkg-config --libs fuse3) -lpthread
HOST_SCRIPT_TESTS += test_apfp_fuse
test_apfp_fuse_DEPS := $(BUILD)/apfp-fuse $(BUILD)/apfp-serve $(BUILD)/mkfs.cowfs $(BUILD)/apfp
test_apfp_fuse_CMD := $(PYTHON) tests/fuse/test_apfp_fuse.py $(BUILD)
# The POSIX cases of tests/fuse/test_cowfs_posix.py through the network mount.
HOST_SCRIPT_TESTS += test_apfp_posix
test_apfp_posix_DEPS := $(BUILD)/apfp-fuse $(BUILD)/apfp-serve $(BUILD)/mkfs.cowfs $(BUILD)/cowfs
test_apfp_posix_CMD := $(PYTHON) tests/fuse/test_cowfs_posix.py $(BUILD) --net

# make bench: large-file throughput through the mount (256 MiB by default).
.PHONY: apfp-fuse-bench
bench: apfp-fuse-bench
APFP_FUSE_BENCH_MIB ?= 256
apfp-fuse-bench: $(BUILD)/apfp-fuse $(BUILD)/apfp-serve $(BUILD)/mkfs.cowfs
	$(PYTHON) tests/fuse/test_apfp_fuse.py $(BUILD) --bench $(APFP_FUSE_BENCH_MIB)
# The CLI end to end: build/apfp against build/apfp-serve on 127.0.0.1 over
# an image (tests/proto/test_apfp_cli.py).
HOST_SCRIPT_TESTS += test_apfp_cli
test_apfp_cli_DEPS := $(BUILD)/apfp $(BUILD)/apfp-serve $(BUILD)/mkfs.cowfs $(BUILD)/cowfs
test_apfp_cli_CMD := $(PYTHON) tests/proto/test_apfp_cli.py $(BUILD)

# The CLI's bulk transfers against the host server in a child process that
# is killed and started again (the unstable-write resend).
test_apfp_xfer_SRCS = $(APFP_SERVE_SRCS) tools/apfp_client.c tools/apfp_ops.c tools/apfp_xfer.c \
		      tests/host/apfp_env.c
test_apfp_xfer_CFLAGS := -DAPFP_SERVE_MAIN=apfp_serve_main
test_apfp_xfer_LDLIBS := -lpthread
