//! The csjson example: Newtonsoft.Json (Debian's libnewtonsoft-json5.0-cil)
//! on real documents, checked against Python's `json`.

use polyload::{Runtime, Value};
use polyload_dotnet::DotnetLoader;
use polyload_outside::Scratch;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Real documents no one here wrote: Cargo's metadata of this workspace (its packages),
/// and the JSON schema of target specs that ships with the Rust toolchain.
fn documents() -> Vec<(String, String)> {
    let meta = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        meta.status.success(),
        "{}",
        String::from_utf8_lossy(&meta.stderr)
    );
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .unwrap();
    let schema = Path::new(String::from_utf8(sysroot.stdout).unwrap().trim())
        .join("etc/target-spec-json-schema.json");
    vec![
        (
            "cargo metadata".into(),
            String::from_utf8(meta.stdout).unwrap(),
        ),
        (
            schema.display().to_string(),
            std::fs::read_to_string(&schema)
                .unwrap_or_else(|e| panic!("{}: {e}", schema.display())),
        ),
    ]
}

/// Runs Python 3 on `script` with `input` on stdin; its stdout.
fn python(script: &str, input: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (installed by scripts/setup.sh)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

fn runtime(s: &Scratch) -> Runtime {
    let rt = s.builder().loader(DotnetLoader::new()).build().unwrap();
    rt.load_bundle(root().join("examples/bundles/csjson"))
        .unwrap();
    rt
}

#[test]
fn pretty_and_canonical_forms_parse_back_to_the_same_document_in_python() {
    let s = Scratch::new();
    let rt = runtime(&s);
    let v = rt.call("csjson.version", &[]).unwrap().to_string();
    assert!(
        v.starts_with("6."),
        "Newtonsoft.Json from Debian's GAC: {v}"
    );
    for (name, doc) in documents() {
        let parsed: serde_json::Value = serde_json::from_str(&doc).unwrap();
        let pretty = rt
            .call("csjson.pretty", &[Value::Json(parsed.clone())])
            .unwrap();
        let Value::Str(pretty) = pretty else {
            panic!("{pretty:?}")
        };
        assert!(pretty.contains("\n  \""), "{name}: indented by two");
        let canonical = rt
            .call("csjson.canonical", &[Value::Json(parsed.clone())])
            .unwrap();
        let Value::Str(canonical) = canonical else {
            panic!()
        };
        // Python reads both back as the original document, and the
        // canonical form has its keys sorted at every level.
        let verdict = python(
            "import json,sys\n\
             doc, pretty, canon = sys.stdin.read().split('\\x00')\n\
             d = json.loads(doc)\n\
             assert json.loads(pretty) == d, 'pretty'\n\
             c = json.loads(canon)\n\
             assert c == d, 'canonical'\n\
             def sorted_keys(x):\n\
             \x20   if isinstance(x, dict):\n\
             \x20       return list(x) == sorted(x) and all(sorted_keys(v) for v in x.values())\n\
             \x20   if isinstance(x, list):\n\
             \x20       return all(sorted_keys(v) for v in x)\n\
             \x20   return True\n\
             assert sorted_keys(json.loads(canon, object_pairs_hook=lambda kv: dict(kv))), 'sorted'\n\
             print(len(canon))",
            &format!("{doc}\0{pretty}\0{canonical}"),
        );
        assert!(verdict.trim().parse::<usize>().unwrap() > 1000, "{name}");
    }
}

#[test]
fn jsonpath_queries_select_what_python_finds() {
    let s = Scratch::new();
    let rt = runtime(&s);
    let docs = documents();
    let meta: serde_json::Value = serde_json::from_str(&docs[0].1).unwrap();
    let cases = [
        // Every package's name, in order.
        ("$.packages[*].name", "[p['name'] for p in d['packages']]"),
        // The dependencies of the `polyload` package, by a filter expression.
        (
            "$.packages[?(@.name == 'polyload')].dependencies[*].name",
            "[x['name'] for p in d['packages'] if p['name'] == 'polyload' for x in p['dependencies']]",
        ),
        // Every dependency's name, through a wildcard and a descent.
        (
            "$.packages[*].dependencies[*].name",
            "[x['name'] for p in d['packages'] for x in p['dependencies']]",
        ),
        ("$.workspace_members", "[d['workspace_members']]"),
    ];
    for (path, expr) in cases {
        let got = rt
            .call(
                "csjson.select",
                &[Value::Json(meta.clone()), Value::from(path)],
            )
            .unwrap();
        let Value::Json(got) = got else {
            panic!("{got:?}")
        };
        let want = python(
            &format!("import json,sys\nd = json.load(sys.stdin)\nprint(json.dumps({expr}))"),
            &docs[0].1,
        );
        let want: serde_json::Value = serde_json::from_str(&want).unwrap();
        assert_eq!(got, want, "{path}");
        assert!(!got.as_array().unwrap().is_empty(), "{path}");
    }
    // A bad query is a .NET exception, reported as such.
    let e = rt
        .call("csjson.select", &[Value::Json(meta), Value::from("$.[[[")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("Newtonsoft.Json.JsonException"), "{e}");
}
