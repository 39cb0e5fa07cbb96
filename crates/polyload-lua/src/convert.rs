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

use mlua::{Lua, Table, Value as LuaValue};
use polyload::{FfiType, Value};
use serde_json::Value as Json;

/// Deepest JSON nesting converted (guards against self-referencing tables).
const MAX_DEPTH: usize = 128;

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

fn type_name(v: &LuaValue) -> String {
    match v {
        LuaValue::Number(n) => format!("number {n}"),
        LuaValue::Integer(n) => format!("number {n}"),
        v => v.type_name().to_string(),
    }
}

/// Converts a Lua value to a polyload value of type `ty`. Integers are
/// range-checked; the error text names what was expected and what was found.
pub(crate) fn from_lua(v: &LuaValue, ty: &FfiType) -> Result<Value, String> {
    let bad = || format!("expected {ty}, got {}", type_name(v));
    macro_rules! int {
        ($variant:ident, $t:ty) => {{
            let wide: i128 = match v {
                LuaValue::Integer(i) => i128::from(*i),
                LuaValue::Number(n) if n.fract() == 0.0 && n.is_finite() && n.abs() < 1.9e19 => {
                    *n as i128
                }
                _ => return Err(bad()),
            };
            <$t>::try_from(wide)
                .map(Value::$variant)
                .map_err(|_| format!("{wide} is out of range for {ty}"))
        }};
    }
    match ty {
        FfiType::Void => Ok(Value::Void),
        FfiType::Bool => match v {
            LuaValue::Boolean(b) => Ok(Value::Bool(*b)),
            _ => Err(bad()),
        },
        FfiType::I8 => int!(I8, i8),
        FfiType::I16 => int!(I16, i16),
        FfiType::I32 => int!(I32, i32),
        FfiType::I64 => int!(I64, i64),
        FfiType::U8 => int!(U8, u8),
        FfiType::U16 => int!(U16, u16),
        FfiType::U32 => int!(U32, u32),
        FfiType::U64 => int!(U64, u64),
        FfiType::Pointer | FfiType::Callback(_) => match v {
            LuaValue::Nil => Ok(Value::Ptr(0)),
            LuaValue::LightUserData(p) => Ok(Value::Ptr(p.0 as usize)),
            _ => int!(Ptr, usize),
        },
        FfiType::F32 | FfiType::F64 => {
            let f = match v {
                LuaValue::Integer(i) => *i as f64,
                LuaValue::Number(n) => *n,
                _ => return Err(bad()),
            };
            Ok(if *ty == FfiType::F32 {
                Value::F32(f as f32)
            } else {
                Value::F64(f)
            })
        }
        FfiType::Str | FfiType::CString => match v {
            LuaValue::String(s) => s
                .to_str()
                .map(|s| Value::Str(s.to_string()))
                .map_err(|_| format!("expected {ty}, got a string that is not valid UTF-8")),
            _ => Err(bad()),
        },
        FfiType::Bytes => match v {
            LuaValue::String(s) => Ok(Value::Bytes(s.as_bytes().to_vec())),
            _ => Err(bad()),
        },
        FfiType::Json => lua_to_json(v, 0).map(Value::Json),
        FfiType::Struct(fields) => {
            let LuaValue::Table(t) = v else {
                return Err(bad());
            };
            fields
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let item: LuaValue = t.raw_get(i + 1).map_err(|e| e.to_string())?;
                    from_lua(&item, f).map_err(|e| format!("field {}: {e}", i + 1))
                })
                .collect::<Result<_, _>>()
                .map(Value::Struct)
        }
        FfiType::Array(elem, n) => {
            let LuaValue::Table(t) = v else {
                return Err(bad());
            };
            (0..*n)
                .map(|i| {
                    let item: LuaValue = t.raw_get(i + 1).map_err(|e| e.to_string())?;
                    from_lua(&item, elem).map_err(|e| format!("element {}: {e}", i + 1))
                })
                .collect::<Result<_, _>>()
                .map(Value::Array)
        }
    }
}

fn json_type_mark(t: &Table) -> Option<String> {
    t.metatable()?
        .raw_get::<Option<String>>("__jsontype")
        .ok()
        .flatten()
}

/// Converts a Lua value into JSON (see the module docs).
pub(crate) fn lua_to_json(v: &LuaValue, depth: usize) -> Result<Json, String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "json nested deeper than {MAX_DEPTH} levels (a table that contains itself?)"
        ));
    }
    Ok(match v {
        LuaValue::Nil => Json::Null,
        LuaValue::LightUserData(p) if p.0.is_null() => Json::Null,
        LuaValue::Boolean(b) => Json::Bool(*b),
        LuaValue::Integer(i) => Json::from(*i),
        LuaValue::Number(n) => {
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                Json::from(*n as i64)
            } else {
                serde_json::Number::from_f64(*n)
                    .map(Json::Number)
                    .ok_or_else(|| format!("json cannot hold the number {n}"))?
            }
        }
        LuaValue::String(s) => Json::String(
            s.to_str()
                .map_err(|_| "json strings must be UTF-8, got a string that is not".to_string())?
                .to_string(),
        ),
        LuaValue::Table(t) => table_to_json(t, depth)?,
        other => return Err(format!("json cannot hold a Lua {}", other.type_name())),
    })
}

fn table_to_json(t: &Table, depth: usize) -> Result<Json, String> {
    let mark = json_type_mark(t);
    let len = t.raw_len();
    let mut count = 0usize;
    let mut sequence = true;
    for pair in t.pairs::<LuaValue, LuaValue>() {
        let (k, _) = pair.map_err(|e| e.to_string())?;
        count += 1;
        let in_seq = match k {
            LuaValue::Integer(i) => i >= 1 && (i as usize) <= len,
            LuaValue::Number(n) => n.fract() == 0.0 && n >= 1.0 && (n as usize) <= len,
            _ => false,
        };
        sequence &= in_seq;
    }
    let is_array = match mark.as_deref() {
        Some("array") => true,
        Some("object") => false,
        _ => sequence && count == len,
    };
    if is_array {
        let mut out = Vec::with_capacity(len);
        for i in 1..=len {
            let item: LuaValue = t.raw_get(i).map_err(|e| e.to_string())?;
            out.push(lua_to_json(&item, depth + 1)?);
        }
        return Ok(Json::Array(out));
    }
    let mut out = serde_json::Map::new();
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
        out.insert(key, lua_to_json(&item, depth + 1)?);
    }
    Ok(Json::Object(out))
}
