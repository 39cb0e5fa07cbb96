//! The `polyload` module inside each Lua state: calls into the namespace.
//!
//! ```lua
//! local polyload = require("polyload")          -- also a global
//! local n = polyload.call("hello.add", 2, 3)    -- any bundle, any language
//! local greet = polyload.get("hello.greet")     -- resolved once, follows reloads
//! print(greet("Lua"))
//! local nothing = polyload.null                 -- JSON null
//! ```
//!
//! Arguments convert by the callee's signature, so `polyload.call` needs no
//! type annotations; the rules and messages are the toolkit's
//! ([`polyload::loader::HostCalls`]), the same in every language.

use crate::convert::{to_lua, Lv};
use mlua::{Lua, MultiValue, Value as LuaValue, Variadic};
use polyload::loader::{HostCallError, HostCalls};
use std::sync::Arc;

fn lua_error(e: HostCallError) -> mlua::Error {
    mlua::Error::RuntimeError(e.to_string())
}

/// Creates the `polyload` table, registers it as `package.loaded.polyload`
/// and as the global `polyload`.
pub(crate) fn install(lua: &Lua, host: HostCalls) -> mlua::Result<()> {
    let module = lua.create_table()?;
    let calls = host.clone();
    module.set(
        "call",
        lua.create_function(move |lua, (name, args): (String, Variadic<LuaValue>)| {
            let args: Vec<Lv> = args.into_iter().map(Lv).collect();
            let v = calls.call(&name, &args).map_err(lua_error)?;
            to_lua(lua, &v)
        })?,
    )?;
    module.set(
        "get",
        lua.create_function(move |lua, name: String| {
            let f = Arc::new(host.get(&name));
            lua.create_function(move |lua, args: MultiValue| {
                let args: Vec<Lv> = args.into_iter().map(Lv).collect();
                let v = f.call(&args).map_err(lua_error)?;
                to_lua(lua, &v)
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
