//! [`VmLock`]: one lock per single-threaded guest VM, re-entrant, that
//! cannot deadlock across VMs.

use std::cell::Cell;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Who waits for which lock, and what borrowers took: under one mutex.
struct Waits {
    /// Thread token -> the lock it is blocked on.
    waiting: HashMap<u64, *const VmLock>,
}

// SAFETY: the pointers name locks that outlive their waiters (a thread
// waits only on a lock it borrows, which stays alive while it does); they
// are only compared and read under the `WAITS` mutex.
unsafe impl Send for Waits {}

static WAITS: Mutex<Option<Waits>> = Mutex::new(None);
static WAKE: Condvar = Condvar::new();

fn waits() -> std::sync::MutexGuard<'static, Option<Waits>> {
    let mut w = WAITS.lock().unwrap_or_else(|e| e.into_inner());
    w.get_or_insert_with(|| Waits {
        waiting: HashMap::new(),
    });
    w
}

/// A nonzero id for the calling thread.
#[inline]
fn token() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static TOKEN: Cell<u64> = const { Cell::new(0) };
    }
    TOKEN.with(|t| {
        if t.get() == 0 {
            t.set(NEXT.fetch_add(1, Ordering::Relaxed));
        }
        t.get()
    })
}

/// The lock of one single-threaded VM: re-entrant, and it cannot deadlock
/// across VMs.
///
/// # The problem
/// A Lua state or a QuickJS runtime may be entered by one thread at a time,
/// and guest code calls out through the namespace while inside it. With a
/// plain lock per VM, a thread inside VM *A* calling into *B* while another
/// thread inside *B* calls into *A* would each hold one lock and wait for
/// the other forever. A single process-wide lock avoids that, but then no
/// two VMs ever run in parallel.
///
/// # The rule
/// Each VM has its own lock, so threads in different VMs run in parallel.
/// A thread *T* that finds VM *X* held by a thread *U* waits, **unless** *U*
/// is itself waiting (directly, or through a chain of waiting threads) for
/// a lock that *T* holds: then *U* cannot move until *T* lets go, and *T*
/// lets go of its locks only after leaving *X* (a thread's locks nest), so
/// *T* may enter *X* now. It does so on top of *U*'s frames, exactly as a
/// re-entrant call on *U*'s own thread would, and hands the lock back when
/// it leaves. The calls form one logical thread across OS threads; a cycle
/// of waits never forms.
///
/// A VM entered this way sees a call from a thread other than the one whose
/// frames are below: its loader must keep per-thread VM state (QuickJS's
/// stack limit) right for the thread running it.
///
/// # Cost
/// Uncontended, taking is one compare-and-swap and releasing one plain store
/// and a load, on the lock's own line. The release must not miss a waiter
/// that marked the lock contended just then (a store on each side, then a
/// load of the other's: Dekker's pattern); instead of a full fence on every
/// release, the waiter runs the reclaimer's heavy barrier (`membarrier`),
/// which orders the releasing thread's store and load for it. Waiting,
/// handing over and waking go through one process-wide mutex and condition
/// variable.
///
/// ```
/// use polyload::loader::VmLock;
/// let lock = VmLock::new();
/// let outer = lock.lock();
/// let inner = lock.lock(); // the same thread re-enters at once
/// drop((inner, outer));
/// ```
pub struct VmLock {
    /// The owning thread's token, 0 when free.
    owner: AtomicU64,
    /// Entries of the owner (only the owner reads or writes it).
    depth: AtomicU32,
    /// Set once anyone waited or borrowed: releases then wake waiters.
    contended: AtomicBool,
    /// `(owner, depth)` saved by each borrow in progress, innermost last
    /// (read and written under the `WAITS` mutex).
    borrowed: Mutex<Vec<(u64, u32)>>,
}

impl Default for VmLock {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for VmLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmLock")
            .field("held", &(self.owner.load(Ordering::Relaxed) != 0))
            .finish()
    }
}

/// Proof that this thread holds a [`VmLock`]; released on drop. Not
/// `Send`: it must be dropped on the thread that took it.
#[must_use = "the lock is released when the guard is dropped"]
pub struct VmLockGuard<'a> {
    lock: &'a VmLock,
    _not_send: PhantomData<*const ()>,
}

impl VmLock {
    /// A free lock.
    pub const fn new() -> Self {
        Self {
            owner: AtomicU64::new(0),
            depth: AtomicU32::new(0),
            contended: AtomicBool::new(false),
            borrowed: Mutex::new(Vec::new()),
        }
    }

    /// Takes the lock for the calling thread: at once if it is free or this
    /// thread holds it, else when its holder lets go, or at once (handed
    /// over) if its holder is waiting for a lock this thread holds.
    #[inline]
    pub fn lock(&self) -> VmLockGuard<'_> {
        let me = token();
        if self.owner.load(Ordering::Acquire) == me {
            self.depth.fetch_add(1, Ordering::Relaxed);
        } else if self
            .owner
            .compare_exchange(0, me, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
        {
            self.depth.store(1, Ordering::Relaxed);
        } else {
            self.lock_slow(me);
        }
        VmLockGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    #[cold]
    fn lock_slow(&self, me: u64) {
        let mut guard = waits();
        if !self.contended.swap(true, Ordering::SeqCst) {
            // From now on every release sees the mark or has already
            // stored its free owner where the check below sees it.
            crate::reclaim::heavy_barrier();
        }
        loop {
            if self
                .owner
                .compare_exchange(0, me, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                self.depth.store(1, Ordering::Relaxed);
                return;
            }
            let holder = self.owner.load(Ordering::SeqCst);
            let w = guard.as_ref().expect("initialised by waits()");
            if holder != 0 && waits_for(w, holder, me) {
                // The holder cannot move before this thread lets go of a
                // lock: enter on top of its frames, and hand back on leaving.
                self.borrowed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((holder, self.depth.load(Ordering::Relaxed)));
                self.owner.store(me, Ordering::SeqCst);
                self.depth.store(1, Ordering::Relaxed);
                return;
            }
            guard
                .as_mut()
                .expect("initialised by waits()")
                .waiting
                .insert(me, self as *const VmLock);
            // The timeout is a safety net only: every release of a
            // contended lock wakes all waiters.
            guard = WAKE
                .wait_timeout(guard, Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
            guard
                .as_mut()
                .expect("initialised by waits()")
                .waiting
                .remove(&me);
        }
    }

    #[inline]
    fn unlock(&self) {
        let d = self.depth.load(Ordering::Relaxed) - 1;
        if d > 0 {
            self.depth.store(d, Ordering::Relaxed);
            return;
        }
        if self.contended.load(Ordering::Relaxed) {
            return self.unlock_slow();
        }
        self.depth.store(0, Ordering::Relaxed);
        self.owner.store(0, Ordering::Release);
        crate::reclaim::light_barrier();
        // A waiter that marked the lock contended after the check above
        // either sees it free now or is woken here (its heavy barrier
        // orders the store above before this load).
        if self.contended.load(Ordering::Relaxed) {
            wake_all();
        }
    }

    #[cold]
    fn unlock_slow(&self) {
        let _w = waits();
        let back = self
            .borrowed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        match back {
            // The end of a borrow: the holder we entered on top of owns the
            // lock again, at its depth (it is still waiting elsewhere).
            Some((holder, depth)) => {
                self.depth.store(depth, Ordering::Relaxed);
                self.owner.store(holder, Ordering::SeqCst);
            }
            None => {
                self.depth.store(0, Ordering::Relaxed);
                self.owner.store(0, Ordering::SeqCst);
            }
        }
        WAKE.notify_all();
    }
}

/// Wakes every waiter (after a contended lock was let go).
#[cold]
#[inline(never)]
fn wake_all() {
    let _w = waits();
    WAKE.notify_all();
}

/// Whether thread `holder` waits, directly or through a chain of waiting
/// threads, for a lock that thread `me` holds.
fn waits_for(w: &Waits, mut holder: u64, me: u64) -> bool {
    // Chains are short (one link per VM on the call path); the bound only
    // guards against a cycle that cannot form.
    for _ in 0..1024 {
        let Some(&lock) = w.waiting.get(&holder) else {
            return false;
        };
        // SAFETY: a registered waiter's lock is alive (see `Waits`).
        let next = unsafe { (*lock).owner.load(Ordering::SeqCst) };
        if next == me {
            return true;
        }
        if next == 0 || next == holder {
            return false;
        }
        holder = next;
    }
    false
}

impl Drop for VmLockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.lock.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    #[test]
    fn two_threads_crossing_two_locks_in_opposite_orders_finish() {
        // Thread 1 holds A and wants B; thread 2 holds B and wants A: the
        // second to ask enters on top of the first's frames.
        for _ in 0..200 {
            let (a, b) = (Arc::new(VmLock::new()), Arc::new(VmLock::new()));
            let both = Arc::new(Barrier::new(2));
            let cross = |first: Arc<VmLock>, second: Arc<VmLock>, both: Arc<Barrier>| {
                std::thread::spawn(move || {
                    let _g1 = first.lock();
                    both.wait();
                    let _g2 = second.lock();
                })
            };
            let t1 = cross(a.clone(), b.clone(), both.clone());
            let t2 = cross(b.clone(), a.clone(), both);
            t1.join().unwrap();
            t2.join().unwrap();
            assert_eq!(a.owner.load(Ordering::SeqCst), 0);
            assert_eq!(b.owner.load(Ordering::SeqCst), 0);
        }
    }

    #[test]
    fn a_plain_waiter_waits_for_the_holder() {
        let lock = Arc::new(VmLock::new());
        let inside = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (lock, inside) = (lock.clone(), inside.clone());
                std::thread::spawn(move || {
                    for _ in 0..2000 {
                        let _g = lock.lock();
                        let _again = lock.lock();
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
}
