//! Watching bundle directories: rebuild and reload on change.

use crate::{Result, Runtime};
use notify_debouncer_mini::{new_debouncer, notify::RecursiveMode, DebounceEventResult, Debouncer};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long file events settle before a reload (editors write in bursts).
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// Watches directories and reloads the bundles whose files change; stops
/// when dropped. Outcomes arrive as [`crate::Event`]s
/// ([`Runtime::subscribe`]).
pub struct Watcher {
    _debouncer: Debouncer<notify_debouncer_mini::notify::RecommendedWatcher>,
    dirs: Vec<PathBuf>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").field("dirs", &self.dirs).finish()
    }
}

/// The loaded bundles a set of changed paths concerns: for a bundle with a
/// `[build]` section any file in its directory (outside `target/` and
/// hidden entries); otherwise its artifact or its manifest.
pub(crate) fn affected(rt: &Runtime, paths: &[PathBuf]) -> BTreeMap<String, BTreeSet<PathBuf>> {
    let mut out: BTreeMap<String, BTreeSet<PathBuf>> = BTreeMap::new();
    for b in rt.bundles() {
        let m = &b.manifest;
        let dir = canonical(m.dir());
        for p in paths {
            let p = canonical(p);
            let Ok(rel) = p.strip_prefix(&dir) else {
                continue;
            };
            let ignored = rel.components().any(|c| {
                let s = c.as_os_str().to_string_lossy();
                s == "target" || s == "node_modules" || s.starts_with('.') || s == "__pycache__"
            });
            if ignored {
                continue;
            }
            let relevant = m.build.is_some() || rel == m.file || rel == Path::new("manifest.toml");
            if relevant {
                out.entry(m.id.clone())
                    .or_default()
                    .insert(rel.to_path_buf());
            }
        }
    }
    out
}

fn canonical(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    // A deleted file: canonicalise its parent.
    match (
        p.parent().and_then(|d| d.canonicalize().ok()),
        p.file_name(),
    ) {
        (Some(d), Some(f)) => d.join(f),
        _ => p.to_path_buf(),
    }
}

impl Runtime {
    /// Watches `dirs` (recursively) and reloads, rebuilding first when the
    /// bundle has a `[build]` section, every loaded bundle whose files
    /// change. A failed rebuild or reload leaves the old version live and is
    /// reported as [`crate::Event::Failed`].
    ///
    /// # Errors
    /// [`crate::Error::Io`] if a directory cannot be watched.
    pub fn watch<P: AsRef<Path>>(&self, dirs: &[P]) -> Result<Watcher> {
        let rt = self.clone();
        let mut debouncer = new_debouncer(DEBOUNCE, move |res: DebounceEventResult| match res {
            Ok(events) => {
                let paths: Vec<PathBuf> = events.into_iter().map(|e| e.path).collect();
                for (id, changed) in affected(&rt, &paths) {
                    rt.subscribers().emit(crate::Event::Changed {
                        bundle: id.clone(),
                        paths: changed.into_iter().collect(),
                    });
                    // The outcome reaches subscribers as an event.
                    let _ = rt.reload(&id);
                }
            }
            Err(e) => tracing::warn!("file watching error: {e}"),
        })
        .map_err(|e| crate::Error::io(PathBuf::from("."), std::io::Error::other(e)))?;
        let mut watched = Vec::new();
        for d in dirs {
            let d = d.as_ref();
            debouncer
                .watcher()
                .watch(d, RecursiveMode::Recursive)
                .map_err(|e| crate::Error::io(d, std::io::Error::other(e)))?;
            watched.push(d.to_path_buf());
        }
        Ok(Watcher {
            _debouncer: debouncer,
            dirs: watched,
        })
    }
}
