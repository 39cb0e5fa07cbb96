//! `polyload ffi`'s library side: C functions of libc and libm called by
//! signatures given as text.

/// Runs `polyload ffi [--json] LIBRARY SYMBOL SIGNATURE ARGS...` as the
/// binary does, without a process.
fn run(args: &[&str]) -> Result<String, polyload_ffi::FfiError> {
    let (json, args) = match args.first() {
        Some(&"--json") => (true, &args[1..]),
        _ => (false, args),
    };
    let rest: Vec<String> = args[3..].iter().map(|s| s.to_string()).collect();
    // SAFETY: libc and libm functions called with their real signatures.
    let v = unsafe { polyload_cli::ffi::call_from_text(args[0], args[1], args[2], &rest) }?;
    Ok(polyload_cli::ffi::render(&v, json))
}

#[test]
fn pow_strlen_and_json() {
    assert_eq!(
        run(&["libm.so.6", "pow", "fn(f64, f64) -> f64", "2", "10"]).unwrap(),
        "1024"
    );
    assert_eq!(
        run(&["libc.so.6", "strlen", "fn(cstr) -> u64", "hello"]).unwrap(),
        "5"
    );
    assert_eq!(
        run(&["libc.so.6", "abs", "fn(i32) -> i32", "-7"]).unwrap(),
        "7"
    );
    assert_eq!(
        run(&[
            "--json",
            "libm.so.6",
            "pow",
            "fn(f64, f64) -> f64",
            "2",
            "10"
        ])
        .unwrap(),
        r#"{"result":1024.0}"#
    );
}

#[test]
fn variadic_arguments_are_inferred() {
    // snprintf with a null buffer and size 0 returns the would-be length.
    let out = run(&[
        "libc.so.6",
        "snprintf",
        "fn(ptr, u64, cstr, ...) -> i32",
        "null",
        "0",
        "%d|%s|%.2f|%ld",
        "42",
        "hey",
        "2.5",
        "i64:-9000000000",
    ])
    .unwrap();
    assert_eq!(out, "42|hey|2.50|-9000000000".len().to_string());
}

#[test]
fn errors_are_clear() {
    let e = run(&["libm.so.6", "pow", "fn(f64, f64 -> f64", "2", "10"]).unwrap_err();
    assert!(e.to_string().contains("column"), "{e}");
    let e = run(&["libnope.so.9", "pow", "fn(f64) -> f64", "2"]).unwrap_err();
    assert!(e.to_string().contains("libnope.so.9"), "{e}");
    let e = run(&["libm.so.6", "nope_fn", "fn(f64) -> f64", "2"]).unwrap_err();
    assert!(
        e.to_string().contains("nope_fn") && e.to_string().contains("libm.so.6"),
        "{e}"
    );
    let e = run(&["libm.so.6", "pow", "fn(f64, f64) -> f64", "2"]).unwrap_err();
    assert!(
        e.to_string().contains("expected 2 argument(s), got 1"),
        "{e}"
    );
    let e = run(&["libm.so.6", "pow", "fn(f64, f64) -> f64", "2", "x"]).unwrap_err();
    assert!(
        e.to_string().starts_with("argument 2: "),
        "numbered from 1: {e}"
    );
}

/// Replays the `args` fuzz target's regression inputs (`fuzz/regressions/args`)
/// with the properties it checks: the first line is a type, the rest the
/// argument (`@` + bytes: a file holding them).
#[test]
fn fuzz_regressions_of_argument_parsing() {
    use polyload_ffi::{FfiType, Value};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/args");
    let tmp = tempfile::tempdir().unwrap();
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        let Some(nl) = data.iter().position(|b| *b == b'\n') else {
            continue;
        };
        let Ok(ty) = std::str::from_utf8(&data[..nl])
            .unwrap_or("")
            .parse::<FfiType>()
        else {
            continue;
        };
        let rest = &data[nl + 1..];
        n += 1;
        if let Some(contents) = rest.strip_prefix(b"@") {
            let path = tmp.path().join("arg");
            std::fs::write(&path, contents).unwrap();
            let r = polyload_cli::args::parse_arg(&ty, &format!("@{}", path.display()), 1);
            if let (FfiType::Bytes, Ok(v)) = (&ty, &r) {
                assert_eq!(v, &Value::Bytes(contents.to_vec()));
            }
            continue;
        }
        let Ok(text) = std::str::from_utf8(rest) else {
            continue;
        };
        if let Err(e) = polyload_cli::args::parse_arg(&ty, text, 1) {
            assert!(e.to_string().starts_with("argument 1: "), "{e}");
        }
    }
    assert!(n > 0, "no regression inputs in {}", dir.display());
}
