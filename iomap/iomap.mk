# iomap core and page cache: host test programs (built and run by
# tests/tests.mk from tests/host/<name>.c + <name>_SRCS with ASan/UBSan) and
# the micro-benchmark (make bench).
# Source lists by folder come from the top Makefile (PORTABLE_SRCS = the
# portable platform helpers + pcache/ + iomap/).
IOMAP_CORE_SRCS := $(PORTABLE_SRCS)
IOMAP_HOST_SRCS := $(IOMAP_CORE_SRCS) $(PLAT_HOST_SRCS) tests/host/testfs.c \
	tests/host/testfs_dio.c tests/host/testfs_setup.c tests/host/testfs_xf.c \
	tests/host/testfs_log.c

IOMAP_TESTS := test_iomap_iter test_iomap_pcache test_iomap_buffered test_iomap_writeback \
	test_iomap_zero test_iomap_stress test_iomap_dio test_iomap_report \
	test_iomap_crash test_iomap_xform test_iomap_dio_race
HOST_TESTS += $(IOMAP_TESTS)
$(foreach t,$(IOMAP_TESTS),$(eval $(t)_SRCS := $$(IOMAP_HOST_SRCS)))
$(foreach t,$(IOMAP_TESTS),$(eval $(t)_LDLIBS := -lpthread))
$(foreach t,$(IOMAP_TESTS),$(eval $(t)_CFLAGS := -DIOMAP_DEBUG))

# Stand-alone targets (do not depend on tests/tests.mk):
#   make iomap-test    build every iomap test with ASan+UBSan and run it
#   make bench         iomap micro-benchmark (optimised build; iomap-bench)
#   make iomap-kcheck  the portable core compiled with the kernel's flags
IOMAP_TEST_CFLAGS := -std=gnu11 -O1 -g -Wall -Wextra -Werror -fsanitize=address,undefined \
	-fno-omit-frame-pointer -DIOMAP_DEBUG -I.
.PHONY: iomap-test iomap-kcheck iomap-bench bench

# The portable core compiled with the kernel's flags (freestanding, no
# SSE, kernel code model): proves it needs nothing but the platform
# interface.  (The kernel itself links these with platform_kernel*.c: see
# the top Makefile's KERNEL_C.)
iomap-kcheck:
	@mkdir -p $(BUILD)/iomap-k
	@set -e; for f in $(IOMAP_CORE_SRCS); do \
		$(CC) $(filter-out -MMD -MP,$(KCFLAGS)) -nostdinc -isystem $$($(CC) -print-file-name=include) \
			-c $$f -o $(BUILD)/iomap-k/$$(basename $$f .c).o; \
	done; \
	undef=$$(nm -u $(BUILD)/iomap-k/*.o | grep -v ':$$' | awk '{print $$2}' | sort -u | \
		grep -v -E '^(plat_|iomap_|pcache_|folio_|pc_index_|pc_)|^(memcpy|memmove|memset|memcmp)$$' || true); \
	if [ -n "$$undef" ]; then echo "iomap-kcheck: unexpected symbols: $$undef"; exit 1; fi; \
	echo "iomap-kcheck: portable core builds freestanding with KCFLAGS"

iomap-test:
	@mkdir -p $(BUILD)/iomap-test
	@set -e; for t in $(IOMAP_TESTS); do \
		$(CC) $(IOMAP_TEST_CFLAGS) -o $(BUILD)/iomap-test/$$t tests/host/$$t.c $(IOMAP_HOST_SRCS) -lpthread; \
		$(BUILD)/iomap-test/$$t; \
	done

# `bench` only gains a prerequisite here, so other components can hook
# their own benchmarks into it the same way.
bench: iomap-bench
iomap-bench:
	@mkdir -p $(BUILD)
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -I. -o $(BUILD)/iomap_bench tools/iomap_bench.c \
		$(IOMAP_HOST_SRCS) -lpthread
	$(BUILD)/iomap_bench

# The block-device file (platform/kernel/bdev_file.c: portable, linked into
# the kernel, tested here over the host platform).
test_iomap_bdev_SRCS := $(IOMAP_CORE_SRCS) platform/kernel/bdev_file.c $(PLAT_HOST_SRCS)
test_iomap_bdev_LDLIBS := -lpthread
test_iomap_bdev_CFLAGS := -DIOMAP_DEBUG
