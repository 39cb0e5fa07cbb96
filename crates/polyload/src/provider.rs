//! Symbol providers: where a host, a JIT or a loader finds native symbols.
//!
//! * [`StaticProvider`]: a table compiled into the host.
//! * [`DynamicProvider`]: a shared library loaded at run time, with its ABI
//!   version checked on load.
//! * [`ChainedProvider`]: several providers, first match wins, results cached.
//!
//! [`create_provider`] builds one from a [`RuntimeLoadMode`].

use crate::{Error, Result};
use polyload_abi::{AbiVersion, POLYLOAD_ABI_VERSION};
use std::collections::HashMap;
use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

/// A source of native symbols.
///
/// Returned addresses stay valid while the provider lives.
pub trait SymbolProvider: Send + Sync {
    /// The address of `name`, if this provider has it.
    fn get_symbol(&self, name: &str) -> Option<*const u8>;
    /// Whether this provider has `name`.
    fn has_symbol(&self, name: &str) -> bool {
        self.get_symbol(name).is_some()
    }
    /// The polyload ABI version the provider implements.
    fn abi_version(&self) -> AbiVersion;
    /// A name for messages (a library path, "static", ...).
    fn name(&self) -> &str;
}

/// A compiled-in table of symbols (the host's own functions).
///
/// ```
/// use polyload::{StaticProvider, SymbolProvider};
/// extern "C" fn answer() -> i64 { 42 }
/// let p = StaticProvider::new("host").with("answer", answer as *const u8);
/// assert!(p.has_symbol("answer"));
/// assert!(!p.has_symbol("question"));
/// ```
#[derive(Debug, Default)]
pub struct StaticProvider {
    name: String,
    symbols: HashMap<String, usize>,
}

impl StaticProvider {
    /// An empty table named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            symbols: HashMap::new(),
        }
    }

    /// Adds a symbol (builder style).
    pub fn with(mut self, name: impl Into<String>, address: *const u8) -> Self {
        self.insert(name, address);
        self
    }

    /// Adds or replaces a symbol.
    pub fn insert(&mut self, name: impl Into<String>, address: *const u8) {
        self.symbols.insert(name.into(), address as usize);
    }
}

impl SymbolProvider for StaticProvider {
    fn get_symbol(&self, name: &str) -> Option<*const u8> {
        self.symbols.get(name).map(|a| *a as *const u8)
    }
    fn abi_version(&self) -> AbiVersion {
        POLYLOAD_ABI_VERSION
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// The environment variable [`DynamicProvider::load_default`] searches first.
pub const RUNTIME_PATH_ENV: &str = "POLYLOAD_RUNTIME_PATH";
/// Base name of the runtime library [`DynamicProvider::load_default`] looks for.
pub const DEFAULT_LIBRARY_BASENAME: &str = "polyload_runtime";

/// The platform's file name for library `base`: `libbase.so`,
/// `libbase.dylib` or `base.dll`.
pub fn library_file_name(base: &str) -> String {
    if cfg!(target_os = "windows") {
        format!("{base}.dll")
    } else if cfg!(target_os = "macos") {
        format!("lib{base}.dylib")
    } else {
        format!("lib{base}.so")
    }
}

/// The full text of a libloading error: its message and the `dlerror()`
/// text behind it.
pub(crate) fn dl_message(e: &libloading::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// A shared library loaded with `dlopen` (libloading).
///
/// If the library exports `polyload_abi_version`, its version must be
/// compatible with the host's ([`AbiVersion::is_compatible_with`]); a library
/// without it is taken as a plain C library at the host's version.
pub struct DynamicProvider {
    library: libloading::Library,
    path: PathBuf,
    name: String,
    abi: AbiVersion,
}

impl std::fmt::Debug for DynamicProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicProvider")
            .field("path", &self.path)
            .field("abi", &self.abi)
            .finish()
    }
}

impl DynamicProvider {
    /// Loads the library at `path` (or a bare name the system loader
    /// resolves, like `libm.so.6`).
    ///
    /// # Errors
    /// [`Error::LibraryLoad`] if the loader refuses it; [`Error::AbiMismatch`]
    /// naming both versions if its ABI is incompatible.
    ///
    /// # Safety
    /// Loading runs the library's initialisers, which are arbitrary code.
    pub unsafe fn load(path: impl AsRef<Path>) -> Result<Self> {
        // SAFETY: forwarded to the caller.
        let p = unsafe { Self::open(path.as_ref()) }?;
        if !POLYLOAD_ABI_VERSION.is_compatible_with(p.abi) {
            return Err(Error::AbiMismatch {
                bundle: p.name.clone(),
                path: p.path.clone(),
                required: p.abi,
                provided: POLYLOAD_ABI_VERSION,
            });
        }
        Ok(p)
    }

    /// Loads the library at `path` and reads its ABI version (the host's
    /// when it exports none) without judging it: the native loader checks
    /// it against the bundle's manifest itself.
    ///
    /// # Errors
    /// [`Error::LibraryLoad`] if the loader refuses it.
    ///
    /// # Safety
    /// As [`load`](Self::load).
    pub(crate) unsafe fn open(path: &Path) -> Result<Self> {
        let path = path.to_path_buf();
        // SAFETY: forwarded to the caller.
        let library =
            unsafe { libloading::Library::new(&path) }.map_err(|e| Error::LibraryLoad {
                path: path.clone(),
                message: dl_message(&e),
            })?;
        // SAFETY: the ABI fixes this symbol's type.
        let abi = match unsafe {
            library
                .get::<unsafe extern "C" fn() -> u32>(polyload_abi::ABI_VERSION_SYMBOL.as_bytes())
        } {
            // SAFETY: a pure function by the ABI contract.
            Ok(f) => AbiVersion::from_packed(unsafe { f() }),
            Err(_) => POLYLOAD_ABI_VERSION,
        };
        Ok(Self {
            library,
            name: path.display().to_string(),
            path,
            abi,
        })
    }

    /// Unloads the library now (`dlclose`), reporting the loader's error.
    pub(crate) fn close(self) -> std::result::Result<(), String> {
        self.library.close().map_err(|e| dl_message(&e))
    }

    /// The places [`load_default`](Self::load_default) looks, in order:
    /// each directory of `$POLYLOAD_RUNTIME_PATH` (or the file it names),
    /// each directory of `$LD_LIBRARY_PATH`, `/usr/lib`, `/usr/local/lib`,
    /// and the running executable's directory.
    pub fn default_search_paths() -> Vec<PathBuf> {
        let file = library_file_name(DEFAULT_LIBRARY_BASENAME);
        let mut out = Vec::new();
        let mut dirs = Vec::new();
        if let Some(v) = std::env::var_os(RUNTIME_PATH_ENV) {
            for p in std::env::split_paths(&v) {
                if p.extension().is_some() && !p.is_dir() {
                    out.push(p);
                } else {
                    dirs.push(p);
                }
            }
        }
        if let Some(v) = std::env::var_os("LD_LIBRARY_PATH") {
            dirs.extend(std::env::split_paths(&v));
        }
        dirs.push(PathBuf::from("/usr/lib"));
        dirs.push(PathBuf::from("/usr/local/lib"));
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf))
        {
            dirs.push(dir);
        }
        out.extend(
            dirs.into_iter()
                .filter(|d| !d.as_os_str().is_empty())
                .map(|d| d.join(&file)),
        );
        out
    }

    /// Loads the runtime library from the first of
    /// [`default_search_paths`](Self::default_search_paths) that exists.
    ///
    /// # Errors
    /// [`Error::LibraryLoad`] listing every path tried when none exists;
    /// otherwise as [`load`](Self::load).
    ///
    /// # Safety
    /// As [`load`](Self::load).
    pub unsafe fn load_default() -> Result<Self> {
        let paths = Self::default_search_paths();
        match paths.iter().find(|p| p.is_file()) {
            // SAFETY: forwarded to the caller.
            Some(p) => unsafe { Self::load(p) },
            None => Err(Error::LibraryLoad {
                path: PathBuf::from(library_file_name(DEFAULT_LIBRARY_BASENAME)),
                message: format!(
                    "not found; searched {}",
                    paths
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }

    /// The library's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl SymbolProvider for DynamicProvider {
    fn get_symbol(&self, name: &str) -> Option<*const u8> {
        // SAFETY: we only take the address; what it points to is the
        // caller's business when it calls or reads through it.
        let sym = unsafe { self.library.get::<*const c_void>(name.as_bytes()) }.ok()?;
        let p: *const c_void = *sym;
        (!p.is_null()).then_some(p.cast())
    }
    fn abi_version(&self) -> AbiVersion {
        self.abi
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// Several providers searched in order; the first with the symbol wins.
/// Lookups are cached (including misses) until the chain changes.
///
/// A lookup holds the chain's read lock from the cache check to the cache
/// insert, and [`add`](Self::add) changes the chain and clears the cache
/// under its write lock, so a miss computed against the old chain can never
/// be cached after a provider that has the symbol was added.
#[derive(Default)]
pub struct ChainedProvider {
    providers: RwLock<Vec<Arc<dyn SymbolProvider>>>,
    cache: Mutex<HashMap<String, Option<usize>>>,
}

impl std::fmt::Debug for ChainedProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .providers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|p| p.name().to_string())
            .collect();
        f.debug_struct("ChainedProvider")
            .field("providers", &names)
            .finish()
    }
}

impl ChainedProvider {
    /// An empty chain.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a provider (lowest priority).
    pub fn add(&self, p: Arc<dyn SymbolProvider>) {
        self.change(|chain| chain.push(p));
    }

    /// Prepends a provider (highest priority).
    pub fn add_front(&self, p: Arc<dyn SymbolProvider>) {
        self.change(|chain| chain.insert(0, p));
    }

    fn change(&self, f: impl FnOnce(&mut Vec<Arc<dyn SymbolProvider>>)) {
        let mut chain = self.providers.write().unwrap_or_else(|e| e.into_inner());
        f(&mut chain);
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Number of providers in the chain.
    pub fn len(&self) -> usize {
        self.providers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Whether the chain is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SymbolProvider for ChainedProvider {
    fn get_symbol(&self, name: &str) -> Option<*const u8> {
        let chain = self.providers.read().unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return hit.map(|a| a as *const u8);
        }
        let found = chain.iter().find_map(|p| p.get_symbol(name));
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), found.map(|p| p as usize));
        drop(chain);
        found
    }
    /// The lowest version in the chain (what every member satisfies).
    fn abi_version(&self) -> AbiVersion {
        self.providers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|p| p.abi_version())
            .min()
            .unwrap_or(POLYLOAD_ABI_VERSION)
    }
    fn name(&self) -> &str {
        "chain"
    }
}

/// How [`create_provider`] finds symbols.
pub enum RuntimeLoadMode {
    /// The host's compiled-in table.
    Static(StaticProvider),
    /// A library at this path.
    DynamicPath(PathBuf),
    /// The runtime library found by [`DynamicProvider::load_default`].
    DynamicDefault,
    /// These modes in priority order.
    Chained(Vec<RuntimeLoadMode>),
}

/// Builds a provider for `mode`.
///
/// # Errors
/// As [`DynamicProvider::load`] / [`DynamicProvider::load_default`].
///
/// # Safety
/// Dynamic modes load libraries, running their initialisers.
pub unsafe fn create_provider(mode: RuntimeLoadMode) -> Result<Arc<dyn SymbolProvider>> {
    Ok(match mode {
        RuntimeLoadMode::Static(p) => Arc::new(p),
        // SAFETY: forwarded to the caller.
        RuntimeLoadMode::DynamicPath(p) => Arc::new(unsafe { DynamicProvider::load(p)? }),
        // SAFETY: forwarded to the caller.
        RuntimeLoadMode::DynamicDefault => Arc::new(unsafe { DynamicProvider::load_default()? }),
        RuntimeLoadMode::Chained(modes) => {
            let chain = ChainedProvider::new();
            for m in modes {
                // SAFETY: forwarded to the caller.
                chain.add(unsafe { create_provider(m)? });
            }
            Arc::new(chain)
        }
    })
}

// Compile-time proof that the providers are thread-safe for real.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<StaticProvider>();
    assert_send_sync::<DynamicProvider>();
    assert_send_sync::<ChainedProvider>();
};
