//! The shared benchmark graphs G1–G3 of `shared/bench-graphs.md`: the
//! generators (splitmix64, seed 42) and the digests that prove a rebuild
//! exact. Used by `benches/graphs.rs` and by the `bench/` comparison crate.

#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use sha2::{Digest, Sha256};
use stateify::Stateify;

pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
}

pub fn hex16(h: Sha256) -> String {
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ---- G1 "tree" ---------------------------------------------------------

pub struct Item {
    pub a: u64,
    pub b: u64,
    pub s: String,
    pub f: bool,
}

pub struct Tree {
    pub items: Vec<Item>,
}

/// The same types through `#[derive(Stateify)]` (same names, same bytes),
/// to compare generated code with the hand-written impls above.
#[derive(Stateify)]
#[state(type_name = "Item")]
pub struct DerivedItem {
    pub a: u64,
    pub b: u64,
    pub s: String,
    pub f: bool,
}

#[derive(Stateify)]
#[state(type_name = "Tree")]
pub struct DerivedTree {
    pub items: Vec<DerivedItem>,
}

pub fn derived(t: &Tree) -> DerivedTree {
    DerivedTree {
        items: t
            .items
            .iter()
            .map(|i| DerivedItem {
                a: i.a,
                b: i.b,
                s: i.s.clone(),
                f: i.f,
            })
            .collect(),
    }
}

pub fn g1(n: u64) -> Tree {
    let mut rng = SplitMix64(42);
    let items = (0..n)
        .map(|i| {
            let b = rng.next();
            let s = format!("item-{i:011}");
            let f = rng.next() & 1 == 1;
            Item { a: i, b, s, f }
        })
        .collect();
    Tree { items }
}

pub fn g1_digest(t: &Tree) -> String {
    let mut h = Sha256::new();
    for it in &t.items {
        h.update(it.a.to_le_bytes());
        h.update(it.b.to_le_bytes());
        h.update((it.s.len() as u64).to_le_bytes());
        h.update(it.s.as_bytes());
        h.update([it.f as u8]);
    }
    hex16(h)
}

// ---- G2 "graph" --------------------------------------------------------

#[derive(Stateify)]
pub struct Node {
    pub id: u64,
    pub name: String,
    pub edges: [Weak<RefCell<Node>>; 4],
    pub attrs: HashMap<String, u64>,
}

#[derive(Stateify)]
pub struct Graph {
    pub nodes: Vec<Rc<RefCell<Node>>>,
}

pub fn g2(n: usize) -> Graph {
    let mut rng = SplitMix64(42);
    let nodes: Vec<Rc<RefCell<Node>>> = (0..n)
        .map(|i| {
            let w = rng.next();
            let c = rng.next();
            Rc::new(RefCell::new(Node {
                id: i as u64,
                name: format!("node-{i:06}"),
                edges: Default::default(),
                attrs: HashMap::from([("weight".to_string(), w), ("color".to_string(), c)]),
            }))
        })
        .collect();
    for i in 0..n {
        let mut node = nodes[i].borrow_mut();
        for e in 0..4 {
            let t = (i + 1 + (rng.next() % (n as u64 - 1)) as usize) % n;
            node.edges[e] = Rc::downgrade(&nodes[t]);
        }
    }
    Graph { nodes }
}

pub fn g2_digest(g: &Graph) -> String {
    let mut h = Sha256::new();
    for n in &g.nodes {
        let n = n.borrow();
        h.update(n.id.to_le_bytes());
        h.update((n.name.len() as u64).to_le_bytes());
        h.update(n.name.as_bytes());
        h.update(n.attrs["weight"].to_le_bytes());
        h.update(n.attrs["color"].to_le_bytes());
        for e in &n.edges {
            h.update(e.upgrade().expect("live edge").borrow().id.to_le_bytes());
        }
    }
    hex16(h)
}

// ---- G3 "bytes" --------------------------------------------------------

#[derive(Stateify)]
pub struct Bytes {
    pub data: Vec<u8>,
}

pub fn g3(len: usize) -> Bytes {
    let mut rng = SplitMix64(42);
    let mut data = Vec::with_capacity(len);
    while data.len() < len {
        data.extend_from_slice(&rng.next().to_le_bytes());
    }
    Bytes { data }
}

pub fn g3_digest(b: &Bytes) -> String {
    let mut h = Sha256::new();
    h.update(&b.data);
    hex16(h)
}
