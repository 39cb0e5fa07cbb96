//! Build on demand: cached by a hash of the inputs.

use crate::support::{c_source, Scratch};
use polyload::builder::BuildEvent;
use polyload::{Manifest, Runtime, Value};
use std::sync::{Arc, Mutex};

fn recording(s: &Scratch) -> (Runtime, Arc<Mutex<Vec<BuildEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let rt = Runtime::builder()
        .cache_dir(s.dir.path().join("cache"))
        .on_build(move |e| sink.lock().unwrap().push(e))
        .build()
        .unwrap();
    (rt, events)
}

#[test]
fn builds_once_then_uses_the_cache_and_rebuilds_on_change() {
    let s = Scratch::new();
    let dir = s.c_bundle(
        "cached",
        "[exports]\nf = \"fn(i64) -> i64\"\n",
        &c_source(
            "POLYLOAD_ABI_VERSION_PACKED",
            &[("f", "fn(i64) -> i64", "x * 10")],
        ),
    );
    let m = Manifest::from_dir(&dir).unwrap();
    let (rt, events) = recording(&s);
    let first = rt.build(&m).unwrap();
    assert!(
        first.path.starts_with(s.dir.path().join("cache/cached")),
        "{}",
        first.path.display()
    );
    assert!(events
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, BuildEvent::Finished { .. })));

    events.lock().unwrap().clear();
    let again = rt.build(&m).unwrap();
    assert_eq!(again.path, first.path);
    assert!(matches!(
        events.lock().unwrap().as_slice(),
        [BuildEvent::Fresh { .. }]
    ));

    // Touching a header in the bundle changes the hash.
    std::fs::write(dir.join("src/extra.h"), "#define EXTRA 1\n").unwrap();
    let changed = rt.build(&m).unwrap();
    assert_ne!(changed.path, first.path);

    // Editing the source changes what loads.
    std::fs::write(
        dir.join("src/cached.c"),
        c_source(
            "POLYLOAD_ABI_VERSION_PACKED",
            &[("f", "fn(i64) -> i64", "x * 100")],
        ),
    )
    .unwrap();
    rt.load_dir(&dir).unwrap();
    assert_eq!(
        rt.call("cached.f", &[Value::I64(2)]).unwrap(),
        Value::I64(200)
    );
}

#[test]
fn a_compile_error_is_reported_with_the_compiler_output() {
    let s = Scratch::new();
    s.c_bundle(
        "broken",
        "[exports]\nf = \"fn(i64) -> i64\"\n",
        "this is not C;\n",
    );
    let (rt, _) = recording(&s);
    let e = rt.load_dir(s.bundles()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("building bundle `broken` failed: `cc "),
        "{msg}"
    );
    assert!(msg.ends_with("exited with status 1"), "one line: {msg}");
    let polyload::Error::Build { output, .. } = &e else {
        panic!("{e}")
    };
    assert!(
        output.contains("broken.c:1"),
        "compiler output included: {output}"
    );
}
