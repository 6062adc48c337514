/* libFuzzer entry (make proto-fuzz): the oracle of tests/host/proto_fuzz_one.c. */
#include "tests/host/proto_samples.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	proto_fuzz_one(data, size);
	return 0;
}
