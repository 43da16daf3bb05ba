//! A type-free tree of one graph record, for tools that have no Rust types
//! (the `stateify` CLI): every value with its type and field names as the
//! stream spells them, borrowing strings and packed arrays from the record.
//!
//! ```
//! use stateify::value::{decode, Value};
//! let bytes = stateify::to_vec(&(7u8, "hi".to_string())).unwrap();
//! let (len, _, h) = stateify::decode_header(&bytes).unwrap();
//! let graph = decode(&bytes[h..h + len as usize], 1000).unwrap();
//! assert!(matches!(&graph.root, Value::Tuple(v) if v.len() == 2));
//! ```
//!
//! The tree costs memory in proportion to the record (tools decode one
//! record at a time), and its nesting is bounded by the `max_depth` given
//! to [`decode`], so dropping it cannot overflow the stack.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::table::TypeTable;
use crate::walk::{walk_graph, Leaf, Open, Slot, Visitor};
use crate::wire::Packed;

mod lazy;
pub use lazy::{Child, Kind, Lazy, Link, Loc, Marks, Name, Node};

/// One value of a graph.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'de> {
    /// `()`.
    Unit,
    /// A `bool`.
    Bool(bool),
    /// Any integer (unsigned and signed share one encoding).
    Int(i128),
    /// A `u128` above `i128::MAX`.
    BigUInt(u128),
    /// An `f32`, as bits (NaN payloads are kept).
    F32(u32),
    /// An `f64`, as bits.
    F64(u64),
    /// A `char` (possibly invalid in hostile input).
    Char(u32),
    /// A string (also paths and addresses).
    Str(&'de str),
    /// A packed array of plain numbers: element kind and raw bytes.
    Packed(Packed, &'de [u8]),
    /// `None`.
    None,
    /// `Some(value)`.
    Some(Box<Value<'de>>),
    /// A sequence (vectors, sets, arrays of non-plain values).
    Seq(Vec<Value<'de>>),
    /// A tuple.
    Tuple(Vec<Value<'de>>),
    /// A map, in stream order.
    Map(Vec<(Value<'de>, Value<'de>)>),
    /// A struct with its type name and fields in stream order.
    Struct {
        /// The type name.
        name: &'de str,
        /// Field names and values.
        fields: Vec<(&'de str, Value<'de>)>,
    },
    /// An enum variant with its payload (`()` for a unit variant).
    Variant {
        /// The enum's name.
        ty: &'de str,
        /// The variant's name.
        variant: &'de str,
        /// The payload.
        value: Box<Value<'de>>,
    },
    /// A shared object, where it is first met.
    Object {
        /// Its id, referred to by `Ref`.
        id: u64,
        /// Built with weak back-edges into it.
        cyclic: bool,
        /// Its value.
        value: Box<Value<'de>>,
    },
    /// A further reference to a shared object.
    Ref(u64),
    /// A live weak pointer: the object or a reference to it.
    Weak(Box<Value<'de>>),
    /// A weak pointer that no longer upgrades.
    WeakDead,
    /// A trait object: the concrete type's registered name and its value.
    Dyn {
        /// The registered name.
        name: &'de str,
        /// The concrete value.
        value: Box<Value<'de>>,
    },
}

/// Per type (struct or enum name; a trait object counts as its concrete
/// value): how many values and how
/// many encoded bytes they span (inclusive of what they contain).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TypeUse {
    /// Values of the type.
    pub count: u64,
    /// Bytes they span.
    pub bytes: u64,
}

/// A decoded graph record.
#[derive(Debug)]
pub struct Graph<'de> {
    /// The root value.
    pub root: Value<'de>,
    /// After the root (format version 2): the values of objects that weak
    /// references announced and no strong reference reached, each an
    /// `Object`.
    pub deferred: Vec<Value<'de>>,
    /// Uses of each named type.
    pub types: BTreeMap<&'de str, TypeUse>,
    /// Shared objects defined.
    pub objects: u64,
}

impl Value<'_> {
    /// A short description of the value's type.
    pub fn type_name(&self) -> String {
        match self {
            Value::Unit => "()".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) | Value::BigUInt(_) => "int".into(),
            Value::F32(_) => "f32".into(),
            Value::F64(_) => "f64".into(),
            Value::Char(_) => "char".into(),
            Value::Str(_) => "string".into(),
            Value::Packed(k, b) => format!("[{}; {}]", k.name(), b.len() / k.size()),
            Value::None | Value::Some(_) => "option".into(),
            Value::Seq(v) => format!("seq[{}]", v.len()),
            Value::Tuple(v) => format!("tuple[{}]", v.len()),
            Value::Map(m) => format!("map[{}]", m.len()),
            Value::Struct { name, .. } => (*name).into(),
            Value::Variant { ty, variant, .. } => format!("{ty}::{variant}"),
            Value::Object { id, value, .. } => format!("#{id} {}", value.type_name()),
            Value::Ref(id) => format!("-> #{id}"),
            Value::Weak(v) => format!("weak {}", v.type_name()),
            Value::WeakDead => "weak (dead)".into(),
            Value::Dyn { name, .. } => format!("dyn {name}"),
        }
    }

    /// The text of a scalar (or a short summary of a composite).
    pub fn scalar_text(&self) -> String {
        let leaf = match self {
            Value::Unit => Leaf::Unit,
            Value::Bool(b) => Leaf::Bool(*b),
            Value::Int(i) => Leaf::I128(*i),
            Value::BigUInt(u) => Leaf::U128(*u),
            Value::F32(b) => Leaf::F32(*b),
            Value::F64(b) => Leaf::F64(*b),
            Value::Char(c) => Leaf::Char(*c),
            Value::Str(s) => Leaf::Str(s),
            Value::Packed(k, b) => Leaf::Packed(*k, b),
            Value::None => Leaf::None,
            Value::WeakDead => Leaf::WeakDead,
            // The CLI shows a reference as the link it is.
            Value::Ref(id) => return format!("-> #{id}"),
            other => return other.type_name(),
        };
        let mut out = String::new();
        crate::pretty::leaf_text(leaf, &mut out);
        out
    }

    /// The value behind wrappers that do not add a level of path (`Some`,
    /// a shared object's definition, a weak pointer, a trait object, a
    /// variant's payload).
    pub fn inner(&self) -> &Self {
        self.layers().last().unwrap_or(self)
    }

    /// This value, then each value its wrappers (as for [`Value::inner`])
    /// hold, outermost first; the last is [`Value::inner`].
    pub fn layers(&self) -> impl Iterator<Item = &Self> {
        std::iter::successors(Some(self), |v| match v {
            Value::Some(x) | Value::Weak(x) => Some(&**x),
            Value::Object { value, .. }
            | Value::Dyn { value, .. }
            | Value::Variant { value, .. } => Some(&**value),
            _ => None,
        })
    }

    /// The children of a value (through wrappers) with their path names:
    /// field names, indices, map keys.
    pub fn children(&self) -> Vec<(String, &Self)> {
        match self.inner() {
            Value::Struct { fields, .. } => {
                fields.iter().map(|(n, v)| (n.to_string(), v)).collect()
            }
            Value::Seq(v) | Value::Tuple(v) => v
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect(),
            Value::Map(m) => m
                .iter()
                .enumerate()
                .map(|(i, (k, v))| (map_key(i, k), v))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// A map key as a path component: scalars as their text (strings without
/// quotes), a unit variant as its name, composite keys by position (`#3`).
fn map_key(i: usize, k: &Value<'_>) -> String {
    if let Value::Variant { variant, value, .. } = k {
        if **value == Value::Unit {
            // A unit variant by its name (`Red`), not its `()`.
            return variant.to_string();
        }
    }
    match k.inner() {
        Value::Str(s) => s.to_string(),
        Value::Int(_) | Value::BigUInt(_) | Value::Bool(_) | Value::Char(_) | Value::Unit => {
            k.inner().scalar_text()
        }
        _ => format!("#{i}"),
    }
}

/// The value of a scalar or reference the walk found.
fn leaf_value(leaf: Leaf<'_>) -> Value<'_> {
    match leaf {
        Leaf::Unit => Value::Unit,
        Leaf::Bool(b) => Value::Bool(b),
        Leaf::UInt(u) => Value::Int(u as i128),
        Leaf::NInt(n) => Value::Int(-1 - n as i128),
        Leaf::U128(u) => match i128::try_from(u) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::BigUInt(u),
        },
        Leaf::I128(i) => Value::Int(i),
        Leaf::F32(b) => Value::F32(b),
        Leaf::F64(b) => Value::F64(b),
        Leaf::Char(c) => Value::Char(c),
        Leaf::Str(s) => Value::Str(s),
        Leaf::Packed(k, b) => Value::Packed(k, b),
        Leaf::None => Value::None,
        Leaf::Ref(id) => Value::Ref(id),
        Leaf::WeakDead => Value::WeakDead,
        // Its value is an `Object` of this id further on.
        Leaf::Announced(id) => Value::Ref(id),
    }
}

enum Frame<'de> {
    List(Open, Vec<Value<'de>>),
    Map(Vec<(Value<'de>, Value<'de>)>, Option<Value<'de>>),
    Struct(&'de str, Vec<(&'de str, Value<'de>)>, &'de str),
    /// A wrapper of one value; for variants and trait objects, the type
    /// name and the variant name.
    One(Option<Value<'de>>, &'de str, &'de str),
}

struct Builder<'de> {
    stack: Vec<Frame<'de>>,
    root: Option<Value<'de>>,
    deferred: Vec<Value<'de>>,
    names: Vec<&'de str>,
    types: BTreeMap<&'de str, TypeUse>,
}

impl<'de> Builder<'de> {
    fn new() -> Self {
        Builder {
            stack: Vec::new(),
            root: None,
            deferred: Vec::new(),
            names: Vec::new(),
            types: BTreeMap::new(),
        }
    }

    fn attach(&mut self, v: Value<'de>) {
        match self.stack.last_mut() {
            None if self.root.is_none() => self.root = Some(v),
            // After the root: values of announced objects (`Object`s).
            None => self.deferred.push(v),
            Some(Frame::List(_, items)) => items.push(v),
            Some(Frame::Map(entries, key)) => match key.take() {
                None => *key = Some(v),
                Some(k) => entries.push((k, v)),
            },
            Some(Frame::Struct(_, fields, next)) => fields.push((next, v)),
            Some(Frame::One(slot, _, _)) => *slot = Some(v),
        }
    }

    fn type_name(&self, open: Open, types: &TypeTable<'de>) -> Option<&'de str> {
        match open {
            Open::Struct(ty) | Open::Variant(ty, _) | Open::Dyn(ty) => {
                Some(types.defs[ty as usize].name)
            }
            _ => None,
        }
    }
}

impl<'de> Visitor<'de> for Builder<'de> {
    fn leaf(&mut self, leaf: Leaf<'de>, _: &TypeTable<'de>) -> Result<()> {
        self.attach(leaf_value(leaf));
        Ok(())
    }

    fn open(&mut self, open: Open, types: &TypeTable<'de>) -> Result<()> {
        let name = self.type_name(open, types);
        self.names.push(name.unwrap_or(""));
        self.stack.push(match open {
            Open::Seq(n) | Open::Tuple(n) => Frame::List(open, Vec::with_capacity(n.min(4096))),
            Open::Map(n) => Frame::Map(Vec::with_capacity(n.min(4096)), None),
            Open::Struct(ty) => {
                let def = &types.defs[ty as usize];
                Frame::Struct(def.name, Vec::with_capacity(def.members.len()), "")
            }
            Open::Variant(ty, i) => {
                let def = &types.defs[ty as usize];
                Frame::One(None, def.name, def.members[i as usize])
            }
            Open::Dyn(ty) => Frame::One(None, types.defs[ty as usize].name, ""),
            _ => Frame::One(None, "", ""),
        });
        Ok(())
    }

    fn slot(&mut self, slot: Slot, types: &TypeTable<'de>) -> Result<()> {
        if let (Slot::Field(ty, i), Some(Frame::Struct(_, _, next))) = (slot, self.stack.last_mut())
        {
            *next = types.defs[ty as usize].members[i];
        }
        Ok(())
    }

    fn span(&mut self, open: Open, start: u64, end: u64) {
        // Not `Dyn`: the concrete value inside is counted under its own
        // type, often of the same name (counting both doubled it).
        if let Open::Struct(_) | Open::Variant(..) = open {
            if let Some(name) = self.names.last() {
                let u = self.types.entry(name).or_default();
                u.count += 1;
                u.bytes += end - start;
            }
        }
    }

    fn close(&mut self, open: Open) -> Result<()> {
        self.names.pop();
        let frame = self.stack.pop();
        let missing = || Error::invalid("a composite value ended without its contents");
        let v = match (frame, open) {
            (Some(Frame::List(Open::Tuple(_), items)), _) => Value::Tuple(items),
            (Some(Frame::List(_, items)), _) => Value::Seq(items),
            (Some(Frame::Map(entries, _)), _) => Value::Map(entries),
            (Some(Frame::Struct(name, fields, _)), _) => Value::Struct { name, fields },
            (Some(Frame::One(slot, ty, variant)), open) => {
                let value = Box::new(slot.ok_or_else(missing)?);
                match open {
                    Open::Some => Value::Some(value),
                    Open::Weak => Value::Weak(value),
                    Open::Object { id, cyclic } => Value::Object { id, cyclic, value },
                    Open::Variant(..) => Value::Variant { ty, variant, value },
                    Open::Dyn(_) => Value::Dyn { name: ty, value },
                    _ => return Err(missing()),
                }
            }
            (None, _) => return Err(missing()),
        };
        self.attach(v);
        Ok(())
    }
}

/// Decodes one graph record body (after its header) into a tree, nesting
/// at most `max_depth` levels.
pub fn decode(payload: &[u8], max_depth: usize) -> Result<Graph<'_>> {
    let mut b = Builder::new();
    let objects = walk_graph(payload, &mut b, max_depth)?;
    let root = b
        .root
        .ok_or_else(|| Error::invalid("a graph without a root value"))?;
    Ok(Graph {
        root,
        deferred: b.deferred,
        types: b.types,
        objects,
    })
}

/// The JSON-friendly form of a value (the CLI's `--json`): numbers, strings
/// and `null`s as themselves, sequences and tuples as arrays, a map as an
/// array of `[key, value]` pairs, and the rest as objects whose keys start
/// with `$`:
///
/// | value | serialized as |
/// |---|---|
/// | struct | `{"$type": name, field: value, …}` (fields in stream order) |
/// | enum variant | `{"$type": enum, "$variant": name, "value": payload}` |
/// | shared object / reference | `{"$id": n, "value": …}` / `{"$ref": n}` |
/// | weak pointer | `{"$weak": target}` (`null` when dead) |
/// | trait object | `{"$dyn": name, "value": …}` |
/// | packed numbers | `{"$packed": kind, "len": n, "hex": little-endian bytes}` |
///
/// Integers outside `i64` are decimal strings, since JSON readers commonly
/// lose precision past 2^53 and refuse past 2^64; a char that is not a
/// Unicode scalar value is `null`.
///
/// ```
/// use stateify::value::{decode, Value};
/// let bytes = stateify::to_vec(&(7u8, Some("hi".to_string()))).unwrap();
/// let (len, _, h) = stateify::decode_header(&bytes).unwrap();
/// let graph = decode(&bytes[h..h + len as usize], 1000).unwrap();
/// assert_eq!(serde_json::to_string(&graph.root).unwrap(), r#"[7,"hi"]"#);
/// ```
#[cfg(feature = "serde")]
impl ::serde::Serialize for Value<'_> {
    fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use ::serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Value::Unit | Value::None => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => match i64::try_from(*i) {
                Ok(i) => s.serialize_i64(i),
                Err(_) => s.collect_str(i),
            },
            Value::BigUInt(u) => s.collect_str(u),
            Value::F32(b) => s.serialize_f32(f32::from_bits(*b)),
            Value::F64(b) => s.serialize_f64(f64::from_bits(*b)),
            Value::Char(c) => match char::from_u32(*c) {
                Some(c) => s.serialize_char(c),
                None => s.serialize_unit(),
            },
            Value::Str(v) => s.serialize_str(v),
            Value::Packed(k, b) => {
                let mut m = s.serialize_map(Some(3))?;
                m.serialize_entry("$packed", k.name())?;
                m.serialize_entry("len", &(b.len() / k.size()))?;
                m.serialize_entry("hex", &Hex(b))?;
                m.end()
            }
            Value::Some(x) => x.serialize(s),
            Value::Seq(items) | Value::Tuple(items) => s.collect_seq(items),
            Value::Map(entries) => {
                let mut seq = s.serialize_seq(Some(entries.len()))?;
                for (k, v) in entries {
                    seq.serialize_element(&(k, v))?;
                }
                seq.end()
            }
            Value::Struct { name, fields } => {
                let mut m = s.serialize_map(Some(fields.len() + 1))?;
                m.serialize_entry("$type", name)?;
                for (n, f) in fields {
                    m.serialize_entry(n, f)?;
                }
                m.end()
            }
            Value::Variant { ty, variant, value } => {
                let mut m = s.serialize_map(Some(3))?;
                m.serialize_entry("$type", ty)?;
                m.serialize_entry("$variant", variant)?;
                m.serialize_entry("value", value)?;
                m.end()
            }
            Value::Object { id, value, .. } => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("$id", id)?;
                m.serialize_entry("value", value)?;
                m.end()
            }
            Value::Ref(id) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("$ref", id)?;
                m.end()
            }
            Value::Weak(x) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("$weak", x)?;
                m.end()
            }
            Value::WeakDead => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("$weak", &())?;
                m.end()
            }
            Value::Dyn { name, value } => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("$dyn", name)?;
                m.serialize_entry("value", value)?;
                m.end()
            }
        }
    }
}

/// Bytes as a lowercase hex string, written without a temporary.
#[cfg(feature = "serde")]
struct Hex<'a>(&'a [u8]);

#[cfg(feature = "serde")]
impl ::serde::Serialize for Hex<'_> {
    fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(feature = "serde")]
impl std::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}
