//! The type table: each graph names every struct and enum type once.
//!
//! A `STRUCT`/`VARIANT`/`DYN` tag is followed by a varint type id. Ids are
//! dense and assigned in order of first use; the first use of an id carries
//! its definition inline (name, member count, member names), so the table is
//! built in a single pass by writer and reader alike. Field (or variant)
//! names are what loading matches on, so reordered fields still load.
//!
//! Both sides of the table live here: the definition format ([`DefKind`]
//! and its tag both ways, [`TypeDef`]), the reader's table (`read`:
//! [`TypeTable`], used by the loader, the walk and the type-free views)
//! and the writer's ids (`write`: `TypeIds`, which decides whether a type
//! is new or which id it has; the saver's `save/types.rs` only emits the
//! bytes, exactly what `read_ref` reads).

mod read;
mod write;

pub(crate) use read::TypeTable;
pub(crate) use write::{Def, TypeIds};

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
    /// Shared, so that a copy of the table (a walk started in the middle
    /// of a record, `value::Lazy`) copies no lists.
    pub members: std::sync::Arc<[&'de str]>,
    /// For [`DefKind::Plain`]: each member's number kind and shape (0 for
    /// a number, `n + 1` for an array of `n`).
    pub plain: std::sync::Arc<[(Packed, u64)]>,
    /// For [`DefKind::Plain`]: the bytes of one record (never 0).
    pub record: usize,
}

/// How many numbers a plain member of `shape` holds: `0` is one number,
/// `n + 1` an array of `n`.
pub(crate) fn plain_numbers(shape: u64) -> u64 {
    if shape == 0 {
        1
    } else {
        shape - 1
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
