//! Per-signature marshallers: for a struct-by-value call, machine code
//! compiled with cranelift when the [`Call`](crate::Call) is built, that
//! checks and unpacks the arguments, calls the C function and writes the
//! result's fields, in straight-line code specific to the signature.
//!
//! # Why
//! The generic stub path ([`crate::flat`]) learns the shape of each
//! argument and field from the plan at run time: a loop per argument and
//! per field, each step a dispatch on the kind, then a register image in
//! memory read back by an invoker. That costs about as much as libffi's
//! own marshalling. A marshaller knows the shape when it is compiled, so a
//! call is one helper call per value read or written (below) and the C
//! call itself with every argument already in its register.
//!
//! # What the generated code does
//! `extern "C" fn(args: *const Value, nargs: usize, code: *const c_void)
//! -> Out`, System V AMD64 calling convention:
//! 1. It checks `nargs`. For each argument (element `i` of `args`): a
//!    scalar is read by its kind's helper ([`helpers`]), which returns the
//!    register image and whether the `Value` had the kind. A struct's
//!    fields (an array's elements) come from `struct_fields`
//!    (`array_elems`), null when the value is not an aggregate of that
//!    length; each scalar inside, at any depth, is read by its kind's
//!    helper, masked to its width, shifted to its place and ORed into its
//!    eightbyte (psABI §3.2.3).
//! 2. If the count or any kind was wrong, it returns an `Out` that
//!    [`is_refused`](Out::is_refused) without calling: [`Call`](crate::Call)
//!    then finds the argument to blame with [`Value::check`] (errors are
//!    rare; their path need not be fast).
//! 3. It calls `code` through a cranelift signature mirroring the
//!    [`StubPlan`]'s register assignment: INTEGER words as `i64`
//!    parameters, SSE words as `f64`, stack words as trailing `i64`s after
//!    all 6 + 8 registers (cranelift assigns System V registers per class,
//!    in order, as C does). A struct returned in memory gets a stack slot
//!    whose address is the hidden first INTEGER argument.
//! 4. A scalar result comes back as the `Out`'s word and kind; a struct's
//!    fields are written by the kinds' writer helpers into a new
//!    allocation (`alloc_values`; nested structs and arrays each get
//!    their own, wrapped by `put_struct`/`put_array`), read from the
//!    returned `rax`/`rdx`/`xmm0`/`xmm1` (cranelift returns results per
//!    class in the same registers C does) or from the memory slot; the
//!    `Out` carries the allocation and the field count.
//!
//! # Why helpers and not loads
//! [`Value`]'s layout is Rust's and unspecified: where its tag lives and
//! how it is encoded may change between compiler versions. Generated code
//! therefore never reads or writes a `Value`; it calls one small Rust
//! function per value, compiled by rustc with the real layout.
//!
//! # Cost
//! Compiling takes a few hundred microseconds, once per [`Call`](crate::Call),
//! and each marshaller keeps its code in its own pages of executable
//! memory, unmapped when the `Call` drops. Only x86-64 System V targets
//! (the ones with struct stubs) get marshallers, with the `jit` cargo
//! feature (on by default).

mod helpers;

use crate::extern_call::out::Out;
use crate::kind::Kind;
use crate::marshal::FieldOffsets;
use crate::stub::{
    Arg, Class, Ret, StubPlan, FLOAT_BASE, FLOAT_REGS, INT_REGS, MAX_MEMORY_RET, STACK_BASE, WORDS,
};
use crate::{FfiType, Value};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    types, AbiParam, Block, InstBuilder, MemFlagsData, SigRef, Signature, StackSlotData,
    StackSlotKind, Type, Value as ClifValue,
};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::JITModule;
use cranelift_module::Module;
use std::ffi::c_void;
use std::mem::size_of;
use std::sync::Mutex;

/// The generated function (see the module docs).
type Entry = unsafe extern "C" fn(args: *const Value, nargs: usize, code: *const c_void) -> Out;

/// A compiled marshaller for one [`StubPlan`] (see the module docs). Its
/// code lives as long as it does.
pub(crate) struct Marshaller {
    entry: Entry,
    /// Owns the code's memory; taken and freed on drop. (A `Mutex` only
    /// because the module is `Send` but not `Sync`; it is never locked
    /// while the marshaller is in use.)
    module: Mutex<Option<JITModule>>,
}

// `Call` is `Send + Sync` by an `unsafe impl` that relies on its
// marshaller being both: the entry is immutable code, and the `Mutex` is
// `Sync` when the module is `Send`, checked here.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<JITModule>();
};

impl std::fmt::Debug for Marshaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Marshaller").finish_non_exhaustive()
    }
}

impl Drop for Marshaller {
    fn drop(&mut self) {
        // SAFETY: the code is only reached through `self.entry`, and
        // `&mut self` means no call through it is running or can start.
        unsafe { crate::trampoline::free_module(&mut self.module) };
    }
}

impl Marshaller {
    /// Compiles the marshaller for `plan` (whose return type is `ret_ty`),
    /// or `None` when the plan is not one marshallers cover (a plan with a
    /// struct argument or return and no `cstr`) or cranelift cannot compile
    /// for this host: the call then takes the generic stub path, with the
    /// same results.
    pub(crate) fn compile(plan: &StubPlan, ret_ty: &FfiType) -> Option<Marshaller> {
        if plan.scalars
            || plan.ret == Ret::Scalar(Kind::CStr)
            || plan
                .args
                .iter()
                .any(|a| matches!(a, Arg::Scalar(Kind::CStr, _)))
        {
            return None;
        }
        let mut module = new_module()?;
        let mut sig = Signature::new(CallConv::SystemV);
        sig.params.extend([AbiParam::new(types::I64); 3]);
        // `Out` is `#[repr(C)]`, two INTEGER eightbytes.
        const _: () = assert!(size_of::<Out>() == 16);
        sig.returns.extend([AbiParam::new(types::I64); 2]);
        let id = module.declare_anonymous_function(&sig).ok()?;
        let mut ctx = module.make_context();
        ctx.func.signature = sig;
        let mut fctx = FunctionBuilderContext::new();
        {
            let b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
            Gen::new(b, module.target_config()).body(plan, ret_ty)?;
        }
        module.define_function(id, &mut ctx).ok()?;
        module.clear_context(&mut ctx);
        module.finalize_definitions().ok()?;
        let code = module.get_finalized_function(id);
        // SAFETY: the function was compiled with exactly `Entry`'s
        // parameters and results under the System V convention, which is
        // `extern "C"` on this target (`Out` is two INTEGER eightbytes,
        // returned in `rax:rdx` by both).
        let entry = unsafe { std::mem::transmute::<*const u8, Entry>(code) };
        Some(Marshaller {
            entry,
            module: Mutex::new(Some(module)),
        })
    }

    /// Runs the marshaller on `args`: the result as an [`Out`] (a scalar,
    /// `void`, or a struct's fields in a new allocation), or an `Out` that
    /// [`is_refused`](Out::is_refused) when the count or a kind was wrong
    /// (nothing was called).
    ///
    /// # Safety
    /// `code` is a function with the plan's signature, called with
    /// `args`' values (the call's contract).
    #[inline(always)]
    pub(crate) unsafe fn call(&self, args: &[Value], code: *const c_void) -> Out {
        // SAFETY: the generated code reads `args.len()` values from
        // `args.as_ptr()` only after checking the count; the rest is the
        // caller's contract.
        unsafe { (self.entry)(args.as_ptr(), args.len(), code) }
    }
}

/// A module for the host ISA, optimising for speed (the trampolines'
/// own), System V only.
fn new_module() -> Option<JITModule> {
    let module = crate::trampoline::new_module()?;
    (module.isa().default_call_conv() == CallConv::SystemV).then_some(module)
}

/// Where a returned struct's bytes are: the returned registers' words
/// (eightbyte `n` is word `n`), or the memory return's buffer.
enum Source<'a> {
    Words(&'a [ClifValue]),
    Memory(ClifValue),
}

/// A struct's fields or an array's elements, as `Value`s see them.
struct Aggregate<'t> {
    /// Each element's type and byte offset in the outermost struct (C
    /// layout).
    elems: Vec<(&'t FfiType, usize)>,
    /// The helper giving a `Value` of this aggregate's elements
    /// (`struct_fields` or `array_elems`).
    open: *const u8,
    /// The helper making a `Value` of it from its elements (`put_struct`
    /// or `put_array`).
    wrap: *const u8,
}

/// The aggregate `ty` placed `base` bytes into the outermost struct;
/// `None` for a scalar.
fn aggregate(ty: &FfiType, base: usize) -> Option<Aggregate<'_>> {
    Some(match ty {
        FfiType::Struct(fields) => Aggregate {
            elems: fields
                .iter()
                .zip(FieldOffsets::new(fields).map(|o| base + o))
                .collect(),
            open: helpers::struct_fields as *const u8,
            wrap: helpers::put_struct as *const u8,
        },
        FfiType::Array(elem, n) => {
            let size = elem.layout().size;
            Aggregate {
                elems: (0..*n).map(|i| (&**elem, base + i * size)).collect(),
                open: helpers::array_elems as *const u8,
                wrap: helpers::put_array as *const u8,
            }
        }
        _ => return None,
    })
}

/// Bytes between consecutive `Value`s of a slice.
const VALUE_SIZE: i64 = size_of::<Value>() as i64;

/// The code generator for one marshaller.
struct Gen<'a> {
    b: FunctionBuilder<'a>,
    /// Signatures of the helpers: scalar reader, scalar writer,
    /// `struct_fields`/`array_elems`, `alloc_values`,
    /// `put_struct`/`put_array`.
    get_sig: SigRef,
    put_sig: SigRef,
    fields_sig: SigRef,
    alloc_sig: SigRef,
    put_agg_sig: SigRef,
    /// Where an argument of the wrong kind leads: returns `ok = 0`.
    fail: Block,
    target: TargetFrontendConfig,
}

impl<'a> Gen<'a> {
    fn new(mut b: FunctionBuilder<'a>, target: TargetFrontendConfig) -> Gen<'a> {
        let sig = |params: &[Type], returns: &[Type]| {
            let mut s = Signature::new(CallConv::SystemV);
            s.params.extend(params.iter().map(|t| AbiParam::new(*t)));
            s.returns.extend(returns.iter().map(|t| AbiParam::new(*t)));
            s
        };
        let i64 = types::I64;
        let get_sig = b.import_signature(sig(&[i64], &[i64, i64]));
        let put_sig = b.import_signature(sig(&[i64, i64], &[]));
        let fields_sig = b.import_signature(sig(&[i64, i64], &[i64]));
        let alloc_sig = b.import_signature(sig(&[i64], &[i64]));
        let put_agg_sig = b.import_signature(sig(&[i64, i64, i64], &[]));
        let fail = b.create_block();
        Gen {
            b,
            get_sig,
            put_sig,
            fields_sig,
            alloc_sig,
            put_agg_sig,
            fail,
            target,
        }
    }

    /// Calls the Rust helper at `addr` with signature `sig`.
    fn helper(&mut self, sig: SigRef, addr: *const u8, args: &[ClifValue]) -> Vec<ClifValue> {
        let f = self.b.ins().iconst(types::I64, addr as i64);
        let call = self.b.ins().call_indirect(sig, f, args);
        self.b.inst_results(call).to_vec()
    }

    /// Emits the whole function (see the module docs); `None` for a plan
    /// it does not cover.
    fn body(mut self, plan: &StubPlan, ret_ty: &FfiType) -> Option<()> {
        let entry = self.b.create_block();
        self.b.append_block_params_for_function_params(entry);
        self.b.switch_to_block(entry);
        self.b.seal_block(entry);
        let &[args, nargs, code] = self.b.block_params(entry) else {
            unreachable!("three parameters declared")
        };
        let i64 = types::I64;
        let mut words: [Option<ClifValue>; WORDS] = [None; WORDS];

        // 0. The argument count.
        let counted = self.b.create_block();
        let wrong = self
            .b
            .ins()
            .icmp_imm_u(IntCC::NotEqual, nargs, plan.args.len() as i64);
        self.b.ins().brif(wrong, self.fail, &[], counted, &[]);
        self.b.switch_to_block(counted);
        self.b.seal_block(counted);
        let mut ok = self.b.ins().iconst(i64, 1);

        // 1. The arguments, into their words.
        for (i, a) in plan.args.iter().enumerate() {
            let v = self.b.ins().iadd_imm_s(args, i as i64 * VALUE_SIZE);
            match a {
                Arg::Scalar(k, word) => {
                    let r = self.helper(self.get_sig, helpers::getter(*k)?, &[v]);
                    ok = self.b.ins().band(ok, r[1]);
                    words[usize::from(*word)] = Some(r[0]);
                }
                Arg::Struct(st) => {
                    let agg = aggregate(&st.ty, 0)?;
                    ok = self.read_aggregate(v, agg, &st.words, &mut words, ok)?;
                }
            }
        }
        let call_block = self.b.create_block();
        self.b.ins().brif(ok, call_block, &[], self.fail, &[]);
        self.b.switch_to_block(self.fail);
        self.b.seal_block(self.fail);
        self.ret(0, Out::REFUSED);
        self.b.switch_to_block(call_block);
        self.b.seal_block(call_block);

        // 2. The call.
        let slot = (plan.ret == Ret::Memory).then(|| {
            let ss = self.b.create_sized_stack_slot(StackSlotData::new(
                StackSlotKind::ExplicitSlot,
                MAX_MEMORY_RET as u32,
                4,
            ));
            let addr = self.b.ins().stack_addr(i64, ss, 0);
            words[0] = Some(addr);
            addr
        });
        let stack = usize::from(plan.stack_words);
        let used = |range: std::ops::Range<usize>| {
            range
                .clone()
                .rev()
                .find(|w| words[*w].is_some())
                .map_or(0, |w| w - range.start + 1)
        };
        let (ints, floats) = if stack > 0 {
            (INT_REGS, FLOAT_REGS)
        } else {
            (used(0..INT_REGS), used(FLOAT_BASE..FLOAT_BASE + FLOAT_REGS))
        };
        let mut callee = Signature::new(CallConv::SystemV);
        let mut params = Vec::with_capacity(ints + floats + stack);
        for w in &words[..ints] {
            callee.params.push(AbiParam::new(i64));
            params.push(self.word_or_zero(*w));
        }
        for w in &words[FLOAT_BASE..FLOAT_BASE + floats] {
            callee.params.push(AbiParam::new(types::F64));
            let bits = self.word_or_zero(*w);
            params.push(self.b.ins().bitcast(types::F64, MemFlagsData::new(), bits));
        }
        for w in &words[STACK_BASE..STACK_BASE + stack] {
            callee.params.push(AbiParam::new(i64));
            params.push(self.word_or_zero(*w));
        }
        let class_ty = |c: Class| match c {
            Class::Integer => i64,
            Class::Sse => types::F64,
        };
        match plan.ret {
            Ret::Void | Ret::Memory => {}
            Ret::Scalar(k) => callee.returns.push(AbiParam::new(class_ty(if k.is_float() {
                Class::Sse
            } else {
                Class::Integer
            }))),
            Ret::Pair(c0, c1) => {
                callee.returns.push(AbiParam::new(class_ty(c0)));
                if let Some(c1) = c1 {
                    callee.returns.push(AbiParam::new(class_ty(c1)));
                }
            }
        }
        let callee = self.b.import_signature(callee);
        let call = self.b.ins().call_indirect(callee, code, &params);
        let results: Vec<_> = self
            .b
            .inst_results(call)
            .to_vec()
            .into_iter()
            .map(|r| {
                if self.b.func.dfg.value_type(r) == types::F64 {
                    self.b.ins().bitcast(i64, MemFlagsData::new(), r)
                } else {
                    r
                }
            })
            .collect();

        // 3. The result.
        let source = match slot {
            Some(addr) => Source::Memory(addr),
            None => Source::Words(&results),
        };
        match (plan.ret, ret_ty) {
            (Ret::Scalar(k), _) => {
                let tag = self.b.ins().iconst(i64, k.index() as i64);
                self.b.ins().return_(&[results[0], tag]);
            }
            (Ret::Void, _) => self.ret(0, Out::VOID),
            (Ret::Pair(..) | Ret::Memory, FfiType::Struct(_)) => {
                let fields = aggregate(ret_ty, 0)?.elems;
                let tag = self
                    .b
                    .ins()
                    .iconst(i64, (Out::STRUCT + fields.len()) as i64);
                let buf = self.write_fields(fields, &source)?;
                self.b.ins().return_(&[buf, tag]);
            }
            _ => return None,
        }
        self.b.finalize(self.target);
        Some(())
    }

    /// Reads the aggregate `Value` at `v` into the words of an argument
    /// whose eightbyte `n` goes to word `places[n]`: each scalar inside, at
    /// any depth, is checked (ANDed into the returned `ok`), masked to its
    /// width, shifted to its place and ORed into its word. A value that is
    /// not an aggregate of this length branches to `fail`.
    fn read_aggregate(
        &mut self,
        v: ClifValue,
        agg: Aggregate<'_>,
        places: &[u8],
        words: &mut [Option<ClifValue>; WORDS],
        mut ok: ClifValue,
    ) -> Option<ClifValue> {
        let n = self.b.ins().iconst(types::I64, agg.elems.len() as i64);
        let ep = self.helper(self.fields_sig, agg.open, &[v, n])[0];
        let next = self.b.create_block();
        self.b.ins().brif(ep, next, &[], self.fail, &[]);
        self.b.switch_to_block(next);
        self.b.seal_block(next);
        for (j, (ty, off)) in agg.elems.into_iter().enumerate() {
            let ev = self.b.ins().iadd_imm_s(ep, j as i64 * VALUE_SIZE);
            if let Some(inner) = aggregate(ty, off) {
                ok = self.read_aggregate(ev, inner, places, words, ok)?;
                continue;
            }
            let k = Kind::of(ty)?;
            let r = self.helper(self.get_sig, helpers::getter(k)?, &[ev]);
            ok = self.b.ins().band(ok, r[1]);
            let mut bits = r[0];
            if k.mask() != u64::MAX {
                bits = self.b.ins().band_imm_s(bits, k.mask() as i64);
            }
            let shift = (off % 8) * 8;
            if shift != 0 {
                bits = self.b.ins().ishl_imm_s(bits, shift as i64);
            }
            let w = &mut words[usize::from(*places.get(off / 8)?)];
            *w = Some(match *w {
                Some(prev) => self.b.ins().bor(prev, bits),
                None => bits,
            });
        }
        Some(ok)
    }

    /// Allocates the `Value`s of an aggregate's elements (each of a type
    /// and its byte offset in the returned struct), fills them from
    /// `source` (nested aggregates recursively) and returns the
    /// allocation's address.
    fn write_fields(
        &mut self,
        elems: Vec<(&FfiType, usize)>,
        source: &Source<'_>,
    ) -> Option<ClifValue> {
        let size = self
            .b
            .ins()
            .iconst(types::I64, elems.len() as i64 * VALUE_SIZE);
        let buf = self.helper(self.alloc_sig, helpers::alloc_values as *const u8, &[size])[0];
        for (j, (ty, off)) in elems.into_iter().enumerate() {
            let dst = self.b.ins().iadd_imm_s(buf, j as i64 * VALUE_SIZE);
            if let Some(inner) = aggregate(ty, off) {
                let n = self.b.ins().iconst(types::I64, inner.elems.len() as i64);
                let p = self.write_fields(inner.elems, source)?;
                self.helper(self.put_agg_sig, inner.wrap, &[dst, p, n]);
                continue;
            }
            let k = Kind::of(ty)?;
            let w = match *source {
                Source::Memory(addr) => self.load_field(k, addr, i32::try_from(off).ok()?),
                Source::Words(words) => {
                    let w = *words.get(off / 8)?;
                    let shift = (off % 8) * 8;
                    if shift == 0 {
                        w
                    } else {
                        self.b.ins().ushr_imm_s(w, shift as i64)
                    }
                }
            };
            self.helper(self.put_sig, helpers::putter(k)?, &[dst, w]);
        }
        Some(buf)
    }

    /// Returns the `Out` `{word, tag}` of constants.
    fn ret(&mut self, word: u64, tag: usize) {
        let word = self.b.ins().iconst(types::I64, word as i64);
        let tag = self.b.ins().iconst(types::I64, tag as i64);
        self.b.ins().return_(&[word, tag]);
    }

    /// The word's value, or 0 for a register no argument uses (below one
    /// that is used; the callee does not read it).
    fn word_or_zero(&mut self, w: Option<ClifValue>) -> ClifValue {
        w.unwrap_or_else(|| self.b.ins().iconst(types::I64, 0))
    }

    /// A field of kind `k` at `offset` in the memory return, zero-extended
    /// to a word (the writers read only the kind's low bytes).
    fn load_field(&mut self, k: Kind, addr: ClifValue, offset: i32) -> ClifValue {
        let flags = MemFlagsData::trusted();
        let i64 = types::I64;
        match k {
            Kind::Bool | Kind::I8 | Kind::U8 => self.b.ins().uload8(i64, flags, addr, offset),
            Kind::I16 | Kind::U16 => self.b.ins().uload16(i64, flags, addr, offset),
            Kind::I32 | Kind::U32 | Kind::F32 => self.b.ins().uload32(flags, addr, offset),
            _ => self.b.ins().load(i64, flags, addr, offset),
        }
    }
}
