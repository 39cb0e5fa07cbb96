//! The runtime: loads bundles into a namespace and hands out handles.

use crate::builder::{self, Artifact, BuildEvent};
use crate::function::{CFunction, DynamicFunction, Function, Scope};
use crate::loader::{
    BundleInstance, BundleLoader, BundleSource, ExportEntry, LoadContext, LoadedBundle,
};
use crate::manifest::Manifest;
use crate::namespace::{CodePtr, DefinitionInfo, Invoke, Namespace, NewDefinition};
use crate::native::NativeLoader;
use crate::reclaim::Reclaimer;
use crate::{Error, ExportProblem, Result};
use polyload_ffi::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

type BuildHook = Box<dyn FnMut(BuildEvent) + Send>;

/// Configures a [`Runtime`].
pub struct RuntimeBuilder {
    cache_dir: Option<PathBuf>,
    loaders: Vec<Arc<dyn BundleLoader>>,
    loader_hints: HashMap<String, String>,
    on_build: Option<BuildHook>,
}

impl std::fmt::Debug for RuntimeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeBuilder")
            .field("cache_dir", &self.cache_dir)
            .finish()
    }
}

/// The environment variable that sets the default build cache directory.
pub const CACHE_DIR_ENV: &str = "POLYLOAD_CACHE_DIR";

impl RuntimeBuilder {
    /// Where built artifacts, shadow copies and package installs go.
    /// Default: `$POLYLOAD_CACHE_DIR`, else `target/polyload` under the
    /// current directory.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Registers a loader (replacing one with the same name). The `native`
    /// loader is always registered.
    pub fn loader(mut self, loader: impl BundleLoader + 'static) -> Self {
        self.loaders.push(Arc::new(loader));
        self
    }

    /// What to tell a user whose bundle needs loader `name` when it is not
    /// registered (how to get it, e.g. "rebuild polyload-cli with the `lua`
    /// feature"); appended to [`Error::UnknownLoader`].
    pub fn loader_hint(mut self, name: impl Into<String>, hint: impl Into<String>) -> Self {
        self.loader_hints.insert(name.into(), hint.into());
        self
    }

    /// Receives build progress (e.g. to show it in a terminal).
    pub fn on_build(mut self, f: impl FnMut(BuildEvent) + Send + 'static) -> Self {
        self.on_build = Some(Box::new(f));
        self
    }

    /// Creates the runtime.
    ///
    /// # Errors
    /// [`Error::Io`] if the cache directory cannot be made absolute.
    pub fn build(self) -> Result<Runtime> {
        let cache_dir = match self
            .cache_dir
            .or_else(|| std::env::var_os(CACHE_DIR_ENV).map(PathBuf::from))
        {
            Some(d) => d,
            None => PathBuf::from("target").join("polyload"),
        };
        let cache_dir = if cache_dir.is_absolute() {
            cache_dir
        } else {
            std::env::current_dir()
                .map_err(|e| Error::io(".", e))?
                .join(cache_dir)
        };
        let reclaimer = Arc::new(Reclaimer::default());
        let mut loaders: HashMap<&'static str, Arc<dyn BundleLoader>> = HashMap::new();
        loaders.insert("native", Arc::new(NativeLoader));
        for l in self.loaders {
            loaders.insert(l.loader_name(), l);
        }
        Ok(Runtime {
            inner: Arc::new(Inner {
                subscribers: Default::default(),
                reload_lock: Mutex::new(()),
                namespace: Arc::new(Namespace::new(reclaimer.clone())),
                reclaimer,
                loaders: RwLock::new(loaders),
                loader_hints: self.loader_hints,
                load_seq: Default::default(),
                bundles: Mutex::new(BTreeMap::new()),
                cache_dir,
                on_build: Mutex::new(self.on_build),
            }),
        })
    }
}

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
        RuntimeBuilder {
            cache_dir: None,
            loaders: Vec::new(),
            loader_hints: HashMap::new(),
            on_build: None,
        }
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

    /// Loads `dir`: the bundle in it if it has a `manifest.toml`, otherwise
    /// every bundle in its immediate subdirectories, in dependency order.
    /// Bundles with a `[build]` section are built first when needed.
    /// Returns the ids loaded, in load order.
    ///
    /// Bundles loaded before a failure stay loaded.
    ///
    /// # Errors
    /// [`Error::Manifest`] for a malformed manifest, [`Error::DependencyCycle`],
    /// [`Error::MissingDependency`], and any error of [`Runtime::load_manifest`].
    pub fn load_dir(&self, dir: impl AsRef<Path>) -> Result<Vec<String>> {
        let manifests = scan_dir(dir.as_ref())?;
        let loaded = self.live_versions();
        let order = dependency_order(&manifests, &loaded)?;
        let mut ids = Vec::new();
        for i in order {
            let m = &manifests[i];
            let source = BundleSource::Path(m.dir().join(&m.file));
            self.load_manifest(m.clone(), source)?;
            ids.push(m.id.clone());
        }
        Ok(ids)
    }

    /// Loads the bundle in `dir`, first loading the dependencies it names
    /// that are not loaded yet from sibling directories (`dir/..`).
    /// Returns the ids loaded, in load order.
    ///
    /// # Errors
    /// As [`Runtime::load_dir`].
    pub fn load_bundle(&self, dir: impl AsRef<Path>) -> Result<Vec<String>> {
        let dir = dir.as_ref();
        let target = Manifest::from_dir(dir)?;
        let loaded = self.live_versions();
        let needs_siblings = target
            .dependencies
            .iter()
            .any(|d| !loaded.contains_key(&d.id));
        let (siblings, mut broken) = match dir.parent() {
            Some(p) if needs_siblings => scan_dir_lenient(p)?,
            _ => (Vec::new(), Vec::new()),
        };
        // The dependency closure of the target among the siblings.
        let mut wanted = vec![target];
        let mut i = 0;
        while i < wanted.len() {
            let deps: Vec<String> = wanted[i]
                .dependencies
                .iter()
                .map(|d| d.id.clone())
                .collect();
            for d in deps {
                if loaded.contains_key(&d) || wanted.iter().any(|w| w.id == d) {
                    continue;
                }
                match siblings.iter().find(|m| m.id == d) {
                    Some(m) => wanted.push(m.clone()),
                    // A malformed sibling may be the very dependency that is
                    // "not present": report it as what it is (the one in a
                    // directory named after the dependency first).
                    None if !broken.is_empty() => {
                        let pick = broken
                            .iter()
                            .position(|(dir, _)| dir.file_name().is_some_and(|n| *n == *d))
                            .unwrap_or(0);
                        return Err(broken.swap_remove(pick).1);
                    }
                    None => {}
                }
            }
            i += 1;
        }
        let order = dependency_order(&wanted, &loaded)?;
        let mut ids = Vec::new();
        for i in order {
            let m = &wanted[i];
            self.load_manifest(m.clone(), BundleSource::Path(m.dir().join(&m.file)))?;
            ids.push(m.id.clone());
        }
        Ok(ids)
    }

    /// Builds `manifest`'s artifact if it has a `[build]` section (or is a
    /// `[rimport]` bundle, whose crate is generated first) and the cache
    /// has no artifact for its current inputs; returns the artifact.
    ///
    /// # Errors
    /// As [`builder::ensure_artifact`] and [`crate::rimport::prepare`].
    pub fn build(&self, manifest: &Manifest) -> Result<Artifact> {
        if manifest.rimport.is_some() && manifest.build.is_none() {
            let expanded = self.expand(manifest.clone())?;
            return self.build(&expanded);
        }
        self.with_build_events(|sink| {
            builder::ensure_artifact(manifest, &self.inner.cache_dir, sink)
        })
    }

    /// Runs `f` with a sink that passes build events to the `on_build` hook.
    fn with_build_events<R>(&self, f: impl FnOnce(&mut dyn FnMut(BuildEvent)) -> R) -> R {
        let mut hook = self
            .inner
            .on_build
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        f(&mut |e: BuildEvent| {
            if let Some(h) = hook.as_mut() {
                h(e);
            }
        })
    }

    /// A `[rimport]` manifest with its generated crate's exports and build
    /// filled in ([`crate::rimport::prepare`]); any other, unchanged.
    pub(crate) fn expand(&self, manifest: Manifest) -> Result<Manifest> {
        if manifest.rimport.is_none() {
            return Ok(manifest);
        }
        #[cfg(feature = "rimport")]
        {
            self.with_build_events(|sink| {
                crate::rimport::prepare(manifest, &self.inner.cache_dir, sink)
            })
        }
        #[cfg(not(feature = "rimport"))]
        Err(Error::Unsupported(format!(
            "bundle `{}` is a [rimport] bundle, and this polyload was built without the `rimport` feature",
            manifest.id
        )))
    }

    /// Loads one bundle from its manifest. For a [`BundleSource::Path`] of a
    /// bundle with a `[build]` section the artifact is built (or taken from
    /// the cache) first and the path is ignored.
    ///
    /// # Errors
    /// [`Error::AlreadyLoaded`] or [`Error::Duplicate`] if the id is taken,
    /// [`Error::MissingDependency`], [`Error::UnknownLoader`], build errors,
    /// the loader's errors, and [`Error::Exports`] when the definitions differ
    /// from the manifest's `[exports]`.
    pub fn load_manifest(&self, manifest: Manifest, source: BundleSource) -> Result<()> {
        let id = manifest.id.clone();
        self.reserve(&manifest)?;
        // Released on every way out that does not publish (errors, panics).
        struct Reservation<'a>(&'a Runtime, &'a str, bool);
        impl Drop for Reservation<'_> {
            fn drop(&mut self) {
                if !self.2 {
                    self.0.lock().remove(self.1);
                }
            }
        }
        let mut reservation = Reservation(self, &id, false);
        let manifest = self.expand(manifest)?;
        let loader = self.loader_for(&manifest)?;
        let (source, artifact) = self.prepare_source(&manifest, source)?;
        let loaded = self.run_loader(&loader, &manifest, &source, artifact.as_ref(), false)?;
        let LoadedBundle { exports, instance } = loaded;
        let defs = match check_exports(&manifest, exports) {
            Ok(d) => d,
            Err(e) => {
                self.discard(loader, instance);
                return Err(e);
            }
        };
        let generation = {
            let mut bundles = self.lock();
            let generation = self.inner.namespace.publish(&id, defs, None);
            bundles.insert(
                id.clone(),
                Record::Live(Loaded {
                    seq: self
                        .inner
                        .load_seq
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                    manifest,
                    loader,
                    source,
                    instance: Some(instance),
                }),
            );
            reservation.2 = true;
            generation
        };
        tracing::info!(bundle = %id, generation, "loaded");
        self.inner.subscribers.emit(crate::reload::Event::Loaded {
            bundle: id.clone(),
            generation,
        });
        Ok(())
    }

    /// Reserves `manifest.id` for a load, after checking that it is free and
    /// that its dependencies are live.
    fn reserve(&self, manifest: &Manifest) -> Result<()> {
        let id = &manifest.id;
        let mut bundles = self.lock();
        if let Some(r) = bundles.get(id) {
            let other = r.manifest();
            if other.dir() == manifest.dir() {
                return Err(Error::AlreadyLoaded {
                    bundle: id.clone(),
                    path: other.dir().to_path_buf(),
                });
            }
            let first_export = other
                .exports
                .first()
                .map_or("*".to_string(), |e| e.name.clone());
            return Err(Error::Duplicate {
                name: format!("{id}.{first_export}"),
                bundle: id.clone(),
                first: other.dir().to_path_buf(),
                second: manifest.dir().to_path_buf(),
            });
        }
        for dep in &manifest.dependencies {
            match bundles.get(&dep.id).and_then(Record::live) {
                Some(l) if dep.version.matches(&l.manifest.version) => {}
                Some(l) => return Err(missing_dep(manifest, dep, Some(&l.manifest.version))),
                None => return Err(missing_dep(manifest, dep, None)),
            }
        }
        bundles.insert(id.clone(), Record::Loading(manifest.clone()));
        Ok(())
    }

    fn loader_for(&self, manifest: &Manifest) -> Result<Arc<dyn BundleLoader>> {
        let loaders = self.inner.loaders.read().unwrap_or_else(|e| e.into_inner());
        let loader = loaders
            .get(manifest.loader.as_str())
            .cloned()
            .ok_or_else(|| {
                let mut available: Vec<String> = loaders.keys().map(|k| k.to_string()).collect();
                available.sort_unstable();
                Error::UnknownLoader {
                    bundle: manifest.id.clone(),
                    loader: manifest.loader.clone(),
                    available,
                    hint: self.inner.loader_hints.get(&manifest.loader).cloned(),
                }
            })?;
        // Every [section] must be one a registered loader reads.
        for (section, line) in manifest.sections() {
            if !loaders.values().any(|l| l.sections().contains(&section)) {
                let mut read: Vec<&str> = loaders
                    .values()
                    .flat_map(|l| l.sections())
                    .copied()
                    .collect();
                read.sort_unstable();
                return Err(Error::Manifest {
                    path: manifest.path.clone(),
                    line,
                    field: section.to_string(),
                    message: format!(
                        "[{section}] is not a section any registered loader reads (they read: {})",
                        if read.is_empty() {
                            "none".to_string()
                        } else {
                            read.join(", ")
                        }
                    ),
                });
            }
        }
        Ok(loader)
    }

    pub(crate) fn prepare_source(
        &self,
        manifest: &Manifest,
        source: BundleSource,
    ) -> Result<(BundleSource, Option<Artifact>)> {
        if !matches!(source, BundleSource::Path(_)) || manifest.build.is_none() {
            return Ok((source, None));
        }
        let artifact = self
            .build(manifest)
            .map_err(|e| match (e, &manifest.build) {
                // A generated crate that does not build: say where it is, so
                // the compiler's `src/lib.rs:LINE` can be found.
                (
                    Error::Build {
                        bundle,
                        command,
                        status,
                        output,
                    },
                    Some(crate::manifest::BuildSpec::Cargo { dir, .. }),
                ) if manifest.rimport.is_some() => Error::Build {
                    bundle,
                    command,
                    status,
                    output: format!(
                    "{output}\n(the generated crate: {}; its src/lib.rs is the file named above)",
                    dir.display()
                ),
                },
                (e, _) => e,
            })?;
        Ok((BundleSource::Path(artifact.path.clone()), Some(artifact)))
    }

    pub(crate) fn run_loader(
        &self,
        loader: &Arc<dyn BundleLoader>,
        manifest: &Manifest,
        source: &BundleSource,
        artifact: Option<&Artifact>,
        reload: bool,
    ) -> Result<LoadedBundle> {
        let cache_dir = self.inner.cache_dir.join(&manifest.id);
        let cx = LoadContext {
            manifest,
            source,
            host: crate::loader::HostCalls::new(&self.inner.namespace),
            cache_dir: &cache_dir,
            built_profile: artifact.and_then(|a| a.profile),
        };
        if reload {
            loader.reload(&cx)
        } else {
            loader.load(&cx)
        }
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

    /// Unloads a bundle: its definitions become stale at once (handles
    /// answer [`Error::Stale`]), and its code is released when no thread
    /// can be running it.
    ///
    /// # Errors
    /// [`Error::NotLoaded`] (also while its first load is still running);
    /// [`Error::InUse`] if loaded bundles depend on it (see
    /// [`Runtime::unload_cascade`]).
    pub fn unload(&self, id: &str) -> Result<()> {
        let _one_at_a_time = self.reload_lock();
        let dependents = self.dependents(id)?;
        if !dependents.is_empty() {
            return Err(Error::InUse {
                bundle: id.to_string(),
                dependents,
            });
        }
        self.unload_locked(id)
    }

    /// Unloads a bundle and, first, every bundle that depends on it,
    /// transitively. Returns the ids unloaded, in order.
    ///
    /// # Errors
    /// [`Error::NotLoaded`]; [`Error::InUse`] if a dependent is still being
    /// loaded by another thread.
    pub fn unload_cascade(&self, id: &str) -> Result<Vec<String>> {
        let _one_at_a_time = self.reload_lock();
        let mut order = Vec::new();
        self.cascade_order(id, &mut order)?;
        for b in &order {
            self.unload_locked(b)?;
        }
        Ok(order)
    }

    /// `id` after its dependents, depth first.
    fn cascade_order(&self, id: &str, order: &mut Vec<String>) -> Result<()> {
        for d in self.dependents(id)? {
            if !order.contains(&d) {
                self.cascade_order(&d, order)?;
            }
        }
        order.push(id.to_string());
        Ok(())
    }

    /// The bundles (live or being loaded) that depend on live bundle `id`.
    fn dependents(&self, id: &str) -> Result<Vec<String>> {
        let bundles = self.lock();
        if bundles.get(id).and_then(Record::live).is_none() {
            return Err(Error::NotLoaded {
                bundle: id.to_string(),
            });
        }
        Ok(bundles
            .values()
            .map(Record::manifest)
            .filter(|m| m.dependencies.iter().any(|d| d.id == id))
            .map(|m| m.id.clone())
            .collect())
    }

    /// Unloads live bundle `id`; the caller holds the reload lock.
    fn unload_locked(&self, id: &str) -> Result<()> {
        let mut bundles = self.lock();
        if bundles.get(id).and_then(Record::live).is_none() {
            return Err(Error::NotLoaded {
                bundle: id.to_string(),
            });
        }
        let Some(Record::Live(mut l)) = bundles.remove(id) else {
            unreachable!("checked above")
        };
        let instance = l.instance.take();
        self.inner.namespace.unpublish(
            id,
            Some(Box::new(RetiredInstance(l.loader.clone(), instance))),
        );
        drop(bundles);
        tracing::info!(bundle = %id, "unloaded");
        self.inner.subscribers.emit(crate::reload::Event::Unloaded {
            bundle: id.to_string(),
        });
        Ok(())
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

    /// Manifest, loader and source of a loaded bundle.
    pub(crate) fn loaded_parts(
        &self,
        id: &str,
    ) -> Result<(Manifest, Arc<dyn BundleLoader>, BundleSource)> {
        let bundles = self.lock();
        let l = bundles
            .get(id)
            .and_then(Record::live)
            .ok_or_else(|| Error::NotLoaded {
                bundle: id.to_string(),
            })?;
        Ok((l.manifest.clone(), l.loader.clone(), l.source.clone()))
    }

    /// Carries state from the live version into `instance`, publishes `defs`
    /// and retires the old version. Returns the generation and whether state
    /// was carried. On error nothing changes (the new version is discarded
    /// through the reclaimer). The caller holds the reload lock.
    pub(crate) fn swap_in(
        &self,
        id: &str,
        loader: &Arc<dyn BundleLoader>,
        manifest: Manifest,
        source: BundleSource,
        defs: Vec<NewDefinition>,
        instance: Box<dyn BundleInstance>,
    ) -> Result<(u64, bool)> {
        let mut bundles = self.lock();
        let Some(Record::Live(l)) = bundles.get_mut(id) else {
            drop(bundles);
            self.discard(loader.clone(), instance);
            return Err(Error::NotLoaded {
                bundle: id.to_string(),
            });
        };
        let mut instance = Some(instance);
        let carried = (|| {
            let state = match l.instance.as_mut() {
                Some(old) => old.save_state()?,
                None => None,
            };
            if let (Some(state), Some(new)) = (&state, instance.as_mut()) {
                new.restore_state(state)?;
            }
            Ok(state.is_some())
        })();
        let state_carried = match carried {
            Ok(c) => c,
            Err(e) => {
                drop(bundles);
                if let Some(i) = instance {
                    self.discard(loader.clone(), i);
                }
                return Err(e);
            }
        };
        let old = std::mem::replace(&mut l.instance, instance);
        l.manifest = manifest;
        l.source = source;
        let retired: Box<dyn Send> = Box::new(RetiredInstance(l.loader.clone(), old));
        let generation = self.inner.namespace.publish(id, defs, Some(retired));
        Ok((generation, state_carried))
    }

    /// Frees retired code whose grace period has ended, waiting up to
    /// `timeout`; returns how many retired versions are still pending.
    pub fn collect_garbage(&self, timeout: Duration) -> usize {
        self.inner.reclaimer.wait_idle(timeout)
    }
}

fn missing_dep(
    m: &Manifest,
    dep: &crate::manifest::Dependency,
    found: Option<&semver::Version>,
) -> Error {
    Error::MissingDependency {
        bundle: m.id.clone(),
        dependency: dep.id.clone(),
        requirement: dep.version.clone(),
        found: found.cloned(),
    }
}

/// Checks what a loader produced against the manifest and prepares the
/// definitions for publishing.
pub(crate) fn check_exports(
    manifest: &Manifest,
    exports: Vec<crate::loader::Export>,
) -> Result<Vec<NewDefinition>> {
    let problem = |problem: ExportProblem| Error::Exports {
        bundle: manifest.id.clone(),
        manifest: manifest.path.clone(),
        problem: Box::new(problem),
    };
    for decl in &manifest.exports {
        if !exports.iter().any(|e| e.name == decl.name) {
            return Err(problem(ExportProblem::Undefined {
                name: decl.name.clone(),
                line: decl.line,
            }));
        }
    }
    let mut defs = Vec::with_capacity(exports.len());
    for e in exports {
        let Some(decl) = manifest.export(&e.name) else {
            return Err(problem(ExportProblem::Undeclared { name: e.name }));
        };
        if decl.signature != e.signature {
            return Err(problem(ExportProblem::Signature {
                name: e.name,
                line: decl.line,
                declared: decl.signature.clone(),
                defined: e.signature,
            }));
        }
        let (code, invoke, keep) = match e.entry {
            ExportEntry::Native(code) => {
                // A call stub for register-sized scalar shapes, libffi for
                // the rest, prepared once per published version.
                // SAFETY: `code` is the address the bundle registered for
                // exactly this signature (checked against the manifest).
                let call = unsafe {
                    polyload_ffi::CallBuilder::from_ptr(code.0)
                        .signature(&e.signature)
                        .build()
                }
                .map_err(|source| Error::Call {
                    name: format!("{}.{}", manifest.id, e.name),
                    source,
                })?;
                (code, Invoke::Native(Box::new(call)), None)
            }
            ExportEntry::Dynamic(f) => {
                // A C entry point for C callers and typed handles of types that
                // do not convert by value; guest
                // errors land in the calling thread's error flag, as a C
                // bundle's `set_error` would.
                let inner = f.clone();
                let entry = polyload_ffi::Callback::new_with_error_hook(
                    &e.signature,
                    move |args| inner(args).map_err(|e| e.to_string()),
                    crate::host::set_error,
                )
                .map_err(|source| Error::Call {
                    name: format!("{}.{}", manifest.id, e.name),
                    source,
                })?;
                let code = CodePtr(entry.code_ptr());
                let keep: Box<dyn Send + Sync> = Box::new(entry);
                (code, Invoke::Dynamic(f), Some(keep))
            }
        };
        defs.push(NewDefinition {
            name: e.name,
            signature: e.signature,
            code,
            invoke,
            keep,
        });
    }
    Ok(defs)
}

/// The manifests in `dir`: its own if it is a bundle, else those of its
/// immediate subdirectories, sorted by directory name.
///
/// # Errors
/// [`Error::Io`] if `dir` cannot be read; [`Error::Manifest`] for the first
/// malformed manifest.
pub fn scan_dir(dir: &Path) -> Result<Vec<Manifest>> {
    let (good, bad) = scan_dir_lenient(dir)?;
    match bad.into_iter().next() {
        Some((_, e)) => Err(e),
        None => Ok(good),
    }
}

/// A bundle directory whose manifest did not parse, with the error.
type Malformed = (PathBuf, Error);

/// Like [`scan_dir`], but a malformed manifest does not stop the scan: the
/// good manifests, and each bad one's directory with its error.
fn scan_dir_lenient(dir: &Path) -> Result<(Vec<Manifest>, Vec<Malformed>)> {
    if dir.join("manifest.toml").is_file() {
        return Ok((vec![Manifest::from_dir(dir)?], Vec::new()));
    }
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut dirs: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("manifest.toml").is_file())
        .collect();
    dirs.sort();
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for d in dirs {
        match Manifest::from_dir(&d) {
            Ok(m) => good.push(m),
            Err(e) => bad.push((d, e)),
        }
    }
    Ok((good, bad))
}

/// Indexes of `manifests` in an order where each bundle's dependencies come
/// first (ties by id). Dependencies may also be satisfied by `loaded`.
pub(crate) fn dependency_order(
    manifests: &[Manifest],
    loaded: &HashMap<String, semver::Version>,
) -> Result<Vec<usize>> {
    let by_id: HashMap<&str, usize> = manifests
        .iter()
        .enumerate()
        .map(|(i, m)| (m.id.as_str(), i))
        .collect();
    for m in manifests {
        for d in &m.dependencies {
            match (by_id.get(d.id.as_str()), loaded.get(&d.id)) {
                (Some(&i), _) if d.version.matches(&manifests[i].version) => {}
                (None, Some(v)) if d.version.matches(v) => {}
                (Some(&i), _) => return Err(missing_dep(m, d, Some(&manifests[i].version))),
                (None, found) => return Err(missing_dep(m, d, found)),
            }
        }
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(
        i: usize,
        ms: &[Manifest],
        by_id: &HashMap<&str, usize>,
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
        out: &mut Vec<usize>,
    ) -> Result<()> {
        match marks[i] {
            Mark::Done => return Ok(()),
            Mark::Active => {
                let start = stack.iter().position(|&s| s == i).unwrap_or(0);
                let mut cycle: Vec<String> =
                    stack[start..].iter().map(|&s| ms[s].id.clone()).collect();
                cycle.push(ms[i].id.clone());
                return Err(Error::DependencyCycle { cycle });
            }
            Mark::New => {}
        }
        marks[i] = Mark::Active;
        stack.push(i);
        let mut deps: Vec<usize> = ms[i]
            .dependencies
            .iter()
            .filter_map(|d| by_id.get(d.id.as_str()).copied())
            .collect();
        deps.sort_by(|a, b| ms[*a].id.cmp(&ms[*b].id));
        for d in deps {
            visit(d, ms, by_id, marks, stack, out)?;
        }
        stack.pop();
        marks[i] = Mark::Done;
        out.push(i);
        Ok(())
    }
    let mut ids: Vec<usize> = (0..manifests.len()).collect();
    ids.sort_by(|a, b| manifests[*a].id.cmp(&manifests[*b].id));
    let mut marks = vec![Mark::New; manifests.len()];
    let mut out = Vec::new();
    for i in ids {
        visit(i, manifests, &by_id, &mut marks, &mut Vec::new(), &mut out)?;
    }
    Ok(out)
}
