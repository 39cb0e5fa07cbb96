//! The C-ABI functions the `ffi` benchmark calls, shared with the
//! `call_loop` example (which counts instructions per call of the same
//! shapes). Each target uses some of them.
#![allow(
    dead_code,
    reason = "each target that includes this file uses some of the functions"
)]

pub extern "C" fn add_i64(a: i64, b: i64) -> i64 {
    a.wrapping_add(b)
}
pub extern "C" fn add_f64(a: f64, b: f64) -> f64 {
    a + b
}
pub extern "C" fn mix(a: i32, b: f64, c: u8, d: f32, e: i64) -> f64 {
    f64::from(a) + b + f64::from(c) + f64::from(d) + e as f64
}
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Pair {
    pub a: i32,
    pub b: i32,
}
pub extern "C" fn swap(p: Pair) -> Pair {
    Pair { a: p.b, b: p.a }
}
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Mixed {
    pub a: u8,
    pub b: f64,
    pub c: i16,
}
/// 24 bytes of mixed fields: passed on the stack and returned through
/// memory (psABI §3.2.3, class MEMORY).
pub extern "C" fn scale(m: Mixed, k: i32) -> Mixed {
    Mixed {
        a: m.a.wrapping_add(k as u8),
        b: m.b * f64::from(k),
        c: m.c.wrapping_sub(k as i16),
    }
}
pub extern "C" fn eight(a: i64, b: i64, c: i64, d: i64, e: i64, f: i64, g: i64, h: i64) -> i64 {
    a ^ b ^ c ^ d ^ e ^ f ^ g ^ h
}
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Vec3Tag {
    pub v: [f32; 3],
    pub tag: i32,
}
pub extern "C" fn norm1(s: Vec3Tag) -> f64 {
    f64::from(s.v[0]) + f64::from(s.v[1]) + f64::from(s.v[2]) + f64::from(s.tag)
}
