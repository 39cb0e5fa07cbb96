//! `Call` (call stubs / libffi fallback) against libffi's `Cif::call` on the
//! same functions, one group per shape so every figure is a ratio. Struct
//! shapes also time `Call::call_into`, which refills the previous result,
//! and, for scale, libffi followed by building the `Value` that `call`
//! returns (`libffi_value`).
//!
//! cargo bench -p polyload-ffi --bench ffi

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, Bencher, BenchmarkGroup, Criterion};
use libffi::middle::{arg, Cif, CodePtr, Type};
use polyload_ffi::{Call, CallBuilder, FfiType, FfiValue, Value};
use std::ffi::c_void;
use std::hint::black_box;
use std::time::Duration;

mod shapes;
use shapes::{add_f64, add_i64, eight, mix, norm1, scale, swap, Mixed, Pair, Vec3Tag};

/// Times `f`, hiding each result from the optimizer with
/// `std::hint::black_box` and returning nothing to criterion: criterion
/// 0.5's own `black_box` (a `read_volatile` copy of each output) would add
/// the cost of that copy to every figure, more for a 32-byte `Value` than
/// for libffi's bare `i64`.
fn run<O>(bn: &mut Bencher, mut f: impl FnMut() -> O) {
    bn.iter(|| {
        black_box(f());
    })
}

fn build(code: *const c_void, params: &[FfiType], ret: FfiType) -> polyload_ffi::Call {
    build_jit(code, params, ret, true)
}

/// [`build`] with the compiled marshaller on or off (`CallBuilder::jit`).
fn build_jit(code: *const c_void, params: &[FfiType], ret: FfiType, jit: bool) -> Call {
    // SAFETY: each bench function has exactly these types.
    unsafe {
        CallBuilder::from_ptr(code)
            .args(params.iter().cloned())
            .returns(ret)
            .jit(jit)
            .build()
    }
    .unwrap()
}

/// Times `Call::call` and `Call::call_into` (refilling one result) of a
/// struct-returning `call` with `vals`, and `call` of `stub`, the same
/// call built without its compiled marshaller (the generic stub path).
fn call_and_call_into(
    g: &mut BenchmarkGroup<'_, WallTime>,
    call: &Call,
    stub: &Call,
    vals: &[Value],
) {
    assert_eq!(call.uses_jit(), cfg!(feature = "jit"));
    assert!(!stub.uses_jit());
    // SAFETY: (all routines) `call` and `stub` were built for their bench
    // function's exact types, and no argument is a pointer.
    g.bench_function("call", |bn| {
        // SAFETY: built for the bench function's exact types; no argument is a pointer.
        run(bn, || unsafe { call.call(black_box(vals)) }.unwrap())
    });
    g.bench_function("call_stub", |bn| {
        // SAFETY: built for the bench function's exact types; no argument is a pointer.
        run(bn, || unsafe { stub.call(black_box(vals)) }.unwrap())
    });
    let mut ret = Value::Struct(Vec::new());
    g.bench_function("call_into", |bn| {
        run(bn, || {
            // SAFETY: built for the bench function's exact types; no argument is a pointer.
            unsafe { call.call_into(black_box(vals), &mut ret) }.unwrap()
        })
    });
}

fn bench(c: &mut Criterion) {
    {
        let mut g = c.benchmark_group("i64_i64");
        let code = add_i64 as *const c_void;
        let cif = Cif::new([Type::i64(), Type::i64()], Type::i64());
        let call = build(code, &[FfiType::I64, FfiType::I64], FfiType::I64);
        assert!(call.uses_stub());
        let (a, b) = (3i64, 4i64);
        g.bench_function("libffi", |bn| {
            // SAFETY: add_i64 matches the cif.
            run(bn, || unsafe {
                cif.call::<i64>(
                    CodePtr(code as *mut _),
                    &[arg(black_box(&a)), arg(black_box(&b))],
                )
            })
        });
        let raw = [FfiValue::i64(a), FfiValue::i64(b)];
        g.bench_function("call_raw", |bn| {
            // SAFETY: built for the bench function's exact types; no argument is a pointer.
            run(bn, || unsafe { call.call_raw(black_box(&raw)) }.unwrap())
        });
        let vals = [Value::I64(a), Value::I64(b)];
        g.bench_function("call", |bn| {
            // SAFETY: built for the bench function's exact types; no argument is a pointer.
            run(bn, || unsafe { call.call(black_box(&vals)) }.unwrap())
        });
        g.finish();
    }
    {
        let mut g = c.benchmark_group("f64_f64");
        let code = add_f64 as *const c_void;
        let cif = Cif::new([Type::f64(), Type::f64()], Type::f64());
        let call = build(code, &[FfiType::F64, FfiType::F64], FfiType::F64);
        let (a, b) = (3.0f64, 4.0f64);
        g.bench_function("libffi", |bn| {
            // SAFETY: add_f64 matches the cif.
            run(bn, || unsafe {
                cif.call::<f64>(
                    CodePtr(code as *mut _),
                    &[arg(black_box(&a)), arg(black_box(&b))],
                )
            })
        });
        let raw = [FfiValue::f64(a), FfiValue::f64(b)];
        g.bench_function("call_raw", |bn| {
            // SAFETY: built for the bench function's exact types; no argument is a pointer.
            run(bn, || unsafe { call.call_raw(black_box(&raw)) }.unwrap())
        });
        let vals = [Value::F64(a), Value::F64(b)];
        g.bench_function("call", |bn| {
            // SAFETY: built for the bench function's exact types; no argument is a pointer.
            run(bn, || unsafe { call.call(black_box(&vals)) }.unwrap())
        });
        g.finish();
    }
    {
        let mut g = c.benchmark_group("mixed5");
        let code = mix as *const c_void;
        let cif = Cif::new(
            [
                Type::i32(),
                Type::f64(),
                Type::u8(),
                Type::f32(),
                Type::i64(),
            ],
            Type::f64(),
        );
        let tys = [
            FfiType::I32,
            FfiType::F64,
            FfiType::U8,
            FfiType::F32,
            FfiType::I64,
        ];
        let call = build(code, &tys, FfiType::F64);
        let (a, b, cc, d, e) = (1i32, 2.0f64, 3u8, 4.0f32, 5i64);
        g.bench_function("libffi", |bn| {
            // SAFETY: mix matches the cif.
            run(bn, || unsafe {
                cif.call::<f64>(
                    CodePtr(code as *mut _),
                    &[arg(black_box(&a)), arg(&b), arg(&cc), arg(&d), arg(&e)],
                )
            })
        });
        let raw = [
            FfiValue::i32(a),
            FfiValue::f64(b),
            FfiValue::u8(cc),
            FfiValue::f32(d),
            FfiValue::i64(e),
        ];
        g.bench_function("call_raw", |bn| {
            // SAFETY: built for the bench function's exact types; no argument is a pointer.
            run(bn, || unsafe { call.call_raw(black_box(&raw)) }.unwrap())
        });
        let vals = [
            Value::I32(a),
            Value::F64(b),
            Value::U8(cc),
            Value::F32(d),
            Value::I64(e),
        ];
        g.bench_function("call", |bn| {
            // SAFETY: built for the bench function's exact types; no argument is a pointer.
            run(bn, || unsafe { call.call(black_box(&vals)) }.unwrap())
        });
        g.finish();
    }
    {
        // 8 integer arguments: 2 on the stack (stack words of the stub on
        // x86-64, libffi elsewhere).
        let mut g = c.benchmark_group("i64x8_stack");
        let code = eight as *const c_void;
        let cif = Cif::new(vec![Type::i64(); 8], Type::i64());
        let call = build(code, &vec![FfiType::I64; 8], FfiType::I64);
        assert_eq!(call.uses_stub(), cfg!(target_arch = "x86_64"));
        let xs = [1i64, 2, 3, 4, 5, 6, 7, 8];
        g.bench_function("libffi", |bn| {
            // SAFETY: eight matches the cif.
            run(bn, || unsafe {
                let args: Vec<_> = xs.iter().map(arg).collect();
                cif.call::<i64>(CodePtr(code as *mut _), black_box(&args))
            })
        });
        let raw: Vec<FfiValue> = xs.iter().map(|x| FfiValue::i64(*x)).collect();
        g.bench_function("call_raw", |bn| {
            // SAFETY: built for the bench function's exact types; no argument is a pointer.
            run(bn, || unsafe { call.call_raw(black_box(&raw)) }.unwrap())
        });
        let vals: Vec<Value> = xs.iter().map(|x| Value::I64(*x)).collect();
        g.bench_function("call", |bn| {
            // SAFETY: built for the bench function's exact types; no argument is a pointer.
            run(bn, || unsafe { call.call(black_box(&vals)) }.unwrap())
        });
        g.finish();
    }
    {
        // A struct by value in and out: libffi on both sides.
        let mut g = c.benchmark_group("struct_pair");
        let code = swap as *const c_void;
        let cif = Cif::new(
            [Type::structure([Type::i32(), Type::i32()])],
            Type::structure([Type::i32(), Type::i32()]),
        );
        let st = FfiType::Struct(vec![FfiType::I32, FfiType::I32]);
        let call = build(code, std::slice::from_ref(&st), st.clone());
        let stub = build_jit(code, std::slice::from_ref(&st), st.clone(), false);
        let p = Pair { a: 1, b: 2 };
        g.bench_function("libffi", |bn| {
            // SAFETY: swap matches the cif.
            run(bn, || unsafe {
                cif.call::<Pair>(CodePtr(code as *mut _), &[arg(black_box(&p))])
            })
        });
        // For scale, not the target: libffi's result made into the same
        // `Value` with `vec!` (fields known at compile time), as a caller
        // of libffi that must own the result would.
        g.bench_function("libffi_value", |bn| {
            run(bn, || {
                // SAFETY: swap matches the cif.
                let r = unsafe { cif.call::<Pair>(CodePtr(code as *mut _), &[arg(black_box(&p))]) };
                Value::Struct(vec![Value::I32(r.a), Value::I32(r.b)])
            })
        });
        let vals = [Value::Struct(vec![Value::I32(1), Value::I32(2)])];
        call_and_call_into(&mut g, &call, &stub, &vals);
        g.finish();
    }
    {
        // A struct of mixed fields over 16 bytes, by value in and out:
        // stack words in, a memory return out.
        let mut g = c.benchmark_group("struct_mixed24");
        let code = scale as *const c_void;
        let ct = || Type::structure([Type::u8(), Type::f64(), Type::i16()]);
        let cif = Cif::new([ct(), Type::i32()], ct());
        let st = FfiType::Struct(vec![FfiType::U8, FfiType::F64, FfiType::I16]);
        let call = build(code, &[st.clone(), FfiType::I32], st.clone());
        let stub = build_jit(code, &[st.clone(), FfiType::I32], st, false);
        let m = Mixed {
            a: 1,
            b: 2.5,
            c: -3,
        };
        let k = 4i32;
        g.bench_function("libffi", |bn| {
            // SAFETY: scale matches the cif.
            run(bn, || unsafe {
                cif.call::<Mixed>(CodePtr(code as *mut _), &[arg(black_box(&m)), arg(&k)])
            })
        });
        g.bench_function("libffi_value", |bn| {
            run(bn, || {
                // SAFETY: scale matches the cif.
                let r = unsafe {
                    cif.call::<Mixed>(CodePtr(code as *mut _), &[arg(black_box(&m)), arg(&k)])
                };
                Value::Struct(vec![Value::U8(r.a), Value::F64(r.b), Value::I16(r.c)])
            })
        });
        let vals = [
            Value::Struct(vec![Value::U8(1), Value::F64(2.5), Value::I16(-3)]),
            Value::I32(4),
        ];
        call_and_call_into(&mut g, &call, &stub, &vals);
        g.finish();
    }
    {
        // A struct holding a fixed array, by value, with a scalar return
        // (libffi has no array type: the same bytes as three f32 fields).
        let mut g = c.benchmark_group("struct_array");
        let code = norm1 as *const c_void;
        let cif = Cif::new(
            [Type::structure([
                Type::f32(),
                Type::f32(),
                Type::f32(),
                Type::i32(),
            ])],
            Type::f64(),
        );
        let st: FfiType = "{[f32; 3], i32}".parse().unwrap();
        let call = build(code, &[st], FfiType::F64);
        let m = Vec3Tag {
            v: [1.0, 2.0, 3.0],
            tag: 4,
        };
        g.bench_function("libffi", |bn| {
            // SAFETY: norm1 matches the cif.
            run(bn, || unsafe {
                cif.call::<f64>(CodePtr(code as *mut _), &[arg(black_box(&m))])
            })
        });
        let vals = [Value::Struct(vec![
            Value::Array(vec![Value::F32(1.0), Value::F32(2.0), Value::F32(3.0)]),
            Value::I32(4),
        ])];
        // SAFETY: `call` was built for norm1's types; no pointers.
        g.bench_function("call", |bn| {
            // SAFETY: built for the bench function's exact types; no argument is a pointer.
            run(bn, || unsafe { call.call(black_box(&vals)) }.unwrap())
        });
        g.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(30)
}

criterion_group! { name = benches; config = config(); targets = bench }
criterion_main!(benches);
