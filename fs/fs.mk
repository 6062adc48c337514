# cowfs: host unit tests (tests/tests.mk builds each with ASan/UBSan from
# tests/host/<name>.c + <name>_SRCS) and the freestanding build check.
FS_CORE_SRCS := fs/crc32c.c fs/io.c fs/ncache.c fs/alloc.c fs/node.c fs/btree.c fs/check.c \
	fs/super.c fs/commit.c fs/inode.c fs/dir.c fs/check_dir.c fs/check_ns.c fs/refcount.c fs/snapshot.c fs/scrub.c fs/scrub_data.c \
	fs/repair.c fs/refmap.c fs/drop.c fs/dataref.c fs/csum_items.c fs/probe.c fs/log.c \
	fs/xattr_tree.c
FS_HOST_SRCS := $(FS_CORE_SRCS) $(PLAT_SRCS) $(PLAT_HOST_SRCS)

HOST_TESTS += test_cowfs_crc32c
test_cowfs_crc32c_SRCS := fs/crc32c.c

# Trees, allocator, commits and power cuts over a host image file.
# COWFS_STRESS=1 in the environment runs the large variants (make stress).
FS_TESTS := test_cowfs_btree test_cowfs_commit test_cowfs_dir test_cowfs_snapshot test_cowfs_integrity test_cowfs_probe
HOST_TESTS += $(FS_TESTS)
$(foreach t,$(FS_TESTS),$(eval $(t)_SRCS := $$(FS_HOST_SRCS)))
$(foreach t,$(FS_TESTS),$(eval $(t)_LDLIBS := -lpthread))

# The mounted filesystem: mount and inode cache (vfs.c), file data through
# the iomap core (file.c, file_map.c, file_ranges.c, extent.c), the namespace
# (namei.c, rename.c).
FS_VFS_SRCS := fs/vfs.c fs/file.c fs/file_map.c fs/file_ranges.c fs/file_log.c fs/csum.c fs/extent.c fs/namei.c fs/rename.c fs/vfs_check.c fs/vfs_snap.c
# Extended attributes (fs/xattr.c) and their test.
FS_VFS_SRCS += fs/xattr.c
HOST_TESTS += test_cowfs_xattr
test_cowfs_xattr_SRCS = $(FS_VFS_HOST_SRCS) tools/cowfs_tool.c
test_cowfs_xattr_CFLAGS := -DCOWFS_TOOL_TEST
test_cowfs_xattr_LDLIBS := -lpthread
# fallocate, punch hole, zero range, collapse and insert range, seek hole/data.
FS_VFS_SRCS += fs/falloc.c fs/falloc_shift.c
# Reflink of ranges (fs/reflink.c) and its test.
FS_VFS_SRCS += fs/reflink.c
# Reading read-only snapshots (fs/snap_read.c: the protocol's snapshot handles).
FS_VFS_SRCS += fs/snap_read.c
FS_VFS_HOST_SRCS := $(FS_CORE_SRCS) $(FS_VFS_SRCS) $(PORTABLE_SRCS) $(PLAT_HOST_SRCS)
HOST_TESTS += test_cowfs_namei test_cowfs_ns_model
test_cowfs_namei_SRCS := $(FS_VFS_HOST_SRCS) tools/cowfs_tool.c
test_cowfs_ns_model_SRCS := $(FS_VFS_HOST_SRCS)
test_cowfs_ns_model_LDLIBS := -lpthread
HOST_TESTS += test_cowfs_special
test_cowfs_special_SRCS := $(FS_VFS_HOST_SRCS)
test_cowfs_special_LDLIBS := -lpthread
HOST_TESTS += test_cowfs_file
test_cowfs_file_SRCS := $(FS_VFS_HOST_SRCS)
test_cowfs_file_LDLIBS := -lpthread
# fsync's intent log: costs, power cuts, replay (with the host tool's check).
HOST_TESTS += test_cowfs_fsynclog test_cowfs_namelog
test_cowfs_namelog_SRCS := $(FS_VFS_HOST_SRCS)
test_cowfs_namelog_LDLIBS := -lpthread
test_cowfs_fsynclog_SRCS := $(FS_VFS_HOST_SRCS) tools/cowfs_tool.c
test_cowfs_fsynclog_CFLAGS := -DCOWFS_TOOL_TEST
test_cowfs_fsynclog_LDLIBS := -lpthread
test_cowfs_namei_CFLAGS := -DCOWFS_TOOL_TEST
test_cowfs_namei_LDLIBS := -lpthread

HOST_TESTS += test_cowfs_snapread
test_cowfs_snapread_SRCS := $(FS_VFS_HOST_SRCS)
test_cowfs_snapread_LDLIBS := -lpthread
HOST_TESTS += test_cowfs_reflink
test_cowfs_reflink_SRCS := $(FS_VFS_HOST_SRCS)
test_cowfs_reflink_LDLIBS := -lpthread

# Scrub of file data (fs/scrub_data.c) on a mounted filesystem.
HOST_TESTS += test_cowfs_scrub
test_cowfs_scrub_SRCS := $(FS_VFS_HOST_SRCS)
test_cowfs_scrub_LDLIBS := -lpthread

# fallocate, punch hole, zero range, seek hole/data (fs/falloc.c).
HOST_TESTS += test_cowfs_falloc
test_cowfs_falloc_SRCS := $(FS_VFS_HOST_SRCS)
test_cowfs_falloc_LDLIBS := -lpthread
# collapse and insert range (fs/falloc_shift.c).
HOST_TESTS += test_cowfs_shift
test_cowfs_shift_SRCS := $(FS_VFS_HOST_SRCS)
test_cowfs_shift_LDLIBS := -lpthread
# make stress: 6000 model steps, 10 survivor subsets per power-cut point.
.PHONY: cowfs-falloc-stress
stress: cowfs-falloc-stress
cowfs-falloc-stress: $(HOST_BUILD)/test_cowfs_falloc $(HOST_BUILD)/test_cowfs_shift
	COWFS_STRESS=1 $(HOST_BUILD)/test_cowfs_falloc
	COWFS_STRESS=1 $(HOST_BUILD)/test_cowfs_shift

# The FUSE mount (tools/cowfs_fuse.c, libfuse3 from Debian: make deps) and
# its test with ordinary tools (tests/fuse/test_cowfs_fuse.py: every case
# skipped, not passed, without /dev/fuse).
all: $(BUILD)/cowfs-fuse
$(BUILD)/cowfs-fuse: tools/cowfs_fuse.c tools/fuse_common.c tools/fuse_common.h $(FS_VFS_HOST_SRCS) \
		$(wildcard fs/*.h iomap/*.h pcache/*.h platform/*.h platform/host/*.h)
	@mkdir -p $(BUILD)
	$(CC) -std=gnu11 -O2 -g $(WARN) -I. $$(pkg-config --cflags fuse3) -o $@ tools/cowfs_fuse.c tools/fuse_common.c \
		$(FS_VFS_HOST_SRCS) $$(pkg-config --libs fuse3) -lpthread
HOST_SCRIPT_TESTS += test_cowfs_fuse
test_cowfs_fuse_DEPS := $(BUILD)/cowfs-fuse $(BUILD)/cowfs $(BUILD)/mkfs.cowfs
test_cowfs_fuse_CMD := $(PYTHON) tests/fuse/test_cowfs_fuse.py $(BUILD)
# POSIX semantics case by case (tests/fuse/test_cowfs_posix.py: as root and
# as another user; skipped without /dev/fuse or root).
HOST_SCRIPT_TESTS += test_cowfs_posix
test_cowfs_posix_DEPS := $(BUILD)/cowfs-fuse $(BUILD)/cowfs $(BUILD)/mkfs.cowfs
test_cowfs_posix_CMD := $(PYTHON) tests/fuse/test_cowfs_posix.py $(BUILD)

# Damaged images: the bounded run in make test, libFuzzer in make stress.
HOST_TESTS += test_cowfs_fuzz
test_cowfs_fuzz_SRCS := $(FS_HOST_SRCS) tests/host/cowfs_fuzz_one.c
test_cowfs_fuzz_LDLIBS := -lpthread

COWFS_FUZZ_SECONDS ?= 120
COWFS_FUZZ_DIR := $(BUILD)/cowfs-fuzz
$(COWFS_FUZZ_DIR)/fuzz_cowfs: tests/fuzz/fuzz_cowfs.c tests/host/cowfs_fuzz_one.c $(FS_HOST_SRCS) \
		$(wildcard fs/*.h tests/host/cowfs_fuzz.h)
	@mkdir -p $(dir $@)
	clang -std=gnu11 -O1 -g -I. -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-o $@ tests/fuzz/fuzz_cowfs.c tests/host/cowfs_fuzz_one.c $(FS_HOST_SRCS) -lpthread

.PHONY: cowfs-fuzz
cowfs-fuzz: $(COWFS_FUZZ_DIR)/fuzz_cowfs $(HOST_BUILD)/test_cowfs_fuzz
	@mkdir -p $(COWFS_FUZZ_DIR)/corpus
	$(HOST_BUILD)/test_cowfs_fuzz --write-seeds $(COWFS_FUZZ_DIR)/corpus
	$(COWFS_FUZZ_DIR)/fuzz_cowfs -max_total_time=$(COWFS_FUZZ_SECONDS) -max_len=96 -timeout=20 \
		-print_final_stats=1 $(COWFS_FUZZ_DIR)/corpus
stress: cowfs-fuzz

# The host tool (make builds it): build/cowfs, build/mkfs.cowfs and build/fsck.cowfs.
HOST_TESTS += test_cowfs_tool
test_cowfs_tool_SRCS := $(FS_HOST_SRCS) tools/cowfs_tool.c
test_cowfs_tool_CFLAGS := -DCOWFS_TOOL_TEST
test_cowfs_tool_LDLIBS := -lpthread

.PHONY: cowfs-tools cowfs-stress stress
all: cowfs-tools
cowfs-tools: $(BUILD)/cowfs $(BUILD)/mkfs.cowfs $(BUILD)/fsck.cowfs
$(BUILD)/cowfs: tools/cowfs_tool.c $(FS_HOST_SRCS) $(wildcard fs/*.h platform/*.h platform/host/*.h)
	@mkdir -p $(BUILD)
	$(CC) -std=gnu11 -O2 -g $(WARN) -I. -o $@ tools/cowfs_tool.c $(FS_HOST_SRCS) -lpthread
$(BUILD)/mkfs.cowfs $(BUILD)/fsck.cowfs: $(BUILD)/cowfs
	cp $< $@
# Many small files and snapshots in an image (mount-time bench, tests).
cowfs-tools: $(BUILD)/cowfs-populate
$(BUILD)/cowfs-populate: tools/cowfs_populate.c $(FS_VFS_HOST_SRCS) \
		$(wildcard fs/*.h iomap/*.h pcache/*.h platform/*.h platform/host/*.h)
	@mkdir -p $(BUILD)
	$(CC) -std=gnu11 -O2 -g $(WARN) -I. -o $@ tools/cowfs_populate.c $(FS_VFS_HOST_SRCS) -lpthread
# The host benchmark through the library (tools/cowfs_bench.c; make bench).
cowfs-tools: $(BUILD)/cowfs-bench
$(BUILD)/cowfs-bench: tools/cowfs_bench.c $(FS_VFS_HOST_SRCS) \
		$(wildcard fs/*.h iomap/*.h pcache/*.h platform/*.h platform/host/*.h)
	@mkdir -p $(BUILD)
	$(CC) -std=gnu11 -O2 -g $(WARN) -I. -o $@ tools/cowfs_bench.c $(FS_VFS_HOST_SRCS) -lpthread
.PHONY: cowfs-bench
bench: cowfs-bench
cowfs-bench: $(BUILD)/cowfs-bench
	$(BUILD)/cowfs-bench
HOST_SCRIPT_TESTS += test_cowfs_bench
test_cowfs_bench_DEPS := $(BUILD)/cowfs-bench
test_cowfs_bench_CMD := $(PYTHON) tests/host/check_cowfs_bench.py $(BUILD)
# make bench: mount time in the appliance of 100k files and 3 snapshots
# (tools/bench_fs_mount.py; `bench fs-mount ...` lines).
.PHONY: fs-mount-bench
bench: fs-mount-bench
fs-mount-bench: | $(DEPS_STAMP)
	@$(MAKE) -s --no-print-directory image cowfs-tools
	$(PYTHON) tools/bench_fs_mount.py

# make stress: the large variants (millions of keys, 30 survivor subsets
# per power-cut point).  Other components hook in with `stress: ...`.
stress: cowfs-stress
cowfs-stress: $(addprefix $(HOST_BUILD)/,$(FS_TESTS) test_cowfs_namei test_cowfs_ns_model test_cowfs_xattr)
	@set -e; for t in $(FS_TESTS) test_cowfs_namei test_cowfs_ns_model test_cowfs_xattr; do COWFS_STRESS=1 $(HOST_BUILD)/$$t; done

# The portable filesystem compiled with the kernel's flags (freestanding,
# no SSE, kernel code model): fails on any undefined symbol outside the
# platform interface and the iomap core.
.PHONY: fs-kcheck
fs-kcheck:
	@mkdir -p $(BUILD)/fs-k
	@set -e; for f in $(FS_CORE_SRCS) $(FS_VFS_SRCS); do \
		$(CC) $(filter-out -MMD -MP,$(KCFLAGS)) -nostdinc -isystem $$($(CC) -print-file-name=include) \
			-c $$f -o $(BUILD)/fs-k/$$(basename $$f .c).o; \
	done; \
	defined=$$(nm --defined-only $(BUILD)/fs-k/*.o | awk 'NF == 3 {print $$3}' | sort -u); \
	undef=$$(nm -u $(BUILD)/fs-k/*.o | grep -v ':$$' | awk '{print $$2}' | sort -u | \
		grep -v -x -F "$$defined" | grep -v -E '^(plat_|iomap_|pcache_|folio_)|^(memcpy|memmove|memset|memcmp)$$' || true); \
	if [ -n "$$undef" ]; then echo "fs-kcheck: unexpected symbols: $$undef"; exit 1; fi; \
	echo "fs-kcheck: portable filesystem builds freestanding with KCFLAGS"
