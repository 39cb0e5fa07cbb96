//! Command-line arguments parsed by signature (the CLI's text-to-`Value`
//! path), `@file` included: the first line is a parameter type, the rest
//! the argument; an argument starting with `@` names a file holding the
//! bytes after it. Never panics; a value of a `str` parameter is the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use polyload_ffi::{FfiType, Value};

fuzz_target!(|data: &[u8]| {
    let Some(nl) = data.iter().position(|b| *b == b'\n') else {
        return;
    };
    let Ok(ty) = std::str::from_utf8(&data[..nl]).unwrap_or("").parse::<FfiType>() else {
        return;
    };
    let rest = &data[nl + 1..];
    if let Some(contents) = rest.strip_prefix(b"@") {
        let path = std::env::temp_dir().join(format!("polyload-fuzz-arg-{}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        let r = polyload_cli::args::parse_arg(&ty, &format!("@{}", path.display()), 1);
        if let (FfiType::Bytes, Ok(v)) = (&ty, &r) {
            assert_eq!(v, &Value::Bytes(contents.to_vec()));
        }
        return;
    }
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match polyload_cli::args::parse_arg(&ty, text, 1) {
        Ok(Value::Str(s)) if matches!(ty, FfiType::Str) && !text.starts_with('@') => {
            assert_eq!(s, text)
        }
        Ok(_) => {}
        Err(e) => assert!(e.to_string().starts_with("argument 1: "), "{e}"),
    }
});
