//! Callbacks: a Rust closure behind a C function pointer of any signature.
//!
//! A [`Callback`] owns a libffi closure (a small executable trampoline) that,
//! when C calls it, converts the C arguments to [`Value`]s by the signature,
//! runs the Rust closure, and converts its result back. Nothing unwinds into
//! C: an `Err` or a panic makes the callback return the zero value of its
//! return type and report the message (see [error reporting](#error-reporting)).
//!
//! # Error reporting
//! When the closure returns `Err(msg)`, panics, returns a value of the wrong
//! kind, or an argument cannot be converted (a `str` that is not UTF-8), the
//! callback
//! 1. writes the zero value of the return type (0, 0.0, null, all-zero
//!    struct) — C sees a normal return;
//! 2. stores the message in a per-thread slot read by
//!    [`take_callback_error`];
//! 3. calls the callback's own hook ([`Callback::new_with_error_hook`]) or,
//!    when it has none, the process-wide hook set with
//!    [`set_callback_error_hook`] — on the thread that called the callback.
//!
//! # Ownership across the boundary
//! * `str`/`bytes`/`json` arguments arrive as a by-value `PolyloadStr
//!   {ptr, len}` borrowed from the caller; they are copied.
//! * A returned `str`/`bytes`/`json` is allocated with
//!   [`polyload_alloc`](crate::alloc::polyload_alloc)`(len, 1)`; the C caller
//!   owns it and frees it with `polyload_free(ptr, len, 1)` (the empty value
//!   is null with length 0).
//! * A returned `cstr` points into a per-thread buffer that stays valid until
//!   the next callback on the same thread returns a `cstr`.

use crate::call::libffi_type;
use crate::marshal::{read_value, write_owned, Ownership};
use crate::{FfiError, FfiType, Signature, Value};
use libffi::low::{self, ffi_cif, ffi_closure, CodePtr};
use libffi::middle::Cif;
use std::cell::RefCell;
use std::ffi::{c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::RwLock;

/// A function told about a failed callback call (the message says what
/// failed: the closure's `Err` text, `callback panicked: ...`, or a
/// conversion error). It runs on the thread that called the callback, inside
/// the C call, so it must be quick and must not call back into the C code.
pub type ErrorHook = fn(&str);

/// The closure type behind a [`Callback`].
pub type CallbackFn = dyn Fn(&[Value]) -> Result<Value, String> + Send + Sync + 'static;

static GLOBAL_HOOK: RwLock<Option<ErrorHook>> = RwLock::new(None);

thread_local! {
    static LAST_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
    static CSTR_RETURN: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Sets the process-wide hook called when a callback without its own hook
/// fails; `None` removes it. Returns the previous hook.
///
/// The polyload runtime uses this to raise its per-thread guest-error flag,
/// so a failing host callback surfaces as an error of the enclosing call.
pub fn set_callback_error_hook(hook: Option<ErrorHook>) -> Option<ErrorHook> {
    let mut g = GLOBAL_HOOK.write().unwrap_or_else(|e| e.into_inner());
    std::mem::replace(&mut *g, hook)
}

/// Takes (and clears) the message of the last failed callback call on this
/// thread, if any. Every failure is recorded here, hooks or not.
pub fn take_callback_error() -> Option<String> {
    LAST_ERROR.with(|e| e.borrow_mut().take())
}

struct Data {
    signature: Signature,
    f: Box<CallbackFn>,
    hook: Option<ErrorHook>,
}

/// A C function pointer with a polyload [`Signature`] that runs a Rust
/// closure. The pointer ([`code_ptr`](Callback::code_ptr)) is valid exactly
/// as long as the `Callback` lives: keep the handle until C can no longer
/// call it.
///
/// ```
/// use polyload_ffi::{Callback, CallBuilder, Signature, Value};
/// let sig: Signature = "fn(i64, i64) -> i64".parse().unwrap();
/// let add = Callback::new(&sig, |args| match args {
///     [Value::I64(a), Value::I64(b)] => Ok(Value::I64(a + b)),
///     _ => Err("unreachable: arguments follow the signature".into()),
/// })
/// .unwrap();
/// // SAFETY: the callback has exactly this signature and is alive.
/// let call = unsafe { CallBuilder::from_ptr(add.code_ptr()).signature(&sig).build() }.unwrap();
/// // SAFETY: as above.
/// let r = unsafe { call.call(&[Value::I64(2), Value::I64(3)]) }.unwrap();
/// assert_eq!(r, Value::I64(5));
/// ```
pub struct Callback {
    closure: NonNull<ffi_closure>,
    code: CodePtr,
    // Referenced by the closure: boxed so their addresses stay fixed.
    _cif: Box<Cif>,
    data: Box<Data>,
}

// SAFETY: `closure` and `code` point to libffi-owned trampoline memory that
// is written once in `new` (before the handle exists) and only read (by
// executing it) afterwards; freeing happens in `drop`, which needs ownership.
// The `Cif` is immutable after preparation. `Data` holds a `Send + Sync`
// closure and plain data. So sharing or moving the handle across threads is
// sound, and C may call the code pointer from any thread concurrently (the
// closure is `Fn + Sync`).
unsafe impl Send for Callback {}
// SAFETY: see the `Send` impl: no method mutates shared state.
unsafe impl Sync for Callback {}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callback")
            .field("signature", &self.data.signature.to_string())
            .field("code", &self.code.as_ptr())
            .finish()
    }
}

impl Callback {
    /// Makes a C function pointer of `signature` that calls `f` with the
    /// arguments converted to [`Value`]s (one per parameter, in order, of
    /// the kinds the signature names). `f`'s result must fit the return
    /// type (`Value::Void` or anything for a `void` return). Failures are
    /// reported through [`take_callback_error`] and the process-wide hook
    /// ([`set_callback_error_hook`]).
    ///
    /// # Errors
    /// [`FfiError::Prepare`] for a variadic signature or when libffi cannot
    /// make the closure.
    pub fn new(
        signature: &Signature,
        f: impl Fn(&[Value]) -> Result<Value, String> + Send + Sync + 'static,
    ) -> Result<Callback, FfiError> {
        Self::build(signature, Box::new(f), None)
    }

    /// Like [`Callback::new`], but failures call `hook` instead of the
    /// process-wide hook.
    ///
    /// # Errors
    /// As [`Callback::new`].
    pub fn new_with_error_hook(
        signature: &Signature,
        f: impl Fn(&[Value]) -> Result<Value, String> + Send + Sync + 'static,
        hook: ErrorHook,
    ) -> Result<Callback, FfiError> {
        Self::build(signature, Box::new(f), Some(hook))
    }

    fn build(
        signature: &Signature,
        f: Box<CallbackFn>,
        hook: Option<ErrorHook>,
    ) -> Result<Callback, FfiError> {
        let prepare_err = |reason: String| FfiError::Prepare {
            signature: signature.to_string(),
            reason,
        };
        if signature.variadic {
            return Err(prepare_err(
                "a callback cannot be variadic (it would need va_list access)".into(),
            ));
        }
        let cif = Box::new(
            Cif::try_new(
                signature.params.iter().map(libffi_type),
                libffi_type(&signature.ret),
            )
            .map_err(|e| prepare_err(format!("{e:?}")))?,
        );
        let data = Box::new(Data {
            signature: signature.clone(),
            f,
            hook,
        });
        let (alloc, code) = low::try_closure_alloc()
            .ok_or_else(|| prepare_err("ffi_closure_alloc failed".into()))?;
        let closure = NonNull::new(alloc)
            .ok_or_else(|| prepare_err("ffi_closure_alloc returned null".into()))?;
        // SAFETY: `closure`/`code` come from `ffi_closure_alloc`; the cif and
        // the userdata are boxed and owned by the returned handle, so they
        // outlive the closure (freed first in `drop`). `dispatch` has the
        // layout libffi calls (cif, result, args, userdata).
        let prep = unsafe {
            low::prep_closure(
                closure.as_ptr(),
                cif.as_raw_ptr(),
                dispatch,
                &*data as *const Data,
                code,
            )
        };
        if let Err(e) = prep {
            // SAFETY: allocated above and never handed out.
            unsafe { low::closure_free(closure.as_ptr()) };
            return Err(prepare_err(format!("{e:?}")));
        }
        Ok(Callback {
            closure,
            code,
            _cif: cif,
            data,
        })
    }

    /// The C function pointer. Valid while `self` lives; call it only with
    /// the signature's C types.
    pub fn code_ptr(&self) -> *const c_void {
        self.code.as_ptr()
    }

    /// The code pointer as a `ptr`/callback argument value.
    pub fn to_value(&self) -> Value {
        Value::Ptr(self.code_ptr() as usize)
    }

    /// The signature the callback was made for.
    pub fn signature(&self) -> &Signature {
        &self.data.signature
    }
}

impl Drop for Callback {
    fn drop(&mut self) {
        // SAFETY: allocated by `ffi_closure_alloc` in `build` and freed only
        // here; the caller promised C no longer calls it.
        unsafe { low::closure_free(self.closure.as_ptr()) };
    }
}

/// The function every callback trampoline calls.
///
/// # Safety
/// Called by libffi only: `args` holds one pointer per parameter of
/// `data.signature`, each to a value of that C type, and `result` points to
/// a buffer of at least `max(size_of(ret), size_of(ffi_arg))` bytes.
unsafe extern "C" fn dispatch(
    _cif: &ffi_cif,
    result: &mut c_void,
    args: *const *const c_void,
    data: &Data,
) {
    let result: *mut u8 = (result as *mut c_void).cast();
    let ret = &data.signature.ret;
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<(), String> {
        let params = &data.signature.params;
        let mut values = Vec::with_capacity(params.len());
        for (i, ty) in params.iter().enumerate() {
            // SAFETY: libffi passes one valid pointer per parameter.
            let v = unsafe { read_value((*args.add(i)).cast(), ty, Ownership::Borrowed) }
                .map_err(|e| format!("callback argument {i}: {e}"))?;
            values.push(v);
        }
        let v = (data.f)(&values)?;
        // SAFETY: `result` is large enough for the return type (contract).
        unsafe { write_result(result, ret, &v) }
    }));
    let msg = match outcome {
        Ok(Ok(())) => return,
        Ok(Err(msg)) => msg,
        Err(payload) => format!("callback panicked: {}", panic_message(&*payload)),
    };
    // SAFETY: as above; zero the return value so C sees a defined result.
    unsafe { std::ptr::write_bytes(result, 0, result_size(ret)) };
    report(data.hook, &msg);
}

/// Bytes the callback writes for a return of `ty`: scalars are widened to a
/// full `ffi_arg` (libffi's closure contract).
fn result_size(ty: &FfiType) -> usize {
    match ty {
        FfiType::Void => 0,
        FfiType::Struct(_) | FfiType::Str | FfiType::Bytes | FfiType::Json => ty.layout().size,
        _ => ty.layout().size.max(std::mem::size_of::<low::ffi_arg>()),
    }
}

/// Writes a callback's result.
///
/// # Safety
/// `dst` must be valid for [`result_size`]`(ty)` bytes, aligned for `ty`
/// and for `ffi_arg`.
unsafe fn write_result(dst: *mut u8, ty: &FfiType, v: &Value) -> Result<(), String> {
    if *ty == FfiType::Void {
        return Ok(());
    }
    v.check(ty)
        .map_err(|e| format!("callback returned a bad value: {e}"))?;
    // libffi reads integer returns narrower than a register as a full
    // `ffi_arg`, widened per the type's signedness.
    let widened: Option<u64> = match *v {
        Value::Bool(b) => Some(b as u64),
        Value::I8(x) => Some(x as i64 as u64),
        Value::I16(x) => Some(x as i64 as u64),
        Value::I32(x) => Some(x as i64 as u64),
        Value::I64(x) => Some(x as u64),
        Value::U8(x) => Some(x.into()),
        Value::U16(x) => Some(x.into()),
        Value::U32(x) => Some(x.into()),
        Value::U64(x) => Some(x),
        Value::Ptr(x) => Some(x as u64),
        _ => None,
    };
    match widened {
        // SAFETY: the buffer holds a full `ffi_arg` (u64 on the supported
        // 64-bit targets) and is aligned for it (contract).
        Some(w) if std::mem::size_of::<low::ffi_arg>() == 8 => unsafe {
            dst.cast::<u64>().write(w);
            Ok(())
        },
        _ => CSTR_RETURN.with(|slot| {
            // SAFETY: `dst` is valid and aligned for `ty` (contract).
            unsafe { write_owned(dst, ty, v, &mut slot.borrow_mut()) }
        }),
    }
}

fn report(hook: Option<ErrorHook>, msg: &str) {
    LAST_ERROR.with(|e| *e.borrow_mut() = Some(msg.to_string()));
    let hook = hook.or_else(|| *GLOBAL_HOOK.read().unwrap_or_else(|e| e.into_inner()));
    if let Some(h) = hook {
        // A panicking hook must not unwind into C either; its panic is
        // dropped (the message is already in the per-thread slot).
        let _ = catch_unwind(|| h(msg));
    }
}

/// The text of a panic payload (`&str` or `String`), or a placeholder.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
