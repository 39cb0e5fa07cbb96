//! Replays the fuzzers' regression inputs (`fuzz/regressions/`, among them
//! every input that once crashed a target) on the stable toolchain, with
//! the properties the fuzz targets check.

use polyload::{Manifest, Signature};
use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| {
            let data = std::fs::read(&p).unwrap();
            (p, data)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no regression inputs in {}", dir.display());
    out
}

#[test]
fn manifest_inputs() {
    for (file, data) in inputs("manifest") {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        let path = Path::new("/fuzz/bundle/manifest.toml");
        match Manifest::parse(text, path) {
            Ok(m) => {
                for e in &m.exports {
                    let again: Signature = e.signature.to_string().parse().unwrap();
                    assert_eq!(again, e.signature, "{}", file.display());
                }
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(!msg.contains('\n'), "{}: {msg:?}", file.display());
                assert!(msg.starts_with("/fuzz/bundle/manifest.toml:"), "{msg}");
            }
        }
    }
}

#[test]
fn signature_inputs() {
    for (file, data) in inputs("signature") {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        if let Ok(sig) = text.parse::<Signature>() {
            let again: Signature = sig.to_string().parse().unwrap();
            assert_eq!(again, sig, "{}", file.display());
        }
    }
}

#[test]
fn elf_inputs() {
    // Through the native loader, as a user's artifact would go: each is
    // refused with an error naming the file, and the host keeps running.
    let s = crate::support::Scratch::new();
    let rt = s.runtime();
    for (file, data) in inputs("elf") {
        let dir = s.bundles().join("elf");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("manifest.toml"),
            "id = \"elf\"\nversion = \"0.1.0\"\nloader = \"native\"\nfile = \"input.so\"\nabi = \"1.0\"\n",
        )
        .unwrap();
        std::fs::write(dir.join("input.so"), &data).unwrap();
        let e = rt.load_dir(&dir).unwrap_err();
        assert!(
            matches!(&e, polyload::Error::LibraryLoad { path, .. } if path.ends_with("input.so")),
            "{}: {e}",
            file.display()
        );
    }
}
