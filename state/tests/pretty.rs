//! Snapshots of `pretty::to_string` for every wire kind: what the CLI and a
//! human see of a stream without its Rust types.

mod common;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::rc::{Rc, Weak};
use std::sync::Arc;

use common::stateify_struct;

fn show<T: stateify::Stateify + ?Sized>(v: &T) -> String {
    stateify::pretty::to_string(&stateify::to_vec(v).unwrap()).unwrap()
}

#[derive(Debug)]
struct Point {
    x: i32,
    y: i32,
}
stateify_struct!(Point { x: i32, y: i32 });

#[derive(Debug)]
struct Cell2 {
    id: u8,
    next: Weak<RefCell<Cell2>>,
}
stateify_struct!(Cell2 { id: u8, next: Weak<RefCell<Cell2>> });

#[test]
fn scalars() {
    insta::assert_snapshot!("unit_bools", show(&((), true, false)));
    insta::assert_snapshot!(
        "integers",
        show(&(
            0u8,
            127u8,
            128u16,
            u64::MAX,
            -1i8,
            i64::MIN,
            u128::MAX,
            i128::MIN,
            (1u64 << 56) - 1
        ))
    );
    insta::assert_snapshot!(
        "floats",
        show(&(
            1.5f32,
            -0.0f64,
            f64::INFINITY,
            f64::NAN,
            f64::from_bits(0x7ff8_0000_0000_0001)
        ))
    );
    insta::assert_snapshot!(
        "chars_strings",
        show(&('é', "tab\there \"quoted\" 🦀".to_string(), String::new()))
    );
}

#[test]
fn containers() {
    insta::assert_snapshot!(
        "seq_tuple_option",
        show(&(vec![Some("a".to_string()), None], (1u8,)))
    );
    let m: BTreeMap<String, Vec<String>> = [("k".to_string(), vec!["v".to_string()])]
        .into_iter()
        .collect();
    insta::assert_snapshot!("map", show(&m));
    insta::assert_snapshot!("set_sorted", show(&(0..5u16).collect::<HashSet<_>>()));
    insta::assert_snapshot!(
        "empty",
        show(&(Vec::<String>::new(), BTreeMap::<u8, u8>::new()))
    );
}

#[test]
fn packed_arrays() {
    insta::assert_snapshot!(
        "packed",
        show(&(
            vec![1u8, 2, 0xff],
            vec![-1i16, 2],
            [1.5f32; 2],
            (0..40u64).collect::<Vec<_>>(),
            vec![7u8; 100]
        ))
    );
}

#[test]
fn structs_and_variants() {
    insta::assert_snapshot!(
        "struct",
        show(&vec![Point { x: 1, y: -2 }, Point { x: 3, y: 4 }])
    );
    insta::assert_snapshot!(
        "variants",
        show(&(
            Result::<u8, String>::Ok(1),
            Result::<u8, String>::Err("e".into())
        ))
    );
    // An enum variant with a `()` payload prints bare (`Option` keeps its
    // `Some(())`: it is not an enum on the wire).
    let text = show(&(Option::<()>::Some(()), Result::<(), u8>::Ok(())));
    assert!(text.contains("Some(()),\n  Result::Ok,"), "{text}");
    insta::assert_snapshot!(
        "std_types",
        show(&(
            std::time::Duration::from_millis(1500),
            "127.0.0.1:80".parse::<std::net::SocketAddr>().unwrap()
        ))
    );
}

#[test]
fn objects_refs_weaks() {
    let s = Rc::new("shared".to_string());
    let dead: Weak<String> = Rc::downgrade(&Rc::new("gone".to_string()));
    let a = Arc::new(5u32);
    insta::assert_snapshot!(
        "objects",
        show(&(
            s.clone(),
            s.clone(),
            Rc::downgrade(&s),
            dead,
            a.clone(),
            Arc::downgrade(&a)
        ))
    );
    let first = Rc::new(RefCell::new(Cell2 {
        id: 0,
        next: Weak::new(),
    }));
    let second = Rc::new(RefCell::new(Cell2 {
        id: 1,
        next: Rc::downgrade(&first),
    }));
    first.borrow_mut().next = Rc::downgrade(&second);
    insta::assert_snapshot!("cyclic", show(&(first.clone(), second)));
}

#[test]
fn stream_with_raw_records() {
    let mut out = Vec::new();
    stateify::save(&mut out, &1u8).unwrap();
    stateify::write_header(&mut out, 3, false).unwrap();
    out.extend_from_slice(b"raw");
    stateify::save(&mut out, &"two".to_string()).unwrap();
    insta::assert_snapshot!("stream", stateify::pretty::to_string(&out).unwrap());
}

#[derive(Debug)]
struct Owner {
    name: String,
    parts: Vec<Rc<RefCell<Part>>>,
}
stateify_struct!(Owner { name: String, parts: Vec<Rc<RefCell<Part>>> });

#[derive(Debug)]
struct Part {
    id: u8,
    owner: Weak<RefCell<Owner>>,
}
stateify_struct!(Part { id: u8, owner: Weak<RefCell<Owner>> });

#[test]
fn forward_references() {
    // Parts reached before the owner their weak references lead to: the
    // owner is announced there and defined where the root reaches it.
    let owner = Rc::new(RefCell::new(Owner {
        name: "owner".into(),
        parts: vec![],
    }));
    let parts: Vec<_> = (0..2)
        .map(|id| {
            Rc::new(RefCell::new(Part {
                id,
                owner: Rc::downgrade(&owner),
            }))
        })
        .collect();
    owner.borrow_mut().parts = parts.clone();
    insta::assert_snapshot!(
        "forward_def_at_strong_ref",
        show(&(parts.clone(), owner.clone()))
    );
    // Reached only through weak references: defined after the root.
    insta::assert_snapshot!("forward_def_after_root", show(&parts[0]));
    owner.borrow_mut().parts.clear();
}
