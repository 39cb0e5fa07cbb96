//! The scalar kinds of the call stubs ([`Kind`]): how a value of each is
//! checked, extended into a register word, read back from one and read
//! from C memory. Shared by the stub plans (`stub.rs`) and flat structs
//! (`flat.rs`).

use crate::{FfiType, FfiValue, Value};

/// The scalar kind of a parameter or return on the stub path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F32,
    F64,
    /// `ptr` and callbacks: an address.
    Ptr,
    /// `cstr`: an address; from a [`Value::Str`] a NUL-terminated copy.
    CStr,
}

/// Runs `$body` with `$variant`/`$ty` bound to the [`Value`] variant and
/// the Rust type of kind `$kind` (`Ptr` and `CStr` as `usize` addresses,
/// `Bool` as `bool`), so a loop over uniform fields is compiled once per
/// kind with no dispatch inside it.
macro_rules! per_kind {
    ($kind:expr, |$variant:ident, $ty:ident| $body:expr) => {{
        macro_rules! with {
            ($v:ident, $t:ty) => {{
                #[allow(non_camel_case_types, dead_code, reason = "the caller names the type; not every body uses it")]
                type $ty = $t;
                macro_rules! $variant {
                    ($x:pat) => {
                        Value::$v($x)
                    };
                    (@new $e:expr) => {
                        Value::$v($e)
                    };
                }
                $body
            }};
        }
        match $kind {
            Kind::Bool => with!(Bool, bool),
            Kind::I8 => with!(I8, i8),
            Kind::U8 => with!(U8, u8),
            Kind::I16 => with!(I16, i16),
            Kind::U16 => with!(U16, u16),
            Kind::I32 => with!(I32, i32),
            Kind::U32 => with!(U32, u32),
            Kind::I64 => with!(I64, i64),
            Kind::U64 => with!(U64, u64),
            Kind::F32 => with!(F32, f32),
            Kind::F64 => with!(F64, f64),
            Kind::Ptr | Kind::CStr => with!(Ptr, usize),
        }
    }};
}
pub(crate) use per_kind;

/// Runs `$body` for `$i` in `0..$n`, with the first four indices each in a
/// copy of the body of its own: a body that dispatches on a kind (a
/// [`per_kind!`] or a `match` compiled to a jump table) then has one
/// indirect jump per argument or field position. In a plain loop over
/// values of different kinds, one indirect jump goes to a different target
/// on each trip, which branch predictors often miss; a copy per position
/// sees the same target on every call of one signature. `$body` may
/// `return` from the enclosing function.
macro_rules! unrolled {
    ($n:expr, |$i:ident| $body:block) => {{
        let n: usize = $n;
        if n > 0 {
            let $i: usize = 0;
            $body
        }
        if n > 1 {
            let $i: usize = 1;
            $body
        }
        if n > 2 {
            let $i: usize = 2;
            $body
        }
        if n > 3 {
            let $i: usize = 3;
            $body
        }
        for $i in 4..n {
            $body
        }
    }};
}
pub(crate) use unrolled;

/// The Rust type of a [`Kind`]: its C bit pattern and C representation.
pub(crate) trait Bits: Copy {
    /// The C bit pattern, zero-extended to 64 bits.
    fn bits(self) -> u64;
    /// The value in the low bytes of `w` (higher bits ignored).
    fn from_word(w: u64) -> Self;
    /// Reads the value's C representation at `p`.
    ///
    /// # Safety
    /// `p` must point to an initialised value of the C type, aligned for it.
    #[inline(always)]
    unsafe fn read(p: *const u8) -> Self {
        // SAFETY: the caller's contract; every bit pattern of the numeric
        // types is a value (`bool` overrides this).
        unsafe { p.cast::<Self>().read() }
    }
}

macro_rules! bits_int {
    ($($t:ty => $u:ty),*) => {$(
        impl Bits for $t {
            #[inline(always)]
            fn bits(self) -> u64 {
                self as $u as u64
            }
            #[inline(always)]
            fn from_word(w: u64) -> Self {
                w as $t
            }
        }
    )*};
}
bits_int!(i8 => u8, u8 => u8, i16 => u16, u16 => u16, i32 => u32, u32 => u32, i64 => u64, u64 => u64, usize => usize);

impl Bits for bool {
    #[inline(always)]
    fn bits(self) -> u64 {
        u64::from(self)
    }
    #[inline(always)]
    fn from_word(w: u64) -> Self {
        w as u8 != 0
    }
    /// Read as a byte: `_Bool` is 0 or 1 (psABI §3.1.2), and no other
    /// pattern may become a Rust `bool`.
    #[inline(always)]
    unsafe fn read(p: *const u8) -> Self {
        // SAFETY: the caller's contract; any byte is a `u8`.
        unsafe { p.read() != 0 }
    }
}
impl Bits for f32 {
    #[inline(always)]
    fn bits(self) -> u64 {
        u64::from(self.to_bits())
    }
    #[inline(always)]
    fn from_word(w: u64) -> Self {
        f32::from_bits(w as u32)
    }
}
impl Bits for f64 {
    #[inline(always)]
    fn bits(self) -> u64 {
        self.to_bits()
    }
    #[inline(always)]
    fn from_word(w: u64) -> Self {
        f64::from_bits(w)
    }
}

impl Kind {
    /// Every kind, in declaration order (`Kind::ALL[k.index()] == k`).
    const ALL: [Kind; 13] = [
        Kind::Bool,
        Kind::I8,
        Kind::U8,
        Kind::I16,
        Kind::U16,
        Kind::I32,
        Kind::U32,
        Kind::I64,
        Kind::U64,
        Kind::F32,
        Kind::F64,
        Kind::Ptr,
        Kind::CStr,
    ];

    /// The kind's position in declaration order, below 13.
    #[inline(always)]
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The kind at [`index`](Self::index) `i` (panics from 13 on).
    #[inline(always)]
    pub(crate) fn from_index(i: usize) -> Kind {
        Kind::ALL[i]
    }

    pub(crate) fn of(ty: &FfiType) -> Option<Kind> {
        Some(match ty {
            FfiType::Bool => Kind::Bool,
            FfiType::I8 => Kind::I8,
            FfiType::U8 => Kind::U8,
            FfiType::I16 => Kind::I16,
            FfiType::U16 => Kind::U16,
            FfiType::I32 => Kind::I32,
            FfiType::U32 => Kind::U32,
            FfiType::I64 => Kind::I64,
            FfiType::U64 | FfiType::Handle(_) => Kind::U64,
            FfiType::F32 => Kind::F32,
            FfiType::F64 => Kind::F64,
            FfiType::Pointer | FfiType::Callback(_) => Kind::Ptr,
            FfiType::CString => Kind::CStr,
            _ => return None,
        })
    }

    /// `f32` or `f64`: passed in SSE (vector) registers.
    pub(crate) fn is_float(self) -> bool {
        matches!(self, Kind::F32 | Kind::F64)
    }

    /// The bits of a word image that belong to a value of this kind.
    #[inline(always)]
    pub(crate) fn mask(self) -> u64 {
        match self {
            Kind::Bool | Kind::I8 | Kind::U8 => 0xff,
            Kind::I16 | Kind::U16 => 0xffff,
            Kind::I32 | Kind::U32 | Kind::F32 => 0xffff_ffff,
            _ => u64::MAX,
        }
    }

    /// The raw value of this kind held in the low bytes of `w` (a return
    /// register or a field shifted down from its eightbyte): narrow integers
    /// truncated to their width, a `float` from the low 32 bits.
    #[inline(always)]
    pub(crate) fn raw_in_word(self, w: u64) -> FfiValue {
        match self {
            Kind::Bool => FfiValue::bool(w as u8 != 0),
            Kind::I8 => FfiValue::i8(w as i8),
            Kind::U8 => FfiValue::u8(w as u8),
            Kind::I16 => FfiValue::i16(w as i16),
            Kind::U16 => FfiValue::u16(w as u16),
            Kind::I32 => FfiValue::i32(w as i32),
            Kind::U32 => FfiValue::u32(w as u32),
            Kind::F32 => FfiValue::f32(f32::from_bits(w as u32)),
            Kind::F64 => FfiValue::f64(f64::from_bits(w)),
            Kind::I64 | Kind::U64 | Kind::Ptr | Kind::CStr => FfiValue::u64(w),
        }
    }

    /// The register image of a raw value: integers extended to 64 bits per
    /// signedness, floats as described in the module docs.
    #[inline(always)]
    pub(crate) fn int_bits(self, v: FfiValue) -> u64 {
        match self {
            Kind::Bool => v.as_bool() as u64,
            Kind::I8 => v.as_i8() as i64 as u64,
            Kind::U8 => v.as_u8() as u64,
            Kind::I16 => v.as_i16() as i64 as u64,
            Kind::U16 => v.as_u16() as u64,
            Kind::I32 => v.as_i32() as i64 as u64,
            Kind::U32 => v.as_u32() as u64,
            Kind::I64 | Kind::U64 => v.as_u64(),
            Kind::Ptr | Kind::CStr => v.as_addr() as u64,
            Kind::F32 | Kind::F64 => unreachable!("float kinds use float_bits"),
        }
    }

    #[inline(always)]
    pub(crate) fn float_bits(self, v: FfiValue) -> f64 {
        match self {
            Kind::F32 => f64::from_bits(u64::from(v.as_f32().to_bits())),
            _ => v.as_f64(),
        }
    }

    /// The word image of a raw value of this kind: [`int_bits`](Self::int_bits)
    /// for integers and addresses, the `f64` bit pattern of
    /// [`float_bits`](Self::float_bits) for floats.
    #[inline(always)]
    pub(crate) fn bits(self, v: FfiValue) -> u64 {
        if self.is_float() {
            self.float_bits(v).to_bits()
        } else {
            self.int_bits(v)
        }
    }

    /// The word image of a [`Value`] of this kind, `None` on a kind
    /// mismatch (and for `CStr`, which needs storage: the caller's job).
    /// The same bits as [`bits`](Self::bits) of the matching [`FfiValue`].
    #[inline(always)]
    pub(crate) fn bits_from_value(self, v: &Value) -> Option<u64> {
        Some(match (self, v) {
            (Kind::I64, Value::I64(x)) => *x as u64,
            (Kind::F64, Value::F64(x)) => x.to_bits(),
            (Kind::Bool, Value::Bool(x)) => u64::from(*x),
            (Kind::I8, Value::I8(x)) => *x as i64 as u64,
            (Kind::U8, Value::U8(x)) => u64::from(*x),
            (Kind::I16, Value::I16(x)) => *x as i64 as u64,
            (Kind::U16, Value::U16(x)) => u64::from(*x),
            (Kind::I32, Value::I32(x)) => *x as i64 as u64,
            (Kind::U32, Value::U32(x)) => u64::from(*x),
            (Kind::U64, Value::U64(x)) => *x,
            (Kind::F32, Value::F32(x)) => u64::from(x.to_bits()),
            (Kind::Ptr, Value::Ptr(x)) => *x as u64,
            _ => return None,
        })
    }

    /// The [`Value`] of this kind held in the low bytes of `w`, as
    /// [`raw_in_word`](Self::raw_in_word) reads it; built straight from the
    /// word so the enum is written once, where it is stored.
    #[inline(always)]
    pub(crate) fn value_in_word(self, w: u64) -> Value {
        per_kind!(self, |V, T| V!(@new T::from_word(w)))
    }

    /// The [`Value`] of this kind stored at `p` in C representation
    /// (`Ptr` for `CStr`: its address).
    ///
    /// # Safety
    /// `p` must point to an initialised value of this kind, aligned for it.
    #[inline(always)]
    pub(crate) unsafe fn read_value(self, p: *const u8) -> Value {
        // SAFETY: the caller's contract.
        per_kind!(self, |V, T| V!(@new unsafe { T::read(p) }))
    }
}
