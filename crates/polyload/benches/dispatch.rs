//! Call dispatch cost, in one criterion group so the figures are ratios:
//! a raw `extern "C"` function pointer (from dlsym), the typed handle, the
//! typed handle inside a scope (`Runtime::enter` + `Function::call_in`), a
//! dynamic handle (`Runtime::dynamic`, `&[Value]`) and the dynamic
//! `Runtime::call` by name, all reaching the same `add(i64, i64)` in a real
//! bundle.
//!
//! Run: `cargo bench -p polyload --bench dispatch`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use polyload::{Runtime, Value};

/// The bundle, `benches/benchadd`.
const BUNDLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/benchadd");

fn dispatch(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let bundle = std::path::Path::new(BUNDLE);
    let rt = Runtime::builder()
        .cache_dir(dir.path().join("cache"))
        .build()
        .unwrap();
    rt.load_dir(bundle).unwrap();
    let artifact = rt
        .build(&polyload::Manifest::from_dir(bundle).unwrap())
        .unwrap()
        .path;

    // The baseline: the same function in the same file, straight from dlsym.
    // SAFETY: our own library; `bench_add` is int64_t(int64_t, int64_t).
    let lib = unsafe { libloading::Library::new(&artifact) }.unwrap();
    // SAFETY: as above.
    let raw: extern "C" fn(i64, i64) -> i64 = *unsafe { lib.get(b"bench_add") }.unwrap();
    let typed = rt
        .function::<extern "C" fn(i64, i64) -> i64>("benchadd.add")
        .unwrap();
    let args = [Value::I64(2), Value::I64(3)];

    let mut g = c.benchmark_group("dispatch");
    g.bench_function("raw_fn_pointer", |b| {
        let f = black_box(raw);
        b.iter(|| f(black_box(2), black_box(3)))
    });
    g.bench_function("typed_handle", |b| {
        b.iter(|| typed.call((black_box(2), black_box(3))).unwrap())
    });
    g.bench_function("typed_handle_scoped", |b| {
        rt.enter(|scope| b.iter(|| typed.call_in(scope, (black_box(2), black_box(3))).unwrap()))
    });
    let dynamic = rt.dynamic("benchadd.add").unwrap();
    g.bench_function("dynamic_handle", |b| {
        b.iter(|| dynamic.call(black_box(&args)).unwrap())
    });
    g.bench_function("dynamic_call", |b| {
        b.iter(|| {
            rt.call(black_box("benchadd.add"), black_box(&args))
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
