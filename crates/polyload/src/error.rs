//! The runtime's error type.

use polyload_abi::AbiVersion;
use polyload_ffi::Signature;
use std::fmt;
use std::path::PathBuf;

/// A `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong loading, building or calling a bundle.
///
/// Each variant carries the names a user needs to act: the bundle, the file,
/// the symbol, both versions of a mismatch. The `Display` text is one line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `manifest.toml` is malformed or inconsistent.
    #[error("{path}:{line}: {field}: {message}", path = .path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// 1-based line of the offending key (or of the enclosing table).
        line: usize,
        /// Dotted path of the field (`exports.add`, `abi`, `dependency[0].id`).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A file could not be read, written or found.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The bundle's ABI version is not compatible with the host's
    /// (majors must be equal, host minor >= bundle minor).
    #[error("bundle `{bundle}` ({path}) needs polyload ABI {required}, but this host provides ABI {provided} (majors must match and the host's minor must be >= the bundle's)", path = .path.display())]
    AbiMismatch {
        /// Bundle id (or the library file name for a provider).
        bundle: String,
        /// The library.
        path: PathBuf,
        /// What the bundle was built against.
        required: AbiVersion,
        /// What the host implements.
        provided: AbiVersion,
    },
    /// The dynamic loader refused the file (missing, truncated, not a
    /// shared library, unresolved dependencies).
    #[error("cannot load library {}: {message}", path.display())]
    LibraryLoad {
        /// The library path.
        path: PathBuf,
        /// The loader's message (`dlerror()`).
        message: String,
    },
    /// A required symbol is not exported by a library.
    #[error("symbol `{symbol}` not found in {}", library.display())]
    MissingSymbol {
        /// The symbol.
        symbol: String,
        /// The library.
        library: PathBuf,
    },
    /// `polyload_bundle_init` (or a VM loader's initialisation) failed.
    #[error("bundle `{bundle}` failed to initialise (status {status}): {message}")]
    Init {
        /// Bundle id.
        bundle: String,
        /// The status returned (-1 for a VM loader).
        status: i32,
        /// The message the bundle set, or a description.
        message: String,
        /// The guest's traceback (files and lines), when it has one.
        traceback: Option<String>,
    },
    /// What a bundle defines differs from its manifest's `[exports]`.
    #[error("bundle `{bundle}`: {problem} ({})", manifest.display())]
    Exports {
        /// Bundle id.
        bundle: String,
        /// The manifest.
        manifest: PathBuf,
        /// The first difference found.
        problem: Box<ExportProblem>,
    },
    /// Two bundles with the same id (so the same qualified names).
    #[error(
        "duplicate definition `{name}`: bundle `{bundle}` is loaded from {} and again from {}",
        first.display(),
        second.display()
    )]
    Duplicate {
        /// A qualified name both define.
        name: String,
        /// The bundle id.
        bundle: String,
        /// The directory of the one loaded first.
        first: PathBuf,
        /// The directory of the one that tried to load again.
        second: PathBuf,
    },
    /// Bundles depend on each other in a cycle.
    #[error("dependency cycle: {}", cycle.join(" -> "))]
    DependencyCycle {
        /// The bundle ids around the cycle, first repeated at the end.
        cycle: Vec<String>,
    },
    /// A declared dependency is not available.
    #[error("bundle `{bundle}` depends on `{dependency}` {requirement}, {}", match found {
        Some(v) => format!("but version {v} is loaded"),
        None => "which is not loaded or present".to_string(),
    })]
    MissingDependency {
        /// The dependent bundle.
        bundle: String,
        /// The missing bundle id.
        dependency: String,
        /// The version requirement.
        requirement: semver::VersionReq,
        /// The version present, if one is (and does not match).
        found: Option<semver::Version>,
    },
    /// No loader is registered for the manifest's `loader`.
    #[error(
        "bundle `{bundle}`: no loader `{loader}` is registered (available: {}){}",
        available.join(", "),
        hint.as_deref().map(|h| format!("; {h}")).unwrap_or_default()
    )]
    UnknownLoader {
        /// Bundle id.
        bundle: String,
        /// The `loader` field.
        loader: String,
        /// Registered loader names, sorted.
        available: Vec<String>,
        /// How to get that loader, from whoever registers loaders (see
        /// `RuntimeBuilder::loader_hint`).
        hint: Option<String>,
    },
    /// No definition has this qualified name.
    #[error("no definition named `{name}`")]
    NotFound {
        /// The qualified name asked for.
        name: String,
    },
    /// No loaded bundle provides an interface (`name@MAJOR.MINOR`) at a
    /// compatible version, or the request is malformed.
    #[error("no loaded bundle provides `{interface}` (a provider needs the same major version and a minor version at least as high)")]
    NoProvider {
        /// The interface asked for.
        interface: String,
    },
    /// A bundle id is not loaded.
    #[error("bundle `{bundle}` is not loaded")]
    NotLoaded {
        /// The bundle id.
        bundle: String,
    },
    /// A bundle with this id is already loaded.
    #[error("bundle `{bundle}` is already loaded (from {})", path.display())]
    AlreadyLoaded {
        /// The bundle id.
        bundle: String,
        /// Where the loaded one came from.
        path: PathBuf,
    },
    /// A bundle cannot be unloaded while others depend on it.
    #[error("bundle `{bundle}` is needed by {}; unload those first or unload with cascade", dependents.join(", "))]
    InUse {
        /// The bundle asked to unload.
        bundle: String,
        /// Loaded bundles that depend on it.
        dependents: Vec<String>,
    },
    /// A typed handle's Rust type does not match the definition's signature.
    #[error("`{name}` has signature `{found}`, but the handle's type is `{expected}`")]
    SignatureMismatch {
        /// Qualified name.
        name: String,
        /// The signature the Rust type implies.
        expected: Box<Signature>,
        /// The definition's signature.
        found: Box<Signature>,
    },
    /// Arguments did not fit the signature, or the result could not be read.
    #[error("calling `{name}`: {source}")]
    Call {
        /// Qualified name.
        name: String,
        /// What went wrong.
        #[source]
        source: polyload_ffi::FfiError,
    },
    /// The guest reported an error (a C bundle's `set_error`, a Rust guest's
    /// panic or `Err`, a Lua/Python/JS exception).
    #[error("`{name}` failed: {message}")]
    Guest {
        /// Qualified name of the function that failed.
        name: String,
        /// The guest's message.
        message: String,
        /// The guest's traceback (file and line), when it has one.
        traceback: Option<String>,
    },
    /// A `[rimport]` item cannot be wrapped (it does not exist, is not
    /// public, or a type of its signature cannot cross), or the crate's
    /// API could not be read.
    #[error("rimport of crate `{krate}`: {item}: {reason}")]
    Rimport {
        /// The crate.
        krate: String,
        /// The item(s) concerned (`*` for the whole crate).
        item: String,
        /// Why.
        reason: String,
    },
    /// The definition's bundle was unloaded (or never loaded).
    #[error("`{name}` is not available: its bundle is not loaded (stale handle)")]
    Stale {
        /// Qualified name.
        name: String,
    },
    /// Building a bundle's artifact from its sources (or installing its
    /// packages) failed.
    #[error("building bundle `{bundle}` failed: `{command}` {status}")]
    Build {
        /// Bundle id.
        bundle: String,
        /// The command line that failed.
        command: String,
        /// How it ended ("exited with status 101", "could not start: ...").
        status: String,
        /// The tail of its output (the compiler's or installer's messages).
        output: String,
    },
    /// A Rust guest's embedded build metadata does not match the host.
    #[error("bundle `{bundle}` was built with {field} `{bundle_value}`, but the host expects `{host_value}`; rebuild the bundle")]
    BuildMetadata {
        /// Bundle id.
        bundle: String,
        /// The field (`rustc`, `target`, `profile`, `abi`).
        field: String,
        /// The bundle's value.
        bundle_value: String,
        /// The host's value.
        host_value: String,
    },
    /// A reload would change the signature of a live export; typed handles
    /// made for the old signature would call with the wrong types.
    #[error("reloading bundle `{bundle}` would change `{bundle}.{name}` from `{old}` to `{new}`; reload with signature changes allowed to accept it (existing typed handles then go stale)")]
    SignatureChange {
        /// Bundle id.
        bundle: String,
        /// The export.
        name: String,
        /// Its live signature.
        old: Box<Signature>,
        /// The new version's signature.
        new: Box<Signature>,
    },
    /// An operation that needs a feature this build or loader lacks.
    #[error("{0}")]
    Unsupported(String),
}

/// How a bundle's definitions differ from its manifest's `[exports]`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExportProblem {
    /// Declared (at `line`) but not defined by the bundle.
    Undefined {
        /// The export.
        name: String,
        /// Its line in the manifest.
        line: usize,
    },
    /// Defined by the bundle but not declared.
    Undeclared {
        /// The definition.
        name: String,
    },
    /// Declared with one signature and defined with another.
    Signature {
        /// The export.
        name: String,
        /// Its line in the manifest.
        line: usize,
        /// The manifest's signature.
        declared: Signature,
        /// The bundle's.
        defined: Signature,
    },
}

impl fmt::Display for ExportProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExportProblem::Undefined { name, line } => write!(
                f,
                "export `{name}` is declared (line {line}) but the bundle does not define it"
            ),
            ExportProblem::Undeclared { name } => write!(
                f,
                "the bundle defines `{name}`, which [exports] does not declare"
            ),
            ExportProblem::Signature {
                name,
                line,
                declared,
                defined,
            } => write!(
                f,
                "export `{name}` is declared `{declared}` (line {line}), but the bundle defines `{defined}`"
            ),
        }
    }
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
