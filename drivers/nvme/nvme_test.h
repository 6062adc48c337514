/*
 * Helpers shared by the NVMe self-tests (nvme_test.c, nvme_test_db.c).
 * The tests that write use the last NVME_TEST_AREA bytes of scratch
 * namespaces only (see nvme_test.c).
 */
#ifndef DRIVERS_NVME_NVME_TEST_H
#define DRIVERS_NVME_NVME_TEST_H

#include "drivers/nvme/nvme_var.h"

#define NVME_TEST_BYTES (1u << 20)
#define NVME_TEST_AREA  (6ull * NVME_TEST_BYTES)   /* the last 6 MiB */

/* May the write tests use b?  Scratch, and big enough for the area. */
bool nvme_test_usable(const struct blk_dev *b);
/* Scratch namespaces the write tests may use; marks the test skipped and
 * says why when there is none. */
unsigned nvme_test_namespaces(void);
/* First usable namespace and its controller, NULL if none. */
struct blk_dev *nvme_test_first(struct nvme_ctrl **cp);
/* Start of the test area of b (blocks). */
uint64_t nvme_test_base(const struct blk_dev *b);

#endif
