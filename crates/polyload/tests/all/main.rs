//! Integration tests over real shared libraries built by the runtime.

mod support;

mod build_cache;
mod dynamic;
mod fuzz_regressions;
mod guest;
mod jit;
mod load_errors;
mod native;
mod providers;
mod reload;
