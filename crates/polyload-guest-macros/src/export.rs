//! `#[export]`: an `extern "C"` wrapper and a derived signature beside a
//! plain Rust function.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{FnArg, ItemFn, Lifetime, ReturnType, Type};

/// Replaces every lifetime, named or elided, of a reference type with
/// `'static`: the C representation of a borrowed argument does not depend on
/// its lifetime, and the user's function, generic over it, cannot keep the
/// borrow past the call.
struct Staticize;

impl VisitMut for Staticize {
    fn visit_type_reference_mut(&mut self, r: &mut syn::TypeReference) {
        r.lifetime = Some(Lifetime::new("'static", Span::call_site()));
        syn::visit_mut::visit_type_reference_mut(self, r);
    }
    fn visit_lifetime_mut(&mut self, l: &mut Lifetime) {
        *l = Lifetime::new("'static", l.apostrophe);
    }
}

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new(attr.span(), "#[export] takes no arguments"));
    }
    let func: ItemFn = syn::parse2(item)?;
    let sig = &func.sig;
    if let Some(g) = sig.generics.params.first() {
        return Err(syn::Error::new_spanned(
            g,
            "#[export] functions cannot be generic: the C ABI needs one concrete signature",
        ));
    }
    if sig.asyncness.is_some() || sig.variadic.is_some() || sig.abi.is_some() {
        return Err(syn::Error::new_spanned(
            sig,
            "#[export] functions must be plain Rust functions: no async, extern or variadics",
        ));
    }
    let name = &sig.ident;
    let name_str = name.to_string();
    let vis = &func.vis;

    let mut params = Vec::new();
    let mut types = Vec::new();
    for (i, arg) in sig.inputs.iter().enumerate() {
        match arg {
            FnArg::Typed(pt) => {
                let mut ty: Type = (*pt.ty).clone();
                Staticize.visit_type_mut(&mut ty);
                params.push(format_ident!("arg{}", i + 1));
                types.push(ty);
            }
            FnArg::Receiver(r) => {
                return Err(syn::Error::new_spanned(
                    r,
                    "#[export] functions cannot take self",
                ))
            }
        }
    }
    let ret: Type = match &sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, t) => {
            let mut t = (**t).clone();
            Staticize.visit_type_mut(&mut t);
            t
        }
    };

    // Trait paths spanned at the user's types, so a type without a mapping
    // is reported where it is written.
    let arg_abi: Vec<TokenStream> = types
        .iter()
        .map(|t| quote_spanned!(t.span()=> <#t as ::polyload_guest::GuestArg>))
        .collect();
    let ret_abi = quote_spanned!(ret.span()=> <#ret as ::polyload_guest::GuestRet>);
    let positions: Vec<usize> = (1..=params.len()).collect();
    let unsafe_call = sig.unsafety.map(|_| quote!(unsafe));

    Ok(quote! {
        #func

        #[doc(hidden)]
        #vis mod #name {
            #[allow(unused_imports, reason = "the function's types may be named in the parent module")]
            use super::*;

            #[allow(clippy::unused_unit, reason = "generated for every return type, `()` included")]
            unsafe extern "C" fn __polyload_wrapper(
                #( #params: #arg_abi::Abi ),*
            ) -> #ret_abi::Abi {
                ::polyload_guest::__private::guard(crate::__POLYLOAD_BUNDLE_ID, #name_str, move || {
                    #(
                        let #params = #arg_abi::from_abi(#params).map_err(|e| {
                            ::polyload_guest::__private::bad_argument(
                                crate::__POLYLOAD_BUNDLE_ID, #name_str, #positions, e,
                            )
                        })?;
                    )*
                    #[allow(unused_unsafe, reason = "the function may be an `unsafe fn`")]
                    let result = #unsafe_call { super::#name(#( #params ),*) };
                    #ret_abi::into_abi(result)
                })
            }

            const __PARAMS: &[&str] = &[ #( #arg_abi::TYPE ),* ];
            const __RET: &str = #ret_abi::TYPE;
            const __LEN: usize = ::polyload_guest::__private::signature_len(__PARAMS, __RET);
            const __BYTES: [u8; __LEN] =
                ::polyload_guest::__private::signature_bytes::<__LEN>(__PARAMS, __RET);

            /// The signature string derived from the Rust types.
            pub const SIGNATURE: &str = ::polyload_guest::__private::signature_str(&__BYTES);

            /// The descriptor `bundle!` registers.
            pub fn __polyload_export() -> ::polyload_guest::__private::ExportDesc {
                ::polyload_guest::__private::ExportDesc {
                    name: #name_str,
                    signature: SIGNATURE,
                    code: __polyload_wrapper as *const ::std::ffi::c_void,
                }
            }
        }
    })
}
