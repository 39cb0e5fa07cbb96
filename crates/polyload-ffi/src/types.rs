//! C types known to the dynamic FFI, with their size and alignment.

use crate::Signature;
use std::fmt;

/// A type in a polyload signature, as it crosses the C boundary.
///
/// Scalars map one to one onto C types. The three "buffer" types
/// [`Str`](FfiType::Str), [`Bytes`](FfiType::Bytes) and [`Json`](FfiType::Json)
/// cross as a by-value `{const uint8_t *ptr; size_t len;}` struct
/// (`PolyloadStr`/`PolyloadBytes` in `polyload.h`); `Json` carries UTF-8 JSON
/// text. [`CString`](FfiType::CString) is a NUL-terminated `const char *`.
///
/// Sizes and alignments follow the C data model of the target: LP64 on
/// x86-64 System V (psABI §3.1.2) and AArch64 (AAPCS64 §5.1), ILP32 elsewhere
/// pointers permitting.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FfiType {
    /// `void`: only as a return type.
    Void,
    /// C `_Bool` (one byte, 0 or 1).
    Bool,
    /// `int8_t`.
    I8,
    /// `int16_t`.
    I16,
    /// `int32_t`.
    I32,
    /// `int64_t`.
    I64,
    /// `uint8_t`.
    U8,
    /// `uint16_t`.
    U16,
    /// `uint32_t`.
    U32,
    /// `uint64_t`.
    U64,
    /// An opaque handle to a value that stays with the definition's bundle:
    /// a `uint64_t` id at the C ABI, a [`Value::U64`](crate::Value::U64) in
    /// calls. Written `handle`, or `handle<semver::Version>` with the name
    /// of what it refers to (a Rust-style path: identifiers joined by
    /// `::`, optionally with generic arguments that are such names too,
    /// as in `handle<indexmap::IndexSet<i64>>`). Named handles are the same type only with the same name; a
    /// plain `handle` is another type again. The name documents and types
    /// the signature; checking the value behind an id is the bundle's
    /// business (rimport's generated libraries check it on every call).
    Handle(Option<Box<str>>),
    /// `float`.
    F32,
    /// `double`.
    F64,
    /// `void *`: an address the caller owns (written `ptr`).
    Pointer,
    /// `const char *`, NUL-terminated (written `cstr`).
    CString,
    /// UTF-8 text as `PolyloadStr` by value (written `str`).
    Str,
    /// Bytes as `PolyloadBytes` by value (written `bytes`).
    Bytes,
    /// JSON text as `PolyloadStr` by value (written `json`); structured in
    /// [`Value::Json`](crate::Value::Json).
    Json,
    /// A C struct with these fields in order, laid out with C padding rules
    /// (written `{i32, f64}`).
    Struct(Vec<FfiType>),
    /// A fixed-size array; valid only as a struct field (written `[i32; 4]`).
    Array(Box<FfiType>, usize),
    /// A pointer to a C function of this signature (written
    /// `fn(ptr, ptr) -> i32`), e.g. a `qsort` comparator.
    Callback(Box<Signature>),
}

/// Size and alignment of a type in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeLayout {
    /// `sizeof`, including trailing padding.
    pub size: usize,
    /// `_Alignof`, a power of two.
    pub align: usize,
}

const PTR: usize = std::mem::size_of::<usize>();

impl FfiType {
    /// The type's C layout. `Void` is `{size: 0, align: 1}`.
    pub fn layout(&self) -> TypeLayout {
        let l = |size, align| TypeLayout { size, align };
        match self {
            FfiType::Void => l(0, 1),
            FfiType::Bool | FfiType::I8 | FfiType::U8 => l(1, 1),
            FfiType::I16 | FfiType::U16 => l(2, 2),
            FfiType::I32 | FfiType::U32 | FfiType::F32 => l(4, 4),
            FfiType::I64 | FfiType::U64 | FfiType::Handle(_) | FfiType::F64 => {
                l(8, std::mem::align_of::<u64>())
            }
            FfiType::Pointer | FfiType::CString | FfiType::Callback(_) => l(PTR, PTR),
            FfiType::Str | FfiType::Bytes | FfiType::Json => l(2 * PTR, PTR),
            FfiType::Array(elem, n) => {
                let e = elem.layout();
                l(e.size * n, e.align)
            }
            FfiType::Struct(fields) => struct_layout(fields).0,
        }
    }

    /// Field offsets of a struct type (empty for other types).
    pub fn field_offsets(&self) -> Vec<usize> {
        match self {
            FfiType::Struct(fields) => struct_layout(fields).1,
            _ => Vec::new(),
        }
    }

    /// Whether the type is an integer (including `bool`).
    pub fn is_integer(&self) -> bool {
        matches!(
            self,
            FfiType::Bool
                | FfiType::I8
                | FfiType::I16
                | FfiType::I32
                | FfiType::I64
                | FfiType::U8
                | FfiType::U16
                | FfiType::U32
                | FfiType::U64
                | FfiType::Handle(_)
        )
    }

    /// Whether the type is `f32` or `f64`.
    pub fn is_float(&self) -> bool {
        matches!(self, FfiType::F32 | FfiType::F64)
    }

    /// Whether the type is one of the pointer + length buffer types
    /// (`str`, `bytes`, `json`).
    pub fn is_buffer(&self) -> bool {
        matches!(self, FfiType::Str | FfiType::Bytes | FfiType::Json)
    }

    /// The keyword for a scalar or buffer type (`"i64"`, `"str"`), `None` for
    /// structs, arrays, callbacks and named handles.
    pub fn keyword(&self) -> Option<&'static str> {
        Some(match self {
            FfiType::Void => "void",
            FfiType::Bool => "bool",
            FfiType::I8 => "i8",
            FfiType::I16 => "i16",
            FfiType::I32 => "i32",
            FfiType::I64 => "i64",
            FfiType::U8 => "u8",
            FfiType::U16 => "u16",
            FfiType::U32 => "u32",
            FfiType::U64 => "u64",
            FfiType::Handle(None) => "handle",
            FfiType::Handle(Some(_)) => return None,
            FfiType::F32 => "f32",
            FfiType::F64 => "f64",
            FfiType::Pointer => "ptr",
            FfiType::CString => "cstr",
            FfiType::Str => "str",
            FfiType::Bytes => "bytes",
            FfiType::Json => "json",
            FfiType::Struct(_) | FfiType::Array(..) | FfiType::Callback(_) => return None,
        })
    }

    /// The type named by a keyword (`"i64"`), if any.
    pub fn from_keyword(word: &str) -> Option<FfiType> {
        Some(match word {
            "void" => FfiType::Void,
            "bool" => FfiType::Bool,
            "i8" => FfiType::I8,
            "i16" => FfiType::I16,
            "i32" => FfiType::I32,
            "i64" => FfiType::I64,
            "u8" => FfiType::U8,
            "u16" => FfiType::U16,
            "u32" => FfiType::U32,
            "u64" => FfiType::U64,
            "handle" => FfiType::Handle(None),
            "f32" => FfiType::F32,
            "f64" => FfiType::F64,
            "ptr" => FfiType::Pointer,
            "cstr" => FfiType::CString,
            "str" => FfiType::Str,
            "bytes" => FfiType::Bytes,
            "json" => FfiType::Json,
            _ => return None,
        })
    }
}

/// C struct layout: each field at the next multiple of its alignment, the
/// whole rounded up to the largest alignment (System V psABI §3.1.2,
/// AAPCS64 §5.7). Returns the layout and the field offsets.
fn struct_layout(fields: &[FfiType]) -> (TypeLayout, Vec<usize>) {
    let mut offset = 0usize;
    let mut align = 1usize;
    let mut offsets = Vec::with_capacity(fields.len());
    for f in fields {
        let fl = f.layout();
        offset = offset.next_multiple_of(fl.align);
        offsets.push(offset);
        offset += fl.size;
        align = align.max(fl.align);
    }
    (
        TypeLayout {
            size: offset.next_multiple_of(align),
            align,
        },
        offsets,
    )
}

impl fmt::Display for FfiType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(k) = self.keyword() {
            return f.write_str(k);
        }
        match self {
            FfiType::Struct(fields) => {
                f.write_str("{")?;
                for (i, t) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t}")?;
                }
                f.write_str("}")
            }
            FfiType::Array(elem, n) => write!(f, "[{elem}; {n}]"),
            FfiType::Callback(sig) => write!(f, "{sig}"),
            FfiType::Handle(Some(name)) => write!(f, "handle<{name}>"),
            _ => unreachable!("scalar types have keywords"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(C)]
    struct Padded {
        a: u8,
        b: f64,
        c: u16,
    }

    #[test]
    fn named_handles_parse_print_and_differ_by_name() {
        let sig: Signature = "fn(handle < semver :: Version >, handle) -> handle<regex::Regex>"
            .parse()
            .unwrap();
        assert_eq!(
            sig.params[0],
            FfiType::Handle(Some("semver::Version".into()))
        );
        assert_eq!(
            sig.to_string(),
            "fn(handle<semver::Version>, handle) -> handle<regex::Regex>"
        );
        assert_eq!(sig.to_string().parse::<Signature>().unwrap(), sig);
        assert_ne!(sig.params[0], sig.params[1]);
        assert_eq!(sig.params[0].layout(), FfiType::U64.layout());
        for bad in [
            "fn(handle<>)",
            "fn(handle<a::>)",
            "fn(handle<1a>)",
            "fn(handle<a b>)",
            "fn(handle<a:b>)",
        ] {
            let e = bad.parse::<Signature>().unwrap_err().to_string();
            assert!(
                e.contains("type name") || e.contains("`::`, `<` or `>`"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn named_handles_may_name_generic_instantiations() {
        let sig: Signature =
            "fn(handle< indexmap::IndexSet <i64> >) -> handle<a::B<c::D<u8>,Vec<i64> >>"
                .parse()
                .unwrap();
        assert_eq!(
            sig.to_string(),
            "fn(handle<indexmap::IndexSet<i64>>) -> handle<a::B<c::D<u8>, Vec<i64>>>"
        );
        assert_eq!(sig.to_string().parse::<Signature>().unwrap(), sig);
        assert_ne!(
            "fn(handle<a::B<i64>>)".parse::<Signature>().unwrap(),
            "fn(handle<a::B<u64>>)".parse::<Signature>().unwrap()
        );
        for bad in [
            "fn(handle<a<>>)",
            "fn(handle<a<b,>>)",
            "fn(handle<a<b>)",
            "fn(handle<a<b c>>)",
        ] {
            assert!(bad.parse::<Signature>().is_err(), "{bad}");
        }
        let deep = format!("fn(handle<{}a{}>)", "a<".repeat(40), ">".repeat(40));
        let e = deep.parse::<Signature>().unwrap_err().to_string();
        assert!(e.contains("16 levels"), "{e}");
    }

    #[test]
    fn handle_is_a_keyword_with_u64_layout() {
        let sig: Signature = "fn(handle, str) -> handle".parse().unwrap();
        assert_eq!(sig.params[0], FfiType::Handle(None));
        assert_eq!(sig.to_string(), "fn(handle, str) -> handle");
        assert_eq!(FfiType::Handle(None).layout(), FfiType::U64.layout());
        assert!(FfiType::Handle(None).is_integer());
        assert_eq!(
            crate::Value::parse(&FfiType::Handle(None), "42"),
            Ok(crate::Value::U64(42))
        );
    }

    #[test]
    fn struct_layout_matches_repr_c() {
        let t = FfiType::Struct(vec![FfiType::U8, FfiType::F64, FfiType::U16]);
        assert_eq!(
            t.layout(),
            TypeLayout {
                size: std::mem::size_of::<Padded>(),
                align: std::mem::align_of::<Padded>()
            }
        );
        assert_eq!(
            t.field_offsets(),
            vec![
                std::mem::offset_of!(Padded, a),
                std::mem::offset_of!(Padded, b),
                std::mem::offset_of!(Padded, c)
            ]
        );
    }

    #[test]
    fn arrays_in_structs() {
        #[repr(C)]
        struct S {
            a: [u8; 3],
            b: i32,
        }
        let t = FfiType::Struct(vec![FfiType::Array(Box::new(FfiType::U8), 3), FfiType::I32]);
        assert_eq!(t.layout().size, std::mem::size_of::<S>());
        assert_eq!(t.field_offsets(), vec![0, std::mem::offset_of!(S, b)]);
    }
}
