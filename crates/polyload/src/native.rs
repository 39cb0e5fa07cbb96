//! The `native` loader: shared libraries through the polyload C ABI.
//!
//! Loading a bundle:
//! 1. copies the artifact to a private *shadow* file and opens it as a
//!    [`DynamicProvider`] (`dlopen`), so a rebuild that rewrites the
//!    original never touches mapped code and the OS loader's cache never
//!    hands back an old version; every symbol below is found through the
//!    [`SymbolProvider`] trait, as a host or JIT finds them;
//! 2. checks `polyload_abi_version()` against the host ABI and the
//!    manifest's `abi`;
//! 3. checks the build metadata of Rust guests (`polyload_build_info`);
//! 4. calls `polyload_bundle_init(&HOST, bundle)`, which registers
//!    definitions with `define`.
//!
//! The runtime then checks the definitions against the manifest's
//! `[exports]` and publishes them.

use crate::host::{self, BundleContext, HOST};
use crate::loader::{
    BundleInstance, BundleLoader, BundleSource, Export, ExportEntry, LoadContext, LoadedBundle,
};
use crate::provider::{DynamicProvider, SymbolProvider};
use crate::{Error, Result};
use polyload_abi::{AbiVersion, PolyloadBundle, PolyloadHost, PolyloadStr, POLYLOAD_ABI_VERSION};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Loader for `loader = "native"` bundles.
#[derive(Debug, Default)]
pub struct NativeLoader;

/// Keeps a native bundle version mapped; on drop (through the reclaimer:
/// no thread can be inside the version) calls its `polyload_bundle_fini`,
/// then `dlclose`s it, except a Rust guest's.
///
/// Rust guests (built by rustc, or exporting `polyload_build_info`) stay
/// mapped until the process exits: Rust's std registers thread-exit destructors with
/// `pthread_key_create` (for `thread::current()` and thread locals), whose
/// code is in the library; a thread that touched them and exits after the
/// unmap would jump into unmapped memory. Their memory is reclaimed by
/// `polyload_bundle_fini` (the generated rimport wrappers free their
/// handles there); the mapping itself is the cost of a reload.
struct NativeInstance {
    // Field order matters: the context (used by the library's code) is
    // dropped after the library.
    library: Option<DynamicProvider>,
    _context: Box<BundleContext>,
    path: PathBuf,
    rust_guest: bool,
    /// Whether `polyload_bundle_init` succeeded (only then is fini called).
    initialized: bool,
}

impl Drop for NativeInstance {
    fn drop(&mut self) {
        let Some(lib) = self.library.take() else {
            return;
        };
        // SAFETY: the ABI fixes this optional symbol's type; no thread is
        // inside the version (a published instance drops through the
        // reclaimer, a failed one before anything was published).
        let fini =
            unsafe { symbol::<unsafe extern "C" fn()>(&lib, polyload_abi::BUNDLE_FINI_SYMBOL) };
        if let (Some(fini), true) = (fini, self.initialized) {
            // SAFETY: as above; the bundle's own clean-up, called once.
            unsafe { fini() };
        }
        if self.rust_guest {
            tracing::debug!(path = %self.path.display(), "retired Rust guest stays mapped");
            std::mem::forget(lib);
            return;
        }
        if let Err(e) = lib.close() {
            tracing::warn!(path = %self.path.display(), "dlclose failed: {e}");
        }
    }
}

type SaveFn = unsafe extern "C" fn(*const PolyloadHost) -> polyload_abi::PolyloadBytes;
type RestoreFn = unsafe extern "C" fn(*const PolyloadHost, polyload_abi::PolyloadBytes) -> i32;

impl BundleInstance for NativeInstance {
    fn save_state(&mut self) -> Result<Option<Vec<u8>>> {
        let lib = self.library.as_ref().expect("library present until drop");
        // SAFETY: the symbol, when present, has the documented ABI signature.
        let Some(save) = (unsafe { symbol::<SaveFn>(lib, polyload_abi::STATE_SAVE_SYMBOL) }) else {
            return Ok(None);
        };
        host::clear_error();
        let _g = crate::reclaim::CallGuard::enter();
        // SAFETY: calling the bundle's own export with the host table.
        let bytes = unsafe { save(&HOST) };
        if let Some(message) = host::take_error() {
            return Err(Error::Guest {
                name: format!("{}.polyload_state_save", self._context.id),
                message,
                traceback: None,
            });
        }
        // SAFETY: per the ABI, a returned buffer is valid and owned by us.
        let data = unsafe { bytes.as_bytes() }.to_vec();
        // SAFETY: allocated by the bundle with host->alloc(len, 1).
        unsafe { polyload_ffi::alloc::polyload_free(bytes.ptr as *mut _, bytes.len, 1) };
        Ok(Some(data))
    }

    fn restore_state(&mut self, state: &[u8]) -> Result<()> {
        let lib = self.library.as_ref().expect("library present until drop");
        // SAFETY: the symbol, when present, has the documented ABI signature.
        let Some(restore) =
            (unsafe { symbol::<RestoreFn>(lib, polyload_abi::STATE_RESTORE_SYMBOL) })
        else {
            return Ok(());
        };
        host::clear_error();
        let _g = crate::reclaim::CallGuard::enter();
        // SAFETY: the buffer is valid for the call; the bundle copies what it keeps.
        let rc = unsafe { restore(&HOST, polyload_abi::PolyloadBytes::from_slice(state)) };
        let msg = host::take_error();
        if rc != polyload_abi::POLYLOAD_OK || msg.is_some() {
            return Err(Error::Guest {
                name: format!("{}.polyload_state_restore", self._context.id),
                message: msg.unwrap_or_else(|| format!("returned status {rc}")),
                traceback: None,
            });
        }
        Ok(())
    }
}

static SHADOW_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Host build metadata compared with a Rust guest's `polyload_build_info`.
pub(crate) fn host_build_info() -> [(&'static str, String); 3] {
    [
        ("rustc", env!("POLYLOAD_RUSTC_RELEASE").to_string()),
        ("target", env!("POLYLOAD_TARGET").to_string()),
        ("abi", POLYLOAD_ABI_VERSION.to_string()),
    ]
}

fn shadow_copy(src: &Path, cache_dir: &Path, id: &str) -> Result<PathBuf> {
    let dir = cache_dir.join("shadow");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let n = SHADOW_COUNTER.fetch_add(1, Ordering::Relaxed);
    let ext = src.extension().and_then(|e| e.to_str()).unwrap_or("so");
    let dst = dir.join(format!("{id}-{}-{n}.{ext}", std::process::id()));
    std::fs::copy(src, &dst).map_err(|e| Error::io(src, e))?;
    Ok(dst)
}

impl BundleLoader for NativeLoader {
    fn loader_name(&self) -> &'static str {
        "native"
    }

    fn load(&self, cx: &LoadContext<'_>) -> Result<LoadedBundle> {
        let m = cx.manifest;
        let BundleSource::Path(path) = cx.source else {
            return Err(Error::Unsupported(format!(
                "bundle `{}`: the native loader loads shared libraries from files, not from memory",
                m.id
            )));
        };
        if !path.is_file() {
            return Err(Error::io(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "shared library not found"),
            ));
        }
        let shadow = shadow_copy(path, cx.cache_dir, &m.id)?;
        let by_rustc = match check_image(&shadow) {
            Ok(by_rustc) => by_rustc,
            Err(message) => {
                let _ = std::fs::remove_file(&shadow);
                return Err(Error::LibraryLoad {
                    path: path.clone(),
                    message,
                });
            }
        };
        // SAFETY: loading a library runs its initialisers (foreign code); the
        // user asked to load this bundle, which is trusting its code.
        let loaded = unsafe { DynamicProvider::open(&shadow) };
        // The mapping survives the unlink on every Unix; the shadow file
        // itself is not needed any more.
        let _ = std::fs::remove_file(&shadow);
        let library = loaded.map_err(|e| match e {
            Error::LibraryLoad { message, .. } => Error::LibraryLoad {
                path: path.clone(),
                message: message
                    .replace(&shadow.display().to_string(), &path.display().to_string()),
            },
            e => e,
        })?;

        let missing = |symbol: &str| Error::MissingSymbol {
            symbol: symbol.to_string(),
            library: path.clone(),
        };
        if !library.has_symbol(polyload_abi::ABI_VERSION_SYMBOL) {
            return Err(missing(polyload_abi::ABI_VERSION_SYMBOL));
        }
        let built = library.abi_version();
        for required in [built, m.abi] {
            if !POLYLOAD_ABI_VERSION.is_compatible_with(required) {
                return Err(Error::AbiMismatch {
                    bundle: m.id.clone(),
                    path: path.clone(),
                    required,
                    provided: POLYLOAD_ABI_VERSION,
                });
            }
        }

        // SAFETY: the ABI fixes this optional symbol's type.
        if let Some(info_fn) = unsafe {
            symbol::<unsafe extern "C" fn() -> PolyloadStr>(
                &library,
                polyload_abi::BUILD_INFO_SYMBOL,
            )
        } {
            // SAFETY: returns a static string by the ABI contract.
            let text = String::from_utf8_lossy(unsafe { info_fn().as_bytes() }).into_owned();
            check_build_info(&m.id, &text, cx.built_profile)?;
        }

        // SAFETY: the ABI fixes this symbol's type.
        let init = unsafe {
            symbol::<unsafe extern "C" fn(*const PolyloadHost, *mut PolyloadBundle) -> i32>(
                &library,
                polyload_abi::BUNDLE_INIT_SYMBOL,
            )
        }
        .ok_or_else(|| missing(polyload_abi::BUNDLE_INIT_SYMBOL))?;

        // From here the instance owns the library, so that every way out
        // (a failed init included: its code may have registered thread-exit
        // destructors) follows the instance's rule for closing it.
        let rust_guest = by_rustc || library.has_symbol(polyload_abi::BUILD_INFO_SYMBOL);
        let mut instance = NativeInstance {
            library: Some(library),
            _context: BundleContext::new(&m.id, cx.host.weak_namespace()),
            path: path.clone(),
            rust_guest,
            initialized: false,
        };
        let context = &instance._context;
        context.begin_init();
        host::clear_error();
        let status = {
            let _g = crate::reclaim::CallGuard::enter();
            // SAFETY: `init` has the ABI's signature; HOST is 'static and the
            // context outlives the library (both owned by the instance).
            unsafe { init(&HOST, context.as_bundle_ptr()) }
        };
        let staged = context.end_init();
        let message = host::take_error();
        instance.initialized = status == polyload_abi::POLYLOAD_OK;
        if status != polyload_abi::POLYLOAD_OK {
            return Err(Error::Init {
                bundle: m.id.clone(),
                status,
                message: message.unwrap_or_else(|| {
                    "polyload_bundle_init returned an error without a message".into()
                }),
                traceback: None,
            });
        }
        let exports = staged
            .into_iter()
            .map(|s| Export {
                name: s.name,
                signature: s.signature,
                entry: ExportEntry::Native(s.code),
            })
            .collect();
        Ok(LoadedBundle {
            exports,
            instance: Box::new(instance),
        })
    }
}

/// The function `name` of `lib` as `F`, found through the
/// [`SymbolProvider`] trait like any host's or JIT's lookup.
///
/// # Safety
/// `F` must be a function pointer type matching the symbol's definition.
unsafe fn symbol<F: Copy>(lib: &DynamicProvider, name: &str) -> Option<F> {
    const { assert!(std::mem::size_of::<F>() == std::mem::size_of::<*const u8>()) };
    let p = lib.get_symbol(name)?;
    // SAFETY: `F` is a function pointer type of the symbol (the caller's
    // contract), the same size as the address.
    Some(unsafe { std::mem::transmute_copy::<*const u8, F>(&p) })
}

/// Checks that a file is a complete shared library for this machine before
/// `dlopen` sees it. glibc maps segments as the headers describe them, so a
/// truncated library would fault (SIGBUS) on first touch instead of failing
/// cleanly; here every segment must lie inside the file.
/// Returns whether rustc built it (see [`built_by_rustc`]).
pub(crate) fn check_image(path: &Path) -> std::result::Result<bool, String> {
    let data = std::fs::read(path).map_err(|e| e.to_string())?;
    inspect_image(&data)
}

/// Whether rustc built a parsed library: rustc writes `rustc version X`
/// into the `.comment` section of everything it links (C compilers write
/// `GCC: ..` or `clang version ..`). Such a library links its own std,
/// whose thread-exit destructors make it unsafe to unmap (see
/// [`NativeInstance`]).
fn built_by_rustc(file: &object::File<'_>) -> bool {
    use object::{Object, ObjectSection};
    file.section_by_name(".comment")
        .and_then(|c| c.data().ok())
        .is_some_and(|bytes| bytes.windows(14).any(|w| w == b"rustc version "))
}

/// [`check_image`] on a file's contents (one parse): the check, and
/// whether rustc built it.
pub(crate) fn inspect_image(data: &[u8]) -> std::result::Result<bool, String> {
    use object::{Object, ObjectSegment};
    let file = object::File::parse(data).map_err(|e| {
        if data.starts_with(b"\x7fELF") {
            format!("corrupt or truncated ELF file ({e})")
        } else {
            format!("not a shared library ({e})")
        }
    })?;
    if file.kind() != object::ObjectKind::Dynamic {
        return Err(format!(
            "not a shared library (object kind {:?})",
            file.kind()
        ));
    }
    let host_arch = match std::env::consts::ARCH {
        "x86_64" => Some(object::Architecture::X86_64),
        "aarch64" => Some(object::Architecture::Aarch64),
        _ => None,
    };
    if let Some(a) = host_arch {
        if file.architecture() != a {
            return Err(format!(
                "built for {:?}, but this machine is {a:?}",
                file.architecture()
            ));
        }
    }
    let len = data.len() as u64;
    for seg in file.segments() {
        let (offset, size) = seg.file_range();
        if offset.checked_add(size).is_none_or(|end| end > len) {
            return Err(format!(
                "truncated: a segment spans bytes {offset}..{} but the file has {len} bytes",
                offset.saturating_add(size)
            ));
        }
    }
    Ok(built_by_rustc(&file))
}

/// Compares a guest's `key=value` build metadata with the host's.
fn check_build_info(bundle: &str, text: &str, built_profile: Option<&str>) -> Result<()> {
    let fields: std::collections::HashMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let mismatch = |field: &str, bundle_value: &str, host_value: &str| Error::BuildMetadata {
        bundle: bundle.to_string(),
        field: field.to_string(),
        bundle_value: bundle_value.to_string(),
        host_value: host_value.to_string(),
    };
    for (key, host_value) in host_build_info() {
        match fields.get(key) {
            Some(v) if key == "abi" => {
                let ok = v
                    .parse::<AbiVersion>()
                    .is_ok_and(|b| POLYLOAD_ABI_VERSION.is_compatible_with(b));
                if !ok {
                    return Err(mismatch(key, v, &host_value));
                }
            }
            Some(v) if *v != host_value => return Err(mismatch(key, v, &host_value)),
            Some(_) => {}
            None => return Err(mismatch(key, "(missing)", &host_value)),
        }
    }
    if let (Some(want), Some(got)) = (built_profile, fields.get("profile")) {
        if want != *got {
            return Err(mismatch("profile", got, want));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustc_output_is_told_from_c_output() {
        // This test binary was linked by rustc; the C library it runs on
        // (found in its own mappings) by a C toolchain.
        let by_rustc = |bytes: &[u8]| built_by_rustc(&object::File::parse(bytes).unwrap());
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(by_rustc(&me));
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let libc = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .find(|p| p.contains("/libc.so"))
            .expect("libc is mapped");
        assert!(!by_rustc(&std::fs::read(libc).unwrap()), "{libc}");
    }

    #[test]
    fn build_info_mismatch_names_both_sides() {
        let [(_, rustc), (_, target), _] = host_build_info();
        let good = format!("rustc={rustc}\ntarget={target}\nprofile=release\nabi=1.0\n");
        assert!(check_build_info("b", &good, Some("release")).is_ok());
        let e = check_build_info("b", &good.replace(&rustc, "1.2.3"), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("bundle `b` was built with rustc `1.2.3`, but the host expects `{rustc}`; rebuild the bundle")
        );
        let e = check_build_info("b", &good, Some("debug")).unwrap_err();
        assert!(
            e.to_string()
                .contains("profile `release`, but the host expects `debug`"),
            "{e}"
        );
        let e = check_build_info("b", &good.replace("abi=1.0", "abi=2.0"), None).unwrap_err();
        assert!(e.to_string().contains("abi `2.0`"), "{e}");
    }
}
