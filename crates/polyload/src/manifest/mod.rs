//! `manifest.toml`: what a bundle is, what it exports and how to build it.
//!
//! ```toml
//! id = "hello"                 # [A-Za-z0-9_-]+, unique in a namespace
//! version = "0.1.0"            # semver
//! loader = "native"            # native | lua | python | js | wasm | dotnet
//! file = "libhello.so"         # or { linux-x86_64 = "libhello.so", macos-aarch64 = "libhello.dylib" }
//! abi = "1.0"                  # polyload ABI the bundle needs
//! provides = ["greeter@1.0"]   # optional interfaces
//!
//! [exports]                    # name = signature
//! add = "fn(i64, i64) -> i64"
//!
//! [[dependency]]               # optional, repeated
//! id = "base"
//! version = "^0.1"
//!
//! [build]                      # optional: how to make `file`
//! cc = ["src/hello.c"]         # C and C++ (.cpp/.cc/.cxx) sources; or cargo = ".",
//! libs = ["z"]                 # wasm-cc = [..], csc = [..] (see `build`)
//! ```
//!
//! A bundle may name a crate instead (`[rimport]`, see [`RimportSpec`]),
//! and a loader reads its own section (`[lua]`, `[wasm]`, ...) through
//! [`Manifest::section`].
//!
//! Parsing is pure: [`Manifest::parse`] reads only the text it is given.
//! Every error is an [`Error::Manifest`] naming the file, the line and the
//! field. Unknown keys are errors.

pub use crate::rimport::spec::{RimportItem, RimportSpec};
use crate::{Error, Result};
use polyload_abi::AbiVersion;
use polyload_ffi::Signature;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use toml::Spanned;

mod build;
use build::RawBuild;

/// A parsed, validated `manifest.toml`.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// The manifest file (used in messages and to resolve relative paths).
    pub path: PathBuf,
    /// Bundle id: the first part of every qualified name it defines.
    pub id: String,
    /// The bundle's own version.
    pub version: semver::Version,
    /// Name of the loader that handles it (`native`, `lua`, ...).
    pub loader: String,
    /// The artifact (shared library or entry script), relative to the
    /// bundle directory, resolved for this platform.
    pub file: PathBuf,
    /// The polyload ABI the bundle needs.
    pub abi: AbiVersion,
    /// Declared exports, sorted by name.
    pub exports: Vec<ExportDecl>,
    /// Interfaces the bundle provides, as `name@major.minor`.
    pub provides: Vec<Interface>,
    /// Bundles this one needs loaded first.
    pub dependencies: Vec<Dependency>,
    /// How to build `file` from sources, if the bundle carries them.
    pub build: Option<BuildSpec>,
    /// `[rimport]`: the bundle is generated from a crate on crates.io (see
    /// [`crate::rimport`]); its `[exports]`, `file` and `[build]` are
    /// filled in when it is loaded.
    pub rimport: Option<RimportSpec>,
    /// Whether `version` was written (a `[rimport]` bundle may leave it out).
    version_given: bool,
    /// The loader sections (`[python]`, `[js]`, `[lua]`, ...) by name, with
    /// the line each starts on; a loader parses its own with
    /// [`Manifest::section`].
    sections: BTreeMap<String, usize>,
    /// The manifest text, for loaders parsing their sections with spans.
    text: std::sync::Arc<str>,
}

/// One `[exports]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportDecl {
    /// Unqualified name (`add`).
    pub name: String,
    /// Declared signature.
    pub signature: Signature,
    /// Line in the manifest.
    pub line: usize,
}

/// An interface a bundle provides: `name@major.minor`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// Interface name.
    pub name: String,
    /// Its version; resolution follows the ABI rule (major equal, minor >=).
    pub version: AbiVersion,
}

/// One `[[dependency]]` entry.
#[derive(Clone, Debug)]
pub struct Dependency {
    /// The bundle id needed.
    pub id: String,
    /// Versions accepted (semver requirement, e.g. `^0.1`).
    pub version: semver::VersionReq,
}

/// The `[build]` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildSpec {
    /// `cargo = "DIR"`: a crate (relative to the bundle dir) built as a cdylib.
    Cargo {
        /// Crate directory, relative to the bundle dir.
        dir: PathBuf,
        /// `profile = "release"` (default) or `"debug"`.
        release: bool,
    },
    /// `cc = [sources]`: C and C++ sources compiled into a shared library.
    /// Files ending in `.cpp`, `.cc` or `.cxx` are C++: they build with the
    /// C++ compiler (`$CXX`, else `c++`), and the library is then linked by
    /// it, with the C++ runtime.
    Cc {
        /// Source files, relative to the bundle dir.
        sources: Vec<PathBuf>,
        /// Libraries to link (`libs = ["z"]` gives `-lz`).
        libs: Vec<String>,
        /// Extra flags for C sources.
        cflags: Vec<String>,
        /// Extra flags for C++ sources.
        cxxflags: Vec<String>,
        /// The C++ standard (`std = "c++20"`; default `c++17`).
        cxx_std: String,
    },
    /// `wasm-cc = [sources]`: C sources compiled to a WebAssembly module
    /// (`clang --target=wasm32-wasi`, a WASI reactor) for the `wasm`
    /// loader. `polyload_wasm.h` (on the include path) declares the guest
    /// ABI; sources mark what the module exports with
    /// `POLYLOAD_EXPORT(name)`.
    WasmCc {
        /// Source files, relative to the bundle dir.
        sources: Vec<PathBuf>,
        /// Extra compiler flags.
        cflags: Vec<String>,
    },
    /// `csc = [sources]`: C# sources compiled into a .NET assembly
    /// (`mcs -target:library`, Mono's C# compiler) for the `dotnet`
    /// loader. `Polyload.cs` (the `Polyload` class a bundle calls the
    /// namespace through) is compiled in with them.
    Csc {
        /// Source files, relative to the bundle dir.
        sources: Vec<PathBuf>,
        /// Assemblies the sources use (`references = ["Newtonsoft.Json"]`):
        /// a path (relative to the bundle dir, or absolute; anything with a
        /// `/` or ending in `.dll`), or a name, looked up in Mono's global
        /// assembly cache (`/usr/lib/mono/gac`) and then among the
        /// framework's own (`System.Core`).
        references: Vec<String>,
    },
}

#[derive(Deserialize)]
struct Raw {
    id: Spanned<String>,
    version: Option<Spanned<String>>,
    loader: Spanned<String>,
    file: Option<Spanned<RawFile>>,
    abi: Option<Spanned<String>>,
    #[serde(default)]
    provides: Vec<Spanned<String>>,
    #[serde(default)]
    exports: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default, rename = "dependency")]
    dependencies: Vec<Spanned<RawDependency>>,
    build: Option<Spanned<RawBuild>>,
    rimport: Option<Spanned<RimportSpec>>,
}

/// The keys `Raw` reads; every other top-level key must be a loader's table.
const CORE_KEYS: [&str; 10] = [
    "id",
    "version",
    "loader",
    "file",
    "abi",
    "provides",
    "exports",
    "dependency",
    "build",
    "rimport",
];

#[derive(Deserialize)]
#[serde(untagged)]
enum RawFile {
    One(String),
    PerPlatform(BTreeMap<String, String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDependency {
    id: Spanned<String>,
    version: Spanned<String>,
}

/// The platform key used in per-platform `file` tables: `{os}-{arch}` from
/// Rust's `std::env::consts` (`linux-x86_64`, `macos-aarch64`, `windows-x86_64`).
pub fn platform_key() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        self.text[..offset].bytes().filter(|b| *b == b'\n').count() + 1
    }

    fn err<T>(
        &self,
        span: std::ops::Range<usize>,
        field: &str,
        message: impl Into<String>,
    ) -> Result<T> {
        Err(self.error(span, field, message))
    }

    fn error(
        &self,
        span: std::ops::Range<usize>,
        field: &str,
        message: impl Into<String>,
    ) -> Error {
        Error::Manifest {
            path: self.path.to_path_buf(),
            line: self.line_of(span.start),
            field: field.to_string(),
            message: one_line(&message.into()),
        }
    }

    /// The `[table]` header in force at `line`, if any.
    fn section_at(&self, line: usize) -> Option<String> {
        self.text
            .lines()
            .take(line)
            .filter_map(|l| {
                let l = l.trim();
                let inner = l
                    .strip_prefix("[[")
                    .and_then(|r| r.split_once("]]"))
                    .or_else(|| l.strip_prefix('[').and_then(|r| r.split_once(']')))?;
                Some(inner.0.trim().to_string())
            })
            .last()
    }

    /// Turns a TOML/serde error into a manifest error with line and field.
    fn toml_error(&self, e: toml::de::Error) -> Error {
        // toml's messages may span lines ("invalid table header\nexpected
        // newline, `#`"); errors are one line.
        let msg = one_line(e.message());
        let line = e.span().map(|s| self.line_of(s.start)).unwrap_or(1);
        let quoted = |prefix: &str| {
            msg.strip_prefix(prefix)
                .and_then(|r| r.strip_prefix('`'))
                .and_then(|r| r.split_once('`'))
                .map(|(f, _)| f.to_string())
        };
        let key_on_line = self.text.lines().nth(line - 1).and_then(|l| {
            let (k, _) = l.split_once('=')?;
            let k = k.trim().trim_matches('"');
            (!k.is_empty() && !k.starts_with('[')).then(|| k.to_string())
        });
        let name = quoted("unknown field ")
            .or_else(|| quoted("missing field "))
            .or(key_on_line);
        let section = self.section_at(line);
        let field = match (section, name) {
            (Some(s), Some(n)) if msg.starts_with("missing field") && e.span().is_none() => {
                format!("{s}.{n}")
            }
            (Some(s), Some(n)) => format!("{s}.{n}"),
            (None, Some(n)) => n,
            (Some(s), None) => s,
            (None, None) => "(document)".to_string(),
        };
        Error::Manifest {
            path: self.path.to_path_buf(),
            line,
            field,
            message: msg,
        }
    }
}

/// `text` on one line: its non-empty lines, trimmed, joined with `: `.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(": ")
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `p` is relative and stays inside its base directory (no `..`,
/// no root, no prefix).
pub(crate) fn is_contained(p: &Path) -> bool {
    !p.as_os_str().is_empty()
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

impl Manifest {
    /// Reads and parses `dir/manifest.toml`.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read; [`Error::Manifest`] as for
    /// [`Manifest::parse`].
    pub fn from_dir(dir: &Path) -> Result<Manifest> {
        let path = dir.join("manifest.toml");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        Manifest::parse(&text, &path)
    }

    /// Whether the manifest gives `version` (a `[rimport]` bundle without
    /// one takes its crate's).
    pub fn version_given(&self) -> bool {
        self.version_given
    }

    /// The bundle directory (the manifest's parent).
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// The names of the loader sections (`[python]`, ...) present, with the
    /// line each starts on.
    pub fn sections(&self) -> impl Iterator<Item = (&str, usize)> {
        self.sections.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// Parses loader section `[name]` as `T` (a loader's own configuration,
    /// typically `#[serde(deny_unknown_fields)]`); `None` when the manifest
    /// has no such section.
    ///
    /// ```
    /// # use std::path::Path;
    /// #[derive(serde::Deserialize)]
    /// #[serde(deny_unknown_fields)]
    /// struct Python {
    ///     requirements: Vec<String>,
    /// }
    /// let text = "id = \"p\"\nversion = \"0.1.0\"\nloader = \"python\"\nfile = \"main.py\"\nabi = \"1.0\"\n\n[python]\nrequirements = [\"six\"]\nextra = 1\n";
    /// let m = polyload::Manifest::parse(text, Path::new("b/manifest.toml")).unwrap();
    /// let e = m.section::<Python>("python").err().unwrap();
    /// assert!(e.to_string().starts_with("b/manifest.toml:9: python.extra: unknown field `extra`"), "{e}");
    /// ```
    ///
    /// # Errors
    /// [`Error::Manifest`] naming the file, the line and the field.
    pub fn section<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        if !self.sections.contains_key(name) {
            return Ok(None);
        }
        struct Pick<'n, T>(&'n str, std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Pick<'_, T> {
            type Value = Option<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a manifest")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Option<T>, A::Error> {
                let mut found = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == self.0 {
                        found = Some(map.next_value::<T>()?);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(found)
            }
        }
        let cx = Ctx {
            path: &self.path,
            text: &self.text,
        };
        serde::Deserializer::deserialize_map(
            toml::Deserializer::new(&self.text),
            Pick::<T>(name, std::marker::PhantomData),
        )
        .map_err(|e| cx.toml_error(e))
    }

    /// An error about a field of a loader section, at the line of `span`
    /// (the byte range a `toml::Spanned` field of the section type
    /// carries): for what serde cannot check, such as a path that must
    /// exist or a name the artifact must define.
    ///
    /// ```
    /// # use std::path::Path;
    /// #[derive(serde::Deserialize)]
    /// struct Wasm {
    ///     imports: std::collections::BTreeMap<toml::Spanned<String>, String>,
    /// }
    /// let text = "id = \"w\"\nversion = \"0.1.0\"\nloader = \"wasm\"\nfile = \"m.wasm\"\nabi = \"1.0\"\n\n[wasm.imports]\n\"env.f\" = \"a.f\"\n";
    /// let m = polyload::Manifest::parse(text, Path::new("b/manifest.toml")).unwrap();
    /// let w: Wasm = m.section("wasm").unwrap().unwrap();
    /// let (key, _) = w.imports.iter().next().unwrap();
    /// let e = m.field_error(key.span(), "wasm.imports", "the module does not import `env.f`");
    /// assert_eq!(e.to_string(), "b/manifest.toml:8: wasm.imports: the module does not import `env.f`");
    /// ```
    pub fn field_error(
        &self,
        span: std::ops::Range<usize>,
        field: &str,
        message: impl Into<String>,
    ) -> Error {
        let cx = Ctx {
            path: &self.path,
            text: &self.text,
        };
        cx.error(span, field, message)
    }

    /// The declared export `name`, if any.
    pub fn export(&self, name: &str) -> Option<&ExportDecl> {
        self.exports.iter().find(|e| e.name == name)
    }

    /// Parses manifest text. `path` is used for messages and as the bundle
    /// directory's anchor; nothing is read from disk.
    ///
    /// # Errors
    /// [`Error::Manifest`] naming `path`, the line and the field: TOML syntax
    /// errors, unknown keys, missing or mistyped fields, an invalid id,
    /// version, ABI version, signature, dependency requirement or build
    /// section, and a `file` that is absolute or climbs out of the bundle
    /// directory.
    pub fn parse(text: &str, path: &Path) -> Result<Manifest> {
        let cx = Ctx { path, text };
        let raw: Raw = toml::from_str(text).map_err(|e| cx.toml_error(e))?;
        let keys: BTreeMap<Spanned<String>, toml::Value> =
            toml::from_str(text).map_err(|e| cx.toml_error(e))?;
        let mut sections = BTreeMap::new();
        for (key, value) in &keys {
            let name = key.get_ref();
            if CORE_KEYS.contains(&name.as_str()) {
                continue;
            }
            if !value.is_table() || !is_ident(name) {
                return cx.err(
                    key.span(),
                    name,
                    format!(
                        "unknown field `{name}`, expected one of {} or a loader's [section]",
                        CORE_KEYS.map(|k| format!("`{k}`")).join(", ")
                    ),
                );
            }
            sections.insert(name.clone(), cx.line_of(key.span().start));
        }

        let id = raw.id.get_ref();
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return cx.err(
                raw.id.span(),
                "id",
                format!(
                    "`{id}` is not a valid bundle id (use letters, digits, `_` and `-`; no `.`)"
                ),
            );
        }
        // Fields a generated bundle may leave out (its generator gives them).
        let missing = |field: &str| Error::Manifest {
            path: path.to_path_buf(),
            line: 1,
            field: field.to_string(),
            message: format!("missing field `{field}`"),
        };
        let version = match &raw.version {
            Some(v) => semver::Version::parse(v.get_ref()).or_else(|e| {
                cx.err(
                    v.span(),
                    "version",
                    format!("`{}` is not a semantic version: {e}", v.get_ref()),
                )
            })?,
            // A generated bundle takes its crate's version.
            None if raw.rimport.is_some() => semver::Version::new(0, 0, 0),
            None => return Err(missing("version")),
        };
        let version_given = raw.version.is_some();
        let loader = raw.loader.get_ref();
        if !is_ident(loader) {
            return cx.err(
                raw.loader.span(),
                "loader",
                format!("`{loader}` is not a loader name"),
            );
        }
        let rimport = raw.rimport.map(|r| (r.span(), r.into_inner()));
        let abi: AbiVersion = match (&raw.abi, &rimport) {
            (Some(abi), _) => abi
                .get_ref()
                .parse()
                .or_else(|e| cx.err(abi.span(), "abi", format!("`{}`: {e}", abi.get_ref())))?,
            (None, Some(_)) => AbiVersion::new(1, 0),
            (None, None) => return Err(missing("abi")),
        };
        if let Some((span, spec)) = &rimport {
            spec.check().map_err(|(field, message)| {
                cx.error(span.clone(), &format!("rimport.{field}"), message)
            })?;
            for (what, given) in [
                ("file", raw.file.is_some()),
                ("exports", !raw.exports.is_empty()),
                ("build", raw.build.is_some()),
            ] {
                if given {
                    return cx.err(
                        span.clone(),
                        what,
                        format!("a bundle with [rimport] is generated: its `{what}` comes from the crate, do not give one"),
                    );
                }
            }
        }

        let (file_span, raw_file) = match (raw.file, &rimport) {
            (Some(f), _) => (f.span(), f.into_inner()),
            (None, Some((span, spec))) => (span.clone(), RawFile::One(spec.file_name())),
            (None, None) => return Err(missing("file")),
        };
        let file = match raw_file {
            RawFile::One(f) => f,
            RawFile::PerPlatform(table) => {
                let key = platform_key();
                match table.get(&key) {
                    Some(f) => f.clone(),
                    None => {
                        let have: Vec<_> = table.keys().cloned().collect();
                        return cx.err(
                            file_span,
                            "file",
                            format!(
                                "no entry for this platform `{key}` (entries: {})",
                                have.join(", ")
                            ),
                        );
                    }
                }
            }
        };
        if !is_contained(Path::new(&file)) {
            return cx.err(
                file_span,
                "file",
                format!("`{file}` must be a relative path inside the bundle directory"),
            );
        }

        let mut exports = Vec::with_capacity(raw.exports.len());
        for (name, sig) in &raw.exports {
            let field = format!("exports.{}", name.get_ref());
            if !is_ident(name.get_ref()) {
                return cx.err(
                    name.span(),
                    &field,
                    format!(
                        "`{}` is not a valid export name (a C identifier)",
                        name.get_ref()
                    ),
                );
            }
            let signature: Signature =
                sig.get_ref()
                    .parse()
                    .or_else(|e: polyload_ffi::SignatureError| {
                        cx.err(sig.span(), &field, e.to_string())
                    })?;
            if signature.variadic {
                return cx.err(
                    sig.span(),
                    &field,
                    "variadic functions cannot be bundle exports",
                );
            }
            exports.push(ExportDecl {
                name: name.get_ref().clone(),
                signature,
                line: cx.line_of(name.span().start),
            });
        }

        let mut provides = Vec::new();
        for (i, p) in raw.provides.iter().enumerate() {
            let bad = || {
                cx.err(
                    p.span(),
                    &format!("provides[{i}]"),
                    format!("`{}` is not of the form name@MAJOR.MINOR", p.get_ref()),
                )
            };
            let Some((name, ver)) = p.get_ref().split_once('@') else {
                return bad();
            };
            let Ok(version) = ver.parse::<AbiVersion>() else {
                return bad();
            };
            if name.is_empty() {
                return bad();
            }
            provides.push(Interface {
                name: name.to_string(),
                version,
            });
        }

        let mut dependencies = Vec::new();
        for (i, d) in raw.dependencies.iter().enumerate() {
            let d = d.get_ref();
            let req = semver::VersionReq::parse(d.version.get_ref()).or_else(|e| {
                cx.err(
                    d.version.span(),
                    &format!("dependency[{i}].version"),
                    format!(
                        "`{}` is not a version requirement: {e}",
                        d.version.get_ref()
                    ),
                )
            })?;
            dependencies.push(Dependency {
                id: d.id.get_ref().clone(),
                version: req,
            });
        }

        let build = match raw.build {
            None => None,
            Some(b) => Some(build::spec(&cx, b)?),
        };

        Ok(Manifest {
            path: path.to_path_buf(),
            id: id.clone(),
            version,
            loader: loader.clone(),
            file: PathBuf::from(file),
            abi,
            exports,
            provides,
            dependencies,
            build,
            rimport: rimport.map(|(_, spec)| spec),
            version_given,
            sections,
            text: text.into(),
        })
    }
}

#[cfg(test)]
mod tests;
