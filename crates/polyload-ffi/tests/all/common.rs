//! Builds the C test libraries once per test binary.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

struct Built {
    _dir: tempfile::TempDir,
    libs: HashMap<String, PathBuf>,
}

static BUILT: OnceLock<Mutex<Built>> = OnceLock::new();

/// Compiles `tests/c/{name}.c` into a shared library (once) and returns its path.
pub fn c_library(name: &str) -> PathBuf {
    let built = BUILT.get_or_init(|| {
        Mutex::new(Built {
            _dir: tempfile::tempdir().expect("tempdir"),
            libs: HashMap::new(),
        })
    });
    let mut b = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = b.libs.get(name) {
        return p.clone();
    }
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/c/{name}.c"));
    let out = b._dir.path().join(format!("lib{name}.so"));
    let status = std::process::Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-O2", "-shared", "-fPIC", "-Wall", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("run cc");
    assert!(status.success(), "cc failed for {}", src.display());
    b.libs.insert(name.to_string(), out.clone());
    out
}

/// Loads a compiled test library with libloading and resolves `symbol`.
pub fn raw_symbol(lib: &'static libloading::Library, symbol: &str) -> *const std::ffi::c_void {
    // SAFETY: the symbol is a function in our own test library; we only take
    // its address.
    unsafe {
        let s: libloading::Symbol<'_, *const std::ffi::c_void> =
            lib.get(symbol.as_bytes()).expect("symbol");
        *s
    }
}

/// The test library `name`, loaded once and kept for the whole test run.
pub fn raw_library(name: &str) -> &'static libloading::Library {
    static LIBS: OnceLock<Mutex<HashMap<String, &'static libloading::Library>>> = OnceLock::new();
    let mut m = LIBS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(l) = m.get(name) {
        return l;
    }
    let path = c_library(name);
    // SAFETY: our own test library has no initialisers.
    let lib: &'static _ = Box::leak(Box::new(
        unsafe { libloading::Library::new(&path) }.expect("load"),
    ));
    m.insert(name.to_string(), lib);
    lib
}
