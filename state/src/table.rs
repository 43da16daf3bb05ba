//! The type table: each graph names every struct and enum type once.
//!
//! A `STRUCT`/`VARIANT`/`DYN` tag is followed by a varint type id. Ids are
//! dense and assigned in order of first use; the first use of an id carries
//! its definition inline (name, member count, member names), so the table is
//! built in a single pass by writer and reader alike. Field (or variant)
//! names are what loading matches on, so reordered fields still load.

use crate::error::{Error, Result};
use crate::reader::Reader;
use crate::wire;

/// What a type definition describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DefKind {
    /// Members are field names, values follow in that order.
    Struct,
    /// Members are variant names.
    Enum,
    /// A concrete type behind a trait object: members are unused.
    Dyn,
}

impl DefKind {
    pub fn from_tag(tag: u8) -> DefKind {
        match tag {
            wire::VARIANT => DefKind::Enum,
            wire::DYN => DefKind::Dyn,
            _ => DefKind::Struct,
        }
    }
}

/// A type as the stream describes it.
#[derive(Debug)]
pub struct TypeDef<'de> {
    pub kind: DefKind,
    pub name: &'de str,
    pub members: Vec<&'de str>,
}

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
        for _ in 0..n {
            members.push(r.str()?);
        }
        self.defs.push(TypeDef {
            kind,
            name,
            members,
        });
        Ok(id as u32)
    }
}
