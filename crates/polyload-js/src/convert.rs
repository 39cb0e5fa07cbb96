//! Values between polyload and JavaScript, by signature.
//!
//! | polyload type | JavaScript |
//! | --- | --- |
//! | integers | number; a 64-bit value beyond ±2^53 is a BigInt (both accepted back, range-checked) |
//! | `f32`, `f64` | number |
//! | `bool` | boolean |
//! | `str`, `cstr` | string |
//! | `bytes` | `Uint8Array` (`ArrayBuffer` accepted back) |
//! | `json` | `null`, boolean, number, string, array, plain object (`undefined` goes back as `null`) |
//! | struct, array | array |

use polyload::{FfiType, Value};
use rquickjs::{
    qjs, Array, ArrayBuffer, BigInt, Ctx, IntoJs, Object, TypedArray, Value as JsValue,
};
use serde_json::Value as Json;

/// Deepest JSON nesting converted (guards against self-containing objects).
const MAX_DEPTH: usize = 128;
const SAFE: i64 = 1 << 53;

/// The JavaScript value of a scalar (what [`to_js`] gives for it), `None`
/// for values that need an allocation (strings, buffers, objects, BigInts).
/// Infallible and inlined: the common case of a call does not move a
/// `Result` through memory.
#[inline(always)]
pub(crate) fn scalar_to_js<'js>(ctx: &Ctx<'js>, v: &Value) -> Option<JsValue<'js>> {
    let raw = scalar_to_raw(v)?;
    // SAFETY: `scalar_to_raw` makes only values without a reference count
    // (ints, floats, booleans, `undefined`), valid in any context.
    Some(unsafe { JsValue::from_raw(ctx.clone(), raw) })
}

/// [`scalar_to_js`] as a raw QuickJS value: an int, float, boolean or
/// `undefined`, none of which is reference-counted (so it needs no context
/// and no `JS_FreeValue`). Numbers are ints when integral and within `i32`,
/// as `JS_NewFloat64` makes them.
#[inline(always)]
pub(crate) fn scalar_to_raw(v: &Value) -> Option<qjs::JSValue> {
    let int = |i: i32| qjs::JS_MKVAL(qjs::JS_TAG_INT, i);
    let num = |x: f64| qjs::JS_NewFloat64(x);
    let wide = |i: i64| (-SAFE..=SAFE).contains(&i).then(|| num(i as f64));
    Some(match v {
        Value::Void => qjs::JS_UNDEFINED,
        Value::Bool(b) => qjs::JS_MKVAL(qjs::JS_TAG_BOOL, i32::from(*b)),
        Value::I8(x) => int((*x).into()),
        Value::I16(x) => int((*x).into()),
        Value::I32(x) => int(*x),
        Value::U8(x) => int((*x).into()),
        Value::U16(x) => int((*x).into()),
        Value::U32(x) => num((*x).into()),
        Value::I64(x) => wide(*x)?,
        Value::U64(x) => wide(i64::try_from(*x).ok()?)?,
        Value::F32(x) => num((*x).into()),
        Value::F64(x) => num(*x),
        Value::Ptr(p) => wide(*p as i64)?,
        _ => return None,
    })
}

/// Converts a polyload value into a JavaScript value.
pub(crate) fn to_js<'js>(ctx: &Ctx<'js>, v: &Value) -> rquickjs::Result<JsValue<'js>> {
    if let Some(js) = scalar_to_js(ctx, v) {
        return Ok(js);
    }
    match v {
        // Integers beyond 2^53 (the scalars `scalar_to_js` leaves out).
        Value::I64(i) => Ok(BigInt::from_i64(ctx.clone(), *i)?.into_value()),
        Value::U64(u) => Ok(BigInt::from_u64(ctx.clone(), *u)?.into_value()),
        Value::Ptr(p) => Ok(BigInt::from_u64(ctx.clone(), *p as u64)?.into_value()),
        Value::Str(s) => s.as_str().into_js(ctx),
        Value::Bytes(b) => Ok(TypedArray::<u8>::new_copy(ctx.clone(), b)?.into_value()),
        Value::Json(j) => json_to_js(ctx, j),
        Value::Struct(items) | Value::Array(items) => {
            let a = Array::new(ctx.clone())?;
            for (i, item) in items.iter().enumerate() {
                a.set(i, to_js(ctx, item)?)?;
            }
            Ok(a.into_value())
        }
        _ => unreachable!("scalar_to_js converts every other scalar"),
    }
}

/// Converts JSON into JavaScript values.
pub(crate) fn json_to_js<'js>(ctx: &Ctx<'js>, j: &Json) -> rquickjs::Result<JsValue<'js>> {
    match j {
        Json::Null => Ok(JsValue::new_null(ctx.clone())),
        Json::Bool(b) => b.into_js(ctx),
        Json::Number(n) => n.as_f64().unwrap_or(f64::NAN).into_js(ctx),
        Json::String(s) => s.as_str().into_js(ctx),
        Json::Array(items) => {
            let a = Array::new(ctx.clone())?;
            for (i, item) in items.iter().enumerate() {
                a.set(i, json_to_js(ctx, item)?)?;
            }
            Ok(a.into_value())
        }
        Json::Object(map) => {
            let o = Object::new(ctx.clone())?;
            for (k, item) in map {
                o.set(k.as_str(), json_to_js(ctx, item)?)?;
            }
            Ok(o.into_value())
        }
    }
}

fn describe(v: &JsValue<'_>) -> String {
    if let Some(n) = v.as_number() {
        format!("number {n}")
    } else {
        v.type_name().to_string()
    }
}

fn wide_int(v: &JsValue<'_>) -> Option<i128> {
    if let Some(i) = v.as_int() {
        return Some(i128::from(i));
    }
    if let Some(f) = v.as_float() {
        return (f.fract() == 0.0 && f.is_finite() && f.abs() < 1.9e19).then_some(f as i128);
    }
    if v.is_big_int() {
        // QuickJS's BigInt-to-int64 wraps; go through the decimal text to
        // range-check exactly.
        let text: rquickjs::convert::Coerced<String> = v.get().ok()?;
        return text.0.parse::<i128>().ok().or(Some(i128::MAX));
    }
    None
}

/// Converts a JavaScript value into a polyload value of type `ty`.
pub(crate) fn from_js(v: &JsValue<'_>, ty: &FfiType) -> Result<Value, String> {
    let bad = || format!("expected {ty}, got {}", describe(v));
    macro_rules! int {
        ($variant:ident, $t:ty) => {{
            let wide = wide_int(v).ok_or_else(bad)?;
            <$t>::try_from(wide)
                .map(Value::$variant)
                .map_err(|_| format!("{wide} is out of range for {ty}"))
        }};
    }
    match ty {
        FfiType::Void => Ok(Value::Void),
        FfiType::Bool => v.as_bool().map(Value::Bool).ok_or_else(bad),
        FfiType::I8 => int!(I8, i8),
        FfiType::I16 => int!(I16, i16),
        FfiType::I32 => int!(I32, i32),
        FfiType::I64 => int!(I64, i64),
        FfiType::U8 => int!(U8, u8),
        FfiType::U16 => int!(U16, u16),
        FfiType::U32 => int!(U32, u32),
        FfiType::U64 => int!(U64, u64),
        FfiType::Pointer | FfiType::Callback(_) => {
            if v.is_null() || v.is_undefined() {
                Ok(Value::Ptr(0))
            } else {
                int!(Ptr, usize)
            }
        }
        FfiType::F32 | FfiType::F64 => {
            let f = v.as_number().ok_or_else(bad)?;
            Ok(if *ty == FfiType::F32 {
                Value::F32(f as f32)
            } else {
                Value::F64(f)
            })
        }
        FfiType::Str | FfiType::CString => {
            let s = v.as_string().ok_or_else(bad)?;
            Ok(Value::Str(s.to_string().map_err(|e| e.to_string())?))
        }
        FfiType::Bytes => {
            if let Some(o) = v.as_object() {
                if let Ok(t) = TypedArray::<u8>::from_object(o.clone()) {
                    // SAFETY: the bytes are copied out at once; no JavaScript
                    // runs while the slice is alive.
                    return Ok(Value::Bytes(
                        unsafe { t.as_bytes() }.unwrap_or_default().to_vec(),
                    ));
                }
                if let Some(b) = ArrayBuffer::from_object(o.clone()) {
                    // SAFETY: as above, copied before any JavaScript runs.
                    return Ok(Value::Bytes(
                        unsafe { b.as_bytes() }.unwrap_or_default().to_vec(),
                    ));
                }
            }
            Err(bad())
        }
        FfiType::Json => js_to_json(v, 0).map(Value::Json),
        FfiType::Struct(fields) => {
            let a = v.as_array().ok_or_else(bad)?;
            if a.len() != fields.len() {
                return Err(format!("expected {ty}, got an array of {}", a.len()));
            }
            fields
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let item: JsValue = a.get(i).map_err(|e| e.to_string())?;
                    from_js(&item, f).map_err(|e| format!("field {i}: {e}"))
                })
                .collect::<Result<_, _>>()
                .map(Value::Struct)
        }
        FfiType::Array(elem, n) => {
            let a = v.as_array().ok_or_else(bad)?;
            if a.len() != *n {
                return Err(format!("expected {ty}, got an array of {}", a.len()));
            }
            (0..*n)
                .map(|i| {
                    let item: JsValue = a.get(i).map_err(|e| e.to_string())?;
                    from_js(&item, elem).map_err(|e| format!("element {i}: {e}"))
                })
                .collect::<Result<_, _>>()
                .map(Value::Array)
        }
    }
}

/// Converts a JavaScript value into JSON.
pub(crate) fn js_to_json(v: &JsValue<'_>, depth: usize) -> Result<Json, String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "json nested deeper than {MAX_DEPTH} levels (an object that contains itself?)"
        ));
    }
    if v.is_null() || v.is_undefined() {
        return Ok(Json::Null);
    }
    if let Some(b) = v.as_bool() {
        return Ok(Json::Bool(b));
    }
    if let Some(i) = v.as_int() {
        return Ok(Json::from(i));
    }
    if let Some(f) = v.as_float() {
        if f.fract() == 0.0 && f.abs() < 9.0e15 {
            return Ok(Json::from(f as i64));
        }
        return serde_json::Number::from_f64(f)
            .map(Json::Number)
            .ok_or_else(|| format!("json cannot hold the number {f}"));
    }
    if v.is_big_int() {
        return match wide_int(v) {
            Some(i) if i64::try_from(i).is_ok() => Ok(Json::from(i as i64)),
            Some(i) if u64::try_from(i).is_ok() => Ok(Json::from(i as u64)),
            _ => Err("json cannot hold a BigInt beyond 64 bits".into()),
        };
    }
    if let Some(s) = v.as_string() {
        return s.to_string().map(Json::String).map_err(|e| e.to_string());
    }
    if let Some(a) = v.as_array() {
        let mut out = Vec::with_capacity(a.len());
        for item in a.iter::<JsValue>() {
            out.push(js_to_json(&item.map_err(|e| e.to_string())?, depth + 1)?);
        }
        return Ok(Json::Array(out));
    }
    if v.is_function() {
        return Err("json cannot hold a function".into());
    }
    if let Some(o) = v.as_object() {
        let mut map = serde_json::Map::new();
        for prop in o.props::<String, JsValue>() {
            let (k, item) = prop.map_err(|e| e.to_string())?;
            if item.is_undefined() || item.is_function() {
                continue; // as JSON.stringify does
            }
            map.insert(k, js_to_json(&item, depth + 1)?);
        }
        return Ok(Json::Object(map));
    }
    Err(format!("json cannot hold a {}", v.type_name()))
}
