//! Rust closures called from C through `Callback`.

use crate::common::{raw_library, raw_symbol};
use polyload_ffi::{
    alloc, set_callback_error_hook, take_callback_error, CallBuilder, Callback, Signature, Value,
};
use std::sync::atomic::{AtomicUsize, Ordering};

fn sig(s: &str) -> Signature {
    s.parse().unwrap()
}

#[test]
fn i64_callback_called_from_c() {
    let cb = Callback::new(&sig("fn(i64, i64) -> i64"), |a| match a {
        [Value::I64(x), Value::I64(y)] => Ok(Value::I64(x * 10 + y)),
        _ => Err(format!("bad args {a:?}")),
    })
    .unwrap();
    let drive = raw_symbol(raw_library("callbacks"), "drive_i64");
    // SAFETY: drive_i64 has this signature.
    let f: extern "C" fn(*const std::ffi::c_void, i64, i64) -> i64 =
        unsafe { std::mem::transmute(drive) };
    assert_eq!(f(cb.code_ptr(), 4, -2), 38);
    assert_eq!(f(cb.code_ptr(), i64::MAX / 10, 7), i64::MAX / 10 * 10 + 7);
}

#[test]
fn f64_callback_through_libffi() {
    let cb = Callback::new(&sig("fn(f64) -> f64"), |a| match a {
        [Value::F64(x)] => Ok(Value::F64(x.sqrt() + 0.5)),
        _ => Err("bad".into()),
    })
    .unwrap();
    let drive = raw_symbol(raw_library("callbacks"), "drive_f64");
    // SAFETY: drive_f64 has this signature; the callback lives.
    let call = unsafe {
        CallBuilder::from_ptr(drive)
            .signature(&sig("fn(fn(f64) -> f64, f64) -> f64"))
            .force_libffi(true)
            .build()
    }
    .unwrap();
    // SAFETY: as above.
    let r = unsafe { call.call(&[cb.to_value(), Value::F64(16.0)]) }.unwrap();
    assert_eq!(r, Value::F64(4.5));
}

#[test]
fn str_callback_allocates_its_result() {
    let cb = Callback::new(&sig("fn(str) -> str"), |a| match a {
        [Value::Str(s)] => Ok(Value::Str(format!("{}, world", s.to_uppercase()))),
        _ => Err("bad".into()),
    })
    .unwrap();
    let drive = raw_symbol(raw_library("callbacks"), "drive_str");
    type Drive = extern "C" fn(
        *const std::ffi::c_void,
        *mut u8,
        usize,
        unsafe extern "C" fn(*mut std::ffi::c_void, usize, usize),
    ) -> i64;
    // SAFETY: drive_str has this signature.
    let f: Drive = unsafe { std::mem::transmute(drive) };
    let mut out = [0u8; 64];
    let r = f(
        cb.code_ptr(),
        out.as_mut_ptr(),
        out.len(),
        alloc::polyload_free,
    );
    assert_eq!(r, 12 * 1000 + i64::from(b'H'));
    assert_eq!(&out[..13], b"HELLO, world\0");
}

static HOOK_CALLS: AtomicUsize = AtomicUsize::new(0);
fn counting_hook(msg: &str) {
    assert!(msg.contains("boom") || msg.contains("refused"), "{msg}");
    HOOK_CALLS.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn error_and_panic_return_zero_and_call_the_hook() {
    let drive = raw_symbol(raw_library("callbacks"), "drive_i64");
    // SAFETY: drive_i64 has this signature.
    let f: extern "C" fn(*const std::ffi::c_void, i64, i64) -> i64 =
        unsafe { std::mem::transmute(drive) };
    let failing = Callback::new_with_error_hook(
        &sig("fn(i64, i64) -> i64"),
        |_| Err("refused".into()),
        counting_hook,
    )
    .unwrap();
    let before = HOOK_CALLS.load(Ordering::SeqCst);
    assert_eq!(f(failing.code_ptr(), 1, 2), 0);
    assert_eq!(take_callback_error().as_deref(), Some("refused"));
    let panicking = Callback::new_with_error_hook(
        &sig("fn(i64, i64) -> i64"),
        |_| panic!("boom"),
        counting_hook,
    )
    .unwrap();
    assert_eq!(f(panicking.code_ptr(), 1, 2), 0);
    let msg = take_callback_error().unwrap();
    assert!(msg.contains("panicked") && msg.contains("boom"), "{msg}");
    assert_eq!(HOOK_CALLS.load(Ordering::SeqCst) - before, 2);
    assert_eq!(take_callback_error(), None);
}

static GLOBAL_CALLS: AtomicUsize = AtomicUsize::new(0);
fn global_hook(msg: &str) {
    if msg.contains("global-test") {
        GLOBAL_CALLS.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn global_hook_and_bad_return_kind() {
    set_callback_error_hook(Some(global_hook));
    let drive = raw_symbol(raw_library("callbacks"), "drive_f64");
    // SAFETY: drive_f64 has this signature.
    let f: extern "C" fn(*const std::ffi::c_void, f64) -> f64 =
        unsafe { std::mem::transmute(drive) };
    let cb = Callback::new(&sig("fn(f64) -> f64"), |_| Err("global-test".into())).unwrap();
    assert_eq!(f(cb.code_ptr(), 1.0), 0.0);
    assert_eq!(GLOBAL_CALLS.load(Ordering::SeqCst), 1);
    let wrong = Callback::new(&sig("fn(f64) -> f64"), |_| Ok(Value::I32(1))).unwrap();
    assert_eq!(f(wrong.code_ptr(), 1.0), 0.0);
    let msg = take_callback_error().unwrap();
    assert!(msg.contains("expected f64, got i32"), "{msg}");
}

#[test]
fn callback_is_send_and_sync_and_rejects_variadics() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Callback>();
    let e = Callback::new(&sig("fn(cstr, ...) -> i32"), |_| Ok(Value::I32(0))).unwrap_err();
    assert!(e.to_string().contains("variadic"), "{e}");
}
