//! The Rust functions a [marshaller](super::Marshaller) calls to read and
//! write [`Value`]s, whose layout is Rust's (unspecified) and so is never
//! touched by generated code. Each is specific to one [`Kind`], so it
//! compiles to a tag test and a load, or a tag store and a payload store:
//! no dispatch on the kind at run time.

use crate::kind::Kind;
use crate::Value;
use std::alloc::Layout;
use std::mem::{align_of, MaybeUninit};

/// A word and whether it is valid, returned in `rax:rdx` (System V AMD64
/// ABI §3.2.3: a struct of two INTEGER eightbytes comes back in `rax`,
/// then `rdx`; cranelift returns two `i64` results in the same registers).
#[repr(C)]
pub(super) struct Word {
    /// The register image of the value ([`Kind::bits_from_value`]).
    bits: u64,
    /// 1 when the value had the kind, 0 when not (then `bits` is 0).
    ok: u64,
}

/// A new allocation for a struct result's fields: `size` bytes aligned
/// for `Value`, the layout of `[Value; n]` when `size` is `n` times the
/// size of a `Value` (so it can become a `Vec` of capacity `n`). Aborts
/// when memory runs out, as `Vec` does.
///
/// # Safety
/// `size` is not zero and is such a multiple (the marshaller computes it
/// when compiled).
pub(super) unsafe extern "C" fn alloc_values(size: usize) -> *mut u8 {
    // SAFETY: `Value`'s alignment is a power of two and `size`, a multiple
    // of `Value`'s size (itself a multiple of its alignment) that fits an
    // allocation the marshaller's compiler computed, does not overflow
    // `isize` when rounded up to it.
    let layout = unsafe { Layout::from_size_align_unchecked(size, align_of::<Value>()) };
    // SAFETY: the layout is not zero-sized (the caller's contract).
    let p = unsafe { std::alloc::alloc(layout) };
    if p.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    p
}

/// The fields of `*v` when it is a [`Value::Struct`] of exactly `n`
/// fields, null otherwise.
///
/// # Safety
/// `v` points to a live `Value` (the pointer returned is valid as long as
/// it is and is not mutated).
pub(super) unsafe extern "C" fn struct_fields(v: *const Value, n: u64) -> *const Value {
    // SAFETY: the caller's contract.
    match unsafe { &*v } {
        Value::Struct(fields) if fields.len() as u64 == n => fields.as_ptr(),
        _ => std::ptr::null(),
    }
}

/// The elements of `*v` when it is a [`Value::Array`] of exactly `n`
/// elements, null otherwise.
///
/// # Safety
/// As [`struct_fields`].
pub(super) unsafe extern "C" fn array_elems(v: *const Value, n: u64) -> *const Value {
    // SAFETY: the caller's contract.
    match unsafe { &*v } {
        Value::Array(elems) if elems.len() as u64 == n => elems.as_ptr(),
        _ => std::ptr::null(),
    }
}

/// Writes `Value::Struct` of the `n` values at `p` to `*dst`, taking
/// ownership of that allocation.
///
/// # Safety
/// `p` is an allocation from [`alloc_values`] of `n` values, all
/// initialised, owned by no one else; `dst` is valid for a write of a
/// `Value`, and aligned.
pub(super) unsafe extern "C" fn put_struct(dst: *mut MaybeUninit<Value>, p: *mut Value, n: usize) {
    // SAFETY: the caller's contract: that allocation is a `Vec` of length
    // and capacity `n` (the layout of `[Value; n]`).
    unsafe { (*dst).write(Value::Struct(Vec::from_raw_parts(p, n, n))) };
}

/// As [`put_struct`], writing a `Value::Array`.
///
/// # Safety
/// As [`put_struct`].
pub(super) unsafe extern "C" fn put_array(dst: *mut MaybeUninit<Value>, p: *mut Value, n: usize) {
    // SAFETY: as in `put_struct`.
    unsafe { (*dst).write(Value::Array(Vec::from_raw_parts(p, n, n))) };
}

macro_rules! per_kind_helpers {
    ($($kind:ident => $get:ident, $put:ident;)*) => {
        $(
            /// The register image of `*v` if it is a value of this kind.
            ///
            /// # Safety
            /// `v` points to a live `Value`.
            unsafe extern "C" fn $get(v: *const Value) -> Word {
                // SAFETY: the caller's contract.
                match Kind::$kind.bits_from_value(unsafe { &*v }) {
                    Some(bits) => Word { bits, ok: 1 },
                    None => Word { bits: 0, ok: 0 },
                }
            }

            /// Writes the value of this kind in the low bytes of `w` to
            /// `*dst` (as [`Kind::value_in_word`] reads it).
            ///
            /// # Safety
            /// `dst` is valid for a write of a `Value`, and aligned.
            unsafe extern "C" fn $put(dst: *mut MaybeUninit<Value>, w: u64) {
                // SAFETY: the caller's contract.
                unsafe { (*dst).write(Kind::$kind.value_in_word(w)) };
            }
        )*

        /// The address of the reader of kind `k`, an
        /// `unsafe extern "C" fn(*const Value) -> Word`; `None` for `cstr`
        /// (which needs storage, so never takes a marshaller).
        pub(super) fn getter(k: Kind) -> Option<*const u8> {
            Some(match k {
                $(Kind::$kind => $get as *const u8,)*
                Kind::CStr => return None,
            })
        }

        /// The address of the writer of kind `k`, an
        /// `unsafe extern "C" fn(*mut MaybeUninit<Value>, u64)`; `None` for
        /// `cstr`.
        pub(super) fn putter(k: Kind) -> Option<*const u8> {
            Some(match k {
                $(Kind::$kind => $put as *const u8,)*
                Kind::CStr => return None,
            })
        }
    };
}

per_kind_helpers! {
    Bool => get_bool, put_bool;
    I8 => get_i8, put_i8;
    U8 => get_u8, put_u8;
    I16 => get_i16, put_i16;
    U16 => get_u16, put_u16;
    I32 => get_i32, put_i32;
    U32 => get_u32, put_u32;
    I64 => get_i64, put_i64;
    U64 => get_u64, put_u64;
    F32 => get_f32, put_f32;
    F64 => get_f64, put_f64;
    Ptr => get_ptr, put_ptr;
}
