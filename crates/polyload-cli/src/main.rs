//! `polyload`: list, inspect, call and build bundles; call C functions by
//! signature. A thin shell over the `polyload` library: it parses arguments,
//! dispatches, prints, and maps errors to exit codes (1 for errors, 2 for
//! usage).

use anyhow::{anyhow, Result};
use clap::{Args, Parser, Subcommand};
use polyload::builder::BuildEvent;
use polyload::{Manifest, Runtime};
use polyload_cli::report::{definition_json, manifest_json};
use serde_json::json;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod ffi_cmd;

/// Load bundles in any language and call what they export.
#[derive(Parser, Debug)]
#[command(name = "polyload", version, about, long_about = None)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Build cache directory (default: $POLYLOAD_CACHE_DIR or ./target/polyload).
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the bundles in DIR (read from their manifests; nothing is loaded).
    List {
        /// A bundle directory, or a directory of bundle directories.
        dir: PathBuf,
    },
    /// Load one bundle (and the dependencies it names, from sibling
    /// directories) and show its manifest and live definitions.
    Inspect {
        /// The bundle directory (holding manifest.toml).
        bundle_dir: PathBuf,
    },
    /// Load bundle BUNDLE from DIR (and the bundles it depends on) and call
    /// BUNDLE.FUNCTION.
    Call(CallCmd),
    /// Load bundle BUNDLE from DIR and time calls of BUNDLE.FUNCTION: ns per
    /// call (median, fastest and slowest of 21 samples).
    Bench(BenchCmd),
    /// Load the bundles in DIR, then rebuild and reload each one whose files
    /// change, printing what happened (runs until interrupted).
    Watch {
        /// A bundle directory, or a directory of bundle directories.
        dir: PathBuf,
        /// Exit after this many reload outcomes (reloaded or failed).
        #[arg(long, value_name = "N")]
        max_events: Option<u64>,
    },
    /// Call a C function in any shared library by its signature.
    Ffi(ffi_cmd::FfiCmd),
    /// Write a bundle that wraps ITEMs of a crate from crates.io, then
    /// generate, build and load it: `polyload call DIR CRATE.Item_name ..`
    /// works at once (names: `Version::parse` -> `Version_parse`).
    Rimport(RimportCmd),
    /// Build the bundles in DIR that carry sources (no loading).
    Build {
        /// A bundle directory, or a directory of bundle directories.
        dir: PathBuf,
    },
}

#[derive(Args, Debug)]
struct CallCmd {
    /// A bundle directory, or a directory of bundle directories.
    dir: PathBuf,
    /// The definition to call, as `bundle.function`.
    function: String,
    /// Arguments, parsed by the function's signature (negative numbers are
    /// arguments, not options). `@PATH` passes a file's contents to a
    /// `str`, `bytes` or `json` parameter (`@@x` is the literal `@x`).
    #[arg(allow_negative_numbers = true)]
    args: Vec<String>,
}

#[derive(Args, Debug)]
struct RimportCmd {
    /// The crate and an optional version requirement: `semver`,
    /// `semver@1.0`, `regex@=1.11.1`.
    #[arg(value_name = "CRATE[@VERSION]")]
    krate: String,
    /// Items to wrap, as paths from the crate root (`Version::parse`,
    /// `Version::major`, `gcd::<i64>`; a generic type's method takes the
    /// type's parameters first: `IndexSet::insert::<i64>`).
    #[arg(required = true, value_name = "ITEM")]
    items: Vec<String>,
    /// The bundle directory to write (default: ./CRATE).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The bundle id (default: the crate's name).
    #[arg(long)]
    id: Option<String>,
    /// Cargo features of the crate (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    features: Vec<String>,
    /// Leave the crate's default features off.
    #[arg(long)]
    no_default_features: bool,
    /// Types that cross as JSON through their serde impls, not as handles.
    #[arg(long = "json-type", value_name = "TYPE", value_delimiter = ',')]
    json_types: Vec<String>,
}

#[derive(Args, Debug)]
struct BenchCmd {
    #[command(flatten)]
    call: CallCmd,
    /// How long to measure, in seconds (plus a tenth to warm up).
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    time: f64,
}

fn runtime(cli: &Cli) -> Result<Runtime> {
    let mut b = Runtime::builder();
    #[cfg(feature = "lua")]
    {
        b = b.loader(polyload_lua::LuaLoader::new());
    }
    #[cfg(feature = "python")]
    {
        b = b.loader(polyload_python::PythonLoader::new());
    }
    #[cfg(feature = "js")]
    {
        b = b.loader(polyload_js::JsLoader::new());
    }
    #[cfg(feature = "wasm")]
    {
        b = b.loader(polyload_wasm::WasmLoader::new());
    }
    #[cfg(feature = "dotnet")]
    {
        b = b.loader(polyload_dotnet::DotnetLoader::new());
    }
    // Loaders this build leaves out: say how to get them.
    for (loader, feature, on) in [
        ("lua", "lua", cfg!(feature = "lua")),
        ("python", "python", cfg!(feature = "python")),
        ("js", "js", cfg!(feature = "js")),
        ("wasm", "wasm", cfg!(feature = "wasm")),
        ("dotnet", "dotnet", cfg!(feature = "dotnet")),
    ] {
        if !on {
            b = b.loader_hint(
                loader,
                format!("this polyload was built without it: rebuild with `cargo install polyload-cli --features {feature}`"),
            );
        }
    }
    if let Some(d) = &cli.cache_dir {
        b = b.cache_dir(d);
    }
    let progress =
        std::io::stderr().is_terminal() || std::env::var_os("POLYLOAD_PROGRESS").is_some();
    let json = cli.json;
    b = b.on_build(move |e| match e {
        BuildEvent::Started { bundle, .. } if !json => eprintln!("   Building {bundle}"),
        BuildEvent::Progress { bundle, line } if progress && !json => {
            eprintln!("   [{bundle}] {line}")
        }
        BuildEvent::Finished {
            bundle, elapsed, ..
        } if !json => {
            eprintln!("      Built {bundle} in {:.1}s", elapsed.as_secs_f64())
        }
        _ => {}
    });
    Ok(b.build()?)
}

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("POLYLOAD_LOG"))
        .with_writer(std::io::stderr)
        .init();
    match run(&cli) {
        Ok(out) => {
            if !out.is_empty() {
                println!("{out}");
            }
        }
        Err(e) => {
            let mut msg = e.to_string();
            // polyload's errors already say their cause; add only what is new.
            for cause in e.chain().skip(1) {
                let cause = cause.to_string();
                if !msg.contains(&cause) {
                    msg.push_str(&format!(": {cause}"));
                }
            }
            eprintln!("error: {msg}");
            std::process::exit(1);
        }
    }
}

fn run(cli: &Cli) -> Result<String> {
    match &cli.command {
        Command::List { dir } => list(dir, cli.json),
        Command::Inspect { bundle_dir } => inspect(&runtime(cli)?, bundle_dir, cli.json),
        Command::Call(c) => call(&runtime(cli)?, c, cli.json),
        Command::Bench(b) => bench(&runtime(cli)?, b, cli.json),
        Command::Build { dir } => build(&runtime(cli)?, dir, cli.json),
        Command::Rimport(r) => rimport(&runtime(cli)?, r, cli.json),
        Command::Ffi(f) => f.run(cli.json),
        Command::Watch { dir, max_events } => watch(&runtime(cli)?, dir, *max_events, cli.json),
    }
}

fn watch(rt: &Runtime, dir: &Path, max_events: Option<u64>, as_json: bool) -> Result<String> {
    use polyload::Event;
    use std::io::Write;
    let events = rt.subscribe();
    let ids = rt.load_dir(dir)?;
    let _watcher = rt.watch(&[dir])?;
    let mut out = std::io::stdout().lock();
    if as_json {
        writeln!(
            out,
            "{}",
            json!({"event": "watching", "dir": dir, "bundles": ids})
        )?;
    } else {
        writeln!(
            out,
            "watching {} ({} bundles: {})",
            dir.display(),
            ids.len(),
            ids.join(", ")
        )?;
    }
    out.flush()?;
    let mut outcomes = 0;
    for e in events {
        let line = match (&e, as_json) {
            (Event::Changed { bundle, paths }, false) => format!(
                "{bundle}: {} changed",
                paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            ),
            (Event::Preparing { bundle }, false) => format!("{bundle}: reloading"),
            (Event::Changed { bundle, paths }, true) => json!({"event": "changed", "bundle": bundle, "paths": paths}).to_string(),
            (Event::Reloaded { bundle, generation, build, total, state_carried }, false) => format!(
                "{bundle}: generation {generation} live (build {:.0} ms, reload {:.0} ms, state {})",
                build.as_secs_f64() * 1e3,
                (*total - *build).as_secs_f64() * 1e3,
                if *state_carried { "kept" } else { "fresh" }
            ),
            (Event::Failed { bundle, error }, false) => {
                format!("{bundle}: reload failed, previous version still live: {}", error.lines().next().unwrap_or(""))
            }
            (Event::Preparing { bundle }, true) => json!({"event": "preparing", "bundle": bundle}).to_string(),
            (Event::Reloaded { bundle, generation, build, total, state_carried }, true) => json!({
                "event": "reloaded", "bundle": bundle, "generation": generation,
                "build_ms": build.as_secs_f64() * 1e3, "total_ms": total.as_secs_f64() * 1e3,
                "state_carried": state_carried,
            })
            .to_string(),
            (Event::Failed { bundle, error }, true) => json!({"event": "failed", "bundle": bundle, "error": error}).to_string(),
            _ => continue,
        };
        writeln!(out, "{line}")?;
        out.flush()?;
        if matches!(e, Event::Reloaded { .. } | Event::Failed { .. }) {
            outcomes += 1;
            if max_events.is_some_and(|m| outcomes >= m) {
                break;
            }
        }
    }
    Ok(String::new())
}

fn list(dir: &Path, as_json: bool) -> Result<String> {
    let manifests = polyload::scan_dir(dir)?;
    if as_json {
        return Ok(serde_json::to_string_pretty(
            &manifests.iter().map(manifest_json).collect::<Vec<_>>(),
        )?);
    }
    if manifests.is_empty() {
        return Ok(format!("no bundles in {}", dir.display()));
    }
    let mut out = String::new();
    for m in &manifests {
        out.push_str(&format!(
            "{} {} ({}, abi {}) {}\n",
            m.id,
            m.version,
            m.loader,
            m.abi,
            m.dir().display()
        ));
        for e in &m.exports {
            out.push_str(&format!("  {}.{}: {}\n", m.id, e.name, e.signature));
        }
    }
    Ok(out.trim_end().to_string())
}

fn rimport(rt: &Runtime, r: &RimportCmd, as_json: bool) -> Result<String> {
    let (krate, version) = match r.krate.split_once('@') {
        Some((k, v)) => (k.to_string(), v.to_string()),
        None => (r.krate.clone(), "*".to_string()),
    };
    let spec = polyload::manifest::RimportSpec {
        krate: krate.clone(),
        version,
        features: r.features.clone(),
        default_features: !r.no_default_features,
        items: r
            .items
            .iter()
            .cloned()
            .map(polyload::manifest::RimportItem::Path)
            .collect(),
        json: r.json_types.clone(),
    };
    let dir = r.out.clone().unwrap_or_else(|| PathBuf::from(&krate));
    let id = r.id.clone().unwrap_or(krate);
    let path = polyload::rimport::write_bundle(&dir, &id, &spec)?;
    if !as_json {
        eprintln!("   Wrote {}", path.display());
    }
    inspect(rt, &dir, as_json)
}

fn inspect(rt: &Runtime, dir: &Path, as_json: bool) -> Result<String> {
    let id = Manifest::from_dir(dir)?.id;
    rt.load_bundle(dir)?;
    // The loaded manifest: a [rimport] bundle's is filled in on load.
    let manifest = rt
        .bundles()
        .into_iter()
        .find(|b| b.manifest.id == id)
        .map(|b| b.manifest)
        .ok_or_else(|| anyhow!("bundle `{id}` did not stay loaded"))?;
    let prefix = format!("{}.", manifest.id);
    let defs: Vec<_> = rt
        .definitions()
        .into_iter()
        .filter(|d| d.name.starts_with(&prefix))
        .collect();
    let generation = defs.first().map_or(0, |d| d.generation);
    if as_json {
        let mut v = manifest_json(&manifest);
        v["generation"] = json!(generation);
        v["definitions"] = defs.iter().map(definition_json).collect();
        return Ok(serde_json::to_string_pretty(&v)?);
    }
    let mut out = format!(
        "bundle   {} {}\nloader   {}\nabi      {}\nfile     {}\nmanifest {}\ngeneration {}\n",
        manifest.id,
        manifest.version,
        manifest.loader,
        manifest.abi,
        manifest.file.display(),
        manifest.path.display(),
        generation
    );
    for d in &manifest.dependencies {
        out.push_str(&format!("depends  {} {}\n", d.id, d.version));
    }
    out.push_str("definitions:\n");
    for d in &defs {
        out.push_str(&format!("  {}: {}\n", d.name, d.signature));
    }
    Ok(out.trim_end().to_string())
}

/// Loads the bundle that defines `function` (`bundle.function`) from
/// `dir`, with the bundles it depends on; other bundles in `dir`, even
/// broken ones, are not touched.
fn load_for(rt: &Runtime, dir: &Path, function: &str) -> Result<()> {
    let (id, _) = function
        .split_once('.')
        .ok_or_else(|| anyhow!("`{function}` is not of the form bundle.function"))?;
    let bundle = polyload_cli::locate(dir, id)?;
    rt.load_bundle(bundle)?;
    Ok(())
}

fn call(rt: &Runtime, c: &CallCmd, as_json: bool) -> Result<String> {
    let args = prepare(rt, c)?;
    let result = rt.call(&c.function, &args)?;
    Ok(if as_json {
        json!({ "function": c.function, "result": result.to_json() }).to_string()
    } else {
        result.to_string()
    })
}

/// Loads what `c` calls and parses its arguments by the signature.
fn prepare(rt: &Runtime, c: &CallCmd) -> Result<Vec<polyload::Value>> {
    load_for(rt, &c.dir, &c.function)?;
    let def = rt
        .definitions()
        .into_iter()
        .find(|d| d.name == c.function)
        .ok_or_else(|| {
            anyhow!(
                "no definition named `{}` in {}",
                c.function,
                c.dir.display()
            )
        })?;
    Ok(polyload_cli::args::parse_args(
        &c.function,
        &def.signature,
        &c.args,
    )?)
}

fn bench(rt: &Runtime, b: &BenchCmd, as_json: bool) -> Result<String> {
    let args = prepare(rt, &b.call)?;
    if !(b.time.is_finite() && b.time > 0.0) {
        anyhow::bail!("--time must be a positive number of seconds");
    }
    let report =
        polyload_cli::bench::run(rt, &b.call.function, &args, Duration::from_secs_f64(b.time))?;
    Ok(if as_json {
        report.to_json().to_string()
    } else {
        report.to_string()
    })
}

fn build(rt: &Runtime, dir: &Path, as_json: bool) -> Result<String> {
    let mut rows = Vec::new();
    for m in polyload::scan_dir(dir)? {
        if m.build.is_none() && m.rimport.is_none() {
            continue;
        }
        let artifact = rt.build(&m)?;
        rows.push((m.id.clone(), artifact.path));
    }
    if as_json {
        return Ok(serde_json::to_string_pretty(
            &rows
                .iter()
                .map(|(id, p)| json!({"id": id, "artifact": p}))
                .collect::<Vec<_>>(),
        )?);
    }
    Ok(rows
        .iter()
        .map(|(id, p)| format!("{id}: {}", p.display()))
        .collect::<Vec<_>>()
        .join("\n"))
}
