//! Every bad input gives its exact error, and loses nothing already loaded.

use crate::support::{c_source, cc_shared, Scratch};
use polyload::{AbiVersion, BundleSource, Error, Manifest, Value};

const ADD: (&str, &str, &str) = ("inc", "fn(i64) -> i64", "x + 1");
const EXPORTS: &str = "[exports]\ninc = \"fn(i64) -> i64\"\n";

fn load_err(s: &Scratch) -> Error {
    s.runtime().load_dir(s.bundles()).unwrap_err()
}

#[test]
fn malformed_toml_names_file_and_line() {
    let s = Scratch::new();
    let dir = s.c_bundle(
        "bad",
        EXPORTS,
        &c_source("POLYLOAD_ABI_VERSION_PACKED", &[ADD]),
    );
    std::fs::write(
        dir.join("manifest.toml"),
        "id = \"bad\"\nversion = \"0.1.0\nloader = \"native\"\n",
    )
    .unwrap();
    let e = load_err(&s);
    let Error::Manifest { path, line, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!(path, &dir.join("manifest.toml"));
    assert_eq!(*line, 2, "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("{}:2:", dir.join("manifest.toml").display())),
        "{e}"
    );
}

#[test]
fn unknown_key_is_an_error() {
    let s = Scratch::new();
    s.c_bundle(
        "k",
        &format!("colour = \"red\"\n{EXPORTS}"),
        &c_source("POLYLOAD_ABI_VERSION_PACKED", &[ADD]),
    );
    let e = load_err(&s);
    let Error::Manifest {
        line,
        field,
        message,
        ..
    } = &e
    else {
        panic!("{e}")
    };
    assert_eq!((*line, field.as_str()), (6, "colour"));
    assert!(message.contains("unknown field `colour`"), "{message}");
}

#[test]
fn wrong_abi_major_names_both_versions() {
    let s = Scratch::new();
    s.c_bundle("major", EXPORTS, &c_source("(2u << 16) | 0u", &[ADD]));
    let e = load_err(&s);
    let Error::AbiMismatch {
        bundle,
        required,
        provided,
        ..
    } = &e
    else {
        panic!("{e}")
    };
    assert_eq!(bundle, "major");
    assert_eq!(*required, AbiVersion::new(2, 0));
    assert_eq!(*provided, AbiVersion::new(1, 1));
    let msg = e.to_string();
    assert!(
        msg.contains("needs polyload ABI 2.0, but this host provides ABI 1.1"),
        "{msg}"
    );
}

#[test]
fn higher_required_minor_than_host_is_refused() {
    // The host provides 1.1; a bundle built against 1.2 needs a newer host.
    let s = Scratch::new();
    s.c_bundle("minor", EXPORTS, &c_source("(1u << 16) | 2u", &[ADD]));
    let e = load_err(&s);
    assert!(
        matches!(e, Error::AbiMismatch { required, .. } if required == AbiVersion::new(1, 2)),
        "{e}"
    );
    // Same through the manifest's `abi` field.
    let s = Scratch::new();
    s.c_bundle(
        "minor2",
        EXPORTS,
        &c_source("POLYLOAD_ABI_VERSION_PACKED", &[ADD]),
    );
    let m = s.bundles().join("minor2/manifest.toml");
    std::fs::write(
        &m,
        std::fs::read_to_string(&m)
            .unwrap()
            .replace("abi = \"1.0\"", "abi = \"1.3\""),
    )
    .unwrap();
    let e = load_err(&s);
    assert!(
        e.to_string()
            .contains("needs polyload ABI 1.3, but this host provides ABI 1.1"),
        "{e}"
    );
}

#[test]
fn missing_init_symbol_names_symbol_and_library() {
    let s = Scratch::new();
    let src = "#include <polyload.h>\nuint32_t polyload_abi_version(void) { return POLYLOAD_ABI_VERSION_PACKED; }\n";
    let dir = s.c_bundle("noinit", EXPORTS, src);
    let rt = s.runtime();
    let e = rt.load_dir(s.bundles()).unwrap_err();
    let Error::MissingSymbol { symbol, library } = &e else {
        panic!("{e}")
    };
    assert_eq!(symbol, "polyload_bundle_init");
    assert!(library.ends_with("libnoinit.so"), "{}", library.display());
    assert!(
        e.to_string()
            .starts_with("symbol `polyload_bundle_init` not found in "),
        "{e}"
    );
    let _ = dir;
}

#[test]
fn export_declared_but_not_defined() {
    let s = Scratch::new();
    s.c_bundle(
        "decl",
        &format!("{EXPORTS}dec = \"fn(i64) -> i64\"\n"),
        &c_source("POLYLOAD_ABI_VERSION_PACKED", &[ADD]),
    );
    let e = load_err(&s);
    let Error::Exports {
        bundle,
        manifest,
        problem,
    } = &e
    else {
        panic!("{e}")
    };
    assert_eq!(bundle, "decl");
    assert!(manifest.ends_with("decl/manifest.toml"), "{e}");
    assert_eq!(
        **problem,
        polyload::ExportProblem::Undefined {
            name: "dec".into(),
            line: 8
        }
    );
    assert!(
        e.to_string().starts_with(
            "bundle `decl`: export `dec` is declared (line 8) but the bundle does not define it ("
        ),
        "{e}"
    );
}

#[test]
fn export_defined_but_not_declared() {
    let s = Scratch::new();
    s.c_bundle(
        "extra",
        EXPORTS,
        &c_source(
            "POLYLOAD_ABI_VERSION_PACKED",
            &[ADD, ("dec", "fn(i64) -> i64", "x - 1")],
        ),
    );
    let msg = load_err(&s).to_string();
    assert!(
        msg.starts_with(
            "bundle `extra`: the bundle defines `dec`, which [exports] does not declare ("
        ),
        "{msg}"
    );
}

#[test]
fn signature_mismatch_shows_both() {
    let s = Scratch::new();
    s.c_bundle(
        "sig",
        "[exports]\ninc = \"fn(i32) -> i32\"\n",
        &c_source("POLYLOAD_ABI_VERSION_PACKED", &[ADD]),
    );
    let msg = load_err(&s).to_string();
    assert!(
        msg.contains("export `inc` is declared `fn(i32) -> i32` (line 7), but the bundle defines `fn(i64) -> i64`"),
        "{msg}"
    );
}

fn prebuilt(s: &Scratch, id: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = s.bundles().join(id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("manifest.toml"),
        format!("id = \"{id}\"\nversion = \"0.1.0\"\nloader = \"native\"\nfile = \"lib{id}.so\"\nabi = \"1.0\"\n{EXPORTS}"),
    )
    .unwrap();
    std::fs::write(dir.join(format!("lib{id}.so")), bytes).unwrap();
    dir
}

#[test]
fn garbage_and_truncated_libraries() {
    let s = Scratch::new();
    prebuilt(
        &s,
        "garbage",
        b"this is not an ELF file at all, just text\n",
    );
    let e = load_err(&s);
    let Error::LibraryLoad { path, message } = &e else {
        panic!("{e}")
    };
    assert!(path.ends_with("garbage/libgarbage.so"));
    assert!(
        !message.contains("shadow"),
        "the message names the original file, not the shadow copy: {message}"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "cannot load library {}: not a shared library (Unknown file magic)",
            path.display()
        )
    );

    // A real library cut in half.
    let s = Scratch::new();
    let tmp = s.dir.path().join("whole.so");
    cc_shared(&c_source("POLYLOAD_ABI_VERSION_PACKED", &[ADD]), &tmp);
    let whole = std::fs::read(&tmp).unwrap();
    prebuilt(&s, "cut", &whole[..whole.len() / 3]);
    let e = load_err(&s);
    assert!(matches!(e, Error::LibraryLoad { .. }), "{e}");
    assert!(e.to_string().starts_with("cannot load library "), "{e}");
    assert!(
        e.to_string()
            .contains("libcut.so: corrupt or truncated ELF file ("),
        "{e}"
    );
}

#[test]
fn nonexistent_paths() {
    let s = Scratch::new();
    let e = s.runtime().load_dir(s.dir.path().join("nope")).unwrap_err();
    assert!(
        matches!(&e, Error::Io { path, .. } if path.ends_with("nope")),
        "{e}"
    );

    // A prebuilt bundle whose artifact is missing.
    let dir = prebuilt(&s, "gone", b"");
    std::fs::remove_file(dir.join("libgone.so")).unwrap();
    let e = load_err(&s);
    assert!(
        matches!(&e, Error::Io { path, .. } if path.ends_with("gone/libgone.so")),
        "{e}"
    );
    assert!(e.to_string().contains("not found"), "{e}");
}

#[test]
fn dependency_cycle_names_the_cycle() {
    let s = Scratch::new();
    let src = c_source("POLYLOAD_ABI_VERSION_PACKED", &[ADD]);
    let dep = |on: &str| format!("{EXPORTS}[[dependency]]\nid = \"{on}\"\nversion = \"*\"\n");
    s.c_bundle("a", &dep("b"), &src);
    s.c_bundle("b", &dep("c"), &src);
    s.c_bundle("c", &dep("a"), &src);
    let e = load_err(&s);
    assert_eq!(e.to_string(), "dependency cycle: a -> b -> c -> a");
}

#[test]
fn missing_dependency_is_named() {
    let s = Scratch::new();
    s.c_bundle(
        "lonely",
        &format!("{EXPORTS}[[dependency]]\nid = \"ghost\"\nversion = \"^1\"\n"),
        &c_source("POLYLOAD_ABI_VERSION_PACKED", &[ADD]),
    );
    let e = load_err(&s);
    assert_eq!(
        e.to_string(),
        "bundle `lonely` depends on `ghost` ^1, which is not loaded or present"
    );
}

#[test]
fn duplicate_definition_names_both_bundles() {
    let s = Scratch::new();
    let src = c_source("POLYLOAD_ABI_VERSION_PACKED", &[ADD]);
    let first = s.c_bundle("dup", EXPORTS, &src);
    let rt = s.runtime();
    rt.load_dir(&first).unwrap();
    // Another directory with the same bundle id.
    let other = s.dir.path().join("elsewhere");
    std::fs::create_dir_all(&other).unwrap();
    let copy = other.join("dup");
    std::fs::create_dir_all(copy.join("src")).unwrap();
    std::fs::copy(first.join("manifest.toml"), copy.join("manifest.toml")).unwrap();
    std::fs::copy(first.join("src/dup.c"), copy.join("src/dup.c")).unwrap();
    let e = rt.load_dir(&copy).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "duplicate definition `dup.inc`: bundle `dup` is loaded from {} and again from {}",
            first.display(),
            copy.display()
        )
    );
    // The first one still serves.
    assert_eq!(rt.call("dup.inc", &[Value::I64(1)]).unwrap(), Value::I64(2));

    // A bundle defining the same name twice during init.
    let s = Scratch::new();
    let src = "#include <polyload.h>\nstatic int64_t f(int64_t x) { return x; }\nuint32_t polyload_abi_version(void) { return POLYLOAD_ABI_VERSION_PACKED; }\nint32_t polyload_bundle_init(const PolyloadHost *h, PolyloadBundle *b) {\n POLYLOAD_DEFINE(h, b, \"inc\", \"fn(i64) -> i64\", f);\n POLYLOAD_DEFINE(h, b, \"inc\", \"fn(i64) -> i64\", f);\n return 0;\n}\n";
    s.c_bundle("twice", EXPORTS, src);
    let e = load_err(&s);
    assert_eq!(
        e.to_string(),
        "bundle `twice` failed to initialise (status -3): duplicate definition `twice.inc`: bundle `twice` defined it twice"
    );
}

#[test]
fn file_escaping_the_bundle_dir_is_rejected() {
    for file in ["../evil.so", "/usr/lib/x86_64-linux-gnu/libz.so.1"] {
        let text = format!("id = \"esc\"\nversion = \"0.1.0\"\nloader = \"native\"\nfile = \"{file}\"\nabi = \"1.0\"\n{EXPORTS}");
        let e = Manifest::parse(&text, std::path::Path::new("b/manifest.toml")).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("b/manifest.toml:4: file: `{file}` must be a relative path inside the bundle directory")
        );
    }
}

#[test]
fn init_failure_reports_the_bundle_message() {
    let s = Scratch::new();
    let src = "#include <polyload.h>\nuint32_t polyload_abi_version(void) { return POLYLOAD_ABI_VERSION_PACKED; }\nint32_t polyload_bundle_init(const PolyloadHost *h, PolyloadBundle *b) {\n (void)b; h->set_error(polyload_str(\"config file missing\"));\n return POLYLOAD_ERR;\n}\n";
    s.c_bundle("failing", EXPORTS, src);
    assert_eq!(
        load_err(&s).to_string(),
        "bundle `failing` failed to initialise (status -1): config file missing"
    );
}

#[test]
fn unknown_loader_says_how_to_enable_it() {
    let text =
        "id = \"l\"\nversion = \"0.1.0\"\nloader = \"lua\"\nfile = \"main.lua\"\nabi = \"1.0\"\n";
    let m = Manifest::parse(text, std::path::Path::new("l/manifest.toml")).unwrap();
    let s = Scratch::new();
    let e = s
        .runtime()
        .load_manifest(m.clone(), BundleSource::Code(String::new()))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "bundle `l`: no loader `lua` is registered (available: native)"
    );
    // The hint comes from whoever registers loaders (the CLI names its
    // cargo feature), not from the core.
    let rt = polyload::Runtime::builder()
        .cache_dir(s.dir.path().join("cache"))
        .loader_hint("lua", "register polyload_lua::LuaLoader")
        .build()
        .unwrap();
    let e = rt
        .load_manifest(m, BundleSource::Code(String::new()))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "bundle `l`: no loader `lua` is registered (available: native); register polyload_lua::LuaLoader"
    );
}
