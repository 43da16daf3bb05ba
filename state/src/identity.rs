//! The identity table of a save: object id by (allocation address, type).
//!
//! Every `Rc`/`Arc`/`Weak` met during a save costs one lookup here, and in
//! a large graph almost every lookup misses the cache, so the table is laid
//! out for that: open addressing with linear probing over one array of
//! 16-byte slots (address, type index, id), at most half full. A lookup
//! usually reads one cache line, where a general-purpose map reads a
//! control array and a bucket array. A sequence of shared pointers asks
//! for the slot of the element a few places ahead early
//! (`Identities::prefetch`, from `Saver::write_shared_seq`), so that
//! the cache misses of consecutive lookups overlap.
//!
//! Types are interned to small indexes ([`TypeIndex`]), exact: the same
//! allocation saved as `Rc<T>` and as `Rc<dyn Trait>` is two objects.

use std::any::TypeId;

use rustc_hash::FxHashMap;

/// One slot: `addr == 0` marks it empty (no allocation lives at address 0).
#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct Slot {
    addr: usize,
    ty: u32,
    id: u32,
}

const EMPTY: Slot = Slot {
    addr: 0,
    ty: 0,
    id: 0,
};

/// The smallest table allocated.
const MIN_SLOTS: usize = 64;

/// Object ids by identity.
#[derive(Default)]
pub(crate) struct Identities {
    /// Power-of-two length, or empty before the first insert.
    slots: Vec<Slot>,
    len: usize,
}

impl Identities {
    #[inline]
    fn home(&self, addr: usize, ty: u32) -> usize {
        // A folded multiply: the high and low halves of the 128-bit
        // product, xored, so every input bit reaches the low bits taken as
        // the index. (The top bits of a plain 64-bit product, Fibonacci
        // hashing, map the arithmetic runs of addresses that an allocator
        // hands out to interleaved runs of slots, and linear probing then
        // walks ~12 slots a lookup instead of ~1.4.)
        let x = (addr as u64) ^ ((ty as u64) << 40);
        let p = (x as u128) * 0x9e37_79b9_7f4a_7c15;
        ((p as u64) ^ ((p >> 64) as u64)) as usize & (self.slots.len() - 1)
    }

    /// The id of the object at `addr` saved as type `ty`, if it has one.
    #[inline]
    pub fn get(&self, addr: usize, ty: u32) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(addr, ty);
        loop {
            let s = self.slots[i];
            if s.addr == 0 {
                return None;
            }
            if s.addr == addr && s.ty == ty {
                return Some(s.id);
            }
            i = (i + 1) & mask;
        }
    }

    /// Asks the cache for the slot where a lookup of this identity starts
    /// (a hint: it never fails and changes nothing).
    #[inline]
    pub fn prefetch(&self, addr: usize, ty: u32) {
        if !self.slots.is_empty() {
            crate::mem::prefetch(&self.slots[self.home(addr, ty)]);
        }
    }

    /// Records `id` for an identity that [`get`](Self::get) just missed.
    pub fn insert(&mut self, addr: usize, ty: u32, id: u32) {
        debug_assert!(addr != 0);
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        self.place(Slot { addr, ty, id });
        self.len += 1;
    }

    /// Removes an identity (a rewind of the save, `Saver::rollback`):
    /// backward-shift deletion, so no lookup ever needs a tombstone.
    pub fn remove(&mut self, addr: usize, ty: u32) {
        if self.slots.is_empty() {
            return;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(addr, ty);
        loop {
            let s = self.slots[i];
            if s.addr == 0 {
                return;
            }
            if s.addr == addr && s.ty == ty {
                break;
            }
            i = (i + 1) & mask;
        }
        // Pull back each later slot of the run whose home lies at or before
        // the hole (cyclically), so every entry stays reachable.
        let mut hole = i;
        let mut j = (i + 1) & mask;
        while self.slots[j].addr != 0 {
            let home = self.home(self.slots[j].addr, self.slots[j].ty);
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.slots[hole] = self.slots[j];
                hole = j;
            }
            j = (j + 1) & mask;
        }
        self.slots[hole] = EMPTY;
        self.len -= 1;
    }

    fn place(&mut self, slot: Slot) {
        let mask = self.slots.len() - 1;
        let mut i = self.home(slot.addr, slot.ty);
        while self.slots[i].addr != 0 {
            debug_assert!(self.slots[i].addr != slot.addr || self.slots[i].ty != slot.ty);
            i = (i + 1) & mask;
        }
        self.slots[i] = slot;
    }

    #[cold]
    fn grow(&mut self) {
        let n = (self.slots.len() * 2).max(MIN_SLOTS);
        // A large table is probed at random: on huge pages its probes do
        // not miss the TLB as well as the cache, and filling it faults
        // 512× less often.
        let mut slots = Vec::with_capacity(n);
        crate::mem::advise_vec(&mut slots);
        slots.resize(n, EMPTY);
        let old = std::mem::replace(&mut self.slots, slots);
        for s in old.into_iter().filter(|s| s.addr != 0) {
            self.place(s);
        }
    }

    /// Empties the table. The memory is kept when the last save filled at
    /// least an eighth of it, so clearing costs at most a few times what
    /// that save spent inserting.
    pub fn clear(&mut self) {
        if self.len * 8 < self.slots.len() {
            self.slots = Vec::new();
        } else {
            self.slots.fill(EMPTY);
        }
        self.len = 0;
    }

    /// Slots a lookup of this identity reads.
    #[cfg(test)]
    fn probe_len(&self, addr: usize, ty: u32) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = self.home(addr, ty);
        let mut n = 1;
        while self.slots[i].addr != 0 && (self.slots[i].addr, self.slots[i].ty) != (addr, ty) {
            i = (i + 1) & mask;
            n += 1;
        }
        n
    }

    /// Slots allocated (for the retention limit between saves).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }
}

/// Small exact indexes for the types of shared objects, with a
/// direct-mapped cache in front of the map: a graph has a handful of
/// pointee types, each looked up once per pointer.
pub(crate) struct TypeIndex {
    cache: [(TypeId, u32); TYPE_SLOTS],
    map: FxHashMap<TypeId, u32>,
}

const TYPE_SLOTS: usize = 16;

impl Default for TypeIndex {
    fn default() -> Self {
        TypeIndex {
            // `()` is never a shared object's type here (its index would be
            // found in `map` anyway): it marks an unused cache slot.
            cache: [(TypeId::of::<()>(), u32::MAX); TYPE_SLOTS],
            map: FxHashMap::default(),
        }
    }
}

impl TypeIndex {
    /// The index of `T` (stable for the life of this table).
    #[inline]
    pub fn of<T: ?Sized + 'static>(&mut self) -> u32 {
        let t = TypeId::of::<T>();
        let slot = type_slot(t);
        let (ct, ci) = self.cache[slot];
        if ct == t && ci != u32::MAX {
            return ci;
        }
        self.miss(t, slot)
    }

    #[cold]
    fn miss(&mut self, t: TypeId, slot: usize) -> u32 {
        let next = self.map.len() as u32;
        let i = *self.map.entry(t).or_insert(next);
        self.cache[slot] = (t, i);
        i
    }
}

/// The cache slot of a type: a hash of its `TypeId`, which the compiler
/// folds to a constant for each `T`.
#[inline]
fn type_slot(t: TypeId) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    t.hash(&mut h);
    (h.finish() >> 32) as usize % TYPE_SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removals_keep_every_other_entry_reachable() {
        let mut t = Identities::default();
        // Addresses in runs, so probe runs form and wrap.
        let addrs: Vec<usize> = (1..3000).map(|i| 0x1000 + i * 16).collect();
        for (i, &a) in addrs.iter().enumerate() {
            t.insert(a, (i % 3) as u32, i as u32);
        }
        let removed = |i: usize| i % 2 == 0;
        for (i, &a) in addrs.iter().enumerate().rev() {
            if removed(i) {
                t.remove(a, (i % 3) as u32);
            }
        }
        t.remove(0xdead_0000, 0); // absent: nothing happens
        for (i, &a) in addrs.iter().enumerate() {
            let want = (!removed(i)).then_some(i as u32);
            assert_eq!(t.get(a, (i % 3) as u32), want, "{i}");
        }
        assert_eq!(t.len, addrs.len() - addrs.len().div_ceil(2));
    }

    #[test]
    fn finds_what_was_inserted_across_growth() {
        let mut t = Identities::default();
        // Addresses 16 apart, as an allocator hands them out, and the same
        // addresses again under a second type.
        for i in 0..10_000u32 {
            let addr = 0x10_0000 + 16 * i as usize;
            assert_eq!(t.get(addr, 0), None);
            t.insert(addr, 0, i);
        }
        for i in 0..10_000u32 {
            let addr = 0x10_0000 + 16 * i as usize;
            assert_eq!(t.get(addr, 1), None, "type is part of the identity");
            t.insert(addr, 1, 20_000 + i);
        }
        for i in 0..10_000u32 {
            let addr = 0x10_0000 + 16 * i as usize;
            assert_eq!(t.get(addr, 0), Some(i));
            assert_eq!(t.get(addr, 1), Some(20_000 + i));
        }
        assert_eq!(t.get(8, 0), None);
        assert_eq!(t.get(0, 0), None, "empty slots match no address");
        assert!(t.capacity() >= 40_000);
        t.clear();
        assert_eq!(t.get(0x10_0000, 0), None);
        assert!(t.capacity() >= 40_000, "a full table keeps its memory");
        t.insert(0x10_0000, 0, 7);
        t.clear();
        assert_eq!(t.capacity(), 0, "a nearly empty table gives it back");
        assert_eq!(t.get(0x10_0000, 0), None);
    }

    #[test]
    fn allocator_address_runs_do_not_cluster() {
        // Two interleaved arithmetic runs, as an allocator hands out the
        // nodes of two types: a weak hash (one multiply) walks ~12 slots a
        // lookup here.
        let interleaved = (0..20_000).map(|i| 0x5555_0000_0000 + 144 * i);
        let interleaved = interleaved.chain((0..10_000).map(|i| 0x5555_0010_0000 + 96 * i));
        let mut cases: Vec<Vec<usize>> = vec![interleaved.collect()];
        // Single runs of common node sizes, up to whole pages.
        for stride in [16, 48, 80, 4096, 1 << 16] {
            cases.push((0..30_000).map(|i| 0x7f12_3456_7000 + stride * i).collect());
        }
        for addrs in cases {
            let mut t = Identities::default();
            for (id, &a) in addrs.iter().enumerate() {
                t.insert(a, 0, id as u32);
            }
            let probes: usize = addrs.iter().map(|&a| t.probe_len(a, 0)).sum();
            let mean = probes as f64 / addrs.len() as f64;
            assert!(
                mean < 2.0,
                "{mean} slots a lookup, from {:#x} by {:#x}",
                addrs[0],
                addrs[1] - addrs[0]
            );
        }
    }

    #[test]
    fn type_indexes_are_exact_and_stable() {
        let mut ti = TypeIndex::default();
        let a = ti.of::<u32>();
        let b = ti.of::<dyn std::fmt::Debug>();
        let c = ti.of::<String>();
        assert_ne!(a, b);
        assert_ne!(b, c);
        assert_ne!(a, c);
        // More types than cache slots: evicted entries come back from the map.
        macro_rules! many {
            ($($t:ty),*) => { $( let _ = ti.of::<$t>(); )* };
        }
        many!(
            u8,
            u16,
            u64,
            i8,
            i16,
            i32,
            i64,
            f32,
            f64,
            char,
            bool,
            Vec<u8>,
            Vec<u32>,
            (u8, u8),
            Option<u8>,
            [u8; 2],
            [u8; 3],
            [u8; 4],
            Box<u8>
        );
        assert_eq!((ti.of::<u32>(), ti.of::<dyn std::fmt::Debug>()), (a, b));
        assert_eq!(ti.of::<String>(), c);
        assert_eq!(
            ti.of::<()>(),
            ti.of::<()>(),
            "the marker type is indexed too"
        );
        assert_ne!(ti.of::<()>(), a);
    }
}
