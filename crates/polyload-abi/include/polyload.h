/*
 * polyload.h - the C ABI between a polyload host and its bundles.
 *
 * Mirrors crates/polyload-abi/src/lib.rs field for field; the test
 * crates/polyload-abi/tests/header.rs compiles this header and checks every
 * size and offset against the Rust definitions.
 *
 * A native bundle exports:
 *   uint32_t polyload_abi_version(void);        // POLYLOAD_ABI_VERSION_PACKED
 *   int32_t  polyload_bundle_init(const PolyloadHost *host, PolyloadBundle *bundle);
 * and may export:
 *   void     polyload_bundle_fini(void);
 * which the host calls once, when the version is retired and no thread can
 * be inside it any more (after the reclaimer's grace period), just before
 * the library is closed: free what the version owns there (rimport's
 * wrappers free their handles). Hosts before this release skip it.
 *
 * Thread-exit code: a library that is unmapped cannot run when a thread
 * exits later. A bundle that registers thread-exit destructors
 * (pthread_key_create with a destructor) deletes those keys in
 * polyload_bundle_fini. (C++ thread_local objects and __cxa_thread_atexit
 * are safe: glibc keeps such a library mapped while they are pending.)
 * Rust guests, whose std registers such keys itself, are never unmapped
 * by the host.
 *
 * Strings and buffers cross as pointer + length, by value. A str/bytes/json
 * returned by a bundle function is owned by the caller and must be allocated
 * with host->alloc. A function that fails calls host->set_error and returns 0.
 *
 * ABI history: 1.0 the first host table; 1.1 appends host->enter and
 * host->leave (threads a bundle starts itself, see polyload_slot_get).
 */
#ifndef POLYLOAD_H
#define POLYLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define POLYLOAD_ABI_MAJOR 1
#define POLYLOAD_ABI_MINOR 1
#define POLYLOAD_ABI_VERSION_PACKED \
    ((uint32_t)(((uint32_t)POLYLOAD_ABI_MAJOR << 16) | (uint32_t)POLYLOAD_ABI_MINOR))

#define POLYLOAD_OK 0
#define POLYLOAD_ERR (-1)
#define POLYLOAD_ERR_INVALID (-2)
#define POLYLOAD_ERR_DUPLICATE (-3)
#define POLYLOAD_ERR_NOT_FOUND (-4)

#define POLYLOAD_LOG_ERROR 1u
#define POLYLOAD_LOG_WARN 2u
#define POLYLOAD_LOG_INFO 3u
#define POLYLOAD_LOG_DEBUG 4u

/* UTF-8 text, not NUL-terminated. {NULL, 0} is the empty string. */
typedef struct PolyloadStr {
    const uint8_t *ptr;
    size_t len;
} PolyloadStr;

/* A byte buffer. {NULL, 0} is the empty buffer. */
typedef struct PolyloadBytes {
    const uint8_t *ptr;
    size_t len;
} PolyloadBytes;

/* Opaque: the bundle being initialised. */
typedef struct PolyloadBundle PolyloadBundle;

/* A published bundle version: one pointer per definition index. */
typedef struct PolyloadCodeTable {
    uint64_t generation;
    size_t len;
    const void *const *code;
} PolyloadCodeTable;

/* A stable reference to a definition (see host->lookup). */
typedef struct PolyloadSlot {
    const PolyloadCodeTable *const volatile *cell; /* read with an acquire load */
    size_t index;
} PolyloadSlot;

typedef struct PolyloadHost {
    size_t size;
    uint32_t abi_version;
    int32_t (*define)(PolyloadBundle *bundle, PolyloadStr name, PolyloadStr signature,
                      const void *code);
    const PolyloadSlot *(*lookup)(PolyloadBundle *bundle, PolyloadStr qualified_name);
    void (*log)(uint32_t level, PolyloadStr message);
    void *(*alloc)(size_t size, size_t align);
    void (*free)(void *ptr, size_t size, size_t align);
    void (*set_error)(PolyloadStr message);
    /* ABI 1.1: see "Threads a bundle starts itself" below. */
    void (*enter)(void);
    int32_t (*leave)(void);
} PolyloadHost;

/* Whether the host table has `field` (fields are appended; a host of an older
 * minor version has a shorter table). */
#define POLYLOAD_HOST_HAS(host, field) \
    ((host)->size >= offsetof(PolyloadHost, field) + sizeof((host)->field))

/* A PolyloadStr viewing a NUL-terminated C string (no copy). */
static inline PolyloadStr polyload_str(const char *s) {
    PolyloadStr r;
    r.ptr = (const uint8_t *)s;
    r.len = s ? strlen(s) : 0;
    return r;
}

/* The current code of a definition, or NULL while its bundle is not loaded
 * or does not define it. Call the result right away: do not keep it past the
 * current call, since a reload may retire it.
 *
 * The rule: a code pointer (from here, or a bundle's own function reached
 * through one) is valid only while the thread is inside a polyload call.
 * Code the host called is inside one until it returns. A thread the bundle
 * started itself is not: it brackets each use with host->enter() and
 * host->leave() (ABI 1.1), e.g.
 *
 *     host->enter();
 *     int64_t (*f)(int64_t) = (int64_t (*)(int64_t))polyload_slot_get(slot);
 *     if (f) r = f(x);
 *     host->leave();
 *
 * While any thread is entered, nothing retired since is unmapped, the
 * bundle's own library included; leave as often as the thread can (it is a
 * quiescent state). A library that starts threads stops and joins them
 * before it is unloaded (e.g. in a function marked
 * __attribute__((destructor)), which runs once the host unmaps it). */
static inline const void *polyload_slot_get(const PolyloadSlot *slot) {
    const PolyloadCodeTable *table = __atomic_load_n(slot->cell, __ATOMIC_ACQUIRE);
    if (table == NULL || slot->index >= table->len) {
        return NULL;
    }
    return table->code[slot->index];
}

/* Copies `len` bytes into a buffer from host->alloc, for returning a str/bytes. */
static inline PolyloadStr polyload_str_dup(const PolyloadHost *host, const void *data,
                                           size_t len) {
    PolyloadStr r = {NULL, 0};
    if (len == 0) {
        return r;
    }
    uint8_t *buf = (uint8_t *)host->alloc(len, 1);
    if (buf == NULL) {
        return r;
    }
    memcpy(buf, data, len);
    r.ptr = buf;
    r.len = len;
    return r;
}

/* Defines `name` in the bundle being initialised; returns early from the
 * enclosing init function with the status if it fails. */
#define POLYLOAD_DEFINE(host, bundle, name, signature, fn)                                  \
    do {                                                                                   \
        int32_t polyload_rc_ = (host)->define((bundle), polyload_str(name),                \
                                              polyload_str(signature), (const void *)(fn)); \
        if (polyload_rc_ != POLYLOAD_OK) {                                                 \
            return polyload_rc_;                                                           \
        }                                                                                  \
    } while (0)

#ifdef __cplusplus
} /* extern "C" */

/*
 * C++ bundles. An exception must not leave a function the host calls:
 * unwinding into the host is undefined behaviour (in practice an abort).
 * Wrap each exported function's body in POLYLOAD_TRY: an exception that
 * reaches it becomes the call's error (`Type: what()`, set with
 * host->set_error) and the function returns a value-initialised result.
 *
 *     static int64_t parse(PolyloadStr s) {
 *         POLYLOAD_TRY(host, {
 *             return std::stoll(std::string((const char *)s.ptr, s.len));
 *         });
 *     }
 *
 * (the body is a lambda: `return` leaves it with the function's result).
 */
#include <cstdlib>
#include <exception>
#include <string>
#include <typeinfo>
#if defined(__GNUC__) || defined(__clang__)
#include <cxxabi.h>
#endif

/* Sets the host error for an exception of (mangled) type `type`. */
static inline void polyload_set_exception(const PolyloadHost *host, const char *type,
                                          const char *what) noexcept {
    std::string name = type;
#if defined(__GNUC__) || defined(__clang__)
    int status = 0;
    char *readable = abi::__cxa_demangle(type, nullptr, nullptr, &status);
    if (status == 0 && readable != nullptr) {
        name = readable;
    }
    std::free(readable);
#endif
    std::string message = name + ": " + what;
    host->set_error(polyload_str(message.c_str()));
}

/* A value-initialised R (nothing for void), returned after an exception. */
template <typename R> struct polyload_fallback {
    static R get() { return R(); }
};
template <> struct polyload_fallback<void> {
    static void get() {}
};

/* Calls `body`; an exception becomes the host's error (see POLYLOAD_TRY). */
template <typename F>
static inline auto polyload_guard(const PolyloadHost *host, F &&body) noexcept
    -> decltype(body()) {
    try {
        return body();
    } catch (const std::exception &e) {
        polyload_set_exception(host, typeid(e).name(), e.what());
    } catch (...) {
        host->set_error(polyload_str("a C++ exception of unknown type"));
    }
    return polyload_fallback<decltype(body())>::get();
}

#define POLYLOAD_TRY(host, ...) return polyload_guard((host), [&]() __VA_ARGS__)

#endif /* __cplusplus */

#endif /* POLYLOAD_H */
