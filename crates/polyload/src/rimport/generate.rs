//! Generating the wrapper crate of a `[rimport]` bundle (see [`super`]).

use super::{api, codegen, plan, RimportSpec};
use crate::builder::{self, BuildEvent};
use crate::manifest::{BuildSpec, Manifest};
use crate::{Error, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Bumped whenever the generated code changes shape.
const GENERATOR: &str = "polyload-rimport 6";

/// Where the Rust guest SDK is (the generated crate's path dependency):
/// `$POLYLOAD_GUEST_DIR`, else the source tree polyload was built from.
pub fn guest_dir() -> PathBuf {
    match std::env::var_os("POLYLOAD_GUEST_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../polyload-guest"),
    }
}

pub(crate) fn rimport_error(spec: &RimportSpec, item: &str, reason: impl Into<String>) -> Error {
    Error::Rimport {
        krate: spec.krate.clone(),
        item: item.to_string(),
        reason: reason.into(),
    }
}

/// The cache directory of what `generator` makes from a spec:
/// `<cache>/<area>/<crate>/<hash>`, the hash covering the generator, the
/// spec, `extra` and `rustc -vV`.
pub(crate) fn spec_dir(
    cache_root: &Path,
    area: &str,
    generator: &str,
    spec: &RimportSpec,
    extra: &str,
) -> PathBuf {
    let mut h = Sha256::new();
    h.update(format!("{generator}\n{spec:?}\n{extra}\n").as_bytes());
    h.update(builder::rustc_vv().as_bytes());
    let digest = h.finalize();
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    cache_root.join(area).join(&spec.krate).join(hex)
}

/// Fills in a `[rimport]` manifest: generates (or finds in the cache) the
/// wrapper crate, and returns the manifest with its `[exports]`, `version`
/// (the crate's, unless the manifest gives one) and `[build] cargo`
/// pointing at it. Other manifests are returned unchanged.
///
/// # Errors
/// [`Error::Rimport`] for an item that does not exist, is not public or
/// cannot cross; [`Error::Build`] with cargo's message for an unknown crate
/// or version or a failed rustdoc run; [`Error::Io`].
pub fn prepare(
    manifest: Manifest,
    cache_root: &Path,
    on_event: &mut dyn FnMut(BuildEvent),
) -> Result<Manifest> {
    let Some(spec) = manifest.rimport.clone() else {
        return Ok(manifest);
    };
    let guest = guest_dir();
    if !guest.join("Cargo.toml").is_file() {
        return Err(rimport_error(
            &spec,
            "*",
            format!(
                "the Rust guest SDK is not at {} (set $POLYLOAD_GUEST_DIR to a polyload-guest checkout)",
                guest.display()
            ),
        ));
    }
    let guest = guest.canonicalize().map_err(|e| Error::io(&guest, e))?;
    let dir = spec_dir(
        cache_root,
        "rimport",
        GENERATOR,
        &spec,
        &guest.display().to_string(),
    );
    let crate_dir = dir.join("crate");
    let generated_path = crate_dir.join("manifest.toml");
    if !generated_path.is_file() {
        generate(&manifest, &spec, &dir, &guest, on_event)?;
    } else {
        on_event(BuildEvent::Fresh {
            bundle: manifest.id.clone(),
            artifact: crate_dir.clone(),
        });
    }
    let text =
        std::fs::read_to_string(&generated_path).map_err(|e| Error::io(&generated_path, e))?;
    let generated = Manifest::parse(&text, &generated_path)?;
    let mut m = manifest;
    m.exports = generated.exports;
    if !m.version_given() {
        m.version = generated.version;
    }
    m.file = generated.file;
    m.build = Some(BuildSpec::Cargo {
        dir: crate_dir,
        release: true,
    });
    Ok(m)
}

/// Resolves, documents, plans and writes the wrapper crate into `dir/crate`.
fn generate(
    manifest: &Manifest,
    spec: &RimportSpec,
    dir: &Path,
    guest: &Path,
    on_event: &mut dyn FnMut(BuildEvent),
) -> Result<()> {
    let id = &manifest.id;
    let probe = dir.join("probe");
    let (version, lib) = resolve(spec, id, &probe, on_event)?;

    // 2. Its public API.
    let mut cmd = builder::cargo();
    cmd.env("RUSTC_BOOTSTRAP", "1")
        .args(["rustdoc", "--lib", "-p"])
        .arg(format!("{}@{version}", spec.krate))
        .arg("--manifest-path")
        .arg(probe.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(probe.join("target"))
        .args(["--", "-Z", "unstable-options", "--output-format", "json"]);
    builder::run(id, cmd, on_event, |l| {
        let t = l.trim_start();
        (t.starts_with("Documenting") || t.starts_with("Checking") || t.starts_with("Compiling"))
            .then(|| t.to_string())
    })?;
    let json_path = probe.join("target/doc").join(format!("{lib}.json"));
    let json = std::fs::read_to_string(&json_path).map_err(|e| Error::io(&json_path, e))?;
    let api = api::Api::parse(&json, &lib).map_err(|e| rimport_error(spec, "*", e))?;

    // 3. Plan every item; report every item that fails at once.
    let mut planner = plan::Planner::new(&api, &spec.json);
    let mut wrappers = Vec::new();
    let mut errors = Vec::new();
    for item in &spec.items {
        let (path, generics, name) = item.parts();
        match planner.item(&path, &generics, name) {
            Ok(w) => wrappers.push(w),
            Err(e) => errors.push((path, e)),
        }
    }
    if !errors.is_empty() {
        let items: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
        let reasons: Vec<&str> = errors.iter().map(|(_, e)| e.as_str()).collect();
        return Err(rimport_error(spec, &items.join(", "), reasons.join("; ")));
    }
    let plan = planner.finish(wrappers);
    let mut names: Vec<(String, String)> = codegen::definitions(&plan);
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(rimport_error(
            spec,
            &w[0].0,
            "two items get this definition name: give one a `name`",
        ));
    }

    // 4. Write the crate beside, then move it in place (a crash leaves no
    //    half-written crate that looks finished).
    let c = codegen::Crate {
        spec,
        id,
        lib: &lib,
        version: &version,
        guest_dir: guest,
    };
    let tmp = dir.join(format!(
        "crate.tmp{}-{}",
        std::process::id(),
        builder::unique()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    write_file(&tmp.join("Cargo.toml"), &codegen::cargo_toml(&c))?;
    write_file(&tmp.join("src/lib.rs"), &codegen::lib_rs(&c, &plan))?;
    write_file(
        &tmp.join("manifest.toml"),
        &codegen::manifest_toml(&c, &plan),
    )?;
    let lock = probe.join("Cargo.lock");
    if lock.is_file() {
        std::fs::copy(&lock, tmp.join("Cargo.lock")).map_err(|e| Error::io(&lock, e))?;
    }
    // Complete the lock file now (cargo adds polyload-guest's dependencies),
    // so that building does not change the crate and so its cache key.
    let mut cmd = builder::cargo();
    cmd.args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(tmp.join("Cargo.toml"));
    builder::run(id, cmd, on_event, |_| None)?;
    let dest = dir.join("crate");
    // `dest` only ever appears whole (by this rename): if another load of
    // the same spec got there first, the rename fails and its crate is used.
    if let Err(e) = std::fs::rename(&tmp, &dest) {
        let _ = std::fs::remove_dir_all(&tmp);
        if !dest.join("manifest.toml").is_file() {
            return Err(Error::io(&dest, e));
        }
    }
    tracing::info!(bundle = %id, krate = %spec.krate, %version, "rimport: generated {}", dest.display());
    Ok(())
}

/// Writes `text` to `p`, making its directory.
pub(crate) fn write_file(p: &Path, text: &str) -> Result<()> {
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    std::fs::write(p, text).map_err(|e| Error::io(p, e))
}

/// Resolves `spec`'s requirement in a probe crate at `probe`: the version
/// and the library's name (`unicode_segmentation`).
pub(crate) fn resolve(
    spec: &RimportSpec,
    id: &str,
    probe: &Path,
    on_event: &mut dyn FnMut(BuildEvent),
) -> Result<(String, String)> {
    write_file(
        &probe.join("Cargo.toml"),
        &format!(
            "[package]\nname = \"polyload-rimport-probe\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[dependencies]\n{}\n\n[workspace]\n",
            spec.dependency(&spec.version)
        ),
    )?;
    write_file(&probe.join("src/lib.rs"), "")?;
    let mut cmd = builder::cargo();
    cmd.args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(probe.join("Cargo.toml"));
    let meta = builder::run(id, cmd, on_event, |_| None)?;
    resolved(&meta, &spec.krate).ok_or_else(|| {
        rimport_error(
            spec,
            "*",
            "cargo resolved no library for it (a proc-macro or binary crate?)",
        )
    })
}

/// From `cargo metadata`: the version the probe resolved `krate` to, and
/// its library target's name.
fn resolved(metadata: &str, krate: &str) -> Option<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(metadata).ok()?;
    let probe_deps: Vec<&str> = v["resolve"]["nodes"].as_array()?.iter().find(|n| {
        n["id"]
            .as_str()
            .is_some_and(|id| id.contains("polyload-rimport-probe"))
    })?["dependencies"]
        .as_array()?
        .iter()
        .filter_map(|d| d.as_str())
        .collect();
    let package = v["packages"].as_array()?.iter().find(|p| {
        p["name"] == krate && p["id"].as_str().is_some_and(|id| probe_deps.contains(&id))
    })?;
    let lib = package["targets"].as_array()?.iter().find(|t| {
        t["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "lib" || k == "rlib"))
    })?;
    Some((
        package["version"].as_str()?.to_string(),
        lib["name"].as_str()?.replace('-', "_"),
    ))
}
