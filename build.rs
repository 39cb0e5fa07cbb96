//! Points this crate's tests and doctests at the libpython that pyo3 was
//! built against (an rpath), as `polyload-cli` does for its binary.
fn main() {
    if let Ok(dir) = std::env::var("DEP_POLYLOAD_PYTHON_LIBDIR") {
        if !dir.is_empty() {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        }
    }
    println!("cargo:rerun-if-env-changed=DEP_POLYLOAD_PYTHON_LIBDIR");
}
