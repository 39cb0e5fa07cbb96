//! The JavaScript loader over real QuickJS runtimes, through the runtime.

use polyload::{BundleSource, Error, Manifest, Runtime, Value};
use polyload_js::JsLoader;
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
        .loader(JsLoader::new())
        .build()
        .unwrap()
}

/// Writes a JS bundle `id` (`main.js` = `code`, extra files, extra manifest
/// text) under `tmp`; returns its directory.
fn bundle(
    tmp: &Path,
    id: &str,
    exports: &[(&str, &str)],
    code: &str,
    extra: &[(&str, &str)],
    more: &str,
) -> PathBuf {
    let dir = tmp.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let mut m = format!("id = \"{id}\"\nversion = \"0.1.0\"\nloader = \"js\"\nfile = \"main.js\"\nabi = \"1.0\"\n[exports]\n");
    for (name, sig) in exports {
        m.push_str(&format!("{name} = \"{sig}\"\n"));
    }
    m.push_str(more);
    std::fs::write(dir.join("manifest.toml"), m).unwrap();
    std::fs::write(dir.join("main.js"), code).unwrap();
    for (name, text) in extra {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

const KINDS: &str = r#"
export function add(a, b) { return a + b; }
export function half(x) { return x / 2; }
export function neg(b) { return !b; }
export function shout(s) { return s.toUpperCase() + "!"; }
export function rev(b) { return Uint8Array.from(b).reverse(); }
export function wrap(j) { return { got: j, list: [1, 2.5, "three", true, null], skip: undefined }; }
export function small(x) { return x; }
export function big() { return 2 ** 40; }
export function nothing() {}
export function wrong() { return "nope"; }
export function bigint(x) { return x * 2n; }
export async function later(x) { await null; return x + 1; }
"#;

#[test]
fn every_value_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    let exports = [
        ("add", "fn(i64, i64) -> i64"),
        ("half", "fn(f64) -> f64"),
        ("neg", "fn(bool) -> bool"),
        ("shout", "fn(str) -> str"),
        ("rev", "fn(bytes) -> bytes"),
        ("wrap", "fn(json) -> json"),
        ("small", "fn(i64) -> u8"),
        ("big", "fn() -> i32"),
        ("nothing", "fn() -> void"),
        ("wrong", "fn() -> i64"),
        ("bigint", "fn(i64) -> i64"),
        ("later", "fn(i32) -> i32"),
    ];
    rt.load_bundle(bundle(tmp.path(), "kinds", &exports, KINDS, &[], ""))
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
        Value::from("HÉLLO!")
    );
    assert_eq!(
        rt.call("kinds.rev", &[Value::Bytes(vec![0, 1, 255])])
            .unwrap(),
        Value::Bytes(vec![255, 1, 0])
    );
    let j = json!({"a": [1, {"b": null}], "e": [], "o": {}});
    assert_eq!(
        rt.call("kinds.wrap", &[Value::Json(j.clone())]).unwrap(),
        Value::Json(json!({"got": j, "list": [1, 2.5, "three", true, null]}))
    );
    assert_eq!(
        rt.call("kinds.small", &[Value::I64(200)]).unwrap(),
        Value::U8(200)
    );
    let e = rt
        .call("kinds.small", &[Value::I64(300)])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("return value") && e.contains("out of range for u8"),
        "{e}"
    );
    let e = rt.call("kinds.big", &[]).unwrap_err().to_string();
    assert!(e.contains("out of range for i32"), "{e}");
    assert_eq!(rt.call("kinds.nothing", &[]).unwrap(), Value::Void);
    let e = rt.call("kinds.wrong", &[]).unwrap_err().to_string();
    assert!(e.contains("return value: expected i64, got string"), "{e}");
    let big = (1i64 << 60) + 1; // beyond 2^53: a BigInt both ways
    assert_eq!(
        rt.call("kinds.bigint", &[Value::I64(big)]).unwrap(),
        Value::I64(big * 2)
    );
    let e = rt
        .call("kinds.bigint", &[Value::I64(big * 4)])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("return value") && e.contains("out of range for i64"),
        "{e}"
    );
    assert_eq!(
        rt.call("kinds.later", &[Value::I32(41)]).unwrap(),
        Value::I32(42)
    );
}

#[test]
fn exceptions_carry_stack_and_context_survives() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    let code = "let n = 0;\n\nexport function boom(s) {\n  n++;\n  throw new TypeError('bad input: ' + s);\n}\nexport function count() { return n; }\nexport function raw() { throw 42; }\n";
    let exports = [
        ("boom", "fn(str) -> str"),
        ("count", "fn() -> i64"),
        ("raw", "fn() -> i64"),
    ];
    rt.load_bundle(bundle(tmp.path(), "err", &exports, code, &[], ""))
        .unwrap();
    for _ in 0..3 {
        match rt.call("err.boom", &[Value::from("x")]).unwrap_err() {
            Error::Guest {
                name,
                message,
                traceback,
            } => {
                assert_eq!(name, "err.boom");
                assert_eq!(message, "TypeError: bad input: x");
                let tb = traceback.expect("stack");
                assert!(tb.contains("main.js:5"), "{tb}");
            }
            e => panic!("unexpected {e}"),
        }
    }
    assert_eq!(rt.call("err.count", &[]).unwrap(), Value::I64(3));
    let e = rt.call("err.raw", &[]).unwrap_err().to_string();
    assert!(e.contains("uncaught 42"), "{e}");
    let dir = bundle(
        tmp.path(),
        "syn",
        &[("f", "fn() -> i64")],
        "export function f( {\n  return 1;\n}\n",
        &[],
        "",
    );
    let e = rt.load_bundle(dir).unwrap_err();
    let Error::Init {
        message, traceback, ..
    } = &e
    else {
        panic!("{e}")
    };
    assert!(message.starts_with("SyntaxError"), "{e}");
    assert!(
        traceback
            .as_deref()
            .is_some_and(|t| t.contains("syn/main.js:")),
        "{traceback:?}"
    );
}

#[test]
fn es_module_imports_memory_source_reload_unload() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    let dir = bundle(
        tmp.path(),
        "mods",
        &[("v", "fn() -> str")],
        "unused",
        &[
            (
                "lib/util.js",
                "import { SEP } from './sep.js';\nexport const word = (a, b) => a + SEP + b;\n",
            ),
            ("lib/sep.js", "export const SEP = '-';\n"),
            (
                "node_modules/localpkg/package.json",
                r#"{"name":"localpkg","exports":{".":{"import":"./esm.js","require":"./cjs.js"}}}"#,
            ),
            ("node_modules/localpkg/esm.js", "export default 'esm';\n"),
        ],
        "",
    );
    let m = Manifest::from_dir(&dir).unwrap();
    let code = "import { word } from './lib/util';\nimport pkg from 'localpkg';\nexport const v = () => word('mem', pkg);\n";
    rt.load_manifest(m.clone(), BundleSource::Code(code.into()))
        .unwrap();
    assert_eq!(rt.call("mods.v", &[]).unwrap(), Value::from("mem-esm"));
    rt.unload("mods").unwrap();
    assert!(matches!(rt.call("mods.v", &[]), Err(Error::Stale { .. })));
    rt.load_manifest(
        m.clone(),
        BundleSource::Bytes(b"globalThis.state = 1; export const v = () => 'bytes';".to_vec()),
    )
    .unwrap();
    assert_eq!(rt.call("mods.v", &[]).unwrap(), Value::from("bytes"));

    let reload = |code: &str| rt.reload_from("mods", BundleSource::Code(code.into()));
    reload("export const v = () => typeof globalThis.state;").unwrap();
    assert_eq!(
        rt.call("mods.v", &[]).unwrap(),
        Value::from("undefined"),
        "a reload starts from a fresh context"
    );
    let e = reload("export const v = (;").unwrap_err().to_string();
    assert!(e.contains("SyntaxError"), "{e}");
    let e = reload("throw new Error('init failed');")
        .unwrap_err()
        .to_string();
    assert!(e.contains("init failed"), "{e}");
    let e = reload("import x from 'nowhere-to-be-found';")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cannot find module `nowhere-to-be-found`"),
        "{e}"
    );
    assert_eq!(
        rt.call("mods.v", &[]).unwrap(),
        Value::from("undefined"),
        "the last good version keeps serving"
    );
}

#[test]
fn polyload_module_reenters_and_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    rt.load_bundle(bundle(tmp.path(), "ja", &[("fact", "fn(i64) -> i64"), ("sq", "fn(i64) -> i64")],
        "import { call } from 'polyload';\nexport function sq(x) { return x * x; }\nexport function fact(n) { return n <= 1 ? 1 : n * call('jb.fact', n - 1); }\n", &[], ""))
        .unwrap();
    rt.load_bundle(bundle(tmp.path(), "jb", &[("fact", "fn(i64) -> i64"), ("sum_sq", "fn(i64, i64) -> i64")],
        "import polyload from 'polyload';\nconst sq = polyload.get('ja.sq');\nexport function fact(n) { return n <= 1 ? 1 : n * polyload.call('ja.fact', n - 1); }\nexport function sum_sq(a, b) { return sq(a) + sq(b); }\n", &[], ""))
        .unwrap();
    assert_eq!(
        rt.call("ja.fact", &[Value::I64(10)]).unwrap(),
        Value::I64(3_628_800)
    );
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let rt = rt.clone();
            std::thread::spawn(move || {
                for _ in 0..200 {
                    assert_eq!(
                        rt.call("jb.sum_sq", &[Value::I64(i), Value::I64(1)])
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
fn a_failed_install_names_the_package() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    let dir = bundle(
        tmp.path(),
        "badnpm",
        &[("f", "fn() -> i64")],
        "export const f = () => 1;",
        &[],
        "[js]\npackages = [\"polyload-no-such-package-xyz@0.0.1\"]\n",
    );
    let e = rt.load_bundle(dir).unwrap_err().to_string();
    assert!(
        e.contains("polyload-no-such-package-xyz") && e.contains("npm"),
        "{e}"
    );
}

#[test]
fn jsmarkdown_example_uses_marked() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    rt.load_bundle(repo().join("examples/bundles/jsmarkdown"))
        .unwrap();
    let html = rt
        .call(
            "jsmarkdown.render",
            &[Value::from(
                "# Title\n\nSome *emphasis* and `code`.\n\n- a\n- b\n",
            )],
        )
        .unwrap();
    assert_eq!(
        html,
        Value::from("<h1>Title</h1>\n<p>Some <em>emphasis</em> and <code>code</code>.</p>\n<ul>\n<li>a</li>\n<li>b</li>\n</ul>\n")
    );
}

#[test]
fn runtime_reload_replaces_js_code_and_keeps_handles() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = bundle(
        tmp.path(),
        "jshot",
        &[("add", "fn(i64, i64) -> i64")],
        "export function add(a, b) { return a + b; }\n",
        &[],
        "",
    );
    let rt = runtime(tmp.path());
    rt.load_dir(&dir).unwrap();
    let add = rt
        .function::<extern "C" fn(i64, i64) -> i64>("jshot.add")
        .unwrap();
    assert_eq!(add.call((2, 3)).unwrap(), 5);
    std::fs::write(
        dir.join("main.js"),
        "export function add(a, b) { return a * b; }\n",
    )
    .unwrap();
    assert_eq!(rt.reload("jshot").unwrap(), 2);
    assert_eq!(
        add.call((2, 3)).unwrap(),
        6,
        "typed handle follows the reload"
    );
    std::fs::write(
        dir.join("main.js"),
        "export function add(a, b) { return a * ; }\n",
    )
    .unwrap();
    let e = rt.reload("jshot").unwrap_err();
    assert!(
        matches!(&e, Error::Init { traceback: Some(t), .. } if t.contains("main.js")),
        "{e:?}"
    );
    assert_eq!(add.call((7, 6)).unwrap(), 42);
    std::fs::write(
        dir.join("main.js"),
        "export function add(a, b) { throw new Error('no adding today'); }\n",
    )
    .unwrap();
    rt.reload("jshot").unwrap();
    assert!(add
        .call((1, 1))
        .unwrap_err()
        .to_string()
        .contains("no adding today"));
}

/// Numbers and `bool`s go to QuickJS by `JS_Call` from a stack array (up
/// to eight); longer or mixed argument lists go through rquickjs's `Args`.
/// Both give the same values and errors.
#[test]
fn scalar_and_general_argument_paths_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    let code = r#"
export function eight(...a) { return a; }
export function nine(...a) { return a; }
export function mixed(a, s, b) { return `${a}${s}${b}`; }
export function fail(x) {
  throw new RangeError('bad ' + x);
}
export async function later(a, b) { return a * b; }
export function kinds(a, b, c, d) { return [typeof a, typeof b, typeof c, typeof d].join(','); }
"#;
    let sig8 = "fn(i8, u16, i32, u32, i64, f32, f64, bool) -> json";
    let sig9 = "fn(i8, u16, i32, u32, i64, f32, f64, bool, u64) -> json";
    rt.load_bundle(bundle(
        tmp.path(),
        "paths",
        &[
            ("eight", sig8),
            ("nine", sig9),
            ("mixed", "fn(i64, str, f64) -> str"),
            ("fail", "fn(i32) -> i32"),
            ("later", "fn(i32, f64) -> f64"),
            ("kinds", "fn(i64, u64, f64, bool) -> str"),
        ],
        code,
        &[],
        "",
    ))
    .unwrap();
    let eight = [
        Value::I8(-8),
        Value::U16(65535),
        Value::I32(-7),
        Value::U32(u32::MAX),
        Value::I64(-5),
        Value::F32(0.5),
        Value::F64(0.25),
        Value::Bool(true),
    ];
    let want = json!([-8, 65535, -7, u32::MAX, -5, 0.5, 0.25, true]);
    assert_eq!(rt.call("paths.eight", &eight).unwrap(), Value::Json(want));
    // Nine arguments, one of them beyond 2^53 (a BigInt, exact): the general path.
    let mut nine = eight.to_vec();
    nine.push(Value::U64(u64::MAX));
    assert_eq!(
        rt.call("paths.nine", &nine).unwrap(),
        Value::Json(json!([
            -8,
            65535,
            -7,
            u32::MAX,
            -5,
            0.5,
            0.25,
            true,
            u64::MAX
        ]))
    );
    assert_eq!(
        rt.call(
            "paths.kinds",
            &[
                Value::I64(1),
                Value::U64(2),
                Value::F64(3.5),
                Value::Bool(false)
            ]
        )
        .unwrap(),
        Value::from("number,number,number,boolean")
    );
    assert_eq!(
        rt.call(
            "paths.kinds",
            &[
                Value::I64(1 << 60),
                Value::U64(u64::MAX),
                Value::F64(0.0),
                Value::Bool(true)
            ]
        )
        .unwrap(),
        Value::from("bigint,bigint,number,boolean")
    );
    assert_eq!(
        rt.call(
            "paths.mixed",
            &[Value::I64(1), Value::from("-"), Value::F64(2.5)]
        )
        .unwrap(),
        Value::from("1-2.5")
    );
    // An exception thrown on the scalar path keeps its stack.
    match rt.call("paths.fail", &[Value::I32(9)]).unwrap_err() {
        Error::Guest {
            message, traceback, ..
        } => {
            assert_eq!(message, "RangeError: bad 9");
            assert!(traceback.expect("stack").contains("main.js:6"));
        }
        e => panic!("unexpected {e}"),
    }
    // A promise returned on the scalar path is settled.
    assert_eq!(
        rt.call("paths.later", &[Value::I32(3), Value::F64(1.5)])
            .unwrap(),
        Value::F64(4.5)
    );
}

#[test]
fn commonjs_packages_load_from_npm_and_from_the_bundle() {
    // lodash ships only CommonJS (`module.exports`, no ES module entry).
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    let dir = bundle(
        tmp.path(),
        "cjs",
        &[
            ("chunks", "fn(json, i64) -> json"),
            ("named", "fn(str) -> str"),
            ("local", "fn(i64) -> i64"),
        ],
        "import _ from 'lodash';\nimport { kebabCase } from 'lodash';\nimport helper from './lib/helper.cjs';\n\
         export const chunks = (xs, n) => _.chunk(xs, n);\n\
         export const named = (s) => kebabCase(s);\n\
         export const local = (x) => helper.twice(x) + helper.data.offset;\n",
        &[
            (
                "lib/helper.cjs",
                "const data = require('./data.json');\nconst { inc } = require('./inc');\nmodule.exports = { twice: (x) => inc(x * 2) - 1, data };\n",
            ),
            ("lib/data.json", r#"{"offset": 100}"#),
            ("lib/inc.js", "exports.inc = (x) => x + 1;\n"),
        ],
        "[js]\npackages = [\"lodash@4.17.21\"]\n",
    );
    rt.load_bundle(&dir).unwrap();
    assert_eq!(
        rt.call(
            "cjs.chunks",
            &[Value::Json(json!([1, 2, 3, 4, 5])), Value::I64(2)]
        )
        .unwrap(),
        Value::Json(json!([[1, 2], [3, 4], [5]]))
    );
    assert_eq!(
        rt.call("cjs.named", &[Value::from("Hello World")]).unwrap(),
        Value::from("hello-world")
    );
    assert_eq!(
        rt.call("cjs.local", &[Value::I64(5)]).unwrap(),
        Value::I64(110)
    );
}
