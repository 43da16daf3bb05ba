//! `#[derive(Stateify)]`, re-exported by the `stateify` crate.
//!
//! Parsing (`attr`) → rules across attributes and fields (`check`) → model
//! and expansion (`expand`). Container attributes: `after_load` (calls
//! `AfterLoad::after_load`) or `after_load = "path"`, `before_save`,
//! `type_name = "..."`, `ignore_unknown`, `bound = "..."`, `crate = "..."`,
//! `plain`. Field attributes: `nosave`, `default` / `default = "path"`,
//! `rename = "..."`, `alias = "..."`, `with = "module"`, `serde`,
//! `postcard`.

#![deny(missing_docs)]

mod attr;
mod check;
mod expand;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

/// Derives `stateify::Stateify`. See the `stateify` crate for the attributes.
#[proc_macro_derive(Stateify, attributes(state))]
pub fn derive_stateify(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand::derive(&input) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

#[cfg(test)]
mod tests {
    //! Expansion snapshots: what the derive generates, pretty-printed.

    use syn::parse_quote;

    fn expand(input: syn::DeriveInput) -> String {
        let tokens = crate::expand::derive(&input).expect("expands");
        let file: syn::File = syn::parse2(tokens).expect("generated code parses");
        prettyplease::unparse(&file)
    }

    #[test]
    fn named_struct() {
        insta::assert_snapshot!(expand(parse_quote! {
            struct Item { a: u64, s: String }
        }));
    }

    #[test]
    fn tuple_and_unit_structs() {
        insta::assert_snapshot!("tuple", expand(parse_quote! { struct Pair(u8, String); }));
        insta::assert_snapshot!("unit", expand(parse_quote! { struct Marker; }));
    }

    #[test]
    fn enum_with_every_variant_kind() {
        insta::assert_snapshot!(expand(parse_quote! {
            enum Shape { Empty, Circle(f64), Rect { w: u32, h: u32 } }
        }));
    }

    #[test]
    fn generic_type() {
        insta::assert_snapshot!(expand(parse_quote! {
            struct Wrap<T: Clone> where T: Default { v: Vec<T> }
        }));
    }

    #[test]
    fn plain_struct() {
        insta::assert_snapshot!(expand(parse_quote! {
            #[state(plain)]
            struct Vertex { pos: [f32; 3], #[state(rename = "rgba")] color: u32 }
        }));
    }

    #[test]
    fn every_attribute() {
        insta::assert_snapshot!(expand(parse_quote! {
            #[state(type_name = "Conn", after_load, before_save, ignore_unknown, crate = "my_state")]
            struct Conn {
                #[state(rename = "peer_name", alias = "peer")]
                peer: String,
                #[state(default = "seven")]
                mtu: u32,
                #[state(default)]
                flags: Vec<u8>,
                #[state(nosave)]
                cache: Vec<u8>,
                #[state(with = "as_text")]
                port: u16,
            }
        }));
        insta::assert_snapshot!(
            "after_load_path_and_bound",
            expand(parse_quote! {
                #[state(after_load = "relink", bound = "T: my::Trait")]
                struct Tree<T> { kids: Vec<T> }
            })
        );
    }
}
