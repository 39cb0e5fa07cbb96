//! `[python] requirements`: pip installs into the bundle's build cache.
//!
//! The target directory is `<cache_dir>/python/<hash>`, where `<hash>` covers
//! the interpreter and the requirement list, so an unchanged list is
//! installed once and a changed list gets a new directory. pip writes into a
//! temporary directory that is renamed into place only when it succeeded,
//! so a failed or interrupted install is never taken for a finished one.

use polyload::{Error, LoadContext, Result};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::process::Command;

const COMPLETE: &str = ".polyload-complete";

/// Makes sure `cx.manifest`'s requirements are installed; returns the
/// directory to put on `sys.path` (`None` when it has none).
///
/// # Errors
/// [`Error::Build`] naming the pip command (hence the packages) and pip's
/// own message when the install fails; [`Error::Io`] for the cache.
pub(crate) fn ensure(cx: &LoadContext<'_>, python: &str) -> Result<Option<PathBuf>> {
    let reqs: Vec<&String> = cx
        .manifest
        .python
        .iter()
        .flat_map(|p| p.requirements.iter())
        .collect();
    if reqs.is_empty() {
        return Ok(None);
    }
    let mut hash = Sha256::new();
    hash.update(python.as_bytes());
    for r in &reqs {
        hash.update(b"\0");
        hash.update(r.as_bytes());
    }
    let key: String = hash
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    let root = cx.cache_dir.join("python");
    let dir = root.join(&key);
    if dir.join(COMPLETE).is_file() {
        return Ok(Some(dir));
    }
    std::fs::create_dir_all(&root).map_err(|e| Error::Io {
        path: root.clone(),
        source: e,
    })?;
    let tmp = root.join(format!("{key}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let mut cmd = Command::new(python);
    cmd.args([
        "-m",
        "pip",
        "install",
        "--no-input",
        "--disable-pip-version-check",
        "--quiet",
        "--target",
    ])
    .arg(&tmp)
    .args(&reqs)
    .env("PYTHONNOUSERSITE", "1")
    .env_remove("PIP_REQUIRE_VIRTUALENV");
    let command = format!(
        "{python} -m pip install --target {} {}",
        tmp.display(),
        quoted(&reqs)
    );
    tracing::info!(bundle = %cx.manifest.id, %command, "installing Python packages");
    let out = cmd.output().map_err(|e| Error::Build {
        bundle: cx.manifest.id.clone(),
        command: command.clone(),
        status: format!("could not start: {e}"),
        output: String::new(),
    })?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        let text = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        return Err(Error::Build {
            bundle: cx.manifest.id.clone(),
            command,
            status: format!("{} (pip could not install {})", out.status, quoted(&reqs)),
            output: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    std::fs::write(tmp.join(COMPLETE), quoted(&reqs)).map_err(|e| Error::Io {
        path: tmp.clone(),
        source: e,
    })?;
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another process finished the same install first: use its copy.
        let _ = std::fs::remove_dir_all(&tmp);
        if !dir.join(COMPLETE).is_file() {
            return Err(Error::Io {
                path: dir,
                source: std::io::Error::other("could not move the pip install into place"),
            });
        }
    }
    Ok(Some(dir))
}

fn quoted(reqs: &[&String]) -> String {
    reqs.iter()
        .map(|r| format!("`{r}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
