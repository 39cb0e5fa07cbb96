//! `fn(i64, i64) -> i64` in Lua: called through polyload vs directly with
//! mlua, in one criterion group so the figures compare as ratios; and the
//! same calls spread over two threads on two bundles (per-state locks: two
//! threads should take about half the time of one).
//!
//! `cargo bench -p polyload-lua --bench call`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use polyload::{Runtime, Value};

const ADD: &str = "return { add = function(a, b) return a + b end }";

fn add(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("benchlua");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("manifest.toml"),
        "id = \"benchlua\"\nversion = \"0.1.0\"\nloader = \"lua\"\nfile = \"main.lua\"\nabi = \"1.0\"\n[exports]\nadd = \"fn(i64, i64) -> i64\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("main.lua"), ADD).unwrap();
    let rt = Runtime::builder()
        .cache_dir(tmp.path().join("cache"))
        .loader(polyload_lua::LuaLoader::new())
        .build()
        .unwrap();
    rt.load_bundle(&dir).unwrap();

    // The same function in a plain mlua state (same features: luajit).
    let lua = mlua::Lua::new();
    let table: mlua::Table = lua.load(ADD).eval().unwrap();
    let f: mlua::Function = table.get("add").unwrap();

    let mut g = c.benchmark_group("lua_add_i64");
    g.bench_function("direct_mlua", |b| {
        b.iter(|| f.call::<i64>((black_box(2i64), black_box(40i64))).unwrap())
    });
    let args = [Value::I64(2), Value::I64(40)];
    g.bench_function("polyload_dynamic_call", |b| {
        b.iter(|| {
            rt.call(black_box("benchlua.add"), black_box(&args))
                .unwrap()
        })
    });
    // The typed handle (numbers only) calls the VM function with values.
    let add = rt
        .function::<extern "C" fn(i64, i64) -> i64>("benchlua.add")
        .unwrap();
    g.bench_function("polyload_typed_handle", |b| {
        b.iter(|| add.call((black_box(2), black_box(40))).unwrap())
    });
    g.finish();

    // Two bundles, so two states with a lock each.
    let dir2 = tmp.path().join("benchlua2");
    std::fs::create_dir_all(&dir2).unwrap();
    std::fs::write(
        dir2.join("manifest.toml"),
        "id = \"benchlua2\"\nversion = \"0.1.0\"\nloader = \"lua\"\nfile = \"main.lua\"\nabi = \"1.0\"\n[exports]\nadd = \"fn(i64, i64) -> i64\"\n",
    )
    .unwrap();
    std::fs::write(dir2.join("main.lua"), ADD).unwrap();
    rt.load_bundle(&dir2).unwrap();
    let add2 = rt
        .function::<extern "C" fn(i64, i64) -> i64>("benchlua2.add")
        .unwrap();
    let mut g = c.benchmark_group("lua_threads");
    g.bench_function("one_thread_n_calls", |b| {
        b.iter(|| add.call((black_box(2), black_box(40))).unwrap())
    });
    g.bench_function("two_threads_n_calls", |b| {
        b.iter_custom(|iters| {
            let start = std::time::Instant::now();
            std::thread::scope(|s| {
                for f in [&add, &add2] {
                    s.spawn(move || {
                        for _ in 0..iters / 2 {
                            black_box(f.call((black_box(2), black_box(40))).unwrap());
                        }
                    });
                }
            });
            start.elapsed()
        })
    });
    g.finish();
}

criterion_group!(benches, add);
criterion_main!(benches);
