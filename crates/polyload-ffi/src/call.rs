//! Calls through libffi by [`Signature`]: the general path.

use crate::{alloc, FfiType, Signature, Value, ValueError};
use libffi::middle::{Arg, Cif, CodePtr, Ret, Type};
use polyload_abi::PolyloadStr;
use std::ffi::{c_void, CString};

/// Why a dynamic call could not be made or its result not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FfiError {
    /// The number of arguments differs from the signature's.
    #[error("expected {expected} argument(s), got {got}")]
    ArgCount {
        /// Parameters in the signature (fixed ones, for a variadic function).
        expected: usize,
        /// Arguments given.
        got: usize,
    },
    /// An argument does not fit its parameter's type.
    #[error("argument {index}: {source}")]
    BadArgument {
        /// 0-based position.
        index: usize,
        /// What was wrong.
        source: ValueError,
    },
    /// A `cstr` argument contains a NUL byte before its end.
    #[error("argument {index}: string contains an interior NUL byte at offset {offset}, so it cannot be passed as cstr")]
    InteriorNul {
        /// 0-based position.
        index: usize,
        /// Byte offset of the first NUL.
        offset: usize,
    },
    /// The callee returned something its signature's type cannot hold
    /// (invalid UTF-8 in a `str`, invalid JSON in a `json`).
    #[error("invalid {ty} returned: {reason}")]
    BadReturn {
        /// The declared return type.
        ty: String,
        /// What was wrong.
        reason: String,
    },
    /// libffi refused the call interface (an unsupported type combination).
    #[error("libffi cannot prepare a call interface for `{signature}`: {reason}")]
    Prepare {
        /// The signature.
        signature: String,
        /// libffi's status.
        reason: String,
    },
}

/// The libffi type of a polyload type. `str`/`bytes`/`json` are the
/// two-word `PolyloadStr` struct; arrays inside structs are expanded into
/// their elements (libffi has no array type; the layout is identical).
pub fn libffi_type(ty: &FfiType) -> Type {
    match ty {
        FfiType::Void => Type::void(),
        FfiType::Bool | FfiType::U8 => Type::u8(),
        FfiType::I8 => Type::i8(),
        FfiType::I16 => Type::i16(),
        FfiType::U16 => Type::u16(),
        FfiType::I32 => Type::i32(),
        FfiType::U32 => Type::u32(),
        FfiType::I64 => Type::i64(),
        FfiType::U64 => Type::u64(),
        FfiType::F32 => Type::f32(),
        FfiType::F64 => Type::f64(),
        FfiType::Pointer | FfiType::CString | FfiType::Callback(_) => Type::pointer(),
        FfiType::Str | FfiType::Bytes | FfiType::Json => {
            Type::structure([Type::pointer(), Type::usize()])
        }
        FfiType::Struct(fields) => {
            let mut flat = Vec::new();
            for f in fields {
                push_flat(f, &mut flat);
            }
            Type::structure(flat)
        }
        FfiType::Array(..) => {
            let mut flat = Vec::new();
            push_flat(ty, &mut flat);
            Type::structure(flat)
        }
    }
}

fn push_flat(ty: &FfiType, out: &mut Vec<Type>) {
    match ty {
        FfiType::Array(elem, n) => {
            for _ in 0..*n {
                push_flat(elem, out);
            }
        }
        t => out.push(libffi_type(t)),
    }
}

/// An 16-byte-aligned scratch buffer for one argument or the return value.
#[derive(Clone)]
pub(crate) struct Slot(Vec<u128>);

impl Slot {
    pub(crate) fn new(size: usize) -> Self {
        // libffi writes integer returns as a full `ffi_arg` (8 bytes).
        Slot(vec![0u128; size.max(16).div_ceil(16)])
    }
    pub(crate) fn ptr(&mut self) -> *mut u8 {
        self.0.as_mut_ptr().cast()
    }
}

/// Owned storage that must outlive the call (C strings, buffers).
#[derive(Default)]
pub(crate) struct Keep {
    cstrings: Vec<CString>,
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
    // SAFETY (whole body): the caller guarantees `dst` is valid and aligned
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
            (FfiType::U64, Value::U64(v)) => dst.cast::<u64>().write(*v),
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
                for ((f, off), v) in fields.iter().zip(ty.field_offsets()).zip(vals) {
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

/// Reads a value of type `ty` from `src`. Buffers returned as `str`, `bytes`
/// or `json` are copied and then freed with [`alloc::polyload_free`]
/// (ownership passes to the caller, per the polyload ABI). A `cstr` result is
/// copied and not freed (C functions return borrowed strings).
///
/// # Safety
/// `src` must hold an initialised value of `ty` in C layout.
pub(crate) unsafe fn read_value(src: *const u8, ty: &FfiType) -> Result<Value, FfiError> {
    let bad = |reason: String| FfiError::BadReturn {
        ty: ty.to_string(),
        reason,
    };
    // SAFETY (whole body): the caller guarantees `src` holds a `ty`.
    unsafe {
        Ok(match ty {
            FfiType::Void => Value::Void,
            FfiType::Bool => Value::Bool(src.read() != 0),
            FfiType::I8 => Value::I8(src.cast::<i8>().read()),
            FfiType::U8 => Value::U8(src.read()),
            FfiType::I16 => Value::I16(src.cast::<i16>().read()),
            FfiType::U16 => Value::U16(src.cast::<u16>().read()),
            FfiType::I32 => Value::I32(src.cast::<i32>().read()),
            FfiType::U32 => Value::U32(src.cast::<u32>().read()),
            FfiType::I64 => Value::I64(src.cast::<i64>().read()),
            FfiType::U64 => Value::U64(src.cast::<u64>().read()),
            FfiType::F32 => Value::F32(src.cast::<f32>().read()),
            FfiType::F64 => Value::F64(src.cast::<f64>().read()),
            FfiType::Pointer | FfiType::Callback(_) => Value::Ptr(src.cast::<usize>().read()),
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
                if !s.ptr.is_null() && s.len > 0 {
                    alloc::polyload_free(s.ptr as *mut c_void, s.len, 1);
                }
                match ty {
                    FfiType::Bytes => Value::Bytes(bytes),
                    FfiType::Str => {
                        Value::Str(String::from_utf8(bytes).map_err(|e| bad(e.to_string()))?)
                    }
                    _ => Value::Json(
                        serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?,
                    ),
                }
            }
            FfiType::Struct(fields) => Value::Struct(
                fields
                    .iter()
                    .zip(ty.field_offsets())
                    .map(|(f, off)| read_value(src.add(off), f))
                    .collect::<Result<_, _>>()?,
            ),
            FfiType::Array(elem, n) => {
                let size = elem.layout().size;
                Value::Array(
                    (0..*n)
                        .map(|i| read_value(src.add(i * size), elem))
                        .collect::<Result<_, _>>()?,
                )
            }
        })
    }
}

/// A prepared call interface for one non-variadic signature: reuse it to
/// call many functions of that signature without re-preparing libffi state.
pub struct PreparedCall {
    signature: Signature,
    cif: Cif,
}

impl std::fmt::Debug for PreparedCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedCall")
            .field("signature", &self.signature.to_string())
            .finish()
    }
}

impl PreparedCall {
    /// Prepares libffi's call interface for `signature`.
    ///
    /// # Errors
    /// [`FfiError::Prepare`] for a variadic signature (use the `CallBuilder`
    /// path, which knows the variadic argument types) or when libffi refuses.
    pub fn new(signature: &Signature) -> Result<Self, FfiError> {
        if signature.variadic {
            return Err(FfiError::Prepare {
                signature: signature.to_string(),
                reason: "variadic signatures need the types of the variadic arguments".into(),
            });
        }
        let cif = Cif::try_new(
            signature.params.iter().map(libffi_type),
            libffi_type(&signature.ret),
        )
        .map_err(|e| FfiError::Prepare {
            signature: signature.to_string(),
            reason: format!("{e:?}"),
        })?;
        Ok(Self {
            signature: signature.clone(),
            cif,
        })
    }

    /// The signature this interface was prepared for.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// Calls `code` with `args`, checked against the signature.
    ///
    /// # Errors
    /// [`FfiError::ArgCount`], [`FfiError::BadArgument`],
    /// [`FfiError::InteriorNul`] before the call; [`FfiError::BadReturn`] after.
    ///
    /// # Safety
    /// `code` must be the address of a C function with exactly this
    /// signature, and any `ptr` argument must be valid for what the callee
    /// does with it.
    pub unsafe fn call(&self, code: *const c_void, args: &[Value]) -> Result<Value, FfiError> {
        let sig = &self.signature;
        if args.len() != sig.params.len() {
            return Err(FfiError::ArgCount {
                expected: sig.params.len(),
                got: args.len(),
            });
        }
        let mut keep = Keep::default();
        let mut slots = Vec::with_capacity(args.len());
        for (i, (ty, v)) in sig.params.iter().zip(args).enumerate() {
            v.check(ty)
                .map_err(|source| FfiError::BadArgument { index: i, source })?;
            let mut slot = Slot::new(ty.layout().size);
            // SAFETY: the slot is at least the type's size and 16-aligned.
            unsafe { write_value(slot.ptr(), ty, v, i, &mut keep)? };
            slots.push(slot);
        }
        let ffi_args: Vec<Arg> = slots.iter_mut().map(|s| Arg::new(&*s.0)).collect();
        let mut ret = Slot::new(sig.ret.layout().size);
        // SAFETY: the caller guarantees `code` has this signature; the
        // argument slots hold values of the declared types; the return slot
        // is large enough for the return type (at least `ffi_arg`).
        unsafe {
            self.cif.call_return_into(
                CodePtr::from_ptr(code),
                &ffi_args,
                Ret::new(&mut ret.0[..]),
            );
            drop(keep);
            read_value(ret.ptr(), &sig.ret)
        }
    }
}
