//! Rust guests built with polyload-guest: calls, panics, errors, build metadata.

use crate::support::{examples, Scratch};
use polyload::{Error, Runtime, Value};
use polyload_abi::PolyloadStr;
use sha2::Digest;
use std::path::Path;

/// A runtime whose cache persists across test runs, so cargo-built bundles
/// are compiled once.
fn shared_runtime() -> Runtime {
    Runtime::builder()
        .cache_dir(Path::new(env!("CARGO_TARGET_TMPDIR")).join("guest-cache"))
        .build()
        .unwrap()
}

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/guest-panic")
}

#[test]
fn textstats_computes_real_results() {
    let rt = shared_runtime();
    rt.load_bundle(examples().join("textstats")).unwrap();
    let text = "the cat and the hat and the bat\n\tthe end";
    assert_eq!(
        rt.call("textstats.word_count", &[Value::from(text)])
            .unwrap(),
        Value::U64(10)
    );
    assert_eq!(
        rt.call("textstats.word_count", &[Value::from("")]).unwrap(),
        Value::U64(0)
    );
    assert_eq!(
        rt.call("textstats.top_words", &[Value::from(text), Value::U32(3)])
            .unwrap(),
        Value::from(r#"[["the",4],["and",2],["bat",1]]"#)
    );
    let data = b"polyload".to_vec();
    let want: String = sha2::Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        rt.call("textstats.sha256", &[Value::Bytes(data)]).unwrap(),
        Value::Str(want)
    );
    let wc = rt
        .function::<extern "C" fn(PolyloadStr) -> u64>("textstats.word_count")
        .unwrap();
    assert_eq!(wc.call((PolyloadStr::from_str("one two"),)).unwrap(), 2);
}

/// Regression: a thread that ran a Rust guest's thread-local code and exits
/// after the guest was unloaded used to die with SIGSEGV (glibc ran std's
/// pthread-key destructor, in the unmapped library). Rust guests now stay
/// mapped after their last version is retired.
#[test]
fn a_thread_that_used_a_rust_guests_thread_locals_exits_after_its_unload() {
    let rt = shared_runtime();
    rt.load_bundle(fixture()).unwrap();
    let f = rt
        .function::<extern "C" fn() -> u64>("guestpanic.thread_locals")
        .unwrap();
    let (called, wait) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
    let t = std::thread::Builder::new()
        .name("tls-user".into())
        .spawn(move || {
            let r = f.call(()).unwrap() + f.call(()).unwrap();
            called.0.send(()).unwrap();
            wait.1.recv().unwrap();
            // The handle now answers Stale; the thread then exits, running
            // the destructors the guest registered.
            assert!(matches!(f.call(()), Err(Error::Stale { .. })));
            r
        })
        .unwrap();
    called.1.recv().unwrap();
    rt.unload("guestpanic").unwrap();
    assert!(rt.collect_garbage(std::time::Duration::from_secs(10)) == 0);
    wait.0.send(()).unwrap();
    assert!(t.join().unwrap() > 0);
}

#[test]
fn a_panic_in_a_rust_guest_is_an_error_value_and_the_host_keeps_running() {
    let rt = shared_runtime();
    rt.load_bundle(fixture()).unwrap();
    let e = rt.call("guestpanic.boom", &[Value::I64(-3)]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "`guestpanic.boom` failed: panic in guestpanic.boom: negative input -3"
    );
    assert_eq!(
        rt.call("guestpanic.boom", &[Value::I64(21)]).unwrap(),
        Value::I64(42)
    );
    let boom = rt
        .function::<extern "C" fn(i64) -> i64>("guestpanic.boom")
        .unwrap();
    assert!(
        matches!(boom.call((-1,)), Err(Error::Guest { ref message, .. }) if message == "panic in guestpanic.boom: negative input -1")
    );
    assert_eq!(boom.call((5,)).unwrap(), 10);

    let e = rt
        .call("guestpanic.fallible", &[Value::I64(3)])
        .unwrap_err();
    assert_eq!(e.to_string(), "`guestpanic.fallible` failed: odd input");
    assert_eq!(
        rt.call("guestpanic.fallible", &[Value::I64(8)]).unwrap(),
        Value::I64(4)
    );
    assert_eq!(
        rt.call("guestpanic.echo", &[Value::from("ünïcødé")])
            .unwrap(),
        Value::from("ünïcødé")
    );
}

#[test]
fn mismatched_build_metadata_is_refused_naming_both_sides() {
    let s = Scratch::new();
    let src = r#"#include <polyload.h>
static int64_t f(int64_t x) { return x; }
PolyloadStr polyload_build_info(void) { return polyload_str("rustc=1.0.0\ntarget=x86_64-unknown-linux-gnu\nprofile=release\nabi=1.0\n"); }
uint32_t polyload_abi_version(void) { return POLYLOAD_ABI_VERSION_PACKED; }
int32_t polyload_bundle_init(const PolyloadHost *h, PolyloadBundle *b) { POLYLOAD_DEFINE(h, b, "f", "fn(i64) -> i64", f); return 0; }
"#;
    s.c_bundle("oldrust", "[exports]\nf = \"fn(i64) -> i64\"\n", src);
    let e = s.runtime().load_dir(s.bundles()).unwrap_err();
    let Error::BuildMetadata {
        field,
        bundle_value,
        host_value,
        ..
    } = &e
    else {
        panic!("{e}")
    };
    assert_eq!((field.as_str(), bundle_value.as_str()), ("rustc", "1.0.0"));
    assert_eq!(
        e.to_string(),
        format!("bundle `oldrust` was built with rustc `1.0.0`, but the host expects `{host_value}`; rebuild the bundle")
    );
}
