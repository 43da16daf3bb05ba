//! The writer's type ids: which id a type has in this save, or that it is
//! new (its definition is then written at this use). Found through a
//! direct-mapped cache of recent types, keyed by the addresses of the
//! static name and member list, before the maps.

use rustc_hash::FxHashMap;

use super::DefKind;

/// A type by its definition: kind, name and member names.
type DefKey = (DefKind, &'static str, &'static [&'static str]);

const CACHE: usize = 64;

#[derive(Clone, Copy)]
struct Slot {
    name: usize,
    /// Member list address | kind.
    members: usize,
    id: u32,
}

impl Slot {
    /// Matches nothing: no static has address 0.
    const EMPTY: Slot = Slot {
        name: 0,
        members: 0,
        id: 0,
    };
}

/// What [`TypeIds::lookup`] found.
pub(crate) enum Def {
    /// Defined earlier in this save: write the id alone.
    Known(u32),
    /// Defined here: write the id, then the definition.
    New(u32),
}

/// The ids of the types defined so far in a save.
pub(crate) struct TypeIds {
    /// Recent types: ones that alternate (a player, its items, their
    /// enchantments…) hit here instead of in `by_ptrs`.
    cache: Box<[Slot; CACHE]>,
    by_def: FxHashMap<DefKey, u32>,
    /// The same ids by the address of the static name and member list:
    /// hashing three words instead of every name (`by_def` decides when an
    /// address is new).
    by_ptrs: FxHashMap<(DefKind, usize, usize), u32>,
    /// Plain struct definitions so far (they are in `by_ptrs` only).
    plain: u32,
    /// Changes whenever ids stop meaning what they meant (a new save, types
    /// forgotten by a rewind): what caches of ids outside the table check.
    pub(crate) gen: u64,
}

impl Default for TypeIds {
    fn default() -> Self {
        TypeIds {
            cache: Box::new([Slot::EMPTY; CACHE]),
            by_def: FxHashMap::default(),
            by_ptrs: FxHashMap::default(),
            plain: 0,
            gen: 1,
        }
    }
}

impl TypeIds {
    /// Where a type's cache slot is, and what the slot holds for it.
    #[inline(always)]
    fn slot(kind: DefKind, name: &'static str, members: &'static [&'static str]) -> (usize, Slot) {
        let (n, m) = (name.as_ptr() as usize, members.as_ptr() as usize);
        // Member lists are arrays of `&str`, so their addresses are
        // 8-aligned and the kind fits in the low bits.
        let key = m | kind as usize;
        let slot = Slot {
            name: n,
            members: key,
            id: 0,
        };
        (((m >> 3) ^ (n >> 4)) % CACHE, slot)
    }

    /// The id of a recently used type (the fast path of every reference).
    #[inline(always)]
    pub(crate) fn cached(
        &self,
        kind: DefKind,
        name: &'static str,
        members: &'static [&'static str],
    ) -> Option<u32> {
        let (at, want) = Self::slot(kind, name, members);
        let slot = self.cache[at];
        (slot.name == want.name && slot.members == want.members).then_some(slot.id)
    }

    /// The id of a type, defining it if it is new (after [`Self::cached`]
    /// missed).
    #[cold]
    pub(crate) fn lookup(
        &mut self,
        kind: DefKind,
        name: &'static str,
        members: &'static [&'static str],
    ) -> Def {
        let (at, slot) = Self::slot(kind, name, members);
        let ptrs = (kind, slot.name, members.as_ptr() as usize);
        let def = match self.by_ptrs.get(&ptrs) {
            Some(&id) => Def::Known(id),
            None => {
                let next = self.next_id();
                let id = *self.by_def.entry((kind, name, members)).or_insert(next);
                self.by_ptrs.insert(ptrs, id);
                if id == next {
                    Def::New(id)
                } else {
                    Def::Known(id)
                }
            }
        };
        let (Def::Known(id) | Def::New(id)) = def;
        self.cache[at] = Slot { id, ..slot };
        def
    }

    /// The id of a plain struct by the addresses of its name and field
    /// list, defining it if it is new. Two Rust types that happen to share
    /// a name and layout get two ids, which readers accept.
    #[inline]
    pub(crate) fn lookup_plain(&mut self, name: usize, fields: usize) -> Def {
        let ptrs = (DefKind::Plain, name, fields);
        if let Some(&id) = self.by_ptrs.get(&ptrs) {
            return Def::Known(id);
        }
        let id = self.next_id();
        self.plain += 1;
        self.by_ptrs.insert(ptrs, id);
        Def::New(id)
    }

    /// The id the next new type definition gets.
    #[inline]
    pub(crate) fn next_id(&self) -> u32 {
        self.by_def.len() as u32 + self.plain
    }

    /// Whether no type is defined.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_def.is_empty() && self.plain == 0
    }

    /// For a new save: no type is defined.
    pub(crate) fn clear(&mut self) {
        self.gen += 1;
        if !self.is_empty() {
            // Slots only ever hold ids of defined types.
            self.cache.fill(Slot::EMPTY);
            self.by_def.clear();
            self.by_ptrs.clear();
            self.plain = 0;
        }
    }

    /// Forgets the types defined since there were `types` (their
    /// definitions were cut from the output); whether there were any.
    pub(crate) fn forget(&mut self, types: u32) -> bool {
        if self.next_id() <= types {
            return false;
        }
        self.gen += 1;
        self.by_def.retain(|_, id| *id < types);
        self.by_ptrs.retain(|_, id| *id < types);
        self.plain = self
            .by_ptrs
            .keys()
            .filter(|k| k.0 == DefKind::Plain)
            .count() as u32;
        self.cache.fill(Slot::EMPTY);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_first_use_order_and_forgotten_after_a_cut() {
        static A: [&str; 1] = ["x"];
        static B: [&str; 2] = ["x", "y"];
        let mut t = TypeIds::default();
        assert!(matches!(t.lookup(DefKind::Struct, "A", &A), Def::New(0)));
        assert!(matches!(t.lookup(DefKind::Struct, "B", &B), Def::New(1)));
        assert!(matches!(t.lookup(DefKind::Struct, "A", &A), Def::Known(0)));
        assert_eq!(t.cached(DefKind::Struct, "A", &A), Some(0));
        assert_eq!(t.cached(DefKind::Enum, "A", &A), None);
        // The same name and members at other addresses are the same type.
        let other: &'static [&'static str] = Box::leak(Box::new(["x"]));
        assert!(matches!(
            t.lookup(DefKind::Struct, "A", other),
            Def::Known(0)
        ));
        // Another kind is another type.
        assert!(matches!(t.lookup(DefKind::Enum, "A", &A), Def::New(2)));
        assert!(matches!(t.lookup_plain(7, 8), Def::New(3)));
        assert!(matches!(t.lookup_plain(7, 8), Def::Known(3)));
        let gen = t.gen;
        assert!(t.forget(1));
        assert!(t.gen > gen);
        assert_eq!(t.next_id(), 1);
        assert!(matches!(t.lookup(DefKind::Struct, "B", &B), Def::New(1)));
        assert!(!t.forget(5));
        t.clear();
        assert!(t.is_empty());
        assert!(matches!(t.lookup(DefKind::Struct, "B", &B), Def::New(0)));
    }
}
