/* zlib: checksums from the system libz. zlib's length type is uInt (32-bit),
 * so long buffers are fed in chunks. */
#include <polyload.h>
#include <zlib.h>

#define CHUNK ((size_t)1 << 30)

static uint32_t poly_crc32(PolyloadBytes data) {
    uLong c = crc32(0L, Z_NULL, 0);
    for (size_t off = 0; off < data.len; off += CHUNK) {
        size_t n = data.len - off < CHUNK ? data.len - off : CHUNK;
        c = crc32(c, data.ptr + off, (uInt)n);
    }
    return (uint32_t)c;
}

static uint32_t poly_adler32(PolyloadBytes data) {
    uLong a = adler32(0L, Z_NULL, 0);
    for (size_t off = 0; off < data.len; off += CHUNK) {
        size_t n = data.len - off < CHUNK ? data.len - off : CHUNK;
        a = adler32(a, data.ptr + off, (uInt)n);
    }
    return (uint32_t)a;
}

uint32_t polyload_abi_version(void) { return POLYLOAD_ABI_VERSION_PACKED; }

int32_t polyload_bundle_init(const PolyloadHost *h, PolyloadBundle *bundle) {
    POLYLOAD_DEFINE(h, bundle, "crc32", "fn(bytes) -> u32", poly_crc32);
    POLYLOAD_DEFINE(h, bundle, "adler32", "fn(bytes) -> u32", poly_adler32);
    return POLYLOAD_OK;
}
