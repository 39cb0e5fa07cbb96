//! Hot reload: atomic publish, rollback, state, signature changes, events,
//! watching, and safety under concurrent calls.

use crate::support::{c_source, cc_shared, examples, Scratch};
use polyload::{DynamicFunction, Error, Event, Function, ReloadOptions, Runtime, Value};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const V: &str = "POLYLOAD_ABI_VERSION_PACKED";

fn inc_bundle(s: &Scratch, body: &str) -> std::path::PathBuf {
    s.c_bundle(
        "live",
        "[exports]\nf = \"fn(i64) -> i64\"\ng = \"fn(i64) -> i64\"\n",
        &c_source(
            V,
            &[("f", "fn(i64) -> i64", body), ("g", "fn(i64) -> i64", "-x")],
        ),
    )
}

fn rewrite(dir: &Path, body: &str) {
    std::fs::write(
        dir.join("src/live.c"),
        c_source(
            V,
            &[("f", "fn(i64) -> i64", body), ("g", "fn(i64) -> i64", "-x")],
        ),
    )
    .unwrap();
}

#[test]
fn reload_publishes_new_code_and_handles_follow() {
    let s = Scratch::new();
    let dir = inc_bundle(&s, "x + 1");
    let rt = s.runtime();
    rt.load_dir(&dir).unwrap();
    let f = rt.function::<extern "C" fn(i64) -> i64>("live.f").unwrap();
    assert_eq!(f.call((1,)).unwrap(), 2);
    rewrite(&dir, "x + 100");
    assert_eq!(rt.reload("live").unwrap(), 2);
    assert_eq!(
        f.call((1,)).unwrap(),
        101,
        "the same handle reaches the new code"
    );
    assert_eq!(
        rt.call("live.f", &[Value::I64(1)]).unwrap(),
        Value::I64(101)
    );
    assert_eq!(rt.definition("live.f").unwrap().generation, 2);
    // The old version is unmapped once no thread is inside it.
    assert_eq!(rt.collect_garbage(Duration::from_secs(5)), 0);
}

#[test]
fn failed_reloads_leave_the_old_version_serving() {
    let s = Scratch::new();
    let dir = inc_bundle(&s, "x + 1");
    let rt = s.runtime();
    rt.load_dir(&dir).unwrap();
    let events = rt.subscribe();
    let f = rt.function::<extern "C" fn(i64) -> i64>("live.f").unwrap();
    let src = dir.join("src/live.c");
    let good = std::fs::read_to_string(&src).unwrap();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "compile error",
            "not C at all;".into(),
            "building bundle `live` failed",
        ),
        (
            "ABI mismatch",
            good.replace("return POLYLOAD_ABI_VERSION_PACKED", "return (9u << 16)"),
            "needs polyload ABI 9.0",
        ),
        (
            "init error",
            good.replace(
                "return POLYLOAD_OK;",
                "h->set_error(polyload_str(\"nope\")); return POLYLOAD_ERR;",
            ),
            "failed to initialise (status -1): nope",
        ),
        (
            "missing export",
            good.replace(
                "    POLYLOAD_DEFINE(h, b, \"g\", \"fn(i64) -> i64\", g);\n",
                "",
            ),
            "export `g` is declared",
        ),
        (
            "no init symbol",
            good.replace("polyload_bundle_init", "something_else"),
            "symbol `polyload_bundle_init` not found",
        ),
    ];
    for (what, text, expect) in cases {
        std::fs::write(&src, text).unwrap();
        let e = rt.reload("live").unwrap_err();
        assert!(e.to_string().contains(expect), "{what}: {e}");
        assert_eq!(f.call((1,)).unwrap(), 2, "{what}: old version still serves");
        assert_eq!(rt.generation("live"), Some(1), "{what}");
    }
    let seen: Vec<Event> = events.try_iter().collect();
    assert_eq!(
        seen.iter()
            .filter(|e| matches!(e, Event::Failed { .. }))
            .count(),
        5,
        "{seen:?}"
    );
    assert!(matches!(&seen[0], Event::Preparing { bundle } if bundle == "live"));
    // A good version after the failures goes live.
    std::fs::write(&src, good.replace("x + 1", "x + 2")).unwrap();
    rt.reload("live").unwrap();
    assert_eq!(f.call((1,)).unwrap(), 3);
    assert!(matches!(
        events.try_iter().last(),
        Some(Event::Reloaded { generation: 2, .. })
    ));
}

#[test]
fn a_signature_change_is_refused_unless_allowed() {
    let s = Scratch::new();
    let dir = inc_bundle(&s, "x + 1");
    let rt = s.runtime();
    rt.load_dir(&dir).unwrap();
    let f = rt.function::<extern "C" fn(i64) -> i64>("live.f").unwrap();
    let new_src = "#include <polyload.h>\nstatic int32_t f(int32_t a, int32_t b) { return a * b; }\nstatic int64_t g(int64_t x) { return -x; }\nuint32_t polyload_abi_version(void) { return POLYLOAD_ABI_VERSION_PACKED; }\nint32_t polyload_bundle_init(const PolyloadHost *h, PolyloadBundle *b) {\n POLYLOAD_DEFINE(h, b, \"f\", \"fn(i32, i32) -> i32\", f);\n POLYLOAD_DEFINE(h, b, \"g\", \"fn(i64) -> i64\", g);\n return 0;\n}\n";
    std::fs::write(dir.join("src/live.c"), new_src).unwrap();
    let m = dir.join("manifest.toml");
    std::fs::write(
        &m,
        std::fs::read_to_string(&m)
            .unwrap()
            .replace("f = \"fn(i64) -> i64\"", "f = \"fn(i32, i32) -> i32\""),
    )
    .unwrap();
    let e = rt.reload("live").unwrap_err();
    assert_eq!(
        e.to_string(),
        "reloading bundle `live` would change `live.f` from `fn(i64) -> i64` to `fn(i32, i32) -> i32`; reload with signature changes allowed to accept it (existing typed handles then go stale)"
    );
    assert_eq!(f.call((1,)).unwrap(), 2);

    rt.reload_with(
        "live",
        ReloadOptions::default().allow_signature_change(true),
    )
    .unwrap();
    assert!(
        matches!(f.call((1,)), Err(Error::Stale { .. })),
        "old typed handle must not call the new type"
    );
    let f2 = rt
        .function::<extern "C" fn(i32, i32) -> i32>("live.f")
        .unwrap();
    assert_eq!(f2.call((6, 7)).unwrap(), 42);
    assert_eq!(
        rt.call("live.f", &[Value::I32(3), Value::I32(5)]).unwrap(),
        Value::I32(15)
    );
    let g = rt.function::<extern "C" fn(i64) -> i64>("live.g").unwrap();
    assert_eq!(g.call((5,)).unwrap(), -5);
}

#[test]
fn counter_keeps_its_state_across_a_source_edit() {
    let s = Scratch::new();
    let dir = s.bundles().join("counter");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let ex = examples().join("../counter/bundle");
    std::fs::copy(ex.join("manifest.toml"), dir.join("manifest.toml")).unwrap();
    let src = std::fs::read_to_string(ex.join("src/counter.c")).unwrap();
    std::fs::write(dir.join("src/counter.c"), &src).unwrap();
    let rt = s.runtime();
    rt.load_dir(&dir).unwrap();
    let events = rt.subscribe();
    let tick = rt
        .function::<extern "C" fn() -> i64>("counter.tick")
        .unwrap();
    assert_eq!(
        (
            tick.call(()).unwrap(),
            tick.call(()).unwrap(),
            tick.call(()).unwrap()
        ),
        (1, 2, 3)
    );
    // Edit step: `+1` becomes `*2`.
    std::fs::write(
        dir.join("src/counter.c"),
        src.replace("return x + 1;", "return x * 2;"),
    )
    .unwrap();
    rt.reload("counter").unwrap();
    assert_eq!(tick.call(()).unwrap(), 6, "state kept, new step applied");
    assert_eq!(tick.call(()).unwrap(), 12);
    assert!(events.try_iter().any(|e| matches!(
        e,
        Event::Reloaded {
            state_carried: true,
            ..
        }
    )));

    // A version whose restore fails is refused; the old one keeps counting.
    std::fs::write(
        dir.join("src/counter.c"),
        src.replace("state.len != sizeof value", "1"),
    )
    .unwrap();
    let e = rt.reload("counter").unwrap_err();
    assert_eq!(
        e.to_string(),
        "`counter.polyload_state_restore` failed: counter: state has the wrong size"
    );
    assert_eq!(tick.call(()).unwrap(), 24);
}

#[test]
fn watching_rebuilds_and_reloads_on_edit() {
    let s = Scratch::new();
    let dir = inc_bundle(&s, "x + 1");
    let rt = s.runtime();
    rt.load_dir(&dir).unwrap();
    let events = rt.subscribe();
    let _w = rt.watch(&[s.bundles()]).unwrap();
    let f = rt.function::<extern "C" fn(i64) -> i64>("live.f").unwrap();
    rewrite(&dir, "x + 7");
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut got, mut seen) = (None, Vec::new());
    while Instant::now() < deadline {
        if let Ok(e) = events.recv_timeout(Duration::from_millis(200)) {
            if matches!(e, Event::Reloaded { .. } | Event::Failed { .. }) {
                got = Some(e);
                break;
            }
            seen.push(e);
        }
    }
    assert!(matches!(got, Some(Event::Reloaded { .. })), "{got:?}");
    assert!(
        // Under load the watcher may report the edit as a change of `src/`
        // rather than of the file; either way it names the bundle and a
        // path inside it.
        seen.iter()
            .any(|e| matches!(e, Event::Changed { bundle, paths }
            if bundle == "live" && !paths.is_empty() && paths.iter().all(|p| p.is_relative()))),
        "{seen:?}"
    );
    assert_eq!(f.call((1,)).unwrap(), 8);

    // A broken edit is reported and the old version stays. The first edit
    // may still deliver a late batch (a second reload of the same source)
    // before the broken one is seen, so skip `Reloaded` until `Failed`.
    std::fs::write(dir.join("src/live.c"), "broken").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = None;
    while Instant::now() < deadline {
        if let Ok(e @ Event::Failed { .. }) = events.recv_timeout(Duration::from_millis(200)) {
            got = Some(e);
            break;
        }
    }
    assert!(matches!(got, Some(Event::Failed { .. })), "{got:?}");
    assert_eq!(f.call((1,)).unwrap(), 8);
}

/// Two prebuilt versions of one bundle returning different constants.
fn two_versions(s: &Scratch) -> (std::path::PathBuf, Vec<u8>, Vec<u8>) {
    let dir = s.bundles().join("flip");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("manifest.toml"),
        "id = \"flip\"\nversion = \"0.1.0\"\nloader = \"native\"\nfile = \"libflip.so\"\nabi = \"1.0\"\n[exports]\nget = \"fn(i64) -> i64\"\n",
    )
    .unwrap();
    let build = |k: i64, name: &str| {
        let out = s.dir.path().join(name);
        cc_shared(
            &c_source(V, &[("get", "fn(i64) -> i64", &format!("{k} + 0 * x"))]),
            &out,
        );
        std::fs::read(out).unwrap()
    };
    let a = build(111, "liba.so");
    let b = build(222, "libb.so");
    std::fs::write(dir.join("libflip.so"), &a).unwrap();
    (dir, a, b)
}

/// A runtime with [`two_versions`]' bundle loaded from `dir`, and typed
/// and dynamic handles of its `flip.get`.
fn flip_loaded(
    s: &Scratch,
    dir: &Path,
) -> (
    Runtime,
    Function<extern "C" fn(i64) -> i64>,
    DynamicFunction,
) {
    let rt = s.runtime();
    rt.load_dir(dir).unwrap();
    let typed = rt.function("flip.get").unwrap();
    let dynamic = rt.dynamic("flip.get").unwrap();
    (rt, typed, dynamic)
}

#[test]
fn stress_reload_while_four_threads_call() {
    let s = Scratch::new();
    let (dir, a, b) = two_versions(&s);
    let (rt, get, _) = flip_loaded(&s, &dir);
    // seq: even = stable at version seq/2 (0: A, 1: B, ...), odd = reloading.
    let seq = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let (get, seq, stop) = (get.clone(), seq.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut calls, mut stale_after_publish) = (0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    let s1 = seq.load(Ordering::Acquire);
                    let r = get.call((0,)).expect("no call may fail");
                    assert!(r == 111 || r == 222, "unexpected result {r}");
                    let s2 = seq.load(Ordering::Acquire);
                    if s1 == s2 && s1 % 2 == 0 {
                        let want = if (s1 / 2) % 2 == 0 { 111 } else { 222 };
                        if r != want {
                            stale_after_publish += 1;
                        }
                    }
                    calls += 1;
                }
                (calls, stale_after_publish)
            })
        })
        .collect();
    let mut version = 0u64;
    for i in 0..500 {
        // Every fifth attempt is a broken artifact that must not go live.
        if i % 5 == 4 {
            std::fs::write(dir.join("libflip.so"), b"garbage").unwrap();
            assert!(rt.reload("flip").is_err());
            continue;
        }
        version += 1;
        let bytes = if version % 2 == 0 { &a } else { &b };
        std::fs::write(dir.join("libflip.so"), bytes).unwrap();
        seq.fetch_add(1, Ordering::AcqRel); // odd: reloading
        rt.reload("flip").unwrap();
        seq.fetch_add(1, Ordering::AcqRel); // even: version `version` is live
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for c in callers {
        let (calls, stale) = c.join().expect("a caller thread panicked");
        assert_eq!(stale, 0, "a call after publish reached the old version");
        total += calls;
    }
    assert!(total > 1000, "callers made progress: {total}");
    assert_eq!(rt.generation("flip"), Some(401));
    assert_eq!(
        rt.collect_garbage(Duration::from_secs(10)),
        0,
        "every old version was reclaimed"
    );
}

fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

#[test]
fn ten_thousand_load_unload_cycles_keep_memory_flat() {
    // RSS is per process: measure in a child process that runs only this
    // test, so that the tests running beside it in this one do not count.
    const CHILD: &str = "POLYLOAD_MEMORY_TEST_CHILD";
    if std::env::var_os(CHILD).is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "reload::ten_thousand_load_unload_cycles_keep_memory_flat",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        eprint!("{stderr}");
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "child run failed:\n{stdout}\n{stderr}"
        );
        return;
    }
    let s = Scratch::new();
    let (dir, _, _) = two_versions(&s);
    let rt = s.runtime();
    let cycle = || {
        rt.load_dir(&dir).unwrap();
        assert_eq!(
            rt.call("flip.get", &[Value::I64(0)]).unwrap(),
            Value::I64(111)
        );
        rt.unload("flip").unwrap();
    };
    for _ in 0..1000 {
        cycle();
    }
    rt.collect_garbage(Duration::from_secs(5));
    let before = rss_kib();
    for _ in 0..10_000 {
        cycle();
    }
    assert_eq!(rt.collect_garbage(Duration::from_secs(10)), 0);
    let after = rss_kib();
    let growth = after.saturating_sub(before);
    eprintln!(
        "RSS before {before} KiB, after 10,000 load/unload cycles {after} KiB (+{growth} KiB)"
    );
    assert!(
        growth < 4096,
        "memory grew by {growth} KiB over 10,000 cycles"
    );
}

/// What a stress caller saw: calls that returned a live version's value,
/// and calls that were stale.
#[derive(Default, Debug)]
struct Seen {
    values: u64,
    stale: u64,
}

/// Calls `flip.get` through a typed and a dynamic handle until `stop` (or,
/// with `stale_enough`, until that many calls were stale); every call must
/// return a version's value (111 or 222) or `Stale`.
fn stress_caller(
    typed: polyload::Function<extern "C" fn(i64) -> i64>,
    dynamic: polyload::DynamicFunction,
    stop: Arc<AtomicBool>,
    stale_enough: Option<u64>,
    started: Option<Arc<std::sync::Barrier>>,
) -> std::thread::JoinHandle<Seen> {
    std::thread::spawn(move || {
        let mut seen = Seen::default();
        let check = |seen: &mut Seen, r: polyload::Result<i64>| match r {
            Ok(111 | 222) => seen.values += 1,
            Err(Error::Stale { .. }) => seen.stale += 1,
            other => panic!("a call returned {other:?}"),
        };
        if let Some(b) = started {
            check(&mut seen, typed.call((0,)));
            b.wait();
        }
        while !stop.load(Ordering::Relaxed) && stale_enough.is_none_or(|n| seen.stale < n) {
            check(&mut seen, typed.call((0,)));
            let r = dynamic.call(&[Value::I64(0)]).map(|v| match v {
                Value::I64(x) => x,
                other => panic!("{other:?}"),
            });
            check(&mut seen, r);
        }
        seen
    })
}

#[test]
fn stress_the_runtime_dropped_while_four_threads_call() {
    for round in 0..20 {
        let s = Scratch::new();
        let (dir, a, b) = two_versions(&s);
        let (rt, typed, dynamic) = flip_loaded(&s, &dir);
        let stop = Arc::new(AtomicBool::new(false));
        let started = Arc::new(std::sync::Barrier::new(5));
        let callers: Vec<_> = (0..4)
            .map(|_| {
                let started = Some(started.clone());
                stress_caller(
                    typed.clone(),
                    dynamic.clone(),
                    stop.clone(),
                    Some(100),
                    started,
                )
            })
            .collect();
        started.wait();
        for i in 0..5 {
            std::fs::write(dir.join("libflip.so"), if i % 2 == 0 { &b } else { &a }).unwrap();
            rt.reload("flip").unwrap();
        }
        // Drop the runtime with the callers still calling; they stop once
        // their handles have answered `Stale` 100 times.
        drop(rt);
        let seen: Vec<Seen> = callers.into_iter().map(|c| c.join().unwrap()).collect();
        assert!(
            seen.iter().all(|s| s.values > 0 && s.stale > 0),
            "round {round}: every caller saw live versions, then stale handles: {seen:?}"
        );
    }
}

#[test]
fn stress_unload_reload_and_load_of_one_id_racing_from_three_threads() {
    let s = Scratch::new();
    let (dir, a, b) = two_versions(&s);
    let (rt, typed, dynamic) = flip_loaded(&s, &dir);
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..2)
        .map(|_| stress_caller(typed.clone(), dynamic.clone(), stop.clone(), None, None))
        .collect();
    // Lifecycle errors that say why an operation lost the race are fine;
    // anything else is a bug.
    let expected = |e: &Error| {
        matches!(
            e,
            Error::NotLoaded { .. } | Error::AlreadyLoaded { .. } | Error::InUse { .. }
        )
    };
    const ROUNDS: usize = 300;
    let ops: Vec<std::thread::JoinHandle<usize>> = vec![
        {
            let (rt, dir) = (rt.clone(), dir.clone());
            std::thread::spawn(move || {
                (0..ROUNDS)
                    .filter(|_| match rt.load_dir(&dir) {
                        Ok(_) => true,
                        Err(e) if expected(&e) => false,
                        Err(e) => panic!("load: {e}"),
                    })
                    .count()
            })
        },
        {
            let rt = rt.clone();
            std::thread::spawn(move || {
                (0..ROUNDS)
                    .filter(|_| match rt.unload("flip") {
                        Ok(()) => true,
                        Err(e) if expected(&e) => false,
                        Err(e) => panic!("unload: {e}"),
                    })
                    .count()
            })
        },
        {
            let (rt, dir) = (rt.clone(), dir.clone());
            std::thread::spawn(move || {
                (0..ROUNDS)
                    .filter(|i| {
                        let bytes = if i % 2 == 0 { &a } else { &b };
                        // The file is rewritten in place of a reload's read:
                        // write it beside and rename, as a build would.
                        let tmp = dir.join("libflip.so.new");
                        std::fs::write(&tmp, bytes).unwrap();
                        std::fs::rename(&tmp, dir.join("libflip.so")).unwrap();
                        match rt.reload("flip") {
                            Ok(_) => true,
                            Err(e) if expected(&e) => false,
                            Err(e) => panic!("reload: {e}"),
                        }
                    })
                    .count()
            })
        },
    ];
    let done: Vec<usize> = ops.into_iter().map(|t| t.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    let seen: Vec<Seen> = callers.into_iter().map(|c| c.join().unwrap()).collect();
    assert!(
        done.iter().all(|n| *n > 0),
        "each operation won sometimes: {done:?}"
    );
    assert!(seen.iter().all(|s| s.values > 0), "{seen:?}");
    let bundles = rt.bundle_ids();
    assert!(bundles.is_empty() || bundles == ["flip"], "{bundles:?}");
    assert_eq!(rt.collect_garbage(Duration::from_secs(10)), 0);
}
