//! The loader interface: how an artifact becomes definitions.
//!
//! A loader turns a bundle's artifact (a shared library, a script) into a
//! list of [`Export`]s plus an instance that keeps the code alive. It never
//! dispatches calls and never touches the namespace's slots: the runtime
//! checks the exports against the manifest and publishes them.

use crate::manifest::Manifest;
use crate::namespace::{CodePtr, DynamicFn, Namespace};
use crate::Result;
use polyload_ffi::Signature;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// The language a loader runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Language {
    /// Native code through the C ABI (C, C++, Rust cdylibs, ...).
    Native,
    /// Lua.
    Lua,
    /// Python.
    Python,
    /// JavaScript.
    JavaScript,
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
}

impl std::fmt::Debug for ExportEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExportEntry::Native(p) => write!(f, "Native({:p})", p.0),
            ExportEntry::Dynamic(_) => f.write_str("Dynamic(..)"),
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

/// What a loader gets to load one bundle.
pub struct LoadContext<'a> {
    /// The bundle's manifest.
    pub manifest: &'a Manifest,
    /// The artifact (already built when the bundle has a `[build]` section).
    pub source: &'a BundleSource,
    /// The namespace the bundle's code may call into (`polyload.call`).
    pub namespace: &'a Arc<Namespace>,
    /// A private cache directory for this bundle (packages, shadow copies).
    pub cache_dir: &'a Path,
    /// The Cargo profile the runtime built a Rust bundle with, when it built it.
    pub built_profile: Option<&'a str>,
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

    /// The language it runs.
    fn language(&self) -> Language;

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

/// See [`vm_lock`].
static VM_LOCK: parking_lot::ReentrantMutex<()> = parking_lot::ReentrantMutex::new(());

/// Proof that this thread holds the [guest VM lock](vm_lock); released on
/// drop. Not `Send`: it must be dropped on the thread that took it.
#[must_use = "the lock is released when the guard is dropped"]
pub struct VmGuard(#[allow(dead_code)] parking_lot::ReentrantMutexGuard<'static, ()>);

/// Takes the process-wide, re-entrant lock under which single-threaded guest VMs (Lua,
/// JavaScript) run guest code.
///
/// Such a VM must be entered by one thread at a time, and its guest code
/// may call out through the namespace while inside it. With one lock per VM,
/// a thread inside VM *A* calling into VM *B* while another thread inside
/// *B* calls into *A* would each hold one lock and wait for the other
/// forever. Holding this one re-entrant lock whenever guest code of such a
/// VM runs (taken before any per-VM lock) leaves a single lock that
/// re-enters on the same thread, so cycles across threads cannot form; the
/// price is that these VMs run one thread at a time process-wide, like a
/// GIL. Python bundles do not take it: CPython's GIL plays this role, and the
/// Python loader releases the GIL before calling out.
///
/// A loader of a VM that can only run on one thread at a time takes it with
/// this function around everything that runs guest code: loading, calls,
/// reloads and dropping the VM.
///
/// ```
/// let outer = polyload::vm_lock();
/// let inner = polyload::vm_lock(); // the same thread re-enters at once
/// drop((inner, outer));
/// ```
pub fn vm_lock() -> VmGuard {
    VmGuard(VM_LOCK.lock())
}
