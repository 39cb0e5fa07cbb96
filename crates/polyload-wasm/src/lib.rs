#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod abi;
mod config;
mod engine;
mod extism;
mod imports;
mod instance;

pub use engine::compiled_modules;

use config::{Abi, WasmSection};
use instance::{ExportPlan, Shared, SlotRet, Template, WasiSpec};
use polyload::loader::{
    BundleInstance, BundleLoader, DynamicFn, Export, ExportEntry, GuestError, LoadContext,
    LoadedBundle, Source,
};
use polyload::{Error, Manifest, Result, Value};
use std::sync::Arc;
use wasmtime::{ExternType, FuncType, Linker, Module, ValType};

/// Loads `loader = "wasm"` bundles. Register it with
/// `Runtime::builder().loader(WasmLoader::new())`.
#[derive(Clone, Debug, Default)]
pub struct WasmLoader {
    _private: (),
}

impl WasmLoader {
    /// A WebAssembly loader.
    pub fn new() -> Self {
        Self::default()
    }
}

/// A loaded version: its instance, kept until no thread can be inside it.
struct WasmBundle {
    _shared: Arc<Shared>,
}

impl BundleInstance for WasmBundle {}

fn manifest_error(m: &Manifest, line: usize, field: String, message: String) -> Error {
    Error::Manifest {
        path: m.path.clone(),
        line,
        field,
        message,
    }
}

fn load_error(path: &std::path::Path, message: String) -> Error {
    Error::LibraryLoad {
        path: path.to_path_buf(),
        message,
    }
}

/// The `[wasm.imports]` bindings.
fn bindings(m: &Manifest, section: &WasmSection) -> Result<Vec<imports::Binding>> {
    let mut out = Vec::new();
    for (key, target) in &section.imports {
        let Some((module, name)) = key.get_ref().rsplit_once('.') else {
            return Err(m.field_error(
                key.span(),
                "wasm.imports",
                format!("`{}` is not `module.name`", key.get_ref()),
            ));
        };
        if !target.contains('.') {
            return Err(m.field_error(
                key.span(),
                "wasm.imports",
                format!("`{target}` is not a qualified name (`bundle.function`)"),
            ));
        }
        out.push(imports::Binding {
            module: module.into(),
            name: name.into(),
            target: target.clone(),
            span: key.span(),
        });
    }
    Ok(out)
}

/// WASI as the manifest gives it, or `None`; paths, env and args without
/// `wasi = true` are an error (they would be silently ignored).
fn wasi_spec(m: &Manifest, section: &WasmSection) -> Result<Option<WasiSpec>> {
    if !section.wasi {
        let given = [
            ("allowed_paths", !section.allowed_paths.is_empty()),
            ("env", !section.env.is_empty()),
            ("args", !section.args.is_empty()),
        ];
        if let Some((field, _)) = given.iter().find(|(_, g)| *g) {
            let line = m.sections().find(|(n, _)| *n == "wasm").map_or(1, |s| s.1);
            return Err(manifest_error(
                m,
                line,
                format!("wasm.{field}"),
                format!(
                    "`{field}` is given to WASI, which this bundle does not get: add `wasi = true`"
                ),
            ));
        }
        return Ok(None);
    }
    let mut dirs = Vec::new();
    for (key, guest) in &section.allowed_paths {
        let (host, read_only) = match key.get_ref().strip_prefix("ro:") {
            Some(rest) => (rest, true),
            None => (key.get_ref().as_str(), false),
        };
        let path = m.dir().join(host);
        let path = path
            .canonicalize()
            .ok()
            .filter(|p| p.is_dir())
            .ok_or_else(|| {
                m.field_error(
                    key.span(),
                    "wasm.allowed_paths",
                    format!("`{}` is not a directory", path.display()),
                )
            })?;
        dirs.push((path, guest.clone(), read_only));
    }
    let mut args = vec![m.id.clone()];
    args.extend(section.args.iter().cloned());
    Ok(Some(WasiSpec {
        args,
        env: section.env.clone(),
        dirs,
    }))
}

/// Checks that the module exports `name` with type `params -> results`,
/// if it exports it at all (`Ok(false)` when it does not).
fn optional_export(
    module: &Module,
    name: &str,
    params: &[ValType],
    results: &[ValType],
) -> std::result::Result<bool, String> {
    match module.get_export(name) {
        None => Ok(false),
        Some(ExternType::Func(ty)) => {
            let want = FuncType::new(
                module.engine(),
                params.iter().cloned(),
                results.iter().cloned(),
            );
            if FuncType::eq(&ty, &want) {
                Ok(true)
            } else {
                Err(format!("the module's `{name}` is {ty}, not {want}"))
            }
        }
        Some(_) => Err(format!("the module's `{name}` is not a function")),
    }
}

impl BundleLoader for WasmLoader {
    fn loader_name(&self) -> &'static str {
        "wasm"
    }

    fn sections(&self) -> &'static [&'static str] {
        &["wasm"]
    }

    /// Compiles the module (or takes it from the compiled-module cache),
    /// checks its imports and exports against the manifest, and
    /// instantiates it (running `_initialize` if it exports one).
    fn load(&self, cx: &LoadContext<'_>) -> Result<LoadedBundle> {
        let m = cx.manifest();
        let section: WasmSection = m.section("wasm")?.unwrap_or_default();
        let limits = section.limits();
        let wasi = wasi_spec(m, &section)?;
        let bindings = bindings(m, &section)?;
        let source = Source::read(cx)?;
        let engine = engine::engine(limits.fuel.is_some());
        let module = engine::module(engine, &source.bytes, &source.path, cx.cache_dir())?;

        imports::check(&module, section.abi, wasi.is_some(), &bindings, cx.host()).map_err(
            |p| match p.binding {
                Some(i) => m.field_error(bindings[i].span.clone(), "wasm.imports", p.message),
                None => load_error(&source.path, p.message),
            },
        )?;
        let mut linker = Linker::new(engine);
        imports::link(
            &mut linker,
            &module,
            section.abi,
            wasi.is_some(),
            &bindings,
            cx.host(),
        )
        .map_err(|e| load_error(&source.path, format!("linking: {}", engine::one_line(&e))))?;
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| load_error(&source.path, engine::one_line(&e)))?;

        let alloc = optional_export(
            &module,
            "polyload_alloc",
            &[ValType::I32, ValType::I32],
            &[ValType::I32],
        );
        let free = optional_export(
            &module,
            "polyload_free",
            &[ValType::I32, ValType::I32, ValType::I32],
            &[],
        );
        let mut plans = Vec::new();
        for decl in &m.exports {
            let bad = |message: String| {
                manifest_error(m, decl.line, format!("exports.{}", decl.name), message)
            };
            let ty = match module.get_export(&decl.name) {
                None => continue, // reported as undefined by the runtime
                Some(ExternType::Func(ty)) => ty,
                Some(_) => {
                    return Err(bad(format!(
                        "the module's `{}` is not a function",
                        decl.name
                    )))
                }
            };
            let shape = match section.abi {
                Abi::Polyload => {
                    let shape = abi::check_polyload_export(&ty, &decl.signature).map_err(&bad)?;
                    let sig = &decl.signature;
                    if sig.params.iter().any(abi::is_buffer) {
                        match &alloc {
                            Ok(true) => {}
                            Ok(false) => {
                                return Err(bad(format!(
                                    "`{sig}` takes str, bytes or json, so the module must export `polyload_alloc(size: i32, align: i32) -> i32`"
                                )))
                            }
                            Err(e) => return Err(bad(e.clone())),
                        }
                    }
                    if abi::is_buffer(&sig.ret) {
                        if let Err(e) = &free {
                            return Err(bad(e.clone()));
                        }
                        if module.get_export("memory").is_none() {
                            return Err(bad(format!(
                                "`{sig}` returns a buffer, so the module must export its `memory`"
                            )));
                        }
                    }
                    shape
                }
                Abi::Extism => {
                    abi::check_extism_export(&ty, &decl.signature).map_err(&bad)?;
                    abi::ResultShape::Void
                }
            };
            let lowered = abi::polyload_params(&decl.signature).map_or(0, |p| p.len());
            let slots = lowered.max(ty.results().len()).max(1);
            let scalar = section.abi == Abi::Polyload
                && matches!(shape, abi::ResultShape::Void | abi::ResultShape::Scalar)
                && !decl.signature.params.iter().any(abi::is_buffer)
                && slots <= instance::SCALAR_SLOTS;
            plans.push(ExportPlan {
                index: plans.len(),
                signature: decl.signature.clone(),
                shape,
                name: decl.name.clone(),
                slots,
                scalar,
                results: ty.results().len(),
                slot_ret: SlotRet::of(shape, &decl.signature.ret),
            });
        }

        let template = Template {
            bundle: m.id.as_str().into(),
            abi: section.abi,
            limits,
            pre,
            wasi,
            config: Arc::new(section.config.clone()),
            vars: Default::default(),
            exports: plans.iter().map(|p| p.name.clone()).collect(),
        };
        let shared =
            Arc::new(Shared::new(template).map_err(|e| polyload::loader::init_error(m, e))?);
        let exports = plans
            .into_iter()
            .map(|plan| {
                let vm = shared.clone();
                let name = plan.name.clone();
                let signature = plan.signature.clone();
                let plan = Arc::new(plan);
                let entry = match vm.abi() {
                    Abi::Polyload if plan.scalar => {
                        let slots = vm.slot_entry(plan.clone());
                        let entry = slots.clone();
                        let values: Arc<DynamicFn> = Arc::new(move |args: &[Value]| {
                            Shared::call_scalar(&plan, &*entry, args)
                        });
                        ExportEntry::DynamicSlots { values, slots }
                    }
                    Abi::Polyload => ExportEntry::Dynamic(Arc::new(
                        move |args: &[Value]| -> std::result::Result<Value, GuestError> {
                            vm.call(&plan, args)
                        },
                    )),
                    Abi::Extism => ExportEntry::Dynamic(Arc::new(move |args: &[Value]| {
                        vm.call_extism(&plan, args)
                    })),
                };
                Export {
                    name,
                    signature,
                    entry,
                }
            })
            .collect();
        Ok(LoadedBundle {
            exports,
            instance: Box::new(WasmBundle { _shared: shared }),
        })
    }
}
