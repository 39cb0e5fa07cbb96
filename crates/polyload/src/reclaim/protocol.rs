//! The reader/writer protocol of quiescent-state reclamation, free of any
//! global state so that `tests/loom.rs` can model-check this very file with
//! loom's atomics (it imports its atomics from `super::sync`).
//!
//! A [`ThreadRecord`] is one 64-bit word that only its thread writes:
//!
//! ```text
//!  63                         32 31  30                        0
//! +-----------------------------+---+---------------------------+
//! | quiescent states (wrapping) | E |     call depth            |
//! +-----------------------------+---+---------------------------+
//! ```
//!
//! *depth* counts the polyload calls the thread is inside; *quiescent
//! states* count its returns to depth 0; *E* is the guest-error flag a
//! guest sets during a call (`set_error`), read by the typed handle when
//! the call returns. One word means a call is one load and one store on the
//! way in and one of each on the way out (the flag is read from the value
//! the exit already loaded), and a writer reads depth and count atomically.

use super::sync::{AtomicU64, Ordering};

const DEPTH: u64 = (1 << 31) - 1;
const ERROR: u64 = 1 << 31;
const QUIESCENT: u64 = 1 << 32;

/// Per-thread reader state. Cache-line aligned so that two threads' stores
/// never contend.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct ThreadRecord {
    word: AtomicU64,
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

/// The word a leaving call stores: depth one less, a quiescent state
/// counted when it reaches 0, the error flag kept or cleared.
#[inline(always)]
fn leave(w: u64, clear_error: bool) -> u64 {
    let w = if clear_error { w & !ERROR } else { w };
    // No borrow out of the depth field: the caller was inside a call.
    let left = w - 1;
    // A branch, not a select: in a loop of calls it is always taken the
    // same way, and it keeps the common exit to a decrement and a test.
    if left & DEPTH == 0 {
        left.wrapping_add(QUIESCENT)
    } else {
        left
    }
}

impl ThreadRecord {
    /// A record outside any call.
    pub fn new() -> Self {
        Self {
            word: AtomicU64::new(0),
        }
    }

    #[inline(always)]
    fn load(&self) -> u64 {
        // Only the owning thread stores to the word, so its own relaxed load
        // reads its latest store.
        self.word.load(Ordering::Relaxed)
    }

    /// Every store is a release store (a plain `mov` on x86-64): a writer
    /// that reads any value of the word must synchronise with everything
    /// the thread did before it, or freeing could race with the thread's
    /// earlier use of old code (C++20 release sequences do not extend over
    /// later plain stores; loom finds that race with a relaxed store here).
    #[inline(always)]
    fn store(&self, w: u64) {
        self.word.store(w, Ordering::Release);
    }

    /// Reader: enters a call. Only the owning thread calls this. The caller
    /// must follow it with the reader barrier before loading any code
    /// pointer (a compiler barrier paired with the writer's heavy barrier).
    #[inline(always)]
    pub fn enter(&self) {
        let w = self.load();
        debug_assert!(w & DEPTH < DEPTH, "call depth overflow");
        self.store(w + 1);
    }

    /// Reader: leaves a call, keeping the error flag. Everything the thread
    /// did inside the call (running the code included) happens-before a
    /// writer's acquire load that sees the new word. Returning to depth 0
    /// counts a quiescent state.
    #[inline(always)]
    pub fn exit(&self) {
        self.store(leave(self.load(), false));
    }

    /// Reader: leaves a call as [`exit`](Self::exit) does and returns the
    /// guest-error flag, clearing it in the same store.
    #[inline(always)]
    pub fn exit_take_error(&self) -> bool {
        let w = self.load();
        if w & ERROR != 0 {
            return self.exit_clearing_error(w);
        }
        self.store(leave(w, false));
        false
    }

    #[cold]
    #[inline(never)]
    fn exit_clearing_error(&self, w: u64) -> bool {
        self.store(leave(w, true));
        true
    }

    /// Whether the thread is inside a call (owning thread only).
    #[cfg(test)]
    pub fn in_call(&self) -> bool {
        self.load() & DEPTH != 0
    }

    /// Writer, after unpublishing and the heavy barrier: what to wait on, or
    /// `None` if the thread is outside any call (it cannot reach the
    /// unpublished code any more).
    pub fn snapshot(&self) -> Option<Snapshot> {
        let w = self.word.load(Ordering::Acquire);
        (w & DEPTH != 0).then_some(Snapshot {
            quiescent: (w / QUIESCENT) as u32,
        })
    }

    /// Writer: whether the thread has passed a quiescent state since
    /// `then` (it is outside any call now, or it returned to depth 0 at
    /// least once in between).
    pub fn passed(&self, then: Snapshot) -> bool {
        let w = self.word.load(Ordering::Acquire);
        (w / QUIESCENT) as u32 != then.quiescent || w & DEPTH == 0
    }

    /// Sets or clears the guest-error flag (owning thread only).
    #[inline(always)]
    pub fn set_error(&self, on: bool) {
        let w = self.load();
        self.store(if on { w | ERROR } else { w & !ERROR });
    }

    /// Whether the guest-error flag is set (owning thread only).
    #[inline(always)]
    pub fn error(&self) -> bool {
        self.load() & ERROR != 0
    }

    /// A record holding `word` (unit tests of the encoding).
    #[cfg(test)]
    pub(super) fn with_word(word: u64) -> Self {
        Self {
            word: AtomicU64::new(word),
        }
    }

    /// The raw word (unit tests of the encoding).
    #[cfg(test)]
    pub(super) fn word(&self) -> u64 {
        self.load()
    }
}
