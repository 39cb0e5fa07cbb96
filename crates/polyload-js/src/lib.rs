//! JavaScript bundles for polyload: QuickJS (through [rquickjs]) with one
//! runtime and context per bundle, ES modules, and npm packages.
//!
//! ```
//! # fn main() -> polyload::Result<()> {
//! # std::env::set_current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).unwrap();
//! use polyload::Value;
//! let rt = polyload::Runtime::builder().loader(polyload_js::JsLoader::new()).build()?;
//! rt.load_bundle("examples/bundles/jsmarkdown")?; // marked, from npm
//! let html = rt.call("jsmarkdown.render", &[Value::from("*hi*")])?;
//! assert_eq!(html, Value::from("<p><em>hi</em></p>\n"));
//! # Ok(()) }
//! ```
//!
//! # Bundles
//! `loader = "js"`, `file` = the entry ES module. Its exports named in
//! `[exports]` are the functions polyload calls; signatures convert
//! arguments and results (see [Values](crate#values)). An `async` function
//! (one returning a promise) is run to completion. The entry may `import`
//! the bundle's own files (`./util.js`), npm packages named in
//! `[js] packages` (installed with `npm install --ignore-scripts` into the
//! bundle's cache on first load, keyed by the list and the node and npm
//! versions, resolved ES-module first), and `polyload`. Packages that ship
//! only CommonJS (`require`, `module.exports`) load too: see
//! [CommonJS](crate#commonjs).
//!
//! # CommonJS
//! A `.cjs` file, or a `.js` file outside a `"type": "module"` package that
//! uses `require`/`module.exports` and no `import`/`export`, is evaluated as
//! a CommonJS module (wrapped in `function (exports, require, module,
//! __filename, __dirname)`) when first imported or required; ES modules
//! see its `module.exports` as the default export and each of its own
//! properties that is an identifier as a named export. `require` resolves
//! `./relative` files (`.js`, `.json`, `index.js`) and packages in the
//! bundle's `node_modules` by `package.json` (`exports` with the `require`
//! or `default` condition, then `main`). Node's built-in modules (`fs`,
//! `path`, ...) are not available.
//!
//! # Values
//! | polyload type | JavaScript |
//! | --- | --- |
//! | integers | number (BigInt beyond ±2^53); range-checked on the way back |
//! | `f32`, `f64` | number |
//! | `bool` | boolean |
//! | `str` | string |
//! | `bytes` | `Uint8Array` (`ArrayBuffer` accepted back) |
//! | `json` | `null`, boolean, number, string, array, plain object |
//!
//! # Calling other bundles
//! `import { call, get } from "polyload"` (also the global `polyload`):
//! `call("bundle.function", ...args)`, `get(name)` gives a callable proxy.
//!
//! # Threads and re-entrancy
//! QuickJS is single-threaded. Each bundle's runtime has its own
//! [`polyload::loader::VmLock`]: bundles run in parallel on different
//! threads; another thread calling into a busy bundle waits; the same
//! thread re-enters (JS -> Python -> JS) by reusing the context that is
//! already active; and bundles calling each other from several threads in
//! opposite directions cannot deadlock (a thread whose lock the holder waits
//! for enters on top of the holder's frames, see `VmLock`).
//!
//! # Errors
//! A thrown exception becomes [`polyload::Error::Guest`] with `Name:
//! message` and the QuickJS stack (`at f (/path/main.js:3:11)`).
#![warn(missing_docs)]

mod convert;
mod modules;

use polyload::loader::{
    exports, init_error, BundleInstance, BundleLoader, DynamicFn, GuestError, HostCallError,
    HostCalls, HostFunction, LoadContext, LoadedBundle, Source, VmLock,
};
use polyload::{FfiType, Result, Value};
use rquickjs::function::{Args, Rest};
use rquickjs::{
    qjs, Context, Ctx, Exception, Function, Module, Object, Persistent, Runtime, Value as JsValue,
};
use std::cell::{Cell, RefCell};
use std::ptr::NonNull;
use std::sync::Arc;

/// `[js]`: packages installed with npm into the bundle's cache.
#[derive(Clone, Debug, Default, serde::Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JsSection {
    /// npm package specifiers (`"marked@12"`).
    #[serde(default)]
    pub packages: Vec<String>,
}

/// Loads `loader = "js"` bundles. Register it with
/// `Runtime::builder().loader(JsLoader::new())`.
#[derive(Clone, Debug, Default)]
pub struct JsLoader {
    _private: (),
}

impl JsLoader {
    /// A JavaScript loader.
    pub fn new() -> Self {
        Self::default()
    }
}

/// One bundle's QuickJS runtime and context.
///
/// Field order is drop order: the saved functions go before the context,
/// the context before the runtime.
struct Vm {
    /// Taken around every use of the VM (see `Shared::enter`).
    lock: VmLock,
    exports: RefCell<Vec<Persistent<Function<'static>>>>,
    ctx: Context,
    _rt: Runtime,
    /// The context pointer while some frame on the lock's owning thread is
    /// inside `Context::with` (for re-entrant calls).
    active: Cell<Option<NonNull<qjs::JSContext>>>,
}

/// A [`Vm`] shared by the bundle's exports, reached only under its
/// [`VmLock`].
struct Shared(Vm);

// SAFETY: rquickjs (without its `parallel` feature) uses `Rc`/`RefCell`
// internally and QuickJS has no locking of its own, so a `Vm` must only be
// touched by one thread at a time. Every access goes through
// `Shared::enter`, which holds the VM's `VmLock` while it uses the `Vm`:
// only the lock's holder can reach it, and the lock orders accesses from
// successive threads (its atomics release and acquire). The holder may be
// another thread than the one whose frames are below (the lock is handed
// over to a thread whose lock the owner waits for, see `VmLock`); it then
// runs on top of those frames exactly as a re-entrant call would, and
// QuickJS's stack limit is reset for the thread running (`enter`, and
// after each call out). The last `Arc<Shared>` drops the `Vm` on whichever
// thread releases it, with no other reference left.
unsafe impl Send for Shared {}
// SAFETY: as above; `&Shared` only gives access through `enter`.
unsafe impl Sync for Shared {}

/// Resets QuickJS's stack limit for the thread running `ctx` now: the
/// limit is measured from a stack top QuickJS records per runtime, which
/// must be this thread's (after a call out, another thread may have run
/// this runtime in between).
fn update_stack_top(ctx: &Ctx<'_>) {
    // SAFETY: `ctx` is entered on this thread, so its runtime is live and
    // ours; the call only records the current stack pointer.
    unsafe { qjs::JS_UpdateStackTop(qjs::JS_GetRuntime(ctx.as_raw().as_ptr())) };
}

impl Shared {
    /// Runs `f` with the bundle's context on this thread, re-using the
    /// context already entered further up the stack (of this thread, or of
    /// the thread the lock was handed over from).
    fn enter<R>(&self, f: impl for<'js> FnOnce(Ctx<'js>, &Vm) -> R) -> R {
        let vm = &self.0;
        let _lock = vm.lock.lock();
        if let Some(raw) = vm.active.get() {
            // SAFETY: `active` is set only while a frame below (held under
            // this lock, which we hold now) is inside `Context::with` on
            // this context, so the runtime is locked for us and the context
            // is alive; the `Ctx` created here does not outlive `f`, which
            // returns before that outer frame does.
            let ctx = unsafe { Ctx::from_raw(raw) };
            update_stack_top(&ctx);
            return f(ctx, vm);
        }
        vm.ctx.with(|ctx| {
            struct Reset<'a>(&'a Cell<Option<NonNull<qjs::JSContext>>>);
            impl Drop for Reset<'_> {
                fn drop(&mut self) {
                    self.0.set(None);
                }
            }
            update_stack_top(&ctx);
            vm.active.set(Some(ctx.as_raw()));
            let _reset = Reset(&vm.active);
            f(ctx, vm)
        })
    }
}

/// The pending exception (or `e`) as the guest's message and stack.
fn guest_error(ctx: &Ctx<'_>, e: rquickjs::Error) -> GuestError {
    if !e.is_exception() {
        return GuestError::new(e.to_string());
    }
    let v = ctx.catch();
    if let Some(ex) = v
        .as_object()
        .and_then(|o| Exception::from_object(o.clone()))
    {
        let name: Option<String> = ex.get("name").ok();
        let message = ex.message().unwrap_or_default();
        let message = match name {
            Some(n) if !n.is_empty() => format!("{n}: {message}"),
            _ => message,
        };
        let stack = ex.stack().filter(|s| !s.trim().is_empty());
        return GuestError {
            message,
            traceback: stack,
        };
    }
    let text = ctx
        .json_stringify(v.clone())
        .ok()
        .flatten()
        .and_then(|s| s.to_string().ok())
        .unwrap_or_else(|| format!("{v:?}"));
    GuestError::new(format!("uncaught {text}"))
}

/// Most arguments [`call_scalars`] passes.
const MAX_SCALARS: usize = 8;

/// Calls `f` by `JS_Call` from a stack array if every argument is a number
/// or `bool` (see [`convert::scalar_to_raw`]) and there are at most
/// [`MAX_SCALARS`]; `None` if the call was not made. rquickjs's `Args`
/// would collect them in a heap buffer first.
#[inline(always)]
fn call_scalars<'js>(
    ctx: &Ctx<'js>,
    f: &Function<'js>,
    args: &[Value],
) -> Option<rquickjs::Result<JsValue<'js>>> {
    if args.len() > MAX_SCALARS {
        return None;
    }
    let mut argv = [qjs::JS_UNDEFINED; MAX_SCALARS];
    for (slot, a) in argv.iter_mut().zip(args) {
        *slot = convert::scalar_to_raw(a)?;
    }
    // SAFETY: `ctx` is entered on this thread (inside `Shared::enter`); `f`
    // is a live function of it; `argv` holds `args.len()` values without
    // reference counts (borrowed by the callee, nothing to free).
    let raw = unsafe {
        qjs::JS_Call(
            ctx.as_raw().as_ptr(),
            f.as_raw(),
            qjs::JS_UNDEFINED,
            args.len() as std::ffi::c_int,
            argv.as_mut_ptr(),
        )
    };
    // SAFETY: `raw` is a value JS_Call returned; checking its tag is fine.
    if unsafe { qjs::JS_IsException(raw) } {
        return Some(Err(rquickjs::Error::Exception));
    }
    // SAFETY: a non-exception result is a new reference, which the
    // `JsValue` takes over (and frees when dropped).
    Some(Ok(unsafe { JsValue::from_raw(ctx.clone(), raw) }))
}

/// Runs the job queue until `v` (if a promise) settles.
fn settle<'js>(v: JsValue<'js>) -> rquickjs::Result<JsValue<'js>> {
    match v.as_promise() {
        Some(p) => p.finish::<JsValue>(),
        None => Ok(v),
    }
}

fn call_export(
    shared: &Shared,
    index: usize,
    ret: &FfiType,
    args: &[Value],
) -> std::result::Result<Value, GuestError> {
    shared.enter(|ctx, vm| {
        let f = vm.exports.borrow()[index]
            .clone()
            .restore(&ctx)
            .map_err(|e| {
                GuestError::new(format!(
                    "internal error restoring an export (this is a bug): {e}"
                ))
            })?;
        let out = match call_scalars(&ctx, &f, args) {
            Some(out) => out,
            None => {
                let mut a = Args::new(ctx.clone(), args.len());
                for (i, v) in args.iter().enumerate() {
                    let js = convert::to_js(&ctx, v)
                        .map_err(|e| GuestError::new(format!("argument {}: {e}", i + 1)))?;
                    // Cannot fail: a `JsValue` converts to itself.
                    a.push_arg(js).map_err(|e| guest_error(&ctx, e))?;
                }
                a.apply::<JsValue>(&f)
            }
        };
        match out.and_then(settle) {
            Ok(out) => convert::from_js(&out, ret)
                .map_err(|e| GuestError::new(format!("return value: {e}"))),
            Err(e) => Err(guest_error(&ctx, e)),
        }
    })
}

/// A failed host call as a thrown exception: `TypeError` for wrong
/// arguments, `Error` otherwise.
fn throw(ctx: &Ctx<'_>, e: HostCallError) -> rquickjs::Error {
    if e.is_argument_error() {
        Exception::throw_type(ctx, &e.to_string())
    } else {
        Exception::throw_message(ctx, &e.to_string())
    }
}

fn guest_args<'js>(args: &[JsValue<'js>]) -> Vec<convert::Jv<'js>> {
    args.iter().cloned().map(convert::Jv).collect()
}

/// Installs the global `polyload` object: `call(name, ...args)`,
/// `get(name)` (a function resolved once, following reloads).
fn install_host<'js>(
    ctx: &Ctx<'js>,
    host: HostCalls,
    modules: modules::BundleModules,
) -> rquickjs::Result<()> {
    let obj = Object::new(ctx.clone())?;
    let calls = host.clone();
    let call = Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>, name: String, args: Rest<JsValue<'js>>| {
            let out = calls.call(&name, &guest_args(&args.0));
            update_stack_top(&ctx);
            convert::to_js(&ctx, &out.map_err(|e| throw(&ctx, e))?)
        },
    )?
    .with_name("call")?;
    let get = Function::new(ctx.clone(), move |ctx: Ctx<'js>, name: String| {
        let f: Arc<HostFunction> = Arc::new(host.get(&name));
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, args: Rest<JsValue<'js>>| {
                let out = f.call(&guest_args(&args.0)).map_err(|e| throw(&ctx, e))?;
                convert::to_js(&ctx, &out)
            },
        )?
        .with_name(name)
    })?
    .with_name("get")?;
    obj.set("call", call)?;
    obj.set("get", get)?;
    ctx.globals().set("polyload", obj)?;
    modules::install_commonjs(ctx, modules)
}

struct JsBundle {
    _shared: Arc<Shared>,
}

impl BundleInstance for JsBundle {}

impl BundleLoader for JsLoader {
    fn loader_name(&self) -> &'static str {
        "js"
    }

    fn sections(&self) -> &'static [&'static str] {
        &["js"]
    }

    /// Installs `[js] packages` if needed, then evaluates the entry module
    /// in a fresh QuickJS runtime (this runs the bundle's code).
    fn load(&self, cx: &LoadContext<'_>) -> Result<LoadedBundle> {
        let m = cx.manifest();
        let section: JsSection = m.section("js")?.unwrap_or_default();
        let source = Source::read(cx)?;
        let path = source.path.clone();
        let installed = modules::ensure_packages(cx, &section.packages)?;
        let root = path.parent().unwrap_or(m.dir()).to_path_buf();
        let mut node_modules = vec![root.join("node_modules")];
        node_modules.extend(installed);
        let resolver = modules::BundleModules { node_modules };
        let fail_setup = |what: &str, e: rquickjs::Error| {
            init_error(
                m,
                GuestError::new(format!("creating a QuickJS {what}: {e}")),
            )
        };
        let rt = Runtime::new().map_err(|e| fail_setup("runtime", e))?;
        rt.set_loader(resolver.clone(), resolver.clone());
        let ctx = Context::full(&rt).map_err(|e| fail_setup("context", e))?;
        let shared = Arc::new(Shared(Vm {
            lock: VmLock::new(),
            exports: RefCell::new(Vec::new()),
            ctx,
            _rt: rt,
            active: Cell::new(None),
        }));
        let host = cx.host().clone();
        let name = path.display().to_string();
        let found: Vec<(String, Option<usize>)> =
            shared.enter(|ctx, vm| -> Result<Vec<(String, Option<usize>)>> {
                let fail = |ctx: &Ctx<'_>, e: rquickjs::Error| init_error(m, guest_error(ctx, e));
                install_host(&ctx, host, resolver).map_err(|e| fail(&ctx, e))?;
                let module = Module::declare(ctx.clone(), name.as_str(), source.bytes)
                    .map_err(|e| fail(&ctx, e))?;
                let (module, promise) = module.eval().map_err(|e| fail(&ctx, e))?;
                promise.finish::<()>().map_err(|e| fail(&ctx, e))?;
                let mut found = Vec::new();
                for decl in &m.exports {
                    let v: JsValue = module.get(decl.name.as_str()).map_err(|e| fail(&ctx, e))?;
                    if v.is_undefined() {
                        found.push((decl.name.clone(), None)); // reported as missing by the runtime
                        continue;
                    }
                    let f = v.into_function().ok_or_else(|| {
                        init_error(
                            m,
                            GuestError::new(format!("export `{}` is not a function", decl.name)),
                        )
                    })?;
                    let mut saved = vm.exports.borrow_mut();
                    saved.push(Persistent::save(&ctx, f));
                    found.push((decl.name.clone(), Some(saved.len() - 1)));
                }
                Ok(found)
            })?;
        let exports = exports(m, |decl| {
            let Some(index) = found
                .iter()
                .find(|(n, _)| *n == decl.name)
                .and_then(|f| f.1)
            else {
                return Ok(None);
            };
            let ret = decl.signature.ret.clone();
            let vm = shared.clone();
            let entry: Arc<DynamicFn> =
                Arc::new(move |args: &[Value]| call_export(&vm, index, &ret, args));
            Ok(Some(entry))
        })?;
        Ok(LoadedBundle {
            exports,
            instance: Box::new(JsBundle { _shared: shared }),
        })
    }
}
