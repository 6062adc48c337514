# Test targets, included by the top Makefile.
#
#   make test        host unit tests, then the qemu integration tests; ends
#                    with one "N passed, N failed" line, non-zero on failure
#   make test-host   only the host unit tests (fast, no qemu)
#   make test-qemu   only the qemu integration tests (builds esp and image);
#                    QEMU_TEST_ARGS="-k shell -j 1" selects and limits them
#   make mutate      one-line mutations of the iomap core and page cache
#                    (tools/mutate.py), each applied to a scratch copy of the
#                    tree: some host test must fail for every one
#   make stress      the long runs: the host stress test with more threads
#                    and a tighter cache, then make mutate
#
# Every test program prints the protocol of tests/host/test.h ("ok - S.N" /
# "not ok - S.N: why").  tests/summary.py runs each program, appends its
# output between begin/end markers to a log under build/test-logs/, and
# counts the results afterwards, so a program that crashes without a
# "not ok" line still counts as a failure.
#
# Host tests: every tests/host/test_*.c is one program.  Portable components
# hook in from their own */*.mk files:
#   HOST_TESTS          += test_foo            (tests/host/test_foo.c)
#   test_foo_SRCS       := foo/a.c foo/b.c     (sources under test)
#   test_foo_CFLAGS     := -DFOO               (optional)
#   test_foo_LDLIBS     := -lpthread           (optional)
# Each test compiles its own objects (build/host/obj/<test>/...) so per-test
# flags never clash; binaries land in build/host/<test>.
#
# Script tests (a program that is not C, e.g. a FUSE mount driven with
# ordinary tools) run with the host tests, same protocol; "skip - S.N: why"
# lines count as skipped, never as passed:
#   HOST_SCRIPT_TESTS   += test_bar
#   test_bar_DEPS       := build/tool          (made first; failure = build.test_bar)
#   test_bar_CMD        := $(PYTHON) tests/bar/test_bar.py

HOST_BUILD   := $(BUILD)/host
TEST_LOGS    := $(BUILD)/test-logs
HOST_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all
# -Wno-format-truncation: test.h truncates failure messages on purpose.
HOST_CFLAGS  := -std=gnu11 -O1 -g $(WARN) -Wno-format-truncation $(HOST_SAN) \
		-fno-omit-frame-pointer -I. -MMD -MP
HOST_LDFLAGS := $(HOST_SAN)
SUMMARY      := $(PYTHON) tests/summary.py

HOST_TESTS := $(patsubst tests/host/%.c,%,$(wildcard tests/host/test_*.c))

test_lineedit_SRCS := kernel/lineedit.c
test_civil_SRCS    := kernel/civil.c
test_config_SRCS   := boot/config.c boot/fmt.c

# Hooks from portable components (iomap/iomap.mk, fs/fs.mk, ...).
TEST_HOOKS := $(filter-out tests/tests.mk third_party/% $(BUILD)/%,$(wildcard */*.mk))
-include $(TEST_HOOKS)
HOST_TESTS := $(sort $(HOST_TESTS))

define HOST_TEST_RULES
$(1)_OBJS := $$(patsubst %.c,$(HOST_BUILD)/obj/$(1)/%.o,tests/host/$(1).c $$($(1)_SRCS))
$(HOST_BUILD)/$(1): $$($(1)_OBJS)
	$$(CC) $(HOST_LDFLAGS) $$($(1)_LDFLAGS) -o $$@ $$^ $$($(1)_LDLIBS)
$(HOST_BUILD)/obj/$(1)/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $$(dir $$@)
	$$(CC) $(HOST_CFLAGS) $$($(1)_CFLAGS) -c $$< -o $$@
-include $$($(1)_OBJS:.o=.d)
endef
$(foreach t,$(HOST_TESTS),$(eval $(call HOST_TEST_RULES,$(t))))

.PHONY: host-tests
host-tests: $(addprefix $(HOST_BUILD)/,$(HOST_TESTS))

# Build then run each host test; a build failure counts as "build.<test>".
define RUN_HOST_TESTS
	@mkdir -p $(TEST_LOGS)
	@rm -f $(TEST_LOGS)/host.log
	@for t in $(HOST_TESTS); do \
		$(SUMMARY) exec --log $(TEST_LOGS)/host.log --name build.$$t -- \
			$(MAKE) -s --no-print-directory $(HOST_BUILD)/$$t && \
		UBSAN_OPTIONS=$${UBSAN_OPTIONS:-print_stacktrace=1} \
		$(SUMMARY) exec --log $(TEST_LOGS)/host.log --name $$t --timeout 600 -- \
			$(HOST_BUILD)/$$t; \
	done; true
	@for t in $(HOST_SCRIPT_TESTS); do \
		$(SUMMARY) exec --log $(TEST_LOGS)/host.log --name build.$$t -- \
			$(MAKE) -s --no-print-directory script-deps-$$t && \
		$(SUMMARY) exec --log $(TEST_LOGS)/host.log --name $$t --timeout 600 -- \
			$(MAKE) -s --no-print-directory script-run-$$t; \
	done; true
endef
$(foreach t,$(HOST_SCRIPT_TESTS),$(eval script-deps-$(t): $$($(t)_DEPS)))
$(foreach t,$(HOST_SCRIPT_TESTS),$(eval script-run-$(t): ; $$($(t)_CMD)))

# The qemu tests need the ESP tree and the GPT image (and the host's cowfs
# tool, which checks the images the appliance wrote); if they do not build
# there is nothing to boot, so the failure is counted once as "build.image".
define RUN_QEMU_TESTS
	@mkdir -p $(TEST_LOGS)
	@rm -f $(TEST_LOGS)/qemu.log
	@$(SUMMARY) exec --log $(TEST_LOGS)/qemu.log --name build.image -- \
		$(MAKE) -s --no-print-directory image cowfs-tools && \
	$(SUMMARY) exec --log $(TEST_LOGS)/qemu.log --name qemu --timeout 1500 -- \
		$(PYTHON) tests/qemu/run.py $(QEMU_TEST_ARGS); true
endef

test-host: | $(DEPS_STAMP)
	$(RUN_HOST_TESTS)
	@$(SUMMARY) report $(TEST_LOGS)/host.log

test-qemu: | $(DEPS_STAMP)
	$(RUN_QEMU_TESTS)
	@$(SUMMARY) report $(TEST_LOGS)/qemu.log

.PHONY: mutate stress
mutate: | $(DEPS_STAMP)
	@$(PYTHON) tools/mutate.py

stress: | $(DEPS_STAMP)
	@$(MAKE) -s --no-print-directory $(HOST_BUILD)/test_iomap_stress
	STRESS_THREADS=4 STRESS_BUDGET=524288 STRESS_WB=2 $(HOST_BUILD)/test_iomap_stress
	@$(PYTHON) tools/mutate.py

test: | $(DEPS_STAMP)
	@echo "test: host unit tests"
	$(RUN_HOST_TESTS)
	@echo "test: qemu integration tests"
	$(RUN_QEMU_TESTS)
	@$(SUMMARY) report $(TEST_LOGS)/host.log $(TEST_LOGS)/qemu.log
