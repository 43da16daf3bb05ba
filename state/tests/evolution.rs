//! Type matching by name through the stream's type table: reordered fields
//! load; missing and unknown fields are errors naming the type and the field.

mod common;

use std::rc::Rc;

use common::stateify_struct;
use stateify::{Error, ErrorKind, Loader, Saver, Stateify};

mod old {
    use super::stateify_struct;
    use std::rc::Rc;

    #[derive(Debug, PartialEq)]
    pub struct Conn {
        pub port: u16,
        pub peer: String,
        pub extra: Rc<String>,
    }
    stateify_struct!(Conn { port: u16, peer: String, extra: Rc<String> });
}

/// Same name, fields reordered and `extra` dropped.
#[derive(Debug, PartialEq)]
struct Conn {
    peer: String,
    port: u16,
}
stateify_struct!(Conn {
    peer: String,
    port: u16
});

/// Same name, one more field.
mod newer {
    use super::stateify_struct;
    #[derive(Debug, PartialEq)]
    pub struct Conn {
        pub peer: String,
        pub port: u16,
        pub mtu: u32,
    }
    stateify_struct!(Conn {
        peer: String,
        port: u16,
        mtu: u32
    });
}

#[test]
fn reordered_fields_load() {
    let now = Conn {
        peer: "p".into(),
        port: 80,
    };
    let bytes = stateify::to_vec(&vec![now]).unwrap();
    #[derive(Debug, PartialEq)]
    struct Swapped {
        port: u16,
        peer: String,
    }
    impl Stateify for Swapped {
        fn save(&self, _: &mut Saver) -> Result<(), Error> {
            Err(Error::custom("load only"))
        }
        fn load(l: &mut Loader) -> Result<Self, Error> {
            const F: &[&str] = &["port", "peer"];
            let (mut port, mut peer) = (None, None);
            l.load_struct("Conn", F, |st, l| {
                while let Some(i) = st.next(l)? {
                    match i {
                        0 => port = Some(st.value(l)?),
                        _ => peer = Some(st.value(l)?),
                    }
                }
                Ok(Swapped {
                    port: st.take(port, 0)?,
                    peer: st.take(peer, 1)?,
                })
            })
        }
    }
    let back: Vec<Swapped> = stateify::from_slice(&bytes).unwrap();
    assert_eq!(
        back,
        vec![Swapped {
            port: 80,
            peer: "p".into()
        }]
    );
}

#[test]
fn unknown_field_is_an_error_naming_type_and_field() {
    let bytes = stateify::to_vec(&old::Conn {
        port: 1,
        peer: "x".into(),
        extra: Rc::new("e".into()),
    })
    .unwrap();
    let err = stateify::from_slice::<Conn>(&bytes).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::UnknownField { .. }),
        "{err}"
    );
    // The message names both ways out: ignore_unknown and alias.
    insta::assert_snapshot!("unknown_field", err);
}

#[test]
fn missing_field_is_an_error_naming_type_and_field() {
    let bytes = stateify::to_vec(&Conn {
        peer: "x".into(),
        port: 2,
    })
    .unwrap();
    let err = stateify::from_slice::<newer::Conn>(&bytes).unwrap_err();
    // The message names both ways out: default and alias.
    insta::assert_snapshot!("missing_field", err);
}

#[test]
fn ignored_unknown_fields_are_skipped_but_their_objects_stay_unreachable() {
    // A loader that ignores unknown fields, like #[state(ignore_unknown)].
    #[derive(Debug, PartialEq)]
    struct Lenient {
        port: u16,
    }
    impl Stateify for Lenient {
        fn save(&self, _: &mut Saver) -> Result<(), Error> {
            Err(Error::custom("load only"))
        }
        fn load(l: &mut Loader) -> Result<Self, Error> {
            let mut port = None;
            l.load_struct("Conn", &["port"], |st, l| {
                st.ignore_unknown();
                while let Some(_i) = st.next(l)? {
                    port = Some(st.value(l)?);
                }
                Ok(Lenient {
                    port: st.take(port, 0)?,
                })
            })
        }
    }
    let shared = Rc::new("e".to_string());
    let c = |port| old::Conn {
        port,
        peer: "x".into(),
        extra: shared.clone(),
    };
    let bytes = stateify::to_vec(&vec![c(1)]).unwrap();
    let back: Vec<Lenient> = stateify::from_slice(&bytes).unwrap();
    assert_eq!(back, vec![Lenient { port: 1 }]);
    // The second element's `extra` refers to an object defined in a skipped field.
    let bytes = stateify::to_vec(&(vec![c(1)], shared.clone())).unwrap();
    let err = stateify::from_slice::<(Vec<Lenient>, Rc<String>)>(&bytes).unwrap_err();
    assert!(err.to_string().contains("inside a skipped field"), "{err}");
}

/// Twelve struct types, so that their one-byte stream ids share the
/// loader's eight recent-struct slots; saved with fields `a, b` and loaded
/// by types that declare the odd ones `b, a` (matched by name, not in
/// order) beside the even ones as saved. A slot must never answer for
/// another type, nor keep the in-order shortcut of a type that lacks it.
#[allow(non_snake_case)]
mod twelve {
    /// Struct types named `$name…` with the two fields in the order given.
    macro_rules! pair_types {
        ($f1:ident: $t1:ty, $f2:ident: $t2:ty => $($name:ident)*) => {$(
            #[derive(Debug, PartialEq)]
            pub struct $name {
                pub $f1: $t1,
                pub $f2: $t2,
            }
            stateify_struct!($name { $f1: $t1, $f2: $t2 });
        )*};
    }

    pub mod saved {
        use crate::common::stateify_struct;
        pair_types!(a: u32, b: String => T0 T1 T2 T3 T4 T5 T6 T7 T8 T9 T10 T11);
        macro_rules! row {
            ($($name:ident)*) => {
                #[derive(Debug, PartialEq)]
                pub struct Row {
                    $(pub $name: $name,)*
                }
                stateify_struct!(Row { $($name: $name),* });
                impl Row {
                    pub fn new(seed: u32) -> Row {
                        let mut k = seed;
                        Row { $($name: { k += 1; $name { a: k, b: format!("{}-{k}", stringify!($name)) } },)* }
                    }
                }
            };
        }
        row!(T0 T1 T2 T3 T4 T5 T6 T7 T8 T9 T10 T11);
    }

    /// The loading side: odd types list their fields in the other order.
    pub mod loaded {
        use crate::common::stateify_struct;
        pair_types!(a: u32, b: String => T0 T2 T4 T6 T8 T10);
        pair_types!(b: String, a: u32 => T1 T3 T5 T7 T9 T11);
        /// The row with its fields in reverse order: the types are met
        /// from the last to the first.
        #[derive(Debug, PartialEq)]
        pub struct Row {
            pub T11: T11,
            pub T10: T10,
            pub T9: T9,
            pub T8: T8,
            pub T7: T7,
            pub T6: T6,
            pub T5: T5,
            pub T4: T4,
            pub T3: T3,
            pub T2: T2,
            pub T1: T1,
            pub T0: T0,
        }
        stateify_struct!(Row {
            T11: T11,
            T10: T10,
            T9: T9,
            T8: T8,
            T7: T7,
            T6: T6,
            T5: T5,
            T4: T4,
            T3: T3,
            T2: T2,
            T1: T1,
            T0: T0
        });
    }
}

#[test]
fn struct_types_that_share_a_recent_slot_load_by_their_own_layout() {
    use twelve::{loaded, saved};
    let rows: Vec<saved::Row> = (0..3).map(|i| saved::Row::new(i * 100)).collect();
    let bytes = stateify::to_vec(&rows).unwrap();
    let back: Vec<loaded::Row> = stateify::from_slice(&bytes).unwrap();
    assert_eq!(back.len(), 3);
    for (r, s) in back.iter().zip(&rows) {
        macro_rules! check {
            ($($name:ident)*) => {$(
                assert_eq!((r.$name.a, &r.$name.b), (s.$name.a, &s.$name.b), stringify!($name));
            )*};
        }
        check!(T0 T1 T2 T3 T4 T5 T6 T7 T8 T9 T10 T11);
    }
    // In one load, each stream type read first by the reordered type and
    // then by the saved one: every slot changes hands.
    let twice = (
        rows,
        (0..3).map(|i| saved::Row::new(i * 100)).collect::<Vec<_>>(),
    );
    let bytes = stateify::to_vec(&twice).unwrap();
    let (first, again): (Vec<loaded::Row>, Vec<saved::Row>) = stateify::from_slice(&bytes).unwrap();
    assert_eq!(first, back);
    assert_eq!(again, twice.1);
}
