//! Command-line text to [`Value`]s, by a definition's signature.
//!
//! One argument per parameter, parsed by its type ([`Value::parse`]):
//! integers in decimal or `0x` hex (negative ones too: `-42`), floats,
//! `true`/`false`, text for `str`, JSON text for `json`, hex (`0x...`) or
//! text for `bytes`. `@PATH` passes the contents of a file to a `str`,
//! `bytes` or `json` parameter; `@@x` is the literal text `@x`.

use polyload::{FfiType, Signature, Value};
use std::path::PathBuf;

/// Why an argument could not be turned into a value. Arguments are
/// numbered from 1, as a user counts them on the command line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArgError {
    /// The number of arguments differs from the signature's.
    #[error("`{function}` takes {expected} argument(s) ({signature}), got {got}")]
    Count {
        /// The qualified name called.
        function: String,
        /// Its signature.
        signature: Signature,
        /// Parameters it declares.
        expected: usize,
        /// Arguments given.
        got: usize,
    },
    /// The text does not parse as the parameter's type.
    #[error("argument {position}: {source}")]
    Parse {
        /// 1-based position.
        position: usize,
        /// What is wrong with it.
        #[source]
        source: polyload_ffi::ValueError,
    },
    /// `@PATH` names a file that cannot be read.
    #[error("argument {position}: reading {}: {source}", path.display())]
    Read {
        /// 1-based position.
        position: usize,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `@PATH` for a `str` parameter names a file that is not UTF-8.
    #[error("argument {position}: {} is not valid UTF-8 text", path.display())]
    NotText {
        /// 1-based position.
        position: usize,
        /// The file.
        path: PathBuf,
    },
    /// `@PATH` for a `json` parameter names a file that is not JSON.
    #[error("argument {position}: {} is not JSON: {source}", path.display())]
    NotJson {
        /// 1-based position.
        position: usize,
        /// The file.
        path: PathBuf,
        /// The parser's message.
        #[source]
        source: serde_json::Error,
    },
    /// `@PATH` for a parameter that is not `str`, `bytes` or `json`.
    #[error(
        "argument {position}: `@file` works only for str, bytes and json parameters, not {ty}"
    )]
    FileForScalar {
        /// 1-based position.
        position: usize,
        /// The parameter's type.
        ty: FfiType,
    },
}

/// Parses the argument at 1-based `position` for a parameter of type `ty`.
///
/// ```
/// use polyload::{FfiType, Value};
/// use polyload_cli::args::parse_arg;
/// assert_eq!(parse_arg(&FfiType::I64, "-42", 1).unwrap(), Value::I64(-42));
/// assert_eq!(parse_arg(&FfiType::Str, "@@home", 1).unwrap(), Value::from("@home"));
/// let e = parse_arg(&FfiType::U8, "300", 2).unwrap_err();
/// assert!(e.to_string().starts_with("argument 2: "), "{e}");
/// ```
///
/// # Errors
/// [`ArgError`] naming the argument's position.
pub fn parse_arg(ty: &FfiType, text: &str, position: usize) -> Result<Value, ArgError> {
    let parse =
        |t: &str| Value::parse(ty, t).map_err(|source| ArgError::Parse { position, source });
    let Some(rest) = text.strip_prefix('@') else {
        return parse(text);
    };
    if rest.starts_with('@') {
        return parse(rest);
    }
    let path = PathBuf::from(rest);
    let data = std::fs::read(&path).map_err(|source| ArgError::Read {
        position,
        path: path.clone(),
        source,
    })?;
    match ty {
        FfiType::Bytes => Ok(Value::Bytes(data)),
        FfiType::Str | FfiType::CString => String::from_utf8(data)
            .map(Value::Str)
            .map_err(|_| ArgError::NotText { position, path }),
        FfiType::Json => serde_json::from_slice(&data)
            .map(Value::Json)
            .map_err(|source| ArgError::NotJson {
                position,
                path,
                source,
            }),
        other => Err(ArgError::FileForScalar {
            position,
            ty: other.clone(),
        }),
    }
}

/// Parses every argument of a call of `function` (with `signature`).
///
/// # Errors
/// [`ArgError::Count`] for the wrong number of arguments, else as
/// [`parse_arg`].
pub fn parse_args(
    function: &str,
    signature: &Signature,
    args: &[String],
) -> Result<Vec<Value>, ArgError> {
    if args.len() != signature.params.len() {
        return Err(ArgError::Count {
            function: function.to_string(),
            signature: signature.clone(),
            expected: signature.params.len(),
            got: args.len(),
        });
    }
    signature
        .params
        .iter()
        .zip(args)
        .enumerate()
        .map(|(i, (ty, text))| parse_arg(ty, text, i + 1))
        .collect()
}
