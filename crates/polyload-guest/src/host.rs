//! The host table as seen from a guest: logging and cross-bundle calls.

use polyload_abi::{PolyloadBundle, PolyloadHost, PolyloadSlot, PolyloadStr};
use std::ffi::c_void;
use std::sync::atomic::{AtomicPtr, Ordering};

/// The host table given to `polyload_bundle_init`; null before init.
pub(crate) static HOST: AtomicPtr<PolyloadHost> = AtomicPtr::new(std::ptr::null_mut());
/// The bundle handle given to `polyload_bundle_init`, passed back to `lookup`.
pub(crate) static BUNDLE: AtomicPtr<PolyloadBundle> = AtomicPtr::new(std::ptr::null_mut());

/// The host table, once `polyload_bundle_init` has run; `None` before.
pub fn host() -> Option<&'static PolyloadHost> {
    // SAFETY: `HOST` is null or the table passed to `polyload_bundle_init`,
    // which the ABI requires to outlive the bundle (stored with release,
    // loaded with acquire, so its fields are visible).
    unsafe { HOST.load(Ordering::Acquire).as_ref() }
}

/// Log levels for [`log`] (the `POLYLOAD_LOG_*` constants of the ABI).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Level {
    /// Something failed.
    Error = polyload_abi::POLYLOAD_LOG_ERROR,
    /// Something looks wrong.
    Warn = polyload_abi::POLYLOAD_LOG_WARN,
    /// Progress worth telling.
    Info = polyload_abi::POLYLOAD_LOG_INFO,
    /// Detail for debugging.
    Debug = polyload_abi::POLYLOAD_LOG_DEBUG,
}

/// Writes a message to the host's log. Does nothing before the bundle is
/// initialised.
///
/// ```
/// polyload_guest::log(polyload_guest::Level::Info, "warming up");
/// ```
pub fn log(level: Level, message: &str) {
    if let Some(h) = host() {
        // SAFETY: the host's `log`, with a valid level and a string that
        // lives for the call.
        unsafe { (h.log)(level as u32, PolyloadStr::from_str(message)) };
    }
}

/// A definition of another bundle (or of this one), found by [`lookup`].
///
/// A slot is stable: it stays valid for the life of the host's namespace,
/// follows reloads of the defining bundle, and may be looked up before that
/// bundle is loaded. Keep the `Slot`; never keep the code pointer that
/// [`Slot::get`] returns.
#[derive(Clone, Copy, Debug)]
pub struct Slot(&'static PolyloadSlot);

// SAFETY: a `Slot` only reads: `PolyloadSlot` is immutable once returned by
// `lookup` (its `cell` and `index` never change), `*cell` is an `AtomicPtr`
// (itself `Sync`), and the code tables it points to are immutable once
// published. The raw pointer inside is what makes the type `!Send + !Sync`
// by default; sharing it across threads is what the host's namespace is
// designed for (the ABI lets any thread call into a bundle).
unsafe impl Send for Slot {}
// SAFETY: as for `Send`.
unsafe impl Sync for Slot {}

impl Slot {
    /// The definition's current code as `F`, an `extern "C" fn` type of the
    /// definition's exact signature (`str` as [`PolyloadStr`], `bytes` as
    /// [`polyload_abi::PolyloadBytes`]), or `None` while its bundle is not
    /// loaded (or its current version does not define it).
    ///
    /// This is `polyload_slot_get` of `polyload.h`: an acquire load of the
    /// bundle's code table, a bounds check, an index, a null check.
    ///
    /// **Call the pointer right away and do not keep it past the current
    /// call** of your exported function: the host may reload the other bundle
    /// afterwards and unmap the code it points to. Get it again next time
    /// (it costs one atomic load).
    ///
    /// ```no_run
    /// # use polyload_guest::lookup;
    /// let add = lookup("hello.add").expect("a well-formed name");
    /// // SAFETY: hello.add is `fn(i64, i64) -> i64`.
    /// let sum = unsafe { add.get::<extern "C" fn(i64, i64) -> i64>() }.map(|f| f(2, 3));
    /// ```
    ///
    /// # Safety
    /// `F` must be an `extern "C" fn` pointer type (not an `Option` of one)
    /// whose parameters and return type match the definition's signature.
    ///
    /// # Panics
    /// If `F` is not pointer-sized (so certainly not a function pointer).
    pub unsafe fn get<F: Copy>(&self) -> Option<F> {
        assert_eq!(
            std::mem::size_of::<F>(),
            std::mem::size_of::<*const c_void>(),
            "Slot::get::<F>: F must be an extern \"C\" fn pointer type"
        );
        // SAFETY: `cell` points to the bundle's atomic table pointer, which
        // the host keeps valid for the namespace's life (the slot's
        // contract); a non-null table is published (release) before it is
        // stored, immutable afterwards, and holds `len` entries.
        let code = unsafe {
            let table = (*self.0.cell).load(Ordering::Acquire);
            if table.is_null() || self.0.index >= (*table).len {
                return None;
            }
            *(*table).code.add(self.0.index)
        };
        if code.is_null() {
            return None;
        }
        // SAFETY: `code` is a non-null code pointer and `F` is a function
        // pointer type of its signature (the caller's promise); both are
        // pointer-sized (checked above).
        Some(unsafe { std::mem::transmute_copy::<*const c_void, F>(&code) })
    }

    /// The raw slot, for callers that manage the load themselves.
    pub fn as_raw(&self) -> &'static PolyloadSlot {
        self.0
    }
}

/// Looks up `bundle.function` in the host's namespace, for a cross-bundle
/// call. Returns `None` before init or when the name is malformed; a
/// well-formed name of a bundle that is not loaded yet still gives a slot
/// (whose [`Slot::get`] is `None` until it loads).
///
/// A lookup is a name search in the host (it may take a lock): do it once,
/// e.g. in a `OnceLock<Slot>`, and keep the [`Slot`], not the code pointer.
pub fn lookup(qualified_name: &str) -> Option<Slot> {
    let h = host()?;
    // SAFETY: the host's `lookup`, with the bundle handle it gave this
    // bundle at init and a name that lives for the call.
    let p = unsafe {
        (h.lookup)(
            BUNDLE.load(Ordering::Acquire),
            PolyloadStr::from_str(qualified_name),
        )
    };
    // SAFETY: a non-null slot lives as long as the host's namespace, which
    // outlives this bundle.
    unsafe { p.as_ref() }.map(Slot)
}
