//! The reader/writer protocol of quiescent-state reclamation, free of any
//! global state so that `tests/loom.rs` can model-check this very file with
//! loom's atomics (it imports its atomics from `super::sync`).
//!
//! A [`ThreadRecord`] holds one counter that only its thread writes: even
//! while the thread is outside any polyload call, odd while it is inside
//! one. Entering the outermost call adds 1, leaving it adds 1 more; nested
//! calls leave it alone. So a writer that saw an odd value knows the thread
//! has left that call (passed a quiescent state) as soon as the value
//! differs.
//!
//! Entering returns the value it found, and the caller (a guard) keeps it:
//! leaving is then one store of a value computed from it, with no load. In
//! a loop of calls the only dependency carried from one call to the next
//! through memory is the enter's load of the previous leave's store; a
//! read-modify-write at both ends would carry two.
//!
//! The guest-error flag sits beside the counter, in the same cache line,
//! written only when a guest reports an error.

use super::sync::{AtomicBool, AtomicU64, Ordering};

/// Per-thread reader state. Cache-line aligned so that two threads' stores
/// never contend.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct ThreadRecord {
    counter: AtomicU64,
    error: AtomicBool,
}

impl Default for ThreadRecord {
    fn default() -> Self {
        Self::new()
    }
}

/// What a writer remembers about a thread that was inside a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    counter: u64,
}

/// What [`ThreadRecord::enter`] found: give it back to
/// [`ThreadRecord::exit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entered(u64);

impl ThreadRecord {
    /// The `Entered` of a call made while the thread has no record (its
    /// locals are being torn down); never passed to [`exit`](Self::exit).
    pub const TEARDOWN: Entered = Entered(0);

    /// A record outside any call.
    pub fn new() -> Self {
        Self {
            counter: AtomicU64::new(0),
            error: AtomicBool::new(false),
        }
    }

    /// Reader: enters a call. Only the owning thread calls this. The caller
    /// must follow it with the reader barrier before loading any code
    /// pointer (a compiler barrier paired with the writer's heavy barrier).
    ///
    /// The store is a release store (a plain `mov` on x86-64): a writer that
    /// reads the new value must synchronise with everything the thread did
    /// before, or freeing could race with the thread's earlier use of old
    /// code (loom finds that race with a relaxed store here).
    #[inline(always)]
    pub fn enter(&self) -> Entered {
        // Only the owning thread stores, so its relaxed load reads its
        // latest store.
        let c = self.counter.load(Ordering::Relaxed);
        // Outside (even): now inside (odd). Inside (odd): unchanged.
        self.counter.store(c | 1, Ordering::Release);
        Entered(c)
    }

    /// Reader: leaves the call `entered` began. Everything the thread did
    /// inside it (running the code included) happens-before a writer's
    /// acquire load that sees the new value.
    #[inline(always)]
    pub fn exit(&self, entered: Entered) {
        let c = entered.0;
        // The outermost call (entered from even) leaves at the next even
        // value; a nested one leaves the counter as it found it.
        self.counter
            .store(c.wrapping_add((!c & 1) << 1), Ordering::Release);
    }

    /// The owning thread is exiting: any call it left open has ended (the
    /// counter moves to the next even value if it was inside one).
    pub fn exit_thread(&self) {
        let c = self.counter.load(Ordering::Relaxed);
        if c & 1 != 0 {
            self.counter.store(c.wrapping_add(1), Ordering::Release);
        }
    }

    /// Whether the thread is inside a call (owning thread only).
    #[cfg(test)]
    pub fn in_call(&self) -> bool {
        self.counter.load(Ordering::Relaxed) & 1 != 0
    }

    /// Writer, after unpublishing and the heavy barrier: what to wait on, or
    /// `None` if the thread is outside any call (it cannot reach the
    /// unpublished code any more).
    pub fn snapshot(&self) -> Option<Snapshot> {
        let counter = self.counter.load(Ordering::Acquire);
        (counter & 1 != 0).then_some(Snapshot { counter })
    }

    /// Writer: whether the thread has passed a quiescent state since
    /// `then` (the counter moved on: the call it was in has ended).
    pub fn passed(&self, then: Snapshot) -> bool {
        self.counter.load(Ordering::Acquire) != then.counter
    }

    /// Sets or clears the guest-error flag (owning thread only).
    #[inline(always)]
    pub fn set_error(&self, on: bool) {
        self.error.store(on, Ordering::Relaxed);
    }

    /// Whether the guest-error flag is set (owning thread only).
    #[inline(always)]
    pub fn error(&self) -> bool {
        self.error.load(Ordering::Relaxed)
    }

    /// Takes the guest-error flag (owning thread only): whether it was set,
    /// clearing it. The common case (not set) is one load.
    #[inline(always)]
    pub fn take_error(&self) -> bool {
        if self.error() {
            self.set_error(false);
            return true;
        }
        false
    }

    /// A record holding `counter` (unit tests of the encoding).
    #[cfg(test)]
    pub(super) fn with_counter(counter: u64) -> Self {
        Self {
            counter: AtomicU64::new(counter),
            error: AtomicBool::new(false),
        }
    }
}
