//! A serde value held in memory: how the bridge sorts map entries.
//!
//! A serde map hands its entries over one at a time, by reference, in its
//! own iteration order — random for a `HashMap`. Determinism needs them in
//! the order of their encoded keys, so each entry is first captured here
//! (owned), then the entries are sorted and written. Only map entries take
//! this detour; everything else is written as it is serialized.

use ::serde::ser::SerializeTupleVariant as _;
use ::serde::ser::{self, Serialize, SerializeMap as _, SerializeSeq as _, SerializeStruct as _};
use ::serde::ser::{SerializeStructVariant as _, SerializeTuple as _, SerializeTupleStruct as _};

use crate::error::Error;

type Name = &'static str;

/// One serde value, owned.
pub(crate) enum Content {
    Bool(bool),
    U64(u64),
    I64(i64),
    U128(u128),
    I128(i128),
    F32(f32),
    F64(f64),
    Char(char),
    Str(String),
    Bytes(Vec<u8>),
    None,
    Some(Box<Content>),
    Unit,
    UnitStruct(Name),
    UnitVariant(Name, u32, Name),
    NewtypeStruct(Name, Box<Content>),
    NewtypeVariant(Name, u32, Name, Box<Content>),
    Seq(Vec<Content>),
    Tuple(Vec<Content>),
    TupleStruct(Name, Vec<Content>),
    TupleVariant(Name, u32, Name, Vec<Content>),
    Map(Vec<(Content, Content)>),
    Struct(Name, Vec<(Name, Content)>),
    StructVariant(Name, u32, Name, Vec<(Name, Content)>),
}

impl Serialize for Content {
    fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Content::Bool(v) => s.serialize_bool(*v),
            Content::U64(v) => s.serialize_u64(*v),
            Content::I64(v) => s.serialize_i64(*v),
            Content::U128(v) => s.serialize_u128(*v),
            Content::I128(v) => s.serialize_i128(*v),
            Content::F32(v) => s.serialize_f32(*v),
            Content::F64(v) => s.serialize_f64(*v),
            Content::Char(v) => s.serialize_char(*v),
            Content::Str(v) => s.serialize_str(v),
            Content::Bytes(v) => s.serialize_bytes(v),
            Content::None => s.serialize_none(),
            Content::Some(v) => s.serialize_some(&**v),
            Content::Unit => s.serialize_unit(),
            Content::UnitStruct(n) => s.serialize_unit_struct(n),
            Content::UnitVariant(n, i, v) => s.serialize_unit_variant(n, *i, v),
            Content::NewtypeStruct(n, v) => s.serialize_newtype_struct(n, &**v),
            Content::NewtypeVariant(n, i, var, v) => s.serialize_newtype_variant(n, *i, var, &**v),
            Content::Seq(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for v in items {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Content::Tuple(items) => {
                let mut t = s.serialize_tuple(items.len())?;
                for v in items {
                    t.serialize_element(v)?;
                }
                t.end()
            }
            Content::TupleStruct(n, items) => {
                let mut t = s.serialize_tuple_struct(n, items.len())?;
                for v in items {
                    t.serialize_field(v)?;
                }
                t.end()
            }
            Content::TupleVariant(n, i, var, items) => {
                let mut t = s.serialize_tuple_variant(n, *i, var, items.len())?;
                for v in items {
                    t.serialize_field(v)?;
                }
                t.end()
            }
            Content::Map(entries) => {
                let mut m = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
            Content::Struct(n, fields) => {
                let mut st = s.serialize_struct(n, fields.len())?;
                for (k, v) in fields {
                    st.serialize_field(k, v)?;
                }
                st.end()
            }
            Content::StructVariant(n, i, var, fields) => {
                let mut st = s.serialize_struct_variant(n, *i, var, fields.len())?;
                for (k, v) in fields {
                    st.serialize_field(k, v)?;
                }
                st.end()
            }
        }
    }
}

/// Captures a serde value as [`Content`].
pub(crate) struct Capture;

/// A compound value being captured.
pub(crate) struct Compound {
    kind: Kind,
    items: Vec<Content>,
    fields: Vec<(Name, Content)>,
    entries: Vec<(Content, Content)>,
    key: Option<Content>,
}

enum Kind {
    Seq,
    Tuple,
    TupleStruct(Name),
    TupleVariant(Name, u32, Name),
    Map,
    Struct(Name),
    StructVariant(Name, u32, Name),
}

impl Compound {
    fn new(kind: Kind, len: usize) -> Compound {
        // Capacity from the claimed length, within reason: a serde impl
        // may claim any length.
        let (n, m) = match kind {
            Kind::Struct(_) | Kind::StructVariant(..) => (0, len.min(64)),
            Kind::Map => (0, 0),
            _ => (len.min(1024), 0),
        };
        Compound {
            kind,
            items: Vec::with_capacity(n),
            fields: Vec::with_capacity(m),
            entries: Vec::new(),
            key: None,
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.items.push(capture(v)?);
        Ok(())
    }

    fn finish(self) -> Result<Content, Error> {
        Ok(self.content())
    }

    fn content(self) -> Content {
        match self.kind {
            Kind::Seq => Content::Seq(self.items),
            Kind::Tuple => Content::Tuple(self.items),
            Kind::TupleStruct(n) => Content::TupleStruct(n, self.items),
            Kind::TupleVariant(n, i, v) => Content::TupleVariant(n, i, v, self.items),
            Kind::Map => Content::Map(self.entries),
            Kind::Struct(n) => Content::Struct(n, self.fields),
            Kind::StructVariant(n, i, v) => Content::StructVariant(n, i, v, self.fields),
        }
    }
}

fn capture<T: Serialize + ?Sized>(v: &T) -> Result<Content, Error> {
    crate::mem::grow_stack(|| v.serialize(Capture))
}

/// `fn serialize_x(self, v: X) -> Result<Content, Error>` arms that
/// capture `v` (widened with `into`) as one `Content` variant.
macro_rules! captures {
    ($($f:ident($t:ty) => $c:ident),* $(,)?) => {$(
        fn $f(self, v: $t) -> Result<Content, Error> {
            Ok(Content::$c(v.into()))
        }
    )*};
}

/// The capture's tuple and struct variant methods (serde's signatures,
/// each generated once).
macro_rules! variant_compound {
    ($($method:ident => $kind:ident),*) => {$(
        fn $method(self, name: Name, i: u32, variant: Name, len: usize) -> Result<Compound, Error> {
            Ok(Compound::new(Kind::$kind(name, i, variant), len))
        }
    )*};
}

impl ser::Serializer for Capture {
    type Ok = Content;
    type Error = Error;
    type SerializeSeq = Compound;
    type SerializeTuple = Compound;
    type SerializeTupleStruct = Compound;
    type SerializeTupleVariant = Compound;
    type SerializeMap = Compound;
    type SerializeStruct = Compound;
    type SerializeStructVariant = Compound;

    fn is_human_readable(&self) -> bool {
        super::HUMAN_READABLE
    }
    // Each scalar is captured as its widest kind.
    captures! {
        serialize_bool(bool) => Bool,
        serialize_i8(i8) => I64,
        serialize_i16(i16) => I64,
        serialize_i32(i32) => I64,
        serialize_i64(i64) => I64,
        serialize_i128(i128) => I128,
        serialize_u8(u8) => U64,
        serialize_u16(u16) => U64,
        serialize_u32(u32) => U64,
        serialize_u64(u64) => U64,
        serialize_u128(u128) => U128,
        serialize_f32(f32) => F32,
        serialize_f64(f64) => F64,
        serialize_char(char) => Char,
    }
    fn serialize_str(self, v: &str) -> Result<Content, Error> {
        Ok(Content::Str(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Content, Error> {
        Ok(Content::Bytes(v.to_vec()))
    }
    fn serialize_none(self) -> Result<Content, Error> {
        Ok(Content::None)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Content, Error> {
        Ok(Content::Some(Box::new(capture(v)?)))
    }
    fn serialize_unit(self) -> Result<Content, Error> {
        Ok(Content::Unit)
    }
    fn serialize_unit_struct(self, name: Name) -> Result<Content, Error> {
        Ok(Content::UnitStruct(name))
    }
    fn serialize_unit_variant(self, name: Name, i: u32, variant: Name) -> Result<Content, Error> {
        Ok(Content::UnitVariant(name, i, variant))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: Name,
        v: &T,
    ) -> Result<Content, Error> {
        Ok(Content::NewtypeStruct(name, Box::new(capture(v)?)))
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: Name,
        i: u32,
        variant: Name,
        v: &T,
    ) -> Result<Content, Error> {
        Ok(Content::NewtypeVariant(
            name,
            i,
            variant,
            Box::new(capture(v)?),
        ))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Compound, Error> {
        Ok(Compound::new(Kind::Seq, len.unwrap_or(0)))
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound, Error> {
        Ok(Compound::new(Kind::Tuple, len))
    }
    fn serialize_tuple_struct(self, name: Name, len: usize) -> Result<Compound, Error> {
        Ok(Compound::new(Kind::TupleStruct(name), len))
    }
    variant_compound!(
        serialize_tuple_variant => TupleVariant,
        serialize_struct_variant => StructVariant
    );
    fn serialize_map(self, _len: Option<usize>) -> Result<Compound, Error> {
        Ok(Compound::new(Kind::Map, 0))
    }
    fn serialize_struct(self, name: Name, len: usize) -> Result<Compound, Error> {
        Ok(Compound::new(Kind::Struct(name), len))
    }
}

element_compounds!(Compound => Content);

impl ser::SerializeMap for Compound {
    type Ok = Content;
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), Error> {
        self.key = Some(capture(k)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        let k = self
            .key
            .take()
            .ok_or_else(|| Error::custom("serialize_value called before serialize_key"))?;
        self.entries.push((k, capture(v)?));
        Ok(())
    }
    fn end(self) -> Result<Content, Error> {
        if self.key.is_some() {
            return Err(Error::custom("a map key without its value"));
        }
        Ok(self.content())
    }
}

/// Structs and struct variants: each field captured with its name.
macro_rules! fields {
    ($($tr:ident),*) => {$(
        impl ser::$tr for Compound {
            type Ok = Content;
            type Error = Error;
            fn serialize_field<T: Serialize + ?Sized>(&mut self, k: Name, v: &T) -> Result<(), Error> {
                self.fields.push((k, capture(v)?));
                Ok(())
            }
            fn end(self) -> Result<Content, Error> {
                Ok(self.content())
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);

/// Captures `v`.
pub(crate) fn of<T: Serialize + ?Sized>(v: &T) -> Result<Content, Error> {
    capture(v)
}
