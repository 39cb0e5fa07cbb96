//! ES module resolution for a bundle, and `[js] packages` installs.
//!
//! Module names are absolute file paths. `./x` and `../x` resolve against
//! the importing module's directory (trying `x`, `x.js`, `x.mjs`,
//! `x/index.js`, `x/index.mjs`); a bare name (`marked`, `@scope/pkg/sub`) is
//! looked up in the bundle's own `node_modules`, then in the `node_modules`
//! of its npm install, reading the package's `package.json` the way Node
//! does for ES modules: `exports` (conditions `import`, `module`, `default`),
//! then `module`, then `main`. `polyload` is the host module. A CommonJS
//! file is evaluated by a small CommonJS runtime and seen through an ES
//! facade (see the crate docs).

use polyload::loader::{install_once, tool_version, Install, LoadContext};
use polyload::Result;
use rquickjs::loader::{ImportAttributes, Loader, Resolver};
use rquickjs::{Ctx, Module};
use serde_json::Value as Json;
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

/// The `package.json` conditions an ES `import` matches, in order.
const IMPORT: &[&str] = &["import", "module", "default"];
/// The conditions a CommonJS `require` matches, in order.
const REQUIRE: &[&str] = &["require", "node", "default"];

/// Picks a target out of a package.json `exports` value.
fn conditional(v: &Json, conditions: &[&str]) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Array(items) => items.iter().find_map(|i| conditional(i, conditions)),
        Json::Object(map) => conditions
            .iter()
            .find_map(|k| map.get(*k).and_then(|v| conditional(v, conditions))),
        _ => None,
    }
}

fn package_entry(pkg: &Path, sub: &str, conditions: &[&str]) -> Option<PathBuf> {
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
                map.get(&key).and_then(|v| conditional(v, conditions))
            }
            other if sub.is_empty() => conditional(other, conditions),
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
    let module = if conditions == IMPORT {
        field("module")
    } else {
        None
    };
    module
        .or_else(|| field("main"))
        .and_then(|m| file_candidates(&normalize(&pkg.join(m))))
        .or_else(|| file_candidates(&pkg.join("index")))
}

impl BundleModules {
    /// A `require(name)` from the file `from`: relative files (`.js`,
    /// `.json`, `index.js`) or packages by their `require` entry.
    pub(crate) fn resolve_require(&self, from: &str, name: &str) -> Option<String> {
        let found = if name.starts_with("./") || name.starts_with("../") || name.starts_with('/') {
            let dir = Path::new(from).parent().unwrap_or(Path::new("/"));
            let p = normalize(&dir.join(name));
            file_candidates(&p).or_else(|| {
                [
                    PathBuf::from(format!("{}.json", p.display())),
                    p.join("index.json"),
                ]
                .into_iter()
                .find(|c| c.is_file())
            })
        } else {
            self.resolve_bare(name, REQUIRE)
        };
        found.map(|p| p.display().to_string())
    }

    fn resolve_bare(&self, name: &str, conditions: &[&str]) -> Option<PathBuf> {
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
            .find_map(|d| package_entry(&d, sub, conditions))
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
            self.resolve_bare(name, IMPORT)
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
        if is_commonjs(Path::new(name), &source) {
            let facade = commonjs_facade(ctx, name)?;
            return Module::declare(ctx.clone(), name, facade);
        }
        Module::declare(ctx.clone(), name, source)
    }
}

/// Makes sure `packages` are installed with npm for `cx`'s bundle (through
/// the toolkit's [`install_once`], keyed by the list and the node and npm
/// versions); returns the install's `node_modules`.
///
/// # Errors
/// [`polyload::Error::Build`] naming the npm command (hence the packages)
/// and npm's own message; [`polyload::Error::Io`] for the cache directory.
pub(crate) fn ensure_packages(
    cx: &LoadContext<'_>,
    packages: &[String],
) -> Result<Option<PathBuf>> {
    if packages.is_empty() {
        return Ok(None);
    }
    let node = tool_version("node", &["--version"]).unwrap_or_else(|| "no node".into());
    let npm = tool_version("npm", &["--version"]).unwrap_or_else(|| "no npm".into());
    let tool = format!("node {node}\nnpm {npm}");
    let root = cx.cache_dir().join("npm");
    let install = Install {
        bundle: &cx.manifest().id,
        root: &root,
        tool: &tool,
        packages,
    };
    let dir = install_once(&install, |tmp| {
        let mut cmd = Command::new("npm");
        cmd.args([
            "install",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--loglevel=error",
            "--prefix",
        ])
        .arg(tmp)
        .args(packages);
        cmd
    })?;
    Ok(Some(dir.join("node_modules")))
}

/// Whether the file at `path` (with contents `source`) is a CommonJS
/// module: `.cjs`, or a `.js` file outside a `"type": "module"` package
/// that uses `require`/`module.exports`/`exports.` and no `import` or
/// `export` statement.
pub(crate) fn is_commonjs(path: &Path, source: &[u8]) -> bool {
    match path.extension().and_then(|e| e.to_str()) {
        Some("cjs") => return true,
        Some("js") => {}
        _ => return false,
    }
    if nearest_package_type(path).as_deref() == Some("module") {
        return false;
    }
    let text = String::from_utf8_lossy(source);
    let esm = text.lines().any(|l| {
        let l = l.trim_start();
        (l.starts_with("import ") || l.starts_with("import{") || l.starts_with("export "))
            && !l.starts_with("import(")
    });
    !esm && (text.contains("module.exports")
        || text.contains("exports.")
        || text.contains("require("))
}

/// The `type` of the nearest `package.json` above `path`.
fn nearest_package_type(path: &Path) -> Option<String> {
    let mut dir = path.parent();
    while let Some(d) = dir {
        if let Ok(b) = std::fs::read(d.join("package.json")) {
            let m: Json = serde_json::from_slice(&b).ok()?;
            return m.get("type").and_then(Json::as_str).map(str::to_string);
        }
        dir = d.parent();
    }
    None
}

/// The CommonJS runtime: a module cache and `require`, in JavaScript over
/// two host functions (resolve a name from a file, read a file).
const COMMONJS: &str = r#"(() => {
  const resolve = globalThis.__polyload_resolve, read = globalThis.__polyload_read;
  delete globalThis.__polyload_resolve;
  delete globalThis.__polyload_read;
  const cache = Object.create(null);
  function requireFrom(from) {
    const require = (name) => name === "polyload" ? globalThis.polyload : load(resolve(from, name));
    require.resolve = (name) => resolve(from, name);
    return require;
  }
  function load(path) {
    const cached = cache[path];
    if (cached) return cached.exports;
    const module = { exports: {}, id: path, filename: path, loaded: false, children: [] };
    cache[path] = module;
    if (path.endsWith(".json")) {
      module.exports = JSON.parse(read(path));
    } else {
      const dir = path.slice(0, path.lastIndexOf("/")) || "/";
      const body = new Function("exports", "require", "module", "__filename", "__dirname", read(path));
      body.call(module.exports, module.exports, requireFrom(path), module, path, dir);
    }
    module.loaded = true;
    return module.exports;
  }
  globalThis.__polyload_cjs = load;
})();"#;

/// Installs `require` support ([`COMMONJS`]) in `ctx`.
pub(crate) fn install_commonjs<'js>(
    ctx: &Ctx<'js>,
    modules: BundleModules,
) -> rquickjs::Result<()> {
    let resolve = rquickjs::Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>, from: String, name: String| -> rquickjs::Result<String> {
            modules.resolve_require(&from, &name).ok_or_else(|| {
                rquickjs::Exception::throw_reference(
                    &ctx,
                    &format!("cannot find module `{name}` required from {from}"),
                )
            })
        },
    )?;
    let read = rquickjs::Function::new(
        ctx.clone(),
        |ctx: Ctx<'js>, path: String| -> rquickjs::Result<String> {
            std::fs::read_to_string(&path).map_err(|e| {
                rquickjs::Exception::throw_reference(&ctx, &format!("cannot read {path}: {e}"))
            })
        },
    )?;
    ctx.globals().set("__polyload_resolve", resolve)?;
    ctx.globals().set("__polyload_read", read)?;
    ctx.eval::<(), _>(COMMONJS)
}

/// An ES module over a CommonJS one: evaluates it (through the CommonJS
/// runtime) and exports `module.exports` as the default and each own
/// property with an identifier name as a named export.
fn commonjs_facade<'js>(ctx: &Ctx<'js>, path: &str) -> rquickjs::Result<String> {
    let quoted = serde_json::to_string(path).unwrap_or_default();
    let exports: rquickjs::Value = ctx.eval(format!("globalThis.__polyload_cjs({quoted})"))?;
    let mut names = Vec::new();
    if let Some(o) = exports.as_object() {
        for key in o.keys::<String>() {
            let key = key?;
            if is_export_name(&key) {
                names.push(key);
            }
        }
    }
    let mut src = format!("const m = globalThis.__polyload_cjs({quoted});\nexport default m;\n");
    for n in names {
        src.push_str(&format!("export const {n} = m.{n};\n"));
    }
    Ok(src)
}

/// Whether `s` can be the name of an `export const`.
fn is_export_name(s: &str) -> bool {
    const RESERVED: &[&str] = &[
        "default",
        "break",
        "case",
        "catch",
        "class",
        "const",
        "continue",
        "debugger",
        "delete",
        "do",
        "else",
        "enum",
        "export",
        "extends",
        "false",
        "finally",
        "for",
        "function",
        "if",
        "import",
        "in",
        "instanceof",
        "new",
        "null",
        "return",
        "super",
        "switch",
        "this",
        "throw",
        "true",
        "try",
        "typeof",
        "var",
        "void",
        "while",
        "with",
        "yield",
        "let",
        "static",
        "await",
        "implements",
        "interface",
        "package",
        "private",
        "protected",
        "public",
        "m",
    ];
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        && !RESERVED.contains(&s)
}
