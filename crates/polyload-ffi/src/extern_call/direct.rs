//! Direct calls for the commonest signatures: up to four `i64` parameters
//! returning `i64`, or one to four `f64` returning `f64`. The function is
//! called as the Rust `extern "C" fn` type of its signature, with no
//! register image and no call stub in between (System V AMD64 ABI §3.2.3
//! and AAPCS64 pass these in the first integer or vector registers, which
//! is exactly what the Rust type says).

use crate::{FfiType, Signature, Value};
use std::ffi::c_void;

/// Calls `code` with `args` if they are exactly the shape's values
/// (`None` otherwise, so the general path gives the error).
///
/// # Safety
/// `code` is a C function of the shape's exact signature.
pub(crate) type Direct = unsafe fn(code: *const c_void, args: &[Value]) -> Option<Value>;

macro_rules! direct {
    ($name:ident, $variant:ident, $t:ty; $($a:ident)*) => {
        #[allow(non_snake_case, reason = "argument names mirror their positions")]
        unsafe fn $name(code: *const c_void, args: &[Value]) -> Option<Value> {
            let [$(Value::$variant($a)),*] = args else {
                return None;
            };
            // SAFETY: the caller's contract: `code` has exactly this type.
            let f = unsafe { std::mem::transmute::<*const c_void, extern "C" fn($(direct!(@ty $a $t)),*) -> $t>(code) };
            Some(Value::$variant(f($(*$a),*)))
        }
    };
    (@ty $a:ident $t:ty) => { $t };
}

direct!(i64_0, I64, i64;);
direct!(i64_1, I64, i64; A);
direct!(i64_2, I64, i64; A B);
direct!(i64_3, I64, i64; A B C);
direct!(i64_4, I64, i64; A B C D);
direct!(f64_1, F64, f64; A);
direct!(f64_2, F64, f64; A B);
direct!(f64_3, F64, f64; A B C);
direct!(f64_4, F64, f64; A B C D);

/// The direct call for `sig`, if it has one of the shapes.
pub(crate) fn for_signature(sig: &Signature) -> Option<Direct> {
    if sig.variadic || !cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        return None;
    }
    let all = |t: &FfiType| sig.params.iter().all(|p| p == t) && sig.ret == *t;
    let n = sig.params.len();
    if all(&FfiType::I64) {
        return [i64_0, i64_1, i64_2, i64_3, i64_4].get(n).copied();
    }
    if all(&FfiType::F64) && n >= 1 {
        return [f64_1, f64_2, f64_3, f64_4].get(n - 1).copied();
    }
    None
}
