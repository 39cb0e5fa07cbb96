//! The stub paths of [`Call::call`] for signatures that are not all
//! scalars: structs by value (flat ones field by field, see
//! [`crate::flat`]), `cstr` arguments and returns, memory returns.

use super::{Call, Out, Slot};
use crate::marshal::{read_plain, read_value, write_value, Keep, Ownership};
use crate::stub::{Arg, FlatStruct, Kind, Regs, Ret, StubPlan, MAX_MEMORY_RET};
use crate::{FfiError, FfiType, FfiValue, Value};
use std::ffi::{c_void, CString};
use std::mem::MaybeUninit;

impl Call {
    /// [`call`](Self::call) on a stub plan with `cstr` or struct arguments or
    /// a struct or `cstr` return: marshals through C layout.
    ///
    /// # Safety
    /// As [`call`](Self::call); the argument count was checked.
    #[inline(never)]
    pub(super) unsafe fn call_marshalled(
        &self,
        plan: &StubPlan,
        args: &[Value],
    ) -> Result<Value, FfiError> {
        let mut regs = Regs::new();
        let mut keep = Keep::default();
        // Only a memory return uses it; the callee initialises the bytes of
        // the return type, the only ones read.
        let mut ret_buf = MaybeUninit::<[u128; MAX_MEMORY_RET / 16]>::uninit();
        if plan.ret == Ret::Memory {
            regs.set(0, ret_buf.as_mut_ptr() as u64);
        }
        for (i, (a, v)) in plan.args.iter().zip(args).enumerate() {
            match a {
                Arg::Scalar(Kind::CStr, word) => {
                    let Value::Str(s) = v else {
                        return Err(self.bad_argument(i, v));
                    };
                    let c = CString::new(s.as_bytes()).map_err(|e| FfiError::InteriorNul {
                        index: i,
                        offset: e.nul_position(),
                    })?;
                    regs.set(usize::from(*word), c.as_ptr() as u64);
                    keep.cstrings.push(c);
                }
                Arg::Scalar(k, word) => match k.bits_from_value(v) {
                    Some(x) => regs.set(usize::from(*word), x),
                    None => return Err(self.bad_argument(i, v)),
                },
                Arg::Struct(st) => {
                    if let Some(flat) = &st.flat {
                        if !flat.write_words(&mut regs, v) {
                            return Err(self.bad_argument(i, v));
                        }
                        continue;
                    }
                    v.check(&st.ty)
                        .map_err(|source| FfiError::BadArgument { index: i, source })?;
                    let mut bytes = [0u64; crate::stub::MAX_STACK_WORDS];
                    let dst: *mut u8 = bytes.as_mut_ptr().cast();
                    // SAFETY: the buffer holds any struct the plan accepts
                    // (at most MAX_STACK_WORDS eightbytes), 8-aligned; the
                    // value was checked against it.
                    unsafe { write_value(dst, &st.ty, v, i, &mut keep)? };
                    for (n, w) in st.words.iter().enumerate() {
                        regs.set(usize::from(*w), bytes[n]);
                    }
                }
            }
        }
        // SAFETY: the plan matches the declared signature, which the
        // builder's caller vouched for; `keep` outlives the call; word 0
        // holds the return buffer for a memory return.
        let r = unsafe { plan.invoke(self.code, &regs) };
        drop(keep);
        match plan.ret {
            Ret::Void => Ok(Value::Void),
            Ret::Scalar(Kind::CStr) => read_cstr(plan.scalar_ret(r[0])),
            Ret::Scalar(k) => Ok(k.value_in_word(r[0])),
            Ret::Pair(..) => Ok(match &plan.ret_flat {
                Some(flat) => new_struct(flat, |out| flat.read_words(&r, out)),
                // SAFETY: the callee returned a value of the return type in
                // the registers copied to `r`; stub struct returns are plain
                // (`StubPlan::new`).
                None => unsafe { read_plain(r.as_ptr().cast(), &self.signature.ret) },
            }),
            // SAFETY: the callee wrote a value of the (plain) return type in
            // `ret_buf` (16-aligned).
            Ret::Memory => Ok(unsafe {
                match &plan.ret_flat {
                    Some(flat) => {
                        new_struct(flat, |out| flat.read_memory(ret_buf.as_ptr().cast(), out))
                    }
                    None => read_plain(ret_buf.as_ptr().cast(), &self.signature.ret),
                }
            }),
        }
    }

    /// The error, written to `slot`, for arguments a compiled marshaller
    /// refused (it only says that the count or a kind was wrong), found by
    /// the same checks as the libffi path.
    #[cold]
    #[inline(never)]
    pub(super) fn refused(&self, args: &[Value], slot: &mut Slot) -> Out {
        let err = match self.check_count(args.len()).and_then(|()| self.check_kinds(args)) {
            Err(e) => e,
            Ok(()) => FfiError::Unsupported {
                what: format!(
                    "arguments of `{}` refused by its marshaller but accepted by the checks (a polyload bug)",
                    self.signature
                ),
            },
        };
        Out::in_slot(slot, Err(err))
    }

    /// The stub path for plans with flat struct arguments or returns and no
    /// other storage ([`StubPlan::direct`](crate::stub::StubPlan)): fields
    /// go straight into the register image and come back built in place
    /// (from the return registers, or the buffer of a memory return).
    /// Out of line: [`call`](Self::call) is inlined into its callers.
    ///
    /// With `reuse`, a struct result replaces the contents of that vector
    /// (keeping its allocation) and the [`Out`] is `void`. Errors go to
    /// `slot`.
    ///
    /// # Safety
    /// As [`call`](Self::call); `plan` is this call's (direct) plan.
    /// `REUSE` is whether `reuse` may be `Some`: [`call`](Self::call)'s
    /// copy is compiled without the reuse branches.
    #[inline(never)]
    pub(super) unsafe fn call_direct<const REUSE: bool>(
        &self,
        plan: &StubPlan,
        args: &[Value],
        reuse: Option<&mut Vec<Value>>,
        slot: &mut Slot,
    ) -> Out {
        if let Err(e) = self.check_count(args.len()) {
            return Out::in_slot(slot, Err(e));
        }
        let reuse = if REUSE { reuse } else { None };
        let mut regs = Regs::new();
        // Only a memory return uses it; the callee initialises the bytes of
        // the return type, the only ones read.
        let mut ret_buf = MaybeUninit::<[u128; MAX_MEMORY_RET / 16]>::uninit();
        if plan.ret == Ret::Memory {
            regs.set(0, ret_buf.as_mut_ptr() as u64);
        }
        for (i, (a, v)) in plan.args.iter().zip(args).enumerate() {
            let ok = match a {
                Arg::Scalar(k, word) => match k.bits_from_value(v) {
                    Some(x) => {
                        regs.set(usize::from(*word), x);
                        true
                    }
                    None => false,
                },
                Arg::Struct(st) => st
                    .flat
                    .as_ref()
                    .is_some_and(|flat| flat.write_words(&mut regs, v)),
            };
            if !ok {
                return Out::in_slot(slot, Err(self.bad_argument(i, v)));
            }
        }
        // SAFETY: the plan matches the declared signature, which the
        // builder's caller vouched for.
        let r = unsafe { plan.invoke(self.code, &regs) };
        // Tests rather than a `match` on `plan.ret`: a struct return is the
        // common case here, and this keeps it free of a jump table.
        if let Some(flat) = &plan.ret_flat {
            if plan.ret == Ret::Memory {
                // SAFETY: the callee wrote a value of the return type in
                // `ret_buf` (16-aligned), whose address was the hidden
                // argument.
                fill(reuse, flat, |out| unsafe {
                    flat.read_memory(ret_buf.as_ptr().cast(), out)
                })
            } else {
                fill(reuse, flat, |out| flat.read_words(&r, out))
            }
        } else if let Ret::Scalar(k) = plan.ret {
            Out::scalar(k, r[0])
        } else {
            Out::void()
        }
    }
}

/// Runs `read` (which initialises the struct's fields in the slots it is
/// given) on the reused vector, emptied, returning `void` (the result is
/// in it), or on a new allocation of the struct's size, returned as the
/// [`Out`] of its fields (so the `Value` is built by the caller).
#[inline(always)]
fn fill(
    reuse: Option<&mut Vec<Value>>,
    flat: &FlatStruct,
    read: impl FnOnce(&mut [MaybeUninit<Value>]),
) -> Out {
    let n = flat.len();
    match reuse {
        Some(out) => {
            out.clear();
            out.reserve_exact(n);
            read(out.spare_capacity_mut());
            // SAFETY: `read` initialised the first `n` slots (it panics
            // before returning otherwise).
            unsafe { out.set_len(n) };
            Out::void()
        }
        None => {
            let fresh = flat.alloc_values();
            // SAFETY: `fresh` is a live allocation of `n` slots, owned here.
            read(unsafe { std::slice::from_raw_parts_mut(fresh, n) });
            // `read` initialised all `n` (else it panicked, leaking them).
            Out::fields(fresh.cast(), n)
        }
    }
}

/// A new [`Value::Struct`] whose fields `read` initialises.
#[inline(always)]
fn new_struct(flat: &FlatStruct, read: impl FnOnce(&mut [MaybeUninit<Value>])) -> Value {
    let n = flat.len();
    let mut v = Vec::with_capacity(n);
    read(v.spare_capacity_mut());
    // SAFETY: `read` initialised the first `n` slots (it panics before
    // returning otherwise).
    unsafe { v.set_len(n) };
    Value::Struct(v)
}

/// Reads a returned `cstr` (copied; null is an error).
fn read_cstr(r: FfiValue) -> Result<Value, FfiError> {
    let p = r.as_ptr();
    // SAFETY: the function returned a `cstr` (declared), i.e. a pointer to
    // a NUL-terminated string or null, checked by `read_value`.
    unsafe {
        read_value(
            (&p as *const *mut c_void).cast(),
            &FfiType::CString,
            Ownership::Owned,
        )
    }
}
