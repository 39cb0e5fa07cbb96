//! Points this crate's tests and benches at libpython (rpath), and tells
//! dependents where it is (`DEP_POLYLOAD_PYTHON_LIBDIR`) so a binary that
//! embeds Python can set the same rpath.

fn main() {
    let config = pyo3_build_config::get();
    if let Some(dir) = config.lib_dir() {
        if config.shared() {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        }
        println!("cargo:libdir={dir}");
    }
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
}
