//! Expansion: the input type as a small model (fields with their settings)
//! and the `Stateify` impl generated from it, using the runtime's
//! `save_struct`/`load_struct` and `save_variant`/`load_variant`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Ident, Member, Path, Type};

use crate::attr::{self, Errors, Hook};
use crate::check;

struct Field {
    member: Member,
    ty: Type,
    /// The name in the stream.
    name: String,
    attr: attr::Field,
    /// The local that holds the loaded value.
    local: Ident,
    /// The field's name, or its type when it has none: where errors point.
    span: proc_macro2::Span,
}

fn model(fields: &Fields, krate: &Path, errs: &mut Errors) -> Vec<Field> {
    let model: Vec<Field> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut attr = attr::field(&f.attrs, errs);
            if let Some(bridge) = attr.bridge {
                // `serde` is `with = "stateify::serde"`, `postcard` likewise.
                let m = format_ident!("{}", bridge);
                attr.with = Some(syn::parse_quote!(#krate::#m));
            }
            let member = match &f.ident {
                Some(id) => Member::Named(id.clone()),
                None => Member::Unnamed(i.into()),
            };
            let name = match (&attr.rename, &f.ident) {
                (Some(r), _) => r.value(),
                (None, Some(id)) => id.to_string().trim_start_matches("r#").to_owned(),
                (None, None) => i.to_string(),
            };
            Field {
                member,
                ty: f.ty.clone(),
                name,
                attr,
                local: format_ident!("__f{}", i),
                span: f.ident.as_ref().map_or_else(|| f.ty.span(), |id| id.span()),
            }
        })
        .collect();
    let named: Vec<check::Named> = saved(&model)
        .map(|f| check::Named {
            name: &f.name,
            aliases: f.attr.alias.iter().map(|a| a.value()).collect(),
            span: f.span,
        })
        .collect();
    check::names(&named, errs);
    model
}

/// The whole derive.
pub fn derive(input: &DeriveInput) -> syn::Result<TokenStream> {
    let mut errs = Errors::default();
    let c = attr::container(&input.attrs, &mut errs);
    let krate: Path = c
        .krate
        .clone()
        .unwrap_or_else(|| syn::parse_quote!(::stateify));
    let ident = &input.ident;
    let name = c
        .type_name
        .as_ref()
        .map(|l| l.value())
        .unwrap_or_else(|| ident.to_string());

    let mut plain = None;
    let (save_body, load_body) = match &input.data {
        Data::Struct(s) => {
            let fields = model(&s.fields, &krate, &mut errs);
            if let Some(span) = c.plain {
                plain = plain_impl(&krate, input, &c, &name, &fields, span, &mut errs);
            }
            let save = save_fields(&krate, &name, &fields, |f| {
                let m = &f.member;
                quote!(&self.#m)
            });
            let load = load_fields(
                &krate,
                &name,
                &fields,
                c.ignore_unknown,
                quote!(Self),
                &s.fields,
            );
            (save, load)
        }
        Data::Enum(e) => {
            if let Some(span) = c.plain {
                errs.push(syn::Error::new(span, "`plain` applies to structs only"));
            }
            let mut variants = Vec::new();
            for v in &e.variants {
                variants.push((v, model(&v.fields, &krate, &mut errs)));
                for a in v.attrs.iter().filter(|a| a.path().is_ident("state")) {
                    errs.push(syn::Error::new(
                        a.span(),
                        "variant attributes are not supported",
                    ));
                }
            }
            enum_bodies(&krate, &name, &variants, c.ignore_unknown)
        }
        Data::Union(u) => {
            errs.push(syn::Error::new(
                u.union_token.span,
                "unions cannot derive Stateify: which field is live is unknown",
            ));
            (quote!(), quote!())
        }
    };

    let before_save = c
        .before_save
        .then(|| quote!(<Self as #krate::BeforeSave>::before_save(self)?;));
    let after_load = c.after_load.as_ref().map(|h| match h {
        Hook::Trait => quote_spanned!(ident.span()=>
            <Self as #krate::AfterLoad>::after_load(&mut __v, __l.context())?;),
        Hook::Path(p) => quote!(#p(&mut __v, __l.context())?;),
    });

    let mut generics = input.generics.clone();
    match &c.bound {
        Some(b) => match syn::parse_str::<syn::WhereClause>(&format!("where {}", b.value())) {
            Ok(w) => generics.make_where_clause().predicates.extend(w.predicates),
            Err(e) => errs.push(syn::Error::new(b.span(), format!("invalid bound: {e}"))),
        },
        None => {
            let params: Vec<Ident> = generics.type_params().map(|p| p.ident.clone()).collect();
            let wc = generics.make_where_clause();
            for p in params {
                wc.predicates.push(syn::parse_quote!(#p: #krate::Stateify));
            }
        }
    }
    let (impl_g, ty_g, where_c) = generics.split_for_impl();
    let plain_seq = plain.is_some().then(|| {
        quote! {
            fn save_seq(__parts: [&[Self]; 2], __s: &mut #krate::Saver) -> ::core::result::Result<(), #krate::Error> {
                __s.write_plain_seq(__parts)
            }
            fn load_seq(__l: &mut #krate::Loader<'_, '_>) -> ::core::result::Result<::std::vec::Vec<Self>, #krate::Error> {
                __l.read_plain_seq()
            }
        }
    });

    let body = quote! {
        #[automatically_derived]
        impl #impl_g #krate::Stateify for #ident #ty_g #where_c {
            fn save(&self, __s: &mut #krate::Saver) -> ::core::result::Result<(), #krate::Error> {
                #before_save
                #save_body
            }
            fn load(__l: &mut #krate::Loader<'_, '_>) -> ::core::result::Result<Self, #krate::Error> {
                #[allow(unused_mut)]
                let mut __v: Self = { #load_body }?;
                #after_load
                ::core::result::Result::Ok(__v)
            }
            #plain_seq
        }
        #plain
    };
    match errs.finish() {
        Ok(()) => Ok(body),
        Err(e) => {
            // One error per mistake, not a cascade: a stub impl keeps the
            // rest of the user's crate type-checking.
            let err = e.to_compile_error();
            Ok(quote! {
                #err
                impl #impl_g #krate::Stateify for #ident #ty_g #where_c {
                    fn save(&self, _: &mut #krate::Saver) -> ::core::result::Result<(), #krate::Error> {
                        ::core::unreachable!()
                    }
                    fn load(_: &mut #krate::Loader<'_, '_>) -> ::core::result::Result<Self, #krate::Error> {
                        ::core::unreachable!()
                    }
                }
            })
        }
    }
}

/// `#[state(plain)]`: the `Plain` impl (field kinds from the field types,
/// offsets from `offset_of!`) and a compile-time check that the fields tile
/// the struct. Only what a byte copy can honour is allowed.
fn plain_impl(
    krate: &Path,
    input: &DeriveInput,
    c: &attr::Container,
    name: &str,
    fields: &[Field],
    span: proc_macro2::Span,
    errs: &mut Errors,
) -> Option<TokenStream> {
    let before = errs.count();
    let refuse = |errs: &mut Errors, span, what: &str| {
        errs.push(syn::Error::new(
            span,
            format!("`plain` types are copied as bytes: {what}"),
        ))
    };
    if !input.generics.params.is_empty() {
        refuse(
            errs,
            input.generics.span(),
            "generic types are not supported",
        );
    }
    if c.after_load.is_some() || c.before_save {
        refuse(errs, span, "hooks (after_load, before_save) are not run");
    }
    for f in fields {
        let at = f.attr.span.unwrap_or(span);
        if f.attr.nosave
            || f.attr.with.is_some()
            || f.attr.default.is_some()
            || !f.attr.alias.is_empty()
        {
            refuse(
                errs,
                at,
                "fields take no nosave, with, default or alias (rename is fine)",
            );
        }
    }
    if errs.count() != before {
        return None;
    }
    let ident = &input.ident;
    let entries = fields.iter().map(|f| {
        let (n, m, ty) = (&f.name, &f.member, &f.ty);
        quote_spanned! {ty.span()=>
            #krate::plain::PlainField::of::<#ty>(#n, ::core::mem::offset_of!(#ident, #m))
        }
    });
    Some(quote! {
        // SAFETY: FIELDS lists every field of the struct with its own type
        // (each must implement `PlainScalars`: numbers and arrays of numbers,
        // valid for every bit pattern) at its `offset_of!` offset, and the
        // assertion below (`LAYOUT_OK`) refuses to compile unless the
        // fields cover the struct exactly, without padding.
        #[automatically_derived]
        unsafe impl #krate::plain::Plain for #ident {
            const NAME: &'static str = #name;
            const FIELDS: &'static [#krate::plain::PlainField] = &[#(#entries),*];
        }
        const _: () = <#ident as #krate::plain::Plain>::LAYOUT_OK;
    })
}

/// The field's type, spelled so that a type without `Stateify` is reported
/// once, on the field (see `stateify::__private::FieldType`).
fn checked(krate: &Path, f: &Field) -> TokenStream {
    let ty = &f.ty;
    quote_spanned!(ty.span()=> <#ty as #krate::__private::FieldType>::Is)
}

fn saved(fields: &[Field]) -> impl Iterator<Item = &Field> {
    fields.iter().filter(|f| !f.attr.nosave)
}

/// `save_struct(NAME, FIELDS, |s| { s.field(..)?; ... })`
fn save_fields(
    krate: &Path,
    name: &str,
    fields: &[Field],
    access: impl Fn(&Field) -> TokenStream,
) -> TokenStream {
    let names: Vec<&str> = saved(fields).map(|f| f.name.as_str()).collect();
    let calls = saved(fields).map(|f| {
        let n = &f.name;
        let a = access(f);
        match &f.attr.with {
            Some(m) => quote!(__s.field_with(#n, |__s| #m::save(#a, __s))?;),
            None => {
                let ty = checked(krate, f);
                quote!(__s.field::<#ty>(#n, #a)?;)
            }
        }
    });
    quote! {
        const __FIELDS: &[&str] = &[#(#names),*];
        __s.save_struct(#name, __FIELDS, |__s| {
            #(#calls)*
            ::core::result::Result::Ok(())
        })
    }
}

/// The constructor expression from the loaded locals.
fn construct(krate: &Path, path: TokenStream, shape: &Fields, fields: &[Field]) -> TokenStream {
    let values = field_values(krate, fields, |f, k| {
        let (local, ty) = (&f.local, &f.ty);
        let fallback = match &f.attr.default {
            Some(Some(p)) => quote!(#p()),
            Some(None) => quote!(<#ty as ::core::default::Default>::default()),
            None => quote!(return ::core::result::Result::Err(__st.missing(#k))),
        };
        quote!(match #local { ::core::option::Option::Some(__x) => __x, ::core::option::Option::None => #fallback })
    });
    literal(path, shape, fields, values)
}

/// The value of every field: `saved(field, k)` for the k-th saved field
/// (its index among the saved ones, what `missing` names), the unsaved
/// value for a `nosave` one.
fn field_values(
    krate: &Path,
    fields: &[Field],
    mut saved: impl FnMut(&Field, usize) -> TokenStream,
) -> Vec<TokenStream> {
    let mut k = 0usize;
    fields
        .iter()
        .map(|f| {
            if f.attr.nosave {
                return unsaved_value(krate, f);
            }
            k += 1;
            saved(f, k - 1)
        })
        .collect()
}

/// The value of a `nosave` field: its `default` function, or `Default`.
fn unsaved_value(krate: &Path, f: &Field) -> TokenStream {
    let ty = &f.ty;
    match &f.attr.default {
        Some(Some(p)) => quote!(#p()),
        _ => quote_spanned!(ty.span()=> <#ty as #krate::__private::NosaveDefault>::value()),
    }
}

/// `path { member: value, .. }`, `path(value, ..)` or `path`, by shape.
fn literal(
    path: TokenStream,
    shape: &Fields,
    fields: &[Field],
    values: Vec<TokenStream>,
) -> TokenStream {
    match shape {
        Fields::Named(_) => {
            let members = fields.iter().map(|f| &f.member);
            quote!(#path { #(#members: #values),* })
        }
        Fields::Unnamed(_) => quote!(#path ( #(#values),* )),
        Fields::Unit => path,
    }
}

/// `load_struct(NAME, FIELDS, |st, l| { match each stream field; construct })`
fn load_fields(
    krate: &Path,
    name: &str,
    fields: &[Field],
    ignore_unknown: bool,
    path: TokenStream,
    shape: &Fields,
) -> TokenStream {
    let ctor = construct(krate, path.clone(), shape, fields);
    let saved: Vec<&Field> = saved(fields).collect();
    let mut names: Vec<String> = saved.iter().map(|f| f.name.clone()).collect();
    // Aliases are extra names that load into the same field.
    let mut arms = Vec::new();
    for (i, f) in saved.iter().enumerate() {
        let mut idx = vec![i];
        for a in &f.attr.alias {
            idx.push(names.len());
            names.push(a.value());
        }
        let local = &f.local;
        let load = match &f.attr.with {
            Some(m) => quote!(__st.value_with(__l, #m::load)?),
            None => {
                let ty = checked(krate, f);
                quote!(__st.value::<#ty>(__l)?)
            }
        };
        // Without aliases a field cannot come twice (the runtime rejects
        // duplicate names in a type definition); with them, old and new name could.
        let dup_check = (!f.attr.alias.is_empty()).then(|| {
            quote! {
                if #local.is_some() {
                    return ::core::result::Result::Err(__st.duplicate(#i));
                }
            }
        });
        arms.push(quote! {
            #(#idx)|* => {
                #dup_check
                #local = ::core::option::Option::Some(#load);
            }
        });
    }
    let decls = saved.iter().map(|f| {
        let local = &f.local;
        let ty = &f.ty;
        quote!(let mut #local: ::core::option::Option<#ty> = ::core::option::Option::None;)
    });
    let ignore = ignore_unknown.then(|| quote!(__st.ignore_unknown();));
    // The stream lists exactly the declared fields, in order (the usual
    // case): construct straight from the loads, with no per-field dispatch
    // and no `Option` slots. Struct literals evaluate in the order written,
    // which is declaration order. With aliases the declared list is longer
    // than any saved one, so never exact.
    let in_order = saved.iter().all(|f| f.attr.alias.is_empty()).then(|| {
        let values = field_values(krate, fields, |f, k| match &f.attr.with {
            Some(m) => quote!(__st.value_with_at(__l, #k, #m::load)?),
            None => {
                let ty = checked(krate, f);
                quote!(__st.value_at::<#ty>(__l, #k)?)
            }
        });
        let direct = literal(path.clone(), shape, fields, values);
        quote! {
            if __st.take_in_order() {
                return ::core::result::Result::Ok(#direct);
            }
        }
    });
    // The field slots live inside the closure, so that it captures nothing:
    // a capturing closure is copied into `load_struct`'s own closure for
    // every struct loaded, and that copy of freshly stored words stalls on
    // store forwarding.
    quote! {
        const __LOAD_FIELDS: &[&str] = &[#(#names),*];
        __l.load_struct(#name, __LOAD_FIELDS, |__st, __l| {
            #ignore
            #in_order
            #(#decls)*
            while let ::core::option::Option::Some(__i) = __st.next(__l)? {
                match __i {
                    #(#arms)*
                    _ => __st.skip(__l)?,
                }
            }
            ::core::result::Result::Ok(#ctor)
        })
    }
}

fn enum_bodies(
    krate: &Path,
    name: &str,
    variants: &[(&syn::Variant, Vec<Field>)],
    ignore_unknown: bool,
) -> (TokenStream, TokenStream) {
    let vnames: Vec<String> = variants.iter().map(|(v, _)| v.ident.to_string()).collect();
    let mut save_arms = Vec::new();
    let mut load_arms = Vec::new();
    for (i, (v, fields)) in variants.iter().enumerate() {
        let vid = &v.ident;
        let struct_name = format!("{name}::{vid}");
        let binds: Vec<Ident> = (0..fields.len())
            .map(|k| format_ident!("__b{}", k))
            .collect();
        let pats: Vec<TokenStream> = fields
            .iter()
            .zip(&binds)
            .map(|(f, b)| if f.attr.nosave { quote!(_) } else { quote!(#b) })
            .collect();
        let pattern = match &v.fields {
            Fields::Named(_) => {
                let m = fields.iter().map(|f| &f.member);
                quote!(Self::#vid { #(#m: #pats),* })
            }
            Fields::Unnamed(_) => quote!(Self::#vid ( #(#pats),* )),
            Fields::Unit => quote!(Self::#vid),
        };
        let payload_save = if fields.is_empty() {
            quote!(__s.write_unit(); ::core::result::Result::Ok(()))
        } else {
            let by_local: Vec<(String, Ident)> = fields
                .iter()
                .zip(&binds)
                .map(|(f, b)| (f.name.clone(), b.clone()))
                .collect();
            save_fields(krate, &struct_name, fields, |f| {
                let b = &by_local
                    .iter()
                    .find(|(n, _)| *n == f.name)
                    .map(|(_, b)| b.clone());
                quote!(#b)
            })
        };
        save_arms.push(quote! {
            #pattern => __s.save_variant(#name, __VARIANTS, #i, |__s| { #payload_save }),
        });
        let payload_load = if fields.is_empty() {
            quote!({ __l.read_unit()?; ::core::result::Result::Ok(Self::#vid) })
        } else {
            let body = load_fields(
                krate,
                &struct_name,
                fields,
                ignore_unknown,
                quote!(Self::#vid),
                &v.fields,
            );
            quote!({ #body })
        };
        load_arms.push(quote!(#i => #payload_load,));
    }
    let save = quote! {
        const __VARIANTS: &[&str] = &[#(#vnames),*];
        match self {
            #(#save_arms)*
        }
    };
    let load = quote! {
        const __VARIANTS: &[&str] = &[#(#vnames),*];
        __l.load_variant(#name, __VARIANTS, |__i, __l| match __i {
            #(#load_arms)*
            _ => ::core::result::Result::Err(#krate::Error::custom("variant index out of range")),
        })
    };
    (save, load)
}
