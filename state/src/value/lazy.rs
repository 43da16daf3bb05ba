//! Random access to one graph record: an index built by one validating
//! walk, then any value's children, or its scalar, decoded from its offset
//! when asked for. For tools that show a large checkpoint a piece at a time
//! (the `stateify mount` filesystem), where [`decode`](super::decode) would
//! build the whole tree.
//!
//! A stream is written in one pass, so a value in the middle depends on
//! what came before it: type ids are defined at their first use and object
//! ids are counted in order (§4, §5 of docs/FORMAT.md). The index keeps,
//! per type, where it was first used, and per object, where its id was given
//! and where its value is. A walk that starts at a value's offset takes the
//! definitions and the object count from before that offset and reads on as
//! the whole walk did. The index costs the type table plus 16 bytes per
//! shared object; nothing is kept per value.
//!
//! ```
//! use stateify::value::{Lazy, Node};
//! let bytes = stateify::to_vec(&vec![(1u8, "a".to_string()), (2, "b".into())]).unwrap();
//! let (len, _, h) = stateify::decode_header(&bytes).unwrap();
//! let lazy = Lazy::new(&bytes[h..h + len as usize], 1000).unwrap();
//! let items = lazy.children(lazy.root()).unwrap();
//! assert_eq!(items.len(), 2);
//! let second = lazy.children(items[1].loc).unwrap();
//! assert_eq!(second[1].name.to_string(), "1");
//! assert!(matches!(lazy.node(second[1].loc).unwrap(), Node::Leaf(v) if v.scalar_text() == "\"b\""));
//! ```

use crate::error::{Error, Result};
use crate::reader::Reader;
use crate::table::{TypeDef, TypeTable};
use crate::walk::{plain_leaf, plain_size, walk_graph_types, Leaf, Open, Slot, Visitor, Walk};
use crate::wire;

use super::{leaf_value, map_key, Builder, Value};

/// Where a value of a record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Loc {
    /// The value whose tag is at this offset of the record body.
    Value(u64),
    /// One struct of a packed struct array (`#[state(plain)]`): its record
    /// starts at `at`, its definition is type `ty`.
    Plain {
        /// Offset of the struct's bytes.
        at: u64,
        /// Its type id.
        ty: u32,
    },
    /// Field `field` of the packed struct at `at`.
    PlainMember {
        /// Offset of the struct's bytes.
        at: u64,
        /// Its type id.
        ty: u32,
        /// The field's position in the definition.
        field: u32,
    },
}

/// What a value is, without its contents.
#[derive(Clone, Debug, PartialEq)]
pub enum Node<'de> {
    /// A value without children: a number, string, packed array, `None`,
    /// `()`, or a variant without payload.
    Leaf(Value<'de>),
    /// A value with children ([`Lazy::children`]): its type (a struct's or
    /// variant's name, `seq`, `tuple`, `map`) and how many children.
    Dir {
        /// The type.
        ty: String,
        /// The number of children.
        len: usize,
        /// Children are named by index (a sequence, tuple or packed
        /// struct array), not by field or key.
        indexed: bool,
    },
    /// A shared object: where it is defined or referred to.
    Link(Link),
}

/// What a reference leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Shared object `id` ([`Lazy::object`]), by a strong or weak pointer.
    Object {
        /// The object's id.
        id: u64,
        /// Reached through a `Weak`.
        weak: bool,
    },
    /// A weak pointer whose object was gone when saved.
    DeadWeak,
}

/// What a child is, without decoding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// [`Node::Leaf`].
    Leaf,
    /// [`Node::Dir`].
    Dir,
    /// [`Node::Link`].
    Link,
}

/// A child's name in the path model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Name<'de> {
    /// An element of a sequence or tuple.
    Index(usize),
    /// A struct's field.
    Field(&'de str),
    /// A map entry, by its rendered key.
    Key(String),
}

impl std::fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Name::Index(i) => write!(f, "{i}"),
            Name::Field(s) => f.write_str(s),
            Name::Key(s) => f.write_str(s),
        }
    }
}

/// One child of a value.
#[derive(Clone, Debug, PartialEq)]
pub struct Child<'de> {
    /// Its name.
    pub name: Name<'de>,
    /// Where it is.
    pub loc: Loc,
    /// What it is.
    pub kind: Kind,
}

/// Where every `every`-th child of a value starts ([`Lazy::marks`]), so
/// that [`Lazy::children_from`] can start near the window it is asked for.
#[derive(Clone, Debug, Default)]
pub struct Marks {
    every: usize,
    /// The offset of child `i × every` (of a map entry: its key's).
    offsets: Vec<u64>,
}

impl Marks {
    /// The last mark at or before child `first`: its index and offset.
    fn before(&self, first: usize) -> Option<(usize, u64)> {
        let k = first.checked_div(self.every)?;
        self.offsets.get(k).map(|&off| (k * self.every, off))
    }
}

/// What [`Lazy::header`] reads.
struct Header<'a, 'de> {
    tag: u8,
    len: usize,
    first: u64,
    members: &'a [&'de str],
    packed: Option<(u64, u32)>,
}

/// An object's value offset before its `DEF` is met.
const UNSET: u64 = u64::MAX;

/// The index of one graph record; see the module docs.
pub struct Lazy<'de> {
    body: &'de [u8],
    types: Vec<TypeDef<'de>>,
    /// Per type: the offset of the value whose tag first used it.
    type_at: Vec<u64>,
    /// Per object: the offset of the value in which it got its id.
    obj_at: Vec<u64>,
    /// Per object: the offset of its value.
    obj_value: Vec<u64>,
    max_depth: usize,
}

/// Records, during the validating walk, where types and objects begin.
#[derive(Default)]
struct Index {
    last: u64,
    pending: Option<u64>,
    type_at: Vec<u64>,
    obj_at: Vec<u64>,
    obj_value: Vec<u64>,
}

impl<'de> Visitor<'de> for Index {
    fn at(&mut self, offset: u64) {
        if let Some(id) = self.pending.take() {
            self.obj_value[id as usize] = offset;
        }
        self.last = offset;
    }

    fn open(&mut self, open: Open, types: &TypeTable<'de>) -> Result<()> {
        // Types are defined only by the tag just read (before `open`).
        self.type_at.resize(types.defs.len(), self.last);
        if let Open::Object { id, .. } = open {
            if id as usize == self.obj_at.len() {
                self.obj_at.push(self.last);
                self.obj_value.push(UNSET);
            } else if self.obj_value[id as usize] != UNSET {
                // A `DEF` of an object that has its value.
                return Err(
                    Error::invalid(format!("object #{id} is given a second value")).at(self.last),
                );
            }
            // Its value is the next value to start.
            self.pending = Some(id);
        }
        Ok(())
    }

    fn leaf(&mut self, leaf: Leaf<'de>, _: &TypeTable<'de>) -> Result<()> {
        if let Leaf::Announced(_) = leaf {
            self.obj_at.push(self.last);
            self.obj_value.push(UNSET);
        }
        Ok(())
    }
}

/// Skips values, or builds one (a map key) while `on`.
struct Skim<'de> {
    on: bool,
    b: Builder<'de>,
}

impl<'de> Skim<'de> {
    fn new() -> Self {
        Skim {
            on: false,
            b: Builder::new(),
        }
    }

    fn take(&mut self) -> Result<Value<'de>> {
        self.b
            .root
            .take()
            .ok_or_else(|| Error::invalid("a value without contents"))
    }
}

impl<'de> Visitor<'de> for Skim<'de> {
    fn leaf(&mut self, leaf: Leaf<'de>, types: &TypeTable<'de>) -> Result<()> {
        if self.on {
            self.b.leaf(leaf, types)?;
        }
        Ok(())
    }
    fn open(&mut self, open: Open, types: &TypeTable<'de>) -> Result<()> {
        if self.on {
            self.b.open(open, types)?;
        }
        Ok(())
    }
    fn slot(&mut self, slot: Slot, types: &TypeTable<'de>) -> Result<()> {
        if self.on {
            self.b.slot(slot, types)?;
        }
        Ok(())
    }
    fn close(&mut self, open: Open) -> Result<()> {
        if self.on {
            self.b.close(open)?;
        }
        Ok(())
    }
}

impl<'de> Lazy<'de> {
    /// Indexes a graph record body (after its header), checking all of it
    /// as [`decode`](super::decode) does, nesting at most `max_depth`.
    pub fn new(body: &'de [u8], max_depth: usize) -> Result<Self> {
        let mut ix = Index::default();
        let (_, table) = walk_graph_types(body, &mut ix, max_depth)?;
        if let Some(id) = ix.obj_value.iter().position(|&v| v == UNSET) {
            return Err(Error::invalid(format!(
                "object #{id} was announced and never given a value"
            )));
        }
        Ok(Lazy {
            body,
            types: table.defs,
            type_at: ix.type_at,
            obj_at: ix.obj_at,
            obj_value: ix.obj_value,
            max_depth,
        })
    }

    /// The root value.
    pub fn root(&self) -> Loc {
        // After the format version byte.
        Loc::Value(1)
    }

    /// How many shared objects the record defines.
    pub fn objects(&self) -> u64 {
        self.obj_value.len() as u64
    }

    /// The value of shared object `id`.
    pub fn object(&self, id: u64) -> Option<Loc> {
        self.obj_value.get(id as usize).map(|&at| Loc::Value(at))
    }

    /// Runs `f` on a walk that starts at `at`, with the type definitions
    /// and the object count from before it.
    fn walk_at<V: Visitor<'de>, R>(
        &self,
        at: u64,
        v: &mut V,
        f: impl FnOnce(&mut Walk<'_, 'de, V>) -> Result<R>,
    ) -> Result<R> {
        let start = usize::try_from(at)
            .ok()
            .filter(|&s| s < self.body.len())
            .ok_or_else(|| Error::invalid(format!("no value at offset {at}")))?;
        let mut r = Reader::new(&self.body[start..], at);
        let known = self.type_at.partition_point(|&t| t < at);
        let mut types = TypeTable {
            defs: self.types[..known].to_vec(),
        };
        let mut w = Walk {
            r: &mut r,
            types: &mut types,
            v,
            depth: 0,
            max_depth: self.max_depth,
            objects: self.objects_before(at),
        };
        f(&mut w)
    }

    fn objects_before(&self, at: u64) -> u64 {
        self.obj_at.partition_point(|&t| t < at) as u64
    }

    /// The value at `at` without the wrappers that add no level of path
    /// (`Some`, a variant, a trait object): its offset, and the innermost
    /// variant's enum and variant names.
    fn unwrap(&self, at: u64) -> Result<(u64, Option<(&'de str, &'de str)>)> {
        self.walk_at(at, &mut Skim::new(), |w| {
            let mut variant = None;
            loop {
                let pos = w.r.offset();
                match w.r.u8()? {
                    wire::SOME => {}
                    wire::DYN => {
                        w.types.read_ref(w.r, wire::DYN)?;
                    }
                    wire::VARIANT => {
                        let ty = w.types.read_ref(w.r, wire::VARIANT)? as usize;
                        let idx = w.r.varint()?;
                        let def = &w.types.defs[ty];
                        let name = usize::try_from(idx)
                            .ok()
                            .and_then(|i| def.members.get(i))
                            .ok_or_else(|| {
                                Error::invalid(format!("variant index {idx} out of range")).at(pos)
                            })?;
                        variant = Some((def.name, *name));
                    }
                    _ => return Ok((pos, variant)),
                }
            }
        })
    }

    /// What the value at `loc` is.
    pub fn node(&self, loc: Loc) -> Result<Node<'de>> {
        let at = match loc {
            Loc::Value(at) => at,
            Loc::Plain { ty, .. } => {
                let def = self.plain_def(ty)?;
                return Ok(Node::Dir {
                    ty: def.name.to_string(),
                    len: def.plain.len(),
                    indexed: false,
                });
            }
            Loc::PlainMember { at, ty, field } => return self.plain_field(at, ty, field),
        };
        let (pos, variant) = self.unwrap(at)?;
        self.walk_at(pos, &mut Skim::new(), |w| {
            let dir = |ty: &str, len, indexed| {
                Ok(Node::Dir {
                    ty: ty.into(),
                    len,
                    indexed,
                })
            };
            let object = |id| Ok(Node::Link(Link::Object { id, weak: false }));
            match w.r.u8()? {
                wire::UNIT => match variant {
                    Some((ty, variant)) => Ok(Node::Leaf(Value::Variant {
                        ty,
                        variant,
                        value: Box::new(Value::Unit),
                    })),
                    None => Ok(Node::Leaf(Value::Unit)),
                },
                wire::OBJ | wire::OBJ_CYCLIC => object(self.objects_before(pos)),
                wire::REF | wire::DEF => object(w.r.varint()?),
                wire::WEAK => {
                    let id = match w.r.u8()? {
                        wire::OBJ | wire::OBJ_CYCLIC => self.objects_before(pos + 1),
                        // An announced object got its id at the `WEAK`.
                        wire::FWD => self.objects_before(pos),
                        _ => w.r.varint()?,
                    };
                    Ok(Node::Link(Link::Object { id, weak: true }))
                }
                wire::WEAK_DEAD => Ok(Node::Link(Link::DeadWeak)),
                wire::STRUCT => {
                    let ty = w.types.read_ref(w.r, wire::STRUCT)? as usize;
                    let def = &w.types.defs[ty];
                    dir(def.name, def.members.len(), false)
                }
                wire::SEQ => dir("seq", w.r.count(1)?, true),
                wire::TUPLE => dir("tuple", w.r.count(1)?, true),
                wire::MAP => dir("map", w.r.count(2)?, false),
                wire::PACKED_STRUCTS => {
                    let ty = w.types.read_ref(w.r, wire::PACKED_STRUCTS)? as usize;
                    let n = w.r.count(w.types.defs[ty].record)?;
                    dir("seq", n, true)
                }
                // A scalar: decoded whole, from its tag.
                _ => self.walk_at(pos, &mut Skim::new(), |w| {
                    w.v.on = true;
                    w.value()?;
                    w.v.take().map(Node::Leaf)
                }),
            }
        })
    }

    /// What kind of value is at `loc`, read from its tags alone (cheaper
    /// than [`Lazy::node`]).
    pub fn kind(&self, loc: Loc) -> Result<Kind> {
        let mut at = match loc {
            Loc::Value(at) => at,
            Loc::Plain { .. } => return Ok(Kind::Dir),
            Loc::PlainMember { .. } => return Ok(Kind::Leaf),
        };
        loop {
            let tag = usize::try_from(at)
                .ok()
                .and_then(|i| self.body.get(i))
                .ok_or_else(|| Error::invalid(format!("no value at offset {at}")))?;
            return Ok(match *tag {
                wire::SOME => {
                    at += 1;
                    continue;
                }
                // The payload's offset needs the type reference read.
                wire::VARIANT | wire::DYN => match self.node(Loc::Value(at))? {
                    Node::Leaf(_) => Kind::Leaf,
                    Node::Dir { .. } => Kind::Dir,
                    Node::Link(_) => Kind::Link,
                },
                wire::STRUCT | wire::SEQ | wire::TUPLE | wire::MAP | wire::PACKED_STRUCTS => {
                    Kind::Dir
                }
                wire::OBJ
                | wire::OBJ_CYCLIC
                | wire::REF
                | wire::DEF
                | wire::WEAK
                | wire::WEAK_DEAD => Kind::Link,
                _ => Kind::Leaf,
            });
        }
    }

    /// The children of the value at `loc`, with their names in the path
    /// model of [`Value::children`]: field names, indices, rendered map
    /// keys. Empty for a leaf or a link.
    pub fn children(&self, loc: Loc) -> Result<Vec<Child<'de>>> {
        self.children_from(loc, 0, usize::MAX, None)
    }

    /// Children `first..first + max` of the value at `loc` (as
    /// [`Lazy::children`]). With `marks` (from [`Lazy::marks`] of the same
    /// value), the walk starts at the last mark before `first` instead of at
    /// the first child, so a window deep into a long sequence costs what the
    /// window and at most one mark interval cost.
    pub fn children_from(
        &self,
        loc: Loc,
        first: usize,
        max: usize,
        marks: Option<&Marks>,
    ) -> Result<Vec<Child<'de>>> {
        let at = match loc {
            Loc::Value(at) => at,
            Loc::Plain { at, ty } => {
                let def = self.plain_def(ty)?;
                let n = def.plain.len();
                return Ok((first.min(n)..first.saturating_add(max).min(n))
                    .map(|field| Child {
                        name: Name::Field(def.members[field]),
                        loc: Loc::PlainMember {
                            at,
                            ty,
                            field: field as u32,
                        },
                        kind: Kind::Leaf,
                    })
                    .collect());
            }
            Loc::PlainMember { .. } => return Ok(Vec::new()),
        };
        let (pos, _) = self.unwrap(at)?;
        let h = self.header(pos)?;
        let end = first.saturating_add(max).min(h.len);
        if first >= end {
            return Ok(Vec::new());
        }
        if let Some((size, ty)) = h.packed {
            return Ok((first..end)
                .map(|i| Child {
                    name: Name::Index(i),
                    loc: Loc::Plain {
                        at: h.first + i as u64 * size,
                        ty,
                    },
                    kind: Kind::Dir,
                })
                .collect());
        }
        let (mut i, start) = match marks.and_then(|m| m.before(first)) {
            Some((m, off)) if m <= first && m < h.len => (m, off),
            _ => (0, h.first),
        };
        let mut skim = Skim::new();
        self.walk_at(start, &mut skim, |w| {
            let mut out = Vec::with_capacity(end - first);
            while i < end {
                let wanted = i >= first;
                let name = match h.tag {
                    wire::MAP => {
                        w.v.on = wanted;
                        w.value()?;
                        w.v.on = false;
                        match wanted {
                            true => Name::Key(map_key(i, &w.v.take()?)),
                            false => Name::Index(i),
                        }
                    }
                    wire::STRUCT => Name::Field(h.members[i]),
                    _ => Name::Index(i),
                };
                let child = w.r.offset();
                if wanted {
                    let loc = Loc::Value(child);
                    let kind = self.kind(loc)?;
                    out.push(Child { name, loc, kind });
                }
                i += 1;
                if i < end {
                    w.value()?;
                }
            }
            Ok(out)
        })
    }

    /// The offsets of children `0, every, 2 × every, …` of the value at
    /// `loc`, for [`Lazy::children_from`]: one walk over the value,
    /// `8 / every` bytes per child kept.
    pub fn marks(&self, loc: Loc, every: usize) -> Result<Marks> {
        let every = every.max(1);
        let none = Marks {
            every,
            offsets: Vec::new(),
        };
        let Loc::Value(at) = loc else {
            return Ok(none);
        };
        let (pos, _) = self.unwrap(at)?;
        let h = self.header(pos)?;
        if h.packed.is_some() || h.len == 0 {
            return Ok(none);
        }
        let offsets = self.walk_at(h.first, &mut Skim::new(), |w| {
            let mut out = Vec::with_capacity(h.len / every + 1);
            for i in 0..h.len {
                if i % every == 0 {
                    out.push(w.r.offset());
                }
                if h.tag == wire::MAP {
                    w.value()?;
                }
                w.value()?;
            }
            Ok(out)
        })?;
        Ok(Marks { every, offsets })
    }

    /// A composite's tag, its number of children and where the first
    /// starts; a struct's member names; a packed struct array's record size
    /// and type.
    fn header(&self, pos: u64) -> Result<Header<'_, 'de>> {
        self.walk_at(pos, &mut Skim::new(), |w| {
            let tag = w.r.u8()?;
            let mut h = Header {
                tag,
                len: 0,
                first: 0,
                members: &[],
                packed: None,
            };
            match tag {
                wire::STRUCT => {
                    let ty = w.types.read_ref(w.r, tag)? as usize;
                    h.members = &self.types[ty].members;
                    h.len = h.members.len();
                }
                wire::SEQ | wire::TUPLE => h.len = w.r.count(1)?,
                wire::MAP => h.len = w.r.count(2)?,
                wire::PACKED_STRUCTS => {
                    let ty = w.types.read_ref(w.r, tag)?;
                    let size = self.types[ty as usize].record;
                    h.len = w.r.count(size)?;
                    h.packed = Some((size as u64, ty));
                }
                _ => {}
            }
            h.first = w.r.offset();
            Ok(h)
        })
    }

    fn plain_def(&self, ty: u32) -> Result<&TypeDef<'de>> {
        self.types
            .get(ty as usize)
            .filter(|d| !d.plain.is_empty())
            .ok_or_else(|| Error::invalid(format!("type #{ty} is not a plain struct")))
    }

    fn plain_field(&self, at: u64, ty: u32, field: u32) -> Result<Node<'de>> {
        let def = self.plain_def(ty)?;
        let &(kind, shape) = def
            .plain
            .get(field as usize)
            .ok_or_else(|| Error::invalid(format!("no field {field} in `{}`", def.name)))?;
        let before: u64 = def.plain[..field as usize]
            .iter()
            .map(|&(k, s)| plain_size(k, s))
            .sum();
        let (start, end) = (at + before, at + before + plain_size(kind, shape));
        let bytes = usize::try_from(start)
            .ok()
            .zip(usize::try_from(end).ok())
            .and_then(|(s, e)| self.body.get(s..e))
            .ok_or_else(|| Error::invalid(format!("no packed struct at offset {at}")))?;
        Ok(Node::Leaf(leaf_value(plain_leaf(kind, shape, bytes))))
    }
}
