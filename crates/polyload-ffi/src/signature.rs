//! Function signatures and their text form.
//!
//! Grammar (whitespace is free between tokens):
//!
//! ```text
//! signature := "fn" "(" [ params ] ")" [ "->" type ]      // no "->" means void
//! params    := "..." | type { "," type } [ "," "..." ]
//! type      := keyword | "{" type { "," type } "}" | "[" type ";" integer "]" | signature
//! keyword   := void bool i8 i16 i32 i64 u8 u16 u32 u64 f32 f64 ptr cstr str bytes json
//! ```
//!
//! `[T; N]` is allowed only as a struct field; `void` only as a return type;
//! `...` (C variadic) only last, after at least one fixed parameter.

use crate::FfiType;
use std::fmt;
use std::str::FromStr;

/// A C function signature: fixed parameters, return type, and whether it is
/// variadic (`...` after the fixed parameters).
///
/// ```
/// use polyload_ffi::{FfiType, Signature};
/// let sig: Signature = "fn(cstr, ...) -> i32".parse().unwrap();
/// assert_eq!(sig.params, vec![FfiType::CString]);
/// assert!(sig.variadic);
/// assert_eq!(sig.to_string(), "fn(cstr, ...) -> i32");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Signature {
    /// Fixed parameters, in order.
    pub params: Vec<FfiType>,
    /// Return type ([`FfiType::Void`] for none).
    pub ret: FfiType,
    /// Whether more arguments may follow the fixed ones (C `...`); they get
    /// the default argument promotions (C11 §6.5.2.2p7).
    pub variadic: bool,
}

impl Signature {
    /// A non-variadic signature.
    pub fn new(params: Vec<FfiType>, ret: FfiType) -> Self {
        Self {
            params,
            ret,
            variadic: false,
        }
    }
}

/// A signature that failed to parse: where, and what was expected there.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid signature `{text}`: at column {column}, expected {expected}, found {found}")]
pub struct SignatureError {
    /// The whole text that was parsed.
    pub text: String,
    /// 1-based column (in characters) of the offending token.
    pub column: usize,
    /// What the parser wanted there.
    pub expected: String,
    /// What it found (`end of input` at the end).
    pub found: String,
}

impl FromStr for Signature {
    type Err = SignatureError;

    fn from_str(text: &str) -> Result<Self, SignatureError> {
        let mut p = Parser { text, pos: 0 };
        let sig = p.signature()?;
        p.skip_ws();
        if p.pos < text.len() {
            return Err(p.error("end of signature"));
        }
        Ok(sig)
    }
}

impl FromStr for FfiType {
    type Err = SignatureError;

    /// Parses a single type (`i64`, `{i32, f64}`, `fn(ptr) -> i32`).
    fn from_str(text: &str) -> Result<Self, SignatureError> {
        let mut p = Parser { text, pos: 0 };
        let ty = p.ty(Ctx::Param)?;
        p.skip_ws();
        if p.pos < text.len() {
            return Err(p.error("end of type"));
        }
        Ok(ty)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    Param,
    Return,
    Field,
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        let rest = &self.text[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn error(&self, expected: &str) -> SignatureError {
        let rest = self.rest();
        let found = if rest.is_empty() {
            "end of input".to_string()
        } else {
            let tok: String = match rest.chars().next() {
                Some(c) if c.is_ascii_alphanumeric() || c == '_' => rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect(),
                Some('.') if rest.starts_with("...") => "...".into(),
                Some('-') if rest.starts_with("->") => "->".into(),
                Some(c) => c.to_string(),
                None => unreachable!(),
            };
            format!("`{tok}`")
        };
        SignatureError {
            text: self.text.to_string(),
            column: self.text[..self.pos].chars().count() + 1,
            expected: expected.to_string(),
            found,
        }
    }

    fn eat(&mut self, tok: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(tok) {
            self.pos += tok.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: &str, expected: &str) -> Result<(), SignatureError> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(self.error(expected))
        }
    }

    fn word(&mut self) -> Option<&str> {
        self.skip_ws();
        let rest = self.rest();
        let n = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if n == 0 {
            return None;
        }
        let w = &self.text[self.pos..self.pos + n];
        self.pos += n;
        Some(w)
    }

    /// Whether the next non-space character is `c`.
    fn peek_is(&mut self, c: char) -> bool {
        self.skip_ws();
        self.rest().starts_with(c)
    }

    /// The `<name>` of a named handle, after `handle`.
    fn handle_name(&mut self) -> Result<FfiType, SignatureError> {
        self.expect("<", "`<`")?;
        let mut name = String::new();
        self.type_name(&mut name, 0)?;
        self.expect(">", "`::`, `<` or `>`")?;
        Ok(FfiType::Handle(Some(name.into())))
    }

    /// A Rust-style type name, appended to `out` in canonical form:
    /// identifiers joined by `::`, then optionally generic arguments that
    /// are type names themselves (`indexmap::IndexSet<i64>`, `a::B<c::D, u8>`).
    fn type_name(&mut self, out: &mut String, depth: usize) -> Result<(), SignatureError> {
        // Bounds the recursion on hostile input (the fuzzers' `<<<<...`).
        const MAX_DEPTH: usize = 16;
        loop {
            self.skip_ws();
            let at = self.pos;
            match self.word() {
                Some(w) if !w.starts_with(|c: char| c.is_ascii_digit()) => out.push_str(w),
                _ => {
                    self.pos = at;
                    return Err(self.error("a type name (identifiers joined by `::`)"));
                }
            }
            if !self.eat("::") {
                break;
            }
            out.push_str("::");
        }
        if self.eat("<") {
            if depth == MAX_DEPTH {
                return Err(self.error("a shallower type name (16 levels of `<..>` at most)"));
            }
            out.push('<');
            loop {
                self.type_name(out, depth + 1)?;
                if self.eat(">") {
                    break;
                }
                self.expect(",", "`,` or `>`")?;
                out.push_str(", ");
            }
            out.push('>');
        }
        Ok(())
    }

    fn signature(&mut self) -> Result<Signature, SignatureError> {
        self.skip_ws();
        let start = self.pos;
        if self.word() != Some("fn") {
            self.pos = start;
            return Err(self.error("`fn`"));
        }
        self.expect("(", "`(`")?;
        let mut params = Vec::new();
        let mut variadic = false;
        if !self.eat(")") {
            loop {
                self.skip_ws();
                if self.rest().starts_with("...") {
                    if params.is_empty() {
                        return Err(self.error("a fixed parameter before `...`"));
                    }
                    self.pos += 3;
                    variadic = true;
                    self.expect(")", "`)` after `...`")?;
                    break;
                }
                params.push(self.ty(Ctx::Param)?);
                if self.eat(")") {
                    break;
                }
                self.expect(",", "`,` or `)`")?;
            }
        }
        let ret = if self.eat("->") {
            self.ty(Ctx::Return)?
        } else {
            FfiType::Void
        };
        let _ = start;
        Ok(Signature {
            params,
            ret,
            variadic,
        })
    }

    fn ty(&mut self, ctx: Ctx) -> Result<FfiType, SignatureError> {
        self.skip_ws();
        let start = self.pos;
        if self.eat("{") {
            let mut fields = Vec::new();
            loop {
                fields.push(self.ty(Ctx::Field)?);
                if self.eat("}") {
                    break;
                }
                self.expect(",", "`,` or `}`")?;
            }
            return Ok(FfiType::Struct(fields));
        }
        if self.eat("[") {
            if ctx != Ctx::Field {
                self.pos = start;
                return Err(self.error("a type (arrays are allowed only inside structs)"));
            }
            let elem = self.ty(Ctx::Field)?;
            self.expect(";", "`;`")?;
            self.skip_ws();
            let n_start = self.pos;
            let n = match self.word().map(str::parse::<usize>) {
                Some(Ok(n)) if n > 0 => n,
                _ => {
                    self.pos = n_start;
                    return Err(self.error("an array length (a positive integer)"));
                }
            };
            self.expect("]", "`]`")?;
            return Ok(FfiType::Array(Box::new(elem), n));
        }
        let word = self.word().map(str::to_owned);
        match word.as_deref() {
            Some("fn") => {
                self.pos = start;
                Ok(FfiType::Callback(Box::new(self.signature()?)))
            }
            Some("handle") if self.peek_is('<') => self.handle_name(),
            Some(w) => match FfiType::from_keyword(w) {
                Some(FfiType::Void) if ctx != Ctx::Return => {
                    self.pos = start;
                    Err(self.error("a parameter type (`void` is only a return type)"))
                }
                Some(t) => Ok(t),
                None => {
                    self.pos = start;
                    Err(self.error(
                        "a type (bool, i8..i64, u8..u64, f32, f64, ptr, cstr, str, bytes, json, handle, handle<Name>, {..}, fn(..))",
                    ))
                }
            },
            None => Err(self.error("a type")),
        }
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("fn(")?;
        for (i, p) in self.params.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{p}")?;
        }
        if self.variadic {
            f.write_str(", ...")?;
        }
        f.write_str(")")?;
        if self.ret != FfiType::Void {
            write!(f, " -> {}", self.ret)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Signature {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn round_trips() {
        for s in [
            "fn(i64, i64) -> i64",
            "fn(f64, f64) -> f64",
            "fn()",
            "fn(str) -> str",
            "fn(bytes) -> u32",
            "fn(ptr, u64, u64, fn(ptr, ptr) -> i32)",
            "fn(cstr, ...) -> i32",
            "fn({i32, i32}) -> {i32, i32}",
            "fn({u8, [f32; 3], {i64, f64}}) -> json",
        ] {
            assert_eq!(p(s).to_string(), s);
        }
        assert_eq!(
            p(" fn ( i64 ,i64 )->i64 ").to_string(),
            "fn(i64, i64) -> i64"
        );
        assert_eq!(p("fn() -> void").ret, FfiType::Void);
    }

    #[test]
    fn errors_point_at_the_problem() {
        let e = "fn(i64, i65) -> i64".parse::<Signature>().unwrap_err();
        assert_eq!(e.column, 9);
        assert_eq!(e.found, "`i65`");
        assert!(e.to_string().contains("at column 9"), "{e}");

        let e = "fn(i64".parse::<Signature>().unwrap_err();
        assert_eq!((e.column, e.found.as_str()), (7, "end of input"));
        let e = "fn(void)".parse::<Signature>().unwrap_err();
        assert!(e.expected.contains("only a return type"));
        let e = "fn(...)".parse::<Signature>().unwrap_err();
        assert!(e.expected.contains("fixed parameter"));
        let e = "fn(i32, ..., i32)".parse::<Signature>().unwrap_err();
        assert!(e.expected.contains("after `...`"));
        let e = "fn([i32; 2])".parse::<Signature>().unwrap_err();
        assert!(e.expected.contains("inside structs"));
        let e = "fn() -> i64 extra".parse::<Signature>().unwrap_err();
        assert_eq!(e.found, "`extra`");
        let e = "i64".parse::<Signature>().unwrap_err();
        assert_eq!(e.expected, "`fn`");
    }
}
