//! `bundle!`: the ABI symbols of a bundle, cross-checked at compile time
//! against its `manifest.toml`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{bracketed, Ident, LitStr, Token};

/// The parsed input: `exports: [a, b], manifest: "..", id: ".."` (any
/// order, `exports` required), or the shorthand `a, b`.
struct Input {
    exports: Vec<syn::Path>,
    manifest: Option<LitStr>,
    id: Option<LitStr>,
}

impl Parse for Input {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let keyed = input.peek(Ident) && input.peek2(Token![:]) && !input.peek2(Token![::]);
        if !keyed {
            let paths = Punctuated::<syn::Path, Token![,]>::parse_terminated(input)?;
            return Ok(Input {
                exports: paths.into_iter().collect(),
                manifest: None,
                id: None,
            });
        }
        let mut exports = None;
        let mut manifest = None;
        let mut id = None;
        while !input.is_empty() {
            let key: Ident = input.parse()?;
            input.parse::<Token![:]>()?;
            match key.to_string().as_str() {
                "exports" if exports.is_none() => {
                    let content;
                    bracketed!(content in input);
                    let paths = Punctuated::<syn::Path, Token![,]>::parse_terminated(&content)?;
                    exports = Some(paths.into_iter().collect());
                }
                "manifest" if manifest.is_none() => manifest = Some(input.parse()?),
                "id" if id.is_none() => id = Some(input.parse()?),
                "exports" | "manifest" | "id" => {
                    return Err(syn::Error::new_spanned(
                        &key,
                        format!("`{key}` given twice"),
                    ))
                }
                _ => {
                    return Err(syn::Error::new_spanned(
                        &key,
                        format!("unknown key `{key}`: expected `exports`, `manifest` or `id`"),
                    ))
                }
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        let exports = exports.ok_or_else(|| {
            syn::Error::new(
                Span::call_site(),
                "bundle! needs `exports: [function, ...]`",
            )
        })?;
        Ok(Input {
            exports,
            manifest,
            id,
        })
    }
}

/// What `bundle!` needs from `manifest.toml`.
struct Manifest {
    path: PathBuf,
    id: String,
    /// Export name to signature text, in file order of keys (sorted).
    exports: BTreeMap<String, String>,
}

fn read_manifest(path: &Path, span: Span) -> syn::Result<Manifest> {
    let err = |msg: String| syn::Error::new(span, format!("{}: {msg}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let doc: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| err(e.to_string()))?;
    let id = match doc.get("id") {
        Some(toml::Value::String(s)) => s.clone(),
        Some(_) => return Err(err("`id` must be a string".into())),
        None => return Err(err("no `id`".into())),
    };
    let mut exports = BTreeMap::new();
    match doc.get("exports") {
        Some(toml::Value::Table(t)) => {
            for (name, sig) in t {
                match sig {
                    toml::Value::String(s) => {
                        exports.insert(name.clone(), s.clone());
                    }
                    _ => {
                        return Err(err(format!(
                            "[exports] `{name}` must be a signature string"
                        )))
                    }
                }
            }
        }
        Some(_) => return Err(err("`exports` must be a table".into())),
        None => {}
    }
    Ok(Manifest {
        path: path.to_path_buf(),
        id,
        exports,
    })
}

/// Finds and reads the manifest: the `manifest:` path, or `manifest.toml`
/// when it exists; `None` only when `id:` stands in for it.
fn manifest_of(input: &Input) -> syn::Result<Option<Manifest>> {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").map_err(|_| {
        syn::Error::new(
            Span::call_site(),
            "bundle!: CARGO_MANIFEST_DIR is not set (build with cargo)",
        )
    })?);
    if let Some(lit) = &input.manifest {
        return read_manifest(&dir.join(lit.value()), lit.span()).map(Some);
    }
    let default = dir.join("manifest.toml");
    if default.exists() {
        return read_manifest(&default, Span::call_site()).map(Some);
    }
    if input.id.is_some() {
        return Ok(None);
    }
    Err(syn::Error::new(
        Span::call_site(),
        format!(
            "bundle!: no manifest.toml in {}; write `manifest: \"path/to/manifest.toml\"` \
             (relative to Cargo.toml), or `id: \"bundle-id\"` to build without a manifest",
            dir.display()
        ),
    ))
}

pub(crate) fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let input: Input = syn::parse2(input)?;
    let manifest = manifest_of(&input)?;

    // Export names are the last path segments; each once.
    let mut names: BTreeMap<String, &syn::Path> = BTreeMap::new();
    for p in &input.exports {
        let name = p
            .segments
            .last()
            .expect("a path has a segment")
            .ident
            .to_string();
        if names.insert(name.clone(), p).is_some() {
            return Err(syn::Error::new_spanned(
                p,
                format!("`{name}` is exported twice"),
            ));
        }
    }

    let id = match (&manifest, &input.id) {
        (Some(m), Some(lit)) if lit.value() != m.id => {
            return Err(syn::Error::new(
                lit.span(),
                format!(
                    "`id: {:?}` differs from {}'s `id = {:?}`",
                    lit.value(),
                    m.path.display(),
                    m.id
                ),
            ))
        }
        (Some(m), _) => m.id.clone(),
        (None, Some(lit)) => lit.value(),
        (None, None) => unreachable!("manifest_of requires one"),
    };

    // Past this point the id is known: emit it even on error, so that the
    // `#[export]` wrappers compile and the error above is the only one.
    let id_const = quote! {
        /// The bundle id, for error messages of `#[export]` functions.
        #[doc(hidden)]
        pub const __POLYLOAD_BUNDLE_ID: &str = #id;
    };
    match symbols(&input, manifest.as_ref(), &names) {
        Ok(body) => Ok(quote! { #id_const #body }),
        Err(e) => {
            let e = e.into_compile_error();
            Ok(quote! { #id_const #e })
        }
    }
}

/// The manifest checks and the ABI symbols.
fn symbols(
    input: &Input,
    manifest: Option<&Manifest>,
    names: &BTreeMap<String, &syn::Path>,
) -> syn::Result<TokenStream> {
    let mut checks = Vec::new();
    let mut track = TokenStream::new();
    if let Some(m) = manifest {
        let file = m.path.display().to_string();
        let missing: Vec<&String> = m
            .exports
            .keys()
            .filter(|k| !names.contains_key(*k))
            .collect();
        if !missing.is_empty() {
            let list: Vec<String> = missing.iter().map(|k| format!("`{k}`")).collect();
            return Err(syn::Error::new(
                Span::call_site(),
                format!(
                    "{file} declares {} under [exports], missing from bundle!'s exports",
                    list.join(", ")
                ),
            ));
        }
        for (name, path) in names {
            let Some(want) = m.exports.get(name) else {
                return Err(syn::Error::new_spanned(
                    path,
                    format!(
                        "`{name}` is not declared in {file}: add `{name} = \"<signature>\"` \
                         under [exports] (the signature is `{}::SIGNATURE`)",
                        quote!(#path).to_string().replace(' ', "")
                    ),
                ));
            };
            let msg = format!(
                "{file}: `{name} = {want:?}` differs from the signature derived from the Rust types of `{name}`"
            );
            // `assert!` reads its message as a format string.
            let msg = msg.replace('{', "{{").replace('}', "}}");
            checks.push(quote_spanned! {path.span()=>
                const _: () = ::core::assert!(
                    ::polyload_guest::__private::signatures_match(#path::SIGNATURE, #want),
                    #msg
                );
            });
        }
        // Rebuild when the manifest changes.
        track = quote! { const _: &[u8] = ::core::include_bytes!(#file); };
    }

    let descs = input.exports.iter().map(|p| {
        quote_spanned! {p.span()=> #p::__polyload_export() }
    });

    Ok(quote! {
        #[cfg(panic = "abort")]
        ::core::compile_error!(
            "polyload bundles must be built with panic = \"unwind\": a panic must become an error \
             value for the host, which `panic = \"abort\"` makes impossible"
        );

        #track
        #( #checks )*

        /// The ABI version this bundle was built against, packed.
        #[unsafe(no_mangle)]
        pub extern "C" fn polyload_abi_version() -> u32 {
            ::polyload_guest::polyload_abi::POLYLOAD_ABI_VERSION.packed()
        }

        /// Defines the bundle's exports with the host.
        ///
        /// # Safety
        /// Called by the polyload host, with its table (valid for the life of
        /// the bundle) and the bundle handle.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn polyload_bundle_init(
            host: *const ::polyload_guest::polyload_abi::PolyloadHost,
            bundle: *mut ::polyload_guest::polyload_abi::PolyloadBundle,
        ) -> i32 {
            let exports = [ #( #descs ),* ];
            // SAFETY: forwarded unchanged from the host, per this function's
            // contract.
            unsafe { ::polyload_guest::__private::init(host, bundle, &exports) }
        }

        /// The bundle's build metadata (`key=value` lines).
        #[unsafe(no_mangle)]
        pub extern "C" fn polyload_build_info() -> ::polyload_guest::polyload_abi::PolyloadStr {
            ::polyload_guest::polyload_abi::PolyloadStr::from_str(::polyload_guest::BUILD_INFO)
        }
    })
}
