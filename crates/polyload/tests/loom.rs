//! Model-checks the reclamation protocol (`src/reclaim/protocol.rs`, the
//! same file the runtime compiles) with loom: in every interleaving loom
//! explores, a writer that unpublishes code and then waits for the grace
//! period never frees it while a reader can still be running it.
//!
//! The reader's barrier is modelled as a `SeqCst` fence: that is what the
//! writer's `membarrier` forces on every running thread (and what readers
//! execute themselves where `membarrier` is unavailable).

mod sync {
    pub(super) use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
}

#[allow(
    dead_code,
    reason = "the runtime uses parts of the protocol this model does not"
)]
#[path = "../src/reclaim/protocol.rs"]
mod protocol;

use loom::cell::UnsafeCell;
use loom::sync::atomic::{fence, AtomicPtr, Ordering};
use loom::sync::Arc;
use protocol::ThreadRecord;

/// Stand-in for a version of code: "running" it reads its bytes; "freeing"
/// it writes them. Loom reports a data race if the two can overlap.
struct Code(UnsafeCell<u64>);

fn run(slot: &AtomicPtr<Code>, rec: &ThreadRecord) -> u64 {
    let entered = rec.enter();
    fence(Ordering::SeqCst); // reader barrier (see module docs)
    let code = slot.load(Ordering::Acquire);
    // SAFETY: the protocol under test keeps `code` alive while inside.
    let v = unsafe { (*code).0.with(|p| *p) };
    rec.exit(entered);
    v
}

fn retire(slot: &AtomicPtr<Code>, new: *mut Code, rec: &ThreadRecord) -> *mut Code {
    let old = slot.swap(new, Ordering::AcqRel);
    fence(Ordering::SeqCst); // heavy barrier
    if let Some(then) = rec.snapshot() {
        while !rec.passed(then) {
            loom::thread::yield_now();
        }
    }
    // Grace period over: "free" the old code.
    // SAFETY: unpublished and past its grace period.
    unsafe { (*old).0.with_mut(|p| *p = 0xdead) };
    old
}

#[test]
fn old_code_is_never_freed_under_a_running_reader() {
    loom::model(|| {
        let old = Box::into_raw(Box::new(Code(UnsafeCell::new(1))));
        let new = Box::into_raw(Box::new(Code(UnsafeCell::new(2))));
        let slot = Arc::new(AtomicPtr::new(old));
        let rec = Arc::new(ThreadRecord::new());
        let reader = {
            let (slot, rec) = (slot.clone(), rec.clone());
            loom::thread::spawn(move || {
                let a = run(&slot, &rec);
                let b = run(&slot, &rec);
                assert!(a == 1 || a == 2, "first call read freed code: {a:#x}");
                assert!(b == 1 || b == 2, "second call read freed code: {b:#x}");
                assert!(!(a == 2 && b == 1), "went back to the old version");
            })
        };
        let freed = retire(&slot, new, &rec);
        reader.join().unwrap();
        // SAFETY: both were made by Box::into_raw above and are unreachable now.
        unsafe {
            drop(Box::from_raw(freed));
            drop(Box::from_raw(new));
        }
    });
}

#[test]
fn nested_calls_keep_the_outer_version_alive() {
    loom::model(|| {
        let old = Box::into_raw(Box::new(Code(UnsafeCell::new(1))));
        let new = Box::into_raw(Box::new(Code(UnsafeCell::new(2))));
        let slot = Arc::new(AtomicPtr::new(old));
        let rec = Arc::new(ThreadRecord::new());
        let reader = {
            let (slot, rec) = (slot.clone(), rec.clone());
            loom::thread::spawn(move || {
                // An outer call that makes an inner call, then uses its
                // own code again after the inner one returned.
                let entered = rec.enter();
                fence(Ordering::SeqCst);
                let outer = slot.load(Ordering::Acquire);
                let inner = run(&slot, &rec);
                // SAFETY: still inside the outer call.
                let again = unsafe { (*outer).0.with(|p| *p) };
                rec.exit(entered);
                assert!(inner == 1 || inner == 2);
                assert!(
                    again == 1 || again == 2,
                    "outer code freed during the call: {again:#x}"
                );
            })
        };
        let freed = retire(&slot, new, &rec);
        reader.join().unwrap();
        // SAFETY: as above.
        unsafe {
            drop(Box::from_raw(freed));
            drop(Box::from_raw(new));
        }
    });
}

/// The model has teeth: a writer that frees without waiting for the grace
/// period is caught.
#[test]
#[should_panic(expected = "Causality violation")]
fn freeing_without_a_grace_period_is_caught() {
    loom::model(|| {
        let old = Box::into_raw(Box::new(Code(UnsafeCell::new(1))));
        let new = Box::into_raw(Box::new(Code(UnsafeCell::new(2))));
        let slot = Arc::new(AtomicPtr::new(old));
        let rec = Arc::new(ThreadRecord::new());
        let reader = {
            let (slot, rec) = (slot.clone(), rec.clone());
            loom::thread::spawn(move || run(&slot, &rec))
        };
        let prev = slot.swap(new, Ordering::AcqRel);
        // SAFETY: deliberately wrong: no grace period.
        unsafe { (*prev).0.with_mut(|p| *p = 0xdead) };
        reader.join().unwrap();
        // SAFETY: made by Box::into_raw above.
        unsafe {
            drop(Box::from_raw(prev));
            drop(Box::from_raw(new));
        }
    });
}
