//! Integration tests over real shared libraries built by the runtime.

mod support;

mod build_cache;
mod dynamic;
mod guest;
mod jit;
mod load_errors;
mod native;
mod providers;
mod reload;
mod fuzz_regressions;
