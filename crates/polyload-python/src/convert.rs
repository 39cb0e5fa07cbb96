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
//! | struct, array | `list` |

use polyload::{FfiType, Value};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple,
};
use pyo3::IntoPyObjectExt;
use serde_json::Value as Json;

/// Deepest JSON nesting converted (guards against self-containing lists).
const MAX_DEPTH: usize = 128;

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

/// Converts a Python object into a polyload value of type `ty`; the error
/// text says what was expected and what was found.
pub(crate) fn from_py(o: &Bound<'_, PyAny>, ty: &FfiType) -> Result<Value, String> {
    let bad = || format!("expected {ty}, got {}", type_name(o));
    macro_rules! int {
        ($variant:ident, $t:ty) => {{
            if !o.is_instance_of::<PyInt>() || o.is_instance_of::<PyBool>() {
                return Err(bad());
            }
            // Most ints fit an i64 (one C call); wider ones go through i128.
            let wide: i128 = match o.extract::<i64>() {
                Ok(i) => i128::from(i),
                Err(_) => o
                    .extract()
                    .map_err(|_| format!("{o} is out of range for {ty}"))?,
            };
            <$t>::try_from(wide)
                .map(Value::$variant)
                .map_err(|_| format!("{wide} is out of range for {ty}"))
        }};
    }
    match ty {
        FfiType::Void => Ok(Value::Void),
        FfiType::Bool => o
            .cast::<PyBool>()
            .map(|b| Value::Bool(b.is_true()))
            .map_err(|_| bad()),
        FfiType::I8 => int!(I8, i8),
        FfiType::I16 => int!(I16, i16),
        FfiType::I32 => int!(I32, i32),
        FfiType::I64 => int!(I64, i64),
        FfiType::U8 => int!(U8, u8),
        FfiType::U16 => int!(U16, u16),
        FfiType::U32 => int!(U32, u32),
        FfiType::U64 => int!(U64, u64),
        FfiType::Pointer | FfiType::Callback(_) => {
            if o.is_none() {
                Ok(Value::Ptr(0))
            } else {
                int!(Ptr, usize)
            }
        }
        FfiType::F32 | FfiType::F64 => {
            if !(o.is_instance_of::<PyFloat>() || o.is_instance_of::<PyInt>())
                || o.is_instance_of::<PyBool>()
            {
                return Err(bad());
            }
            let f: f64 = o.extract().map_err(|e: PyErr| e.to_string())?;
            Ok(if *ty == FfiType::F32 {
                Value::F32(f as f32)
            } else {
                Value::F64(f)
            })
        }
        FfiType::Str | FfiType::CString => {
            let s = o.cast::<PyString>().map_err(|_| bad())?;
            Ok(Value::Str(
                s.to_str().map_err(|e| e.to_string())?.to_string(),
            ))
        }
        FfiType::Bytes => {
            if let Ok(b) = o.cast::<PyBytes>() {
                Ok(Value::Bytes(b.as_bytes().to_vec()))
            } else if let Ok(b) = o.cast::<PyByteArray>() {
                Ok(Value::Bytes(b.to_vec()))
            } else {
                Err(bad())
            }
        }
        FfiType::Json => py_to_json(o, 0).map(Value::Json),
        FfiType::Struct(fields) => {
            let items = sequence(o).ok_or_else(bad)?;
            if items.len() != fields.len() {
                return Err(format!("expected {ty}, got a sequence of {}", items.len()));
            }
            fields
                .iter()
                .zip(&items)
                .enumerate()
                .map(|(i, (f, item))| from_py(item, f).map_err(|e| format!("field {i}: {e}")))
                .collect::<Result<_, _>>()
                .map(Value::Struct)
        }
        FfiType::Array(elem, n) => {
            let items = sequence(o).ok_or_else(bad)?;
            if items.len() != *n {
                return Err(format!("expected {ty}, got a sequence of {}", items.len()));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| from_py(item, elem).map_err(|e| format!("element {i}: {e}")))
                .collect::<Result<_, _>>()
                .map(Value::Array)
        }
    }
}

fn sequence<'py>(o: &Bound<'py, PyAny>) -> Option<Vec<Bound<'py, PyAny>>> {
    if let Ok(l) = o.cast::<PyList>() {
        Some(l.iter().collect())
    } else if let Ok(t) = o.cast::<PyTuple>() {
        Some(t.iter().collect())
    } else {
        None
    }
}

/// Converts Python objects into JSON.
pub(crate) fn py_to_json(o: &Bound<'_, PyAny>, depth: usize) -> Result<Json, String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "json nested deeper than {MAX_DEPTH} levels (a list that contains itself?)"
        ));
    }
    if o.is_none() {
        return Ok(Json::Null);
    }
    if let Ok(b) = o.cast::<PyBool>() {
        return Ok(Json::Bool(b.is_true()));
    }
    if o.is_instance_of::<PyInt>() {
        if let Ok(i) = o.extract::<i64>() {
            return Ok(Json::from(i));
        }
        return o
            .extract::<u64>()
            .map(Json::from)
            .map_err(|_| format!("json cannot hold the integer {o} (beyond 64 bits)"));
    }
    if let Ok(f) = o.cast::<PyFloat>() {
        let v = f.value();
        return serde_json::Number::from_f64(v)
            .map(Json::Number)
            .ok_or_else(|| format!("json cannot hold the number {v}"));
    }
    if let Ok(s) = o.cast::<PyString>() {
        return Ok(Json::String(
            s.to_str().map_err(|e| e.to_string())?.to_string(),
        ));
    }
    if let Ok(d) = o.cast::<PyDict>() {
        let mut map = serde_json::Map::new();
        for (k, v) in d.iter() {
            let key = k
                .cast::<PyString>()
                .map_err(|_| format!("json object keys must be str, got {}", type_name(&k)))?
                .to_str()
                .map_err(|e| e.to_string())?
                .to_string();
            map.insert(key, py_to_json(&v, depth + 1)?);
        }
        return Ok(Json::Object(map));
    }
    if let Some(items) = sequence(o) {
        return items
            .iter()
            .map(|i| py_to_json(i, depth + 1))
            .collect::<Result<_, _>>()
            .map(Json::Array);
    }
    Err(format!("json cannot hold a {}", type_name(o)))
}
