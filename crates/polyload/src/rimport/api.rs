//! A crate's public API, read from rustdoc's JSON (`rustdoc-types`): public
//! paths, items, their real signatures as [`Ty`]s, and what the types
//! implement.

use rustdoc_types::{
    Crate, GenericArg, GenericArgs, GenericParamDefKind, Id, Item, ItemEnum, StructKind, Type,
    Visibility,
};
use std::collections::{HashMap, VecDeque};

/// A Rust type as the planner sees it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Ty {
    /// `i64`, `bool`, `char`, `str`, `usize`, ...
    Prim(String),
    /// `&T`, `&mut T`.
    Ref { mutable: bool, inner: Box<Ty> },
    /// `[T]`.
    Slice(Box<Ty>),
    /// `(A, B)`; `()` is the empty tuple.
    Tuple(Vec<Ty>),
    /// A standard type the planner knows: `String`, `Vec`, `Option`,
    /// `Result`, `Cow`, `Box`.
    Std(&'static str, Vec<Ty>),
    /// Any other named type: its public path, and whether it borrows
    /// (has lifetime parameters).
    Named {
        id: Id,
        path: String,
        args: Vec<Ty>,
        borrows: bool,
    },
    /// A type that cannot cross, with the reason.
    Bad(String),
}

impl Ty {
    pub(crate) fn is_prim(&self, name: &str) -> bool {
        matches!(self, Ty::Prim(p) if p == name)
    }

    pub(crate) fn is_str(&self) -> bool {
        self.is_prim("str")
    }

    /// Rust source for the type (for generated code and messages).
    pub(crate) fn rust(&self) -> String {
        match self {
            Ty::Prim(p) => p.clone(),
            Ty::Ref { mutable, inner } => {
                format!("&{}{}", if *mutable { "mut " } else { "" }, inner.rust())
            }
            Ty::Slice(t) => format!("[{}]", t.rust()),
            Ty::Tuple(ts) if ts.len() == 1 => format!("({},)", ts[0].rust()),
            Ty::Tuple(ts) => format!(
                "({})",
                ts.iter().map(Ty::rust).collect::<Vec<_>>().join(", ")
            ),
            Ty::Std(name, args) if args.is_empty() => std_path(name).to_string(),
            Ty::Named { path, args, .. } if args.is_empty() => path.clone(),
            Ty::Std(name, args) => format!("{}<{}>", std_path(name), join(args)),
            Ty::Named { path, args, .. } => format!("{path}<{}>", join(args)),
            Ty::Bad(why) => format!("/* {why} */"),
        }
    }
}

fn join(args: &[Ty]) -> String {
    args.iter().map(Ty::rust).collect::<Vec<_>>().join(", ")
}

fn std_path(name: &str) -> &'static str {
    match name {
        "String" => "::std::string::String",
        "Vec" => "::std::vec::Vec",
        "Option" => "::std::option::Option",
        "Result" => "::std::result::Result",
        "Cow" => "::std::borrow::Cow",
        "Ordering" => "::std::cmp::Ordering",
        "Path" => "::std::path::Path",
        "PathBuf" => "::std::path::PathBuf",
        _ => "::std::boxed::Box",
    }
}

/// Parses a type the user gives for a generic parameter: primitives,
/// `&str`, `&[T]`, `String`, `Vec<T>`, `Option<T>`.
pub(crate) fn parse_user_ty(s: &str) -> Result<Ty, String> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('&') {
        let (mutable, rest) = match rest.trim_start().strip_prefix("mut ") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let inner = match rest
            .trim()
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
        {
            Some(elem) => Ty::Slice(Box::new(parse_user_ty(elem)?)),
            None => parse_user_ty(rest)?,
        };
        return Ok(Ty::Ref {
            mutable,
            inner: Box::new(inner),
        });
    }
    if let Some((head, rest)) = s.split_once('<') {
        let inner = rest
            .strip_suffix('>')
            .ok_or_else(|| format!("`{s}` is not a type"))?;
        let args = super::spec::split_args(inner)
            .iter()
            .map(|a| parse_user_ty(a))
            .collect::<Result<Vec<_>, _>>()?;
        let name = match head.trim() {
            "Vec" => "Vec",
            "Option" => "Option",
            "Box" => "Box",
            other => {
                return Err(format!(
                "`{other}<..>` is not a type rimport can instantiate with (use Vec, Option, Box)"
            ))
            }
        };
        return Ok(Ty::Std(name, args));
    }
    match s {
        "String" => Ok(Ty::Std("String", Vec::new())),
        "bool" | "char" | "str" | "f32" | "f64" | "i8" | "i16" | "i32" | "i64" | "isize" | "u8"
        | "u16" | "u32" | "u64" | "usize" => Ok(Ty::Prim(s.to_string())),
        _ => Err(format!(
            "`{s}` is not a type rimport can instantiate with (primitives, &str, String, Vec<T>, Option<T>)"
        )),
    }
}

/// What a path names.
pub(crate) enum Found<'a> {
    /// A free function.
    Function(&'a Item),
    /// A type (struct, enum) or a trait, for its methods and fields.
    Type(&'a Item),
}

/// A crate's documented API.
pub(crate) struct Api {
    krate: Crate,
    /// The crate's library name (`unicode_segmentation`).
    pub(crate) lib: String,
    /// Public path (from the crate's name) of each local item reachable
    /// from the root.
    public: HashMap<Id, String>,
}

impl Api {
    /// Parses rustdoc JSON, checking its format version against the one
    /// this build of polyload reads.
    pub(crate) fn parse(json: &str, lib: &str) -> Result<Api, String> {
        #[derive(serde::Deserialize)]
        struct Version {
            format_version: u32,
        }
        let v: Version = serde_json::from_str(json)
            .map_err(|e| format!("rustdoc's JSON has no format version: {e}"))?;
        if v.format_version != rustdoc_types::FORMAT_VERSION {
            return Err(format!(
                "rustdoc wrote JSON format version {}, but this polyload reads format version {} (rustdoc-types {}): use the toolchain polyload was built with, or rebuild polyload with a rustdoc-types matching the toolchain",
                v.format_version,
                rustdoc_types::FORMAT_VERSION,
                RUSTDOC_TYPES_VERSION
            ));
        }
        let krate: Crate = serde_json::from_str(json)
            .map_err(|e| format!("rustdoc's JSON does not parse: {e}"))?;
        let mut api = Api {
            krate,
            lib: lib.to_string(),
            public: HashMap::new(),
        };
        api.index_public_paths();
        Ok(api)
    }

    pub(crate) fn item(&self, id: &Id) -> Option<&Item> {
        self.krate.index.get(id)
    }

    /// The named children of a module, following `pub use` (globs too).
    fn children(&self, module: &Id) -> Vec<(String, Id)> {
        let mut out = Vec::new();
        let mut seen = Vec::new();
        self.collect_children(module, &mut out, &mut seen);
        out
    }

    fn collect_children(&self, module: &Id, out: &mut Vec<(String, Id)>, seen: &mut Vec<Id>) {
        if seen.contains(module) {
            return;
        }
        seen.push(*module);
        let Some(ItemEnum::Module(m)) = self.item(module).map(|i| &i.inner) else {
            return;
        };
        for id in &m.items {
            let Some(item) = self.item(id) else { continue };
            if !matches!(item.visibility, Visibility::Public) {
                continue;
            }
            match &item.inner {
                ItemEnum::Use(u) => match (u.id, u.is_glob) {
                    (Some(target), true) => self.collect_children(&target, out, seen),
                    (Some(target), false) if self.item(&target).is_some() => {
                        out.push((u.name.clone(), target))
                    }
                    _ => {}
                },
                _ => {
                    if let Some(name) = &item.name {
                        out.push((name.clone(), *id));
                    }
                }
            }
        }
    }

    fn index_public_paths(&mut self) {
        let mut queue = VecDeque::from([(self.krate.root, self.lib.clone())]);
        let mut public = HashMap::new();
        while let Some((module, prefix)) = queue.pop_front() {
            for (name, id) in self.children(&module) {
                if public.contains_key(&id) {
                    continue;
                }
                let path = format!("{prefix}::{name}");
                if matches!(self.item(&id).map(|i| &i.inner), Some(ItemEnum::Module(_))) {
                    queue.push_back((id, path.clone()));
                }
                public.insert(id, path);
            }
        }
        self.public = public;
    }

    /// Resolves a path from the crate root (`Version::parse` resolves
    /// `Version`): the item and the segments after it.
    pub(crate) fn lookup<'p>(
        &self,
        path: &'p [&'p str],
    ) -> Result<(Found<'_>, &'p [&'p str]), String> {
        let mut segs = path;
        if segs.first() == Some(&self.lib.as_str()) && segs.len() > 1 {
            segs = &segs[1..];
        }
        let mut module = self.krate.root;
        let mut walked = self.lib.clone();
        for (i, seg) in segs.iter().enumerate() {
            let Some((_, id)) = self.children(&module).into_iter().find(|(n, _)| n == seg) else {
                return Err(format!("`{walked}` has no public item `{seg}`"));
            };
            let item = self.item(&id).expect("children are in the index");
            walked = format!("{walked}::{seg}");
            match &item.inner {
                ItemEnum::Module(_) => module = id,
                ItemEnum::Function(_) => return Ok((Found::Function(item), &segs[i + 1..])),
                ItemEnum::Struct(_) | ItemEnum::Enum(_) | ItemEnum::Trait(_) => {
                    return Ok((Found::Type(item), &segs[i + 1..]))
                }
                _ => return Err(format!("`{walked}` is not a function, type or trait")),
            }
        }
        Err(format!("`{walked}` is a module, not an item"))
    }

    /// The public path of a local item.
    pub(crate) fn public_path(&self, id: &Id) -> Option<&str> {
        self.public.get(id).map(String::as_str)
    }

    /// The impls of a struct or enum.
    pub(crate) fn impls(&self, id: &Id) -> &[Id] {
        match self.item(id).map(|i| &i.inner) {
            Some(ItemEnum::Struct(s)) => &s.impls,
            Some(ItemEnum::Enum(e)) => &e.impls,
            _ => &[],
        }
    }

    /// Whether type `id` implements the standard trait `name` (`Display`,
    /// `Debug`, `Clone`, `Iterator`), by its impls.
    pub(crate) fn implements(&self, id: &Id, name: &str) -> bool {
        self.trait_impl(id, name).is_some()
    }

    fn trait_impl(&self, id: &Id, name: &str) -> Option<&rustdoc_types::Impl> {
        self.impls(id)
            .iter()
            .find_map(|i| match self.item(i).map(|i| &i.inner) {
                Some(ItemEnum::Impl(imp))
                    if !imp.is_negative
                        && imp.blanket_impl.is_none()
                        && imp
                            .trait_
                            .as_ref()
                            .is_some_and(|t| self.is_std(&t.id, name)) =>
                {
                    Some(imp)
                }
                _ => None,
            })
    }

    /// Whether `id` is the standard library's item `name` (by the path
    /// rustdoc records for it).
    fn is_std(&self, id: &Id, name: &str) -> bool {
        self.krate.paths.get(id).is_some_and(|s| {
            s.path.last().is_some_and(|l| l == name)
                && matches!(
                    s.path.first().map(String::as_str),
                    Some("core" | "alloc" | "std")
                )
        })
    }

    /// The `Item` type of a type's `Iterator` impl, if it has one.
    pub(crate) fn iterator_item(&self, id: &Id) -> Option<&Type> {
        let imp = self.trait_impl(id, "Iterator")?;
        imp.items.iter().find_map(|i| {
            let item = self.item(i)?;
            match &item.inner {
                ItemEnum::AssocType { type_: Some(t), .. }
                    if item.name.as_deref() == Some("Item") =>
                {
                    Some(t)
                }
                _ => None,
            }
        })
    }

    /// The methods (and associated functions) of a type named `name`:
    /// inherent impls first, then trait impls.
    pub(crate) fn methods(&self, id: &Id, name: &str) -> Vec<(&Item, &rustdoc_types::Impl)> {
        let mut out = Vec::new();
        for inherent in [true, false] {
            for i in self.impls(id) {
                let Some(ItemEnum::Impl(imp)) = self.item(i).map(|i| &i.inner) else {
                    continue;
                };
                if imp.trait_.is_none() != inherent || imp.blanket_impl.is_some() || imp.is_negative
                {
                    continue;
                }
                for m in &imp.items {
                    if let Some(item) = self.item(m) {
                        if item.name.as_deref() == Some(name)
                            && matches!(item.inner, ItemEnum::Function(_))
                            && (!inherent || matches!(item.visibility, Visibility::Public))
                        {
                            out.push((item, imp));
                        }
                    }
                }
            }
        }
        out
    }

    /// Public zero-argument `&self` methods of a type (for a borrowed
    /// result's JSON form): `(name, return type)`.
    pub(crate) fn getters(&self, id: &Id) -> Vec<(String, &Type)> {
        let mut out = Vec::new();
        for i in self.impls(id) {
            let Some(ItemEnum::Impl(imp)) = self.item(i).map(|i| &i.inner) else {
                continue;
            };
            if imp.trait_.is_some() {
                continue;
            }
            for m in &imp.items {
                let Some(item) = self.item(m) else { continue };
                let ItemEnum::Function(f) = &item.inner else {
                    continue;
                };
                let by_ref_self = matches!(
                    f.sig.inputs.as_slice(),
                    [(n, Type::BorrowedRef { is_mutable: false, type_, .. })]
                        if n == "self" && matches!(&**type_, Type::Generic(s) if s == "Self")
                );
                let no_type_params = f
                    .generics
                    .params
                    .iter()
                    .all(|p| matches!(p.kind, GenericParamDefKind::Lifetime { .. }));
                if by_ref_self && no_type_params && matches!(item.visibility, Visibility::Public) {
                    if let (Some(name), Some(ret)) = (&item.name, &f.sig.output) {
                        out.push((name.clone(), ret));
                    }
                }
            }
        }
        out
    }

    /// The public fields of a plain struct: `(name, type)`.
    pub(crate) fn field(&self, id: &Id, name: &str) -> Option<&Type> {
        let Some(ItemEnum::Struct(s)) = self.item(id).map(|i| &i.inner) else {
            return None;
        };
        let StructKind::Plain { fields, .. } = &s.kind else {
            return None;
        };
        fields.iter().find_map(|f| {
            let item = self.item(f)?;
            match &item.inner {
                ItemEnum::StructField(t)
                    if item.name.as_deref() == Some(name)
                        && matches!(item.visibility, Visibility::Public) =>
                {
                    Some(t)
                }
                _ => None,
            }
        })
    }

    /// The single implementor of a trait, when it is a primitive (`str` for
    /// `UnicodeSegmentation`).
    pub(crate) fn trait_implementors(&self, trait_: &Item) -> Vec<Ty> {
        let ItemEnum::Trait(t) = &trait_.inner else {
            return Vec::new();
        };
        t.implementations
            .iter()
            .filter_map(|i| match self.item(i).map(|i| &i.inner) {
                Some(ItemEnum::Impl(imp)) if imp.blanket_impl.is_none() => {
                    Some(self.ty(&imp.for_, &Subst::default()))
                }
                _ => None,
            })
            .collect()
    }

    /// Converts a rustdoc type, substituting generic parameters.
    pub(crate) fn ty(&self, t: &Type, subst: &Subst) -> Ty {
        match t {
            Type::Primitive(p) => Ty::Prim(p.clone()),
            Type::Generic(g) => match subst.map.get(g) {
                Some(t) => t.clone(),
                None if g == "Self" => Ty::Bad("`Self` outside an impl".into()),
                None => Ty::Bad(format!(
                    "generic parameter `{g}`: give its type in `generics` (e.g. \"item::<i64>\")"
                )),
            },
            Type::BorrowedRef {
                is_mutable, type_, ..
            } => Ty::Ref {
                mutable: *is_mutable,
                inner: Box::new(self.ty(type_, subst)),
            },
            Type::Slice(t) => Ty::Slice(Box::new(self.ty(t, subst))),
            Type::Tuple(ts) => Ty::Tuple(ts.iter().map(|t| self.ty(t, subst)).collect()),
            Type::ImplTrait(_) => match subst.impl_trait.get(subst.next_impl.get()) {
                Some(t) => {
                    subst.next_impl.set(subst.next_impl.get() + 1);
                    t.clone()
                }
                None => Ty::Bad("an `impl Trait` parameter: give its type in `generics`".into()),
            },
            Type::ResolvedPath(p) => {
                let args: Vec<Ty> = match p.args.as_deref() {
                    Some(GenericArgs::AngleBracketed { args, .. }) => args
                        .iter()
                        .filter_map(|a| match a {
                            GenericArg::Type(t) => Some(self.ty(t, subst)),
                            _ => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                let borrows = matches!(p.args.as_deref(), Some(GenericArgs::AngleBracketed { args, .. })
                    if args.iter().any(|a| matches!(a, GenericArg::Lifetime(l) if l != "'static")));
                for name in ["Ordering", "Path", "PathBuf"] {
                    if self.is_std(&p.id, name) {
                        return Ty::Std(name, Vec::new());
                    }
                }
                for name in ["String", "Vec", "Option", "Result", "Cow", "Box"] {
                    if self.is_std(&p.id, name) {
                        return Ty::Std(name, args);
                    }
                }
                match self.public_path(&p.id) {
                    Some(path) => Ty::Named {
                        id: p.id,
                        path: path.to_string(),
                        args,
                        borrows,
                    },
                    None => {
                        let shown = self
                            .krate
                            .paths
                            .get(&p.id)
                            .map_or(p.path.clone(), |s| s.path.join("::"));
                        Ty::Bad(format!("`{shown}` is not a public type of this crate"))
                    }
                }
            }
            Type::QualifiedPath { name, .. } => Ty::Bad(format!("an associated type (`{name}`)")),
            Type::DynTrait(_) => Ty::Bad("a trait object".into()),
            Type::FunctionPointer(_) => Ty::Bad("a function pointer".into()),
            Type::RawPointer { .. } => Ty::Bad("a raw pointer".into()),
            Type::Array { .. } => Ty::Bad("an array".into()),
            _ => Ty::Bad("a type rimport does not know".into()),
        }
    }
}

/// The rustdoc-types release polyload is built with.
const RUSTDOC_TYPES_VERSION: &str = "0.57";

/// Generic parameters and their types for one item.
#[derive(Default)]
pub(crate) struct Subst {
    pub(crate) map: HashMap<String, Ty>,
    /// Types for `impl Trait` parameters, in order of appearance.
    pub(crate) impl_trait: Vec<Ty>,
    next_impl: std::cell::Cell<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_json_format_version_names_both() {
        let e = Api::parse(r#"{"format_version": 12, "root": 0}"#, "x")
            .err()
            .unwrap();
        assert!(
            e.contains("format version 12")
                && e.contains(&format!("format version {}", rustdoc_types::FORMAT_VERSION)),
            "{e}"
        );
    }

    #[test]
    fn user_types_parse() {
        assert_eq!(parse_user_ty("&str").unwrap().rust(), "&str");
        assert_eq!(
            parse_user_ty("Vec<i64>").unwrap().rust(),
            "::std::vec::Vec<i64>"
        );
        assert_eq!(parse_user_ty("&[f64]").unwrap().rust(), "&[f64]");
        assert!(parse_user_ty("HashMap<i64, i64>").is_err());
    }
}
