//! .NET calls beside their baseline in the same run (`dotnet_add_i64`):
//! `fn(i64, i64) -> i64` (C# `static long Add(long a, long b)`) through a
//! typed polyload handle and through `Runtime::call`, against the same
//! method of the same assembly called directly through Mono's embedding
//! API, its unmanaged thunk (`mono_method_get_unmanaged_thunk`), in a
//! domain of the benchmark's own:
//!
//! - `mono_thunk_in_domain`: the thread's current domain is the method's,
//!   set once before the loop (the floor: no domain switch);
//! - `mono_thunk_switching_domain`: the thread stays in the root domain and
//!   switches into the method's around each call
//!   (`mono_domain_set_internal` twice), which is what a correct call from
//!   outside the domain costs and what polyload's trampoline does.
//!
//! `cargo bench -p polyload-dotnet --bench call`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use polyload::{Runtime, Value};
use polyload_dotnet::DotnetLoader;
use std::ffi::{c_char, c_void};
use std::path::{Path, PathBuf};

type P = *mut c_void;

const SOURCE: &str =
    "namespace Demo { public static class Calc { public static long Add(long a, long b) { return a + b; } } }";

fn bundle(dir: &Path) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/Calc.cs"), SOURCE).unwrap();
    std::fs::write(
        dir.join("manifest.toml"),
        "id = \"calc\"\nversion = \"0.1.0\"\nloader = \"dotnet\"\nfile = \"Calc.dll\"\nabi = \"1.0\"\n\
         [build]\ncsc = [\"src/Calc.cs\"]\n[dotnet]\nclass = \"Demo.Calc\"\n\
         [exports]\nadd = \"fn(i64, i64) -> i64\"\n",
    )
    .unwrap();
}

/// The built assembly in the runtime's cache.
fn built(cache: &Path) -> PathBuf {
    let calc = cache.join("calc");
    for e in std::fs::read_dir(&calc).unwrap() {
        let p = e.unwrap().path().join("Calc.dll");
        if p.is_file() {
            return p;
        }
    }
    panic!("no Calc.dll under {}", calc.display());
}

/// Mono's own API, for the baseline: the process's Mono (initialised by
/// the loader) reached through the same library.
struct Direct {
    thunk: unsafe extern "C" fn(i64, i64, *mut P) -> i64,
    domain: P,
    root: P,
    set: unsafe extern "C" fn(P),
}

impl Direct {
    fn new(dll: &Path) -> Direct {
        // SAFETY: the library the loader opened (RTLD_NOLOAD would do as
        // well); every function is Mono's, declared as in its headers, and
        // used as its embedding documentation says.
        unsafe {
            let lib = libloading::Library::new("libmonosgen-2.0.so.1").unwrap();
            macro_rules! f {
                ($name:literal, $t:ty) => {
                    *lib.get::<$t>($name).unwrap()
                };
            }
            let attach = f!(b"mono_thread_attach\0", unsafe extern "C" fn(P) -> P);
            let root_domain = f!(b"mono_get_root_domain\0", unsafe extern "C" fn() -> P);
            let create = f!(
                b"mono_domain_create_appdomain\0",
                unsafe extern "C" fn(*const c_char, *const c_char) -> P
            );
            let set = f!(b"mono_domain_set_internal\0", unsafe extern "C" fn(P));
            let open = f!(
                b"mono_domain_assembly_open\0",
                unsafe extern "C" fn(P, *const c_char) -> P
            );
            let image = f!(b"mono_assembly_get_image\0", unsafe extern "C" fn(P) -> P);
            let class = f!(
                b"mono_class_from_name\0",
                unsafe extern "C" fn(P, *const c_char, *const c_char) -> P
            );
            let method = f!(
                b"mono_class_get_method_from_name\0",
                unsafe extern "C" fn(P, *const c_char, i32) -> P
            );
            let thunk = f!(
                b"mono_method_get_unmanaged_thunk\0",
                unsafe extern "C" fn(P) -> *const c_void
            );
            let root = root_domain();
            attach(root);
            let domain = create(c"bench".as_ptr(), std::ptr::null());
            set(domain);
            let path = std::ffi::CString::new(dll.to_str().unwrap()).unwrap();
            let a = open(domain, path.as_ptr());
            assert!(!a.is_null());
            let k = class(image(a), c"Demo".as_ptr(), c"Calc".as_ptr());
            let m = method(k, c"Add".as_ptr(), 2);
            let t = thunk(m);
            set(root);
            std::mem::forget(lib);
            Direct {
                thunk: std::mem::transmute::<
                    *const c_void,
                    unsafe extern "C" fn(i64, i64, *mut P) -> i64,
                >(t),
                domain,
                root,
                set,
            }
        }
    }
}

fn add(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("calc");
    bundle(&dir);
    let cache = tmp.path().join("cache");
    let rt = Runtime::builder()
        .cache_dir(&cache)
        .loader(DotnetLoader::new())
        .build()
        .unwrap();
    rt.load_bundle(&dir).unwrap();
    let direct = Direct::new(&built(&cache));

    let mut g = c.benchmark_group("dotnet_add_i64");
    g.bench_function("mono_thunk_in_domain", |b| {
        // SAFETY: the thread is attached; the thunk is of `Add` in `domain`,
        // which is current for the loop; the slot is valid.
        unsafe { (direct.set)(direct.domain) };
        let mut exc: P = std::ptr::null_mut();
        b.iter(|| {
            // SAFETY: as above.
            unsafe { (direct.thunk)(black_box(2), black_box(3), &mut exc) }
        });
        // SAFETY: the root domain is alive; back to it for the other cases.
        unsafe { (direct.set)(direct.root) };
    });
    g.bench_function("mono_thunk_switching_domain", |b| {
        let mut exc: P = std::ptr::null_mut();
        // SAFETY: as above, the domain made current around each call.
        b.iter(|| unsafe {
            (direct.set)(direct.domain);
            let r = (direct.thunk)(black_box(2), black_box(3), &mut exc);
            (direct.set)(direct.root);
            r
        });
    });
    let f = rt
        .function::<extern "C" fn(i64, i64) -> i64>("calc.add")
        .unwrap();
    g.bench_function("polyload_typed", |b| {
        b.iter(|| f.call(black_box((2, 3))).unwrap())
    });
    g.bench_function("polyload_typed_in_scope", |b| {
        // The scope a hot loop would hold: the thread stays in the bundle's
        // domain between the calls.
        rt.enter(|scope| b.iter(|| f.call_in(scope, black_box((2, 3))).unwrap()))
    });
    let args = [Value::I64(2), Value::I64(3)];
    g.bench_function("polyload_runtime_call", |b| {
        b.iter(|| rt.call("calc.add", black_box(&args)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, add);
criterion_main!(benches);
