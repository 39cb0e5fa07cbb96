//! `fn(i64, i64) -> i64` in JavaScript: called through polyload vs directly
//! with rquickjs, in one criterion group so the figures compare as ratios.
//!
//! `cargo bench -p polyload-js --bench call`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use polyload::{Runtime, Value};

fn add(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("benchjs");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("manifest.toml"),
        "id = \"benchjs\"\nversion = \"0.1.0\"\nloader = \"js\"\nfile = \"main.js\"\nabi = \"1.0\"\n[exports]\nadd = \"fn(i64, i64) -> i64\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("main.js"),
        "export function add(a, b) { return a + b; }\n",
    )
    .unwrap();
    let rt = Runtime::builder()
        .cache_dir(tmp.path().join("cache"))
        .loader(polyload_js::JsLoader::new())
        .build()
        .unwrap();
    rt.load_bundle(&dir).unwrap();

    // The same function through rquickjs alone: enter the context, call.
    let qrt = rquickjs::Runtime::new().unwrap();
    let qctx = rquickjs::Context::full(&qrt).unwrap();
    let f = qctx.with(|ctx| {
        let f: rquickjs::Function = ctx.eval("(function add(a, b) { return a + b; })").unwrap();
        rquickjs::Persistent::save(&ctx, f)
    });

    let mut g = c.benchmark_group("js_add_i64");
    g.bench_function("direct_rquickjs", |b| {
        b.iter(|| {
            qctx.with(|ctx| {
                let f = f.clone().restore(&ctx).unwrap();
                f.call::<_, i64>((black_box(2i64), black_box(40i64)))
                    .unwrap()
            })
        })
    });
    let args = [Value::I64(2), Value::I64(40)];
    g.bench_function("polyload_dynamic_call", |b| {
        b.iter(|| rt.call(black_box("benchjs.add"), black_box(&args)).unwrap())
    });
    // The typed handle (numbers only) calls the VM function with values.
    let add = rt
        .function::<extern "C" fn(i64, i64) -> i64>("benchjs.add")
        .unwrap();
    g.bench_function("polyload_typed_handle", |b| {
        b.iter(|| add.call((black_box(2), black_box(40))).unwrap())
    });
    g.finish();
    drop(f);
}

criterion_group!(benches, add);
criterion_main!(benches);
