//! The runtime: loads bundles into a namespace and hands out handles.

mod builder;
mod exports;
mod load;
mod scan;
mod unload;

use builder::BuildHook;
pub use builder::{RuntimeBuilder, CACHE_DIR_ENV};
pub(crate) use exports::check_exports;
pub(crate) use scan::dependency_order;
pub use scan::{bundle_dirs, scan_dir};

use crate::function::{CFunction, DynamicFunction, Function};
use crate::loader::{BundleInstance, BundleLoader, BundleSource};
use crate::manifest::Manifest;
use crate::namespace::{DefinitionInfo, Namespace};
use crate::reclaim::Reclaimer;
use crate::scope::Scope;
use crate::{Error, Result};
use polyload_ffi::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

struct Loaded {
    /// Load order (interfaces resolve to the first loaded provider).
    seq: u64,
    manifest: Manifest,
    loader: Arc<dyn BundleLoader>,
    source: BundleSource,
    instance: Option<Box<dyn BundleInstance>>,
}

/// A bundle id in the runtime: reserved while its first load runs (so two
/// threads loading one id cannot both pass the "already loaded" check),
/// then live.
enum Record {
    /// A load of this manifest is building or loading it.
    Loading(Manifest),
    /// Published.
    Live(Loaded),
}

impl Record {
    fn manifest(&self) -> &Manifest {
        match self {
            Record::Loading(m) => m,
            Record::Live(l) => &l.manifest,
        }
    }

    fn live(&self) -> Option<&Loaded> {
        match self {
            Record::Live(l) => Some(l),
            Record::Loading(_) => None,
        }
    }
}

struct Inner {
    subscribers: crate::reload::Subscribers,
    reload_lock: Mutex<()>,
    namespace: Arc<Namespace>,
    reclaimer: Arc<Reclaimer>,
    loaders: RwLock<HashMap<&'static str, Arc<dyn BundleLoader>>>,
    loader_hints: HashMap<String, String>,
    load_seq: std::sync::atomic::AtomicU64,
    bundles: Mutex<BTreeMap<String, Record>>,
    cache_dir: PathBuf,
    on_build: Mutex<Option<BuildHook>>,
}

impl Drop for Inner {
    /// The last `Runtime` is gone: every bundle is unpublished (handles
    /// answer [`Error::Stale`] from now on) and its code retired through the
    /// reclaimer, so a call in flight on another thread finishes on mapped
    /// code; the namespace follows, since C slots of those versions point
    /// into its cells.
    fn drop(&mut self) {
        let bundles = std::mem::take(self.bundles.get_mut().unwrap_or_else(|e| e.into_inner()));
        for (id, record) in bundles {
            if let Record::Live(mut l) = record {
                let retired = RetiredInstance(l.loader.clone(), l.instance.take());
                self.namespace.unpublish(&id, Some(Box::new(retired)));
            }
        }
        self.reclaimer
            .retire("namespace", Box::new(self.namespace.clone()));
    }
}

/// A loaded bundle, as listed by [`Runtime::bundles`].
#[derive(Clone, Debug)]
pub struct BundleInfo {
    /// The manifest it was loaded from.
    pub manifest: Manifest,
    /// Generation of the live version (1 = first load).
    pub generation: u64,
}

/// Retired bundle version: the loader releases the instance after its
/// grace period.
struct RetiredInstance(Arc<dyn BundleLoader>, Option<Box<dyn BundleInstance>>);
impl Drop for RetiredInstance {
    fn drop(&mut self) {
        if let Some(i) = self.1.take() {
            self.0.unload(i);
        }
    }
}

/// The polyload runtime: a namespace of definitions and the bundles that
/// provide them.
///
/// ```
/// # fn main() -> polyload::Result<()> {
/// # std::env::set_current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).unwrap();
/// use polyload::{Runtime, Value};
/// let rt = Runtime::new()?;
/// rt.load_bundle("examples/bundles/hello")?;      // builds what needs building
/// let add = rt.function::<extern "C" fn(i64, i64) -> i64>("hello.add")?;
/// assert_eq!(add.call((2, 40))?, 42);
/// assert_eq!(rt.call("hello.add", &[Value::I64(2), Value::I64(40)])?, Value::I64(42));
/// # Ok(()) }
/// ```
///
/// `Runtime` is cheap to clone (an `Arc`) and thread-safe.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

/// A reference to a runtime that does not keep it alive (watchers).
#[derive(Clone)]
pub(crate) struct WeakRuntime(std::sync::Weak<Inner>);

impl WeakRuntime {
    pub(crate) fn upgrade(&self) -> Option<Runtime> {
        self.0.upgrade().map(|inner| Runtime { inner })
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("cache_dir", &self.inner.cache_dir)
            .field("bundles", &self.bundle_ids())
            .finish()
    }
}

impl Runtime {
    /// A runtime with default settings (see [`RuntimeBuilder`]).
    ///
    /// # Errors
    /// As [`RuntimeBuilder::build`].
    pub fn new() -> Result<Runtime> {
        Self::builder().build()
    }

    /// Starts configuring a runtime.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::new()
    }

    pub(crate) fn downgrade(&self) -> WeakRuntime {
        WeakRuntime(Arc::downgrade(&self.inner))
    }

    pub(crate) fn namespace(&self) -> &Arc<Namespace> {
        &self.inner.namespace
    }

    /// The definition `bundle.function`, if it is published.
    pub fn definition(&self, name: &str) -> Option<DefinitionInfo> {
        self.inner.namespace.definition(name)
    }

    /// The bundle that provides interface `name@MAJOR.MINOR` (manifest
    /// `provides`): the first loaded bundle providing `name` at a version
    /// that satisfies the request by the ABI rule (major equal, provided
    /// minor >= requested).
    ///
    /// ```
    /// # std::env::set_current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).unwrap();
    /// let rt = polyload::Runtime::new()?;
    /// rt.load_bundle("examples/bundles/hello")?;        // provides = ["greeter@1.2"]
    /// assert_eq!(rt.resolve("greeter@1.0")?, "hello");
    /// assert!(rt.resolve("greeter@1.3").is_err());        // needs a newer minor
    /// assert!(rt.resolve("greeter@2.0").is_err());        // another major
    /// # Ok::<(), polyload::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NoProvider`] when no loaded bundle qualifies, or the request
    /// is not of the form `name@MAJOR.MINOR`.
    pub fn resolve(&self, interface: &str) -> Result<String> {
        let no = || Error::NoProvider {
            interface: interface.to_string(),
        };
        let (name, version) = interface.split_once('@').ok_or_else(no)?;
        let want: polyload_abi::AbiVersion = version.parse().map_err(|_| no())?;
        let bundles = self.lock();
        bundles
            .values()
            .filter_map(Record::live)
            .filter(|l| {
                l.manifest
                    .provides
                    .iter()
                    .any(|p| p.name == name && p.version.is_compatible_with(want))
            })
            .min_by_key(|l| l.seq)
            .map(|l| l.manifest.id.clone())
            .ok_or_else(no)
    }

    /// Generation of bundle `id`'s live version (1 = first load), if it is
    /// loaded.
    pub fn generation(&self, id: &str) -> Option<u64> {
        self.inner.namespace.generation(id)
    }

    /// The build cache directory.
    pub fn cache_dir(&self) -> &Path {
        &self.inner.cache_dir
    }

    /// Ids of the loaded bundles, sorted.
    pub fn bundle_ids(&self) -> Vec<String> {
        self.lock()
            .values()
            .filter_map(Record::live)
            .map(|l| l.manifest.id.clone())
            .collect()
    }

    /// The loaded bundles, sorted by id.
    pub fn bundles(&self) -> Vec<BundleInfo> {
        self.lock()
            .values()
            .filter_map(Record::live)
            .map(|l| BundleInfo {
                manifest: l.manifest.clone(),
                generation: self.inner.namespace.generation(&l.manifest.id).unwrap_or(0),
            })
            .collect()
    }

    /// Every published definition, sorted by name.
    pub fn definitions(&self) -> Vec<DefinitionInfo> {
        self.inner.namespace.definitions()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Record>> {
        self.inner.bundles.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Id and version of every live bundle.
    fn live_versions(&self) -> HashMap<String, semver::Version> {
        self.lock()
            .values()
            .filter_map(Record::live)
            .map(|l| (l.manifest.id.clone(), l.manifest.version.clone()))
            .collect()
    }

    /// Releases a bundle version that was never published (a load or
    /// reload that failed after the loader ran) through the reclaimer like
    /// any other: its initialiser ran and may have left threads in its code.
    pub(crate) fn discard(&self, loader: Arc<dyn BundleLoader>, instance: Box<dyn BundleInstance>) {
        self.inner.reclaimer.retire(
            "unpublished bundle version",
            Box::new(RetiredInstance(loader, Some(instance))),
        );
    }

    /// A typed handle to `bundle.function`, checked against its signature.
    ///
    /// # Errors
    /// [`Error::NotFound`] if nothing by that name is defined;
    /// [`Error::SignatureMismatch`] if `F` does not match its signature.
    pub fn function<F: CFunction>(&self, name: &str) -> Result<Function<F>> {
        let r = self.inner.namespace.resolve(name)?;
        Function::new(r.slot, name, &r.signature, r.dynamic)
    }

    /// A dynamic handle to `bundle.function`: the name is resolved once, and
    /// each [`DynamicFunction::call`] converts its [`Value`]s by the
    /// definition's signature. Follows reloads like [`Function`].
    ///
    /// # Errors
    /// [`Error::NotFound`] if nothing by that name is defined.
    pub fn dynamic(&self, name: &str) -> Result<DynamicFunction> {
        let r = self.inner.namespace.resolve(name)?;
        Ok(DynamicFunction::new(r.slot, name))
    }

    /// Runs `f` with a [`Scope`]: the thread counts as inside a polyload
    /// call until `f` returns, so typed calls made with
    /// [`Function::call_in`] skip the per-call bookkeeping (hot loops).
    /// Versions retired while the scope is open are freed after it ends.
    pub fn enter<R>(&self, f: impl FnOnce(&Scope<'_>) -> R) -> R {
        Scope::run(f)
    }

    /// Calls `bundle.function` with dynamically typed arguments, converted
    /// by its signature. The name is found without a lock (in a directory
    /// of names replaced on every publish), so calls from many threads do
    /// not contend; a [`DynamicFunction`] skips even that lookup.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown name; [`Error::Stale`] when its
    /// bundle is not loaded; [`Error::Call`] for arguments that do not fit
    /// the signature; [`Error::Guest`] when the guest reports an error.
    pub fn call(&self, name: &str, args: &[Value]) -> Result<Value> {
        self.inner.namespace.call(name, args)
    }

    pub(crate) fn subscribers(&self) -> &crate::reload::Subscribers {
        &self.inner.subscribers
    }

    pub(crate) fn reload_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.inner
            .reload_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Frees retired code whose grace period has ended, waiting up to
    /// `timeout`; returns how many retired versions are still pending.
    pub fn collect_garbage(&self, timeout: Duration) -> usize {
        self.inner.reclaimer.wait_idle(timeout)
    }
}
