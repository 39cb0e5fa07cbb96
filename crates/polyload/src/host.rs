//! The host side of the C ABI: the `PolyloadHost` table bundles receive, the
//! per-thread error slot, and the context behind `PolyloadBundle *`.

use crate::namespace::{CodePtr, Namespace};
use crate::reclaim;
use polyload_abi::{
    PolyloadBundle, PolyloadHost, PolyloadSlot, PolyloadStr, POLYLOAD_ABI_VERSION, POLYLOAD_ERR,
    POLYLOAD_ERR_DUPLICATE, POLYLOAD_ERR_INVALID, POLYLOAD_OK,
};
use polyload_ffi::Signature;
use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, Weak};

// The "an error is pending" flag lives in the thread's reclamation record
// (the call guard already holds it, so checking it after a call is one load);
// the message lives here. Threads that are exiting use TEARDOWN_ERROR.
thread_local! {
    static ERROR: RefCell<String> = const { RefCell::new(String::new()) };
    static TRACEBACK: RefCell<Option<String>> = const { RefCell::new(None) };
    static TEARDOWN_ERROR: Cell<bool> = const { Cell::new(false) };
}

/// Clears the calling thread's guest error.
pub(crate) fn clear_error() {
    if reclaim::error_flag() {
        reclaim::set_error_flag(false);
    }
    let _ = TEARDOWN_ERROR.try_with(|f| f.set(false));
}

pub(crate) fn teardown_error_pending() -> bool {
    TEARDOWN_ERROR
        .try_with(|f| f.replace(false))
        .unwrap_or(false)
}

/// Takes the calling thread's guest error message, if one was set.
pub(crate) fn take_error() -> Option<String> {
    take_pending_guest_error().map(|e| e.message)
}

/// Takes the calling thread's guest error with its traceback, if one was
/// set.
pub(crate) fn take_pending_guest_error() -> Option<crate::loader::GuestError> {
    let pending = reclaim::error_flag() || TEARDOWN_ERROR.try_with(Cell::get).unwrap_or(false);
    if !pending {
        return None;
    }
    clear_error();
    Some(take_guest_error())
}

/// Takes the message after a guard reported the error flag.
pub(crate) fn take_message() -> String {
    let _ = TRACEBACK.try_with(|t| t.borrow_mut().take());
    ERROR
        .try_with(|e| std::mem::take(&mut *e.borrow_mut()))
        .unwrap_or_else(|_| "guest error (message lost: thread exiting)".into())
}

/// Takes the message and traceback after a guard reported the error flag.
pub(crate) fn take_guest_error() -> crate::loader::GuestError {
    let traceback = TRACEBACK.try_with(|t| t.borrow_mut().take()).ok().flatten();
    let mut e = crate::loader::GuestError::new(take_message());
    e.traceback = traceback;
    e
}

/// Sets the calling thread's guest error with a traceback.
pub(crate) fn set_guest_error(error: crate::loader::GuestError) {
    set_error(&error.message);
    let _ = TRACEBACK.try_with(|t| *t.borrow_mut() = error.traceback);
}

/// Sets the calling thread's guest error (what `set_error` does).
pub(crate) fn set_error(message: &str) {
    let _ = ERROR.try_with(|e| {
        let mut e = e.borrow_mut();
        e.clear();
        e.push_str(message);
    });
    let _ = TRACEBACK.try_with(|t| t.borrow_mut().take());
    if !reclaim::set_error_flag(true) {
        let _ = TEARDOWN_ERROR.try_with(|f| f.set(true));
    }
}

/// A definition registered by `define` during init, before checking.
pub(crate) struct Staged {
    pub(crate) name: String,
    pub(crate) signature: Signature,
    pub(crate) code: CodePtr,
}

/// What `PolyloadBundle *` points to: one per loaded bundle version.
pub(crate) struct BundleContext {
    pub(crate) id: String,
    namespace: Weak<Namespace>,
    /// `Some` while `polyload_bundle_init` runs.
    staging: Mutex<Option<Vec<Staged>>>,
}

impl BundleContext {
    pub(crate) fn new(id: &str, namespace: Weak<Namespace>) -> Box<Self> {
        Box::new(Self {
            id: id.to_string(),
            namespace,
            staging: Mutex::new(None),
        })
    }

    pub(crate) fn begin_init(&self) {
        *self.staging.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
    }

    pub(crate) fn end_init(&self) -> Vec<Staged> {
        self.staging
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default()
    }

    pub(crate) fn as_bundle_ptr(&self) -> *mut PolyloadBundle {
        (self as *const Self).cast_mut().cast()
    }
}

/// Reads a `PolyloadStr` as UTF-8.
///
/// # Safety
/// `s` must satisfy [`PolyloadStr::as_bytes`].
unsafe fn str_arg<'a>(s: PolyloadStr) -> Result<&'a str, String> {
    // SAFETY: forwarded to the caller.
    let bytes = unsafe { s.as_bytes() };
    std::str::from_utf8(bytes).map_err(|e| format!("invalid UTF-8: {e}"))
}

/// # Safety
/// Called by bundles through the host table: `bundle` must be the pointer
/// passed to `polyload_bundle_init`, strings valid per the ABI.
unsafe extern "C" fn host_define(
    bundle: *mut PolyloadBundle,
    name: PolyloadStr,
    signature: PolyloadStr,
    code: *const c_void,
) -> i32 {
    let r = catch_unwind(AssertUnwindSafe(|| {
        if bundle.is_null() {
            set_error("define: null bundle");
            return POLYLOAD_ERR_INVALID;
        }
        // SAFETY: per the ABI, `bundle` is the context pointer we passed to init.
        let cx = unsafe { &*bundle.cast::<BundleContext>() };
        // SAFETY: per the ABI, the strings are valid for the call.
        let (name, sig_text) = match unsafe { (str_arg(name), str_arg(signature)) } {
            (Ok(n), Ok(s)) => (n, s),
            (Err(e), _) | (_, Err(e)) => {
                set_error(&format!("define in bundle `{}`: {e}", cx.id));
                return POLYLOAD_ERR_INVALID;
            }
        };
        if name.is_empty() || name.contains('.') || code.is_null() {
            set_error(&format!(
                "define in bundle `{}`: `{name}` needs a non-empty name without `.` and a non-null address",
                cx.id
            ));
            return POLYLOAD_ERR_INVALID;
        }
        let signature: Signature = match sig_text.parse() {
            Ok(s) => s,
            Err(e) => {
                set_error(&format!("define `{}.{name}`: {e}", cx.id));
                return POLYLOAD_ERR_INVALID;
            }
        };
        let mut staging = cx.staging.lock().unwrap_or_else(|e| e.into_inner());
        let Some(staged) = staging.as_mut() else {
            set_error(&format!(
                "define `{}.{name}` called outside polyload_bundle_init",
                cx.id
            ));
            return POLYLOAD_ERR_INVALID;
        };
        if staged.iter().any(|s| s.name == name) {
            set_error(&format!(
                "duplicate definition `{}.{name}`: bundle `{}` defined it twice",
                cx.id, cx.id
            ));
            return POLYLOAD_ERR_DUPLICATE;
        }
        staged.push(Staged {
            name: name.to_string(),
            signature,
            code: CodePtr(code),
        });
        POLYLOAD_OK
    }));
    r.unwrap_or(POLYLOAD_ERR)
}

/// # Safety
/// As [`host_define`].
unsafe extern "C" fn host_lookup(
    bundle: *mut PolyloadBundle,
    qualified_name: PolyloadStr,
) -> *const PolyloadSlot {
    let r = catch_unwind(AssertUnwindSafe(|| {
        if bundle.is_null() {
            return std::ptr::null();
        }
        // SAFETY: per the ABI, `bundle` is a live context pointer.
        let cx = unsafe { &*bundle.cast::<BundleContext>() };
        // SAFETY: per the ABI, the string is valid for the call.
        let Ok(name) = (unsafe { str_arg(qualified_name) }) else {
            return std::ptr::null();
        };
        cx.namespace
            .upgrade()
            .and_then(|ns| ns.c_slot(name))
            .unwrap_or(std::ptr::null())
    }));
    r.unwrap_or(std::ptr::null())
}

/// # Safety
/// `message` valid per the ABI.
unsafe extern "C" fn host_log(level: u32, message: PolyloadStr) {
    let _ = catch_unwind(|| {
        // SAFETY: per the ABI, the string is valid for the call.
        let bytes = unsafe { message.as_bytes() };
        let msg = String::from_utf8_lossy(bytes);
        match level {
            polyload_abi::POLYLOAD_LOG_ERROR => tracing::error!(target: "polyload::guest", "{msg}"),
            polyload_abi::POLYLOAD_LOG_WARN => tracing::warn!(target: "polyload::guest", "{msg}"),
            polyload_abi::POLYLOAD_LOG_INFO => tracing::info!(target: "polyload::guest", "{msg}"),
            _ => tracing::debug!(target: "polyload::guest", "{msg}"),
        }
    });
}

/// # Safety
/// `message` valid per the ABI.
unsafe extern "C" fn host_set_error(message: PolyloadStr) {
    let _ = catch_unwind(|| {
        // SAFETY: per the ABI, the string is valid for the call.
        let bytes = unsafe { message.as_bytes() };
        set_error(&String::from_utf8_lossy(bytes));
    });
}

/// `enter` (ABI 1.1): see `PolyloadHost::enter`.
unsafe extern "C" fn host_enter() {
    // Nothing here can panic but an allocation failure on first use
    // (registration), which aborts rather than unwinds.
    reclaim::enter_unguarded();
}

/// `leave` (ABI 1.1): see `PolyloadHost::leave`.
unsafe extern "C" fn host_leave() -> i32 {
    if reclaim::leave_unguarded() {
        POLYLOAD_OK
    } else {
        POLYLOAD_ERR_INVALID
    }
}

/// The table every native bundle receives.
pub(crate) static HOST: PolyloadHost = PolyloadHost {
    size: std::mem::size_of::<PolyloadHost>(),
    abi_version: POLYLOAD_ABI_VERSION.packed(),
    define: host_define,
    lookup: host_lookup,
    log: host_log,
    alloc: polyload_ffi::alloc::polyload_alloc,
    free: polyload_ffi::alloc::polyload_free,
    set_error: host_set_error,
    enter: host_enter,
    leave: host_leave,
};
