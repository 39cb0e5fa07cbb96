//! Symbol providers over real libraries.

use crate::support::{c_source, cc_shared, Scratch};
use polyload::provider::{library_file_name, RUNTIME_PATH_ENV};
use polyload::{
    create_provider, AbiVersion, ChainedProvider, DynamicProvider, Error, RuntimeLoadMode,
    StaticProvider, SymbolProvider,
};
use std::sync::Arc;

extern "C" fn host_answer() -> i64 {
    42
}

#[test]
fn static_provider_serves_host_functions() {
    let p = StaticProvider::new("host").with("answer", host_answer as *const u8);
    let f = p.get_symbol("answer").unwrap();
    // SAFETY: registered above with this type.
    let f: extern "C" fn() -> i64 = unsafe { std::mem::transmute(f) };
    assert_eq!(f(), 42);
    assert_eq!(p.abi_version(), polyload_abi::POLYLOAD_ABI_VERSION);
    assert_eq!(p.name(), "host");
}

#[test]
fn dynamic_provider_loads_libm_and_checks_abi() {
    // SAFETY: libm's initialisers are benign.
    let libm = unsafe { DynamicProvider::load("libm.so.6") }.unwrap();
    let sqrt = libm.get_symbol("sqrt").unwrap();
    // SAFETY: sqrt is double(double).
    let sqrt: extern "C" fn(f64) -> f64 = unsafe { std::mem::transmute(sqrt) };
    assert_eq!(sqrt(16.0), 4.0);
    assert!(!libm.has_symbol("no_such_symbol_here"));

    let s = Scratch::new();
    let lib = s.dir.path().join("libnewer.so");
    cc_shared(&c_source("(1u << 16) | 7u", &[]), &lib);
    // SAFETY: our own test library.
    let e = unsafe { DynamicProvider::load(&lib) }.unwrap_err();
    let Error::AbiMismatch {
        required, provided, ..
    } = &e
    else {
        panic!("{e}")
    };
    assert_eq!(
        (*required, *provided),
        (AbiVersion::new(1, 7), AbiVersion::new(1, 1))
    );
    assert!(
        e.to_string()
            .contains("needs polyload ABI 1.7, but this host provides ABI 1.1"),
        "{e}"
    );

    // SAFETY: loading a missing file only fails.
    let e = unsafe { DynamicProvider::load(s.dir.path().join("missing.so")) }.unwrap_err();
    assert!(matches!(e, Error::LibraryLoad { .. }), "{e}");
}

#[test]
fn load_default_searches_the_env_path() {
    let s = Scratch::new();
    let dir = s.dir.path().join("rt");
    std::fs::create_dir_all(&dir).unwrap();
    let lib = dir.join(library_file_name("polyload_runtime"));
    cc_shared(
        &format!(
            "{}int64_t marker(void) {{ return 7; }}\n",
            c_source("POLYLOAD_ABI_VERSION_PACKED", &[])
        ),
        &lib,
    );
    // Only this test touches the variable.
    std::env::set_var(RUNTIME_PATH_ENV, &dir);
    assert_eq!(DynamicProvider::default_search_paths()[0], lib);
    // SAFETY: our own test library.
    let p = unsafe { DynamicProvider::load_default() }.unwrap();
    assert!(p.has_symbol("marker"));
    std::env::set_var(RUNTIME_PATH_ENV, s.dir.path().join("empty"));
    // SAFETY: as above.
    let e = unsafe { DynamicProvider::load_default() }.unwrap_err();
    assert!(e.to_string().contains("not found; searched "), "{e}");
    std::env::remove_var(RUNTIME_PATH_ENV);
}

#[test]
fn chained_provider_first_match_wins_and_caches() {
    extern "C" fn mine() -> i64 {
        1
    }
    // SAFETY: libm's initialisers are benign.
    let libm: Arc<dyn SymbolProvider> =
        Arc::new(unsafe { DynamicProvider::load("libm.so.6") }.unwrap());
    let chain = ChainedProvider::new();
    chain.add(libm.clone());
    let from_libm = chain.get_symbol("cbrt").unwrap();
    assert_eq!(from_libm, libm.get_symbol("cbrt").unwrap());
    chain.add_front(Arc::new(
        StaticProvider::new("host").with("cbrt", mine as *const u8),
    ));
    assert_eq!(
        chain.get_symbol("cbrt").unwrap(),
        mine as *const u8,
        "front provider wins"
    );
    assert!(chain.get_symbol("nothing").is_none());
    assert!(chain.get_symbol("nothing").is_none(), "cached miss");
    assert_eq!(chain.len(), 2);

    // The factory.
    // SAFETY: libm and a static table.
    let p = unsafe {
        create_provider(RuntimeLoadMode::Chained(vec![
            RuntimeLoadMode::Static(
                StaticProvider::new("h").with("answer", host_answer as *const u8),
            ),
            RuntimeLoadMode::DynamicPath("libm.so.6".into()),
        ]))
    }
    .unwrap();
    assert!(p.has_symbol("answer") && p.has_symbol("sqrt"));
}

#[test]
fn providers_are_usable_across_threads() {
    let chain = Arc::new(ChainedProvider::new());
    // SAFETY: libm's initialisers are benign.
    chain.add(Arc::new(
        unsafe { DynamicProvider::load("libm.so.6") }.unwrap(),
    ));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let c = chain.clone();
            std::thread::spawn(move || (0..1000).all(|_| c.get_symbol("sqrt").is_some()))
        })
        .collect();
    assert!(handles.into_iter().all(|h| h.join().unwrap()));
}

#[test]
fn interfaces_resolve_to_the_first_loaded_compatible_provider() {
    let s = crate::support::Scratch::new();
    let src = crate::support::c_source(
        "POLYLOAD_ABI_VERSION_PACKED",
        &[("f", "fn(i64) -> i64", "x")],
    );
    let exports = "[exports]\nf = \"fn(i64) -> i64\"\n";
    let a = s.c_bundle(
        "store_a",
        &format!("provides = [\"kv@1.1\"]\n{exports}"),
        &src,
    );
    let b = s.c_bundle(
        "store_b",
        &format!("provides = [\"kv@1.4\", \"log@2.0\"]\n{exports}"),
        &src,
    );
    let rt = s.runtime();
    rt.load_dir(&b).unwrap();
    rt.load_dir(&a).unwrap();
    // store_b loaded first, and 1.4 satisfies 1.0 and 1.1.
    assert_eq!(rt.resolve("kv@1.0").unwrap(), "store_b");
    assert_eq!(rt.resolve("kv@1.4").unwrap(), "store_b");
    assert_eq!(rt.resolve("log@2.0").unwrap(), "store_b");
    assert!(matches!(
        rt.resolve("kv@1.5"),
        Err(polyload::Error::NoProvider { .. })
    ));
    assert!(rt.resolve("kv@2.0").is_err());
    assert!(rt.resolve("kv").is_err());
    rt.unload("store_b").unwrap();
    assert_eq!(rt.resolve("kv@1.0").unwrap(), "store_a");
    assert!(rt.resolve("kv@1.2").is_err());
}
