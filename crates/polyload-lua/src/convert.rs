//! Values between polyload and Lua, by signature.
//!
//! | polyload type | Lua |
//! | --- | --- |
//! | integers | number (LuaJIT numbers are doubles: exact up to 2^53) |
//! | `f32`, `f64` | number |
//! | `bool` | boolean |
//! | `str`, `cstr` | string (UTF-8 checked when leaving Lua) |
//! | `bytes` | string (any bytes) |
//! | `json` | nil / `polyload.null`, boolean, number, string, table |
//! | struct, array | sequence table |
//!
//! JSON arrays and objects become tables whose metatable has
//! `__jsontype = "array"` or `"object"` (dkjson's convention), so an empty
//! array stays an array on the way back. A table without that mark is an
//! array when its keys are exactly `1..n` (an empty table is an array, as in
//! dkjson), otherwise an object whose keys must be strings or numbers.
//!
//! Lua to polyload goes through the toolkit's one conversion
//! ([`polyload::loader::from_guest`]): this module only says what a Lua
//! value is ([`Lv`]).

use mlua::{Lua, Table, Value as LuaValue};
use polyload::loader::{from_guest, GuestValue, GuestView};
use polyload::{FfiType, Value};
use serde_json::Value as Json;
use std::borrow::Cow;

/// Registry keys of the two marker metatables.
const ARRAY_MT: &str = "polyload.json.array";
const OBJECT_MT: &str = "polyload.json.object";

/// Creates the JSON marker metatables in `lua`'s registry.
pub(crate) fn install_metatables(lua: &Lua) -> mlua::Result<()> {
    for (key, kind) in [(ARRAY_MT, "array"), (OBJECT_MT, "object")] {
        let mt = lua.create_table()?;
        mt.set("__jsontype", kind)?;
        lua.set_named_registry_value(key, mt)?;
    }
    Ok(())
}

/// The Lua value of a scalar (what [`to_lua`] gives for it), `None` for
/// values that need the state (strings, tables). Infallible and inlined: the
/// common case of a call does not move a `Result` through memory.
#[inline(always)]
pub(crate) fn scalar_to_lua(v: &Value) -> Option<LuaValue> {
    Some(match v {
        Value::Void => LuaValue::Nil,
        Value::Bool(b) => LuaValue::Boolean(*b),
        Value::I8(x) => LuaValue::Integer((*x).into()),
        Value::I16(x) => LuaValue::Integer((*x).into()),
        Value::I32(x) => LuaValue::Integer((*x).into()),
        Value::I64(x) => LuaValue::Integer(*x),
        Value::U8(x) => LuaValue::Integer((*x).into()),
        Value::U16(x) => LuaValue::Integer((*x).into()),
        Value::U32(x) => LuaValue::Integer((*x).into()),
        Value::U64(x) => match i64::try_from(*x) {
            Ok(i) => LuaValue::Integer(i),
            Err(_) => LuaValue::Number(*x as f64),
        },
        Value::F32(x) => LuaValue::Number((*x).into()),
        Value::F64(x) => LuaValue::Number(*x),
        Value::Ptr(p) => LuaValue::Integer(*p as i64),
        _ => return None,
    })
}

/// Converts a polyload value into a Lua value.
pub(crate) fn to_lua(lua: &Lua, v: &Value) -> mlua::Result<LuaValue> {
    if let Some(l) = scalar_to_lua(v) {
        return Ok(l);
    }
    Ok(match v {
        Value::Str(s) => LuaValue::String(lua.create_string(s)?),
        Value::Bytes(b) => LuaValue::String(lua.create_string(b)?),
        Value::Json(j) => json_to_lua(lua, j)?,
        Value::Struct(items) | Value::Array(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            LuaValue::Table(t)
        }
        _ => unreachable!("scalars are converted above"),
    })
}

/// Converts JSON into Lua (see the module docs).
pub(crate) fn json_to_lua(lua: &Lua, j: &Json) -> mlua::Result<LuaValue> {
    Ok(match j {
        Json::Null => LuaValue::NULL,
        Json::Bool(b) => LuaValue::Boolean(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => LuaValue::Integer(i),
            None => LuaValue::Number(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => LuaValue::String(lua.create_string(s)?),
        Json::Array(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, json_to_lua(lua, item)?)?;
            }
            t.set_metatable(Some(lua.named_registry_value::<Table>(ARRAY_MT)?))?;
            LuaValue::Table(t)
        }
        Json::Object(map) => {
            let t = lua.create_table_with_capacity(0, map.len())?;
            for (k, item) in map {
                t.raw_set(k.as_str(), json_to_lua(lua, item)?)?;
            }
            t.set_metatable(Some(lua.named_registry_value::<Table>(OBJECT_MT)?))?;
            LuaValue::Table(t)
        }
    })
}

/// A Lua value as polyload's conversion reads it ([`GuestValue`]).
pub(crate) struct Lv(pub(crate) LuaValue);

impl GuestValue for Lv {
    // LuaJIT numbers are doubles: an integral one is an integer.
    const FLOATS_ARE_NUMBERS: bool = true;
    // Lua strings are byte strings.
    const TEXT_IS_BYTES: bool = true;

    fn view(&self) -> Result<GuestView<'_, Self>, String> {
        Ok(match &self.0 {
            LuaValue::Nil => GuestView::Null,
            LuaValue::LightUserData(p) if p.0.is_null() => GuestView::Null,
            LuaValue::LightUserData(p) => GuestView::Pointer(p.0 as usize),
            LuaValue::Boolean(b) => GuestView::Bool(*b),
            LuaValue::Integer(i) => GuestView::Int(Some(i128::from(*i))),
            LuaValue::Number(n) => GuestView::Float(*n),
            LuaValue::String(s) => GuestView::Text(Cow::Owned(s.as_bytes().to_vec())),
            LuaValue::Table(t) => table_view(t)?,
            other => GuestView::Other(Cow::Borrowed(other.type_name())),
        })
    }

    fn describe(&self) -> String {
        match &self.0 {
            LuaValue::Number(n) => format!("number {n}"),
            LuaValue::Integer(n) => format!("number {n}"),
            v => v.type_name().to_string(),
        }
    }
}

/// Converts a Lua value to a polyload value of type `ty`.
pub(crate) fn from_lua(v: &LuaValue, ty: &FfiType) -> Result<Value, String> {
    from_guest(&Lv(v.clone()), ty)
}

fn json_type_mark(t: &Table) -> Option<String> {
    t.metatable()?
        .raw_get::<Option<String>>("__jsontype")
        .ok()
        .flatten()
}

/// A table is a sequence when marked `array` (dkjson's `__jsontype`), or
/// unmarked with keys exactly `1..n`; otherwise a map whose keys are
/// strings or numbers.
fn table_view(t: &Table) -> Result<GuestView<'static, Lv>, String> {
    let mark = json_type_mark(t);
    let len = t.raw_len();
    let mut count = 0usize;
    let mut sequence = true;
    for pair in t.pairs::<LuaValue, LuaValue>() {
        let (k, _) = pair.map_err(|e| e.to_string())?;
        count += 1;
        sequence &= match k {
            LuaValue::Integer(i) => i >= 1 && (i as usize) <= len,
            LuaValue::Number(n) => n.fract() == 0.0 && n >= 1.0 && (n as usize) <= len,
            _ => false,
        };
    }
    let is_array = match mark.as_deref() {
        Some("array") => true,
        Some("object") => false,
        _ => sequence && count == len,
    };
    if is_array {
        let mut out = Vec::with_capacity(len);
        for i in 1..=len {
            out.push(Lv(t.raw_get(i).map_err(|e| e.to_string())?));
        }
        return Ok(GuestView::Seq(out));
    }
    let mut out = Vec::with_capacity(count);
    for pair in t.pairs::<LuaValue, LuaValue>() {
        let (k, item) = pair.map_err(|e| e.to_string())?;
        let key = match &k {
            LuaValue::String(s) => s
                .to_str()
                .map_err(|_| "json keys must be UTF-8".to_string())?
                .to_string(),
            LuaValue::Integer(i) => i.to_string(),
            LuaValue::Number(n) => n.to_string(),
            other => {
                return Err(format!(
                    "json object keys must be strings, got a {}",
                    other.type_name()
                ))
            }
        };
        out.push((key, Lv(item)));
    }
    Ok(GuestView::Map(out))
}
