//! `[python] requirements`: pip installs into the bundle's cache, through
//! the toolkit's [`install_once`] (keyed by the interpreter, pip's version
//! and the requirement list).

use polyload::loader::{install_once, tool_version, Install, LoadContext};
use polyload::Result;
use std::path::PathBuf;

/// Makes sure `requirements` are installed for `cx`'s bundle; returns the
/// directory holding them (`None` when there are none).
///
/// # Errors
/// [`polyload::Error::Build`] naming the pip command (hence the packages)
/// and pip's own message when the install fails; [`polyload::Error::Io`]
/// for the cache.
pub(crate) fn ensure(
    cx: &LoadContext<'_>,
    python: &str,
    requirements: &[String],
) -> Result<Option<PathBuf>> {
    if requirements.is_empty() {
        return Ok(None);
    }
    let pip = tool_version(python, &["-m", "pip", "--version"]).unwrap_or_default();
    let tool = format!("{python}\n{pip}");
    let root = cx.cache_dir().join("python");
    let install = Install {
        bundle: &cx.manifest().id,
        root: &root,
        tool: &tool,
        packages: requirements,
    };
    install_once(&install, |tmp| {
        let mut cmd = std::process::Command::new(python);
        cmd.args([
            "-m",
            "pip",
            "install",
            "--no-input",
            "--disable-pip-version-check",
            "--quiet",
            "--target",
        ])
        .arg(tmp)
        .args(requirements)
        .env("PYTHONNOUSERSITE", "1")
        .env_remove("PIP_REQUIRE_VIRTUALENV");
        cmd
    })
    .map(Some)
}
