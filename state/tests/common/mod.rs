//! Test helpers: `stateify_struct!`, a hand-written `Stateify` impl of the
//! kind a user writes without the derive (so these tests exercise the
//! runtime API directly), and the truncation check every case runs.
#![allow(dead_code, unused_macros)]

use std::fmt::Debug;

use stateify::Stateify;

/// Implements `Stateify` for a struct with named fields, the way the derive
/// will: fields matched by name, in stream order. An optional `after_load`
/// hook is called once all fields are loaded.
macro_rules! stateify_struct {
    ($name:ident { $($field:ident : $ty:ty),* $(,)? } $(after_load = $hook:expr)?) => {
        impl stateify::Stateify for $name {
            fn save(&self, s: &mut stateify::Saver) -> Result<(), stateify::Error> {
                const FIELDS: &[&str] = &[$(stringify!($field)),*];
                s.save_struct(stringify!($name), FIELDS, |s| {
                    $(s.field(stringify!($field), &self.$field)?;)*
                    Ok(())
                })
            }
            #[allow(unused_assignments, unused_mut, unused_variables)]
            fn load(l: &mut stateify::Loader) -> Result<Self, stateify::Error> {
                const FIELDS: &[&str] = &[$(stringify!($field)),*];
                $(let mut $field: Option<$ty> = None;)*
                let mut v = l.load_struct(stringify!($name), FIELDS, |st, l| {
                    while let Some(i) = st.next(l)? {
                        let mut k = 0usize;
                        $(
                            if i == k {
                                $field = Some(st.value(l)?);
                                continue;
                            }
                            k += 1;
                        )*
                        st.skip(l)?;
                    }
                    let mut k = 0usize;
                    $(
                        let $field = st.take($field, k)?;
                        k += 1;
                    )*
                    Ok($name { $($field),* })
                })?;
                $( let hook: fn(&mut $name, &mut stateify::LoadContext) -> Result<(), stateify::Error> = $hook;
                   hook(&mut v, l.context())?; )?
                Ok(v)
            }
        }
    };
}
pub(crate) use stateify_struct;

/// Round-trips `v`, checks equality and determinism, and checks that every
/// strict prefix that the issue names (half, all but the last byte) and a
/// few more fail cleanly instead of panicking or succeeding.
pub fn round_trip<T: Stateify + PartialEq + Debug>(v: &T) -> Vec<u8> {
    let bytes = stateify::to_vec(v).expect("save");
    assert_eq!(
        bytes,
        stateify::to_vec(v).expect("save again"),
        "not deterministic"
    );
    let back: T = stateify::from_slice(&bytes).unwrap_or_else(|e| panic!("load {v:?}: {e}"));
    assert_eq!(&back, v);
    for cut in [
        bytes.len() / 2,
        bytes.len() - 1,
        0,
        1,
        stateify::OBJECT_FLAG.count_ones() as usize + 9,
    ] {
        if cut >= bytes.len() {
            continue;
        }
        let err = stateify::from_slice::<T>(&bytes[..cut]).expect_err("prefix must fail");
        assert!(err.offset().is_some() || cut == 0, "no offset in {err}");
        // The same prefix through the streaming reader.
        assert!(stateify::load::<T, _>(&bytes[..cut]).is_err());
    }
    bytes
}
