//! The logic behind `polyload ffi LIBRARY SYMBOL 'SIGNATURE' [ARGS...]`:
//! call a C function in any shared library by a signature given as text.
//!
//! Arguments are command-line text parsed by the signature
//! ([`Value::parse`]). Variadic arguments (after the fixed ones of a
//! `fn(cstr, ...)` signature) have no declared type, so their text picks it:
//!
//! * `TYPE:VALUE` with a scalar keyword prefix (`f64:2.5`, `i64:7`,
//!   `u8:255`, `cstr:a:b`, `ptr:null`) — that type (passed with the default
//!   argument promotions);
//! * otherwise an integer (`-12`, `0x1f`) is `i32`, or `i64` when it does
//!   not fit;
//! * otherwise a number with `.`, an exponent, `inf` or `nan` is `f64`;
//! * anything else is a `cstr`.

use polyload_ffi::{CallBuilder, FfiError, FfiType, Signature, Value};

/// The type and value of one variadic argument's text, per the rules in
/// the [module docs](self).
///
/// # Errors
/// [`FfiError::BadArgument`] when a `TYPE:` prefix's value does not parse.
pub fn infer_vararg(index: usize, text: &str) -> Result<(FfiType, Value), FfiError> {
    if let Some((kw, rest)) = text.split_once(':') {
        if let Some(ty) = FfiType::from_keyword(kw).filter(|t| !matches!(t, FfiType::Void)) {
            let v = Value::parse(&ty, rest)
                .map_err(|source| FfiError::BadArgument { index, source })?;
            return Ok((ty, v));
        }
    }
    if let Ok(v) = Value::parse(&FfiType::I32, text) {
        return Ok((FfiType::I32, v));
    }
    if let Ok(v) = Value::parse(&FfiType::I64, text) {
        return Ok((FfiType::I64, v));
    }
    let t = text.trim().to_ascii_lowercase();
    let floaty = t.contains('.') || t.contains('e') || t.ends_with("inf") || t.ends_with("nan");
    if floaty {
        if let Ok(x) = t.parse::<f64>() {
            return Ok((FfiType::F64, Value::F64(x)));
        }
    }
    Ok((FfiType::CString, Value::Str(text.to_string())))
}

/// Loads `library`, calls `symbol` with the signature text and argument
/// texts, and returns the result.
///
/// # Errors
/// Any [`FfiError`]: a bad signature, library or symbol, a wrong argument
/// count (fewer than the fixed parameters, or more for a non-variadic
/// signature), an argument that does not parse.
///
/// # Safety
/// Loads the library (running its initialisers) and calls the function
/// trusting the signature: a wrong signature, or a `ptr` argument the
/// function dereferences, is undefined behaviour. A command-line tool
/// accepts this risk on its user's behalf.
pub unsafe fn call_from_text(
    library: &str,
    symbol: &str,
    signature: &str,
    args: &[String],
) -> Result<Value, FfiError> {
    let sig: Signature = signature.parse()?;
    let fixed = sig.params.len();
    if args.len() < fixed || (!sig.variadic && args.len() != fixed) {
        return Err(FfiError::ArgCount {
            expected: fixed,
            got: args.len(),
        });
    }
    let mut values = Vec::with_capacity(args.len());
    for (i, (ty, text)) in sig.params.iter().zip(args).enumerate() {
        values.push(
            Value::parse(ty, text).map_err(|source| FfiError::BadArgument { index: i, source })?,
        );
    }
    let mut builder = CallBuilder::new(library, symbol).signature(&sig);
    for (i, text) in args.iter().enumerate().skip(fixed) {
        let (ty, v) = infer_vararg(i, text)?;
        builder = builder.vararg(ty);
        values.push(v);
    }
    // SAFETY: forwarded to our caller.
    unsafe { builder.build()?.call(&values) }
}

/// The text `polyload ffi` prints for a result: the value as text, or with
/// `json` a JSON object `{"result": VALUE}` ([`Value::to_json`]).
pub fn render(value: &Value, json: bool) -> String {
    if json {
        serde_json::json!({ "result": value.to_json() }).to_string()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vararg_inference() {
        let t = |s: &str| infer_vararg(0, s).unwrap();
        assert_eq!(t("42"), (FfiType::I32, Value::I32(42)));
        assert_eq!(t("-5000000000"), (FfiType::I64, Value::I64(-5_000_000_000)));
        assert_eq!(t("2.5"), (FfiType::F64, Value::F64(2.5)));
        assert_eq!(t("1e3"), (FfiType::F64, Value::F64(1000.0)));
        assert_eq!(t("hello"), (FfiType::CString, Value::Str("hello".into())));
        assert_eq!(t("f32:1.5"), (FfiType::F32, Value::F32(1.5)));
        assert_eq!(t("cstr:12"), (FfiType::CString, Value::Str("12".into())));
        assert_eq!(
            t("http://x"),
            (FfiType::CString, Value::Str("http://x".into()))
        );
        assert!(infer_vararg(3, "u8:300").is_err());
    }
}
