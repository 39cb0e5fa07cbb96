//! Untagged scalar values in C representation: [`FfiValue`] and [`TypedArg`].

use crate::{FfiError, FfiType, Value, ValueError};
use std::ffi::c_void;
use std::fmt;

/// One scalar in C representation: a `#[repr(C)]` union of every scalar
/// kind, 8 bytes, each field at offset 0 (so a pointer to an `FfiValue` is a
/// pointer to the scalar, on either endianness).
///
/// The kind is not stored: it comes from the [`FfiType`] next to it
/// ([`TypedArg`]) or from the [`Call`](crate::Call)'s declared types. All
/// constructors zero the whole union first, so every accessor is safe: it
/// reinterprets the bytes (like a C union read) and never reads
/// uninitialised memory. `bool` is stored as one byte, 0 or 1.
#[repr(C)]
#[derive(Clone, Copy)]
pub union FfiValue {
    bits: u64,
    b: u8,
    i8: i8,
    u8: u8,
    i16: i16,
    u16: u16,
    i32: i32,
    u32: u32,
    i64: i64,
    u64: u64,
    f32: f32,
    f64: f64,
    addr: usize,
}

macro_rules! scalar_accessors {
    ($($field:ident: $t:ty, $ctor:ident, $get:ident;)*) => {
        impl FfiValue {
            $(
                #[doc = concat!("A `", stringify!($t), "` (the rest of the union zeroed).")]
                pub fn $ctor(v: $t) -> Self {
                    let mut x = FfiValue { bits: 0 };
                    x.$field = v;
                    x
                }
                #[doc = concat!("The bytes read as a `", stringify!($t), "`.")]
                pub fn $get(self) -> $t {
                    // SAFETY: the union is always fully initialised (every
                    // constructor writes `bits` first) and every bit pattern
                    // is a valid value of this field's type.
                    unsafe { self.$field }
                }
            )*
        }
    };
}

scalar_accessors! {
    i8: i8, i8, as_i8;
    u8: u8, u8, as_u8;
    i16: i16, i16, as_i16;
    u16: u16, u16, as_u16;
    i32: i32, i32, as_i32;
    u32: u32, u32, as_u32;
    i64: i64, i64, as_i64;
    u64: u64, u64, as_u64;
    f32: f32, f32, as_f32;
    f64: f64, f64, as_f64;
    addr: usize, addr, as_addr;
}

impl FfiValue {
    /// Zero (also the value of a `void` result).
    pub const ZERO: FfiValue = FfiValue { bits: 0 };

    /// A C `_Bool`: one byte, 0 or 1.
    pub fn bool(v: bool) -> Self {
        Self::u8(v as u8)
    }

    /// The byte read as a `_Bool` (non-zero is true).
    pub fn as_bool(self) -> bool {
        self.as_u8() != 0
    }

    /// A pointer (`ptr`, `cstr` or callback argument).
    pub fn ptr(p: *const c_void) -> Self {
        Self::addr(p as usize)
    }

    /// The bytes read as a pointer.
    pub fn as_ptr(self) -> *mut c_void {
        self.as_addr() as *mut c_void
    }

    /// All 8 bytes as a `u64` (the raw representation).
    pub fn to_bits(self) -> u64 {
        self.as_u64()
    }

    /// The scalar `value` converted for type `ty` (same kind required; a
    /// `ptr`/callback takes [`Value::Ptr`]).
    ///
    /// # Errors
    /// [`FfiError::BadArgument`] (index 0) when the kinds differ, and
    /// [`FfiError::Unsupported`] for non-scalar types (`cstr`, `str`,
    /// `bytes`, `json`, structs: their C form needs storage; use
    /// [`Call::call`](crate::Call::call) with [`Value`]s).
    pub fn from_value(ty: &FfiType, value: &Value) -> Result<Self, FfiError> {
        let bad = || FfiError::BadArgument {
            index: 0,
            source: value.check(ty).err().unwrap_or_else(|| ValueError {
                expected: ty.to_string(),
                got: value.kind().to_string(),
            }),
        };
        Ok(match (ty, value) {
            (FfiType::Bool, Value::Bool(v)) => Self::bool(*v),
            (FfiType::I8, Value::I8(v)) => Self::i8(*v),
            (FfiType::U8, Value::U8(v)) => Self::u8(*v),
            (FfiType::I16, Value::I16(v)) => Self::i16(*v),
            (FfiType::U16, Value::U16(v)) => Self::u16(*v),
            (FfiType::I32, Value::I32(v)) => Self::i32(*v),
            (FfiType::U32, Value::U32(v)) => Self::u32(*v),
            (FfiType::I64, Value::I64(v)) => Self::i64(*v),
            (FfiType::U64 | FfiType::Handle(_), Value::U64(v)) => Self::u64(*v),
            (FfiType::F32, Value::F32(v)) => Self::f32(*v),
            (FfiType::F64, Value::F64(v)) => Self::f64(*v),
            (FfiType::Pointer | FfiType::Callback(_), Value::Ptr(v)) => Self::addr(*v),
            (t, _) if !is_scalar(t) => {
                return Err(FfiError::Unsupported {
                    what: format!("`{t}` as an FfiValue (not a scalar)"),
                })
            }
            _ => return Err(bad()),
        })
    }

    /// The union read as a [`Value`] of type `ty` (`void` gives
    /// [`Value::Void`], a `cstr` gives its address as [`Value::Ptr`]).
    ///
    /// # Errors
    /// [`FfiError::Unsupported`] for `str`, `bytes`, `json`, structs and arrays.
    pub fn to_value(self, ty: &FfiType) -> Result<Value, FfiError> {
        Ok(match ty {
            FfiType::Void => Value::Void,
            FfiType::Bool => Value::Bool(self.as_bool()),
            FfiType::I8 => Value::I8(self.as_i8()),
            FfiType::U8 => Value::U8(self.as_u8()),
            FfiType::I16 => Value::I16(self.as_i16()),
            FfiType::U16 => Value::U16(self.as_u16()),
            FfiType::I32 => Value::I32(self.as_i32()),
            FfiType::U32 => Value::U32(self.as_u32()),
            FfiType::I64 => Value::I64(self.as_i64()),
            FfiType::U64 | FfiType::Handle(_) => Value::U64(self.as_u64()),
            FfiType::F32 => Value::F32(self.as_f32()),
            FfiType::F64 => Value::F64(self.as_f64()),
            FfiType::Pointer | FfiType::CString | FfiType::Callback(_) => {
                Value::Ptr(self.as_addr())
            }
            t => {
                return Err(FfiError::Unsupported {
                    what: format!("`{t}` as an FfiValue (not a scalar)"),
                })
            }
        })
    }
}

/// Whether `ty` fits in an [`FfiValue`]: `void`, integers, floats, `ptr`,
/// `cstr` (as its address) and callbacks.
pub fn is_scalar(ty: &FfiType) -> bool {
    ty.is_integer()
        || ty.is_float()
        || matches!(
            ty,
            FfiType::Void | FfiType::Pointer | FfiType::CString | FfiType::Callback(_)
        )
}

impl Default for FfiValue {
    fn default() -> Self {
        Self::ZERO
    }
}

impl fmt::Debug for FfiValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FfiValue({:#018x})", self.to_bits())
    }
}

impl PartialEq for FfiValue {
    /// Bitwise equality of the 8 bytes.
    fn eq(&self, other: &Self) -> bool {
        self.to_bits() == other.to_bits()
    }
}

macro_rules! from_prim {
    ($($t:ty => $ctor:ident),*) => {$(
        impl From<$t> for FfiValue {
            fn from(v: $t) -> Self { Self::$ctor(v) }
        }
    )*};
}
from_prim!(i8 => i8, u8 => u8, i16 => i16, u16 => u16, i32 => i32, u32 => u32, i64 => i64,
    u64 => u64, f32 => f32, f64 => f64, bool => bool);

/// A scalar argument with its C type, for [`call_extern`](crate::call_extern).
#[derive(Clone, Debug, PartialEq)]
pub struct TypedArg {
    /// The parameter's C type (a scalar: see [`is_scalar`]).
    pub ty: FfiType,
    /// The value, read as `ty`.
    pub value: FfiValue,
}

impl TypedArg {
    /// An argument of type `ty`.
    pub fn new(ty: FfiType, value: impl Into<FfiValue>) -> Self {
        Self {
            ty,
            value: value.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_share_offset_zero_and_constructors_zero_the_rest() {
        assert_eq!(std::mem::size_of::<FfiValue>(), 8);
        assert_eq!(FfiValue::i8(-1).to_bits(), 0xff);
        assert_eq!(FfiValue::i32(-1).as_u32(), u32::MAX);
        assert_eq!(FfiValue::f32(1.5).as_f32(), 1.5);
        assert!(FfiValue::bool(true).as_bool());
        let v = FfiValue::from_value(&FfiType::I16, &Value::I16(-7)).unwrap();
        assert_eq!(v.to_value(&FfiType::I16).unwrap(), Value::I16(-7));
        assert!(FfiValue::from_value(&FfiType::I16, &Value::I32(1)).is_err());
        assert!(FfiValue::from_value(&FfiType::Str, &Value::Str("x".into())).is_err());
    }
}
