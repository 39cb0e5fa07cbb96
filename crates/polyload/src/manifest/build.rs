//! The `[build]` section: how a bundle's artifact is made from its sources.

use super::{is_contained, BuildSpec, Ctx};
use crate::Result;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBuild {
    cargo: Option<Spanned<String>>,
    profile: Option<Spanned<String>>,
    cc: Option<Vec<Spanned<String>>>,
    #[serde(rename = "wasm-cc")]
    wasm_cc: Option<Vec<Spanned<String>>>,
    csc: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    references: Vec<String>,
    #[serde(default)]
    libs: Vec<String>,
    #[serde(default)]
    cflags: Vec<String>,
    #[serde(default)]
    cxxflags: Vec<String>,
    std: Option<Spanned<String>>,
}

/// The build spec of a `[build]` section (`b`, spanning `span`): exactly
/// one of `cargo`, `cc`, `wasm-cc` and `csc`, with only the options that
/// kind of build reads.
pub(super) fn spec(cx: &Ctx<'_>, b: Spanned<RawBuild>) -> Result<BuildSpec> {
    let span = b.span();
    let b = b.into_inner();
    let sources = |list: Vec<Spanned<String>>, field: &str| -> Result<Vec<PathBuf>> {
        if list.is_empty() {
            return cx.err(span.clone(), field, "lists no source files");
        }
        let mut out = Vec::new();
        for s in list {
            if !is_contained(Path::new(s.get_ref())) {
                return cx.err(
                    s.span(),
                    field,
                    format!(
                        "`{}` must be a relative path inside the bundle directory",
                        s.get_ref()
                    ),
                );
            }
            out.push(PathBuf::from(s.into_inner()));
        }
        Ok(out)
    };
    let only = |given: bool, field: &str, what: &str| -> Result<()> {
        if given {
            return cx.err(span.clone(), field, format!("applies only to {what}"));
        }
        Ok(())
    };
    if b.csc.is_none() && !b.references.is_empty() {
        return cx.err(span, "build.references", "applies only to `csc` builds");
    }
    Ok(match (b.cargo, b.cc, b.wasm_cc, b.csc) {
        (None, None, None, Some(list)) => {
            let out = sources(list, "build.csc")?;
            only(b.profile.is_some(), "build.profile", "`cargo` builds")?;
            only(b.std.is_some(), "build.std", "`cc` builds")?;
            only(!b.libs.is_empty(), "build.libs", "`cc` builds")?;
            only(!b.cflags.is_empty(), "build.cflags", "`cc` and `wasm-cc` builds")?;
            only(!b.cxxflags.is_empty(), "build.cxxflags", "`cc` builds")?;
            BuildSpec::Csc {
                sources: out,
                references: b.references,
            }
        }
        (Some(dir), None, None, None) => {
            if !is_contained(Path::new(dir.get_ref())) {
                return cx.err(
                    dir.span(),
                    "build.cargo",
                    "must be a relative path inside the bundle directory",
                );
            }
            let release = match b.profile.as_ref().map(|p| p.get_ref().as_str()) {
                None | Some("release") => true,
                Some("debug") => false,
                Some(other) => {
                    return cx.err(
                        b.profile.as_ref().unwrap().span(),
                        "build.profile",
                        format!("`{other}` is not `release` or `debug`"),
                    )
                }
            };
            BuildSpec::Cargo {
                dir: PathBuf::from(dir.into_inner()),
                release,
            }
        }
        (None, Some(list), None, None) => {
            let out = sources(list, "build.cc")?;
            if let Some(p) = b.profile {
                return cx.err(
                    p.span(),
                    "build.profile",
                    "applies only to `cargo` builds",
                );
            }
            let cxx_std = match b.std {
                None => "c++17".to_string(),
                Some(std) => {
                    let v = std.get_ref();
                    let ok = ["c++", "gnu++"].iter().any(|p| {
                        v.strip_prefix(p).is_some_and(|n| {
                            !n.is_empty()
                                && n.chars().all(|c| c.is_ascii_alphanumeric())
                        })
                    });
                    if !ok {
                        return cx.err(
                            std.span(),
                            "build.std",
                            format!("`{v}` is not a C++ standard (e.g. `c++17`, `c++20`, `gnu++17`)"),
                        );
                    }
                    v.clone()
                }
            };
            BuildSpec::Cc {
                sources: out,
                libs: b.libs,
                cflags: b.cflags,
                cxxflags: b.cxxflags,
                cxx_std,
            }
        }
        (None, None, Some(list), None) => {
            let out = sources(list, "build.wasm-cc")?;
            only(b.profile.is_some(), "build.profile", "`cargo` builds")?;
            only(b.std.is_some(), "build.std", "`cc` builds")?;
            only(!b.libs.is_empty(), "build.libs", "`cc` builds")?;
            only(!b.cxxflags.is_empty(), "build.cxxflags", "`cc` builds")?;
            BuildSpec::WasmCc {
                sources: out,
                cflags: b.cflags,
            }
        }
        (None, None, None, None) => {
            return cx.err(
                span,
                "build",
                "needs `cargo = \"DIR\"`, `cc = [\"src/file.c\"]`, `wasm-cc = [\"src/file.c\"]` or `csc = [\"src/Main.cs\"]`",
            )
        }
        _ => {
            return cx.err(
                span,
                "build",
                "give one of `cargo`, `cc`, `wasm-cc` and `csc`",
            )
        }
    })
}
