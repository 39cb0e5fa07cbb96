//! With the `python` feature, points the `polyload` binary at the libpython
//! that pyo3 was built against (an rpath), so it never picks up another
//! Python's library at run time.
fn main() {
    if let Ok(dir) = std::env::var("DEP_POLYLOAD_PYTHON_LIBDIR") {
        if !dir.is_empty() {
            println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{dir}");
        }
    }
    println!("cargo:rerun-if-env-changed=DEP_POLYLOAD_PYTHON_LIBDIR");
}
