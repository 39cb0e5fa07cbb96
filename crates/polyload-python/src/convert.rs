//! Values between polyload and Python, by signature.
//!
//! | polyload type | Python |
//! | --- | --- |
//! | integers | `int` (range-checked on the way back; `bool` is refused) |
//! | `f32`, `f64` | `float` (an `int` is accepted back) |
//! | `bool` | `bool` |
//! | `str`, `cstr` | `str` |
//! | `bytes` | `bytes` (`bytearray` accepted back) |
//! | `json` | `None`, `bool`, `int`, `float`, `str`, `list` (tuples accepted back), `dict` with `str` keys |
//! | struct, array | `list` (a tuple is accepted back) |
//!
//! Python to polyload goes through the toolkit's one conversion
//! ([`polyload::loader::from_guest`]): this module only says what a Python
//! object is ([`Pv`]).

use polyload::loader::{from_guest, GuestValue, GuestView};
use polyload::{FfiType, Value};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple,
};
use pyo3::IntoPyObjectExt;
use serde_json::Value as Json;
use std::borrow::Cow;

/// The Python object of a number or `bool` (what [`to_py`] gives for it),
/// `None` for other values. Infallible and inlined, so the common call does
/// not move a `PyResult` through memory.
#[inline(always)]
pub(crate) fn scalar_to_py<'py>(py: Python<'py>, v: &Value) -> Option<Bound<'py, PyAny>> {
    macro_rules! num {
        ($x:expr) => {{
            let Ok(o) = $x.into_pyobject(py);
            o.into_any()
        }};
    }
    Some(match v {
        Value::Bool(b) => {
            let Ok(o) = b.into_pyobject(py);
            o.to_owned().into_any()
        }
        Value::I8(x) => num!(*x),
        Value::I16(x) => num!(*x),
        Value::I32(x) => num!(*x),
        Value::I64(x) => num!(*x),
        Value::U8(x) => num!(*x),
        Value::U16(x) => num!(*x),
        Value::U32(x) => num!(*x),
        Value::U64(x) => num!(*x),
        Value::F32(x) => num!(*x),
        Value::F64(x) => num!(*x),
        _ => return None,
    })
}

/// [`from_py`] for the results that come back most often (an `int` as
/// `i64`, a `float` as `f64`, `void`), inlined; `None` means "ask
/// [`from_py`]", which also words the errors.
#[inline(always)]
pub(crate) fn scalar_from_py(o: &Bound<'_, PyAny>, ty: &FfiType) -> Option<Value> {
    match ty {
        FfiType::Void => Some(Value::Void),
        FfiType::I64 if o.is_exact_instance_of::<PyInt>() => {
            let mut overflow = 0;
            // SAFETY: the GIL is held (`o` is bound) and `o` is an exact
            // `int`, for which this cannot fail other than by overflow
            // (reported in `overflow`, leaving no exception set).
            let i = unsafe { pyo3::ffi::PyLong_AsLongLongAndOverflow(o.as_ptr(), &mut overflow) };
            (overflow == 0).then_some(Value::I64(i))
        }
        FfiType::F64 => o
            .cast_exact::<PyFloat>()
            .ok()
            .map(|f| Value::F64(f.value())),
        _ => None,
    }
}

/// Converts a polyload value into a Python object.
pub(crate) fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    if let Some(o) = scalar_to_py(py, v) {
        return Ok(o);
    }
    match v {
        Value::Void => Ok(py.None().into_bound(py)),
        Value::Ptr(p) => p.into_bound_py_any(py),
        Value::Bool(_)
        | Value::I8(_)
        | Value::I16(_)
        | Value::I32(_)
        | Value::I64(_)
        | Value::U8(_)
        | Value::U16(_)
        | Value::U32(_)
        | Value::U64(_)
        | Value::F32(_)
        | Value::F64(_) => unreachable!("scalars are converted above"),
        Value::Str(s) => s.into_bound_py_any(py),
        Value::Bytes(b) => Ok(PyBytes::new(py, b).into_any()),
        Value::Json(j) => json_to_py(py, j),
        Value::Struct(items) | Value::Array(items) => {
            let items = items
                .iter()
                .map(|i| to_py(py, i))
                .collect::<PyResult<Vec<_>>>()?;
            Ok(PyList::new(py, items)?.into_any())
        }
    }
}

/// Converts JSON into Python objects.
pub(crate) fn json_to_py<'py>(py: Python<'py>, j: &Json) -> PyResult<Bound<'py, PyAny>> {
    match j {
        Json::Null => Ok(py.None().into_bound(py)),
        Json::Bool(b) => b.into_bound_py_any(py),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_bound_py_any(py)
            } else if let Some(u) = n.as_u64() {
                u.into_bound_py_any(py)
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_bound_py_any(py)
            }
        }
        Json::String(s) => s.into_bound_py_any(py),
        Json::Array(items) => {
            let items = items
                .iter()
                .map(|i| json_to_py(py, i))
                .collect::<PyResult<Vec<_>>>()?;
            Ok(PyList::new(py, items)?.into_any())
        }
        Json::Object(map) => {
            let d = PyDict::new(py);
            for (k, v) in map {
                d.set_item(k, json_to_py(py, v)?)?;
            }
            Ok(d.into_any())
        }
    }
}

fn type_name(o: &Bound<'_, PyAny>) -> String {
    o.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// A Python object as polyload's conversion reads it ([`GuestValue`]).
pub(crate) struct Pv<'py>(pub(crate) Bound<'py, PyAny>);

impl GuestValue for Pv<'_> {
    // `int` and `float` are distinct types: 2.0 is not an integer.
    const FLOATS_ARE_NUMBERS: bool = false;
    const TEXT_IS_BYTES: bool = false;

    fn view(&self) -> Result<GuestView<'_, Self>, String> {
        let o = &self.0;
        if o.is_none() {
            return Ok(GuestView::Null);
        }
        if let Ok(b) = o.cast::<PyBool>() {
            return Ok(GuestView::Bool(b.is_true()));
        }
        if o.is_instance_of::<PyInt>() {
            // Most ints fit an i64 (one C call); wider ones go through i128.
            return Ok(GuestView::Int(match o.extract::<i64>() {
                Ok(i) => Some(i128::from(i)),
                Err(_) => o.extract::<i128>().ok(),
            }));
        }
        if let Ok(f) = o.cast::<PyFloat>() {
            return Ok(GuestView::Float(f.value()));
        }
        if let Ok(s) = o.cast::<PyString>() {
            let text = s.to_str().map_err(|e| e.to_string())?;
            return Ok(GuestView::Text(Cow::Owned(text.as_bytes().to_vec())));
        }
        if let Ok(b) = o.cast::<PyBytes>() {
            return Ok(GuestView::Bytes(Cow::Owned(b.as_bytes().to_vec())));
        }
        if let Ok(b) = o.cast::<PyByteArray>() {
            return Ok(GuestView::Bytes(Cow::Owned(b.to_vec())));
        }
        if let Ok(d) = o.cast::<PyDict>() {
            let mut entries = Vec::with_capacity(d.len());
            for (k, v) in d.iter() {
                let key = k
                    .cast::<PyString>()
                    .map_err(|_| format!("json object keys must be str, got {}", type_name(&k)))?
                    .to_str()
                    .map_err(|e| e.to_string())?
                    .to_string();
                entries.push((key, Pv(v)));
            }
            return Ok(GuestView::Map(entries));
        }
        if let Ok(l) = o.cast::<PyList>() {
            return Ok(GuestView::Seq(l.iter().map(Pv).collect()));
        }
        if let Ok(t) = o.cast::<PyTuple>() {
            return Ok(GuestView::Seq(t.iter().map(Pv).collect()));
        }
        Ok(GuestView::Other(Cow::Owned(type_name(o))))
    }

    fn describe(&self) -> String {
        type_name(&self.0)
    }
}

/// Converts a Python object into a polyload value of type `ty`; the error
/// text says what was expected and what was found.
pub(crate) fn from_py(o: &Bound<'_, PyAny>, ty: &FfiType) -> Result<Value, String> {
    from_guest(&Pv(o.clone()), ty)
}
