//! The type table: each graph names every struct and enum type once.
//!
//! A `STRUCT`/`VARIANT`/`DYN` tag is followed by a varint type id. Ids are
//! dense and assigned in order of first use; the first use of an id carries
//! its definition inline (name, member count, member names), so the table is
//! built in a single pass by writer and reader alike. Field (or variant)
//! names are what loading matches on, so reordered fields still load.
//!
//! The definition format belongs to this module: [`DefKind`] and its tag
//! both ways, [`TypeDef`], and the reader ([`TypeTable`]). The writer is the
//! saver's `save/types.rs`, which emits exactly what `read_ref` reads.

use crate::error::{Error, Result};
use crate::reader::Reader;
use crate::wire::{self, Packed};

/// What a type definition describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DefKind {
    /// Members are field names, values follow in that order.
    Struct,
    /// Members are variant names.
    Enum,
    /// A concrete type behind a trait object: members are unused.
    Dyn,
    /// A plain struct of a packed struct array: members are field names,
    /// each with its number kind and shape.
    Plain,
}

impl DefKind {
    /// The tag that refers to a type of this kind.
    #[inline(always)]
    pub fn tag(self) -> u8 {
        match self {
            DefKind::Struct => wire::STRUCT,
            DefKind::Enum => wire::VARIANT,
            DefKind::Dyn => wire::DYN,
            DefKind::Plain => wire::PACKED_STRUCTS,
        }
    }

    /// The kind of type a tag refers to (`tag` is one of the four).
    pub fn from_tag(tag: u8) -> DefKind {
        match tag {
            wire::VARIANT => DefKind::Enum,
            wire::DYN => DefKind::Dyn,
            wire::PACKED_STRUCTS => DefKind::Plain,
            _ => DefKind::Struct,
        }
    }
}

/// A type as the stream describes it.
#[derive(Clone, Debug)]
pub struct TypeDef<'de> {
    pub kind: DefKind,
    pub name: &'de str,
    pub members: Vec<&'de str>,
    /// For [`DefKind::Plain`]: each member's number kind and shape (0 for
    /// a number, `n + 1` for an array of `n`).
    pub plain: Vec<(Packed, u64)>,
    /// For [`DefKind::Plain`]: the bytes of one record (never 0).
    pub record: usize,
}

/// The most numbers one field of a plain struct may hold, and the largest
/// record: far above any real struct, low enough that sizes cannot overflow.
const MAX_PLAIN_RECORD: u64 = 1 << 32;

/// The stream-side table, built while reading.
#[derive(Default)]
pub(crate) struct TypeTable<'de> {
    pub defs: Vec<TypeDef<'de>>,
}

impl<'de> TypeTable<'de> {
    /// Reads a type id (and its definition on first use) after a tag.
    pub fn read_ref(&mut self, r: &mut Reader<'de>, tag: u8) -> Result<u32> {
        let at = r.offset();
        let id = r.varint()?;
        let kind = DefKind::from_tag(tag);
        if id < self.defs.len() as u64 {
            let def = &self.defs[id as usize];
            if def.kind != kind {
                return Err(Error::invalid(format!(
                    "type #{id} `{}` is a {:?} type, used as {:?}",
                    def.name, def.kind, kind
                ))
                .at(at));
            }
            return Ok(id as u32);
        }
        if id != self.defs.len() as u64 {
            return Err(Error::invalid(format!(
                "type id {id} used before it is defined ({} types so far)",
                self.defs.len()
            ))
            .at(at));
        }
        let name = r.str()?;
        let n = r.count(1)?;
        let mut members = Vec::with_capacity(n.min(1024));
        let mut plain = Vec::new();
        let mut record = 0u64;
        for _ in 0..n {
            members.push(r.str()?);
            if kind == DefKind::Plain {
                let at = r.offset();
                let k = r.u8()?;
                let k = Packed::from_byte(k)
                    .ok_or_else(|| Error::invalid(format!("unknown number kind {k}")).at(at))?;
                let shape = r.varint()?;
                let numbers = if shape == 0 { 1 } else { shape - 1 };
                record += numbers.min(MAX_PLAIN_RECORD) * k.size() as u64;
                if numbers > MAX_PLAIN_RECORD || record > MAX_PLAIN_RECORD {
                    return Err(Error::invalid(format!(
                        "plain type `{name}` has a record over {MAX_PLAIN_RECORD} bytes"
                    ))
                    .at(at));
                }
                plain.push((k, shape));
            }
        }
        if kind == DefKind::Plain && record == 0 {
            return Err(Error::invalid(format!("plain type `{name}` has an empty record")).at(at));
        }
        self.defs.push(TypeDef {
            kind,
            name,
            members,
            plain,
            record: record as usize,
        });
        Ok(id as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_tags_map_both_ways() {
        for k in [DefKind::Struct, DefKind::Enum, DefKind::Dyn, DefKind::Plain] {
            assert_eq!(DefKind::from_tag(k.tag()), k);
        }
    }
}
