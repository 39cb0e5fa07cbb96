//! Regression tests for the core's promise: no call reaches freed code,
//! whatever order the host drops things in, and no check-then-act race
//! across a lock release.

use polyload::{
    ChainedProvider, Error, Event, Function, ReloadOptions, Runtime, StaticProvider,
    SymbolProvider, Value,
};
use polyload_outside::{c_source, Scratch};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const V: &str = "POLYLOAD_ABI_VERSION_PACKED";

/// A bundle `slow` whose `wait(ms) -> i64` sleeps `ms` milliseconds inside
/// the bundle's code and returns 42, and `mul(a, b)`.
fn slow_bundle(s: &Scratch) -> std::path::PathBuf {
    s.c_bundle(
        "slow",
        "[exports]\nwait = \"fn(i64) -> i64\"\nmul = \"fn(i64, i64) -> i64\"\n",
        r#"#include <polyload.h>
#include <time.h>
static int64_t wait_ms(int64_t ms) {
    struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&t, &t) != 0) {}
    return 42;
}
static int64_t mul(int64_t a, int64_t b) { return a * b; }
uint32_t polyload_abi_version(void) { return POLYLOAD_ABI_VERSION_PACKED; }
int32_t polyload_bundle_init(const PolyloadHost *h, PolyloadBundle *b) {
    POLYLOAD_DEFINE(h, b, "wait", "fn(i64) -> i64", wait_ms);
    POLYLOAD_DEFINE(h, b, "mul", "fn(i64, i64) -> i64", mul);
    return POLYLOAD_OK;
}
"#,
    )
}

/// [`slow_bundle`], loaded in a new runtime; the bundle's directory.
fn loaded_slow(s: &Scratch) -> (std::path::PathBuf, Runtime) {
    let dir = slow_bundle(s);
    let rt = s.runtime();
    rt.load_dir(&dir).unwrap();
    (dir, rt)
}

/// `slow.mul`'s typed handle.
fn mul(rt: &Runtime) -> Function<extern "C" fn(i64, i64) -> i64> {
    rt.function("slow.mul").unwrap()
}

#[test]
fn handles_that_outlive_their_runtime_are_stale() {
    let s = Scratch::new();
    let (_, rt) = loaded_slow(&s);
    let f = mul(&rt);
    let d = rt.dynamic("slow.mul").unwrap();
    assert_eq!(f.call((2, 3)).unwrap(), 6);
    assert_eq!(
        d.call(&[Value::I64(-2), Value::I64(3)]).unwrap(),
        Value::I64(-6)
    );
    drop(rt);
    assert!(matches!(f.call((2, 3)), Err(Error::Stale { .. })));
    assert!(matches!(
        d.call(&[Value::I64(2), Value::I64(3)]),
        Err(Error::Stale { .. })
    ));
    let e = f.call((2, 3)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "`slow.mul` is not available: its bundle is not loaded (stale handle)"
    );
}

#[test]
fn a_call_in_flight_when_the_runtime_drops_finishes_on_mapped_code() {
    let s = Scratch::new();
    let (_, rt) = loaded_slow(&s);
    let wait = rt
        .function::<extern "C" fn(i64) -> i64>("slow.wait")
        .unwrap();
    let inside = Arc::new(Barrier::new(2));
    let t = {
        let (wait, inside) = (wait.clone(), inside.clone());
        std::thread::spawn(move || {
            // The barrier is passed just before the call; the call sleeps
            // 300 ms inside the library while the runtime is dropped.
            inside.wait();
            wait.call((300,))
        })
    };
    inside.wait();
    std::thread::sleep(Duration::from_millis(50));
    drop(rt);
    assert_eq!(t.join().expect("the caller crashed").unwrap(), 42);
    assert!(matches!(wait.call((0,)), Err(Error::Stale { .. })));
}

#[test]
fn a_watcher_that_outlives_its_runtime_does_nothing() {
    let s = Scratch::new();
    let (dir, rt) = loaded_slow(&s);
    let f = mul(&rt);
    let w = rt.watch(&[&dir]).unwrap();
    drop(rt);
    let src = dir.join("src/slow.c");
    let text = std::fs::read_to_string(&src).unwrap();
    std::fs::write(&src, text.replace("a * b", "a + b")).unwrap();
    std::thread::sleep(polyload::watch::DEBOUNCE * 4);
    assert!(matches!(f.call((2, 3)), Err(Error::Stale { .. })));
    drop(w);
}

#[test]
fn two_threads_loading_one_id_give_one_load_and_one_clear_error() {
    for round in 0..4 {
        let s = Scratch::new();
        let dir = slow_bundle(&s);
        let rt = s.runtime();
        let start = Arc::new(Barrier::new(2));
        let loads: Vec<_> = (0..2)
            .map(|_| {
                let (rt, dir, start) = (rt.clone(), dir.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    rt.load_dir(&dir)
                })
            })
            .collect();
        let results: Vec<_> = loads.into_iter().map(|t| t.join().unwrap()).collect();
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, 1, "round {round}: {results:?}");
        let err = results.into_iter().find_map(Result::err).unwrap();
        assert!(
            matches!(&err, Error::AlreadyLoaded { bundle, .. } if bundle == "slow"),
            "{err}"
        );
        assert_eq!(mul(&rt).call((6, 7)).unwrap(), 42);
        assert_eq!(rt.bundle_ids(), ["slow"]);
    }
}

/// A bundle `sig` whose `f` is either `fn(i64) -> i64` (x + 1) or
/// `fn(f64) -> f64` (x * 2), switched by rewriting its source; both builds
/// stay in the cache, so each reload is quick.
fn sig_bundle(s: &Scratch) -> std::path::PathBuf {
    s.c_bundle(
        "sig",
        "[exports]\nf = \"fn(i64) -> i64\"\n",
        &c_source(V, &[("f", "fn(i64) -> i64", "x + 1")]),
    )
}

fn set_sig(dir: &std::path::Path, float: bool) {
    let (ty, sig, body) = if float {
        ("double", "fn(f64) -> f64", "x * 2")
    } else {
        ("int64_t", "fn(i64) -> i64", "x + 1")
    };
    std::fs::write(
        dir.join("manifest.toml"),
        format!(
            "id = \"sig\"\nversion = \"0.1.0\"\nloader = \"native\"\nfile = \"libsig.so\"\nabi = \"1.0\"\n[exports]\nf = \"{sig}\"\n[build]\ncc = [\"src/sig.c\"]\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("src/sig.c"),
        format!(
            "#include <polyload.h>\nstatic {ty} f({ty} x) {{ return {body}; }}\nuint32_t polyload_abi_version(void) {{ return {V}; }}\nint32_t polyload_bundle_init(const PolyloadHost *h, PolyloadBundle *b) {{\n    POLYLOAD_DEFINE(h, b, \"f\", \"{sig}\", f);\n    return POLYLOAD_OK;\n}}\n"
        ),
    )
    .unwrap();
}

#[test]
fn a_handle_is_never_bound_to_code_of_another_signature() {
    let s = Scratch::new();
    let dir = sig_bundle(&s);
    let rt = s.runtime();
    rt.load_dir(&dir).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let taker = {
        let (rt, stop) = (rt.clone(), stop.clone());
        std::thread::spawn(move || {
            let (mut bound, mut calls) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let Ok(f) = rt.function::<extern "C" fn(i64) -> i64>("sig.f") else {
                    continue;
                };
                bound += 1;
                match f.call((20,)) {
                    Ok(v) => {
                        assert_eq!(v, 21, "an i64 handle ran the f64 code");
                        calls += 1;
                    }
                    Err(Error::Stale { .. }) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            (bound, calls)
        })
    };
    let options = ReloadOptions::default().allow_signature_change(true);
    for i in 0..60 {
        set_sig(&dir, i % 2 == 0);
        rt.reload_with("sig", options).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let (bound, calls) = taker.join().expect("the handle taker crashed");
    assert!(bound > 0 && calls > 0, "{bound} handles, {calls} calls");
}

#[test]
fn a_provider_added_to_a_chain_is_never_hidden_by_a_cached_miss() {
    // A reader keeps missing `sym` against chains that lack it (every add
    // clears the cache, so it recomputes), racing the add of a provider
    // that has it: a miss computed before that add must not be cached
    // after it.
    static SYM: u8 = 7;
    for attempt in 0..500 {
        let chain = Arc::new(ChainedProvider::new());
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (chain, stop) = (chain.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    chain.get_symbol("sym");
                }
            })
        };
        for k in 0..20 {
            chain.add(Arc::new(StaticProvider::new(format!("empty{k}"))));
        }
        chain.add(Arc::new(
            StaticProvider::new("static").with("sym", &SYM as *const u8),
        ));
        std::thread::yield_now();
        stop.store(true, Ordering::Relaxed);
        reader.join().unwrap();
        assert_eq!(
            chain.get_symbol("sym"),
            Some(&SYM as *const u8),
            "attempt {attempt}: a stale miss hides the new provider"
        );
    }
}

#[test]
fn load_bundle_reports_the_malformed_sibling_it_needed() {
    let s = Scratch::new();
    let needs = s.c_bundle(
        "needs",
        "[exports]\nf = \"fn(i64) -> i64\"\n[[dependency]]\nid = \"dep\"\nversion = \"^0.1\"\n",
        &c_source(V, &[("f", "fn(i64) -> i64", "x")]),
    );
    let dep = s.c_bundle(
        "dep",
        "[exports]\nf = \"fn(i64) -> i64\"\n",
        &c_source(V, &[("f", "fn(i64) -> i64", "x")]),
    );
    std::fs::write(dep.join("manifest.toml"), "id = \"dep\"\nversion = 3\n").unwrap();
    let e = s.runtime().load_bundle(&needs).unwrap_err();
    assert!(
        matches!(&e, Error::Manifest { path, .. } if *path == dep.join("manifest.toml")),
        "{e}"
    );
}

/// A bundle `spawner` whose `start(n)` starts a thread of its own that calls
/// `slow.wait(2)` through a slot `n` times, each call inside
/// `host->enter()` / `host->leave()`; `join()` waits for it and returns how
/// many calls returned 42 (or -1 if `leave` refused).
fn spawner_bundle(s: &Scratch) -> std::path::PathBuf {
    let dir = s.bundles().join("spawner");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("manifest.toml"),
        "id = \"spawner\"\nversion = \"0.1.0\"\nloader = \"native\"\nfile = \"libspawner.so\"\nabi = \"1.1\"\n[exports]\nstart = \"fn(i64) -> i64\"\njoin = \"fn() -> i64\"\n[build]\ncc = [\"src/spawner.c\"]\nlibs = [\"pthread\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("src/spawner.c"),
        r#"#include <polyload.h>
#include <pthread.h>
typedef int64_t (*wait_fn)(int64_t);
static const PolyloadHost *host;
static const PolyloadSlot *wait_slot;
static pthread_t thread;
static int64_t rounds, good;
static void *run(void *arg) {
    (void)arg;
    for (int64_t i = 0; i < rounds; i++) {
        host->enter();
        wait_fn f = (wait_fn)polyload_slot_get(wait_slot);
        if (f != NULL && f(2) == 42) good++;
        if (host->leave() != POLYLOAD_OK) { good = -1; break; }
    }
    return NULL;
}
static int64_t start(int64_t n) {
    rounds = n;
    good = 0;
    return pthread_create(&thread, NULL, run, NULL) == 0;
}
static int64_t join(void) {
    pthread_join(thread, NULL);
    return host->leave() == POLYLOAD_ERR_INVALID ? good : -2;
}
uint32_t polyload_abi_version(void) { return POLYLOAD_ABI_VERSION_PACKED; }
int32_t polyload_bundle_init(const PolyloadHost *h, PolyloadBundle *b) {
    host = h;
    if (!POLYLOAD_HOST_HAS(h, leave)) return POLYLOAD_ERR;
    wait_slot = h->lookup(b, polyload_str("slow.wait"));
    POLYLOAD_DEFINE(h, b, "start", "fn(i64) -> i64", start);
    POLYLOAD_DEFINE(h, b, "join", "fn() -> i64", join);
    return POLYLOAD_OK;
}
"#,
    )
    .unwrap();
    dir
}

#[test]
fn a_thread_a_bundle_starts_keeps_the_code_it_calls_mapped() {
    let s = Scratch::new();
    let slow = slow_bundle(&s);
    let spawner = spawner_bundle(&s);
    let rt = s.runtime();
    rt.load_dir(&slow).unwrap();
    rt.load_dir(&spawner).unwrap();
    let start = rt
        .function::<extern "C" fn(i64) -> i64>("spawner.start")
        .unwrap();
    let join = rt
        .function::<extern "C" fn() -> i64>("spawner.join")
        .unwrap();
    const ROUNDS: i64 = 150;
    assert_eq!(start.call((ROUNDS,)).unwrap(), 1);
    // Reload `slow` under the thread's feet: each reload retires the
    // library the thread may be sleeping in.
    let mut pending_seen = false;
    let src = slow.join("src/slow.c");
    let text = std::fs::read_to_string(&src).unwrap();
    for i in 0..30 {
        std::fs::write(&src, format!("{text}\n/* {} */\n", i % 2)).unwrap();
        rt.reload("slow").unwrap();
        pending_seen |= rt.collect_garbage(Duration::ZERO) > 0;
    }
    let good = join.call(()).unwrap();
    assert_eq!(
        good, ROUNDS,
        "every call of the bundle's own thread returned 42"
    );
    assert!(
        pending_seen,
        "an old version stayed mapped while the thread was inside it"
    );
    assert_eq!(rt.collect_garbage(Duration::from_secs(10)), 0);
}

#[test]
fn one_edit_gives_one_reload_and_an_idle_directory_stays_idle() {
    let s = Scratch::new();
    let (dir, rt) = loaded_slow(&s);
    let events = rt.subscribe();
    let _w = rt.watch(&[s.bundles()]).unwrap();
    let count = |window: Duration| {
        let end = Instant::now() + window;
        let mut reloads = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            if let Ok(e) = events.recv_timeout(left) {
                if matches!(e, Event::Reloaded { .. } | Event::Failed { .. }) {
                    reloads.push(e);
                }
            }
        }
        reloads
    };
    assert_eq!(count(polyload::watch::DEBOUNCE * 4), [], "idle at start");
    let src = dir.join("src/slow.c");
    let text = std::fs::read_to_string(&src).unwrap();
    std::fs::write(&src, text.replace("a * b", "a * b + 1")).unwrap();
    // Many debounce periods: the reload reads the bundle's files, which
    // must not count as further changes.
    let reloads = count(polyload::watch::DEBOUNCE * 16);
    assert_eq!(reloads.len(), 1, "{reloads:?}");
    assert!(matches!(reloads[0], Event::Reloaded { .. }), "{reloads:?}");
    assert_eq!(
        rt.call("slow.mul", &[Value::I64(2), Value::I64(3)])
            .unwrap(),
        Value::I64(7)
    );
    // Touching a file without changing it is not an edit either.
    std::fs::write(&src, std::fs::read(&src).unwrap()).unwrap();
    assert_eq!(count(polyload::watch::DEBOUNCE * 8), [], "idle after");
}
