//! `fn(i64, i64) -> i64` called N times through one path, for counting
//! instructions per call with callgrind (`scripts/wasm-icount.sh`):
//! `add_loop PATH N`, PATH one of `typed`, `dynamic` (polyload's typed
//! handle and `Runtime::call`), `wasmtime` (`TypedFunc::call`),
//! `wasmtime-unchecked` (`Func::call_unchecked` on raw values, as a loader
//! that knows the signature only at run time calls it) and
//! `wasmtime-mutex` (`TypedFunc::call` with the store behind a
//! `std::sync::Mutex`, as an instance shared by threads must be).

use polyload::{Runtime, Value};
use std::hint::black_box;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "typed".into());
    let n: u64 = args
        .next()
        .map_or(1000, |s| s.parse().expect("N is a number"));
    let wat = r#"(module (func (export "add") (param i64 i64) (result i64)
        (i64.add (local.get 0) (local.get 1))))"#;
    if path.starts_with("wasmtime") {
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let engine = wasmtime::Engine::new(&config).unwrap();
        let module = wasmtime::Module::new(&engine, wat).unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let f = instance
            .get_typed_func::<(i64, i64), i64>(&mut store, "add")
            .unwrap();
        match path.as_str() {
            "wasmtime" => {
                for i in 0..n {
                    black_box(f.call(&mut store, (black_box(i as i64), 40)).unwrap());
                }
            }
            "wasmtime-unchecked" => {
                let func = instance.get_func(&mut store, "add").unwrap();
                for i in 0..n {
                    let mut raw = [
                        wasmtime::ValRaw::i64(black_box(i as i64)),
                        wasmtime::ValRaw::i64(40),
                    ];
                    // SAFETY: `add` takes two i64s and returns one i64;
                    // `raw` holds both, with room for the result.
                    unsafe { func.call_unchecked(&mut store, &mut raw as *mut [_]) }.unwrap();
                    black_box(raw[0].get_i64());
                }
            }
            "wasmtime-mutex" => {
                let m = std::sync::Mutex::new(store);
                for i in 0..n {
                    let mut s = m.lock().unwrap();
                    black_box(f.call(&mut *s, (black_box(i as i64), 40)).unwrap());
                }
            }
            other => panic!("unknown path {other}"),
        }
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wadd");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("add.wat"), wat).unwrap();
    std::fs::write(
        dir.join("manifest.toml"),
        "id = \"wadd\"\nversion = \"0.1.0\"\nloader = \"wasm\"\nfile = \"add.wat\"\nabi = \"1.0\"\n[exports]\nadd = \"fn(i64, i64) -> i64\"\n",
    )
    .unwrap();
    let rt = Runtime::builder()
        .cache_dir(tmp.path().join("cache"))
        .loader(polyload_wasm::WasmLoader::new())
        .build()
        .unwrap();
    rt.load_bundle(&dir).unwrap();
    match path.as_str() {
        "typed" => {
            let f = rt
                .function::<extern "C" fn(i64, i64) -> i64>("wadd.add")
                .unwrap();
            for i in 0..n {
                black_box(f.call((black_box(i as i64), 40)).unwrap());
            }
        }
        "dynamic" => {
            for i in 0..n {
                let args = [Value::I64(black_box(i as i64)), Value::I64(40)];
                black_box(rt.call("wadd.add", &args).unwrap());
            }
        }
        other => panic!(
            "unknown path {other} (typed, dynamic, wasmtime, wasmtime-unchecked, wasmtime-mutex)"
        ),
    }
}
