//! `#[export]` for polyload Rust guests. Internal: use it through
//! `polyload_guest::export`.

use proc_macro::TokenStream;
use quote::{format_ident, quote};
use syn::visit_mut::VisitMut;
use syn::{parse_macro_input, FnArg, ItemFn, Lifetime, ReturnType, Type};

/// Replaces every reference lifetime with `'static` (the ABI types of
/// borrowed arguments do not depend on their lifetime).
struct Staticize;

impl VisitMut for Staticize {
    fn visit_type_reference_mut(&mut self, r: &mut syn::TypeReference) {
        r.lifetime = Some(Lifetime::new("'static", proc_macro2::Span::call_site()));
        syn::visit_mut::visit_type_reference_mut(self, r);
    }
    fn visit_lifetime_mut(&mut self, l: &mut Lifetime) {
        *l = Lifetime::new("'static", l.apostrophe);
    }
}

/// Exports a Rust function from a polyload bundle.
///
/// Generates, next to the function, a hidden module of the same name with
/// an `extern "C"` wrapper and its descriptor, which `polyload_guest::bundle!`
/// collects. See `polyload_guest` for the type mapping.
#[proc_macro_attribute]
pub fn export(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return syn::Error::new(
            proc_macro2::Span::call_site(),
            "#[export] takes no arguments",
        )
        .to_compile_error()
        .into();
    }
    let func = parse_macro_input!(item as ItemFn);
    let name = &func.sig.ident;
    let vis = &func.vis;
    if !func.sig.generics.params.is_empty()
        || func.sig.asyncness.is_some()
        || func.sig.variadic.is_some()
    {
        return syn::Error::new_spanned(
            &func.sig,
            "#[export] functions must be plain: no generics, async or variadics",
        )
        .to_compile_error()
        .into();
    }
    let mut params = Vec::new();
    let mut types = Vec::new();
    for (i, arg) in func.sig.inputs.iter().enumerate() {
        match arg {
            FnArg::Typed(pt) => {
                let mut ty: Type = (*pt.ty).clone();
                Staticize.visit_type_mut(&mut ty);
                params.push(format_ident!("a{i}"));
                types.push(ty);
            }
            FnArg::Receiver(r) => {
                return syn::Error::new_spanned(r, "#[export] functions cannot take self")
                    .to_compile_error()
                    .into();
            }
        }
    }
    let ret: Type = match &func.sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, t) => {
            let mut t = (**t).clone();
            Staticize.visit_type_mut(&mut t);
            t
        }
    };
    let name_str = name.to_string();
    let indices: Vec<usize> = (0..params.len()).collect();
    let expanded = quote! {
        #func

        #[doc(hidden)]
        #[allow(non_snake_case, reason = "named after the exported function")]
        #vis mod #name {
            #[allow(unused_imports, reason = "the function's types may come from the parent module")]
            use super::*;

            #[allow(clippy::unused_unit, reason = "generated for every return type")]
            unsafe extern "C" fn __polyload_wrapper(
                #( #params: <#types as ::polyload_guest::GuestArg>::Abi ),*
            ) -> <#ret as ::polyload_guest::GuestRet>::Abi {
                ::polyload_guest::__private::guard(#name_str, move || {
                    #(
                        let #params = <#types as ::polyload_guest::GuestArg>::from_abi(#params)
                            .map_err(|e| ::std::format!("argument {} of `{}`: {}", #indices + 1, #name_str, e))?;
                    )*
                    <#ret as ::polyload_guest::GuestRet>::into_abi(super::#name(#( #params ),*))
                })
            }

            /// The descriptor `bundle!` registers.
            pub fn __polyload_export() -> ::polyload_guest::__private::ExportDesc {
                ::polyload_guest::__private::ExportDesc {
                    name: #name_str,
                    params: &[ #( <#types as ::polyload_guest::GuestArg>::TYPE ),* ],
                    ret: <#ret as ::polyload_guest::GuestRet>::TYPE,
                    code: __polyload_wrapper as *const ::std::ffi::c_void,
                }
            }
        }
    };
    expanded.into()
}
