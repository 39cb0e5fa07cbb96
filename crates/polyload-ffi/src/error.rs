//! The error type of dynamic calls.

use crate::{SignatureError, ValueError};

/// Why a dynamic call could not be made or its result not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FfiError {
    /// The number of arguments differs from the signature's.
    #[error("expected {expected} argument(s), got {got}")]
    ArgCount {
        /// Parameters in the signature (fixed ones, for a variadic function).
        expected: usize,
        /// Arguments given.
        got: usize,
    },
    /// An argument does not fit its parameter's type.
    #[error("argument {}: {source}", index + 1)]
    BadArgument {
        /// 0-based position (messages number arguments from 1).
        index: usize,
        /// What was wrong.
        source: ValueError,
    },
    /// A `cstr` argument contains a NUL byte before its end.
    #[error("argument {}: string contains an interior NUL byte at offset {offset}, so it cannot be passed as cstr", index + 1)]
    InteriorNul {
        /// 0-based position (messages number arguments from 1).
        index: usize,
        /// Byte offset of the first NUL.
        offset: usize,
    },
    /// The callee returned something its signature's type cannot hold
    /// (invalid UTF-8 in a `str`, invalid JSON in a `json`).
    #[error("invalid {ty} returned: {reason}")]
    BadReturn {
        /// The declared return type.
        ty: String,
        /// What was wrong.
        reason: String,
    },
    /// libffi refused the call interface (an unsupported type combination).
    #[error("libffi cannot prepare a call interface for `{signature}`: {reason}")]
    Prepare {
        /// The signature.
        signature: String,
        /// libffi's status.
        reason: String,
    },
    /// The call shape is not supported by the requested path (a struct in
    /// an [`FfiValue`](crate::FfiValue), a variadic callback, ...).
    #[error("unsupported: {what}")]
    Unsupported {
        /// What was asked for.
        what: String,
    },
    /// A library could not be loaded.
    #[error("cannot load library `{name}`: tried {}", tried.join("; "))]
    LibraryNotFound {
        /// The name or path asked for.
        name: String,
        /// Each candidate tried, with the dynamic linker's reason.
        tried: Vec<String>,
    },
    /// A library has no such symbol.
    #[error("symbol `{symbol}` not found in `{library}`: {reason}")]
    SymbolNotFound {
        /// The symbol asked for.
        symbol: String,
        /// The library searched.
        library: String,
        /// The dynamic linker's message.
        reason: String,
    },
    /// A signature text did not parse.
    #[error(transparent)]
    Signature(#[from] SignatureError),
}
