//! Engines, the epoch clock, and the compiled-module cache.
//!
//! Two engines serve every wasm bundle: one that meters fuel and one that
//! does not (fuel instrumentation costs on every call, so only bundles that
//! ask for `fuel` pay it). Both interrupt on epochs: a clock thread
//! advances every engine's epoch each millisecond, and a call's deadline is
//! its `timeout_ms` in ticks.
//!
//! Compiled modules are cached on disk as wasmtime's serialized form, keyed
//! by the SHA-256 of the module's bytes and the engine's compatibility hash
//! (wasmtime version, target, settings), so a second load of an unchanged
//! bundle does not compile again.

use polyload::{Error, Result};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;
use wasmtime::{Config, Engine, Module};

/// Milliseconds per epoch tick.
pub(crate) const TICK: Duration = Duration::from_millis(1);

/// The wasm stack a call may use at most.
pub(crate) const MAX_WASM_STACK: usize = 512 << 10;

static PLAIN: OnceLock<Engine> = OnceLock::new();
static FUELED: OnceLock<Engine> = OnceLock::new();
static COMPILED: AtomicU64 = AtomicU64::new(0);

fn make(fuel: bool) -> Engine {
    let mut c = Config::new();
    c.epoch_interruption(true)
        .consume_fuel(fuel)
        .wasm_backtrace_max_frames(std::num::NonZeroUsize::new(64))
        .max_wasm_stack(MAX_WASM_STACK);
    let engine = Engine::new(&c).unwrap_or_else(|e| {
        panic!("internal error: the wasmtime configuration is refused (this is a bug): {e}")
    });
    start_clock();
    engine
}

/// The engine for bundles with (`fuel`) or without fuel metering.
pub(crate) fn engine(fuel: bool) -> &'static Engine {
    if fuel {
        FUELED.get_or_init(|| make(true))
    } else {
        PLAIN.get_or_init(|| make(false))
    }
}

/// Starts the thread that advances every engine's epoch each tick.
fn start_clock() {
    static CLOCK: OnceLock<()> = OnceLock::new();
    CLOCK.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("polyload-wasm-epoch".into())
            .spawn(|| loop {
                std::thread::sleep(TICK);
                for e in [&PLAIN, &FUELED] {
                    if let Some(e) = e.get() {
                        e.increment_epoch();
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start the wasm epoch clock (timeouts will not fire): {e}");
        }
    });
}

/// How many modules this process has compiled (not taken from the cache).
pub fn compiled_modules() -> u64 {
    COMPILED.load(Ordering::Relaxed)
}

/// The module for `bytes` (binary wasm or WAT text): from the cache under
/// `cache_dir` when an entry for these bytes and this engine exists, else
/// compiled and stored there.
///
/// # Errors
/// [`Error::LibraryLoad`] naming `what` when the bytes are not a valid
/// module; [`Error::Io`] when the cache cannot be written.
pub(crate) fn module(
    engine: &Engine,
    bytes: &[u8],
    what: &Path,
    cache_dir: &Path,
) -> Result<Module> {
    let mut key = Sha256::new();
    key.update(bytes);
    struct Feed<'a>(&'a mut Sha256);
    impl Hasher for Feed<'_> {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, b: &[u8]) {
            self.0.update(b);
        }
    }
    engine
        .precompile_compatibility_hash()
        .hash(&mut Feed(&mut key));
    let key: String = key.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = cache_dir.join("wasm");
    let file = dir.join(format!("{key}.cwasm"));
    if file.is_file() {
        // SAFETY: the file is one this loader wrote from `Module::serialize`
        // for an engine with this compatibility hash, in the bundle's own
        // cache; wasmtime checks its header and version on the way in. (As
        // with any cache, a file replaced by someone who can write the
        // cache directory is trusted: the cache is the host's own.)
        match unsafe { Module::deserialize_file(engine, &file) } {
            Ok(m) => return Ok(m),
            Err(e) => {
                tracing::warn!(file = %file.display(), "ignoring an unreadable compiled module: {e}")
            }
        }
    }
    let module = Module::new(engine, bytes).map_err(|e| Error::LibraryLoad {
        path: what.to_path_buf(),
        message: format!("not a valid WebAssembly module: {}", one_line(&e)),
    })?;
    COMPILED.fetch_add(1, Ordering::Relaxed);
    let serialized = module.serialize().map_err(|e| Error::Io {
        path: file.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
        path: dir.clone(),
        source,
    })?;
    // One temporary name per writer: two threads (or bundles) may compile
    // the same module at once, and the second rename just replaces the
    // first's identical file.
    static WRITER: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{key}.{}.{}.tmp",
        std::process::id(),
        WRITER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&tmp, serialized)
        .and_then(|()| std::fs::rename(&tmp, &file))
        .map_err(|source| Error::Io {
            path: file.clone(),
            source,
        })?;
    Ok(module)
}

/// An error (and its causes) on one line.
pub(crate) fn one_line(e: &wasmtime::Error) -> String {
    format!("{e:#}")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(": ")
}
