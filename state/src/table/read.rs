//! The reader's type table: definitions read at their first use, ids
//! checked against what is defined so far and against their tag's kind.

use super::{DefKind, TypeDef};
use crate::error::{Error, Result};
use crate::reader::Reader;
use crate::wire::Packed;

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
                let numbers = super::plain_numbers(shape);
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
            members: members.into(),
            plain: plain.into(),
            record: record as usize,
        });
        Ok(id as u32)
    }
}
