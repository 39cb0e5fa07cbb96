//! The JSON forms of types: results that are neither scalars, text, bytes
//! nor handles, and the owned shapes serde reads parameters into.

use super::{elements, is_concrete, is_number, is_text, Planner};
use crate::rimport::api::{Subst, Ty};
use rustdoc_types::Id;
use std::collections::BTreeMap;

impl Planner<'_> {
    /// An expression giving `v` (of type `t`) as a `serde_json::Value`.
    pub(super) fn json(
        &mut self,
        t: &Ty,
        v: &str,
        makes: &mut bool,
        depth: usize,
    ) -> Result<String, String> {
        if depth > 6 {
            return Err("nested too deeply".into());
        }
        let x = format!("__x{depth}");
        let val = "::polyload_guest::serde_json::Value";
        let each = |this: &mut Self, elem: &Ty, makes: &mut bool| -> Result<String, String> {
            let inner = this.json(elem, &x, makes, depth + 1)?;
            Ok(format!(
                "{{ let mut __a = ::std::vec::Vec::new(); for {x} in {v} {{ __a.push({inner}); }} {val}::Array(__a) }}"
            ))
        };
        match t {
            Ty::Prim(p) if is_number(p) => Ok(format!("{val}::from({v})")),
            Ty::Prim(p) if p == "usize" => Ok(format!("{val}::from({v} as u64)")),
            Ty::Prim(p) if p == "isize" => Ok(format!("{val}::from({v} as i64)")),
            t if is_text(t) => Ok(format!(
                "{val}::from(::std::string::ToString::to_string(&{v}))"
            )),
            Ty::Ref { inner, .. } if matches!(&**inner, Ty::Prim(_)) => {
                self.json(inner, &format!("(*{v})"), makes, depth)
            }
            Ty::Std("Option", a) if a.len() == 1 => {
                let inner = self.json(&a[0], &x, makes, depth + 1)?;
                Ok(format!("match {v} {{ ::std::option::Option::Some({x}) => {inner}, ::std::option::Option::None => {val}::Null }}"))
            }
            Ty::Std("Vec", a) if a.len() == 1 => each(self, &a[0], makes),
            Ty::Ref { inner, .. } => match elements(inner) {
                Some(e) => each(
                    self,
                    &Ty::Ref {
                        mutable: false,
                        inner: Box::new(e.clone()),
                    },
                    makes,
                ),
                None => self.json_ref(inner, v, makes, depth),
            },
            Ty::Tuple(ts) => {
                let names: Vec<String> = (0..ts.len()).map(|i| format!("__t{depth}_{i}")).collect();
                let parts = ts
                    .iter()
                    .zip(&names)
                    .map(|(t, n)| self.json(t, n, makes, depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(format!(
                    "{{ let ({},) = {v}; {val}::Array(::std::vec![{}]) }}",
                    names.join(", "),
                    parts.join(", ")
                ))
            }
            Ty::Named { path, .. } if self.is_json_type(path) => {
                Ok(format!("::polyload_guest::serde_json::to_value(&{v}).map_err(|e| ::std::string::ToString::to_string(&e))?"))
            }
            Ty::Named { id, .. } if self.api.iterator_item(id).is_some() => {
                let item = self.api.iterator_item(id).expect("checked").clone();
                let elem = self.api.ty(&item, &Subst::default());
                each(self, &elem, makes)
            }
            Ty::Named {
                id,
                path,
                borrows: true,
                ..
            } => self.view(id, path, v, depth),
            Ty::Named {
                id,
                borrows: false,
                args,
                ..
            } if args.iter().all(is_concrete) => Ok(format!(
                "{val}::from({})",
                self.new_handle(id, &t.rust(), v, false, makes)?
            )),
            Ty::Bad(why) => Err(why.clone()),
            other => Err(format!("`{}` has no JSON form", other.rust())),
        }
    }

    fn json_ref(
        &mut self,
        t: &Ty,
        v: &str,
        makes: &mut bool,
        depth: usize,
    ) -> Result<String, String> {
        match t {
            Ty::Named {
                id,
                path,
                borrows: false,
                args,
            } if args.iter().all(is_concrete) && !self.is_json_type(path) => Ok(format!(
                "::polyload_guest::serde_json::Value::from({})",
                self.new_handle(id, &t.rust(), v, true, makes)?
            )),
            other => self.json(other, v, makes, depth),
        }
    }

    /// A borrowed result type (one with lifetimes, which cannot outlive
    /// the call) as a JSON object of its public `&self` getters.
    fn view(&mut self, id: &Id, path: &str, v: &str, depth: usize) -> Result<String, String> {
        let api = self.api;
        let mut fields = Vec::new();
        let mut subst = Subst::default();
        subst.map.insert(
            "Self".into(),
            Ty::Named {
                id: *id,
                path: path.to_string(),
                args: Vec::new(),
                borrows: true,
            },
        );
        // Only plain values: a getter that would make handles or has no JSON
        // form is left out (planned on a scratch planner, so that a getter
        // left out records no handle type).
        let mut scratch = Planner {
            api,
            json_types: self.json_types.clone(),
            handles: BTreeMap::new(),
        };
        for (name, ret) in api.getters(id) {
            let ty = api.ty(ret, &subst);
            let mut makes_handles = false;
            let code = scratch.json(&ty, &format!("{v}.{name}()"), &mut makes_handles, depth + 1);
            if let (Ok(code), false) = (code, makes_handles) {
                fields.push(format!("__m.insert({name:?}.into(), {code});"));
            }
        }
        if fields.is_empty() {
            return Err(format!(
                "`{path}` borrows from the call and has no getters to describe it"
            ));
        }
        Ok(format!(
            "{{ let mut __m = ::polyload_guest::serde_json::Map::new(); {} ::polyload_guest::serde_json::Value::Object(__m) }}",
            fields.join(" ")
        ))
    }
}

/// An owned type serde can deserialize for `t`, and the expression that
/// borrows `t` from a variable `var` of it.
pub(super) fn owned_form(t: &Ty, var: &str) -> Result<(String, String), String> {
    let plain = |t: &Ty| -> Option<String> {
        match t {
            Ty::Prim(p) if is_number(p) || p == "usize" || p == "isize" || p == "char" => {
                Some(p.clone())
            }
            Ty::Std("String", _) => Some("::std::string::String".into()),
            _ => None,
        }
    };
    fn owned(t: &Ty, plain: &dyn Fn(&Ty) -> Option<String>) -> Option<String> {
        if let Some(p) = plain(t) {
            return Some(p);
        }
        match t {
            Ty::Std("Vec", a) if a.len() == 1 => {
                Some(format!("::std::vec::Vec<{}>", owned(&a[0], plain)?))
            }
            Ty::Std("Option", a) if a.len() == 1 => {
                Some(format!("::std::option::Option<{}>", owned(&a[0], plain)?))
            }
            Ty::Tuple(ts) if !ts.is_empty() => Some(format!(
                "({},)",
                ts.iter()
                    .map(|t| owned(t, plain))
                    .collect::<Option<Vec<_>>>()?
                    .join(", ")
            )),
            _ => None,
        }
    }
    if let Some(o) = owned(t, &plain) {
        return Ok((o, var.to_string()));
    }
    match t {
        Ty::Ref {
            mutable: false,
            inner,
        } => match &**inner {
            Ty::Slice(e) => {
                let o = owned(e, &plain).ok_or("a slice of something that does not cross")?;
                Ok((format!("::std::vec::Vec<{o}>"), format!("&{var}[..]")))
            }
            other => {
                let o =
                    owned(other, &plain).ok_or("a reference to something that does not cross")?;
                Ok((o, format!("&{var}")))
            }
        },
        Ty::Std("Option", a)
            if a.len() == 1 && matches!(&a[0], Ty::Ref { inner, .. } if inner.is_str()) =>
        {
            Ok((
                "::std::option::Option<::std::string::String>".into(),
                format!("{var}.as_deref()"),
            ))
        }
        _ => Err("no JSON form".into()),
    }
}
