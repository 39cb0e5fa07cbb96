//! The mapping between Rust types and the C ABI: [`GuestArg`] for
//! parameters, [`GuestRet`] for return values, [`AbiValue`] for the zero
//! value returned alongside an error. Every implementation lives here.

use crate::host::host;
use polyload_abi::{PolyloadBytes, PolyloadStr};
use std::ffi::c_void;

/// A value that crosses the C boundary and has a zero value to return
/// after an error.
pub trait AbiValue: Copy {
    /// The value returned alongside an error (`0`, `false`, null, `{null, 0}`).
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

impl AbiValue for *const c_void {
    fn zero() -> Self {
        std::ptr::null()
    }
}

impl AbiValue for *mut c_void {
    fn zero() -> Self {
        std::ptr::null_mut()
    }
}

/// A Rust parameter type of an exported function.
///
/// `TYPE` is the word the type contributes to the signature string; the
/// `#[export]` macro derives the whole signature from these constants, so
/// it always matches the Rust function.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a parameter of a polyload export",
    note = "parameters may be bool, i8..i64, u8..u64, f32, f64, *const/*mut c_void, &str, &[u8] (serde_json::Value with feature `json`)"
)]
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
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the return type of a polyload export",
    note = "return types may be (), bool, i8..i64, u8..u64, f32, f64, *const/*mut c_void, String, &'static str, Vec<u8> (serde_json::Value with feature `json`), or a Result<T, E: Display> of one"
)]
pub trait GuestRet {
    /// Its C representation.
    type Abi: AbiValue;
    /// Its signature type (`"void"` for `()`).
    const TYPE: &'static str;
    /// Converts to the C representation.
    ///
    /// # Errors
    /// The function's own error (`Err(e)` of a `Result`, as `e.to_string()`),
    /// or a failure to allocate the returned buffer.
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
    u16 => "u16", u32 => "u32", u64 => "u64", f32 => "f32", f64 => "f64",
    *const c_void => "ptr", *mut c_void => "ptr");

impl GuestRet for () {
    type Abi = ();
    const TYPE: &'static str = "void";
    fn into_abi(self) -> Result<(), String> {
        Ok(())
    }
}

// `#[export]` gives borrowed parameters the `'static` lifetime: the data
// lives for the call, and the user's function (taking `&str` with an elided
// lifetime, hence generic over it) cannot keep it longer.
impl GuestArg for &'static str {
    type Abi = PolyloadStr;
    const TYPE: &'static str = "str";
    fn from_abi(abi: PolyloadStr) -> Result<Self, String> {
        // SAFETY: per the ABI, the caller passes `len` readable bytes (or
        // `{null, 0}`) that stay valid and unchanged for the duration of the
        // call, and the borrow does not escape it (see above).
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

/// Copies `data` into a buffer from the host's allocator; `(null, 0)` when
/// empty. The host frees it.
pub(crate) fn host_buffer(data: &[u8]) -> Result<(*const u8, usize), String> {
    if data.is_empty() {
        return Ok((std::ptr::null(), 0));
    }
    let host = host().ok_or("polyload-guest: no host table (the bundle is not initialised)")?;
    // SAFETY: the host's allocator, called with a non-zero size and a
    // power-of-two alignment as its contract asks.
    let p = unsafe { (host.alloc)(data.len(), 1) }.cast::<u8>();
    if p.is_null() {
        return Err(format!("out of memory allocating {} bytes", data.len()));
    }
    // SAFETY: `p` is a fresh allocation of `data.len()` bytes, so it is
    // writable for that length and cannot overlap `data`.
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

impl GuestRet for &'static str {
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

#[cfg(feature = "json")]
mod json {
    use super::*;
    use serde_json::Value;

    impl GuestArg for Value {
        type Abi = PolyloadStr;
        const TYPE: &'static str = "json";
        fn from_abi(abi: PolyloadStr) -> Result<Self, String> {
            let text = <&'static str as GuestArg>::from_abi(abi)?;
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))
        }
    }

    impl GuestRet for Value {
        type Abi = PolyloadStr;
        const TYPE: &'static str = "json";
        fn into_abi(self) -> Result<PolyloadStr, String> {
            // Serialising a `Value` to a `String` cannot fail.
            self.to_string().into_abi()
        }
    }
}
