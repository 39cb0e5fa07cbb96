//! Moving [`Value`]s into and out of C memory.

use crate::kind::Kind;
use crate::{alloc, FfiError, FfiType, Value};
use polyload_abi::PolyloadStr;
use std::ffi::{c_void, CString};

/// Owned storage that must outlive the call (C strings, buffers).
#[derive(Default)]
pub(crate) struct Keep {
    pub(crate) cstrings: Vec<CString>,
    buffers: Vec<Vec<u8>>,
}

/// Writes `value` (already checked against `ty`) at `dst` in C layout.
///
/// # Safety
/// `dst` must be valid for `ty.layout().size` bytes and suitably aligned.
pub(crate) unsafe fn write_value(
    dst: *mut u8,
    ty: &FfiType,
    value: &Value,
    index: usize,
    keep: &mut Keep,
) -> Result<(), FfiError> {
    // SAFETY: (whole body) the caller guarantees `dst` is valid and aligned
    // for `ty`; each arm writes exactly `ty`'s size.
    unsafe {
        match (ty, value) {
            (FfiType::Bool, Value::Bool(v)) => dst.write(*v as u8),
            (FfiType::I8, Value::I8(v)) => dst.cast::<i8>().write(*v),
            (FfiType::U8, Value::U8(v)) => dst.write(*v),
            (FfiType::I16, Value::I16(v)) => dst.cast::<i16>().write(*v),
            (FfiType::U16, Value::U16(v)) => dst.cast::<u16>().write(*v),
            (FfiType::I32, Value::I32(v)) => dst.cast::<i32>().write(*v),
            (FfiType::U32, Value::U32(v)) => dst.cast::<u32>().write(*v),
            (FfiType::I64, Value::I64(v)) => dst.cast::<i64>().write(*v),
            (FfiType::U64 | FfiType::Handle(_), Value::U64(v)) => dst.cast::<u64>().write(*v),
            (FfiType::F32, Value::F32(v)) => dst.cast::<f32>().write(*v),
            (FfiType::F64, Value::F64(v)) => dst.cast::<f64>().write(*v),
            (FfiType::Pointer | FfiType::Callback(_), Value::Ptr(v)) => {
                dst.cast::<usize>().write(*v)
            }
            (FfiType::CString, Value::Str(s)) => {
                let c = CString::new(s.as_bytes()).map_err(|e| FfiError::InteriorNul {
                    index,
                    offset: e.nul_position(),
                })?;
                dst.cast::<*const i8>().write(c.as_ptr().cast());
                keep.cstrings.push(c);
            }
            (FfiType::Str, Value::Str(s)) => {
                let buf = s.as_bytes().to_vec();
                dst.cast::<PolyloadStr>().write(PolyloadStr {
                    ptr: buf.as_ptr(),
                    len: buf.len(),
                });
                keep.buffers.push(buf);
            }
            (FfiType::Bytes, Value::Bytes(b)) => {
                let buf = b.clone();
                dst.cast::<PolyloadStr>().write(PolyloadStr {
                    ptr: buf.as_ptr(),
                    len: buf.len(),
                });
                keep.buffers.push(buf);
            }
            (FfiType::Json, Value::Json(j)) => {
                let buf = j.to_string().into_bytes();
                dst.cast::<PolyloadStr>().write(PolyloadStr {
                    ptr: buf.as_ptr(),
                    len: buf.len(),
                });
                keep.buffers.push(buf);
            }
            (FfiType::Struct(fields), Value::Struct(vals)) => {
                for ((f, off), v) in fields.iter().zip(FieldOffsets::new(fields)).zip(vals) {
                    write_value(dst.add(off), f, v, index, keep)?;
                }
            }
            (FfiType::Array(elem, _), Value::Array(vals)) => {
                let size = elem.layout().size;
                for (i, v) in vals.iter().enumerate() {
                    write_value(dst.add(i * size), elem, v, index, keep)?;
                }
            }
            _ => {
                return Err(FfiError::BadArgument {
                    index,
                    source: value.check(ty).expect_err("mismatch"),
                })
            }
        }
    }
    Ok(())
}

/// Whether a `str`/`bytes`/`json` buffer read by [`read_value`] is owned by
/// the reader (a returned buffer: copied, then freed with
/// [`alloc::polyload_free`]) or borrowed (an argument a callback receives:
/// copied only).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ownership {
    /// Copy, then free with `polyload_free(ptr, len, 1)`.
    Owned,
    /// Copy only.
    Borrowed,
}

/// Reads a value of type `ty` from `src`. Buffers returned as `str`, `bytes`
/// or `json` are copied and, when `own` is [`Ownership::Owned`], freed with
/// [`alloc::polyload_free`] (ownership passes to the caller, per the polyload
/// ABI). A `cstr` is copied and never freed (C functions return borrowed
/// strings).
///
/// # Safety
/// `src` must hold an initialised value of `ty` in C layout.
pub(crate) unsafe fn read_value(
    src: *const u8,
    ty: &FfiType,
    own: Ownership,
) -> Result<Value, FfiError> {
    let bad = |reason: String| FfiError::BadReturn {
        ty: ty.to_string(),
        reason,
    };
    // SAFETY: (whole body) the caller guarantees `src` holds a `ty`.
    unsafe {
        if let Some(v) = read_scalar(src, ty) {
            return Ok(v);
        }
        Ok(match ty {
            FfiType::CString => {
                let p = src.cast::<*const std::ffi::c_char>().read();
                if p.is_null() {
                    return Err(bad("null pointer".into()));
                }
                let s = std::ffi::CStr::from_ptr(p);
                Value::Str(s.to_str().map_err(|e| bad(e.to_string()))?.to_string())
            }
            FfiType::Str | FfiType::Bytes | FfiType::Json => {
                let s = src.cast::<PolyloadStr>().read();
                let bytes = s.as_bytes().to_vec();
                if own == Ownership::Owned && !s.ptr.is_null() && s.len > 0 {
                    alloc::polyload_free(s.ptr as *mut c_void, s.len, 1);
                }
                Value::from_buffer(ty, bytes).map_err(|e| bad(e.got))?
            }
            FfiType::Struct(fields) => Value::Struct(
                fields
                    .iter()
                    .zip(FieldOffsets::new(fields))
                    .map(|(f, off)| read_value(src.add(off), f, own))
                    .collect::<Result<_, _>>()?,
            ),
            FfiType::Array(elem, n) => {
                let size = elem.layout().size;
                Value::Array(
                    (0..*n)
                        .map(|i| read_value(src.add(i * size), elem, own))
                        .collect::<Result<_, _>>()?,
                )
            }
            _ => unreachable!("scalars are read above"),
        })
    }
}

/// Reads a number, `bool`, `void` or address of type `ty` at `src`
/// (`None` for other types).
///
/// # Safety
/// `src` must hold an initialised value of `ty` in C layout.
#[inline]
pub(crate) unsafe fn read_scalar(src: *const u8, ty: &FfiType) -> Option<Value> {
    match ty {
        FfiType::Void => Some(Value::Void),
        // A `cstr` is read as text by the callers, not as its address.
        FfiType::CString => None,
        // SAFETY: the caller guarantees `src` holds a `ty`, which is the
        // kind's C type.
        t => Kind::of(t).map(|k| unsafe { k.read_value(src) }),
    }
}

/// Reads a *plain* value (a number, an address, or a struct or array made
/// of them; no strings) of type `ty` at `src`. Cannot fail: every bit
/// pattern of these types is a value.
///
/// # Safety
/// `src` must hold an initialised value of `ty` in C layout, and `ty` must
/// be plain.
pub(crate) unsafe fn read_plain(src: *const u8, ty: &FfiType) -> Value {
    // SAFETY: (whole body) the caller guarantees `src` holds a `ty`; field
    // and element offsets stay inside it.
    unsafe {
        match ty {
            FfiType::Struct(fields) => {
                let mut out = Vec::with_capacity(fields.len());
                for (f, off) in fields.iter().zip(FieldOffsets::new(fields)) {
                    out.push(read_plain(src.add(off), f));
                }
                Value::Struct(out)
            }
            FfiType::Array(elem, n) => {
                let size = elem.layout().size;
                Value::Array(
                    (0..*n)
                        .map(|i| read_plain(src.add(i * size), elem))
                        .collect(),
                )
            }
            t => read_scalar(src, t).expect("plain types are scalars, structs and arrays"),
        }
    }
}

/// Writes `value` (already checked against `ty`) at `dst` as a value that
/// leaves Rust for C with a transfer of ownership: a callback's result.
///
/// `str`/`bytes`/`json` are copied into a buffer from
/// [`alloc::polyload_alloc`]`(len, 1)` that the receiver frees with
/// `polyload_free(ptr, len, 1)` (null with length 0 for the empty value). A
/// `cstr` is copied into `cstr_slot`, which must outlive the receiver's use.
///
/// # Safety
/// `dst` must be valid for `ty.layout().size` bytes and suitably aligned.
pub(crate) unsafe fn write_owned(
    dst: *mut u8,
    ty: &FfiType,
    value: &Value,
    cstr_slot: &mut Option<CString>,
) -> Result<(), String> {
    let buffer = |bytes: &[u8]| -> PolyloadStr {
        if bytes.is_empty() {
            return PolyloadStr {
                ptr: std::ptr::null(),
                len: 0,
            };
        }
        // SAFETY: `polyload_alloc` is always safe to call.
        let p = unsafe { alloc::polyload_alloc(bytes.len(), 1) }.cast::<u8>();
        assert!(!p.is_null(), "polyload_alloc({}) failed", bytes.len());
        // SAFETY: `p` is a fresh allocation of `bytes.len()` bytes.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) };
        PolyloadStr {
            ptr: p,
            len: bytes.len(),
        }
    };
    // SAFETY: (whole body) the caller guarantees `dst` is valid and aligned
    // for `ty`; each arm writes at most `ty`'s size.
    unsafe {
        match (ty, value) {
            (FfiType::Str, Value::Str(s)) => dst.cast::<PolyloadStr>().write(buffer(s.as_bytes())),
            (FfiType::Bytes, Value::Bytes(b)) => dst.cast::<PolyloadStr>().write(buffer(b)),
            (FfiType::Json, Value::Json(j)) => dst
                .cast::<PolyloadStr>()
                .write(buffer(j.to_string().as_bytes())),
            (FfiType::CString, Value::Str(s)) => {
                let c = CString::new(s.as_bytes()).map_err(|e| {
                    format!(
                        "returned string contains an interior NUL byte at offset {}",
                        e.nul_position()
                    )
                })?;
                dst.cast::<*const std::ffi::c_char>().write(c.as_ptr());
                *cstr_slot = Some(c);
            }
            (FfiType::Struct(fields), Value::Struct(vals)) => {
                for ((f, off), v) in fields.iter().zip(FieldOffsets::new(fields)).zip(vals) {
                    write_owned(dst.add(off), f, v, cstr_slot)?;
                }
            }
            (FfiType::Array(elem, _), Value::Array(vals)) => {
                let size = elem.layout().size;
                for (i, v) in vals.iter().enumerate() {
                    write_owned(dst.add(i * size), elem, v, cstr_slot)?;
                }
            }
            _ => {
                let mut keep = Keep::default();
                write_value(dst, ty, value, 0, &mut keep).map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(())
}

/// Field offsets of a struct computed on the fly (C layout, as
/// [`FfiType::field_offsets`]) without allocating: the marshalling hot path.
pub(crate) struct FieldOffsets<'a> {
    fields: std::slice::Iter<'a, FfiType>,
    next: usize,
}

impl<'a> FieldOffsets<'a> {
    pub(crate) fn new(fields: &'a [FfiType]) -> Self {
        Self {
            fields: fields.iter(),
            next: 0,
        }
    }
}

impl Iterator for FieldOffsets<'_> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        let l = self.fields.next()?.layout();
        let off = self.next.next_multiple_of(l.align);
        self.next = off + l.size;
        Some(off)
    }
}
