//! What a guest may import: `polyload.set_error`, the definitions the
//! manifest binds (`[wasm.imports]`), the Extism kernel, and WASI when
//! given. Anything else fails the load, naming the import.

use crate::abi;
use crate::config::Abi;
use crate::engine::one_line;
use crate::extism;
use crate::instance::{read_guest, write_guest, Fault, State};
use polyload::loader::{HostCalls, HostFunction};
use polyload::{FfiType, Signature, Value};
use std::sync::{Arc, Mutex};
use wasmtime::{Caller, ExternType, FuncType, Linker, Module, Val, ValRaw, ValType};

/// The module of polyload's own imports.
pub(crate) const POLYLOAD: &str = "polyload";
/// WASI preview 1's module.
pub(crate) const WASI: &str = "wasi_snapshot_preview1";

/// The type of import `module.name`, if the module has it.
fn import_type(module: &Module, m: &str, n: &str) -> Option<ExternType> {
    module
        .imports()
        .find(|i| i.module() == m && i.name() == n)
        .map(|i| i.ty())
}

/// One `[wasm.imports]` binding: guest import `module.name` -> definition.
#[derive(Clone, Debug)]
pub(crate) struct Binding {
    pub(crate) module: String,
    pub(crate) name: String,
    pub(crate) target: String,
    /// Where the binding's key is in the manifest, for errors.
    pub(crate) span: std::ops::Range<usize>,
}

/// Why the module's imports cannot be satisfied: the message, and the
/// binding it is about (for the manifest line), if any.
pub(crate) struct ImportProblem {
    pub(crate) message: String,
    pub(crate) binding: Option<usize>,
}

/// Checks every import of `module` against what the bundle is given.
///
/// # Errors
/// The first import nothing provides, a binding the module does not
/// import, or a bound import whose wasm type cannot carry the definition's
/// signature (when it is loaded already).
pub(crate) fn check(
    module: &Module,
    abi: Abi,
    wasi: bool,
    bindings: &[Binding],
    host: &HostCalls,
) -> Result<(), ImportProblem> {
    let problem = |message: String, binding| Err(ImportProblem { message, binding });
    for imp in module.imports() {
        let (m, n) = (imp.module(), imp.name());
        let bound = bindings.iter().position(|b| b.module == m && b.name == n);
        let given = bound.is_some()
            || (m == POLYLOAD && n == "set_error" && abi == Abi::Polyload)
            || (m == extism::ENV && abi == Abi::Extism)
            || (m == WASI && wasi);
        if !given {
            let hint = if m == WASI {
                "; it is WASI, which this bundle is not given: set `[wasm] wasi = true` (the guest then gets only the args, env and allowed_paths listed)".to_string()
            } else if m == extism::ENV {
                "; it is the Extism kernel: set `[wasm] abi = \"extism\"` for an Extism plugin"
                    .to_string()
            } else {
                format!("; bind it to a definition in `[wasm.imports]` (\"{m}.{n}\" = \"bundle.function\")")
            };
            return problem(
                format!("the module imports `{m}.{n}`, which nothing provides{hint}"),
                None,
            );
        }
        if let (Some(i), ExternType::Func(ty)) = (bound, imp.ty()) {
            // Checked now when the definition is loaded already, else at
            // the first call.
            if let Ok(sig) = host.get(&bindings[i].target).signature() {
                if let Err(e) = abi::check_import(&ty, &sig, abi) {
                    return problem(
                        format!("`{m}.{n}` bound to `{}`: {e}", bindings[i].target),
                        Some(i),
                    );
                }
            }
        } else if let Some(i) = bound {
            return problem(format!("`{m}.{n}` is not a function import"), Some(i));
        }
    }
    for (i, b) in bindings.iter().enumerate() {
        if import_type(module, &b.module, &b.name).is_none() {
            return problem(
                format!("the module does not import `{}.{}`", b.module, b.name),
                Some(i),
            );
        }
    }
    Ok(())
}

/// Defines what the bundle is given in `linker`.
///
/// # Errors
/// Only if a definition is refused by wasmtime (a bug).
pub(crate) fn link(
    linker: &mut Linker<State>,
    module: &Module,
    abi: Abi,
    wasi: bool,
    bindings: &[Binding],
    host: &HostCalls,
) -> wasmtime::Result<()> {
    match abi {
        Abi::Polyload => {
            linker.func_wrap(
                POLYLOAD,
                "set_error",
                |mut c: Caller<'_, State>, p: i32, len: i32| -> wasmtime::Result<()> {
                    let bytes = read_guest(&mut c, p, len).map_err(wasmtime::Error::msg)?;
                    c.data_mut().error = Some(String::from_utf8_lossy(&bytes).into_owned());
                    Ok(())
                },
            )?;
        }
        Abi::Extism => extism::link(linker)?,
    }
    if wasi {
        wasmtime_wasi::p1::add_to_linker_sync(linker, |s: &mut State| {
            s.wasi
                .as_mut()
                .expect("WASI is linked only for bundles given it, whose states carry it")
        })?;
    }
    for b in bindings {
        let Some(ExternType::Func(ty)) = import_type(module, &b.module, &b.name) else {
            continue; // `check` refused these
        };
        let bound = Bound {
            function: host.get(&b.target),
            import: format!("{}.{}", b.module, b.name),
            ty: ty.clone(),
            abi,
            checked: Mutex::new(None),
        };
        let bound = Arc::new(bound);
        linker.func_new(&b.module, &b.name, ty, move |mut c, params, results| {
            bound.call(&mut c, params, results)
        })?;
    }
    Ok(())
}

/// A guest import bound to a definition.
struct Bound {
    function: HostFunction,
    /// `module.name`, for messages.
    import: String,
    ty: FuncType,
    abi: Abi,
    /// The signature last checked against `ty`.
    checked: Mutex<Option<Signature>>,
}

fn raw_of(v: &Val) -> ValRaw {
    match *v {
        Val::I32(x) => ValRaw::i32(x),
        Val::I64(x) => ValRaw::i64(x),
        Val::F32(x) => ValRaw::f32(x),
        Val::F64(x) => ValRaw::f64(x),
        _ => ValRaw::i32(0),
    }
}

impl Bound {
    fn fail(&self, message: impl std::fmt::Display) -> wasmtime::Error {
        wasmtime::Error::msg(format!(
            "import `{}` (bound to `{}`): {message}",
            self.import,
            self.function.name()
        ))
    }

    fn signature(&self) -> wasmtime::Result<Signature> {
        let sig = self.function.signature().map_err(|e| self.fail(e))?;
        let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        if checked.as_ref() != Some(&sig) {
            abi::check_import(&self.ty, &sig, self.abi).map_err(|e| self.fail(e))?;
            *checked = Some(sig.clone());
        }
        Ok(sig)
    }

    /// The guest's arguments as values of `sig`.
    fn lift_args(
        &self,
        c: &mut Caller<'_, State>,
        sig: &Signature,
        params: &[Val],
    ) -> wasmtime::Result<Vec<Value>> {
        let mut values = Vec::with_capacity(sig.params.len());
        let mut i = 0;
        for (n, ty) in sig.params.iter().enumerate() {
            let bad = |m: String| self.fail(format!("argument {}: {m}", n + 1));
            let v = if abi::is_buffer(ty) {
                let bytes = match self.abi {
                    Abi::Polyload => {
                        let (p, len) = (params[i].unwrap_i32(), params[i + 1].unwrap_i32());
                        i += 2;
                        read_guest(&mut *c, p, len).map_err(bad)?
                    }
                    Abi::Extism => {
                        let h = params[i].unwrap_i64() as u64;
                        i += 1;
                        c.data().kernel.block(h).to_vec()
                    }
                };
                abi::buffer_value(bytes, ty).map_err(bad)?
            } else {
                let wide = matches!(params[i], Val::I64(_))
                    && !matches!(ty, FfiType::I64 | FfiType::U64 | FfiType::Handle(_));
                let v = abi::lift(raw_of(&params[i]), ty, wide).map_err(bad)?;
                i += 1;
                v
            };
            values.push(v);
        }
        Ok(values)
    }

    fn call(
        &self,
        c: &mut Caller<'_, State>,
        params: &[Val],
        results: &mut [Val],
    ) -> wasmtime::Result<()> {
        let sig = self.signature()?;
        let args = self.lift_args(c, &sig, params)?;
        let out = self.function.invoke(&args).map_err(|e| self.fail(e))?;
        let Some(slot) = results.first_mut() else {
            return Ok(());
        };
        *slot = if abi::is_buffer(&sig.ret) {
            let bytes = abi::buffer_bytes(&out);
            match self.abi {
                Abi::Polyload => {
                    let (p, len) = write_guest(&mut *c, &bytes).map_err(|f| match f {
                        Fault::Guest(e) => self.fail(format!("result: {e}")),
                        Fault::Trap(e) => self.fail(format!("result: {}", one_line(&e))),
                    })?;
                    Val::I64(((len as u32 as i64) << 32) | (p as u32 as i64))
                }
                Abi::Extism => {
                    let linear = c.data().linear;
                    let h = c.data_mut().kernel.result_block(&bytes, linear)?;
                    Val::I64(h as i64)
                }
            }
        } else {
            let raw =
                abi::lower(&out).ok_or_else(|| self.fail("the definition returned no value"))?;
            let Some(want) = self.ty.results().next() else {
                return Ok(());
            };
            let wide = want.is_i64()
                && !matches!(sig.ret, FfiType::I64 | FfiType::U64 | FfiType::Handle(_));
            let raw = abi::widen(raw, wide, &sig.ret);
            match want {
                ValType::I32 => Val::I32(raw.get_i32()),
                ValType::I64 => Val::I64(raw.get_i64()),
                ValType::F32 => Val::F32(raw.get_f32()),
                ValType::F64 => Val::F64(raw.get_f64()),
                _ => return Err(self.fail("unsupported result type")),
            }
        };
        Ok(())
    }
}
