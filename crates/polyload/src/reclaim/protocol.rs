//! The reader/writer protocol of quiescent-state reclamation, free of any
//! global state so that `tests/loom.rs` can model-check this very file with
//! loom's atomics (it imports its atomics from `super::sync`).
//!
//! A [`ThreadRecord`] holds the thread's call depth, the number of times it
//! returned to depth 0 (its quiescent states), and a guest-error flag, in
//! one cache line. Only the owning thread writes them; writers (reclaimers)
//! only read.

use super::sync::{AtomicBool, AtomicU32, Ordering};

/// Per-thread reader state. Cache-line aligned so that two threads' stores
/// never contend.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct ThreadRecord {
    depth: AtomicU32,
    quiescent: AtomicU32,
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
    quiescent: u32,
}

impl ThreadRecord {
    /// A record outside any call.
    pub fn new() -> Self {
        Self {
            depth: AtomicU32::new(0),
            quiescent: AtomicU32::new(0),
            error: AtomicBool::new(false),
        }
    }

    /// Reader: enters a call. Only the owning thread calls this. The caller
    /// must follow it with the reader barrier before loading any code
    /// pointer (a compiler barrier paired with the writer's heavy barrier).
    ///
    /// A release store (a plain `mov` on x86-64): a writer that reads this
    /// depth must synchronise with everything the thread did before, or
    /// freeing could race with the thread's earlier use of old code (C++20
    /// release sequences do not extend over later plain stores; loom finds
    /// that race with a relaxed store here).
    #[inline(always)]
    pub fn enter(&self) {
        let d = self.depth.load(Ordering::Relaxed);
        self.depth.store(d + 1, Ordering::Release);
    }

    /// Reader: leaves a call. Release stores: everything the thread did
    /// inside the call (running the code included) happens-before a
    /// writer's acquire load that sees them. Returning to depth 0 counts a
    /// quiescent state, stored after the depth.
    #[inline(always)]
    pub fn exit(&self) {
        let d = self.depth.load(Ordering::Relaxed) - 1;
        self.depth.store(d, Ordering::Release);
        if d == 0 {
            let q = self.quiescent.load(Ordering::Relaxed);
            self.quiescent.store(q.wrapping_add(1), Ordering::Release);
        }
    }

    /// Whether the thread is inside a call (owning thread only).
    pub fn in_call(&self) -> bool {
        self.depth.load(Ordering::Relaxed) != 0
    }

    /// Writer, after unpublishing and the heavy barrier: what to wait on, or
    /// `None` if the thread is outside any call (it cannot reach the
    /// unpublished code any more). The quiescent count is read *before* the
    /// depth: a later change of the count then proves a return to depth 0
    /// after the barrier.
    pub fn snapshot(&self) -> Option<Snapshot> {
        let quiescent = self.quiescent.load(Ordering::Acquire);
        let depth = self.depth.load(Ordering::Acquire);
        (depth != 0).then_some(Snapshot { quiescent })
    }

    /// Writer: whether the thread has passed a quiescent state since
    /// `then` (it is outside any call now, or it returned to depth 0 at
    /// least once in between).
    pub fn passed(&self, then: Snapshot) -> bool {
        self.quiescent.load(Ordering::Acquire) != then.quiescent
            || self.depth.load(Ordering::Acquire) == 0
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
}
