//! Rules that span several attributes or fields, checked once the input is
//! parsed (`attr`) and modelled (`expand`), before anything is generated.
//! Each broken rule is one error, at the attribute or field it names.

use proc_macro2::Span;

use crate::attr::{self, Errors};

/// The rules between the attributes of one field.
pub fn field(f: &attr::Field, errs: &mut Errors) {
    let at = f.span.unwrap_or_else(Span::call_site);
    if f.bridge.is_some() && f.with.is_some() {
        errs.push(syn::Error::new(
            at,
            "`with` and `serde`/`postcard` each say how a field is saved: use one",
        ));
    }
    if f.nosave && (f.with.is_some() || f.bridge.is_some()) {
        errs.push(syn::Error::new(
            at,
            "`nosave` cannot be combined with `with`, `serde` or `postcard`: a field that is not saved has nothing to save with",
        ));
    }
}

/// A saved field as the stream names it.
pub struct Named<'a> {
    /// The name written (the Rust name, or `rename`).
    pub name: &'a str,
    /// Other names accepted on load.
    pub aliases: Vec<String>,
    /// Where to point at.
    pub span: Span,
}

/// Two saved fields of one struct or variant may not answer to the same
/// stream name, by `rename` or `alias`: the stream could not say which
/// field a value belongs to (a load would take it for a duplicate).
pub fn names(fields: &[Named<'_>], errs: &mut Errors) {
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        let own = std::iter::once(f.name).chain(f.aliases.iter().map(String::as_str));
        for n in own {
            match seen.iter().find(|(s, _)| *s == n) {
                Some((_, j)) if *j == i => errs.push(syn::Error::new(
                    f.span,
                    format!("the field answers to `{n}` twice (its name and an alias)"),
                )),
                Some((_, j)) => errs.push(syn::Error::new(
                    f.span,
                    format!(
                        "two fields answer to `{n}` in the stream (this one and the field `{}`, by `rename` or `alias`): a load could not tell them apart",
                        fields[*j].name
                    ),
                )),
                None => seen.push((n, i)),
            }
        }
    }
}
