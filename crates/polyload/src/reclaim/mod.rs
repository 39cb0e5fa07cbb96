//! Quiescent-state-based reclamation of retired code.
//!
//! # The problem
//! A reload swaps a bundle's code table; threads already inside the old code
//! must finish there, and the old library may be unmapped only once no
//! thread can be executing it. The read side runs on every call, so it must
//! cost next to nothing: `crossbeam_epoch::pin()` per call costs about 6x a
//! bare call on our machines.
//!
//! # The scheme
//! Every thread that calls through polyload owns a [`ThreadRecord`] with one
//! word of state: the low 32 bits are its call *depth* (how many polyload
//! calls it is inside), the high 32 bits count its returns to depth 0 (its
//! *quiescent states*). Entering a call is a thread-local load and a plain
//! store (`depth + 1`); leaving is a load and a release store. No atomic
//! read-modify-write, no fence on x86-64.
//!
//! A writer that retires old code (after publishing the new table):
//! 1. issues a **heavy barrier**: `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`,
//!    which runs a full memory barrier on every thread of the process. Paired
//!    with the readers' compiler-only barrier between "store depth" and "load
//!    table", it gives the asymmetric Dekker guarantee: for each thread,
//!    either its depth increment is visible to the writer now, or its table
//!    load happens after the barrier and sees the new table;
//! 2. snapshots every record's state;
//! 3. frees the garbage once each thread that was inside a call at the
//!    snapshot has since been seen at depth 0 or has bumped its quiescent
//!    count (it returned to depth 0 at least once).
//!
//! Where `membarrier` is unavailable (old kernels, other OSes) the read side
//! falls back to a full fence after the depth store (a few tens of cycles),
//! and the heavy barrier becomes a plain fence.
//!
//! # The rule for users
//! Code reached through polyload must not be kept and called outside a
//! polyload call: typed handles and dynamic calls do the bookkeeping; a raw
//! pointer obtained inside a call (a C bundle's `polyload_slot_get`) is valid
//! only until that call returns. A thread that never returns to depth 0 (an
//! event loop running inside a bundle function) delays reclamation of every
//! retired version until it does; memory is kept, never freed early.
//!
//! Garbage is freed by [`Reclaimer::collect`], called after each retire and
//! by a background thread while anything is pending.

use std::cell::Cell;
use std::sync::atomic::{compiler_fence, fence, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

mod protocol;
pub use protocol::Snapshot;
pub use protocol::{Entered, ThreadRecord};

/// The atomics `protocol` uses (loom's in `tests/loom.rs`).
mod sync {
    pub(super) use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
}

/// Records of live threads; a record leaves when its thread exits.
static REGISTRY: Mutex<Vec<Arc<ThreadRecord>>> = Mutex::new(Vec::new());
/// Depth of calls made while a thread's record is being torn down (thread
/// exit runs TLS destructors that may still call). Read-modify-write
/// atomics: slow, but only used in that window.
static TEARDOWN_DEPTH: AtomicU64 = AtomicU64::new(0);
/// Which heavy barrier the writer uses (decided once).
static MODE: OnceLock<HeavyBarrier> = OnceLock::new();

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HeavyBarrier {
    /// `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` (Linux >= 4.14).
    Membarrier,
    /// `mprotect` on a private page: the kernel must interrupt every CPU
    /// running this process to flush its TLB, which serialises those CPUs
    /// (the technique behind .NET's `FlushProcessWriteBuffers` on Linux).
    Mprotect,
    /// No asymmetric barrier: readers use full fences (non-Linux targets).
    Fence,
}

/// Whether readers need a full fence (no asymmetric barrier on this target).
const READER_FENCE: bool = !cfg!(target_os = "linux");

thread_local! {
    static RECORD: Cell<*const ThreadRecord> = const { Cell::new(std::ptr::null()) };
    static OWNER: RecordOwner = const { RecordOwner(Cell::new(None)) };
}

struct RecordOwner(Cell<Option<Arc<ThreadRecord>>>);

impl Drop for RecordOwner {
    fn drop(&mut self) {
        if let Some(rec) = self.0.take() {
            // Further calls on this thread (from later TLS destructors) find
            // no record, fail to re-register and use the teardown counter.
            RECORD.with(|r| r.set(std::ptr::null()));
            // A thread that exits runs no more code: whatever calls it left
            // open (a bundle's own thread that never left) end here.
            rec.exit_thread();
            let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
            reg.retain(|r| !Arc::ptr_eq(r, &rec));
        }
    }
}

#[cfg(target_os = "linux")]
fn membarrier_register() -> bool {
    const QUERY: libc::c_int = 0;
    const PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
    const REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;
    // SAFETY: membarrier with these commands takes no pointers; an unknown
    // command fails with an error code, never undefined behaviour.
    unsafe {
        let supported = libc::syscall(libc::SYS_membarrier, QUERY, 0, 0);
        if supported < 0 || supported & PRIVATE_EXPEDITED == 0 {
            return false;
        }
        libc::syscall(libc::SYS_membarrier, REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0
    }
}

#[cfg(not(target_os = "linux"))]
fn membarrier_register() -> bool {
    false
}

fn mode() -> HeavyBarrier {
    *MODE.get_or_init(|| {
        if READER_FENCE {
            HeavyBarrier::Fence
        } else if std::env::var_os("POLYLOAD_NO_MEMBARRIER").is_none() && membarrier_register() {
            HeavyBarrier::Membarrier
        } else {
            HeavyBarrier::Mprotect
        }
    })
}

#[cfg(target_os = "linux")]
fn mprotect_barrier() {
    use std::sync::Mutex as M;
    struct Page(*mut libc::c_void);
    // SAFETY: the page is only touched under the mutex below.
    unsafe impl Send for Page {}
    static PAGE: M<Option<Page>> = M::new(None);
    let mut page = PAGE.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: an anonymous private mapping of one page, kept for the life of
    // the process; mprotect and the write stay within it.
    unsafe {
        let size = libc::sysconf(libc::_SC_PAGESIZE) as usize;
        let p = match &*page {
            Some(p) => p.0,
            None => {
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    size,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                assert_ne!(
                    p,
                    libc::MAP_FAILED,
                    "mmap for the reclamation barrier failed"
                );
                *page = Some(Page(p));
                p
            }
        };
        // Make the page resident and dirty, then downgrade it: the kernel
        // shoots down every TLB that may cache it, with an IPI to each CPU
        // running a thread of this process.
        p.cast::<u8>().write_volatile(1);
        assert_eq!(
            libc::mprotect(p, size, libc::PROT_READ),
            0,
            "mprotect failed"
        );
        assert_eq!(
            libc::mprotect(p, size, libc::PROT_READ | libc::PROT_WRITE),
            0,
            "mprotect failed"
        );
    }
}

/// The writer's side of the asymmetric barrier: after it, every other
/// thread's earlier stores are visible to this one, and this thread's to
/// theirs (for the rare side of a Dekker pair whose common side runs only
/// [`light_barrier`]).
pub(crate) fn heavy_barrier() {
    fence(Ordering::SeqCst);
    match mode() {
        #[cfg(target_os = "linux")]
        HeavyBarrier::Membarrier => {
            const PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
            // SAFETY: registered in `mode()`; takes no pointers.
            let r = unsafe { libc::syscall(libc::SYS_membarrier, PRIVATE_EXPEDITED, 0, 0) };
            assert_eq!(
                r, 0,
                "internal error: membarrier failed after registration (this is a bug)"
            );
        }
        #[cfg(target_os = "linux")]
        HeavyBarrier::Mprotect => mprotect_barrier(),
        _ => {}
    }
    fence(Ordering::SeqCst);
}

/// The common side of the asymmetric barrier: a compiler barrier where the
/// heavy side interrupts every thread (Linux), a full fence elsewhere.
#[inline(always)]
pub(crate) fn light_barrier() {
    if READER_FENCE {
        fence(Ordering::SeqCst);
    } else {
        compiler_fence(Ordering::SeqCst);
    }
}

/// Registers the calling thread; returns null when its thread-locals are
/// being torn down (the caller then uses the shared teardown counter).
#[cold]
#[inline(never)]
fn register() -> *const ThreadRecord {
    mode();
    let rec = Arc::new(ThreadRecord::default());
    let ptr = Arc::as_ptr(&rec);
    let owned = OWNER.try_with(|o| {
        let fresh = o.0.take().is_none();
        o.0.set(Some(rec.clone()));
        fresh
    });
    match owned {
        Ok(true) => {
            REGISTRY.lock().unwrap_or_else(|e| e.into_inner()).push(rec);
            RECORD.with(|r| r.set(ptr));
            ptr
        }
        // OWNER was already dropped once (`Ok(false)` cannot happen: RECORD
        // is only null before registration or after OWNER's destructor), or
        // is being destroyed: the thread is exiting.
        Ok(false) | Err(_) => std::ptr::null(),
    }
}

/// Marks the current thread as inside a polyload call until the guard drops.
///
/// Cost: a TLS read, a load and a store on the way in (and a compiler
/// barrier; a full fence only where `membarrier` is unavailable), one store
/// on the way out.
#[must_use = "the call is only protected while the guard lives"]
pub struct CallGuard {
    rec: *const ThreadRecord,
    /// What entering found (meaningless when `rec` is null).
    entered: Entered,
}

impl CallGuard {
    /// Enters a call.
    #[inline(always)]
    pub fn enter() -> CallGuard {
        let rec = RECORD.with(Cell::get);
        if rec.is_null() {
            return Self::enter_slow();
        }
        // SAFETY: `rec` points to this thread's record, kept alive by OWNER
        // (and by REGISTRY) until the thread's TLS is torn down, when RECORD
        // is reset to null.
        let entered = unsafe { (*rec).enter() };
        light_barrier();
        CallGuard { rec, entered }
    }

    #[cold]
    #[inline(never)]
    fn enter_slow() -> CallGuard {
        if register().is_null() {
            TEARDOWN_DEPTH.fetch_add(1, Ordering::SeqCst);
            return CallGuard {
                rec: std::ptr::null(),
                entered: TEARDOWN_ENTERED,
            };
        }
        Self::enter()
    }
}

/// The `entered` of a guard on the shared teardown counter.
const TEARDOWN_ENTERED: Entered = ThreadRecord::TEARDOWN;

impl Drop for CallGuard {
    #[inline(always)]
    fn drop(&mut self) {
        if self.rec.is_null() {
            TEARDOWN_DEPTH.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        // SAFETY: as in `enter`; only this thread stores to its record.
        unsafe { (*self.rec).exit(self.entered) };
    }
}

impl CallGuard {
    /// Leaves the call now; returns whether a guest reported an error on
    /// this thread (and clears it). The guard's drop then does nothing.
    #[inline(always)]
    pub(crate) fn exit_with_error_flag(self) -> bool {
        let (rec, entered) = (self.rec, self.entered);
        std::mem::forget(self);
        if rec.is_null() {
            TEARDOWN_DEPTH.fetch_sub(1, Ordering::SeqCst);
            return crate::host::teardown_error_pending();
        }
        // SAFETY: as in `enter`; only this thread stores to its record.
        unsafe {
            (*rec).exit(entered);
            (*rec).take_error()
        }
    }

    /// Takes the guest-error flag while staying inside the call.
    #[inline(always)]
    pub(crate) fn take_error_flag(&self) -> bool {
        if self.rec.is_null() {
            return crate::host::teardown_error_pending();
        }
        // SAFETY: as in `enter`; only this thread stores to its record.
        unsafe { (*self.rec).take_error() }
    }
}

thread_local! {
    /// Calls entered with [`enter_unguarded`] and not yet left on this
    /// thread, innermost last: `leave` may end only those, never a call a
    /// guard holds.
    /// Not dropped with the thread: its record may be gone by then, and the
    /// record's owner marks the thread quiescent when it exits.
    static UNGUARDED: std::cell::RefCell<Vec<std::mem::ManuallyDrop<CallGuard>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Enters a call without a guard, for a thread that a bundle started itself
/// (`PolyloadHost::enter`); [`leave_unguarded`] ends it.
pub(crate) fn enter_unguarded() {
    let guard = CallGuard::enter();
    let guard = std::mem::ManuallyDrop::new(guard);
    // If the thread's locals are gone (it is exiting), it stays entered
    // until its record's owner marks it quiescent.
    let _ = UNGUARDED.try_with(|u| u.borrow_mut().push(guard));
}

/// Ends a call begun by [`enter_unguarded`]; returns false (and does
/// nothing) when this thread has none open, so an unpaired `leave` cannot
/// end a call that a host-side guard holds.
pub(crate) fn leave_unguarded() -> bool {
    UNGUARDED
        .try_with(|u| u.borrow_mut().pop())
        .ok()
        .flatten()
        .map(std::mem::ManuallyDrop::into_inner)
        .map(drop)
        .is_some()
}

/// Sets or clears the calling thread's guest-error flag; returns false when
/// the thread has no record (it is exiting).
pub(crate) fn set_error_flag(value: bool) -> bool {
    let mut rec = RECORD.with(Cell::get);
    if rec.is_null() {
        rec = register();
        if rec.is_null() {
            return false;
        }
    }
    // SAFETY: as in `CallGuard::enter`.
    unsafe { (*rec).set_error(value) };
    true
}

/// The calling thread's guest-error flag.
pub(crate) fn error_flag() -> bool {
    let rec = RECORD.with(Cell::get);
    // SAFETY: as in `CallGuard::enter`.
    !rec.is_null() && unsafe { (*rec).error() }
}

/// Whether the current thread is inside a polyload call.
#[cfg(test)]
pub(crate) fn in_call() -> bool {
    let rec = RECORD.with(Cell::get);
    if rec.is_null() {
        return false;
    }
    // SAFETY: as in `CallGuard::enter`.
    unsafe { (*rec).in_call() }
}

struct Pending {
    garbage: Box<dyn Send>,
    /// Threads that were inside a call at retirement, with their state then.
    waiting: Vec<(Arc<ThreadRecord>, Snapshot)>,
    teardown_busy: bool,
    what: String,
}

/// Defers dropping retired code until no thread can be executing it.
#[derive(Default)]
pub struct Reclaimer {
    pending: Mutex<Vec<Pending>>,
    reaper: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Reclaimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reclaimer")
            .field("pending", &self.pending_count())
            .finish()
    }
}

impl Reclaimer {
    /// Retires `garbage` (an old code table, a library handle): it is dropped
    /// once every thread inside a call now has left it. Call only after the
    /// code was unpublished (no new caller can reach it).
    pub fn retire(self: &Arc<Self>, what: impl Into<String>, garbage: Box<dyn Send>) {
        heavy_barrier();
        let waiting: Vec<_> = REGISTRY
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter_map(|r| r.snapshot().map(|s| (r.clone(), s)))
            .collect();
        let teardown_busy = TEARDOWN_DEPTH.load(Ordering::SeqCst) > 0;
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Pending {
                garbage,
                waiting,
                teardown_busy,
                what: what.into(),
            });
        if self.collect() > 0 {
            self.start_reaper();
        }
    }

    /// Drops every retired item whose grace period has ended; returns how
    /// many remain pending.
    pub fn collect(&self) -> usize {
        let mut freed = Vec::new();
        let remaining = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let teardown_idle = TEARDOWN_DEPTH.load(Ordering::SeqCst) == 0;
            pending.retain_mut(|p| {
                p.waiting.retain(|(rec, then)| !rec.passed(*then));
                if p.teardown_busy && teardown_idle {
                    p.teardown_busy = false;
                }
                if p.waiting.is_empty() && !p.teardown_busy {
                    freed.push(std::mem::replace(&mut p.garbage, Box::new(())));
                    tracing::debug!(what = %p.what, "reclaimed");
                    false
                } else {
                    true
                }
            });
            pending.len()
        };
        // Dropped outside the lock: a library's destructors run here.
        drop(freed);
        remaining
    }

    /// Number of retired items still waiting for their grace period.
    pub fn pending_count(&self) -> usize {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Collects until nothing is pending or `timeout` passes; returns how
    /// many remain. Never call it from inside a polyload call made on this
    /// thread for code retired since (it would wait for itself).
    pub fn wait_idle(&self, timeout: Duration) -> usize {
        let start = Instant::now();
        let mut pause = Duration::from_micros(50);
        loop {
            let left = self.collect();
            if left == 0 || start.elapsed() >= timeout {
                return left;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }

    /// Starts the background collector unless it runs. It holds the
    /// reclaimer (not a weak reference) until nothing is pending, so garbage
    /// retired while the runtime is dropped is still freed once the threads
    /// inside it leave.
    fn start_reaper(self: &Arc<Self>) {
        let mut reaper = self.reaper.lock().unwrap_or_else(|e| e.into_inner());
        if reaper.is_some() {
            return;
        }
        let this = self.clone();
        *reaper = std::thread::Builder::new()
            .name("polyload-reaper".into())
            .spawn(move || {
                let mut pause = Duration::from_micros(100);
                loop {
                    std::thread::sleep(pause);
                    if this.collect() == 0 {
                        // Leave only if nothing was retired since: `retire`
                        // pushes before it looks for a reaper, and both look
                        // under this lock, so garbage is never left without
                        // one (which, after the runtime is gone, would leak
                        // it and the namespace it holds).
                        let mut reaper = this.reaper.lock().unwrap_or_else(|e| e.into_inner());
                        if this.pending_count() == 0 {
                            *reaper = None;
                            return;
                        }
                    }
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
            })
            .map_err(|e| tracing::warn!("cannot start the polyload reaper thread: {e}"))
            .ok();
    }
}

impl Drop for Reclaimer {
    fn drop(&mut self) {
        // Only reached with nothing pending, unless the reaper thread could
        // not be started: then keep the garbage (leak it) rather than free
        // code a thread may still be running.
        self.collect();
        let left = std::mem::take(self.pending.get_mut().unwrap_or_else(|e| e.into_inner()));
        for p in left {
            tracing::warn!(what = %p.what, "leaking retired code still in use at shutdown");
            std::mem::forget(p.garbage);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Flag(Arc<AtomicUsize>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn garbage_waits_for_threads_inside_calls() {
        let r = Arc::new(Reclaimer::default());
        let dropped = Arc::new(AtomicUsize::new(0));
        let (tx_in, rx_in) = std::sync::mpsc::channel();
        let (tx_out, rx_out) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            let _g = CallGuard::enter();
            let _nested = CallGuard::enter();
            tx_in.send(()).unwrap();
            rx_out.recv().unwrap();
        });
        rx_in.recv().unwrap();
        r.retire("test", Box::new(Flag(dropped.clone())));
        assert_eq!(r.collect(), 1);
        assert_eq!(dropped.load(Ordering::SeqCst), 0);
        tx_out.send(()).unwrap();
        t.join().unwrap();
        assert_eq!(r.wait_idle(Duration::from_secs(5)), 0);
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_counter_is_odd_inside_and_moves_on_only_at_the_outermost_exit() {
        let r = ThreadRecord::new();
        let outer = r.enter();
        let inner = r.enter();
        let s = r.snapshot().unwrap();
        r.set_error(true);
        r.exit(inner);
        assert!(r.error(), "leaving keeps the flag");
        assert!(!r.passed(s), "still inside the outer call");
        r.exit(outer);
        assert!(r.take_error() && !r.error() && !r.in_call());
        assert!(r.passed(s));
        let again = r.enter();
        assert!(r.passed(s), "a return to depth 0 happened since");
        r.exit(again);
        assert_eq!(r.snapshot(), None);
    }

    #[test]
    fn a_large_counter_keeps_its_parity_rule() {
        let r = ThreadRecord::with_counter(u64::MAX - 1);
        let e = r.enter();
        let s = r.snapshot().unwrap();
        r.exit(e);
        assert!(r.passed(s));
        assert!(!r.in_call());
    }

    #[test]
    fn unpaired_leave_is_refused() {
        assert!(!leave_unguarded());
        let g = CallGuard::enter();
        assert!(
            !leave_unguarded(),
            "a guard's call is not the bundle's to end"
        );
        assert!(in_call());
        drop(g);
        enter_unguarded();
        assert!(in_call());
        assert!(leave_unguarded());
        assert!(!in_call());
    }

    #[test]
    fn garbage_outlives_its_reclaimer_until_the_threads_leave() {
        let r = Arc::new(Reclaimer::default());
        let dropped = Arc::new(AtomicUsize::new(0));
        let (tx_in, rx_in) = std::sync::mpsc::channel();
        let (tx_out, rx_out) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            let _g = CallGuard::enter();
            tx_in.send(()).unwrap();
            rx_out.recv().unwrap();
        });
        rx_in.recv().unwrap();
        r.retire("test", Box::new(Flag(dropped.clone())));
        drop(r);
        assert_eq!(dropped.load(Ordering::SeqCst), 0);
        tx_out.send(()).unwrap();
        t.join().unwrap();
        let start = Instant::now();
        while dropped.load(Ordering::SeqCst) == 0 {
            assert!(start.elapsed() < Duration::from_secs(10), "never freed");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Readers keep reading whatever "code" is published while a writer
    /// replaces and retires it as fast as it can; retired code is poisoned
    /// and then freed when the reclaimer drops it, so a reader that reaches
    /// it too late reads poison (or, under AddressSanitizer,
    /// `scripts/sanitize.sh`, a freed allocation).
    #[test]
    fn stress_readers_never_see_reclaimed_code() {
        use std::sync::atomic::{AtomicBool, AtomicPtr};
        const LIVE: u64 = 0x600d_c0de;
        const POISON: u64 = 0xdead_dead;
        struct Code(AtomicU64);
        struct Retired(*mut Code);
        // SAFETY: the pointer is owned by this value once retired.
        unsafe impl Send for Retired {}
        impl Drop for Retired {
            fn drop(&mut self) {
                // SAFETY: made by Box::into_raw and retired once.
                let code = unsafe { Box::from_raw(self.0) };
                code.0.store(POISON, Ordering::Relaxed);
                drop(code);
            }
        }
        let r = Arc::new(Reclaimer::default());
        let slot = Arc::new(AtomicPtr::new(Box::into_raw(Box::new(Code(
            AtomicU64::new(LIVE),
        )))));
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..3)
            .map(|i| {
                let (slot, stop) = (slot.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut reads = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let _outer = CallGuard::enter();
                        let code = slot.load(Ordering::Acquire);
                        // Nested calls and a little work inside the call.
                        for _ in 0..(i + 1) {
                            let _inner = CallGuard::enter();
                            // SAFETY: published code stays mapped while
                            // this thread is inside a call.
                            let v = unsafe { (*code).0.load(Ordering::Relaxed) };
                            assert_eq!(v, LIVE, "read reclaimed code");
                        }
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        let start = Instant::now();
        let mut retired = 0u64;
        while start.elapsed() < Duration::from_secs(2) {
            let new = Box::into_raw(Box::new(Code(AtomicU64::new(LIVE))));
            let old = slot.swap(new, Ordering::AcqRel);
            r.retire("stress", Box::new(Retired(old)));
            retired += 1;
        }
        stop.store(true, Ordering::Relaxed);
        let reads: Vec<u64> = readers.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(reads.iter().all(|n| *n > 0), "{reads:?}");
        assert!(retired > 100, "{retired}");
        assert_eq!(r.wait_idle(Duration::from_secs(10)), 0);
        // SAFETY: the last published code, unreachable now.
        drop(unsafe { Box::from_raw(slot.load(Ordering::Acquire)) });
    }

    #[test]
    fn idle_threads_do_not_block() {
        let r = Arc::new(Reclaimer::default());
        let dropped = Arc::new(AtomicUsize::new(0));
        drop(CallGuard::enter());
        r.retire("x", Box::new(Flag(dropped.clone())));
        // Other tests' threads may be inside calls right now; none stays.
        assert_eq!(r.wait_idle(Duration::from_secs(5)), 0);
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
        assert!(!in_call());
        let g = CallGuard::enter();
        assert!(in_call());
        drop(g);
    }
}
