//! Runs the real `polyload` binary against the example bundles.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/bundles")
}

struct Cli {
    cache: PathBuf,
    _own: Option<tempfile::TempDir>,
}

/// The cache the tests share: the example bundles are built (and their
/// packages installed) once, by whichever test comes first.
fn shared_cache() -> PathBuf {
    static WARM: std::sync::Once = std::sync::Once::new();
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-cache");
    WARM.call_once(|| {
        let out = Command::new(env!("CARGO_BIN_EXE_polyload"))
            .arg("--cache-dir")
            .arg(&cache)
            .args(["call", examples().to_str().unwrap(), "hello.add", "1", "1"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "warming the cache: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    cache
}

impl Cli {
    fn new() -> Self {
        Cli {
            cache: shared_cache(),
            _own: None,
        }
    }

    /// A CLI with a cache of its own (for tests about building).
    fn fresh() -> Self {
        let own = tempfile::tempdir().unwrap();
        Cli {
            cache: own.path().to_path_buf(),
            _own: Some(own),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_polyload"))
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .trim_end()
            .to_string()
    }

    /// Runs a command that must fail; returns its error line (stderr minus
    /// build progress lines, which are indented), checking it is one line.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?} should fail with status 1"
        );
        assert!(out.stdout.is_empty());
        let stderr = String::from_utf8(out.stderr).unwrap();
        let errors: Vec<&str> = stderr.lines().filter(|l| !l.starts_with("   ")).collect();
        assert_eq!(errors.len(), 1, "one error line: {stderr}");
        format!("{}\n", errors[0])
    }
}

#[test]
fn call_parses_arguments_by_signature() {
    let cli = Cli::new();
    let ex = examples();
    let ex = ex.to_str().unwrap();
    assert_eq!(cli.ok(&["call", ex, "hello.add", "2", "40"]), "42");
    assert_eq!(cli.ok(&["call", ex, "hello.add", "--", "-2", "-40"]), "-42");
    assert_eq!(cli.ok(&["call", ex, "hello.greet", "CLI"]), "Hello, CLI!");
    assert_eq!(cli.ok(&["call", ex, "calc.sum3", "1", "2", "3"]), "6");
    // Every loader is compiled in.
    assert_eq!(
        cli.ok(&["call", ex, "pyslug.slugify", "Hello, Wörld!"]),
        "hello-world"
    );
    assert_eq!(
        cli.ok(&["call", ex, "jsmarkdown.render", "*hi*"]),
        "<p><em>hi</em></p>"
    );
    assert_eq!(
        cli.ok(&["call", ex, "luajson.decode", "[1, {\"a\": true}]"]),
        r#"[1,{"a":true}]"#
    );
    assert_eq!(
        cli.ok(&["call", ex, "textstats.word_count", "one two  three"]),
        "3"
    );
    assert_eq!(
        cli.ok(&["--json", "call", ex, "hello.add", "1", "2"]),
        r#"{"function":"hello.add","result":3}"#
    );
}

#[test]
fn at_path_passes_file_contents() {
    let cli = Cli::new();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("data.txt");
    std::fs::write(&f, "The quick brown fox jumps over the lazy dog").unwrap();
    let arg = format!("@{}", f.display());
    let ex = examples();
    assert_eq!(
        cli.ok(&["call", ex.to_str().unwrap(), "zlib.crc32", &arg]),
        "1095738169"
    );
    assert_eq!(
        cli.ok(&["call", ex.to_str().unwrap(), "hello.greet", &arg]),
        "Hello, The quick brown fox jumps over the lazy dog!"
    );
    assert_eq!(
        cli.ok(&["call", ex.to_str().unwrap(), "hello.greet", "@@home"]),
        "Hello, @home!"
    );
    let e = cli.fails(&["call", ex.to_str().unwrap(), "hello.add", &arg, "1"]);
    assert_eq!(
        e,
        "error: argument 1: `@file` works only for str, bytes and json parameters, not i64\n"
    );
}

#[test]
fn bad_arguments_are_one_clear_line() {
    let cli = Cli::new();
    let ex = examples();
    let ex = ex.to_str().unwrap();
    assert_eq!(
        cli.fails(&["call", ex, "hello.add", "1"]),
        "error: `hello.add` takes 2 argument(s) (fn(i64, i64) -> i64), got 1\n"
    );
    assert_eq!(
        cli.fails(&["call", ex, "hello.add", "1", "two"]),
        "error: argument 2: expected i64, got `two`\n"
    );
    assert_eq!(
        cli.fails(&["call", ex, "zlib.nothing"]),
        format!("error: no definition named `zlib.nothing` in {ex}\n")
    );
    let e = cli.fails(&["call", "/nonexistent/bundles", "a.b"]);
    assert_eq!(
        e,
        "error: /nonexistent/bundles: No such file or directory (os error 2)\n"
    );
}

#[test]
fn usage_errors_exit_with_2() {
    let cli = Cli::new();
    let out = cli.run(&["call"]);
    assert_eq!(out.status.code(), Some(2));
    let out = cli.run(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    for sub in ["list", "inspect", "call", "build", "watch", "ffi"] {
        let help = cli.ok(&[sub, "--help"]);
        assert!(help.contains("--json"), "{sub} --help mentions --json");
    }
}

#[test]
fn list_and_inspect() {
    let cli = Cli::new();
    let ex = examples();
    let listed = cli.ok(&["list", ex.to_str().unwrap()]);
    assert!(listed.contains("hello 0.1.0 (native, abi 1.0)"), "{listed}");
    assert!(
        listed.contains("  hello.add: fn(i64, i64) -> i64"),
        "{listed}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&cli.ok(&["--json", "list", ex.to_str().unwrap()])).unwrap();
    let hello = json
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == "hello")
        .unwrap();
    assert_eq!(hello["exports"]["greet"], "fn(str) -> str");

    let calc = ex.join("calc");
    let text = cli.ok(&["inspect", calc.to_str().unwrap()]);
    assert!(text.contains("bundle   calc 0.1.0"), "{text}");
    assert!(text.contains("depends  hello ^0.1"), "{text}");
    assert!(
        text.contains("  calc.sum3: fn(i64, i64, i64) -> i64"),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&cli.ok(&["--json", "inspect", calc.to_str().unwrap()])).unwrap();
    assert_eq!(json["generation"], 1);
    assert_eq!(json["definitions"][0]["name"], "calc.double_it");
}

#[test]
fn build_reports_artifacts_in_the_cache() {
    let cli = Cli::fresh();
    let ex = examples();
    let out = cli.ok(&["build", ex.join("hello").to_str().unwrap()]);
    assert!(out.starts_with("hello: "), "{out}");
    assert!(out.contains(&cli.cache.display().to_string()), "{out}");
    assert!(out.ends_with("libhello.so"), "{out}");
}

#[test]
fn malformed_manifest_error_names_file_line_and_field() {
    let cli = Cli::new();
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("b");
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(
        b.join("manifest.toml"),
        "id = \"b\"\nversion = \"0.1.0\"\nloader = \"native\"\nfile = \"x.so\"\nabi = \"1.x\"\n",
    )
    .unwrap();
    let e = cli.fails(&["list", dir.path().to_str().unwrap()]);
    assert_eq!(
        e,
        format!(
            "error: {}:5: abi: `1.x`: expected an ABI version of the form MAJOR.MINOR, e.g. \"1.0\"\n",
            b.join("manifest.toml").display()
        )
    );
}

#[test]
fn watch_reports_reloads_and_failures() {
    use std::io::{BufRead, BufReader};
    let cli = Cli::fresh();
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("w");
    std::fs::create_dir_all(b.join("src")).unwrap();
    std::fs::write(
        b.join("manifest.toml"),
        "id = \"w\"\nversion = \"0.1.0\"\nloader = \"native\"\nfile = \"libw.so\"\nabi = \"1.0\"\n[exports]\nf = \"fn() -> i64\"\n[build]\ncc = [\"src/w.c\"]\n",
    )
    .unwrap();
    let src = |k: i64| {
        format!("#include <polyload.h>\nstatic int64_t f(void) {{ return {k}; }}\nuint32_t polyload_abi_version(void) {{ return POLYLOAD_ABI_VERSION_PACKED; }}\nint32_t polyload_bundle_init(const PolyloadHost *h, PolyloadBundle *b) {{ POLYLOAD_DEFINE(h, b, \"f\", \"fn() -> i64\", f); return 0; }}\n")
    };
    std::fs::write(b.join("src/w.c"), src(1)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_polyload"))
        .arg("--cache-dir")
        .arg(&cli.cache)
        .args(["watch", "--max-events", "2"])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(
        first.starts_with("watching ") && first.ends_with("(1 bundles: w)"),
        "{first}"
    );
    std::fs::write(b.join("src/w.c"), src(2)).unwrap();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.contains("live (") || line.contains("failed");
        seen.push(line);
        if done {
            break;
        }
    }
    assert!(
        seen.iter()
            .any(|l| l.starts_with("w: generation 2 live (build ")),
        "{seen:?}"
    );
    std::fs::write(b.join("src/w.c"), "broken").unwrap();
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert!(
        rest.iter().any(|l| l.starts_with(
            "w: reload failed, previous version still live: building bundle `w` failed"
        )),
        "{rest:?}"
    );
    assert!(child.wait().unwrap().success());
}

#[test]
fn ffi_calls_c_functions_by_signature() {
    let cli = Cli::new();
    assert_eq!(
        cli.ok(&["ffi", "libm.so.6", "pow", "fn(f64, f64) -> f64", "2", "10"]),
        "1024"
    );
    assert_eq!(
        cli.ok(&["ffi", "libc.so.6", "strlen", "fn(cstr) -> u64", "hello"]),
        "5"
    );
    assert_eq!(
        cli.ok(&["ffi", "libc.so.6", "abs", "fn(i32) -> i32", "-7"]),
        "7"
    );
    assert_eq!(
        cli.ok(&[
            "--json",
            "ffi",
            "libm.so.6",
            "sqrt",
            "fn(f64) -> f64",
            "2.25"
        ]),
        r#"{"result":1.5}"#
    );
    let e = cli.fails(&["ffi", "libm.so.6", "pow", "fn(f64, f64 -> f64", "2", "10"]);
    assert!(e.starts_with("error: ") && e.contains("column"), "{e}");
    let e = cli.fails(&["ffi", "libnope.so.9", "f", "fn()"]);
    assert!(
        e.starts_with("error: ") && e.contains("libnope.so.9"),
        "{e}"
    );
    let e = cli.fails(&["ffi", "libm.so.6", "no_such_fn", "fn()"]);
    assert!(e.contains("no_such_fn"), "{e}");
}

#[test]
fn negative_numbers_are_arguments_and_json_still_counts_after_them() {
    let cli = Cli::new();
    let ex = examples();
    let ex = ex.to_str().unwrap();
    assert_eq!(cli.ok(&["call", ex, "hello.add", "-42", "2"]), "-40");
    assert_eq!(cli.ok(&["call", ex, "calc.sum3", "-1", "-2", "-3"]), "-6");
    assert_eq!(
        cli.ok(&["call", ex, "hello.add", "-42", "2", "--json"]),
        r#"{"function":"hello.add","result":-40}"#
    );
    assert_eq!(
        cli.ok(&["ffi", "libc.so.6", "labs", "fn(i64) -> i64", "-9000000000"]),
        "9000000000"
    );
    assert_eq!(
        cli.ok(&[
            "ffi",
            "libm.so.6",
            "fabs",
            "fn(f64) -> f64",
            "-2.5",
            "--json"
        ]),
        r#"{"result":2.5}"#
    );
}

#[test]
fn call_loads_only_the_named_bundle_and_its_dependencies() {
    let dir = tempfile::tempdir().unwrap();
    let ex = examples();
    for b in ["hello", "calc"] {
        copy_dir(&ex.join(b), &dir.path().join(b));
    }
    // A broken bundle and one whose loader needs a missing tool sit beside
    // them; neither is loaded to call calc.
    std::fs::create_dir_all(dir.path().join("broken")).unwrap();
    std::fs::write(dir.path().join("broken/manifest.toml"), "id = 3\n").unwrap();
    let cli = Cli::new();
    let d = dir.path().to_str().unwrap();
    assert_eq!(cli.ok(&["call", d, "calc.sum3", "1", "2", "3"]), "6");
    assert_eq!(cli.ok(&["call", d, "hello.add", "1", "2"]), "3");
    // The broken one is reported when it is what was asked for.
    let e = cli.fails(&["call", d, "broken.f"]);
    assert!(e.contains("broken/manifest.toml:1"), "{e}");
    let e = cli.fails(&["call", d, "nosuch.f"]);
    assert!(
        e.starts_with("error: no bundle `nosuch` in ") && e.contains("broken/manifest.toml"),
        "{e}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn inspect_json_has_its_documented_shape() {
    let cli = Cli::new();
    let hello = examples().join("hello");
    let json: serde_json::Value =
        serde_json::from_str(&cli.ok(&["--json", "inspect", hello.to_str().unwrap()])).unwrap();
    assert_eq!(json["id"], "hello");
    assert_eq!(json["loader"], "native");
    assert_eq!(
        json["build"],
        serde_json::json!({"cc": ["src/hello.c"], "libs": [], "cflags": [], "cxxflags": [], "std": "c++17"})
    );
    assert_eq!(
        json["definitions"][0],
        serde_json::json!({"name": "hello.add", "kind": "function", "signature": "fn(i64, i64) -> i64", "generation": 1})
    );
    let text = serde_json::to_string(&json).unwrap();
    assert!(!text.contains("Cc {") && !text.contains("Some("), "{text}");
}

#[test]
fn bench_times_a_call_by_its_signature() {
    let cli = Cli::new();
    let ex = examples();
    let ex = ex.to_str().unwrap();
    let out = cli.ok(&["bench", ex, "hello.add", "-1", "2", "--time", "0.3"]);
    assert!(
        out.starts_with("hello.add: ") && out.contains("typed handle"),
        "{out}"
    );
    let json: serde_json::Value = serde_json::from_str(&cli.ok(&[
        "--json",
        "bench",
        ex,
        "hello.greet",
        "you",
        "--time",
        "0.3",
    ]))
    .unwrap();
    assert_eq!(json["path"], "dynamic");
    let (min, median, max) = (
        json["min_ns"].as_f64().unwrap(),
        json["median_ns"].as_f64().unwrap(),
        json["max_ns"].as_f64().unwrap(),
    );
    assert!(0.0 < min && min <= median && median <= max, "{json}");
    let e = cli.fails(&["bench", ex, "hello.add", "1"]);
    assert!(e.contains("takes 2 argument(s)"), "{e}");
}

#[test]
fn wasm_bundles_are_called_like_any_other() {
    let cli = Cli::new();
    let ex = examples();
    let ex = ex.to_str().unwrap();
    let readme = format!("@{}", Path::new(ex).join("../../README.md").display());
    // zlib built to WebAssembly on demand agrees with the system libz.
    assert_eq!(
        cli.ok(&["call", ex, "wzlib.crc32", &readme]),
        cli.ok(&["call", ex, "zlib.crc32", &readme])
    );
    assert_eq!(cli.ok(&["call", ex, "wzlib.version"]), "1.3.1");
    let listed = cli.ok(&["list", ex]);
    assert!(listed.contains("wzlib"), "{listed}");
    // A module of the user's own, in WAT, with negative numbers on the
    // command line.
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("wadd");
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(
        b.join("manifest.toml"),
        "id = \"wadd\"\nversion = \"0.1.0\"\nloader = \"wasm\"\nfile = \"add.wat\"\nabi = \"1.0\"\n\
         [exports]\nadd = \"fn(i64, i64) -> i64\"\nhalf = \"fn(f64) -> f64\"\n",
    )
    .unwrap();
    std::fs::write(
        b.join("add.wat"),
        r#"(module
  (func (export "add") (param i64 i64) (result i64) (i64.add (local.get 0) (local.get 1)))
  (func (export "half") (param f64) (result f64) (f64.mul (local.get 0) (f64.const 0.5))))"#,
    )
    .unwrap();
    let d = dir.path().to_str().unwrap();
    assert_eq!(cli.ok(&["call", d, "wadd.add", "-40", "-2"]), "-42");
    assert_eq!(cli.ok(&["call", d, "wadd.half", "-3"]), "-1.5");
}

#[test]
fn dotnet_bundles_are_called_like_any_other() {
    let cli = Cli::new();
    let ex = examples();
    let ex = ex.to_str().unwrap();
    let listed = cli.ok(&["list", ex]);
    assert!(listed.contains("csjson"), "{listed}");
    assert_eq!(
        cli.ok(&[
            "call",
            ex,
            "csjson.select",
            r#"{"a": [{"n": -1}, {"n": 2}]}"#,
            "$.a[?(@.n < 0)].n"
        ]),
        "[-1]"
    );
    assert_eq!(
        cli.ok(&[
            "call",
            ex,
            "csjson.canonical",
            r#"{"b": 1, "a": {"d": 2, "c": 3}}"#
        ]),
        r#"{"a":{"c":3,"d":2},"b":1}"#
    );
    // A .NET exception is one error line naming its type.
    let e = cli.fails(&["call", ex, "csjson.select", "{}", "$.[[["]);
    assert!(
        e.contains("csjson.select") && e.contains("Newtonsoft.Json.JsonException"),
        "{e}"
    );
    // A C# bundle of the user's own, with negative numbers.
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("csadd");
    std::fs::create_dir_all(b.join("src")).unwrap();
    std::fs::write(
        b.join("manifest.toml"),
        "id = \"csadd\"\nversion = \"0.1.0\"\nloader = \"dotnet\"\nfile = \"Add.dll\"\nabi = \"1.0\"\n\
         [build]\ncsc = [\"src/Add.cs\"]\n[dotnet]\nclass = \"Add\"\n\
         [exports]\nadd = \"fn(i64, i64) -> i64\"\n",
    )
    .unwrap();
    std::fs::write(
        b.join("src/Add.cs"),
        "public static class Add { public static long add(long a, long b) { return a + b; } }",
    )
    .unwrap();
    let d = dir.path().to_str().unwrap();
    assert_eq!(cli.ok(&["call", d, "csadd.add", "-40", "-2"]), "-42");
}

#[test]
fn rimport_writes_a_bundle_that_calls_at_once() {
    let cli = Cli::fresh();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sv");
    let shown = cli.ok(&[
        "rimport",
        "semver@1",
        "Version::parse",
        "Version::major",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        shown.contains("semver.Version_parse: fn(str) -> handle"),
        "{shown}"
    );
    assert!(
        shown.contains("semver.Version_major: fn(handle<semver::Version>) -> u64"),
        "{shown}"
    );
    assert!(shown.starts_with("bundle   semver 1."), "{shown}");
    let manifest = std::fs::read_to_string(out.join("manifest.toml")).unwrap();
    assert!(manifest.contains("crate = \"semver\""), "{manifest}");
    // `call` works on it at once (from the cache); a crate error is one line.
    let h = cli.ok(&[
        "call",
        out.to_str().unwrap(),
        "semver.Version_parse",
        "1.2.3",
    ]);
    assert!(h.parse::<u64>().is_ok(), "{h}");
    let e = cli.fails(&["call", out.to_str().unwrap(), "semver.Version_parse", "x"]);
    assert!(e.contains("unexpected character 'x'"), "{e}");
    // A handle from another process is not live there.
    let e = cli.fails(&["call", out.to_str().unwrap(), "semver.Version_major", &h]);
    assert!(e.contains("is not live"), "{e}");
    // An item the crate does not have is named.
    let e = cli.fails(&[
        "rimport",
        "semver@1",
        "Version::nope",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        e.contains("`semver::Version` has no public method or field `nope`"),
        "{e}"
    );
}
