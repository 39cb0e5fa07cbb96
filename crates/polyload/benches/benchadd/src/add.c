#include <polyload.h>
int64_t bench_add(int64_t a, int64_t b) { return a + b; }
uint32_t polyload_abi_version(void) { return POLYLOAD_ABI_VERSION_PACKED; }
int32_t polyload_bundle_init(const PolyloadHost *h, PolyloadBundle *b) {
    POLYLOAD_DEFINE(h, b, "add", "fn(i64, i64) -> i64", bench_add);
    return POLYLOAD_OK;
}
