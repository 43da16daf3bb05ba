//! Parsing of `#[state(...)]` attributes into typed settings. Every key is
//! named once here; errors carry the span of the offending token and are
//! collected so the user sees all of them at once.

use syn::spanned::Spanned;
use syn::{Attribute, Expr, ExprLit, Lit, LitStr, Path};

/// Collects errors so all mistakes of one input are reported together.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    /// How many errors so far (combined errors count each).
    pub fn count(&self) -> usize {
        self.0.as_ref().map_or(0, |e| e.into_iter().count())
    }

    pub fn finish(self) -> Result<(), syn::Error> {
        match self.0 {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Container (struct or enum) settings.
#[derive(Default)]
pub struct Container {
    pub after_load: Option<Hook>,
    pub before_save: bool,
    pub type_name: Option<LitStr>,
    pub ignore_unknown: bool,
    pub krate: Option<Path>,
    pub bound: Option<LitStr>,
    /// `plain`: sequences of the type are packed struct arrays.
    pub plain: Option<proc_macro2::Span>,
}

/// `after_load` calls the trait, or a function given by path.
pub enum Hook {
    Trait,
    Path(Path),
}

/// Field settings.
#[derive(Default)]
pub struct Field {
    pub nosave: bool,
    /// `default` (no value: `Default::default`) or `default = "path"`.
    pub default: Option<Option<Path>>,
    pub rename: Option<LitStr>,
    pub alias: Vec<LitStr>,
    pub with: Option<Path>,
    /// `serde` or `postcard`: `with` the runtime's bridge module of that name.
    pub bridge: Option<&'static str>,
    pub span: Option<proc_macro2::Span>,
}

fn lit_str(e: &Expr) -> syn::Result<LitStr> {
    match e {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s.clone()),
        other => Err(syn::Error::new(other.span(), "expected a string literal")),
    }
}

fn duplicate(seen: &mut Vec<String>, key: &str, span: proc_macro2::Span, errs: &mut Errors) {
    if seen.iter().any(|k| k == key) {
        errs.push(syn::Error::new(
            span,
            format!("duplicate `{key}` attribute"),
        ));
    }
    seen.push(key.to_owned());
}

/// Walks every `key` or `key = "value"` inside the `#[state(...)]` attributes.
fn each_meta(
    attrs: &[Attribute],
    errs: &mut Errors,
    mut f: impl FnMut(&str, Option<&Expr>, proc_macro2::Span) -> syn::Result<()>,
) {
    let mut seen = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("state")) {
        let res = attr.parse_nested_meta(|meta| {
            let key = meta
                .path
                .get_ident()
                .map(|i| i.to_string())
                .unwrap_or_default();
            let span = meta.path.span();
            let value: Option<Expr> = if meta.input.peek(syn::Token![=]) {
                Some(meta.value()?.parse()?)
            } else {
                None
            };
            if key != "alias" {
                duplicate(&mut seen, &key, span, errs);
            }
            if let Err(e) = f(&key, value.as_ref(), span) {
                errs.push(e);
            }
            Ok(())
        });
        if let Err(e) = res {
            errs.push(e);
        }
    }
}

fn path_value(key: &str, v: Option<&Expr>, span: proc_macro2::Span) -> syn::Result<Path> {
    match v {
        Some(e) => {
            let lit = lit_str(e)?;
            lit.parse::<Path>().map_err(|_| {
                syn::Error::new(
                    lit.span(),
                    format!("`{key}` expects a path, such as \"my_mod::my_fn\""),
                )
            })
        }
        None => Err(syn::Error::new(
            span,
            format!("`{key}` needs a value: {key} = \"path\""),
        )),
    }
}

/// The string literal of `key = "..."`.
fn string_value(key: &str, v: Option<&Expr>, span: proc_macro2::Span) -> syn::Result<LitStr> {
    lit_str(v.ok_or_else(|| syn::Error::new(span, format!("`{key}` needs a value")))?)
}

fn unknown(what: &str, key: &str, span: proc_macro2::Span, expected: &str) -> syn::Error {
    syn::Error::new(
        span,
        format!("unknown {what} attribute `{key}` (expected one of {expected})"),
    )
}

fn no_value(key: &str, v: Option<&Expr>) -> syn::Result<()> {
    match v {
        Some(e) => Err(syn::Error::new(e.span(), format!("`{key}` takes no value"))),
        None => Ok(()),
    }
}

pub fn container(attrs: &[Attribute], errs: &mut Errors) -> Container {
    let mut c = Container::default();
    each_meta(attrs, errs, |key, v, span| {
        match key {
            "after_load" => {
                c.after_load = Some(match v {
                    None => Hook::Trait,
                    Some(_) => Hook::Path(path_value(key, v, span)?),
                })
            }
            "before_save" => {
                no_value(key, v)?;
                c.before_save = true;
            }
            "ignore_unknown" => {
                no_value(key, v)?;
                c.ignore_unknown = true;
            }
            "type_name" => c.type_name = Some(string_value(key, v, span)?),
            "bound" => c.bound = Some(string_value(key, v, span)?),
            "crate" => c.krate = Some(path_value(key, v, span)?),
            "plain" => {
                no_value(key, v)?;
                c.plain = Some(span);
            }
            _ => {
                return Err(unknown(
                    "container",
                    key,
                    span,
                    "after_load, before_save, type_name, ignore_unknown, bound, crate, plain",
                ))
            }
        }
        Ok(())
    });
    c
}

pub fn field(attrs: &[Attribute], errs: &mut Errors) -> Field {
    let mut f = Field::default();
    each_meta(attrs, errs, |key, v, span| {
        f.span.get_or_insert(span);
        match key {
            "nosave" => {
                no_value(key, v)?;
                f.nosave = true;
            }
            "default" => {
                f.default = Some(match v {
                    None => None,
                    Some(_) => Some(path_value(key, v, span)?),
                })
            }
            "rename" => f.rename = Some(string_value(key, v, span)?),
            "alias" => f.alias.push(string_value(key, v, span)?),
            "with" => f.with = Some(path_value(key, v, span)?),
            "serde" | "postcard" => {
                no_value(key, v)?;
                if f.bridge.is_some() {
                    return Err(syn::Error::new(
                        span,
                        "`serde` and `postcard` each say how a field is saved: use one",
                    ));
                }
                f.bridge = Some(if key == "serde" { "serde" } else { "postcard" });
            }
            _ => {
                return Err(unknown(
                    "field",
                    key,
                    span,
                    "nosave, default, rename, alias, with, serde, postcard",
                ))
            }
        }
        Ok(())
    });
    crate::check::field(&f, errs);
    f
}
