//! .NET bundles for polyload: C# assemblies run by Mono, loaded at run time
//! through its embedding API, one application domain per bundle version.
//!
//! ```
//! # fn main() -> polyload::Result<()> {
//! # std::env::set_current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).unwrap();
//! use polyload::Value;
//! let rt = polyload::Runtime::builder()
//!     .loader(polyload_dotnet::DotnetLoader::new())
//!     .build()?;
//! rt.load_bundle("examples/bundles/csjson")?; // Newtonsoft.Json, from Debian
//! let v = rt.call("csjson.pretty", &[Value::Json(serde_json::json!({"a": [1, 2]}))])?;
//! assert!(v.to_string().contains("\"a\": ["));
//! # Ok(()) }
//! ```
//!
//! # Bundles
//! `loader = "dotnet"`; `file` is an assembly (`.dll`), or `[build] csc =
//! ["src/Main.cs"]` (with `references = ["Newtonsoft.Json"]`) builds one
//! with Mono's C# compiler, cached by input hash like native builds.
//!
//! ```toml
//! [dotnet]
//! class = "Demo.Calc"           # where exports are found
//! [dotnet.methods]              # optional, per export
//! add = "Add"                   # a method of `class`
//! parse = "Demo.Parser::Parse"  # or of another class
//! ```
//!
//! An export is a public static method of the class: the method named in
//! `[dotnet.methods]`, else one named like the export, else one named like
//! it with its first letter upper-cased (`add` finds `Add`), with as many
//! parameters as the signature. Its C# parameter and return types must be
//! the signature's (see [`values`]); the load fails otherwise,
//! naming the method, the parameter and both types.
//!
//! # Calls
//! Each export is called through its method's unmanaged thunk
//! (`mono_method_get_unmanaged_thunk`), always with the bundle's domain
//! current: an exception the method throws then lands in the thunk's
//! exception slot (called from another application domain, it would be
//! unhandled and abort the process), and the support assembly's
//! `Errors.Report` (`cs/Support.cs`), run in the domain, describes it.
//! An export whose types are
//! all numbers and `bool` is published as native code, an
//! [`OutSlotTrampoline`](polyload_ffi::OutSlotTrampoline) in front of the
//! thunk: typed handles and C slots call it directly, with no boxing. One
//! with `str`, `bytes` or `json` converts its values to .NET objects
//! (pinned while the call runs) and calls the thunk through `polyload-ffi`.
//!
//! A call from outside the bundle's domain (a host thread lives in the
//! root domain) makes the domain current around the call: a thunk does
//! not switch domains itself. That switch, twice per call, costs ~60 ns,
//! eight times the thunk. Inside a [`polyload::Scope`]
//! ([`Runtime::enter`](polyload::Runtime::enter)) the thread instead stays
//! in the domain of its last call until a call needs another domain or
//! the scope ends, so a hot loop over one bundle switches once: sound
//! because a scope holds the reclaimer's read side, so no domain the
//! thread is left in can be unloaded before the scope moves it out.
//!
//! A .NET exception becomes [`polyload::Error::Guest`] whose message is
//! `Type: message` and whose traceback is the exception's stack trace; the
//! bundle keeps working.
//!
//! # Calling other definitions
//! `Polyload.cs` (compiled into every `[build] csc` bundle; see its header
//! for a prebuilt assembly) gives C# `Polyload.Call("hello.add", 2L, 3L)`
//! and `Polyload.Call<long>(...)`; errors throw `PolyloadException`.
//!
//! # One Mono per process
//! Mono is initialised on first use and lives until the process exits: it
//! cannot be shut down and started again. Every `Runtime` in the process
//! shares it; bundles are isolated from each other by application domains,
//! not by runtimes. Loading sets `MONO_THREADS_SUSPEND=preemptive` unless
//! the environment sets it (see `vm.rs` for why), and `MONO_*` variables
//! set before the first load apply.
//!
//! # Reload and unload
//! A reload loads the new assembly into a fresh domain beside the old one
//! and makes its entry points there; any failure (a compile error, a missing
//! method, a wrong type) leaves the old version serving. The old domain is
//! unloaded (`mono_domain_try_unload`) when the runtime's reclaimer drops
//! the old version, which is when no thread can be inside it.
//!
//! # Errors when Mono is missing
//! Mono is `dlopen`ed (`libmonosgen-2.0.so.1`) on the first `dotnet` load:
//! without it the load fails with an error naming the Debian packages to
//! install (`mono-runtime`, and `mono-mcs` for C# sources and for the
//! loader's support assembly, compiled once per cache directory).
#![warn(missing_docs)]

mod domain;

/// Whether the calling thread's current application domain, as Mono sees
/// it (`mono_domain_get`), is the root domain; `None` before Mono is
/// loaded or on a thread Mono does not know. A diagnostic for tests of the
/// domain switching described under [Calls](crate#calls).
#[doc(hidden)]
pub fn thread_in_root_domain() -> Option<bool> {
    vm::in_root_domain()
}
mod mono;
pub mod values;
mod vm;

use domain::{Domain, Method};
use polyload::loader::{
    export_entries, init_error, BundleInstance, BundleLoader, CodePtr, DynamicFn, ExportEntry,
    GuestError, LoadContext, LoadedBundle, Source,
};
use polyload::{Manifest, Result};
use std::collections::BTreeMap;
use std::sync::Arc;

/// `[dotnet]`: where exports are found.
#[derive(Clone, Debug, Default, serde::Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DotnetSection {
    /// The class (`Namespace.Class`) whose public static methods are the
    /// exports.
    #[serde(default)]
    pub class: Option<String>,
    /// Per export: `Method` (of `class`) or `Namespace.Class::Method`.
    #[serde(default)]
    pub methods: BTreeMap<String, String>,
}

/// Loads `loader = "dotnet"` bundles. Register it with
/// `Runtime::builder().loader(DotnetLoader::new())`.
#[derive(Clone, Debug, Default)]
pub struct DotnetLoader {
    _private: (),
}

impl DotnetLoader {
    /// A .NET loader.
    pub fn new() -> Self {
        Self::default()
    }
}

/// One loaded version: its domain and what calls into it. Fields drop in
/// order: the entries first, then the domain, which unloads it.
struct DotnetBundle {
    _entries: Vec<domain::Entry>,
    _domain: Domain,
}

impl BundleInstance for DotnetBundle {}

fn error(m: &Manifest, message: impl Into<String>) -> polyload::Error {
    init_error(m, GuestError::new(message))
}

impl BundleLoader for DotnetLoader {
    fn loader_name(&self) -> &'static str {
        "dotnet"
    }

    fn sections(&self) -> &'static [&'static str] {
        &["dotnet"]
    }

    /// Loads the assembly into a new application domain, checks every
    /// export's method, and makes its entry point. Runs no
    /// bundle code (static constructors run on first call).
    fn load(&self, cx: &LoadContext<'_>) -> Result<LoadedBundle> {
        let m = cx.manifest();
        let section: DotnetSection = m.section("dotnet")?.unwrap_or_default();
        let vm = vm::vm().map_err(|e| error(m, e))?;
        let source = Source::read(cx)?;
        let shadow = domain::shadow_copy(cx.cache_dir(), &source).map_err(|e| error(m, e))?;
        let cache_root = cx.cache_dir().parent().unwrap_or(cx.cache_dir());
        let support = vm::support_assembly(cache_root, &m.id)?;
        let domain = Domain::create(vm, &m.id, cx.host().clone()).map_err(|e| error(m, e))?;
        let assembly = domain
            .open(&support, &shadow)
            .map_err(|e| error(m, format!("{}: {e}", source.path.display())))?;
        let mut entries = Vec::new();
        let exports = export_entries(m, |decl| {
            let target = section
                .methods
                .get(&decl.name)
                .map(String::as_str)
                .map(Method::parse)
                .unwrap_or_else(|| Method::default_for(&decl.name));
            let class = target.class.as_deref().or(section.class.as_deref()).ok_or_else(|| {
                error(
                    m,
                    format!(
                        "export `{}`: no class: give `[dotnet] class = \"Namespace.Class\"` or `[dotnet.methods] {} = \"Namespace.Class::Method\"`",
                        decl.name, decl.name
                    ),
                )
            })?;
            let entry = assembly
                .export(class, &target.names, &decl.name, &decl.signature)
                .map_err(|e| error(m, e))?;
            let code = match &entry {
                domain::Entry::Native { trampoline, .. } => {
                    ExportEntry::Native(CodePtr(trampoline.code_ptr()))
                }
                domain::Entry::Dynamic(call) => {
                    let call = call.clone();
                    let f: Arc<DynamicFn> = Arc::new(move |args| call.call(args));
                    ExportEntry::Dynamic(f)
                }
            };
            entries.push(entry);
            Ok(Some(code))
        })?;
        Ok(LoadedBundle {
            exports,
            instance: Box::new(DotnetBundle {
                _entries: entries,
                _domain: domain,
            }),
        })
    }
}
