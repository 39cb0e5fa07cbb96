//! Records the toolchain compiling the bundle, for `polyload_build_info`.
use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(&rustc)
        .arg("-vV")
        .output()
        .expect("running rustc -vV");
    let release = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("release: ").map(|r| r.trim().to_string()))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=POLYLOAD_GUEST_RUSTC={release}");
    println!(
        "cargo:rustc-env=POLYLOAD_GUEST_TARGET={}",
        std::env::var("TARGET").unwrap()
    );
    println!(
        "cargo:rustc-env=POLYLOAD_GUEST_PROFILE={}",
        std::env::var("PROFILE").unwrap()
    );
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RUSTC");
}
