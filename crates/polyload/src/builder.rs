//! Build on demand: make a bundle's artifact from its sources, cached by a
//! hash of everything that affects the result.
//!
//! The key is SHA-256 over: the bundle's source files (for `cc` and
//! `wasm-cc`, the listed sources and every C/C++ source and header in the
//! bundle directory; for `csc`, the listed sources, every `.cs` file in the
//! bundle directory and the bytes of each reference; for `cargo`,
//! every file of the crate outside `target/`, plus the crates it names by
//! `path = ".."`), the `[build]` section, the toolchain (`rustc -vV` or
//! `cc --version`, and the target triple; `clang --version` for
//! `wasm-cc`; `mcs --version` and `Polyload.cs` for `csc`) and the
//! polyload ABI version.
//! Artifacts live at `<cache>/<bundle-id>/<hash>/<file>`; a present artifact
//! is reused without running any tool.

use crate::manifest::{BuildSpec, Manifest};
use crate::{Error, Result};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Progress of a build, for display.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildEvent {
    /// The cached artifact is up to date.
    Fresh {
        /// Bundle id.
        bundle: String,
        /// The artifact.
        artifact: PathBuf,
    },
    /// A build starts.
    Started {
        /// Bundle id.
        bundle: String,
        /// The command line.
        command: String,
    },
    /// A line of the tool's progress output (`Compiling sha2 v0.10.8`).
    Progress {
        /// Bundle id.
        bundle: String,
        /// The line.
        line: String,
    },
    /// A build finished successfully.
    Finished {
        /// Bundle id.
        bundle: String,
        /// The artifact.
        artifact: PathBuf,
        /// Wall time.
        elapsed: Duration,
    },
}

/// A built (or prebuilt) artifact.
#[derive(Clone, Debug)]
pub struct Artifact {
    /// Where it is.
    pub path: PathBuf,
    /// For cargo builds, the profile used (`release` or `debug`).
    pub profile: Option<&'static str>,
}

/// The polyload C header, written next to cached builds for `cc` bundles.
const HEADER: &str = include_str!("../../polyload-abi/include/polyload.h");

/// The WebAssembly guest header, for `wasm-cc` bundles.
const WASM_HEADER: &str = include_str!("../../polyload-abi/include/polyload_wasm.h");

/// The .NET guest API, compiled into every `csc` bundle.
const POLYLOAD_CS: &str = include_str!("../../polyload-abi/include/Polyload.cs");

/// The C# compiler for `csc` builds: `$MCS`, else `mcs` (Debian's
/// `mono-mcs`).
fn mcs() -> String {
    std::env::var("MCS").unwrap_or_else(|_| "mcs".into())
}

/// Mono's global assembly cache, where Debian's `lib*-cil` packages
/// install their assemblies.
const GAC: &str = "/usr/lib/mono/gac";

/// What `mcs -r:` gets for a `references` entry (see [`BuildSpec::Csc`]):
/// a path as given (relative ones from `dir`), a name found in the GAC as
/// its newest version's path, any other name as is (a framework assembly).
fn csc_reference(dir: &Path, reference: &str) -> String {
    if reference.contains('/') || reference.ends_with(".dll") {
        return dir.join(reference).display().to_string();
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(Path::new(GAC).join(reference))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join(format!("{reference}.dll")))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    match found.pop() {
        Some(p) => p.display().to_string(),
        None => reference.to_string(),
    }
}

/// The inputs of a C-family build: the listed sources and every file in
/// the bundle directory with one of `extensions` (headers a source
/// includes), sorted, each once.
fn c_inputs(dir: &Path, sources: &[PathBuf], extensions: &[&str]) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = sources.iter().map(|s| dir.join(s)).collect();
    let mut all = Vec::new();
    walk(dir, &mut all)?;
    files.extend(all.into_iter().filter(|p| {
        p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| extensions.contains(&e))
    }));
    files.sort();
    files.dedup();
    Ok(files)
}

/// Writes header `name` with `text` into `<cache>/include` (unless it
/// holds that text already) and returns that directory, for `-I`.
fn install_header(cache_root: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let include = cache_root.join("include");
    std::fs::create_dir_all(&include).map_err(|e| Error::io(&include, e))?;
    let header = include.join(name);
    if std::fs::read_to_string(&header).ok().as_deref() != Some(text) {
        std::fs::write(&header, text).map_err(|e| Error::io(&header, e))?;
    }
    Ok(include)
}

/// A number no other call in this process returns (for temporary names).
pub(crate) fn unique() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn tool_output(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_else(|e| format!("unavailable: {e}"))
}

/// `rustc -vV` (the compiler's version, commit and host target), read once
/// per process and per `$RUSTC`: it is part of every Rust cache key, and
/// starting the compiler on every cached load would cost more than the
/// rest of the load.
pub(crate) fn rustc_vv() -> String {
    static SEEN: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());
    let rustc = rustc();
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, vv)) = seen.iter().find(|(r, _)| *r == rustc) {
        return vv.clone();
    }
    let vv = tool_output(&rustc, &["-vV"]);
    seen.push((rustc, vv.clone()));
    vv
}

/// `cargo` (`$CARGO`, else from `PATH`) without the host build's cargo
/// environment (a build script's `CARGO_TARGET_DIR` or `RUSTC_WRAPPER`
/// would leak in).
pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "RUSTC_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn rustc() -> String {
    std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into())
}

fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".into())
}

/// The compiler for `wasm-cc` builds: `$WASM_CC`, else `clang`.
fn wasm_cc() -> String {
    std::env::var("WASM_CC").unwrap_or_else(|_| "clang".into())
}

fn cxx() -> String {
    std::env::var("CXX").unwrap_or_else(|_| "c++".into())
}

/// Whether a source file is C++ (by its extension).
fn is_cxx(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("cpp" | "cc" | "cxx" | "C")
    )
}

/// Files under `dir` (recursively, sorted), skipping `target/` and hidden entries.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || name == "target" || name == "node_modules" {
            continue;
        }
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

fn hash_files(h: &mut Sha256, base: &Path, files: &[PathBuf]) -> Result<()> {
    for f in files {
        let data = std::fs::read(f).map_err(|e| Error::io(f, e))?;
        h.update(
            f.strip_prefix(base)
                .unwrap_or(f)
                .to_string_lossy()
                .as_bytes(),
        );
        h.update([0]);
        h.update((data.len() as u64).to_le_bytes());
        h.update(&data);
    }
    Ok(())
}

/// `path = "..."` dependencies named in a Cargo.toml (one level).
fn path_dependencies(crate_dir: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(crate_dir.join("Cargo.toml")) else {
        return Vec::new();
    };
    let Ok(doc) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for section in ["dependencies", "build-dependencies"] {
        if let Some(deps) = doc.get(section).and_then(|d| d.as_table()) {
            for dep in deps.values() {
                if let Some(p) = dep.get("path").and_then(|p| p.as_str()) {
                    out.push(crate_dir.join(p));
                }
            }
        }
    }
    out
}

/// The cache key of a bundle's build (hex SHA-256, first 16 bytes).
///
/// # Errors
/// [`Error::Io`] if a source file cannot be read.
pub fn build_hash(manifest: &Manifest, spec: &BuildSpec) -> Result<String> {
    let dir = manifest.dir();
    let mut h = Sha256::new();
    h.update(
        format!(
            "polyload-abi {}\n{spec:?}\n",
            polyload_abi::POLYLOAD_ABI_VERSION
        )
        .as_bytes(),
    );
    h.update(manifest.file.to_string_lossy().as_bytes());
    match spec {
        BuildSpec::Cc { sources, .. } => {
            let files = c_inputs(
                dir,
                sources,
                &["c", "h", "cpp", "cc", "cxx", "hpp", "hh", "hxx"],
            )?;
            hash_files(&mut h, dir, &files)?;
            h.update(tool_output(&cc(), &["--version"]).as_bytes());
            h.update(tool_output(&cc(), &["-dumpmachine"]).as_bytes());
            if sources.iter().any(|s| is_cxx(s)) {
                h.update(tool_output(&cxx(), &["--version"]).as_bytes());
            }
            h.update(HEADER.as_bytes());
        }
        BuildSpec::WasmCc { sources, .. } => {
            let files = c_inputs(dir, sources, &["c", "h"])?;
            hash_files(&mut h, dir, &files)?;
            h.update(tool_output(&wasm_cc(), &["--version"]).as_bytes());
            h.update(WASM_HEADER.as_bytes());
        }
        BuildSpec::Csc {
            sources,
            references,
        } => {
            let files = c_inputs(dir, sources, &["cs"])?;
            hash_files(&mut h, dir, &files)?;
            for r in references {
                let path = csc_reference(dir, r);
                h.update(path.as_bytes());
                if let Ok(bytes) = std::fs::read(&path) {
                    h.update(Sha256::digest(&bytes));
                }
            }
            h.update(tool_output(&mcs(), &["--version"]).as_bytes());
            h.update(POLYLOAD_CS.as_bytes());
        }
        BuildSpec::Cargo { dir: crate_dir, .. } => {
            let crate_dir = dir.join(crate_dir);
            let mut files = Vec::new();
            walk(&crate_dir, &mut files)?;
            hash_files(&mut h, &crate_dir, &files)?;
            for dep in path_dependencies(&crate_dir) {
                let mut dep_files = Vec::new();
                if dep.is_dir() {
                    walk(&dep, &mut dep_files)?;
                    hash_files(&mut h, &dep, &dep_files)?;
                }
            }
            h.update(rustc_vv().as_bytes());
        }
    }
    let digest = h.finalize();
    Ok(digest[..16].iter().map(|b| format!("{b:02x}")).collect())
}

pub(crate) fn run(
    bundle: &str,
    mut cmd: Command,
    on_event: &mut dyn FnMut(BuildEvent),
    filter: impl Fn(&str) -> Option<String>,
) -> Result<String> {
    let command = crate::loader::command_line(&cmd);
    on_event(BuildEvent::Started {
        bundle: bundle.to_string(),
        command: command.clone(),
    });
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Build {
            bundle: bundle.to_string(),
            command: command.clone(),
            status: format!("could not start: {e}"),
            output: String::new(),
        })?;
    let stdout = child.stdout.take().expect("piped");
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        for line in BufReader::new(stdout)
            .lines()
            .map_while(std::result::Result::ok)
        {
            s.push_str(&line);
            s.push('\n');
        }
        s
    });
    let mut errors = Vec::new();
    for line in BufReader::new(child.stderr.take().expect("piped"))
        .lines()
        .map_while(std::result::Result::ok)
    {
        if let Some(p) = filter(&line) {
            on_event(BuildEvent::Progress {
                bundle: bundle.to_string(),
                line: p,
            });
        }
        errors.push(line);
    }
    let status = child
        .wait()
        .map_err(|e| Error::io(PathBuf::from(&command), e))?;
    let stdout = out_thread.join().unwrap_or_default();
    if !status.success() {
        return Err(Error::Build {
            bundle: bundle.to_string(),
            command,
            status: match status.code() {
                Some(c) => format!("exited with status {c}"),
                None => "was killed by a signal".into(),
            },
            output: crate::loader::tail(errors.join("\n").as_bytes()),
        });
    }
    Ok(stdout)
}

/// Makes sure the bundle's artifact exists, building it into
/// `cache_root/<id>/<hash>/` when the bundle has a `[build]` section and no
/// artifact with the current hash exists.
///
/// Bundles without `[build]` use `dir/file` as is.
///
/// # Errors
/// [`Error::Io`] for a missing prebuilt artifact or unreadable sources;
/// [`Error::Build`] with the failing command and its output.
pub fn ensure_artifact(
    manifest: &Manifest,
    cache_root: &Path,
    on_event: &mut dyn FnMut(BuildEvent),
) -> Result<Artifact> {
    let Some(spec) = &manifest.build else {
        let path = manifest.dir().join(&manifest.file);
        if !path.is_file() {
            return Err(Error::io(
                &path,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "artifact not found (the bundle has no [build] section to make it)",
                ),
            ));
        }
        return Ok(Artifact {
            path,
            profile: None,
        });
    };
    let profile = match spec {
        BuildSpec::Cargo { release: true, .. } => Some("release"),
        BuildSpec::Cargo { release: false, .. } => Some("debug"),
        BuildSpec::Cc { .. } | BuildSpec::WasmCc { .. } | BuildSpec::Csc { .. } => None,
    };
    let hash = build_hash(manifest, spec)?;
    let bundle_cache = cache_root.join(&manifest.id);
    let out_dir = bundle_cache.join(&hash);
    let file_name = manifest
        .file
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.file.clone());
    let artifact = out_dir.join(&file_name);
    if artifact.is_file() {
        on_event(BuildEvent::Fresh {
            bundle: manifest.id.clone(),
            artifact: artifact.clone(),
        });
        return Ok(Artifact {
            path: artifact,
            profile,
        });
    }
    let start = Instant::now();
    std::fs::create_dir_all(&out_dir).map_err(|e| Error::io(&out_dir, e))?;
    // A name no other build writes, in this process or another: two
    // runtimes may build the same bundle at once, and the first rename wins.
    let tmp = out_dir.join(format!(
        ".{}.tmp{}-{}",
        file_name.display(),
        std::process::id(),
        unique()
    ));
    // Tools run in the bundle directory; every path handed to them is absolute.
    let dir = &manifest
        .dir()
        .canonicalize()
        .map_err(|e| Error::io(manifest.dir(), e))?;
    match spec {
        BuildSpec::Cc {
            sources,
            libs,
            cflags,
            cxxflags,
            cxx_std,
        } => {
            let include = install_header(cache_root, "polyload.h", HEADER)?;
            let c_args = |cmd: &mut Command| {
                cmd.args(["-fPIC", "-O2", "-Wall", "-std=c11"])
                    .arg("-I")
                    .arg(&include)
                    .args(cflags);
            };
            let cxx_args = |cmd: &mut Command| {
                cmd.args(["-fPIC", "-O2", "-Wall"])
                    .arg(format!("-std={cxx_std}"))
                    .arg("-I")
                    .arg(&include)
                    .args(cxxflags);
            };
            let libs = libs.iter().map(|l| format!("-l{l}"));
            if !sources.iter().any(|s| is_cxx(s)) {
                // C only: one compile-and-link command.
                let mut cmd = Command::new(cc());
                cmd.current_dir(dir).arg("-shared");
                c_args(&mut cmd);
                cmd.args(sources).arg("-o").arg(&tmp).args(libs);
                run(&manifest.id, cmd, on_event, |l| Some(l.to_string()))?;
            } else {
                // C++ (maybe with C): each source to an object with its own
                // compiler, then the C++ driver links (and brings the C++
                // runtime, libstdc++).
                let objs = out_dir.join(format!(".objs{}", std::process::id()));
                std::fs::create_dir_all(&objs).map_err(|e| Error::io(&objs, e))?;
                let mut objects = Vec::new();
                for (i, src) in sources.iter().enumerate() {
                    let obj = objs.join(format!("{i}.o"));
                    let mut cmd = Command::new(if is_cxx(src) { cxx() } else { cc() });
                    cmd.current_dir(dir).arg("-c");
                    if is_cxx(src) {
                        cxx_args(&mut cmd);
                    } else {
                        c_args(&mut cmd);
                    }
                    cmd.arg(src).arg("-o").arg(&obj);
                    run(&manifest.id, cmd, on_event, |l| Some(l.to_string()))?;
                    objects.push(obj);
                }
                let mut cmd = Command::new(cxx());
                cmd.current_dir(dir)
                    .arg("-shared")
                    .args(&objects)
                    .arg("-o")
                    .arg(&tmp)
                    .args(libs);
                let linked = run(&manifest.id, cmd, on_event, |l| Some(l.to_string()));
                let _ = std::fs::remove_dir_all(&objs);
                linked?;
            }
        }
        BuildSpec::WasmCc { sources, cflags } => {
            let include = install_header(cache_root, "polyload_wasm.h", WASM_HEADER)?;
            // A WASI reactor (`_initialize`, no `main`). Sources name
            // their exports (`POLYLOAD_EXPORT(name)`, the `export_name`
            // attribute), so a C name may differ from its export.
            let mut cmd = Command::new(wasm_cc());
            cmd.current_dir(dir)
                .args([
                    "--target=wasm32-wasi",
                    "-mexec-model=reactor",
                    "-O2",
                    "-Wall",
                    "-std=c11",
                ])
                .arg("-I")
                .arg(&include)
                .args(cflags)
                .args(sources)
                .arg("-o")
                .arg(&tmp);
            run(&manifest.id, cmd, on_event, |l| Some(l.to_string()))?;
        }
        BuildSpec::Csc {
            sources,
            references,
        } => {
            let include = install_header(cache_root, "Polyload.cs", POLYLOAD_CS)?;
            let mut cmd = Command::new(mcs());
            cmd.current_dir(dir)
                .args(["-target:library", "-optimize+", "-debug-", "-nologo"])
                .arg(format!("-out:{}", tmp.display()));
            for r in references {
                cmd.arg(format!("-r:{}", csc_reference(dir, r)));
            }
            cmd.args(sources).arg(include.join("Polyload.cs"));
            run(&manifest.id, cmd, on_event, |l| Some(l.to_string())).map_err(|e| match e {
                // No compiler at all: say which package has it.
                Error::Build { bundle, command, status, .. } if status.starts_with("could not start") => Error::Build {
                    bundle,
                    command,
                    status,
                    output: "C# sources build with Mono's C# compiler: install Debian's `mono-mcs` (or set $MCS)".into(),
                },
                other => other,
            })?;
        }
        BuildSpec::Cargo {
            dir: crate_dir,
            release,
        } => {
            let crate_dir = dir.join(crate_dir);
            let target_dir = bundle_cache.join("cargo-target");
            let mut cmd = cargo();
            cmd.current_dir(&crate_dir)
                .args(["build", "--lib", "--message-format=json-render-diagnostics"])
                .arg("--manifest-path")
                .arg(crate_dir.join("Cargo.toml"))
                .arg("--target-dir")
                .arg(&target_dir);
            if *release {
                cmd.arg("--release");
            }
            let stdout = run(&manifest.id, cmd, on_event, |l| {
                let t = l.trim_start();
                (t.starts_with("Compiling") || t.starts_with("Finished")).then(|| t.to_string())
            })?;
            let built = stdout
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|m| m["reason"] == "compiler-artifact")
                .filter(|m| {
                    m["target"]["kind"]
                        .as_array()
                        .is_some_and(|k| k.iter().any(|k| k == "cdylib"))
                })
                .filter_map(|m| m["filenames"].as_array().cloned())
                .flatten()
                .filter_map(|f| f.as_str().map(PathBuf::from))
                .find(|f| {
                    matches!(
                        f.extension().and_then(|e| e.to_str()),
                        Some("so" | "dylib" | "dll")
                    )
                })
                .ok_or_else(|| Error::Build {
                    bundle: manifest.id.clone(),
                    command: "cargo build".into(),
                    status: "produced no cdylib".into(),
                    output: format!(
                        "add `[lib] crate-type = [\"cdylib\"]` to {}",
                        crate_dir.join("Cargo.toml").display()
                    ),
                })?;
            std::fs::copy(&built, &tmp).map_err(|e| Error::io(&built, e))?;
        }
    }
    std::fs::rename(&tmp, &artifact).map_err(|e| Error::io(&artifact, e))?;
    on_event(BuildEvent::Finished {
        bundle: manifest.id.clone(),
        artifact: artifact.clone(),
        elapsed: start.elapsed(),
    });
    Ok(Artifact {
        path: artifact,
        profile,
    })
}
