//! The `[rimport]` manifest section: which crate, which version, which
//! items. Parsed with the rest of the manifest (so its errors have lines)
//! whether or not the `rimport` feature is built.

use serde::Deserialize;

/// `[rimport]`: generate the bundle from a crate on crates.io.
///
/// ```toml
/// [rimport]
/// crate = "semver"
/// version = "1"                      # a semver requirement (default "*")
/// features = []                      # cargo features of the crate
/// default-features = true
/// items = ["Version::parse", "Version::major", { path = "max", generics = ["i64"] }]
/// json = []                          # types that cross as JSON (serde) instead of handles
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RimportSpec {
    /// The package name on crates.io (`unicode-segmentation`).
    #[serde(rename = "crate")]
    pub krate: String,
    /// A semver requirement; resolved once, on the first rimport of this
    /// spec, and pinned in the generated crate's `Cargo.lock`.
    #[serde(default = "any_version")]
    pub version: String,
    /// Cargo features of the crate to enable.
    #[serde(default)]
    pub features: Vec<String>,
    /// Whether the crate's default features are on (default `true`).
    #[serde(default = "yes", rename = "default-features")]
    pub default_features: bool,
    /// The items to wrap, as paths from the crate root.
    pub items: Vec<RimportItem>,
    /// Types (paths from the crate root) that cross as `json` through
    /// their `serde` implementations rather than as handles.
    #[serde(default)]
    pub json: Vec<String>,
}

fn any_version() -> String {
    "*".into()
}

fn yes() -> bool {
    true
}

/// One entry of `items`: `"Type::method"`, `"function::<i64>"`, or a table.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(untagged)]
pub enum RimportItem {
    /// `"Version::parse"`; generic arguments may follow as a turbofish:
    /// `"gcd::<i64>"`.
    Path(String),
    /// `{ path = "gcd", generics = ["i64"], name = "gcd64" }`.
    Table {
        /// The item's path from the crate root.
        path: String,
        /// Types for the item's type parameters, in order (`i64`, `f64`,
        /// `&str`, `String`, `Vec<i64>`, `Vec<f64>`, or any primitive).
        #[serde(default)]
        generics: Vec<String>,
        /// The definition's name, instead of the default rule.
        name: Option<String>,
    },
}

impl RimportItem {
    /// The path, the generic arguments and the explicit name, if any.
    pub fn parts(&self) -> (String, Vec<String>, Option<String>) {
        match self {
            RimportItem::Path(p) => match p.split_once("::<") {
                Some((path, rest)) => {
                    let inner = rest.strip_suffix('>').unwrap_or(rest);
                    (path.trim().to_string(), split_args(inner), None)
                }
                None => (p.trim().to_string(), Vec::new(), None),
            },
            RimportItem::Table {
                path,
                generics,
                name,
            } => (path.trim().to_string(), generics.clone(), name.clone()),
        }
    }
}

/// Splits `a, Vec<b, c>, d` at top-level commas.
pub(crate) fn split_args(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '<' | '[' | '(' => depth += 1,
            '>' | ']' | ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

impl RimportSpec {
    /// The artifact's file name: `lib<crate>_rimport.so` (`.dylib`, `.dll`).
    pub fn file_name(&self) -> String {
        use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
        format!(
            "{DLL_PREFIX}{}_rimport{DLL_SUFFIX}",
            self.krate.replace('-', "_")
        )
    }

    /// The crate's `[dependencies]` line at `requirement` (the spec's own
    /// while resolving, `=x.y.z` once resolved), with the spec's features.
    #[cfg(feature = "rimport")]
    pub(crate) fn dependency(&self, requirement: &str) -> String {
        let features: Vec<String> = self.features.iter().map(|f| format!("{f:?}")).collect();
        format!(
            "{} = {{ version = {requirement:?}, default-features = {}, features = [{}] }}",
            self.krate,
            self.default_features,
            features.join(", ")
        )
    }

    /// Checks what can be checked without the crate: `(field, message)`.
    pub(crate) fn check(&self) -> Result<(), (&'static str, String)> {
        let valid_name = !self.krate.is_empty()
            && self
                .krate
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid_name {
            return Err(("crate", format!("`{}` is not a crate name", self.krate)));
        }
        if let Err(e) = semver::VersionReq::parse(&self.version) {
            return Err((
                "version",
                format!("`{}` is not a version requirement: {e}", self.version),
            ));
        }
        if self.items.is_empty() {
            return Err(("items", "lists no items".into()));
        }
        for item in &self.items {
            let (path, _, name) = item.parts();
            let ok = !path.is_empty()
                && path.split("::").all(|seg| {
                    let mut c = seg.chars();
                    matches!(c.next(), Some(f) if f.is_alphabetic() || f == '_')
                        && c.all(|c| c.is_alphanumeric() || c == '_')
                });
            if !ok {
                return Err(("items", format!("`{path}` is not a path (`Type::method`)")));
            }
            if let Some(n) = name {
                if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(("items", format!("`{n}` is not a definition name")));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turbofish_and_tables_give_the_same_parts() {
        let a = RimportItem::Path("gcd::<i64>".into());
        let b = RimportItem::Table {
            path: "gcd".into(),
            generics: vec!["i64".into()],
            name: None,
        };
        assert_eq!(a.parts(), b.parts());
        assert_eq!(
            split_args("i64, Vec<i64>, (u8, u8)"),
            ["i64", "Vec<i64>", "(u8, u8)"]
        );
    }
}
