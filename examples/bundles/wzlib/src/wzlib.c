/* zlib, compiled to WebAssembly on demand, behind polyload's guest ABI.
 * The zlib sources are the ones the libz-sys crate ships (fetched by
 * scripts/fetch-zlib.sh); this file only adapts them. */
#include <polyload_wasm.h>
#include "zlib.h"

/* fn(bytes) -> bytes: zlib format (RFC 1950), level 6. */
POLYLOAD_EXPORT(compress) polyload_buf wzlib_compress(const uint8_t *data, int32_t len) {
    uLongf bound = compressBound((uLong)len);
    uint8_t *out = polyload_alloc((int32_t)bound, 1);
    if (!out) return polyload_error("compress: out of memory");
    int rc = compress2(out, &bound, data, (uLong)len, 6);
    if (rc != Z_OK) {
        polyload_free(out, 0, 1);
        return polyload_error(rc == Z_MEM_ERROR ? "compress: out of memory" : "compress: failed");
    }
    return polyload_result(out, bound);
}

/* fn(bytes) -> bytes: the inverse, growing the output as needed. */
POLYLOAD_EXPORT(decompress) polyload_buf wzlib_decompress(const uint8_t *data, int32_t len) {
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit(&s) != Z_OK) return polyload_error("decompress: out of memory");
    size_t cap = (size_t)len * 4 + 64, used = 0;
    uint8_t *out = malloc(cap);
    if (!out) {
        inflateEnd(&s);
        return polyload_error("decompress: out of memory");
    }
    s.next_in = (Bytef *)data;
    s.avail_in = (uInt)len;
    int rc;
    do {
        if (used == cap) {
            uint8_t *bigger = realloc(out, cap * 2);
            if (!bigger) {
                free(out);
                inflateEnd(&s);
                return polyload_error("decompress: out of memory");
            }
            out = bigger;
            cap *= 2;
        }
        s.next_out = out + used;
        s.avail_out = (uInt)(cap - used);
        rc = inflate(&s, Z_NO_FLUSH);
        used = cap - s.avail_out;
    } while (rc == Z_OK);
    inflateEnd(&s);
    if (rc != Z_STREAM_END) {
        free(out);
        return polyload_error(rc == Z_BUF_ERROR ? "decompress: truncated input" : "decompress: not zlib data");
    }
    return polyload_result(out, used);
}

/* fn(bytes) -> u32 */
POLYLOAD_EXPORT(crc32) uint32_t wzlib_crc32(const uint8_t *data, int32_t len) {
    return (uint32_t)crc32(0L, data, (uInt)len);
}

/* fn(bytes) -> u32 */
POLYLOAD_EXPORT(adler32) uint32_t wzlib_adler32(const uint8_t *data, int32_t len) {
    return (uint32_t)adler32(1L, data, (uInt)len);
}

/* fn() -> str */
POLYLOAD_EXPORT(version) polyload_buf wzlib_version(void) {
    const char *v = zlibVersion();
    return polyload_result_copy(v, strlen(v));
}
