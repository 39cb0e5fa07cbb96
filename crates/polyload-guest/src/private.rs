//! Implementation details used by the code the macros generate. Not a stable
//! API: names and shapes change without notice.

use crate::host::{host, BUNDLE, HOST};
use crate::types::AbiValue;
use polyload_abi::{PolyloadBundle, PolyloadHost, PolyloadStr};
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;

/// What `#[export]` generates for one function and `bundle!` registers.
#[derive(Clone, Copy, Debug)]
pub struct ExportDesc {
    /// The unqualified export name (`word_count`).
    pub name: &'static str,
    /// The signature derived from the Rust types (`fn(str) -> u64`).
    pub signature: &'static str,
    /// The `extern "C"` wrapper.
    pub code: *const c_void,
}

/// Length of the signature string [`signature_bytes`] writes.
pub const fn signature_len(params: &[&str], ret: &str) -> usize {
    let mut n = "fn()".len();
    let mut i = 0;
    while i < params.len() {
        if i > 0 {
            n += ", ".len();
        }
        n += params[i].len();
        i += 1;
    }
    if !is_void(ret) {
        n += " -> ".len() + ret.len();
    }
    n
}

const fn is_void(ty: &str) -> bool {
    let b = ty.as_bytes();
    b.len() == 4 && b[0] == b'v' && b[1] == b'o' && b[2] == b'i' && b[3] == b'd'
}

const fn push(out: &mut [u8], mut at: usize, s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        out[at] = b[i];
        at += 1;
        i += 1;
    }
    at
}

/// The canonical signature string `fn(p1, p2) -> ret` (no `-> void`), as
/// bytes, at compile time. `N` must be [`signature_len`] of the same input.
pub const fn signature_bytes<const N: usize>(params: &[&str], ret: &str) -> [u8; N] {
    let mut out = [0u8; N];
    let mut at = push(&mut out, 0, "fn(");
    let mut i = 0;
    while i < params.len() {
        if i > 0 {
            at = push(&mut out, at, ", ");
        }
        at = push(&mut out, at, params[i]);
        i += 1;
    }
    at = push(&mut out, at, ")");
    if !is_void(ret) {
        at = push(&mut out, at, " -> ");
        at = push(&mut out, at, ret);
    }
    assert!(at == N, "signature_bytes: N is not signature_len");
    out
}

/// Turns [`signature_bytes`]' output into a `&str` at compile time.
pub const fn signature_str(bytes: &'static [u8]) -> &'static str {
    match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(_) => panic!("signature types are ASCII"),
    }
}

/// Whether two signature strings are the same up to ASCII whitespace and an
/// explicit `-> void` return (`fn(i64,i64)->i64` equals `fn(i64, i64) -> i64`).
/// `bundle!` checks each derived signature against `manifest.toml` with it at
/// compile time.
pub const fn signatures_match(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    loop {
        i = skip_ws(a, i);
        j = skip_ws(b, j);
        if i == a.len() || j == b.len() {
            break;
        }
        if a[i] != b[j] {
            break;
        }
        i += 1;
        j += 1;
    }
    // Equal up to here: what is left on each side must be nothing, or
    // `-> void` on one side against nothing on the other.
    let (a_done, b_done) = (rest_is(a, i, b""), rest_is(b, j, b""));
    if a_done {
        b_done || rest_is(b, j, b"->void")
    } else {
        b_done && rest_is(a, i, b"->void")
    }
}

const fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && s[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Whether `s[i..]`, ignoring ASCII whitespace, is exactly `want`.
const fn rest_is(s: &[u8], mut i: usize, want: &[u8]) -> bool {
    let mut k = 0;
    loop {
        i = skip_ws(s, i);
        if i == s.len() || k == want.len() {
            return i == s.len() && k == want.len();
        }
        if s[i] != want[k] {
            return false;
        }
        i += 1;
        k += 1;
    }
}

fn report(message: &str) {
    if let Some(h) = host() {
        // SAFETY: the host's `set_error`, with a string that lives for the call.
        unsafe { (h.set_error)(PolyloadStr::from_str(message)) };
    }
}

/// The message of a panic payload (`panic!` gives `&str` or `String`).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic payload that is not a string)".to_string()
    }
}

/// Runs an export's body: an `Err` or a panic becomes the host error
/// (`panic in <bundle>.<name>: <message>` for a panic) and a zero return.
/// Nothing unwinds out of it.
pub fn guard<R: AbiValue>(bundle: &str, name: &str, body: impl FnOnce() -> Result<R, String>) -> R {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            report(&e);
            R::zero()
        }
        Err(payload) => {
            report(&format!(
                "panic in {bundle}.{name}: {}",
                panic_message(&*payload)
            ));
            // A payload whose `Drop` panics must not unwind either.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
            R::zero()
        }
    }
}

/// The error for an argument `from_abi` refused.
pub fn bad_argument(bundle: &str, name: &str, position: usize, error: String) -> String {
    format!("argument {position} of {bundle}.{name}: {error}")
}

/// `polyload_bundle_init`'s body: stores the host table and the bundle
/// handle, then defines every export with its derived signature.
///
/// # Safety
/// `host` must be null or a host table valid for the life of the bundle,
/// and `bundle` the handle the host passed with it.
pub unsafe fn init(
    host: *const PolyloadHost,
    bundle: *mut PolyloadBundle,
    exports: &[ExportDesc],
) -> i32 {
    if host.is_null() {
        return polyload_abi::POLYLOAD_ERR_INVALID;
    }
    // SAFETY: non-null and valid for the bundle's life (the caller's promise);
    // `size` is the first field of every version of the table.
    let size = unsafe { (*host).size };
    if size < std::mem::size_of::<PolyloadHost>() {
        // An older, shorter table than this SDK uses; its fields past `size`
        // (maybe `set_error` itself) are absent, so no message can be set.
        return polyload_abi::POLYLOAD_ERR_INVALID;
    }
    HOST.store(host.cast_mut(), Ordering::Release);
    BUNDLE.store(bundle, Ordering::Release);
    // SAFETY: checked non-null and complete above.
    let h = unsafe { &*host };
    let defined = catch_unwind(AssertUnwindSafe(|| {
        for e in exports {
            // SAFETY: the host's `define`, during init, with strings that live
            // for the call and a code pointer valid while the bundle is loaded.
            let rc = unsafe {
                (h.define)(
                    bundle,
                    PolyloadStr::from_str(e.name),
                    PolyloadStr::from_str(e.signature),
                    e.code,
                )
            };
            if rc != polyload_abi::POLYLOAD_OK {
                return rc;
            }
        }
        polyload_abi::POLYLOAD_OK
    }));
    defined.unwrap_or_else(|_| {
        report("panic in polyload_bundle_init");
        polyload_abi::POLYLOAD_ERR
    })
}
