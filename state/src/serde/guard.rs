//! Limits for a serde `Deserializer` that has none of its own (postcard):
//! a depth limit, stack growth, and size hints charged to the load's
//! preallocation budget.
//!
//! Serde's containers preallocate from their `size_hint` (up to 1 MiB
//! each). A postcard length is a varint, so one byte of input can claim a
//! million elements; with a recursive type, each level of a hostile input
//! could reserve its megabyte while recursing deeper. The guard wraps every
//! visitor, sequence, map and enum the inner deserializer hands out, so
//! each nested value passes through it: it counts the depth, grows the
//! stack (`mem::grow_stack`) and lets a hint through only while the load's
//! budget lasts.

use std::cell::Cell;
use std::fmt;

use ::serde::de::{self, DeserializeSeed, Deserializer, Visitor};

/// What every wrapper shares: the depth left and the budget.
#[derive(Clone, Copy)]
pub(crate) struct Limits<'b> {
    pub(crate) depth_left: usize,
    pub(crate) budget: &'b Cell<usize>,
    /// Set when the depth limit stopped the decoding (a deserializer may
    /// replace the message of the error the guard raised).
    pub(crate) too_deep: &'b Cell<bool>,
}

/// Bytes charged per hinted element: hints are counts, not sizes.
const HINT_BYTES: usize = 64;

impl<'b> Limits<'b> {
    fn deeper<E: de::Error>(self) -> Result<Limits<'b>, E> {
        match self.depth_left.checked_sub(1) {
            Some(d) => Ok(Limits {
                depth_left: d,
                ..self
            }),
            None => {
                self.too_deep.set(true);
                Err(E::custom("nested deeper than the load's depth limit"))
            }
        }
    }

    fn hint(self, h: Option<usize>) -> Option<usize> {
        let n = h?;
        let cost = n.saturating_mul(HINT_BYTES);
        let left = self.budget.get();
        if cost <= left {
            self.budget.set(left - cost);
            Some(n)
        } else {
            Some(0)
        }
    }
}

/// A deserializer with limits.
pub(crate) struct Guard<'b, D> {
    pub(crate) de: D,
    pub(crate) limits: Limits<'b>,
}

struct Wrap<'b, V> {
    v: V,
    limits: Limits<'b>,
}

macro_rules! forward_deserialize {
    ($($method:ident ( $($arg:ident : $ty:ty),* )),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self $(, $arg: $ty)*, v: V) -> Result<V::Value, D::Error> {
            let limits = self.limits.deeper()?;
            let de = self.de;
            crate::mem::grow_stack(move || de.$method($($arg,)* Wrap { v, limits }))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Guard<'_, D> {
    type Error = D::Error;

    forward_deserialize!(
        deserialize_any(),
        deserialize_bool(),
        deserialize_i8(),
        deserialize_i16(),
        deserialize_i32(),
        deserialize_i64(),
        deserialize_i128(),
        deserialize_u8(),
        deserialize_u16(),
        deserialize_u32(),
        deserialize_u64(),
        deserialize_u128(),
        deserialize_f32(),
        deserialize_f64(),
        deserialize_char(),
        deserialize_str(),
        deserialize_string(),
        deserialize_bytes(),
        deserialize_byte_buf(),
        deserialize_option(),
        deserialize_unit(),
        deserialize_unit_struct(name: &'static str),
        deserialize_newtype_struct(name: &'static str),
        deserialize_seq(),
        deserialize_tuple(len: usize),
        deserialize_tuple_struct(name: &'static str, len: usize),
        deserialize_map(),
        deserialize_struct(name: &'static str, fields: &'static [&'static str]),
        deserialize_enum(name: &'static str, variants: &'static [&'static str]),
        deserialize_identifier(),
        deserialize_ignored_any(),
    );

    fn is_human_readable(&self) -> bool {
        self.de.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident ( $ty:ty )),* $(,)?) => {$(
        fn $method<E: de::Error>(self, x: $ty) -> Result<V::Value, E> {
            self.v.$method(x)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.v.expecting(f)
    }

    forward_visit!(
        visit_bool(bool),
        visit_i8(i8),
        visit_i16(i16),
        visit_i32(i32),
        visit_i64(i64),
        visit_i128(i128),
        visit_u8(u8),
        visit_u16(u16),
        visit_u32(u32),
        visit_u64(u64),
        visit_u128(u128),
        visit_f32(f32),
        visit_f64(f64),
        visit_char(char),
        visit_str(&str),
        visit_borrowed_str(&'de str),
        visit_string(String),
        visit_bytes(&[u8]),
        visit_borrowed_bytes(&'de [u8]),
        visit_byte_buf(Vec<u8>),
    );

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.v.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.v.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.v.visit_some(Guard {
            de: d,
            limits: self.limits,
        })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.v.visit_newtype_struct(Guard {
            de: d,
            limits: self.limits,
        })
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, a: A) -> Result<V::Value, A::Error> {
        self.v.visit_seq(Access {
            a,
            limits: self.limits,
        })
    }

    fn visit_map<A: de::MapAccess<'de>>(self, a: A) -> Result<V::Value, A::Error> {
        self.v.visit_map(Access {
            a,
            limits: self.limits,
        })
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, a: A) -> Result<V::Value, A::Error> {
        self.v.visit_enum(Access {
            a,
            limits: self.limits,
        })
    }
}

/// A sequence, map, enum or variant access with limits.
struct Access<'b, A> {
    a: A,
    limits: Limits<'b>,
}

/// A seed whose deserializer gets the limits.
struct Seed<'b, S> {
    s: S,
    limits: Limits<'b>,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<'_, S> {
    type Value = S::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.s.deserialize(Guard {
            de: d,
            limits: self.limits,
        })
    }
}

impl<'b, A> Access<'b, A> {
    fn seed<S>(&self, s: S) -> Seed<'b, S> {
        Seed {
            s,
            limits: self.limits,
        }
    }
}

/// The next element or key, if any.
type Next<T, E> = Result<Option<T>, E>;

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for Access<'_, A> {
    type Error = A::Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, s: T) -> Next<T::Value, A::Error> {
        self.a.next_element_seed(self.seed(s))
    }
    fn size_hint(&self) -> Option<usize> {
        self.limits.hint(self.a.size_hint())
    }
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for Access<'_, A> {
    type Error = A::Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, s: K) -> Next<K::Value, A::Error> {
        self.a.next_key_seed(self.seed(s))
    }
    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, s: T) -> Result<T::Value, A::Error> {
        self.a.next_value_seed(self.seed(s))
    }
    fn size_hint(&self) -> Option<usize> {
        self.limits.hint(self.a.size_hint())
    }
}

impl<'b, 'de, A: de::EnumAccess<'de>> de::EnumAccess<'de> for Access<'b, A> {
    type Error = A::Error;
    type Variant = Access<'b, A::Variant>;
    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        s: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        let limits = self.limits;
        let (v, a) = self.a.variant_seed(Seed { s, limits })?;
        Ok((v, Access { a, limits }))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Access<'_, A> {
    type Error = A::Error;
    fn unit_variant(self) -> Result<(), A::Error> {
        self.a.unit_variant()
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, s: T) -> Result<T::Value, A::Error> {
        let s = self.seed(s);
        self.a.newtype_variant_seed(s)
    }
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, A::Error> {
        self.a.tuple_variant(
            len,
            Wrap {
                v,
                limits: self.limits,
            },
        )
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, A::Error> {
        self.a.struct_variant(
            fields,
            Wrap {
                v,
                limits: self.limits,
            },
        )
    }
}
