//! The Rust-ABI path: a crate's items re-exported by a `dylib` (Rust ABI,
//! not C), for Rust hosts that compile code at run time (a notebook or
//! REPL cell) and want the crate's real types instead of handles.

use super::generate::{resolve, spec_dir, write_file};
use super::RimportSpec;
use crate::builder::{self, BuildEvent};
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// Bumped when the generated plugin changes shape.
const GENERATOR: &str = "polyload-rdylib 1";

/// A loaded Rust-ABI plugin of a crate.
///
/// The Rust-ABI path: a crate's items re-exported by a `dylib` (Rust ABI,
/// not C), for Rust hosts that compile code at run time (a notebook or
/// REPL cell) and want the crate's real types instead of handles.
///
/// [`RustDylib::build`] generates `polyload-rdylib-<crate>` (crate type
/// `dylib`, `pub mod exports` re-exporting the requested items, `pub use
/// <crate> as krate`), builds it once per tuple (spec + `rustc -vV`) with
/// `-C prefer-dynamic`, and loads it together with the toolchain's
/// `libstd-*.so`, both by absolute path and `RTLD_GLOBAL`, so a cell that
/// needs them (`DT_NEEDED` by soname) finds them already loaded.
/// [`RustDylib::build_cell`] builds a host's crate against it by path, in
/// the same target directory and with the same flags, and loads it.
///
/// Rust has no stable ABI: this works only with the exact same rustc,
/// target and dependency versions on both sides. The plugin embeds them
/// (`POLYLOAD_RDYLIB_META`, and `polyload_rdylib_meta()` at run time);
/// each cell embeds the plugin's constant as it was when the cell was
/// compiled; loading a cell compares the two and refuses a mismatch with
/// [`Error::BuildMetadata`] naming both.
pub struct RustDylib {
    loaded: Arc<Loaded>,
    crate_dir: PathBuf,
    target_dir: PathBuf,
    lib: String,
    package: String,
    meta: String,
}

struct Loaded {
    // Dropped in field order: the plugin before the std it needs.
    plugin: libloading::Library,
    _std: libloading::Library,
    path: PathBuf,
}

/// A host crate built against a [`RustDylib`] and loaded; it keeps the
/// plugin loaded while it lives.
pub struct Cell {
    lib: libloading::Library,
    path: PathBuf,
    _plugin: Arc<Loaded>,
}

/// `rustc <release> (<commit>) <host>` from `rustc -vV`.
fn toolchain(vv: &str) -> String {
    let field = |k: &str| {
        vv.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(str::trim)
            .unwrap_or("?")
            .to_string()
    };
    format!(
        "rustc {} ({}) {}",
        field("release:"),
        field("commit-hash:"),
        field("host:")
    )
}

/// The directory holding the toolchain's `libstd-*.so`.
fn std_dylib() -> Result<PathBuf> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(&rustc)
        .args(["--print", "target-libdir"])
        .output()
        .map_err(|e| Error::io(PathBuf::from(&rustc), e))?;
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let found = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(&dir, e))?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("libstd-") && n.ends_with(std::env::consts::DLL_SUFFIX)
            })
        });
    found.ok_or_else(|| Error::io(dir.join("libstd-*.so"), std::io::ErrorKind::NotFound.into()))
}

/// `dlopen(path, RTLD_NOW | RTLD_GLOBAL)`.
fn open_global(path: &Path) -> Result<libloading::Library> {
    #[cfg(unix)]
    {
        use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};
        // SAFETY: loading runs the library's initialisers: a Rust dylib
        // built here (or the toolchain's std), which run no user code.
        unsafe { Library::open(Some(path), RTLD_NOW | RTLD_GLOBAL) }
            .map(Into::into)
            .map_err(|e| Error::LibraryLoad {
                path: path.to_path_buf(),
                message: crate::provider::dl_message(&e),
            })
    }
    #[cfg(not(unix))]
    {
        // SAFETY: as above.
        unsafe { libloading::Library::new(path) }.map_err(|e| Error::LibraryLoad {
            path: path.to_path_buf(),
            message: crate::provider::dl_message(&e),
        })
    }
}

/// Reads a `fn(*mut usize) -> *const u8` metadata symbol.
///
/// # Safety
/// `lib` must define `symbol` with that signature, returning a static
/// UTF-8 string.
unsafe fn read_meta(lib: &libloading::Library, path: &Path, symbol: &str) -> Result<String> {
    // SAFETY: the caller's contract.
    let f: libloading::Symbol<'_, unsafe extern "C" fn(*mut usize) -> *const u8> =
        unsafe { lib.get(symbol.as_bytes()) }.map_err(|_| Error::MissingSymbol {
            symbol: symbol.to_string(),
            library: path.to_path_buf(),
        })?;
    let mut len = 0usize;
    // SAFETY: the symbol writes the length and returns a static string.
    let ptr = unsafe { f(&mut len) };
    // SAFETY: `ptr` and `len` describe that static string.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// Compares a cell's embedded metadata with the loaded plugin's.
pub(crate) fn check_meta(cell: &str, cell_meta: &str, plugin_meta: &str) -> Result<()> {
    if cell_meta == plugin_meta {
        return Ok(());
    }
    Err(Error::BuildMetadata {
        bundle: cell.to_string(),
        field: "rustc, target and dependencies".into(),
        bundle_value: cell_meta.to_string(),
        host_value: plugin_meta.to_string(),
    })
}

impl RustDylib {
    /// Generates (once per spec and toolchain), builds and loads the Rust
    /// ABI plugin of `spec`'s crate, re-exporting the first segment of each
    /// item (`Version::parse` re-exports `Version`) in `pub mod exports`.
    /// Lives under `<cache>/rimport-dylib/<crate>/<hash>/`.
    ///
    /// # Errors
    /// [`Error::Build`] with cargo's message (an unknown crate, version or
    /// item: an unresolved `pub use`), [`Error::LibraryLoad`],
    /// [`Error::BuildMetadata`] if the built library's metadata differs
    /// from what was generated.
    pub fn build(spec: &RimportSpec, cache_root: &Path) -> Result<RustDylib> {
        let vv = builder::rustc_vv();
        let dir = spec_dir(cache_root, "rimport-dylib", GENERATOR, spec, "");
        let crate_dir = dir.join("plugin");
        let target_dir = dir.join("target");
        let id = format!("rdylib-{}", spec.krate);
        let mut quiet = |_: BuildEvent| {};
        let meta_path = crate_dir.join("meta.txt");
        let (lib, meta) = match std::fs::read_to_string(&meta_path).ok().and_then(|t| {
            t.split_once('\n')
                .map(|(l, m)| (l.to_string(), m.to_string()))
        }) {
            Some(cached) => cached,
            None => {
                let (version, krate_lib) = resolve(spec, &id, &dir.join("probe"), &mut quiet)?;
                let lib = format!("polyload_rdylib_{krate_lib}");
                let meta = format!("{}; {} {version}; {GENERATOR}", toolchain(&vv), spec.krate);
                Self::generate(spec, &crate_dir, &dir, &version, &krate_lib, &meta)?;
                write_file(&meta_path, &format!("{lib}\n{meta}"))?;
                (lib, meta)
            }
        };
        let so = target_dir
            .join("release")
            .join(format!("lib{lib}{}", std::env::consts::DLL_SUFFIX));
        if !so.is_file() {
            let mut cmd = Self::cargo_build(&target_dir);
            cmd.arg("--manifest-path").arg(crate_dir.join("Cargo.toml"));
            builder::run(&id, cmd, &mut quiet, |_| None)?;
        }
        // Loaded from a private copy (same file name, so the same soname a
        // cell needs), so that a later cargo run in the target directory
        // (a cell's build) never rewrites a mapped library.
        let copy_dir = dir.join(format!(
            "loaded-{}-{}",
            std::process::id(),
            builder::unique()
        ));
        std::fs::create_dir_all(&copy_dir).map_err(|e| Error::io(&copy_dir, e))?;
        let copy = copy_dir.join(so.file_name().expect("a file name"));
        std::fs::copy(&so, &copy).map_err(|e| Error::io(&so, e))?;
        let std = open_global(&std_dylib()?)?;
        let plugin = open_global(&copy);
        // The mapping outlives the file on every Unix.
        let _ = std::fs::remove_dir_all(&copy_dir);
        let so = copy;
        let plugin = plugin?;
        // SAFETY: the generated plugin defines `polyload_rdylib_meta` so.
        let loaded_meta = unsafe { read_meta(&plugin, &so, "polyload_rdylib_meta") }?;
        check_meta(&id, &loaded_meta, &meta)?;
        Ok(RustDylib {
            loaded: Arc::new(Loaded {
                plugin,
                _std: std,
                path: so,
            }),
            crate_dir,
            target_dir,
            lib,
            package: format!("polyload-rdylib-{}", spec.krate),
            meta,
        })
    }

    fn cargo_build(target_dir: &Path) -> Command {
        let mut cmd = builder::cargo();
        cmd.env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env("RUSTFLAGS", "-C prefer-dynamic")
            .args(["build", "--release", "--lib", "--target-dir"])
            .arg(target_dir);
        cmd
    }

    fn generate(
        spec: &RimportSpec,
        crate_dir: &Path,
        dir: &Path,
        version: &str,
        krate_lib: &str,
        meta: &str,
    ) -> Result<()> {
        write_file(
            &crate_dir.join("Cargo.toml"),
            &format!(
                "# Generated by polyload rimport (Rust ABI): do not edit.\n[package]\nname = \"polyload-rdylib-{k}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[lib]\nname = \"polyload_rdylib_{krate_lib}\"\ncrate-type = [\"dylib\"]\n\n[dependencies]\n{dependency}\n\n[workspace]\n",
                k = spec.krate,
                dependency = spec.dependency(&format!("={version}")),
            ),
        )?;
        let mut uses: Vec<String> = spec
            .items
            .iter()
            .map(|i| {
                let path = i.parts().0;
                let first = path
                    .split("::")
                    .find(|s| *s != krate_lib)
                    .unwrap_or(&path)
                    .to_string();
                format!("    pub use {krate_lib}::{first};")
            })
            .collect();
        uses.sort();
        uses.dedup();
        write_file(
            &crate_dir.join("src/lib.rs"),
            &format!(
                r#"//! Generated by polyload rimport (Rust ABI) from {k} {version}: do not edit.

/// The requested items of `{k}`.
pub mod exports {{
{uses}
}}

/// The crate itself, for what the items need (error types, traits).
pub use {krate_lib} as krate;

/// The rustc, target and dependency versions this library was built with;
/// a cell embeds this constant as it was when the cell was compiled.
pub const POLYLOAD_RDYLIB_META: &str = {meta:?};

/// The same, read at run time from the loaded library.
#[no_mangle]
pub extern "C" fn polyload_rdylib_meta(len: *mut usize) -> *const u8 {{
    // SAFETY: the caller passes a valid pointer (polyload's loader does).
    unsafe {{ *len = POLYLOAD_RDYLIB_META.len() }};
    POLYLOAD_RDYLIB_META.as_ptr()
}}
"#,
                k = spec.krate,
                uses = uses.join("\n"),
            ),
        )?;
        let lock = dir.join("probe/Cargo.lock");
        if lock.is_file() {
            std::fs::copy(&lock, crate_dir.join("Cargo.lock")).map_err(|e| Error::io(&lock, e))?;
        }
        Ok(())
    }

    /// The loaded plugin library.
    pub fn path(&self) -> &Path {
        &self.loaded.path
    }

    /// The plugin's crate directory, for a host crate's `path` dependency.
    pub fn crate_dir(&self) -> &Path {
        &self.crate_dir
    }

    /// The name a host crate `use`s (`polyload_rdylib_semver`).
    pub fn lib_name(&self) -> &str {
        &self.lib
    }

    /// What the plugin was built with: `rustc 1.95.0 (<commit>) <host>;
    /// semver 1.0.28; polyload-rdylib 1`.
    pub fn metadata(&self) -> &str {
        &self.meta
    }

    /// Builds a host crate named `name` (a `cdylib`, in `dir/name`) from
    /// `source` against this plugin, by path, with the plugin's target
    /// directory and flags, and loads it. `source` uses the plugin as
    /// `polyload_rdylib_<crate>::exports::...` and exports what the host
    /// calls with `#[no_mangle] pub extern "C" fn`.
    ///
    /// # Errors
    /// [`Error::Build`] with the compiler's message; [`Error::LibraryLoad`];
    /// [`Error::BuildMetadata`] if the cell was compiled against another
    /// build of the plugin than the one loaded (both named).
    pub fn build_cell(&self, name: &str, source: &str, dir: &Path) -> Result<Cell> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::Unsupported(format!(
                "`{name}` is not a cell name (letters, digits, `_`)"
            )));
        }
        let cell_dir = dir.join(name);
        write_file(
            &cell_dir.join("Cargo.toml"),
            &format!(
                "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\n{lib} = {{ package = \"{pkg}\", path = {path:?} }}\n\n[workspace]\n",
                lib = self.lib,
                pkg = self.package,
                path = self.crate_dir.display().to_string(),
            ),
        )?;
        write_file(
            &cell_dir.join("src/lib.rs"),
            &format!(
                "{source}\n\n/// The plugin's metadata as this cell was compiled against it.\n#[no_mangle]\npub extern \"C\" fn polyload_cell_meta(len: *mut usize) -> *const u8 {{\n    let m: &'static str = ::{lib}::POLYLOAD_RDYLIB_META;\n    // SAFETY: the caller passes a valid pointer.\n    unsafe {{ *len = m.len() }};\n    m.as_ptr()\n}}\n",
                lib = self.lib
            ),
        )?;
        let lock = self.crate_dir.join("Cargo.lock");
        if lock.is_file() && !cell_dir.join("Cargo.lock").is_file() {
            std::fs::copy(&lock, cell_dir.join("Cargo.lock")).map_err(|e| Error::io(&lock, e))?;
        }
        let mut cmd = Self::cargo_build(&self.target_dir);
        cmd.arg("--manifest-path").arg(cell_dir.join("Cargo.toml"));
        builder::run(name, cmd, &mut |_| {}, |_| None)?;
        let path = self
            .target_dir
            .join("release")
            .join(format!("lib{name}{}", std::env::consts::DLL_SUFFIX));
        // SAFETY: a cell's initialisers are the user's own code, built
        // against the plugin loaded above.
        let lib = unsafe { libloading::Library::new(&path) }.map_err(|e| Error::LibraryLoad {
            path: path.clone(),
            message: crate::provider::dl_message(&e),
        })?;
        // SAFETY: `build_cell` appended `polyload_cell_meta` to the source.
        let cell_meta = unsafe { read_meta(&lib, &path, "polyload_cell_meta") }?;
        // SAFETY: the plugin defines `polyload_rdylib_meta` so.
        let plugin_meta = unsafe {
            read_meta(
                &self.loaded.plugin,
                &self.loaded.path,
                "polyload_rdylib_meta",
            )
        }?;
        check_meta(name, &cell_meta, &plugin_meta)?;
        Ok(Cell {
            lib,
            path,
            _plugin: self.loaded.clone(),
        })
    }
}

impl Cell {
    /// A symbol the cell exports (`#[no_mangle] pub extern "C" fn`).
    ///
    /// # Safety
    /// `T` must be the symbol's exact type; the symbol must not be used
    /// after the cell is dropped (the borrow ties it to the cell).
    ///
    /// # Errors
    /// [`Error::MissingSymbol`] naming the symbol and the cell's library.
    pub unsafe fn get<T>(&self, symbol: &str) -> Result<libloading::Symbol<'_, T>> {
        // SAFETY: the caller's contract.
        unsafe { self.lib.get(symbol.as_bytes()) }.map_err(|_| Error::MissingSymbol {
            symbol: symbol.to_string(),
            library: self.path.clone(),
        })
    }

    /// The cell's library.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl std::fmt::Debug for RustDylib {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RustDylib")
            .field("path", &self.loaded.path)
            .field("meta", &self.meta)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_metadata_mismatch_names_both_sides() {
        let e = super::check_meta(
            "cell",
            "rustc 1.94.0; semver 1.0.27",
            "rustc 1.95.0; semver 1.0.28",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("`rustc 1.94.0; semver 1.0.27`")
                && e.contains("`rustc 1.95.0; semver 1.0.28`"),
            "{e}"
        );
        assert!(super::check_meta("cell", "a", "a").is_ok());
    }
}
