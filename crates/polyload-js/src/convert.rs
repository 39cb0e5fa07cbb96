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

use polyload::loader::{from_guest, GuestValue, GuestView};
use polyload::{FfiType, Value};
use rquickjs::{
    qjs, Array, ArrayBuffer, BigInt, Ctx, IntoJs, Object, TypedArray, Value as JsValue,
};
use serde_json::Value as Json;
use std::borrow::Cow;

/// Deepest JSON nesting converted (guards against self-containing objects).
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

/// A BigInt's exact value; `None` beyond 128 bits.
fn big_int(v: &JsValue<'_>) -> Option<i128> {
    let text: rquickjs::convert::Coerced<String> = v.get().ok()?;
    text.0.parse::<i128>().ok()
}

/// A JavaScript value as polyload's conversion reads it ([`GuestValue`]).
pub(crate) struct Jv<'js>(pub(crate) JsValue<'js>);

impl GuestValue for Jv<'_> {
    // JavaScript numbers are doubles: an integral one is an integer.
    const FLOATS_ARE_NUMBERS: bool = true;
    const TEXT_IS_BYTES: bool = false;

    fn view(&self) -> Result<GuestView<'_, Self>, String> {
        let v = &self.0;
        if v.is_null() || v.is_undefined() {
            return Ok(GuestView::Null);
        }
        if let Some(b) = v.as_bool() {
            return Ok(GuestView::Bool(b));
        }
        if let Some(i) = v.as_int() {
            return Ok(GuestView::Int(Some(i128::from(i))));
        }
        if let Some(f) = v.as_float() {
            return Ok(GuestView::Float(f));
        }
        if v.is_big_int() {
            return Ok(GuestView::Int(big_int(v)));
        }
        if let Some(s) = v.as_string() {
            let s = s.to_string().map_err(|e| e.to_string())?;
            return Ok(GuestView::Text(Cow::Owned(s.into_bytes())));
        }
        if v.is_function() {
            return Ok(GuestView::Other(Cow::Borrowed("function")));
        }
        if let Some(a) = v.as_array() {
            let items = a
                .iter::<JsValue>()
                .map(|i| i.map(Jv).map_err(|e| e.to_string()))
                .collect::<Result<_, _>>()?;
            return Ok(GuestView::Seq(items));
        }
        if let Some(o) = v.as_object() {
            if let Ok(t) = TypedArray::<u8>::from_object(o.clone()) {
                // SAFETY: the bytes are copied before any JS code runs.
                let b = unsafe { t.as_bytes() }.unwrap_or_default().to_vec();
                return Ok(GuestView::Bytes(Cow::Owned(b)));
            }
            if let Some(b) = ArrayBuffer::from_object(o.clone()) {
                // SAFETY: as above.
                let b = unsafe { b.as_bytes() }.unwrap_or_default().to_vec();
                return Ok(GuestView::Bytes(Cow::Owned(b)));
            }
            let mut entries = Vec::new();
            for prop in o.props::<String, JsValue>() {
                let (k, item) = prop.map_err(|e| e.to_string())?;
                if item.is_undefined() || item.is_function() {
                    continue; // as JSON.stringify does
                }
                entries.push((k, Jv(item)));
            }
            return Ok(GuestView::Map(entries));
        }
        Ok(GuestView::Other(Cow::Owned(v.type_name().to_string())))
    }

    fn describe(&self) -> String {
        describe(&self.0)
    }
}

/// Converts a JavaScript value to a polyload value of type `ty`.
pub(crate) fn from_js(v: &JsValue<'_>, ty: &FfiType) -> Result<Value, String> {
    from_guest(&Jv(v.clone()), ty)
}
