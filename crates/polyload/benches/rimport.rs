//! rimport: a wrapped crate function against the same function called
//! directly from Rust, in one criterion run, and the cost of a cached
//! `[rimport]` preparation (no cargo, no compiler).
//!
//! * `gcd`: `num_integer::gcd::<i64>` through a typed handle vs direct;
//! * `matches`: `semver::VersionReq::matches` through a typed handle
//!   (two handles looked up in the table under its read lock) vs direct;
//! * `prepare_cached`: `polyload::rimport::prepare` of a spec whose crate
//!   is already generated (hashing the spec and `rustc -vV`).
//!
//! Run: `cargo bench -p polyload --bench rimport` (the first run generates
//! and builds the two crates, about half a minute).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use polyload::{Manifest, Runtime, Value};
use std::path::Path;

fn rimport(c: &mut Criterion) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cache = repo.join("target/rimport-bench");
    let rt = Runtime::builder().cache_dir(&cache).build().unwrap();
    for b in ["numint", "semver"] {
        rt.load_bundle(repo.join("examples/rimport").join(b))
            .unwrap();
    }

    let mut g = c.benchmark_group("rimport_gcd");
    let gcd = rt
        .function::<extern "C" fn(i64, i64) -> i64>("numint.gcd_i64")
        .unwrap();
    g.bench_function("direct", |b| {
        b.iter(|| num_integer::gcd(black_box(1_071i64), black_box(462)))
    });
    g.bench_function("typed_handle", |b| {
        b.iter(|| gcd.call((black_box(1_071), black_box(462))).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("rimport_matches");
    let req_direct = semver::VersionReq::parse(">=1.2, <2").unwrap();
    let v_direct = semver::Version::parse("1.9.0").unwrap();
    let handle = |name: &str, text: &str| match rt.call(name, &[Value::from(text)]).unwrap() {
        Value::U64(h) => h,
        other => panic!("{other:?}"),
    };
    let req = handle("semver.VersionReq_parse", ">=1.2, <2");
    let v = handle("semver.Version_parse", "1.9.0");
    let matches = rt
        .function::<extern "C" fn(u64, u64) -> bool>("semver.VersionReq_matches")
        .unwrap();
    g.bench_function("direct", |b| {
        b.iter(|| black_box(&req_direct).matches(black_box(&v_direct)))
    });
    g.bench_function("typed_handle", |b| {
        b.iter(|| matches.call((black_box(req), black_box(v))).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("rimport_prepare");
    let manifest = Manifest::from_dir(&repo.join("examples/rimport/semver")).unwrap();
    g.bench_function("prepare_cached", |b| {
        b.iter(|| polyload::rimport::prepare(manifest.clone(), &cache, &mut |_| {}).unwrap())
    });
    g.finish();
}

criterion_group!(benches, rimport);
criterion_main!(benches);
