//! What the `extism` crate needs to run `plugin.wat` beside polyload (shared
//! by `tests/extism.rs` and `benches/call.rs`, included with `#[path]`).

/// The plugin's host function `extism:host/user.double_it(str) -> str`,
/// for the `extism` crate: the same as polyload's `strs.double`.
pub fn double_it() -> extism::Function {
    extism::Function::new(
        "double_it",
        [extism::PTR],
        [extism::PTR],
        extism::UserData::new(()),
        |plugin, inputs, outputs, _| {
            let s: String = plugin.memory_get_val(&inputs[0])?;
            plugin.memory_set_val(&mut outputs[0], format!("{s}{s}"))?;
            Ok(())
        },
    )
}
