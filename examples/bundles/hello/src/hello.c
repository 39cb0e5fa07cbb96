/* hello: the smallest useful polyload bundle. */
#include <polyload.h>
#include <stdio.h>

static const PolyloadHost *host;

static int64_t add(int64_t a, int64_t b) { return a + b; }

/* Returns "Hello, <name>!" in a buffer from host->alloc (the caller frees it). */
static PolyloadStr greet(PolyloadStr name) {
    const char prefix[] = "Hello, ";
    size_t len = sizeof prefix - 1 + name.len + 1;
    uint8_t *buf = host->alloc(len, 1);
    if (buf == NULL) {
        host->set_error(polyload_str("greet: out of memory"));
        return (PolyloadStr){NULL, 0};
    }
    memcpy(buf, prefix, sizeof prefix - 1);
    if (name.len) memcpy(buf + sizeof prefix - 1, name.ptr, name.len);
    buf[len - 1] = '!';
    return (PolyloadStr){buf, len};
}

uint32_t polyload_abi_version(void) { return POLYLOAD_ABI_VERSION_PACKED; }

int32_t polyload_bundle_init(const PolyloadHost *h, PolyloadBundle *bundle) {
    host = h;
    POLYLOAD_DEFINE(h, bundle, "add", "fn(i64, i64) -> i64", add);
    POLYLOAD_DEFINE(h, bundle, "greet", "fn(str) -> str", greet);
    return POLYLOAD_OK;
}
