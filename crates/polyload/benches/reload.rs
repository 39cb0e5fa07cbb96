//! Hot reload latency: from "new artifact on disk" to "first call runs the
//! new code", against a raw `dlopen` + `dlsym` + call + `dlclose` of the same
//! file in the same run.
//!
//! Run: `cargo bench -p polyload --bench reload`

use criterion::{criterion_group, criterion_main, Criterion};
use polyload::Runtime;
use std::path::Path;
use std::process::Command;

fn cc(dir: &Path, name: &str, k: i64) -> Vec<u8> {
    let src = dir.join(format!("{name}.c"));
    std::fs::write(
        &src,
        format!(
            "#include <polyload.h>\nint64_t get(void) {{ return {k}; }}\nuint32_t polyload_abi_version(void) {{ return POLYLOAD_ABI_VERSION_PACKED; }}\nint32_t polyload_bundle_init(const PolyloadHost *h, PolyloadBundle *b) {{ POLYLOAD_DEFINE(h, b, \"get\", \"fn() -> i64\", get); return 0; }}\n"
        ),
    )
    .unwrap();
    let out = dir.join(format!("{name}.so"));
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("../polyload-abi/include");
    assert!(Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .arg("-I")
        .arg(include)
        .status()
        .unwrap()
        .success());
    std::fs::read(out).unwrap()
}

fn reload(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("flip");
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::write(
        bundle.join("manifest.toml"),
        "id = \"flip\"\nversion = \"0.1.0\"\nloader = \"native\"\nfile = \"libflip.so\"\nabi = \"1.0\"\n[exports]\nget = \"fn() -> i64\"\n",
    )
    .unwrap();
    let versions = [cc(tmp.path(), "a", 1), cc(tmp.path(), "b", 2)];
    let artifact = bundle.join("libflip.so");
    std::fs::write(&artifact, &versions[0]).unwrap();
    let rt = Runtime::builder()
        .cache_dir(tmp.path().join("cache"))
        .build()
        .unwrap();
    rt.load_dir(&bundle).unwrap();
    let get = rt.function::<extern "C" fn() -> i64>("flip.get").unwrap();

    let mut g = c.benchmark_group("reload");
    g.sample_size(50);
    let mut n = 0usize;
    g.bench_function("raw_dlopen_dlsym", |b| {
        b.iter(|| {
            n += 1;
            let path = tmp.path().join("raw.so");
            std::fs::write(&path, &versions[n % 2]).unwrap();
            // SAFETY: our own library with `int64_t get(void)`.
            let lib = unsafe { libloading::Library::new(&path) }.unwrap();
            // SAFETY: as above.
            let f: extern "C" fn() -> i64 = *unsafe { lib.get(b"get") }.unwrap();
            assert_eq!(f(), (n % 2) as i64 + 1);
            lib.close().unwrap();
        })
    });
    let mut m = 0usize;
    g.bench_function("polyload_reload", |b| {
        b.iter(|| {
            m += 1;
            std::fs::write(&artifact, &versions[m % 2]).unwrap();
            rt.reload("flip").unwrap();
            assert_eq!(get.call(()).unwrap(), (m % 2) as i64 + 1);
        })
    });
    g.finish();
    rt.collect_garbage(std::time::Duration::from_secs(5));
}

criterion_group!(benches, reload);
criterion_main!(benches);
