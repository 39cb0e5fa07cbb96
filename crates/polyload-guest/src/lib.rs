//! Rust guest SDK: write polyload bundles as plain Rust functions.
//!
//! ```ignore
//! use polyload_guest::export;
//!
//! /// Words are maximal runs of non-whitespace.
//! #[export]
//! fn word_count(text: &str) -> u64 {
//!     text.split_whitespace().count() as u64
//! }
//!
//! #[export]
//! fn checked_div(a: i64, b: i64) -> Result<i64, String> {
//!     if b == 0 { Err("division by zero".into()) } else { Ok(a / b) }
//! }
//!
//! polyload_guest::bundle!(word_count, checked_div);
//! ```
//!
//! The crate must be a `cdylib` (`[lib] crate-type = ["cdylib"]`), and its
//! `manifest.toml` declares the same exports: `word_count = "fn(str) -> u64"`.
//!
//! # Type mapping
//!
//! | Rust parameter | Rust return | signature | C ABI |
//! | --- | --- | --- | --- |
//! | `bool`, `i8`..`i64`, `u8`..`u64`, `f32`, `f64` | same | `bool`, `i8`.. | same |
//! | `&str` | `String` | `str` | `PolyloadStr` by value |
//! | `&[u8]` | `Vec<u8>` | `bytes` | `PolyloadBytes` by value |
//! | | `()` | `void` | |
//! | | `Result<T, E: Display>` | as `T` | `Err` sets the host error |
//!
//! A `&str` argument that is not UTF-8 is refused with an error before the
//! function runs. Returned buffers are allocated with the host's `alloc`
//! (the host frees them).
//!
//! # Errors and panics
//!
//! A returned `Err(e)` or a panic becomes `host.set_error(..)` and a zero
//! return value; the host turns it into an error value for its caller
//! (`polyload::Error::Guest`). A panic never unwinds into the host.
//!
//! # Build metadata
//!
//! `bundle!` exports `polyload_build_info()`, returning `key=value` lines:
//! `rustc=<rustc release, e.g. 1.95.0>`, `target=<target triple>`,
//! `profile=<debug|release>`, `abi=<MAJOR.MINOR>`, `guest=<polyload-guest
//! version>`. The host refuses a bundle whose `rustc`, `target` or `abi`
//! differ from its own, and (when it built the bundle) whose `profile`
//! differs from the one it asked for.
#![warn(missing_docs)]

use polyload_abi::{PolyloadBundle, PolyloadBytes, PolyloadHost, PolyloadSlot, PolyloadStr};
use std::ffi::c_void;
use std::sync::atomic::{AtomicPtr, Ordering};

pub use polyload_abi;
pub use polyload_guest_macros::export;

/// The build metadata `polyload_build_info` reports (see the crate docs).
pub const BUILD_INFO: &str = concat!(
    "rustc=",
    env!("POLYLOAD_GUEST_RUSTC"),
    "\ntarget=",
    env!("POLYLOAD_GUEST_TARGET"),
    "\nprofile=",
    env!("POLYLOAD_GUEST_PROFILE"),
    "\nabi=1.0\nguest=",
    env!("CARGO_PKG_VERSION"),
    "\n"
);

// The `abi=` line above is written out because `concat!` takes literals;
// this keeps it honest.
const _: () = {
    let v = polyload_abi::POLYLOAD_ABI_VERSION;
    assert!(v.major == 1 && v.minor == 0, "update `abi=` in BUILD_INFO");
};

static HOST: AtomicPtr<PolyloadHost> = AtomicPtr::new(std::ptr::null_mut());
static BUNDLE: AtomicPtr<PolyloadBundle> = AtomicPtr::new(std::ptr::null_mut());

/// The host table, once `polyload_bundle_init` has run.
pub fn host() -> Option<&'static PolyloadHost> {
    // SAFETY: set once in init to the host's 'static table.
    unsafe { HOST.load(Ordering::Acquire).as_ref() }
}

/// A value that crosses the C boundary and has a zero value to return
/// after an error.
pub trait AbiValue: Copy {
    /// The value returned alongside an error.
    fn zero() -> Self;
}

macro_rules! abi_zero {
    ($($t:ty),*) => {$( impl AbiValue for $t { fn zero() -> Self { <$t>::default() } } )*};
}
abi_zero!(bool, i8, i16, i32, i64, u8, u16, u32, u64, f32, f64, ());
impl AbiValue for PolyloadStr {
    fn zero() -> Self {
        PolyloadStr::EMPTY
    }
}
impl AbiValue for PolyloadBytes {
    fn zero() -> Self {
        PolyloadBytes::EMPTY
    }
}

/// A Rust parameter type of an exported function.
pub trait GuestArg: Sized {
    /// Its C representation.
    type Abi: Copy;
    /// Its signature type (`"i64"`, `"str"`).
    const TYPE: &'static str;
    /// Converts from the C representation.
    ///
    /// # Errors
    /// A message when the value is invalid (e.g. a `str` that is not UTF-8).
    fn from_abi(abi: Self::Abi) -> Result<Self, String>;
}

/// A Rust return type of an exported function.
pub trait GuestRet {
    /// Its C representation.
    type Abi: AbiValue;
    /// Its signature type (`"void"` for `()`).
    const TYPE: &'static str;
    /// Converts to the C representation.
    ///
    /// # Errors
    /// The function's own error, or an allocation failure.
    fn into_abi(self) -> Result<Self::Abi, String>;
}

macro_rules! scalar {
    ($($t:ty => $s:literal),*) => {$(
        impl GuestArg for $t {
            type Abi = $t;
            const TYPE: &'static str = $s;
            fn from_abi(abi: $t) -> Result<Self, String> { Ok(abi) }
        }
        impl GuestRet for $t {
            type Abi = $t;
            const TYPE: &'static str = $s;
            fn into_abi(self) -> Result<$t, String> { Ok(self) }
        }
    )*};
}
scalar!(bool => "bool", i8 => "i8", i16 => "i16", i32 => "i32", i64 => "i64", u8 => "u8",
    u16 => "u16", u32 => "u32", u64 => "u64", f32 => "f32", f64 => "f64");

impl GuestRet for () {
    type Abi = ();
    const TYPE: &'static str = "void";
    fn into_abi(self) -> Result<(), String> {
        Ok(())
    }
}

// The macro gives borrowed parameters the `'static` lifetime: the data lives
// for the call, and the user's function (taking `&str` with an elided
// lifetime) cannot keep it longer.
impl GuestArg for &'static str {
    type Abi = PolyloadStr;
    const TYPE: &'static str = "str";
    fn from_abi(abi: PolyloadStr) -> Result<Self, String> {
        // SAFETY: per the ABI, the host passes `len` readable bytes that stay
        // valid for the duration of the call.
        let bytes = unsafe { abi.as_bytes() };
        std::str::from_utf8(bytes).map_err(|e| format!("not valid UTF-8: {e}"))
    }
}

impl GuestArg for &'static [u8] {
    type Abi = PolyloadBytes;
    const TYPE: &'static str = "bytes";
    fn from_abi(abi: PolyloadBytes) -> Result<Self, String> {
        // SAFETY: as for `&str`.
        Ok(unsafe { abi.as_bytes() })
    }
}

/// Copies `data` into a buffer from the host's allocator.
fn host_buffer(data: &[u8]) -> Result<(*const u8, usize), String> {
    if data.is_empty() {
        return Ok((std::ptr::null(), 0));
    }
    let host = host().ok_or("polyload_guest: no host (bundle not initialised)")?;
    // SAFETY: the host's allocator, called per its contract.
    let p = unsafe { (host.alloc)(data.len(), 1) }.cast::<u8>();
    if p.is_null() {
        return Err(format!("out of memory allocating {} bytes", data.len()));
    }
    // SAFETY: `p` has room for `data.len()` bytes and does not overlap it.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
    Ok((p, data.len()))
}

impl GuestRet for String {
    type Abi = PolyloadStr;
    const TYPE: &'static str = "str";
    fn into_abi(self) -> Result<PolyloadStr, String> {
        let (ptr, len) = host_buffer(self.as_bytes())?;
        Ok(PolyloadStr { ptr, len })
    }
}

impl GuestRet for Vec<u8> {
    type Abi = PolyloadBytes;
    const TYPE: &'static str = "bytes";
    fn into_abi(self) -> Result<PolyloadBytes, String> {
        let (ptr, len) = host_buffer(&self)?;
        Ok(PolyloadBytes { ptr, len })
    }
}

impl<T: GuestRet, E: std::fmt::Display> GuestRet for Result<T, E> {
    type Abi = T::Abi;
    const TYPE: &'static str = T::TYPE;
    fn into_abi(self) -> Result<T::Abi, String> {
        match self {
            Ok(v) => v.into_abi(),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Writes a message to the host's log (`polyload_abi::POLYLOAD_LOG_*`).
pub fn log(level: u32, message: &str) {
    if let Some(h) = host() {
        // SAFETY: the host's log function, called per its contract.
        unsafe { (h.log)(level, PolyloadStr::from_str(message)) };
    }
}

/// A definition of another bundle, found by [`lookup`]. It stays valid
/// across that bundle's reloads and may be looked up before it loads.
#[derive(Clone, Copy, Debug)]
pub struct Slot(&'static PolyloadSlot);

impl Slot {
    /// The definition's current code as `F` (an `extern "C" fn` type of the
    /// definition's exact signature), or `None` while its bundle is not
    /// loaded. Call it right away: do not keep it past the current call.
    ///
    /// # Safety
    /// `F` must be a function pointer type matching the definition's
    /// signature.
    pub unsafe fn get<F: Copy>(&self) -> Option<F> {
        assert_eq!(
            std::mem::size_of::<F>(),
            std::mem::size_of::<*const c_void>(),
            "F must be a function pointer"
        );
        // SAFETY: `cell` points to the bundle's atomic table pointer (valid
        // for the namespace's life); a published table holds `len` entries.
        unsafe {
            let cell = &*self.0.cell;
            let table = cell.load(Ordering::Acquire);
            if table.is_null() || self.0.index >= (*table).len {
                return None;
            }
            let code = *(*table).code.add(self.0.index);
            (!code.is_null()).then(|| std::mem::transmute_copy::<*const c_void, F>(&code))
        }
    }
}

/// Looks up `bundle.function` in the host's namespace.
pub fn lookup(qualified_name: &str) -> Option<Slot> {
    let h = host()?;
    // SAFETY: the host's lookup, with the bundle pointer it gave us at init.
    let p = unsafe {
        (h.lookup)(
            BUNDLE.load(Ordering::Acquire),
            PolyloadStr::from_str(qualified_name),
        )
    };
    // SAFETY: a non-null slot lives as long as the host's namespace.
    unsafe { p.as_ref() }.map(Slot)
}

/// Implementation details used by the macros. Not a stable API.
#[doc(hidden)]
pub mod __private {
    use super::*;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    /// What `#[export]` generates for one function.
    pub struct ExportDesc {
        pub name: &'static str,
        pub params: &'static [&'static str],
        pub ret: &'static str,
        pub code: *const c_void,
    }

    impl ExportDesc {
        /// The signature string, e.g. `fn(str, u32) -> str`.
        pub fn signature(&self) -> String {
            let mut s = format!("fn({})", self.params.join(", "));
            if self.ret != "void" {
                s.push_str(" -> ");
                s.push_str(self.ret);
            }
            s
        }
    }

    fn report(message: &str) {
        if let Some(h) = host() {
            // SAFETY: the host's set_error, called per its contract.
            unsafe { (h.set_error)(PolyloadStr::from_str(message)) };
        }
    }

    /// Runs an export's body: errors and panics become the host error and a
    /// zero return; nothing unwinds.
    pub fn guard<R: AbiValue>(name: &str, body: impl FnOnce() -> Result<R, String>) -> R {
        match catch_unwind(AssertUnwindSafe(body)) {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                report(&e);
                R::zero()
            }
            Err(payload) => {
                let msg = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(non-string panic payload)".into());
                report(&format!("panic in `{name}`: {msg}"));
                R::zero()
            }
        }
    }

    /// `polyload_bundle_init`'s body.
    ///
    /// # Safety
    /// `host` and `bundle` as the host passed them.
    pub unsafe fn init(
        host: *const PolyloadHost,
        bundle: *mut PolyloadBundle,
        exports: &[ExportDesc],
    ) -> i32 {
        let r = catch_unwind(AssertUnwindSafe(|| {
            HOST.store(host.cast_mut(), Ordering::Release);
            BUNDLE.store(bundle, Ordering::Release);
            // SAFETY: the host table is 'static per the ABI.
            let h = unsafe { &*host };
            for e in exports {
                let sig = e.signature();
                // SAFETY: the host's define, during init, per its contract.
                let rc = unsafe {
                    (h.define)(
                        bundle,
                        PolyloadStr::from_str(e.name),
                        PolyloadStr::from_str(&sig),
                        e.code,
                    )
                };
                if rc != polyload_abi::POLYLOAD_OK {
                    return rc;
                }
            }
            polyload_abi::POLYLOAD_OK
        }));
        r.unwrap_or(polyload_abi::POLYLOAD_ERR)
    }
}

/// Emits the bundle's ABI symbols for the listed `#[export]` functions:
/// `polyload_abi_version`, `polyload_bundle_init` and `polyload_build_info`.
/// Use it once per bundle, at the crate root.
#[macro_export]
macro_rules! bundle {
    ($( $($export:ident)::+ ),* $(,)?) => {
        #[no_mangle]
        pub extern "C" fn polyload_abi_version() -> u32 {
            $crate::polyload_abi::POLYLOAD_ABI_VERSION.packed()
        }

        /// # Safety
        /// Called by the polyload host with its table and bundle handle.
        #[no_mangle]
        pub unsafe extern "C" fn polyload_bundle_init(
            host: *const $crate::polyload_abi::PolyloadHost,
            bundle: *mut $crate::polyload_abi::PolyloadBundle,
        ) -> i32 {
            let exports = [$( $($export)::+ ::__polyload_export() ),*];
            // SAFETY: forwarded from the host.
            unsafe { $crate::__private::init(host, bundle, &exports) }
        }

        #[no_mangle]
        pub extern "C" fn polyload_build_info() -> $crate::polyload_abi::PolyloadStr {
            $crate::polyload_abi::PolyloadStr::from_str($crate::BUILD_INFO)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::__private::ExportDesc;
    use super::*;

    #[test]
    fn signatures_come_from_types() {
        let d = ExportDesc {
            name: "top_words",
            params: &[<&'static str as GuestArg>::TYPE, <u32 as GuestArg>::TYPE],
            ret: <Result<String, String> as GuestRet>::TYPE,
            code: std::ptr::null(),
        };
        assert_eq!(d.signature(), "fn(str, u32) -> str");
        let d = ExportDesc {
            name: "f",
            params: &[<&'static [u8] as GuestArg>::TYPE],
            ret: <() as GuestRet>::TYPE,
            code: std::ptr::null(),
        };
        assert_eq!(d.signature(), "fn(bytes)");
    }

    #[test]
    fn build_info_has_every_field() {
        let keys: Vec<&str> = BUILD_INFO
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, ["rustc", "target", "profile", "abi", "guest"]);
    }

    #[test]
    fn guard_turns_panics_into_zero() {
        let r: i64 = __private::guard("boom", || panic!("bad"));
        assert_eq!(r, 0);
        let r: i64 = __private::guard("ok", || Ok(7));
        assert_eq!(r, 7);
    }

    #[test]
    fn invalid_utf8_is_refused() {
        let bad = [0xffu8, 0xfe];
        let e = <&'static str as GuestArg>::from_abi(PolyloadStr {
            ptr: bad.as_ptr(),
            len: 2,
        })
        .unwrap_err();
        assert!(e.starts_with("not valid UTF-8"), "{e}");
    }
}
