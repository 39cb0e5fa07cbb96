//! Compiles the CLI's `ffi_cmd.rs` as the CLI will (it is owned by this
//! crate's engineer but lives in polyload-cli) and runs it.

#[path = "../../polyload-cli/src/ffi_cmd.rs"]
mod ffi_cmd;

use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cmd: ffi_cmd::FfiCmd,
}

fn run(args: &[&str]) -> anyhow::Result<String> {
    let cli = Cli::try_parse_from(std::iter::once("polyload-ffi").chain(args.iter().copied()))?;
    cli.cmd.run(cli.json)
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
    assert!(e.to_string().contains("argument 1"), "{e}");
}
