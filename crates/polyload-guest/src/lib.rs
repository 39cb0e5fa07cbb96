//! Rust guest SDK: write polyload bundles as plain Rust functions.
//!
//! ```ignore
//! use polyload_guest::export;
//!
//! /// Words are maximal runs of non-whitespace.
//! #[export]
//! fn word_count(text: &str) -> u64 {
//!     text.split_whitespace().count() as u64
//! }
//!
//! #[export]
//! fn checked_div(a: i64, b: i64) -> Result<i64, String> {
//!     if b == 0 { Err("division by zero".into()) } else { Ok(a / b) }
//! }
//!
//! polyload_guest::bundle! {
//!     exports: [word_count, checked_div],
//! }
//! ```
//!
//! with, next to the crate's `Cargo.toml` (a `cdylib`:
//! `[lib] crate-type = ["cdylib"]`), the bundle's `manifest.toml`:
//!
//! ```toml
//! id = "stats"
//! version = "0.1.0"
//! loader = "native"
//! file = "libstats.so"
//! abi = "1.0"
//! [exports]
//! word_count = "fn(str) -> u64"
//! checked_div = "fn(i64, i64) -> i64"
//! [build]
//! cargo = "."
//! ```
//!
//! # `#[export]`
//!
//! On a plain function (no generics, `async`, `self` or variadics), at any
//! module level. It keeps the function as written and adds, beside it, a
//! hidden module of the same name holding an `extern "C"` wrapper and the
//! constant `SIGNATURE` (`word_count::SIGNATURE == "fn(str) -> u64"`).
//!
//! The signature is derived from the Rust types, never written by hand: each
//! parameter type implements [`GuestArg`] and the return type [`GuestRet`],
//! and their `TYPE` constants (`"str"`, `"u64"`) are assembled into the
//! canonical string `fn(T1, T2) -> R` (`fn(T1)` for a `()` return) at
//! compile time. A type without an implementation is a compile error.
//!
//! # `bundle!`
//!
//! Once per bundle, **at the crate root**:
//!
//! ```ignore
//! polyload_guest::bundle! {
//!     exports: [word_count, checked_div],   // paths to #[export] functions
//!     manifest: "manifest.toml",            // optional, this is the default
//! }
//! ```
//!
//! (`polyload_guest::bundle!(word_count, checked_div);` is shorthand for the
//! same with the default manifest.) It emits the three ABI symbols:
//! `polyload_abi_version`, `polyload_bundle_init` (which stores the host
//! table for [`log`], [`lookup`] and returned buffers, then defines each
//! export with its derived signature) and `polyload_build_info`.
//!
//! It reads the manifest (relative to the crate's `Cargo.toml`) at compile
//! time, so that forgetting something is a compile error rather than a load
//! error:
//! * an export listed in `[exports]` but not in `exports:` (or the reverse);
//! * a derived signature that differs from the manifest's (compared up to
//!   whitespace);
//! * an `#[export]` function whose module has no `bundle!` at the crate root;
//! * a function listed in `exports:` without `#[export]`.
//!
//! An `#[export]` function listed nowhere is dead code, which rustc warns
//! about. The manifest's `id` names the bundle in panic messages. A crate
//! without a manifest (a test, say) writes `id: "name"` instead of
//! `manifest:`, and gets no cross-check. A crate built with `panic = "abort"`
//! is refused (panics could not be caught).
//!
//! # Type mapping
//!
//! | Rust parameter | Rust return | signature | C ABI |
//! | --- | --- | --- | --- |
//! | `bool`, `i8`..`i64`, `u8`..`u64`, `f32`, `f64` | same | `bool`, `i8`.. | same |
//! | `*const c_void`, `*mut c_void` | same | `ptr` | same |
//! | `&str` | `String`, `&'static str` | `str` | [`PolyloadStr`](polyload_abi::PolyloadStr) by value |
//! | `&[u8]` | `Vec<u8>` | `bytes` | [`PolyloadBytes`](polyload_abi::PolyloadBytes) by value |
//! | `serde_json::Value` (feature `json`) | same | `json` | `PolyloadStr` by value |
//! | | `()` | `void` (omitted) | |
//! | | `Result<T, E: Display>` | as `T` | `Err` sets the host error |
//!
//! A `&str` argument that is not UTF-8 (or a `json` one that does not parse)
//! is refused with an error before the function runs:
//! `argument 1 of stats.word_count: not valid UTF-8: ...`. Returned buffers are
//! allocated with the host's `alloc` (the caller frees them); an empty one is
//! returned as `{null, 0}`.
//!
//! # Errors and panics
//!
//! A returned `Err(e)` becomes `host.set_error(e.to_string())` and a zero
//! return value (`0`, `false`, null, `{null, 0}`). A panic becomes
//! `host.set_error("panic in <bundle id>.<function>: <panic message>")` and a
//! zero return: the wrapper runs the body inside `std::panic::catch_unwind`,
//! so a panic never unwinds into the host, which keeps running. The default
//! panic hook still prints the panic to stderr; install your own with
//! `std::panic::set_hook` to change that.
//!
//! # Build metadata
//!
//! `polyload_build_info()` returns [`BUILD_INFO`]: UTF-8 text, one
//! `key=value` line per field, each line ending in `\n`, keys in this order:
//!
//! ```text
//! rustc=<the "release:" value of `rustc -vV`, e.g. 1.95.0 or 1.97.0-nightly>
//! target=<target triple, e.g. x86_64-unknown-linux-gnu>
//! profile=<debug|release>
//! abi=<MAJOR.MINOR of polyload_abi::POLYLOAD_ABI_VERSION, e.g. 1.0>
//! guest=<polyload-guest version, e.g. 0.1.0>
//! ```
//!
//! The values are captured by this crate's build script from the toolchain
//! compiling it, which cargo also uses for the bundle: `RUSTC` (run with
//! `-vV`), `TARGET` and `PROFILE` (`release` for `--release` and profiles
//! inheriting from it, `debug` otherwise). Values contain no `=` or newline;
//! split each line at its first `=`. Readers should ignore unknown keys
//! (fields may be added, at the end). The polyload runtime refuses a bundle
//! whose `rustc`, `target` or `abi` differ from its own (`abi`: by the ABI
//! compatibility rule), and, when it built the bundle, whose `profile`
//! differs from the one it asked for.
//!
//! # Cross-bundle calls and logging
//!
//! [`lookup`] resolves `bundle.function` to a stable [`Slot`];
//! [`Slot::get`] reads its current code pointer. [`log`] writes to the
//! host's log.
//!
//! ## Crate features
//!
//! * `json`: `serde_json::Value` as a parameter and return type (`json`).
#![warn(missing_docs)]

pub mod handle;
mod host;
mod types;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use host::{host, log, lookup, Level, Slot};
pub use polyload_abi;
/// Emits a bundle's ABI symbols for its `#[export]` functions; see the
/// [crate docs](crate#bundle).
pub use polyload_guest_macros::bundle;
/// Exports a function from a bundle; see the [crate docs](crate#export).
pub use polyload_guest_macros::export;
/// The `serde_json` this crate's `json` type is (feature `json`), for
/// generated code that cannot name its own dependency.
#[cfg(feature = "json")]
pub use serde_json;
pub use types::{AbiValue, GuestArg, GuestRet};

/// The build metadata `polyload_build_info` returns (format in the
/// [crate docs](crate#build-metadata)).
pub const BUILD_INFO: &str = concat!(
    "rustc=",
    env!("POLYLOAD_GUEST_RUSTC"),
    "\ntarget=",
    env!("POLYLOAD_GUEST_TARGET"),
    "\nprofile=",
    env!("POLYLOAD_GUEST_PROFILE"),
    "\nabi=1.1\nguest=",
    env!("CARGO_PKG_VERSION"),
    "\n"
);

// `concat!` takes literals only, so `abi=` above is written out; this keeps
// it equal to the ABI version the crate is built against.
const _: () = {
    let v = polyload_abi::POLYLOAD_ABI_VERSION;
    assert!(v.major == 1 && v.minor == 1, "update `abi=` in BUILD_INFO");
};

#[cfg(test)]
mod tests;
