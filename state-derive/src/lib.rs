//! `#[derive(Stateify)]`, re-exported by the `stateify` crate.
//!
//! Parsing (`attr`) → model and expansion (`expand`). Container attributes:
//! `after_load` (calls `AfterLoad::after_load`) or `after_load = "path"`,
//! `before_save`, `type_name = "..."`, `ignore_unknown`, `bound = "..."`,
//! `crate = "..."`. Field attributes: `nosave`, `default` / `default = "path"`,
//! `rename = "..."`, `alias = "..."`, `with = "module"`.

mod attr;
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
