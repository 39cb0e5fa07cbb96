//! Lua bundles for polyload: LuaJIT (through [mlua], vendored) with one Lua
//! state per bundle.
//!
//! ```
//! # fn main() -> polyload::Result<()> {
//! # std::env::set_current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).unwrap();
//! use polyload::Value;
//! let rt = polyload::Runtime::builder().loader(polyload_lua::LuaLoader::new()).build()?;
//! rt.load_bundle("examples/bundles/luajson")?;    // dkjson, from Debian's lua-dkjson
//! let v = rt.call("luajson.decode", &[Value::from("[1, {\"a\": true}]")])?;
//! assert_eq!(v.to_string(), r#"[1,{"a":true}]"#);
//! # Ok(()) }
//! ```
//!
//! # Bundles
//! A Lua bundle's manifest says `loader = "lua"` and names its entry script
//! in `file`. The script runs once per load in a fresh state; its exports are
//! the functions in the table it returns (module style, `return { add = add }`),
//! or, if it returns no table, its globals. `[exports]` gives each one's
//! signature; arguments and results convert by it (see [`convert`](crate#values)).
//!
//! `require` finds the bundle's own modules (`?.lua`, `?/init.lua` under the
//! bundle directory) and then the `[lua] path` entries of the manifest: a
//! pattern with `?` is used as is (relative ones are taken from the bundle
//! directory), a plain directory gets `?.lua` and `?/init.lua` appended. So
//! `path = ["/usr/share/lua/5.1/?.lua"]` reaches Debian's `lua-*` packages.
//!
//! # Values
//! Integers and floats are Lua numbers (LuaJIT keeps them as doubles: exact
//! up to 2^53; results are range-checked), `str` and `bytes` are strings,
//! `json` maps to tables (arrays and objects keep a `__jsontype` mark, as in
//! dkjson) with `polyload.null` for JSON null.
//!
//! # Calling other bundles
//! The module `polyload` (`require("polyload")`, also a global) has
//! `call(name, ...)`, `get(name)` (a callable proxy) and `null`.
//!
//! # Threads and re-entrancy
//! Each Lua state has its own [`polyload::loader::VmLock`]: bundles run in
//! parallel on different threads, a call from another thread into a busy
//! state waits, a call back into the same state on the same thread (Lua ->
//! Python -> Lua) goes through, and bundles calling each other from several
//! threads in opposite directions cannot deadlock (a thread whose lock the
//! holder waits for enters on top of the holder's frames, see `VmLock`).
//!
//! Because every use of a state (calls, loading, dropping any handle into
//! it) happens under that lock, mlua is built without a lock of its own
//! (no `send` feature), and a call with scalar arguments and result into a
//! state with no Lua code running goes straight to the Lua C API
//! (`lua_pcall` on the state's main thread); other calls go through mlua.
//! Both give the same values and errors.
//!
//! # Errors
//! A Lua error becomes [`polyload::Error::Guest`] with Lua's message
//! (`file:line: text`) and its stack traceback. The state stays usable.
//!
//! # Hot reload
//! [`BundleLoader::reload`] evaluates the new source in a fresh state; if it
//! fails to parse or to run, the error is returned and the old state keeps
//! serving.
#![warn(missing_docs)]

mod convert;
mod host;
mod state;

use mlua::{Function, Lua, MultiValue, Value as LuaValue};
use polyload::loader::{
    exports, init_error, BundleInstance, BundleLoader, DynamicFn, GuestError, LoadContext,
    LoadedBundle, Source,
};
use polyload::{Manifest, Result, Value};
use std::path::Path;
use std::sync::Arc;

/// `[lua]`: extra module search paths.
#[derive(Clone, Debug, Default, serde::Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LuaSection {
    /// Entries added to `package.path` (e.g. `/usr/share/lua/5.1/?.lua`).
    #[serde(default)]
    pub path: Vec<String>,
}

/// Loads `loader = "lua"` bundles. Register it with
/// `Runtime::builder().loader(LuaLoader::new())`.
#[derive(Clone, Debug, Default)]
pub struct LuaLoader {
    _private: (),
}

impl LuaLoader {
    /// A Lua loader.
    pub fn new() -> Self {
        Self::default()
    }
}

/// One loaded version of a Lua bundle: its state.
struct LuaBundle {
    _state: Arc<state::State>,
}

impl BundleInstance for LuaBundle {}

/// Splits Lua's `message\nstack traceback:...` text into its two parts.
pub(crate) fn split_message(text: &str) -> GuestError {
    match text.split_once("\nstack traceback:") {
        Some((message, tb)) => GuestError {
            message: message.to_string(),
            traceback: Some(format!("stack traceback:{tb}")),
        },
        None => GuestError::new(text),
    }
}

/// Turns an mlua error into the guest's message and traceback.
pub(crate) fn guest_error(e: &mlua::Error) -> GuestError {
    use split_message as split;
    match e {
        mlua::Error::RuntimeError(s) => split(s),
        mlua::Error::SyntaxError { message, .. } => split(message),
        mlua::Error::CallbackError { traceback, cause } => {
            let inner = guest_error(cause);
            GuestError {
                message: inner.message,
                traceback: Some(traceback.clone()),
            }
        }
        mlua::Error::WithContext { context, cause } => {
            let inner = guest_error(cause);
            GuestError {
                message: format!("{context}: {}", inner.message),
                traceback: inner.traceback,
            }
        }
        other => GuestError::new(other.to_string()),
    }
}

fn setup_error(m: &Manifest, e: mlua::Error) -> polyload::Error {
    init_error(m, GuestError::new(format!("setting up the Lua state: {e}")))
}

/// The `package.path` for a bundle: its own directory, then `[lua] path`,
/// then LuaJIT's default.
fn package_path(m: &Manifest, section: &LuaSection, default: &str) -> String {
    let dir = m.dir();
    let mut parts = vec![
        dir.join("?.lua").display().to_string(),
        dir.join("?").join("init.lua").display().to_string(),
    ];
    for entry in &section.path {
        let p = Path::new(entry);
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            dir.join(p)
        };
        if entry.contains('?') {
            parts.push(p.display().to_string());
        } else {
            parts.push(p.join("?.lua").display().to_string());
            parts.push(p.join("?").join("init.lua").display().to_string());
        }
    }
    parts.push(default.to_string());
    parts.join(";")
}

/// Calls a Lua function with values, converting the result by `ret`.
///
/// Up to four scalar arguments go to mlua as a tuple, which it pushes
/// straight onto the Lua stack; other calls collect their arguments in a
/// [`MultiValue`] (a heap buffer).
pub(crate) fn call_lua(
    lua: &Lua,
    f: &Function,
    ret: &polyload::FfiType,
    args: &[Value],
) -> std::result::Result<Value, GuestError> {
    use convert::scalar_to_lua as s;
    let out: mlua::Result<LuaValue> = match args {
        [] => f.call(()),
        [a] => match s(a) {
            Some(a) => f.call(a),
            None => call_many(lua, f, args)?,
        },
        [a, b] => match (s(a), s(b)) {
            (Some(a), Some(b)) => f.call((a, b)),
            _ => call_many(lua, f, args)?,
        },
        [a, b, c] => match (s(a), s(b), s(c)) {
            (Some(a), Some(b), Some(c)) => f.call((a, b, c)),
            _ => call_many(lua, f, args)?,
        },
        [a, b, c, d] => match (s(a), s(b), s(c), s(d)) {
            (Some(a), Some(b), Some(c), Some(d)) => f.call((a, b, c, d)),
            _ => call_many(lua, f, args)?,
        },
        _ => call_many(lua, f, args)?,
    };
    match &out {
        Ok(v) => {
            convert::from_lua(v, ret).map_err(|e| GuestError::new(format!("return value: {e}")))
        }
        Err(e) => Err(guest_error(e)),
    }
}

/// The general case of [`call_lua`]: any arguments, through a [`MultiValue`].
#[inline(never)]
fn call_many(
    lua: &Lua,
    f: &Function,
    args: &[Value],
) -> std::result::Result<mlua::Result<LuaValue>, GuestError> {
    let mut many = MultiValue::with_capacity(args.len());
    for (i, a) in args.iter().enumerate() {
        many.push_back(
            convert::to_lua(lua, a)
                .map_err(|e| GuestError::new(format!("argument {}: {e}", i + 1)))?,
        );
    }
    Ok(f.call(many))
}

impl LuaLoader {
    fn new_state(&self, cx: &LoadContext<'_>) -> Result<Lua> {
        let m = cx.manifest();
        let section: LuaSection = m.section("lua")?.unwrap_or_default();
        let lua = Lua::new();
        let setup = || -> mlua::Result<()> {
            let package: mlua::Table = lua.globals().get("package")?;
            let default: String = package.get("path")?;
            package.set("path", package_path(m, &section, &default))?;
            convert::install_metatables(&lua)?;
            host::install(&lua, cx.host().clone())
        };
        setup().map_err(|e| setup_error(m, e))?;
        Ok(lua)
    }
}

impl BundleLoader for LuaLoader {
    fn loader_name(&self) -> &'static str {
        "lua"
    }

    fn sections(&self) -> &'static [&'static str] {
        &["lua"]
    }

    /// Runs the bundle's entry script in a fresh Lua state (this runs the
    /// bundle's code) and returns its exported functions.
    fn load(&self, cx: &LoadContext<'_>) -> Result<LoadedBundle> {
        let m = cx.manifest();
        let source = Source::read(cx)?;
        let chunk_name = if source.in_memory {
            format!("@{} (memory)", source.path.display())
        } else {
            format!("@{}", source.path.display())
        };
        let lua = self.new_state(cx)?;
        let shared = Arc::new(state::State::new(lua.clone()).map_err(|e| setup_error(m, e))?);
        let state = shared.clone();
        let _vm = state.lock.lock();
        let result: LuaValue = lua
            .load(&source.bytes[..])
            .set_name(chunk_name)
            .call(())
            .map_err(|e| init_error(m, guest_error(&e)))?;
        let table = match result {
            LuaValue::Table(t) => t,
            _ => lua.globals(),
        };
        let exports = exports(m, |decl| {
            let f = match table.get::<LuaValue>(decl.name.as_str()) {
                Ok(LuaValue::Function(f)) => f,
                Ok(LuaValue::Nil) => return Ok(None),
                Ok(other) => {
                    return Err(init_error(
                        m,
                        GuestError::new(format!(
                            "export `{}` is a Lua {}, not a function",
                            decl.name,
                            other.type_name()
                        )),
                    ))
                }
                Err(e) => {
                    return Err(init_error(
                        m,
                        GuestError::new(format!("reading export `{}`: {e}", decl.name)),
                    ))
                }
            };
            let export = state::LuaExport::new(&shared, f, decl.signature.ret.clone())
                .map_err(|e| setup_error(m, e))?;
            let entry: Arc<DynamicFn> = Arc::new(move |args: &[Value]| export.call(args));
            Ok(Some(entry))
        })?;
        // mlua handles (reference counted without atomics) go under the lock.
        drop((table, lua));
        drop(_vm);
        Ok(LoadedBundle {
            exports,
            instance: Box::new(LuaBundle { _state: shared }),
        })
    }
}
