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

use polyload_ffi::{Call, CallBuilder, FfiType, Signature, Value};

/// Which way a test call reaches C.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// The default: a compiled marshaller for struct shapes (x86-64), else
    /// a call stub when the shape has one, else libffi.
    Jit,
    /// The generic call stub (marshallers off), else libffi.
    Stub,
    /// Always libffi.
    Libffi,
}

/// Every [`Path`].
pub const PATHS: [Path; 3] = [Path::Jit, Path::Stub, Path::Libffi];

/// A call of `symbol` in the compiled C library `lib`, through a call stub
/// when possible or forced through libffi.
pub fn c_call(lib: &str, symbol: &str, sig: &str, force_libffi: bool) -> Call {
    let path = if force_libffi {
        Path::Libffi
    } else {
        Path::Jit
    };
    c_call_via(lib, symbol, sig, path)
}

/// A call of `symbol` in the compiled C library `lib`, by `path`.
pub fn c_call_via(lib: &str, symbol: &str, sig: &str, path: Path) -> Call {
    let sig: Signature = sig.parse().unwrap_or_else(|e| panic!("{e}"));
    let file = c_library(lib);
    // SAFETY: the test C libraries declare exactly these signatures.
    unsafe {
        CallBuilder::new(file.to_str().unwrap(), symbol)
            .signature(&sig)
            .force_libffi(path == Path::Libffi)
            .jit(path == Path::Jit)
            .build()
    }
    .unwrap_or_else(|e| panic!("{symbol}: {e}"))
}

/// A value of the scalar type `ty` made from a number (truncating like C).
pub fn num(ty: &FfiType, x: f64) -> Value {
    match ty {
        FfiType::Bool => Value::Bool(x != 0.0),
        FfiType::I8 => Value::I8(x as i64 as i8),
        FfiType::U8 => Value::U8(x as i64 as u8),
        FfiType::I16 => Value::I16(x as i64 as i16),
        FfiType::U16 => Value::U16(x as i64 as u16),
        FfiType::I32 => Value::I32(x as i64 as i32),
        FfiType::U32 => Value::U32(x as i64 as u32),
        FfiType::I64 => Value::I64(x as i64),
        FfiType::U64 => Value::U64(x as i64 as u64),
        FfiType::F32 => Value::F32(x as f32),
        FfiType::F64 => Value::F64(x),
        FfiType::Pointer => Value::Ptr(x as usize),
        t => panic!("not a number type: {t}"),
    }
}

/// A numeric value as `f64` (as C's `(double)x`).
pub fn as_f64(v: &Value) -> f64 {
    match *v {
        Value::Bool(b) => f64::from(u8::from(b)),
        Value::I8(x) => x.into(),
        Value::U8(x) => x.into(),
        Value::I16(x) => x.into(),
        Value::U16(x) => x.into(),
        Value::I32(x) => x.into(),
        Value::U32(x) => x.into(),
        Value::I64(x) => x as f64,
        Value::U64(x) => x as f64,
        Value::F32(x) => x.into(),
        Value::F64(x) => x,
        Value::Ptr(x) => x as f64,
        ref v => panic!("not numeric: {v:?}"),
    }
}
