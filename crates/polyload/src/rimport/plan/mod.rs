//! From an item's real signature to a wrapper: how each parameter and the
//! result cross (see the crate-level rules in [`super`]).

mod generics;
mod json;

use super::api::{parse_user_ty, Api, Found, Subst, Ty};
pub(crate) use generics::short_ident;
use generics::{handle_name, ident_of, is_concrete, owner_args, type_generics};
use json::owned_form;
use rustdoc_types::{GenericParamDefKind, Id, Item, ItemEnum};
use std::collections::BTreeMap;

/// How a wrapper touches the handle table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Lock {
    /// No handle parameters.
    None,
    /// Borrows handles: shared.
    Read,
    /// Mutates or consumes one, or makes new ones while borrowing: exclusive.
    Write,
}

/// One generated definition.
#[derive(Debug)]
pub(crate) struct Wrapper {
    /// The definition name (`Version_parse`).
    pub(crate) name: String,
    /// What it wraps, for docs (`semver::Version::parse`).
    pub(crate) wraps: String,
    /// Wire types of the parameters (`&str`, `u64`, ...).
    pub(crate) params: Vec<String>,
    /// Statements that turn `a1..` into `p1..`.
    pub(crate) setup: Vec<String>,
    /// The call, producing `r`.
    pub(crate) call: String,
    /// The result's wire type and the expression turning `r` into it.
    pub(crate) ret: (String, String),
    /// How the table is held during the call.
    pub(crate) lock: Lock,
    /// Whether the result makes handles (needs the table exclusively).
    pub(crate) makes_handles: bool,
}

/// What a handle type supports.
#[derive(Debug, Clone)]
pub(crate) struct HandleType {
    /// The Rust type, as generated code writes it
    /// (`indexmap::IndexSet<::std::string::String>`).
    pub(crate) path: String,
    /// Its name in signatures, `handle<name>` ([`handle_name`]).
    pub(crate) name: String,
    /// Its marker type in the generated crate's `__handles` module
    /// (`Version`; a number is appended when two paths share a last
    /// segment), which makes its ids cross as `handle<path>`.
    pub(crate) marker: String,
    pub(crate) display: bool,
    pub(crate) debug: bool,
}

/// The plan of a whole wrapper crate.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) wrappers: Vec<Wrapper>,
    pub(crate) handles: BTreeMap<String, HandleType>,
}

/// The signature type of a wire type; `handles` names the handle markers.
pub(crate) fn sig_word(wire: &str, handles: &BTreeMap<String, HandleType>) -> String {
    if let Some(marker) = wire
        .strip_prefix(HANDLE)
        .and_then(|w| w.strip_prefix("<crate::__handles::"))
        .and_then(|w| w.strip_suffix('>'))
    {
        if let Some(h) = handles.values().find(|h| h.marker == marker) {
            return format!("handle<{}>", h.name);
        }
    }
    scalar_word(wire).to_string()
}

/// The signature word of a wire type other than a named handle.
fn scalar_word(wire: &str) -> &'static str {
    match wire {
        "&str" | "String" => "str",
        "&[u8]" | "Vec<u8>" => "bytes",
        "::polyload_guest::serde_json::Value" => "json",
        "()" => "void",
        "bool" => "bool",
        "i8" => "i8",
        "i16" => "i16",
        "i32" => "i32",
        "i64" => "i64",
        "u8" => "u8",
        "u16" => "u16",
        "u32" => "u32",
        "u64" => "u64",
        "f32" => "f32",
        "f64" => "f64",
        HANDLE => "handle",
        _ => "?",
    }
}

const JSON: &str = "::polyload_guest::serde_json::Value";
const HANDLE: &str = "::polyload_guest::handle::Id";

fn is_number(p: &str) -> bool {
    matches!(
        p,
        "bool" | "f32" | "f64" | "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64"
    )
}

fn is_text(t: &Ty) -> bool {
    match t {
        Ty::Prim(p) => p == "str" || p == "char",
        Ty::Std("String", _) => true,
        Ty::Std("Cow" | "Box", a) => a.first().is_some_and(|a| a.is_str()),
        Ty::Ref { inner, .. } => is_text(inner),
        _ => false,
    }
}

/// `Path`, `PathBuf` and references to them (results cross as `str`, lossily).
fn is_path(t: &Ty) -> bool {
    match t {
        Ty::Std("Path" | "PathBuf", _) => true,
        Ty::Ref { inner, .. } => is_path(inner),
        _ => false,
    }
}

fn is_bytes(t: &Ty) -> bool {
    match t {
        Ty::Slice(e) => e.is_prim("u8"),
        Ty::Std("Vec", a) => a.first().is_some_and(|a| a.is_prim("u8")),
        Ty::Ref { inner, .. } => is_bytes(inner),
        _ => false,
    }
}

pub(crate) struct Planner<'a> {
    api: &'a Api,
    json_types: Vec<String>,
    handles: BTreeMap<String, HandleType>,
}

impl<'a> Planner<'a> {
    pub(crate) fn new(api: &'a Api, json_types: &[String]) -> Self {
        let lib = &api.lib;
        Planner {
            api,
            json_types: json_types
                .iter()
                .map(|t| {
                    let t = t.trim_start_matches("crate::");
                    if t.starts_with(&format!("{lib}::")) {
                        t.to_string()
                    } else {
                        format!("{lib}::{t}")
                    }
                })
                .collect(),
            handles: BTreeMap::new(),
        }
    }

    pub(crate) fn finish(self, wrappers: Vec<Wrapper>) -> Plan {
        Plan {
            wrappers,
            handles: self.handles,
        }
    }

    /// Records `path` as a handle type; returns the wire type of its ids
    /// (`::polyload_guest::handle::Id<crate::__handles::Version>`).
    fn handle_type(&mut self, id: &Id, path: &str) -> String {
        if !self.handles.contains_key(path) {
            let short = short_ident(path);
            let taken = |m: &str| self.handles.values().any(|h| h.marker == m);
            let mut marker = short.clone();
            let mut n = 2;
            while taken(&marker) {
                marker = format!("{short}{n}");
                n += 1;
            }
            let h = HandleType {
                path: path.to_string(),
                name: handle_name(path),
                marker,
                display: self.api.implements(id, "Display"),
                debug: self.api.implements(id, "Debug"),
            };
            self.handles.insert(path.to_string(), h);
        }
        format!("{HANDLE}<crate::__handles::{}>", self.handles[path].marker)
    }

    fn is_json_type(&self, path: &str) -> bool {
        self.json_types.iter().any(|t| t == path)
    }

    /// Plans the item `path` (`Version::parse`) with `generics`.
    pub(crate) fn item(
        &mut self,
        path: &str,
        generics: &[String],
        name: Option<String>,
    ) -> Result<Wrapper, String> {
        let segs: Vec<&str> = path.split("::").collect();
        let (found, rest) = self.api.lookup(&segs)?;
        let user_tys = generics
            .iter()
            .map(|g| parse_user_ty(g))
            .collect::<Result<Vec<_>, _>>()?;
        let shown_generics = if generics.is_empty() {
            String::new()
        } else {
            format!(
                "_{}",
                generics
                    .iter()
                    .map(|g| ident_of(g))
                    .collect::<Vec<_>>()
                    .join("_")
            )
        };
        let default_name = {
            let mut s = segs
                .iter()
                .skip_while(|s| **s == self.api.lib)
                .copied()
                .collect::<Vec<_>>()
                .join("_");
            s.push_str(&shown_generics);
            s
        };
        let name = name.unwrap_or(default_name);
        match (found, rest) {
            (Found::Function(item), []) => {
                let mut subst = Subst::default();
                let call_path = self
                    .api
                    .public_path(&item.id)
                    .ok_or_else(|| format!("`{path}` is not public"))?
                    .to_string();
                let turbofish = self
                    .bind_generics(item, &user_tys, &mut subst)
                    .map_err(|e| format!("`{path}`: {e}"))?;
                self.function(
                    item,
                    &subst,
                    &name,
                    &format!("{call_path}{turbofish}"),
                    path,
                )
            }
            (Found::Type(ty_item), [member]) => {
                self.member(ty_item, member, &user_tys, &name, path)
            }
            (Found::Function(_), _) => Err(format!("`{path}`: a function has no members")),
            (Found::Type(_), []) => Err(format!(
                "`{path}` is a type: name one of its functions or fields (`{path}::new`)"
            )),
            (Found::Type(_), _) => Err(format!("`{path}`: nested members are not supported")),
        }
    }

    fn member(
        &mut self,
        owner: &Item,
        member: &str,
        user: &[Ty],
        name: &str,
        path: &str,
    ) -> Result<Wrapper, String> {
        let api = self.api;
        let owner_path = api
            .public_path(&owner.id)
            .ok_or_else(|| format!("`{path}`: its type is not public"))?
            .to_string();
        if let ItemEnum::Trait(_) = &owner.inner {
            // A trait's method, called on its one primitive implementor.
            let implementors = api.trait_implementors(owner);
            let self_ty = match implementors.as_slice() {
                [t @ Ty::Prim(_)] => t.clone(),
                _ => {
                    return Err(format!(
                        "`{path}`: a trait method is wrapped for a trait implemented by one primitive type; this one has {} implementor(s)",
                        implementors.len()
                    ))
                }
            };
            let ItemEnum::Trait(t) = &owner.inner else {
                unreachable!()
            };
            let method = t
                .items
                .iter()
                .filter_map(|i| api.item(i))
                .find(|i| {
                    i.name.as_deref() == Some(member) && matches!(i.inner, ItemEnum::Function(_))
                })
                .ok_or_else(|| format!("`{owner_path}` has no method `{member}`"))?;
            let mut subst = Subst::default();
            subst.map.insert("Self".into(), self_ty.clone());
            self.bind_generics(method, user, &mut subst)
                .map_err(|e| format!("`{path}`: {e}"))?;
            let call = format!("<{} as {owner_path}>::{member}", self_ty.rust());
            return self.function(method, &subst, name, &call, path);
        }
        let (owner_args, user) = owner_args(owner, user).map_err(|e| format!("`{path}`: {e}"))?;
        let self_ty = self.named(owner, &owner_path, owner_args.clone())?;
        let methods = api.methods(&owner.id, member);
        let field = api.field(&owner.id, member);
        if let Some((method, imp)) = methods.first() {
            // Handle types a failed plan recorded are dropped with it.
            let before = field.is_some().then(|| self.handles.clone());
            let planned = (|| {
                let mut subst = Subst::default();
                subst.map.insert("Self".into(), self_ty.clone());
                self.bind_impl_params(owner, imp, &owner_args, &mut subst)
                    .map_err(|e| format!("`{path}`: {e}"))?;
                self.bind_generics(method, user, &mut subst)
                    .map_err(|e| format!("`{path}`: {e}"))?;
                let call = format!("<{}>::{member}", self_ty.rust());
                self.function(method, &subst, name, &call, path)
            })();
            match (planned, before) {
                // A method that cannot cross gives way to a public field of
                // its name (`Complex::re`: the field, not `ComplexFloat::re`
                // with its associated type).
                (Err(_), Some(before)) => self.handles = before,
                (done, _) => return done,
            }
        }
        if let Some(field) = field {
            let fty = api.ty(field, &self.owner_subst(owner, &owner_args));
            let recv = Ty::Ref {
                mutable: false,
                inner: Box::new(self_ty),
            };
            let ret = Ty::Ref {
                mutable: false,
                inner: Box::new(fty),
            };
            return self.assemble(name, path, &[recv], &format!("&p1.{member}"), &ret);
        }
        if member == "to_string" {
            return self.display_of(owner, self_ty, name);
        }
        Err(format!(
            "`{owner_path}` has no public method or field `{member}`"
        ))
    }

    /// An expression giving the id (`u64`) of a new handle that holds `v`,
    /// a `path` value (a clone of it when `by_ref`); records the handle type
    /// and that the call makes handles.
    fn new_handle(
        &mut self,
        id: &Id,
        path: &str,
        v: &str,
        by_ref: bool,
        makes: &mut bool,
    ) -> Result<String, String> {
        if by_ref && !self.api.implements(id, "Clone") {
            return Err(format!(
                "a reference to `{path}`, which is not Clone, cannot become a handle"
            ));
        }
        *makes = true;
        Ok(if by_ref {
            format!("{{ let __o = ::std::clone::Clone::clone({v}); __t.insert(__o) }}")
        } else {
            format!("__t.insert({v})")
        })
    }

    /// The planner's type of a type item (its `Self`) at `args`, the types
    /// of its parameters without defaults ([`owner_args`]).
    fn named(&self, item: &Item, path: &str, args: Vec<Ty>) -> Result<Ty, String> {
        let generic =
            type_generics(item).ok_or_else(|| format!("`{path}` is not a struct or enum"))?;
        // Lifetimes and defaulted type parameters (`NamedTempFile<F = File>`)
        // are fine: the type is used at its defaults, as Rust reads the
        // bare path.
        if generic
            .params
            .iter()
            .any(|p| matches!(&p.kind, GenericParamDefKind::Const { .. }))
        {
            return Err(format!(
                "`{path}` has const generic parameters, which rimport does not instantiate"
            ));
        }
        Ok(Ty::Named {
            id: item.id,
            path: path.to_string(),
            args,
            borrows: false,
        })
    }

    /// `Type::to_string` through `Display` (or `Debug`).
    pub(crate) fn display_of(
        &mut self,
        owner: &Item,
        self_ty: Ty,
        name: &str,
    ) -> Result<Wrapper, String> {
        let owner_path = self_ty.rust();
        let recv = Ty::Ref {
            mutable: false,
            inner: Box::new(self_ty),
        };
        let call = if self.api.implements(&owner.id, "Display") {
            "::std::string::ToString::to_string(p1)"
        } else if self.api.implements(&owner.id, "Debug") {
            "format!(\"{:?}\", p1)"
        } else {
            return Err(format!(
                "`{owner_path}` implements neither Display nor Debug: no to_string"
            ));
        };
        self.assemble(
            name,
            &format!("{owner_path}::to_string"),
            &[recv],
            call,
            &Ty::Std("String", Vec::new()),
        )
    }

    fn function(
        &mut self,
        item: &Item,
        subst: &Subst,
        name: &str,
        callee: &str,
        path: &str,
    ) -> Result<Wrapper, String> {
        let ItemEnum::Function(f) = &item.inner else {
            unreachable!("functions only")
        };
        if f.header.is_async || f.header.is_unsafe || f.sig.is_c_variadic {
            return Err(format!("`{path}` is async, unsafe or variadic"));
        }
        let params: Vec<Ty> = f
            .sig
            .inputs
            .iter()
            .map(|(_, t)| self.api.ty(t, subst))
            .collect();
        let ret = match &f.sig.output {
            Some(t) => self.api.ty(t, subst),
            None => Ty::Tuple(Vec::new()),
        };
        let args: Vec<String> = (1..=params.len()).map(|i| format!("p{i}")).collect();
        let call = format!("{callee}({})", args.join(", "));
        self.assemble(name, path, &params, &call, &ret)
    }

    /// Puts a wrapper together from its parameter and result types.
    fn assemble(
        &mut self,
        name: &str,
        wraps: &str,
        params: &[Ty],
        call: &str,
        ret: &Ty,
    ) -> Result<Wrapper, String> {
        let mut wires = Vec::new();
        let mut takes = Vec::new();
        let mut setup = Vec::new();
        let mut lock = Lock::None;
        let mut handle_params = 0;
        let mut mut_handle = false;
        for (i, t) in params.iter().enumerate() {
            let n = i + 1;
            let p = self.param(t, n).map_err(|why| {
                format!(
                    "`{wraps}`: parameter {n} (`{}`) cannot cross: {why}",
                    t.rust()
                )
            })?;
            wires.push(p.wire);
            if p.lock > Lock::None {
                handle_params += 1;
            }
            mut_handle |= p.mutable;
            lock = lock.max(p.lock);
            if p.take {
                takes.push(p.code);
            } else {
                setup.push(p.code);
            }
        }
        if mut_handle && handle_params > 1 {
            return Err(format!(
                "`{wraps}`: takes a handle by `&mut` beside another handle, which rimport does not wrap"
            ));
        }
        takes.append(&mut setup);
        let mut makes = false;
        let (wire, code) = self.ret(ret, "r", &mut makes, 0).map_err(|why| {
            format!(
                "`{wraps}`: its result (`{}`) cannot cross: {why}",
                ret.rust()
            )
        })?;
        if makes && lock == Lock::Read {
            lock = Lock::Write;
        }
        Ok(Wrapper {
            name: name.to_string(),
            wraps: wraps.to_string(),
            params: wires,
            setup: takes,
            call: call.to_string(),
            ret: (wire, code),
            lock,
            makes_handles: makes,
        })
    }

    fn param(&mut self, t: &Ty, n: usize) -> Result<Param, String> {
        let a = format!("a{n}");
        let simple = |wire: &str, code: String| Param {
            wire: wire.to_string(),
            code,
            lock: Lock::None,
            take: false,
            mutable: false,
        };
        match t {
            Ty::Prim(p) if is_number(p) => Ok(simple(p, format!("let p{n} = {a};"))),
            Ty::Ref {
                mutable: false,
                inner,
            } if matches!(&**inner, Ty::Prim(p) if is_number(p)) => Ok(simple(
                &inner.rust(),
                format!("let p{n}_ = {a}; let p{n} = &p{n}_;"),
            )),
            Ty::Prim(p) if p == "usize" || p == "isize" => {
                let wire = if p == "usize" { "u64" } else { "i64" };
                Ok(simple(
                    wire,
                    format!("let p{n} = {p}::try_from({a}).map_err(|_| format!(\"argument {n}: {{}} does not fit a {p}\", {a}))?;"),
                ))
            }
            Ty::Prim(p) if p == "char" => {
                Ok(simple("&str", format!("let p{n} = __one_char({a}, {n})?;")))
            }
            Ty::Ref {
                mutable: false,
                inner,
            } if inner.is_str() => Ok(simple("&str", format!("let p{n} = {a};"))),
            Ty::Std("String", _) => Ok(simple("&str", format!("let p{n} = {a}.to_string();"))),
            Ty::Ref {
                mutable: false,
                inner,
            } if matches!(**inner, Ty::Std("String", _)) => Ok(simple(
                "&str",
                format!("let p{n}_ = {a}.to_string(); let p{n} = &p{n}_;"),
            )),
            Ty::Std("Cow", args) if args.first().is_some_and(Ty::is_str) => Ok(simple(
                "&str",
                format!("let p{n} = ::std::borrow::Cow::Borrowed({a});"),
            )),
            Ty::Ref {
                mutable: false,
                inner,
            } if matches!(&**inner, Ty::Slice(e) if e.is_prim("u8")) => {
                Ok(simple("&[u8]", format!("let p{n} = {a};")))
            }
            Ty::Std("Vec", args) if args.first().is_some_and(|e| e.is_prim("u8")) => {
                Ok(simple("&[u8]", format!("let p{n} = {a}.to_vec();")))
            }
            _ if named_path(t).is_some_and(|p| self.is_json_type(p)) => {
                let path = named_path(t).expect("checked");
                let by_ref = matches!(t, Ty::Ref { .. });
                let code = format!(
                    "let p{n}_: {path} = ::polyload_guest::serde_json::from_value({a}).map_err(|e| format!(\"argument {n}: {{e}}\"))?; let p{n} = {}p{n}_;",
                    if by_ref { "&" } else { "" }
                );
                Ok(Param {
                    wire: JSON.into(),
                    code,
                    lock: Lock::None,
                    take: false,
                    mutable: false,
                })
            }
            Ty::Named {
                id,
                borrows: false,
                args,
                ..
            } if args.iter().all(is_concrete) => {
                let path = &t.rust();
                let wire = self.handle_type(id, path);
                if self.api.implements(id, "Clone") {
                    Ok(Param {
                        wire,
                        code: format!(
                            "let p{n} = ::std::clone::Clone::clone(__t.get::<{path}>({a}.0)?);"
                        ),
                        lock: Lock::Read,
                        take: false,
                        mutable: false,
                    })
                } else {
                    Ok(Param {
                        wire,
                        code: format!("let p{n} = __t.take::<{path}>({a}.0)?;"),
                        lock: Lock::Write,
                        take: true,
                        mutable: false,
                    })
                }
            }
            Ty::Ref { mutable, inner } if matches!(&**inner, Ty::Named { borrows: false, args, .. } if args.iter().all(is_concrete)) =>
            {
                let Ty::Named { id, .. } = &**inner else {
                    unreachable!()
                };
                let path = &inner.rust();
                let wire = self.handle_type(id, path);
                let (get, lock) = if *mutable {
                    ("get_mut", Lock::Write)
                } else {
                    ("get", Lock::Read)
                };
                Ok(Param {
                    wire,
                    code: format!("let p{n} = __t.{get}::<{path}>({a}.0)?;"),
                    lock,
                    take: false,
                    mutable: *mutable,
                })
            }
            Ty::Bad(why) => Err(why.clone()),
            _ => {
                // JSON: an owned form serde can read, then a borrow of it.
                let (owned, borrow) = owned_form(t, &format!("p{n}_"))?;
                Ok(simple(
                    JSON,
                    format!(
                        "let p{n}_: {owned} = ::polyload_guest::serde_json::from_value({a}).map_err(|e| format!(\"argument {n}: {{e}}\"))?; let p{n} = {borrow};"
                    ),
                ))
            }
        }
    }

    /// The wire type and the conversion of result expression `v`.
    fn ret(
        &mut self,
        t: &Ty,
        v: &str,
        makes: &mut bool,
        depth: usize,
    ) -> Result<(String, String), String> {
        match t {
            Ty::Tuple(ts) if ts.is_empty() => Ok(("()".into(), v.to_string())),
            Ty::Prim(p) if is_number(p) => Ok((p.clone(), v.to_string())),
            Ty::Prim(p) if p == "usize" => Ok(("u64".into(), format!("{v} as u64"))),
            Ty::Std("Ordering", _) => Ok(("i32".into(), format!("{v} as i32"))),
            t if is_path(t) => Ok((
                "String".into(),
                format!("::std::path::Path::new(&{v}).to_string_lossy().into_owned()"),
            )),
            Ty::Prim(p) if p == "isize" => Ok(("i64".into(), format!("{v} as i64"))),
            Ty::Ref { inner, .. } if matches!(&**inner, Ty::Prim(p) if is_number(p) || p == "usize" || p == "isize") => {
                self.ret(inner, &format!("(*{v})"), makes, depth)
            }
            t if is_text(t) => Ok(("String".into(), format!("::std::string::ToString::to_string(&{v})"))),
            t if is_bytes(t) => Ok(("Vec<u8>".into(), format!("<[u8]>::to_vec(&{v})"))),
            Ty::Std("Result", args) if !args.is_empty() => {
                let (wire, inner) = self.ret(&args[0], "__ok", makes, depth)?;
                Ok((
                    wire,
                    format!("{{ let __ok = {v}.map_err(|e| ::std::string::ToString::to_string(&e))?; {inner} }}"),
                ))
            }
            _ if named_path(t).is_some_and(|p| self.is_json_type(p)) => Ok((
                JSON.into(),
                format!("::polyload_guest::serde_json::to_value(&{v}).map_err(|e| ::std::string::ToString::to_string(&e))?"),
            )),
            Ty::Named { id, borrows: false, args, .. } if args.iter().all(is_concrete) && self.api.iterator_item(id).is_none() => {
                let path = &t.rust();
                let made = self.new_handle(id, path, v, false, makes)?;
                let wire = self.handle_type(id, path);
                Ok((wire, format!("{HANDLE}::new({made})")))
            }
            Ty::Ref { inner, .. } if matches!(&**inner, Ty::Named { borrows: false, args, .. } if args.iter().all(is_concrete)) => {
                let Ty::Named { id, .. } = &**inner else { unreachable!() };
                let path = &inner.rust();
                let made = self.new_handle(id, path, v, true, makes)?;
                let wire = self.handle_type(id, path);
                Ok((wire, format!("{HANDLE}::new({made})")))
            }
            Ty::Bad(why) => Err(why.clone()),
            _ => Ok((JSON.into(), self.json(t, v, makes, depth)?)),
        }
    }
}

/// A parameter's wire type and the statement that converts it.
struct Param {
    wire: String,
    code: String,
    lock: Lock,
    take: bool,
    mutable: bool,
}

/// The path of a named type, or of the named type a reference is to.
fn named_path(t: &Ty) -> Option<&str> {
    match t {
        Ty::Named { path, .. } => Some(path),
        Ty::Ref { inner, .. } => match &**inner {
            Ty::Named { path, .. } => Some(path),
            _ => None,
        },
        _ => None,
    }
}

/// The element type of a slice or `Vec`.
fn elements(t: &Ty) -> Option<&Ty> {
    match t {
        Ty::Slice(e) => Some(e),
        Ty::Std("Vec", a) if a.len() == 1 => Some(&a[0]),
        _ => None,
    }
}
