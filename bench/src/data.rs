//! The comparison data sets, generated from fixed seeds: a save-game-like
//! tree of players (nested enums, options, vectors, strings), a shared
//! pointer DAG, and a triangle mesh.

use std::rc::Rc;

use serde::{Deserialize, Serialize};
use stateify::{wire, Stateify};

/// The shared graphs' splitmix64, with helpers.
pub struct Rng(pub crate::model::SplitMix64);

impl Rng {
    pub fn seeded(seed: u64) -> Rng {
        Rng(crate::model::SplitMix64(seed))
    }
    pub fn next(&mut self) -> u64 {
        self.0.next()
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    pub fn word(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| (b'a' + self.below(26) as u8) as char)
            .collect()
    }
}

// ---- structured tree data --------------------------------------------------------

/// The save-game types, each with every peer's derives (Fory's derive is
/// given per item: `ForyStruct`, `ForyEnum` for unit enums, `ForyUnion` for
/// enums with data).
macro_rules! savedata_types {
    ($($item:item)*) => {
        $(
            #[derive(Clone, Debug, PartialEq, Stateify, Serialize, Deserialize)]
            #[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
            $item
        )*
    };
}

savedata_types! {
#[derive(fory::ForyEnum)]
pub enum GameType {
    Survival,
    Creative,
    Adventure,
    Spectator,
}

#[derive(fory::ForyStruct)]
pub struct Enchantment {
    pub id: String,
    pub level: u16,
}

#[derive(fory::ForyStruct)]
pub struct Item {
    pub count: i8,
    pub slot: u8,
    pub id: String,
    pub damage: Option<u16>,
    pub enchantments: Vec<Enchantment>,
    pub display_name: Option<String>,
}

#[derive(fory::ForyStruct)]
pub struct Abilities {
    pub walk_speed: f32,
    pub fly_speed: f32,
    pub may_fly: bool,
    pub flying: bool,
    pub invulnerable: bool,
    pub may_build: bool,
    pub instabuild: bool,
}

#[derive(fory::ForyUnion)]
pub enum Entity {
    Item {
        age: u16,
        item: Item,
    },
    Mob {
        kind: String,
        health: f32,
        pos: (f64, f64, f64),
    },
    /// Fory's union derive wants one variant to fall back on.
    #[fory(default)]
    Empty,
}

#[derive(fory::ForyStruct)]
pub struct Player {
    pub game_type: GameType,
    pub previous_game_type: GameType,
    pub score: u64,
    pub dimension: String,
    pub selected_item_slot: u32,
    pub selected_item: Item,
    pub spawn: Option<(i64, i64, i64)>,
    pub pos: (f64, f64, f64),
    pub motion: (f64, f64, f64),
    pub rotation: (f32, f32),
    pub health: f32,
    pub food_level: u32,
    pub xp_level: u32,
    pub inventory: Vec<Item>,
    pub ender_items: Vec<Item>,
    pub abilities: Abilities,
    pub entered_nether: Option<(f64, f64, f64)>,
    pub root_vehicle: Option<(u32, Entity)>,
    pub shoulder_entity_left: Option<Entity>,
    pub seen_credits: bool,
    pub recipes: Vec<String>,
}

#[derive(fory::ForyStruct)]
pub struct SaveData {
    pub players: Vec<Player>,
}
}

fn game_type(r: &mut Rng) -> GameType {
    [
        GameType::Survival,
        GameType::Creative,
        GameType::Adventure,
        GameType::Spectator,
    ][r.below(4) as usize]
        .clone()
}

fn item(r: &mut Rng) -> Item {
    let id_len = 4 + r.below(8) as usize;
    Item {
        count: r.below(64) as i8,
        slot: r.below(36) as u8,
        id: format!("minecraft:{}", r.word(id_len)),
        damage: (r.below(2) == 0).then(|| r.below(1000) as u16),
        enchantments: (0..r.below(3))
            .map(|_| Enchantment {
                id: format!("minecraft:{}", r.word(6)),
                level: r.below(5) as u16,
            })
            .collect(),
        display_name: (r.below(4) == 0).then(|| r.word(10)),
    }
}

fn pos(r: &mut Rng) -> (f64, f64, f64) {
    (
        r.f32() as f64 * 1e4,
        r.f32() as f64 * 256.0,
        r.f32() as f64 * 1e4,
    )
}

fn entity(r: &mut Rng) -> Entity {
    match r.below(3) {
        0 => Entity::Item {
            age: r.below(6000) as u16,
            item: item(r),
        },
        1 => Entity::Mob {
            kind: r.word(8),
            health: r.f32() * 20.0,
            pos: pos(r),
        },
        _ => Entity::Empty,
    }
}

pub fn save_data(players: usize) -> SaveData {
    let mut r = Rng::seeded(7);
    SaveData {
        players: (0..players)
            .map(|_| Player {
                game_type: game_type(&mut r),
                previous_game_type: game_type(&mut r),
                score: r.next() >> 40,
                dimension: format!("minecraft:{}", r.word(9)),
                selected_item_slot: r.below(9) as u32,
                selected_item: item(&mut r),
                spawn: (r.below(2) == 0)
                    .then(|| (r.below(1000) as i64, 64, r.below(1000) as i64 - 500)),
                pos: pos(&mut r),
                motion: pos(&mut r),
                rotation: (r.f32() * 360.0, r.f32() * 180.0),
                health: r.f32() * 20.0,
                food_level: r.below(21) as u32,
                xp_level: r.below(100) as u32,
                inventory: (0..r.below(36)).map(|_| item(&mut r)).collect(),
                ender_items: (0..r.below(27)).map(|_| item(&mut r)).collect(),
                abilities: Abilities {
                    walk_speed: 0.1,
                    fly_speed: 0.05,
                    may_fly: r.below(2) == 0,
                    flying: r.below(2) == 0,
                    invulnerable: r.below(2) == 0,
                    may_build: r.below(2) == 0,
                    instabuild: r.below(2) == 0,
                },
                entered_nether: (r.below(2) == 0).then(|| pos(&mut r)),
                root_vehicle: (r.below(2) == 0).then(|| (r.below(1000) as u32, entity(&mut r))),
                shoulder_entity_left: (r.below(2) == 0).then(|| entity(&mut r)),
                seen_credits: r.below(2) == 0,
                recipes: (0..r.below(100))
                    .map(|_| format!("minecraft:{}", r.word(8)))
                    .collect(),
            })
            .collect(),
    }
}

// ---- shared-pointer DAG -----------------------------------------------------------

#[derive(
    Debug, PartialEq, Stateify, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, fory::ForyStruct,
)]
pub struct Leaf {
    pub id: u32,
    pub name: String,
    pub weights: Vec<u32>,
}

#[derive(
    Debug, PartialEq, Stateify, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, fory::ForyStruct,
)]
pub struct Mid {
    pub id: u32,
    pub leaves: Vec<Rc<Leaf>>,
}

#[derive(
    Debug, PartialEq, Stateify, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, fory::ForyStruct,
)]
pub struct Dag {
    pub mids: Vec<Rc<Mid>>,
    /// The mids again, reached a second time (heavy sharing at both levels).
    pub hot: Vec<Rc<Mid>>,
}

pub fn dag(leaves: usize, mids: usize, fan: usize) -> Dag {
    let mut r = Rng::seeded(11);
    let leaves: Vec<Rc<Leaf>> = (0..leaves)
        .map(|i| {
            Rc::new(Leaf {
                id: i as u32,
                name: format!("leaf-{i}"),
                weights: (0..4).map(|_| r.below(1000) as u32).collect(),
            })
        })
        .collect();
    let mids: Vec<Rc<Mid>> = (0..mids)
        .map(|i| {
            Rc::new(Mid {
                id: i as u32,
                leaves: (0..fan)
                    .map(|_| leaves[r.below(leaves.len() as u64) as usize].clone())
                    .collect(),
            })
        })
        .collect();
    let hot = (0..mids.len() / 2)
        .map(|_| mids[r.below(mids.len() as u64) as usize].clone())
        .collect();
    Dag { mids, hot }
}

/// A digest of a DAG's contents and sharing (leaves shared by pointer).
pub fn dag_digest(d: &Dag) -> u64 {
    let mut h = Fnv::default();
    let mut mix = |v: u64| h.mix(v);
    let leaf_ptrs: std::collections::HashMap<*const Leaf, u64> = d
        .mids
        .iter()
        .flat_map(|m| m.leaves.iter())
        .map(|l| (Rc::as_ptr(l), l.id as u64))
        .collect();
    mix(leaf_ptrs.len() as u64);
    for m in d.mids.iter().chain(&d.hot) {
        mix(m.id as u64);
        for l in &m.leaves {
            mix(l.id as u64 ^ l.weights.iter().map(|&w| w as u64).sum::<u64>() << 20);
        }
    }
    mix(Rc::strong_count(&d.mids[0]) as u64);
    h.0
}

/// FNV-1a over whole words, for the digests that prove a rebuild exact.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf29ce484222325)
    }
}

impl Fnv {
    fn mix(&mut self, v: u64) {
        self.0 = (self.0 ^ v).wrapping_mul(0x100000001b3);
    }
}

// ---- a tree of shared nodes with Weak parents -------------------------------------

/// A node of a tree whose children point weakly back at their parent, in
/// the form Apache Fory's own weak-pointer example takes (`RcWeak` to a
/// `RefCell`). Stateify saves the `RcWeak` as the `std::rc::Weak` inside it
/// ([`fory_weak`]).
#[derive(Debug, Stateify, fory::ForyStruct)]
pub struct TNode {
    pub id: u32,
    pub name: String,
    #[state(with = "fory_weak")]
    pub parent: fory::RcWeak<std::cell::RefCell<TNode>>,
    pub children: Vec<Rc<std::cell::RefCell<TNode>>>,
}

/// Fory's `RcWeak` saved and loaded as the `std::rc::Weak` it wraps (a
/// `#[state(with)]` module: the orphan rule keeps `Stateify` off it).
pub mod fory_weak {
    use std::rc::{Rc, Weak};

    use stateify::{Error, Loader, Saver, Stateify};

    pub fn save<T: Stateify + 'static>(v: &fory::RcWeak<T>, s: &mut Saver) -> Result<(), Error> {
        let w: Weak<T> = v.upgrade().map(|rc| Rc::downgrade(&rc)).unwrap_or_default();
        w.save(s)
    }

    pub fn load<T: Stateify + 'static>(l: &mut Loader<'_, '_>) -> Result<fory::RcWeak<T>, Error> {
        Ok(fory::RcWeak::from_std(Weak::<T>::load(l)?))
    }
}

/// A tree of `nodes` nodes, `fan` children each (breadth first), every
/// child holding a weak pointer to its parent.
pub fn weak_tree(nodes: usize, fan: usize) -> Rc<std::cell::RefCell<TNode>> {
    let node = |id: usize, parent: fory::RcWeak<std::cell::RefCell<TNode>>| {
        Rc::new(std::cell::RefCell::new(TNode {
            id: id as u32,
            name: format!("node-{id}"),
            parent,
            children: Vec::new(),
        }))
    };
    let root = node(0, fory::RcWeak::new());
    let mut queue = std::collections::VecDeque::from([root.clone()]);
    let mut made = 1;
    while let Some(p) = queue.pop_front() {
        for _ in 0..fan {
            if made == nodes {
                return root;
            }
            let c = node(made, fory::RcWeak::from(&p));
            made += 1;
            p.borrow_mut().children.push(c.clone());
            queue.push_back(c);
        }
    }
    root
}

/// A digest of a weak-parent tree: every node's id, name, children and its
/// parent's id through the weak pointer.
pub fn weak_tree_digest(root: &Rc<std::cell::RefCell<TNode>>) -> u64 {
    let mut h = Fnv::default();
    let mut stack = vec![root.clone()];
    while let Some(n) = stack.pop() {
        let n = n.borrow();
        let parent = n
            .parent
            .upgrade()
            .map_or(u64::MAX, |p| p.borrow().id as u64);
        let name = n
            .name
            .bytes()
            .fold(0u64, |a, b| a.wrapping_mul(31) ^ b as u64);
        for v in [n.id as u64, name, n.children.len() as u64, parent] {
            h.mix(v);
        }
        stack.extend(n.children.iter().cloned());
    }
    h.0
}

// ---- mesh ----------------------------------------------------------------------

#[derive(
    Clone, Copy, Debug, PartialEq, Stateify, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[state(plain)]
pub struct Triangle {
    pub v0: [f32; 3],
    pub v1: [f32; 3],
    pub v2: [f32; 3],
    pub normal: [f32; 3],
}

#[derive(Clone, Debug, PartialEq, Stateify, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Mesh {
    pub triangles: Vec<Triangle>,
}

pub fn mesh(triangles: usize) -> Mesh {
    let mut r = Rng::seeded(3);
    let mut v = || [r.f32(), r.f32(), r.f32()];
    Mesh {
        triangles: (0..triangles)
            .map(|_| Triangle {
                v0: v(),
                v1: v(),
                v2: v(),
                normal: v(),
            })
            .collect(),
    }
}

// ---- G1 and G2 floors ---------------------------------------------------

type NodeRc = Rc<std::cell::RefCell<crate::model::Node>>;
type NodeWeak = std::rc::Weak<std::cell::RefCell<crate::model::Node>>;

/// G1 cloned field by field: a load's allocations and copies with no
/// decoding (`compare`'s floor for G1 load).
pub fn g1_copy(t: &crate::model::DerivedTree) -> crate::model::DerivedTree {
    crate::model::DerivedTree {
        items: t
            .items
            .iter()
            .map(|i| crate::model::DerivedItem {
                a: i.a,
                b: i.b,
                s: i.s.clone(),
                f: i.f,
            })
            .collect(),
    }
}

/// The floor of any depth-first save of G2: a recursive walk from the root
/// that reads what a save reads (each node, its name, its map's keys and
/// values, the address of every edge target) and keeps the visited nodes
/// in an `FxHashMap` (address → visit number), writing nothing. Returns a
/// checksum of what it read.
pub fn g2_walk(g: &crate::model::Graph) -> u64 {
    let mut seen = rustc_hash::FxHashMap::default();
    let mut acc = 0;
    for n in &g.nodes {
        if !seen.contains_key(&(Rc::as_ptr(n) as usize)) {
            walk(n, &mut seen, &mut acc);
        }
    }
    acc
}

/// The floor of any save of G2 in stateify's format: a hand-written
/// encoder of exactly what G2 needs, on the walk of [`g2_walk`]. Each node
/// is an object (OBJ, or OBJ_CYCLIC once a back-edge reaches it while
/// open) holding a STRUCT with a one-byte type id, its id, its name, its
/// four edges (WEAK REF id, or WEAK and the target written right there)
/// and its map, entries sorted by their encoded keys. No type table beyond
/// the two definitions, no traits, no error paths, no rewind logs. It
/// writes the body of `stateify::to_vec`'s record byte for byte (a test
/// checks), for a G2 of short keys and names. It starts with the room a
/// save of the same thread reserves: the last save's length (`last_len`)
/// and an eighth.
pub fn g2_encode(g: &crate::model::Graph, last_len: usize) -> Vec<u8> {
    let mut e = G2Encoder {
        out: Vec::with_capacity(last_len + last_len / 8),
        seen: rustc_hash::FxHashMap::default(),
        tag_at: Vec::new(),
        open: Vec::new(),
    };
    e.out
        .extend_from_slice(&[wire::GRAPH_VERSION_1, wire::STRUCT]);
    e.out.push(0);
    e.name("Graph");
    e.out.push(1);
    e.name("nodes");
    e.out.push(wire::SEQ);
    e.varint(g.nodes.len() as u64);
    for n in &g.nodes {
        match e.seen.get(&(Rc::as_ptr(n) as usize)) {
            Some(&id) => {
                e.out.push(wire::REF);
                e.varint(id as u64);
            }
            None => e.object(n),
        }
    }
    e.out
}

struct G2Encoder {
    out: Vec<u8>,
    seen: rustc_hash::FxHashMap<usize, u32>,
    /// Where each object's OBJ tag stands, to mark it OBJ_CYCLIC.
    tag_at: Vec<usize>,
    open: Vec<bool>,
}

impl G2Encoder {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    fn uint(&mut self, v: u64) {
        if v < 0x80 {
            self.out.push(wire::SMALL | v as u8);
        } else if v < 1 << 56 {
            self.out.push(wire::UINT);
            self.varint(v);
        } else {
            self.out.push(wire::U64);
            self.out.extend_from_slice(&v.to_le_bytes());
        }
    }

    fn name(&mut self, s: &str) {
        self.varint(s.len() as u64);
        self.out.extend_from_slice(s.as_bytes());
    }

    fn object(&mut self, n: &NodeRc) {
        let id = self.tag_at.len() as u32;
        self.seen.insert(Rc::as_ptr(n) as usize, id);
        self.tag_at.push(self.out.len());
        self.open.push(true);
        self.out.extend_from_slice(&[wire::OBJ, wire::STRUCT]);
        let node = n.borrow();
        // Type 1, defined at its first use.
        self.out.push(1);
        if id == 0 {
            self.name("Node");
            self.out.push(4);
            for f in ["id", "name", "edges", "attrs"] {
                self.name(f);
            }
        }
        self.uint(node.id);
        self.out.push(wire::STR);
        self.name(&node.name);
        self.out.push(wire::SEQ);
        self.out.push(4);
        for e in &node.edges {
            self.out.push(wire::WEAK);
            if let Some(&t) = self.seen.get(&(e.as_ptr() as usize)) {
                if self.open[t as usize] {
                    self.out[self.tag_at[t as usize]] = wire::OBJ_CYCLIC;
                }
                self.out.push(wire::REF);
                self.varint(t as u64);
            } else if let Some(t) = e.upgrade() {
                stacker::maybe_grow(128 << 10, 4 << 20, || self.object(&t));
            } else {
                *self.out.last_mut().unwrap() = wire::WEAK_DEAD;
            }
        }
        self.out.push(wire::MAP);
        self.varint(node.attrs.len() as u64);
        let mut small = [("", 0); 4];
        if node.attrs.len() <= small.len() {
            for (slot, (k, v)) in small.iter_mut().zip(&node.attrs) {
                *slot = (k.as_str(), *v);
            }
            self.entries(&mut small[..node.attrs.len()]);
        } else {
            let mut all: Vec<(&str, u64)> =
                node.attrs.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            self.entries(&mut all);
        }
        self.open[id as usize] = false;
    }

    /// A map's entries, sorted by their encoded keys: a string key encodes
    /// as STR, its length and its bytes, so for keys shorter than 128
    /// bytes that is the order of (length, bytes).
    fn entries(&mut self, list: &mut [(&str, u64)]) {
        list.sort_unstable_by(|a, b| (a.0.len(), a.0.as_bytes()).cmp(&(b.0.len(), b.0.as_bytes())));
        for &(k, v) in list.iter() {
            self.out.push(wire::STR);
            self.name(k);
            self.uint(v);
        }
    }
}

/// G2 as plain numbers and names, read off a built graph (untimed), for
/// [`g2_dfs_build`].
pub struct G2Plan {
    nodes: Vec<PlannedNode>,
}

struct PlannedNode {
    id: u64,
    name: String,
    weight: u64,
    color: u64,
    edges: [u32; 4],
}

impl G2Plan {
    pub fn of(g: &crate::model::Graph) -> G2Plan {
        let index: rustc_hash::FxHashMap<usize, u32> = g
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (Rc::as_ptr(n) as usize, i as u32))
            .collect();
        let nodes = g
            .nodes
            .iter()
            .map(|n| {
                let n = n.borrow();
                PlannedNode {
                    id: n.id,
                    name: n.name.clone(),
                    weight: n.attrs["weight"],
                    color: n.attrs["color"],
                    edges: std::array::from_fn(|e| index[&(n.edges[e].as_ptr() as usize)]),
                }
            })
            .collect();
        G2Plan { nodes }
    }
}

/// A node of [`g2_dfs_build`]: being built (its weak handle from inside
/// `new_cyclic`) or built.
enum Slot {
    Unseen,
    Building(NodeWeak),
    Built(NodeRc),
}

/// The floor of any depth-first load of G2: the graph built natively in
/// the order a load of its depth-first save builds it. Each node through
/// `Rc::new_cyclic`, its name copied, an unbuilt edge target built right
/// there (recursion as deep as the walk), a built or half-built one
/// answered with a weak handle from a table of nodes. No decoding.
pub fn g2_dfs_build(plan: &G2Plan) -> crate::model::Graph {
    let mut slots: Vec<Slot> = (0..plan.nodes.len()).map(|_| Slot::Unseen).collect();
    let nodes = (0..plan.nodes.len())
        .map(|i| match &slots[i] {
            Slot::Built(rc) => rc.clone(),
            _ => build(plan, &mut slots, i),
        })
        .collect();
    crate::model::Graph { nodes }
}

fn build(plan: &G2Plan, slots: &mut Vec<Slot>, i: usize) -> NodeRc {
    let p = &plan.nodes[i];
    let rc = Rc::new_cyclic(|weak: &NodeWeak| {
        slots[i] = Slot::Building(weak.clone());
        let name = p.name.clone();
        let edges = p.edges.map(|t| match &slots[t as usize] {
            Slot::Building(w) => w.clone(),
            Slot::Built(rc) => Rc::downgrade(rc),
            Slot::Unseen => Rc::downgrade(&stacker::maybe_grow(128 << 10, 4 << 20, || {
                build(plan, slots, t as usize)
            })),
        });
        std::cell::RefCell::new(crate::model::Node {
            id: p.id,
            name,
            edges,
            attrs: std::collections::HashMap::from([
                ("weight".to_string(), p.weight),
                ("color".to_string(), p.color),
            ]),
        })
    });
    slots[i] = Slot::Built(rc.clone());
    rc
}

fn walk(n: &NodeRc, seen: &mut rustc_hash::FxHashMap<usize, u32>, acc: &mut u64) {
    let node = n.borrow();
    let id = seen.len() as u32;
    seen.insert(Rc::as_ptr(n) as usize, id);
    *acc = acc.wrapping_add(node.id) ^ node.name.len() as u64;
    for (k, v) in &node.attrs {
        *acc = acc.wrapping_add(*v) ^ k.as_bytes()[0] as u64;
    }
    for e in &node.edges {
        if seen.contains_key(&(e.as_ptr() as usize)) {
            continue;
        }
        if let Some(t) = e.upgrade() {
            stacker::maybe_grow(128 << 10, 4 << 20, || walk(&t, seen, acc));
        }
    }
}
