//! Procedural macros of `polyload-guest` (internal: use them through
//! `polyload_guest::export` and `polyload_guest::bundle!`, documented
//! there). The generated code names `::polyload_guest`, so a crate using them
//! depends on `polyload-guest` under that name.

use proc_macro::TokenStream;

mod bundle;
mod export;

/// Exports a Rust function from a polyload bundle. See `polyload_guest`.
#[proc_macro_attribute]
pub fn export(attr: TokenStream, item: TokenStream) -> TokenStream {
    export::expand(attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Emits a bundle's ABI symbols for its `#[export]` functions. See
/// `polyload_guest`.
#[proc_macro]
pub fn bundle(input: TokenStream) -> TokenStream {
    bundle::expand(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
