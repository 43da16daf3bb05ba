//! Type references as written: the tag and the id, with the definition at
//! a type's first use. Which id a type has, and whether it is new, is the
//! type table's (`table::TypeIds`); this file only emits the bytes.

use super::*;
use crate::table::Def;

impl Saver {
    /// Writes `tag` and a type reference, with its definition on first use.
    #[inline(always)]
    pub(crate) fn type_ref(
        &mut self,
        kind: DefKind,
        name: &'static str,
        members: &'static [&'static str],
    ) -> u32 {
        self.tag(kind.tag());
        if let Some(id) = self.type_ids.cached(kind, name, members) {
            self.varint(id as u64);
            return id;
        }
        self.type_ref_slow(kind, name, members)
    }

    /// A type reference the cache did not have: the id, and the definition
    /// if the type is new (name, member count, member names).
    #[cold]
    fn type_ref_slow(
        &mut self,
        kind: DefKind,
        name: &'static str,
        members: &'static [&'static str],
    ) -> u32 {
        let id = match self.type_ids.lookup(kind, name, members) {
            Def::Known(id) => {
                self.varint(id as u64);
                return id;
            }
            Def::New(id) => id,
        };
        self.varint(id as u64);
        self.name(name);
        self.varint(members.len() as u64);
        for m in members {
            self.name(m);
        }
        self.counters.add_type(name, kind == DefKind::Dyn);
        id
    }

    /// The id the next new type definition gets.
    pub(crate) fn next_type_id(&self) -> u32 {
        self.type_ids.next_id()
    }

    /// Changes whenever type ids stop meaning what they meant (a new save,
    /// types forgotten by a rewind): what caches of ids outside the table
    /// check.
    #[inline]
    pub(crate) fn type_gen(&self) -> u64 {
        self.type_ids.gen
    }

    /// A name in a type definition: varint length and bytes, no tag.
    pub(super) fn name(&mut self, s: &str) {
        self.varint(s.len() as u64);
        self.raw(s.as_bytes());
    }

    /// Forgets the types defined since there were `types`, whose
    /// definitions were cut from the output.
    pub(crate) fn forget_types(&mut self, types: u32) {
        if self.type_ids.forget(types) {
            self.counters.forget_types(types as usize);
        }
    }

    /// Writes the tag and type id of plain struct `T` (its definition on
    /// first use: names, and each field's number kind and shape).
    #[inline]
    pub(super) fn plain_type_ref<T: crate::plain::Plain>(&mut self) -> u32 {
        self.tag(DefKind::Plain.tag());
        let def = self
            .type_ids
            .lookup_plain(T::NAME.as_ptr() as usize, T::FIELDS.as_ptr() as usize);
        let id = match def {
            Def::Known(id) => {
                self.varint(id as u64);
                return id;
            }
            Def::New(id) => id,
        };
        self.varint(id as u64);
        self.name(T::NAME);
        self.varint(T::FIELDS.len() as u64);
        for f in T::FIELDS {
            self.name(f.name);
            self.tag(f.kind as u8);
            self.varint(f.shape());
        }
        self.counters.add_type(T::NAME, false);
        id
    }
}
