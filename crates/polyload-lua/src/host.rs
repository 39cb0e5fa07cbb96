//! The `polyload` module inside each Lua state: calls into the namespace.
//!
//! ```lua
//! local polyload = require("polyload")          -- also a global
//! local n = polyload.call("hello.add", 2, 3)    -- any bundle, any language
//! local greet = polyload.get("hello.greet")     -- a callable proxy
//! print(greet("Lua"))
//! local nothing = polyload.null                 -- JSON null
//! ```
//!
//! Arguments convert by the callee's signature, so `polyload.call` needs no
//! type annotations. The state holds only a `Weak` reference to the
//! namespace (the namespace owns the state's functions, not the reverse).

use crate::convert::{from_lua, to_lua};
use mlua::{Lua, MultiValue, Value as LuaValue, Variadic};
use polyload::{Namespace, Value};
use std::sync::{Arc, Weak};

/// Calls `name` in the namespace with Lua arguments, converting by its
/// signature. Errors are returned as Lua runtime errors.
fn call(ns: &Weak<Namespace>, lua: &Lua, name: &str, args: &[LuaValue]) -> mlua::Result<LuaValue> {
    let ns: Arc<Namespace> = ns
        .upgrade()
        .ok_or_else(|| mlua::Error::RuntimeError("polyload.call: the runtime is gone".into()))?;
    let info = ns.definition(name).ok_or_else(|| {
        mlua::Error::RuntimeError(format!("polyload.call: no definition named `{name}`"))
    })?;
    let params = &info.signature.params;
    if args.len() != params.len() {
        return Err(mlua::Error::RuntimeError(format!(
            "polyload.call: `{name}` takes {} argument(s), got {}",
            params.len(),
            args.len()
        )));
    }
    let values = args
        .iter()
        .zip(params)
        .enumerate()
        .map(|(i, (a, ty))| {
            from_lua(a, ty).map_err(|e| {
                mlua::Error::RuntimeError(format!(
                    "polyload.call: `{name}` argument {}: {e}",
                    i + 1
                ))
            })
        })
        .collect::<mlua::Result<Vec<Value>>>()?;
    let result = ns
        .call(name, &values)
        .map_err(|e| mlua::Error::RuntimeError(e.to_string()))?;
    to_lua(lua, &result)
}

/// Creates the `polyload` table, registers it as `package.loaded.polyload`
/// and as the global `polyload`.
pub(crate) fn install(lua: &Lua, ns: Weak<Namespace>) -> mlua::Result<()> {
    let module = lua.create_table()?;
    let ns_call = ns.clone();
    module.set(
        "call",
        lua.create_function(move |lua, (name, args): (String, Variadic<LuaValue>)| {
            call(&ns_call, lua, &name, &args)
        })?,
    )?;
    module.set(
        "get",
        lua.create_function(move |lua, name: String| {
            let ns = ns.clone();
            lua.create_function(move |lua, args: MultiValue| {
                let args: Vec<LuaValue> = args.into_iter().collect();
                call(&ns, lua, &name, &args)
            })
        })?,
    )?;
    module.set("null", LuaValue::NULL)?;
    let package: mlua::Table = lua.globals().get("package")?;
    let loaded: mlua::Table = package.get("loaded")?;
    loaded.set("polyload", module.clone())?;
    lua.globals().set("polyload", module)?;
    Ok(())
}
