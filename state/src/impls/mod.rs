//! `Stateify` for std types, grouped by kind.

mod collections;
mod net;
mod num;
mod ops;
mod pointers;
pub use pointers::DynLoad;
mod primitives;
mod sync;
mod text;
mod time;

use crate::error::Result;
use crate::{Loader, Stateify};

/// Loads a struct `ty` of one declared field.
fn load_one<A: Stateify>(
    l: &mut Loader,
    ty: &'static str,
    fields: &'static [&'static str],
) -> Result<A> {
    l.load_struct(ty, fields, |st, l| {
        let mut a = None;
        while st.next(l)?.is_some() {
            a = Some(st.value::<A>(l)?);
        }
        st.take(a, 0)
    })
}

/// Loads a struct `ty` of two declared fields.
fn load_pair<A: Stateify, B: Stateify>(
    l: &mut Loader,
    ty: &'static str,
    fields: &'static [&'static str],
) -> Result<(A, B)> {
    l.load_struct(ty, fields, |st, l| {
        let (mut a, mut b) = (None, None);
        while let Some(i) = st.next(l)? {
            match i {
                0 => a = Some(st.value::<A>(l)?),
                _ => b = Some(st.value::<B>(l)?),
            }
        }
        Ok((st.take(a, 0)?, st.take(b, 1)?))
    })
}
