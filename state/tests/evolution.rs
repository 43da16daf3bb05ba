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
