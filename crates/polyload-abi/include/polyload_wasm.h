/*
 * polyload_wasm.h: the polyload guest ABI for C compiled to WebAssembly
 * (`[build] wasm-cc`, clang --target=wasm32-wasi).
 *
 * The contract (the polyload-wasm crate's README has the whole of it):
 *
 *   - numbers and bool are wasm values: bool, i8..i32, u8..u32 are i32
 *     (unsigned values as their bits), i64/u64 are i64, f32/f64 as is;
 *   - a str, bytes or json argument is two i32: a pointer into linear
 *     memory and a length; the host allocates it with the guest's
 *     polyload_alloc(len, 1), copies the bytes in (no NUL), and frees it
 *     with polyload_free(ptr, len, 1) after the call: the callee must not
 *     keep the pointer;
 *   - a str, bytes or json result is one i64, (len << 32) | ptr, of memory
 *     from polyload_alloc; the host copies it out and frees it with
 *     polyload_free; polyload_result() makes one;
 *   - a guest reports an error with polyload_set_error(msg, len) and
 *     returns any value; the host's call then fails with that message;
 *   - a function bound in `[wasm.imports]` is imported with the same
 *     lowering; a buffer it returns is allocated in this module with
 *     polyload_alloc and is the guest's to free.
 *
 * The allocator below (on malloc) is weak: define polyload_alloc and
 * polyload_free yourself to replace it.
 */
#ifndef POLYLOAD_WASM_H
#define POLYLOAD_WASM_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exports a function from the module under `name` (which may differ from
 * its C name: POLYLOAD_EXPORT(compress) on zlib_compress). */
#define POLYLOAD_EXPORT(name) __attribute__((export_name(#name)))

/* Imports `module.name` (bind it in [wasm.imports]). */
#define POLYLOAD_IMPORT(module, name) \
    __attribute__((import_module(#module), import_name(#name)))

/* A buffer result: (len << 32) | ptr. */
typedef uint64_t polyload_buf;

/* Reports an error for the current call (the message is copied). */
POLYLOAD_IMPORT(polyload, set_error) void polyload_set_error(const char *msg, int32_t len);

/* Reports a NUL-terminated error message; returns 0 for `return`. */
static inline polyload_buf polyload_error(const char *msg) {
    polyload_set_error(msg, (int32_t)strlen(msg));
    return 0;
}

/* The guest allocator the host calls (weak: replaceable). */
__attribute__((weak)) POLYLOAD_EXPORT(polyload_alloc) void *polyload_alloc(int32_t size, int32_t align) {
    (void)align; /* malloc's 16-byte alignment covers every request */
    return malloc(size > 0 ? (size_t)size : 1);
}

__attribute__((weak)) POLYLOAD_EXPORT(polyload_free) void polyload_free(void *ptr, int32_t size, int32_t align) {
    (void)size;
    (void)align;
    free(ptr);
}

/* A result of `len` bytes at `ptr`, which came from polyload_alloc (or
 * malloc): the host frees it. */
static inline polyload_buf polyload_result(const void *ptr, size_t len) {
    return ((uint64_t)len << 32) | (uint32_t)(uintptr_t)ptr;
}

/* A result copied from `len` bytes at `src`; 0 and an error if memory is
 * exhausted. */
static inline polyload_buf polyload_result_copy(const void *src, size_t len) {
    void *p = polyload_alloc((int32_t)len, 1);
    if (!p) return polyload_error("out of memory");
    memcpy(p, src, len);
    return polyload_result(p, len);
}

/* The pointer and length of a buffer an import returned. */
static inline void *polyload_buf_ptr(polyload_buf b) { return (void *)(uintptr_t)(uint32_t)b; }
static inline size_t polyload_buf_len(polyload_buf b) { return (size_t)(b >> 32); }

#ifdef __cplusplus
}
#endif
#endif
