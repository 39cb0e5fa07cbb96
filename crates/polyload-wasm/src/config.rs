//! The manifest's `[wasm]` section: the guest ABI and the capabilities a
//! bundle is given (nothing it is not given).
//!
//! ```toml
//! [wasm]
//! abi = "polyload"            # or "extism": run an unmodified Extism plugin
//! max_memory = "16 MiB"       # bytes, or "N KiB" / "N MiB" / "N pages" (64 KiB); default 64 MiB
//! timeout_ms = 1000           # per call (epoch interruption); default 10000; 0 = none
//! fuel = 50_000_000           # per call (instructions, roughly); default: unmetered
//! wasi = false                # WASI preview 1, only when asked for
//! args = ["--fast"]           # WASI args (argv[0] is the bundle id)
//! env = { LANG = "C" }        # WASI environment, nothing inherited
//! allowed_paths = { "data" = "/data", "ro:assets" = "/assets" }  # host dir (relative to the bundle) -> guest dir
//!
//! [wasm.imports]              # guest import "module.name" -> a polyload definition
//! "env.lookup_rate" = "rates.lookup"
//!
//! [wasm.config]               # Extism plugin config (config_get)
//! greeting = "hello"
//! ```

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// The guest ABI of a wasm bundle.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Abi {
    /// polyload's own: numbers as wasm values, `str`/`bytes`/`json` through
    /// the guest's memory (see the crate docs).
    #[default]
    Polyload,
    /// An Extism plugin: exports `() -> i32` that read their input and set
    /// their output through the `extism:host/env` kernel functions.
    Extism,
}

/// A size in bytes, written as a number or with a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bytes(pub u64);

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(Bytes(n)),
            Raw::Text(t) => parse_size(&t).map(Bytes).map_err(serde::de::Error::custom),
        }
    }
}

/// `"16 MiB"`, `"64 KiB"`, `"256 pages"` (wasm pages of 64 KiB), `"1000"`.
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (num, unit) = t
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .map_or((t, ""), |i| (&t[..i], t[i..].trim()));
    let n: u64 = num.replace('_', "").parse().map_err(|_| {
        format!("`{text}` is not a size (e.g. 65536, \"64 KiB\", \"16 MiB\", \"4 pages\")")
    })?;
    let scale: u64 = match unit {
        "" | "B" | "bytes" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "page" | "pages" => 1 << 16,
        other => {
            return Err(format!(
                "`{other}` is not a size unit (B, KiB, MiB, GiB, pages)"
            ))
        }
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// `[wasm]`, as the manifest says it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmSection {
    /// The guest ABI.
    #[serde(default)]
    pub abi: Abi,
    /// Linear memory (and, for Extism plugins, Extism memory) at most.
    pub max_memory: Option<Bytes>,
    /// Milliseconds a call may run.
    pub timeout_ms: Option<u64>,
    /// Fuel a call may burn.
    pub fuel: Option<u64>,
    /// Whether the guest gets WASI preview 1.
    #[serde(default)]
    pub wasi: bool,
    /// WASI arguments after argv\[0\].
    #[serde(default)]
    pub args: Vec<String>,
    /// WASI environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Host directory (relative to the bundle, `ro:` for read-only) ->
    /// guest directory.
    #[serde(default)]
    pub allowed_paths: BTreeMap<Spanned<String>, String>,
    /// Guest imports bound to definitions: `"module.name" = "bundle.def"`.
    #[serde(default)]
    pub imports: BTreeMap<Spanned<String>, String>,
    /// Extism plugin configuration.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

/// The limits of one bundle, with defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of memory at most.
    pub max_memory: usize,
    /// Epoch ticks (milliseconds) a call may run; `None`: unlimited.
    pub timeout_ms: Option<u64>,
    /// Fuel per call; `None`: unmetered.
    pub fuel: Option<u64>,
}

/// Default memory limit: 64 MiB.
pub const DEFAULT_MAX_MEMORY: u64 = 64 << 20;
/// Default time limit per call: 10 s.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

impl WasmSection {
    /// The limits, with defaults for what is not given.
    pub fn limits(&self) -> Limits {
        Limits {
            max_memory: self.max_memory.map_or(DEFAULT_MAX_MEMORY, |b| b.0) as usize,
            timeout_ms: match self.timeout_ms {
                Some(0) => None,
                Some(t) => Some(t),
                None => Some(DEFAULT_TIMEOUT_MS),
            },
            fuel: self.fuel,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64 KiB"), Ok(65536));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("4 pages"), Ok(4 << 16));
        assert_eq!(parse_size("1_000"), Ok(1000));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("lots").is_err());
    }
}
