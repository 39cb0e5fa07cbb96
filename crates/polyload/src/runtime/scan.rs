//! Finding bundles in a directory and ordering them by dependency.

use crate::manifest::Manifest;
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The manifests in `dir`: its own if it is a bundle, else those of its
/// immediate subdirectories, sorted by directory name.
///
/// # Errors
/// [`Error::Io`] if `dir` cannot be read; [`Error::Manifest`] for the first
/// malformed manifest.
pub fn scan_dir(dir: &Path) -> Result<Vec<Manifest>> {
    let (good, bad) = scan_dir_lenient(dir)?;
    match bad.into_iter().next() {
        Some((_, e)) => Err(e),
        None => Ok(good),
    }
}

/// The immediate subdirectories of `dir` that hold a `manifest.toml`,
/// sorted by name (the directories [`scan_dir`] reads; their manifests
/// are not parsed).
///
/// # Errors
/// [`Error::Io`] if `dir` cannot be read.
pub fn bundle_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut dirs: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("manifest.toml").is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// A bundle directory whose manifest did not parse, with the error.
type Malformed = (PathBuf, Error);

/// Like [`scan_dir`], but a malformed manifest does not stop the scan: the
/// good manifests, and each bad one's directory with its error.
pub(super) fn scan_dir_lenient(dir: &Path) -> Result<(Vec<Manifest>, Vec<Malformed>)> {
    if dir.join("manifest.toml").is_file() {
        return Ok((vec![Manifest::from_dir(dir)?], Vec::new()));
    }
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for d in bundle_dirs(dir)? {
        match Manifest::from_dir(&d) {
            Ok(m) => good.push(m),
            Err(e) => bad.push((d, e)),
        }
    }
    Ok((good, bad))
}

/// Indexes of `manifests` in an order where each bundle's dependencies come
/// first (ties by id). Dependencies may also be satisfied by `loaded`.
pub(crate) fn dependency_order(
    manifests: &[Manifest],
    loaded: &HashMap<String, semver::Version>,
) -> Result<Vec<usize>> {
    let by_id: HashMap<&str, usize> = manifests
        .iter()
        .enumerate()
        .map(|(i, m)| (m.id.as_str(), i))
        .collect();
    for m in manifests {
        for d in &m.dependencies {
            match (by_id.get(d.id.as_str()), loaded.get(&d.id)) {
                (Some(&i), _) if d.version.matches(&manifests[i].version) => {}
                (None, Some(v)) if d.version.matches(v) => {}
                (Some(&i), _) => return Err(missing_dep(m, d, Some(&manifests[i].version))),
                (None, found) => return Err(missing_dep(m, d, found)),
            }
        }
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(
        i: usize,
        ms: &[Manifest],
        by_id: &HashMap<&str, usize>,
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
        out: &mut Vec<usize>,
    ) -> Result<()> {
        match marks[i] {
            Mark::Done => return Ok(()),
            Mark::Active => {
                let start = stack.iter().position(|&s| s == i).unwrap_or(0);
                let mut cycle: Vec<String> =
                    stack[start..].iter().map(|&s| ms[s].id.clone()).collect();
                cycle.push(ms[i].id.clone());
                return Err(Error::DependencyCycle { cycle });
            }
            Mark::New => {}
        }
        marks[i] = Mark::Active;
        stack.push(i);
        let mut deps: Vec<usize> = ms[i]
            .dependencies
            .iter()
            .filter_map(|d| by_id.get(d.id.as_str()).copied())
            .collect();
        deps.sort_by(|a, b| ms[*a].id.cmp(&ms[*b].id));
        for d in deps {
            visit(d, ms, by_id, marks, stack, out)?;
        }
        stack.pop();
        marks[i] = Mark::Done;
        out.push(i);
        Ok(())
    }
    let mut ids: Vec<usize> = (0..manifests.len()).collect();
    ids.sort_by(|a, b| manifests[*a].id.cmp(&manifests[*b].id));
    let mut marks = vec![Mark::New; manifests.len()];
    let mut out = Vec::new();
    for i in ids {
        visit(i, manifests, &by_id, &mut marks, &mut Vec::new(), &mut out)?;
    }
    Ok(out)
}

pub(super) fn missing_dep(
    m: &Manifest,
    dep: &crate::manifest::Dependency,
    found: Option<&semver::Version>,
) -> Error {
    Error::MissingDependency {
        bundle: m.id.clone(),
        dependency: dep.id.clone(),
        requirement: dep.version.clone(),
        found: found.cloned(),
    }
}
