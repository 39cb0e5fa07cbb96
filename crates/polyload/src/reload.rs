//! Hot reload: replace a live bundle without dropping a call.
//!
//! [`Runtime::reload`] runs these steps; a failure at any of them returns an
//! error and leaves the old version serving, untouched:
//!
//! 1. re-read the manifest and rebuild the artifact if its sources changed;
//! 2. load the new version beside the old, from a shadow copy of the
//!    artifact (the native loader never `dlopen`s the original path, so the
//!    OS loader's cache cannot hand back the old code);
//! 3. check its ABI version and its definitions against the manifest, and
//!    refuse a changed signature unless [`ReloadOptions::allow_signature_change`];
//! 4. run its init into a staging area and carry the old version's state
//!    over (`polyload_state_save` / `polyload_state_restore`);
//! 5. publish every definition of the bundle at once: one atomic store of
//!    the bundle's code table, so a caller never sees half old, half new;
//!    slots and handles stay valid and follow the new code;
//! 6. retire the old version: it is unmapped once no thread can be inside
//!    it (the runtime's reclaimer; see `ARCHITECTURE.md`).
//!
//! Calls in flight finish on the version they started on.

use crate::loader::BundleSource;
use crate::manifest::Manifest;
use crate::{Error, Result, Runtime};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Something that happened to a bundle, for subscribers
/// ([`Runtime::subscribe`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Files of a loaded bundle changed ([`Runtime::watch`]); a reload
    /// follows.
    Changed {
        /// Bundle id.
        bundle: String,
        /// The changed files, relative to the bundle directory.
        paths: Vec<std::path::PathBuf>,
    },
    /// A reload started.
    Preparing {
        /// Bundle id.
        bundle: String,
    },
    /// A bundle was loaded for the first time (or again after an unload).
    Loaded {
        /// Bundle id.
        bundle: String,
        /// Its generation.
        generation: u64,
    },
    /// A new version is live.
    Reloaded {
        /// Bundle id.
        bundle: String,
        /// The new generation.
        generation: u64,
        /// Time spent building (zero when the cached artifact was current).
        build: Duration,
        /// Time from start to publish, build included.
        total: Duration,
        /// Whether state was carried over from the old version.
        state_carried: bool,
    },
    /// A reload failed; the old version keeps serving.
    Failed {
        /// Bundle id.
        bundle: String,
        /// The error, as text.
        error: String,
    },
    /// A bundle was unloaded.
    Unloaded {
        /// Bundle id.
        bundle: String,
    },
}

/// Options for [`Runtime::reload_with`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReloadOptions {
    /// Accept a changed signature of an existing export. Typed handles and C
    /// slots made for the old signature then report a stale handle instead
    /// of calling the new code with the wrong types.
    pub allow_signature_change: bool,
}

impl ReloadOptions {
    /// Allows signature changes (builder style).
    pub fn allow_signature_change(mut self, yes: bool) -> Self {
        self.allow_signature_change = yes;
        self
    }
}

/// Event subscribers; senders whose receiver is gone are dropped.
#[derive(Default)]
pub(crate) struct Subscribers(Mutex<Vec<Sender<Event>>>);

impl Subscribers {
    pub(crate) fn subscribe(&self) -> Receiver<Event> {
        let (tx, rx) = channel();
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(tx);
        rx
    }

    pub(crate) fn emit(&self, e: Event) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|tx| tx.send(e.clone()).is_ok());
    }
}

impl Runtime {
    /// Receives every [`Event`] from now on.
    pub fn subscribe(&self) -> Receiver<Event> {
        self.subscribers().subscribe()
    }

    /// Replaces bundle `id` with the current version of its artifact
    /// (rebuilt first if its sources changed). See the [module docs](self).
    /// Returns the new generation.
    ///
    /// # Errors
    /// [`Error::NotLoaded`]; any error of loading (build, I/O, ABI, init,
    /// exports); [`Error::SignatureChange`]. On error the old version keeps
    /// serving.
    pub fn reload(&self, id: &str) -> Result<u64> {
        self.reload_with(id, ReloadOptions::default())
    }

    /// [`Runtime::reload`] with options.
    ///
    /// # Errors
    /// As [`Runtime::reload`].
    pub fn reload_with(&self, id: &str, options: ReloadOptions) -> Result<u64> {
        self.reload_inner(id, options, None)
    }

    /// Replaces bundle `id` with a version loaded from `source` (code or
    /// bytes held in memory, or another file), as [`Runtime::reload`] does
    /// otherwise: checked, published at once, the old version kept on any
    /// failure. Later reloads reuse `source`.
    ///
    /// # Errors
    /// As [`Runtime::reload`].
    pub fn reload_from(&self, id: &str, source: BundleSource) -> Result<u64> {
        self.reload_inner(id, ReloadOptions::default(), Some(source))
    }

    fn reload_inner(
        &self,
        id: &str,
        options: ReloadOptions,
        source: Option<BundleSource>,
    ) -> Result<u64> {
        let _one_at_a_time = self.reload_lock();
        self.subscribers().emit(Event::Preparing {
            bundle: id.to_string(),
        });
        let start = Instant::now();
        match self.try_reload(id, options, source, start) {
            Ok(ev) => {
                let generation = match &ev {
                    Event::Reloaded { generation, .. } => *generation,
                    _ => 0,
                };
                tracing::info!(bundle = %id, generation, "reloaded");
                self.subscribers().emit(ev);
                Ok(generation)
            }
            Err(e) => {
                tracing::warn!(bundle = %id, "reload failed, old version still live: {e}");
                self.subscribers().emit(Event::Failed {
                    bundle: id.to_string(),
                    error: e.to_string(),
                });
                Err(e)
            }
        }
    }

    fn try_reload(
        &self,
        id: &str,
        options: ReloadOptions,
        new_source: Option<BundleSource>,
        start: Instant,
    ) -> Result<Event> {
        let (old_manifest, loader, old_source) = self.loaded_parts(id)?;
        if !loader.supports_hot_reload() {
            return Err(Error::Unsupported(format!(
                "bundle `{id}`: the `{}` loader does not support hot reload",
                loader.loader_name()
            )));
        }
        // The manifest may have changed too (a new export).
        let manifest = if old_manifest.path.is_file() {
            let m = Manifest::from_dir(old_manifest.dir())?;
            if m.id != id {
                return Err(Error::Unsupported(format!(
                    "bundle `{id}`: its manifest now says id `{}`; unload it and load the new bundle instead",
                    m.id
                )));
            }
            self.expand(m)?
        } else {
            old_manifest
        };
        let source = match (new_source, &old_source) {
            (Some(given), _) => given,
            (None, BundleSource::Path(_)) if manifest.path.is_file() => {
                BundleSource::Path(manifest.dir().join(&manifest.file))
            }
            (None, other) => other.clone(),
        };
        let build_start = Instant::now();
        let (source, artifact) = self.prepare_source(&manifest, source)?;
        let build = if manifest.build.is_some() {
            build_start.elapsed()
        } else {
            Duration::ZERO
        };
        let loaded = self.run_loader(&loader, &manifest, &source, artifact.as_ref(), true)?;
        let instance = loaded.instance;
        let checked = crate::runtime::check_exports(&manifest, loaded.exports).and_then(|defs| {
            if options.allow_signature_change {
                return Ok(defs);
            }
            match self
                .namespace()
                .signature_changes(id, &defs)
                .into_iter()
                .next()
            {
                Some((name, old, new)) => Err(Error::SignatureChange {
                    bundle: id.to_string(),
                    name,
                    old: Box::new(old),
                    new: Box::new(new),
                }),
                None => Ok(defs),
            }
        });
        let defs = match checked {
            Ok(defs) => defs,
            Err(e) => {
                self.discard(loader, instance);
                return Err(e);
            }
        };
        let (generation, state_carried) =
            self.swap_in(id, &loader, manifest, source, defs, instance)?;
        Ok(Event::Reloaded {
            bundle: id.to_string(),
            generation,
            build,
            total: start.elapsed(),
            state_carried,
        })
    }
}
