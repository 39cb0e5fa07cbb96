//! ES module resolution for a bundle, and `[js] packages` installs.
//!
//! Module names are absolute file paths. `./x` and `../x` resolve against
//! the importing module's directory (trying `x`, `x.js`, `x.mjs`,
//! `x/index.js`, `x/index.mjs`); a bare name (`marked`, `@scope/pkg/sub`) is
//! looked up in the bundle's own `node_modules`, then in the `node_modules`
//! of its npm install, reading the package's `package.json` the way Node
//! does for ES modules: `exports` (conditions `import`, `module`, `default`),
//! then `module`, then `main`. `polyload` is the host module. CommonJS-only
//! packages are not supported (QuickJS runs ES modules).

use polyload::{Error, LoadContext, Result};
use rquickjs::loader::{ImportAttributes, Loader, Resolver};
use rquickjs::{Ctx, Module};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

/// The name of the host module.
pub(crate) const HOST_MODULE: &str = "polyload";

/// Source of the host module: re-exports the `polyload` global.
const HOST_SOURCE: &str = "const p = globalThis.polyload;\nexport default p;\nexport const call = p.call;\nexport const get = p.get;\n";

/// Resolves and loads a bundle's modules.
#[derive(Clone)]
pub(crate) struct BundleModules {
    /// `node_modules` directories searched for bare names, in order.
    pub(crate) node_modules: Vec<PathBuf>,
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

fn file_candidates(p: &Path) -> Option<PathBuf> {
    let s = p.display().to_string();
    [
        p.to_path_buf(),
        PathBuf::from(format!("{s}.js")),
        PathBuf::from(format!("{s}.mjs")),
        p.join("index.js"),
        p.join("index.mjs"),
    ]
    .into_iter()
    .find(|c| c.is_file())
}

/// Picks a target out of a package.json `exports` value.
fn conditional(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Array(items) => items.iter().find_map(conditional),
        Json::Object(map) => ["import", "module", "default"]
            .iter()
            .find_map(|k| map.get(*k).and_then(conditional)),
        _ => None,
    }
}

fn package_entry(pkg: &Path, sub: &str) -> Option<PathBuf> {
    let manifest: Option<Json> = std::fs::read(pkg.join("package.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if let Some(exports) = manifest.as_ref().and_then(|m| m.get("exports")) {
        let key = if sub.is_empty() {
            ".".to_string()
        } else {
            format!("./{sub}")
        };
        let target = match exports {
            Json::Object(map) if map.keys().any(|k| k.starts_with('.')) => {
                map.get(&key).and_then(conditional)
            }
            other if sub.is_empty() => conditional(other),
            _ => None,
        };
        if let Some(t) = target {
            return file_candidates(&normalize(&pkg.join(t)));
        }
    }
    if !sub.is_empty() {
        return file_candidates(&pkg.join(sub));
    }
    let field = |f: &str| {
        manifest
            .as_ref()
            .and_then(|m| m.get(f))
            .and_then(Json::as_str)
            .map(str::to_string)
    };
    field("module")
        .or_else(|| field("main"))
        .and_then(|m| file_candidates(&normalize(&pkg.join(m))))
        .or_else(|| file_candidates(&pkg.join("index")))
}

impl BundleModules {
    fn resolve_bare(&self, name: &str) -> Option<PathBuf> {
        let mut parts = name.splitn(if name.starts_with('@') { 3 } else { 2 }, '/');
        let pkg = if name.starts_with('@') {
            format!("{}/{}", parts.next()?, parts.next()?)
        } else {
            parts.next()?.to_string()
        };
        let sub = parts.next().unwrap_or("");
        self.node_modules
            .iter()
            .map(|nm| nm.join(&pkg))
            .filter(|d| d.is_dir())
            .find_map(|d| package_entry(&d, sub))
    }
}

impl Resolver for BundleModules {
    fn resolve<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        if name == HOST_MODULE {
            return Ok(HOST_MODULE.to_string());
        }
        let found = if name.starts_with("./") || name.starts_with("../") || name.starts_with('/') {
            let dir = Path::new(base).parent().unwrap_or(Path::new("/"));
            file_candidates(&normalize(&dir.join(name)))
        } else {
            self.resolve_bare(name)
        };
        match found {
            Some(p) => Ok(p.display().to_string()),
            None => {
                let searched: Vec<String> = self
                    .node_modules
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                Err(rquickjs::Exception::throw_reference(
                    ctx,
                    &format!(
                        "cannot find module `{name}` imported from {base} (node_modules searched: {})",
                        if searched.is_empty() { "none".to_string() } else { searched.join(", ") }
                    ),
                ))
            }
        }
    }
}

impl Loader for BundleModules {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js, rquickjs::module::Declared>> {
        if name == HOST_MODULE {
            return Module::declare(ctx.clone(), HOST_MODULE, HOST_SOURCE);
        }
        let source = std::fs::read(name).map_err(|e| {
            rquickjs::Exception::throw_reference(ctx, &format!("cannot read module {name}: {e}"))
        })?;
        Module::declare(ctx.clone(), name, source)
    }
}

const COMPLETE: &str = ".polyload-complete";

/// Makes sure `cx.manifest`'s `[js] packages` are installed with npm into
/// `<cache_dir>/npm/<hash of the list>`; returns its `node_modules`.
///
/// # Errors
/// [`Error::Build`] naming the npm command (hence the packages) and npm's
/// own message; [`Error::Io`] for the cache directory.
pub(crate) fn ensure_packages(cx: &LoadContext<'_>) -> Result<Option<PathBuf>> {
    let pkgs: Vec<&String> = cx
        .manifest
        .js
        .iter()
        .flat_map(|j| j.packages.iter())
        .collect();
    if pkgs.is_empty() {
        return Ok(None);
    }
    let mut hash = Sha256::new();
    for p in &pkgs {
        hash.update(p.as_bytes());
        hash.update(b"\0");
    }
    let key: String = hash
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    let root = cx.cache_dir.join("npm");
    let dir = root.join(&key);
    if dir.join(COMPLETE).is_file() {
        return Ok(Some(dir.join("node_modules")));
    }
    std::fs::create_dir_all(&root).map_err(|e| Error::Io {
        path: root.clone(),
        source: e,
    })?;
    let tmp = root.join(format!("{key}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| Error::Io {
        path: tmp.clone(),
        source: e,
    })?;
    let list = pkgs
        .iter()
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let args = [
        "install",
        "--no-audit",
        "--no-fund",
        "--ignore-scripts",
        "--loglevel=error",
        "--prefix",
    ];
    let command = format!(
        "npm {} {} {}",
        args.join(" "),
        tmp.display(),
        pkgs.iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    );
    tracing::info!(bundle = %cx.manifest.id, %command, "installing npm packages");
    let out = Command::new("npm")
        .args(args)
        .arg(&tmp)
        .args(&pkgs)
        .output()
        .map_err(|e| Error::Build {
            bundle: cx.manifest.id.clone(),
            command: command.clone(),
            status: format!("could not start npm (is Node.js installed?): {e}"),
            output: String::new(),
        })?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        let text = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        return Err(Error::Build {
            bundle: cx.manifest.id.clone(),
            command,
            status: format!("{} (npm could not install {list})", out.status),
            output: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    std::fs::write(tmp.join(COMPLETE), &list).map_err(|e| Error::Io {
        path: tmp.clone(),
        source: e,
    })?;
    if std::fs::rename(&tmp, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
        if !dir.join(COMPLETE).is_file() {
            return Err(Error::Io {
                path: dir,
                source: std::io::Error::other("could not move the npm install into place"),
            });
        }
    }
    Ok(Some(dir.join("node_modules")))
}
