//! One bundle's live instance: its store, its limits, calls into it, and
//! recreating it after a trap.

use crate::abi::{self, ResultShape};
use crate::config::{Abi, Limits};
use crate::engine::{one_line, TICK};
use crate::extism::Kernel;
use polyload::loader::{GuestError, SlotFn, VmLock};
use polyload::{FfiType, Signature, Value};
use std::cell::{Cell, UnsafeCell};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use wasmtime::{
    AsContext, AsContextMut, Func, InstancePre, Memory, ResourceLimiter, Store, Trap, TypedFunc,
    ValRaw, WasmBacktrace,
};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// Table elements an instance may grow to.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// The guest's memory and allocator (polyload ABI), as host functions
/// reach them.
#[derive(Clone)]
pub(crate) struct GuestMemory {
    pub(crate) memory: Memory,
    pub(crate) alloc: Option<TypedFunc<(i32, i32), i32>>,
    pub(crate) free: Option<TypedFunc<(i32, i32, i32), ()>>,
}

/// What a store carries: the limits' accounting, WASI, the error a guest
/// set, the Extism kernel.
pub(crate) struct State {
    pub(crate) bundle: Arc<str>,
    /// Bytes of linear memory plus Extism memory allowed.
    pub(crate) max_memory: usize,
    /// Bytes of linear memory now.
    pub(crate) linear: usize,
    /// A `memory.grow` refused by the limit: the size asked for.
    pub(crate) refused: Option<usize>,
    /// Whether passing the limit traps (Extism plugins, as the `extism`
    /// crate does: their PDKs do not expect an allocation to fail) rather
    /// than failing the `memory.grow` (polyload guests).
    pub(crate) trap_on_limit: bool,
    pub(crate) wasi: Option<WasiP1Ctx>,
    /// Set by `polyload.set_error` during a call.
    pub(crate) error: Option<String>,
    pub(crate) kernel: Kernel,
    pub(crate) guest: Option<GuestMemory>,
}

impl ResourceLimiter for State {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let arena = self.kernel.bytes();
        if desired.saturating_add(arena) > self.max_memory {
            self.refused = Some(desired);
            if self.trap_on_limit {
                wasmtime::bail!(
                    "out of memory: growing linear memory to {desired} bytes would pass max_memory ({} bytes, Extism memory included)",
                    self.max_memory
                );
            }
            return Ok(false);
        }
        self.linear = desired;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// WASI as the manifest gives it.
#[derive(Clone, Debug)]
pub(crate) struct WasiSpec {
    /// argv, argv\[0\] first.
    pub(crate) args: Vec<String>,
    pub(crate) env: BTreeMap<String, String>,
    /// Host directory (absolute), guest directory, read-only.
    pub(crate) dirs: Vec<(PathBuf, String, bool)>,
}

impl WasiSpec {
    fn build(&self) -> Result<WasiP1Ctx, String> {
        let mut b = WasiCtxBuilder::new();
        b.args(&self.args).allow_blocking_current_thread(true);
        for (k, v) in &self.env {
            b.env(k, v);
        }
        for (host, guest, read_only) in &self.dirs {
            let perms = if *read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            b.preopened_dir(host, guest, perms).map_err(|e| {
                format!(
                    "cannot give the guest {} as {guest}: {}",
                    host.display(),
                    one_line(&e)
                )
            })?;
        }
        Ok(b.build_p1())
    }
}

/// What every instance of a bundle is made from.
pub(crate) struct Template {
    pub(crate) bundle: Arc<str>,
    pub(crate) abi: Abi,
    pub(crate) limits: Limits,
    pub(crate) pre: InstancePre<State>,
    pub(crate) wasi: Option<WasiSpec>,
    pub(crate) config: Arc<BTreeMap<String, String>>,
    /// Extism variables, kept across instances.
    pub(crate) vars: crate::extism::Vars,
    /// The wasm export each declared export calls, by index.
    pub(crate) exports: Vec<String>,
}

/// A live instance.
struct Live {
    store: Store<State>,
    funcs: Vec<Func>,
}

/// Why a call did not return a value.
pub(crate) enum Fault {
    /// The guest reported an error: the instance is fine.
    Guest(GuestError),
    /// A trap (or a failing host function, a limit): the instance is not
    /// to be trusted and is recreated before the next call.
    Trap(wasmtime::Error),
}

impl From<GuestError> for Fault {
    fn from(e: GuestError) -> Self {
        Fault::Guest(e)
    }
}

impl Template {
    /// Epoch ticks a call may run before it is interrupted.
    fn deadline_ticks(&self) -> u64 {
        self.limits
            .timeout_ms
            .map_or(u64::MAX / 4, |ms| ms.div_ceil(TICK.as_millis() as u64) + 1)
    }

    /// Whether a call must re-arm its limits ([`arm`](Self::arm)): with
    /// neither `timeout_ms` nor `fuel` the deadline armed at instantiation
    /// (`u64::MAX / 4` ticks away) never comes, and there is no fuel.
    fn rearms(&self) -> bool {
        self.limits.timeout_ms.is_some() || self.limits.fuel.is_some()
    }

    /// Arms the per-call limits (deadline, fuel).
    #[inline(always)]
    fn arm(&self, store: &mut Store<State>, ticks: u64) {
        store.set_epoch_deadline(ticks);
        if let Some(fuel) = self.limits.fuel {
            // Cannot fail: the fueled engine meters fuel.
            let _ = store.set_fuel(fuel);
        }
    }

    /// A fresh instance: a new store, instantiated, `_initialize` run.
    fn instantiate(&self) -> Result<Live, GuestError> {
        let wasi = match &self.wasi {
            Some(w) => Some(w.build().map_err(GuestError::new)?),
            None => None,
        };
        let state = State {
            bundle: self.bundle.clone(),
            max_memory: self.limits.max_memory,
            linear: 0,
            refused: None,
            trap_on_limit: self.abi == Abi::Extism,
            wasi,
            error: None,
            kernel: Kernel::new(
                self.config.clone(),
                self.vars.clone(),
                self.limits.max_memory,
            ),
            guest: None,
        };
        let mut store = Store::new(self.pre.module().engine(), state);
        store.limiter(|s| s as &mut dyn ResourceLimiter);
        self.arm(&mut store, self.deadline_ticks());
        let fail = |store: &Store<State>, what: &str, e: wasmtime::Error| {
            trap_error(self, store, what, &e)
        };
        let instance = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| fail(&store, "instantiating the module", e))?;
        if let Some(memory) = instance.get_memory(&mut store, "memory") {
            let guest = GuestMemory {
                memory,
                alloc: instance.get_typed_func(&mut store, "polyload_alloc").ok(),
                free: instance.get_typed_func(&mut store, "polyload_free").ok(),
            };
            store.data_mut().guest = Some(guest);
        }
        if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
            init.call(&mut store, ())
                .map_err(|e| fail(&store, "running `_initialize`", e))?;
        }
        let funcs = self
            .exports
            .iter()
            .map(|name| {
                instance.get_func(&mut store, name).ok_or_else(|| {
                    GuestError::new(format!(
                        "internal error: export `{name}` vanished (this is a bug)"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Live { store, funcs })
    }
}

/// The error a trap (or a failing host function, or a limit) becomes:
/// what happened on one line, the wasm backtrace in the traceback.
fn trap_error(t: &Template, store: &Store<State>, what: &str, e: &wasmtime::Error) -> GuestError {
    let trap = e.downcast_ref::<Trap>().copied();
    let mut message = match trap {
        Some(Trap::Interrupt) => format!(
            "{what}: timed out after {} ms (timeout_ms)",
            t.limits.timeout_ms.unwrap_or(0)
        ),
        Some(Trap::OutOfFuel) => format!(
            "{what}: ran out of fuel ({} units, fuel)",
            t.limits.fuel.unwrap_or(0)
        ),
        Some(trap) => format!("{what}: {trap}"),
        None => format!("{what}: {}", e.root_cause()),
    };
    if let Some(asked) = store.data().refused {
        message.push_str(&format!(
            " (memory limit: growing memory to {asked} bytes was refused; max_memory is {} bytes)",
            t.limits.max_memory
        ));
    }
    GuestError {
        message,
        traceback: e
            .downcast_ref::<WasmBacktrace>()
            .map(|b| b.to_string())
            .filter(|b| !b.trim().is_empty()),
    }
}

/// A declared export, ready to call.
pub(crate) struct ExportPlan {
    /// Index into the instance's functions.
    pub(crate) index: usize,
    pub(crate) signature: Signature,
    pub(crate) shape: ResultShape,
    /// The wasm export's name, for messages.
    pub(crate) name: String,
    /// Raw slots a call needs: max(lowered params, results).
    pub(crate) slots: usize,
    /// Whether every parameter and the result are numbers or void, in at
    /// most [`SCALAR_SLOTS`] slots (the fast path).
    pub(crate) scalar: bool,
    /// How many results the wasm function returns.
    pub(crate) results: usize,
    /// How [`Shared::call_slots`] writes the result back.
    pub(crate) slot_ret: SlotRet,
}

/// How a scalar export's result goes back into its slot, decided at load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotRet {
    /// No result.
    Void,
    /// An `i64`, `u64` or `f64`: its 64 bits.
    Bits64,
    /// An `i32`, `u32` or `f32`: its 32 bits.
    Bits32,
    /// A narrow integer or `bool`: range-checked first.
    Checked,
}

impl SlotRet {
    /// The way back for a result of `ret` in `shape`.
    pub(crate) fn of(shape: ResultShape, ret: &FfiType) -> Self {
        match (shape, ret) {
            (ResultShape::Scalar, FfiType::I64 | FfiType::U64 | FfiType::F64) => Self::Bits64,
            (ResultShape::Scalar, FfiType::I32 | FfiType::U32 | FfiType::F32) => Self::Bits32,
            (ResultShape::Scalar, _) => Self::Checked,
            _ => Self::Void,
        }
    }
}

/// Most slots a call on the scalar fast path takes.
pub(crate) const SCALAR_SLOTS: usize = 8;

/// Most raw slots a call passes on the stack (more go to the heap).
const STACK_SLOTS: usize = 16;

/// A bundle's instance, shared by its exports and reached under its lock.
pub(crate) struct Shared {
    lock: VmLock,
    /// Set while a call is inside the instance (reached only under `lock`).
    busy: Cell<bool>,
    /// `None` after a trap, until the next call recreates it.
    live: UnsafeCell<Option<Live>>,
    template: Template,
    /// [`Template::deadline_ticks`], computed once.
    ticks: u64,
    /// [`Template::rearms`], computed once.
    rearm: bool,
}

// SAFETY: `busy` and `live` are only touched by `Shared::enter`, which
// holds `lock` while it does: one thread at a time, with the lock's
// atomics ordering successive holders. A thread the lock is handed over
// to (see `VmLock`) while the owner is inside a call finds `busy` set and
// returns without touching `live`, so no two `&mut Live` exist at once.
// The `Store` inside is `Send` (its data is), so using and dropping it on
// any thread is fine.
unsafe impl Send for Shared {}
// SAFETY: as above: `&Shared` reaches `live` only through `enter`.
unsafe impl Sync for Shared {}

impl Shared {
    /// A bundle's instance, instantiated now (so a module that does not
    /// instantiate fails the load).
    pub(crate) fn new(template: Template) -> Result<Self, GuestError> {
        let live = template.instantiate()?;
        Ok(Self {
            lock: VmLock::new(),
            busy: Cell::new(false),
            live: UnsafeCell::new(Some(live)),
            ticks: template.deadline_ticks(),
            rearm: template.rearms(),
            template,
        })
    }

    /// Runs `f` on the live instance (recreated first after a trap), with
    /// the limits armed; a trap drops the instance.
    #[inline(always)]
    fn enter<R>(
        &self,
        what: &str,
        f: impl FnOnce(&mut Store<State>, &[Func]) -> Result<R, Fault>,
    ) -> Result<R, GuestError> {
        let _lock = self.lock.lock();
        if self.busy.get() {
            return Err(self.reentered());
        }
        self.busy.set(true);
        let _idle = Idle(&self.busy);
        // SAFETY: we hold the lock and `busy` was clear, so no other
        // reference into `live` exists (see the `Send` impl).
        let slot = unsafe { &mut *self.live.get() };
        let live = match slot {
            Some(live) => live,
            None => self.recreate(slot)?,
        };
        live.store.data_mut().refused = None;
        if self.rearm {
            self.template.arm(&mut live.store, self.ticks);
        }
        match f(&mut live.store, &live.funcs) {
            Ok(r) => Ok(r),
            Err(fault) => Err(self.fault(slot, what, fault)),
        }
    }

    #[cold]
    #[inline(never)]
    fn reentered(&self) -> GuestError {
        GuestError::new(format!(
            "re-entrant call: wasm bundle `{}` is inside a call already (a call out of it cannot call back into it)",
            self.template.bundle
        ))
    }

    /// A fresh instance in `slot` (after a trap dropped the last one).
    #[cold]
    #[inline(never)]
    fn recreate<'s>(&self, slot: &'s mut Option<Live>) -> Result<&'s mut Live, GuestError> {
        Ok(slot.insert(self.template.instantiate()?))
    }

    /// The error a failed call returns; after a trap, the instance is
    /// dropped (it is recreated by the next call).
    #[cold]
    #[inline(never)]
    fn fault(&self, slot: &mut Option<Live>, what: &str, fault: Fault) -> GuestError {
        match fault {
            Fault::Guest(e) => e,
            Fault::Trap(e) => {
                let err = match slot {
                    Some(live) => trap_error(&self.template, &live.store, what, &e),
                    None => GuestError::new(format!("{what}: {}", one_line(&e))),
                };
                *slot = None;
                err
            }
        }
    }

    /// Calls a polyload-ABI export whose parameters and result are all
    /// numbers (or void): no buffers, so no guest allocation. The loader
    /// picks this entry at load for such exports ([`ExportPlan::scalar`]);
    /// it is its raw-slot `entry` ([`slot_entry`](Self::slot_entry)) with
    /// the values lowered to slots and the result lifted back.
    pub(crate) fn call_scalar(
        e: &ExportPlan,
        entry: &SlotFn,
        args: &[Value],
    ) -> Result<Value, GuestError> {
        let mut slots = [0u64; SCALAR_SLOTS];
        for (slot, v) in slots.iter_mut().zip(args) {
            // Arguments were checked against the signature (all scalars)
            // by the caller.
            *slot = abi::lower(v).map_or(0, |r| r.get_u64());
        }
        entry(&mut slots)?;
        let s = slots[0];
        // The types that need no range check, inline; the rest out of line
        // (`call_slots` checked their range already).
        Ok(match (e.slot_ret, &e.signature.ret) {
            (SlotRet::Void, _) => Value::Void,
            (_, FfiType::I64) => Value::I64(s as i64),
            (_, FfiType::I32) => Value::I32(s as i32),
            (_, FfiType::F64) => Value::F64(f64::from_bits(s)),
            (_, ret) => lift_result(ValRaw::u64(s), ret)?,
        })
    }

    /// The raw-slot entry (`polyload::loader::SlotFn`) of a scalar export
    /// ([`ExportPlan::scalar`]), made for its slot count
    /// ([`ExportPlan::slots`]) at load, so a call copies exactly that many
    /// slots.
    pub(crate) fn slot_entry(self: &Arc<Self>, e: Arc<ExportPlan>) -> Arc<SlotFn> {
        let vm = self.clone();
        macro_rules! by_count {
            ($($n:literal)*) => {
                match e.slots {
                    $($n => Arc::new(move |s: &mut [u64]| vm.call_slots::<$n>(&e, s)),)*
                    _ => unreachable!("a scalar export takes at most {SCALAR_SLOTS} slots"),
                }
            };
        }
        by_count!(0 1 2 3 4 5 6 7 8)
    }

    /// Calls a scalar export of `N` raw slots ([`ExportPlan::slots`]) with
    /// the arguments and the result in `slots` (at least `N` and one;
    /// `polyload::loader::SlotFn`), whose encoding is wasmtime's `ValRaw`'s:
    /// a slot is its value's raw bits as they are.
    #[inline(always)]
    fn call_slots<const N: usize>(
        &self,
        e: &ExportPlan,
        slots: &mut [u64],
    ) -> Result<(), GuestError> {
        let Some(args) = slots.get(..N.max(1)) else {
            return Err(too_few_slots(e, slots.len()));
        };
        let mut raw: [ValRaw; N] = std::array::from_fn(|i| ValRaw::u64(args[i]));
        self.enter(&e.name, |store, funcs| {
            call_scalar_in(store, funcs, e, &mut raw)
        })?;
        let Some(r) = raw.first() else {
            // No parameters and no result.
            return Ok(());
        };
        let out = match e.slot_ret {
            SlotRet::Void => return Ok(()),
            SlotRet::Bits64 => r.get_u64(),
            SlotRet::Bits32 => r.get_u32().into(),
            SlotRet::Checked => {
                // In range, its 32 bits are its slot.
                lift_result(*r, &e.signature.ret)?;
                r.get_u32().into()
            }
        };
        slots[0] = out;
        Ok(())
    }

    /// Calls a polyload-ABI export (any signature; scalar ones have the
    /// shorter [`call_scalar`](Self::call_scalar)).
    pub(crate) fn call(&self, e: &ExportPlan, args: &[Value]) -> Result<Value, GuestError> {
        self.enter(&e.name, |store, funcs| {
            let mut stack = [ValRaw::i32(0); STACK_SLOTS];
            let mut heap = Vec::new();
            let raw: &mut [ValRaw] = if e.slots <= STACK_SLOTS {
                &mut stack[..e.slots]
            } else {
                heap.resize(e.slots, ValRaw::i32(0));
                &mut heap
            };
            let mut buffers: Vec<(i32, i32)> = Vec::new();
            let mut n = 0;
            for (i, v) in args.iter().enumerate() {
                match abi::lower(v) {
                    Some(r) => {
                        raw[n] = r;
                        n += 1;
                    }
                    None => {
                        let bytes = abi::buffer_bytes(v);
                        let (p, len) = write_guest(&mut *store, &bytes).map_err(|f| match f {
                            Fault::Guest(e) => {
                                Fault::Guest(GuestError::new(format!("argument {}: {e}", i + 1)))
                            }
                            trap => trap,
                        })?;
                        buffers.push((p, len));
                        raw[n] = ValRaw::i32(p);
                        raw[n + 1] = ValRaw::i32(len);
                        n += 2;
                    }
                }
            }
            store.data_mut().error = None;
            // SAFETY: `raw` holds the parameters of the wasm type this
            // export was checked to have at load (`check_polyload_export`:
            // one slot per lowered parameter, with room for its results),
            // written by `lower` with the matching wasm types; no
            // references are passed.
            unsafe { funcs[e.index].call_unchecked(&mut *store, raw as *mut [ValRaw]) }
                .map_err(Fault::Trap)?;
            for (p, len) in buffers {
                free_guest(&mut *store, p, len)?;
            }
            let ret = &e.signature.ret;
            let value = match e.shape {
                ResultShape::Void => Ok(Value::Void),
                ResultShape::Scalar => abi::lift(raw[0], ret, false),
                ResultShape::Packed => {
                    let packed = raw[0].get_u64();
                    take_guest(
                        &mut *store,
                        packed as u32 as i32,
                        (packed >> 32) as u32 as i32,
                    )
                    .and_then(|b| abi::buffer_value(b, ret))
                }
                ResultShape::Pair => take_guest(&mut *store, raw[0].get_i32(), raw[1].get_i32())
                    .and_then(|b| abi::buffer_value(b, ret)),
            };
            if let Some(message) = store.data_mut().error.take() {
                return Err(Fault::Guest(GuestError::new(message)));
            }
            value.map_err(|m| Fault::Guest(GuestError::new(format!("return value: {m}"))))
        })
    }

    /// Calls an Extism export: the argument is the input, the output the
    /// result.
    pub(crate) fn call_extism(&self, e: &ExportPlan, args: &[Value]) -> Result<Value, GuestError> {
        self.enter(&e.name, |store, funcs| {
            let input = args.first().map(abi::buffer_bytes).unwrap_or_default();
            let linear = store.data().linear;
            store
                .data_mut()
                .kernel
                .begin(&input, linear)
                .map_err(GuestError::new)?;
            let mut raw = [ValRaw::i32(0)];
            let results = e.results;
            // SAFETY: the export was checked at load to be `() -> i32` or
            // `() -> ()` (`check_extism_export`): no parameters, at most one
            // i32 result, which the one slot holds.
            unsafe {
                funcs[e.index].call_unchecked(&mut *store, &mut raw[..results] as *mut [ValRaw])
            }
            .map_err(Fault::Trap)?;
            let rc = if results == 1 { raw[0].get_i32() } else { 0 };
            let output = store.data().kernel.finish().map_err(GuestError::new)?;
            if rc != 0 {
                return Err(GuestError::new(format!("returned non-zero exit code: {rc}")).into());
            }
            abi::buffer_value(output, &e.signature.ret)
                .map_err(|m| Fault::Guest(GuestError::new(format!("output: {m}"))))
        })
    }

    /// The template's ABI.
    pub(crate) fn abi(&self) -> Abi {
        self.template.abi
    }
}

/// Clears a [`Shared`]'s `busy` flag when dropped (unwinding included).
struct Idle<'a>(&'a Cell<bool>);

impl Drop for Idle<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        self.0.set(false);
    }
}

/// One call of a scalar export on `store`: `raw` holds the lowered
/// arguments and gets the result.
#[inline(always)]
fn call_scalar_in(
    store: &mut Store<State>,
    funcs: &[Func],
    e: &ExportPlan,
    raw: &mut [ValRaw],
) -> Result<(), Fault> {
    store.data_mut().error = None;
    // SAFETY: `raw` holds the parameters of the wasm type the export was
    // checked to have at load (`check_polyload_export`), each lowered from
    // a value of the signature's scalar type, with room for its (at most
    // one) result; no references are passed.
    unsafe { funcs[e.index].call_unchecked(&mut *store, raw as *mut [ValRaw]) }
        .map_err(Fault::Trap)?;
    if let Some(message) = store.data_mut().error.take() {
        return Err(Fault::Guest(GuestError::new(message)));
    }
    Ok(())
}

/// The error of a raw-slot call given fewer slots than the export takes
/// (a caller that broke `SlotFn`'s contract).
#[cold]
#[inline(never)]
fn too_few_slots(e: &ExportPlan, n: usize) -> GuestError {
    GuestError::new(format!(
        "{}: called with {n} raw slots, the export takes {}",
        e.name,
        e.slots.max(1)
    ))
}

/// A scalar result of a type with a range check (or any, slower).
#[inline(never)]
fn lift_result(raw: ValRaw, ret: &FfiType) -> Result<Value, GuestError> {
    abi::lift(raw, ret, false).map_err(|m| GuestError::new(format!("return value: {m}")))
}

/// The guest's memory and allocator.
fn guest_memory(store: &impl AsContext<Data = State>) -> Result<GuestMemory, String> {
    store
        .as_context()
        .data()
        .guest
        .clone()
        .ok_or_else(|| "the module exports no `memory`".to_string())
}

/// Copies `bytes` into memory the guest allocates (`polyload_alloc(len,
/// 1)`); `(0, 0)` for none.
pub(crate) fn write_guest(
    mut store: impl AsContextMut<Data = State>,
    bytes: &[u8],
) -> Result<(i32, i32), Fault> {
    if bytes.is_empty() {
        return Ok((0, 0));
    }
    let g = guest_memory(&store).map_err(|m| Fault::Guest(GuestError::new(m)))?;
    let alloc = g.alloc.ok_or_else(|| {
        GuestError::new("the module exports no `polyload_alloc(size: i32, align: i32) -> i32`")
    })?;
    let len = i32::try_from(bytes.len())
        .map_err(|_| GuestError::new(format!("{} bytes do not fit a 32-bit guest", bytes.len())))?;
    let p = alloc.call(&mut store, (len, 1)).map_err(Fault::Trap)?;
    if p == 0 {
        return Err(GuestError::new(format!("polyload_alloc({len}, 1) returned null")).into());
    }
    g.memory
        .write(&mut store, p as u32 as usize, bytes)
        .map_err(|_| {
            GuestError::new(format!(
                "polyload_alloc({len}, 1) returned {p}, outside the guest's memory"
            ))
        })?;
    Ok((p, len))
}

/// Frees a buffer with the guest's `polyload_free(ptr, len, 1)`, if it
/// exports one.
pub(crate) fn free_guest(
    mut store: impl AsContextMut<Data = State>,
    p: i32,
    len: i32,
) -> Result<(), Fault> {
    if p == 0 {
        return Ok(());
    }
    let free = store
        .as_context()
        .data()
        .guest
        .as_ref()
        .and_then(|g| g.free.clone());
    if let Some(free) = free {
        free.call(&mut store, (p, len, 1)).map_err(Fault::Trap)?;
    }
    Ok(())
}

/// Reads a buffer the guest made (`ptr`, `len`) and frees it.
pub(crate) fn take_guest(
    mut store: impl AsContextMut<Data = State>,
    p: i32,
    len: i32,
) -> Result<Vec<u8>, String> {
    let bytes = read_guest(&mut store, p, len)?;
    free_guest(&mut store, p, len).map_err(|f| match f {
        Fault::Guest(e) => e.message,
        Fault::Trap(e) => format!("polyload_free trapped: {}", one_line(&e)),
    })?;
    Ok(bytes)
}

/// Copies `len` bytes at `ptr` out of the guest's memory.
pub(crate) fn read_guest(
    store: impl AsContextMut<Data = State>,
    p: i32,
    len: i32,
) -> Result<Vec<u8>, String> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let g = guest_memory(&store)?;
    let data = g.memory.data(&store);
    let (start, n) = (p as u32 as usize, len as u32 as usize);
    data.get(start..start.saturating_add(n))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| {
            format!(
                "the buffer at {start} of {n} bytes is outside the guest's memory ({} bytes)",
                data.len()
            )
        })
}
