//! Loading and calling real native bundles.

use crate::support::{c_source, examples, Scratch};
use polyload::{Error, Value};
use polyload_abi::{PolyloadBytes, PolyloadStr};
use std::time::Duration;

#[test]
fn typed_and_dynamic_calls_on_the_examples() {
    let s = Scratch::new();
    let rt = s.runtime();
    rt.load_bundle(examples().join("hello")).unwrap();
    rt.load_bundle(examples().join("zlib")).unwrap();

    let add = rt
        .function::<extern "C" fn(i64, i64) -> i64>("hello.add")
        .unwrap();
    assert_eq!(add.call((2, 40)).unwrap(), 42);
    assert_eq!(
        add.call((i64::MAX, 1)).unwrap(),
        i64::MIN,
        "C wrapping arithmetic"
    );
    assert_eq!(
        rt.call("hello.add", &[Value::I64(-5), Value::I64(3)])
            .unwrap(),
        Value::I64(-2)
    );

    assert_eq!(
        rt.call("hello.greet", &[Value::from("polyload")]).unwrap(),
        Value::from("Hello, polyload!")
    );
    // The typed path with a buffer return: the caller owns and frees it.
    let greet = rt
        .function::<extern "C" fn(PolyloadStr) -> PolyloadStr>("hello.greet")
        .unwrap();
    let out = greet.call((PolyloadStr::from_str("you"),)).unwrap();
    // SAFETY: a returned str is valid until freed.
    assert_eq!(unsafe { out.as_bytes() }, b"Hello, you!");
    // SAFETY: allocated by the bundle with host->alloc(len, 1).
    unsafe { polyload_ffi::alloc::polyload_free(out.ptr as *mut _, out.len, 1) };

    let data = b"The quick brown fox jumps over the lazy dog";
    assert_eq!(
        rt.call("zlib.crc32", &[Value::Bytes(data.to_vec())])
            .unwrap(),
        Value::U32(0x414f_a339)
    );
    assert_eq!(
        rt.call("zlib.adler32", &[Value::Bytes(data.to_vec())])
            .unwrap(),
        Value::U32(0x5bdc_0fda)
    );
    let crc = rt
        .function::<extern "C" fn(PolyloadBytes) -> u32>("zlib.crc32")
        .unwrap();
    assert_eq!(crc.call((PolyloadBytes::EMPTY,)).unwrap(), 0);
}

#[test]
fn typed_handle_checks_the_signature() {
    let s = Scratch::new();
    let rt = s.runtime();
    rt.load_bundle(examples().join("hello")).unwrap();
    let e = rt
        .function::<extern "C" fn(i32) -> i32>("hello.add")
        .unwrap_err();
    assert_eq!(e.to_string(), "`hello.add` has signature `fn(i64, i64) -> i64`, but the handle's type is `fn(i32) -> i32`");
    assert!(matches!(
        rt.function::<extern "C" fn()>("hello.nope"),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn dynamic_call_checks_arguments() {
    let s = Scratch::new();
    let rt = s.runtime();
    rt.load_bundle(examples().join("hello")).unwrap();
    let e = rt.call("hello.add", &[Value::I64(1)]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "calling `hello.add`: expected 2 argument(s), got 1"
    );
    let e = rt
        .call("hello.add", &[Value::I64(1), Value::from("x")])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "calling `hello.add`: argument 2: expected i64, got str",
        "arguments are numbered from 1, as in every loader"
    );
    assert_eq!(
        rt.call("nobody.add", &[]).unwrap_err().to_string(),
        "no definition named `nobody.add`"
    );
}

#[test]
fn cross_bundle_reference_works_in_either_load_order() {
    let s = Scratch::new();
    let rt = s.runtime();
    // calc first: its init looks up hello.add before hello exists.
    let calc_manifest = polyload::Manifest::from_dir(&examples().join("calc")).unwrap();
    let mut no_deps = calc_manifest.clone();
    no_deps.dependencies.clear();
    rt.load_manifest(
        no_deps,
        polyload::BundleSource::Path(calc_manifest.dir().join(&calc_manifest.file)),
    )
    .unwrap();
    let e = rt
        .call("calc.sum3", &[Value::I64(1), Value::I64(2), Value::I64(3)])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "`calc.sum3` failed: calc: hello.add is not loaded"
    );
    rt.load_bundle(examples().join("hello")).unwrap();
    assert_eq!(
        rt.call("calc.sum3", &[Value::I64(1), Value::I64(2), Value::I64(3)])
            .unwrap(),
        Value::I64(6)
    );
    let dbl = rt
        .function::<extern "C" fn(i64) -> i64>("calc.double_it")
        .unwrap();
    assert_eq!(dbl.call((21,)).unwrap(), 42);

    // The declared dependency is loaded first, from the sibling directory.
    let s = Scratch::new();
    let rt = s.runtime();
    let order = rt.load_bundle(examples().join("calc")).unwrap();
    assert_eq!(order, ["hello", "calc"]);
}

fn is_mapped(path_fragment: &str) -> bool {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .contains(path_fragment)
}

#[test]
fn unload_closes_the_library_and_stales_handles() {
    let s = Scratch::new();
    s.c_bundle(
        "gone",
        "[exports]\ninc = \"fn(i64) -> i64\"\n",
        &c_source(
            "POLYLOAD_ABI_VERSION_PACKED",
            &[("inc", "fn(i64) -> i64", "x + 1")],
        ),
    );
    let rt = s.runtime();
    rt.load_dir(s.bundles()).unwrap();
    let inc = rt
        .function::<extern "C" fn(i64) -> i64>("gone.inc")
        .unwrap();
    assert_eq!(inc.call((1,)).unwrap(), 2);
    // The shadow copy is what is mapped (deleted file, same name prefix).
    assert!(is_mapped("/shadow/gone-"));

    rt.unload("gone").unwrap();
    assert_eq!(rt.collect_garbage(Duration::from_secs(5)), 0);
    assert!(
        !is_mapped("/shadow/gone-"),
        "library still mapped after unload"
    );
    let e = inc.call((1,)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "`gone.inc` is not available: its bundle is not loaded (stale handle)"
    );
    assert!(matches!(
        rt.call("gone.inc", &[Value::I64(1)]),
        Err(Error::Stale { .. })
    ));
    assert!(matches!(rt.unload("gone"), Err(Error::NotLoaded { .. })));

    // Loading it again revives existing handles.
    rt.load_dir(s.bundles()).unwrap();
    assert_eq!(inc.call((41,)).unwrap(), 42);
}

#[test]
fn unload_refuses_while_dependents_are_loaded() {
    let s = Scratch::new();
    let rt = s.runtime();
    rt.load_bundle(examples().join("calc")).unwrap();
    let e = rt.unload("hello").unwrap_err();
    assert_eq!(
        e.to_string(),
        "bundle `hello` is needed by calc; unload those first or unload with cascade"
    );
    rt.unload_cascade("hello").unwrap();
    assert!(!rt.bundle_ids().contains(&"calc".to_string()));
    assert!(!rt.bundle_ids().contains(&"hello".to_string()));
}

#[test]
fn guest_errors_come_back_as_values_and_the_bundle_keeps_working() {
    let s = Scratch::new();
    let src = r#"#include <polyload.h>
static const PolyloadHost *host;
static int64_t checked_div(int64_t a, int64_t b) {
    if (b == 0) { host->set_error(polyload_str("division by zero")); return 0; }
    return a / b;
}
uint32_t polyload_abi_version(void) { return POLYLOAD_ABI_VERSION_PACKED; }
int32_t polyload_bundle_init(const PolyloadHost *h, PolyloadBundle *b) {
    host = h;
    POLYLOAD_DEFINE(h, b, "div", "fn(i64, i64) -> i64", checked_div);
    return POLYLOAD_OK;
}
"#;
    s.c_bundle("divide", "[exports]\ndiv = \"fn(i64, i64) -> i64\"\n", src);
    let rt = s.runtime();
    rt.load_dir(s.bundles()).unwrap();
    let e = rt
        .call("divide.div", &[Value::I64(1), Value::I64(0)])
        .unwrap_err();
    assert_eq!(e.to_string(), "`divide.div` failed: division by zero");
    let div = rt
        .function::<extern "C" fn(i64, i64) -> i64>("divide.div")
        .unwrap();
    assert!(
        matches!(div.call((1, 0)), Err(Error::Guest { ref message, .. }) if message == "division by zero")
    );
    assert_eq!(div.call((9, 3)).unwrap(), 3);
    assert_eq!(
        rt.call("divide.div", &[Value::I64(8), Value::I64(2)])
            .unwrap(),
        Value::I64(4)
    );
}

#[test]
fn definitions_and_generations_are_listed() {
    let s = Scratch::new();
    let rt = s.runtime();
    rt.load_bundle(examples().join("hello")).unwrap();
    let defs = rt.definitions();
    let names: Vec<_> = defs.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["hello.add", "hello.greet"]);
    assert!(defs.iter().all(|d| d.generation == 1));
    assert_eq!(rt.bundles()[0].generation, 1);
}

#[test]
fn cpp_bundles_build_with_the_cpp_compiler_and_exceptions_become_errors() {
    let s = Scratch::new();
    let dir = s.bundles().join("words");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("manifest.toml"),
        "id = \"words\"\nversion = \"0.1.0\"\nloader = \"native\"\nfile = \"libwords.so\"\nabi = \"1.1\"\n[exports]\nsorted = \"fn(str) -> str\"\nparse = \"fn(str) -> i64\"\ncount = \"fn(str) -> i64\"\n[build]\ncc = [\"src/words.cpp\", \"src/count.c\"]\nstd = \"c++17\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("src/count.c"),
        "#include <stdint.h>\n#include <stddef.h>\nint64_t count_spaces(const unsigned char *p, size_t n) { int64_t c = 0; for (size_t i = 0; i < n; i++) c += p[i] == ' '; return c; }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("src/words.cpp"),
        r#"#include <polyload.h>
#include <algorithm>
#include <map>
#include <sstream>
#include <stdexcept>
#include <vector>

extern "C" int64_t count_spaces(const unsigned char *p, size_t n);

static const PolyloadHost *host;

static std::string text(PolyloadStr s) { return std::string((const char *)s.ptr, s.len); }

static PolyloadStr sorted(PolyloadStr s) {
    POLYLOAD_TRY(host, {
        std::istringstream in(text(s));
        std::vector<std::string> words;
        std::map<std::string, int> seen;
        for (std::string w; in >> w;) {
            if (seen[w]++ == 0) words.push_back(w);
        }
        if (words.empty()) throw std::length_error("no words");
        std::sort(words.begin(), words.end());
        std::string out;
        for (const auto &w : words) out += (out.empty() ? "" : " ") + w;
        return polyload_str_dup(host, out.data(), out.size());
    });
}

static int64_t parse(PolyloadStr s) {
    POLYLOAD_TRY(host, { return (int64_t)std::stoll(text(s)); });
}

static int64_t count(PolyloadStr s) {
    POLYLOAD_TRY(host, {
        if (s.len > 100) throw 42;  // not a std::exception
        return count_spaces(s.ptr, s.len) + 1;
    });
}

extern "C" uint32_t polyload_abi_version(void) { return POLYLOAD_ABI_VERSION_PACKED; }

extern "C" int32_t polyload_bundle_init(const PolyloadHost *h, PolyloadBundle *b) {
    host = h;
    POLYLOAD_DEFINE(h, b, "sorted", "fn(str) -> str", sorted);
    POLYLOAD_DEFINE(h, b, "parse", "fn(str) -> i64", parse);
    POLYLOAD_DEFINE(h, b, "count", "fn(str) -> i64", count);
    return POLYLOAD_OK;
}
"#,
    )
    .unwrap();
    let rt = s.runtime();
    rt.load_dir(&dir).unwrap();
    assert_eq!(
        rt.call("words.sorted", &[Value::from("pear apple fig apple")])
            .unwrap(),
        Value::from("apple fig pear")
    );
    assert_eq!(
        rt.call("words.parse", &[Value::from("-1234")]).unwrap(),
        Value::I64(-1234)
    );
    assert_eq!(
        rt.call("words.count", &[Value::from("a b c")]).unwrap(),
        Value::I64(3),
        "C and C++ sources link into one library"
    );
    // Exceptions become errors naming their type; the bundle keeps working.
    let e = rt.call("words.parse", &[Value::from("nope")]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "`words.parse` failed: std::invalid_argument: stoll"
    );
    let e = rt.call("words.sorted", &[Value::from("   ")]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "`words.sorted` failed: std::length_error: no words"
    );
    let e = rt
        .call("words.count", &[Value::from("x".repeat(200))])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "`words.count` failed: a C++ exception of unknown type"
    );
    let parse = rt
        .function::<extern "C" fn(PolyloadStr) -> i64>("words.parse")
        .unwrap();
    assert!(matches!(
        parse.call((PolyloadStr::from_str("x"),)),
        Err(Error::Guest { .. })
    ));
    assert_eq!(parse.call((PolyloadStr::from_str("77"),)).unwrap(), 77);
}
