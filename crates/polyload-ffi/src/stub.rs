//! Specialized call stubs: calling a C function of a common shape without
//! libffi.
//!
//! # Why this works
//! On the System V AMD64 ABI (psABI §3.2.3, "Parameter Passing") scalar
//! arguments are classified INTEGER (integers, `_Bool`, pointers) or SSE
//! (`float`, `double`). INTEGER arguments take the next free register of
//! `rdi, rsi, rdx, rcx, r8, r9` and SSE arguments the next of `xmm0..xmm7`,
//! each sequence counted independently of how the two kinds interleave in
//! the parameter list. AAPCS64 (§6.8.2, rules C.9–C.15) does the same with
//! `x0..x7` and `v0..v7`. So every non-variadic function whose parameters
//! fit in registers (at most 6 INTEGER and 8 SSE here, the x86-64 limit) can
//! be called through one fixed Rust type,
//!
//! ```text
//! extern "C" fn(u64, u64, u64, u64, u64, u64, f64, f64, f64, f64, f64, f64, f64, f64) -> u64 (or -> f64)
//! ```
//!
//! placing each integer in the slot of its INTEGER index and each float in
//! the slot of its SSE index; the callee ignores the registers it does not
//! read (all are caller-saved scratch registers). Details checked against
//! the ABIs:
//!
//! * **Narrow integer arguments** (`bool`, `i8`, `u8`, `i16`, `u16`): the
//!   psABI leaves the upper bits of a register unspecified, but clang-built
//!   callees assume the caller sign/zero-extended them to 32 bits (a de facto
//!   rule GCC also follows; Apple's arm64 ABI makes it normative). We extend
//!   every integer to the full 64 bits per its signedness, which satisfies
//!   every reading. `_Bool` is passed as 0 or 1 (psABI §3.1.2: bit 0 is the
//!   value, bits 1–7 are zero).
//! * **`float` arguments** occupy the low 32 bits of an `xmm`/`v` register;
//!   we pass an `f64` whose bit pattern has the `f32` bits in its low half.
//!   The callee reads only those bits (`movss`/`s` register).
//! * **Returns**: INTEGER in `rax`/`x0`, SSE in `xmm0`/`v0`. For narrow
//!   integer returns the upper bits are unspecified (GCC does not extend), so
//!   the `u64` is truncated to the declared width and re-extended; a `_Bool`
//!   return is its low byte. A `float` return is the low 32 bits of the
//!   `f64` read from `xmm0`/`v0`. `void` returns are read as an ignored
//!   `u64`.
//! * **Stack arguments (x86-64 only)**: arguments that find no free register
//!   of their class go to the stack in parameter order, one 8-byte slot
//!   each, INTEGER and SSE alike (psABI §3.2.3: "remaining arguments are
//!   passed on the stack in right-to-left order", i.e. the first at the
//!   lowest address, each eightbyte-aligned). When all 6 + 8 registers of
//!   the stub are taken by its fixed parameters, further `u64` parameters
//!   of the stub land in exactly those slots, so a stub with `K` trailing
//!   `u64` words carries the overflowing arguments' bit patterns (a `double`
//!   slot holds its 8 bytes, a `float` or narrow integer its low bytes). Up
//!   to [`MAX_STACK`] words. AArch64 is left out: it has 8 integer argument
//!   registers and Apple's variant packs stack slots by natural size.
//! * **Variadic functions** are excluded: x86-64 needs `al` = number of
//!   vector registers used, and Apple arm64 passes variadic arguments on the
//!   stack. Structs and `str`/`bytes`/`json` also go to libffi.
//! * Windows x64 assigns registers by position, not by class, so stubs are
//!   compiled only for x86-64 and AArch64 outside Windows.
//!
//! A JIT (e.g. cranelift-jit) would also cover stack arguments and small
//! structs, but costs a code generator in the dependency tree, executable
//! memory and compile time per signature; one fixed stub type covers the
//! calls that dominate in practice (scalars in registers) with no code
//! generation at all.

use crate::{FfiType, FfiValue, Value};
use std::ffi::c_void;

/// Whether this target has call stubs.
pub const STUBS_AVAILABLE: bool = cfg!(all(
    any(target_arch = "x86_64", target_arch = "aarch64"),
    not(windows)
));

/// Integer-class registers the stub fills.
pub(crate) const INT_REGS: usize = 6;
/// Float-class registers the stub fills.
pub(crate) const FLOAT_REGS: usize = 8;
/// Stack words a stub can pass (x86-64 only; 0 elsewhere).
pub(crate) const MAX_STACK: usize = if cfg!(target_arch = "x86_64") { 10 } else { 0 };
/// Most arguments a stub call can take.
pub(crate) const MAX_ARGS: usize = INT_REGS + FLOAT_REGS + 10;

/// Expands to `u64` (one stub parameter per stack word).
macro_rules! stub_word {
    ($w:literal) => {
        u64
    };
}

/// Where an argument travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// The n-th INTEGER register.
    Int(u8),
    /// The n-th SSE register.
    Float(u8),
    /// The n-th stack word.
    Stack(u8),
}

/// Register and stack images for one stub call.
pub(crate) struct Regs {
    pub(crate) i: [u64; INT_REGS],
    pub(crate) f: [f64; FLOAT_REGS],
    pub(crate) stack: [u64; 10],
}

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

impl Kind {
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
            FfiType::U64 => Kind::U64,
            FfiType::F32 => Kind::F32,
            FfiType::F64 => Kind::F64,
            FfiType::Pointer | FfiType::Callback(_) => Kind::Ptr,
            FfiType::CString => Kind::CStr,
            _ => return None,
        })
    }

    fn is_float(self) -> bool {
        matches!(self, Kind::F32 | Kind::F64)
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

    /// A [`Value`] of this kind as a raw value, `None` on a kind mismatch.
    /// `CStr` is handled by the caller (it needs storage).
    #[inline(always)]
    pub(crate) fn raw_from_value(self, v: &Value) -> Option<FfiValue> {
        Some(match (self, v) {
            (Kind::Bool, Value::Bool(x)) => FfiValue::bool(*x),
            (Kind::I8, Value::I8(x)) => FfiValue::i8(*x),
            (Kind::U8, Value::U8(x)) => FfiValue::u8(*x),
            (Kind::I16, Value::I16(x)) => FfiValue::i16(*x),
            (Kind::U16, Value::U16(x)) => FfiValue::u16(*x),
            (Kind::I32, Value::I32(x)) => FfiValue::i32(*x),
            (Kind::U32, Value::U32(x)) => FfiValue::u32(*x),
            (Kind::I64, Value::I64(x)) => FfiValue::i64(*x),
            (Kind::U64, Value::U64(x)) => FfiValue::u64(*x),
            (Kind::F32, Value::F32(x)) => FfiValue::f32(*x),
            (Kind::F64, Value::F64(x)) => FfiValue::f64(*x),
            (Kind::Ptr, Value::Ptr(x)) => FfiValue::addr(*x),
            _ => return None,
        })
    }
}

/// Where each argument goes, fixed when a [`Call`](crate::Call) is built.
#[derive(Clone, Debug)]
pub(crate) struct StubPlan {
    /// Per argument: its kind and where it travels.
    pub(crate) slots: Vec<(Kind, Place)>,
    /// Stack words used.
    pub(crate) stack_words: u8,
    /// `None` for `void`.
    pub(crate) ret: Option<Kind>,
}

impl StubPlan {
    /// The plan for a non-variadic signature, or `None` when the shape needs
    /// libffi (non-scalar types, too many arguments, no stubs on this target).
    pub(crate) fn new(params: &[FfiType], ret: &FfiType) -> Option<StubPlan> {
        if !STUBS_AVAILABLE {
            return None;
        }
        let (mut ints, mut floats, mut stack) = (0usize, 0usize, 0usize);
        let mut slots = Vec::with_capacity(params.len());
        for p in params {
            let k = Kind::of(p)?;
            let place = if k.is_float() && floats < FLOAT_REGS {
                floats += 1;
                Place::Float((floats - 1) as u8)
            } else if !k.is_float() && ints < INT_REGS {
                ints += 1;
                Place::Int((ints - 1) as u8)
            } else if stack < MAX_STACK {
                stack += 1;
                Place::Stack((stack - 1) as u8)
            } else {
                return None;
            };
            slots.push((k, place));
        }
        let ret = match ret {
            FfiType::Void => None,
            t => Some(Kind::of(t)?),
        };
        Some(StubPlan {
            slots,
            stack_words: stack as u8,
            ret,
        })
    }

    /// Calls `code` with the register and stack images and converts the
    /// return.
    ///
    /// # Safety
    /// `code` must be a non-variadic C function whose parameters, in the
    /// order of `self.slots`, have those kinds and whose return has kind
    /// `self.ret`; the images must come from [`StubPlan::load_raw`] with
    /// valid arguments.
    #[inline(always)]
    pub(crate) unsafe fn invoke(&self, code: *const c_void, r: &Regs) -> FfiValue {
        let (i, f, s) = (&r.i, &r.f, &r.stack);
        macro_rules! stub_call {
            ($ret:ty; $($w:literal)*) => {{
                // SAFETY: per the module docs, a function whose INTEGER and
                // SSE arguments fill (at most) these registers, with the rest
                // in these stack words in parameter order, is callable with
                // this type; the caller guarantees the shape.
                unsafe {
                    let fun: unsafe extern "C" fn(
                        u64, u64, u64, u64, u64, u64, f64, f64, f64, f64, f64, f64, f64, f64
                        $(, stub_word!($w))*
                    ) -> $ret = std::mem::transmute(code);
                    fun(i[0], i[1], i[2], i[3], i[4], i[5], f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7] $(, s[$w])*)
                }
            }};
        }
        macro_rules! by_words {
            ($ret:ty) => {
                match self.stack_words {
                    0 => stub_call!($ret;),
                    1 => stub_call!($ret; 0),
                    2 => stub_call!($ret; 0 1),
                    3 => stub_call!($ret; 0 1 2),
                    4 => stub_call!($ret; 0 1 2 3),
                    5 => stub_call!($ret; 0 1 2 3 4),
                    6 => stub_call!($ret; 0 1 2 3 4 5),
                    7 => stub_call!($ret; 0 1 2 3 4 5 6),
                    8 => stub_call!($ret; 0 1 2 3 4 5 6 7),
                    9 => stub_call!($ret; 0 1 2 3 4 5 6 7 8),
                    _ => stub_call!($ret; 0 1 2 3 4 5 6 7 8 9),
                }
            };
        }
        match self.ret {
            Some(k @ (Kind::F32 | Kind::F64)) => {
                let r: f64 = by_words!(f64);
                if k == Kind::F32 {
                    FfiValue::f32(f32::from_bits(r.to_bits() as u32))
                } else {
                    FfiValue::f64(r)
                }
            }
            k => {
                let r: u64 = by_words!(u64);
                match k {
                    None => FfiValue::ZERO,
                    Some(Kind::Bool) => FfiValue::bool(r as u8 != 0),
                    Some(Kind::I8) => FfiValue::i8(r as i8),
                    Some(Kind::U8) => FfiValue::u8(r as u8),
                    Some(Kind::I16) => FfiValue::i16(r as i16),
                    Some(Kind::U16) => FfiValue::u16(r as u16),
                    Some(Kind::I32) => FfiValue::i32(r as i32),
                    Some(Kind::U32) => FfiValue::u32(r as u32),
                    Some(_) => FfiValue::u64(r),
                }
            }
        }
    }

    /// Fills the register images from raw arguments (count already checked).
    #[inline(always)]
    pub(crate) fn load_raw(&self, args: &[FfiValue]) -> Regs {
        let mut r = Regs {
            i: [0; INT_REGS],
            f: [0.0; FLOAT_REGS],
            stack: [0; 10],
        };
        for (&(k, place), v) in self.slots.iter().zip(args) {
            match place {
                Place::Int(n) => r.i[usize::from(n)] = k.int_bits(*v),
                Place::Float(n) => r.f[usize::from(n)] = k.float_bits(*v),
                // A stack slot holds the argument's bytes from its lowest
                // address: the register image's bits do exactly that.
                Place::Stack(n) => {
                    r.stack[usize::from(n)] = if k.is_float() {
                        k.float_bits(*v).to_bits()
                    } else {
                        k.int_bits(*v)
                    }
                }
            }
        }
        r
    }
}
