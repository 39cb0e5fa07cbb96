//! Calls across languages: Lua, Python, JavaScript and a native C bundle in
//! one runtime, each calling the others through `polyload.call`.

use polyload::{Error, Runtime, Value};
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
        .loader(polyload_lua::LuaLoader::new())
        .loader(polyload_python::PythonLoader::new())
        .loader(polyload_js::JsLoader::new())
        .loader(polyload_wasm::WasmLoader::new())
        .loader(polyload_dotnet::DotnetLoader::new())
        .build()
        .unwrap()
}

fn bundle(
    tmp: &Path,
    id: &str,
    loader: &str,
    file: &str,
    exports: &[(&str, &str)],
    code: &str,
) -> PathBuf {
    let dir = tmp.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let mut m = format!("id = \"{id}\"\nversion = \"0.1.0\"\nloader = \"{loader}\"\nfile = \"{file}\"\nabi = \"1.0\"\n[exports]\n");
    for (name, sig) in exports {
        m.push_str(&format!("{name} = \"{sig}\"\n"));
    }
    std::fs::write(dir.join("manifest.toml"), m).unwrap();
    std::fs::write(dir.join(file), code).unwrap();
    dir
}

/// Python, Lua and JS bundles whose `down(n)` calls the next language's
/// `down(n - 1)` (py -> lua -> js -> py ...), and whose `kinds` pass every
/// value kind on.
fn load_ring(rt: &Runtime, tmp: &Path) {
    rt.load_bundle(repo().join("examples/bundles/hello"))
        .unwrap();
    let sigs = [
        ("down", "fn(i64) -> str"),
        ("kinds", "fn(i64, f64, bool, str, bytes, json) -> json"),
        ("fail", "fn() -> str"),
        ("catch", "fn() -> str"),
        ("native", "fn(str) -> str"),
    ];
    let py = r#"
import polyload
def down(n):
    return "py" if n == 0 else "py>" + polyload.call("xlua.down", n - 1)
def kinds(i, f, b, s, by, j):
    return polyload.call("xlua.kinds", i, f, b, s, by, j)
def fail():
    return polyload.call("xjs.fail")
def catch():
    try:
        return polyload.call("xlua.fail")
    except polyload.Error as e:
        return "caught: " + str(e).splitlines()[0]
def native(s):
    return polyload.call("xjs.native", s)
"#;
    let lua = r#"
local M = {}
function M.down(n) if n == 0 then return "lua" end return "lua>" .. polyload.call("xjs.down", n - 1) end
function M.kinds(i, f, b, s, by, j) return polyload.get("xjs.kinds")(i, f, b, s, by, j) end
function M.fail() error("lua says no") end
function M.catch()
  local ok, err = pcall(polyload.call, "xpy.fail")
  return ok and "no error?" or ("caught: " .. tostring(err):match("[^\n]*"))
end
function M.native(s) return polyload.call("hello.greet", s) end
return M
"#;
    let js = r#"
import { call, get } from "polyload";
export const down = (n) => n === 0 ? "js" : "js>" + call("xpy.down", n - 1);
export function kinds(i, f, b, s, by, j) {
  return { i, f, b, s, bytes: Array.from(by), j, sum: call("hello.add", i, 1) };
}
export function fail() { throw new RangeError("js says no"); }
export function catch2() { try { return call("xpy.fail"); } catch (e) { return "caught: " + String(e.message).split("\n")[0]; } }
export { catch2 as catch };
export const native = (s) => get("hello.greet")(s) + " / " + call("hello.add", 40, 2);
"#;
    rt.load_bundle(bundle(tmp, "xpy", "python", "main.py", &sigs, py))
        .unwrap();
    rt.load_bundle(bundle(tmp, "xlua", "lua", "main.lua", &sigs, lua))
        .unwrap();
    rt.load_bundle(bundle(tmp, "xjs", "js", "main.js", &sigs, js))
        .unwrap();
}

#[test]
fn calls_go_around_every_language_and_back() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    load_ring(&rt, tmp.path());
    // py -> lua -> js -> py -> lua -> ...: each VM is re-entered on this thread.
    assert_eq!(
        rt.call("xpy.down", &[Value::I64(6)]).unwrap(),
        Value::from("py>lua>js>py>lua>js>py")
    );
    assert_eq!(
        rt.call("xlua.down", &[Value::I64(3)]).unwrap(),
        Value::from("lua>js>py>lua")
    );
    assert_eq!(
        rt.call("xjs.down", &[Value::I64(3)]).unwrap(),
        Value::from("js>py>lua>js")
    );
    // Python -> Lua -> JS -> C with every value kind.
    let args = [
        Value::I64(41),
        Value::F64(0.5),
        Value::Bool(true),
        Value::from("ß"),
        Value::Bytes(vec![1, 2]),
        Value::Json(json!({"k": [null, 1]})),
    ];
    assert_eq!(
        rt.call("xpy.kinds", &args).unwrap(),
        Value::Json(
            json!({"i": 41, "f": 0.5, "b": true, "s": "ß", "bytes": [1, 2], "j": {"k": [null, 1]}, "sum": 42})
        )
    );
    // Each language calls the native C bundle.
    for id in ["xpy", "xlua", "xjs"] {
        let out = rt
            .call(&format!("{id}.native"), &[Value::from("you")])
            .unwrap();
        assert!(
            matches!(&out, Value::Str(s) if s.contains("you")),
            "{id}: {out:?}"
        );
    }
}

#[test]
fn errors_cross_languages_and_can_be_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    load_ring(&rt, tmp.path());
    // Python -> JS: the JS exception reaches the host through Python.
    match rt.call("xpy.fail", &[]).unwrap_err() {
        Error::Guest {
            name,
            message,
            traceback,
        } => {
            assert_eq!(name, "xpy.fail");
            assert!(message.contains("RangeError: js says no"), "{message}");
            assert!(traceback.unwrap().contains("main.py\", line 8, in fail"));
        }
        e => panic!("{e}"),
    }
    // A guest catches another language's error and goes on.
    let caught = rt.call("xpy.catch", &[]).unwrap();
    assert!(
        matches!(&caught, Value::Str(s) if s.contains("lua says no")),
        "{caught:?}"
    );
    let caught = rt.call("xlua.catch", &[]).unwrap();
    assert!(
        matches!(&caught, Value::Str(s) if s.contains("js says no")),
        "{caught:?}"
    );
    let caught = rt.call("xjs.catch", &[]).unwrap();
    assert!(
        matches!(&caught, Value::Str(s) if s.contains("js says no")),
        "{caught:?}"
    );
    // Everything still works afterwards.
    assert_eq!(
        rt.call("xjs.down", &[Value::I64(2)]).unwrap(),
        Value::from("js>py>lua")
    );
}

/// Threads calling across languages in one direction (Python -> Lua -> JS
/// -> C): the GIL is released while Python calls out, so they interleave.
/// (Two threads going around a cycle of Lua/JS bundles in opposite
/// directions can deadlock: each VM's lock is held while it calls out.)
#[test]
fn threads_cross_languages_in_one_direction() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    load_ring(&rt, tmp.path());
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let rt = rt.clone();
            std::thread::spawn(move || {
                for i in 0..100 {
                    let args = [
                        Value::I64(i),
                        Value::F64(0.5),
                        Value::Bool(t % 2 == 0),
                        Value::from("s"),
                        Value::Bytes(vec![t as u8]),
                        Value::Json(json!(null)),
                    ];
                    let out = rt.call("xpy.kinds", &args).unwrap();
                    let Value::Json(j) = out else { panic!() };
                    assert_eq!(j["sum"], json!(i + 1));
                    assert_eq!(j["bytes"], json!([t]));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// Lua calls JS while JS calls Lua, from two threads at once, and Python
/// joins in: with a lock per VM each thread would hold its own VM's lock
/// and wait for the other's forever. A deadlock fails the test by timeout
/// instead of hanging the suite.
#[test]
fn threads_cross_languages_in_opposite_directions() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    let sig = [("f", "fn(i64) -> i64")];
    let lua = "local polyload = require('polyload')\nreturn { f = function(n) if n == 0 then return 0 end return 1 + polyload.call('oj.f', n - 1) end }\n";
    let js = "import { call } from 'polyload';\nexport function f(n) { return n === 0 ? 0 : 1 + call('op.f', n - 1); }\n";
    let py = "import polyload\ndef f(n):\n    return 0 if n == 0 else 1 + polyload.call('ol.f', n - 1)\n";
    rt.load_bundle(bundle(tmp.path(), "ol", "lua", "main.lua", &sig, lua))
        .unwrap();
    rt.load_bundle(bundle(tmp.path(), "oj", "js", "main.js", &sig, js))
        .unwrap();
    rt.load_bundle(bundle(tmp.path(), "op", "python", "main.py", &sig, py))
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    for start in ["ol.f", "oj.f", "op.f", "ol.f"] {
        let (rt, tx) = (rt.clone(), tx.clone());
        std::thread::spawn(move || {
            for _ in 0..300 {
                assert_eq!(rt.call(start, &[Value::I64(5)]).unwrap(), Value::I64(5));
            }
            tx.send(start).unwrap();
        });
    }
    for _ in 0..4 {
        rx.recv_timeout(std::time::Duration::from_secs(120))
            .expect("threads calling across VMs in opposite directions deadlocked");
    }
}

#[test]
fn pipeline_example_flows_through_four_languages() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    rt.load_dir(repo().join("examples/pipeline/bundles"))
        .unwrap();
    let out = rt
        .call(
            "pipe_py.run",
            &[Value::from("# Hello, Wörld\nSome *Markdown* text.")],
        )
        .unwrap();
    let Value::Str(text) = out else {
        panic!("{out:?}")
    };
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        doc,
        json!({
            "generator": "polyload pipeline (python -> js -> lua -> c#)",
            "stamped_by": "Newtonsoft.Json 6.0.0.0",
            "html": "<h1>Hello, Wörld</h1>\n<p>Some <em>Markdown</em> text.</p>\n",
            "slug": "hello-world",
            "words": 5
        })
    );
}

#[test]
fn the_examples_directory_loads_as_a_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    let ids = rt.load_dir(repo().join("examples/bundles")).unwrap();
    for id in [
        "hello",
        "luajson",
        "pyslug",
        "jsmarkdown",
        "wzlib",
        "csjson",
    ] {
        assert!(ids.iter().any(|i| i == id), "{id} missing from {ids:?}");
    }
    let slug = rt
        .call("pyslug.slugify", &[Value::from("Ünïcode Title")])
        .unwrap();
    let html = rt.call("jsmarkdown.render", &[slug]).unwrap();
    let text = rt
        .call(
            "luajson.encode",
            &[Value::Json(json!({"html": html.to_string()}))],
        )
        .unwrap();
    assert_eq!(text, Value::from(r#"{"html":"<p>unicode-title</p>\n"}"#));
}
