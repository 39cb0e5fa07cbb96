//! Without Mono, a `dotnet` bundle fails to load with an error naming the
//! Debian packages to install, and the runtime keeps working. (Its own
//! process: Mono is found, or not, once per process.)

use polyload_dotnet::DotnetLoader;
use polyload_outside::Scratch;

#[test]
fn a_machine_without_mono_gets_an_error_naming_the_packages() {
    // As if Mono were not installed: the library named does not exist.
    std::env::set_var("POLYLOAD_MONO", "/nonexistent/libmonosgen-2.0.so.1");
    let s = Scratch::new();
    let rt = s.builder().loader(DotnetLoader::new()).build().unwrap();
    let csjson = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/bundles/csjson");
    let e = rt.load_bundle(csjson).unwrap_err().to_string();
    assert!(e.contains("Mono is not installed"), "{e}");
    assert!(e.contains("/nonexistent/libmonosgen-2.0.so.1"), "{e}");
    assert!(
        e.contains("`mono-runtime`") && e.contains("`mono-mcs`"),
        "{e}"
    );
    // Native bundles still load.
    let hello = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/bundles/hello");
    rt.load_bundle(hello).unwrap();
    assert_eq!(
        rt.call(
            "hello.add",
            &[polyload::Value::I64(2), polyload::Value::I64(3)]
        )
        .unwrap(),
        polyload::Value::I64(5)
    );
}
