//! `polyload ffi`: call a C function in any shared library by signature.
//! The work is in `polyload_cli::ffi`; this file only parses.

/// Call a C function in a shared library by its signature, e.g.
/// `polyload ffi libm.so.6 pow 'fn(f64, f64) -> f64' 2 10`.
///
/// Variadic arguments (after the fixed ones of `fn(cstr, ...) -> i32`) take
/// their type from a `TYPE:` prefix (`f64:2.5`, `i64:7`, `cstr:text`) or
/// else by inference: an integer is i32 (i64 if it does not fit), a number
/// with `.` or an exponent is f64, anything else is a cstr.
#[derive(clap::Args, Debug)]
pub struct FfiCmd {
    /// Library name or path (`libm.so.6`, `libz.so.1`, `./libfoo.so`).
    pub library: String,
    /// Symbol (function) name, e.g. `pow`.
    pub symbol: String,
    /// Signature, e.g. `fn(f64, f64) -> f64` or `fn(cstr, ...) -> i32`.
    pub signature: String,
    /// Arguments as text, one per parameter (then any variadic ones).
    #[arg(allow_negative_numbers = true)]
    pub args: Vec<String>,
}

impl FfiCmd {
    /// Runs the call and returns the text to print: the result as text, or
    /// with `json` a JSON object `{"result": ...}`.
    ///
    /// # Errors
    /// Bad signature, library, symbol or arguments (see
    /// `polyload_ffi::FfiError`).
    pub fn run(&self, json: bool) -> anyhow::Result<String> {
        // SAFETY: the user asked to load this library and call this symbol
        // with this signature; a command-line FFI tool trusts its user.
        let value = unsafe {
            polyload_cli::ffi::call_from_text(
                &self.library,
                &self.symbol,
                &self.signature,
                &self.args,
            )
        }?;
        Ok(polyload_cli::ffi::render(&value, json))
    }
}
