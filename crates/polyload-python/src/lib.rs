//! Python bundles for polyload: CPython embedded through [pyo3].
//!
//! ```
//! # fn main() -> polyload::Result<()> {
//! # std::env::set_current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).unwrap();
//! use polyload::Value;
//! let rt = polyload::Runtime::builder().loader(polyload_python::PythonLoader::new()).build()?;
//! rt.load_bundle("examples/bundles/pyslug")?;     // python-slugify, from PyPI
//! let slug = rt.call("pyslug.slugify", &[Value::from("Hello, Wörld!")])?;
//! assert_eq!(slug, Value::from("hello-world"));
//! # Ok(()) }
//! ```
//!
//! # Bundles
//! `loader = "python"`, `file` = the entry script. The script runs as a
//! module once per load; its exports are the module's functions named in
//! `[exports]`, whose signatures convert arguments and results (see
//! [Values](crate#values)).
//!
//! # Isolation
//! One interpreter serves the process. Each loaded version of a bundle gets a
//! private package (`_polyload_<id>_<n>`) rooted at the entry script's
//! directory; the bundle's modules run with their own `__import__`, which
//! sends `import util` to the bundle's own `util.py` and `import polyload`
//! to the bundle's own `polyload` module. Two bundles may therefore each have
//! a `util` module, and a reload gets fresh module objects. No bytecode
//! cache is written next to a bundle's sources. Limit: `importlib.import_module("util")`
//! (which bypasses `__import__`) does not see the bundle's own modules.
//!
//! # Packages
//! `[python] requirements = ["python-slugify>=8"]` are installed on first
//! load with `python3.X -m pip install --target <cache>/python/<hash>` (the
//! interpreter matching the embedded one, keyed by it, pip's version and the
//! list) into the bundle's cache directory. Pure-Python packages installed
//! there are the bundle's own: `import six` in a bundle imports its copy,
//! under the bundle's private package, so two bundles needing different
//! versions of one package each get theirs in one process. Extension
//! modules (compiled `.so`) cannot be loaded twice by CPython: they are
//! found through `sys.path` and shared by name.
//!
//! # Values
//! | polyload type | Python |
//! | --- | --- |
//! | integers | `int` (range-checked on the way back; `bool` is refused) |
//! | `f32`, `f64` | `float` |
//! | `bool` | `bool` |
//! | `str` | `str` |
//! | `bytes` | `bytes` (`bytearray` accepted back) |
//! | `json` | `None`, `bool`, `int`, `float`, `str`, `list`, `dict` |
//!
//! # Calling other bundles
//! `import polyload` gives `polyload.call(name, *args)`, `polyload.get(name)`
//! (a callable proxy) and `polyload.Error`. The GIL is released while the
//! call runs elsewhere, so a Lua or JS bundle on another thread can call
//! into Python meanwhile, and a call back into Python on the same thread
//! (Python -> Lua -> Python) works.
//!
//! # Errors
//! An exception becomes [`polyload::Error::Guest`] with `Type: message` and
//! the Python traceback (files and lines).
//!
//! # Building
//! pyo3 links libpython of the `python3` on `PATH` (or `$PYO3_PYTHON`).
//! With a shared libpython outside the loader's search path (pyenv), this
//! crate's tests and benches get an rpath from `build.rs`; a binary that
//! embeds it should do the same with `DEP_POLYLOAD_PYTHON_LIBDIR` (this
//! crate's `links` metadata), or run with `LD_LIBRARY_PATH` set.
#![warn(missing_docs)]

mod convert;
mod packages;

use polyload::loader::{
    exports, init_error, BundleInstance, BundleLoader, DynamicFn, GuestError, HostCallError,
    HostCalls, LoadContext, LoadedBundle, Source,
};
use polyload::{FfiType, Result, Value};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule, PyTuple};
use std::ffi::CString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// `[python]`: packages installed with pip into the bundle's cache.
#[derive(Clone, Debug, Default, serde::Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PythonSection {
    /// pip requirement specifiers (`"python-slugify>=8"`).
    #[serde(default)]
    pub requirements: Vec<String>,
}

/// Loads `loader = "python"` bundles. Register it with
/// `Runtime::builder().loader(PythonLoader::new())`.
#[derive(Clone, Debug, Default)]
pub struct PythonLoader {
    _private: (),
}

impl PythonLoader {
    /// A Python loader (the interpreter starts on first load).
    pub fn new() -> Self {
        Self::default()
    }
}

/// The support module (`support.py`), created once per process.
fn support(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    static SUPPORT: OnceLock<Py<PyModule>> = OnceLock::new();
    if let Some(m) = SUPPORT.get() {
        return Ok(m.bind(py).clone());
    }
    let code = CString::new(include_str!("support.py")).expect("support.py has no NUL");
    let m = PyModule::from_code(py, &code, c"polyload_support.py", c"_polyload_support")?;
    Ok(SUPPORT.get_or_init(|| m.unbind()).bind(py).clone())
}

/// `Type: message` and the formatted traceback of a Python exception.
pub(crate) fn guest_error(py: Python<'_>, e: &PyErr) -> GuestError {
    let ty = e
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".into());
    let value = e.value(py).to_string();
    let message = if value.is_empty() {
        ty
    } else {
        format!("{ty}: {value}")
    };
    let traceback = e.traceback(py).and_then(|tb| tb.format().ok());
    GuestError { message, traceback }
}

/// The Python exception for a failed host call: `TypeError` for wrong
/// arguments, `RuntimeError` when nothing can be called, `polyload.Error`
/// when the callee failed.
fn host_error(py: Python<'_>, e: HostCallError) -> PyErr {
    use pyo3::exceptions::{PyRuntimeError, PyTypeError};
    match e {
        e if e.is_argument_error() => PyTypeError::new_err(e.to_string()),
        HostCallError::Call(_) => match support(py).and_then(|s| s.getattr("PolyloadError")) {
            Ok(class) => match class.call1((e.to_string(),)) {
                Ok(v) => PyErr::from_value(v),
                Err(err) => err,
            },
            Err(err) => err,
        },
        e => PyRuntimeError::new_err(e.to_string()),
    }
}

/// Implements `polyload.call(name, *args)` for one bundle: arguments are
/// converted under the GIL, which is released while the callee runs (it may
/// be another thread's turn to run Python, or the callee may call back).
fn host_call(host: &HostCalls, args: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
    let py = args.py();
    let name: String = args
        .get_item(0)
        .map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(
                "polyload.call needs a name: call(\"bundle.function\", *args)",
            )
        })?
        .extract()?;
    let guest: Vec<convert::Pv<'_>> = args.iter().skip(1).map(convert::Pv).collect();
    let values = host.convert(&name, &guest).map_err(|e| host_error(py, e))?;
    let result = py.detach(|| host.invoke(&name, &values));
    match result {
        Ok(v) => Ok(convert::to_py(py, &v)?.unbind()),
        Err(e) => Err(host_error(py, e)),
    }
}

static NEXT_PREFIX: AtomicU64 = AtomicU64::new(1);

/// One loaded version of a Python bundle.
struct PyBundle {
    bundle: Py<PyAny>,
}

impl BundleInstance for PyBundle {}

impl Drop for PyBundle {
    fn drop(&mut self) {
        Python::attach(|py| {
            if let Err(e) = self.bundle.bind(py).call_method0("drop") {
                tracing::warn!("dropping a Python bundle: {}", guest_error(py, &e));
            }
        });
    }
}

/// Calls a Python function with values, converting the result by `ret`.
///
/// Up to [`MAX_SCALARS`] numbers and `bool`s go to CPython by vectorcall
/// straight from a stack array of objects; other calls go through pyo3 (a
/// tuple of up to four objects, which pyo3 also passes by vectorcall, or a
/// `PyTuple`).
fn call_py(f: &Py<PyAny>, ret: &FfiType, args: &[Value]) -> std::result::Result<Value, GuestError> {
    Python::attach(|py| {
        let f = f.bind(py);
        let out = match vectorcall_scalars(py, f, args) {
            Some(r) if r.is_null() => return Err(guest_error(py, &PyErr::fetch(py))),
            // SAFETY: a non-null vectorcall result is a new reference.
            Some(r) => unsafe { Bound::from_owned_ptr(py, r) },
            None => call_general(py, f, args)?.map_err(|e| guest_error(py, &e))?,
        };
        match convert::scalar_from_py(&out, ret) {
            Some(v) => Ok(v),
            None => convert::from_py(&out, ret)
                .map_err(|e| GuestError::new(format!("return value: {e}"))),
        }
    })
}

/// Most arguments [`vectorcall_scalars`] passes.
const MAX_SCALARS: usize = 6;

/// Calls `f` by `PyObject_Vectorcall` if every argument is a number or
/// `bool` and there are at most [`MAX_SCALARS`]: the result (a new
/// reference, or null with the exception set), or `None` if the call was
/// not made.
#[inline(always)]
fn vectorcall_scalars(
    py: Python<'_>,
    f: &Bound<'_, PyAny>,
    args: &[Value],
) -> Option<*mut pyo3::ffi::PyObject> {
    if args.len() > MAX_SCALARS {
        return None;
    }
    // Slot 0 stays free: with PY_VECTORCALL_ARGUMENTS_OFFSET the callee may
    // use it (PEP 590). Slots 1.. hold new references, released below.
    let mut ptrs = [std::ptr::null_mut(); MAX_SCALARS + 1];
    for (i, a) in args.iter().enumerate() {
        match convert::scalar_to_py(py, a) {
            Some(o) => ptrs[i + 1] = o.into_ptr(),
            None => {
                // SAFETY: the GIL is held; slots 1..=i are our references.
                unsafe { release(&ptrs[1..=i]) };
                return None;
            }
        }
    }
    let n = args.len();
    // SAFETY: the GIL is held (`py`); `f` is a live object; `ptrs[1..=n]`
    // are live objects we own, and `ptrs[0]` is scratch space the offset
    // flag lends to the callee; afterwards we release our references.
    unsafe {
        let r = pyo3::ffi::PyObject_Vectorcall(
            f.as_ptr(),
            ptrs.as_ptr().add(1),
            n | pyo3::ffi::PY_VECTORCALL_ARGUMENTS_OFFSET,
            std::ptr::null_mut(),
        );
        release(&ptrs[1..=n]);
        Some(r)
    }
}

/// Releases owned references.
///
/// # Safety
/// The GIL is held and each pointer is a reference the caller owns.
#[inline(always)]
unsafe fn release(objs: &[*mut pyo3::ffi::PyObject]) {
    for &o in objs {
        // SAFETY: the caller's contract.
        unsafe { pyo3::ffi::Py_DECREF(o) };
    }
}

/// The general case of [`call_py`]: any arguments, through pyo3. The outer
/// error is an argument that does not convert, the inner the call's.
#[inline(never)]
fn call_general<'py>(
    py: Python<'py>,
    f: &Bound<'py, PyAny>,
    args: &[Value],
) -> std::result::Result<PyResult<Bound<'py, PyAny>>, GuestError> {
    let arg = |i: usize| {
        convert::to_py(py, &args[i])
            .map_err(|e| GuestError::new(format!("argument {}: {e}", i + 1)))
    };
    Ok(match args.len() {
        0 => f.call0(),
        1 => f.call1((arg(0)?,)),
        2 => f.call1((arg(0)?, arg(1)?)),
        3 => f.call1((arg(0)?, arg(1)?, arg(2)?)),
        4 => f.call1((arg(0)?, arg(1)?, arg(2)?, arg(3)?)),
        n => {
            let items = (0..n)
                .map(arg)
                .collect::<std::result::Result<Vec<_>, _>>()?;
            match PyTuple::new(py, items) {
                Ok(tuple) => f.call1(tuple),
                Err(e) => Err(e),
            }
        }
    })
}

impl BundleLoader for PythonLoader {
    fn loader_name(&self) -> &'static str {
        "python"
    }

    fn sections(&self) -> &'static [&'static str] {
        &["python"]
    }

    /// Installs the bundle's requirements if needed, then runs its entry
    /// script as a fresh module (this runs the bundle's code).
    fn load(&self, cx: &LoadContext<'_>) -> Result<LoadedBundle> {
        let m = cx.manifest();
        let section: PythonSection = m.section("python")?.unwrap_or_default();
        let source = Source::read(cx)?;
        let text = source.text(m)?.to_string();
        let filename = source.path.clone();
        let python = Python::attach(|py| -> PyResult<String> {
            support(py)?.call_method0("interpreter")?.extract()
        })
        .map_err(|e| init_error(m, GuestError::new(format!("starting Python: {e}"))))?;
        let site = packages::ensure(cx, &python, &section.requirements)?;
        let root = filename.parent().unwrap_or(m.dir()).to_path_buf();
        let stem = filename
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("main")
            .replace(['.', '-'], "_");
        let prefix = format!(
            "_polyload_{}_{}",
            m.id.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            NEXT_PREFIX.fetch_add(1, Ordering::Relaxed)
        );
        let host = cx.host().clone();
        Python::attach(|py| -> Result<LoadedBundle> {
            let fail = |e: PyErr| init_error(m, guest_error(py, &e));
            let support = support(py).map_err(fail)?;
            let call = pyo3::types::PyCFunction::new_closure(
                py,
                Some(c"call"),
                Some(c"call(name, *args): calls `bundle.function` with args converted by its signature"),
                move |args: &Bound<'_, PyTuple>, _kw: Option<&Bound<'_, PyDict>>| host_call(&host, args),
            )
            .map_err(fail)?;
            let module = support
                .call_method1("make_polyload", (call,))
                .map_err(fail)?;
            let site = site.as_ref().map(|s| s.display().to_string());
            let bundle = support
                .getattr("Bundle")
                .and_then(|b| b.call1((prefix.as_str(), root.display().to_string(), module, site)))
                .map_err(fail)?;
            let entry = bundle
                .call_method1("run_entry", (text, filename.display().to_string(), stem))
                .map_err(fail)?;
            let instance = PyBundle {
                bundle: bundle.unbind(),
            };
            let exports = exports(m, |decl| {
                let Ok(f) = entry.getattr(decl.name.as_str()) else {
                    return Ok(None);
                };
                if !f.is_callable() {
                    return Err(init_error(
                        m,
                        GuestError::new(format!("export `{}` is not callable", decl.name)),
                    ));
                }
                let f = f.unbind();
                let ret = decl.signature.ret.clone();
                let entry: Arc<DynamicFn> = Arc::new(move |args: &[Value]| call_py(&f, &ret, args));
                Ok(Some(entry))
            })?;
            Ok(LoadedBundle {
                exports,
                instance: Box::new(instance),
            })
        })
    }
}
