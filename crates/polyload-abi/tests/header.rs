//! Compiles `include/polyload.h` with the system C compiler and checks every
//! size, alignment and field offset against the Rust definitions.

use polyload_abi::*;
use std::mem::{align_of, offset_of, size_of};
use std::process::Command;

fn c_layout() -> String {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("layout.c");
    let exe = dir.path().join("layout");
    std::fs::write(
        &src,
        r#"
#include <stdio.h>
#include <stddef.h>
#include "polyload.h"
#define S(T) printf(#T " size %zu align %zu\n", sizeof(T), _Alignof(T));
#define O(T, f) printf(#T "." #f " %zu\n", offsetof(T, f));
int main(void) {
    S(PolyloadStr) O(PolyloadStr, ptr) O(PolyloadStr, len)
    S(PolyloadBytes) O(PolyloadBytes, ptr) O(PolyloadBytes, len)
    S(PolyloadCodeTable) O(PolyloadCodeTable, generation) O(PolyloadCodeTable, len) O(PolyloadCodeTable, code)
    S(PolyloadSlot) O(PolyloadSlot, cell) O(PolyloadSlot, index)
    S(PolyloadHost) O(PolyloadHost, size) O(PolyloadHost, abi_version) O(PolyloadHost, define)
    O(PolyloadHost, lookup) O(PolyloadHost, log) O(PolyloadHost, alloc) O(PolyloadHost, free)
    O(PolyloadHost, set_error) O(PolyloadHost, enter) O(PolyloadHost, leave)
    printf("version %u\n", POLYLOAD_ABI_VERSION_PACKED);
    printf("status %d %d %d %d %d\n", POLYLOAD_OK, POLYLOAD_ERR, POLYLOAD_ERR_INVALID,
           POLYLOAD_ERR_DUPLICATE, POLYLOAD_ERR_NOT_FOUND);
    printf("log %u %u %u %u\n", POLYLOAD_LOG_ERROR, POLYLOAD_LOG_WARN, POLYLOAD_LOG_INFO, POLYLOAD_LOG_DEBUG);
    return 0;
}
"#,
    )
    .unwrap();
    let include = concat!(env!("CARGO_MANIFEST_DIR"), "/include");
    let out = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-I", include])
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("the C compiler `cc` must be installed to check include/polyload.h");
    assert!(
        out.status.success(),
        "polyload.h failed to compile:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().unwrap();
    assert!(run.status.success());
    String::from_utf8(run.stdout).unwrap()
}

#[test]
fn header_matches_rust_layout() {
    macro_rules! s {
        ($t:ty) => {
            format!(
                "{} size {} align {}\n",
                stringify!($t),
                size_of::<$t>(),
                align_of::<$t>()
            )
        };
    }
    macro_rules! o {
        ($t:ty, $f:ident) => {
            format!(
                "{}.{} {}\n",
                stringify!($t),
                stringify!($f),
                offset_of!($t, $f)
            )
        };
    }
    let mut want = String::new();
    want += &(s!(PolyloadStr) + &o!(PolyloadStr, ptr) + &o!(PolyloadStr, len));
    want += &(s!(PolyloadBytes) + &o!(PolyloadBytes, ptr) + &o!(PolyloadBytes, len));
    want += &(s!(PolyloadCodeTable)
        + &o!(PolyloadCodeTable, generation)
        + &o!(PolyloadCodeTable, len)
        + &o!(PolyloadCodeTable, code));
    want += &(s!(PolyloadSlot) + &o!(PolyloadSlot, cell) + &o!(PolyloadSlot, index));
    want += &(s!(PolyloadHost)
        + &o!(PolyloadHost, size)
        + &o!(PolyloadHost, abi_version)
        + &o!(PolyloadHost, define));
    want += &(o!(PolyloadHost, lookup)
        + &o!(PolyloadHost, log)
        + &o!(PolyloadHost, alloc)
        + &o!(PolyloadHost, free));
    want += &o!(PolyloadHost, set_error);
    want += &o!(PolyloadHost, enter);
    want += &o!(PolyloadHost, leave);
    want += &format!("version {}\n", POLYLOAD_ABI_VERSION.packed());
    want += &format!(
        "status {} {} {} {} {}\n",
        POLYLOAD_OK,
        POLYLOAD_ERR,
        POLYLOAD_ERR_INVALID,
        POLYLOAD_ERR_DUPLICATE,
        POLYLOAD_ERR_NOT_FOUND
    );
    want += &format!(
        "log {} {} {} {}\n",
        POLYLOAD_LOG_ERROR, POLYLOAD_LOG_WARN, POLYLOAD_LOG_INFO, POLYLOAD_LOG_DEBUG
    );
    assert_eq!(c_layout(), want);
}

#[test]
fn header_compiles_as_cpp_with_its_exception_guard() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("guard.cpp");
    std::fs::write(
        &src,
        r#"#include "polyload.h"
#include <stdexcept>
static const PolyloadHost *host;
static int64_t f(int64_t x) { POLYLOAD_TRY(host, { if (x < 0) throw std::range_error("neg"); return x; }); }
static void g(void) { POLYLOAD_TRY(host, { throw 1; }); }
int main() { (void)f; (void)g; return 0; }
"#,
    )
    .unwrap();
    let include = concat!(env!("CARGO_MANIFEST_DIR"), "/include");
    for std in ["-std=c++11", "-std=c++17"] {
        let out = Command::new("c++")
            .args([
                std,
                "-Wall",
                "-Wextra",
                "-Werror",
                "-fsyntax-only",
                "-I",
                include,
            ])
            .arg(&src)
            .output()
            .expect("the C++ compiler `c++` must be installed to check include/polyload.h");
        assert!(
            out.status.success(),
            "polyload.h failed to compile as C++ ({std}):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
