//! Values between polyload and .NET.
//!
//! | polyload | C# (`System.*`) |
//! | --- | --- |
//! | `bool`, `i8`..`u64`, `f32`, `f64` | `bool`, `sbyte`, `byte`, `short`, `ushort`, `int`, `uint`, `long`, `ulong`, `float`, `double` |
//! | `str` | `string` |
//! | `bytes` | `byte[]` |
//! | `json` | `string` holding JSON text (parse it with Newtonsoft.Json or `System.Json`) |
//!
//! Strings cross as UTF-16 on the .NET side and UTF-8 on polyload's; a
//! C# string that is not valid UTF-16 (an unpaired surrogate) is an error
//! when returned as `str`.

use crate::mono::{Mono, Ptr};
use polyload::loader::{GuestValue, GuestView};
use polyload::Value;
use std::borrow::Cow;

/// The text of a `MonoString *` (null gives `None`; invalid UTF-16 is
/// replaced, for messages).
///
/// # Safety
/// `s` is null or a live `MonoString *`, on an attached thread.
pub(crate) unsafe fn string(api: &Mono, s: Ptr) -> Option<String> {
    if s.is_null() {
        return None;
    }
    // SAFETY: the caller's contract; a string's chars are `length` UTF-16
    // units, not moved while the thread runs native code holding `s` on
    // its stack (Mono scans attached threads' stacks conservatively).
    let units = unsafe { utf16(api, s) };
    Some(String::from_utf16_lossy(units))
}

/// # Safety
/// As [`string`], `s` not null.
unsafe fn utf16<'a>(api: &Mono, s: Ptr) -> &'a [u16] {
    // SAFETY: the caller's contract.
    unsafe {
        let len = (api.mono_string_length)(s).max(0) as usize;
        let chars = (api.mono_string_chars)(s);
        if len == 0 || chars.is_null() {
            &[]
        } else {
            std::slice::from_raw_parts(chars, len)
        }
    }
}

/// A returned `MonoString *` as text, strictly.
///
/// # Safety
/// As [`string`].
pub(crate) unsafe fn string_result(api: &Mono, s: Ptr) -> Result<String, String> {
    if s.is_null() {
        return Err("the method returned null".into());
    }
    // SAFETY: the caller's contract.
    String::from_utf16(unsafe { utf16(api, s) })
        .map_err(|_| "the method returned a string that is not valid UTF-16".into())
}

/// A new `System.String` in `domain`.
///
/// # Safety
/// `domain` is live; the thread is attached.
pub(crate) unsafe fn new_string(api: &Mono, domain: Ptr, s: &str) -> Ptr {
    // SAFETY: the caller's contract; `s` is `len` bytes of UTF-8.
    unsafe { (api.mono_string_new_len)(domain, s.as_ptr().cast(), s.len() as u32) }
}

/// The contents of a `byte[]`.
///
/// # Safety
/// `a` is a live `byte[]` (`MonoArray *`).
pub(crate) unsafe fn byte_array(api: &Mono, a: Ptr) -> Vec<u8> {
    // SAFETY: the caller's contract: `len` bytes from element 0.
    unsafe {
        let len = (api.mono_array_length)(a);
        if len == 0 {
            return Vec::new();
        }
        let data = (api.mono_array_addr_with_size)(a, 1, 0);
        std::slice::from_raw_parts(data.cast::<u8>(), len).to_vec()
    }
}

/// A new `byte[]` in `domain`.
///
/// # Safety
/// As [`new_string`].
pub(crate) unsafe fn new_bytes(api: &Mono, domain: Ptr, b: &[u8]) -> Ptr {
    // SAFETY: the caller's contract; the array has `b.len()` bytes.
    unsafe {
        let a = (api.mono_array_new)(domain, (api.mono_get_byte_class)(), b.len());
        if !b.is_empty() {
            let data = (api.mono_array_addr_with_size)(a, 1, 0);
            std::ptr::copy_nonoverlapping(b.as_ptr(), data.cast::<u8>(), b.len());
        }
        a
    }
}

/// One element of the `object[]` C# passes to `Polyload.Call`.
pub(crate) struct Arg {
    api: &'static Mono,
    obj: Ptr,
}

/// The elements of an `object[]` (none for null).
///
/// # Safety
/// `a` is null or a live `object[]`, kept alive by the managed caller
/// while the returned values are used.
pub(crate) unsafe fn object_array(api: &'static Mono, a: Ptr) -> Vec<Arg> {
    if a.is_null() {
        return Vec::new();
    }
    // SAFETY: the caller's contract: `len` object references from element 0.
    unsafe {
        let len = (api.mono_array_length)(a);
        let data = (api.mono_array_addr_with_size)(a, std::mem::size_of::<Ptr>() as i32, 0);
        (0..len)
            .map(|i| Arg {
                api,
                obj: *data.cast::<Ptr>().add(i),
            })
            .collect()
    }
}

impl Arg {
    /// The value's class and whether it is one of the given.
    fn class(&self) -> Ptr {
        // SAFETY: `obj` is a live object (not null: checked by callers).
        unsafe { (self.api.mono_object_get_class)(self.obj) }
    }

    /// # Safety
    /// The object is a boxed `T`.
    unsafe fn unbox<T: Copy>(&self) -> T {
        // SAFETY: the caller's contract.
        unsafe { *(self.api.mono_object_unbox)(self.obj).cast::<T>() }
    }

    fn class_name(&self) -> String {
        // SAFETY: the class names are NUL-terminated strings Mono owns.
        unsafe {
            let k = self.class();
            let ns = std::ffi::CStr::from_ptr((self.api.mono_class_get_namespace)(k));
            let name = std::ffi::CStr::from_ptr((self.api.mono_class_get_name)(k));
            format!("{}.{}", ns.to_string_lossy(), name.to_string_lossy())
        }
    }
}

impl GuestValue for Arg {
    const FLOATS_ARE_NUMBERS: bool = false;
    const TEXT_IS_BYTES: bool = false;

    fn view(&self) -> Result<GuestView<'_, Self>, String> {
        if self.obj.is_null() {
            return Ok(GuestView::Null);
        }
        let api = self.api;
        let k = self.class();
        // SAFETY: each unbox reads the type the class says the box holds.
        unsafe {
            let int = |v: i128| Ok(GuestView::Int(Some(v)));
            if k == (api.mono_get_int64_class)() {
                return int(self.unbox::<i64>().into());
            }
            if k == (api.mono_get_int32_class)() {
                return int(self.unbox::<i32>().into());
            }
            if k == (api.mono_get_int16_class)() {
                return int(self.unbox::<i16>().into());
            }
            if k == (api.mono_get_sbyte_class)() {
                return int(self.unbox::<i8>().into());
            }
            if k == (api.mono_get_byte_class)() {
                return int(self.unbox::<u8>().into());
            }
            if k == (api.mono_get_uint16_class)() {
                return int(self.unbox::<u16>().into());
            }
            if k == (api.mono_get_uint32_class)() {
                return int(self.unbox::<u32>().into());
            }
            if k == (api.mono_get_uint64_class)() {
                return int(self.unbox::<u64>().into());
            }
            if k == (api.mono_get_double_class)() {
                return Ok(GuestView::Float(self.unbox::<f64>()));
            }
            if k == (api.mono_get_single_class)() {
                return Ok(GuestView::Float(self.unbox::<f32>().into()));
            }
            if k == (api.mono_get_boolean_class)() {
                return Ok(GuestView::Bool(self.unbox::<u8>() != 0));
            }
            if k == (api.mono_get_string_class)() {
                let s = string(api, self.obj).unwrap_or_default();
                return Ok(GuestView::Text(Cow::Owned(s.into_bytes())));
            }
            if (api.mono_class_get_rank)(k) == 1 {
                let elem = (api.mono_class_get_element_class)(k);
                if elem == (api.mono_get_byte_class)() {
                    return Ok(GuestView::Bytes(Cow::Owned(byte_array(api, self.obj))));
                }
                if elem == (api.mono_get_object_class)() {
                    return Ok(GuestView::Seq(object_array(api, self.obj)));
                }
            }
        }
        Ok(GuestView::Other(Cow::Owned(self.class_name())))
    }

    fn describe(&self) -> String {
        if self.obj.is_null() {
            "null".into()
        } else {
            self.class_name()
        }
    }
}

/// A definition's result as a .NET object for `Polyload.Call`: a boxed
/// `long` for signed integers, `ulong` for unsigned ones above `long`'s
/// range, `double`, `bool`, a `string` (`str`; `json` as JSON text), a
/// `byte[]`, or null (`void`).
///
/// # Safety
/// `domain` is the calling thread's live current domain.
pub(crate) unsafe fn to_object(api: &Mono, domain: Ptr, v: &Value) -> Result<Ptr, String> {
    // SAFETY: each box copies a value of the class's type.
    unsafe {
        let boxed =
            |class: Ptr, mut x: [u8; 8]| (api.mono_value_box)(domain, class, x.as_mut_ptr().cast());
        let long = |x: i64| boxed((api.mono_get_int64_class)(), x.to_ne_bytes());
        Ok(match v {
            Value::Void => std::ptr::null_mut(),
            Value::Bool(b) => boxed(
                (api.mono_get_boolean_class)(),
                [u8::from(*b), 0, 0, 0, 0, 0, 0, 0],
            ),
            Value::I8(x) => long((*x).into()),
            Value::I16(x) => long((*x).into()),
            Value::I32(x) => long((*x).into()),
            Value::I64(x) => long(*x),
            Value::U8(x) => long((*x).into()),
            Value::U16(x) => long((*x).into()),
            Value::U32(x) => long((*x).into()),
            Value::U64(x) => match i64::try_from(*x) {
                Ok(x) => long(x),
                Err(_) => boxed((api.mono_get_uint64_class)(), x.to_ne_bytes()),
            },
            Value::F32(x) => boxed((api.mono_get_double_class)(), f64::from(*x).to_ne_bytes()),
            Value::F64(x) => boxed((api.mono_get_double_class)(), x.to_ne_bytes()),
            Value::Str(s) => new_string(api, domain, s),
            Value::Json(j) => new_string(api, domain, &j.to_string()),
            Value::Bytes(b) => new_bytes(api, domain, b),
            other => {
                return Err(format!(
                    "a result of type {} does not cross into .NET",
                    other.kind()
                ))
            }
        })
    }
}
