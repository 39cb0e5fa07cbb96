//! Unit tests of what works without a host. End-to-end tests (a bundle
//! loaded into a test host) are in `tests/`.

use crate::__private::{guard, signature_bytes, signature_len, signature_str, signatures_match};
use crate::{GuestArg, GuestRet, BUILD_INFO};
use polyload_abi::{PolyloadBytes, PolyloadStr};
use std::ffi::c_void;

/// What `#[export]` generates, for a parameter list and return type.
macro_rules! sig {
    (($($p:ty),*) -> $r:ty) => {{
        const P: &[&str] = &[$(<$p as GuestArg>::TYPE),*];
        const R: &str = <$r as GuestRet>::TYPE;
        const N: usize = signature_len(P, R);
        const B: [u8; N] = signature_bytes::<N>(P, R);
        const S: &str = signature_str(&B);
        S
    }};
}

#[test]
fn signatures_come_from_types() {
    assert_eq!(sig!((&'static str) -> u64), "fn(str) -> u64");
    assert_eq!(sig!((&'static str, u32) -> String), "fn(str, u32) -> str");
    assert_eq!(sig!((&'static [u8]) -> String), "fn(bytes) -> str");
    assert_eq!(sig!((i64, i64) -> i64), "fn(i64, i64) -> i64");
    assert_eq!(sig!(() -> ()), "fn()");
    assert_eq!(sig!((&'static [u8]) -> ()), "fn(bytes)");
    assert_eq!(sig!((i64) -> Result<i64, String>), "fn(i64) -> i64");
    assert_eq!(
        sig!((bool, i8, i16, i32, u8, u16, u32, u64, f32, f64) -> Vec<u8>),
        "fn(bool, i8, i16, i32, u8, u16, u32, u64, f32, f64) -> bytes"
    );
    assert_eq!(sig!((*const c_void) -> *mut c_void), "fn(ptr) -> ptr");
    assert_eq!(
        sig!(() -> Result<(), std::io::Error>),
        "fn()",
        "Result<(), E> is void"
    );
}

#[test]
fn signature_comparison_ignores_whitespace_and_void() {
    let same = [
        ("fn(i64, i64) -> i64", "fn(i64,i64)->i64"),
        ("fn(str) -> u64", "  fn( str )  ->  u64 "),
        ("fn()", "fn() -> void"),
        ("fn(bytes)", "fn(bytes)->void"),
        ("fn() -> void", "fn()"),
    ];
    for (a, b) in same {
        assert!(signatures_match(a, b), "{a:?} vs {b:?}");
    }
    let different = [
        ("fn(i64) -> i64", "fn(i64) -> u64"),
        ("fn(str) -> u64", "fn(str)"),
        ("fn(i64)", "fn(i64, i64)"),
        ("fn()", "fn() -> voi"),
        ("fn()", "fn() -> voids"),
        ("fn(i32)", "fn(i 32 )x"),
        ("", "fn()"),
    ];
    for (a, b) in different {
        assert!(!signatures_match(a, b), "{a:?} vs {b:?}");
        assert!(!signatures_match(b, a), "{b:?} vs {a:?}");
    }
}

#[test]
fn build_info_has_every_field_in_order() {
    assert!(BUILD_INFO.ends_with('\n'));
    let fields: Vec<(&str, &str)> = BUILD_INFO
        .lines()
        .map(|l| l.split_once('=').expect("key=value"))
        .collect();
    let keys: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
    assert_eq!(keys, ["rustc", "target", "profile", "abi", "guest"]);
    for (k, v) in &fields {
        assert!(!v.is_empty() && !v.contains('='), "{k}={v}");
    }
    let value = |key: &str| fields.iter().find(|(k, _)| *k == key).unwrap().1;
    // `rustc=` is the bare release, like the runtime's `rustc -vV` parse.
    let rustc = value("rustc");
    assert!(
        rustc.split('.').count() >= 3 && rustc.as_bytes()[0].is_ascii_digit(),
        "{rustc}"
    );
    assert!(value("target").split('-').count() >= 3);
    assert!(["debug", "release"].contains(&value("profile")));
    assert_eq!(
        value("abi"),
        polyload_abi::POLYLOAD_ABI_VERSION.to_string().as_str()
    );
    assert_eq!(value("guest"), env!("CARGO_PKG_VERSION"));
    assert_eq!(
        value("profile"),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
}

#[test]
fn guard_turns_errors_and_panics_into_zero() {
    let r: i64 = guard("b", "boom", || panic!("bad"));
    assert_eq!(r, 0);
    let r: i64 = guard("b", "boom", || std::panic::panic_any(42u8));
    assert_eq!(r, 0);
    let r: PolyloadStr = guard("b", "f", || Err("no".into()));
    assert!(r.ptr.is_null() && r.len == 0);
    let r: f64 = guard("b", "ok", || Ok(7.5));
    assert_eq!(r, 7.5);
}

#[test]
fn invalid_utf8_is_refused() {
    let bad = [b'a', 0xff, 0xfe];
    let e = <&'static str as GuestArg>::from_abi(PolyloadStr {
        ptr: bad.as_ptr(),
        len: bad.len(),
    })
    .unwrap_err();
    assert!(e.starts_with("not valid UTF-8"), "{e}");
}

#[test]
fn empty_arguments_need_no_pointer() {
    let s = <&'static str as GuestArg>::from_abi(PolyloadStr::EMPTY).unwrap();
    assert_eq!(s, "");
    let b = <&'static [u8] as GuestArg>::from_abi(PolyloadBytes::EMPTY).unwrap();
    assert!(b.is_empty());
    // Empty results need no host either.
    let r = String::new().into_abi().unwrap();
    assert!(r.ptr.is_null() && r.len == 0);
}

#[test]
fn a_non_empty_result_without_a_host_is_an_error() {
    let e = "x".to_string().into_abi().unwrap_err();
    assert!(e.contains("not initialised"), "{e}");
}

#[test]
fn err_values_use_display() {
    let r: Result<i64, std::fmt::Error> = Err(std::fmt::Error);
    assert_eq!(r.into_abi().unwrap_err(), std::fmt::Error.to_string());
}

#[cfg(feature = "json")]
#[test]
fn json_round_trips_as_text() {
    assert_eq!(sig!((serde_json::Value) -> ()), "fn(json)");
    let text = r#"{"a":[1,2]}"#;
    let v = <serde_json::Value as GuestArg>::from_abi(PolyloadStr::from_str(text)).unwrap();
    assert_eq!(v["a"][1], 2);
    let e = <serde_json::Value as GuestArg>::from_abi(PolyloadStr::from_str("{")).unwrap_err();
    assert!(e.starts_with("not valid JSON"), "{e}");
}
