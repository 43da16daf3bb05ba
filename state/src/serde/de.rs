//! Serde values read from stateify's self-describing format.
//!
//! The reader is driven by the stream, as serde's self-describing formats
//! are: `deserialize_any` looks at the tag and hands the visitor what is
//! there. A STRUCT is offered as a map from its field names (so serde's
//! `default`, `alias`, unknown-field handling and `flatten` work by name,
//! on streams written by derived types too), a VARIANT as an enum whose
//! variant is named by the stream. Shared objects (OBJ, REF, WEAK…) and
//! trait objects have no serde meaning and are refused with the path.
//!
//! Limits are the loader's: every compound value nests through
//! [`Loader::nest`] (depth limit, stack growth), counts are checked against
//! the remaining input, and a container's size hint draws on the load's
//! preallocation budget.

use ::serde::de::value::BorrowedStrDeserializer;
use ::serde::de::{self, DeserializeSeed, Deserializer as _, IntoDeserializer, Visitor};

use crate::error::{Error, Result};
use crate::load::Loader;
use crate::wire::{self, Packed};

/// A size hint for a container of `n` elements, charged to the load's
/// preallocation budget at this many bytes per element (serde caps what a
/// hint may reserve at 1 MiB per container).
const HINT_BYTES: usize = 64;

/// Reads one serde value from a [`Loader`].
pub(crate) struct De<'b, 'de, 'r> {
    pub(crate) l: &'b mut Loader<'de, 'r>,
}

fn refused(tag: u8, at: u64) -> Error {
    Error::mismatch(
        "a value the serde bridge can read",
        format!(
            "{} (shared objects and trait objects have no serde form)",
            wire::tag_name(tag)
        ),
    )
    .at(at)
}

impl<'de> De<'_, 'de, '_> {
    #[inline]
    fn peek(&mut self) -> Result<u8> {
        self.l.reader().peek()
    }

    #[inline]
    fn hint(&mut self, n: usize) -> Option<usize> {
        Some(self.l.preallocation(n, HINT_BYTES))
    }

    /// NONE or SOME (`tag`, not yet consumed) and its value.
    #[inline]
    fn option<V: Visitor<'de>>(self, tag: u8, v: V) -> Result<V::Value> {
        self.l.reader().u8()?;
        if tag == wire::NONE {
            return v.visit_none();
        }
        self.l.nest_sparse(|l| v.visit_some(De { l }))
    }

    /// A STRUCT's fields (its tag just read) as a map by name.
    fn visit_struct<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        let ty = self.l.read_type(wire::STRUCT)?;
        let n = self.l.type_def(ty).members.len();
        self.l
            .nest_sparse(|l| v.visit_map(Fields { l, ty, i: 0, n }))
    }

    /// A SEQ (its tag not yet read) and its elements.
    #[inline]
    fn visit_seq<V: Visitor<'de>>(mut self, v: V) -> Result<V::Value> {
        let n = self.l.read_seq_header()?;
        let hint = self.hint(n);
        self.l
            .nest_sparse(|l| v.visit_seq(Elements { l, left: n, i: 0 }.hinted(hint)))
    }

    /// A STRUCT's field values (its tag just read) as a sequence.
    fn visit_struct_as_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        let ty = self.l.read_type(wire::STRUCT)?;
        let n = self.l.type_def(ty).members.len();
        self.l
            .nest_sparse(|l| v.visit_seq(Elements { l, left: n, i: 0 }))
    }
}

/// `deserialize_x` methods that read the value directly when the next tag
/// is one of its usual forms (`De::usual`), else go through
/// `deserialize_any`, which accepts every form.
macro_rules! typed {
    ($($($method:ident)* => |$t:ident| $usual:expr, |$l:ident, $v:ident| $read:expr;)*) => {$($(
        #[inline]
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
            self.usual(v, |$t| $usual, |$l, $v| $read)
        }
    )*)*};
}

impl<'de> de::Deserializer<'de> for De<'_, 'de, '_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(mut self, v: V) -> Result<V::Value> {
        let at = self.l.offset();
        let tag = self.peek()?;
        let r = match tag {
            wire::UNIT => {
                self.l.read_unit()?;
                v.visit_unit()
            }
            wire::FALSE | wire::TRUE => v.visit_bool(self.l.read_bool()?),
            wire::UINT | wire::U64 | wire::SMALL..=0xff => v.visit_u64(self.l.read_u64("integer")?),
            wire::NINT | wire::I128 => {
                let (_, bits) = self.l.read_i128_any("integer")?;
                let n = bits as i128;
                match i64::try_from(n) {
                    Ok(n) => v.visit_i64(n),
                    Err(_) => v.visit_i128(n),
                }
            }
            wire::U128 => {
                let (_, bits) = self.l.read_i128_any("integer")?;
                v.visit_u128(bits)
            }
            wire::F32 => v.visit_f32(self.l.read_f32()?),
            wire::F64 => v.visit_f64(self.l.read_f64()?),
            wire::CHAR => v.visit_char(self.l.read_char()?),
            wire::STR => v.visit_borrowed_str(self.l.read_str()?),
            wire::SEQ => self.visit_seq(v),
            wire::TUPLE => {
                let r = self.l.reader();
                r.u8()?;
                let n = r.count(1)?;
                self.l
                    .nest_sparse(|l| v.visit_seq(Elements { l, left: n, i: 0 }))
            }
            wire::MAP => {
                let n = self.l.read_map_header()?;
                let hint = self.hint(n);
                self.l.nest_sparse(|l| {
                    v.visit_map(Entries {
                        l,
                        left: n,
                        i: 0,
                        hint,
                    })
                })
            }
            wire::NONE | wire::SOME => self.option(tag, v),
            wire::STRUCT => {
                self.l.reader().u8()?;
                self.visit_struct(v)
            }
            wire::VARIANT => self.l.nest_sparse(|l| v.visit_enum(Enum { l })),
            wire::PACKED => {
                let r = self.l.reader();
                r.u8()?;
                let k = r.u8()?;
                let kind = Packed::from_byte(k)
                    .ok_or_else(|| Error::invalid(format!("unknown packed kind {k}")).at(at))?;
                let n = r.count(kind.size())?;
                let bytes = r.bytes((n * kind.size()) as u64)?;
                if kind == Packed::U8 {
                    v.visit_borrowed_bytes(bytes)
                } else {
                    v.visit_seq(Numbers { kind, bytes })
                }
            }
            t => return Err(refused(t, at)),
        };
        r.map_err(|e| e.at(at))
    }

    fn deserialize_option<V: Visitor<'de>>(mut self, v: V) -> Result<V::Value> {
        match self.peek()? {
            t @ (wire::NONE | wire::SOME) => self.option(t, v),
            // A field that became optional: the stream holds the bare value.
            _ => v.visit_some(self),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        mut self,
        name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value> {
        let at = self.l.offset();
        match self.peek()? {
            wire::VARIANT => self.deserialize_any(v),
            // A unit variant by name.
            wire::STR => {
                let s = self.l.read_str()?;
                v.visit_enum(BorrowedStrDeserializer::new(s))
            }
            t => Err(Error::mismatch(format!("enum `{name}`"), wire::tag_name(t)).at(at)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value> {
        if self.l.next_is_newtype() {
            self.l.reader().u8()?;
            self.l.read_type(wire::STRUCT)?;
            return self
                .l
                .nest_sparse(|l| v.visit_newtype_struct(De { l }))
                .map_err(|e| e.in_field("0"));
        }
        // A transparent stream: the inner value itself.
        v.visit_newtype_struct(self)
    }

    fn deserialize_tuple<V: Visitor<'de>>(mut self, _len: usize, v: V) -> Result<V::Value> {
        if self.peek()? == wire::STRUCT {
            self.l.reader().u8()?;
            return self.visit_struct_as_seq(v);
        }
        self.deserialize_any(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        v: V,
    ) -> Result<V::Value> {
        self.deserialize_tuple(len, v)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        mut self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value> {
        if self.peek()? == wire::STRUCT {
            let at = self.l.offset();
            self.l.reader().u8()?;
            let ty = self.l.read_type(wire::STRUCT)?;
            let n = self.l.type_def(ty).members.len();
            if n != 0 {
                let name = self.l.type_def(ty).name;
                return Err(Error::mismatch(
                    "a unit struct",
                    format!("struct `{name}` with {n} fields"),
                )
                .at(at));
            }
            return v.visit_unit();
        }
        self.deserialize_any(v)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        self.l.skip_value()?;
        v.visit_unit()
    }

    fn is_human_readable(&self) -> bool {
        super::HUMAN_READABLE
    }

    // What serde's own types ask for, read straight when the stream holds
    // the common form (with the loader's own readers); anything else goes
    // through `deserialize_any`.
    typed! {
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
            => |t| t >= wire::SMALL || t == wire::UINT || t == wire::U64,
            |l, v| v.visit_u64(l.read_u64("integer")?);
        deserialize_f32 => |t| t == wire::F32, |l, v| v.visit_f32(l.read_f32()?);
        deserialize_f64 => |t| t == wire::F64, |l, v| v.visit_f64(l.read_f64()?);
        deserialize_bool => |t| t == wire::FALSE || t == wire::TRUE,
            |l, v| v.visit_bool(l.read_bool()?);
        deserialize_str deserialize_string => |t| t == wire::STR,
            |l, v| v.visit_borrowed_str(l.read_str()?);
        deserialize_seq => |t| t == wire::SEQ, |l, v| De { l }.visit_seq(v);
    }

    fn deserialize_struct<V: Visitor<'de>>(
        mut self,
        _name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value> {
        if self.peek()? != wire::STRUCT {
            return self.deserialize_any(v);
        }
        let at = self.l.offset();
        self.l.reader().u8()?;
        self.visit_struct(v).map_err(|e| e.at(at))
    }

    ::serde::forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf unit map identifier
    }
}

impl<'de> De<'_, 'de, '_> {
    /// Reads the value with `read` when its tag is a `usual` one for what
    /// the visitor asked (errors placed at the value), else through
    /// `deserialize_any`. An input cut before the tag goes that way too,
    /// which reports it.
    #[inline(always)]
    fn usual<V: Visitor<'de>>(
        self,
        v: V,
        usual: impl FnOnce(u8) -> bool,
        read: impl FnOnce(&mut Loader<'de, '_>, V) -> Result<V::Value>,
    ) -> Result<V::Value> {
        match self.l.reader().peek().ok() {
            Some(t) if usual(t) => {
                let at = self.l.offset();
                read(self.l, v).map_err(|e| e.at(at))
            }
            _ => self.deserialize_any(v),
        }
    }
}

/// The values of a SEQ, a TUPLE or a STRUCT read as a sequence.
struct Elements<'b, 'de, 'r> {
    l: &'b mut Loader<'de, 'r>,
    left: usize,
    i: u64,
}

/// A SEQ with a size hint.
struct Hinted<'b, 'de, 'r>(Elements<'b, 'de, 'r>, Option<usize>);

impl<'b, 'de, 'r> Elements<'b, 'de, 'r> {
    fn hinted(self, hint: Option<usize>) -> Hinted<'b, 'de, 'r> {
        Hinted(self, hint)
    }

    fn next<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let i = self.i;
        self.i += 1;
        seed.deserialize(De { l: &mut *self.l })
            .map(Some)
            .map_err(|e| e.in_index(i))
    }
}

impl<'de> de::SeqAccess<'de> for Elements<'_, 'de, '_> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        self.next(seed)
    }
}

impl<'de> de::SeqAccess<'de> for Hinted<'_, 'de, '_> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        self.0.next(seed)
    }
    fn size_hint(&self) -> Option<usize> {
        self.1
    }
}

/// The fields of a STRUCT, as a map keyed by field name.
struct Fields<'b, 'de, 'r> {
    l: &'b mut Loader<'de, 'r>,
    ty: u32,
    i: usize,
    n: usize,
}

impl<'de> de::MapAccess<'de> for Fields<'_, 'de, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        if self.i == self.n {
            return Ok(None);
        }
        let name: &'de str = self.l.type_def(self.ty).members[self.i];
        seed.deserialize(BorrowedStrDeserializer::new(name))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        self.i += 1;
        seed.deserialize(De { l: &mut *self.l })
            .map_err(|e| self.in_this_field(e))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.n - self.i)
    }
}

impl Fields<'_, '_, '_> {
    /// An error in the value of the field just read, placed in that field
    /// (its name looked up again here, off the path of every value).
    #[cold]
    #[inline(never)]
    fn in_this_field(&self, e: Error) -> Error {
        let members = &self.l.type_def(self.ty).members;
        match self.i.checked_sub(1).and_then(|i| members.get(i)) {
            Some(name) => e.in_field(name),
            None => e,
        }
    }
}

/// The entries of a MAP.
struct Entries<'b, 'de, 'r> {
    l: &'b mut Loader<'de, 'r>,
    left: usize,
    i: u64,
    hint: Option<usize>,
}

impl<'de> de::MapAccess<'de> for Entries<'_, 'de, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(De { l: &mut *self.l })
            .map(Some)
            .map_err(|e| e.in_index(self.i))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        let i = self.i;
        self.i += 1;
        seed.deserialize(De { l: &mut *self.l })
            .map_err(|e| e.in_index(i))
    }

    fn size_hint(&self) -> Option<usize> {
        self.hint
    }
}

/// The numbers of a PACKED array of a kind other than u8.
struct Numbers<'de> {
    kind: Packed,
    bytes: &'de [u8],
}

impl<'de> de::SeqAccess<'de> for Numbers<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        let size = self.kind.size();
        let Some((b, rest)) = self.bytes.split_at_checked(size) else {
            return Ok(None);
        };
        self.bytes = rest;
        fn n<const N: usize>(b: &[u8]) -> [u8; N] {
            let mut a = [0; N];
            a.copy_from_slice(b);
            a
        }
        macro_rules! num {
            ($t:ty) => {
                seed.deserialize(IntoDeserializer::<Error>::into_deserializer(
                    <$t>::from_le_bytes(n(b)),
                ))
            };
        }
        macro_rules! by_kind {
            ($($kind:ident => $t:ty),*) => {
                match self.kind {
                    $(Packed::$kind => num!($t),)*
                }
            };
        }
        by_kind!(U8 => u8, I8 => i8, U16 => u16, I16 => i16, U32 => u32, I32 => i32,
            U64 => u64, I64 => i64, U128 => u128, I128 => i128, F32 => f32, F64 => f64)
        .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.bytes.len() / self.kind.size())
    }
}

/// A VARIANT: the variant named by the stream, then its payload.
struct Enum<'b, 'de, 'r> {
    l: &'b mut Loader<'de, 'r>,
}

impl<'b, 'de, 'r> de::EnumAccess<'de> for Enum<'b, 'de, 'r> {
    type Error = Error;
    type Variant = Variant<'b, 'de, 'r>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self::Variant)> {
        self.l.reader().u8()?;
        let ty = self.l.read_type(wire::VARIANT)?;
        let at = self.l.offset();
        let j = self.l.reader().varint()?;
        let def = self.l.type_def(ty);
        let Some(&name) = def.members.get(j as usize) else {
            return Err(Error::invalid(format!(
                "variant index {j} out of range for `{}`",
                def.name
            ))
            .at(at));
        };
        let v = seed
            .deserialize(BorrowedStrDeserializer::<Error>::new(name))
            .map_err(|e| e.at(at))?;
        Ok((v, Variant { l: self.l, name }))
    }
}

/// A variant's payload: UNIT, or a STRUCT `Enum::Variant`.
struct Variant<'b, 'de, 'r> {
    l: &'b mut Loader<'de, 'r>,
    name: &'de str,
}

impl<'de> Variant<'_, 'de, '_> {
    /// Reads the payload's STRUCT tag and type.
    /// The payload's STRUCT header: its type and member count (errors
    /// placed in the variant).
    fn payload(&mut self, what: &str) -> Result<(u32, usize)> {
        let at = self.l.offset();
        let header = match self.l.reader().u8() {
            Ok(wire::STRUCT) => self.l.read_type(wire::STRUCT),
            Ok(t) => Err(Error::mismatch(what, wire::tag_name(t)).at(at)),
            Err(e) => Err(e),
        };
        let ty = header.map_err(|e| e.in_field(self.name))?;
        Ok((ty, self.l.type_def(ty).members.len()))
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'_, 'de, '_> {
    type Error = Error;

    fn unit_variant(self) -> Result<()> {
        let name = self.name;
        self.l.read_unit().map_err(|e| e.in_field(name))
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(mut self, seed: T) -> Result<T::Value> {
        let name = self.name;
        let at = self.l.offset();
        let (ty, _) = self.payload("a newtype variant's payload")?;
        let def = self.l.type_def(ty);
        if def.members.len() != 1 {
            return Err(Error::mismatch(
                "a newtype variant's payload of one field",
                format!("`{}` with {} fields", def.name, def.members.len()),
            )
            .at(at)
            .in_field(name));
        }
        seed.deserialize(De { l: self.l })
            .map_err(|e| e.in_field("0").in_field(name))
    }

    fn tuple_variant<V: Visitor<'de>>(mut self, _len: usize, v: V) -> Result<V::Value> {
        let (name, (_, n)) = (self.name, self.payload("a tuple variant's payload")?);
        v.visit_seq(Elements {
            l: self.l,
            left: n,
            i: 0,
        })
        .map_err(|e| e.in_field(name))
    }

    fn struct_variant<V: Visitor<'de>>(
        mut self,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value> {
        let (name, (ty, n)) = (self.name, self.payload("a struct variant's payload")?);
        v.visit_map(Fields {
            l: self.l,
            ty,
            i: 0,
            n,
        })
        .map_err(|e| e.in_field(name))
    }
}
