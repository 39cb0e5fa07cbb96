//! rimport from outside: crates from crates.io (semver, regex,
//! unicode-segmentation, num-integer, indexmap, num-complex) become bundles on demand, called from
//! Rust and from Lua, Python and JavaScript bundles, with regex checked
//! against Python's `re`.

use polyload::builder::BuildEvent;
use polyload::{Error, Runtime, Value};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

mod generics;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// Where generated crates and builds are cached: inside the clone, shared
/// by the tests of this file (a fresh clone builds each crate once).
fn cache() -> PathBuf {
    repo().join("target/rimport-tests")
}

fn runtime(events: Option<Arc<Mutex<Vec<BuildEvent>>>>) -> Runtime {
    let mut b = Runtime::builder()
        .cache_dir(cache())
        .loader(polyload_lua::LuaLoader::new())
        .loader(polyload_python::PythonLoader::new())
        .loader(polyload_js::JsLoader::new());
    if let Some(ev) = events {
        b = b.on_build(move |e| ev.lock().unwrap().push(e));
    }
    b.build().unwrap()
}

/// One runtime with the four example bundles, loaded once (loads of one
/// spec are not run concurrently by these tests).
static RT: LazyLock<Runtime> = LazyLock::new(|| {
    let rt = runtime(None);
    for b in ["semver", "regex", "graphemes", "numint"] {
        rt.load_bundle(repo().join("examples/rimport").join(b))
            .unwrap_or_else(|e| panic!("{b}: {e}"));
    }
    rt
});

fn call(name: &str, args: &[Value]) -> polyload::Result<Value> {
    RT.call(name, args)
}

fn s(v: &str) -> Value {
    Value::from(v)
}

fn handle(v: Value) -> u64 {
    match v {
        Value::U64(h) => h,
        other => panic!("not a handle: {other:?}"),
    }
}

#[test]
fn semver_parses_compares_and_matches() {
    let v = handle(call("semver.Version_parse", &[s("1.2.3-rc.1")]).unwrap());
    assert_eq!(
        call("semver.Version_major", &[Value::U64(v)]).unwrap(),
        Value::U64(1)
    );
    assert_eq!(
        call("semver.Version_minor", &[Value::U64(v)]).unwrap(),
        Value::U64(2)
    );
    assert_eq!(
        call("semver.Version_to_string", &[Value::U64(v)]).unwrap(),
        s("1.2.3-rc.1")
    );
    let w = handle(call("semver.Version_parse", &[s("1.2.3")]).unwrap());
    assert_eq!(
        call(
            "semver.Version_cmp_precedence",
            &[Value::U64(v), Value::U64(w)]
        )
        .unwrap(),
        Value::I32(-1)
    );
    let req = handle(call("semver.VersionReq_parse", &[s(">=1.2, <2")]).unwrap());
    let yes = call(
        "semver.VersionReq_matches",
        &[Value::U64(req), Value::U64(w)],
    )
    .unwrap();
    let no = call(
        "semver.VersionReq_matches",
        &[Value::U64(req), Value::U64(v)],
    )
    .unwrap();
    assert_eq!((yes, no), (Value::Bool(true), Value::Bool(false)));

    // A handle of the wrong type is an error naming both types.
    let e = call("semver.Version_major", &[Value::U64(req)]).unwrap_err();
    assert!(
        e.to_string()
            .contains("holds a `semver::VersionReq`, not a `semver::Version`"),
        "{e}"
    );
    // An Err of the crate is an error value with its Display.
    let e = call("semver.Version_parse", &[s("1.x")]).unwrap_err();
    assert!(
        matches!(&e, Error::Guest { message, .. } if message.contains("unexpected character 'x'")),
        "{e}"
    );
    // A freed handle is an error.
    call("semver.Version_drop", &[Value::U64(v)]).unwrap();
    let e = call("semver.Version_major", &[Value::U64(v)]).unwrap_err();
    assert!(e.to_string().contains("is not live"), "{e}");
    assert!(call("semver.Version_drop", &[Value::U64(v)]).is_err());
    call("semver.Version_drop", &[Value::U64(w)]).unwrap();
    call("semver.VersionReq_drop", &[Value::U64(req)]).unwrap();

    // Signatures name what each handle refers to.
    let sig = |n: &str| RT.definition(n).unwrap().signature.to_string();
    assert_eq!(
        sig("semver.Version_parse"),
        "fn(str) -> handle<semver::Version>"
    );
    assert_eq!(
        sig("semver.VersionReq_matches"),
        "fn(handle<semver::VersionReq>, handle<semver::Version>) -> bool"
    );
    assert_eq!(sig("semver.Version_drop"), "fn(handle<semver::Version>)");
    // A Rust host's typed handle takes the id as a `u64`.
    let major = RT
        .function::<extern "C" fn(u64) -> u64>("semver.Version_major")
        .unwrap();
    let v = handle(call("semver.Version_parse", &[s("7.1.0")]).unwrap());
    assert_eq!(major.call((v,)).unwrap(), 7);
    call("semver.Version_drop", &[Value::U64(v)]).unwrap();
}

#[test]
fn graphemes_and_words_of_known_strings() {
    let cases = [
        ("e\u{301}a", 2),              // e + combining acute, a
        ("🇺🇸🇫🇷", 2),                   // two flags (regional indicator pairs)
        ("👨\u{200d}👩\u{200d}👧", 1), // a ZWJ family
        ("नमस्ते", 3),                   // Devanagari clusters (extended)
        ("", 0),
    ];
    for (text, n) in cases {
        let v = call(
            "graphemes.UnicodeSegmentation_graphemes",
            &[s(text), Value::Bool(true)],
        )
        .unwrap();
        let Value::Json(list) = v else {
            panic!("{v:?}")
        };
        assert_eq!(list.as_array().unwrap().len(), n, "{text:?}: {list}");
        assert_eq!(
            list.as_array()
                .unwrap()
                .iter()
                .map(|g| g.as_str().unwrap())
                .collect::<String>(),
            text
        );
    }
    let words = call(
        "graphemes.UnicodeSegmentation_unicode_words",
        &[s("The quick (\"brown\") fox can't jump 32.3 feet, right?")],
    )
    .unwrap();
    assert_eq!(
        words,
        Value::Json(json!([
            "The", "quick", "brown", "fox", "can't", "jump", "32.3", "feet", "right"
        ]))
    );
}

fn big_text() -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let readme: String = readme.chars().filter(char::is_ascii).collect();
    let mut t = String::new();
    for i in 0..4000u32 {
        t.push_str(&format!(
            "{i:05} user{} logged in from 10.0.{}.{} at 2026-12-{:02} running version {}.{}.{}\n",
            i * 7 % 113,
            i % 256,
            i * 13 % 256,
            i % 28 + 1,
            i % 3,
            i % 17,
            i % 5
        ));
        if i % 100 == 0 {
            t.push_str(&readme);
        }
    }
    t
}

#[test]
fn regex_agrees_with_python_re_on_a_large_text() {
    let text = big_text();
    assert!(text.len() > 900_000, "{}", text.len());
    let patterns = [
        r"\d+\.\d+\.\d+",
        r"10\.0\.(\d+)\.255",
        r"[A-Z][a-z]+ing\b",
        r"(?i)POLYLOAD",
        r"user1[0-9] logged",
        r"no such thing here",
    ];
    // Python's `re` on bytes: offsets are byte offsets, as in regex.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("text"), &text).unwrap();
    std::fs::write(
        dir.path().join("patterns.json"),
        serde_json::to_string(&patterns).unwrap(),
    )
    .unwrap();
    let py = r#"
import json, re, sys
d = sys.argv[1]
text = open(d + "/text", "rb").read()
out = []
for p in json.load(open(d + "/patterns.json")):
    r = re.compile(p.encode())
    m = r.search(text)
    out.append({"first": None if m is None else [m.start(), m.end(), m.group().decode()],
                "count": sum(1 for _ in r.finditer(text))})
print(json.dumps(out))
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(py)
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (i, p) in patterns.iter().enumerate() {
        let re = handle(call("regex.Regex_new", &[s(p)]).unwrap());
        let want = &expected[i];
        assert_eq!(
            call("regex.Regex_is_match", &[Value::U64(re), s(&text)]).unwrap(),
            Value::Bool(!want["first"].is_null()),
            "{p}"
        );
        let Value::Json(found) = call("regex.Regex_find", &[Value::U64(re), s(&text)]).unwrap()
        else {
            panic!()
        };
        let got = if found.is_null() {
            serde_json::Value::Null
        } else {
            json!([found["start"], found["end"], found["as_str"]])
        };
        assert_eq!(got, want["first"], "{p}: {found}");
        let Value::Json(all) = call("regex.Regex_find_iter", &[Value::U64(re), s(&text)]).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            all.as_array().unwrap().len() as u64,
            want["count"].as_u64().unwrap(),
            "{p}"
        );
        assert_eq!(call("regex.Regex_as_str", &[Value::U64(re)]).unwrap(), s(p));
        call("regex.Regex_drop", &[Value::U64(re)]).unwrap();
    }
    let re = handle(call("regex.Regex_new", &[s(r"(\d+)-(\d+)")]).unwrap());
    assert_eq!(
        call(
            "regex.Regex_replace_all_str",
            &[Value::U64(re), s("1-2 and 30-40"), s("$2-$1")]
        )
        .unwrap(),
        s("2-1 and 40-30")
    );
    call("regex.Regex_drop", &[Value::U64(re)]).unwrap();
    assert_eq!(call("regex.escape", &[s("a.b*c")]).unwrap(), s(r"a\.b\*c"));
    let e = call("regex.Regex_new", &[s("(unclosed")]).unwrap_err();
    assert!(e.to_string().contains("unclosed group"), "{e}");
}

fn script_bundle(dir: &Path, id: &str, loader: &str, file: &str, code: &str) -> PathBuf {
    let d = dir.join(id);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("manifest.toml"),
        format!(
            "id = \"{id}\"\nversion = \"0.1.0\"\nloader = \"{loader}\"\nfile = \"{file}\"\nabi = \"1.0\"\n[exports]\nmatches = \"fn(str, str) -> bool\"\nfirst = \"fn(str, str) -> str\"\ngraphemes = \"fn(str) -> i64\"\ngcd = \"fn(i64, i64) -> i64\"\n"
        ),
    )
    .unwrap();
    std::fs::write(d.join(file), code).unwrap();
    d
}

#[test]
fn lua_python_and_javascript_call_the_wrapped_crates() {
    let tmp = tempfile::tempdir().unwrap();
    let py = r#"
import polyload
def matches(req, version):
    r = polyload.call("semver.VersionReq_parse", req)
    v = polyload.call("semver.Version_parse", version)
    try:
        return polyload.call("semver.VersionReq_matches", r, v)
    finally:
        polyload.call("semver.Version_drop", v)
        polyload.call("semver.VersionReq_drop", r)
def first(pattern, text):
    r = polyload.call("regex.Regex_new", pattern)
    m = polyload.call("regex.Regex_find", r, text)
    polyload.call("regex.Regex_drop", r)
    return "" if m is None else m["as_str"]
def graphemes(text):
    return len(polyload.call("graphemes.UnicodeSegmentation_graphemes", text, True))
def gcd(a, b):
    return polyload.call("numint.gcd_i64", a, b)
"#;
    let lua = r#"
local M = {}
function M.matches(req, version)
  local r = polyload.call("semver.VersionReq_parse", req)
  local v = polyload.call("semver.Version_parse", version)
  local ok = polyload.call("semver.VersionReq_matches", r, v)
  polyload.call("semver.Version_drop", v)
  polyload.call("semver.VersionReq_drop", r)
  return ok
end
function M.first(pattern, text)
  local r = polyload.call("regex.Regex_new", pattern)
  local m = polyload.call("regex.Regex_find", r, text)
  polyload.call("regex.Regex_drop", r)
  if m == polyload.null then return "" end
  return m.as_str
end
function M.graphemes(text) return #polyload.call("graphemes.UnicodeSegmentation_graphemes", text, true) end
function M.gcd(a, b) return polyload.call("numint.gcd_i64", a, b) end
return M
"#;
    let js = r#"
import { call } from "polyload";
export function matches(req, version) {
  const r = call("semver.VersionReq_parse", req), v = call("semver.Version_parse", version);
  try { return call("semver.VersionReq_matches", r, v); }
  finally { call("semver.Version_drop", v); call("semver.VersionReq_drop", r); }
}
export function first(pattern, text) {
  const r = call("regex.Regex_new", pattern);
  const m = call("regex.Regex_find", r, text);
  call("regex.Regex_drop", r);
  return m === null ? "" : m.as_str;
}
export const graphemes = (text) => call("graphemes.UnicodeSegmentation_graphemes", text, true).length;
export const gcd = (a, b) => call("numint.gcd_i64", a, b);
"#;
    for (id, loader, file, code) in [
        ("rpy", "python", "main.py", py),
        ("rlua", "lua", "main.lua", lua),
        ("rjs", "js", "main.js", js),
    ] {
        RT.load_bundle(script_bundle(tmp.path(), id, loader, file, code))
            .unwrap();
        let c = |f: &str, args: &[Value]| {
            RT.call(&format!("{id}.{f}"), args)
                .unwrap_or_else(|e| panic!("{id}.{f}: {e}"))
        };
        assert_eq!(
            c("matches", &[s("^1.2"), s("1.9.0")]),
            Value::Bool(true),
            "{id}"
        );
        assert_eq!(
            c("matches", &[s("~1.2"), s("1.9.0")]),
            Value::Bool(false),
            "{id}"
        );
        assert_eq!(c("first", &[s(r"\d+"), s("abc 123 45")]), s("123"), "{id}");
        assert_eq!(c("first", &[s(r"\d+"), s("none")]), s(""), "{id}");
        assert_eq!(c("graphemes", &[s("e\u{301}🇺🇸!")]), Value::I64(3), "{id}");
        assert_eq!(
            c("gcd", &[Value::I64(48), Value::I64(18)]),
            Value::I64(6),
            "{id}"
        );
        // A guest error (bad pattern) reaches the script as its exception.
        assert!(
            RT.call(&format!("{id}.first"), &[s("("), s("x")]).is_err(),
            "{id}"
        );
        RT.unload(id).unwrap();
    }
}

#[test]
fn a_cached_rimport_runs_no_tool() {
    // The example bundles are generated and built by `RT` (first use);
    // loading one again in a second runtime finds everything cached.
    LazyLock::force(&RT);
    let events = Arc::new(Mutex::new(Vec::new()));
    let rt = runtime(Some(events.clone()));
    rt.load_bundle(repo().join("examples/rimport/semver"))
        .unwrap();
    let events = events.lock().unwrap();
    assert!(
        events.iter().all(|e| matches!(e, BuildEvent::Fresh { .. })),
        "{events:?}"
    );
    assert!(events.len() >= 2, "{events:?}");
    assert_eq!(
        rt.bundles()[0]
            .manifest
            .version
            .to_string()
            .split('.')
            .next(),
        Some("1")
    );
}

#[test]
fn bad_specs_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = Runtime::builder()
        .cache_dir(tmp.path().join("cache"))
        .build()
        .unwrap();
    let bundle = |name: &str, rimport: &str| {
        let d = tmp.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("manifest.toml"),
            format!("id = \"{name}\"\nloader = \"native\"\n[rimport]\n{rimport}\n"),
        )
        .unwrap();
        d
    };
    let fails = |name: &str, rimport: &str| rt.load_bundle(bundle(name, rimport)).unwrap_err();
    // Items that do not exist, and one that cannot be wrapped as asked (an
    // open generic parameter), all named in one error.
    let e = fails("bad_items", "crate = \"semver\"\nversion = \"1\"\nitems = [\"Version::parse\", \"Version::frobnicate\", \"Nope::new\", \"Version::hash\"]").to_string();
    assert!(
        e.contains("`semver::Version` has no public method or field `frobnicate`"),
        "{e}"
    );
    assert!(e.contains("`semver` has no public item `Nope`"), "{e}");
    assert!(
        e.contains("`Version::hash`: takes 1 type parameter(s) (__H), 0 given in `generics`"),
        "{e}"
    );
    assert!(
        e.starts_with("rimport of crate `semver`: Version::frobnicate, Nope::new, Version::hash"),
        "{e}"
    );
    // A generic type's method without the type's own parameter.
    let e = fails(
        "open_owner",
        "crate = \"indexmap\"\nversion = \"2\"\nitems = [\"IndexSet::new\"]",
    )
    .to_string();
    assert!(
        e.contains(
            "`IndexSet::new`: its type is generic over T: give their types first in `generics`"
        ),
        "{e}"
    );
    // Generated code that does not compile (a JSON type without the crate's
    // serde feature): the compiler's message, and where the file is.
    match fails(
        "no_serde",
        "crate = \"semver\"\nversion = \"1\"\nitems = [\"Version::parse\"]\njson = [\"Version\"]",
    ) {
        Error::Build { output, .. } => {
            assert!(output.contains("Serialize"), "{output}");
            assert!(output.contains("src/lib.rs:"), "{output}");
            assert!(output.contains("(the generated crate: "), "{output}");
        }
        other => panic!("{other:?}"),
    }
    // An unknown crate: cargo's message.
    let e = fails(
        "no_crate",
        "crate = \"polyload-no-such-crate-anywhere\"\nitems = [\"f\"]",
    );
    assert!(
        matches!(&e, Error::Build { output, .. } if output.contains("no matching package named `polyload-no-such-crate-anywhere`")),
        "{e:?}"
    );
    // A version that does not exist.
    let e = fails(
        "no_version",
        "crate = \"semver\"\nversion = \"=0.0.999\"\nitems = [\"Version::parse\"]",
    );
    assert!(
        matches!(&e, Error::Build { output, .. } if output.contains("semver = \"=0.0.999\"")),
        "{e:?}"
    );
    // A manifest error names the file, the line and the field.
    let e = fails(
        "bad_req",
        "crate = \"semver\"\nversion = \"one\"\nitems = [\"Version::parse\"]",
    )
    .to_string();
    assert!(
        e.contains("manifest.toml:3: rimport.version: `one` is not a version requirement"),
        "{e}"
    );
    // Nothing was loaded by any of these.
    assert!(rt.bundle_ids().is_empty());
}

/// The Rust-ABI path: semver's real types from a `dylib` plugin, used by a
/// cell crate compiled at run time against it.
#[test]
fn a_cell_uses_semver_types_from_the_rust_abi_plugin() {
    let spec = polyload::manifest::RimportSpec {
        krate: "semver".into(),
        version: "1".into(),
        features: Vec::new(),
        default_features: true,
        items: ["Version::parse", "VersionReq::parse"]
            .map(|i| polyload::manifest::RimportItem::Path(i.into()))
            .to_vec(),
        json: Vec::new(),
    };
    let plugin = polyload::rimport::RustDylib::build(&spec, &cache()).unwrap();
    assert_eq!(plugin.lib_name(), "polyload_rdylib_semver");
    assert!(
        plugin.metadata().contains("; semver 1."),
        "{}",
        plugin.metadata()
    );
    let cells = tempfile::tempdir().unwrap();
    let source = r#"
use polyload_rdylib_semver::exports::{Version, VersionReq};

/// The highest of `versions` (comma-separated) that `req` accepts, as
/// `major * 1_000_000 + minor * 1000 + patch`, or `u64::MAX`.
#[no_mangle]
pub extern "C" fn best(req: *const u8, req_len: usize, versions: *const u8, len: usize) -> u64 {
    let text = |p, n| unsafe { std::str::from_utf8(std::slice::from_raw_parts(p, n)).unwrap() };
    let req = VersionReq::parse(text(req, req_len)).unwrap();
    let best: Option<Version> = text(versions, len)
        .split(',')
        .map(|v| Version::parse(v.trim()).unwrap())
        .filter(|v| req.matches(v))
        .max();
    best.map_or(u64::MAX, |v| v.major * 1_000_000 + v.minor * 1000 + v.patch)
}
"#;
    let cell = plugin
        .build_cell("cell_best", source, cells.path())
        .unwrap();
    // SAFETY: `best` is defined above with exactly this signature.
    let best =
        unsafe { cell.get::<extern "C" fn(*const u8, usize, *const u8, usize) -> u64>("best") }
            .unwrap();
    let call = |req: &str, vs: &str| best(req.as_ptr(), req.len(), vs.as_ptr(), vs.len());
    assert_eq!(call("^1.2", "1.1.0, 1.2.5, 1.9.3, 2.0.0"), 1_009_003);
    assert_eq!(call(">=3", "1.0.0, 2.0.0"), u64::MAX);
    // A symbol the cell does not have is named with the library.
    // SAFETY: never called.
    let e = unsafe { cell.get::<extern "C" fn()>("nope") }
        .err()
        .unwrap();
    assert!(e.to_string().contains("nope"), "{e}");
}

/// Handles are values with owners: dropping a handle runs the value's
/// `Drop`, and so does unloading the bundle (its library's destructor
/// empties the table once the reclaimer unmaps it). `NamedTempFile` deletes
/// its file on drop, which makes both visible.
#[test]
fn unloading_a_bundle_drops_its_handles() {
    let rt = runtime(None);
    rt.load_bundle(repo().join("examples/rimport/tempfile"))
        .unwrap();
    let new_file = || {
        let h = handle(rt.call("tempfile.NamedTempFile_new", &[]).unwrap());
        let Value::Str(p) = rt
            .call("tempfile.NamedTempFile_path", &[Value::U64(h)])
            .unwrap()
        else {
            panic!()
        };
        let p = PathBuf::from(p);
        assert!(p.is_file(), "{}", p.display());
        (h, p)
    };
    let (a, pa) = new_file();
    rt.call("tempfile.NamedTempFile_drop", &[Value::U64(a)])
        .unwrap();
    assert!(!pa.exists(), "dropping the handle deletes the file");
    let (_b, pb) = new_file();
    let (_c, pc) = new_file();
    assert_eq!(
        rt.call("tempfile.live_handles", &[]).unwrap(),
        Value::U64(2)
    );
    rt.unload("tempfile").unwrap();
    rt.collect_garbage(std::time::Duration::from_secs(10));
    assert!(
        !pb.exists() && !pc.exists(),
        "unloading frees the handles: {} {}",
        pb.display(),
        pc.display()
    );
}

/// `json = [..]`: a type with serde impls crosses as JSON both ways
/// instead of as a handle (semver's `serde` feature: a version is a string).
#[test]
fn serde_types_cross_as_json_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("semver_json");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("manifest.toml"),
        "id = \"semver_json\"\nloader = \"native\"\n[rimport]\ncrate = \"semver\"\nversion = \"1\"\nfeatures = [\"serde\"]\njson = [\"Version\"]\nitems = [\"Version::parse\", \"VersionReq::parse\", \"VersionReq::matches\"]\n",
    )
    .unwrap();
    let rt = runtime(None);
    rt.load_bundle(&d).unwrap();
    let sig = |n: &str| rt.definition(n).unwrap().signature.to_string();
    assert_eq!(sig("semver_json.Version_parse"), "fn(str) -> json");
    assert_eq!(
        sig("semver_json.VersionReq_matches"),
        "fn(handle<semver::VersionReq>, json) -> bool"
    );
    assert_eq!(
        rt.call("semver_json.Version_parse", &[s("1.2.3-beta.1")])
            .unwrap(),
        Value::Json(json!("1.2.3-beta.1"))
    );
    let req = handle(
        rt.call("semver_json.VersionReq_parse", &[s("^1.4")])
            .unwrap(),
    );
    let m = |v: serde_json::Value| {
        rt.call(
            "semver_json.VersionReq_matches",
            &[Value::U64(req), Value::Json(v)],
        )
    };
    assert_eq!(m(json!("1.9.0")).unwrap(), Value::Bool(true));
    assert_eq!(m(json!("2.0.0")).unwrap(), Value::Bool(false));
    let e = m(json!(42)).unwrap_err().to_string();
    assert!(e.contains("argument 2"), "{e}");
}

/// Hot reload of a `[rimport]` bundle: editing its items regenerates the
/// crate; the new version adds the definition, and handles of the old
/// version are not live in the new one (its table was freed on retire).
#[test]
fn editing_the_items_and_reloading_regenerates_the_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("semver_edit");
    std::fs::create_dir_all(&d).unwrap();
    let write = |items: &str| {
        std::fs::write(
            d.join("manifest.toml"),
            format!("id = \"semver_edit\"\nloader = \"native\"\n[rimport]\ncrate = \"semver\"\nversion = \"1\"\nitems = [{items}]\n"),
        )
        .unwrap()
    };
    write("\"Version::parse\", \"Version::major\"");
    let rt = runtime(None);
    rt.load_bundle(&d).unwrap();
    let v = handle(rt.call("semver_edit.Version_parse", &[s("3.4.5")]).unwrap());
    assert!(rt.definition("semver_edit.Version_minor").is_none());
    write("\"Version::parse\", \"Version::major\", \"Version::minor\"");
    let generation = rt.reload("semver_edit").unwrap();
    assert_eq!(generation, 2);
    let v2 = handle(rt.call("semver_edit.Version_parse", &[s("3.4.5")]).unwrap());
    assert_eq!(
        rt.call("semver_edit.Version_minor", &[Value::U64(v2)])
            .unwrap(),
        Value::U64(4)
    );
    let e = rt
        .call("semver_edit.Version_major", &[Value::U64(v)])
        .unwrap_err();
    assert!(e.to_string().contains("is not live"), "{e}");
    // A broken edit keeps the working version.
    write("\"Version::parse\", \"Version::nope\"");
    assert!(rt.reload("semver_edit").is_err());
    assert_eq!(
        rt.call("semver_edit.Version_minor", &[Value::U64(v2)])
            .unwrap(),
        Value::U64(4)
    );
}

/// A cell compiled against another build of the plugin than the one loaded
/// (here: the plugin's sources changed under it, as a toolchain change
/// would) is refused, with both builds' metadata named.
#[test]
fn a_cell_built_against_another_plugin_build_is_refused() {
    let spec = polyload::manifest::RimportSpec {
        krate: "semver".into(),
        version: "1".into(),
        features: Vec::new(),
        default_features: true,
        items: vec![polyload::manifest::RimportItem::Path(
            "Version::parse".into(),
        )],
        json: Vec::new(),
    };
    let cache = tempfile::tempdir().unwrap();
    let plugin = polyload::rimport::RustDylib::build(&spec, cache.path()).unwrap();
    let lib = plugin.crate_dir().join("src/lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap();
    let meta = plugin.metadata().to_string();
    std::fs::write(
        &lib,
        text.replace(&meta, "rustc 0.0.0 (elsewhere); semver 0.0.0"),
    )
    .unwrap();
    let cells = tempfile::tempdir().unwrap();
    let source = "#[no_mangle]\npub extern \"C\" fn major() -> u64 { polyload_rdylib_semver::exports::Version::parse(\"4.5.6\").unwrap().major }\n";
    match plugin.build_cell("cell_mismatch", source, cells.path()) {
        Err(Error::BuildMetadata {
            bundle_value,
            host_value,
            ..
        }) => {
            assert_eq!(bundle_value, "rustc 0.0.0 (elsewhere); semver 0.0.0");
            assert_eq!(host_value, meta);
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a mismatched cell was accepted"),
    }
}
