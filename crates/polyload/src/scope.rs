//! [`Scope`]: a stretch of code that counts as one polyload call, for hot
//! loops, and the hooks a loader registers to run when it ends.
//!
//! A loader may leave per-thread engine state set up between the calls of
//! a scope instead of setting it up and tearing it down around each call
//! (the .NET loader leaves the thread in the last bundle's application
//! domain). That is sound only because a scope holds the reclaimer's read
//! side: nothing a thread touched inside a scope can be freed before the
//! scope ends, and [`at_scope_end`] hooks run before it lets go.

use crate::reclaim::CallGuard;
use std::cell::{Cell, RefCell};
use std::marker::PhantomData;

thread_local! {
    /// Open scopes on this thread (nested [`Runtime::enter`] calls).
    ///
    /// [`Runtime::enter`]: crate::Runtime::enter
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    /// What runs when the outermost scope ends, each hook once.
    static AT_END: RefCell<Vec<fn()>> = const { RefCell::new(Vec::new()) };
}

/// A stretch of code during which the current thread counts as inside a
/// polyload call, so typed calls made with [`Function::call_in`] skip the
/// per-call bookkeeping (for hot loops).
///
/// Made by [`Runtime::enter`](crate::Runtime::enter), which lends it to a
/// closure: it cannot leave that closure, and it is neither `Send` nor
/// `Sync`, so it cannot reach another thread. While a scope is open, code
/// that a reload or unload retires stays mapped (retired versions are freed
/// once the scope ends), so keep scopes short: one loop, not a whole
/// program.
///
/// ```
/// # fn main() -> polyload::Result<()> {
/// # std::env::set_current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).unwrap();
/// let rt = polyload::Runtime::new()?;
/// rt.load_bundle("examples/bundles/hello")?;
/// let add = rt.function::<extern "C" fn(i64, i64) -> i64>("hello.add")?;
/// let sum = rt.enter(|scope| {
///     (0..1000).try_fold(0, |acc, i| add.call_in(scope, (acc, i)))
/// })?;
/// assert_eq!(sum, 499_500);
/// # Ok(()) }
/// ```
///
/// [`Function::call_in`]: crate::Function::call_in
pub struct Scope<'a> {
    pub(crate) guard: CallGuard,
    _runtime: PhantomData<&'a ()>,
}

impl std::fmt::Debug for Scope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope").finish_non_exhaustive()
    }
}

impl Scope<'_> {
    pub(crate) fn run<R>(f: impl FnOnce(&Scope<'_>) -> R) -> R {
        let scope = Scope {
            guard: CallGuard::enter(),
            _runtime: PhantomData,
        };
        DEPTH.with(|d| d.set(d.get() + 1));
        // Declared after `scope`, so dropped before it (also when `f`
        // unwinds): the hooks run while the guard still holds the read side.
        let _open = Open;
        f(&scope)
    }
}

/// Closes a scope: the outermost one runs the [`at_scope_end`] hooks.
struct Open;

impl Drop for Open {
    fn drop(&mut self) {
        let depth = DEPTH.with(|d| {
            d.set(d.get() - 1);
            d.get()
        });
        if depth > 0 {
            return;
        }
        for hook in AT_END.with(|h| h.take()) {
            // A hook is a loader's `fn()`; one that panics must neither
            // skip the others nor abort a scope that is already unwinding.
            let _ = std::panic::catch_unwind(hook);
        }
    }
}

/// Whether the calling thread is inside a scope ([`Runtime::enter`]), so
/// that whatever a call reaches stays alive at least until the scope ends.
///
/// [`Runtime::enter`]: crate::Runtime::enter
pub fn in_scope() -> bool {
    DEPTH.with(Cell::get) > 0
}

/// Registers `hook` to run on the calling thread when its outermost scope
/// ends, before the scope leaves the reclaimer's read side: per-thread
/// engine state that a loader left pointing into a bundle (a current
/// application domain, an entered context) is undone there while the
/// bundle is certainly still alive. Registering the same `hook` again
/// before then runs it once.
///
/// Returns `false`, registering nothing, outside a scope: the loader must
/// then undo its state itself before its call returns.
///
/// ```
/// use polyload::loader::{at_scope_end, in_scope};
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// static UNDONE: AtomicBool = AtomicBool::new(false);
/// fn undo() {
///     UNDONE.store(true, Ordering::SeqCst);
/// }
/// # fn main() -> polyload::Result<()> {
/// let rt = polyload::Runtime::new()?;
/// assert!(!at_scope_end(undo));
/// rt.enter(|_scope| {
///     assert!(in_scope());
///     assert!(at_scope_end(undo));
///     assert!(!UNDONE.load(Ordering::SeqCst));
/// });
/// assert!(UNDONE.load(Ordering::SeqCst));
/// # Ok(()) }
/// ```
pub fn at_scope_end(hook: fn()) -> bool {
    if !in_scope() {
        return false;
    }
    AT_END.with(|h| {
        let mut h = h.borrow_mut();
        if !h.iter().any(|&f| std::ptr::fn_addr_eq(f, hook)) {
            h.push(hook);
        }
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static RAN: AtomicUsize = AtomicUsize::new(0);
    fn hook() {
        // The hook runs inside the scope's guard: the thread still counts
        // as inside a call, so nothing it points at can have been freed.
        assert!(crate::reclaim::in_call());
        RAN.fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn hooks_run_once_when_the_outermost_scope_ends_even_on_a_panic() {
        assert!(!in_scope());
        assert!(!at_scope_end(hook), "outside a scope nothing registers");
        Scope::run(|_| {
            assert!(in_scope());
            assert!(at_scope_end(hook));
            Scope::run(|_| assert!(at_scope_end(hook)));
            assert_eq!(RAN.load(Ordering::SeqCst), 0, "an inner scope ran it");
        });
        assert_eq!(RAN.load(Ordering::SeqCst), 1);
        assert!(!in_scope());
        let unwound = std::panic::catch_unwind(|| {
            Scope::run(|_| {
                at_scope_end(hook);
                panic!("a host panic inside a scope");
            })
        });
        assert!(unwound.is_err());
        assert_eq!(RAN.load(Ordering::SeqCst), 2);
        assert!(!in_scope());
    }
}
