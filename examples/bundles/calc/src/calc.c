/* calc: uses hello.add through a namespace slot, so it follows hello's
 * reloads and works whichever bundle loads first. */
#include <polyload.h>

typedef int64_t (*add_fn)(int64_t, int64_t);

static const PolyloadHost *host;
static const PolyloadSlot *hello_add;

static int64_t call_add(int64_t a, int64_t b) {
    add_fn add = (add_fn)polyload_slot_get(hello_add);
    if (add == NULL) {
        host->set_error(polyload_str("calc: hello.add is not loaded"));
        return 0;
    }
    return add(a, b);
}

static int64_t sum3(int64_t a, int64_t b, int64_t c) { return call_add(call_add(a, b), c); }

static int64_t double_it(int64_t a) { return call_add(a, a); }

uint32_t polyload_abi_version(void) { return POLYLOAD_ABI_VERSION_PACKED; }

int32_t polyload_bundle_init(const PolyloadHost *h, PolyloadBundle *bundle) {
    host = h;
    hello_add = h->lookup(bundle, polyload_str("hello.add"));
    if (hello_add == NULL) {
        h->set_error(polyload_str("calc: cannot look up hello.add"));
        return POLYLOAD_ERR;
    }
    POLYLOAD_DEFINE(h, bundle, "sum3", "fn(i64, i64, i64) -> i64", sum3);
    POLYLOAD_DEFINE(h, bundle, "double_it", "fn(i64) -> i64", double_it);
    return POLYLOAD_OK;
}
