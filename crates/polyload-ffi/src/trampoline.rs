//! Out-slot trampolines: a C function of one signature in front of a
//! target that takes the same arguments plus a trailing out-parameter.
//!
//! Many C APIs report failure through a last `T **error` argument
//! (GLib's `GError **`, Mono's `MonoException **` on an unmanaged thunk).
//! A caller that knows only the plain signature (a typed handle, a C
//! bundle's slot) cannot pass it. An [`OutSlotTrampoline`] is machine
//! code, compiled with cranelift for the one signature, that
//! 1. calls an optional enter hook (see [`OutSlotTrampoline::with_hooks`]),
//!    and stores null in a slot in its own stack frame,
//! 2. calls `target(args..., &slot)` with every argument still in the
//!    register (or stack word) the caller put it in,
//! 3. calls the leave hook, if any, then `on_out(context, slot)` if the
//!    target left a non-null
//!    pointer there, and
//! 4. returns the target's result unchanged.
//!
//! ```
//! # fn main() -> Result<(), polyload_ffi::FfiError> {
//! use polyload_ffi::{OutSlotTrampoline, Signature};
//! use std::ffi::c_void;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//!
//! unsafe extern "C" fn checked_div(a: i64, b: i64, error: *mut *mut c_void) -> i64 {
//!     if b == 0 {
//!         // SAFETY: the trampoline passes a valid slot.
//!         unsafe { *error = 1 as *mut c_void };
//!         return 0;
//!     }
//!     a / b
//! }
//! static FAILURES: AtomicUsize = AtomicUsize::new(0);
//! unsafe extern "C" fn on_error(_cx: *mut c_void, _error: *mut c_void) {
//!     FAILURES.fetch_add(1, Ordering::Relaxed);
//! }
//! let sig: Signature = "fn(i64, i64) -> i64".parse()?;
//! // SAFETY: `checked_div` takes the signature's arguments plus the slot.
//! let t = unsafe {
//!     OutSlotTrampoline::new(&sig, checked_div as *const c_void, on_error, std::ptr::null_mut())
//! }?;
//! // SAFETY: the trampoline has exactly the signature `fn(i64, i64) -> i64`.
//! let div: extern "C" fn(i64, i64) -> i64 = unsafe { std::mem::transmute(t.code_ptr()) };
//! assert_eq!(div(7, 2), 3);
//! assert_eq!(div(1, 0), 0);
//! assert_eq!(FAILURES.load(Ordering::Relaxed), 1);
//! # Ok(()) }
//! ```
//!
//! # Types
//! Only register-sized scalars cross: integers, `bool`, `f32`, `f64`,
//! `ptr` and a `void` return, in the host's C calling convention
//! (System V AMD64 ABI §3.2.3 on x86-64 Linux: the slot is the next
//! INTEGER argument after the signature's own). Other signatures, and
//! builds without the `jit` feature, get [`FfiError::Unsupported`].
//!
//! # Cost
//! One stack store, the call, one load and a compare: a few instructions
//! on top of the target. Compiling takes a few hundred microseconds; the
//! code lives in its own pages, unmapped when the trampoline drops.

use crate::{FfiError, FfiType, Signature};
use std::ffi::c_void;

/// What a trampoline calls when its target left a non-null out-slot:
/// `(context, slot value)`, on the calling thread, before the trampoline
/// returns. It must not unwind.
pub type OutSlotHook = unsafe extern "C" fn(context: *mut c_void, out: *mut c_void);

/// Called before the target with the trampoline's context; what it
/// returns is handed to the [`LeaveHook`] after the target returns (a
/// previous state to restore, say). It must not unwind.
pub type EnterHook = unsafe extern "C" fn(context: *mut c_void) -> *mut c_void;

/// Called after the target with the context and the [`EnterHook`]'s
/// token, before the out-slot is looked at. It must not unwind.
pub type LeaveHook = unsafe extern "C" fn(context: *mut c_void, token: *mut c_void);

/// A compiled out-slot trampoline (see the [module docs](self)). Its code
/// stays mapped as long as the value lives.
pub struct OutSlotTrampoline {
    code: *const c_void,
    #[cfg(all(feature = "jit", not(windows)))]
    module: std::sync::Mutex<Option<Box<cranelift_jit::JITModule>>>,
}

// SAFETY: the trampoline is immutable machine code plus the module that
// owns its pages; the module is only touched by `Drop` (`&mut self`).
unsafe impl Send for OutSlotTrampoline {}
// SAFETY: as above: shared use is calling `code`, which is read-only.
unsafe impl Sync for OutSlotTrampoline {}

impl std::fmt::Debug for OutSlotTrampoline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutSlotTrampoline")
            .field("code", &self.code)
            .finish_non_exhaustive()
    }
}

impl OutSlotTrampoline {
    /// Compiles a trampoline of `signature` in front of `target`, which
    /// takes the signature's arguments and then one `*mut *mut c_void`.
    ///
    /// # Errors
    /// [`FfiError::Unsupported`] for a signature with a type other than
    /// the scalars above, a variadic one, or when this build cannot
    /// compile machine code (no `jit` feature, or a target cranelift does
    /// not support).
    ///
    /// # Safety
    /// `target` must be a function of that shape, callable for as long
    /// as the trampoline is used; `on_out` must be safe to call with
    /// `context` from any thread that calls the trampoline.
    pub unsafe fn new(
        signature: &Signature,
        target: *const c_void,
        on_out: OutSlotHook,
        context: *mut c_void,
    ) -> Result<Self, FfiError> {
        // SAFETY: the caller's contract.
        unsafe { Self::with_hooks(signature, target, on_out, None, context) }
    }

    /// As [`new`](Self::new), with a pair of hooks around the call of
    /// `target`: `enter(context)` before it, `leave(context, token)`
    /// after it with what `enter` returned (to set up and restore
    /// per-thread state the target needs, such as an engine's current
    /// domain).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    ///
    /// # Safety
    /// As [`new`](Self::new); the hooks too must be safe to call with
    /// `context` from any thread that calls the trampoline.
    pub unsafe fn with_hooks(
        signature: &Signature,
        target: *const c_void,
        on_out: OutSlotHook,
        around: Option<(EnterHook, LeaveHook)>,
        context: *mut c_void,
    ) -> Result<Self, FfiError> {
        let unsupported = |what: String| FfiError::Unsupported { what };
        if signature.variadic {
            return Err(unsupported(format!(
                "an out-slot trampoline for the variadic `{signature}`"
            )));
        }
        for ty in signature.params.iter().chain([&signature.ret]) {
            let scalar = ty.is_integer()
                || ty.is_float()
                || *ty == FfiType::Pointer
                || (std::ptr::eq(ty, &signature.ret) && *ty == FfiType::Void);
            if !scalar {
                return Err(unsupported(format!(
                    "`{ty}` in an out-slot trampoline (`{signature}`): only scalars cross"
                )));
            }
        }
        imp::compile(signature, target, on_out, around, context).ok_or_else(|| {
            unsupported(format!(
                "an out-slot trampoline for `{signature}` on this build (needs the `jit` feature and a cranelift target)"
            ))
        })
    }

    /// The trampoline's entry: a C function of the signature it was made
    /// for, valid while `self` lives.
    pub fn code_ptr(&self) -> *const c_void {
        self.code
    }
}

#[cfg(all(feature = "jit", not(windows)))]
impl Drop for OutSlotTrampoline {
    fn drop(&mut self) {
        // SAFETY: the code is only reached through `self.code`, and the
        // contract of `new` is that no call runs once the trampoline is
        // dropped (`&mut self`: nothing else holds it).
        unsafe { free_module(&mut self.module) };
    }
}

#[cfg(all(feature = "jit", not(windows)))]
mod imp {
    use super::{EnterHook, LeaveHook, OutSlotHook, OutSlotTrampoline};
    use crate::{FfiType, Signature};
    use cranelift_codegen::ir::{
        types, AbiParam, ArgumentExtension, InstBuilder, StackSlotData, StackSlotKind, Type,
    };
    use cranelift_codegen::settings::{self, Configurable};
    use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
    use cranelift_jit::{JITBuilder, JITModule};
    use cranelift_module::{default_libcall_names, Module};
    use std::ffi::c_void;

    /// The cranelift parameter for a C scalar: its width, extended as C
    /// extends it (System V AMD64 ABI §3.2.3: `_Bool`, `char` and `short`
    /// are extended to 32 bits by the caller, signed or not by type).
    fn param(ty: &FfiType) -> AbiParam {
        let (t, ext): (Type, ArgumentExtension) = match ty {
            FfiType::Bool | FfiType::U8 => (types::I8, ArgumentExtension::Uext),
            FfiType::I8 => (types::I8, ArgumentExtension::Sext),
            FfiType::U16 => (types::I16, ArgumentExtension::Uext),
            FfiType::I16 => (types::I16, ArgumentExtension::Sext),
            FfiType::I32 | FfiType::U32 => (types::I32, ArgumentExtension::None),
            FfiType::F32 => (types::F32, ArgumentExtension::None),
            FfiType::F64 => (types::F64, ArgumentExtension::None),
            // i64, u64, ptr
            _ => (types::I64, ArgumentExtension::None),
        };
        let p = AbiParam::new(t);
        match ext {
            ArgumentExtension::Uext => p.uext(),
            ArgumentExtension::Sext => p.sext(),
            ArgumentExtension::None => p,
        }
    }

    /// A JIT module for the host ISA, optimising for speed (also the
    /// struct marshallers' in `jit.rs`).
    pub(crate) fn new_module() -> Option<JITModule> {
        let mut flags = settings::builder();
        flags.set("opt_level", "speed").ok()?;
        let isa = cranelift_native::builder()
            .ok()?
            .finish(settings::Flags::new(flags))
            .ok()?;
        Some(JITModule::new(JITBuilder::with_isa(
            isa,
            default_libcall_names(),
        )))
    }

    pub(super) fn compile(
        signature: &Signature,
        target: *const c_void,
        on_out: OutSlotHook,
        around: Option<(EnterHook, LeaveHook)>,
        context: *mut c_void,
    ) -> Option<OutSlotTrampoline> {
        let mut module = new_module()?;
        let cc = module.isa().default_call_conv();
        let ptr = module.isa().pointer_type();
        let target_config = module.target_config();

        let mut outer = module.make_signature();
        outer.call_conv = cc;
        outer.params.extend(signature.params.iter().map(param));
        if signature.ret != FfiType::Void {
            outer.returns.push(param(&signature.ret));
        }
        let mut inner = outer.clone();
        inner.params.push(AbiParam::new(ptr));
        let mut hook = module.make_signature();
        hook.call_conv = cc;
        hook.params.extend([AbiParam::new(ptr), AbiParam::new(ptr)]);

        let id = module.declare_anonymous_function(&outer).ok()?;
        let mut ctx = module.make_context();
        ctx.func.signature = outer;
        let mut fctx = FunctionBuilderContext::new();
        {
            let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
            let entry = b.create_block();
            let report = b.create_block();
            let done = b.create_block();
            b.append_block_params_for_function_params(entry);
            b.switch_to_block(entry);
            let cx = b.ins().iconst(ptr, context as i64);
            let token = around.map(|(enter, _)| {
                let mut sig = b.func.signature.clone();
                sig.params = vec![AbiParam::new(ptr)];
                sig.returns = vec![AbiParam::new(ptr)];
                let sig = b.import_signature(sig);
                let f = b.ins().iconst(ptr, enter as usize as i64);
                let call = b.ins().call_indirect(sig, f, &[cx]);
                b.inst_results(call)[0]
            });
            let slot = b.create_sized_stack_slot(StackSlotData::new(
                StackSlotKind::ExplicitSlot,
                ptr.bytes(),
                ptr.bytes().trailing_zeros() as u8,
            ));
            let null = b.ins().iconst(ptr, 0);
            b.ins().stack_store(ptr, null, slot, 0);
            let slot_addr = b.ins().stack_addr(ptr, slot, 0);
            let mut args = b.block_params(entry).to_vec();
            args.push(slot_addr);
            let inner_ref = b.import_signature(inner);
            let callee = b.ins().iconst(ptr, target as i64);
            let call = b.ins().call_indirect(inner_ref, callee, &args);
            let results = b.inst_results(call).to_vec();
            if let (Some((_, leave)), Some(token)) = (around, token) {
                let mut sig = b.func.signature.clone();
                sig.params = vec![AbiParam::new(ptr), AbiParam::new(ptr)];
                sig.returns = vec![];
                let sig = b.import_signature(sig);
                let f = b.ins().iconst(ptr, leave as usize as i64);
                b.ins().call_indirect(sig, f, &[cx, token]);
            }
            let out = b.ins().stack_load(ptr, ptr, slot, 0);
            b.ins().brif(out, report, &[], done, &[]);

            b.switch_to_block(report);
            let hook_ref = b.import_signature(hook);
            let hook_fn = b.ins().iconst(ptr, on_out as usize as i64);
            b.ins().call_indirect(hook_ref, hook_fn, &[cx, out]);
            b.ins().jump(done, &[]);

            b.switch_to_block(done);
            b.ins().return_(&results);
            b.seal_all_blocks();
            b.finalize(target_config);
        }
        module.define_function(id, &mut ctx).ok()?;
        module.clear_context(&mut ctx);
        module.finalize_definitions().ok()?;
        let code = module.get_finalized_function(id).cast::<c_void>();
        Some(OutSlotTrampoline {
            code,
            module: std::sync::Mutex::new(Some(Box::new(module))),
        })
    }
}

#[cfg(all(feature = "jit", not(windows)))]
pub(crate) use imp::new_module;

/// Takes a JIT module out of its slot (poisoned or not) and frees its code
/// (also the struct marshallers' in `jit.rs`).
///
/// # Safety
/// No call may be running, or start later, through code of the module.
#[cfg(all(feature = "jit", not(windows)))]
pub(crate) unsafe fn free_module<M: Into<Box<cranelift_jit::JITModule>>>(
    slot: &mut std::sync::Mutex<Option<M>>,
) {
    let module = slot
        .get_mut()
        .map_or_else(|e| e.into_inner().take(), Option::take);
    if let Some(module) = module {
        let module: Box<cranelift_jit::JITModule> = module.into();
        // SAFETY: the caller's contract.
        unsafe { module.free_memory() };
    }
}

#[cfg(not(all(feature = "jit", not(windows))))]
mod imp {
    use super::{EnterHook, LeaveHook, OutSlotHook, OutSlotTrampoline};
    use crate::Signature;
    use std::ffi::c_void;

    /// No code generator on this build.
    pub(super) fn compile(
        _signature: &Signature,
        _target: *const c_void,
        _on_out: OutSlotHook,
        _around: Option<(EnterHook, LeaveHook)>,
        _context: *mut c_void,
    ) -> Option<OutSlotTrampoline> {
        None
    }
}
