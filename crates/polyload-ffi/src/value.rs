//! Dynamically typed values, checked against [`FfiType`]s.

use crate::FfiType;
use std::fmt;

/// A value passed to or returned from a dynamic call.
///
/// Each variant matches one [`FfiType`]; [`Value::check`] tells whether a
/// value fits a type. `Str` serves both `str` and `cstr` parameters.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// The result of a `void` function.
    Void,
    /// `bool`.
    Bool(bool),
    /// `i8`.
    I8(i8),
    /// `i16`.
    I16(i16),
    /// `i32`.
    I32(i32),
    /// `i64`.
    I64(i64),
    /// `u8`.
    U8(u8),
    /// `u16`.
    U16(u16),
    /// `u32`.
    U32(u32),
    /// `u64`.
    U64(u64),
    /// `f32`.
    F32(f32),
    /// `f64`.
    F64(f64),
    /// `ptr` (and callbacks): an address; 0 is null.
    Ptr(usize),
    /// `str` or `cstr`: text.
    Str(String),
    /// `bytes`.
    Bytes(Vec<u8>),
    /// `json`: a structured value.
    Json(serde_json::Value),
    /// A struct by value: one value per field.
    Struct(Vec<Value>),
    /// A fixed array inside a struct.
    Array(Vec<Value>),
}

/// A value that does not fit the type it was given for.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("expected {expected}, got {got}")]
pub struct ValueError {
    /// The type wanted.
    pub expected: String,
    /// What was given (a value's kind, or the text that did not parse).
    pub got: String,
}

impl Value {
    /// A short name of the value's kind (`"i64"`, `"str"`, `"struct"`).
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Void => "void",
            Value::Bool(_) => "bool",
            Value::I8(_) => "i8",
            Value::I16(_) => "i16",
            Value::I32(_) => "i32",
            Value::I64(_) => "i64",
            Value::U8(_) => "u8",
            Value::U16(_) => "u16",
            Value::U32(_) => "u32",
            Value::U64(_) => "u64",
            Value::F32(_) => "f32",
            Value::F64(_) => "f64",
            Value::Ptr(_) => "ptr",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::Json(_) => "json",
            Value::Struct(_) => "struct",
            Value::Array(_) => "array",
        }
    }

    /// Checks that the value has exactly the kind `ty` expects (structs and
    /// arrays recursively; a callback takes a `Ptr`).
    ///
    /// # Errors
    /// [`ValueError`] naming the expected type and the value's kind.
    pub fn check(&self, ty: &FfiType) -> Result<(), ValueError> {
        let ok = match (ty, self) {
            (FfiType::Void, Value::Void)
            | (FfiType::Bool, Value::Bool(_))
            | (FfiType::I8, Value::I8(_))
            | (FfiType::I16, Value::I16(_))
            | (FfiType::I32, Value::I32(_))
            | (FfiType::I64, Value::I64(_))
            | (FfiType::U8, Value::U8(_))
            | (FfiType::U16, Value::U16(_))
            | (FfiType::U32, Value::U32(_))
            | (FfiType::U64 | FfiType::Handle(_), Value::U64(_))
            | (FfiType::F32, Value::F32(_))
            | (FfiType::F64, Value::F64(_))
            | (FfiType::Pointer | FfiType::Callback(_), Value::Ptr(_))
            | (FfiType::CString | FfiType::Str, Value::Str(_))
            | (FfiType::Bytes, Value::Bytes(_))
            | (FfiType::Json, Value::Json(_)) => true,
            (FfiType::Struct(fields), Value::Struct(vals)) => {
                if fields.len() != vals.len() {
                    false
                } else {
                    for (f, v) in fields.iter().zip(vals) {
                        v.check(f)?;
                    }
                    true
                }
            }
            (FfiType::Array(elem, n), Value::Array(vals)) => {
                if vals.len() != *n {
                    false
                } else {
                    for v in vals {
                        v.check(elem)?;
                    }
                    true
                }
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(ValueError {
                expected: ty.to_string(),
                got: match self {
                    Value::Struct(v) => format!("struct of {} fields", v.len()),
                    Value::Array(v) => format!("array of {}", v.len()),
                    v => v.kind().to_string(),
                },
            })
        }
    }

    /// Parses command-line text as a value of type `ty`: decimal integers
    /// (range-checked; `0x` hex accepted), floats, `true`/`false`, text as is
    /// for `str`/`cstr`/`bytes`, JSON for `json` and structs (a JSON array of
    /// fields), `null` or an integer address for `ptr`.
    ///
    /// # Errors
    /// [`ValueError`] with the type and the text.
    pub fn parse(ty: &FfiType, text: &str) -> Result<Value, ValueError> {
        let err = || ValueError {
            expected: ty.to_string(),
            got: format!("`{text}`"),
        };
        let int = |t: &str| -> Option<i128> {
            let t = t.trim();
            let (neg, digits) = match t.strip_prefix('-') {
                Some(d) => (true, d),
                None => (false, t.strip_prefix('+').unwrap_or(t)),
            };
            let v = if let Some(hex) = digits.strip_prefix("0x") {
                i128::from_str_radix(hex, 16).ok()?
            } else {
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                digits.parse::<i128>().ok()?
            };
            Some(if neg { -v } else { v })
        };
        macro_rules! int_as {
            ($variant:ident, $t:ty) => {
                int(text)
                    .and_then(|v| <$t>::try_from(v).ok())
                    .map(Value::$variant)
                    .ok_or_else(err)
            };
        }
        match ty {
            FfiType::Void => Err(err()),
            FfiType::Bool => match text.trim() {
                "true" | "1" => Ok(Value::Bool(true)),
                "false" | "0" => Ok(Value::Bool(false)),
                _ => Err(err()),
            },
            FfiType::I8 => int_as!(I8, i8),
            FfiType::I16 => int_as!(I16, i16),
            FfiType::I32 => int_as!(I32, i32),
            FfiType::I64 => int_as!(I64, i64),
            FfiType::U8 => int_as!(U8, u8),
            FfiType::U16 => int_as!(U16, u16),
            FfiType::U32 => int_as!(U32, u32),
            FfiType::U64 | FfiType::Handle(_) => int_as!(U64, u64),
            FfiType::F32 => text.trim().parse().map(Value::F32).map_err(|_| err()),
            FfiType::F64 => text.trim().parse().map(Value::F64).map_err(|_| err()),
            FfiType::Pointer | FfiType::Callback(_) => {
                if text.trim() == "null" {
                    Ok(Value::Ptr(0))
                } else {
                    int_as!(Ptr, usize)
                }
            }
            FfiType::CString | FfiType::Str => Ok(Value::Str(text.to_string())),
            FfiType::Bytes => Ok(Value::Bytes(text.as_bytes().to_vec())),
            FfiType::Json => serde_json::from_str(text)
                .map(Value::Json)
                .map_err(|_| err()),
            FfiType::Struct(_) | FfiType::Array(..) => {
                let json: serde_json::Value = serde_json::from_str(text).map_err(|_| err())?;
                Value::from_json(ty, &json).map_err(|_| err())
            }
        }
    }

    /// The value of buffer type `ty` (`str`, `bytes` or `json`) whose bytes
    /// a callee handed back: bytes as they are, text checked as UTF-8, JSON
    /// parsed. Native bundles return `{ptr, len}` (`PolyloadStr`), guests in
    /// a sandbox a range of their memory; both end here.
    ///
    /// ```
    /// use polyload_ffi::{FfiType, Value};
    /// assert_eq!(Value::from_buffer(&FfiType::Str, b"hi".to_vec()), Ok(Value::Str("hi".into())));
    /// assert!(Value::from_buffer(&FfiType::Json, b"{".to_vec()).is_err());
    /// ```
    ///
    /// # Errors
    /// [`ValueError`] for text that is not UTF-8, JSON that does not parse,
    /// or a `ty` that is not a buffer type.
    pub fn from_buffer(ty: &FfiType, bytes: Vec<u8>) -> Result<Value, ValueError> {
        let err = |got: String| ValueError {
            expected: ty.to_string(),
            got,
        };
        match ty {
            FfiType::Bytes => Ok(Value::Bytes(bytes)),
            FfiType::Str => String::from_utf8(bytes)
                .map(Value::Str)
                .map_err(|e| err(format!("bytes that are not UTF-8 ({})", e.utf8_error()))),
            FfiType::Json => serde_json::from_slice(&bytes)
                .map(Value::Json)
                .map_err(|e| err(format!("text that does not parse as JSON ({e})"))),
            _ => Err(err("a buffer".into())),
        }
    }

    /// Converts JSON to a value of type `ty` (numbers range-checked; strings
    /// for `str`/`cstr`; arrays of numbers or a string for `bytes`; arrays for
    /// structs and arrays).
    ///
    /// # Errors
    /// [`ValueError`] naming the type and the JSON.
    pub fn from_json(ty: &FfiType, json: &serde_json::Value) -> Result<Value, ValueError> {
        use serde_json::Value as J;
        let err = || ValueError {
            expected: ty.to_string(),
            got: json.to_string(),
        };
        match (ty, json) {
            (FfiType::Json, j) => Ok(Value::Json(j.clone())),
            (FfiType::Str | FfiType::CString, J::String(s)) => Ok(Value::Str(s.clone())),
            (FfiType::Bytes, J::String(s)) => Ok(Value::Bytes(s.as_bytes().to_vec())),
            (FfiType::Bytes, J::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_u64()
                        .and_then(|v| u8::try_from(v).ok())
                        .ok_or_else(err)
                })
                .collect::<Result<Vec<u8>, _>>()
                .map(Value::Bytes),
            (FfiType::Bool, J::Bool(b)) => Ok(Value::Bool(*b)),
            (FfiType::F32, J::Number(n)) => {
                n.as_f64().map(|v| Value::F32(v as f32)).ok_or_else(err)
            }
            (FfiType::F64, J::Number(n)) => n.as_f64().map(Value::F64).ok_or_else(err),
            (FfiType::Pointer | FfiType::Callback(_), J::Null) => Ok(Value::Ptr(0)),
            (FfiType::Struct(fields), J::Array(items)) if fields.len() == items.len() => fields
                .iter()
                .zip(items)
                .map(|(f, i)| Value::from_json(f, i))
                .collect::<Result<_, _>>()
                .map(Value::Struct),
            (FfiType::Array(elem, n), J::Array(items)) if *n == items.len() => items
                .iter()
                .map(|i| Value::from_json(elem, i))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            (t, J::Number(n)) if t.is_integer() || matches!(t, FfiType::Pointer) => {
                let s = n.to_string();
                Value::parse(t, &s).map_err(|_| err())
            }
            _ => Err(err()),
        }
    }

    /// Converts the value to JSON (`bytes` become an array of numbers, `void`
    /// becomes `null`, non-finite floats become `null`).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Void => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::I8(v) => (*v).into(),
            Value::I16(v) => (*v).into(),
            Value::I32(v) => (*v).into(),
            Value::I64(v) => (*v).into(),
            Value::U8(v) => (*v).into(),
            Value::U16(v) => (*v).into(),
            Value::U32(v) => (*v).into(),
            Value::U64(v) => (*v).into(),
            Value::F32(v) => serde_json::Number::from_f64(f64::from(*v)).map_or(J::Null, J::Number),
            Value::F64(v) => serde_json::Number::from_f64(*v).map_or(J::Null, J::Number),
            Value::Ptr(v) => (*v as u64).into(),
            Value::Str(s) => J::String(s.clone()),
            Value::Bytes(b) => J::Array(b.iter().map(|v| (*v).into()).collect()),
            Value::Json(j) => j.clone(),
            Value::Struct(v) | Value::Array(v) => J::Array(v.iter().map(Value::to_json).collect()),
        }
    }
}

/// Human-readable form: numbers as Rust prints them (`1024` for 1024.0),
/// text as is, bytes as lowercase hex, JSON compact, pointers as `0x..`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Void => Ok(()),
            Value::Bool(v) => write!(f, "{v}"),
            Value::I8(v) => write!(f, "{v}"),
            Value::I16(v) => write!(f, "{v}"),
            Value::I32(v) => write!(f, "{v}"),
            Value::I64(v) => write!(f, "{v}"),
            Value::U8(v) => write!(f, "{v}"),
            Value::U16(v) => write!(f, "{v}"),
            Value::U32(v) => write!(f, "{v}"),
            Value::U64(v) => write!(f, "{v}"),
            Value::F32(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
            Value::Ptr(v) => write!(f, "{v:#x}"),
            Value::Str(s) => f.write_str(s),
            Value::Bytes(b) => b.iter().try_for_each(|x| write!(f, "{x:02x}")),
            Value::Json(j) => write!(f, "{j}"),
            Value::Struct(_) | Value::Array(_) => write!(f, "{}", self.to_json()),
        }
    }
}

macro_rules! from_scalar {
    ($($t:ty => $v:ident),* $(,)?) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self { Value::$v(v) }
        }
    )*};
}
from_scalar!(bool => Bool, i8 => I8, i16 => I16, i32 => I32, i64 => I64, u8 => U8, u16 => U16,
    u32 => U32, u64 => U64, f32 => F32, f64 => F64, String => Str, Vec<u8> => Bytes,
    serde_json::Value => Json);

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_checks_ranges() {
        assert_eq!(Value::parse(&FfiType::I64, "-42"), Ok(Value::I64(-42)));
        assert_eq!(Value::parse(&FfiType::U8, "255"), Ok(Value::U8(255)));
        assert!(Value::parse(&FfiType::U8, "256").is_err());
        assert!(Value::parse(&FfiType::U32, "-1").is_err());
        assert!(Value::parse(&FfiType::I64, "12abc").is_err());
        assert_eq!(Value::parse(&FfiType::U64, "0x10"), Ok(Value::U64(16)));
        assert_eq!(Value::parse(&FfiType::F64, "2.5"), Ok(Value::F64(2.5)));
        assert_eq!(Value::parse(&FfiType::Pointer, "null"), Ok(Value::Ptr(0)));
        let s = FfiType::Struct(vec![FfiType::I32, FfiType::F64]);
        assert_eq!(
            Value::parse(&s, "[1, 2.5]"),
            Ok(Value::Struct(vec![Value::I32(1), Value::F64(2.5)]))
        );
        let e = Value::parse(&FfiType::I64, "x").unwrap_err();
        assert_eq!(e.to_string(), "expected i64, got `x`");
    }

    #[test]
    fn display_prints_integral_floats_plainly() {
        assert_eq!(Value::F64(1024.0).to_string(), "1024");
        assert_eq!(Value::F64(0.5).to_string(), "0.5");
        assert_eq!(Value::Bytes(vec![0, 255]).to_string(), "00ff");
    }

    #[test]
    fn check_structs() {
        let s = FfiType::Struct(vec![FfiType::I32, FfiType::I32]);
        assert!(Value::Struct(vec![Value::I32(1), Value::I32(2)])
            .check(&s)
            .is_ok());
        assert!(Value::Struct(vec![Value::I32(1)]).check(&s).is_err());
        assert!(Value::Struct(vec![Value::I32(1), Value::I64(2)])
            .check(&s)
            .is_err());
    }
}
