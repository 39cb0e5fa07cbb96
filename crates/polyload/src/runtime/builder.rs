//! [`RuntimeBuilder`]: how a [`Runtime`] is configured.

use super::{Inner, Runtime};
use crate::builder::BuildEvent;
use crate::loader::BundleLoader;
use crate::namespace::Namespace;
use crate::native::NativeLoader;
use crate::reclaim::Reclaimer;
use crate::{Error, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

pub(super) type BuildHook = Box<dyn FnMut(BuildEvent) + Send>;

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
    pub(super) fn new() -> Self {
        RuntimeBuilder {
            cache_dir: None,
            loaders: Vec::new(),
            loader_hints: HashMap::new(),
            on_build: None,
        }
    }

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
