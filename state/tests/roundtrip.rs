//! gVisor's categories of value round-trips: every integer width at its
//! edges, floats bit-exact, strings, arrays, maps, options, nested structs.
//! Each case also fails cleanly when cut short (see `common::round_trip`).

mod common;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use common::{round_trip, stateify_struct};

macro_rules! int_edges {
    ($($t:ty),*) => {$(
        for v in [<$t>::MIN, <$t>::MIN.wrapping_add(1), 0 as $t, 1 as $t, <$t>::MAX, <$t>::MAX - 1, (0 as $t).wrapping_sub(1)] {
            round_trip(&v);
            round_trip(&vec![v, v]);
        }
    )*};
}

#[test]
fn integers_at_their_edges() {
    int_edges!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);
    for v in [127u64, 128, (1 << 56) - 1, 1 << 56] {
        round_trip(&v);
    }
    // Every varint length boundary (the two- and three-byte forms are
    // written without a branch between them); the loader accepts only
    // minimal encodings, and the sizes are checked against the format.
    let base = stateify::to_vec(&0u64).unwrap().len();
    for bits in 7..64 {
        for v in [(1u64 << bits) - 1, 1 << bits, (1 << bits) + 1] {
            round_trip(&v);
            let significant = 64 - v.leading_zeros() as usize;
            let extra = match v {
                0..=127 => 0,
                _ if v < 1 << 56 => significant.div_ceil(7),
                _ => 8,
            };
            assert_eq!(stateify::to_vec(&v).unwrap().len(), base + extra, "{v}");
        }
    }
}

#[test]
fn integers_out_of_range_fail_with_the_type() {
    let bytes = stateify::to_vec(&300u32).unwrap();
    let err = stateify::from_slice::<u8>(&bytes).unwrap_err();
    assert!(err.to_string().contains("out of range for u8"), "{err}");
    let bytes = stateify::to_vec(&-1i32).unwrap();
    let err = stateify::from_slice::<u32>(&bytes).unwrap_err();
    assert!(
        err.to_string()
            .contains("expected u32, found negative integer"),
        "{err}"
    );
}

#[test]
fn floats_are_bit_exact() {
    let payload_nan = f64::from_bits(0x7ff8_0000_dead_beef);
    for v in [
        0.0f64,
        -0.0,
        1.5,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN_POSITIVE,
        payload_nan,
        f64::NAN,
    ] {
        let bytes = stateify::to_vec(&v).unwrap();
        let back: f64 = stateify::from_slice(&bytes).unwrap();
        assert_eq!(back.to_bits(), v.to_bits());
        let packed: Vec<f64> =
            stateify::from_slice(&stateify::to_vec(&vec![v; 3]).unwrap()).unwrap();
        assert!(packed.iter().all(|x| x.to_bits() == v.to_bits()));
    }
    for v in [0.0f32, -0.0, f32::INFINITY, f32::from_bits(0x7fc0_0001)] {
        let back: f32 = stateify::from_slice(&stateify::to_vec(&v).unwrap()).unwrap();
        assert_eq!(back.to_bits(), v.to_bits());
    }
}

#[test]
fn strings_and_chars() {
    for s in [
        "",
        "a",
        "nul\0inside",
        "héllo wörld ✓ 🦀",
        &"x".repeat(1000),
    ] {
        round_trip(&s.to_string());
        round_trip(&Box::<str>::from(s));
    }
    for c in ['a', '\0', 'é', '🦀', char::MAX] {
        round_trip(&c);
    }
    round_trip(&true);
    round_trip(&false);
    round_trip(&());
    round_trip(&PhantomData::<String>);
}

/// Every length around the short-string copy (0..=32 bytes, moved in two
/// overlapping words) and past it, ASCII and not: the bytes land exactly,
/// after the tag and the length.
#[test]
fn strings_of_every_short_length() {
    let text = "0123456789abcdefghijklmnopqrstuvwxyz0123456789";
    let wide = "é✓🦀ü€";
    let mut all = Vec::new();
    for n in 0..=text.len() {
        all.push(text[..n].to_string());
    }
    for (i, _) in wide.char_indices().chain([(wide.len(), ' ')]) {
        all.push(wide[..i].to_string());
    }
    for s in &all {
        let bytes = stateify::to_vec(s).unwrap();
        assert!(bytes.ends_with(s.as_bytes()), "{s:?}");
        let len_at = bytes.len() - s.len() - 1;
        assert_eq!(bytes[len_at] as usize, s.len(), "{s:?}");
        round_trip(s);
    }
    // Many in one buffer, so that writes land next to each other.
    round_trip(&all);
}

#[test]
fn packed_arrays_of_every_short_length() {
    // Payloads of up to 32 bytes are copied with fixed-size moves.
    for n in 0..=40usize {
        let bytes: Vec<u8> = (0..n as u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        let enc = stateify::to_vec(&bytes).unwrap();
        assert!(enc.ends_with(&bytes), "{n}");
        round_trip(&bytes);
        let words: Vec<u32> = (0..n as u32).map(|i| i.wrapping_mul(0x9e37_79b9)).collect();
        round_trip(&words);
        round_trip(&(bytes.clone(), words, bytes));
    }
}

#[test]
fn arrays_and_vectors() {
    round_trip(&Vec::<u8>::new());
    round_trip(&vec![7u8]);
    round_trip(&(0..=255u8).collect::<Vec<_>>());
    round_trip(&vec![1u16, 2, 3]);
    round_trip(&vec![-1i32, 0, i32::MAX]);
    round_trip(&vec![u64::MAX; 5]);
    round_trip(&[1.5f64; 4]);
    round_trip(&[0u8; 0]);
    round_trip(&[9u32; 3]);
    round_trip(&vec![String::from("a"), String::new()]);
    round_trip(&vec![vec![1u8, 2], vec![], vec![3]]);
    round_trip(&vec![Some(1u64), None]);
    round_trip(&Box::<[u32]>::from(vec![1, 2, 3]));
    round_trip(&vec![true, false]);
    round_trip(&vec![(); 3]);
    round_trip(&vec![1usize, usize::MAX]);
    round_trip(&vec![-1isize, isize::MIN]);
    let mut dq: VecDeque<u32> = (0..10).collect();
    dq.rotate_left(3); // two slices inside
    round_trip(&dq);
    round_trip(&smallvec::SmallVec::<[u16; 4]>::from_vec(vec![
        1, 2, 3, 4, 5,
    ]));
}

#[test]
fn wrong_array_length_is_an_error() {
    let bytes = stateify::to_vec(&[1u8, 2, 3]).unwrap();
    let err = stateify::from_slice::<[u8; 4]>(&bytes).unwrap_err();
    assert!(
        err.to_string()
            .contains("expected array of 4, found 3 elements"),
        "{err}"
    );
}

#[test]
fn arrays_of_non_plain_elements_load_in_place() {
    let a = [String::from("x"), String::new(), String::from("zz")];
    round_trip(&a);
    round_trip(&[[Some(1u8), None], [None, Some(2)]]);
    round_trip(&[(); 0]);
    // A sequence of another length is refused before any element is read.
    let bytes = stateify::to_vec(&vec![String::from("a"), String::from("b")]).unwrap();
    let err = stateify::from_slice::<[String; 3]>(&bytes).unwrap_err();
    assert!(
        err.to_string()
            .contains("expected array of 3, found 2 elements at byte"),
        "{err}"
    );
    // A bad element is named by its index.
    let bytes = stateify::to_vec(&vec![String::from("a"), String::from("b")]).unwrap();
    let err = stateify::from_slice::<[Option<u8>; 2]>(&bytes).unwrap_err();
    assert!(err.to_string().starts_with("root[0]: expected"), "{err}");
    // Cut short in the middle of an element.
    let bytes = stateify::to_vec(&a).unwrap();
    for cut in [bytes.len() / 2, bytes.len() - 1] {
        assert!(stateify::from_slice::<[String; 3]>(&bytes[..cut]).is_err());
    }
}

#[test]
fn maps_and_sets() {
    round_trip(&HashMap::<String, u32>::new());
    let m: HashMap<String, u32> = (0..50).map(|i| (format!("k{i}"), i)).collect();
    round_trip(&m);
    let b: BTreeMap<u32, Vec<u8>> = (0..20).map(|i| (i, vec![i as u8; i as usize])).collect();
    round_trip(&b);
    round_trip(&(0..30u64).collect::<HashSet<_>>());
    round_trip(&(0..30i8).collect::<BTreeSet<_>>());
}

/// Hash-container keys whose encoding depends on the graph (type ids,
/// shared objects) are written in context, not copied from the sort.
#[test]
fn hash_keys_with_types_and_shared_objects() {
    #[derive(stateify::Stateify, Debug, PartialEq, Eq, Hash, Clone)]
    struct Key {
        a: u32,
        tag: Option<String>,
    }
    let m: HashMap<Key, Vec<Key>> = (0..20)
        .map(|i| {
            let k = |j| Key {
                a: j,
                tag: (j % 3 == 0).then(|| format!("t{j}")),
            };
            (k(i), vec![k(i + 100)])
        })
        .collect();
    round_trip(&(m.clone(), m));
    // The same `Rc` in a set key and outside: shared after the load.
    let names: Vec<std::rc::Rc<String>> =
        (0..10).map(|i| std::rc::Rc::new(format!("n{i}"))).collect();
    let set: HashSet<std::rc::Rc<String>> = names.iter().cloned().collect();
    let bytes = stateify::to_vec(&(names.clone(), set.clone())).unwrap();
    let (back_names, back_set): (Vec<std::rc::Rc<String>>, HashSet<std::rc::Rc<String>>) =
        stateify::from_slice(&bytes).unwrap();
    assert_eq!(back_set, set);
    for n in &back_names {
        assert!(std::rc::Rc::ptr_eq(n, back_set.get(n).unwrap()));
    }
    // And the set first: its keys define the objects.
    let bytes2 = stateify::to_vec(&(set.clone(), names)).unwrap();
    let (back_set, back_names): (HashSet<std::rc::Rc<String>>, Vec<std::rc::Rc<String>>) =
        stateify::from_slice(&bytes2).unwrap();
    for n in &back_names {
        assert!(std::rc::Rc::ptr_eq(n, back_set.get(n).unwrap()));
    }
}

#[test]
fn options_results_tuples() {
    round_trip(&Some(Some(3u8)));
    round_trip(&Option::<String>::None);
    round_trip(&Result::<u32, String>::Ok(5));
    round_trip(&Result::<u32, String>::Err("bad".into()));
    round_trip(&(1u8,));
    round_trip(&(1u8, -2i16, 3u32, "four".to_string()));
    round_trip(&(
        1u8, 2u8, 3u8, 4u8, 5u8, 6u8, 7u8, 8u8, 9u8, 10u8, 11u8, 12u8,
    ));
}

#[test]
fn std_value_types() {
    round_trip(&Duration::new(5, 999_999_999));
    round_trip(&PathBuf::from("/tmp/a b/c"));
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        round_trip(&PathBuf::from(std::ffi::OsStr::from_bytes(
            b"/bad/\xff\xfe",
        )));
    }
    round_trip(&IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    round_trip(&Ipv6Addr::LOCALHOST);
    round_trip(&SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::LOCALHOST,
        8080,
    )));
    round_trip(&SocketAddr::V6(SocketAddrV6::new(
        Ipv6Addr::LOCALHOST,
        1,
        2,
        3,
    )));
}

#[derive(Debug)]
struct Cells {
    c: Cell<u32>,
    r: RefCell<Vec<String>>,
    m: Mutex<u64>,
    w: RwLock<String>,
    a: AtomicU32,
}
stateify_struct!(Cells { c: Cell<u32>, r: RefCell<Vec<String>>, m: Mutex<u64>, w: RwLock<String>, a: AtomicU32 });

#[test]
fn interior_mutability() {
    let v = Cells {
        c: Cell::new(3),
        r: RefCell::new(vec!["x".into()]),
        m: Mutex::new(9),
        w: RwLock::new("w".into()),
        a: AtomicU32::new(77),
    };
    let back: Cells = stateify::from_slice(&stateify::to_vec(&v).unwrap()).unwrap();
    assert_eq!(back.c.get(), 3);
    assert_eq!(*back.r.borrow(), vec!["x".to_string()]);
    assert_eq!(*back.m.lock().unwrap(), 9);
    assert_eq!(*back.w.read().unwrap(), "w");
    assert_eq!(back.a.load(Ordering::SeqCst), 77);

    let _guard = v.r.borrow_mut();
    let err = stateify::to_vec(&v).unwrap_err();
    assert_eq!(
        err.to_string(),
        "root.r: RefCell is mutably borrowed during save"
    );
}

#[test]
fn poisoned_mutex_is_an_error() {
    let m = std::sync::Arc::new(Mutex::new(1u8));
    let m2 = m.clone();
    let _ = std::thread::spawn(move || {
        let _g = m2.lock().unwrap();
        panic!("poison it");
    })
    .join();
    let err = stateify::to_vec(&m).unwrap_err();
    assert!(err.to_string().contains("poisoned"), "{err}");
}

#[derive(Debug, PartialEq)]
struct Inner {
    name: String,
    ports: Vec<u16>,
}
stateify_struct!(Inner { name: String, ports: Vec<u16> });

#[derive(Debug, PartialEq)]
struct Outer {
    id: u64,
    inner: Inner,
    list: Vec<Inner>,
    by_name: BTreeMap<String, Inner>,
}
stateify_struct!(Outer { id: u64, inner: Inner, list: Vec<Inner>, by_name: BTreeMap<String, Inner> });

#[test]
fn nested_structs() {
    let mk = |n: &str| Inner {
        name: n.into(),
        ports: vec![80, 443],
    };
    let v = Outer {
        id: 7,
        inner: mk("a"),
        list: vec![mk("b"), mk("c")],
        by_name: [("d".to_string(), mk("d"))].into_iter().collect(),
    };
    round_trip(&v);
}

/// The same type names with other field types, as an older program might have saved them.
mod v0 {
    use super::stateify_struct;
    use std::collections::BTreeMap;

    #[derive(Debug, PartialEq)]
    pub struct Inner {
        pub name: String,
        pub ports: Vec<u32>,
    }
    stateify_struct!(Inner { name: String, ports: Vec<u32> });

    #[derive(Debug, PartialEq)]
    pub struct Outer {
        pub id: u64,
        pub inner: Inner,
        pub list: Vec<Inner>,
        pub by_name: BTreeMap<String, Inner>,
    }
    stateify_struct!(Outer { id: u64, inner: Inner, list: Vec<Inner>, by_name: BTreeMap<String, Inner> });
}

#[test]
fn errors_name_the_path() {
    let mk = |p: u32| v0::Inner {
        name: "x".into(),
        ports: vec![p],
    };
    let v = v0::Outer {
        id: 1,
        inner: mk(1),
        list: vec![mk(2), mk(3)],
        by_name: BTreeMap::new(),
    };
    let bytes = stateify::to_vec(&v).unwrap();
    let err = stateify::from_slice::<Outer>(&bytes).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("root.inner.ports: expected packed u16, found packed u32 at byte "),
        "{text}"
    );
    // The offset points at the packed array's tag.
    let off = err.offset().unwrap() as usize;
    assert_eq!(bytes[off], stateify::wire::PACKED);
}
