//! Identity and cycles: shared pointers come back shared, Weak back-edges
//! come back live, strong cycles and failures inside cyclic constructions
//! are errors, and a million-long chain neither overflows the stack on save
//! nor on load.

mod common;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::sync::{Arc, Mutex, RwLock};

use common::stateify_struct;
use stateify::ErrorKind;

#[test]
fn shared_rc_comes_back_shared() {
    let m: Rc<HashMap<String, u32>> = Rc::new([("a".to_string(), 1)].into_iter().collect());
    let v = vec![m.clone(), m.clone(), Rc::new(HashMap::new())];
    let bytes = stateify::to_vec(&v).unwrap();
    let back: Vec<Rc<HashMap<String, u32>>> = stateify::from_slice(&bytes).unwrap();
    assert!(Rc::ptr_eq(&back[0], &back[1]));
    assert!(!Rc::ptr_eq(&back[0], &back[2]));
    assert_eq!(back[0]["a"], 1);
    assert_eq!(
        Rc::strong_count(&back[0]),
        2,
        "the loader keeps no extra reference"
    );
}

#[test]
fn references_by_ids_of_every_length() {
    // Ids past 127 and 16,383 take two and three bytes; references to
    // them (strong and weak) are written as one word with no branch.
    let objs: Vec<Rc<u32>> = (0..20_000).map(Rc::new).collect();
    let weaks: Vec<Weak<u32>> = objs.iter().rev().map(Rc::downgrade).collect();
    let again: Vec<Rc<u32>> = objs.iter().rev().cloned().collect();
    type Refs = (Vec<Rc<u32>>, Vec<Weak<u32>>, Vec<Rc<u32>>);
    let (objs, weaks, again): Refs =
        stateify::from_slice(&stateify::to_vec(&(objs, weaks, again)).unwrap()).unwrap();
    for (i, o) in objs.iter().enumerate() {
        assert_eq!(**o, i as u32);
        let j = objs.len() - 1 - i;
        assert!(Rc::ptr_eq(o, &again[j]), "strong reference to #{i}");
        assert!(
            Rc::ptr_eq(o, &weaks[j].upgrade().unwrap()),
            "weak reference to #{i}"
        );
    }
}

#[test]
fn shared_arc_mutex_and_rwlock() {
    let a = Arc::new(Mutex::new(vec![1u8, 2]));
    let b = Arc::new(RwLock::new(String::from("s")));
    let v = (a.clone(), a, b.clone(), b);
    type M = Arc<Mutex<Vec<u8>>>;
    type W = Arc<RwLock<String>>;
    let back: (M, M, W, W) = stateify::from_slice(&stateify::to_vec(&v).unwrap()).unwrap();
    assert!(Arc::ptr_eq(&back.0, &back.1));
    assert!(Arc::ptr_eq(&back.2, &back.3));
    back.0.lock().unwrap().push(3);
    assert_eq!(*back.1.lock().unwrap(), vec![1, 2, 3]);
}

#[derive(Debug)]
struct TreeNode {
    name: String,
    parent: Weak<RefCell<TreeNode>>,
    children: Vec<Rc<RefCell<TreeNode>>>,
}
stateify_struct!(TreeNode { name: String, parent: Weak<RefCell<TreeNode>>, children: Vec<Rc<RefCell<TreeNode>>> });

fn node(name: &str, parent: &Option<Rc<RefCell<TreeNode>>>) -> Rc<RefCell<TreeNode>> {
    let n = Rc::new(RefCell::new(TreeNode {
        name: name.into(),
        parent: parent.as_ref().map(Rc::downgrade).unwrap_or_default(),
        children: vec![],
    }));
    if let Some(p) = parent {
        p.borrow_mut().children.push(n.clone());
    }
    n
}

#[test]
fn tree_with_parent_weaks() {
    let root = node("root", &None);
    let a = node("a", &Some(root.clone()));
    node("a1", &Some(a.clone()));
    node("b", &Some(root.clone()));
    let bytes = stateify::to_vec(&root).unwrap();
    let back: Rc<RefCell<TreeNode>> = stateify::from_slice(&bytes).unwrap();
    let r = back.borrow();
    assert_eq!(r.children.len(), 2);
    assert!(r.parent.upgrade().is_none());
    for c in &r.children {
        assert!(Rc::ptr_eq(&c.borrow().parent.upgrade().unwrap(), &back));
    }
    let a = r.children[0].borrow();
    assert_eq!(a.children[0].borrow().name, "a1");
    assert!(Rc::ptr_eq(
        &a.children[0].borrow().parent.upgrade().unwrap(),
        &r.children[0]
    ));
    // Only the tree holds the nodes.
    assert_eq!(Rc::strong_count(&r.children[0]), 1);
    assert!(stateify::pretty::to_string(&bytes)
        .unwrap()
        .contains("(cyclic)"));
}

#[derive(Debug)]
struct Ring {
    id: u32,
    next: Option<Rc<RefCell<Ring>>>,
    prev: Weak<RefCell<Ring>>,
}
stateify_struct!(Ring { id: u32, next: Option<Rc<RefCell<Ring>>>, prev: Weak<RefCell<Ring>> });

fn make_ring(n: u32) -> Rc<RefCell<Ring>> {
    let first = Rc::new(RefCell::new(Ring {
        id: 0,
        next: None,
        prev: Weak::new(),
    }));
    let mut last = first.clone();
    for id in 1..n {
        let r = Rc::new(RefCell::new(Ring {
            id,
            next: None,
            prev: Rc::downgrade(&last),
        }));
        last.borrow_mut().next = Some(r.clone());
        last = r;
    }
    first.borrow_mut().prev = Rc::downgrade(&last);
    first
}

#[test]
fn ring_through_weak_back_edges() {
    let first = make_ring(5);
    let back: Rc<RefCell<Ring>> = stateify::from_slice(&stateify::to_vec(&first).unwrap()).unwrap();
    let mut cur = back.clone();
    for id in 0..5 {
        assert_eq!(cur.borrow().id, id);
        let next = cur.borrow().next.clone();
        if let Some(n) = next {
            assert!(Rc::ptr_eq(&n.borrow().prev.upgrade().unwrap(), &cur));
            cur = n;
        }
    }
    assert!(Rc::ptr_eq(&back.borrow().prev.upgrade().unwrap(), &cur));
}

/// Saves on one thread reuse the previous save's tables: a save after a
/// different graph, or after a failed one, writes the same bytes and the
/// same statistics as the first.
#[test]
fn saves_after_other_and_failed_saves_are_unchanged() {
    let ring = make_ring(6);
    let (first, first_stats) =
        stateify::to_vec_with_options(&ring, &stateify::SaveOptions::default()).unwrap();
    // Another graph, with other types and shared objects.
    let shared = Rc::new(String::from("x"));
    stateify::to_vec(&(vec![shared.clone(), shared], make_ring(2), 5u8)).unwrap();
    // A save that fails half-way, deep in its objects.
    let bad = make_ring(3);
    bad.borrow().next.as_ref().unwrap().borrow_mut().next = Some(bad.clone());
    assert!(stateify::to_vec(&bad).is_err());
    bad.borrow_mut().next = None;
    let (again, again_stats) =
        stateify::to_vec_with_options(&ring, &stateify::SaveOptions::default()).unwrap();
    assert_eq!(again, first);
    assert_eq!(again_stats.objects, first_stats.objects);
    assert_eq!(again_stats.bytes, first_stats.bytes);
    // And through a reused encoder, with its own options.
    let mut enc = stateify::Encoder::new();
    assert_eq!(enc.encode(&ring).unwrap().0, &first[..]);
}

#[test]
fn strong_cycle_fails_at_save_with_its_path() {
    let first = make_ring(3);
    // Close the ring with a strong edge: 0 -> 1 -> 2 -> 0.
    let mut last = first.clone();
    loop {
        let n = last.borrow().next.clone();
        match n {
            Some(n) => last = n,
            None => break,
        }
    }
    last.borrow_mut().next = Some(first.clone());
    let err = stateify::to_vec(&first).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::StrongCycle(0)), "{err}");
    assert!(
        err.to_string()
            .starts_with("root.next.next.next: strong reference cycle"),
        "{err}"
    );
    last.borrow_mut().next = None; // break the cycle so the test does not leak
}

#[test]
fn hostile_strong_cycle_in_the_stream_is_an_error() {
    // A Some(OBJ ...) whose inside refers strongly back to object 0.
    #[derive(Debug)]
    struct Selfish {
        me: Option<Rc<Selfish>>,
    }
    stateify_struct!(Selfish { me: Option<Rc<Selfish>> });
    let v = Rc::new(Selfish { me: None });
    let mut bytes = stateify::to_vec(&v).unwrap();
    // Replace the trailing NONE by SOME REF 0 and fix the header length.
    assert_eq!(bytes.pop(), Some(stateify::wire::NONE));
    bytes.extend_from_slice(&[stateify::wire::SOME, stateify::wire::REF, 0]);
    let len = bytes.len() as u64 - 10;
    let mut fixed = Vec::new();
    stateify::write_header(&mut fixed, len, true).unwrap();
    fixed.extend_from_slice(&bytes[10..]);
    let err = stateify::from_slice::<Rc<Selfish>>(&fixed).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::StrongCycle(0)), "{err}");
    assert!(
        err.to_string()
            .starts_with("root.me: strong reference cycle"),
        "{err}"
    );
}

#[test]
fn failure_inside_cyclic_construction_is_an_err() {
    let root = node("root", &None);
    node("child", &Some(root.clone()));
    let mut bytes = stateify::to_vec(&root).unwrap();
    // Corrupt the child's name ("child" -> invalid UTF-8) deep inside the cyclic root.
    let pos = bytes.windows(5).rposition(|w| w == b"child").unwrap();
    bytes[pos] = 0xff;
    let err = stateify::from_slice::<Rc<RefCell<TreeNode>>>(&bytes).unwrap_err();
    assert!(
        err.to_string()
            .contains("root.children[0].name: invalid UTF-8"),
        "{err}"
    );
    // Cut inside the cyclic construction, too.
    let good = stateify::to_vec(&root).unwrap();
    for cut in (11..good.len()).step_by(3) {
        assert!(stateify::from_slice::<Rc<RefCell<TreeNode>>>(&good[..cut]).is_err());
    }
}

#[derive(Debug)]
struct Link {
    v: u64,
    next: Option<Rc<Link>>,
}
stateify_struct!(Link { v: u64, next: Option<Rc<Link>> });

fn drop_chain(mut head: Option<Rc<Link>>) {
    while let Some(rc) = head {
        head = match Rc::try_unwrap(rc) {
            Ok(mut l) => l.next.take(),
            Err(_) => None,
        };
    }
}

#[test]
fn million_long_chain_saves_and_loads() {
    let mut head: Option<Rc<Link>> = None;
    for v in 0..1_000_000u64 {
        head = Some(Rc::new(Link { v, next: head }));
    }
    let bytes = stateify::to_vec(&head).unwrap();
    drop_chain(head);
    let back: Option<Rc<Link>> = stateify::from_slice(&bytes).unwrap();
    let mut n = 0u64;
    let mut cur = back.as_ref();
    while let Some(l) = cur {
        assert_eq!(l.v, 999_999 - n);
        n += 1;
        cur = l.next.as_ref();
    }
    assert_eq!(n, 1_000_000);
    drop_chain(back);
    // A lower limit turns the same input into a clean error.
    let opts = stateify::LoadOptions {
        max_depth: 1000,
        ..Default::default()
    };
    let err = stateify::from_slice_with_options::<Option<Rc<Link>>>(
        &bytes,
        &mut stateify::Resources::new(),
        &opts,
    )
    .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::DepthLimit(1000)), "{err}");
}

/// One pointer saved on its own, as every element was before sequences of
/// shared pointers got their own path.
struct One<P>(P);

impl<P: stateify::Stateify> stateify::Stateify for One<P> {
    fn save(&self, s: &mut stateify::Saver) -> stateify::Result<()> {
        self.0.save(s)
    }
    fn load(l: &mut stateify::Loader) -> stateify::Result<Self> {
        P::load(l).map(One)
    }
}

/// Sequences of `Rc`s and `Arc`s are saved with their lookups asked for a
/// few elements ahead. That path must write exactly what one pointer at a
/// time writes, across both halves of a wrapped deque, and name the index
/// of an element that fails.
#[test]
fn shared_pointer_sequences_write_what_single_pointers_write() {
    let objs: Vec<Rc<u32>> = (0..40).map(Rc::new).collect();
    let mut dq: std::collections::VecDeque<Rc<u32>> =
        (0..100).map(|i| objs[i * 7 % 40].clone()).collect();
    dq.rotate_left(30); // two slices inside
    let (front, back) = dq.as_slices();
    assert!(!front.is_empty() && !back.is_empty());
    let single: std::collections::VecDeque<One<Rc<u32>>> = dq.iter().cloned().map(One).collect();
    let bytes = stateify::to_vec(&dq).unwrap();
    assert_eq!(bytes, stateify::to_vec(&single).unwrap());
    let loaded: std::collections::VecDeque<Rc<u32>> = stateify::from_slice(&bytes).unwrap();
    for i in 0..100 {
        assert_eq!(loaded[i], dq[i]);
        let first = (0..100).find(|&j| Rc::ptr_eq(&dq[i], &dq[j])).unwrap();
        assert!(
            Rc::ptr_eq(&loaded[i], &loaded[first]),
            "{i} shares #{first}"
        );
    }

    let arcs: Vec<Arc<Mutex<u8>>> = (0..20).map(|i| Arc::new(Mutex::new(i))).collect();
    let arcs: Vec<Arc<Mutex<u8>>> = (0..60).map(|i| arcs[i % 20].clone()).collect();
    let single: Vec<One<Arc<Mutex<u8>>>> = arcs.iter().cloned().map(One).collect();
    assert_eq!(
        stateify::to_vec(&arcs).unwrap(),
        stateify::to_vec(&single).unwrap()
    );

    // Weak references: first meetings (written in place), repeats, a dead one.
    let dead = Rc::downgrade(&Rc::new(99u32));
    let weaks: Vec<Weak<u32>> = [3, 5, 3, 5, 7]
        .iter()
        .map(|&i| Rc::downgrade(&objs[i]))
        .chain([dead])
        .collect();
    let pair = (weaks.clone(), objs[..8].to_vec());
    let bytes = stateify::to_vec(&pair).unwrap();
    let single = (
        weaks.iter().cloned().map(One).collect::<Vec<_>>(),
        objs[..8].to_vec(),
    );
    assert_eq!(bytes, stateify::to_vec(&single).unwrap());
    let (weaks, objs): (Vec<Weak<u32>>, Vec<Rc<u32>>) = stateify::from_slice(&bytes).unwrap();
    for (w, i) in weaks.iter().zip([3, 5, 3, 5, 7]) {
        assert!(Rc::ptr_eq(&w.upgrade().unwrap(), &objs[i]));
    }
    assert!(weaks[5].upgrade().is_none());

    // A strong cycle reached through the third element.
    let ring = make_ring(3);
    let last = ring
        .borrow()
        .next
        .clone()
        .unwrap()
        .borrow()
        .next
        .clone()
        .unwrap();
    last.borrow_mut().next = Some(ring.clone());
    let seq = vec![make_ring(2), make_ring(1), ring.clone()];
    let err = stateify::to_vec(&seq).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("root[2].next.next.next: strong reference cycle"),
        "{err}"
    );
    last.borrow_mut().next = None;
}

mod first {
    use super::*;
    pub struct Me {
        pub me: Weak<RefCell<Me>>,
        pub arc: Option<Arc<Mutex<ArcMe>>>,
    }
    stateify_struct!(Me { me: Weak<RefCell<Me>>, arc: Option<Arc<Mutex<ArcMe>>> });
    pub struct ArcMe {
        pub me: std::sync::Weak<Mutex<ArcMe>>,
    }
    stateify_struct!(ArcMe { me: std::sync::Weak<Mutex<ArcMe>> });
}

mod second {
    use super::*;
    #[derive(Debug)]
    pub struct Me {
        pub me: Weak<RefCell<u32>>,
    }
    stateify_struct!(Me { me: Weak<RefCell<u32>> });
    #[derive(Debug)]
    pub struct ArcMe {
        pub me: Weak<Mutex<ArcMe>>,
    }
    stateify_struct!(ArcMe { me: Weak<Mutex<ArcMe>> });
}

/// A back-edge into an object still being built is answered from the weak
/// handle kept in its table slot, for `Rc` and `Arc`, and only as the
/// type that object is being built as.
#[test]
fn back_edges_into_objects_being_built_check_their_type() {
    let arc = Arc::new_cyclic(|w| Mutex::new(first::ArcMe { me: w.clone() }));
    let rc = Rc::new_cyclic(|w| {
        RefCell::new(first::Me {
            me: w.clone(),
            arc: Some(arc.clone()),
        })
    });
    let bytes = stateify::to_vec(&rc).unwrap();
    let back: Rc<RefCell<first::Me>> = stateify::from_slice(&bytes).unwrap();
    assert!(Rc::ptr_eq(&back.borrow().me.upgrade().unwrap(), &back));
    let arc_back = back.borrow().arc.clone().unwrap();
    let arc_me = arc_back.lock().unwrap().me.upgrade().unwrap();
    assert!(Arc::ptr_eq(&arc_me, &arc_back));
    assert_eq!(Arc::weak_count(&arc_back), 1, "the loader kept no handle");
    assert_eq!(Rc::weak_count(&back), 1);

    let err = stateify::from_slice::<Rc<RefCell<second::Me>>>(&bytes).unwrap_err();
    assert!(
        err.to_string().contains("object #0 of another type"),
        "{err}"
    );
    let arc_bytes = stateify::to_vec(&arc).unwrap();
    let err = stateify::from_slice::<Arc<Mutex<second::ArcMe>>>(&arc_bytes).unwrap_err();
    assert!(
        err.to_string().contains("object #0 of another type"),
        "{err}"
    );
    rc.borrow_mut().arc = None;
}
