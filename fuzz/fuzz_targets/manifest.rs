//! The manifest parser on arbitrary text: never panics, and every error is
//! one line naming the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|text: &str| {
    let path = Path::new("/fuzz/bundle/manifest.toml");
    match polyload::Manifest::parse(text, path) {
        Ok(m) => {
            assert_eq!(m.path, path);
            for e in &m.exports {
                // A parsed signature prints as text that parses back to it.
                let again: polyload::Signature = e.signature.to_string().parse().unwrap();
                assert_eq!(again, e.signature);
            }
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "a manifest error is one line: {msg:?}");
            assert!(msg.starts_with("/fuzz/bundle/manifest.toml:"), "{msg}");
        }
    }
});
