//! The compiled-module cache, alone in its process so the count of
//! compilations is exact.

use polyload::{Runtime, Value};
use polyload_outside::Scratch;
use polyload_wasm::WasmLoader;

fn runtime(s: &Scratch) -> Runtime {
    s.builder().loader(WasmLoader::new()).build().unwrap()
}

#[test]
fn a_second_load_of_an_unchanged_module_does_not_compile() {
    let s = Scratch::new();
    let dir = s.bundles().join("sq");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("manifest.toml"),
        "id = \"sq\"\nversion = \"0.1.0\"\nloader = \"wasm\"\nfile = \"sq.wat\"\nabi = \"1.0\"\n[exports]\nsq = \"fn(i64) -> i64\"\n",
    )
    .unwrap();
    let module = |k: i64| {
        format!("(module (func (export \"sq\") (param i64) (result i64) (i64.add (i64.mul (local.get 0) (local.get 0)) (i64.const {k}))))")
    };
    std::fs::write(dir.join("sq.wat"), module(0)).unwrap();
    assert_eq!(polyload_wasm::compiled_modules(), 0);

    let rt = runtime(&s);
    rt.load_bundle(&dir).unwrap();
    assert_eq!(polyload_wasm::compiled_modules(), 1);
    let cached: Vec<_> = std::fs::read_dir(s.dir.path().join("cache/sq/wasm"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(cached[0].extension().is_some_and(|e| e == "cwasm"));
    drop(rt);

    // A new runtime (as after a restart) takes the compiled module.
    let rt = runtime(&s);
    rt.load_bundle(&dir).unwrap();
    assert_eq!(polyload_wasm::compiled_modules(), 1, "taken from the cache");
    assert_eq!(rt.call("sq.sq", &[Value::I64(7)]).unwrap(), Value::I64(49));
    // A reload of the unchanged module does not compile either.
    rt.reload("sq").unwrap();
    assert_eq!(polyload_wasm::compiled_modules(), 1);

    // A changed module compiles once, and has its own entry.
    std::fs::write(dir.join("sq.wat"), module(1)).unwrap();
    rt.reload("sq").unwrap();
    assert_eq!(polyload_wasm::compiled_modules(), 2);
    assert_eq!(rt.call("sq.sq", &[Value::I64(7)]).unwrap(), Value::I64(50));
    assert_eq!(
        std::fs::read_dir(s.dir.path().join("cache/sq/wasm"))
            .unwrap()
            .count(),
        2
    );

    // A corrupt cache entry is ignored and replaced.
    for e in std::fs::read_dir(s.dir.path().join("cache/sq/wasm")).unwrap() {
        std::fs::write(e.unwrap().path(), b"garbage").unwrap();
    }
    let rt = runtime(&s);
    rt.load_bundle(&dir).unwrap();
    assert_eq!(polyload_wasm::compiled_modules(), 3);
    assert_eq!(rt.call("sq.sq", &[Value::I64(2)]).unwrap(), Value::I64(5));
}
