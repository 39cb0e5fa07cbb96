//! The Python loader over the real embedded CPython, through the runtime.

use polyload::{BundleSource, Error, Manifest, Runtime, Value};
use polyload_python::PythonLoader;
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
        .loader(PythonLoader::new())
        .build()
        .unwrap()
}

/// Writes a Python bundle `id` (`main.py` = `code`, plus extra files, plus
/// extra manifest text) under `tmp`; returns its directory.
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
    let mut m = format!("id = \"{id}\"\nversion = \"0.1.0\"\nloader = \"python\"\nfile = \"main.py\"\nabi = \"1.0\"\n[exports]\n");
    for (name, sig) in exports {
        m.push_str(&format!("{name} = \"{sig}\"\n"));
    }
    m.push_str(more);
    std::fs::write(dir.join("manifest.toml"), m).unwrap();
    std::fs::write(dir.join("main.py"), code).unwrap();
    for (name, text) in extra {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

const KINDS: &str = r#"
def add(a, b): return a + b
def half(x): return x / 2
def neg(b): return not b
def shout(s): return s.upper() + "!"
def rev(b): return bytes(reversed(b))
def wrap(j): return {"got": j, "list": [1, 2.5, "three", True, None], "t": (1, 2)}
def small(x): return x
def big(): return 2**40
def huge(): return 2**70
def nothing(): pass
def wrong(): return "not an int"
def u64max(): return 2**64 - 1
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
        ("huge", "fn() -> json"),
        ("nothing", "fn() -> void"),
        ("wrong", "fn() -> i64"),
        ("u64max", "fn() -> u64"),
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
        Value::Json(json!({"got": j, "list": [1, 2.5, "three", true, null], "t": [1, 2]}))
    );
    assert_eq!(
        rt.call("kinds.small", &[Value::I64(200)]).unwrap(),
        Value::U8(200)
    );
    let e = rt
        .call("kinds.small", &[Value::I64(-1)])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("return value") && e.contains("out of range for u8"),
        "{e}"
    );
    let e = rt.call("kinds.big", &[]).unwrap_err().to_string();
    assert!(e.contains("out of range for i32"), "{e}");
    let e = rt.call("kinds.huge", &[]).unwrap_err().to_string();
    assert!(e.contains("beyond 64 bits"), "{e}");
    assert_eq!(rt.call("kinds.nothing", &[]).unwrap(), Value::Void);
    let e = rt.call("kinds.wrong", &[]).unwrap_err().to_string();
    assert!(e.contains("return value: expected i64, got str"), "{e}");
    assert_eq!(rt.call("kinds.u64max", &[]).unwrap(), Value::U64(u64::MAX));
}

#[test]
fn exceptions_carry_traceback_and_module_survives() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    let code = "count = 0\n\ndef boom(s):\n    global count\n    count += 1\n    raise ValueError('bad input: ' + s)\n\ndef n():\n    return count\n";
    rt.load_bundle(bundle(
        tmp.path(),
        "err",
        &[("boom", "fn(str) -> str"), ("n", "fn() -> i64")],
        code,
        &[],
        "",
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
                assert_eq!(message, "ValueError: bad input: x");
                let tb = traceback.expect("traceback");
                assert!(tb.contains("main.py\", line 6, in boom"), "{tb}");
            }
            e => panic!("unexpected {e}"),
        }
    }
    assert_eq!(rt.call("err.n", &[]).unwrap(), Value::I64(3));
    let dir = bundle(
        tmp.path(),
        "syn",
        &[("f", "fn() -> i64")],
        "def f(:\n    return 1\n",
        &[],
        "",
    );
    let e = rt.load_bundle(dir).unwrap_err().to_string();
    assert!(
        e.contains("SyntaxError") && e.contains("main.py, line 1"),
        "{e}"
    );
}

#[test]
fn bundles_own_modules_are_isolated() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    for (id, word) in [("iso_a", "apple"), ("iso_b", "banana")] {
        let code = "import util\nfrom util import WORD\nfrom pkg.sub import deep\nimport polyload\n\ndef word():\n    return util.WORD + '/' + WORD + '/' + deep()\n";
        let util = format!("WORD = '{word}'\n");
        let sub = "from . import helper\n\ndef deep():\n    import util\n    return helper.NAME + ':' + util.WORD\n";
        rt.load_bundle(bundle(
            tmp.path(),
            id,
            &[("word", "fn() -> str")],
            code,
            &[
                ("util.py", &util),
                ("pkg/__init__.py", ""),
                ("pkg/helper.py", &format!("NAME = '{id}'\n")),
                ("pkg/sub.py", sub),
            ],
            "",
        ))
        .unwrap();
    }
    assert_eq!(
        rt.call("iso_a.word", &[]).unwrap(),
        Value::from("apple/apple/iso_a:apple")
    );
    assert_eq!(
        rt.call("iso_b.word", &[]).unwrap(),
        Value::from("banana/banana/iso_b:banana")
    );
    assert!(
        !tmp.path().join("iso_a/__pycache__").exists(),
        "no bytecode cache in the bundle dir"
    );
}

#[test]
fn memory_source_reload_and_unload() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    let dir = bundle(
        tmp.path(),
        "mem",
        &[("v", "fn() -> i64")],
        "state = 1\ndef v():\n    return state\n",
        &[],
        "",
    );
    let m = Manifest::from_dir(&dir).unwrap();
    rt.load_manifest(
        m.clone(),
        BundleSource::Code("def v():\n    return 7\n".into()),
    )
    .unwrap();
    assert_eq!(rt.call("mem.v", &[]).unwrap(), Value::I64(7));
    rt.unload("mem").unwrap();
    assert!(matches!(rt.call("mem.v", &[]), Err(Error::Stale { .. })));
    rt.load_manifest(
        m.clone(),
        BundleSource::Bytes(b"def v():\n    return 8\n".to_vec()),
    )
    .unwrap();
    assert_eq!(rt.call("mem.v", &[]).unwrap(), Value::I64(8));

    let reload = |code: &str| rt.reload_from("mem", BundleSource::Code(code.into()));
    reload("def v():\n    return globals().get('state', 0) + 2\n").unwrap();
    assert_eq!(
        rt.call("mem.v", &[]).unwrap(),
        Value::I64(2),
        "a reload starts from a fresh module"
    );
    let e = reload("def v(:\n").unwrap_err().to_string();
    assert!(e.contains("SyntaxError"), "{e}");
    let e = reload("raise RuntimeError('init failed')\n").unwrap_err();
    let Error::Init {
        message, traceback, ..
    } = &e
    else {
        panic!("{e}")
    };
    assert!(message.contains("init failed"), "{e}");
    assert!(
        traceback.as_deref().is_some_and(|t| t.contains("line 1")),
        "{traceback:?}"
    );
    assert!(!e.to_string().contains('\n'), "one line: {e}");
    assert_eq!(
        rt.call("mem.v", &[]).unwrap(),
        Value::I64(2),
        "the last good version keeps serving"
    );
}

#[test]
fn a_failed_install_names_the_package() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    let dir = bundle(
        tmp.path(),
        "badpkg",
        &[("f", "fn() -> i64")],
        "def f():\n    return 1\n",
        &[],
        "[python]\nrequirements = [\"polyload-no-such-package-xyz==0.0.1\"]\n",
    );
    let e = rt.load_bundle(dir).unwrap_err().to_string();
    assert!(e.contains("polyload-no-such-package-xyz"), "{e}");
    assert!(e.contains("pip"), "{e}");
}

#[test]
fn pyslug_example_uses_python_slugify() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    rt.load_bundle(repo().join("examples/bundles/pyslug"))
        .unwrap();
    assert_eq!(
        rt.call("pyslug.slugify", &[Value::from("Héllo, Wörld! Ça va?")])
            .unwrap(),
        Value::from("hello-world-ca-va")
    );
    // Installed once into the cache, keyed by the requirement list.
    let installs: Vec<_> = std::fs::read_dir(tmp.path().join("cache/pyslug/python"))
        .unwrap()
        .collect();
    assert_eq!(installs.len(), 1);
}

#[test]
fn runtime_reload_replaces_python_code_and_keeps_handles() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = bundle(
        tmp.path(),
        "pyhot",
        &[("add", "fn(i64, i64) -> i64")],
        "def add(a, b):\n    return a + b\n",
        &[],
        "",
    );
    let rt = runtime(tmp.path());
    rt.load_dir(&dir).unwrap();
    let add = rt
        .function::<extern "C" fn(i64, i64) -> i64>("pyhot.add")
        .unwrap();
    assert_eq!(add.call((2, 3)).unwrap(), 5);
    std::fs::write(dir.join("main.py"), "def add(a, b):\n    return a * b\n").unwrap();
    assert_eq!(rt.reload("pyhot").unwrap(), 2);
    assert_eq!(
        add.call((2, 3)).unwrap(),
        6,
        "typed handle follows the reload"
    );
    // A syntax error in the new version leaves the old one serving.
    std::fs::write(dir.join("main.py"), "def add(a, b)\n    return 0\n").unwrap();
    let e = rt.reload("pyhot").unwrap_err();
    assert!(e.to_string().contains("main.py"), "{e}");
    assert_eq!(add.call((7, 6)).unwrap(), 42);
    // An exception through the typed handle is an error value.
    std::fs::write(
        dir.join("main.py"),
        "def add(a, b):\n    raise ValueError('no adding today')\n",
    )
    .unwrap();
    rt.reload("pyhot").unwrap();
    assert!(add
        .call((1, 1))
        .unwrap_err()
        .to_string()
        .contains("no adding today"));
}

/// Numbers and `bool`s go to CPython by vectorcall from a stack array (up
/// to six); longer or mixed argument lists go through pyo3. Both give the
/// same values and errors.
#[test]
fn scalar_and_general_argument_paths_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    let code = r#"
def six(a, b, c, d, e, f):
    return [a, b, c, d, e, f]

def seven(a, b, c, d, e, f, g):
    return [a, b, c, d, e, f, g]

def mixed(a, s, b):
    return f"{a}{s}{b}"

def fail(x):
    raise KeyError(x)

class F(float):
    pass

def sub(x):
    return F(x)

def flag(x):
    return x > 0
"#;
    rt.load_bundle(bundle(
        tmp.path(),
        "paths",
        &[
            ("six", "fn(i8, u16, i32, u64, f32, bool) -> json"),
            ("seven", "fn(i8, u16, i32, u64, f32, bool, f64) -> json"),
            ("mixed", "fn(i64, str, f64) -> str"),
            ("fail", "fn(i64) -> i64"),
            ("sub", "fn(f64) -> f64"),
            ("flag", "fn(i64) -> i64"),
        ],
        code,
        &[],
        "",
    ))
    .unwrap();
    let six = [
        Value::I8(-8),
        Value::U16(65535),
        Value::I32(-7),
        Value::U64(u64::MAX),
        Value::F32(0.5),
        Value::Bool(true),
    ];
    assert_eq!(
        rt.call("paths.six", &six).unwrap(),
        Value::Json(json!([-8, 65535, -7, u64::MAX, 0.5, true]))
    );
    let mut seven = six.to_vec();
    seven.push(Value::F64(2.25));
    assert_eq!(
        rt.call("paths.seven", &seven).unwrap(),
        Value::Json(json!([-8, 65535, -7, u64::MAX, 0.5, true, 2.25]))
    );
    assert_eq!(
        rt.call(
            "paths.mixed",
            &[Value::I64(1), Value::from("-"), Value::F64(2.5)]
        )
        .unwrap(),
        Value::from("1-2.5")
    );
    // An exception raised on the scalar path keeps its traceback.
    match rt.call("paths.fail", &[Value::I64(9)]).unwrap_err() {
        Error::Guest {
            message, traceback, ..
        } => {
            assert_eq!(message, "KeyError: 9");
            let tb = traceback.expect("traceback");
            assert!(tb.contains("in fail"), "{tb}");
        }
        e => panic!("unexpected {e}"),
    }
    // Results that are not an exact `int`/`float` take the full conversion.
    assert_eq!(
        rt.call("paths.sub", &[Value::F64(1.5)]).unwrap(),
        Value::F64(1.5)
    );
    let e = rt
        .call("paths.flag", &[Value::I64(1)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("expected i64, got bool"), "{e}");
    // The interpreter is fine afterwards.
    assert_eq!(
        rt.call(
            "paths.mixed",
            &[Value::I64(3), Value::from("+"), Value::F64(4.0)]
        )
        .unwrap(),
        Value::from("3+4.0")
    );
}

#[test]
fn two_bundles_use_two_versions_of_one_package_in_one_process() {
    // `six` from the package index, pure Python: each bundle imports its
    // own installed copy, whichever was imported first.
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    for (id, version) in [("six_new", "1.16.0"), ("six_old", "1.15.0")] {
        rt.load_bundle(bundle(
            tmp.path(),
            id,
            &[("version", "fn() -> str"), ("moves", "fn() -> str")],
            "import six\nfrom six.moves import urllib\n\ndef version():\n    return six.__version__\n\ndef moves():\n    return urllib.parse.quote('a b')\n",
            &[],
            &format!("[python]\nrequirements = [\"six=={version}\"]\n"),
        ))
        .unwrap();
    }
    for (id, version) in [("six_new", "1.16.0"), ("six_old", "1.15.0")] {
        assert_eq!(
            rt.call(&format!("{id}.version"), &[]).unwrap(),
            Value::from(version),
            "{id}"
        );
        assert_eq!(
            rt.call(&format!("{id}.moves"), &[]).unwrap(),
            Value::from("a%20b")
        );
    }
}

#[test]
fn a_section_field_the_loader_does_not_know_names_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    let dir = bundle(
        tmp.path(),
        "typo",
        &[("v", "fn() -> i64")],
        "def v():\n    return 1\n",
        &[],
        "[python]\nrequirement = [\"six\"]\n",
    );
    let e = rt.load_bundle(&dir).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "{}:9: python.requirement: unknown field `requirement`",
            dir.join("manifest.toml").display()
        )),
        "{e}"
    );
    // A section no loader reads is refused too.
    std::fs::write(
        dir.join("manifest.toml"),
        "id = \"typo\"\nversion = \"0.1.0\"\nloader = \"python\"\nfile = \"main.py\"\nabi = \"1.0\"\n[exports]\nv = \"fn() -> i64\"\n[pyhton]\nrequirements = []\n",
    )
    .unwrap();
    let e = rt.load_bundle(&dir).unwrap_err().to_string();
    assert!(
        e.contains(
            ":8: pyhton: [pyhton] is not a section any registered loader reads (they read: python)"
        ),
        "{e}"
    );
}
