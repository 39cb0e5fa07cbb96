//! The WebAssembly loader over real wasmtime instances, through the
//! runtime: values, buffers, errors, imports bound to other bundles,
//! traps, every sandbox limit, the compiled-module cache and hot reload.

use polyload::{BundleSource, Error, Manifest, Runtime, Value};
use polyload_outside::Scratch;
use polyload_wasm::WasmLoader;
use serde_json::json;
use std::path::{Path, PathBuf};

const CALC: &str = include_str!("guests/calc.wat");

const CALC_EXPORTS: &str = r#"
[exports]
add = "fn(i64, i64) -> i64"
hypot = "fn(f64, f64) -> f64"
narrow = "fn(i32) -> i8"
is_even = "fn(u32) -> bool"
complement = "fn(u32) -> u32"
shout = "fn(str) -> str"
rev = "fn(bytes) -> bytes"
echo = "fn(json) -> json"
fail = "fn(str) -> str"
price = "fn(str, f64) -> f64"
reenter = "fn() -> i64"
count = "fn() -> i64"
spin = "fn() -> i64"
hog = "fn() -> i32"
hog_and_crash = "fn() -> i32"
crash = "fn() -> i32"
wild_read = "fn() -> i32"
recurse = "fn(i32) -> i32"
div = "fn(i32, i32) -> i32"

[wasm]
max_memory = "1 MiB"
timeout_ms = 200

[wasm.imports]
"env.lookup_rate" = "rates.lookup"
"env.self_add" = "wcalc.add"
"#;

fn runtime(s: &Scratch) -> Runtime {
    s.builder().loader(WasmLoader::new()).build().unwrap()
}

/// Writes a wasm bundle `id` whose module is `file` with `code`.
fn wasm_bundle(s: &Scratch, id: &str, file: &str, code: &[u8], rest: &str) -> PathBuf {
    let dir = s.bundles().join(id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("manifest.toml"),
        format!("id = \"{id}\"\nversion = \"0.1.0\"\nloader = \"wasm\"\nfile = \"{file}\"\nabi = \"1.0\"\n{rest}"),
    )
    .unwrap();
    std::fs::write(dir.join(file), code).unwrap();
    dir
}

/// The `rates` C bundle `wcalc.price` imports.
fn rates(s: &Scratch) -> PathBuf {
    s.c_bundle(
        "rates",
        "[exports]\nlookup = \"fn(str) -> f64\"\n",
        r#"#include <polyload.h>
#include <string.h>
static double lookup(PolyloadStr code) {
    if (code.len == 3 && memcmp(code.ptr, "EUR", 3) == 0) return 1.25;
    if (code.len == 3 && memcmp(code.ptr, "JPY", 3) == 0) return 0.5;
    return -1.0;
}
uint32_t polyload_abi_version(void) { return POLYLOAD_ABI_VERSION_PACKED; }
int32_t polyload_bundle_init(const PolyloadHost *h, PolyloadBundle *b) {
    POLYLOAD_DEFINE(h, b, "lookup", "fn(str) -> f64", lookup);
    return POLYLOAD_OK;
}
"#,
    )
}

fn calc(s: &Scratch) -> (Runtime, PathBuf) {
    let rt = runtime(s);
    rt.load_bundle(rates(s)).unwrap();
    let dir = wasm_bundle(s, "wcalc", "calc.wat", CALC.as_bytes(), CALC_EXPORTS);
    rt.load_bundle(&dir).unwrap();
    (rt, dir)
}

fn guest_message(e: Error) -> (String, Option<String>) {
    match e {
        Error::Guest {
            message, traceback, ..
        } => (message, traceback),
        other => panic!("expected a guest error, got {other:?}"),
    }
}

#[test]
fn numbers_cross_as_wasm_values_and_narrow_results_are_range_checked() {
    let s = Scratch::new();
    let (rt, _) = calc(&s);
    let add = rt
        .function::<extern "C" fn(i64, i64) -> i64>("wcalc.add")
        .unwrap();
    assert_eq!(add.call((40, 2)).unwrap(), 42);
    assert_eq!(add.call((i64::MAX, 1)).unwrap(), i64::MIN, "wasm wraps");
    assert_eq!(
        rt.call("wcalc.hypot", &[Value::F64(3.0), Value::F64(4.0)])
            .unwrap(),
        Value::F64(5.0)
    );
    assert_eq!(
        rt.call("wcalc.narrow", &[Value::I32(-100)]).unwrap(),
        Value::I8(-100)
    );
    let e = rt.call("wcalc.narrow", &[Value::I32(300)]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "`wcalc.narrow` failed: return value: 300 is out of range for i8"
    );
    assert_eq!(
        rt.call("wcalc.is_even", &[Value::U32(10)]).unwrap(),
        Value::Bool(true)
    );
    assert_eq!(
        rt.call("wcalc.complement", &[Value::U32(0)]).unwrap(),
        Value::U32(u32::MAX),
        "unsigned values travel as their bits"
    );
}

#[test]
fn typed_handles_pass_every_scalar_kind_through_raw_slots() {
    // Typed handles of numbers and `bool` take the loader's raw-slot entry
    // (`SlotFn`): each kind's encoding, both ways, against `Runtime::call`.
    let s = Scratch::new();
    // One identity function for every 32-bit kind.
    let identities: String = [
        "i8_id", "u8_id", "i16_id", "u16_id", "u32_id", "bool_id", "narrowed",
    ]
    .iter()
    .map(|n| format!(r#"(func (export "{n}") (param i32) (result i32) (local.get 0))"#))
    .collect();
    let rest = r#"
        (func (export "neg32") (param f32) (result f32) (f32.neg (local.get 0)))
        (func (export "not64") (param i64) (result i64) (i64.xor (local.get 0) (i64.const -1)))
        (func (export "mix") (param i32 f32 f64 i64 i32) (result f64)
            (f64.add
                (f64.add (f64.convert_i32_s (local.get 0)) (f64.promote_f32 (local.get 1)))
                (f64.add (local.get 2)
                    (f64.add (f64.convert_i64_s (local.get 3)) (f64.convert_i32_u (local.get 4))))))
        (global $n (mut i32) (i32.const 0))
        (func (export "bump") (global.set $n (i32.add (global.get $n) (i32.const 1))))
        (func (export "bumps") (result i32) (global.get $n)))"#;
    let wat = format!("(module {identities}{rest}");
    let exports = r#"
[exports]
i8_id = "fn(i8) -> i8"
u8_id = "fn(u8) -> u8"
i16_id = "fn(i16) -> i16"
u16_id = "fn(u16) -> u16"
u32_id = "fn(u32) -> u32"
bool_id = "fn(bool) -> bool"
neg32 = "fn(f32) -> f32"
not64 = "fn(u64) -> u64"
mix = "fn(i8, f32, f64, i64, bool) -> f64"
bump = "fn() -> void"
bumps = "fn() -> i32"
narrowed = "fn(i32) -> u8"
"#;
    let dir = wasm_bundle(&s, "kinds", "kinds.wat", wat.as_bytes(), exports);
    let rt = runtime(&s);
    rt.load_bundle(&dir).unwrap();
    macro_rules! same {
        ($name:literal, $f:ty, ($($a:expr),*) => $want:expr, $v:ident) => {{
            let f = rt.function::<$f>(concat!("kinds.", $name)).unwrap();
            assert_eq!(f.call(($($a,)*)).unwrap(), $want, $name);
            assert_eq!(
                rt.call(concat!("kinds.", $name), &[$(Value::from($a)),*]).unwrap(),
                Value::$v($want),
                $name
            );
        }};
    }
    same!("i8_id", extern "C" fn(i8) -> i8, (-100i8) => -100, I8);
    same!("u8_id", extern "C" fn(u8) -> u8, (250u8) => 250, U8);
    same!("i16_id", extern "C" fn(i16) -> i16, (i16::MIN) => i16::MIN, I16);
    same!("u16_id", extern "C" fn(u16) -> u16, (u16::MAX) => u16::MAX, U16);
    same!("u32_id", extern "C" fn(u32) -> u32, (u32::MAX) => u32::MAX, U32);
    same!("bool_id", extern "C" fn(bool) -> bool, (true) => true, Bool);
    same!("neg32", extern "C" fn(f32) -> f32, (1.5f32) => -1.5, F32);
    same!("not64", extern "C" fn(u64) -> u64, (0u64) => u64::MAX, U64);
    same!("mix", extern "C" fn(i8, f32, f64, i64, bool) -> f64,
        (-3i8, 0.5f32, 0.25f64, 1i64 << 40, true) => -3.0 + 0.5 + 0.25 + (1u64 << 40) as f64 + 1.0, F64);
    let bump = rt.function::<extern "C" fn()>("kinds.bump").unwrap();
    bump.call(()).unwrap();
    bump.call(()).unwrap();
    let bumps = rt
        .function::<extern "C" fn() -> i32>("kinds.bumps")
        .unwrap();
    assert_eq!(bumps.call(()).unwrap(), 2, "a void export ran twice");
    // A narrow result out of range is an error on the slot path too.
    let narrowed = rt
        .function::<extern "C" fn(i32) -> u8>("kinds.narrowed")
        .unwrap();
    assert_eq!(narrowed.call((255,)).unwrap(), 255);
    let e = narrowed.call((256,)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "`kinds.narrowed` failed: return value: 256 is out of range for u8"
    );
    let e = narrowed.call((-1,)).unwrap_err();
    assert!(e.to_string().contains("-1 is out of range for u8"), "{e}");
}

#[test]
fn buffers_cross_through_the_guest_allocator() {
    let s = Scratch::new();
    let (rt, _) = calc(&s);
    assert_eq!(
        rt.call("wcalc.shout", &[Value::from("hello, wasm")])
            .unwrap(),
        Value::from("HELLO, WASM!")
    );
    assert_eq!(
        rt.call("wcalc.shout", &[Value::from("")]).unwrap(),
        Value::from("!")
    );
    assert_eq!(
        rt.call("wcalc.rev", &[Value::Bytes(vec![1, 2, 3, 0, 255])])
            .unwrap(),
        Value::Bytes(vec![255, 0, 3, 2, 1])
    );
    let doc = json!({"a": [1, 2.5, "three", null, true], "b": {"c": "ü"}});
    assert_eq!(
        rt.call("wcalc.echo", &[Value::Json(doc.clone())]).unwrap(),
        Value::Json(doc)
    );
    // A large argument grows the guest's memory (1 MiB allowed).
    let big = "x".repeat(300_000);
    let out = rt
        .call("wcalc.shout", &[Value::from(big.as_str())])
        .unwrap();
    assert_eq!(
        out,
        Value::from(format!("{}!", "X".repeat(300_000)).as_str())
    );
}

#[test]
fn a_guest_error_is_an_error_value_and_the_instance_keeps_its_state() {
    let s = Scratch::new();
    let (rt, _) = calc(&s);
    assert_eq!(rt.call("wcalc.count", &[]).unwrap(), Value::I64(1));
    let (message, _) = guest_message(
        rt.call("wcalc.fail", &[Value::from("the card was declined")])
            .unwrap_err(),
    );
    assert_eq!(message, "the card was declined");
    assert_eq!(
        rt.call("wcalc.count", &[]).unwrap(),
        Value::I64(2),
        "a reported error is not a trap: the instance is kept"
    );
}

#[test]
fn guests_call_other_bundles_through_bound_imports() {
    let s = Scratch::new();
    let (rt, _) = calc(&s);
    assert_eq!(
        rt.call("wcalc.price", &[Value::from("EUR"), Value::F64(8.0)])
            .unwrap(),
        Value::F64(10.0)
    );
    assert_eq!(
        rt.call("wcalc.price", &[Value::from("JPY"), Value::F64(8.0)])
            .unwrap(),
        Value::F64(4.0)
    );
    // A call out of the bundle that comes back into it is refused, not a
    // deadlock; the bundle keeps working.
    let (message, _) = guest_message(rt.call("wcalc.reenter", &[]).unwrap_err());
    assert!(message.contains("re-entrant call"), "{message}");
    assert!(message.contains("env.self_add"), "{message}");
    assert_eq!(
        rt.call("wcalc.add", &[Value::I64(1), Value::I64(1)])
            .unwrap(),
        Value::I64(2)
    );
}

#[test]
fn traps_become_errors_naming_the_export_and_the_trap_with_a_backtrace() {
    let s = Scratch::new();
    let (rt, _) = calc(&s);
    let cases = [
        ("crash", vec![], "wasm `unreachable` instruction executed"),
        ("wild_read", vec![], "out of bounds memory access"),
        ("recurse", vec![Value::I32(0)], "call stack exhausted"),
        (
            "div",
            vec![Value::I32(1), Value::I32(0)],
            "integer divide by zero",
        ),
    ];
    for (name, args, trap) in cases {
        assert_eq!(rt.call("wcalc.count", &[]).unwrap(), Value::I64(1));
        let e = rt.call(&format!("wcalc.{name}"), &args).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("`wcalc.{name}` failed: {name}: wasm trap: {trap}")),
            "{text}"
        );
        let (_, traceback) = guest_message(e);
        let traceback = traceback.expect("a wasm backtrace");
        assert!(traceback.contains(name), "{traceback}");
        // The instance was recreated: its state starts over, and it works.
        assert_eq!(rt.call("wcalc.count", &[]).unwrap(), Value::I64(1));
        assert_eq!(rt.call("wcalc.count", &[]).unwrap(), Value::I64(2));
        // Back to a fresh instance for the next case.
        let _ = rt.call("wcalc.crash", &[]);
    }
}

#[test]
fn an_endless_loop_times_out_and_the_bundle_keeps_working() {
    let s = Scratch::new();
    let (rt, _) = calc(&s);
    let start = std::time::Instant::now();
    let e = rt.call("wcalc.spin", &[]).unwrap_err();
    let elapsed = start.elapsed();
    assert_eq!(
        e.to_string(),
        "`wcalc.spin` failed: spin: timed out after 200 ms (timeout_ms)"
    );
    assert!(
        elapsed >= std::time::Duration::from_millis(200),
        "{elapsed:?}"
    );
    assert_eq!(
        rt.call("wcalc.add", &[Value::I64(2), Value::I64(3)])
            .unwrap(),
        Value::I64(5)
    );
    // Another thread's calls are not held up for good either.
    let rt2 = rt.clone();
    let t = std::thread::spawn(move || rt2.call("wcalc.spin", &[]).unwrap_err());
    let e = t.join().unwrap();
    assert!(e.to_string().contains("timed out"), "{e}");
}

/// The calc guest as bundle `id` with `limits` instead of its
/// `timeout_ms = 200`, loaded (with the rates bundle it imports from).
fn calc_limited(s: &Scratch, id: &str, limits: &str) -> Runtime {
    let rt = runtime(s);
    let manifest = CALC_EXPORTS.replace("timeout_ms = 200", limits).replace(
        "\"env.self_add\" = \"wcalc.add\"",
        &format!("\"env.self_add\" = \"{id}.add\""),
    );
    let dir = wasm_bundle(s, id, "calc.wat", CALC.as_bytes(), &manifest);
    rt.load_bundle(rates(s)).unwrap();
    rt.load_bundle(&dir).unwrap();
    rt
}

#[test]
fn fuel_bounds_the_instructions_a_call_may_run() {
    let s = Scratch::new();
    let rt = calc_limited(&s, "fueled", "timeout_ms = 0\nfuel = 100_000");
    let e = rt.call("fueled.spin", &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "`fueled.spin` failed: spin: ran out of fuel (100000 units, fuel)"
    );
    // The budget is per call: small calls keep working.
    for _ in 0..100 {
        rt.call("fueled.add", &[Value::I64(1), Value::I64(2)])
            .unwrap();
    }
}

#[test]
fn without_time_or_fuel_limits_each_call_still_starts_clean() {
    // `timeout_ms = 0` and no fuel: a call arms nothing (the deadline set
    // at instantiation never comes), but what one call left behind (a
    // refused memory growth) is not blamed on the next.
    let s = Scratch::new();
    let rt = calc_limited(&s, "unlimited", "timeout_ms = 0");
    let add = rt
        .function::<extern "C" fn(i64, i64) -> i64>("unlimited.add")
        .unwrap();
    for i in 0..1000 {
        assert_eq!(add.call((i, 1)).unwrap(), i + 1);
    }
    assert_eq!(rt.call("unlimited.hog", &[]).unwrap(), Value::I32(16));
    let e = rt.call("unlimited.crash", &[]).unwrap_err().to_string();
    assert!(e.contains("unreachable"), "{e}");
    assert!(
        !e.contains("max_memory"),
        "a refusal of an earlier call: {e}"
    );
    assert_eq!(add.call((2, 3)).unwrap(), 5);
}

#[test]
fn memory_cannot_grow_past_max_memory() {
    let s = Scratch::new();
    let (rt, _) = calc(&s);
    // 1 MiB is 16 pages: growing stops there, inside the guest.
    assert_eq!(rt.call("wcalc.hog", &[]).unwrap(), Value::I32(16));
    // A guest that carries on regardless traps, and the error says why.
    let e = rt.call("wcalc.hog_and_crash", &[]).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("out of bounds memory access"), "{text}");
    assert!(
        text.contains("growing memory to 1114112 bytes was refused; max_memory is 1048576 bytes"),
        "{text}"
    );
    // An argument that does not fit is an error too, not a crash.
    let e = rt
        .call("wcalc.shout", &[Value::from("y".repeat(2 << 20).as_str())])
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("polyload_alloc(2097152, 1) returned null"),
        "{e}"
    );
    assert_eq!(
        rt.call("wcalc.shout", &[Value::from("ok")]).unwrap(),
        Value::from("OK!")
    );
}

#[test]
fn a_module_loads_from_bytes_in_memory() {
    let s = Scratch::new();
    let rt = runtime(&s);
    let wasm = wat::parse_str(
        r#"(module (func (export "triple") (param i64) (result i64)
            (i64.mul (local.get 0) (i64.const 3))))"#,
    )
    .unwrap();
    let text = "id = \"mem\"\nversion = \"0.1.0\"\nloader = \"wasm\"\nfile = \"mem.wasm\"\nabi = \"1.0\"\n[exports]\ntriple = \"fn(i64) -> i64\"\n";
    let m = Manifest::parse(text, &s.bundles().join("mem/manifest.toml")).unwrap();
    rt.load_manifest(m, BundleSource::Bytes(wasm)).unwrap();
    assert_eq!(
        rt.call("mem.triple", &[Value::I64(14)]).unwrap(),
        Value::I64(42)
    );
}

fn reloadable(s: &Scratch, body: &str) -> PathBuf {
    wasm_bundle(
        s,
        "hot",
        "hot.wat",
        format!("(module (func (export \"answer\") (result i64) {body}))").as_bytes(),
        "[exports]\nanswer = \"fn() -> i64\"\n",
    )
}

#[test]
fn hot_reload_swaps_instances_and_a_broken_version_keeps_the_old_one() {
    let s = Scratch::new();
    let rt = runtime(&s);
    let dir = reloadable(&s, "(i64.const 1)");
    rt.load_bundle(&dir).unwrap();
    let answer = rt.function::<extern "C" fn() -> i64>("hot.answer").unwrap();
    assert_eq!(answer.call(()).unwrap(), 1);
    reloadable(&s, "(i64.const 2)");
    rt.reload("hot").unwrap();
    assert_eq!(answer.call(()).unwrap(), 2, "the handle follows the reload");
    // Not a module: the reload fails and version 2 keeps serving.
    std::fs::write(dir.join("hot.wat"), "(module (func (export \"answer\"").unwrap();
    let e = rt.reload("hot").unwrap_err();
    assert!(
        e.to_string().contains("not a valid WebAssembly module"),
        "{e}"
    );
    assert_eq!(answer.call(()).unwrap(), 2);
    // A module whose export does not fit the manifest fails too.
    std::fs::write(
        dir.join("hot.wat"),
        "(module (func (export \"answer\") (result f32) (f32.const 3)))",
    )
    .unwrap();
    let e = rt.reload("hot").unwrap_err();
    assert!(e.to_string().contains("exports.answer"), "{e}");
    assert_eq!(answer.call(()).unwrap(), 2);
}

#[test]
fn calls_from_many_threads_share_one_instance() {
    let s = Scratch::new();
    let (rt, _) = calc(&s);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let rt = rt.clone();
            std::thread::spawn(move || {
                let add = rt
                    .function::<extern "C" fn(i64, i64) -> i64>("wcalc.add")
                    .unwrap();
                for i in 0..2000 {
                    assert_eq!(add.call((i, t)).unwrap(), i + t);
                }
                for _ in 0..100 {
                    assert_eq!(
                        rt.call("wcalc.shout", &[Value::from("abc")]).unwrap(),
                        Value::from("ABC!")
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

fn load_err(s: &Scratch, file: &str, code: &str, rest: &str) -> String {
    let rt = runtime(s);
    let dir = wasm_bundle(s, "bad", file, code.as_bytes(), rest);
    rt.load_bundle(&dir).unwrap_err().to_string()
}

#[test]
fn bad_bundles_are_refused_with_the_reason() {
    let s = Scratch::new();
    let e = load_err(
        &s,
        "m.wat",
        r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))))"#,
        "",
    );
    assert!(
        e.contains("imports `wasi_snapshot_preview1.fd_write`, which nothing provides; it is WASI, which this bundle is not given: set `[wasm] wasi = true`"),
        "{e}"
    );
    let e = load_err(
        &s,
        "m.wat",
        r#"(module (import "env" "mystery" (func)))"#,
        "",
    );
    assert!(e.contains("imports `env.mystery`, which nothing provides; bind it to a definition in `[wasm.imports]`"), "{e}");
    let e = load_err(
        &s,
        "m.wat",
        r#"(module)"#,
        "[wasm.imports]\n\"env.f\" = \"a.f\"\n",
    );
    assert!(
        e.ends_with("manifest.toml:7: wasm.imports: the module does not import `env.f`"),
        "{e}"
    );
    let e = load_err(
        &s,
        "m.wat",
        r#"(module (func (export "f") (param i32 i32) (result i32) (i32.const 0)))"#,
        "[exports]\nf = \"fn(str) -> i32\"\n",
    );
    assert!(e.contains("exports.f: `fn(str) -> i32` takes str, bytes or json, so the module must export `polyload_alloc"), "{e}");
    let e = load_err(
        &s,
        "m.wat",
        r#"(module (func (export "f") (param i64) (result i64) (local.get 0)))"#,
        "[exports]\nf = \"fn(i32) -> i64\"\n",
    );
    assert!(
        e.contains("exports.f: its wasm parameters are (i64) but `fn(i32) -> i64` needs (i32)"),
        "{e}"
    );
    let e = load_err(&s, "m.wat", "(module", "");
    assert!(e.contains("not a valid WebAssembly module"), "{e}");
    let e = load_err(&s, "m.wat", "(module)", "[wasm]\nenv = { A = \"1\" }\n");
    assert!(
        e.contains(
            "wasm.env: `env` is given to WASI, which this bundle does not get: add `wasi = true`"
        ),
        "{e}"
    );
    let e = load_err(
        &s,
        "m.wat",
        "(module)",
        "[wasm]\nmax_memory = \"12 parsecs\"\n",
    );
    assert!(e.contains("wasm.max_memory"), "{e}");
    let e = load_err(
        &s,
        "m.wat",
        "(module (memory 64))",
        "[wasm]\nmax_memory = \"1 MiB\"\n",
    );
    assert!(e.contains("failed to initialise"), "{e}");
    let e = load_err(
        &s,
        "m.wat",
        "(module)",
        "[wasm]\nwasi = true\nallowed_paths = { \"nowhere\" = \"/x\" }\n",
    );
    assert!(e.contains("wasm.allowed_paths: `"), "{e}");
    assert!(e.contains("nowhere` is not a directory"), "{e}");
    let _ = Path::new("");
}

#[test]
fn native_and_lua_bundles_call_into_the_sandbox() {
    let s = Scratch::new();
    let rt = s
        .builder()
        .loader(WasmLoader::new())
        .loader(polyload_lua::LuaLoader::new())
        .build()
        .unwrap();
    rt.load_bundle(rates(&s)).unwrap();
    rt.load_bundle(wasm_bundle(
        &s,
        "wcalc",
        "calc.wat",
        CALC.as_bytes(),
        CALC_EXPORTS,
    ))
    .unwrap();
    // C, through a slot, as any definition: the wasm export's C entry point.
    let c = s.c_bundle(
        "usesw",
        "[exports]\nsum3 = \"fn(i64, i64, i64) -> i64\"\n",
        r#"#include <polyload.h>
typedef int64_t (*add_fn)(int64_t, int64_t);
static const PolyloadHost *host;
static const PolyloadSlot *add;
static int64_t sum3(int64_t a, int64_t b, int64_t c) {
    add_fn f = (add_fn)polyload_slot_get(add);
    if (f == NULL) { host->set_error(polyload_str("wcalc.add is gone")); return 0; }
    return f(f(a, b), c);
}
uint32_t polyload_abi_version(void) { return POLYLOAD_ABI_VERSION_PACKED; }
int32_t polyload_bundle_init(const PolyloadHost *h, PolyloadBundle *b) {
    host = h;
    add = h->lookup(b, polyload_str("wcalc.add"));
    if (add == NULL) return POLYLOAD_ERR;
    POLYLOAD_DEFINE(h, b, "sum3", "fn(i64, i64, i64) -> i64", sum3);
    return POLYLOAD_OK;
}
"#,
    );
    rt.load_bundle(c).unwrap();
    assert_eq!(
        rt.call(
            "usesw.sum3",
            &[Value::I64(1), Value::I64(2), Value::I64(39)]
        )
        .unwrap(),
        Value::I64(42)
    );
    // Lua, through polyload.call: strings cross the guest's memory both ways,
    // and a guest error in the sandbox is a Lua error with its message.
    let lua = s.bundles().join("usesl");
    std::fs::create_dir_all(&lua).unwrap();
    std::fs::write(
        lua.join("manifest.toml"),
        "id = \"usesl\"\nversion = \"0.1.0\"\nloader = \"lua\"\nfile = \"main.lua\"\nabi = \"1.0\"\n\
         [exports]\nloud = \"fn(str) -> str\"\nfails = \"fn() -> str\"\n",
    )
    .unwrap();
    std::fs::write(
        lua.join("main.lua"),
        r#"return {
  loud = function(s) return polyload.call("wcalc.shout", s) .. "!" end,
  fails = function()
    local ok, err = pcall(polyload.call, "wcalc.fail", "x")
    return tostring(ok) .. ": " .. tostring(err)
  end,
}"#,
    )
    .unwrap();
    rt.load_bundle(&lua).unwrap();
    assert_eq!(
        rt.call("usesl.loud", &[Value::from("sandboxed")]).unwrap(),
        Value::from("SANDBOXED!!") // `shout` adds one, Lua the other
    );
    let Value::Str(text) = rt.call("usesl.fails", &[]).unwrap() else {
        panic!("expected a string")
    };
    assert!(text.starts_with("false: "), "{text}");
    assert!(text.contains("wcalc.fail"), "{text}");
}
