//! The JSON that `--json` prints: one documented shape per command, built
//! from the library's types (never from `Debug` text).
//!
//! * `list`: an array of [manifests](manifest_json).
//! * `inspect`: a manifest object plus `"generation"` (u64) and
//!   `"definitions"`, an array of [definitions](definition_json).
//! * `call`: `{"function": "b.f", "result": VALUE}` with the value as
//!   [`polyload::Value::to_json`] gives it.
//! * `ffi`: `{"result": VALUE}`.
//! * `build`: an array of `{"id": "b", "artifact": "/path"}`.
//! * `bench`: see [`crate::bench::Report::to_json`].
//! * `watch`: one object per line, `"event"` one of `watching`, `changed`,
//!   `preparing`, `reloaded`, `failed`.

use polyload::manifest::BuildSpec;
use polyload::{DefinitionInfo, DefinitionKind, Manifest};
use serde_json::{json, Value};

/// A manifest:
///
/// ```json
/// {"id": "hello", "version": "0.1.0", "loader": "native", "file": "libhello.so",
///  "abi": "1.0", "dir": "examples/bundles/hello",
///  "exports": {"add": "fn(i64, i64) -> i64"},
///  "dependencies": [{"id": "x", "version": "^0.1"}],
///  "provides": ["name@1.0"],
///  "build": {"cc": ["src/hello.c"], "libs": [], "cflags": [], "cxxflags": [], "std": "c++17"}}
/// ```
///
/// `build` is `null` without a `[build]` section, else `{"cc", "libs",
/// "cflags", "cxxflags", "std"}` or `{"cargo": DIR, "profile": "release" |
/// "debug"}`.
pub fn manifest_json(m: &Manifest) -> Value {
    json!({
        "id": m.id,
        "version": m.version.to_string(),
        "loader": m.loader,
        "file": m.file,
        "abi": m.abi.to_string(),
        "dir": m.dir(),
        "exports": m.exports.iter().map(|e| (e.name.clone(), json!(e.signature.to_string()))).collect::<serde_json::Map<_, _>>(),
        "dependencies": m.dependencies.iter().map(|d| json!({"id": d.id, "version": d.version.to_string()})).collect::<Vec<_>>(),
        "provides": m.provides.iter().map(|p| format!("{}@{}", p.name, p.version)).collect::<Vec<_>>(),
        "build": m.build.as_ref().map(build_json),
    })
}

fn build_json(b: &BuildSpec) -> Value {
    match b {
        BuildSpec::Cargo { dir, release } => json!({
            "cargo": dir,
            "profile": if *release { "release" } else { "debug" },
        }),
        BuildSpec::Cc {
            sources,
            libs,
            cflags,
            cxxflags,
            cxx_std,
        } => {
            json!({"cc": sources, "libs": libs, "cflags": cflags, "cxxflags": cxxflags, "std": cxx_std})
        }
        BuildSpec::WasmCc { sources, cflags } => json!({"wasm-cc": sources, "cflags": cflags}),
        BuildSpec::Csc {
            sources,
            references,
        } => json!({"csc": sources, "references": references}),
    }
}

/// A live definition: `{"name": "b.f", "kind": "function", "signature":
/// "fn(i64) -> i64", "generation": 1}`.
pub fn definition_json(d: &DefinitionInfo) -> Value {
    json!({
        "name": d.name,
        "kind": match d.kind {
            DefinitionKind::Function => "function",
            _ => "other",
        },
        "signature": d.signature.to_string(),
        "generation": d.generation,
    })
}
