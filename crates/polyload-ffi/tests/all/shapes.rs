//! Systematic shapes against `tests/c/shapes.c`, each through the call stub
//! (when the shape has one) and forced through libffi, checked against C.

use crate::common::{as_f64, c_call, c_call_via, num, Path, PATHS};
use polyload_ffi::{Callback, FfiType, FfiValue, Signature, Value};

const SCALARS: &[&str] = &[
    "bool", "i8", "u8", "i16", "u16", "i32", "u32", "i64", "u64", "f32", "f64", "ptr",
];

fn ty(name: &str) -> FfiType {
    FfiType::from_keyword(name).unwrap()
}

/// Interesting values per type: extremes, sign bits, fractions.
fn samples(t: &FfiType) -> Vec<Value> {
    match t {
        FfiType::Bool => vec![Value::Bool(false), Value::Bool(true)],
        FfiType::I8 => vec![
            Value::I8(i8::MIN),
            Value::I8(-1),
            Value::I8(0),
            Value::I8(126),
        ],
        FfiType::U8 => vec![Value::U8(0), Value::U8(200), Value::U8(254)],
        FfiType::I16 => vec![Value::I16(i16::MIN), Value::I16(-2), Value::I16(32766)],
        FfiType::U16 => vec![Value::U16(0), Value::U16(65534), Value::U16(40000)],
        FfiType::I32 => vec![
            Value::I32(i32::MIN),
            Value::I32(-3),
            Value::I32(i32::MAX - 1),
        ],
        FfiType::U32 => vec![Value::U32(0), Value::U32(u32::MAX - 1), Value::U32(1 << 31)],
        FfiType::I64 => vec![
            Value::I64(i64::MIN),
            Value::I64(-5),
            Value::I64(i64::MAX - 1),
        ],
        FfiType::U64 => vec![Value::U64(0), Value::U64(u64::MAX - 1)],
        FfiType::F32 => vec![
            Value::F32(-1.25),
            Value::F32(3.4e38 / 4.0),
            Value::F32(1e-40),
        ],
        FfiType::F64 => vec![Value::F64(-0.5), Value::F64(1e300), Value::F64(5e-324)],
        FfiType::Pointer => vec![
            Value::Ptr(0),
            Value::Ptr(0x1000),
            Value::Ptr(usize::MAX - 7),
        ],
        t => panic!("{t}"),
    }
}

/// What `next_T` computes in C.
fn next(v: &Value) -> Value {
    match *v {
        Value::Bool(b) => Value::Bool(!b),
        Value::I8(x) => Value::I8(x.wrapping_add(1)),
        Value::U8(x) => Value::U8(x.wrapping_add(1)),
        Value::I16(x) => Value::I16(x.wrapping_add(1)),
        Value::U16(x) => Value::U16(x.wrapping_add(1)),
        Value::I32(x) => Value::I32(x.wrapping_add(1)),
        Value::U32(x) => Value::U32(x.wrapping_add(1)),
        Value::I64(x) => Value::I64(x.wrapping_add(1)),
        Value::U64(x) => Value::U64(x.wrapping_add(1)),
        Value::F32(x) => Value::F32(x * 2.0),
        Value::F64(x) => Value::F64(x * 2.0),
        Value::Ptr(x) => Value::Ptr(x.wrapping_add(1)),
        ref v => panic!("{v:?}"),
    }
}

#[test]
fn every_scalar_as_argument_and_return_on_both_paths() {
    for name in SCALARS {
        let t = ty(name);
        for force in [false, true] {
            let echo = c_call(
                "shapes",
                &format!("echo_{name}"),
                &format!("fn({name}) -> {name}"),
                force,
            );
            let nx = c_call(
                "shapes",
                &format!("next_{name}"),
                &format!("fn({name}) -> {name}"),
                force,
            );
            assert_eq!(echo.uses_stub(), !force, "{name}");
            for v in samples(&t) {
                // SAFETY: pointers are only echoed or incremented, never read.
                unsafe {
                    assert_eq!(
                        echo.call(std::slice::from_ref(&v)).unwrap(),
                        v,
                        "echo_{name} force={force}"
                    );
                    assert_eq!(
                        nx.call(std::slice::from_ref(&v)).unwrap(),
                        next(&v),
                        "next_{name} force={force}"
                    );
                    let raw = FfiValue::from_value(&t, &v).unwrap();
                    let r = nx.call_raw(&[raw]).unwrap();
                    assert_eq!(
                        r.to_value(&t).unwrap(),
                        next(&v),
                        "raw next_{name} force={force}"
                    );
                }
            }
        }
    }
}

#[test]
fn narrow_integers_are_extended_as_the_callee_expects() {
    for force in [false, true] {
        let f = c_call(
            "shapes",
            "sum_narrow",
            "fn(i8, u8, i16, u16, bool) -> i64",
            force,
        );
        let args = [
            Value::I8(-128),
            Value::U8(255),
            Value::I16(-32768),
            Value::U16(65535),
            Value::Bool(true),
        ];
        // SAFETY: no pointers.
        let r = unsafe { f.call(&args) }.unwrap();
        assert_eq!(
            r,
            Value::I64(-128 + 255 - 32768 + 65535 + 1),
            "force={force}"
        );
        let f = c_call("shapes", "as_i64_from_i8", "fn(i8) -> i64", force);
        // SAFETY: no pointers; raw value holds an i8.
        assert_eq!(
            // SAFETY: as the SAFETY note above: no pointers; raw value holds an i8.
            unsafe { f.call_raw(&[FfiValue::i8(-2)]) }.unwrap().as_i64(),
            -2
        );
    }
}

const CYCLE: [&str; 8] = ["i64", "f64", "i32", "f32", "u8", "f64", "i16", "u64"];

#[test]
fn one_to_sixteen_mixed_arguments() {
    for n in 1..=16usize {
        let kinds: Vec<&str> = (0..n).map(|i| CYCLE[i % 8]).collect();
        let args: Vec<Value> = kinds
            .iter()
            .enumerate()
            .map(|(i, k)| {
                num(
                    &ty(k),
                    (i as f64 + 1.0) * if i % 3 == 0 { -1.5 } else { 2.25 },
                )
            })
            .collect();
        let expect = args
            .iter()
            .enumerate()
            .fold(0.0, |acc, (i, v)| acc + as_f64(v) * (i + 1) as f64);
        let sig = format!("fn({}) -> f64", kinds.join(", "));
        let ints: Vec<Value> = (0..n).map(|i| Value::I64(i as i64 * 1000 - 7)).collect();
        let int_expect: i64 = (0..n as i64).map(|i| (i * 1000 - 7) * (i + 1)).sum();
        let floats: Vec<Value> = (0..n).map(|i| Value::F64(i as f64 / 3.0)).collect();
        let float_expect = (0..n).fold(0.0, |acc, i| acc + (i as f64 / 3.0) * (i + 1) as f64);
        for force in [false, true] {
            let mix = c_call("shapes", &format!("mix{n}"), &sig, force);
            let ints_f = c_call(
                "shapes",
                &format!("ints{n}"),
                &format!("fn({}) -> i64", vec!["i64"; n].join(", ")),
                force,
            );
            let floats_f = c_call(
                "shapes",
                &format!("floats{n}"),
                &format!("fn({}) -> f64", vec!["f64"; n].join(", ")),
                force,
            );
            if !force {
                // Registers first (6 INTEGER, 8 SSE), then up to 10 stack
                // words on x86-64 (see polyload_ffi::stub).
                let stack = if cfg!(target_arch = "x86_64") { 10 } else { 0 };
                let fits = |ints: usize, floats: usize| {
                    ints.saturating_sub(6) + floats.saturating_sub(8) <= stack
                };
                let int_count = kinds.iter().filter(|k| !k.starts_with('f')).count();
                assert_eq!(mix.uses_stub(), fits(int_count, n - int_count), "mix{n}");
                assert_eq!(ints_f.uses_stub(), fits(n, 0));
                assert_eq!(floats_f.uses_stub(), fits(0, n));
                if cfg!(target_arch = "x86_64") && n > 8 {
                    assert!(
                        ints_f.uses_stub() && floats_f.uses_stub(),
                        "stack words on the stub path"
                    );
                }
            }
            // SAFETY: no pointers.
            unsafe {
                assert_eq!(
                    mix.call(&args).unwrap(),
                    Value::F64(expect),
                    "mix{n} force={force}"
                );
                assert_eq!(
                    ints_f.call(&ints).unwrap(),
                    Value::I64(int_expect),
                    "ints{n}"
                );
                assert_eq!(
                    floats_f.call(&floats).unwrap(),
                    Value::F64(float_expect),
                    "floats{n}"
                );
            }
        }
    }
}

const STRUCTS: &[(&str, &str)] = &[
    ("S1", "{i32}"),
    ("S2", "{i32, f32}"),
    ("S3", "{u8, f64, u16}"),
    ("S4", "{f64, f64}"),
    ("S5", "{i64, i8, f32, f64, u16}"),
    ("S6", "{i8, i16, i32}"),
    ("S7", "{f32, f32, f32}"),
    ("S8", "{i64, f64}"),
    ("S9", "{u8, u8, u8}"),
    // One kind throughout (the call stubs' uniform path): in memory, in
    // two INTEGER eightbytes, `_Bool`.
    ("S10", "{i64, i64, i64}"),
    ("S11", "{f32, f32, f32, f32, f32}"),
    ("S12", "{i16, i16, i16, i16, i16}"),
    ("S13", "{f64, f64, f64}"),
    ("S14", "{bool, bool}"),
];

#[test]
fn structs_by_value_as_arguments_and_returns() {
    for (name, text) in STRUCTS {
        let st: FfiType = text.parse().unwrap();
        let FfiType::Struct(fields) = &st else {
            unreachable!()
        };
        let size = st.layout().size;
        for path in PATHS {
            let force = path == Path::Libffi;
            let make = c_call_via(
                "shapes",
                &format!("make_{name}"),
                &format!("fn(i32) -> {text}"),
                path,
            );
            let sum = c_call_via(
                "shapes",
                &format!("sum_{name}"),
                &format!("fn({text}) -> f64"),
                path,
            );
            let late = c_call_via(
                "shapes",
                &format!("sum_{name}_late"),
                &format!("fn(i64, i64, i64, i64, i64, f64, {text}) -> f64"),
                path,
            );
            let twice = c_call_via(
                "shapes",
                &format!("twice_{name}"),
                &format!("fn({text}) -> {text}"),
                path,
            );
            // All six INTEGER registers taken: a struct with an INTEGER
            // eightbyte goes whole to the stack, before `g`; `x` still
            // takes an SSE register.
            let spill = c_call_via(
                "shapes",
                &format!("spill_{name}"),
                &format!("fn(i64, i64, i64, i64, i64, i64, {text}, i64, f64) -> f64"),
                path,
            );
            if cfg!(target_arch = "x86_64") && !force {
                for f in [&make, &sum, &late, &twice, &spill] {
                    assert!(f.uses_stub(), "{name}: struct shapes have stubs on x86-64");
                    assert_eq!(
                        f.uses_jit(),
                        path == Path::Jit && cfg!(feature = "jit"),
                        "{name}: flat struct shapes get marshallers on x86-64"
                    );
                }
            }
            for seed in [3i32, -7, 100] {
                let expect_fields: Vec<Value> = fields
                    .iter()
                    .enumerate()
                    .map(|(i, f)| num(f, f64::from(seed) + i as f64))
                    .collect();
                let expect = Value::Struct(expect_fields.clone());
                let weighted = expect_fields
                    .iter()
                    .enumerate()
                    .fold(0.0, |a, (i, v)| a + as_f64(v) * (i + 1) as f64);
                // SAFETY: no pointers.
                unsafe {
                    let made = make.call(&[Value::I32(seed)]).unwrap();
                    assert_eq!(made, expect, "make_{name} ({size} bytes, {path:?})");
                    assert_eq!(
                        sum.call(std::slice::from_ref(&made)).unwrap(),
                        Value::F64(weighted),
                        "sum_{name} {path:?}"
                    );
                    let late_args = [
                        Value::I64(1),
                        Value::I64(2),
                        Value::I64(3),
                        Value::I64(4),
                        Value::I64(5),
                        Value::F64(0.5),
                        made.clone(),
                    ];
                    let got = late.call(&late_args).unwrap();
                    // libffi < 3.4.7 on x86-64 corrupts xmm0 when a two-eightbyte
                    // struct starts in the sixth GP register (libffi PR #848);
                    // the call stub has no such bug.
                    if !(force && *name == "S8" && cfg!(target_arch = "x86_64")) {
                        assert_eq!(got, Value::F64(15.5 + weighted), "sum_{name}_late {path:?}");
                    }
                    let mut spill_args: Vec<Value> = (1..=6).map(Value::I64).collect();
                    spill_args.extend([made.clone(), Value::I64(7), Value::F64(0.25)]);
                    assert_eq!(
                        spill.call(&spill_args).unwrap(),
                        Value::F64(21.0 + weighted + 70.25),
                        "spill_{name} {path:?}"
                    );
                    let doubled: Vec<Value> = fields
                        .iter()
                        .zip(&expect_fields)
                        .map(|(f, v)| num(f, as_f64(v) * 2.0))
                        .collect();
                    assert_eq!(
                        twice.call(&[made]).unwrap(),
                        Value::Struct(doubled),
                        "twice_{name} {path:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn callbacks_taking_and_returning_each_scalar() {
    for name in SCALARS {
        let t = ty(name);
        let sig: Signature = format!("fn({name}) -> {name}").parse().unwrap();
        let t2 = t.clone();
        let cb = Callback::new(&sig, move |args| {
            args[0].check(&t2).map_err(|e| e.to_string())?;
            Ok(next(&args[0]))
        })
        .unwrap();
        for force in [false, true] {
            let drive = c_call(
                "shapes",
                &format!("call_{name}"),
                &format!("fn(fn({name}) -> {name}, {name}) -> {name}"),
                force,
            );
            for v in samples(&t) {
                // SAFETY: the callback has the declared signature and lives.
                let r = unsafe { drive.call(&[cb.to_value(), v.clone()]) }.unwrap();
                assert_eq!(r, next(&v), "call_{name} force={force}");
            }
        }
    }
}

#[test]
fn structs_with_fixed_arrays() {
    let sa = |k: f32, tag: i32| {
        Value::Struct(vec![
            Value::Array(vec![
                Value::F32(k),
                Value::F32(k + 1.0),
                Value::F32(k + 2.0),
            ]),
            Value::I32(tag),
        ])
    };
    let sb = |k: u8, n: i64, d: f64| {
        Value::Struct(vec![
            Value::Array((0..5).map(|i| Value::U8(k + i)).collect()),
            Value::I64(n),
            Value::F64(d),
        ])
    };
    for path in PATHS {
        let force = path == Path::Libffi;
        let sum_a = c_call_via("shapes", "sum_SA", "fn({[f32; 3], i32}) -> f64", path);
        let twice_a = c_call_via(
            "shapes",
            "twice_SA",
            "fn({[f32; 3], i32}) -> {[f32; 3], i32}",
            path,
        );
        let sum_b = c_call_via("shapes", "sum_SB", "fn({[u8; 5], i64, f64}) -> f64", path);
        let twice_b = c_call_via(
            "shapes",
            "twice_SB",
            "fn({[u8; 5], i64, f64}) -> {[u8; 5], i64, f64}",
            path,
        );
        if cfg!(target_arch = "x86_64") && !force {
            for f in [&sum_a, &twice_a, &sum_b, &twice_b] {
                assert!(f.uses_stub());
                assert_eq!(f.uses_jit(), path == Path::Jit && cfg!(feature = "jit"));
            }
        }
        // SAFETY: no pointers.
        unsafe {
            assert_eq!(
                sum_a.call(&[sa(1.5, -3)]).unwrap(),
                Value::F64(1.5 + 5.0 + 10.5 - 12.0),
                "{path:?}"
            );
            assert_eq!(
                twice_a.call(&[sa(1.5, -3)]).unwrap(),
                Value::Struct(vec![
                    Value::Array(vec![Value::F32(3.0), Value::F32(5.0), Value::F32(7.0)]),
                    Value::I32(-6),
                ]),
                "{path:?}"
            );
            assert_eq!(
                sum_b.call(&[sb(10, -4, 0.5)]).unwrap(),
                Value::F64(10.0 + 22.0 + 36.0 + 52.0 + 70.0 - 24.0 + 3.5),
                "{path:?}"
            );
            assert_eq!(
                twice_b.call(&[sb(10, -4, 0.5)]).unwrap(),
                Value::Struct(vec![
                    Value::Array((0..5).map(|i| Value::U8(2 * (10 + i))).collect()),
                    Value::I64(-8),
                    Value::F64(1.0),
                ])
            );
        }
    }
}

#[test]
fn a_struct_argument_of_the_wrong_shape_is_an_error() {
    for path in PATHS {
        let sum = c_call_via("shapes", "sum_S2", "fn({i32, f32}) -> f64", path);
        for bad in [
            Value::Struct(vec![Value::I32(1)]),
            Value::Struct(vec![Value::I32(1), Value::F64(2.0)]),
            Value::I32(1),
            Value::Struct(vec![Value::F32(1.0), Value::F32(2.0)]),
            Value::Struct(vec![Value::I32(1), Value::F32(2.0), Value::I32(3)]),
        ] {
            // SAFETY: no pointers; the call is refused before it is made.
            let e = unsafe { sum.call(std::slice::from_ref(&bad)) }.unwrap_err();
            assert!(
                matches!(e, polyload_ffi::FfiError::BadArgument { index: 0, .. }),
                "{bad:?} {path:?}: {e}"
            );
        }
        let sum_a = c_call_via("shapes", "sum_SA", "fn({[f32; 3], i32}) -> f64", path);
        let arr = |elems: Vec<Value>| Value::Struct(vec![Value::Array(elems), Value::I32(1)]);
        for bad in [
            arr(vec![Value::F32(1.0), Value::F32(2.0)]),
            arr(vec![Value::F32(1.0), Value::F32(2.0), Value::F64(3.0)]),
            Value::Struct(vec![Value::F32(1.0), Value::I32(1)]),
        ] {
            // SAFETY: no pointers; the call is refused before it is made.
            let e = unsafe { sum_a.call(std::slice::from_ref(&bad)) }.unwrap_err();
            assert!(
                matches!(e, polyload_ffi::FfiError::BadArgument { index: 0, .. }),
                "{bad:?} {path:?}: {e}"
            );
        }
        // SAFETY: as above.
        let e = unsafe { sum_a.call(&[]) }.unwrap_err();
        assert!(
            matches!(
                e,
                polyload_ffi::FfiError::ArgCount {
                    expected: 1,
                    got: 0
                }
            ),
            "{e}"
        );
    }
}

#[test]
fn call_into_matches_call_and_keeps_the_result_allocation() {
    for (name, text) in STRUCTS {
        for path in PATHS {
            let force = path == Path::Libffi;
            let make = c_call_via(
                "shapes",
                &format!("make_{name}"),
                &format!("fn(i32) -> {text}"),
                path,
            );
            let twice = c_call_via(
                "shapes",
                &format!("twice_{name}"),
                &format!("fn({text}) -> {text}"),
                path,
            );
            let mut ret = Value::Struct(Vec::new());
            let mut buffer = None;
            for seed in [3i32, -7, 100] {
                // SAFETY: no pointers.
                unsafe {
                    let made = make.call(&[Value::I32(seed)]).unwrap();
                    let expect = twice.call(std::slice::from_ref(&made)).unwrap();
                    twice
                        .call_into(std::slice::from_ref(&made), &mut ret)
                        .unwrap();
                    assert_eq!(ret, expect, "twice_{name} ({path:?})");
                }
                let Value::Struct(fields) = &ret else {
                    unreachable!()
                };
                // From the second call on, the stub path refills the same
                // vector.
                if !force && twice.uses_stub() {
                    let ptr = fields.as_ptr();
                    assert_eq!(*buffer.get_or_insert(ptr), ptr, "twice_{name} reallocated");
                }
            }
            // A bad argument fails before the call and leaves `ret` as it was.
            let before = ret.clone();
            // SAFETY: the call is refused before reaching C.
            let err = unsafe { twice.call_into(&[Value::I32(1)], &mut ret) }.unwrap_err();
            assert!(err.to_string().contains("argument 1: "), "{err}");
            assert_eq!(ret, before);
        }
    }
    // A scalar result replaces whatever `ret` held.
    let echo = c_call("shapes", "echo_i32", "fn(i32) -> i32", false);
    let mut ret = Value::Struct(vec![Value::I8(1)]);
    // SAFETY: no pointers.
    unsafe { echo.call_into(&[Value::I32(5)], &mut ret) }.unwrap();
    assert_eq!(ret, Value::I32(5));
}

/// One `Call` with a compiled marshaller, shared by threads that call it
/// at once, then dropped (which unmaps its code) while another `Call` of
/// the same signature keeps working.
#[test]
fn a_marshalled_call_is_shared_by_threads_and_dropped() {
    let text = "{u8, f64, u16}";
    let sig = format!("fn({text}) -> {text}");
    let twice = c_call_via("shapes", "twice_S3", &sig, Path::Jit);
    let other = c_call_via("shapes", "twice_S3", &sig, Path::Jit);
    let arg = |k: u8| {
        Value::Struct(vec![
            Value::U8(k),
            Value::F64(f64::from(k) / 4.0),
            Value::U16(300),
        ])
    };
    let doubled = |k: u8| {
        Value::Struct(vec![
            Value::U8(k.wrapping_mul(2)),
            Value::F64(f64::from(k) / 2.0),
            Value::U16(600),
        ])
    };
    std::thread::scope(|s| {
        for t in 0..4u8 {
            let twice = &twice;
            s.spawn(move || {
                for i in 0..2000u32 {
                    let k = (i as u8).wrapping_add(t);
                    // SAFETY: no pointers.
                    let got = unsafe { twice.call(&[arg(k)]) }.unwrap();
                    assert_eq!(got, doubled(k));
                }
            });
        }
    });
    drop(twice);
    // SAFETY: no pointers.
    assert_eq!(unsafe { other.call(&[arg(7)]) }.unwrap(), doubled(7));
}
