//! The parser on good and bad manifests (the fuzzer covers arbitrary text).

use super::*;

const GOOD: &str = r#"
id = "hello"
version = "0.1.0"
loader = "native"
file = "libhello.so"
abi = "1.0"
provides = ["greeter@1.2"]

[exports]
add = "fn(i64, i64) -> i64"
greet = "fn(str) -> str"

[[dependency]]
id = "base"
version = "^0.1"

[build]
cc = ["src/hello.c"]
libs = ["z"]
"#;

fn parse(t: &str) -> Result<Manifest> {
    Manifest::parse(t, Path::new("b/manifest.toml"))
}

fn err(t: &str) -> (usize, String, String) {
    match parse(t) {
        Err(Error::Manifest {
            line,
            field,
            message,
            ..
        }) => (line, field, message),
        other => panic!("expected a manifest error, got {other:?}"),
    }
}

#[test]
fn parses_everything() {
    let m = parse(GOOD).unwrap();
    assert_eq!(m.id, "hello");
    assert_eq!(m.abi, AbiVersion::new(1, 0));
    assert_eq!(m.exports.len(), 2);
    assert_eq!(
        m.export("add").unwrap().signature.to_string(),
        "fn(i64, i64) -> i64"
    );
    assert_eq!(m.export("add").unwrap().line, 10);
    assert_eq!(m.provides[0].version, AbiVersion::new(1, 2));
    assert_eq!(m.dependencies[0].id, "base");
    assert!(matches!(m.build, Some(BuildSpec::Cc { ref libs, .. }) if libs == &["z"]));
    assert_eq!(m.dir(), Path::new("b"));
}

#[test]
fn errors_name_line_and_field() {
    let (line, field, msg) = err(&GOOD.replace("abi = \"1.0\"", "abi = \"1.0\"\ncolour = \"red\""));
    assert_eq!((line, field.as_str()), (7, "colour"), "{msg}");
    assert!(msg.contains("unknown field"), "{msg}");

    let (line, field, _) =
        err(&GOOD.replace("greet = \"fn(str) -> str\"", "greet = \"fn(str) -> strr\""));
    assert_eq!((line, field.as_str()), (11, "exports.greet"));

    let (line, field, _) = err(&GOOD.replace("abi = \"1.0\"", "abi = \"one\""));
    assert_eq!((line, field.as_str()), (6, "abi"));

    let (_, field, msg) = err(&GOOD.replace("id = \"hello\"\n", ""));
    assert_eq!(field, "id", "{msg}");
    assert!(msg.contains("missing field"), "{msg}");

    let (line, field, _) = err(&GOOD.replace("libs = [\"z\"]", "libs = [\"z\"]\nbogus = 1"));
    assert_eq!((line, field.as_str()), (20, "build.bogus"));

    let (line, _, msg) = err("id = \"x\"\nversion = [\n");
    assert_eq!(line, 3, "{msg}");

    let (_, field, msg) = err(&GOOD.replace("version = \"0.1.0\"", "version = 3"));
    assert_eq!(field, "version", "{msg}");
}

#[test]
fn file_must_stay_inside() {
    for bad in ["../x.so", "/etc/x.so", "a/../../x.so"] {
        let (line, field, msg) = err(&GOOD.replace("libhello.so", bad));
        assert_eq!((line, field.as_str()), (5, "file"), "{msg}");
        assert!(msg.contains("inside the bundle directory"));
    }
    assert!(parse(&GOOD.replace("libhello.so", "lib/x.so")).is_ok());
}

#[test]
fn per_platform_file() {
    let t = GOOD.replace(
        "file = \"libhello.so\"",
        &format!(
            "file = {{ {} = \"a.so\", other-os = \"b\" }}",
            platform_key()
        ),
    );
    assert_eq!(parse(&t).unwrap().file, PathBuf::from("a.so"));
    let t = GOOD.replace("file = \"libhello.so\"", "file = { other-os = \"b\" }");
    assert!(err(&t).2.contains("no entry for this platform"));
}
