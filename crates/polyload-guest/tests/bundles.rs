//! End to end without the runtime: builds the `textstats` example and the
//! `guestpanic` fixture with cargo, loads each into this process with
//! libloading, initialises it against a minimal host table implemented here,
//! and calls its exports through the code pointers it defined.

use libloading::Library;
use polyload_abi::{
    PolyloadBundle, PolyloadBytes, PolyloadCodeTable, PolyloadHost, PolyloadSlot, PolyloadStr,
    POLYLOAD_ABI_VERSION, POLYLOAD_OK,
};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Mutex, OnceLock};

// ---- a minimal host ----------------------------------------------------

/// One bundle as the test host sees it: what it defined, and its code table
/// (published after init, as the runtime does).
struct Registry {
    id: String,
    defs: Mutex<Vec<(String, String, usize)>>,
    cell: AtomicPtr<PolyloadCodeTable>,
}

/// Every loaded bundle, for `lookup`.
static REGISTRIES: Mutex<Vec<&'static Registry>> = Mutex::new(Vec::new());

thread_local! {
    static LAST_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Reads a string the guest passed; panics (in the test host, which is
/// allowed to) on bad UTF-8.
///
/// # Safety
/// `s` must be valid for the call.
unsafe fn text(s: PolyloadStr) -> String {
    // SAFETY: the caller's promise.
    String::from_utf8(unsafe { s.as_bytes() }.to_vec()).expect("guest strings are UTF-8")
}

unsafe extern "C" fn define(
    bundle: *mut PolyloadBundle,
    name: PolyloadStr,
    signature: PolyloadStr,
    code: *const c_void,
) -> i32 {
    // SAFETY: `bundle` is the `&'static Registry` this host passed to init.
    let reg = unsafe { &*bundle.cast::<Registry>() };
    // SAFETY: strings valid for the call, per the ABI.
    let (name, signature) = unsafe { (text(name), text(signature)) };
    reg.defs
        .lock()
        .unwrap()
        .push((name, signature, code as usize));
    POLYLOAD_OK
}

unsafe extern "C" fn lookup(
    _bundle: *mut PolyloadBundle,
    name: PolyloadStr,
) -> *const PolyloadSlot {
    // SAFETY: valid for the call, per the ABI.
    let name = unsafe { text(name) };
    let Some((id, function)) = name.split_once('.') else {
        return std::ptr::null();
    };
    let regs = REGISTRIES.lock().unwrap();
    let Some(reg) = regs.iter().find(|r| r.id == id) else {
        return std::ptr::null();
    };
    let defs = reg.defs.lock().unwrap();
    let Some(index) = defs.iter().position(|(n, _, _)| n == function) else {
        return std::ptr::null();
    };
    // Slots live as long as the host: leaked here.
    Box::leak(Box::new(PolyloadSlot {
        cell: &reg.cell,
        index,
    }))
}

static LOG: Mutex<Vec<(u32, String)>> = Mutex::new(Vec::new());

unsafe extern "C" fn log(level: u32, message: PolyloadStr) {
    // SAFETY: valid for the call, per the ABI.
    let message = unsafe { text(message) };
    LOG.lock().unwrap().push((level, message));
}

unsafe extern "C" fn alloc(size: usize, align: usize) -> *mut c_void {
    match std::alloc::Layout::from_size_align(size, align) {
        // SAFETY: the guest never asks for 0 bytes (empty results are {null, 0}).
        Ok(layout) if size > 0 => unsafe { std::alloc::alloc(layout) }.cast(),
        _ => std::ptr::null_mut(),
    }
}

unsafe extern "C" fn free(ptr: *mut c_void, size: usize, align: usize) {
    if !ptr.is_null() {
        let layout = std::alloc::Layout::from_size_align(size, align).unwrap();
        // SAFETY: allocated by `alloc` above with this layout.
        unsafe { std::alloc::dealloc(ptr.cast(), layout) };
    }
}

unsafe extern "C" fn set_error(message: PolyloadStr) {
    // SAFETY: valid for the call, per the ABI.
    let message = unsafe { text(message) };
    LAST_ERROR.with(|e| *e.borrow_mut() = Some(message));
}

/// This test host runs every call on the calling thread; entering and
/// leaving have nothing to protect.
unsafe extern "C" fn enter() {}

unsafe extern "C" fn leave() -> i32 {
    0
}

static HOST: PolyloadHost = PolyloadHost {
    size: std::mem::size_of::<PolyloadHost>(),
    abi_version: POLYLOAD_ABI_VERSION.packed(),
    define,
    lookup,
    log,
    alloc,
    free,
    set_error,
    enter,
    leave,
};

/// The error the last call on this thread set, clearing it.
fn take_error() -> Option<String> {
    LAST_ERROR.with(|e| e.borrow_mut().take())
}

/// Takes ownership of a returned string, freeing the host buffer.
fn owned(s: PolyloadStr) -> String {
    // SAFETY: a returned string: host-allocated `len` bytes, or {null, 0}.
    let out = unsafe { text(s) };
    // SAFETY: allocated by the guest with `HOST.alloc(len, 1)`.
    unsafe { free(s.ptr.cast_mut().cast(), s.len, 1) };
    out
}

// ---- building and loading ------------------------------------------------

struct Loaded {
    /// Kept open for the life of the test process.
    _lib: Library,
    reg: &'static Registry,
    build_info: String,
}

impl Loaded {
    /// The code pointer `name` was defined with, as `F`.
    ///
    /// # Safety
    /// `F` must be the `extern "C" fn` type of the definition.
    unsafe fn get<F: Copy>(&self, name: &str) -> F {
        let defs = self.reg.defs.lock().unwrap();
        let (_, _, code) = defs
            .iter()
            .find(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("{} defines no `{name}`", self.reg.id));
        let code = *code as *const c_void;
        // SAFETY: `F` is a function pointer type of the definition (caller).
        unsafe { std::mem::transmute_copy::<*const c_void, F>(&code) }
    }

    fn signatures(&self) -> BTreeMap<String, String> {
        let defs = self.reg.defs.lock().unwrap();
        defs.iter()
            .map(|(n, s, _)| (n.clone(), s.clone()))
            .collect()
    }
}

fn build(dir: &Path, crate_name: &str) -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bundles");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--locked", "--quiet", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .status()
        .expect("running cargo");
    assert!(status.success(), "cargo build of {} failed", dir.display());
    target
        .join("debug")
        .join(libloading::library_filename(crate_name))
}

fn load(dir: &Path, crate_name: &str, id: &str) -> Loaded {
    let path = build(dir, crate_name);
    // SAFETY: loading runs the library's initialisers; these are our own
    // bundles, whose only initialisers are Rust's std.
    let lib = unsafe { Library::new(&path) }.unwrap();
    let reg: &'static Registry = Box::leak(Box::new(Registry {
        id: id.to_string(),
        defs: Mutex::new(Vec::new()),
        cell: AtomicPtr::new(std::ptr::null_mut()),
    }));
    // SAFETY: the ABI's symbols with their ABI types.
    let (version, init, build_info) = unsafe {
        (
            *lib.get::<extern "C" fn() -> u32>(b"polyload_abi_version")
                .unwrap(),
            *lib.get::<unsafe extern "C" fn(*const PolyloadHost, *mut PolyloadBundle) -> i32>(
                b"polyload_bundle_init",
            )
            .unwrap(),
            *lib.get::<extern "C" fn() -> PolyloadStr>(b"polyload_build_info")
                .unwrap(),
        )
    };
    assert_eq!(version(), POLYLOAD_ABI_VERSION.packed());
    // SAFETY: static build metadata text.
    let build_info = unsafe { text(build_info()) };
    REGISTRIES.lock().unwrap().push(reg);
    // SAFETY: a complete host table that lives forever; the bundle handle
    // is the registry, which only this host reads.
    let rc = unsafe { init(&HOST, std::ptr::from_ref(reg).cast_mut().cast()) };
    assert_eq!(rc, POLYLOAD_OK, "init: {:?}", take_error());
    // Publish the code table, as the runtime does after init.
    let code: Vec<*const c_void> = reg
        .defs
        .lock()
        .unwrap()
        .iter()
        .map(|(_, _, c)| *c as *const c_void)
        .collect();
    let code = Box::leak(code.into_boxed_slice());
    let table = Box::leak(Box::new(PolyloadCodeTable {
        generation: 1,
        len: code.len(),
        code: code.as_ptr(),
    }));
    reg.cell.store(table, Ordering::Release);
    Loaded {
        _lib: lib,
        reg,
        build_info,
    }
}

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .parent()
        .unwrap()
}

fn textstats() -> &'static Loaded {
    static L: OnceLock<Loaded> = OnceLock::new();
    L.get_or_init(|| {
        load(
            &workspace().join("examples/bundles/textstats"),
            "textstats",
            "textstats",
        )
    })
}

fn guestpanic() -> &'static Loaded {
    static L: OnceLock<Loaded> = OnceLock::new();
    L.get_or_init(|| {
        load(
            &workspace().join("crates/polyload/tests/fixtures/guest-panic"),
            "guestpanic",
            "guestpanic",
        )
    })
}

fn sigs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect()
}

// ---- tests ---------------------------------------------------------------

type StrToU64 = extern "C" fn(PolyloadStr) -> u64;
type StrU32ToStr = extern "C" fn(PolyloadStr, u32) -> PolyloadStr;
type BytesToStr = extern "C" fn(PolyloadBytes) -> PolyloadStr;
type I64ToI64 = extern "C" fn(i64) -> i64;
type StrToStr = extern "C" fn(PolyloadStr) -> PolyloadStr;

#[test]
fn textstats_defines_its_exports_with_derived_signatures() {
    let t = textstats();
    assert_eq!(
        t.signatures(),
        sigs(&[
            ("word_count", "fn(str) -> u64"),
            ("top_words", "fn(str, u32) -> str"),
            ("sha256", "fn(bytes) -> str"),
        ])
    );
}

#[test]
fn textstats_build_info_describes_this_toolchain() {
    let t = textstats();
    let fields: Vec<(&str, &str)> = t
        .build_info
        .lines()
        .map(|l| l.split_once('=').unwrap())
        .collect();
    let rustc = String::from_utf8(
        Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
            .arg("-vV")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let release = rustc
        .lines()
        .find_map(|l| l.strip_prefix("release: "))
        .unwrap();
    let host = rustc
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap();
    assert_eq!(
        fields,
        [
            ("rustc", release),
            ("target", host),
            ("profile", "debug"),
            ("abi", POLYLOAD_ABI_VERSION.to_string().as_str()),
            ("guest", env!("CARGO_PKG_VERSION")),
        ]
    );
}

#[test]
fn textstats_computes_real_results() {
    let t = textstats();
    // SAFETY: the types of the signatures checked above.
    let word_count: StrToU64 = unsafe { t.get("word_count") };
    // SAFETY: as above.
    let top_words: StrU32ToStr = unsafe { t.get("top_words") };
    // SAFETY: as above.
    let sha256: BytesToStr = unsafe { t.get("sha256") };

    let text = "the cat and the hat and the bat\n\tthe end";
    assert_eq!(word_count(PolyloadStr::from_str(text)), 10);
    assert_eq!(word_count(PolyloadStr::EMPTY), 0);
    assert_eq!(word_count(PolyloadStr::from_str(" \u{3000}\n ")), 0);
    assert_eq!(word_count(PolyloadStr::from_str("ünï\u{a0}cødé")), 2);
    assert_eq!(take_error(), None);

    let top = |s: &str, n| owned(top_words(PolyloadStr::from_str(s), n));
    assert_eq!(top(text, 3), r#"[["the",4],["and",2],["bat",1]]"#);
    // Ties alphabetically (code point order: `B` < `c`); case-sensitive;
    // `n` larger than the number of distinct words.
    assert_eq!(
        top("b a B a b c", 10),
        r#"[["a",2],["b",2],["B",1],["c",1]]"#
    );
    assert_eq!(top("x \"q\" \"q\"", 1), r#"[["\"q\"",2]]"#);
    assert_eq!(top(text, 0), "[]");
    assert_eq!(top("", 5), "[]");

    let hex = owned(sha256(PolyloadBytes::from_slice(b"abc")));
    assert_eq!(
        hex,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        owned(sha256(PolyloadBytes::EMPTY)),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(take_error(), None);
}

#[test]
fn invalid_utf8_is_an_error_before_the_function_runs() {
    let t = textstats();
    // SAFETY: `word_count` is `fn(str) -> u64`.
    let word_count: StrToU64 = unsafe { t.get("word_count") };
    let bad = [b'a', b' ', 0xff];
    let n = word_count(PolyloadStr {
        ptr: bad.as_ptr(),
        len: bad.len(),
    });
    assert_eq!(n, 0);
    let e = take_error().expect("an error");
    assert!(
        e.starts_with("argument 1 of textstats.word_count: not valid UTF-8"),
        "{e}"
    );
}

#[test]
fn guestpanic_defines_its_exports() {
    assert_eq!(
        guestpanic().signatures(),
        sigs(&[
            ("boom", "fn(i64) -> i64"),
            ("fallible", "fn(i64) -> i64"),
            ("echo", "fn(str) -> str"),
            ("relay", "fn(i64) -> i64"),
            ("thread_locals", "fn() -> u64"),
        ])
    );
}

#[test]
fn a_panic_is_an_error_and_a_zero_and_the_host_keeps_running() {
    let g = guestpanic();
    // SAFETY: `boom` is `fn(i64) -> i64`.
    let boom: I64ToI64 = unsafe { g.get("boom") };
    assert_eq!(boom(-3), 0);
    assert_eq!(
        take_error().as_deref(),
        Some("panic in guestpanic.boom: negative input -3")
    );
    // Still running, and the guest too.
    assert_eq!(boom(21), 42);
    assert_eq!(take_error(), None);

    // Panics on several threads at once.
    let threads: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                for k in 0..5 {
                    let n = -(i * 100 + k + 1);
                    assert_eq!(boom(n), 0);
                    let want = format!("panic in guestpanic.boom: negative input {n}");
                    assert_eq!(take_error(), Some(want));
                    assert_eq!(boom(k), 2 * k);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn an_err_is_an_error_and_a_zero() {
    let g = guestpanic();
    // SAFETY: `fallible` is `fn(i64) -> i64`.
    let fallible: I64ToI64 = unsafe { g.get("fallible") };
    assert_eq!(fallible(3), 0);
    assert_eq!(take_error().as_deref(), Some("odd input"));
    assert_eq!(fallible(8), 4);
    assert_eq!(take_error(), None);
}

#[test]
fn strings_round_trip_through_host_buffers() {
    let g = guestpanic();
    // SAFETY: `echo` is `fn(str) -> str`.
    let echo: StrToStr = unsafe { g.get("echo") };
    assert_eq!(owned(echo(PolyloadStr::from_str("ünïcødé"))), "ünïcødé");
    let empty = echo(PolyloadStr::EMPTY);
    assert!(empty.ptr.is_null() && empty.len == 0);
    assert_eq!(take_error(), None);
}

#[test]
fn a_slot_lookup_reaches_the_published_code() {
    let g = guestpanic();
    // SAFETY: `relay` is `fn(i64) -> i64`.
    let relay: I64ToI64 = unsafe { g.get("relay") };
    assert_eq!(relay(5), 10);
    assert_eq!(take_error(), None);
    // The callee's panic is an error for the caller too.
    assert_eq!(relay(-1), 0);
    assert_eq!(
        take_error().as_deref(),
        Some("panic in guestpanic.boom: negative input -1")
    );
    assert!(LOG.lock().unwrap().is_empty());
}
