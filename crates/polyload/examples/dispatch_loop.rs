//! Calls `add(i64, i64)` in a real bundle N times by one dispatch path, for
//! counting instructions per call with callgrind (`scripts/dispatch-icount.sh`),
//! a figure that does not move with code layout or machine noise.
//!
//! `cargo run --release -p polyload --example dispatch_loop -- PATH N`, with
//! PATH one of `raw`, `typed`, `scoped`, `dynamic`, `call`.

use polyload::{Runtime, Value};
use std::hint::black_box;

/// The bundle, `benches/benchadd`.
const BUNDLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/benchadd");

fn main() -> polyload::Result<()> {
    let mut argv = std::env::args().skip(1);
    let path = argv.next().unwrap_or_else(|| "typed".into());
    let n: u64 = argv.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let dir = tempfile::tempdir().expect("temporary directory");
    let bundle = std::path::Path::new(BUNDLE);
    let rt = Runtime::builder()
        .cache_dir(dir.path().join("cache"))
        .build()?;
    rt.load_dir(bundle)?;
    let artifact = rt.build(&polyload::Manifest::from_dir(bundle)?)?.path;
    // SAFETY: our own library; `bench_add` is int64_t(int64_t, int64_t).
    let lib = unsafe { libloading::Library::new(&artifact) }.expect("dlopen");
    // SAFETY: as above.
    let raw: extern "C" fn(i64, i64) -> i64 = *unsafe { lib.get(b"bench_add") }.expect("dlsym");
    let typed = rt.function::<extern "C" fn(i64, i64) -> i64>("benchadd.add")?;
    let dynamic = rt.dynamic("benchadd.add")?;
    let args = [Value::I64(2), Value::I64(3)];
    let mut sum = 0i64;
    match path.as_str() {
        "raw" => {
            let f = black_box(raw);
            for i in 0..n as i64 {
                sum += f(black_box(i), 3);
            }
        }
        "typed" => {
            for i in 0..n as i64 {
                sum += typed.call((black_box(i), 3))?;
            }
        }
        "scoped" => rt.enter(|s| -> polyload::Result<()> {
            for i in 0..n as i64 {
                sum += typed.call_in(s, (black_box(i), 3))?;
            }
            Ok(())
        })?,
        "dynamic" => {
            for _ in 0..n {
                black_box(dynamic.call(black_box(&args))?);
            }
        }
        "call" => {
            for _ in 0..n {
                black_box(rt.call(black_box("benchadd.add"), black_box(&args))?);
            }
        }
        other => panic!("unknown path {other}: raw, typed, scoped, dynamic, call"),
    }
    black_box(sum);
    if std::env::var_os("DISPATCH_TIME").is_some() {
        // Wall-clock per call over `n` calls of each path (a quick look;
        // the criterion benchmark is the reported figure).
        let time = |label: &str, f: &mut dyn FnMut()| {
            let t = std::time::Instant::now();
            f();
            eprintln!(
                "{label}: {:.2} ns/call",
                t.elapsed().as_nanos() as f64 / n as f64
            );
        };
        time("raw", &mut || {
            let f = black_box(raw);
            for i in 0..n as i64 {
                black_box(f(black_box(i), 3));
            }
        });
        time("typed", &mut || {
            for i in 0..n as i64 {
                black_box(typed.call((black_box(i), 3)).unwrap());
            }
        });
        time("scoped", &mut || {
            rt.enter(|s| {
                for i in 0..n as i64 {
                    black_box(typed.call_in(s, (black_box(i), 3)).unwrap());
                }
            })
        });
    }
    Ok(())
}
