//! Installing a bundle's packages (pip, npm, ...) into its cache, once.
//!
//! [`install_once`] keys an install directory by a hash of everything that
//! decides its contents (the tool and its version, the package list), runs
//! the tool into a temporary directory beside it, writes a completion
//! marker and renames the directory into place. A finished install is
//! reused without running anything; a failed or interrupted one is never
//! taken for finished; two processes installing the same key at once both
//! succeed (the second rename finds the first's copy); and an upgraded tool
//! gets a new directory instead of a stale one.

use crate::{Error, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The file that marks an install directory as complete.
pub const COMPLETE: &str = ".polyload-complete";

/// Lines of a tool's stderr kept in an install or build error.
const TAIL_LINES: usize = 40;

/// One install: what to run and what decides its result.
#[derive(Debug)]
pub struct Install<'a> {
    /// The bundle the packages are for (named in errors).
    pub bundle: &'a str,
    /// Where install directories live (`<bundle cache>/python`, ...).
    pub root: &'a Path,
    /// The tool and its version as the key sees them (`python3.11 pip
    /// 23.2.1`, `node v20 npm 11`): a new version installs afresh.
    pub tool: &'a str,
    /// The packages, as written in the manifest (part of the key, and
    /// named in errors).
    pub packages: &'a [String],
}

impl Install<'_> {
    /// The directory this install lives in once complete.
    pub fn dir(&self) -> PathBuf {
        let mut hash = Sha256::new();
        hash.update(self.tool.as_bytes());
        for p in self.packages {
            hash.update(b"\0");
            hash.update(p.as_bytes());
        }
        let key: String = hash
            .finalize()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect();
        self.root.join(key)
    }

    /// The packages as an error message lists them: `` `a`, `b` ``.
    pub fn listed(&self) -> String {
        self.packages
            .iter()
            .map(|r| format!("`{r}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Installs `install` once: returns its directory at once if a complete
/// install is there, else runs the command `command(tmp)` makes for a
/// temporary directory `tmp` and moves `tmp` into place when it succeeds.
///
/// # Errors
/// [`Error::Build`] naming the command and the packages, with the last
/// lines of the tool's stderr in its `output`, when the tool fails or cannot
/// start; [`Error::Io`] for the cache directory.
pub fn install_once(
    install: &Install<'_>,
    command: impl FnOnce(&Path) -> Command,
) -> Result<PathBuf> {
    let dir = install.dir();
    if dir.join(COMPLETE).is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(install.root).map_err(|e| Error::io(install.root, e))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = install
        .root
        .join(format!("{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let mut cmd = command(&tmp);
    let line = command_line(&cmd);
    tracing::info!(bundle = %install.bundle, command = %line, "installing packages");
    let out = cmd.output().map_err(|e| Error::Build {
        bundle: install.bundle.to_string(),
        command: line.clone(),
        status: format!("could not start: {e}"),
        output: String::new(),
    })?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(Error::Build {
            bundle: install.bundle.to_string(),
            command: line,
            status: format!("{} (could not install {})", out.status, install.listed()),
            output: tail(&out.stderr),
        });
    }
    std::fs::write(tmp.join(COMPLETE), install.listed()).map_err(|e| Error::io(&tmp, e))?;
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another process finished the same install first: use its copy.
        let _ = std::fs::remove_dir_all(&tmp);
        if !dir.join(COMPLETE).is_file() {
            return Err(Error::io(
                &dir,
                std::io::Error::other("could not move the install into place"),
            ));
        }
    }
    Ok(dir)
}

/// A command as a user would type it.
pub(crate) fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The last lines of a tool's output.
pub(crate) fn tail(output: &[u8]) -> String {
    let text = String::from_utf8_lossy(output);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

/// The first line a command prints for `args` (`node --version`), trimmed,
/// for an install key; `None` if it cannot run.
pub fn tool_version(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status.success().then(|| {
        let text = String::from_utf8_lossy(&out.stdout);
        let text = if text.trim().is_empty() {
            String::from_utf8_lossy(&out.stderr).into_owned()
        } else {
            text.into_owned()
        };
        text.lines().next().unwrap_or("").trim().to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_once_keys_by_tool_version_and_keeps_failures_out() {
        let dir = tempfile::tempdir().unwrap();
        let packages = vec!["a==1".to_string()];
        let mut install = Install {
            bundle: "b",
            root: dir.path(),
            tool: "tool 1.0",
            packages: &packages,
        };
        let runs = std::cell::Cell::new(0);
        let make = |tmp: &Path| {
            runs.set(runs.get() + 1);
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("echo ok > {}/installed", tmp.display()));
            c
        };
        let first = install_once(&install, make).unwrap();
        assert!(first.join("installed").is_file());
        assert_eq!(install_once(&install, make).unwrap(), first);
        assert_eq!(runs.get(), 1, "a complete install is reused");
        install.tool = "tool 2.0";
        assert_ne!(
            install_once(&install, make).unwrap(),
            first,
            "a new tool version"
        );
        install.tool = "tool 3.0";
        let e = install_once(&install, |_| {
            let mut c = Command::new("sh");
            c.arg("-c").arg("echo one >&2; echo two >&2; exit 3");
            c
        })
        .unwrap_err();
        let Error::Build { status, output, .. } = &e else {
            panic!("{e}")
        };
        assert!(status.contains("could not install `a==1`"), "{status}");
        assert_eq!(output, "one\ntwo");
        assert!(
            !install.dir().exists(),
            "a failed install leaves nothing in place"
        );
    }
}
