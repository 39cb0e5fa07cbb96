//! Guest values to [`Value`]s, by signature: one conversion for every
//! engine ([`from_guest`]).

use polyload_ffi::{FfiType, Value};
use serde_json::Value as Json;
use std::borrow::Cow;

/// Deepest JSON nesting converted (guards against a container that holds
/// itself).
pub const MAX_JSON_DEPTH: usize = 128;

/// What a guest value is, as far as conversion is concerned.
#[derive(Debug)]
pub enum GuestView<'a, V> {
    /// `nil`, `None`, `null` or `undefined`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An exact integer; `None` when it does not fit 128 bits.
    Int(Option<i128>),
    /// A floating-point number.
    Float(f64),
    /// A string (bytes, since a Lua string need not be UTF-8).
    Text(Cow<'a, [u8]>),
    /// Binary data (`bytes`, `Uint8Array`, ...).
    Bytes(Cow<'a, [u8]>),
    /// A sequence (list, array, sequence table).
    Seq(Vec<V>),
    /// A map with string keys (dict, object, table).
    Map(Vec<(String, V)>),
    /// A raw address (Lua light userdata).
    Pointer(usize),
    /// Anything else: the engine's name for its type (`function`).
    Other(Cow<'a, str>),
}

/// A guest engine's value type, as [`from_guest`] reads it.
pub trait GuestValue: Sized {
    /// Whether the engine's numbers are floats (Lua, JavaScript), so a
    /// float with an integral value is an integer; where integers and
    /// floats are distinct types (Python) a float is never an integer.
    const FLOATS_ARE_NUMBERS: bool;

    /// Whether strings are byte strings that may carry binary data (Lua),
    /// so text converts to `bytes` as well.
    const TEXT_IS_BYTES: bool;

    /// What the value is.
    ///
    /// # Errors
    /// The engine failed to read the value (a map key that is not a string,
    /// an error raised while iterating a table): the message says why.
    fn view(&self) -> Result<GuestView<'_, Self>, String>;

    /// The value as an error message names it: `number 2.5`, `table`,
    /// `str`.
    fn describe(&self) -> String;
}

/// Converts a guest value to a [`Value`] of type `ty`.
///
/// An engine's value type says what a value is by implementing
/// [`GuestValue`] (a [`GuestView`]: null, bool, integer, float, text,
/// bytes, sequence, map); [`from_guest`] turns it into the [`Value`] a
/// signature type asks for, with the same rules and the same error wording
/// whatever the language:
///
/// | polyload type | accepted guest values |
/// | --- | --- |
/// | integers | an integer in range; a float with an integral value when the engine's numbers are floats ([`GuestValue::FLOATS_ARE_NUMBERS`]) |
/// | `f32`, `f64` | a float or an integer |
/// | `bool` | a bool |
/// | `str`, `cstr` | text that is UTF-8 |
/// | `bytes` | bytes; text too where the engine's strings are byte strings ([`GuestValue::TEXT_IS_BYTES`]) |
/// | `ptr`, callbacks | null (0), an integer, a pointer |
/// | `json` | null, bool, integer (64-bit), finite float, UTF-8 text, sequence, map with string keys, nested at most 128 deep |
/// | struct, array | a sequence of exactly the field or element count |
///
/// Fields, elements and arguments are numbered from 1 in messages.
///
/// ```
/// use polyload::loader::{from_guest, GuestValue, GuestView};
/// use polyload::{FfiType, Value};
///
/// /// A toy engine whose values are numbers only.
/// struct Num(f64);
/// impl GuestValue for Num {
///     const FLOATS_ARE_NUMBERS: bool = true;
///     const TEXT_IS_BYTES: bool = false;
///     fn view(&self) -> Result<GuestView<'_, Self>, String> {
///         Ok(GuestView::Float(self.0))
///     }
///     fn describe(&self) -> String {
///         format!("number {}", self.0)
///     }
/// }
/// assert_eq!(from_guest(&Num(3.0), &FfiType::I64), Ok(Value::I64(3)));
/// assert_eq!(
///     from_guest(&Num(2.5), &FfiType::I64).unwrap_err(),
///     "expected i64, got number 2.5"
/// );
/// assert_eq!(
///     from_guest(&Num(300.0), &FfiType::U8).unwrap_err(),
///     "300 is out of range for u8"
/// );
/// ```
///
/// # Errors
/// A message saying what was expected and what was found (see above).
pub fn from_guest<V: GuestValue>(v: &V, ty: &FfiType) -> Result<Value, String> {
    let bad = || format!("expected {ty}, got {}", v.describe());
    macro_rules! int {
        ($variant:ident, $t:ty) => {{
            let wide = integer(v)?.ok_or_else(bad)?;
            <$t>::try_from(wide)
                .map(Value::$variant)
                .map_err(|_| format!("{wide} is out of range for {ty}"))
        }};
    }
    match ty {
        FfiType::Void => Ok(Value::Void),
        FfiType::Bool => match v.view()? {
            GuestView::Bool(b) => Ok(Value::Bool(b)),
            _ => Err(bad()),
        },
        FfiType::I8 => int!(I8, i8),
        FfiType::I16 => int!(I16, i16),
        FfiType::I32 => int!(I32, i32),
        FfiType::I64 => int!(I64, i64),
        FfiType::U8 => int!(U8, u8),
        FfiType::U16 => int!(U16, u16),
        FfiType::U32 => int!(U32, u32),
        FfiType::U64 | FfiType::Handle(_) => int!(U64, u64),
        FfiType::Pointer | FfiType::Callback(_) => match v.view()? {
            GuestView::Null => Ok(Value::Ptr(0)),
            GuestView::Pointer(p) => Ok(Value::Ptr(p)),
            _ => int!(Ptr, usize),
        },
        FfiType::F32 | FfiType::F64 => {
            let f = match v.view()? {
                GuestView::Float(f) => f,
                GuestView::Int(Some(i)) => i as f64,
                _ => return Err(bad()),
            };
            Ok(if *ty == FfiType::F32 {
                Value::F32(f as f32)
            } else {
                Value::F64(f)
            })
        }
        FfiType::Str | FfiType::CString => match v.view()? {
            GuestView::Text(t) => String::from_utf8(t.into_owned())
                .map(Value::Str)
                .map_err(|_| format!("expected {ty}, got a string that is not valid UTF-8")),
            _ => Err(bad()),
        },
        FfiType::Bytes => match v.view()? {
            GuestView::Bytes(b) => Ok(Value::Bytes(b.into_owned())),
            GuestView::Text(t) if V::TEXT_IS_BYTES => Ok(Value::Bytes(t.into_owned())),
            _ => Err(bad()),
        },
        FfiType::Json => to_json(v, 0).map(Value::Json),
        FfiType::Struct(fields) => {
            let items = sequence(v, fields.len(), ty)?;
            fields
                .iter()
                .zip(&items)
                .enumerate()
                .map(|(i, (f, item))| {
                    from_guest(item, f).map_err(|e| format!("field {}: {e}", i + 1))
                })
                .collect::<Result<_, _>>()
                .map(Value::Struct)
        }
        FfiType::Array(elem, n) => {
            let items = sequence(v, *n, ty)?;
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    from_guest(item, elem).map_err(|e| format!("element {}: {e}", i + 1))
                })
                .collect::<Result<_, _>>()
                .map(Value::Array)
        }
    }
}

/// The value as an exact integer: `Ok(None)` when it is not one.
fn integer<V: GuestValue>(v: &V) -> Result<Option<i128>, String> {
    Ok(match v.view()? {
        GuestView::Int(Some(i)) => Some(i),
        GuestView::Int(None) => Some(i128::MAX),
        GuestView::Float(f) if V::FLOATS_ARE_NUMBERS && f.fract() == 0.0 && f.abs() < 1.9e19 => {
            Some(f as i128)
        }
        _ => None,
    })
}

/// The items of a sequence that must have `n` of them (for `ty`).
fn sequence<V: GuestValue>(v: &V, n: usize, ty: &FfiType) -> Result<Vec<V>, String> {
    match v.view()? {
        GuestView::Seq(items) if items.len() == n => Ok(items),
        GuestView::Seq(items) => Err(format!("expected {ty}, got a sequence of {}", items.len())),
        _ => Err(format!("expected {ty}, got {}", v.describe())),
    }
}

/// Converts a guest value to JSON (the rules of [`from_guest`]).
///
/// # Errors
/// What JSON cannot hold, or nesting deeper than [`MAX_JSON_DEPTH`].
pub fn to_json<V: GuestValue>(v: &V, depth: usize) -> Result<Json, String> {
    if depth > MAX_JSON_DEPTH {
        return Err(format!(
            "json nested deeper than {MAX_JSON_DEPTH} levels (a container that holds itself?)"
        ));
    }
    Ok(match v.view()? {
        GuestView::Null => Json::Null,
        GuestView::Bool(b) => Json::Bool(b),
        GuestView::Int(Some(i)) => {
            if let Ok(i) = i64::try_from(i) {
                Json::from(i)
            } else if let Ok(u) = u64::try_from(i) {
                Json::from(u)
            } else {
                return Err(format!("json cannot hold the integer {i} (beyond 64 bits)"));
            }
        }
        GuestView::Int(None) => return Err("json cannot hold an integer beyond 64 bits".into()),
        GuestView::Float(f) => {
            if V::FLOATS_ARE_NUMBERS && f.fract() == 0.0 && f.abs() < 9.0e15 {
                Json::from(f as i64)
            } else {
                serde_json::Number::from_f64(f)
                    .map(Json::Number)
                    .ok_or_else(|| format!("json cannot hold the number {f}"))?
            }
        }
        GuestView::Text(t) => Json::String(
            String::from_utf8(t.into_owned())
                .map_err(|_| "json strings must be UTF-8, got a string that is not".to_string())?,
        ),
        GuestView::Seq(items) => Json::Array(
            items
                .iter()
                .map(|i| to_json(i, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        GuestView::Map(entries) => {
            let mut map = serde_json::Map::with_capacity(entries.len());
            for (k, item) in &entries {
                map.insert(k.clone(), to_json(item, depth + 1)?);
            }
            Json::Object(map)
        }
        GuestView::Bytes(_) | GuestView::Pointer(_) | GuestView::Other(_) => {
            return Err(format!("json cannot hold a {}", v.describe()))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A guest whose values are a small tree, with Lua-like or Python-like
    /// number rules.
    #[derive(Clone, Debug)]
    enum G<const FLOATS: bool> {
        Nil,
        Int(i128),
        Float(f64),
        Text(&'static [u8]),
        Seq(Vec<G<FLOATS>>),
        Map(Vec<(&'static str, G<FLOATS>)>),
        Func,
    }

    impl<const FLOATS: bool> GuestValue for G<FLOATS> {
        const FLOATS_ARE_NUMBERS: bool = FLOATS;
        const TEXT_IS_BYTES: bool = FLOATS;
        fn view(&self) -> Result<GuestView<'_, Self>, String> {
            Ok(match self {
                G::Nil => GuestView::Null,
                G::Int(i) => GuestView::Int(Some(*i)),
                G::Float(f) => GuestView::Float(*f),
                G::Text(t) => GuestView::Text(Cow::Borrowed(t)),
                G::Seq(s) => GuestView::Seq(s.clone()),
                G::Map(m) => {
                    GuestView::Map(m.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
                }
                G::Func => GuestView::Other("function".into()),
            })
        }
        fn describe(&self) -> String {
            match self {
                G::Float(f) => format!("number {f}"),
                G::Func => "function".into(),
                other => format!("{other:?}"),
            }
        }
    }

    type Lua = G<true>;
    type Py = G<false>;

    #[test]
    fn numbers_follow_the_engine() {
        assert_eq!(
            from_guest(&Lua::Float(4.0), &FfiType::I32),
            Ok(Value::I32(4))
        );
        assert!(from_guest(&Py::Float(4.0), &FfiType::I32).is_err());
        assert_eq!(from_guest(&Py::Int(4), &FfiType::F64), Ok(Value::F64(4.0)));
        assert_eq!(
            from_guest(&Lua::Int(-1), &FfiType::U64).unwrap_err(),
            "-1 is out of range for u64"
        );
        assert_eq!(
            to_json(&Lua::Float(2.0), 0),
            Ok(serde_json::json!(2)),
            "a Lua number 2 is the integer 2"
        );
        assert_eq!(to_json(&Py::Float(2.0), 0), Ok(serde_json::json!(2.0)));
        assert!(to_json(&Lua::Float(f64::NAN), 0).is_err());
    }

    #[test]
    fn structs_need_exactly_their_fields_numbered_from_one() {
        let ty: FfiType = "{i32, str}".parse().unwrap();
        let ok = Lua::Seq(vec![Lua::Int(1), Lua::Text(b"a")]);
        assert_eq!(
            from_guest(&ok, &ty),
            Ok(Value::Struct(vec![Value::I32(1), Value::Str("a".into())]))
        );
        let short = Lua::Seq(vec![Lua::Int(1)]);
        assert_eq!(
            from_guest(&short, &ty).unwrap_err(),
            "expected {i32, str}, got a sequence of 1"
        );
        let wrong = Lua::Seq(vec![Lua::Int(1), Lua::Func]);
        assert_eq!(
            from_guest(&wrong, &ty).unwrap_err(),
            "field 2: expected str, got function"
        );
    }

    #[test]
    fn text_bytes_and_json() {
        assert_eq!(
            from_guest(&Lua::Text(b"\xff"), &FfiType::Bytes),
            Ok(Value::Bytes(vec![0xff]))
        );
        assert!(from_guest(&Py::Text(b"x"), &FfiType::Bytes).is_err());
        assert_eq!(
            from_guest(&Lua::Text(b"\xff"), &FfiType::Str).unwrap_err(),
            "expected str, got a string that is not valid UTF-8"
        );
        let doc = Lua::Map(vec![("a", Lua::Seq(vec![Lua::Nil, Lua::Float(1.5)]))]);
        assert_eq!(
            from_guest(&doc, &FfiType::Json),
            Ok(Value::Json(serde_json::json!({"a": [null, 1.5]})))
        );
        let mut deep = Lua::Nil;
        for _ in 0..200 {
            deep = Lua::Seq(vec![deep]);
        }
        assert!(to_json(&deep, 0).unwrap_err().contains("deeper than 128"));
    }
}
