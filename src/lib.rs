//! A host crate outside the library, as a user's would be: it uses
//! polyload through its public API only. Its tests (`tests/`) check the
//! core's promises from there (handles that outlive their runtime, racing
//! loads, threads a bundle starts itself, watching), and the README's Rust
//! examples run as its doctests ([`readme`]), from the repository root.
//!
//! The helpers below write C bundles into temporary directories; the
//! runtime's own integration tests use them too.

#[doc = include_str!("../README.md")]
#[allow(
    clippy::doc_lazy_continuation,
    clippy::doc_markdown,
    reason = "the README is Markdown written for a reader of the repository, checked here for its code"
)]
pub mod readme {}

use polyload::Runtime;
use std::path::{Path, PathBuf};

/// A temporary workspace with a bundles directory and a private cache.
pub struct Scratch {
    /// The temporary directory (removed on drop).
    pub dir: tempfile::TempDir,
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Scratch {
    /// A fresh temporary workspace.
    pub fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `DIR/bundles`, created on first use.
    pub fn bundles(&self) -> PathBuf {
        let p = self.dir.path().join("bundles");
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// A runtime with its cache in `DIR/cache`.
    pub fn runtime(&self) -> Runtime {
        self.builder().build().unwrap()
    }

    /// A runtime builder with its cache in `DIR/cache`, for adding loaders.
    pub fn builder(&self) -> polyload::RuntimeBuilder {
        Runtime::builder().cache_dir(self.dir.path().join("cache"))
    }

    /// Writes a C bundle `id` with the given manifest body (after the common
    /// header) and C source; returns its directory.
    pub fn c_bundle(&self, id: &str, manifest_tail: &str, source: &str) -> PathBuf {
        let dir = self.bundles().join(id);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(
            dir.join("manifest.toml"),
            format!(
                "id = \"{id}\"\nversion = \"0.1.0\"\nloader = \"native\"\nfile = \"lib{id}.so\"\nabi = \"1.0\"\n{manifest_tail}\n[build]\ncc = [\"src/{id}.c\"]\n"
            ),
        )
        .unwrap();
        std::fs::write(dir.join("src").join(format!("{id}.c")), source).unwrap();
        dir
    }
}

/// C source of a bundle exporting `fn(i64) -> i64` functions `name` that
/// return `expr` (in terms of `x`).
pub fn c_source(abi: &str, defs: &[(&str, &str, &str)]) -> String {
    let mut s = String::from("#include <polyload.h>\n");
    for (name, _sig, body) in defs {
        s += &format!("static int64_t {name}(int64_t x) {{ return {body}; }}\n");
    }
    s += &format!("uint32_t polyload_abi_version(void) {{ return {abi}; }}\n");
    s += "int32_t polyload_bundle_init(const PolyloadHost *h, PolyloadBundle *b) {\n";
    for (name, sig, _) in defs {
        s += &format!("    POLYLOAD_DEFINE(h, b, \"{name}\", \"{sig}\", {name});\n");
    }
    s += "    return POLYLOAD_OK;\n}\n";
    s
}

/// The repository's `examples/bundles`.
pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bundles")
}

/// Compiles `source` into a shared library at `out` with the system cc.
pub fn cc_shared(source: &str, out: &Path) {
    let dir = out.parent().unwrap();
    let src = dir.join(format!("{}.c", out.file_stem().unwrap().to_string_lossy()));
    std::fs::write(&src, source).unwrap();
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/polyload-abi/include");
    let st = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(out)
        .arg(&src)
        .arg("-I")
        .arg(include)
        .status()
        .expect("cc must be installed");
    assert!(st.success());
}
