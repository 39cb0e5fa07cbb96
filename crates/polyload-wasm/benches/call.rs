//! WebAssembly calls and loads, each beside its baseline in the same run:
//!
//! - `wasm_add_i64`: `fn(i64, i64) -> i64` through a typed polyload handle
//!   and `Runtime::call`, against wasmtime's own `TypedFunc::call` on the
//!   same module (an engine configured as wasmtime's defaults, and one
//!   configured as polyload's: epoch interruption on);
//! - `extism_count_vowels_4k`: an unmodified Extism plugin
//!   (`tests/guests/plugin.wat`) counting the vowels of 4 KiB of text,
//!   through polyload and through the `extism` crate;
//! - `wasm_load_1536kb`: loading a bundle whose module is about 1.5 MB,
//!   compiled cold and taken from the compiled-module cache (1800 functions, 1.54 MB).
//!
//! `cargo bench -p polyload-wasm --bench call`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use polyload::{Runtime, Value};
use polyload_wasm::WasmLoader;
use std::path::Path;
use std::time::{Duration, Instant};

const ADD: &str = r#"(module
  (func (export "add") (param i64 i64) (result i64)
    (i64.add (local.get 0) (local.get 1))))"#;

const PLUGIN: &str = include_str!("../tests/guests/plugin.wat");

#[path = "../tests/guests/extism_host.rs"]
mod extism_host;

fn bundle(dir: &Path, id: &str, module: &[u8], exports: &str, wasm: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("module.wasm"), module).unwrap();
    std::fs::write(
        dir.join("manifest.toml"),
        format!(
            "id = \"{id}\"\nversion = \"0.1.0\"\nloader = \"wasm\"\nfile = \"module.wasm\"\nabi = \"1.0\"\n\
             [exports]\n{exports}\n[wasm]\n{wasm}\n"
        ),
    )
    .unwrap();
}

fn runtime(cache: &Path) -> Runtime {
    Runtime::builder()
        .cache_dir(cache)
        .loader(WasmLoader::new())
        .loader(polyload_lua::LuaLoader::new())
        .build()
        .unwrap()
}

/// The plugin imports a host function (which `count_vowels` does not
/// call): bound, under polyload, to a Lua definition.
fn double_bundle(root: &Path) -> std::path::PathBuf {
    let dir = root.join("strs");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("manifest.toml"),
        "id = \"strs\"\nversion = \"0.1.0\"\nloader = \"lua\"\nfile = \"strs.lua\"\nabi = \"1.0\"\n\
         [exports]\ndouble = \"fn(str) -> str\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("strs.lua"),
        "return { double = function(s) return s .. s end }\n",
    )
    .unwrap();
    dir
}

fn add(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let module = wat::parse_str(ADD).unwrap();
    let dir = tmp.path().join("wadd");
    bundle(&dir, "wadd", &module, "add = \"fn(i64, i64) -> i64\"", "");
    let rt = runtime(&tmp.path().join("cache"));
    rt.load_bundle(&dir).unwrap();

    let mut g = c.benchmark_group("wasm_add_i64");
    for (name, epochs) in [
        ("wasmtime_typed_func", false),
        ("wasmtime_typed_func_epochs", true),
    ] {
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(epochs);
        let engine = wasmtime::Engine::new(&config).unwrap();
        let m = wasmtime::Module::new(&engine, &module).unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        if epochs {
            store.set_epoch_deadline(u64::MAX / 2);
        }
        let instance = wasmtime::Instance::new(&mut store, &m, &[]).unwrap();
        let f = instance
            .get_typed_func::<(i64, i64), i64>(&mut store, "add")
            .unwrap();
        g.bench_function(name, |b| {
            b.iter(|| f.call(&mut store, (black_box(2), black_box(40))).unwrap())
        });
    }
    let typed = rt
        .function::<extern "C" fn(i64, i64) -> i64>("wadd.add")
        .unwrap();
    g.bench_function("polyload_typed_handle", |b| {
        b.iter(|| typed.call((black_box(2), black_box(40))).unwrap())
    });
    let args = [Value::I64(2), Value::I64(40)];
    g.bench_function("polyload_dynamic_call", |b| {
        b.iter(|| rt.call(black_box("wadd.add"), black_box(&args)).unwrap())
    });
    g.finish();
}

fn extism_call(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let module = wat::parse_str(PLUGIN).unwrap();
    let dir = tmp.path().join("plug");
    // The same limits for both hosts: 64 pages of memory, a 10 s timeout.
    bundle(
        &dir,
        "plug",
        &module,
        "count_vowels = \"fn(str) -> str\"",
        "abi = \"extism\"\nmax_memory = \"64 pages\"\ntimeout_ms = 10000\n\
         [wasm.imports]\n\"extism:host/user.double_it\" = \"strs.double\"",
    );
    let rt = runtime(&tmp.path().join("cache"));
    rt.load_bundle(double_bundle(tmp.path())).unwrap();
    rt.load_bundle(&dir).unwrap();
    let manifest = extism::Manifest::new([extism::Wasm::data(module)])
        .with_memory_max(64)
        .with_timeout(Duration::from_secs(10));
    let double = extism_host::double_it();
    let mut plugin = extism::Plugin::new(&manifest, [double], false).unwrap();

    let text = "The quick brown fox jumps over the lazy dog. ".repeat(92)[..4096].to_string();
    let expected = plugin.call::<&str, String>("count_vowels", &text).unwrap();
    let args = [Value::Str(text.clone())];
    assert_eq!(
        rt.call("plug.count_vowels", &args).unwrap(),
        Value::Str(expected),
        "both hosts agree before they are timed"
    );

    let mut g = c.benchmark_group("extism_count_vowels_4k");
    g.bench_function("extism_crate", |b| {
        b.iter(|| {
            let out: &str = plugin
                .call("count_vowels", black_box(text.as_str()))
                .unwrap();
            black_box(out.len())
        })
    });
    g.bench_function("polyload", |b| {
        b.iter(|| {
            rt.call(black_box("plug.count_vowels"), black_box(&args))
                .unwrap()
        })
    });
    g.finish();
}

/// A module of about 1.5 MB: many functions with real bodies, as a
/// compiled language emits them.
fn big_module() -> Vec<u8> {
    let mut wat = String::from("(module\n  (memory (export \"memory\") 1)\n");
    for i in 0..1800 {
        wat.push_str(&format!(
            "  (func $f{i} (export \"f{i}\") (param i64 i64) (result i64) (local i64)\n"
        ));
        for k in 0..24 {
            wat.push_str(&format!(
                "    (local.set 2 (i64.add (i64.mul (local.get 0) (i64.const {})) (i64.xor (local.get 1) (i64.const {}))))\n\
                 \x20   (i64.store (i32.const {}) (local.get 2))\n\
                 \x20   (local.set 0 (i64.rotl (i64.load (i32.const {})) (local.get 2)))\n",
                i * 31 + k + 1,
                i * 7 + k * 13,
                (k * 8) % 4096,
                (k * 8) % 4096,
            ));
        }
        wat.push_str("    (local.get 0))\n");
    }
    wat.push_str(")\n");
    wat::parse_str(&wat).unwrap()
}

fn load(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let module = big_module();
    assert!(
        (1_000_000..2_000_000).contains(&module.len()),
        "{} bytes",
        module.len()
    );
    let dir = tmp.path().join("big");
    bundle(&dir, "big", &module, "f0 = \"fn(i64, i64) -> i64\"", "");
    let warm = tmp.path().join("warm-cache");
    runtime(&warm).load_bundle(&dir).unwrap();

    let mut g = c.benchmark_group(format!("wasm_load_{}kb", module.len() / 1000));
    g.sample_size(10);
    g.bench_function("cold_compile", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for n in 0..iters {
                let cache = tmp.path().join(format!("cold-{n}"));
                let rt = runtime(&cache);
                let start = Instant::now();
                rt.load_bundle(&dir).unwrap();
                total += start.elapsed();
                drop(rt);
                std::fs::remove_dir_all(&cache).unwrap();
            }
            total
        })
    });
    g.bench_function("from_cache", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let rt = runtime(&warm);
                let start = Instant::now();
                rt.load_bundle(&dir).unwrap();
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, add, extism_call, load);
criterion_main!(benches);
