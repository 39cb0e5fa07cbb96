//! Real code no one here wrote: zlib 1.3.1, from the C sources the
//! libz-sys crate ships on crates.io, built on demand to WebAssembly
//! (`examples/bundles/wzlib`) and checked against a native build of the
//! same sources, and against the system's libz, on the README and on a
//! large generated file.

use polyload::{Runtime, Value};
use polyload_outside::Scratch;
use polyload_wasm::WasmLoader;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn vendored() -> PathBuf {
    let dir = repo().join("examples/bundles/wzlib/vendor/zlib");
    assert!(
        dir.join("zlib.h").is_file(),
        "zlib's sources are not in {}: run scripts/setup.sh (scripts/fetch-zlib.sh fetches them from crates.io)",
        dir.display()
    );
    dir
}

/// The same zlib sources as a native bundle `nzlib`, with glue to the C ABI.
fn native_bundle(s: &Scratch) -> PathBuf {
    let dir = s.bundles().join("nzlib");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::create_dir_all(dir.join("zlib")).unwrap();
    let files = [
        "adler32", "compress", "crc32", "deflate", "inffast", "inflate", "inftrees", "trees",
        "uncompr", "zutil",
    ];
    for e in std::fs::read_dir(vendored()).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, dir.join("zlib").join(p.file_name().unwrap())).unwrap();
        }
    }
    let sources: Vec<String> = std::iter::once("\"src/glue.c\"".to_string())
        .chain(files.iter().map(|f| format!("\"zlib/{f}.c\"")))
        .collect();
    std::fs::write(
        dir.join("manifest.toml"),
        format!(
            "id = \"nzlib\"\nversion = \"0.1.0\"\nloader = \"native\"\nfile = \"libnzlib.so\"\nabi = \"1.0\"\n\
             [exports]\ncompress = \"fn(bytes) -> bytes\"\ncrc32 = \"fn(bytes) -> u32\"\n\
             [build]\ncc = [{}]\ncflags = [\"-Izlib\", \"-fvisibility=hidden\"]\n",
            sources.join(", ")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("src/glue.c"),
        r#"#include <polyload.h>
#include "zlib.h"
static const PolyloadHost *host;
static PolyloadBytes do_compress(PolyloadBytes in) {
    PolyloadBytes out = {0, 0};
    uLongf bound = compressBound((uLong)in.len);
    uint8_t *buf = host->alloc(bound, 1);
    if (compress2(buf, &bound, in.ptr, (uLong)in.len, 6) != Z_OK) {
        host->set_error(polyload_str("compress failed"));
        return out;
    }
    out.ptr = buf;
    out.len = bound;
    return out;
}
static uint32_t do_crc32(PolyloadBytes in) { return (uint32_t)crc32(0L, in.ptr, (uInt)in.len); }
/* zlib is built with hidden visibility so that its symbols never interpose
   on the system libz; the two entry points are exported explicitly. */
#define PUBLIC __attribute__((visibility("default")))
PUBLIC uint32_t polyload_abi_version(void) { return POLYLOAD_ABI_VERSION_PACKED; }
PUBLIC int32_t polyload_bundle_init(const PolyloadHost *h, PolyloadBundle *b) {
    host = h;
    POLYLOAD_DEFINE(h, b, "compress", "fn(bytes) -> bytes", do_compress);
    POLYLOAD_DEFINE(h, b, "crc32", "fn(bytes) -> u32", do_crc32);
    return POLYLOAD_OK;
}
"#,
    )
    .unwrap();
    dir
}

fn runtime(s: &Scratch) -> Runtime {
    let rt = s.builder().loader(WasmLoader::new()).build().unwrap();
    vendored();
    rt.load_bundle(repo().join("examples/bundles/wzlib"))
        .unwrap();
    rt.load_bundle(native_bundle(s)).unwrap();
    rt.load_bundle(repo().join("examples/bundles/zlib"))
        .unwrap();
    rt
}

fn bytes(v: Value) -> Vec<u8> {
    match v {
        Value::Bytes(b) => b,
        other => panic!("expected bytes, got {other:?}"),
    }
}

/// 16 MiB of text-like data: compressible, but not trivially.
fn generated() -> Vec<u8> {
    let words = [
        "bundle",
        "loader",
        "namespace",
        "slot",
        "epoch",
        "wasm",
        "sandbox",
        "fuel",
        "trap",
        "reclaim",
        "generation",
        "manifest",
        "symbol",
        "trampoline",
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(16 << 20);
    while out.len() < 16 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(words[(x % words.len() as u64) as usize].as_bytes());
        out.push(if x % 11 == 0 { b'\n' } else { b' ' });
        if x % 5 == 0 {
            out.extend_from_slice(format!("{}", x % 100_000).as_bytes());
        }
    }
    out
}

fn check(rt: &Runtime, data: &[u8]) {
    let arg = [Value::Bytes(data.to_vec())];
    let packed = bytes(rt.call("wzlib.compress", &arg).unwrap());
    let native = bytes(rt.call("nzlib.compress", &arg).unwrap());
    assert_eq!(
        packed, native,
        "the same sources give the same stream, wasm or native"
    );
    assert!(packed.len() < data.len() / 2 || data.len() < 1024);
    let back = bytes(
        rt.call("wzlib.decompress", &[Value::Bytes(packed)])
            .unwrap(),
    );
    assert!(back == data, "round trip");
    let crc = rt.call("wzlib.crc32", &arg).unwrap();
    assert_eq!(crc, rt.call("nzlib.crc32", &arg).unwrap());
    assert_eq!(
        crc,
        rt.call("zlib.crc32", &arg).unwrap(),
        "the system's libz agrees"
    );
    assert_eq!(
        rt.call("wzlib.adler32", &arg).unwrap(),
        rt.call("zlib.adler32", &arg).unwrap()
    );
}

#[test]
fn wasm_zlib_matches_native_zlib_on_the_readme() {
    let s = Scratch::new();
    let rt = runtime(&s);
    assert_eq!(rt.call("wzlib.version", &[]).unwrap(), Value::from("1.3.1"));
    check(&rt, &std::fs::read(repo().join("README.md")).unwrap());
    check(&rt, b"");
}

#[test]
fn wasm_zlib_matches_native_zlib_on_16_mib() {
    let s = Scratch::new();
    let rt = runtime(&s);
    check(&rt, &generated());
    // Corrupt input is an error from the guest, not a crash.
    let e = rt
        .call(
            "wzlib.decompress",
            &[Value::Bytes(b"not zlib at all".to_vec())],
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "`wzlib.decompress` failed: decompress: not zlib data"
    );
}
