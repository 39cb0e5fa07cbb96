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
//! read (all are caller-saved scratch registers), so we leave them
//! unwritten (the stub's parameters are `MaybeUninit` of those types,
//! which share their ABI). Details checked against the ABIs:
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
//!   to 10 words. AArch64 is left out: it has 8 integer argument
//!   registers and Apple's variant packs stack slots by natural size.
//! * **Structs by value (x86-64 only)**, made of numbers, addresses and
//!   fixed arrays of them (psABI §3.2.3): a struct of at most 16 bytes is
//!   split into eightbytes, each classified SSE when all its fields are
//!   `float`/`double` and INTEGER otherwise. As an argument
//!   each eightbyte takes the next register of its class, which the stub's
//!   register slots express directly; when the registers for all of its
//!   eightbytes are not free, or the struct is larger, the whole struct
//!   is copied to consecutive stack words and the registers stay free for
//!   later arguments. As a return, one or two eightbytes come back in
//!   `rax`/`rdx`/`xmm0`/`xmm1` in class order, read by declaring the stub's
//!   return as a `#[repr(C)]` pair of the same classes; a larger struct is
//!   MEMORY: the caller passes the address of a buffer as a hidden first
//!   INTEGER argument (`rdi`), which the stub expresses by putting the
//!   address in its first integer slot. AAPCS64 (homogeneous float
//!   aggregates, `x8` for indirect results) is left to libffi.
//! * **Variadic functions** are excluded: x86-64 needs `al` = number of
//!   vector registers used, and Apple arm64 passes variadic arguments on the
//!   stack. `str`/`bytes`/`json` and structs holding `cstr` also go to
//!   libffi.
//! * Windows x64 assigns registers by position, not by class, so stubs are
//!   compiled only for x86-64 and AArch64 outside Windows.
//!
//! Scalar signatures need no code generation: a handful of fixed stub
//! types covers them, and a call is a few instructions of generic code.
//! For structs by value the generic code dispatches on every field's kind
//! at run time; with the `jit` feature such plans also get a marshaller
//! compiled for the signature (`crate::jit`), which places the same words
//! in the same registers as this module describes.

pub(crate) use crate::flat::FlatStruct;
use crate::kind::unrolled;
pub(crate) use crate::kind::Kind;
use crate::{FfiType, FfiValue};
use std::ffi::c_void;
use std::mem::MaybeUninit;

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
pub(crate) const MAX_STACK: usize = if cfg!(target_arch = "x86_64") {
    MAX_STACK_WORDS
} else {
    0
};

/// Expands to `MaybeUninit<u64>` (one stub parameter per stack word).
macro_rules! stub_word {
    ($w:literal) => {
        MaybeUninit<u64>
    };
}

/// Calls `$code` through the stub type returning `$ret` with the stack
/// words listed, its arguments taken from the [`Regs`] image `$r`.
///
/// Stack words are read one by one (volatile reads, which the compiler
/// may not merge): copied as pairs, with 16-byte loads and stores, each
/// load would span two of the image's 8-byte stores, and each of the
/// callee's 8-byte reads of the upper word would hit half of a 16-byte
/// store; neither is forwarded on AMD Zen, and the two waits were a fifth
/// of the `struct_mixed24` call.
macro_rules! stub_call {
    ($code:expr, $r:expr, $ret:ty; $($w:literal)*) => {{
        let w = &$r.0;
        // SAFETY: `MaybeUninit`s of one size.
        let f = |n: usize| unsafe {
            std::mem::transmute::<MaybeUninit<u64>, MaybeUninit<f64>>(w[FLOAT_BASE + n])
        };
        // SAFETY: a read of a word of the image (any bits, or none).
        #[allow(unused, reason = "stubs without stack words do not read them")]
        let s = |n: usize| unsafe { std::ptr::read_volatile(&w[STACK_BASE + n]) };
        // SAFETY: per the module docs, a function whose INTEGER and SSE
        // arguments fill (at most) these registers, with the rest in these
        // stack words in parameter order, is callable with this type (each
        // `MaybeUninit<T>` has the ABI of `T`); the plan has that shape, and
        // the caller guarantees the function does. The words the plan does
        // not write are uninitialised, in places the callee does not read.
        unsafe {
            let fun: unsafe extern "C" fn(
                MaybeUninit<u64>, MaybeUninit<u64>, MaybeUninit<u64>,
                MaybeUninit<u64>, MaybeUninit<u64>, MaybeUninit<u64>,
                MaybeUninit<f64>, MaybeUninit<f64>, MaybeUninit<f64>, MaybeUninit<f64>,
                MaybeUninit<f64>, MaybeUninit<f64>, MaybeUninit<f64>, MaybeUninit<f64>
                $(, stub_word!($w))*
            ) -> $ret = std::mem::transmute($code);
            fun(w[0], w[1], w[2], w[3], w[4], w[5], f(0), f(1), f(2), f(3), f(4), f(5), f(6), f(7) $(, s($w))*)
        }
    }};
}

/// Stack words in a [`Regs`] image (the most a stub passes on x86-64).
pub(crate) const MAX_STACK_WORDS: usize = 10;
/// Words in a [`Regs`] image.
pub(crate) const WORDS: usize = INT_REGS + FLOAT_REGS + MAX_STACK_WORDS;
/// First SSE word of a [`Regs`] image.
pub(crate) const FLOAT_BASE: usize = INT_REGS;
/// First stack word of a [`Regs`] image.
pub(crate) const STACK_BASE: usize = INT_REGS + FLOAT_REGS;

/// Register and stack images for one stub call, one 64-bit word each:
/// words `0..6` are the INTEGER registers, `6..14` the SSE registers (as
/// `f64` bit patterns) and `14..24` the stack words. A flat array lets each
/// argument be stored with one indexed write whatever its class.
///
/// Words no argument uses stay uninitialised: they go, as
/// `MaybeUninit<u64>` or `MaybeUninit<f64>` (which have the ABI of `u64`
/// and `f64`, per the standard library's documentation of `MaybeUninit`),
/// to registers and stack words the callee does not read, as a C caller
/// leaves them. Zeroing them cost more than the stores: an array of zeros
/// is written with 16-byte stores, and on AMD Zen an 8-byte load of the
/// upper half of such a store is not forwarded from it but waits for it to
/// reach the cache (about 15 ns of a 75 ns struct call).
pub(crate) struct Regs([MaybeUninit<u64>; WORDS]);

impl Regs {
    /// An image with no word written.
    #[inline(always)]
    pub(crate) fn new() -> Regs {
        Regs([MaybeUninit::uninit(); WORDS])
    }

    /// Sets word `i` (panics from [`WORDS`] on).
    #[inline(always)]
    pub(crate) fn set(&mut self, i: usize, w: u64) {
        self.0[i] = MaybeUninit::new(w);
    }
}

/// How one argument reaches the callee.
#[derive(Clone, Debug)]
pub(crate) enum Arg {
    /// A scalar of this kind, in word `.1` of [`Regs`].
    Scalar(Kind, u8),
    /// A struct by value (x86-64 only): its C bytes, eightbyte by
    /// eightbyte, go to the words listed (two registers, or consecutive
    /// stack words).
    Struct(Box<StructArg>),
}

/// A struct argument's type and the [`Regs`] word of each of its eightbytes.
#[derive(Clone, Debug)]
pub(crate) struct StructArg {
    pub(crate) ty: FfiType,
    /// The same type flattened, when it does not nest.
    pub(crate) flat: Option<FlatStruct>,
    pub(crate) words: Vec<u8>,
}

/// The register class of one eightbyte (psABI §3.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// `rax`/`rdx` on return, the next of `rdi..r9` as an argument.
    Integer,
    /// `xmm0`/`xmm1` on return, the next of `xmm0..xmm7` as an argument.
    Sse,
}

/// How the return value comes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ret {
    Void,
    Scalar(Kind),
    /// A struct of at most 16 bytes in registers: the classes of its one or
    /// two eightbytes.
    Pair(Class, Option<Class>),
    /// A struct in memory: the caller passes a buffer's address as a hidden
    /// first INTEGER argument, the callee fills it (and returns the address
    /// in `rax`).
    Memory,
}

/// Two-eightbyte struct returns, declared with the classes they stand for
/// so that the compiler reads them from the same registers the callee
/// writes (`rax`/`rdx`, `xmm0`/`xmm1`, or one of each in eightbyte order).
#[repr(C)]
struct PairII(u64, u64);
#[repr(C)]
struct PairFF(f64, f64);
#[repr(C)]
struct PairIF(u64, f64);
#[repr(C)]
struct PairFI(f64, u64);

/// Calls a function through the stub type of one return class and stack
/// word count (see [`StubPlan::invoke`]). The two return words come back
/// as a pair, which the Rust ABI returns in `rax:rdx` (an array would go
/// through memory).
pub(crate) type Invoker = unsafe fn(*const c_void, &Regs) -> (u64, u64);

/// One [`Invoker`] per return class, for 0 to [`MAX_STACK_WORDS`] stack
/// words: picked once per plan, so a call makes one indirect call instead
/// of dispatching on the return class and the stack word count.
macro_rules! invokers {
    ($ret:ty, |$x:ident| $conv:expr) => {
        [
            invokers!(@one $ret, |$x| $conv;),
            invokers!(@one $ret, |$x| $conv; 0),
            invokers!(@one $ret, |$x| $conv; 0 1),
            invokers!(@one $ret, |$x| $conv; 0 1 2),
            invokers!(@one $ret, |$x| $conv; 0 1 2 3),
            invokers!(@one $ret, |$x| $conv; 0 1 2 3 4),
            invokers!(@one $ret, |$x| $conv; 0 1 2 3 4 5),
            invokers!(@one $ret, |$x| $conv; 0 1 2 3 4 5 6),
            invokers!(@one $ret, |$x| $conv; 0 1 2 3 4 5 6 7),
            invokers!(@one $ret, |$x| $conv; 0 1 2 3 4 5 6 7 8),
            invokers!(@one $ret, |$x| $conv; 0 1 2 3 4 5 6 7 8 9),
        ]
    };
    (@one $ret:ty, |$x:ident| $conv:expr; $($w:literal)*) => {{
        /// # Safety
        /// As [`StubPlan::invoke`].
        unsafe fn invoke(code: *const c_void, r: &Regs) -> (u64, u64) {
            let $x: $ret = stub_call!(code, r, $ret; $($w)*);
            let [a, b]: [u64; 2] = $conv;
            (a, b)
        }
        invoke as Invoker
    }};
}

/// Invokers returning `rax`/`x0` (integers, addresses, `void`, one INTEGER
/// eightbyte, a memory return's address).
const INVOKE_INT: [Invoker; MAX_STACK_WORDS + 1] = invokers!(u64, |x| [x, 0]);
/// Invokers returning `xmm0`/`v0` (floats, one SSE eightbyte).
const INVOKE_FLOAT: [Invoker; MAX_STACK_WORDS + 1] = invokers!(f64, |x| [x.to_bits(), 0]);
const INVOKE_II: [Invoker; MAX_STACK_WORDS + 1] = invokers!(PairII, |x| [x.0, x.1]);
const INVOKE_FF: [Invoker; MAX_STACK_WORDS + 1] =
    invokers!(PairFF, |x| [x.0.to_bits(), x.1.to_bits()]);
const INVOKE_IF: [Invoker; MAX_STACK_WORDS + 1] = invokers!(PairIF, |x| [x.0, x.1.to_bits()]);
const INVOKE_FI: [Invoker; MAX_STACK_WORDS + 1] = invokers!(PairFI, |x| [x.0.to_bits(), x.1]);

/// The invoker for a return shape and stack word count (at most
/// [`MAX_STACK_WORDS`]).
fn invoker(ret: Ret, stack_words: usize) -> Invoker {
    let table = match ret {
        Ret::Scalar(Kind::F32 | Kind::F64) | Ret::Pair(Class::Sse, None) => &INVOKE_FLOAT,
        Ret::Pair(Class::Sse, Some(Class::Sse)) => &INVOKE_FF,
        Ret::Pair(Class::Sse, Some(Class::Integer)) => &INVOKE_FI,
        Ret::Pair(Class::Integer, Some(Class::Sse)) => &INVOKE_IF,
        Ret::Pair(Class::Integer, Some(Class::Integer)) => &INVOKE_II,
        Ret::Void | Ret::Scalar(_) | Ret::Pair(Class::Integer, None) | Ret::Memory => &INVOKE_INT,
    };
    table[stack_words]
}

/// Largest struct the stub path returns through memory, in bytes.
pub(crate) const MAX_MEMORY_RET: usize = 256;

/// Where each argument goes, fixed when a [`Call`](crate::Call) is built.
#[derive(Clone, Debug)]
pub(crate) struct StubPlan {
    /// Per argument, in order.
    pub(crate) args: Vec<Arg>,
    /// Stack words used.
    pub(crate) stack_words: u8,
    pub(crate) ret: Ret,
    /// The return type flattened, for a returned struct (in registers or
    /// memory) that does not nest.
    pub(crate) ret_flat: Option<FlatStruct>,
    /// Every argument a scalar other than `cstr` or a flat struct, and the
    /// return `void`, such a scalar or a flat struct: a call needs no
    /// storage beyond the [`Regs`] image (and a memory return's buffer)
    /// and no type walk.
    pub(crate) direct: bool,
    /// [`direct`](Self::direct) with scalars only (no struct argument or
    /// return): the tightest loop, one word store per argument.
    pub(crate) scalars: bool,
    /// Calls the function with the register images (see [`invoker`]).
    invoker: Invoker,
}

/// Whether a struct's fields are all numbers or addresses (no `cstr`,
/// `str`, `bytes` or `json`, which need storage or ownership rules), so its
/// bytes can be written straight into registers.
fn plain(ty: &FfiType) -> bool {
    match ty {
        FfiType::Struct(fields) => !fields.is_empty() && fields.iter().all(plain),
        FfiType::Array(elem, n) => *n > 0 && plain(elem),
        t => Kind::of(t).is_some_and(|k| k != Kind::CStr),
    }
}

/// The classes of a struct's eightbytes per psABI §3.2.3, or `None` when it
/// is passed in memory (over 16 bytes). An eightbyte is SSE when every
/// field in it is `float`/`double`, INTEGER otherwise; C's natural
/// alignment means no scalar field straddles two eightbytes.
pub(crate) fn classify(ty: &FfiType) -> Option<Vec<Class>> {
    let size = ty.layout().size;
    if size > 16 {
        return None;
    }
    let mut classes = vec![Class::Sse; size.div_ceil(8)];
    fn walk(ty: &FfiType, base: usize, classes: &mut [Class]) {
        match ty {
            FfiType::Struct(fields) => {
                for (f, off) in fields.iter().zip(crate::marshal::FieldOffsets::new(fields)) {
                    walk(f, base + off, classes);
                }
            }
            FfiType::Array(elem, n) => {
                let size = elem.layout().size;
                for i in 0..*n {
                    walk(elem, base + i * size, classes);
                }
            }
            t if t.is_float() => {}
            _ => classes[base / 8] = Class::Integer,
        }
    }
    walk(ty, 0, &mut classes);
    Some(classes)
}

impl StubPlan {
    /// The plan for a non-variadic signature, or `None` when the shape needs
    /// libffi (`str`-like or non-plain struct types, too many arguments, no
    /// stubs on this target; structs only on x86-64).
    pub(crate) fn new(params: &[FfiType], ret_ty: &FfiType) -> Option<StubPlan> {
        if !STUBS_AVAILABLE {
            return None;
        }
        let structs = cfg!(target_arch = "x86_64");
        let ret = match ret_ty {
            FfiType::Void => Ret::Void,
            t @ FfiType::Struct(_) if structs && plain(t) => match classify(t) {
                Some(c) => Ret::Pair(c[0], c.get(1).copied()),
                None if t.layout().size <= MAX_MEMORY_RET => Ret::Memory,
                None => return None,
            },
            t => Ret::Scalar(Kind::of(t)?),
        };
        // The hidden return-buffer address takes the first INTEGER register.
        let (mut ints, mut floats, mut stack) = (usize::from(ret == Ret::Memory), 0usize, 0usize);
        let mut args = Vec::with_capacity(params.len());
        for p in params {
            if let FfiType::Struct(_) = p {
                if !(structs && plain(p)) {
                    return None;
                }
                let in_regs = classify(p).filter(|classes| {
                    let need_i = classes.iter().filter(|c| **c == Class::Integer).count();
                    ints + need_i <= INT_REGS && floats + classes.len() - need_i <= FLOAT_REGS
                });
                let words: Vec<u8> = match in_regs {
                    Some(classes) => classes
                        .iter()
                        .map(|c| {
                            let next = match c {
                                Class::Integer => &mut ints,
                                Class::Sse => &mut floats,
                            };
                            *next += 1;
                            let base = if *c == Class::Sse { FLOAT_BASE } else { 0 };
                            (base + *next - 1) as u8
                        })
                        .collect(),
                    // psABI §3.2.3: a struct over 16 bytes, or one whose
                    // eightbytes do not all find a free register, goes
                    // whole to the stack (eightbyte-aligned slots, first
                    // argument lowest), and the registers stay free for
                    // later arguments.
                    None => {
                        let n = p.layout().size.div_ceil(8);
                        if stack + n > MAX_STACK {
                            return None;
                        }
                        stack += n;
                        (STACK_BASE + stack - n..STACK_BASE + stack)
                            .map(|w| w as u8)
                            .collect()
                    }
                };
                args.push(Arg::Struct(Box::new(StructArg {
                    ty: p.clone(),
                    flat: FlatStruct::of(p, &words),
                    words,
                })));
                continue;
            }
            let k = Kind::of(p)?;
            let word = if k.is_float() && floats < FLOAT_REGS {
                floats += 1;
                FLOAT_BASE + floats - 1
            } else if !k.is_float() && ints < INT_REGS {
                ints += 1;
                ints - 1
            } else if stack < MAX_STACK {
                stack += 1;
                STACK_BASE + stack - 1
            } else {
                return None;
            };
            args.push(Arg::Scalar(k, word as u8));
        }
        // A returned struct's eightbyte `n` is word `n` of the returned pair
        // or of the memory buffer.
        let ret_words: Vec<u8> = (0..ret_ty.layout().size.div_ceil(8))
            .map(|w| w as u8)
            .collect();
        let ret_flat = matches!(ret, Ret::Pair(..) | Ret::Memory)
            .then(|| FlatStruct::of(ret_ty, &ret_words))
            .flatten();
        let direct = args.iter().all(|a| match a {
            Arg::Scalar(k, _) => *k != Kind::CStr,
            Arg::Struct(st) => st.flat.is_some(),
        }) && match ret {
            Ret::Void => true,
            Ret::Scalar(k) => k != Kind::CStr,
            Ret::Pair(..) | Ret::Memory => ret_flat.is_some(),
        };
        let scalars = direct
            && matches!(ret, Ret::Void | Ret::Scalar(_))
            && args.iter().all(|a| matches!(a, Arg::Scalar(..)));
        Some(StubPlan {
            args,
            stack_words: stack as u8,
            ret,
            ret_flat,
            direct,
            scalars,
            invoker: invoker(ret, stack),
        })
    }

    /// Calls `code` with the register and stack images and returns the
    /// return registers: `rax`/`x0` or the bits of `xmm0`/`v0` in word 0
    /// for a scalar; a struct's eightbytes in order for [`Ret::Pair`];
    /// nothing useful for [`Ret::Void`] and [`Ret::Memory`].
    ///
    /// # Safety
    /// `code` must be a non-variadic C function whose parameters, in the
    /// order of `self.args`, have those kinds and whose return is
    /// `self.ret`; the images must hold valid arguments (and, for
    /// [`Ret::Memory`], word 0 the address of a buffer large and aligned
    /// enough for the return type).
    #[inline(always)]
    pub(crate) unsafe fn invoke(&self, code: *const c_void, r: &Regs) -> [u64; 2] {
        // SAFETY: the invoker was picked for this plan's return classes and
        // stack words; the rest is the caller's contract.
        let (a, b) = unsafe { (self.invoker)(code, r) };
        [a, b]
    }

    /// [`invoke`](Self::invoke) for a plan with a scalar or `void` return,
    /// compiled into the caller with its dispatch on the stack word count:
    /// for the scalar paths, where the indirect call of an [`Invoker`]
    /// costs a few nanoseconds of a ~20 ns call. Returns `rax`/`x0` or the
    /// bits of `xmm0`/`v0`.
    ///
    /// # Safety
    /// As [`invoke`](Self::invoke); the return is `void` or a scalar.
    #[inline(always)]
    pub(crate) unsafe fn invoke_scalar(&self, code: *const c_void, r: &Regs) -> u64 {
        debug_assert!(matches!(self.ret, Ret::Void | Ret::Scalar(_)));
        macro_rules! by_words {
            ($ret:ty) => {
                match self.stack_words {
                    0 => stub_call!(code, r, $ret;),
                    1 => stub_call!(code, r, $ret; 0),
                    2 => stub_call!(code, r, $ret; 0 1),
                    3 => stub_call!(code, r, $ret; 0 1 2),
                    4 => stub_call!(code, r, $ret; 0 1 2 3),
                    5 => stub_call!(code, r, $ret; 0 1 2 3 4),
                    6 => stub_call!(code, r, $ret; 0 1 2 3 4 5),
                    7 => stub_call!(code, r, $ret; 0 1 2 3 4 5 6),
                    8 => stub_call!(code, r, $ret; 0 1 2 3 4 5 6 7),
                    9 => stub_call!(code, r, $ret; 0 1 2 3 4 5 6 7 8),
                    _ => stub_call!(code, r, $ret; 0 1 2 3 4 5 6 7 8 9),
                }
            };
        }
        match self.ret {
            Ret::Scalar(Kind::F32 | Kind::F64) => by_words!(f64).to_bits(),
            _ => by_words!(u64),
        }
    }

    /// Fills the register images from raw arguments (count already checked).
    #[inline(always)]
    pub(crate) fn load_raw(&self, args: &[FfiValue]) -> Regs {
        let mut r = Regs::new();
        // A stack slot holds the argument's bytes from its lowest address:
        // the register image's bits do exactly that.
        unrolled!(args.len(), |i| {
            match &self.args[i] {
                Arg::Scalar(k, word) => r.set(usize::from(*word), k.bits(args[i])),
                Arg::Struct(_) => unreachable!("call_raw is only offered for scalar signatures"),
            }
        });
        r
    }

    /// The raw value of a scalar return from [`invoke_scalar`](Self::invoke_scalar)
    /// (or [`invoke`](Self::invoke)'s first word): narrow integers truncated to their width (their upper
    /// register bits are unspecified), a `float` from the low 32 bits,
    /// zero for `void`.
    #[inline(always)]
    pub(crate) fn scalar_ret(&self, w: u64) -> FfiValue {
        match self.ret {
            Ret::Scalar(k) => k.raw_in_word(w),
            _ => FfiValue::ZERO,
        }
    }
}
