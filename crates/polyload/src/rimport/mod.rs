//! rimport: a crate from crates.io becomes a bundle on demand.
//!
//! A manifest with a `[rimport]` section (see [`RimportSpec`]) names a
//! crate, a version requirement and items; loading it
//!
//! 1. resolves the requirement with cargo in a probe crate (once; the
//!    resolved version is pinned in the generated crate's `Cargo.lock`);
//! 2. reads the crate's public API from rustdoc's JSON
//!    (`cargo rustdoc -- -Z unstable-options --output-format json`, with
//!    `RUSTC_BOOTSTRAP=1` on a stable toolchain), parsed with
//!    `rustdoc-types`; a JSON format version other than the one polyload
//!    reads is an error naming both;
//! 3. plans a wrapper per item from its real signature, and writes a
//!    `cdylib` crate that exports them through `polyload-guest`
//!    (`#[export]`: panics caught, build metadata embedded) under
//!    `<cache>/rimport/<crate>/<hash>/crate`, the hash covering the spec
//!    (crate, requirement, features, items, JSON types), `rustc -vV` (the
//!    compiler and target) and the generator's version;
//! 4. builds and loads it like any Rust bundle (`[build] cargo`, cached by
//!    the builder's own hash).
//!
//! A second load of the same spec runs neither cargo nor a compiler.
//!
//! # Names
//! A definition is named after the item's path from the crate root with
//! `::` as `_`, and generic arguments appended: `Version::parse` ->
//! `semver.Version_parse`, `gcd::<i64>` -> `num_integer.gcd_i64`
//! (`{ path = .., name = ".." }` names it explicitly). Each handle type `T`
//! also gets `T_drop(handle<T>)` and, when it implements `Display` (else
//! `Debug`), `T_to_string(handle<T>) -> str`; `live_handles() -> u64`
//! counts the live handles.
//!
//! # How types cross
//! | Rust | signature |
//! | --- | --- |
//! | integers, `f32`, `f64`, `bool` (`usize`/`isize` as `u64`/`i64`, range-checked) | the same |
//! | `char` | `str` of one character |
//! | `&str`, `String`, `Cow<str>`, `Box<str>` | `str` |
//! | `&[u8]`, `Vec<u8>` | `bytes` |
//! | `&Path`, `PathBuf` (results only) | `str` (lossy UTF-8) |
//! | `std::cmp::Ordering` | `i32`: -1, 0, 1 |
//! | `Result<T, E>` | `T`; an `Err` becomes an error value with `E`'s `Display` |
//! | `Option<T>`, `Vec<T>`, slices, tuples, iterators (collected) | `json` |
//! | a borrowed result type (with lifetimes, e.g. `regex::Match<'h>`) | `json`: an object of its public `&self` getters |
//! | a type listed in `json = [..]` | `json`, through its serde impls |
//! | any other public type of the crate | `handle<crate::Type>` (a `u64` id, e.g. `handle<semver::Version>`; inside `json`, a number) |
//!
//! # Generics
//! Generic items are instantiated at the types the item names, in its
//! `generics` (or a turbofish, `"gcd::<i64>"`): primitives, `&str`,
//! `String`, `&[T]`, `Vec<T>`, `Option<T>`. A method of a generic type
//! takes the type's parameters without defaults first, then its own:
//! `{ path = "IndexSet::contains", generics = ["i64", "i64"] }` is
//! `IndexSet<i64>::contains::<i64>` (parameters with defaults stay at
//! them, as `IndexSet<i64>` is `IndexSet<i64, RandomState>`). Each
//! instantiation is its own handle type, named with its arguments
//! (`handle<indexmap::IndexSet<i64>>`, definitions `IndexSet_i64_drop`,
//! `IndexSet_i64_to_string`), so a set of `i64` passed where a set of
//! `String` is expected is an error. `examples/rimport/ixset` shows both;
//! `examples/rimport/complex` reads the public fields of `Complex<f64>`.
//!
//! `Type::name` is the type's method `name` (inherent or from a trait it
//! implements); when that method cannot cross, or there is none, a public
//! field `name`, read through `&self` (`Complex::re`: the field, since
//! `ComplexFloat::re` returns an associated type).
//!
//! Handles are ids into a table inside the generated library
//! (`polyload_guest::handle`): every use checks the value's type (a
//! `Regex` handle passed as a `Version` is an error naming both), a freed
//! id is an error, and the table is emptied when the version is retired
//! (`polyload_bundle_fini`, once no thread can be inside it).
//! `&self` calls hold the table shared (they run in parallel), calls that
//! take `&mut self`, consume a non-`Clone` value or make handles from
//! handles hold it exclusively.

#[cfg(feature = "rimport")]
mod api;
#[cfg(feature = "rimport")]
mod codegen;
#[cfg(feature = "rimport")]
mod plan;
pub mod spec;

pub use spec::{RimportItem, RimportSpec};

#[cfg(feature = "rimport")]
mod dylib;
#[cfg(feature = "rimport")]
mod generate;
#[cfg(feature = "rimport")]
pub use dylib::{Cell, RustDylib};
#[cfg(feature = "rimport")]
pub use generate::{guest_dir, prepare};

use crate::manifest::Manifest;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Writes a bundle directory whose manifest imports `items` of `krate`
/// (the CLI's `polyload rimport`): `dir/manifest.toml`, nothing else; the
/// crate is generated and built when the bundle is loaded. Returns the
/// manifest's path.
///
/// ```
/// use polyload::manifest::{RimportItem, RimportSpec};
/// let spec = RimportSpec {
///     krate: "semver".into(),
///     version: "1".into(),
///     features: vec![],
///     default_features: true,
///     items: vec![RimportItem::Path("Version::parse".into())],
///     json: vec![],
/// };
/// let dir = tempfile::tempdir()?;
/// let path = polyload::rimport::write_bundle(&dir.path().join("sv"), "semver", &spec)?;
/// let m = polyload::Manifest::from_dir(path.parent().unwrap())?;
/// assert_eq!(m.rimport, Some(spec));
/// assert!(m.exports.is_empty()); // filled in from the crate when loaded
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Io`]; [`Error::Manifest`] if the spec is invalid (checked by
/// parsing the written manifest).
pub fn write_bundle(dir: &Path, id: &str, spec: &RimportSpec) -> Result<PathBuf> {
    let mut s = format!(
        "# Written by `polyload rimport`; the bundle is generated from the crate when loaded.\nid = {id:?}\nloader = \"native\"\n\n[rimport]\ncrate = {:?}\nversion = {:?}\n",
        spec.krate, spec.version
    );
    if !spec.features.is_empty() {
        s.push_str(&format!("features = {:?}\n", spec.features));
    }
    if !spec.default_features {
        s.push_str("default-features = false\n");
    }
    let items: Vec<String> = spec
        .items
        .iter()
        .map(|i| format!("{:?}", item_text(i)))
        .collect();
    s.push_str(&format!("items = [{}]\n", items.join(", ")));
    if !spec.json.is_empty() {
        s.push_str(&format!("json = {:?}\n", spec.json));
    }
    let path = dir.join("manifest.toml");
    Manifest::parse(&s, &path)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    std::fs::write(&path, s).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

fn item_text(item: &RimportItem) -> String {
    let (path, generics, _) = item.parts();
    if generics.is_empty() {
        path
    } else {
        format!("{path}::<{}>", generics.join(", "))
    }
}
