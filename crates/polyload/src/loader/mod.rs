//! Writing a loader: the plug-in interface and the toolkit every engine
//! loader shares.
//!
//! A loader turns a bundle's artifact (a shared library, a script, a
//! module) into a list of [`Export`]s plus an instance that keeps the code
//! alive ([`BundleLoader::load`]). It never dispatches calls and never
//! touches the namespace's slots: the runtime checks the exports against
//! the manifest, publishes them, and retires old instances through its
//! reclaimer.
//!
//! # The toolkit
//! What an engine loader needs and none should write again:
//!
//! * [`from_guest`] and [`GuestValue`]: guest values to [`Value`]s by
//!   signature, one set of rules and messages for every language;
//! * [`HostCalls`]: the guest's `polyload.call` / `polyload.get`;
//! * [`report_guest_error`] and [`take_reported_error`]: errors raised by
//!   guest code that a loader's own native entry catches;
//! * [`install_once`]: package installs (pip, npm) into the bundle's cache,
//!   keyed by package list and tool version;
//! * [`Source::read`], [`init_error`] and [`exports`] (or
//!   [`export_entries`]): reading the
//!   artifact, reporting a failed initialisation, collecting the declared
//!   exports;
//! * [`VmLock`]: the lock of a single-threaded VM (Lua, QuickJS), one per
//!   VM so VMs run in parallel, handed over instead of waited for when its
//!   holder waits on the caller, so calls between VMs in opposite
//!   directions cannot deadlock;
//! * [`in_scope`] and [`at_scope_end`]: per-thread engine state a loader
//!   may leave set up between the calls of a [`Scope`](crate::Scope) and
//!   undo when it ends.
//!
//! A loader also owns its manifest section (`[python]`, `[js]`, ...): it
//! names it in [`BundleLoader::sections`] and parses it with
//! [`Manifest::section`](crate::Manifest::section).

mod host_calls;
mod packages;
mod values;
mod vm_lock;

pub use crate::native::NativeLoader;
pub use crate::scope::{at_scope_end, in_scope};
pub use host_calls::{HostCallError, HostCalls, HostFunction};
pub(crate) use packages::{command_line, tail};
pub use packages::{install_once, tool_version, Install, COMPLETE};
pub use values::{from_guest, to_json, GuestValue, GuestView, MAX_JSON_DEPTH};
pub use vm_lock::{VmLock, VmLockGuard};

use crate::manifest::{ExportDecl, Manifest};
use crate::{Error, Result};
use polyload_ffi::{Signature, Value};
use std::ffi::c_void;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A definition's dynamic entry point: called with values, by signature.
pub type DynamicFn = dyn Fn(&[Value]) -> std::result::Result<Value, GuestError> + Send + Sync;

/// A VM definition's second entry point, for a signature of numbers and
/// `bool` only: the arguments in 64-bit slots, the result written back to
/// slot 0 ([`ExportEntry::DynamicSlots`]).
///
/// Typed handles whose types are all numbers or `bool` call it instead of
/// the [`DynamicFn`], so a call builds no [`Value`]s on either side. The
/// slice holds one slot per parameter, in order, and at least one slot
/// (for the result). Each slot holds its value's bits as a WebAssembly
/// engine holds them in its raw value array (wasmtime's `ValRaw`):
///
/// * `i64`, `u64`: the 64 bits;
/// * `i8`, `i16`, `i32`, `u8`, `u16`, `u32`: the value as a 32-bit integer
///   (signed types sign-extended to 32 bits), zero-extended to 64;
/// * `bool`: 0 or 1;
/// * `f32`: its IEEE 754 bits in the low 32 bits, the rest zero; `f64`:
///   its 64 bits.
///
/// The result is read back from slot 0 by truncation to its type's width
/// (so the upper bits of a 32-bit result need not be cleared), `bool` as
/// "not 0"; the entry range-checks a narrow result (`i8`, `u16`, `bool`,
/// ...) before writing it, as its [`DynamicFn`] does. A `void` function
/// leaves slot 0 as it likes.
pub type SlotFn = dyn Fn(&mut [u64]) -> std::result::Result<(), GuestError> + Send + Sync;

/// An error raised by guest code: message plus optional traceback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestError {
    /// The guest's message, one line where the guest's is (`Type: text`).
    pub message: String,
    /// Guest traceback (files and lines), if the language has one.
    pub traceback: Option<String>,
}

impl GuestError {
    /// An error with a message and no traceback.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            traceback: None,
        }
    }
}

impl fmt::Display for GuestError {
    /// The message only (the traceback is in its field).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Reports a guest error from inside a native entry point
/// ([`ExportEntry::Native`]), on the thread that runs the call: what a C
/// bundle's `host->set_error` does, with a traceback as well. The caller
/// (a typed handle, `Runtime::call`, a C slot) sees it when the entry
/// returns, as [`Error::Guest`] with both parts; the entry's return value
/// is then discarded.
///
/// For loaders whose native entries catch their engine's exceptions
/// themselves (the `dotnet` loader's wrappers).
pub fn report_guest_error(error: GuestError) {
    crate::host::set_guest_error(error);
}

/// Takes the guest error reported on this thread since the last call
/// returned (by [`report_guest_error`], or a C bundle's `set_error`),
/// clearing it: for a loader's dynamic entry ([`ExportEntry::Dynamic`])
/// that runs code which reports errors that way and returns them as its
/// `Err`.
pub fn take_reported_error() -> Option<GuestError> {
    crate::host::take_pending_guest_error()
}

/// A code address that may be sent between threads (it is only an address):
/// a native export's entry point ([`ExportEntry::Native`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodePtr(pub *const c_void);
// SAFETY: a code address carries no thread affinity; calling it is what needs
// care, and every call site is `unsafe` or goes through a checked slot.
unsafe impl Send for CodePtr {}
// SAFETY: as above.
unsafe impl Sync for CodePtr {}

/// Where a bundle's artifact comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BundleSource {
    /// A file on disk (a shared library or an entry script).
    Path(PathBuf),
    /// Source text held in memory (VM loaders).
    Code(String),
    /// Raw bytes held in memory (e.g. precompiled bytecode).
    Bytes(Vec<u8>),
}

/// How an export is reached.
#[derive(Clone)]
pub enum ExportEntry {
    /// A C function of the export's signature.
    Native(CodePtr),
    /// A function called with values (a VM function). The runtime gives it a
    /// C entry point too, so C callers (and typed handles whose types do
    /// not convert by value, such as `str`) reach it; typed handles of
    /// numbers and `bool` call the function with values directly.
    Dynamic(Arc<DynamicFn>),
    /// As [`Dynamic`](Self::Dynamic), with a [`SlotFn`] beside the value
    /// entry: only for a signature whose parameters and result are numbers,
    /// `bool` or `void` (typed handles of such types call `slots`; every
    /// other caller calls `values`). Both must do the same.
    DynamicSlots {
        /// The entry called with values.
        values: Arc<DynamicFn>,
        /// The entry called with raw slots.
        slots: Arc<SlotFn>,
    },
}

impl std::fmt::Debug for ExportEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExportEntry::Native(p) => write!(f, "Native({:p})", p.0),
            ExportEntry::Dynamic(_) => f.write_str("Dynamic(..)"),
            ExportEntry::DynamicSlots { .. } => f.write_str("DynamicSlots(..)"),
        }
    }
}

/// One definition produced by a loader.
#[derive(Clone, Debug)]
pub struct Export {
    /// Unqualified name.
    pub name: String,
    /// Its signature as the artifact defines it.
    pub signature: Signature,
    /// Its entry point.
    pub entry: ExportEntry,
}

/// A loaded version of a bundle: keeps its code (library mapping, VM state)
/// alive. Dropped by the runtime only after no thread can be inside it.
pub trait BundleInstance: Send {
    /// Serialises state to carry into the next version on hot reload
    /// (`None`: the bundle keeps no state across reloads).
    ///
    /// # Errors
    /// A guest error while saving; the reload is then aborted.
    fn save_state(&mut self) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }

    /// Receives the state saved by the previous version.
    ///
    /// # Errors
    /// A guest error while restoring; the reload is then aborted.
    fn restore_state(&mut self, _state: &[u8]) -> Result<()> {
        Ok(())
    }
}

/// What a loader gets to load one bundle. Made by the runtime.
pub struct LoadContext<'a> {
    pub(crate) manifest: &'a Manifest,
    pub(crate) source: &'a BundleSource,
    pub(crate) host: HostCalls,
    pub(crate) cache_dir: &'a Path,
    pub(crate) built_profile: Option<&'a str>,
}

impl<'a> LoadContext<'a> {
    /// The bundle's manifest.
    pub fn manifest(&self) -> &'a Manifest {
        self.manifest
    }

    /// The artifact (already built when the bundle has a `[build]` section).
    pub fn source(&self) -> &'a BundleSource {
        self.source
    }

    /// What the bundle's code calls the namespace through (`polyload.call`).
    pub fn host(&self) -> &HostCalls {
        &self.host
    }

    /// A private cache directory for this bundle (packages, shadow copies).
    pub fn cache_dir(&self) -> &'a Path {
        self.cache_dir
    }

    /// The Cargo profile the runtime built a Rust bundle with, when it built it.
    pub fn built_profile(&self) -> Option<&'a str> {
        self.built_profile
    }
}

impl fmt::Debug for LoadContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadContext")
            .field("bundle", &self.manifest.id)
            .field("cache_dir", &self.cache_dir)
            .finish_non_exhaustive()
    }
}

/// A bundle's artifact as bytes, with the path its messages name.
#[derive(Clone, Debug)]
pub struct Source {
    /// The contents.
    pub bytes: Vec<u8>,
    /// The file, absolute: the artifact's path, or for an in-memory source
    /// the path the manifest's `file` names (for module names, relative
    /// imports and tracebacks).
    pub path: PathBuf,
    /// Whether it came from memory ([`BundleSource::Code`] or
    /// [`BundleSource::Bytes`]).
    pub in_memory: bool,
}

impl Source {
    /// Reads `cx`'s source.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn read(cx: &LoadContext<'_>) -> Result<Source> {
        let m = cx.manifest;
        let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        Ok(match cx.source {
            BundleSource::Path(p) => Source {
                bytes: std::fs::read(p).map_err(|e| Error::io(p, e))?,
                path: absolute(p),
                in_memory: false,
            },
            BundleSource::Code(s) => Source {
                bytes: s.clone().into_bytes(),
                path: absolute(&m.dir().join(&m.file)),
                in_memory: true,
            },
            BundleSource::Bytes(b) => Source {
                bytes: b.clone(),
                path: absolute(&m.dir().join(&m.file)),
                in_memory: true,
            },
        })
    }

    /// The contents as UTF-8 text.
    ///
    /// # Errors
    /// [`Error::Init`] when they are not UTF-8.
    pub fn text(&self, m: &Manifest) -> Result<&str> {
        std::str::from_utf8(&self.bytes).map_err(|e| {
            init_error(
                m,
                GuestError::new(format!("{} is not UTF-8 text ({e})", self.path.display())),
            )
        })
    }
}

/// A guest initialisation that failed (a script that raised, a module
/// that did not evaluate), as the error the runtime reports: the message
/// on one line, the traceback in its field.
pub fn init_error(m: &Manifest, e: GuestError) -> Error {
    Error::Init {
        bundle: m.id.clone(),
        status: -1,
        message: e.message,
        traceback: e.traceback,
    }
}

/// The declared exports of `m`, each found by `find`: `Ok(None)` for one
/// the artifact does not define (the runtime then reports it as missing,
/// naming the manifest line), `Err` for one that is not callable.
///
/// # Errors
/// The first error of `find`.
pub fn exports(
    m: &Manifest,
    mut find: impl FnMut(&ExportDecl) -> Result<Option<Arc<DynamicFn>>>,
) -> Result<Vec<Export>> {
    export_entries(m, |decl| Ok(find(decl)?.map(ExportEntry::Dynamic)))
}

/// As [`exports`], for a loader whose entries may be native code as well
/// ([`ExportEntry::Native`]).
///
/// # Errors
/// The first error of `find`.
pub fn export_entries(
    m: &Manifest,
    mut find: impl FnMut(&ExportDecl) -> Result<Option<ExportEntry>>,
) -> Result<Vec<Export>> {
    let mut out = Vec::with_capacity(m.exports.len());
    for decl in &m.exports {
        if let Some(entry) = find(decl)? {
            out.push(Export {
                name: decl.name.clone(),
                signature: decl.signature.clone(),
                entry,
            });
        }
    }
    Ok(out)
}

/// The result of a successful load.
pub struct LoadedBundle {
    /// The definitions, in any order.
    pub exports: Vec<Export>,
    /// Keeps them alive.
    pub instance: Box<dyn BundleInstance>,
}

impl std::fmt::Debug for LoadedBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedBundle")
            .field("exports", &self.exports)
            .finish()
    }
}

/// Turns artifacts of one kind into definitions.
///
/// The runtime picks the loader whose [`loader_name`](BundleLoader::loader_name)
/// equals the manifest's `loader` field.
pub trait BundleLoader: Send + Sync {
    /// The manifest `loader` value this loader handles (`native`, `lua`, ...).
    fn loader_name(&self) -> &'static str;

    /// The manifest sections this loader reads (`["python"]`), which the
    /// runtime then accepts in any manifest; a section no registered loader
    /// names is an error naming its line.
    fn sections(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether [`reload`](BundleLoader::reload) can replace a live version.
    fn supports_hot_reload(&self) -> bool {
        true
    }

    /// Loads a bundle. Runs foreign code (library initialisers, scripts).
    ///
    /// # Errors
    /// Anything that keeps the artifact from loading: I/O, ABI mismatch,
    /// missing symbols, guest errors during initialisation.
    fn load(&self, cx: &LoadContext<'_>) -> Result<LoadedBundle>;

    /// Loads a new version of a bundle that is already loaded. The default
    /// loads it afresh; the runtime carries state and swaps versions.
    ///
    /// # Errors
    /// As [`load`](BundleLoader::load); the old version keeps serving.
    fn reload(&self, cx: &LoadContext<'_>) -> Result<LoadedBundle> {
        self.load(cx)
    }

    /// Releases a version that no thread can reach any more. The default
    /// drops it.
    fn unload(&self, instance: Box<dyn BundleInstance>) {
        drop(instance);
    }
}
