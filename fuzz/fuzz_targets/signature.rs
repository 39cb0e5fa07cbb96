//! The signature parser on arbitrary text: never panics; what it accepts
//! prints as text that parses back to the same signature.
#![no_main]

use libfuzzer_sys::fuzz_target;
use polyload_ffi::{FfiType, Signature};

fuzz_target!(|text: &str| {
    if let Ok(sig) = text.parse::<Signature>() {
        let printed = sig.to_string();
        let again: Signature = printed
            .parse()
            .unwrap_or_else(|e| panic!("{printed:?} does not parse back: {e}"));
        assert_eq!(again, sig, "{text:?} -> {printed:?}");
    }
    if let Ok(ty) = text.parse::<FfiType>() {
        let printed = ty.to_string();
        assert_eq!(printed.parse::<FfiType>().ok(), Some(ty), "{text:?} -> {printed:?}");
    }
});
