//! Definitions made by a non-native loader (closures with values) get a C
//! entry point: typed handles and C bundles call them like native code.

use crate::support::Scratch;
use polyload::loader::{
    BundleInstance, BundleLoader, DynamicFn, Export, ExportEntry, GuestError, LoadContext,
    LoadedBundle, SlotFn,
};
use polyload::{BundleSource, Error, Manifest, Value};
use polyload_abi::PolyloadStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Calls of `dyn.scale`'s value entry and of its raw-slot entry.
static BY_VALUE: AtomicUsize = AtomicUsize::new(0);
static BY_SLOTS: AtomicUsize = AtomicUsize::new(0);

/// A loader whose bundles are Rust closures: the runtime mechanics a VM
/// loader relies on, without a VM.
struct ClosureLoader;

struct Nothing;
impl BundleInstance for Nothing {}

impl BundleLoader for ClosureLoader {
    fn loader_name(&self) -> &'static str {
        "closures"
    }
    fn load(&self, cx: &LoadContext<'_>) -> polyload::Result<LoadedBundle> {
        let sig = |name: &str| cx.manifest().export(name).unwrap().signature.clone();
        let mul: Arc<DynamicFn> = Arc::new(|args: &[Value]| match args {
            [Value::I64(a), Value::I64(b)] => Ok(Value::I64(a * b)),
            _ => Err(GuestError::new("bad arguments")),
        });
        let shout: Arc<DynamicFn> = Arc::new(|args: &[Value]| match args {
            [Value::Str(s)] if s.is_empty() => Err(GuestError {
                message: "nothing to shout".into(),
                traceback: Some("at shout (closure.rs:1)".into()),
            }),
            [Value::Str(s)] => Ok(Value::Str(s.to_uppercase())),
            _ => Err(GuestError::new("bad arguments")),
        });
        // `fn(i32, f32) -> i32`: a * b, truncated; the slot entry checks the
        // encoding `SlotFn` documents (32-bit values zero-extended).
        let values: Arc<DynamicFn> = Arc::new(|args: &[Value]| {
            BY_VALUE.fetch_add(1, Ordering::Relaxed);
            match args {
                [Value::I32(a), Value::F32(b)] => Ok(Value::I32((*a as f32 * b) as i32)),
                _ => Err(GuestError::new("bad arguments")),
            }
        });
        let slots: Arc<SlotFn> = Arc::new(|slots: &mut [u64]| {
            BY_SLOTS.fetch_add(1, Ordering::Relaxed);
            let [a, b, _] = slots else {
                return Err(GuestError::new(format!("{} slots", slots.len())));
            };
            if *a >> 32 != 0 || *b >> 32 != 0 {
                return Err(GuestError::new("upper bits set"));
            }
            let product = (*a as u32 as i32) as f32 * f32::from_bits(*b as u32);
            if product.is_nan() {
                return Err(GuestError::new("not a number"));
            }
            // The result goes to slot 0, with garbage in the upper half:
            // the handle truncates.
            slots[0] = 0xdead_beef_0000_0000 | u64::from(product as i32 as u32);
            Ok(())
        });
        Ok(LoadedBundle {
            exports: vec![
                Export {
                    name: "scale".into(),
                    signature: sig("scale"),
                    entry: ExportEntry::DynamicSlots { values, slots },
                },
                Export {
                    name: "mul".into(),
                    signature: sig("mul"),
                    entry: ExportEntry::Dynamic(mul),
                },
                Export {
                    name: "shout".into(),
                    signature: sig("shout"),
                    entry: ExportEntry::Dynamic(shout),
                },
            ],
            instance: Box::new(Nothing),
        })
    }
}

/// A runtime with the closure bundle `dyn` loaded.
fn closures(s: &Scratch) -> polyload::Runtime {
    let rt = polyload::Runtime::builder()
        .cache_dir(s.dir.path().join("cache"))
        .loader(ClosureLoader)
        .build()
        .unwrap();
    let text = "id = \"dyn\"\nversion = \"0.1.0\"\nloader = \"closures\"\nfile = \"none\"\nabi = \"1.0\"\n[exports]\nmul = \"fn(i64, i64) -> i64\"\nshout = \"fn(str) -> str\"\nscale = \"fn(i32, f32) -> i32\"\n";
    let m = Manifest::parse(text, &s.dir.path().join("dyn/manifest.toml")).unwrap();
    rt.load_manifest(m, BundleSource::Code(String::new()))
        .unwrap();
    rt
}

#[test]
fn typed_handles_and_c_bundles_reach_dynamic_definitions() {
    let s = Scratch::new();
    let rt = closures(&s);

    // Dynamic call: straight to the closure, with its traceback.
    assert_eq!(
        rt.call("dyn.mul", &[Value::I64(6), Value::I64(7)]).unwrap(),
        Value::I64(42)
    );
    let e = rt.call("dyn.shout", &[Value::from("")]).unwrap_err();
    assert!(
        matches!(&e, Error::Guest { traceback: Some(t), .. } if t == "at shout (closure.rs:1)"),
        "{e}"
    );

    // Typed handle: through the C entry point.
    let mul = rt
        .function::<extern "C" fn(i64, i64) -> i64>("dyn.mul")
        .unwrap();
    assert_eq!(mul.call((6, 7)).unwrap(), 42);
    let shout = rt
        .function::<extern "C" fn(PolyloadStr) -> PolyloadStr>("dyn.shout")
        .unwrap();
    let out = shout.call((PolyloadStr::from_str("hey"),)).unwrap();
    // SAFETY: a returned str is ours to read and free.
    assert_eq!(unsafe { out.as_bytes() }, b"HEY");
    // SAFETY: allocated with polyload_alloc(len, 1) by the entry point.
    unsafe { polyload_ffi::alloc::polyload_free(out.ptr as *mut _, out.len, 1) };
    let e = shout.call((PolyloadStr::EMPTY,)).unwrap_err();
    assert!(
        matches!(&e, Error::Guest { message, .. } if message.starts_with("nothing to shout")),
        "{e}"
    );

    // A C bundle calling the closure through its namespace slot.
    let src = r#"#include <polyload.h>
typedef int64_t (*mul_fn)(int64_t, int64_t);
static const PolyloadSlot *mul;
static int64_t square(int64_t x) { mul_fn f = (mul_fn)polyload_slot_get(mul); return f ? f(x, x) : -1; }
uint32_t polyload_abi_version(void) { return POLYLOAD_ABI_VERSION_PACKED; }
int32_t polyload_bundle_init(const PolyloadHost *h, PolyloadBundle *b) {
    mul = h->lookup(b, polyload_str("dyn.mul"));
    POLYLOAD_DEFINE(h, b, "square", "fn(i64) -> i64", square);
    return 0;
}
"#;
    let dir = s.c_bundle("csq", "[exports]\nsquare = \"fn(i64) -> i64\"\n", src);
    rt.load_dir(&dir).unwrap();
    assert_eq!(
        rt.call("csq.square", &[Value::I64(9)]).unwrap(),
        Value::I64(81)
    );
}

#[test]
fn typed_handles_of_numbers_take_the_raw_slot_entry_and_others_the_value_entry() {
    let s = Scratch::new();
    let rt = closures(&s);
    let (v0, s0) = (
        BY_VALUE.load(Ordering::Relaxed),
        BY_SLOTS.load(Ordering::Relaxed),
    );

    let scale = rt
        .function::<extern "C" fn(i32, f32) -> i32>("dyn.scale")
        .unwrap();
    assert_eq!(scale.call((-7, 1.5)).unwrap(), -10);
    rt.enter(|scope| assert_eq!(scale.call_in(scope, (4, -0.5)).unwrap(), -2));
    let e = scale.call((1, f32::NAN)).unwrap_err();
    assert!(
        matches!(&e, Error::Guest { name, message, .. } if name == "dyn.scale" && message == "not a number"),
        "{e}"
    );
    assert_eq!(
        BY_SLOTS.load(Ordering::Relaxed) - s0,
        3,
        "typed calls take the slots"
    );
    assert_eq!(BY_VALUE.load(Ordering::Relaxed) - v0, 0);

    // By name, and from a dynamic handle: the value entry.
    assert_eq!(
        rt.call("dyn.scale", &[Value::I32(-7), Value::F32(1.5)])
            .unwrap(),
        Value::I32(-10)
    );
    assert_eq!(BY_VALUE.load(Ordering::Relaxed) - v0, 1);
    assert_eq!(BY_SLOTS.load(Ordering::Relaxed) - s0, 3);
}
