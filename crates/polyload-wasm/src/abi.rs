//! How polyload types cross into WebAssembly: the wasm value types a
//! signature lowers to, and the conversions both ways.
//!
//! | polyload type | polyload ABI | Extism ABI (host functions) |
//! | --- | --- | --- |
//! | `bool`, `i8`, `i16`, `i32`, `u8`, `u16`, `u32` | `i32` | `i32` or `i64` |
//! | `i64`, `u64` | `i64` | `i64` |
//! | `f32` / `f64` | `f32` / `f64` | `f32` / `f64` |
//! | `str`, `bytes`, `json` parameter | `i32 ptr, i32 len` | `i64` memory handle |
//! | `str`, `bytes`, `json` result | `i64` = `len << 32 \| ptr`, or `(i32 ptr, i32 len)` | `i64` memory handle |
//!
//! Unsigned types travel as their bits (`u32` 4294967295 is `i32` -1);
//! narrower integers are widened on the way in and range-checked on the way
//! back (an `i8` result of 300 is an error). `ptr`, `cstr`, structs and
//! arrays have no meaning inside a sandbox and are refused at load.

use crate::config::Abi;
use polyload::{FfiType, Signature, Value};
use std::borrow::Cow;
use wasmtime::{FuncType, ValRaw, ValType};

/// Whether `ty` crosses as bytes in memory.
pub(crate) fn is_buffer(ty: &FfiType) -> bool {
    matches!(ty, FfiType::Str | FfiType::Bytes | FfiType::Json)
}

/// The wasm type of a scalar polyload type (`None` for buffers and void).
///
/// # Errors
/// A message for types a sandbox cannot carry.
pub(crate) fn scalar(ty: &FfiType) -> Result<Option<ValType>, String> {
    Ok(Some(match ty {
        FfiType::Bool
        | FfiType::I8
        | FfiType::I16
        | FfiType::I32
        | FfiType::U8
        | FfiType::U16
        | FfiType::U32 => ValType::I32,
        FfiType::I64 | FfiType::U64 | FfiType::Handle(_) => ValType::I64,
        FfiType::F32 => ValType::F32,
        FfiType::F64 => ValType::F64,
        FfiType::Str | FfiType::Bytes | FfiType::Json | FfiType::Void => return Ok(None),
        FfiType::Pointer
        | FfiType::CString
        | FfiType::Struct(_)
        | FfiType::Array(_, _)
        | FfiType::Callback(_) => {
            return Err(format!(
                "`{ty}` cannot cross into WebAssembly (a sandbox has no host addresses); use numbers, bool, str, bytes or json"
            ))
        }
    }))
}

fn names(tys: impl IntoIterator<Item = ValType>) -> String {
    let v: Vec<String> = tys.into_iter().map(|t| t.to_string()).collect();
    format!("({})", v.join(", "))
}

/// The wasm parameter types a polyload-ABI export of `sig` must take.
///
/// # Errors
/// As [`scalar`].
pub(crate) fn polyload_params(sig: &Signature) -> Result<Vec<ValType>, String> {
    let mut out = Vec::new();
    for p in &sig.params {
        match scalar(p)? {
            Some(t) => out.push(t),
            None if is_buffer(p) => out.extend([ValType::I32, ValType::I32]),
            None => return Err("`void` is not a parameter type".into()),
        }
    }
    Ok(out)
}

/// How a result comes back from a polyload-ABI export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ResultShape {
    /// No result.
    Void,
    /// One scalar.
    Scalar,
    /// A buffer as one `i64`: `len << 32 | ptr`.
    Packed,
    /// A buffer as two `i32` results: `ptr, len`.
    Pair,
}

/// Checks a polyload-ABI export's wasm type against its declared
/// signature.
///
/// # Errors
/// A message naming both types.
pub(crate) fn check_polyload_export(ty: &FuncType, sig: &Signature) -> Result<ResultShape, String> {
    let want = polyload_params(sig)?;
    let got: Vec<ValType> = ty.params().collect();
    let same = |a: &[ValType], b: &[ValType]| {
        a.len() == b.len() && a.iter().zip(b).all(|(a, b)| ValType::eq(a, b))
    };
    if !same(&want, &got) {
        return Err(format!(
            "its wasm parameters are {} but `{sig}` needs {} (str, bytes and json take two i32: pointer and length)",
            names(got),
            names(want)
        ));
    }
    let results: Vec<ValType> = ty.results().collect();
    let shape = match (scalar(&sig.ret)?, &sig.ret) {
        (None, FfiType::Void) if results.is_empty() => ResultShape::Void,
        (Some(t), _) if same(&results, std::slice::from_ref(&t)) => ResultShape::Scalar,
        (None, r) if is_buffer(r) && same(&results, &[ValType::I64]) => ResultShape::Packed,
        (None, r) if is_buffer(r) && same(&results, &[ValType::I32, ValType::I32]) => {
            ResultShape::Pair
        }
        (t, r) => {
            let want = match t {
                Some(t) => names([t]),
                None if is_buffer(r) => "(i64) = len << 32 | ptr, or (i32, i32) = ptr, len".into(),
                None => "()".into(),
            };
            return Err(format!(
                "its wasm results are {} but `{}` needs {want}",
                names(results),
                sig.ret
            ));
        }
    };
    Ok(shape)
}

/// Checks an Extism export: `() -> i32` (or `() -> ()`), declared with at
/// most one parameter, of a buffer type, and a buffer or void result.
///
/// # Errors
/// A message saying what the plugin's export or the declaration should be.
pub(crate) fn check_extism_export(ty: &FuncType, sig: &Signature) -> Result<(), String> {
    let ok_params = ty.params().len() == 0;
    let results: Vec<ValType> = ty.results().collect();
    let ok_results = results.is_empty() || (results.len() == 1 && results[0].is_i32());
    if !ok_params || !ok_results {
        return Err(format!(
            "an Extism export is `() -> i32`, but this one is {} -> {}",
            names(ty.params()),
            names(results)
        ));
    }
    if sig.params.len() > 1 || sig.params.iter().any(|p| !is_buffer(p)) {
        return Err(format!(
            "`{sig}`: an Extism export takes its input as one str, bytes or json argument (or none)"
        ));
    }
    if !(is_buffer(&sig.ret) || sig.ret == FfiType::Void) {
        return Err(format!(
            "`{sig}`: an Extism export returns its output as str, bytes or json (or void)"
        ));
    }
    Ok(())
}

/// The wasm types a host function of `sig` may be imported with, in the
/// guest's ABI: `Ok(())` if `ty` is one of them.
///
/// # Errors
/// A message naming both types.
pub(crate) fn check_import(ty: &FuncType, sig: &Signature, abi: Abi) -> Result<(), String> {
    let params: Vec<ValType> = ty.params().collect();
    let results: Vec<ValType> = ty.results().collect();
    let mut i = 0;
    let mut bad = None;
    for p in &sig.params {
        let ok = match (scalar(p)?, abi) {
            (Some(ValType::I32), Abi::Extism) => {
                matches!(params.get(i), Some(t) if t.is_i32() || t.is_i64())
            }
            (Some(t), _) => matches!(params.get(i), Some(g) if ValType::eq(g, &t)),
            (None, Abi::Polyload) => {
                i += 1;
                matches!((params.get(i - 1), params.get(i)), (Some(a), Some(b)) if a.is_i32() && b.is_i32())
            }
            (None, Abi::Extism) => matches!(params.get(i), Some(t) if t.is_i64()),
        };
        i += 1;
        if !ok {
            bad.get_or_insert("parameters");
        }
    }
    if i != params.len() {
        bad.get_or_insert("parameters");
    }
    let ok_result = match (scalar(&sig.ret)?, abi) {
        (None, _) if sig.ret == FfiType::Void => results.is_empty(),
        (Some(ValType::I32), Abi::Extism) => {
            results.len() == 1 && (results[0].is_i32() || results[0].is_i64())
        }
        (Some(t), _) => results.len() == 1 && ValType::eq(&results[0], &t),
        (None, _) => results.len() == 1 && results[0].is_i64(),
    };
    if !ok_result {
        bad.get_or_insert("results");
    }
    match bad {
        None => Ok(()),
        Some(what) => Err(format!(
            "its wasm type {} -> {} does not fit `{sig}` (its {what} differ; {})",
            names(params),
            names(results),
            match abi {
                Abi::Polyload =>
                    "str, bytes and json are i32 pointer + i32 length in, i64 len << 32 | ptr out",
                Abi::Extism => "str, bytes and json are i64 Extism memory handles",
            }
        )),
    }
}

/// A scalar argument as a raw wasm value (`None` for a buffer or a value
/// of another type).
#[inline]
pub(crate) fn lower(v: &Value) -> Option<ValRaw> {
    Some(match *v {
        Value::Bool(b) => ValRaw::i32(b as i32),
        Value::I8(x) => ValRaw::i32(x.into()),
        Value::I16(x) => ValRaw::i32(x.into()),
        Value::I32(x) => ValRaw::i32(x),
        Value::U8(x) => ValRaw::i32(x.into()),
        Value::U16(x) => ValRaw::i32(x.into()),
        Value::U32(x) => ValRaw::u32(x),
        Value::I64(x) => ValRaw::i64(x),
        Value::U64(x) => ValRaw::u64(x),
        Value::F32(x) => ValRaw::f32(x.to_bits()),
        Value::F64(x) => ValRaw::f64(x.to_bits()),
        _ => return None,
    })
}

/// A scalar argument for a host function imported with a wider wasm type
/// (an Extism host function taking `i64` for an `i32` parameter): the
/// value as `i64`, `None` if it is not an integer of that width.
pub(crate) fn widen(raw: ValRaw, wide: bool, ty: &FfiType) -> ValRaw {
    if !wide {
        return raw;
    }
    match ty {
        FfiType::U32 | FfiType::U16 | FfiType::U8 | FfiType::Bool => {
            ValRaw::i64(i64::from(raw.get_u32()))
        }
        _ => ValRaw::i64(i64::from(raw.get_i32())),
    }
}

/// A raw wasm result or host-function argument as a value of `ty`,
/// range-checked for narrow types. `wide`: the wasm value is an `i64`
/// carrying a narrower integer (Extism host functions).
///
/// # Errors
/// A message for an out-of-range value.
#[inline]
pub(crate) fn lift(raw: ValRaw, ty: &FfiType, wide: bool) -> Result<Value, String> {
    macro_rules! narrow {
        ($variant:ident, $t:ty) => {{
            let wide_value: i64 = if wide {
                raw.get_i64()
            } else {
                raw.get_i32().into()
            };
            <$t>::try_from(wide_value)
                .map(Value::$variant)
                .map_err(|_| format!("{wide_value} is out of range for {ty}"))
        }};
    }
    match ty {
        FfiType::Bool => {
            let v = if wide {
                raw.get_i64()
            } else {
                raw.get_i32().into()
            };
            match v {
                0 => Ok(Value::Bool(false)),
                1 => Ok(Value::Bool(true)),
                v => Err(format!("{v} is not a bool (0 or 1)")),
            }
        }
        FfiType::I8 => narrow!(I8, i8),
        FfiType::I16 => narrow!(I16, i16),
        FfiType::U8 => narrow!(U8, u8),
        FfiType::U16 => narrow!(U16, u16),
        FfiType::I32 if wide => narrow!(I32, i32),
        FfiType::U32 if wide => narrow!(U32, u32),
        FfiType::I32 => Ok(Value::I32(raw.get_i32())),
        FfiType::U32 => Ok(Value::U32(raw.get_u32())),
        FfiType::I64 => Ok(Value::I64(raw.get_i64())),
        FfiType::U64 | FfiType::Handle(_) => Ok(Value::U64(raw.get_u64())),
        FfiType::F32 => Ok(Value::F32(f32::from_bits(raw.get_f32()))),
        FfiType::F64 => Ok(Value::F64(f64::from_bits(raw.get_f64()))),
        FfiType::Void => Ok(Value::Void),
        other => Err(format!(
            "internal error: `{other}` is not a scalar (this is a bug)"
        )),
    }
}

/// A buffer argument's bytes: text as UTF-8, JSON serialised.
pub(crate) fn buffer_bytes(v: &Value) -> Cow<'_, [u8]> {
    match v {
        Value::Str(s) => Cow::Borrowed(s.as_bytes()),
        Value::Bytes(b) => Cow::Borrowed(b),
        Value::Json(j) => Cow::Owned(serde_json::to_vec(j).unwrap_or_else(|_| b"null".to_vec())),
        _ => Cow::Borrowed(&[]),
    }
}

/// Bytes a guest returned as a value of buffer type `ty` (or nothing, for
/// `void`): [`Value::from_buffer`].
///
/// # Errors
/// Text that is not UTF-8, JSON that does not parse.
pub(crate) fn buffer_value(bytes: Vec<u8>, ty: &FfiType) -> Result<Value, String> {
    if *ty == FfiType::Void {
        return Ok(Value::Void);
    }
    Value::from_buffer(ty, bytes).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrow_results_are_range_checked() {
        let r = |x: i32| ValRaw::i32(x);
        assert_eq!(lift(r(-5), &FfiType::I8, false), Ok(Value::I8(-5)));
        assert_eq!(
            lift(r(300), &FfiType::I8, false).unwrap_err(),
            "300 is out of range for i8"
        );
        assert_eq!(lift(r(-1), &FfiType::U32, false), Ok(Value::U32(u32::MAX)));
        assert!(lift(r(-1), &FfiType::U8, false).is_err());
        assert!(lift(r(2), &FfiType::Bool, false).is_err());
        assert_eq!(
            lift(ValRaw::i64(1 << 40), &FfiType::I32, true).unwrap_err(),
            "1099511627776 is out of range for i32"
        );
        let v = Value::U32(u32::MAX);
        assert_eq!(lower(&v).unwrap().get_i32(), -1);
    }

    #[test]
    fn host_types_are_refused() {
        assert!(scalar(&FfiType::Pointer).is_err());
        assert!(scalar(&FfiType::CString).is_err());
    }
}
