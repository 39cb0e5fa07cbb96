//! Generic items and types: binding type parameters to the types an item
//! names, and the names of instantiated handle types.

use super::{Planner, Ty};
use crate::rimport::api::Subst;
use rustdoc_types::{GenericParamDefKind, Item, ItemEnum};

impl Planner<'_> {
    /// The owner's type parameters in order, each with its type: those
    /// without defaults take `owner_args` (in order), the others their
    /// defaults (`IndexSet<T, S = RandomState>` at `T = i64`).
    fn owner_params<'o>(&self, owner: &'o Item, owner_args: &[Ty]) -> Vec<(&'o str, Option<Ty>)> {
        let Some(generics) = type_generics(owner) else {
            return Vec::new();
        };
        let mut given = owner_args.iter();
        generics
            .params
            .iter()
            .filter_map(|p| match &p.kind {
                GenericParamDefKind::Type { default, .. } => Some((
                    p.name.as_str(),
                    match default {
                        None => given.next().cloned(),
                        Some(d) => Some(self.api.ty(d, &Subst::default())),
                    },
                )),
                _ => None,
            })
            .collect()
    }

    /// The owner's own type parameters bound for its fields' types
    /// (`Complex<T>`'s `re: T` at `T = f64`).
    pub(super) fn owner_subst(&self, owner: &Item, owner_args: &[Ty]) -> Subst {
        let mut subst = Subst::default();
        for (name, ty) in self.owner_params(owner, owner_args) {
            if let Some(ty) = ty {
                subst.map.insert(name.to_string(), ty);
            }
        }
        subst
    }

    /// Binds a function's type parameters to `user` types, in order; the
    /// turbofish to write, if one is allowed.
    pub(super) fn bind_generics(
        &self,
        item: &Item,
        user: &[Ty],
        subst: &mut Subst,
    ) -> Result<String, String> {
        let ItemEnum::Function(f) = &item.inner else {
            return Ok(String::new());
        };
        let params: Vec<(&str, bool)> = f
            .generics
            .params
            .iter()
            .filter_map(|p| match &p.kind {
                GenericParamDefKind::Type { is_synthetic, .. } => {
                    Some((p.name.as_str(), *is_synthetic))
                }
                _ => None,
            })
            .collect();
        if params.len() != user.len() {
            let names: Vec<&str> = params.iter().map(|p| p.0).collect();
            return Err(format!(
                "takes {} type parameter(s) ({}), {} given in `generics`",
                params.len(),
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                },
                user.len()
            ));
        }
        let mut explicit = Vec::new();
        for ((pname, synthetic), ty) in params.iter().zip(user) {
            if *synthetic {
                subst.impl_trait.push(ty.clone());
            } else {
                subst.map.insert(pname.to_string(), ty.clone());
                explicit.push(ty.rust());
            }
        }
        // `impl Trait` parameters forbid a turbofish; inference then works
        // from the wrapper's own argument types.
        Ok(if explicit.is_empty() || !subst.impl_trait.is_empty() {
            String::new()
        } else {
            format!("::<{}>", explicit.join(", "))
        })
    }

    /// Binds an impl's type parameters to the owner's ([`Self::owner_params`]):
    /// `impl<T, S> IndexSet<T, S>` at `T = i64` and `S`'s default,
    /// `impl<F> NamedTempFile<F>` at `F = File`.
    pub(super) fn bind_impl_params(
        &self,
        owner: &Item,
        imp: &rustdoc_types::Impl,
        owner_args: &[Ty],
        subst: &mut Subst,
    ) -> Result<(), String> {
        let params: Vec<&str> = imp
            .generics
            .params
            .iter()
            .filter(|p| matches!(p.kind, GenericParamDefKind::Type { .. }))
            .map(|p| p.name.as_str())
            .collect();
        if params.is_empty() {
            return Ok(());
        }
        let owner_params = self.owner_params(owner, owner_args);
        let rustdoc_types::Type::ResolvedPath(for_) = &imp.for_ else {
            return Err("methods of generic impls are not supported".into());
        };
        let args: Vec<&rustdoc_types::Type> = match for_.args.as_deref() {
            Some(rustdoc_types::GenericArgs::AngleBracketed { args, .. }) => args
                .iter()
                .filter_map(|a| match a {
                    rustdoc_types::GenericArg::Type(t) => Some(t),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        for name in params {
            let at = args
                .iter()
                .position(|a| matches!(a, rustdoc_types::Type::Generic(g) if g == name));
            match at.and_then(|i| owner_params.get(i)?.1.clone()) {
                Some(ty) => {
                    subst.map.insert(name.to_string(), ty);
                }
                None => {
                    return Err(format!(
                        "methods of generic impls are not supported (`{name}` is not a parameter of the type)"
                    ))
                }
            }
        }
        Ok(())
    }
}

/// Whether `t` has no part that cannot cross (an unbound generic parameter,
/// a private type, ...).
pub(super) fn is_concrete(t: &Ty) -> bool {
    match t {
        Ty::Bad(_) => false,
        Ty::Prim(_) => true,
        Ty::Ref { inner, .. } | Ty::Slice(inner) => is_concrete(inner),
        Ty::Tuple(ts) | Ty::Std(_, ts) | Ty::Named { args: ts, .. } => ts.iter().all(is_concrete),
    }
}

/// A struct's or enum's generics.
pub(super) fn type_generics(item: &Item) -> Option<&rustdoc_types::Generics> {
    match &item.inner {
        ItemEnum::Struct(s) => Some(&s.generics),
        ItemEnum::Enum(e) => Some(&e.generics),
        _ => None,
    }
}

/// Splits `user`, an item's `generics`, into the arguments of its owner
/// type's parameters without defaults (which come first: `IndexSet<T, S =
/// RandomState>` takes `T`) and the rest, for the method's own parameters.
pub(super) fn owner_args<'u>(owner: &Item, user: &'u [Ty]) -> Result<(Vec<Ty>, &'u [Ty]), String> {
    let Some(generics) = type_generics(owner) else {
        return Ok((Vec::new(), user));
    };
    let open: Vec<&str> = generics
        .params
        .iter()
        .filter(|p| matches!(&p.kind, GenericParamDefKind::Type { default: None, .. }))
        .map(|p| p.name.as_str())
        .collect();
    if user.len() < open.len() {
        return Err(format!(
            "its type is generic over {}: give their types first in `generics` (e.g. generics = [{}])",
            open.join(", "),
            open.iter().map(|_| "\"i64\"").collect::<Vec<_>>().join(", ")
        ));
    }
    Ok((user[..open.len()].to_vec(), &user[open.len()..]))
}

/// A handle type's name in signatures: its Rust path with standard types
/// by their short names (`indexmap::IndexSet<::std::string::String>` ->
/// `indexmap::IndexSet<String>`), which the signature grammar accepts.
pub(crate) fn handle_name(path: &str) -> String {
    fn short(t: &str) -> &str {
        let t = t.trim();
        match t.strip_prefix("::std::") {
            Some(rest) => rest.rsplit("::").next().unwrap_or(rest),
            None => t.trim_start_matches("::"),
        }
    }
    let mut out = String::new();
    let mut token = String::new();
    for c in path.chars() {
        if matches!(c, '<' | '>' | ',') {
            out.push_str(short(&token));
            token.clear();
            match c {
                ',' => out.push_str(", "),
                c => out.push(c),
            }
        } else {
            token.push(c);
        }
    }
    out.push_str(short(&token));
    out
}

/// The identifier for a handle type's definitions and marker: its last
/// path segment with its generic arguments (`indexmap::IndexSet<i64>` ->
/// `IndexSet_i64`).
pub(crate) fn short_ident(path: &str) -> String {
    let name = handle_name(path);
    let base = name.find('<').map_or(name.as_str(), |i| &name[..i]);
    let start = base.rfind("::").map_or(0, |i| i + 2);
    ident_of(&name[start..])
}

/// A definition-name fragment for a generic argument (`Vec<i64>` -> `Vec_i64`).
pub(super) fn ident_of(ty: &str) -> String {
    let mut s = String::new();
    for c in ty.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c);
        } else if !s.ends_with('_') && !s.is_empty() {
            s.push('_');
        }
    }
    s.trim_end_matches('_').replace("_str", "str")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_names_and_identifiers_of_generic_types() {
        assert_eq!(handle_name("semver::Version"), "semver::Version");
        assert_eq!(
            handle_name("indexmap::IndexSet<::std::string::String>"),
            "indexmap::IndexSet<String>"
        );
        assert_eq!(
            handle_name("a::M<i64, ::std::vec::Vec<::std::string::String>>"),
            "a::M<i64, Vec<String>>"
        );
        for name in ["semver::Version", "a::M<i64, Vec<String>>"] {
            let sig: polyload_ffi::Signature = format!("fn(handle<{name}>)").parse().unwrap();
            assert_eq!(sig.to_string(), format!("fn(handle<{name}>)"));
        }
        assert_eq!(short_ident("semver::Version"), "Version");
        assert_eq!(
            short_ident("indexmap::IndexSet<::std::string::String>"),
            "IndexSet_String"
        );
    }
}
