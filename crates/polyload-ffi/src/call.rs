//! libffi's types for polyload's: the general call path (`CallBuilder`
//! with libffi, callbacks) prepares its call interfaces with these.

use crate::FfiType;
use libffi::middle::Type;

/// The libffi type of a polyload type. `str`/`bytes`/`json` are the
/// two-word `PolyloadStr` struct; arrays inside structs are expanded into
/// their elements (libffi has no array type; the layout is identical).
pub(crate) fn libffi_type(ty: &FfiType) -> Type {
    match ty {
        FfiType::Void => Type::void(),
        FfiType::Bool | FfiType::U8 => Type::u8(),
        FfiType::I8 => Type::i8(),
        FfiType::I16 => Type::i16(),
        FfiType::U16 => Type::u16(),
        FfiType::I32 => Type::i32(),
        FfiType::U32 => Type::u32(),
        FfiType::I64 => Type::i64(),
        FfiType::U64 | FfiType::Handle(_) => Type::u64(),
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
