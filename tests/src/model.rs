//! The Rust types of the compatibility corpus, and how each is built and
//! described.
//!
//! **Frozen.** A corpus file loads into these types in every later version,
//! so they never change: a new shape is a new type (and a new corpus
//! entry), never an edit of one here. `describe` renders a loaded value as
//! text that is exact (float bits, sharing, weak targets) and does not
//! depend on the hash seed; the sidecar of each corpus file holds that text
//! and its digest.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::path::PathBuf;
use std::rc::{self, Rc};
use std::sync::{self, Arc, Mutex, RwLock};
use std::time::Duration;

use stateify::{AsAny, Stateify};

fn bits32(v: &[f32]) -> Vec<String> {
    v.iter().map(|f| format!("{:#010x}", f.to_bits())).collect()
}

fn bits64(v: &[f64]) -> Vec<String> {
    v.iter().map(|f| format!("{:#018x}", f.to_bits())).collect()
}

/// Whether elements `i` and `j` are one allocation (`None`: out of range;
/// describing a hostile load must not panic).
fn same<P>(v: &[P], i: usize, j: usize, eq: fn(&P, &P) -> bool) -> Option<bool> {
    Some(eq(v.get(i)?, v.get(j)?))
}

// ---- scalars: every integer width and encoding, floats, chars, strings ----

#[derive(Stateify)]
pub struct Scalars {
    /// small (0..=127), UINT and U64 boundaries.
    pub unsigned: Vec<Option<u64>>,
    /// NINT and the edges of i64.
    pub signed: Vec<Option<i64>>,
    pub narrow: (u8, i8, u16, i16, u32, i32),
    pub narrow_max: (u8, i8, u16, i16, u32, i32),
    pub narrow_min: (i8, i16, i32, i64),
    pub sizes: (usize, isize, isize),
    pub wide: Vec<Option<u128>>,
    pub wide_signed: Vec<Option<i128>>,
    pub f32s: Vec<Option<f32>>,
    pub f64s: Vec<Option<f64>>,
    pub chars: Vec<Option<char>>,
    pub flags: (bool, bool),
    pub strings: Vec<Option<String>>,
    pub boxed: Box<str>,
    pub unit: (),
    pub phantom: PhantomData<u32>,
}

impl Scalars {
    pub fn build() -> Scalars {
        Scalars {
            unsigned: [
                0,
                1,
                127,
                128,
                255,
                256,
                16_383,
                16_384,
                (1 << 21) - 1,
                1 << 21,
                u32::MAX as u64,
                (1 << 56) - 1,
                1 << 56,
                u64::MAX - 1,
                u64::MAX,
            ]
            .into_iter()
            .map(Some)
            .chain([None])
            .collect(),
            signed: [i64::MIN, i64::MIN + 1, -129, -128, -1, 0, 1, 127, i64::MAX]
                .into_iter()
                .map(Some)
                .collect(),
            narrow: (7, -7, 300, -300, 70_000, -70_000),
            narrow_max: (u8::MAX, i8::MAX, u16::MAX, i16::MAX, u32::MAX, i32::MAX),
            narrow_min: (i8::MIN, i16::MIN, i32::MIN, i64::MIN),
            sizes: (usize::MAX, isize::MIN, -2),
            wide: vec![
                Some(0),
                Some(u64::MAX as u128),
                Some(u64::MAX as u128 + 1),
                Some(u128::MAX),
            ],
            wide_signed: vec![
                Some(i128::MIN),
                Some(i64::MIN as i128 - 1),
                Some(-1),
                Some(i64::MAX as i128 + 1),
                Some(i128::MAX),
            ],
            f32s: [
                0.0,
                -0.0,
                1.5,
                f32::MIN_POSITIVE,
                f32::from_bits(1), // subnormal
                f32::INFINITY,
                f32::NEG_INFINITY,
                f32::from_bits(0x7fc0_1234), // quiet NaN with a payload
                f32::from_bits(0xff80_0001), // signalling NaN, sign set
            ]
            .into_iter()
            .map(Some)
            .collect(),
            f64s: [
                0.0,
                -0.0,
                std::f64::consts::PI,
                f64::MAX,
                f64::from_bits(1),
                f64::NEG_INFINITY,
                f64::from_bits(0x7ff8_0000_dead_beef),
            ]
            .into_iter()
            .map(Some)
            .collect(),
            chars: ['\0', 'a', '\u{7f}', 'é', '€', '\u{10ffff}']
                .into_iter()
                .map(Some)
                .collect(),
            flags: (true, false),
            strings: vec![
                Some(String::new()),
                Some("plain ascii".into()),
                Some("ünïcödé ✓ 🦀".into()),
                Some("x".repeat(200)),
                None,
            ],
            boxed: "boxed str".into(),
            unit: (),
            phantom: PhantomData,
        }
    }

    pub fn describe(&self) -> String {
        let f32s: Vec<Option<String>> = self
            .f32s
            .iter()
            .map(|f| f.map(|f| bits32(&[f]).remove(0)))
            .collect();
        let f64s: Vec<Option<String>> = self
            .f64s
            .iter()
            .map(|f| f.map(|f| bits64(&[f]).remove(0)))
            .collect();
        format!(
            "unsigned {:?}\nsigned {:?}\nnarrow {:?}\nnarrow_max {:?}\nnarrow_min {:?}\nsizes {:?}\n\
             wide {:?}\nwide_signed {:?}\nf32 bits {f32s:?}\nf64 bits {f64s:?}\nchars {:?}\nflags {:?}\n\
             strings {:?}\nboxed {:?}\nunit {:?}\n",
            self.unsigned,
            self.signed,
            self.narrow,
            self.narrow_max,
            self.narrow_min,
            self.sizes,
            self.wide,
            self.wide_signed,
            self.chars,
            self.flags,
            self.strings,
            self.boxed,
            self.unit,
        )
    }
}

// ---- packed sequences of every number kind, plain structs ----

#[derive(Stateify, Debug, Clone, Copy, PartialEq)]
#[state(plain, type_name = "corpus::Vertex")]
pub struct Vertex {
    pub pos: [f32; 3],
    pub color: u32,
}

#[derive(Stateify, Debug)]
pub struct Packed {
    pub bytes: Vec<u8>,
    pub byte_array: [u8; 16],
    pub i8s: Vec<i8>,
    pub u16s: Vec<u16>,
    pub i16s: Vec<i16>,
    pub u32s: Vec<u32>,
    pub i32s: Vec<i32>,
    pub u64s: Vec<u64>,
    pub i64s: Vec<i64>,
    pub u128s: Vec<u128>,
    pub i128s: Vec<i128>,
    pub f32s: Vec<f32>,
    pub f64s: Vec<f64>,
    pub f32_array: [f32; 4],
    pub empty: Vec<u32>,
    pub deque: VecDeque<u16>,
    pub boxed_slice: Box<[u16]>,
    pub vertices: Vec<Vertex>,
}

impl Packed {
    pub fn build() -> Packed {
        Packed {
            bytes: (0..=255).collect(),
            byte_array: *b"sixteen bytes!!\0",
            i8s: vec![i8::MIN, -1, 0, 1, i8::MAX],
            u16s: vec![0, 1, 0x1234, u16::MAX],
            i16s: vec![i16::MIN, -2, 2, i16::MAX],
            u32s: (0..40).map(|i| i * 0x0101_0101).collect(),
            i32s: vec![i32::MIN, -3, 3, i32::MAX],
            u64s: vec![0, 1 << 40, u64::MAX],
            i64s: vec![i64::MIN, -4, 4, i64::MAX],
            u128s: vec![0, u128::MAX, 1 << 100],
            i128s: vec![i128::MIN, -5, i128::MAX],
            f32s: vec![-0.0, 0.25, f32::from_bits(0x7fa0_0001), f32::INFINITY],
            f64s: vec![-0.0, 1e300, f64::from_bits(0xfff0_0000_0000_0042)],
            f32_array: [1.0, -1.0, 0.5, f32::from_bits(0x7fc0_0042)],
            empty: Vec::new(),
            deque: {
                // Wrapped: the two halves of the ring are not in order in
                // memory, the stream must still be front to back.
                let mut d = VecDeque::with_capacity(8);
                d.extend([1, 2, 3, 4, 5, 6]);
                d.drain(..4);
                d.extend([7, 8, 9, 10]);
                d
            },
            boxed_slice: vec![9, 8, 7].into_boxed_slice(),
            vertices: (0..5)
                .map(|i| Vertex {
                    pos: [i as f32, -(i as f32), 0.5 * i as f32],
                    color: 0xff00_0000 | i,
                })
                .collect(),
        }
    }

    pub fn describe(&self) -> String {
        let vertices: Vec<(Vec<String>, u32)> = self
            .vertices
            .iter()
            .map(|v| (bits32(&v.pos), v.color))
            .collect();
        format!(
            "bytes {:?}\nbyte_array {:?}\ni8 {:?}\nu16 {:?}\ni16 {:?}\nu32 {:?}\ni32 {:?}\nu64 {:?}\n\
             i64 {:?}\nu128 {:?}\ni128 {:?}\nf32 bits {:?}\nf64 bits {:?}\nf32_array bits {:?}\n\
             empty {:?}\ndeque {:?}\nboxed_slice {:?}\nvertices {vertices:?}\n",
            self.bytes,
            self.byte_array,
            self.i8s,
            self.u16s,
            self.i16s,
            self.u32s,
            self.i32s,
            self.u64s,
            self.i64s,
            self.u128s,
            self.i128s,
            bits32(&self.f32s),
            bits64(&self.f64s),
            bits32(&self.f32_array),
            self.empty,
            self.deque,
            self.boxed_slice,
        )
    }
}

// ---- compound values: options, tuples, arrays, enums, std types ----

#[derive(Stateify, Debug)]
#[state(type_name = "corpus::Event")]
pub enum Event {
    Idle,
    Key(char),
    Move(i32, i32),
    Click { x: u16, y: u16, button: Option<u8> },
    Nested(Box<Event>),
}

#[derive(Stateify, Debug)]
pub struct Compound {
    pub maybe: Option<Option<u32>>,
    pub nothing: Option<String>,
    pub pair: (u8, String),
    pub nested_tuple: (i64, (bool, char), Vec<u8>),
    pub names: [String; 3],
    pub empty_array: [String; 0],
    pub grid: Vec<Vec<i16>>,
    pub boxed: Box<(u32, String)>,
    pub events: Vec<Event>,
    pub ok: Result<u32, String>,
    pub err: Result<u32, String>,
    pub timeout: Duration,
    pub addrs: Vec<SocketAddr>,
    pub ips: (IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4),
    pub v6: SocketAddrV6,
    pub path: PathBuf,
    pub raw_path: PathBuf,
    pub cell: Cell<u32>,
    pub refcell: RefCell<Vec<String>>,
    pub mutex: Mutex<u32>,
    pub rwlock: RwLock<Option<String>>,
}

impl Compound {
    pub fn build() -> Compound {
        use std::os::unix::ffi::OsStringExt;
        Compound {
            maybe: Some(None),
            nothing: None,
            pair: (1, "one".into()),
            nested_tuple: (-9, (true, 'z'), vec![1, 2]),
            names: ["a".into(), "bb".into(), "ccc".into()],
            empty_array: [],
            grid: vec![vec![1, -1], vec![], vec![i16::MAX]],
            boxed: Box::new((5, "five".into())),
            events: vec![
                Event::Idle,
                Event::Key('k'),
                Event::Move(-3, 4),
                Event::Click {
                    x: 10,
                    y: 20,
                    button: Some(1),
                },
                Event::Nested(Box::new(Event::Nested(Box::new(Event::Idle)))),
            ],
            ok: Ok(200),
            err: Err("not found".into()),
            timeout: Duration::new(3, 141_592_653),
            addrs: vec![
                "127.0.0.1:8080"
                    .parse()
                    .unwrap_or(SocketAddr::from(([0; 4], 0))),
                SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 443, 7, 2)),
            ],
            ips: (
                IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
                Ipv4Addr::new(10, 1, 2, 3),
                Ipv6Addr::UNSPECIFIED,
                SocketAddrV4::new(Ipv4Addr::BROADCAST, 9),
            ),
            v6: SocketAddrV6::new(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 5), 53, 1, 0),
            path: "/var/lib/stateify/checkpoint".into(),
            raw_path: PathBuf::from(std::ffi::OsString::from_vec(b"not\xffutf8".to_vec())),
            cell: Cell::new(42),
            refcell: RefCell::new(vec!["in".into(), "cell".into()]),
            mutex: Mutex::new(7),
            rwlock: RwLock::new(Some("locked".into())),
        }
    }

    pub fn describe(&self) -> String {
        let mutex = *self.mutex.lock().unwrap_or_else(|e| e.into_inner());
        let rwlock = self
            .rwlock
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        format!(
            "maybe {:?}\nnothing {:?}\npair {:?}\nnested_tuple {:?}\nnames {:?}\nempty_array {:?}\n\
             grid {:?}\nboxed {:?}\nevents {:?}\nok {:?}\nerr {:?}\ntimeout {:?}\naddrs {:?}\n\
             ips {:?}\nv6 {:?}\npath {:?}\nraw_path {:?}\ncell {:?}\nrefcell {:?}\nmutex {mutex:?}\n\
             rwlock {rwlock:?}\n",
            self.maybe,
            self.nothing,
            self.pair,
            self.nested_tuple,
            self.names,
            self.empty_array,
            self.grid,
            self.boxed,
            self.events,
            self.ok,
            self.err,
            self.timeout,
            self.addrs,
            self.ips,
            self.v6,
            self.path,
            self.raw_path,
            self.cell.get(),
            self.refcell.borrow(),
        )
    }
}

// ---- hash and b-tree containers ----

#[derive(Stateify, Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[state(type_name = "corpus::Key")]
pub struct Key {
    pub zone: u8,
    pub name: String,
}

#[derive(Stateify)]
pub struct Collections {
    pub hash_map: HashMap<String, u32>,
    pub hash_set: HashSet<u64>,
    pub btree_map: BTreeMap<u32, Vec<String>>,
    pub btree_set: BTreeSet<String>,
    pub struct_keys: HashMap<Key, String>,
    pub nested: HashMap<u8, HashSet<i32>>,
    pub empty: HashMap<u8, u8>,
}

impl Collections {
    pub fn build() -> Collections {
        Collections {
            hash_map: (0..20).map(|i| (format!("key-{i}"), i * i)).collect(),
            hash_set: [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, u64::MAX]
                .into_iter()
                .collect(),
            btree_map: (0..4)
                .map(|i| (i * 1000, (0..i).map(|j| format!("v{j}")).collect()))
                .collect(),
            btree_set: ["pear", "apple", "fig"].map(String::from).into(),
            struct_keys: (0..6)
                .map(|i| {
                    let k = Key {
                        zone: 2 - i % 3,
                        name: format!("n{}", 5 - i),
                    };
                    (k, format!("value {i}"))
                })
                .collect(),
            nested: (0..3)
                .map(|i| (i, (0..i as i32 * 2).map(|j| -j).collect()))
                .collect(),
            empty: HashMap::new(),
        }
    }

    pub fn describe(&self) -> String {
        let sorted_nested: BTreeMap<_, BTreeSet<_>> = self
            .nested
            .iter()
            .map(|(k, v)| (k, v.iter().collect()))
            .collect();
        format!(
            "hash_map {:?}\nhash_set {:?}\nbtree_map {:?}\nbtree_set {:?}\nstruct_keys {:?}\n\
             nested {sorted_nested:?}\nempty {:?}\n",
            self.hash_map.iter().collect::<BTreeMap<_, _>>(),
            self.hash_set.iter().collect::<BTreeSet<_>>(),
            self.btree_map,
            self.btree_set,
            self.struct_keys.iter().collect::<BTreeMap<_, _>>(),
            self.empty,
        )
    }
}

// ---- sharing, weak cycles, dead weaks ----

#[derive(Stateify)]
#[state(type_name = "corpus::Node")]
pub struct Node {
    pub name: String,
    pub parent: rc::Weak<RefCell<Node>>,
    pub me: rc::Weak<RefCell<Node>>,
    pub kids: Vec<Rc<RefCell<Node>>>,
}

#[derive(Stateify)]
pub struct Sharing {
    /// A weak reference that meets a cyclic object first (WEAK OBJ_CYCLIC);
    /// `island` below keeps it.
    pub island_weak: rc::Weak<RefCell<Node>>,
    pub tree: Rc<RefCell<Node>>,
    /// A node of the tree reached again from outside it.
    pub again: Rc<RefCell<Node>>,
    /// A weak reference met before the strong one that keeps its target.
    pub forward: rc::Weak<String>,
    pub strings: Vec<Rc<String>>,
    pub arcs: (Arc<Vec<u32>>, Arc<Vec<u32>>),
    pub counters: Vec<Arc<Mutex<u64>>>,
    pub table: Arc<RwLock<BTreeMap<u32, String>>>,
    pub table_weak: sync::Weak<RwLock<BTreeMap<u32, String>>>,
    /// Its target was dropped before the save.
    pub dead: rc::Weak<String>,
    /// `Weak::new()`: never had a target.
    pub never: rc::Weak<String>,
    pub dead_arc: sync::Weak<u32>,
    pub island: Rc<RefCell<Node>>,
}

fn root_node(name: &str) -> Rc<RefCell<Node>> {
    Rc::new_cyclic(|me| {
        RefCell::new(Node {
            name: name.into(),
            parent: rc::Weak::new(),
            me: me.clone(),
            kids: Vec::new(),
        })
    })
}

fn node(name: &str, parent: &Rc<RefCell<Node>>) -> Rc<RefCell<Node>> {
    let n = Rc::new_cyclic(|me| {
        RefCell::new(Node {
            name: name.into(),
            parent: Rc::downgrade(parent),
            me: me.clone(),
            kids: Vec::new(),
        })
    });
    parent.borrow_mut().kids.push(n.clone());
    n
}

impl Sharing {
    pub fn build() -> Sharing {
        let root = root_node("root");
        let island = root_node("island");
        node("islet", &island);
        let a = node("a", &root);
        let b = node("b", &root);
        node("a1", &a);
        node("b1", &b);
        let s = Rc::new("shared".to_string());
        let later = Rc::new("reached weakly first".to_string());
        let v = Arc::new(vec![1, 2, 3]);
        let c = Arc::new(Mutex::new(99));
        let table = Arc::new(RwLock::new(BTreeMap::from([(1, "one".to_string())])));
        let gone = Rc::new("gone".to_string());
        let dead = Rc::downgrade(&gone);
        drop(gone);
        let gone_arc = Arc::new(5u32);
        let dead_arc = Arc::downgrade(&gone_arc);
        drop(gone_arc);
        Sharing {
            island_weak: Rc::downgrade(&island),
            tree: root,
            again: b,
            forward: Rc::downgrade(&later),
            strings: vec![s.clone(), later, s],
            arcs: (v.clone(), v),
            counters: vec![c.clone(), Arc::new(Mutex::new(1)), c],
            table_weak: Arc::downgrade(&table),
            table,
            dead,
            never: rc::Weak::new(),
            dead_arc,
            island,
        }
    }

    pub fn describe(&self) -> String {
        let mut out = String::new();
        // Counts first, before the walk below holds clones.
        let _ = writeln!(
            out,
            "strong counts: tree {} again {} strings[0] {:?} arcs {}",
            Rc::strong_count(&self.tree),
            Rc::strong_count(&self.again),
            self.strings.first().map(Rc::strong_count),
            Arc::strong_count(&self.arcs.0)
        );
        // The tree, numbering nodes in depth-first order.
        let mut nodes: Vec<Rc<RefCell<Node>>> = Vec::new();
        fn walk(n: &Rc<RefCell<Node>>, nodes: &mut Vec<Rc<RefCell<Node>>>) {
            nodes.push(n.clone());
            for k in &n.borrow().kids {
                walk(k, nodes);
            }
        }
        walk(&self.tree, &mut nodes);
        let index = |n: &Rc<RefCell<Node>>| nodes.iter().position(|m| Rc::ptr_eq(m, n));
        for (i, n) in nodes.iter().enumerate() {
            let n = n.borrow();
            let parent = n.parent.upgrade().map(|p| index(&p));
            let me = n.me.upgrade().map(|m| index(&m));
            let kids: Vec<_> = n.kids.iter().map(&index).collect();
            let _ = writeln!(
                out,
                "node #{i} {:?} parent {parent:?} me {me:?} kids {kids:?}",
                n.name
            );
        }
        let _ = writeln!(out, "again is node {:?}", index(&self.again));
        let island = self.island.borrow();
        let islet = island.kids.first().map(|k| k.borrow());
        let _ = writeln!(
            out,
            "island {:?} me is island: {} weak is island: {} kids {:?} islet's parent is island: {:?}",
            island.name,
            island.me.upgrade().is_some_and(|m| Rc::ptr_eq(&m, &self.island)),
            self.island_weak.upgrade().is_some_and(|m| Rc::ptr_eq(&m, &self.island)),
            island.kids.iter().map(|k| k.borrow().name.clone()).collect::<Vec<_>>(),
            islet.map(|k| k.parent.upgrade().is_some_and(|p| Rc::ptr_eq(&p, &self.island))),
        );
        let _ = writeln!(
            out,
            "strings {:?}",
            self.strings.iter().map(|s| s.as_str()).collect::<Vec<_>>()
        );
        let _ = writeln!(
            out,
            "strings[0] is strings[2]: {:?}, strings[1] is strings[0]: {:?}",
            same(&self.strings, 0, 2, Rc::ptr_eq),
            same(&self.strings, 1, 0, Rc::ptr_eq)
        );
        let forward = self.forward.upgrade();
        let _ = writeln!(
            out,
            "forward -> {:?}, is strings[1]: {}",
            forward.as_deref(),
            forward
                .as_ref()
                .is_some_and(|f| self.strings.get(1).is_some_and(|s| Rc::ptr_eq(f, s)))
        );
        let _ = writeln!(
            out,
            "arcs {:?} shared {}",
            self.arcs.0,
            Arc::ptr_eq(&self.arcs.0, &self.arcs.1)
        );
        let counters: Vec<u64> = self
            .counters
            .iter()
            .map(|c| *c.lock().unwrap_or_else(|e| e.into_inner()))
            .collect();
        let _ = writeln!(
            out,
            "counters {counters:?} [0] is [2]: {:?} [0] is [1]: {:?}",
            same(&self.counters, 0, 2, Arc::ptr_eq),
            same(&self.counters, 0, 1, Arc::ptr_eq)
        );
        let _ = writeln!(
            out,
            "table {:?} weak is table: {}",
            *self.table.read().unwrap_or_else(|e| e.into_inner()),
            self.table_weak
                .upgrade()
                .is_some_and(|t| Arc::ptr_eq(&t, &self.table))
        );
        let _ = writeln!(
            out,
            "dead {:?} never {:?} dead_arc {:?}",
            self.dead.upgrade(),
            self.never.upgrade(),
            self.dead_arc.upgrade()
        );
        out
    }
}

// ---- trait objects ----

pub trait Shape: AsAny {
    fn describe(&self) -> String;
}

#[derive(Stateify)]
#[state(type_name = "corpus::Circle")]
pub struct Circle {
    pub radius: u32,
}

#[derive(Stateify)]
#[state(type_name = "corpus::Label")]
pub struct Label {
    pub text: String,
    pub at: (i32, i32),
}

impl Shape for Circle {
    fn describe(&self) -> String {
        format!("circle r={}", self.radius)
    }
}

impl Shape for Label {
    fn describe(&self) -> String {
        format!("label {:?} at {:?}", self.text, self.at)
    }
}

stateify::register_dyn!(dyn Shape {
    "corpus::Circle" => Circle,
    "corpus::Label" => Label,
});

#[derive(Stateify)]
pub struct Shapes {
    pub boxed: Vec<Box<dyn Shape>>,
    pub shared: Vec<Rc<dyn Shape>>,
    pub synced: Vec<Arc<dyn Shape>>,
}

impl Shapes {
    pub fn build() -> Shapes {
        let c: Rc<dyn Shape> = Rc::new(Circle { radius: 3 });
        let l: Arc<dyn Shape> = Arc::new(Label {
            text: "hello".into(),
            at: (-1, 2),
        });
        Shapes {
            boxed: vec![
                Box::new(Circle { radius: 1 }),
                Box::new(Label {
                    text: "boxed".into(),
                    at: (0, 0),
                }),
            ],
            shared: vec![c.clone(), Rc::new(Circle { radius: 4 }), c],
            synced: vec![l.clone(), l],
        }
    }

    pub fn describe(&self) -> String {
        let boxed: Vec<String> = self.boxed.iter().map(|s| s.describe()).collect();
        let shared: Vec<String> = self.shared.iter().map(|s| s.describe()).collect();
        let synced: Vec<String> = self.synced.iter().map(|s| s.describe()).collect();
        format!(
            "boxed {boxed:?}\nshared {shared:?} [0] is [2]: {:?} [0] is [1]: {:?}\nsynced {synced:?} [0] is [1]: {:?}\n",
            same(&self.shared, 0, 2, Rc::ptr_eq),
            same(&self.shared, 0, 1, Rc::ptr_eq),
            same(&self.synced, 0, 1, Arc::ptr_eq),
        )
    }
}

// ---- evolution: an old type and the newer one that loads its files ----

pub mod old {
    use stateify::Stateify;

    #[derive(Stateify, Debug)]
    #[state(type_name = "corpus::Mode")]
    pub enum Mode {
        Active,
        Paused { since: u64 },
    }

    /// The first version of a config type.
    #[derive(Stateify, Debug)]
    #[state(type_name = "corpus::Config")]
    pub struct Config {
        pub name: String,
        pub port: u16,
        pub legacy_flag: bool,
        pub peers: Vec<String>,
        pub mode: Mode,
    }

    impl Config {
        pub fn build() -> Vec<Config> {
            vec![
                Config {
                    name: "alpha".into(),
                    port: 8080,
                    legacy_flag: true,
                    peers: vec!["b".into(), "c".into()],
                    mode: Mode::Active,
                },
                Config {
                    name: "beta".into(),
                    port: 9090,
                    legacy_flag: false,
                    peers: vec![],
                    mode: Mode::Paused { since: 1234 },
                },
            ]
        }
    }
}

pub mod newer {
    use stateify::Stateify;

    /// One variant more than `old::Mode`.
    #[derive(Stateify, Debug)]
    #[state(type_name = "corpus::Mode")]
    pub enum Mode {
        Active,
        Draining { left: u32 },
        Paused { since: u64 },
    }

    fn default_mtu() -> u32 {
        1500
    }

    /// `old::Config` a version later: `port` renamed (the old name an
    /// alias), `legacy_flag` dropped (ignored on load), fields reordered,
    /// two added with defaults.
    #[derive(Stateify, Debug)]
    #[state(type_name = "corpus::Config", ignore_unknown)]
    pub struct Config {
        pub mode: Mode,
        pub name: String,
        #[state(rename = "listen_port", alias = "port")]
        pub listen_port: u16,
        pub peers: Vec<String>,
        #[state(default)]
        pub timeout_ms: u64,
        #[state(default = "default_mtu")]
        pub mtu: u32,
    }
}

pub fn describe_debug<T: std::fmt::Debug>(v: &T) -> String {
    format!("{v:#?}\n")
}

// ---- graph format 2: forward references ----

#[derive(Stateify)]
#[state(type_name = "corpus::Endpoint")]
pub struct Endpoint {
    pub port: u16,
    pub stack: rc::Weak<RefCell<NetStack>>,
}

#[derive(Stateify)]
#[state(type_name = "corpus::NetStack")]
pub struct NetStack {
    pub name: String,
    pub endpoints: Vec<Rc<RefCell<Endpoint>>>,
}

#[derive(Stateify)]
#[state(type_name = "corpus::Room")]
pub struct Room {
    pub name: String,
    pub occupants: Vec<rc::Weak<RefCell<Player>>>,
}

#[derive(Stateify)]
#[state(type_name = "corpus::Player")]
pub struct Player {
    pub name: String,
    pub room: Rc<RefCell<Room>>,
}

/// Orders that need forward references: endpoints reached through an fd
/// table before the stack that owns them, and players who own their room
/// (which lists them weakly).
#[derive(Stateify)]
pub struct Forward {
    pub fds: Vec<Rc<RefCell<Endpoint>>>,
    pub stack: Rc<RefCell<NetStack>>,
    pub players: Vec<Rc<RefCell<Player>>>,
}

/// An endpoint whose stack is kept alive only outside the graph: announced
/// where the endpoint's weak reference is, its value follows the root, and
/// after a load nothing holds it (the weak reference reads dead).
#[derive(Stateify)]
pub struct Outside {
    pub spare: Rc<RefCell<Endpoint>>,
}

impl Outside {
    /// The value, and what keeps its stack alive while it is saved.
    pub fn build() -> (Outside, Rc<RefCell<NetStack>>) {
        let outside = Rc::new(RefCell::new(NetStack {
            name: "outside".into(),
            endpoints: vec![],
        }));
        let spare = Rc::new(RefCell::new(Endpoint {
            port: 9,
            stack: Rc::downgrade(&outside),
        }));
        outside.borrow_mut().endpoints.push(spare.clone());
        (Outside { spare }, outside)
    }

    pub fn describe(&self) -> String {
        let spare = self.spare.borrow();
        format!(
            "spare port {} stack {:?}, strong count {}\n",
            spare.port,
            spare.stack.upgrade().map(|s| s.borrow().name.clone()),
            Rc::strong_count(&self.spare)
        )
    }
}

impl Forward {
    pub fn build() -> Forward {
        let stack = Rc::new(RefCell::new(NetStack {
            name: "main".into(),
            endpoints: vec![],
        }));
        let fds: Vec<_> = [80, 443, 22]
            .map(|port| {
                Rc::new(RefCell::new(Endpoint {
                    port,
                    stack: Rc::downgrade(&stack),
                }))
            })
            .into();
        stack.borrow_mut().endpoints = vec![fds[1].clone(), fds[0].clone(), fds[2].clone()];
        let rooms: Vec<_> = ["hall", "attic"]
            .map(|name| {
                Rc::new(RefCell::new(Room {
                    name: name.into(),
                    occupants: vec![],
                }))
            })
            .into();
        let players: Vec<_> = (0..5)
            .map(|i| {
                let room = rooms[i % 2].clone();
                let p = Rc::new(RefCell::new(Player {
                    name: format!("p{i}"),
                    room: room.clone(),
                }));
                room.borrow_mut().occupants.push(Rc::downgrade(&p));
                p
            })
            .collect();
        Forward {
            fds,
            stack,
            players,
        }
    }

    pub fn describe(&self) -> String {
        let mut out = String::new();
        let stack = self.stack.borrow();
        for (i, e) in self.fds.iter().enumerate() {
            let e = e.borrow();
            let _ = writeln!(
                out,
                "fd {i}: port {} stack is the stack: {}",
                e.port,
                e.stack
                    .upgrade()
                    .is_some_and(|s| Rc::ptr_eq(&s, &self.stack))
            );
        }
        let owned: Vec<Option<usize>> = stack
            .endpoints
            .iter()
            .map(|e| self.fds.iter().position(|f| Rc::ptr_eq(f, e)))
            .collect();
        let _ = writeln!(out, "stack {:?} endpoints are fds {owned:?}", stack.name);
        for (i, p) in self.players.iter().enumerate() {
            let p = p.borrow();
            let room = p.room.borrow();
            let listed: Vec<Option<usize>> = room
                .occupants
                .iter()
                .map(|w| {
                    w.upgrade()
                        .and_then(|o| self.players.iter().position(|q| Rc::ptr_eq(q, &o)))
                })
                .collect();
            let _ = writeln!(
                out,
                "player {i} {:?} in {:?}, which lists players {listed:?}",
                p.name, room.name
            );
        }
        out
    }
}

// ---- the serde bridge: serde types as fields, self-described ----

/// Serde types written through `#[state(serde)]`, `Serde<T>` and
/// `#[state(postcard)]`: every serde data-model shape, the attributes that
/// change what is written, and a hash map (written in key order).
pub mod serde_types {
    use std::collections::{BTreeMap, HashMap};

    use serde::{Deserialize, Serialize};
    use stateify::serde::Serde;
    use stateify::Stateify;

    #[derive(Serialize, Deserialize, Debug)]
    pub struct Settings {
        #[serde(rename = "display-name")]
        pub name: String,
        #[serde(default)]
        pub retries: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub note: Option<String>,
        pub width: Meters,
        pub origin: Point,
        pub marker: Marker,
        pub mode: Mode,
        pub backend: Backend,
        pub level: Level,
        pub port: Port,
        pub labels: HashMap<String, i64>,
        pub ordered: BTreeMap<u8, Vec<i16>>,
        pub wide: (u128, i128, char, f32, f64, (), bool),
    }

    #[derive(Serialize, Deserialize, Debug)]
    pub struct Meters(pub f64);

    #[derive(Serialize, Deserialize, Debug)]
    pub struct Point(pub i32, pub i32);

    #[derive(Serialize, Deserialize, Debug)]
    pub struct Marker;

    #[derive(Serialize, Deserialize, Debug)]
    pub enum Mode {
        Off,
        Fixed(u32),
        Pair(i8, i8),
        Ranged { lo: i64, hi: i64 },
    }

    #[derive(Serialize, Deserialize, Debug)]
    #[serde(tag = "kind")]
    pub enum Backend {
        Disk { path: String },
        Memory { bytes: u64 },
    }

    #[derive(Serialize, Deserialize, Debug)]
    #[serde(tag = "t", content = "c")]
    pub enum Level {
        Quiet,
        Verbose(u8),
    }

    #[derive(Serialize, Deserialize, Debug)]
    #[serde(untagged)]
    pub enum Port {
        Number(u16),
        Named(String),
    }

    #[derive(Stateify)]
    pub struct SerdeFields {
        #[state(serde)]
        pub settings: Vec<Settings>,
        pub wrapped: Vec<Serde<Mode>>,
        #[state(postcard)]
        pub opaque: BTreeMap<String, (u32, Vec<i64>)>,
        pub count: u32,
    }

    fn settings(i: u32) -> Settings {
        Settings {
            name: format!("svc-{i}"),
            retries: i,
            note: (i == 0).then(|| "first".to_string()),
            width: Meters(1.5 * i as f64),
            origin: Point(-(i as i32), i as i32),
            marker: Marker,
            mode: [
                Mode::Off,
                Mode::Fixed(i),
                Mode::Pair(-1, 1),
                Mode::Ranged { lo: -5, hi: 5 },
            ]
            .into_iter()
            .nth(i as usize % 4)
            .unwrap_or(Mode::Off),
            backend: if i % 2 == 0 {
                Backend::Disk {
                    path: format!("/var/{i}"),
                }
            } else {
                Backend::Memory { bytes: 1 << i }
            },
            level: if i % 2 == 0 {
                Level::Quiet
            } else {
                Level::Verbose(i as u8)
            },
            port: if i % 2 == 0 {
                Port::Number(8000)
            } else {
                Port::Named("http".into())
            },
            labels: (0..4)
                .map(|k| (format!("label{k}"), k as i64 - 2))
                .collect(),
            ordered: (0..3)
                .map(|k| (k * 7, vec![-(k as i16), k as i16]))
                .collect(),
            wide: (u128::MAX, i128::MIN, 'ß', f32::NAN, -0.0, (), true),
        }
    }

    impl SerdeFields {
        pub fn build() -> SerdeFields {
            SerdeFields {
                settings: (0..3).map(settings).collect(),
                wrapped: vec![
                    Serde(Mode::Off),
                    Serde(Mode::Ranged {
                        lo: i64::MIN,
                        hi: i64::MAX,
                    }),
                ],
                opaque: [
                    ("a".to_string(), (1, vec![-1, 2])),
                    ("b".into(), (2, vec![])),
                ]
                .into(),
                count: 7,
            }
        }

        pub fn describe(&self) -> String {
            // Debug of everything, but the hash map in key order and the
            // floats as bits (NaN, -0.0).
            let mut out = String::new();
            for s in &self.settings {
                let labels: BTreeMap<_, _> = s.labels.iter().collect();
                out.push_str(&format!(
                    "Settings {{ name: {:?}, retries: {}, note: {:?}, width: {:#018x}, origin: {:?}, marker: {:?}, mode: {:?}, backend: {:?}, level: {:?}, port: {:?}, labels: {:?}, ordered: {:?}, wide: ({}, {}, {:?}, {:#010x}, {:#018x}, {:?}, {}) }}\n",
                    s.name, s.retries, s.note, s.width.0.to_bits(), s.origin, s.marker, s.mode,
                    s.backend, s.level, s.port, labels, s.ordered, s.wide.0, s.wide.1, s.wide.2,
                    s.wide.3.to_bits(), s.wide.4.to_bits(), s.wide.5, s.wide.6
                ));
            }
            let modes: Vec<&Mode> = self.wrapped.iter().map(|m| &m.0).collect();
            out.push_str(&format!(
                "wrapped: {modes:?}\nopaque: {:?}\ncount: {}\n",
                self.opaque, self.count
            ));
            out
        }
    }
}
