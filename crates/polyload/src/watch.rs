//! Watching bundle directories: rebuild and reload on change.
//!
//! File events are debounced (editors write in bursts), filtered by kind
//! (opening or reading a file is not a change: the reload itself reads the
//! manifest and sources, and counting that would reload forever), and then
//! checked against a fingerprint of the bundle's contents: a bundle is
//! reloaded only when the bytes of its relevant files differ from what the
//! last reload saw. One edit gives one reload; an idle directory stays idle.

use crate::{Error, Result, Runtime};
use notify::{EventKind, RecursiveMode, Watcher as _};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long file events must be quiet before a reload (editors write in
/// bursts).
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// The longest a burst of events may postpone a reload.
const MAX_DELAY: Duration = Duration::from_secs(2);

/// Watches directories and reloads the bundles whose files change; stops
/// when dropped (waiting for a reload in progress to finish). Outcomes
/// arrive as [`crate::Event`]s ([`Runtime::subscribe`]).
///
/// A watcher does not keep its runtime alive: once the last [`Runtime`]
/// clone is dropped, it does nothing more.
pub struct Watcher {
    /// Dropped first: it owns the channel's sender, so the worker's
    /// `recv` ends when it goes.
    watcher: Option<notify::RecommendedWatcher>,
    worker: Option<std::thread::JoinHandle<()>>,
    dirs: Vec<PathBuf>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").field("dirs", &self.dirs).finish()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        drop(self.watcher.take());
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// Whether a file event can mean new contents.
fn is_change(kind: &EventKind) -> bool {
    !matches!(kind, EventKind::Access(_))
}

/// Path components the watcher never looks at: build output, package
/// installs, caches and hidden files.
fn ignored(rel: &Path) -> bool {
    rel.components().any(|c| {
        let s = c.as_os_str().to_string_lossy();
        s == "target" || s == "node_modules" || s.starts_with('.') || s == "__pycache__"
    })
}

/// Whether a path relative to a bundle's directory can change the bundle:
/// for a bundle with a `[build]` section any file (outside ignored
/// entries); otherwise its artifact or its manifest.
fn relevant(m: &crate::Manifest, rel: &Path) -> bool {
    !ignored(rel) && (m.build.is_some() || rel == m.file || rel == Path::new("manifest.toml"))
}

/// The loaded bundles a set of changed paths concerns, with those paths
/// relative to each bundle's directory.
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
            if relevant(m, rel) {
                out.entry(m.id.clone())
                    .or_default()
                    .insert(rel.to_path_buf());
            }
        }
    }
    out
}

/// A hash of the names and bytes of every relevant file of bundle `m`.
fn fingerprint(m: &crate::Manifest) -> u64 {
    fn walk(dir: &Path, base: &Path, m: &crate::Manifest, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(rel) = p.strip_prefix(base) else {
                continue;
            };
            if ignored(rel) {
                continue;
            }
            match e.file_type() {
                Ok(t) if t.is_dir() => walk(&p, base, m, out),
                Ok(_) if relevant(m, rel) => out.push(rel.to_path_buf()),
                _ => {}
            }
        }
    }
    let base = m.dir();
    let mut files = Vec::new();
    walk(base, base, m, &mut files);
    files.sort();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in files {
        f.hash(&mut h);
        // A file that cannot be read (being replaced) hashes as absent.
        std::fs::read(base.join(&f)).ok().hash(&mut h);
    }
    h.finish()
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

/// The watcher's thread: batches events, then reloads what changed.
fn work(
    rt: crate::runtime::WeakRuntime,
    events: Receiver<notify::Result<notify::Event>>,
    mut seen: HashMap<String, u64>,
) {
    let mut batch: Vec<PathBuf> = Vec::new();
    let mut first: Option<Instant> = None;
    loop {
        let next = match first {
            None => events.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(t) => {
                let quiet = DEBOUNCE.min(MAX_DELAY.saturating_sub(t.elapsed()));
                events.recv_timeout(quiet)
            }
        };
        match next {
            Ok(Ok(e)) if is_change(&e.kind) => {
                batch.extend(e.paths);
                first.get_or_insert_with(Instant::now);
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!("file watching error: {e}"),
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {
                first = None;
                let Some(rt) = rt.upgrade() else { return };
                let paths = std::mem::take(&mut batch);
                for (id, changed) in affected(&rt, &paths) {
                    let Some(b) = rt.bundles().into_iter().find(|b| b.manifest.id == id) else {
                        continue;
                    };
                    let now = fingerprint(&b.manifest);
                    if seen.insert(id.clone(), now) == Some(now) {
                        continue;
                    }
                    rt.subscribers().emit(crate::Event::Changed {
                        bundle: id.clone(),
                        paths: changed.into_iter().collect(),
                    });
                    // The outcome reaches subscribers as an event.
                    let _ = rt.reload(&id);
                }
            }
        }
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
        let (tx, rx) = channel();
        let mut watcher = notify::recommended_watcher(move |e| {
            // The worker is gone only when the watcher is being dropped.
            let _ = tx.send(e);
        })
        .map_err(|e| Error::io(PathBuf::from("."), std::io::Error::other(e)))?;
        let mut watched = Vec::new();
        for d in dirs {
            let d = d.as_ref();
            watcher
                .watch(d, RecursiveMode::Recursive)
                .map_err(|e| Error::io(d, std::io::Error::other(e)))?;
            watched.push(d.to_path_buf());
        }
        // What the loaded versions were made from, read once events are
        // flowing, so an edit from now on is both seen and different.
        let seen = self
            .bundles()
            .iter()
            .map(|b| (b.manifest.id.clone(), fingerprint(&b.manifest)))
            .collect();
        let rt = self.downgrade();
        let worker = std::thread::Builder::new()
            .name("polyload-watch".into())
            .spawn(move || work(rt, rx, seen))
            .map_err(|e| Error::io(PathBuf::from("."), e))?;
        Ok(Watcher {
            watcher: Some(watcher),
            worker: Some(worker),
            dirs: watched,
        })
    }
}
