# cowfs: host unit tests (tests/tests.mk builds each with ASan/UBSan from
# tests/host/<name>.c + <name>_SRCS) and the freestanding build check.
FS_CORE_SRCS := fs/crc32c.c

HOST_TESTS += test_cowfs_crc32c
test_cowfs_crc32c_SRCS := fs/crc32c.c

# The portable filesystem compiled with the kernel's flags (freestanding,
# no SSE, kernel code model): fails on any undefined symbol outside the
# platform interface and the iomap core.
.PHONY: fs-kcheck
fs-kcheck:
	@mkdir -p $(BUILD)/fs-k
	@set -e; for f in $(FS_CORE_SRCS); do \
		$(CC) $(filter-out -MMD -MP,$(KCFLAGS)) -nostdinc -isystem $$($(CC) -print-file-name=include) \
			-c $$f -o $(BUILD)/fs-k/$$(basename $$f .c).o; \
	done; \
	undef=$$(nm -u $(BUILD)/fs-k/*.o | grep -v ':$$' | awk '{print $$2}' | sort -u | \
		grep -v -E '^(plat_|iomap_|pcache_|folio_|cowfs_|crc32c)' || true); \
	if [ -n "$$undef" ]; then echo "fs-kcheck: unexpected symbols: $$undef"; exit 1; fi; \
	echo "fs-kcheck: portable filesystem builds freestanding with KCFLAGS"
