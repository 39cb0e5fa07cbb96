//! Real system libraries: libc, libm, libz; and bad input.

use polyload_ffi::{
    call_extern, Call, CallBuilder, Callback, FfiError, FfiType, FfiValue, OutBuffer, Signature,
    TypedArg, Value,
};

fn call(lib: &str, sym: &str, sig: &str) -> Call {
    let sig: Signature = sig.parse().unwrap();
    // SAFETY: system libraries with their documented prototypes.
    unsafe { CallBuilder::new(lib, sym).signature(&sig).build() }.unwrap()
}

#[test]
fn libc_scalars() {
    // SAFETY: (block) documented prototypes, no pointer misuse.
    unsafe {
        assert_eq!(
            call("libc.so.6", "strlen", "fn(cstr) -> u64")
                .call(&["hello".into()])
                .unwrap(),
            Value::U64(5)
        );
        assert_eq!(
            call("libc.so.6", "abs", "fn(i32) -> i32")
                .call(&[Value::I32(-42)])
                .unwrap(),
            Value::I32(42)
        );
        assert_eq!(
            call("libc.so.6", "labs", "fn(i64) -> i64")
                .call(&[Value::I64(-1 << 40)])
                .unwrap(),
            Value::I64(1 << 40)
        );
        let abs = CallBuilder::new("libc.so.6", "abs")
            .arg(FfiType::I32)
            .returns(FfiType::I32)
            .build()
            .unwrap();
        assert!(abs.uses_stub());
        assert_eq!(abs.call_raw(&[FfiValue::i32(-3)]).unwrap().as_i32(), 3);
    }
}

#[test]
fn div_and_ldiv_return_structs() {
    // SAFETY: div_t/ldiv_t are {int, int} and {long, long}.
    unsafe {
        let div = call("libc.so.6", "div", "fn(i32, i32) -> {i32, i32}");
        assert_eq!(
            div.call(&[Value::I32(17), Value::I32(5)]).unwrap(),
            Value::Struct(vec![Value::I32(3), Value::I32(2)])
        );
        let ldiv = call("libc.so.6", "ldiv", "fn(i64, i64) -> {i64, i64}");
        assert_eq!(
            ldiv.call(&[Value::I64(-(1 << 40) - 3), Value::I64(1 << 20)])
                .unwrap(),
            Value::Struct(vec![Value::I64(-(1 << 20)), Value::I64(-3)])
        );
    }
}

#[test]
fn qsort_with_a_rust_comparator() {
    let cmp = Callback::new(&"fn(ptr, ptr) -> i32".parse().unwrap(), |args| match args {
        [Value::Ptr(a), Value::Ptr(b)] => {
            // SAFETY: qsort passes pointers to elements of our i32 array.
            let (a, b) = unsafe { (*(*a as *const i32), *(*b as *const i32)) };
            Ok(Value::I32(b.cmp(&a) as i32)) // descending
        }
        _ => Err("bad comparator args".into()),
    })
    .unwrap();
    let data = OutBuffer::from_slice(&[5i32, -1, 9, 3, 3, 0]);
    let qsort = call(
        "libc.so.6",
        "qsort",
        "fn(ptr, u64, u64, fn(ptr, ptr) -> i32)",
    );
    // SAFETY: the buffer holds 6 i32s; the comparator matches and lives.
    let r = unsafe { qsort.call(&[data.value(), Value::U64(6), Value::U64(4), cmp.to_value()]) }
        .unwrap();
    assert_eq!(r, Value::Void);
    assert_eq!(data.to_vec(), vec![9, 5, 3, 3, 0, -1]);

    // A panicking comparator: qsort still returns, the panic is reported.
    let bad = Callback::new(&"fn(ptr, ptr) -> i32".parse().unwrap(), |_| {
        panic!("comparator exploded")
    })
    .unwrap();
    // SAFETY: as above.
    unsafe { qsort.call(&[data.value(), Value::U64(6), Value::U64(4), bad.to_value()]) }.unwrap();
    let msg = polyload_ffi::take_callback_error().unwrap();
    assert!(msg.contains("comparator exploded"), "{msg}");
}

#[test]
fn snprintf_variadic_ints_doubles_strings() {
    let buf = OutBuffer::<u8>::new(128);
    for force in [false, true] {
        // SAFETY: snprintf(char*, size_t, const char*, ...) with matching
        // conversions; the buffer has 128 bytes.
        let n = unsafe {
            CallBuilder::new("libc.so.6", "snprintf")
                .args([FfiType::Pointer, FfiType::U64, FfiType::CString])
                .vararg(FfiType::I32)
                .vararg(FfiType::I64)
                .vararg(FfiType::F64)
                .vararg(FfiType::CString)
                .vararg(FfiType::F32) // promoted to double
                .vararg(FfiType::I8) // promoted to int
                .vararg(FfiType::U16)
                .returns(FfiType::I32)
                .force_libffi(force)
                .build()
                .unwrap()
                .call(&[
                    buf.value(),
                    Value::U64(buf.byte_len() as u64),
                    "%d %ld %.3f %s %.1f %d %u".into(),
                    Value::I32(-7),
                    Value::I64(1 << 40),
                    Value::F64(3.25159),
                    "str".into(),
                    Value::F32(2.5),
                    Value::I8(-3),
                    Value::U16(65535),
                ])
        }
        .unwrap();
        let expect = "-7 1099511627776 3.252 str 2.5 -3 65535";
        assert_eq!(buf.c_string(), expect);
        assert_eq!(n, Value::I32(expect.len() as i32));
    }
}

#[test]
fn libm_sqrt_pow_frexp_ldexp() {
    // SAFETY: (block) documented prototypes; frexp gets a valid int*.
    unsafe {
        assert_eq!(
            call("libm.so.6", "sqrt", "fn(f64) -> f64")
                .call(&[Value::F64(2.0)])
                .unwrap(),
            Value::F64(2f64.sqrt())
        );
        assert_eq!(
            call("libm.so.6", "pow", "fn(f64, f64) -> f64")
                .call(&[Value::F64(2.0), Value::F64(10.0)])
                .unwrap(),
            Value::F64(1024.0)
        );
        assert_eq!(
            call("libm.so.6", "sqrtf", "fn(f32) -> f32")
                .call(&[Value::F32(9.0)])
                .unwrap(),
            Value::F32(3.0)
        );
        let exp = OutBuffer::<i32>::new(1);
        let frexp = call("libm.so.6", "frexp", "fn(f64, ptr) -> f64");
        assert_eq!(
            frexp.call(&[Value::F64(48.0), exp.value()]).unwrap(),
            Value::F64(0.75)
        );
        assert_eq!(exp.get(0), 6);
        let r = frexp.call_raw(&[FfiValue::f64(-0.125), exp.ffi()]).unwrap();
        assert_eq!((r.as_f64(), exp.get(0)), (-0.5, -2));
        let ldexp = call("libm.so.6", "ldexp", "fn(f64, i32) -> f64");
        assert_eq!(
            ldexp.call(&[Value::F64(0.75), Value::I32(6)]).unwrap(),
            Value::F64(48.0)
        );
        let r = call_extern(
            ldexp.code_ptr(),
            &[
                TypedArg::new(FfiType::F64, 1.5f64),
                TypedArg::new(FfiType::I32, -1i32),
            ],
            FfiType::F64,
        )
        .unwrap();
        assert_eq!(r.as_f64(), 0.75);
    }
}

#[test]
fn libz_crc32_and_compress_bound() {
    let data = b"The quick brown fox jumps over the lazy dog";
    let buf = OutBuffer::from_slice(data);
    // SAFETY: crc32(uLong, const Bytef*, uInt) and compressBound(uLong).
    unsafe {
        let crc = call("libz.so.1", "crc32", "fn(u64, ptr, u32) -> u64");
        assert!(crc.uses_stub());
        assert_eq!(
            crc.call(&[Value::U64(0), buf.value(), Value::U32(data.len() as u32)])
                .unwrap(),
            Value::U64(0x414f_a339)
        );
        let bound = call("libz.so.1", "compressBound", "fn(u64) -> u64");
        let Value::U64(b) = bound.call(&[Value::U64(1000)]).unwrap() else {
            panic!()
        };
        assert!((1000..1100).contains(&b), "{b}");
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let pow = call("libm.so.6", "pow", "fn(f64, f64) -> f64");
    // SAFETY: (block) every call below fails before reaching C.
    unsafe {
        let e = pow.call(&[Value::F64(1.0)]).unwrap_err();
        assert!(
            matches!(
                e,
                FfiError::ArgCount {
                    expected: 2,
                    got: 1
                }
            ),
            "{e}"
        );
        let e = pow.call_raw(&[FfiValue::f64(1.0)]).unwrap_err();
        assert!(
            matches!(
                e,
                FfiError::ArgCount {
                    expected: 2,
                    got: 1
                }
            ),
            "{e}"
        );
        let e = pow.call(&[Value::F64(1.0), Value::I32(2)]).unwrap_err();
        assert_eq!(e.to_string(), "argument 2: expected f64, got i32");
        let strlen = call("libc.so.6", "strlen", "fn(cstr) -> u64");
        let e = strlen.call(&["a\0b".into()]).unwrap_err();
        assert!(
            matches!(
                e,
                FfiError::InteriorNul {
                    index: 0,
                    offset: 1
                }
            ),
            "{e}"
        );
        let div = call("libc.so.6", "div", "fn(i32, i32) -> {i32, i32}");
        let e = div
            .call_raw(&[FfiValue::i32(1), FfiValue::i32(1)])
            .unwrap_err();
        assert!(e.to_string().contains("use call"), "{e}");
        let e = CallBuilder::new("libdoesnotexist.so.3", "f")
            .build()
            .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("libdoesnotexist.so.3") && text.contains("LD_LIBRARY_PATH"),
            "{text}"
        );
        let e = CallBuilder::new("/nonexistent/dir/libx.so", "f")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/dir/libx.so"), "{e}");
        let e = CallBuilder::new("libm.so.6", "no_such_function")
            .build()
            .unwrap_err();
        assert!(
            matches!(&e, FfiError::SymbolNotFound { symbol, library, .. } if symbol == "no_such_function" && library == "libm.so.6"),
            "{e}"
        );
        let e = call_extern(
            pow.code_ptr(),
            &[TypedArg::new(FfiType::Str, FfiValue::ZERO)],
            FfiType::F64,
        )
        .unwrap_err();
        assert!(e.to_string().contains("scalars only"), "{e}");
    }
    let e = "fn(f64, f64 -> f64".parse::<Signature>().unwrap_err();
    assert!(e.to_string().contains("column 13"), "{e}");
    // SAFETY: libm is benign.
    let e = unsafe { polyload_ffi::Library::load("m") }.map(|l| l.symbol("cos").is_ok());
    assert_eq!(e.ok(), Some(true));
}
