//! Reusable calls of C functions: [`CallBuilder`], [`Call`], [`call_extern`].

use crate::call::libffi_type;
use crate::ffi_value::is_scalar;
use crate::jit::Marshaller;
use crate::kind::unrolled;
use crate::marshal::{read_value, write_value, Keep, Ownership};
use crate::stub::{Arg, Kind, Regs, Ret, StubPlan};
use crate::{FfiError, FfiType, FfiValue, Library, Signature, TypedArg, Value, ValueError};
use libffi::low::{self, CodePtr};
use libffi::middle::Cif;
use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::sync::Arc;

mod direct;
pub(crate) mod out;
mod stub_paths;

use out::{Out, Slot};

/// Where the function comes from.
enum Target {
    Symbol {
        library: String,
        symbol: String,
    },
    Loaded {
        library: Arc<Library>,
        symbol: String,
    },
    Address(*const c_void),
}

/// Describes a C function's parameters and return, then [`build`]s a
/// reusable [`Call`].
///
/// ```
/// use polyload_ffi::{CallBuilder, FfiType, FfiValue, Value};
/// // SAFETY: libm's initialisers are benign and `pow` is `double(double, double)`.
/// let pow = unsafe {
///     CallBuilder::new("libm.so.6", "pow")
///         .arg(FfiType::F64)
///         .arg(FfiType::F64)
///         .returns(FfiType::F64)
///         .build()
/// }
/// .unwrap();
/// // SAFETY: no pointer arguments.
/// let r = unsafe { pow.call(&[Value::F64(2.0), Value::F64(10.0)]) }.unwrap();
/// assert_eq!(r, Value::F64(1024.0));
/// let r = unsafe { pow.call_raw(&[FfiValue::f64(2.0), FfiValue::f64(0.5)]) }.unwrap();
/// assert_eq!(r.as_f64(), 2f64.sqrt());
/// ```
///
/// [`build`]: CallBuilder::build
pub struct CallBuilder {
    target: Target,
    params: Vec<FfiType>,
    varargs: Vec<FfiType>,
    variadic: bool,
    ret: FfiType,
    force_libffi: bool,
    jit: bool,
}

impl CallBuilder {
    /// A call of `symbol` in the library `library` (a name or path, see
    /// [`Library::load`]); both are resolved by [`build`](Self::build).
    pub fn new(library: &str, symbol: &str) -> Self {
        Self::with_target(Target::Symbol {
            library: library.to_string(),
            symbol: symbol.to_string(),
        })
    }

    /// A call of `symbol` in an already loaded library (kept loaded by the
    /// [`Call`]).
    pub fn from_library(library: &Arc<Library>, symbol: &str) -> Self {
        Self::with_target(Target::Loaded {
            library: Arc::clone(library),
            symbol: symbol.to_string(),
        })
    }

    /// A call of the function at `code` (its owner must keep it mapped
    /// while the [`Call`] is used).
    pub fn from_ptr(code: *const c_void) -> Self {
        Self::with_target(Target::Address(code))
    }

    fn with_target(target: Target) -> Self {
        Self {
            target,
            params: Vec::new(),
            varargs: Vec::new(),
            variadic: false,
            ret: FfiType::Void,
            force_libffi: false,
            jit: true,
        }
    }

    /// Appends a fixed parameter.
    pub fn arg(mut self, ty: FfiType) -> Self {
        self.params.push(ty);
        self
    }

    /// Appends fixed parameters.
    pub fn args(mut self, tys: impl IntoIterator<Item = FfiType>) -> Self {
        self.params.extend(tys);
        self
    }

    /// Appends an argument after the fixed ones of a variadic function (C
    /// `...`), marking the function variadic. The value given for it must
    /// have the declared kind; it is passed with the default argument
    /// promotions (C11 §6.5.2.2p7): `f32` as `double`, `bool`/`i8`/`i16`/
    /// `u8`/`u16` as `int`.
    pub fn vararg(mut self, ty: FfiType) -> Self {
        self.variadic = true;
        self.varargs.push(ty);
        self
    }

    /// Marks the function variadic without variadic arguments.
    pub fn variadic(mut self) -> Self {
        self.variadic = true;
        self
    }

    /// Sets the parameters, return type and variadic flag from a signature
    /// (variadic arguments still come from [`vararg`](Self::vararg)).
    pub fn signature(mut self, sig: &Signature) -> Self {
        self.params = sig.params.clone();
        self.ret = sig.ret.clone();
        self.variadic = sig.variadic;
        self
    }

    /// Sets the return type (default `void`).
    pub fn returns(mut self, ty: FfiType) -> Self {
        self.ret = ty;
        self
    }

    /// Always use libffi, never a call stub (for comparisons and tests).
    pub fn force_libffi(mut self, yes: bool) -> Self {
        self.force_libffi = yes;
        self
    }

    /// Whether a struct-by-value call may get a marshaller compiled for its
    /// signature (default `true`; see [`Call::uses_jit`]). `false` keeps
    /// the generic stub path, for comparisons and tests.
    pub fn jit(mut self, yes: bool) -> Self {
        self.jit = yes;
        self
    }

    /// Loads the library (if named), resolves the symbol, and prepares the
    /// call: a [call stub](crate::stub) when the shape has one, libffi
    /// otherwise.
    ///
    /// # Errors
    /// [`FfiError::LibraryNotFound`], [`FfiError::SymbolNotFound`],
    /// [`FfiError::Prepare`] (a `void` or array parameter, an array return,
    /// or a type combination libffi refuses).
    ///
    /// # Safety
    /// Loading a library runs its initialisers (see [`Library::load`]), and
    /// the described parameters and return must be the C function's real
    /// ones: a mismatch is undefined behaviour at call time.
    pub unsafe fn build(self) -> Result<Call, FfiError> {
        let (code, library) = match &self.target {
            Target::Address(p) => (*p, None),
            Target::Loaded { library, symbol } => {
                (library.symbol(symbol)?, Some(Arc::clone(library)))
            }
            Target::Symbol { library, symbol } => {
                // SAFETY: the caller vouches for the library.
                let lib = Arc::new(unsafe { Library::load(library) }?);
                (lib.symbol(symbol)?, Some(lib))
            }
        };
        let signature = Signature {
            params: self.params,
            ret: self.ret,
            variadic: self.variadic,
        };
        let prep_err = |reason: String| FfiError::Prepare {
            signature: signature.to_string(),
            reason,
        };
        let declared: Vec<FfiType> = signature
            .params
            .iter()
            .chain(&self.varargs)
            .cloned()
            .collect();
        for t in &declared {
            if matches!(t, FfiType::Void | FfiType::Array(..)) {
                return Err(prep_err(format!("`{t}` cannot be a parameter")));
            }
        }
        if matches!(signature.ret, FfiType::Array(..)) {
            return Err(prep_err("an array cannot be returned".into()));
        }
        let passed: Vec<FfiType> = signature
            .params
            .iter()
            .cloned()
            .chain(self.varargs.iter().map(promote))
            .collect();
        let stub = if signature.variadic || self.force_libffi {
            None
        } else {
            StubPlan::new(&signature.params, &signature.ret)
        };
        let engine = match stub {
            Some(plan) => Engine::Stub(plan),
            None => {
                let args = passed.iter().map(libffi_type);
                let ret = libffi_type(&signature.ret);
                let cif = if signature.variadic {
                    Cif::try_new_variadic(args, signature.params.len(), ret)
                } else {
                    Cif::try_new(args, ret)
                }
                .map_err(|e| prep_err(format!("libffi: {e:?}")))?;
                let mut offsets = Vec::with_capacity(passed.len());
                let mut size = 0usize;
                for t in &passed {
                    let l = t.layout();
                    size = size.next_multiple_of(l.align.max(8));
                    offsets.push(size);
                    size += l.size.max(8);
                }
                Engine::Libffi {
                    cif,
                    offsets,
                    args_size: size,
                    ret_size: signature.ret.layout().size.max(16),
                }
            }
        };
        let raw_kinds = declared
            .iter()
            .chain(std::iter::once(&signature.ret))
            .all(is_scalar)
            .then(|| {
                declared
                    .iter()
                    .map(|t| Kind::of(t).expect("scalar"))
                    .collect()
            });
        let jit = match &engine {
            Engine::Stub(plan) if self.jit => Marshaller::compile(plan, &signature.ret),
            _ => None,
        };
        let direct = if self.force_libffi {
            None
        } else {
            direct::for_signature(&signature)
        };
        Ok(Call {
            code,
            signature,
            declared,
            passed,
            engine,
            jit,
            raw_kinds,
            direct,
            _library: library,
        })
    }
}

/// The type a variadic argument is passed as (default argument promotions).
fn promote(ty: &FfiType) -> FfiType {
    match ty {
        FfiType::F32 => FfiType::F64,
        FfiType::Bool | FfiType::I8 | FfiType::I16 | FfiType::U8 | FfiType::U16 => FfiType::I32,
        t => t.clone(),
    }
}

/// `v` (of declared type `from`) converted to its promoted type `to`.
fn promote_value(from: &FfiType, to: &FfiType, v: &Value) -> Option<Value> {
    if from == to {
        return None;
    }
    Some(match v {
        Value::F32(x) => Value::F64(f64::from(*x)),
        Value::Bool(x) => Value::I32(i32::from(*x)),
        Value::I8(x) => Value::I32(i32::from(*x)),
        Value::I16(x) => Value::I32(i32::from(*x)),
        Value::U8(x) => Value::I32(i32::from(*x)),
        Value::U16(x) => Value::I32(i32::from(*x)),
        _ => return None,
    })
}

fn promote_raw(from: Kind, to: &FfiType, v: FfiValue) -> FfiValue {
    match (from, to) {
        (Kind::F32, FfiType::F64) => FfiValue::f64(f64::from(v.as_f32())),
        (k, FfiType::I32) if k != Kind::I32 => FfiValue::i32(k.int_bits(v) as i32),
        _ => v,
    }
}

enum Engine {
    Stub(StubPlan),
    Libffi {
        cif: Cif,
        /// Offset of each argument in the argument buffer (8-aligned slots).
        offsets: Vec<usize>,
        args_size: usize,
        ret_size: usize,
    },
}

/// A prepared call of one C function: build it once with [`CallBuilder`],
/// call it many times, from any thread.
///
/// Two ways to call:
/// * [`call`](Call::call) with [`Value`]s: checks the count and the kind of
///   every argument, marshals `cstr`/`str`/`bytes`/`json`/structs, and
///   converts the result. The general, safe-by-checking path.
/// * [`call_raw`](Call::call_raw) with [`FfiValue`]s: scalar signatures
///   only, checks the count, reads each union as its declared type. The
///   fastest path (no tags, no allocation).
///
/// Either path uses the call stub chosen at build time
/// ([`uses_stub`](Call::uses_stub)) or libffi.
pub struct Call {
    code: *const c_void,
    signature: Signature,
    /// Declared types of all arguments (fixed, then variadic).
    declared: Vec<FfiType>,
    /// Types as passed (variadic ones promoted).
    passed: Vec<FfiType>,
    engine: Engine,
    /// The marshaller compiled for a struct-by-value stub plan.
    jit: Option<Marshaller>,
    /// Kinds of all arguments when the whole signature is scalar.
    raw_kinds: Option<Vec<Kind>>,
    /// A direct call for the commonest shapes (see [`direct`]).
    direct: Option<direct::Direct>,
    _library: Option<Arc<Library>>,
}

// SAFETY: `code` is the address of immutable machine code kept mapped by
// `_library` (or by the caller of `from_ptr`); the `Cif` is only read after
// preparation (libffi's `ffi_call` takes it as const data). Calls use only
// per-call stack or heap storage, so a `Call` may be shared and sent freely;
// whether the C function itself is thread-safe is the caller's concern at
// each (unsafe) call.
unsafe impl Send for Call {}
// SAFETY: see `Send`.
unsafe impl Sync for Call {}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("signature", &self.signature.to_string())
            .field("declared", &self.declared)
            .field("stub", &self.uses_stub())
            .field("jit", &self.uses_jit())
            .finish()
    }
}

const INLINE_ARGS: usize = 16;
const INLINE_BYTES: usize = 256;
const INLINE_RET: usize = 64;

impl Call {
    /// Whether calls go through a specialized stub (else libffi).
    pub fn uses_stub(&self) -> bool {
        matches!(self.engine, Engine::Stub(_))
    }

    /// Whether [`call`](Self::call) runs a marshaller compiled for this
    /// signature with cranelift when the call was built: on x86-64 System
    /// V, with the `jit` feature (default), for signatures with a struct
    /// argument or return that take a stub (see [`uses_stub`](Self::uses_stub)).
    /// Other shapes are already a few instructions of generic code, or go
    /// to libffi.
    pub fn uses_jit(&self) -> bool {
        self.jit.is_some()
    }

    /// The signature (fixed parameters, return, variadic flag).
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// Declared types of all arguments, fixed then variadic.
    pub fn arg_types(&self) -> &[FfiType] {
        &self.declared
    }

    /// The function's address.
    pub fn code_ptr(&self) -> *const c_void {
        self.code
    }

    /// Calls the function with checked [`Value`]s (one per declared
    /// argument, fixed then variadic) and returns its result as a `Value` of
    /// the return type. `cstr` arguments are NUL-terminated copies valid
    /// for the call; returned `str`/`bytes`/`json` are copied and freed
    /// with `polyload_free` (polyload ABI), returned `cstr` copied.
    ///
    /// # Errors
    /// [`FfiError::ArgCount`], [`FfiError::BadArgument`] (wrong kind),
    /// [`FfiError::InteriorNul`] before the call; [`FfiError::BadReturn`]
    /// (null `cstr`, invalid UTF-8) after it.
    ///
    /// # Safety
    /// `ptr` and callback arguments must be valid for whatever the C
    /// function does with them, and the function's own preconditions hold.
    #[inline]
    pub unsafe fn call(&self, args: &[Value]) -> Result<Value, FfiError> {
        if let Some(direct) = self.direct {
            // SAFETY: chosen for this signature, which the builder's
            // caller vouched for; a mismatched argument list returns `None`
            // and takes the general path, which reports it.
            if let Some(v) = unsafe { direct(self.code, args) } {
                return Ok(v);
            }
        }
        let mut slot = Slot::uninit();
        // SAFETY: the caller's contract is `call_direct`'s and `call_out`'s;
        // `finish` gets the slot they write to.
        unsafe {
            let out = match (&self.jit, &self.engine) {
                // Structs by value: their compiled marshaller, else
                // straight to their stub path.
                (Some(m), _) => {
                    let out = m.call(args, self.code);
                    if out.is_refused() {
                        self.refused(args, &mut slot)
                    } else {
                        out
                    }
                }
                (None, Engine::Stub(plan)) if plan.direct && !plan.scalars => {
                    self.call_direct::<false>(plan, args, None, &mut slot)
                }
                _ => self.call_out(args, &mut slot),
            };
            out.finish(&mut slot)
        }
    }

    /// [`call`](Self::call) up to its result, returned in two registers
    /// (see [`out`]) or written to `slot`, for calls without a marshaller
    /// other than direct plans with structs (which `call` hands to
    /// `call_direct`).
    ///
    /// # Safety
    /// As [`call`](Self::call).
    #[inline(never)]
    unsafe fn call_out(&self, args: &[Value], slot: &mut Slot) -> Out {
        if let Err(e) = self.check_count(args.len()) {
            return Out::in_slot(slot, Err(e));
        }
        match &self.engine {
            Engine::Stub(plan) if plan.scalars => {
                let mut regs = Regs::new();
                unrolled!(args.len(), |i| {
                    let Arg::Scalar(k, word) = plan.args[i] else {
                        unreachable!("scalar plans hold scalars")
                    };
                    match k.bits_from_value(&args[i]) {
                        Some(x) => regs.set(usize::from(word), x),
                        None => return Out::in_slot(slot, Err(self.bad_argument(i, &args[i]))),
                    }
                });
                // SAFETY: the plan matches the declared signature, which the
                // builder's caller vouched for.
                let r = unsafe { plan.invoke_scalar(self.code, &regs) };
                match plan.ret {
                    Ret::Scalar(k) => Out::scalar(k, r),
                    _ => Out::void(),
                }
            }
            // SAFETY: the caller's contract is `call_marshalled`'s; the
            // count was checked. (Direct plans with structs never get here:
            // `call` hands them to their marshaller or `call_direct`.)
            Engine::Stub(plan) => Out::in_slot(slot, unsafe { self.call_marshalled(plan, args) }),
            // SAFETY: the caller's contract is `call_libffi`'s; the count
            // was checked.
            Engine::Libffi { .. } => Out::in_slot(slot, unsafe { self.call_libffi(args) }),
        }
    }

    /// Calls as [`call`](Self::call) does and stores the result in `ret`.
    /// When the function returns a struct of scalars and `ret` already
    /// holds a [`Value::Struct`] (for instance the previous call's result),
    /// the fields are written into that vector, keeping its allocation: a
    /// loop calling a struct-returning function allocates once, not once
    /// per call.
    ///
    /// ```
    /// use polyload_ffi::{CallBuilder, FfiType, Value};
    /// let div_t = FfiType::Struct(vec![FfiType::I32, FfiType::I32]);
    /// // SAFETY: `div` is `div_t div(int, int)`.
    /// let div = unsafe {
    ///     CallBuilder::new("libc.so.6", "div")
    ///         .args([FfiType::I32, FfiType::I32])
    ///         .returns(div_t)
    ///         .build()
    /// }
    /// .unwrap();
    /// let mut qr = Value::Struct(Vec::new());
    /// for n in [7, 9, 11] {
    ///     // SAFETY: no pointers; 3 is not zero.
    ///     unsafe { div.call_into(&[Value::I32(n), Value::I32(3)], &mut qr) }.unwrap();
    ///     assert_eq!(qr, Value::Struct(vec![Value::I32(n / 3), Value::I32(n % 3)]));
    /// }
    /// ```
    ///
    /// # Errors
    /// As [`call`](Self::call); `ret` is left unchanged.
    ///
    /// # Safety
    /// As [`call`](Self::call).
    pub unsafe fn call_into(&self, args: &[Value], ret: &mut Value) -> Result<(), FfiError> {
        if let (Engine::Stub(plan), Value::Struct(out)) = (&self.engine, &mut *ret) {
            if plan.direct && plan.ret_flat.is_some() {
                let mut slot = Slot::uninit();
                // SAFETY: the caller's contract is `call_direct`'s.
                // Argument errors come before `out` is touched. `finish`
                // gets the slot `call_direct` writes to.
                return unsafe {
                    self.call_direct::<true>(plan, args, Some(out), &mut slot)
                        .finish(&mut slot)
                }
                .map(drop);
            }
        }
        // SAFETY: the caller's contract.
        *ret = unsafe { self.call(args) }?;
        Ok(())
    }

    /// [`call`](Self::call) through libffi. Out of line: its buffers would
    /// otherwise make every call's stack frame large.
    ///
    /// # Safety
    /// As [`call`](Self::call); the argument count was checked.
    #[inline(never)]
    unsafe fn call_libffi(&self, args: &[Value]) -> Result<Value, FfiError> {
        self.check_kinds(args)?;
        let mut keep = Keep::default();
        // SAFETY: argument kinds were checked; the rest is the caller's
        // contract.
        unsafe {
            self.libffi_call(
                |i, dst, keep_ref| {
                    // Only variadic arguments are promoted.
                    let promoted = (i >= self.signature.params.len())
                        .then(|| promote_value(&self.declared[i], &self.passed[i], &args[i]))
                        .flatten();
                    write_value(
                        dst,
                        &self.passed[i],
                        promoted.as_ref().unwrap_or(&args[i]),
                        i,
                        keep_ref,
                    )
                },
                &mut keep,
                |ret| read_value(ret, &self.signature.ret, Ownership::Owned),
            )
        }
    }

    /// Calls the function with raw scalars, each read as its declared type
    /// (fixed then variadic). Only for signatures made of scalars (see
    /// [`is_scalar`](crate::ffi_value::is_scalar)); a `cstr` is passed as a
    /// pointer the caller keeps valid, and a `cstr` result is its address.
    ///
    /// # Errors
    /// [`FfiError::ArgCount`]; [`FfiError::Unsupported`] when the
    /// signature has a non-scalar type.
    ///
    /// # Safety
    /// As [`call`](Self::call); in addition each [`FfiValue`] must hold a
    /// value of its declared type (the union carries no tag to check).
    #[inline]
    pub unsafe fn call_raw(&self, args: &[FfiValue]) -> Result<FfiValue, FfiError> {
        let Some(kinds) = &self.raw_kinds else {
            return Err(FfiError::Unsupported {
                what: format!(
                    "call_raw on `{}` (not all scalar; use call)",
                    self.signature
                ),
            });
        };
        self.check_count(args.len())?;
        match &self.engine {
            Engine::Stub(plan) => {
                let regs = plan.load_raw(args);
                // SAFETY: the plan matches the declared signature (the
                // builder's contract); values match their types (ours).
                let r = unsafe { plan.invoke_scalar(self.code, &regs) };
                Ok(plan.scalar_ret(r))
            }
            Engine::Libffi { .. } => {
                let mut keep = Keep::default();
                // SAFETY: each argument is written as its passed type from a
                // union holding its declared type (caller's contract).
                unsafe {
                    self.libffi_call(
                        |i, dst, _| {
                            let v = promote_raw(kinds[i], &self.passed[i], args[i]);
                            dst.cast::<FfiValue>().write(v);
                            Ok(())
                        },
                        &mut keep,
                        |ret| Ok(ret.cast::<FfiValue>().read()),
                    )
                }
            }
        }
    }

    fn check_count(&self, got: usize) -> Result<(), FfiError> {
        if got != self.declared.len() {
            return Err(FfiError::ArgCount {
                expected: self.declared.len(),
                got,
            });
        }
        Ok(())
    }

    /// Checks every argument against its declared type ([`Value::check`]);
    /// the count was checked.
    fn check_kinds(&self, args: &[Value]) -> Result<(), FfiError> {
        for (i, (ty, v)) in self.declared.iter().zip(args).enumerate() {
            v.check(ty)
                .map_err(|source| FfiError::BadArgument { index: i, source })?;
        }
        Ok(())
    }

    /// The error for argument `index` whose value does not fit its type.
    #[cold]
    #[inline(never)]
    fn bad_argument(&self, index: usize, v: &Value) -> FfiError {
        FfiError::BadArgument {
            index,
            source: v.check(&self.declared[index]).err().unwrap_or(ValueError {
                expected: self.declared[index].to_string(),
                got: v.kind().to_string(),
            }),
        }
    }

    /// The libffi path: writes every argument into 8-aligned slots of one
    /// buffer (on the stack when small), calls, and reads the return.
    ///
    /// # Safety
    /// `write` must write a value of `self.passed[i]` at `dst`; the call's
    /// safety contract holds.
    unsafe fn libffi_call<R>(
        &self,
        mut write: impl FnMut(usize, *mut u8, &mut Keep) -> Result<(), FfiError>,
        keep: &mut Keep,
        read: impl FnOnce(*const u8) -> Result<R, FfiError>,
    ) -> Result<R, FfiError> {
        let Engine::Libffi {
            cif,
            offsets,
            args_size,
            ret_size,
        } = &self.engine
        else {
            unreachable!("libffi_call on a stub call (this is a bug)")
        };
        let mut inline_buf = [MaybeUninit::<u128>::uninit(); INLINE_BYTES / 16];
        let mut heap_buf: Vec<u128>;
        let buf: *mut u8 = if *args_size <= INLINE_BYTES {
            inline_buf.as_mut_ptr().cast()
        } else {
            heap_buf = vec![0; args_size.div_ceil(16)];
            heap_buf.as_mut_ptr().cast()
        };
        let mut inline_ptrs = [std::ptr::null_mut::<c_void>(); INLINE_ARGS];
        let mut heap_ptrs: Vec<*mut c_void>;
        let ptrs: &mut [*mut c_void] = if offsets.len() <= INLINE_ARGS {
            &mut inline_ptrs[..offsets.len()]
        } else {
            heap_ptrs = vec![std::ptr::null_mut(); offsets.len()];
            &mut heap_ptrs
        };
        for (i, off) in offsets.iter().enumerate() {
            // SAFETY: `off` + the type's size is within `args_size` and
            // 8-aligned (16 for larger alignments), computed at build.
            let dst = unsafe { buf.add(*off) };
            write(i, dst, keep)?;
            ptrs[i] = dst.cast();
        }
        // Zeroed: a narrow integer return writes only its own bytes, and the
        // raw path reads all 8 bytes of an `FfiValue`.
        let mut inline_ret = [0u128; INLINE_RET / 16];
        let mut heap_ret: Vec<u128>;
        let ret: *mut u8 = if *ret_size <= INLINE_RET {
            inline_ret.as_mut_ptr().cast()
        } else {
            heap_ret = vec![0; ret_size.div_ceil(16)];
            heap_ret.as_mut_ptr().cast()
        };
        // SAFETY: the cif describes the passed types; each pointer points to
        // an initialised value of its type; `ret` holds at least the return
        // type's size and 16 bytes, 16-aligned. The rest is the caller's
        // contract.
        unsafe {
            low::call_return_into(
                cif.as_raw_ptr(),
                CodePtr::from_ptr(self.code),
                ptrs.as_mut_ptr(),
                ret.cast(),
            );
        }
        read(ret)
    }
}

/// Calls the C function at `code` once with scalar arguments and a scalar
/// return (see [`is_scalar`]), through libffi. For repeated calls build a
/// [`Call`] instead (it prepares once and uses call stubs).
///
/// ```
/// use polyload_ffi::{call_extern, FfiType, TypedArg};
/// extern "C" fn mul(a: i32, b: f64) -> f64 { f64::from(a) * b }
/// let args = [TypedArg::new(FfiType::I32, 3i32), TypedArg::new(FfiType::F64, 1.5f64)];
/// // SAFETY: `mul` has exactly these types.
/// let r = unsafe { call_extern(mul as *const _, &args, FfiType::F64) }.unwrap();
/// assert_eq!(r.as_f64(), 4.5);
/// ```
///
/// # Errors
/// [`FfiError::Unsupported`] for non-scalar types; [`FfiError::Prepare`].
///
/// # Safety
/// `code` must be a non-variadic C function with exactly these parameter
/// and return types, and pointer arguments must be valid for it.
pub unsafe fn call_extern(
    code: *const c_void,
    args: &[TypedArg],
    ret: FfiType,
) -> Result<FfiValue, FfiError> {
    if let Some(t) = args
        .iter()
        .map(|a| &a.ty)
        .chain([&ret])
        .find(|t| !is_scalar(t))
    {
        return Err(FfiError::Unsupported {
            what: format!("`{t}` in call_extern (scalars only; use CallBuilder with Values)"),
        });
    }
    // SAFETY: the caller vouches for the function's types.
    let call = unsafe {
        CallBuilder::from_ptr(code)
            .args(args.iter().map(|a| a.ty.clone()))
            .returns(ret)
            .force_libffi(true)
            .build()
    }?;
    let values: Vec<FfiValue> = args.iter().map(|a| a.value).collect();
    // SAFETY: as above.
    unsafe { call.call_raw(&values) }
}
