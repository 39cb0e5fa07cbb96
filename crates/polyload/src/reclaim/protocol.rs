//! The reader/writer protocol of quiescent-state reclamation, free of any
//! global state so that `tests/loom.rs` can model-check this very file with
//! loom's atomics (it imports its atomics from `super::sync`).
//!
//! A [`ThreadRecord`]'s state word: bits 0..31 = call depth, bit 31 = "a
//! guest reported an error on this thread" (kept here so that checking it
//! after a call costs no extra load), bits 32..64 = number of returns to
//! depth 0 (quiescent states).

use super::sync::{AtomicU64, Ordering};

const DEPTH_MASK: u64 = 0x7fff_ffff;
/// The guest-error bit of the state word.
pub const ERROR_BIT: u64 = 1 << 31;
const QUIESCENT_ONE: u64 = 1 << 32;

/// Per-thread reader state. Cache-line aligned so that two threads' stores
/// never contend.
#[repr(align(64))]
#[derive(Debug)]
pub struct ThreadRecord {
    state: AtomicU64,
}

impl Default for ThreadRecord {
    fn default() -> Self {
        Self::new()
    }
}

impl ThreadRecord {
    /// A record outside any call.
    pub fn new() -> Self {
        Self {
            state: AtomicU64::new(0),
        }
    }

    /// Reader: enters a call. Only the owning thread calls this. The caller
    /// must follow it with the reader barrier before loading any code
    /// pointer (a compiler barrier paired with the writer's heavy barrier).
    ///
    /// The store is a release store (a plain `mov` on x86-64): a writer may
    /// learn that this thread passed a quiescent state by reading the state
    /// of its *next* call, and must then synchronise with everything the
    /// thread did before it. A relaxed store here is a data race under the
    /// C++20 model (release sequences no longer extend over later plain
    /// stores of the same thread); `tests/loom.rs` finds it.
    #[inline(always)]
    pub fn enter(&self) {
        let s = self.state.load(Ordering::Relaxed);
        self.state.store(s + 1, Ordering::Release);
    }

    /// Reader: leaves a call. Release: everything the thread did inside the
    /// call (running the code included) happens-before a writer's acquire
    /// load that sees the new state.
    ///
    /// Returns the new state (test it against [`ERROR_BIT`]).
    #[inline(always)]
    pub fn exit(&self) -> u64 {
        let s = self.state.load(Ordering::Relaxed);
        let next = if s & DEPTH_MASK == 1 {
            (s & !DEPTH_MASK).wrapping_add(QUIESCENT_ONE)
        } else {
            s - 1
        };
        self.state.store(next, Ordering::Release);
        next
    }

    /// Sets or clears the guest-error bit (owning thread only).
    pub fn set_error(&self, on: bool) {
        let s = self.state.load(Ordering::Relaxed);
        let next = if on { s | ERROR_BIT } else { s & !ERROR_BIT };
        self.state.store(next, Ordering::Release);
    }

    /// Whether the guest-error bit is set (owning thread only).
    pub fn error(&self) -> bool {
        self.state.load(Ordering::Relaxed) & ERROR_BIT != 0
    }

    /// Whether the thread is inside a call (owning thread only).
    pub fn in_call(&self) -> bool {
        self.state.load(Ordering::Relaxed) & DEPTH_MASK != 0
    }

    /// Writer, after unpublishing and the heavy barrier: the state to wait
    /// on, or `None` if the thread is outside any call (it cannot reach the
    /// unpublished code any more).
    pub fn snapshot(&self) -> Option<u64> {
        let s = self.state.load(Ordering::Acquire);
        (s & DEPTH_MASK != 0).then_some(s)
    }

    /// Writer: whether the thread has passed a quiescent state since
    /// `snapshot` returned `then` (it is outside any call now, or it returned
    /// to depth 0 at least once in between).
    pub fn passed(&self, then: u64) -> bool {
        let now = self.state.load(Ordering::Acquire);
        now & DEPTH_MASK == 0 || (now >> 32) != (then >> 32)
    }
}
