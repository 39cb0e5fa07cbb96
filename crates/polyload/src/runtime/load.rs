//! Loading: bundle directories, manifests, builds, and the swap that
//! publishes a new version.

use super::scan::{missing_dep, scan_dir_lenient};
use super::{check_exports, dependency_order, scan_dir, Loaded, Record, RetiredInstance, Runtime};
use crate::builder::{Artifact, BuildEvent};
use crate::loader::{BundleInstance, BundleLoader, BundleSource, LoadContext, LoadedBundle};
use crate::manifest::Manifest;
use crate::namespace::NewDefinition;
use crate::{Error, Result};
use std::path::Path;
use std::sync::Arc;

impl Runtime {
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
    /// As [`crate::builder::ensure_artifact`] and [`crate::rimport::prepare`].
    pub fn build(&self, manifest: &Manifest) -> Result<Artifact> {
        if manifest.rimport.is_some() && manifest.build.is_none() {
            let expanded = self.expand(manifest.clone())?;
            return self.build(&expanded);
        }
        self.with_build_events(|sink| {
            crate::builder::ensure_artifact(manifest, &self.inner.cache_dir, sink)
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
}
