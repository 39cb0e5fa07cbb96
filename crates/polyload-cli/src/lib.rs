//! The library behind the `polyload` command: everything the binary does
//! besides parsing its command line and printing, so it can be tested (and
//! fuzzed) without running a process.
//!
//! * [`args`]: command-line text to [`polyload::Value`]s by signature.
//! * [`ffi`]: `polyload ffi`, a C function called by a signature given as
//!   text.
//! * [`report`]: the documented JSON shapes of `--json` output.
//! * [`bench`](mod@bench): `polyload bench`, the time of a call.
#![warn(missing_docs)]

pub mod args;
pub mod bench;
pub mod ffi;
pub mod report;

use polyload::Manifest;
use std::path::{Path, PathBuf};

/// Why [`locate`] found no bundle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocateError {
    /// No readable manifest in the directory has the id.
    #[error("no bundle `{id}` in {}{}", dir.display(), unreadable_note(unreadable))]
    NoBundle {
        /// The id asked for.
        id: String,
        /// The directory searched.
        dir: PathBuf,
        /// Manifests there that could not be read (one may be the bundle).
        unreadable: Vec<PathBuf>,
    },
    /// The directory, or the manifest that must be the bundle, could not
    /// be read.
    #[error(transparent)]
    Polyload(#[from] polyload::Error),
}

fn unreadable_note(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return String::new();
    }
    let list: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    format!(" (manifests that could not be read: {})", list.join(", "))
}

/// The directory of bundle `id` in `dir`: `dir` itself when it is that
/// bundle, else the subdirectory whose manifest has that id. Other
/// bundles' manifests may be malformed without harm.
///
/// # Errors
/// [`LocateError::Polyload`] if `dir` cannot be read, or with the manifest
/// error of `dir` (when it is a bundle) or of `dir/id`;
/// [`LocateError::NoBundle`] otherwise, listing unreadable manifests.
pub fn locate(dir: &Path, id: &str) -> Result<PathBuf, LocateError> {
    let no_bundle = |unreadable| LocateError::NoBundle {
        id: id.to_string(),
        dir: dir.to_path_buf(),
        unreadable,
    };
    if dir.join("manifest.toml").is_file() {
        let m = Manifest::from_dir(dir)?;
        return if m.id == id {
            Ok(dir.to_path_buf())
        } else {
            Err(no_bundle(Vec::new()))
        };
    }
    let mut unreadable = Vec::new();
    for d in polyload::bundle_dirs(dir)? {
        match Manifest::from_dir(&d) {
            Ok(m) if m.id == id => return Ok(d),
            Ok(_) => {}
            Err(e) if d.file_name().is_some_and(|n| n == id) => return Err(e.into()),
            Err(_) => unreadable.push(d.join("manifest.toml")),
        }
    }
    Err(no_bundle(unreadable))
}
