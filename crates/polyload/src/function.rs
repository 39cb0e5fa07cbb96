//! Typed handles: call a definition as a Rust `extern "C" fn` type.

use crate::host;
use crate::loader::{DynamicFn, GuestError, SlotFn};
use crate::namespace::{code_at_published, table_at_published, Invoke, Slot};
use crate::reclaim::CallGuard;
use crate::scope::Scope;
use crate::{Error, Result};
use polyload_abi::PolyloadCodeTable;
use polyload_abi::{PolyloadBytes, PolyloadStr};
use polyload_ffi::{FfiType, Signature, Value};
use std::ffi::c_void;
use std::marker::PhantomData;
use std::sync::atomic::AtomicPtr;

/// A Rust type that crosses the C boundary as one polyload type.
///
/// # Safety
/// `ffi_type()` must describe the type's C representation exactly.
pub unsafe trait CType: Copy {
    /// The polyload type with this representation.
    fn ffi_type() -> FfiType;

    /// Whether the type converts to and from a [`Value`] by
    /// [`to_value`](Self::to_value) and [`from_value`](Self::from_value)
    /// (numbers and `bool`), so a typed handle may call a VM definition
    /// with values instead of through its C entry point.
    #[doc(hidden)]
    const BY_VALUE: bool = false;

    /// The value of `self`; only called when [`BY_VALUE`](Self::BY_VALUE).
    #[doc(hidden)]
    fn to_value(self) -> Value {
        unreachable!("to_value on a type that does not convert by value")
    }

    /// `Self` from a value of its type; only called when
    /// [`BY_VALUE`](Self::BY_VALUE), `None` for another kind.
    #[doc(hidden)]
    fn from_value(_v: &Value) -> Option<Self> {
        None
    }

    /// `self` in a 64-bit slot, encoded as [`SlotFn`] says; only called
    /// when [`BY_VALUE`](Self::BY_VALUE).
    #[doc(hidden)]
    fn to_slot(self) -> u64 {
        unreachable!("to_slot on a type that does not convert by value")
    }

    /// `Self` from a result slot ([`SlotFn`]); only called when
    /// [`BY_VALUE`](Self::BY_VALUE).
    #[doc(hidden)]
    fn from_slot(_s: u64) -> Self {
        unreachable!("from_slot on a type that does not convert by value")
    }
}

macro_rules! ctype {
    ($($t:ty => $v:ident, |$x:ident| $to:expr, |$s:ident| $from:expr;)*) => {$(
        // SAFETY: the Rust primitive has exactly this C representation.
        unsafe impl CType for $t {
            fn ffi_type() -> FfiType { FfiType::$v }
            const BY_VALUE: bool = true;
            #[inline(always)]
            fn to_value(self) -> Value { Value::$v(self) }
            #[inline(always)]
            fn from_value(v: &Value) -> Option<Self> {
                match v { Value::$v(x) => Some(*x), _ => None }
            }
            #[inline(always)]
            fn to_slot(self) -> u64 { let $x = self; $to }
            #[inline(always)]
            fn from_slot($s: u64) -> Self { $from }
        }
    )*};
}
// The slot encoding of `SlotFn`: 32-bit and narrower integers as their
// 32 bits zero-extended, results truncated back.
ctype! {
    bool => Bool, |x| u64::from(x), |s| s != 0;
    i8 => I8, |x| u64::from(i32::from(x) as u32), |s| s as i8;
    i16 => I16, |x| u64::from(i32::from(x) as u32), |s| s as i16;
    i32 => I32, |x| u64::from(x as u32), |s| s as i32;
    i64 => I64, |x| x as u64, |s| s as i64;
    u8 => U8, |x| u64::from(x), |s| s as u8;
    u16 => U16, |x| u64::from(x), |s| s as u16;
    u32 => U32, |x| u64::from(x), |s| s as u32;
    u64 => U64, |x| x, |s| s;
    f32 => F32, |x| u64::from(x.to_bits()), |s| f32::from_bits(s as u32);
    f64 => F64, |x| x.to_bits(), |s| f64::from_bits(s);
}

// SAFETY: `PolyloadStr`/`PolyloadBytes` are the `#[repr(C)]` pointer +
// length pairs of `str` and `bytes` (polyload.h).
unsafe impl CType for PolyloadStr {
    fn ffi_type() -> FfiType {
        FfiType::Str
    }
}
// SAFETY: as above.
unsafe impl CType for PolyloadBytes {
    fn ffi_type() -> FfiType {
        FfiType::Bytes
    }
}

// SAFETY: a raw pointer is a C `void *`-sized address.
unsafe impl<T> CType for *const T {
    fn ffi_type() -> FfiType {
        FfiType::Pointer
    }
}
// SAFETY: as above.
unsafe impl<T> CType for *mut T {
    fn ffi_type() -> FfiType {
        FfiType::Pointer
    }
}

/// The C-level equivalence class of a type: `json` travels as `str`, a
/// `handle` as `u64`.
fn lower(t: &FfiType) -> FfiType {
    match t {
        FfiType::Json => FfiType::Str,
        FfiType::Handle(_) => FfiType::U64,
        FfiType::Callback(_) | FfiType::CString => FfiType::Pointer,
        t => t.clone(),
    }
}

/// An `extern "C" fn` type a [`Function`] handle can call.
///
/// Implemented for `extern "C" fn(A1, .., An) -> R` with up to 8
/// parameters of [`CType`]s (and `()` as a void return).
///
/// # Safety
/// `signature()` must describe the function type exactly.
pub unsafe trait CFunction: Copy + Send + Sync + 'static {
    /// The arguments, as a tuple.
    type Args;
    /// The return type.
    type Ret;
    /// The signature this type implies.
    fn signature() -> Signature;
    /// Calls `code` as this type.
    ///
    /// # Safety
    /// `code` must be a live function of this exact type.
    unsafe fn invoke(code: *const c_void, args: Self::Args) -> Self::Ret;

    /// Whether every parameter and the return convert by value
    /// ([`CType::BY_VALUE`]).
    #[doc(hidden)]
    const BY_VALUE: bool;

    /// Calls a dynamic (VM) entry with the arguments as values; only called
    /// when [`BY_VALUE`](Self::BY_VALUE). `Ok(None)` when the entry
    /// returned a value of the wrong kind (a loader bug).
    #[doc(hidden)]
    fn invoke_dynamic(
        f: &DynamicFn,
        args: Self::Args,
    ) -> std::result::Result<Option<Self::Ret>, GuestError>;

    /// Calls a raw-slot entry ([`SlotFn`]); only called when
    /// [`BY_VALUE`](Self::BY_VALUE).
    #[doc(hidden)]
    fn invoke_slots(f: &SlotFn, args: Self::Args) -> std::result::Result<Self::Ret, GuestError>;
}

/// A return type of a [`CFunction`]: a [`CType`] or `()`.
pub trait CReturn: Sized {
    /// The polyload type (`void` for `()`).
    fn ffi_type() -> FfiType;
    /// As [`CType::BY_VALUE`].
    #[doc(hidden)]
    const BY_VALUE: bool;
    /// As [`CType::from_value`].
    #[doc(hidden)]
    fn from_value(v: &Value) -> Option<Self>;
    /// As [`CType::from_slot`].
    #[doc(hidden)]
    fn from_slot(s: u64) -> Self;
}
impl CReturn for () {
    fn ffi_type() -> FfiType {
        FfiType::Void
    }
    const BY_VALUE: bool = true;
    #[inline(always)]
    fn from_value(v: &Value) -> Option<Self> {
        matches!(v, Value::Void).then_some(())
    }
    #[inline(always)]
    fn from_slot(_s: u64) -> Self {}
}
impl<T: CType> CReturn for T {
    fn ffi_type() -> FfiType {
        T::ffi_type()
    }
    const BY_VALUE: bool = T::BY_VALUE;
    #[inline(always)]
    fn from_value(v: &Value) -> Option<Self> {
        T::from_value(v)
    }
    #[inline(always)]
    fn from_slot(s: u64) -> Self {
        T::from_slot(s)
    }
}

macro_rules! cfunction {
    ($($a:ident),*) => {
        // SAFETY: the signature lists exactly the parameter and return types.
        unsafe impl<R: CReturn + 'static, $($a: CType + 'static),*> CFunction for extern "C" fn($($a),*) -> R {
            type Args = ($($a,)*);
            type Ret = R;
            fn signature() -> Signature {
                Signature::new(vec![$($a::ffi_type()),*], R::ffi_type())
            }
            #[inline(always)]
            #[allow(non_snake_case, reason = "type parameters double as argument names")]
            unsafe fn invoke(code: *const c_void, args: Self::Args) -> R {
                // SAFETY: the caller guarantees `code` has this exact type.
                let f: Self = unsafe { std::mem::transmute::<*const c_void, Self>(code) };
                let ($($a,)*) = args;
                f($($a),*)
            }
            const BY_VALUE: bool = R::BY_VALUE $(&& $a::BY_VALUE)*;
            #[inline(always)]
            #[allow(non_snake_case, reason = "type parameters double as argument names")]
            fn invoke_dynamic(
                f: &DynamicFn,
                args: Self::Args,
            ) -> std::result::Result<Option<R>, GuestError> {
                let ($($a,)*) = args;
                // Values of `BY_VALUE` types own no heap memory: skipping
                // their drop (a call per element) leaks nothing.
                let values = std::mem::ManuallyDrop::new([$($a.to_value()),*]);
                let values: &[Value] = &*values;
                f(values).map(|v| {
                    let r = R::from_value(&v);
                    if r.is_some() {
                        // A value of a `BY_VALUE` kind owns nothing either.
                        std::mem::forget(v);
                    }
                    r
                })
            }
            #[inline(always)]
            #[allow(non_snake_case, reason = "type parameters double as argument names")]
            fn invoke_slots(f: &SlotFn, args: Self::Args) -> std::result::Result<R, GuestError> {
                let ($($a,)*) = args;
                // One slot per parameter and one more, so the result has a
                // slot even without parameters.
                let mut slots = [$($a.to_slot(),)* 0];
                f(&mut slots)?;
                Ok(R::from_slot(slots[0]))
            }
        }
    };
}
cfunction!();
cfunction!(A1);
cfunction!(A1, A2);
cfunction!(A1, A2, A3);
cfunction!(A1, A2, A3, A4);
cfunction!(A1, A2, A3, A4, A5);
cfunction!(A1, A2, A3, A4, A5, A6);
cfunction!(A1, A2, A3, A4, A5, A6, A7);
cfunction!(A1, A2, A3, A4, A5, A6, A7, A8);

/// A typed handle to a definition: always calls its newest version.
///
/// A call is a thread-local depth store, one atomic load of the bundle's
/// code table, a bounds check, an indirect call and a check of the guest
/// error flag. A definition of a VM bundle (Lua, Python, JavaScript) is
/// called with [`Value`]s when every parameter and the return are numbers
/// or `bool`, without its C entry point; guest errors then carry the
/// guest's traceback. The handle follows hot reloads; after its bundle is
/// unloaded a call returns [`Error::Stale`] instead of reaching freed code.
///
/// ```
/// # fn main() -> polyload::Result<()> {
/// # std::env::set_current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).unwrap();
/// let rt = polyload::Runtime::new()?;
/// rt.load_bundle("examples/bundles/hello")?;
/// let add = rt.function::<extern "C" fn(i64, i64) -> i64>("hello.add")?;
/// assert_eq!(add.call((2, 3))?, 5);
/// # Ok(()) }
/// ```
///
/// A returned `PolyloadStr`/`PolyloadBytes` is owned by the caller: free it
/// with [`polyload_ffi::alloc::polyload_free`]`(ptr, len, 1)`.
pub struct Function<F: CFunction> {
    /// The bundle cell's table pointer, kept alive by `slot`.
    cell: *const AtomicPtr<PolyloadCodeTable>,
    /// The bundle cell's code-array pointer, kept alive by `slot`.
    code: *const AtomicPtr<*const c_void>,
    index: usize,
    slot: Slot,
    name: Box<str>,
    /// Whether calls look for a value entry first: `F` converts by value
    /// and the definition was a VM one when the handle was made. Otherwise
    /// calls always go through the C code pointer, which every definition
    /// has (a VM definition's is its C entry point), so a bundle that is
    /// later loaded again by another loader is still called correctly.
    by_value: bool,
    _f: PhantomData<F>,
}

// SAFETY: `cell` points into the `Arc<BundleCell>` held by `slot` and is only
// read atomically; `F` is a `Send + Sync` function pointer type.
unsafe impl<F: CFunction> Send for Function<F> {}
// SAFETY: as above.
unsafe impl<F: CFunction> Sync for Function<F> {}

impl<F: CFunction> Clone for Function<F> {
    fn clone(&self) -> Self {
        Self {
            cell: self.cell,
            code: self.code,
            index: self.index,
            slot: self.slot.clone(),
            name: self.name.clone(),
            by_value: self.by_value,
            _f: PhantomData,
        }
    }
}

impl<F: CFunction> std::fmt::Debug for Function<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Function")
            .field("name", &self.name)
            .field("signature", &F::signature().to_string())
            .finish()
    }
}

impl<F: CFunction> Function<F> {
    /// Checks `F` against the definition's `signature` and makes a handle;
    /// `dynamic`: whether the definition is a VM (value) one.
    pub(crate) fn new(
        slot: Slot,
        name: &str,
        signature: &Signature,
        dynamic: bool,
    ) -> Result<Self> {
        let want = F::signature();
        let same = want.params.len() == signature.params.len()
            && want
                .params
                .iter()
                .zip(&signature.params)
                .all(|(a, b)| lower(a) == lower(b))
            && lower(&want.ret) == lower(&signature.ret)
            && !signature.variadic;
        if !same {
            return Err(Error::SignatureMismatch {
                name: name.to_string(),
                expected: Box::new(want),
                found: Box::new(signature.clone()),
            });
        }
        Ok(Self {
            cell: slot.cell.current(),
            code: slot.cell.code(),
            index: slot.index,
            slot,
            name: name.into(),
            by_value: F::BY_VALUE && dynamic,
            _f: PhantomData,
        })
    }

    /// The qualified name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Calls the newest version of the definition.
    ///
    /// # Errors
    /// [`Error::Stale`] if its bundle is not loaded; [`Error::Guest`] if the
    /// guest reported an error (then the returned value is discarded).
    #[inline(always)]
    pub fn call(&self, args: F::Args) -> Result<F::Ret> {
        self.call_inside(CallGuard::enter(), args)
    }

    /// Calls the newest version of the definition inside `scope` (see
    /// [`Runtime::enter`](crate::Runtime::enter)): the scope already marks
    /// the thread as inside a call, so this skips [`call`](Self::call)'s
    /// bookkeeping.
    ///
    /// # Errors
    /// As [`call`](Self::call).
    #[inline(always)]
    pub fn call_in(&self, scope: &Scope<'_>, args: F::Args) -> Result<F::Ret> {
        self.call_inside(scope, args)
    }

    #[inline(always)]
    fn call_inside(&self, inside: impl Inside, args: F::Args) -> Result<F::Ret> {
        if self.by_value {
            // Out of line, so that the C path below is the straight-line
            // code of the call (a VM call costs tens of nanoseconds; one
            // more direct call is noise there).
            return self.call_by_value(inside, args);
        }
        self.call_code(inside, args)
    }

    /// A call of a handle made for a VM definition: straight to its value
    /// entry, or through the code pointer if the bundle was since loaded
    /// again by a loader without one.
    #[inline(never)]
    fn call_by_value(&self, inside: impl Inside, args: F::Args) -> Result<F::Ret> {
        // SAFETY: `cell` is kept alive by `self.slot`; the handle was
        // made for a published definition; `inside` (a guard, or a scope
        // that holds one) keeps the thread inside a call across every
        // use of the table, its entries and its code.
        let table = unsafe { table_at_published(&*self.cell) };
        if table.dynamic {
            if let Some(Invoke::Dynamic(f, slots)) = table.entry(self.index).map(|e| &e.invoke) {
                if let Some(slots) = slots {
                    // Its raw-slot entry: no values built on either side.
                    let r = F::invoke_slots(&**slots, args);
                    inside.leave();
                    return r.map_err(|e| self.dynamic_error(e));
                }
                // A VM definition: straight to its value entry, skipping
                // the C entry point's trampoline and conversions.
                let r = F::invoke_dynamic(&**f, args);
                inside.leave();
                return match r {
                    Ok(Some(v)) => Ok(v),
                    Ok(None) => Err(self.wrong_return()),
                    Err(e) => Err(self.dynamic_error(e)),
                };
            }
        }
        self.call_code(inside, args)
    }

    /// A call through the definition's C code pointer.
    #[inline(always)]
    fn call_code(&self, inside: impl Inside, args: F::Args) -> Result<F::Ret> {
        // SAFETY: `code` is kept alive by `self.slot` and belongs to the
        // cell's table; the handle's index was published in this cell;
        // `inside` keeps the thread inside a call across the load and the
        // call.
        let code = unsafe { code_at_published(&*self.code, self.index) };
        if code.is_null() {
            inside.leave();
            return Err(self.stale());
        }
        // SAFETY: the slot's code was checked against `F`'s signature when the
        // handle was made; a reload that changes a signature moves the name to
        // a new index, so this index only ever holds code of this type. The
        // guard keeps the code mapped during the call.
        let r = unsafe { F::invoke(code, args) };
        if inside.leave_take_error() {
            return Err(self.guest_error());
        }
        Ok(r)
    }

    #[cold]
    fn dynamic_error(&self, e: GuestError) -> Error {
        Error::Guest {
            name: self.name.to_string(),
            message: e.message,
            traceback: e.traceback,
        }
    }

    #[cold]
    fn wrong_return(&self) -> Error {
        Error::Guest {
            name: self.name.to_string(),
            message: format!(
                "the loader returned a value that is not a `{}` (this is a bug)",
                F::signature().ret
            ),
            traceback: None,
        }
    }

    #[cold]
    fn stale(&self) -> Error {
        Error::Stale {
            name: self.name.to_string(),
        }
    }

    #[cold]
    fn guest_error(&self) -> Error {
        let e = host::take_guest_error();
        Error::Guest {
            name: self.name.to_string(),
            message: e.message,
            traceback: e.traceback,
        }
    }
}

/// What keeps a typed call inside the reclaimer's read side: its own
/// [`CallGuard`], or a [`Scope`] that holds one for many calls.
trait Inside {
    /// Ends this call's part (a guard leaves; a scope stays).
    fn leave(self);
    /// As [`leave`](Inside::leave), and takes the guest-error flag.
    fn leave_take_error(self) -> bool;
}

impl Inside for CallGuard {
    #[inline(always)]
    fn leave(self) {}
    #[inline(always)]
    fn leave_take_error(self) -> bool {
        self.exit_with_error_flag()
    }
}

impl Inside for &Scope<'_> {
    #[inline(always)]
    fn leave(self) {}
    #[inline(always)]
    fn leave_take_error(self) -> bool {
        self.guard.take_error_flag()
    }
}

/// A dynamic handle to a definition: resolved by name once, called with
/// [`Value`]s converted by the definition's signature; follows reloads and
/// answers [`Error::Stale`] once its bundle is unloaded (or its runtime
/// dropped). Made by [`Runtime::dynamic`](crate::Runtime::dynamic).
///
/// ```
/// # fn main() -> polyload::Result<()> {
/// # std::env::set_current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).unwrap();
/// let rt = polyload::Runtime::new()?;
/// rt.load_bundle("examples/bundles/hello")?;
/// use polyload::Value;
/// let add = rt.dynamic("hello.add")?;
/// assert_eq!(add.call(&[Value::I64(2), Value::I64(-44)])?, Value::I64(-42));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DynamicFunction {
    slot: Slot,
    name: Box<str>,
}

impl std::fmt::Debug for DynamicFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicFunction")
            .field("name", &self.name)
            .finish()
    }
}

impl DynamicFunction {
    pub(crate) fn new(slot: Slot, name: &str) -> Self {
        Self {
            slot,
            name: name.into(),
        }
    }

    /// The qualified name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Calls the newest version of the definition with `args`.
    ///
    /// # Errors
    /// [`Error::Stale`] if its bundle is not loaded; [`Error::Call`] for
    /// arguments that do not fit the signature (numbered from 1);
    /// [`Error::Guest`] if the guest reported an error.
    pub fn call(&self, args: &[Value]) -> Result<Value> {
        crate::namespace::call_slot(&self.slot, &self.name, args)
    }
}
