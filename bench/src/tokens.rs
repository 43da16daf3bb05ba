//! The floor of a self-describing serde load: serde's derived code fed by a
//! format with nothing to decode.
//!
//! [`record`] turns a value into a flat list of tokens (untimed): every
//! struct as its field count, then each field's name and value, the way a
//! self-describing stream holds it. [`replay`] deserializes the value back
//! from those tokens. It decodes nothing and checks nothing a well-formed
//! list could get wrong: each call reads one token and hands it to the
//! visitor. What a replay costs is what serde's generated `visit_map` (the
//! field-name match, the duplicate checks, the `Result`s), `String`, `Vec`
//! and `Option` cost, the allocation, and the reading of the tokens, which
//! is cheap but not free (about 15M of a replay's 101M instructions on the
//! savedata set). So it bounds serde's own cost from above: a
//! self-describing format behind `Serde<T>` could load for a little less,
//! but not for much less.

use serde::de::value::{BorrowedStrDeserializer, Error};
use serde::de::{self, DeserializeSeed, Visitor};
use serde::ser::{self, Impossible, Serialize};

/// One step of a value, 16 bytes. A struct is `Struct(n)` then `n` pairs
/// of `Key` and the field's tokens; a sequence or tuple its length then its
/// elements; an enum variant its name then its payload, if any. Strings
/// are ranges of one text, names indexes into one table, so that the list
/// is read front to back like a stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tok {
    Bool(bool),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Str { at: u32, len: u32 },
    None,
    Some,
    Unit,
    Seq(usize),
    Struct(usize),
    Key(u32),
    Variant(u32),
}

/// A value's tokens, its strings' text and its field and variant names.
#[derive(Default)]
pub struct Tokens {
    pub toks: Vec<Tok>,
    text: String,
    names: Vec<&'static str>,
}

#[cfg(test)]
impl Tokens {
    /// The name `Key` or `Variant` tokens refer to.
    pub fn name(&self, i: u32) -> Option<&'static str> {
        self.names.get(i as usize).copied()
    }

    /// The list cut after its first `n` tokens.
    pub fn truncated(&self, n: usize) -> Tokens {
        Tokens {
            toks: self.toks[..n.min(self.toks.len())].to_vec(),
            text: self.text.clone(),
            names: self.names.clone(),
        }
    }
}

/// The tokens of `v`.
pub fn record<T: Serialize>(v: &T) -> Result<Tokens, Error> {
    let mut r = Recorder(Tokens::default());
    v.serialize(&mut r)?;
    Ok(r.0)
}

/// `T` back from its tokens.
pub fn replay<'de, T: de::Deserialize<'de>>(t: &'de Tokens) -> Result<T, Error> {
    T::deserialize(&mut Replay {
        toks: &t.toks,
        text: &t.text,
        names: &t.names,
        pos: 0,
    })
}

struct Recorder(Tokens);

impl Recorder {
    fn push(&mut self, t: Tok) {
        self.0.toks.push(t);
    }

    /// The token naming an enum variant.
    fn variant(&mut self, variant: &'static str) {
        let i = self.name(variant);
        self.push(Tok::Variant(i));
    }

    /// The index of `name` in the table, added at its first use.
    fn name(&mut self, name: &'static str) -> u32 {
        let names = &mut self.0.names;
        let i = names.iter().position(|n| *n == name).unwrap_or_else(|| {
            names.push(name);
            names.len() - 1
        });
        i as u32
    }
}

fn unsupported<T>(what: &str) -> Result<T, Error> {
    Err(ser::Error::custom(format!("tokens: {what} not supported")))
}

/// `serialize_x` methods that push one token of the value, widened.
macro_rules! scalars {
    ($($method:ident($t:ty) => $tok:ident,)*) => {$(
        fn $method(self, v: $t) -> Result<(), Error> {
            self.push(Tok::$tok(v.into()));
            Ok(())
        }
    )*};
}

impl ser::Serializer for &mut Recorder {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    scalars! {
        serialize_bool(bool) => Bool,
        serialize_i8(i8) => I64,
        serialize_i16(i16) => I64,
        serialize_i32(i32) => I64,
        serialize_i64(i64) => I64,
        serialize_u8(u8) => U64,
        serialize_u16(u16) => U64,
        serialize_u32(u32) => U64,
        serialize_u64(u64) => U64,
        serialize_f32(f32) => F32,
        serialize_f64(f64) => F64,
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        let at = self.0.text.len() as u32;
        self.0.text.push_str(v);
        self.push(Tok::Str {
            at,
            len: v.len() as u32,
        });
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Error> {
        unsupported("bytes")
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.push(Tok::None);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Error> {
        self.push(Tok::Some);
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.push(Tok::Unit);
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, v: &'static str) -> Result<(), Error> {
        self.variant(v);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        self.variant(variant);
        v.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self, Error> {
        let Some(n) = len else {
            return unsupported("a sequence of unknown length");
        };
        self.push(Tok::Seq(n));
        Ok(self)
    }
    fn serialize_tuple(self, len: usize) -> Result<Self, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Self, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self, Error> {
        self.variant(variant);
        self.serialize_seq(Some(len))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
        unsupported("a map")
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Self, Error> {
        self.push(Tok::Struct(len));
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self, Error> {
        self.variant(variant);
        self.serialize_struct("", len)
    }
}

/// The compound parts: each element is its tokens; a field is its name,
/// then its tokens.
macro_rules! elements {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for &mut Recorder {
            type Ok = ();
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
                v.serialize(&mut **self)
            }
            fn end(self) -> Result<(), Error> {
                Ok(())
            }
        }
    )*};
}
elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

macro_rules! fields {
    ($($trait:ident),*) => {$(
        impl ser::$trait for &mut Recorder {
            type Ok = ();
            type Error = Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                v: &T,
            ) -> Result<(), Error> {
                let key = self.name(key);
                self.push(Tok::Key(key));
                v.serialize(&mut **self)
            }
            fn end(self) -> Result<(), Error> {
                Ok(())
            }
        }
    )*};
}
fields!(SerializeStruct, SerializeStructVariant);

struct Replay<'de> {
    toks: &'de [Tok],
    text: &'de str,
    names: &'de [&'static str],
    pos: usize,
}

impl<'de> Replay<'de> {
    #[inline]
    fn next(&mut self) -> Result<Tok, Error> {
        let t = self
            .toks
            .get(self.pos)
            .ok_or_else(|| de::Error::custom("tokens: end of the list"))?;
        self.pos += 1;
        Ok(*t)
    }

    #[inline]
    fn name(&self, i: u32) -> Result<&'static str, Error> {
        self.names
            .get(i as usize)
            .copied()
            .ok_or_else(|| de::Error::custom("tokens: no such name"))
    }
}

impl<'de> de::Deserializer<'de> for &mut Replay<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.next()? {
            Tok::Bool(b) => v.visit_bool(b),
            Tok::U64(n) => v.visit_u64(n),
            Tok::I64(n) => v.visit_i64(n),
            Tok::F32(x) => v.visit_f32(x),
            Tok::F64(x) => v.visit_f64(x),
            Tok::Str { at, len } => {
                let (at, len) = (at as usize, len as usize);
                let s = self
                    .text
                    .get(at..at + len)
                    .ok_or_else(|| de::Error::custom("tokens: a string out of the text"))?;
                v.visit_borrowed_str(s)
            }
            Tok::None => v.visit_none(),
            Tok::Some => v.visit_some(self),
            Tok::Unit => v.visit_unit(),
            Tok::Seq(left) => v.visit_seq(Left { r: self, left }),
            Tok::Struct(left) => v.visit_map(Left { r: self, left }),
            Tok::Variant(i) => {
                let name = self.name(i)?;
                v.visit_enum(Enum { r: self, name })
            }
            Tok::Key(k) => Err(de::Error::custom(format!(
                "tokens: a key #{k} where a value goes"
            ))),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// The elements of a sequence, or the fields of a struct: `left` more.
struct Left<'a, 'de> {
    r: &'a mut Replay<'de>,
    left: usize,
}

impl Left<'_, '_> {
    /// Counts one more taken; false once all were.
    #[inline(always)]
    fn take(&mut self) -> bool {
        if self.left == 0 {
            return false;
        }
        self.left -= 1;
        true
    }
}

impl<'de> de::SeqAccess<'de> for Left<'_, 'de> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        if !self.take() {
            return Ok(None);
        }
        seed.deserialize(&mut *self.r).map(Some)
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

impl<'de> de::MapAccess<'de> for Left<'_, 'de> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        if !self.take() {
            return Ok(None);
        }
        match self.r.next()? {
            Tok::Key(k) => seed
                .deserialize(BorrowedStrDeserializer::new(self.r.name(k)?))
                .map(Some),
            t => Err(de::Error::custom(format!("tokens: {t:?} where a key goes"))),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        seed.deserialize(&mut *self.r)
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

struct Enum<'a, 'de> {
    r: &'a mut Replay<'de>,
    name: &'static str,
}

impl<'a, 'de> de::EnumAccess<'de> for Enum<'a, 'de> {
    type Error = Error;
    type Variant = &'a mut Replay<'de>;
    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), Error> {
        let v = seed.deserialize(BorrowedStrDeserializer::<Error>::new(self.name))?;
        Ok((v, self.r))
    }
}

/// A variant's payload: the tokens after its name (none for a unit variant).
impl<'de> de::VariantAccess<'de> for &mut Replay<'de> {
    type Error = Error;
    fn unit_variant(self) -> Result<(), Error> {
        Ok(())
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _: usize, v: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_any(self, v)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_any(self, v)
    }
}
