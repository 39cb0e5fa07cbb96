//! WASI only as given, for a guest written in C and built on demand
//! (`[build] wasm-cc`, Debian's clang and wasi-libc): preopened
//! directories read-only and read-write, nothing outside them, the
//! environment and arguments listed and nothing inherited, and malloc
//! failing at `max_memory`.

use polyload::{Error, Runtime, Value};
use polyload_outside::Scratch;
use polyload_wasm::WasmLoader;
use std::path::PathBuf;

const MANIFEST: &str = r#"id = "files"
version = "0.1.0"
loader = "wasm"
file = "files.wasm"
abi = "1.0"

[exports]
read_file = "fn(str) -> str"
write_file = "fn(str, str) -> i32"
get_env = "fn(str) -> str"
arg_count = "fn() -> i32"
hog = "fn() -> str"

[wasm]
wasi = true
max_memory = "8 MiB"
args = ["--fast"]
env = { GREETING = "hej" }
allowed_paths = { "ro:data" = "/data", "scratch" = "/scratch" }

[build]
wasm-cc = ["src/files.c"]
"#;

fn bundle(s: &Scratch) -> PathBuf {
    let dir = s.bundles().join("files");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::create_dir_all(dir.join("scratch")).unwrap();
    std::fs::write(dir.join("manifest.toml"), MANIFEST).unwrap();
    std::fs::write(dir.join("src/files.c"), include_str!("guests/files.c")).unwrap();
    std::fs::write(dir.join("data/hello.txt"), "hello from the host").unwrap();
    std::fs::write(dir.join("secret.txt"), "not for guests").unwrap();
    dir
}

fn runtime(s: &Scratch) -> Runtime {
    s.builder().loader(WasmLoader::new()).build().unwrap()
}

fn message(e: Error) -> String {
    match e {
        Error::Guest { message, .. } => message,
        other => panic!("expected a guest error, got {other}"),
    }
}

#[test]
fn a_guest_gets_the_capabilities_listed_and_nothing_else() {
    let s = Scratch::new();
    let dir = bundle(&s);
    let rt = runtime(&s);
    rt.load_bundle(&dir).unwrap();
    let read = |p: &str| rt.call("files.read_file", &[Value::from(p)]);
    let write = |p: &str, t: &str| {
        rt.call("files.write_file", &[Value::from(p), Value::from(t)])
            .unwrap()
    };

    assert_eq!(
        read("/data/hello.txt").unwrap(),
        Value::from("hello from the host")
    );
    // Outside every preopened directory: no such file, as far as the guest knows.
    for outside in [
        "/etc/passwd",
        "/data/../secret.txt",
        "/secret.txt",
        "../secret.txt",
    ] {
        let m = message(read(outside).unwrap_err());
        assert!(m.starts_with(&format!("cannot open {outside}: ")), "{m}");
    }
    // Read-only stays read-only; the read-write directory is writable.
    assert_ne!(write("/data/new.txt", "x"), Value::I32(0));
    assert!(!dir.join("data/new.txt").exists());
    assert_eq!(
        write("/scratch/out.txt", "written by a guest"),
        Value::I32(0)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("scratch/out.txt")).unwrap(),
        "written by a guest"
    );
    assert_eq!(
        read("/scratch/out.txt").unwrap(),
        Value::from("written by a guest")
    );

    // The environment listed, nothing inherited; argv[0] is the bundle id.
    assert_eq!(
        rt.call("files.get_env", &[Value::from("GREETING")])
            .unwrap(),
        Value::from("hej")
    );
    assert!(std::env::var("PATH").is_ok());
    assert_eq!(
        message(
            rt.call("files.get_env", &[Value::from("PATH")])
                .unwrap_err()
        ),
        "not set"
    );
    assert_eq!(rt.call("files.arg_count", &[]).unwrap(), Value::I32(2));
}

#[test]
fn malloc_fails_inside_the_guest_at_max_memory() {
    let s = Scratch::new();
    let rt = runtime(&s);
    rt.load_bundle(bundle(&s)).unwrap();
    let m = message(rt.call("files.hog", &[]).unwrap_err());
    let mib: u32 = m
        .strip_prefix("malloc failed after ")
        .and_then(|r| r.strip_suffix(" MiB"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{m}"));
    assert!((5..8).contains(&mib), "{m}");
    // The guest reported the failure itself: its instance is kept and works.
    assert_eq!(rt.call("files.arg_count", &[]).unwrap(), Value::I32(2));
}

#[test]
fn the_build_is_cached_by_its_inputs() {
    let s = Scratch::new();
    let dir = bundle(&s);
    let mut events = Vec::new();
    let m = polyload::Manifest::from_dir(&dir).unwrap();
    polyload::builder::ensure_artifact(&m, &s.dir.path().join("cache"), &mut |e| events.push(e))
        .unwrap();
    polyload::builder::ensure_artifact(&m, &s.dir.path().join("cache"), &mut |e| events.push(e))
        .unwrap();
    assert!(
        matches!(events.first(), Some(polyload::builder::BuildEvent::Started { command, .. }) if command.contains("--target=wasm32-wasi")),
        "{events:?}"
    );
    assert!(
        matches!(
            events.last(),
            Some(polyload::builder::BuildEvent::Fresh { .. })
        ),
        "{events:?}"
    );
    // A changed source builds again.
    std::fs::write(
        dir.join("src/files.c"),
        format!("{}\n/* changed */\n", include_str!("guests/files.c")),
    )
    .unwrap();
    let m = polyload::Manifest::from_dir(&dir).unwrap();
    let mut again = Vec::new();
    polyload::builder::ensure_artifact(&m, &s.dir.path().join("cache"), &mut |e| again.push(e))
        .unwrap();
    assert!(
        matches!(
            again.first(),
            Some(polyload::builder::BuildEvent::Started { .. })
        ),
        "{again:?}"
    );
}
