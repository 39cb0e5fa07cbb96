//! polyload: load bundles (native shared libraries, later Lua, Python and
//! JavaScript sources) at run time and call what they export as if it were
//! the host's own code, with hot reload.
//!
//! Data flows one way:
//!
//! ```text
//! bundle dir ─► manifest.toml ─► (build on demand) ─► loader ─► namespace ─► caller
//! ```
//!
//! * [`Manifest`] — a bundle's `manifest.toml`, parsed and checked.
//! * [`builder`] — builds `cargo`/`cc` bundles on demand, cached by a hash of
//!   their inputs and toolchain.
//! * [`BundleLoader`](loader::BundleLoader) — turns an artifact into
//!   definitions; [`NativeLoader`](loader::NativeLoader)
//!   handles shared libraries through the C ABI of `polyload-abi`.
//! * the namespace — every definition (`bundle.function`), each behind a slot
//!   that always reaches the newest version.
//! * [`Runtime`] — ties them together: [`Runtime::load_dir`],
//!   [`Runtime::function`] (typed handle), [`Runtime::call`] (dynamic call).
//! * [`SymbolProvider`] — static, dynamic and chained symbol lookup for
//!   hosts and JITs.
//!
//! # Example
//!
//! ```
//! # fn main() -> polyload::Result<()> {
//! # std::env::set_current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).unwrap();
//! use polyload::{Runtime, Value};
//! let rt = Runtime::new()?;                        // cache: ./target/polyload
//! rt.load_bundle("examples/bundles/hello")?;       // C, built on demand
//! rt.load_bundle("examples/bundles/textstats")?;   // Rust, built with cargo
//! let add = rt.function::<extern "C" fn(i64, i64) -> i64>("hello.add")?;
//! assert_eq!(add.call((2, 3))?, 5);
//! let n = rt.call("textstats.word_count", &[Value::from("a b c")])?;
//! assert_eq!(n, Value::U64(3));
//! # Ok(()) }
//! ```
//!
//! Language loaders are crates of their own, registered with
//! [`RuntimeBuilder::loader`] (`polyload_lua::LuaLoader`,
//! `polyload_python::PythonLoader`, `polyload_js::JsLoader`).
//!
//! # Safety model
//! Loading a bundle runs its code (library initialisers, `polyload_bundle_init`),
//! so loading is trusting. Once loaded, calls are checked against the
//! manifest's signatures, guest errors and Rust guest panics come back as
//! [`Error::Guest`], and retired code is unmapped only after every thread
//! that could be running it has left, whatever order the host drops things
//! in: dropping the last [`Runtime`] retires every bundle the same way, and
//! handles that outlive it answer [`Error::Stale`].
//!
//! # Crate features
//! * `jit` (default): per-signature marshallers compiled with cranelift for
//!   dynamic calls that pass structs by value (`polyload-ffi`'s `jit`).
//! * `rimport` (default): bundles generated from a crate on crates.io
//!   ([`rimport`]).
//! * `fuzzing`: the `fuzzing` module, entry points for the fuzz targets
//!   in `fuzz/` (not a stable API).
//!
//! Language loaders live in their own crates (`polyload-lua`,
//! `polyload-python`, `polyload-js`) and are registered with
//! [`RuntimeBuilder::loader`]; the `polyload` CLI enables them by feature.
#![warn(missing_docs)]

pub mod builder;
mod error;
mod function;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod host;
pub mod loader;
pub mod manifest;
mod namespace;
mod native;
pub mod provider;
mod reclaim;
pub mod reload;
pub mod rimport;
mod runtime;
mod scope;
pub mod watch;

pub use error::{Error, ExportProblem, Result};
pub use function::{CFunction, CReturn, CType, DynamicFunction, Function};
pub use loader::{BundleSource, GuestError};
pub use manifest::Manifest;
pub use namespace::{DefinitionInfo, DefinitionKind};
pub use polyload_abi::{AbiVersion, PolyloadBytes, PolyloadStr};
pub use polyload_ffi::{FfiType, Signature, Value};
pub use provider::{
    create_provider, ChainedProvider, DynamicProvider, RuntimeLoadMode, StaticProvider,
    SymbolProvider,
};
pub use reload::{Event, ReloadOptions};
pub use runtime::{bundle_dirs, scan_dir, BundleInfo, Runtime, RuntimeBuilder, CACHE_DIR_ENV};
pub use scope::Scope;
pub use watch::Watcher;
