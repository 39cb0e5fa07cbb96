//! The Lua loader over real LuaJIT states, through the runtime.

use polyload::{BundleSource, Error, Manifest, Runtime, Value};
use polyload_lua::LuaLoader;
use serde_json::json;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn runtime(tmp: &Path) -> Runtime {
    Runtime::builder()
        .cache_dir(tmp.join("cache"))
        .loader(LuaLoader::new())
        .build()
        .unwrap()
}

/// Writes a Lua bundle `id` with `exports` and `main.lua` = `code` (plus
/// extra files) under `tmp`; returns its directory.
fn bundle(
    tmp: &Path,
    id: &str,
    exports: &[(&str, &str)],
    code: &str,
    extra: &[(&str, &str)],
) -> PathBuf {
    let dir = tmp.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let mut m = format!("id = \"{id}\"\nversion = \"0.1.0\"\nloader = \"lua\"\nfile = \"main.lua\"\nabi = \"1.0\"\n[exports]\n");
    for (name, sig) in exports {
        m.push_str(&format!("{name} = \"{sig}\"\n"));
    }
    std::fs::write(dir.join("manifest.toml"), m).unwrap();
    std::fs::write(dir.join("main.lua"), code).unwrap();
    for (name, text) in extra {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

const KINDS: &str = r#"
local M = {}
function M.add(a, b) return a + b end
function M.half(x) return x / 2 end
function M.neg(b) return not b end
function M.shout(s) return string.upper(s) .. "!" end
function M.rev(b) return string.reverse(b) end
function M.wrap(j) return { got = j, list = {1, 2.5, "three", true, polyload.null}, empty = setmetatable({}, getmetatable(j) or {}) } end
function M.small(x) return x end
function M.big() return 2^40 end
function M.nothing() end
function M.bad_str() return "\255\254" end
return M
"#;

const KINDS_EXPORTS: &[(&str, &str)] = &[
    ("add", "fn(i64, i64) -> i64"),
    ("half", "fn(f64) -> f64"),
    ("neg", "fn(bool) -> bool"),
    ("shout", "fn(str) -> str"),
    ("rev", "fn(bytes) -> bytes"),
    ("wrap", "fn(json) -> json"),
    ("small", "fn(i64) -> u8"),
    ("big", "fn() -> i32"),
    ("nothing", "fn() -> void"),
    ("bad_str", "fn() -> str"),
];

#[test]
fn every_value_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    rt.load_bundle(bundle(tmp.path(), "kinds", KINDS_EXPORTS, KINDS, &[]))
        .unwrap();
    assert_eq!(
        rt.call("kinds.add", &[Value::I64(2), Value::I64(40)])
            .unwrap(),
        Value::I64(42)
    );
    assert_eq!(
        rt.call("kinds.half", &[Value::F64(5.0)]).unwrap(),
        Value::F64(2.5)
    );
    assert_eq!(
        rt.call("kinds.neg", &[Value::Bool(false)]).unwrap(),
        Value::Bool(true)
    );
    assert_eq!(
        rt.call("kinds.shout", &[Value::from("héllo")]).unwrap(),
        Value::from("HéLLO!")
    );
    assert_eq!(
        rt.call("kinds.rev", &[Value::Bytes(vec![0, 1, 255])])
            .unwrap(),
        Value::Bytes(vec![255, 1, 0])
    );
    let j = json!({"a": [1, {"b": null}], "e": [], "o": {}});
    assert_eq!(
        rt.call("kinds.wrap", &[Value::Json(j.clone())]).unwrap(),
        Value::Json(json!({"got": j, "list": [1, 2.5, "three", true, null], "empty": {}}))
    );
    assert_eq!(
        rt.call("kinds.small", &[Value::I64(200)]).unwrap(),
        Value::U8(200)
    );
    let e = rt
        .call("kinds.small", &[Value::I64(256)])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("return value") && e.contains("out of range for u8"),
        "{e}"
    );
    let e = rt.call("kinds.big", &[]).unwrap_err().to_string();
    assert!(e.contains("out of range for i32"), "{e}");
    assert_eq!(rt.call("kinds.nothing", &[]).unwrap(), Value::Void);
    let e = rt.call("kinds.bad_str", &[]).unwrap_err().to_string();
    assert!(e.contains("not valid UTF-8"), "{e}");
    // The runtime checks kinds before the call.
    assert!(rt
        .call("kinds.add", &[Value::I32(1), Value::I64(2)])
        .is_err());
}

#[test]
fn errors_carry_traceback_and_state_survives() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    let code = "local M = {}\nlocal n = 0\nfunction M.boom(s)\n  n = n + 1\n  error('bad input: ' .. s)\nend\nfunction M.count() return n end\nreturn M\n";
    rt.load_bundle(bundle(
        tmp.path(),
        "err",
        &[("boom", "fn(str) -> str"), ("count", "fn() -> i64")],
        code,
        &[],
    ))
    .unwrap();
    for _ in 0..3 {
        match rt.call("err.boom", &[Value::from("x")]).unwrap_err() {
            Error::Guest {
                name,
                message,
                traceback,
            } => {
                assert_eq!(name, "err.boom");
                assert!(message.contains("main.lua:5: bad input: x"), "{message}");
                let tb = traceback.expect("traceback");
                assert!(tb.contains("main.lua:5"), "{tb}");
            }
            e => panic!("unexpected {e}"),
        }
    }
    assert_eq!(rt.call("err.count", &[]).unwrap(), Value::I64(3));
}

#[test]
fn syntax_error_names_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    let dir = bundle(
        tmp.path(),
        "syn",
        &[("f", "fn() -> i64")],
        "local M = {}\nfunction M.f(\n  return 1\nend\nreturn M\n",
        &[],
    );
    let e = rt.load_bundle(dir).unwrap_err().to_string();
    assert!(e.contains("main.lua:3"), "{e}");
}

#[test]
fn require_own_modules_and_memory_source() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    let dir = bundle(
        tmp.path(),
        "mem",
        &[("twice", "fn(i64) -> i64")],
        "unused on disk",
        &[("util.lua", "return { k = 2 }")],
    );
    let m = Manifest::from_dir(&dir).unwrap();
    let code = "local util = require('util')\nreturn { twice = function(x) return x * util.k end }";
    rt.load_manifest(m, BundleSource::Code(code.into()))
        .unwrap();
    assert_eq!(
        rt.call("mem.twice", &[Value::I64(21)]).unwrap(),
        Value::I64(42)
    );
    rt.unload("mem").unwrap();
    assert!(matches!(
        rt.call("mem.twice", &[Value::I64(1)]),
        Err(Error::Stale { .. })
    ));
    // Bytes sources load as well, and globals serve as exports.
    let m = Manifest::from_dir(&dir).unwrap();
    rt.load_manifest(
        m,
        BundleSource::Bytes(b"function twice(x) return x + x end".to_vec()),
    )
    .unwrap();
    assert_eq!(
        rt.call("mem.twice", &[Value::I64(4)]).unwrap(),
        Value::I64(8)
    );
}

#[test]
fn reload_uses_a_fresh_state_and_failed_reload_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    let dir = bundle(
        tmp.path(),
        "rl",
        &[("v", "fn() -> i64")],
        "x = 1\nreturn { v = function() return x end }",
        &[],
    );
    rt.load_bundle(&dir).unwrap();
    let reload = |code: &str| rt.reload_from("rl", BundleSource::Code(code.into()));
    let e = reload("return {").unwrap_err().to_string();
    assert!(e.contains("failed to initialise"), "{e}");
    let e = reload("error('init failed')").unwrap_err().to_string();
    assert!(e.contains("init failed"), "{e}");
    assert_eq!(
        rt.call("rl.v", &[]).unwrap(),
        Value::I64(1),
        "old version keeps serving"
    );
    reload("return { v = function() return (x or 0) + 2 end }").unwrap();
    assert_eq!(
        rt.call("rl.v", &[]).unwrap(),
        Value::I64(2),
        "the new version must not see the old state's globals"
    );
}

#[test]
fn polyload_module_calls_other_bundles_and_reenters() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    rt.load_bundle(bundle(tmp.path(), "a", &[("sq", "fn(i64) -> i64"), ("fact", "fn(i64) -> i64")],
        "local M = {}\nfunction M.sq(x) return x * x end\nfunction M.fact(n) if n <= 1 then return 1 end return n * polyload.call('b.fact', n - 1) end\nreturn M", &[]))
        .unwrap();
    rt.load_bundle(bundle(tmp.path(), "b", &[("sum_sq", "fn(i64, i64) -> i64"), ("fact", "fn(i64) -> i64"), ("missing", "fn() -> i64")],
        "local pl = require('polyload')\nlocal sq = pl.get('a.sq')\nlocal M = {}\nfunction M.sum_sq(x, y) return sq(x) + pl.call('a.sq', y) end\nfunction M.fact(n) if n <= 1 then return 1 end return n * pl.call('a.fact', n - 1) end\nfunction M.missing() return pl.call('nope.f') end\nreturn M", &[]))
        .unwrap();
    assert_eq!(
        rt.call("b.sum_sq", &[Value::I64(3), Value::I64(4)])
            .unwrap(),
        Value::I64(25)
    );
    // a -> b -> a -> ... on one thread: re-entrant.
    assert_eq!(
        rt.call("a.fact", &[Value::I64(10)]).unwrap(),
        Value::I64(3_628_800)
    );
    let e = rt.call("b.missing", &[]).unwrap_err().to_string();
    assert!(e.contains("no definition named `nope.f`"), "{e}");
    // Threads share the states safely.
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let rt = rt.clone();
            std::thread::spawn(move || {
                for _ in 0..200 {
                    assert_eq!(
                        rt.call("b.sum_sq", &[Value::I64(i), Value::I64(1)])
                            .unwrap(),
                        Value::I64(i * i + 1)
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn calls_a_native_c_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    rt.load_bundle(repo().join("examples/bundles/hello"))
        .unwrap();
    rt.load_bundle(bundle(tmp.path(), "luac", &[("go", "fn(str) -> str")],
        "return { go = function(s) return polyload.call('hello.greet', s) .. ' ' .. polyload.call('hello.add', 40, 2) end }", &[]))
        .unwrap();
    let out = rt.call("luac.go", &[Value::from("Lua")]).unwrap();
    assert!(
        matches!(&out, Value::Str(s) if s.contains("Lua") && s.ends_with(" 42")),
        "{out:?}"
    );
}

#[test]
fn luajson_example_uses_dkjson() {
    assert!(
        Path::new("/usr/share/lua/5.1/dkjson.lua").is_file(),
        "the luajson example needs Debian's lua-dkjson: apt-get install -y lua-dkjson"
    );
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    rt.load_bundle(repo().join("examples/bundles/luajson"))
        .unwrap();
    let v = json!({"b": [1, 2.5, null, "x"], "a": {"nested": true}, "e": []});
    let text = rt
        .call("luajson.encode", &[Value::Json(v.clone())])
        .unwrap();
    assert_eq!(
        text,
        Value::from(r#"{"a":{"nested":true},"b":[1,2.5,null,"x"],"e":[]}"#)
    );
    let back = rt.call("luajson.decode", &[text]).unwrap();
    assert_eq!(back, Value::Json(v));
    let e = rt
        .call("luajson.decode", &[Value::from("{oops")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("invalid JSON"), "{e}");
}

#[test]
fn runtime_reload_replaces_lua_code_and_keeps_handles() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = bundle(
        tmp.path(),
        "hot",
        &[("add", "fn(i64, i64) -> i64")],
        "return { add = function(a, b) return a + b end }",
        &[],
    );
    let rt = runtime(tmp.path());
    rt.load_dir(&dir).unwrap();
    let add = rt
        .function::<extern "C" fn(i64, i64) -> i64>("hot.add")
        .unwrap();
    assert_eq!(add.call((2, 3)).unwrap(), 5);

    std::fs::write(
        dir.join("main.lua"),
        "return { add = function(a, b) return a * b end }",
    )
    .unwrap();
    assert_eq!(rt.reload("hot").unwrap(), 2);
    assert_eq!(
        add.call((2, 3)).unwrap(),
        6,
        "typed handle follows the reload"
    );
    assert_eq!(
        rt.call("hot.add", &[Value::I64(4), Value::I64(5)]).unwrap(),
        Value::I64(20)
    );

    // A new version that does not parse is refused; the old one serves.
    std::fs::write(
        dir.join("main.lua"),
        "return { add = function(a, b) return a * end }",
    )
    .unwrap();
    let e = rt.reload("hot").unwrap_err();
    assert!(e.to_string().contains("main.lua"), "{e}");
    assert_eq!(add.call((2, 3)).unwrap(), 6);
    // One that raises while initialising, too.
    std::fs::write(dir.join("main.lua"), "error('cannot start')").unwrap();
    assert!(rt
        .reload("hot")
        .unwrap_err()
        .to_string()
        .contains("cannot start"));
    assert_eq!(add.call((7, 6)).unwrap(), 42);
    assert_eq!(rt.generation("hot"), Some(2));

    // A Lua error through the typed handle is an error value.
    std::fs::write(
        dir.join("main.lua"),
        "return { add = function(a, b) error('no adding today') end }",
    )
    .unwrap();
    rt.reload("hot").unwrap();
    let e = add.call((1, 1)).unwrap_err();
    assert!(e.to_string().contains("no adding today"), "{e}");
}

#[test]
fn typed_handles_call_lua_by_value_and_through_the_c_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let code = r#"
local M = {}
function M.scale(x, by, flip) if flip then return -x * by end return x * by end
function M.fail(x) error("bad x " .. x) end
function M.shout(s) return string.upper(s) end
function M.touch() end
return M
"#;
    let dir = bundle(
        tmp.path(),
        "typed",
        &[
            ("scale", "fn(f64, i32, bool) -> f64"),
            ("fail", "fn(u8) -> void"),
            ("shout", "fn(str) -> str"),
            ("touch", "fn() -> void"),
        ],
        code,
        &[],
    );
    let rt = runtime(tmp.path());
    rt.load_dir(&dir).unwrap();

    // Numbers and bool convert by value, straight to the Lua function.
    let scale = rt
        .function::<extern "C" fn(f64, i32, bool) -> f64>("typed.scale")
        .unwrap();
    assert_eq!(scale.call((1.5, 4, false)).unwrap(), 6.0);
    assert_eq!(scale.call((1.5, 4, true)).unwrap(), -6.0);
    rt.function::<extern "C" fn()>("typed.touch")
        .unwrap()
        .call(())
        .unwrap();

    // A Lua error on this path keeps the traceback.
    let fail = rt.function::<extern "C" fn(u8)>("typed.fail").unwrap();
    match fail.call((7,)).unwrap_err() {
        Error::Guest {
            message, traceback, ..
        } => {
            assert!(message.contains("bad x 7"), "{message}");
            let tb = traceback.expect("a traceback");
            assert!(tb.contains("main.lua"), "{tb}");
        }
        other => panic!("expected a guest error, got {other}"),
    }

    // `str` does not convert by value: the call goes through the C entry
    // point, and the caller owns the returned string.
    let shout = rt
        .function::<extern "C" fn(polyload::PolyloadStr) -> polyload::PolyloadStr>("typed.shout")
        .unwrap();
    let out = shout
        .call((polyload::PolyloadStr::from_str("quiet"),))
        .unwrap();
    // SAFETY: a returned string is valid until the caller frees it.
    let text = String::from_utf8(unsafe { out.as_bytes() }.to_vec()).unwrap();
    assert_eq!(text, "QUIET");
    // SAFETY: allocated by polyload_alloc with this size and alignment 1.
    unsafe { polyload_ffi::alloc::polyload_free(out.ptr as *mut _, out.len, 1) };

    // After unloading, the value path reports a stale handle too.
    rt.unload("typed").unwrap();
    assert!(matches!(
        scale.call((1.0, 1, false)),
        Err(Error::Stale { .. })
    ));
}

/// Scalar calls into an idle state go straight to the Lua C API; a call back
/// into a state whose Lua code is running goes through mlua. Both must give
/// the same results and the same errors.
#[test]
fn direct_and_reentrant_calls_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let code = r#"
local M = {}
function M.add(a, b) return a + b end
function M.text() return "seven" end
function M.table() return {} end
function M.none() end
function M.many() return 1, 2, 3 end
function M.raise(x) error("bad " .. x) end
function M.raise_table() error({ code = 7 }) end
function M.missing() return polyload.call('nope.f') end
-- Calls one of the above through the namespace while this state runs.
function M.via(name, x)
  local ok, r = pcall(polyload.call, 'p.' .. name, unpack(x == 0 and {} or {x}))
  if ok then return 'ok ' .. tostring(r) end
  return 'err ' .. tostring(r)
end
function M.via_add(a, b) return polyload.call('p.add', a, b) end
function M.num(x) return x end
return M
"#;
    let rt = runtime(tmp.path());
    rt.load_bundle(bundle(
        tmp.path(),
        "p",
        &[
            ("add", "fn(i64, i64) -> i64"),
            ("text", "fn() -> i64"),
            ("table", "fn() -> f64"),
            ("none", "fn() -> bool"),
            ("many", "fn() -> i32"),
            ("raise", "fn(i64) -> i64"),
            ("raise_table", "fn() -> void"),
            ("missing", "fn() -> i64"),
            ("via", "fn(str, i64) -> str"),
            ("via_add", "fn(i64, i64) -> i64"),
            ("num", "fn(f64) -> i64"),
        ],
        code,
        &[],
    ))
    .unwrap();

    assert_eq!(
        rt.call("p.add", &[Value::I64(1 << 52), Value::I64(1)])
            .unwrap(),
        Value::I64((1 << 52) + 1)
    );
    assert_eq!(
        rt.call("p.via_add", &[Value::I64(-5), Value::I64(3)])
            .unwrap(),
        Value::I64(-2)
    );
    assert_eq!(rt.call("p.many", &[]).unwrap(), Value::I32(1));
    // i64 results: exact at the ends of the range, errors past them.
    let num = |x: f64| rt.call("p.num", &[Value::F64(x)]);
    assert_eq!(num(i64::MIN as f64).unwrap(), Value::I64(i64::MIN));
    assert_eq!(num(-0.0).unwrap(), Value::I64(0));
    assert_eq!(
        num(9.007199254740993e15).unwrap(),
        Value::I64(9_007_199_254_740_992)
    );
    for (x, want) in [
        (-(i64::MIN as f64), "out of range for i64"),
        (2.5, "expected i64, got number 2.5"),
        (f64::NAN, "expected i64"),
    ] {
        let e = num(x).unwrap_err().to_string();
        assert!(e.contains(want), "{x}: {e}");
    }

    let direct = |name: &str, args: &[Value]| rt.call(&format!("p.{name}"), args).unwrap_err();
    let via = |name: &str, x: i64| match rt.call("p.via", &[Value::from(name), Value::I64(x)]) {
        Ok(Value::Str(s)) => s,
        other => panic!("{other:?}"),
    };
    for (name, want) in [
        ("text", "expected i64, got string"),
        ("table", "expected f64, got table"),
        ("none", "expected bool, got nil"),
    ] {
        let e = direct(name, &[]).to_string();
        assert!(
            e.contains("return value") && e.contains(want),
            "{name}: {e}"
        );
        let r = via(name, 0);
        assert!(r.starts_with("err ") && r.contains(want), "{name}: {r}");
    }

    // A Lua error: message with file and line, and a traceback.
    match direct("raise", &[Value::I64(3)]) {
        Error::Guest {
            message, traceback, ..
        } => {
            assert!(message.contains("main.lua:8: bad 3"), "{message}");
            assert!(traceback.expect("traceback").contains("main.lua:8"));
        }
        e => panic!("unexpected {e}"),
    }
    let r = via("raise", 3);
    assert!(r.contains("main.lua:8: bad 3"), "{r}");
    // A non-string error value is described, not lost.
    match direct("raise_table", &[]) {
        Error::Guest { message, .. } => assert!(message.contains("table"), "{message}"),
        e => panic!("unexpected {e}"),
    }
    // An error raised by a Rust callback (mlua's error object).
    let e = direct("missing", &[]).to_string();
    assert!(e.contains("no definition named `nope.f`"), "{e}");
    let r = via("missing", 0);
    assert!(r.contains("no definition named `nope.f`"), "{r}");

    // The state keeps working after all of that, from several threads.
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let rt = rt.clone();
            std::thread::spawn(move || {
                for j in 0..200 {
                    let name = if j % 2 == 0 { "p.add" } else { "p.via_add" };
                    assert_eq!(
                        rt.call(name, &[Value::I64(i), Value::I64(j)]).unwrap(),
                        Value::I64(i + j)
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // Unloading drops the state (under the VM lock) while other bundles run.
    rt.unload("p").unwrap();
    assert!(rt.call("p.add", &[Value::I64(1), Value::I64(2)]).is_err());
}

#[test]
fn lua_handles_that_outlive_their_runtime_are_stale() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = bundle(
        tmp.path(),
        "outlive",
        &[("mul", "fn(i64, i64) -> i64"), ("shout", "fn(str) -> str")],
        "return { mul = function(a, b) return a * b end, shout = function(s) return s:upper() end }",
        &[],
    );
    let rt = runtime(tmp.path());
    rt.load_dir(&dir).unwrap();
    let typed = rt
        .function::<extern "C" fn(i64, i64) -> i64>("outlive.mul")
        .unwrap();
    let dynamic = rt.dynamic("outlive.shout").unwrap();
    assert_eq!(typed.call((-6, 7)).unwrap(), -42);
    assert_eq!(
        dynamic.call(&[Value::from("hi")]).unwrap(),
        Value::from("HI")
    );
    drop(rt);
    assert!(matches!(typed.call((2, 3)), Err(Error::Stale { .. })));
    assert!(matches!(
        dynamic.call(&[Value::from("hi")]),
        Err(Error::Stale { .. })
    ));
}

/// A C bundle whose `meet()` returns 1 once two threads are inside it at
/// the same time (0 if the other does not come within 10 s).
fn rendezvous(tmp: &Path) -> PathBuf {
    let dir = tmp.join("meet");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("manifest.toml"),
        "id = \"meet\"\nversion = \"0.1.0\"\nloader = \"native\"\nfile = \"libmeet.so\"\nabi = \"1.0\"\n[exports]\nmeet = \"fn() -> i64\"\n[build]\ncc = [\"src/meet.c\"]\nlibs = [\"pthread\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("src/meet.c"),
        r#"#define _POSIX_C_SOURCE 200809L
#include <polyload.h>
#include <pthread.h>
#include <time.h>
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int64_t arrived = 0;
static int64_t meet(void) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&mu);
    int64_t round = arrived / 2;
    arrived++;
    pthread_cond_broadcast(&cv);
    int ok = 1;
    while (arrived < 2 * (round + 1) && ok) {
        ok = pthread_cond_timedwait(&cv, &mu, &until) == 0;
    }
    pthread_mutex_unlock(&mu);
    return ok;
}
uint32_t polyload_abi_version(void) { return POLYLOAD_ABI_VERSION_PACKED; }
int32_t polyload_bundle_init(const PolyloadHost *h, PolyloadBundle *b) {
    POLYLOAD_DEFINE(h, b, "meet", "fn() -> i64", meet);
    return POLYLOAD_OK;
}
"#,
    )
    .unwrap();
    dir
}

#[test]
fn two_lua_bundles_run_at_the_same_time_on_two_threads() {
    // Each Lua function waits inside a native call for the other thread to
    // be inside its own Lua function: only if two Lua states run in
    // parallel do both meet (a process-wide lock would keep the second
    // thread out until the first gave up).
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    rt.load_bundle(rendezvous(tmp.path())).unwrap();
    for id in ["par_a", "par_b"] {
        rt.load_bundle(bundle(
            tmp.path(),
            id,
            &[("f", "fn() -> i64")],
            "local polyload = require('polyload')\nreturn { f = function() return polyload.call('meet.meet') end }\n",
            &[],
        ))
        .unwrap();
    }
    for round in 0..20 {
        let threads: Vec<_> = ["par_a.f", "par_b.f"]
            .into_iter()
            .map(|f| {
                let rt = rt.clone();
                std::thread::spawn(move || rt.call(f, &[]).unwrap())
            })
            .collect();
        for t in threads {
            assert_eq!(
                t.join().unwrap(),
                Value::I64(1),
                "round {round}: the threads never met"
            );
        }
    }
}
