//! The one Mono runtime of the process: initialised on first use, never
//! shut down (Mono cannot be initialised twice in a process), shared by
//! every `Runtime` and bundle.
//!
//! * **Initialisation** runs on a thread of its own, `polyload-mono`, that
//!   then sleeps for the life of the process: Mono's root domain belongs
//!   to the thread that called `mono_jit_init_version`, and a host thread
//!   (a test's, say) may exit while Mono lives on.
//! * **Suspend policy.** Unless the environment already sets
//!   `MONO_THREADS_SUSPEND`, it is set to `preemptive` before
//!   initialisation. Mono 6.8's default (`hybrid`) makes every
//!   native-to-managed transition switch the thread's GC mode twice, which
//!   measured ~70 ns per call of an unmanaged thunk against ~10 ns with
//!   `preemptive` on this machine (`BENCHMARKS.md`).
//! * **Signals.** Mono is told to chain signals it does not handle
//!   (`mono_set_signal_chaining`), so Rust's stack-overflow guard and
//!   wasmtime's trap handlers keep working beside it.
//! * **Threads.** A thread that calls into .NET is attached to Mono on its
//!   first call (by the thunk's own wrapper, or by [`attach`] for the
//!   loader's own API use) and detached when it exits.
//! * **Internal calls** (`Polyload::CallRaw`, the support assembly's
//!   `Fail`) are registered once; they find the calling bundle by the
//!   thread's current application domain.

use crate::mono::{self, Mono, Ptr};
use crate::values;
use polyload::loader::{
    install_once, report_guest_error, tool_version, GuestError, HostCalls, Install,
};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::{c_void, CString};
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, OnceLock, RwLock};

/// The support assembly's source (see `cs/Support.cs`).
const SUPPORT_CS: &str = include_str!("../cs/Support.cs");

/// The initialised runtime.
pub(crate) struct Vm {
    pub(crate) api: &'static Mono,
    root: usize,
}

static VM: OnceLock<Result<Vm, String>> = OnceLock::new();

/// What the loader keeps per live application domain, by its address.
struct DomainEntry {
    /// The host calls of the bundle living there (`Polyload.Call`).
    host: HostCalls,
    /// `Errors.Report`'s thunk there, once the support assembly is open.
    report: Option<ReportThunk>,
}

/// The thunk of `PolyloadSupport.Errors.Report(Exception)`: the exception
/// and the thunk's exception slot.
pub(crate) type ReportThunk = unsafe extern "C" fn(Ptr, *mut Ptr);

static DOMAINS: LazyLock<RwLock<HashMap<usize, DomainEntry>>> = LazyLock::new(Default::default);

/// The process's Mono, initialising it on first use.
///
/// # Errors
/// Mono is not installed or failed to initialise: the message says which
/// Debian packages to install.
pub(crate) fn vm() -> Result<&'static Vm, String> {
    VM.get_or_init(init).as_ref().map_err(Clone::clone)
}

fn init() -> Result<Vm, String> {
    let api = mono::api()?;
    let (tx, rx) = std::sync::mpsc::channel::<usize>();
    std::thread::Builder::new()
        .name("polyload-mono".into())
        .spawn(move || {
            if std::env::var_os("MONO_THREADS_SUSPEND").is_none() {
                // Read by Mono during `mono_jit_init_version` below, on this
                // thread. (Setting the environment races with C code reading
                // it on other threads; this happens once, before Mono runs.)
                std::env::set_var("MONO_THREADS_SUSPEND", "preemptive");
            }
            // SAFETY: Mono's documented initialisation sequence, run once per
            // process (guarded by `VM`); the strings are NUL-terminated.
            let root = unsafe {
                (api.mono_set_signal_chaining)(1);
                (api.mono_config_parse)(std::ptr::null());
                (api.mono_jit_init_version)(c"polyload".as_ptr(), c"v4.0.30319".as_ptr())
            };
            if !root.is_null() {
                // SAFETY: the names are the C# declarations' (`Polyload.cs`,
                // `cs/Support.cs`); the functions have the signatures Mono
                // calls internal calls with (each reference argument a
                // `MonoObject *`, `out string` a `MonoString **`).
                unsafe {
                    (api.mono_add_internal_call)(
                        c"Polyload::CallRaw".as_ptr(),
                        call_raw as *const c_void,
                    );
                    (api.mono_add_internal_call)(
                        c"PolyloadSupport.Errors::Fail".as_ptr(),
                        fail as *const c_void,
                    );
                }
            }
            let _ = tx.send(root as usize);
            loop {
                std::thread::park();
            }
        })
        .map_err(|e| format!("starting the Mono thread: {e}"))?;
    let root = rx
        .recv()
        .map_err(|_| "the Mono thread exited during initialisation".to_string())?;
    if root == 0 {
        return Err(format!(
            "mono_jit_init_version failed (a broken Mono installation?): {}",
            mono::PACKAGES
        ));
    }
    Ok(Vm { api, root })
}

thread_local! {
    /// The thread's current domain as [`enter`] and [`leave`] last set it
    /// (the root domain once attached; 0 before): only they switch
    /// domains, so this mirror saves asking Mono (`mono_domain_get`, a
    /// call and a dynamic TLS lookup) on every call, and tells whether the
    /// thread is attached.
    static CURRENT: Cell<usize> = const { Cell::new(0) };
    /// Calls between [`enter`] and [`leave`] on this thread, nested.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    /// The domain to go back to when the scope ends, once a call inside a
    /// scope left the thread in another (0: none did).
    static HOME: Cell<usize> = const { Cell::new(0) };
    static DETACH: RefCell<Option<Detach>> = const { RefCell::new(None) };
}

/// Detaches the thread from Mono when the thread exits.
struct Detach(Ptr);

impl Drop for Detach {
    fn drop(&mut self) {
        if let Ok(vm) = vm() {
            // SAFETY: `self.0` is the `MonoThread *` `mono_thread_attach`
            // returned on this thread, which is exiting: Rust's thread-local
            // destructors run before the pthread key destructors Mono's own
            // thread bookkeeping uses, so Mono still knows the thread.
            unsafe { (vm.api.mono_thread_detach)(self.0) };
        }
    }
}

impl Vm {
    /// The root application domain.
    pub(crate) fn root(&self) -> Ptr {
        self.root as Ptr
    }

    /// Attaches the calling thread to Mono (once per thread; detached when
    /// the thread exits). Every use of Mono's API outside a thunk call
    /// follows this.
    pub(crate) fn attach(&self) {
        if CURRENT.with(Cell::get) != 0 {
            return;
        }
        // SAFETY: the root domain is alive for the life of the process;
        // attaching a thread that Mono already knows (a thunk attached it)
        // returns its existing thread object.
        let thread = unsafe { (self.api.mono_thread_attach)(self.root()) };
        let _ = DETACH.try_with(|d| *d.borrow_mut() = Some(Detach(thread)));
        // SAFETY: the thread is attached.
        CURRENT.with(|c| c.set(unsafe { (self.api.mono_domain_get)() } as usize));
    }

    /// Runs `f` with the calling thread's current domain set to `domain`,
    /// then restores the previous one, even inside a scope: for the
    /// loader's own work in a domain (which may be unloaded right after,
    /// outside the reclaimer, when a load fails).
    pub(crate) fn in_domain<R>(&self, domain: Ptr, f: impl FnOnce() -> R) -> R {
        // SAFETY: `restore` is `leave` without staying.
        unsafe { around(domain, f, restore) }
    }

    /// As [`in_domain`](Self::in_domain), for a call of an export: inside
    /// a scope the thread may stay in `domain` afterwards (see [`leave`]).
    pub(crate) fn calling<R>(&self, domain: Ptr, f: impl FnOnce() -> R) -> R {
        // SAFETY: `leave` is the end of `enter`.
        unsafe { around(domain, f, leave) }
    }

    /// Registers the host calls of the bundle living in `domain`.
    pub(crate) fn register(&self, domain: Ptr, host: HostCalls) {
        let mut map = DOMAINS.write().unwrap_or_else(|e| e.into_inner());
        map.insert(domain as usize, DomainEntry { host, report: None });
    }

    /// Records `Errors.Report`'s thunk in the registered `domain`.
    pub(crate) fn set_reporter(&self, domain: Ptr, report: ReportThunk) {
        let mut map = DOMAINS.write().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = map.get_mut(&(domain as usize)) {
            entry.report = Some(report);
        }
    }

    /// `Errors.Report`'s thunk in `domain`, if it is live and has one.
    pub(crate) fn reporter(&self, domain: Ptr) -> Option<ReportThunk> {
        let map = DOMAINS.read().unwrap_or_else(|e| e.into_inner());
        map.get(&(domain as usize)).and_then(|e| e.report)
    }

    /// Forgets `domain` (before it is unloaded).
    pub(crate) fn unregister(&self, domain: Ptr) {
        let mut map = DOMAINS.write().unwrap_or_else(|e| e.into_inner());
        map.remove(&(domain as usize));
    }

    fn host_of(&self, domain: Ptr) -> Option<HostCalls> {
        let map = DOMAINS.read().unwrap_or_else(|e| e.into_inner());
        map.get(&(domain as usize)).map(|e| e.host.clone())
    }
}

/// Runs `f` between [`enter`]`(domain)` and `end(domain, previous)`.
///
/// # Safety
/// `domain` is live (the caller owns it); `end` is [`leave`] or
/// [`restore`].
unsafe fn around<R>(domain: Ptr, f: impl FnOnce() -> R, end: unsafe extern "C" fn(Ptr, Ptr)) -> R {
    // SAFETY: `domain` is live (this function's contract).
    let previous = unsafe { enter(domain) };
    let r = f();
    // SAFETY: `previous` is what `enter` returned on this thread.
    unsafe { end(domain, previous) };
    r
}

/// See [`crate::thread_in_root_domain`].
pub(crate) fn in_root_domain() -> Option<bool> {
    let Some(Ok(vm)) = VM.get() else {
        return None;
    };
    if CURRENT.with(Cell::get) == 0 {
        return None;
    }
    // SAFETY: the thread is attached (it has a current domain).
    Some(unsafe { (vm.api.mono_domain_get)() } == vm.root())
}

/// Makes `domain` the calling thread's current application domain (after
/// attaching the thread), returning the previous one for [`leave`]; does
/// nothing when it is current already (a bundle calling itself, or a
/// thread that a scope left in the domain).
///
/// Code of a domain must run with its domain current: an unmanaged thunk
/// does not switch domains, so a method called from another domain would
/// run against the wrong domain's statics, and an exception in it is fatal.
/// This is the `enter` hook of every export's trampoline.
///
/// # Safety
/// `domain` is a live domain.
pub(crate) unsafe extern "C" fn enter(domain: *mut c_void) -> *mut c_void {
    DEPTH.with(|d| d.set(d.get() + 1));
    let current = CURRENT.with(Cell::get) as *mut c_void;
    if current == domain {
        // Already there (a scope left the thread in it, or a bundle calls
        // itself): the thread is attached, and nothing to switch.
        return current;
    }
    let Some(Ok(vm)) = VM.get() else {
        return domain;
    };
    vm.attach();
    let current = CURRENT.with(Cell::get) as *mut c_void;
    if current != domain {
        // SAFETY: the thread is attached; `domain` is live (the caller's
        // contract).
        unsafe { (vm.api.mono_domain_set_internal)(domain) };
        CURRENT.with(|c| c.set(domain as usize));
    }
    current
}

/// Ends a call [`enter`] began: restores the domain it found current,
/// except at the outermost call inside a scope ([`polyload::Scope`]),
/// where the thread stays in `domain` until the next call needs another
/// domain or the scope ends ([`leave_scope`]). Two domain switches cost
/// ~60 ns (`mono_domain_set_internal` looks up Mono's thread through
/// global-dynamic TLS), eight times the call of a thunk itself.
///
/// Staying is sound because the scope holds the reclaimer's read side: a
/// domain that a call inside the scope reached was published, so it is
/// unloaded only through the reclaimer, after the scope (and its
/// [`leave_scope`], which moves the thread out first) has ended.
///
/// # Safety
/// `previous` is what `enter(domain)` returned on this thread.
pub(crate) unsafe extern "C" fn leave(domain: *mut c_void, previous: *mut c_void) {
    let outermost = DEPTH.with(|d| {
        d.set(d.get() - 1);
        d.get() == 0
    });
    if previous == domain {
        return;
    }
    if outermost && polyload::loader::at_scope_end(leave_scope) {
        if HOME.with(Cell::get) == 0 {
            HOME.with(|h| h.set(previous as usize));
        }
        return;
    }
    // SAFETY: as this function's contract.
    unsafe { switch_back(previous) };
}

/// As [`leave`], never staying: for [`Vm::in_domain`].
///
/// # Safety
/// As [`leave`].
unsafe extern "C" fn restore(domain: *mut c_void, previous: *mut c_void) {
    DEPTH.with(|d| d.set(d.get() - 1));
    if previous != domain {
        // SAFETY: as this function's contract.
        unsafe { switch_back(previous) };
    }
}

/// Makes `previous` (or the root domain, for a thread that was not
/// attached) current again.
///
/// # Safety
/// `previous` is null, the root domain, or a domain that is alive while
/// a call from it is running.
unsafe fn switch_back(previous: *mut c_void) {
    if let Some(Ok(vm)) = VM.get() {
        let back = if previous.is_null() {
            vm.root()
        } else {
            previous
        };
        // SAFETY: `back` is the root domain or the domain that was current
        // before the call, alive while a call from it is running.
        unsafe { (vm.api.mono_domain_set_internal)(back) };
        CURRENT.with(|c| c.set(back as usize));
    }
}

/// The [`at_scope_end`](polyload::loader::at_scope_end) hook of [`leave`]:
/// moves the thread back to the domain it was in before the scope's first
/// call left it in another.
fn leave_scope() {
    let home = HOME.with(|h| h.replace(0)) as *mut c_void;
    if home.is_null() || CURRENT.with(Cell::get) == home as usize {
        return;
    }
    // SAFETY: `home` was current when the scope's first staying call
    // began, and the scope lies inside whatever runs there: the root
    // domain on a host thread, or, on a thread .NET code started, the
    // domain whose frames are below the scope, alive while they run.
    unsafe { switch_back(home) };
}

/// `PolyloadSupport.Errors::Fail(string type, string message, string
/// stackTrace)`: a bundle's exception, described by `Errors.Report`, becomes the
/// calling thread's guest error.
unsafe extern "C" fn fail(ty: Ptr, message: Ptr, trace: Ptr) {
    let _ = std::panic::catch_unwind(|| {
        let Ok(vm) = vm() else { return };
        // SAFETY: Mono passes `Report`'s three strings (or null), alive
        // for this call.
        let (ty, message, trace) = unsafe {
            (
                values::string(vm.api, ty).unwrap_or_default(),
                values::string(vm.api, message).unwrap_or_default(),
                values::string(vm.api, trace),
            )
        };
        report_guest_error(GuestError {
            message: format!("{ty}: {message}"),
            traceback: trace,
        });
    });
}

/// `Polyload::CallRaw(string name, object[] args, out string error)`:
/// calls a definition of the namespace for C# code.
unsafe extern "C" fn call_raw(name: Ptr, args: Ptr, error: *mut Ptr) -> Ptr {
    let outcome = std::panic::catch_unwind(|| -> Result<Ptr, String> {
        let vm = vm()?;
        let api = vm.api;
        // SAFETY: called by Mono on a thread running managed code in the
        // calling bundle's domain; `name` and `args` are the C# arguments,
        // alive (and, being on the managed caller's frame, pinned) for the
        // call.
        unsafe {
            let domain = (api.mono_domain_get)();
            let host = vm
                .host_of(domain)
                .ok_or_else(|| "this application domain is not a polyload bundle's".to_string())?;
            let name = values::string(api, name).ok_or_else(|| "the name is null".to_string())?;
            let args = values::object_array(api, args);
            let result = host.call(&name, &args).map_err(|e| e.to_string())?;
            values::to_object(api, domain, &result)
        }
    });
    let message = match outcome {
        Ok(Ok(result)) => return result,
        Ok(Err(message)) => message,
        Err(_) => "polyload: the host call panicked".to_string(),
    };
    if let Ok(vm) = vm() {
        // SAFETY: `error` is the address of the caller's `out string`; the
        // store goes through Mono's write barrier.
        unsafe {
            let domain = (vm.api.mono_domain_get)();
            let text =
                (vm.api.mono_string_new_len)(domain, message.as_ptr().cast(), message.len() as u32);
            (vm.api.mono_gc_wbarrier_generic_store)(error.cast(), text);
        }
    }
    std::ptr::null_mut()
}

/// The support assembly, compiled with `mcs` on first use into
/// `<cache>/dotnet-support/<key>/PolyloadSupport.dll` by the toolkit's
/// [`install_once`] (the key covers its source and the compiler's version).
///
/// # Errors
/// `mcs` is missing (the message names `mono-mcs`) or failed.
pub(crate) fn support_assembly(cache: &Path, bundle: &str) -> polyload::Result<PathBuf> {
    let mcs = std::env::var("MCS").unwrap_or_else(|_| "mcs".into());
    let version = tool_version(&mcs, &["--version"]).ok_or_else(|| polyload::Error::Build {
        bundle: bundle.to_string(),
        command: format!("{mcs} --version"),
        status: "could not start".into(),
        output: "the dotnet loader's support assembly is compiled with Mono's C# compiler: install Debian's `mono-mcs` (or set $MCS)".into(),
    })?;
    use sha2::{Digest, Sha256};
    let digest: String = Sha256::digest(SUPPORT_CS.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    // Named in errors as what could not be made, and part of the key.
    let source = [format!("PolyloadSupport.dll from Support.cs {digest}")];
    let install = Install {
        bundle,
        root: &cache.join("dotnet-support"),
        tool: &version,
        packages: &source,
    };
    let dir = install_once(&install, |tmp| {
        let src = tmp.join("Support.cs");
        // A write that fails shows as mcs not finding the file.
        let _ = std::fs::write(&src, SUPPORT_CS);
        let mut cmd = std::process::Command::new(&mcs);
        cmd.args(["-target:library", "-optimize+", "-nologo"])
            .arg(format!(
                "-out:{}",
                tmp.join("PolyloadSupport.dll").display()
            ))
            .arg(&src);
        cmd
    })?;
    Ok(dir.join("PolyloadSupport.dll"))
}

/// A C string for Mono, or an error naming what held a NUL.
pub(crate) fn c_string(what: &str, s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("{what} `{s}` contains a NUL byte"))
}
