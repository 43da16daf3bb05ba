//! The type table as written: a type's definition at its first use, a
//! reference by id afterwards, found through a direct-mapped cache of
//! recent types before the maps.

use super::*;

pub(super) type DefKey = (DefKind, &'static str, &'static [&'static str]);

pub(super) const TYPE_CACHE: usize = 64;

#[derive(Clone, Copy)]
pub(super) struct TypeSlot {
    pub(super) name: usize,
    /// Member list address | kind.
    pub(super) members: usize,
    pub(super) id: u32,
}

impl TypeSlot {
    /// Matches nothing: no static has address 0.
    pub(super) const EMPTY: TypeSlot = TypeSlot {
        name: 0,
        members: 0,
        id: 0,
    };
}

impl Saver {
    /// Writes `tag` and a type reference, with its definition on first use.
    #[inline(always)]
    pub(crate) fn type_ref(
        &mut self,
        kind: DefKind,
        name: &'static str,
        members: &'static [&'static str],
    ) -> u32 {
        let (n, m) = (name.as_ptr() as usize, members.as_ptr() as usize);
        // Member lists are arrays of `&str`, so their addresses are
        // 8-aligned and the kind fits in the low bits.
        let key = m | kind as usize;
        let at = ((m >> 3) ^ (n >> 4)) % TYPE_CACHE;
        self.tag(kind.tag());
        let slot = self.type_cache[at];
        if slot.name == n && slot.members == key {
            self.varint(slot.id as u64);
            return slot.id;
        }
        let id = self.type_ref_slow(kind, name, members);
        self.type_cache[at] = TypeSlot {
            name: n,
            members: key,
            id,
        };
        id
    }

    #[cold]
    pub(super) fn type_ref_slow(
        &mut self,
        kind: DefKind,
        name: &'static str,
        members: &'static [&'static str],
    ) -> u32 {
        let ptrs = (kind, name.as_ptr() as usize, members.as_ptr() as usize);
        if let Some(&id) = self.def_ptrs.get(&ptrs) {
            self.varint(id as u64);
            return id;
        }
        let next = self.next_type_id();
        let id = *self.defs.entry((kind, name, members)).or_insert(next);
        self.def_ptrs.insert(ptrs, id);
        self.varint(id as u64);
        if id == next {
            self.name(name);
            self.varint(members.len() as u64);
            for m in members {
                self.name(m);
            }
            self.counters.add_type(name, kind == DefKind::Dyn);
        }
        id
    }

    /// The id the next new type definition gets.
    pub(crate) fn next_type_id(&self) -> u32 {
        self.defs.len() as u32 + self.plain_defs
    }

    /// A name in a type definition: varint length and bytes, no tag.
    pub(super) fn name(&mut self, s: &str) {
        self.varint(s.len() as u64);
        self.raw(s.as_bytes());
    }

    /// Forgets the types defined since there were `types`, whose
    /// definitions were cut from the output.
    pub(crate) fn forget_types(&mut self, types: u32) {
        if self.next_type_id() > types {
            self.type_gen += 1;
            self.defs.retain(|_, id| *id < types);
            self.def_ptrs.retain(|_, id| *id < types);
            self.plain_defs = self
                .def_ptrs
                .keys()
                .filter(|k| k.0 == DefKind::Plain)
                .count() as u32;
            self.type_cache.fill(TypeSlot::EMPTY);
            self.counters.forget_types(types as usize);
        }
    }

    /// Writes the tag and type id of plain struct `T` (its definition on
    /// first use: names, and each field's number kind and shape).
    #[inline]
    pub(super) fn plain_type_ref<T: crate::plain::Plain>(&mut self) -> u32 {
        self.tag(DefKind::Plain.tag());
        let ptrs = (
            DefKind::Plain,
            T::NAME.as_ptr() as usize,
            T::FIELDS.as_ptr() as usize,
        );
        if let Some(&id) = self.def_ptrs.get(&ptrs) {
            self.varint(id as u64);
            return id;
        }
        // Keyed by address only: two Rust types that happen to share a name
        // and layout get two ids, which readers accept.
        let id = self.next_type_id();
        self.plain_defs += 1;
        self.def_ptrs.insert(ptrs, id);
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
