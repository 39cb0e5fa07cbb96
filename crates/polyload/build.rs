//! Records the toolchain that builds the host, to check Rust guests' build
//! metadata against it (see `native::check_build_info`).
use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(&rustc)
        .arg("-vV")
        .output()
        .expect("running rustc -vV");
    let text = String::from_utf8_lossy(&out.stdout);
    let release = text
        .lines()
        .find_map(|l| l.strip_prefix("release: "))
        .unwrap_or("unknown")
        .trim()
        .to_string();
    println!("cargo:rustc-env=POLYLOAD_RUSTC_RELEASE={release}");
    println!(
        "cargo:rustc-env=POLYLOAD_TARGET={}",
        std::env::var("TARGET").unwrap()
    );
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RUSTC");
}
