/* Drivers that call polyload callbacks from C (tests/all/callback.rs). */
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <stdlib.h>

typedef struct { const uint8_t *ptr; size_t len; } PolyloadStr;

int64_t drive_i64(int64_t (*f)(int64_t, int64_t), int64_t a, int64_t b) { return f(a, b); }
double drive_f64(double (*f)(double), double x) { return f(x); }

/* Calls f with "hello" and returns the result's length * 1000 + its first
   byte; writes the text into out (NUL-terminated, at most cap bytes). The
   result buffer is owned by the caller, freed through free_fn. */
int64_t drive_str(PolyloadStr (*f)(PolyloadStr), char *out, size_t cap,
                  void (*free_fn)(void *, size_t, size_t)) {
    PolyloadStr in = { (const uint8_t *)"hello", 5 };
    PolyloadStr r = f(in);
    size_t n = r.len < cap - 1 ? r.len : cap - 1;
    if (r.len) memcpy(out, r.ptr, n);
    out[n] = 0;
    int64_t first = r.len ? r.ptr[0] : -1;
    int64_t res = (int64_t)r.len * 1000 + first;
    if (r.ptr) free_fn((void *)r.ptr, r.len, 1);
    return res;
}
