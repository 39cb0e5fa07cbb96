//! Generic items: functions at their instantiations (num-integer), a
//! generic type at two (indexmap's `IndexSet<T>`), and a generic struct's
//! public fields (num-complex's `Complex<f64>`).

use super::{call, handle, repo, runtime, s, RT};
use polyload::Value;
use serde_json::json;

#[test]
fn generic_functions_at_their_instantiations() {
    assert_eq!(
        call("numint.gcd_i64", &[Value::I64(-84), Value::I64(36)]).unwrap(),
        Value::I64(12)
    );
    assert_eq!(
        call("numint.lcm_i64", &[Value::I64(4), Value::I64(6)]).unwrap(),
        Value::I64(12)
    );
    assert_eq!(
        call(
            "numint.gcd_u64",
            &[Value::U64(1 << 40), Value::U64(1 << 20)]
        )
        .unwrap(),
        Value::U64(1 << 20)
    );
    assert_eq!(
        call("numint.binomial_u64", &[Value::U64(10), Value::U64(3)]).unwrap(),
        Value::U64(120)
    );
    assert_eq!(
        call("numint.isqrt", &[Value::U64(1_000_001)]).unwrap(),
        Value::U64(1000)
    );
    let sig = |n: &str| RT.definition(n).unwrap().signature.to_string();
    assert_eq!(sig("numint.gcd_i64"), "fn(i64, i64) -> i64");
}

/// A generic type (`indexmap::IndexSet<T>`) at two instantiations: each
/// is its own handle type, so a set of `i64` is refused where a set of
/// `String` is expected; its methods come from generic impls (`impl<T, S>
/// IndexSet<T, S>`, `S` at its default).
#[test]
fn a_generic_type_at_two_instantiations() {
    let rt = runtime(None);
    rt.load_bundle(repo().join("examples/rimport/ixset"))
        .unwrap();
    let c = |name: &str, args: &[Value]| rt.call(&format!("ixset.{name}"), args);
    let sig = |name: &str| {
        rt.definition(&format!("ixset.{name}"))
            .unwrap()
            .signature
            .to_string()
    };
    assert_eq!(
        sig("IndexSet_insert_i64"),
        "fn(handle<indexmap::IndexSet<i64>>, i64) -> bool"
    );
    assert_eq!(
        sig("IndexSet_new_String"),
        "fn() -> handle<indexmap::IndexSet<String>>"
    );
    let ints = handle(c("IndexSet_new_i64", &[]).unwrap());
    let inserted: Vec<Value> = [3, 1, 3, 2]
        .iter()
        .map(|&v| c("IndexSet_insert_i64", &[Value::U64(ints), Value::I64(v)]).unwrap())
        .collect();
    assert_eq!(
        inserted,
        [true, true, false, true].map(Value::Bool).to_vec()
    );
    assert_eq!(
        c("IndexSet_len_i64", &[Value::U64(ints)]).unwrap(),
        Value::U64(3)
    );
    assert_eq!(
        c("IndexSet_contains_i64", &[Value::U64(ints), Value::I64(2)]).unwrap(),
        Value::Bool(true)
    );
    assert_eq!(
        c("IndexSet_contains_i64", &[Value::U64(ints), Value::I64(5)]).unwrap(),
        Value::Bool(false)
    );
    // Insertion order, then sorted.
    assert_eq!(
        c(
            "IndexSet_get_index_of_i64",
            &[Value::U64(ints), Value::I64(1)]
        )
        .unwrap(),
        Value::Json(json!(1))
    );
    assert_eq!(
        c("IndexSet_first_i64", &[Value::U64(ints)]).unwrap(),
        Value::Json(json!(3))
    );
    c("IndexSet_sort_i64", &[Value::U64(ints)]).unwrap();
    assert_eq!(
        c("IndexSet_first_i64", &[Value::U64(ints)]).unwrap(),
        Value::Json(json!(1))
    );
    assert_eq!(
        c("IndexSet_i64_to_string", &[Value::U64(ints)]).unwrap(),
        s("{1, 2, 3}")
    );
    let words = handle(c("IndexSet_new_String", &[]).unwrap());
    for w in ["pear", "apple", "pear"] {
        c("IndexSet_insert_String", &[Value::U64(words), s(w)]).unwrap();
    }
    assert_eq!(
        c("IndexSet_len_String", &[Value::U64(words)]).unwrap(),
        Value::U64(2)
    );
    // A set of one type where the other is expected: an error naming both.
    let e = c("IndexSet_len_String", &[Value::U64(ints)])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(
            "holds a `indexmap::set::IndexSet<i64>`, not a `indexmap::set::IndexSet<String>`"
        ),
        "{e}"
    );
    c("IndexSet_i64_drop", &[Value::U64(ints)]).unwrap();
    assert!(c("IndexSet_len_i64", &[Value::U64(ints)]).is_err());
    assert_eq!(c("live_handles", &[]).unwrap(), Value::U64(1));
}

/// A generic struct with public fields (`num_complex::Complex<T>` at
/// `f64`): fields read through the type's parameter, methods from bounded
/// impls, `Display` for its `to_string`.
#[test]
fn a_generic_struct_with_public_fields() {
    let rt = runtime(None);
    rt.load_bundle(repo().join("examples/rimport/complex"))
        .unwrap();
    let c = |name: &str, args: &[Value]| rt.call(&format!("complex.{name}"), args).unwrap();
    let f = |v: Value| match v {
        Value::F64(x) => x,
        other => panic!("not an f64: {other:?}"),
    };
    let z = c("Complex_new_f64", &[Value::F64(3.0), Value::F64(4.0)]);
    assert_eq!(f(c("Complex_re_f64", std::slice::from_ref(&z))), 3.0);
    assert_eq!(f(c("Complex_norm_f64", std::slice::from_ref(&z))), 5.0);
    assert_eq!(
        c("Complex_f64_to_string", std::slice::from_ref(&z)),
        s("3+4i")
    );
    let conj = c("Complex_conj_f64", std::slice::from_ref(&z));
    assert_eq!(f(c("Complex_im_f64", &[conj])), -4.0);
    // (3 + 4i)^2 = -7 + 24i
    let sq = c("Complex_powu_f64", &[z.clone(), Value::U32(2)]);
    assert_eq!(c("Complex_f64_to_string", &[sq]), s("-7+24i"));
    let p = c(
        "Complex_from_polar_f64",
        &[Value::F64(2.0), Value::F64(std::f64::consts::FRAC_PI_2)],
    );
    assert!(
        (f(c("Complex_arg_f64", std::slice::from_ref(&p))) - std::f64::consts::FRAC_PI_2).abs()
            < 1e-12
    );
    assert!(f(c("Complex_re_f64", &[p])).abs() < 1e-12);
    let sig = rt.definition("complex.Complex_re_f64").unwrap().signature;
    assert_eq!(
        sig.to_string(),
        "fn(handle<num_complex::Complex<f64>>) -> f64"
    );
}
