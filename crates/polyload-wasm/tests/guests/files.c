/* A guest in C, built on demand with `[build] wasm-cc`: file access through
 * WASI's preopened directories, the environment and arguments it is given,
 * and malloc until memory runs out. */
#include <polyload_wasm.h>
#include <errno.h>
#include <stdio.h>
#include <wasi/api.h>

static char *cstring(const char *s, int32_t n) {
    char *c = malloc((size_t)n + 1);
    if (c) {
        memcpy(c, s, (size_t)n);
        c[n] = 0;
    }
    return c;
}

POLYLOAD_EXPORT(read_file) polyload_buf read_file(const char *path, int32_t n) {
    char *p = cstring(path, n);
    FILE *f = fopen(p, "rb");
    if (!f) {
        char msg[300];
        snprintf(msg, sizeof msg, "cannot open %s: %s", p, strerror(errno));
        free(p);
        return polyload_error(msg);
    }
    free(p);
    char buf[4096];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return polyload_result_copy(buf, len);
}

POLYLOAD_EXPORT(write_file) int32_t write_file(const char *path, int32_t n, const char *text, int32_t len) {
    char *p = cstring(path, n);
    FILE *f = fopen(p, "wb");
    free(p);
    if (!f) return errno;
    fwrite(text, 1, (size_t)len, f);
    fclose(f);
    return 0;
}

POLYLOAD_EXPORT(get_env) polyload_buf get_env(const char *name, int32_t n) {
    char *k = cstring(name, n);
    const char *v = getenv(k);
    free(k);
    if (!v) return polyload_error("not set");
    return polyload_result_copy(v, strlen(v));
}

POLYLOAD_EXPORT(arg_count) int32_t arg_count(void) {
    __wasi_size_t argc = 0, size = 0;
    if (__wasi_args_sizes_get(&argc, &size) != 0) return -1;
    return (int32_t)argc;
}

POLYLOAD_EXPORT(hog) polyload_buf hog(void) {
    size_t mib = 0;
    void **head = NULL;
    for (;;) {
        void **block = malloc(1 << 20);
        if (!block) break;
        *block = head; /* kept, so the allocation is not optimised away */
        head = block;
        mib++;
    }
    char msg[64];
    snprintf(msg, sizeof msg, "malloc failed after %zu MiB", mib);
    return polyload_error(msg);
}
