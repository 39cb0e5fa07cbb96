//! Integration tests over real C code: libc, libm, libz and C libraries
//! compiled here from `tests/c/*.c`.

mod callback;
mod common;
mod libs;
mod shapes;
