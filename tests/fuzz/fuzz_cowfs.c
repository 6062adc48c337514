/* libFuzzer entry (make cowfs-fuzz): the oracle of tests/host/cowfs_fuzz_one.c. */
#include "tests/host/cowfs_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cowfs_fuzz_one(data, size);
	return 0;
}
