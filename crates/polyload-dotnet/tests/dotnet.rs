//! .NET bundles: C# built on demand with mcs, run by Mono, called from Rust
//! through typed handles and by name, with exceptions, host calls, reloads
//! and unloads of several bundles in one process (Mono starts once).

use polyload::{Error, Runtime, Value};
use polyload_dotnet::DotnetLoader;
use polyload_outside::Scratch;
use std::path::{Path, PathBuf};

const CALC: &str = r#"
using System;
namespace Demo {
public static class Calc {
    public static long Add(long a, long b) { return a + b + OFFSET; }
    public static bool Not(bool a) { return !a; }
    public static double Half(float a) { return a / 2.0; }
    public static int Narrow(sbyte a, short b, byte c, ushort d) { return a + b + c + d; }
    public static ulong Big(ulong a) { return a; }
    public static long Checked(long a) {
        if (a < 0) throw new ArgumentOutOfRangeException("a", "must not be negative");
        return a;
    }
    public static string Greet(string who) { return "héllo " + who + " ✓"; }
    public static byte[] Reverse(byte[] b) { Array.Reverse(b); return b; }
    public static string Keys(string json) { return "[\"" + json.Length + "\"]"; }
    public static string Fails(string s) { throw new FormatException("bad: " + s); }
    public static long ViaHost(long a) { return Polyload.Call<long>("hello.add", a, 100L); }
    public static string HostError() {
        try { Polyload.Call("hello.nothing", 1L); return "no error"; }
        catch (PolyloadException e) { return e.Message; }
    }
    public static long ViaOther() {
        int home = AppDomain.CurrentDomain.Id;
        long o = Polyload.Call<long>("other.count");
        if (AppDomain.CurrentDomain.Id != home) return -1;
        return ++counter * 1000 + o;
    }
    static long counter;
    public static long Count() { return ++counter; }
    public static void Reset() { counter = 0; }
    public const long OFFSET = 0;
}}
"#;

const MANIFEST: &str = r#"
id = "calc"
version = "0.1.0"
loader = "dotnet"
file = "Calc.dll"
abi = "1.0"

[build]
csc = ["src/Calc.cs"]

[dotnet]
class = "Demo.Calc"

[exports]
add = "fn(i64, i64) -> i64"
not = "fn(bool) -> bool"
half = "fn(f32) -> f64"
narrow = "fn(i8, i16, u8, u16) -> i32"
big = "fn(u64) -> u64"
checked = "fn(i64) -> i64"
greet = "fn(str) -> str"
reverse = "fn(bytes) -> bytes"
keys = "fn(json) -> json"
fails = "fn(str) -> str"
count = "fn() -> i64"
reset = "fn() -> void"
"#;

fn write_calc(dir: &Path, source: &str, manifest: &str) -> PathBuf {
    let b = dir.join("calc");
    std::fs::create_dir_all(b.join("src")).unwrap();
    std::fs::write(b.join("manifest.toml"), manifest).unwrap();
    std::fs::write(b.join("src/Calc.cs"), source).unwrap();
    b
}

/// A second bundle, `other`, of the calc manifest and `source`.
fn write_other(dir: &Path, source: &str) -> PathBuf {
    let b = dir.join("other");
    std::fs::create_dir_all(b.join("src")).unwrap();
    let manifest = MANIFEST.replace("id = \"calc\"", "id = \"other\"");
    std::fs::write(b.join("manifest.toml"), manifest).unwrap();
    std::fs::write(b.join("src/Calc.cs"), source).unwrap();
    b
}

/// A runtime with the calc bundle loaded (and the scratch dir it lives in).
fn calc() -> (Scratch, Runtime) {
    let s = Scratch::new();
    let dir = write_calc(&s.bundles(), CALC, MANIFEST);
    let rt = runtime(&s);
    rt.load_bundle(&dir).unwrap();
    (s, rt)
}

fn runtime(s: &Scratch) -> Runtime {
    s.builder().loader(DotnetLoader::new()).build().unwrap()
}

#[test]
fn csharp_exports_are_called_with_every_value_type() {
    let (_s, rt) = calc();

    let add = rt
        .function::<extern "C" fn(i64, i64) -> i64>("calc.add")
        .unwrap();
    assert_eq!(add.call((2, -45)).unwrap(), -43);
    assert_eq!(add.call((i64::MAX, 0)).unwrap(), i64::MAX);
    let not = rt
        .function::<extern "C" fn(bool) -> bool>("calc.not")
        .unwrap();
    assert!(not.call((false,)).unwrap());
    assert!(!not.call((true,)).unwrap());
    assert_eq!(
        rt.call("calc.half", &[Value::F32(5.0)]).unwrap(),
        Value::F64(2.5)
    );
    assert_eq!(
        rt.call(
            "calc.narrow",
            &[
                Value::I8(-100),
                Value::I16(-30000),
                Value::U8(200),
                Value::U16(60000)
            ]
        )
        .unwrap(),
        Value::I32(-100 - 30000 + 200 + 60000)
    );
    assert_eq!(
        rt.call("calc.big", &[Value::U64(u64::MAX)]).unwrap(),
        Value::U64(u64::MAX)
    );
    assert_eq!(
        rt.call("calc.greet", &[Value::from("wörld")]).unwrap(),
        Value::from("héllo wörld ✓")
    );
    assert_eq!(
        rt.call("calc.reverse", &[Value::Bytes(vec![1, 2, 0, 255])])
            .unwrap(),
        Value::Bytes(vec![255, 0, 2, 1])
    );
    assert_eq!(
        rt.call("calc.keys", &[Value::Json(serde_json::json!({"a": 1}))])
            .unwrap(),
        Value::Json(serde_json::json!(["7"]))
    );
    assert_eq!(rt.call("calc.reset", &[]).unwrap(), Value::Void);
    assert_eq!(rt.call("calc.count", &[]).unwrap(), Value::I64(1));
    assert_eq!(rt.call("calc.count", &[]).unwrap(), Value::I64(2));
}

#[test]
fn a_dotnet_exception_is_an_error_with_type_message_and_stack_trace() {
    let (_s, rt) = calc();
    let checked = rt
        .function::<extern "C" fn(i64) -> i64>("calc.checked")
        .unwrap();
    for _ in 0..3 {
        match checked.call((-1,)) {
            Err(Error::Guest {
                name,
                message,
                traceback,
            }) => {
                assert_eq!(name, "calc.checked");
                assert!(
                    message.starts_with("System.ArgumentOutOfRangeException: must not be negative"),
                    "{message}"
                );
                let tb = traceback.expect("a stack trace");
                assert!(tb.contains("Demo.Calc.Checked"), "{tb}");
            }
            other => panic!("{other:?}"),
        }
        // The bundle keeps working.
        assert_eq!(checked.call((5,)).unwrap(), 5);
    }
    match rt.call("calc.fails", &[Value::from("x")]) {
        Err(Error::Guest {
            message, traceback, ..
        }) => {
            assert_eq!(message, "System.FormatException: bad: x");
            assert!(traceback.unwrap().contains("Demo.Calc.Fails"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        rt.call("calc.greet", &[Value::from("a")]).unwrap(),
        Value::from("héllo a ✓")
    );
}

#[test]
fn a_method_of_the_wrong_type_is_refused_naming_both_types() {
    let s = Scratch::new();
    let manifest = MANIFEST.replace(
        "add = \"fn(i64, i64) -> i64\"",
        "add = \"fn(i64, i32) -> i64\"",
    );
    let dir = write_calc(&s.bundles(), CALC, &manifest);
    let rt = runtime(&s);
    let e = rt.load_bundle(&dir).unwrap_err().to_string();
    assert!(
        e.contains("parameter 2 of `Demo.Calc::Add` is `System.Int64`, the manifest's `i32` needs `System.Int32`"),
        "{e}"
    );
    let missing = MANIFEST.replace("count = \"fn() -> i64\"", "count = \"fn(i64) -> i64\"");
    let dir = write_calc(&s.bundles(), CALC, &missing);
    let e = rt.load_bundle(&dir).unwrap_err().to_string();
    assert!(
        e.contains("class `Demo.Calc` has no method `count` or `Count` with 1 parameter(s)"),
        "{e}"
    );
}

#[test]
fn csharp_calls_other_bundles_through_polyload_call() {
    let s = Scratch::new();
    let hello = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/bundles/hello");
    let manifest = MANIFEST.replace(
        "[exports]",
        "[exports]\nvia_host = \"fn(i64) -> i64\"\nhost_error = \"fn() -> str\"\n[dotnet.methods]\nvia_host = \"ViaHost\"\nhost_error = \"Demo.Calc::HostError\"\n",
    );
    // TOML: [dotnet.methods] must follow [dotnet]; move [exports] after it.
    let manifest = reorder(&manifest);
    let dir = write_calc(&s.bundles(), CALC, &manifest);
    let rt = runtime(&s);
    rt.load_bundle(&hello).unwrap();
    rt.load_bundle(&dir).unwrap();
    let via = rt
        .function::<extern "C" fn(i64) -> i64>("calc.via_host")
        .unwrap();
    assert_eq!(via.call((-42,)).unwrap(), 58);
    let e = rt.call("calc.host_error", &[]).unwrap().to_string();
    assert!(e.contains("hello.nothing"), "{e}");
}

/// Puts `[exports]` (and what follows it up to the next table) last.
fn reorder(manifest: &str) -> String {
    let start = manifest.find("[exports]").unwrap();
    let rest = &manifest[start..];
    let end = rest[1..].find("\n[").map(|i| i + 2).unwrap_or(rest.len());
    let (exports, tail) = rest.split_at(end);
    format!("{}{}\n{}", &manifest[..start], tail, exports)
}

#[test]
fn reload_unload_and_failed_reloads_of_several_bundles_in_one_process() {
    let s = Scratch::new();
    let dir = write_calc(&s.bundles(), CALC, MANIFEST);
    let other = write_other(&s.bundles(), &CALC.replace("OFFSET = 0", "OFFSET = 1000"));
    let rt = runtime(&s);
    rt.load_bundle(&dir).unwrap();
    rt.load_bundle(&other).unwrap();
    let add = rt
        .function::<extern "C" fn(i64, i64) -> i64>("calc.add")
        .unwrap();
    let other_add = rt
        .function::<extern "C" fn(i64, i64) -> i64>("other.add")
        .unwrap();
    assert_eq!(add.call((1, 2)).unwrap(), 3);
    assert_eq!(other_add.call((1, 2)).unwrap(), 1003);
    rt.call("calc.count", &[]).unwrap();

    for round in 1..=3i64 {
        std::fs::write(
            dir.join("src/Calc.cs"),
            CALC.replace("OFFSET = 0", &format!("OFFSET = {}", round * 10)),
        )
        .unwrap();
        rt.reload("calc").unwrap();
        assert_eq!(add.call((1, 2)).unwrap(), 3 + round * 10, "round {round}");
        // A fresh domain: static state starts over.
        assert_eq!(rt.call("calc.count", &[]).unwrap(), Value::I64(1));
        assert_eq!(other_add.call((1, 2)).unwrap(), 1003);
    }

    // A compile error keeps the old version serving.
    std::fs::write(dir.join("src/Calc.cs"), "this is not C#").unwrap();
    let e = rt.reload("calc").unwrap_err().to_string();
    assert!(e.contains("mcs"), "{e}");
    assert_eq!(add.call((1, 2)).unwrap(), 33);
    // So does a missing method, and a method of the wrong type.
    std::fs::write(dir.join("src/Calc.cs"), CALC.replace("Add(", "Plus(")).unwrap();
    let e = rt.reload("calc").unwrap_err().to_string();
    assert!(e.contains("no method `add` or `Add`"), "{e}");
    std::fs::write(
        dir.join("src/Calc.cs"),
        CALC.replace("long Add(long a, long b)", "long Add(long a, int b)"),
    )
    .unwrap();
    let e = rt.reload("calc").unwrap_err().to_string();
    assert!(
        e.contains("parameter 2 of `Demo.Calc::Add` is `System.Int32`"),
        "{e}"
    );
    assert_eq!(add.call((1, 2)).unwrap(), 33);

    // Unload: the handle goes stale, the other bundle keeps serving.
    rt.unload("calc").unwrap();
    assert!(matches!(add.call((1, 2)), Err(Error::Stale { .. })));
    assert_eq!(other_add.call((1, 2)).unwrap(), 1003);
    // And the bundle loads again.
    std::fs::write(dir.join("src/Calc.cs"), CALC).unwrap();
    rt.load_bundle(&dir).unwrap();
    let add = rt
        .function::<extern "C" fn(i64, i64) -> i64>("calc.add")
        .unwrap();
    assert_eq!(add.call((1, 2)).unwrap(), 3);
    drop(rt);
    assert!(matches!(add.call((1, 2)), Err(Error::Stale { .. })));
    assert!(matches!(other_add.call((1, 2)), Err(Error::Stale { .. })));
}

#[test]
fn threads_call_in_parallel_attach_once_and_exit_cleanly() {
    let (_s, rt) = calc();
    let add = rt
        .function::<extern "C" fn(i64, i64) -> i64>("calc.add")
        .unwrap();
    // Many short-lived threads, each attached on its first call and
    // detached when it exits; a GC afterwards must not wait for them.
    for wave in 0..10 {
        std::thread::scope(|sc| {
            for t in 0..8i64 {
                let add = &add;
                let rt = &rt;
                sc.spawn(move || {
                    for i in 0..200 {
                        assert_eq!(add.call((i, t)).unwrap(), i + t);
                    }
                    let s = format!("{wave}-{t}");
                    assert_eq!(
                        rt.call("calc.greet", &[Value::from(s.as_str())]).unwrap(),
                        Value::Str(format!("héllo {s} ✓"))
                    );
                });
            }
        });
    }
    // Strings allocate; enough of them make the GC run with the exited
    // threads gone.
    for i in 0..20_000 {
        let s = "x".repeat(i % 64);
        assert_eq!(
            rt.call("calc.greet", &[Value::from(s.as_str())]).unwrap(),
            Value::Str(format!("héllo {s} ✓"))
        );
    }
}

#[test]
fn calls_in_a_scope_stay_in_a_domain_and_switch_when_the_bundle_changes() {
    // Two domains with a static counter each: a call that ran in the wrong
    // domain would count with the other bundle's static.
    let s = Scratch::new();
    let manifest = MANIFEST
        .replace(
            "class = \"Demo.Calc\"\n",
            "class = \"Demo.Calc\"\n[dotnet.methods]\nvia_other = \"ViaOther\"\n",
        )
        .replace("[exports]", "[exports]\nvia_other = \"fn() -> i64\"");
    let dir = write_calc(&s.bundles(), CALC, &manifest);
    let other = write_other(&s.bundles(), CALC);
    let rt = runtime(&s);
    rt.load_bundle(&dir).unwrap();
    rt.load_bundle(&other).unwrap();
    let count = |name: &str| rt.function::<extern "C" fn() -> i64>(name).unwrap();
    let (calc, other) = (count("calc.count"), count("other.count"));
    let via_other = count("calc.via_other");
    let checked = rt
        .function::<extern "C" fn(i64) -> i64>("calc.checked")
        .unwrap();

    rt.enter(|scope| {
        for i in 1..=3 {
            // Twice in a row in one domain (the thread stays), then the
            // other (it switches), by both kinds of typed call.
            assert_eq!(calc.call_in(scope, ()).unwrap(), 2 * i - 1);
            assert_eq!(calc.call(()).unwrap(), 2 * i);
            assert_eq!(other.call_in(scope, ()).unwrap(), i);
            // Between calls the thread stays in the last one's domain.
            assert_eq!(polyload_dotnet::thread_in_root_domain(), Some(false));
        }
        // An exception thrown in calc's domain, called from other's (the
        // thunk's exception slot catches it there), and again with the
        // thread staying in calc's: an error each time, described in calc's
        // domain, and the thread's domain stays right for the next calls.
        for _ in 0..2 {
            let e = checked.call_in(scope, (-1,)).unwrap_err().to_string();
            assert!(
                e.contains("System.ArgumentOutOfRangeException: must not be negative"),
                "{e}"
            );
        }
        assert_eq!(checked.call_in(scope, (5,)).unwrap(), 5);
        // By name.
        assert_eq!(rt.call("calc.count", &[]).unwrap(), Value::I64(7));
        // Nested: calc calls other, whose call must hand the thread back
        // to calc before calc reads its own counter.
        assert_eq!(via_other.call_in(scope, ()).unwrap(), 8 * 1000 + 4);
        assert_eq!(other.call_in(scope, ()).unwrap(), 5);
        // A reload inside the scope: the next call reaches a fresh domain;
        // the old one, which the thread was in, waits for the scope's end.
        rt.reload("calc").unwrap();
        assert_eq!(calc.call_in(scope, ()).unwrap(), 1);
        assert_eq!(other.call_in(scope, ()).unwrap(), 6);
        assert_eq!(calc.call_in(scope, ()).unwrap(), 2);
    });
    // The scope ended with the thread in calc's domain: it is back in the
    // root domain, so the old domain unloads and every call still lands.
    assert_eq!(polyload_dotnet::thread_in_root_domain(), Some(true));
    rt.collect_garbage(std::time::Duration::from_secs(10));
    assert_eq!(calc.call(()).unwrap(), 3);
    assert_eq!(other.call(()).unwrap(), 7);
    // Once more, ending in calc, and then calc is unloaded: the thread is
    // not in the domain Mono unloads.
    let n = rt.enter(|scope| calc.call_in(scope, ()).unwrap());
    assert_eq!(n, 4);
    assert_eq!(polyload_dotnet::thread_in_root_domain(), Some(true));
    // Outside a scope no call leaves the thread anywhere.
    assert_eq!(calc.call(()).unwrap(), 5);
    assert_eq!(polyload_dotnet::thread_in_root_domain(), Some(true));
    rt.unload("calc").unwrap();
    rt.collect_garbage(std::time::Duration::from_secs(10));
    assert!(matches!(calc.call(()), Err(Error::Stale { .. })));
    assert_eq!(other.call(()).unwrap(), 8);
    // A scope on another thread, its calls ending in other's domain, and a
    // thread that exits right after.
    std::thread::scope(|sc| {
        sc.spawn(|| rt.enter(|scope| assert_eq!(other.call_in(scope, ()).unwrap(), 9)));
    });
    assert_eq!(other.call(()).unwrap(), 10);
}
