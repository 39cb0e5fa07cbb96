//! Calls through libffi by [`Signature`]: the general path.

use crate::marshal::{read_value, write_value, Keep, Ownership, Slot};
use crate::{FfiError, FfiType, Signature, Value};
use libffi::middle::{Arg, Cif, CodePtr, Ret, Type};
use std::ffi::c_void;

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
            self.cif
                .call_return_into(CodePtr::from_ptr(code), &ffi_args, Ret::new(&mut ret.0[..]));
            drop(keep);
            read_value(ret.ptr(), &sig.ret, Ownership::Owned)
        }
    }
}
