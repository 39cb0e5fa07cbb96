//! Calls one shape of the `ffi` benchmark in a loop, for counting
//! instructions per call with callgrind (`scripts/ffi-icount.sh`), a
//! measure that does not move with code layout or machine noise as
//! timings do.
//!
//! ```text
//! cargo run --release -p polyload-ffi --example call_loop -- SHAPE/ROUTINE N
//! ```
//!
//! `SHAPE` is `i64_i64`, `struct_pair` or `struct_mixed24`; `ROUTINE` is
//! `call` (polyload's `Call::call`) or `libffi` (`Cif::call`).

use libffi::middle::{arg, Cif, CodePtr, Type};
use polyload_ffi::{CallBuilder, FfiType, Value};
use std::ffi::c_void;
use std::hint::black_box;

#[path = "../benches/shapes/mod.rs"]
mod shapes;
use shapes::{add_i64, scale, swap, Mixed, Pair};

/// Calls `code` (of exactly the types given) `n` times through `Call::call`.
fn polyload(code: *const c_void, params: &[FfiType], ret: FfiType, vals: &[Value], n: usize) {
    // SAFETY: each function above has exactly the types it is built with.
    let call = unsafe {
        CallBuilder::from_ptr(code)
            .args(params.iter().cloned())
            .returns(ret)
            .build()
    }
    .expect("build");
    for _ in 0..n {
        // SAFETY: as above; no argument is a pointer.
        black_box(unsafe { call.call(black_box(vals)) }.expect("call"));
    }
}

fn main() {
    let mut argv = std::env::args().skip(1);
    let (Some(which), Some(n)) = (argv.next(), argv.next()) else {
        eprintln!("usage: call_loop SHAPE/ROUTINE N (see the example's docs)");
        std::process::exit(2);
    };
    let n: usize = n.parse().expect("N: a count");
    let pair = || FfiType::Struct(vec![FfiType::I32, FfiType::I32]);
    let mixed = || FfiType::Struct(vec![FfiType::U8, FfiType::F64, FfiType::I16]);
    match which.as_str() {
        "i64_i64/call" => polyload(
            add_i64 as *const c_void,
            &[FfiType::I64, FfiType::I64],
            FfiType::I64,
            &[Value::I64(3), Value::I64(4)],
            n,
        ),
        "struct_pair/call" => polyload(
            swap as *const c_void,
            &[pair()],
            pair(),
            &[Value::Struct(vec![Value::I32(1), Value::I32(2)])],
            n,
        ),
        "struct_mixed24/call" => polyload(
            scale as *const c_void,
            &[mixed(), FfiType::I32],
            mixed(),
            &[
                Value::Struct(vec![Value::U8(1), Value::F64(2.5), Value::I16(-3)]),
                Value::I32(4),
            ],
            n,
        ),
        "i64_i64/libffi" => {
            let cif = Cif::new([Type::i64(), Type::i64()], Type::i64());
            let (a, b) = (3i64, 4i64);
            for _ in 0..n {
                // SAFETY: add_i64 matches the cif.
                black_box(unsafe {
                    cif.call::<i64>(CodePtr(add_i64 as *mut _), &[arg(black_box(&a)), arg(&b)])
                });
            }
        }
        "struct_pair/libffi" => {
            let t = || Type::structure([Type::i32(), Type::i32()]);
            let cif = Cif::new([t()], t());
            let p = Pair { a: 1, b: 2 };
            for _ in 0..n {
                // SAFETY: swap matches the cif.
                black_box(unsafe {
                    cif.call::<Pair>(CodePtr(swap as *mut _), &[arg(black_box(&p))])
                });
            }
        }
        "struct_mixed24/libffi" => {
            let t = || Type::structure([Type::u8(), Type::f64(), Type::i16()]);
            let cif = Cif::new([t(), Type::i32()], t());
            let (m, k) = (
                Mixed {
                    a: 1,
                    b: 2.5,
                    c: -3,
                },
                4i32,
            );
            for _ in 0..n {
                // SAFETY: scale matches the cif.
                black_box(unsafe {
                    cif.call::<Mixed>(CodePtr(scale as *mut _), &[arg(black_box(&m)), arg(&k)])
                });
            }
        }
        other => {
            eprintln!("unknown shape/routine `{other}` (see the example's docs)");
            std::process::exit(2);
        }
    }
}
