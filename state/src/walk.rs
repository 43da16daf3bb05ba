//! A type-free walk over one encoded value, for code that has no Rust types:
//! skipping unknown fields, the pretty printer, and inspection tools.
//!
//! The walk validates as it goes (lengths, UTF-8, type and object ids) and
//! reports events to a [`Visitor`]. Nesting is bounded by a depth limit and
//! the stack grows on the heap when needed, so hostile input can neither
//! overflow the stack nor make the walk allocate more than it reads.

use crate::error::{Error, ErrorKind, Result};
use crate::reader::Reader;
use crate::table::TypeTable;
use crate::wire::{self, Packed};

/// A scalar or reference found in the stream.
#[derive(Debug, Clone, Copy)]
pub enum Leaf<'de> {
    Unit,
    Bool(bool),
    UInt(u64),
    /// The integer `-1 - n`.
    NInt(u64),
    U128(u128),
    I128(i128),
    F32(u32),
    F64(u64),
    Char(u32),
    Str(&'de str),
    Packed(Packed, &'de [u8]),
    None,
    Ref(u64),
    WeakDead,
    /// After a weak tag: a new object (this id) whose value comes later,
    /// as an [`Open::Object`] of the same id (format version 2).
    Announced(u64),
}

/// A composite value being entered.
#[derive(Debug, Clone, Copy)]
pub enum Open {
    Seq(usize),
    Map(usize),
    Tuple(usize),
    Some,
    Struct(u32),
    Variant(u32, u32),
    Object { id: u64, cyclic: bool },
    Weak,
    Dyn(u32),
}

/// Where the next child value sits in its parent.
#[derive(Debug, Clone, Copy)]
#[allow(dead_code)] // the positions are for path-based tools; the printer needs only the kind
pub enum Slot {
    Index(usize),
    Key(usize),
    Value(usize),
    Field(u32, usize),
}

/// Receives the events of a walk.
pub trait Visitor<'de> {
    fn leaf(&mut self, _leaf: Leaf<'de>, _types: &TypeTable<'de>) -> Result<()> {
        Ok(())
    }
    fn open(&mut self, _open: Open, _types: &TypeTable<'de>) -> Result<()> {
        Ok(())
    }
    fn slot(&mut self, _slot: Slot, _types: &TypeTable<'de>) -> Result<()> {
        Ok(())
    }
    fn close(&mut self, _open: Open) -> Result<()> {
        Ok(())
    }
    /// A value starts at `offset` of the record body (before its tag is
    /// read; for a weak reference's announced object, the `WEAK` tag).
    fn at(&mut self, _offset: u64) {}
    /// A composite value spanned bytes `start..end` of the record body.
    fn span(&mut self, _open: Open, _start: u64, _end: u64) {}
    /// The root value is done; the values of announced objects that no
    /// strong reference reached follow, each an [`Open::Object`].
    fn after_root(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Limits of a walk.
pub(crate) struct Walk<'a, 'de, V> {
    pub r: &'a mut Reader<'de>,
    pub types: &'a mut TypeTable<'de>,
    pub v: &'a mut V,
    pub depth: usize,
    pub max_depth: usize,
    /// Shared objects defined so far, counting those before the walk: the
    /// next object's id (a `REF` must point below it).
    pub objects: u64,
}

impl<'de, V: Visitor<'de>> Walk<'_, 'de, V> {
    /// Defines a new shared object: its id.
    fn new_object(&mut self) -> u64 {
        self.objects += 1;
        self.objects - 1
    }

    fn nested(&mut self, open: Open, at: u64) -> Result<()> {
        if self.depth >= self.max_depth {
            return Err(self
                .r
                .error(Error::new(ErrorKind::DepthLimit(self.max_depth))));
        }
        self.v.open(open, self.types)?;
        self.depth += 1;
        let res = crate::mem::grow_stack(|| self.children(open));
        self.depth -= 1;
        res?;
        self.v.span(open, at, self.r.offset());
        self.v.close(open)
    }

    fn children(&mut self, open: Open) -> Result<()> {
        match open {
            Open::Seq(n) | Open::Tuple(n) => {
                for i in 0..n {
                    self.v.slot(Slot::Index(i), self.types)?;
                    self.value()?;
                }
            }
            Open::Map(n) => {
                for i in 0..n {
                    self.v.slot(Slot::Key(i), self.types)?;
                    self.value()?;
                    self.v.slot(Slot::Value(i), self.types)?;
                    self.value()?;
                }
            }
            Open::Struct(ty) => {
                let n = self.types.defs[ty as usize].members.len();
                for i in 0..n {
                    self.v.slot(Slot::Field(ty, i), self.types)?;
                    self.value()?;
                }
            }
            Open::Some | Open::Variant(..) | Open::Object { .. } | Open::Dyn(_) => self.value()?,
            Open::Weak => {
                let at = self.r.offset();
                match self.r.peek()? {
                    wire::OBJ | wire::OBJ_CYCLIC | wire::REF | wire::DEF => self.value()?,
                    wire::FWD => {
                        self.r.u8()?;
                        let id = self.new_object();
                        self.v.leaf(Leaf::Announced(id), self.types)?;
                    }
                    t => {
                        return Err(Error::mismatch(
                            "object or reference after WEAK",
                            wire::tag_name(t),
                        )
                        .at(at))
                    }
                }
            }
        }
        Ok(())
    }

    /// A packed struct array, reported as the sequence of structs it
    /// stands for (each field a number or a packed array), so visitors see
    /// the same events as for a sequence of ordinary structs.
    fn packed_structs(&mut self, ty: u32, n: usize, at: u64) -> Result<()> {
        if self.depth + 2 > self.max_depth {
            return Err(self
                .r
                .error(Error::new(ErrorKind::DepthLimit(self.max_depth))));
        }
        let seq = Open::Seq(n);
        self.v.open(seq, self.types)?;
        let fields = self.types.defs[ty as usize].plain.len();
        for i in 0..n {
            self.v.slot(Slot::Index(i), self.types)?;
            let start = self.r.offset();
            self.v.open(Open::Struct(ty), self.types)?;
            for j in 0..fields {
                self.v.slot(Slot::Field(ty, j), self.types)?;
                let (kind, shape) = self.types.defs[ty as usize].plain[j];
                let bytes = self.r.bytes(plain_size(kind, shape))?;
                self.v.leaf(plain_leaf(kind, shape, bytes), self.types)?;
            }
            self.v.span(Open::Struct(ty), start, self.r.offset());
            self.v.close(Open::Struct(ty))?;
        }
        self.v.span(seq, at, self.r.offset());
        self.v.close(seq)
    }

    /// Walks one value.
    pub fn value(&mut self) -> Result<()> {
        let at = self.r.offset();
        self.v.at(at);
        let tag = self.r.u8()?;
        let leaf = match tag {
            wire::SMALL..=0xff => Leaf::UInt((tag - wire::SMALL) as u64),
            wire::UNIT => Leaf::Unit,
            wire::FALSE => Leaf::Bool(false),
            wire::TRUE => Leaf::Bool(true),
            wire::UINT => Leaf::UInt(self.r.varint()?),
            wire::NINT => Leaf::NInt(self.r.varint()?),
            wire::U64 => Leaf::UInt(u64::from_le_bytes(self.r.array()?)),
            wire::F32 => Leaf::F32(u32::from_le_bytes(self.r.array()?)),
            wire::F64 => Leaf::F64(u64::from_le_bytes(self.r.array()?)),
            wire::CHAR => Leaf::Char(self.r.varint()?.try_into().unwrap_or(u32::MAX)),
            wire::STR => Leaf::Str(self.r.str()?),
            wire::U128 => Leaf::U128(u128::from_le_bytes(self.r.array()?)),
            wire::I128 => Leaf::I128(i128::from_le_bytes(self.r.array()?)),
            wire::NONE => Leaf::None,
            wire::WEAK_DEAD => Leaf::WeakDead,
            wire::PACKED => {
                let kind_at = self.r.offset();
                let kind = Packed::from_byte(self.r.u8()?)
                    .ok_or_else(|| Error::invalid("unknown packed element kind").at(kind_at))?;
                let n = self.r.count(kind.size())?;
                Leaf::Packed(kind, self.r.bytes((n * kind.size()) as u64)?)
            }
            wire::REF => {
                let id = self.r.varint()?;
                if id >= self.objects {
                    return Err(
                        Error::invalid(format!("reference to undefined object #{id}")).at(at),
                    );
                }
                Leaf::Ref(id)
            }
            wire::SEQ => {
                let n = self.r.count(1)?;
                return self.nested(Open::Seq(n), at);
            }
            wire::MAP => {
                let n = self.r.count(2)?;
                return self.nested(Open::Map(n), at);
            }
            wire::TUPLE => {
                let n = self.r.count(1)?;
                return self.nested(Open::Tuple(n), at);
            }
            wire::SOME => return self.nested(Open::Some, at),
            wire::WEAK => return self.nested(Open::Weak, at),
            wire::DEF => {
                let id = self.r.varint()?;
                if id >= self.objects {
                    return Err(Error::invalid(format!(
                        "value for object #{id}, which was not announced"
                    ))
                    .at(at));
                }
                return self.nested(Open::Object { id, cyclic: true }, at);
            }
            wire::STRUCT => {
                let ty = self.types.read_ref(self.r, tag)?;
                return self.nested(Open::Struct(ty), at);
            }
            wire::VARIANT => {
                let ty = self.types.read_ref(self.r, tag)?;
                let idx_at = self.r.offset();
                let idx = self.r.varint()?;
                if idx >= self.types.defs[ty as usize].members.len() as u64 {
                    return Err(Error::invalid(format!(
                        "variant index {idx} out of range for enum `{}`",
                        self.types.defs[ty as usize].name
                    ))
                    .at(idx_at));
                }
                return self.nested(Open::Variant(ty, idx as u32), at);
            }
            wire::DYN => {
                let ty = self.types.read_ref(self.r, tag)?;
                return self.nested(Open::Dyn(ty), at);
            }
            wire::PACKED_STRUCTS => {
                let ty = self.types.read_ref(self.r, tag)?;
                let n = self.r.count(self.types.defs[ty as usize].record)?;
                return self.packed_structs(ty, n, at);
            }
            wire::OBJ | wire::OBJ_CYCLIC => {
                let id = self.new_object();
                return self.nested(
                    Open::Object {
                        id,
                        cyclic: tag == wire::OBJ_CYCLIC,
                    },
                    at,
                );
            }
            _ => return Err(Error::invalid(format!("unknown tag 0x{tag:02x}")).at(at)),
        };
        self.v.leaf(leaf, self.types)
    }
}

/// The bytes of one member of a plain struct (see `table::plain_numbers`).
pub(crate) fn plain_size(kind: Packed, shape: u64) -> u64 {
    crate::table::plain_numbers(shape) * kind.size() as u64
}

/// One member of a plain struct from its bytes: a number as the leaf its
/// own tag would give, an array as a packed array.
pub(crate) fn plain_leaf(kind: Packed, shape: u64, bytes: &[u8]) -> Leaf<'_> {
    match shape {
        0 => number(kind, bytes),
        _ => Leaf::Packed(kind, bytes),
    }
}

/// One little-endian number of `kind` as the leaf its own tag would give.
pub(crate) fn number(kind: Packed, b: &[u8]) -> Leaf<'static> {
    let mut w = [0u8; 16];
    w[..b.len()].copy_from_slice(b);
    let u = u128::from_le_bytes(w);
    // Sign-extend the signed kinds from their width.
    let signed = |bits: u32| ((u << (128 - bits)) as i128) >> (128 - bits);
    let int = |v: i128| {
        if v < 0 {
            Leaf::NInt((-1 - v) as u64)
        } else {
            Leaf::UInt(v as u64)
        }
    };
    match kind {
        Packed::U8 | Packed::U16 | Packed::U32 | Packed::U64 => Leaf::UInt(u as u64),
        Packed::I8 => int(signed(8)),
        Packed::I16 => int(signed(16)),
        Packed::I32 => int(signed(32)),
        Packed::I64 => int(signed(64)),
        Packed::U128 if u <= u64::MAX as u128 => Leaf::UInt(u as u64),
        Packed::U128 => Leaf::U128(u),
        Packed::I128 => {
            let v = u as i128;
            if v >= i64::MIN as i128 && v <= u64::MAX as i128 {
                int(v)
            } else {
                Leaf::I128(v)
            }
        }
        Packed::F32 => Leaf::F32(u as u32),
        Packed::F64 => Leaf::F64(u as u64),
    }
}

/// Walks a whole graph record body (after its header): the format version,
/// the root value, and nothing after it. Returns how many shared objects
/// the record defines.
pub(crate) fn walk_graph<'de, V: Visitor<'de>>(
    payload: &'de [u8],
    v: &mut V,
    max_depth: usize,
) -> Result<u64> {
    walk_graph_types(payload, v, max_depth).map(|(objects, _)| objects)
}

/// As [`walk_graph`], also returning the record's type table.
pub(crate) fn walk_graph_types<'de, V: Visitor<'de>>(
    payload: &'de [u8],
    v: &mut V,
    max_depth: usize,
) -> Result<(u64, TypeTable<'de>)> {
    let mut r = Reader::new(payload, 0);
    let version = r.u8()?;
    if !(wire::GRAPH_VERSION_1..=wire::GRAPH_VERSION).contains(&version) {
        return Err(
            Error::invalid(format!("graph format version {version} is not supported")).at(0),
        );
    }
    let mut types = TypeTable::default();
    let mut w = Walk {
        r: &mut r,
        types: &mut types,
        v,
        depth: 0,
        max_depth,
        objects: 0,
    };
    w.value()?;
    if version >= 2 && w.r.remaining() != 0 {
        w.v.after_root()?;
        while w.r.remaining() != 0 {
            let at = w.r.offset();
            if w.r.peek()? != wire::DEF {
                return Err(
                    Error::invalid("after the root, only values of announced objects").at(at),
                );
            }
            w.value()?;
        }
    }
    let objects = w.objects;
    if r.remaining() != 0 {
        return Err(r.error(Error::invalid("bytes left after the root value")));
    }
    Ok((objects, types))
}
