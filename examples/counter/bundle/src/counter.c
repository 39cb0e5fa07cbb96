/* counter: `tick` applies `step` to a value the bundle keeps. The value is
 * carried into the next version on hot reload through
 * polyload_state_save / polyload_state_restore. */
#include <polyload.h>

static int64_t value = 0;

static int64_t step(int64_t x) { return x + 1; }

static int64_t tick(void) {
    value = step(value);
    return value;
}

static int64_t current(void) { return value; }

/* Called on the old version before a reload: the state as bytes, allocated
 * with host->alloc (the host frees them). */
PolyloadBytes polyload_state_save(const PolyloadHost *host) {
    PolyloadStr s = polyload_str_dup(host, &value, sizeof value);
    PolyloadBytes b = {s.ptr, s.len};
    return b;
}

/* Called on the new version with what the old one saved. */
int32_t polyload_state_restore(const PolyloadHost *host, PolyloadBytes state) {
    if (state.len != sizeof value) {
        host->set_error(polyload_str("counter: state has the wrong size"));
        return POLYLOAD_ERR;
    }
    memcpy(&value, state.ptr, sizeof value);
    return POLYLOAD_OK;
}

uint32_t polyload_abi_version(void) { return POLYLOAD_ABI_VERSION_PACKED; }

int32_t polyload_bundle_init(const PolyloadHost *h, PolyloadBundle *bundle) {
    POLYLOAD_DEFINE(h, bundle, "step", "fn(i64) -> i64", step);
    POLYLOAD_DEFINE(h, bundle, "tick", "fn() -> i64", tick);
    POLYLOAD_DEFINE(h, bundle, "value", "fn() -> i64", current);
    return POLYLOAD_OK;
}
