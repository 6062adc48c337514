# Host tests of the loader's portable parts (see tests/tests.mk).
HOST_TESTS += test_elf test_paging
test_elf_SRCS := boot/elf.c boot/fmt.c
test_paging_SRCS := boot/paging.c
