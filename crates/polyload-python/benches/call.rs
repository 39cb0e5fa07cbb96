//! `fn(i64, i64) -> i64` in Python: called through polyload vs directly with
//! pyo3, in one criterion group so the figures compare as ratios.
//!
//! `cargo bench -p polyload-python --bench call`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use polyload::{Runtime, Value};
use pyo3::prelude::*;
use pyo3::types::PyModule;

fn add(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("benchpy");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("manifest.toml"),
        "id = \"benchpy\"\nversion = \"0.1.0\"\nloader = \"python\"\nfile = \"main.py\"\nabi = \"1.0\"\n[exports]\nadd = \"fn(i64, i64) -> i64\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("main.py"), "def add(a, b):\n    return a + b\n").unwrap();
    let rt = Runtime::builder()
        .cache_dir(tmp.path().join("cache"))
        .loader(polyload_python::PythonLoader::new())
        .build()
        .unwrap();
    rt.load_bundle(&dir).unwrap();

    // The same function through pyo3 alone. Both sides attach to the
    // interpreter per call (a host thread calling into Python must).
    let f: Py<PyAny> = Python::attach(|py| {
        let m = PyModule::from_code(
            py,
            c"def add(a, b):\n    return a + b\n",
            c"direct.py",
            c"direct",
        )
        .unwrap();
        m.getattr("add").unwrap().unbind()
    });

    let mut g = c.benchmark_group("python_add_i64");
    g.bench_function("direct_pyo3", |b| {
        b.iter(|| {
            Python::attach(|py| {
                f.bind(py)
                    .call1((black_box(2i64), black_box(40i64)))
                    .unwrap()
                    .extract::<i64>()
                    .unwrap()
            })
        })
    });
    let args = [Value::I64(2), Value::I64(40)];
    g.bench_function("polyload_dynamic_call", |b| {
        b.iter(|| rt.call(black_box("benchpy.add"), black_box(&args)).unwrap())
    });
    // The typed handle (numbers only) calls the VM function with values.
    let add = rt
        .function::<extern "C" fn(i64, i64) -> i64>("benchpy.add")
        .unwrap();
    g.bench_function("polyload_typed_handle", |b| {
        b.iter(|| add.call((black_box(2), black_box(40))).unwrap())
    });
    g.finish();
}

criterion_group!(benches, add);
criterion_main!(benches);
