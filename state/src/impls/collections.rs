//! Sequences, maps and sets. Hash containers are written sorted by encoded
//! key so the bytes do not depend on the hash seed; loads preallocate only
//! what the input can hold and reject duplicate keys.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, LinkedList, VecDeque};
use std::hash::{BuildHasher, Hash};

use crate::error::{Error, Result};
use crate::{Loader, Saver, Stateify};

// Sequences nest (depth limit, stack growth) where they recurse: in
// `Saver::write_seq` and `Loader::read_elements`; packed arrays never recurse.
impl<T: Stateify> Stateify for Vec<T> {
    #[inline]
    fn save(&self, s: &mut Saver) -> Result<()> {
        T::save_seq([self, &[]], s)
    }
    #[inline]
    fn load(l: &mut Loader) -> Result<Self> {
        T::load_seq(l)
    }
}

/// A slice saves as a sequence; it loads behind a pointer (`Box<[T]>`,
/// `Rc<[T]>`, `Arc<[T]>`, through `DynLoad`) or as a `Vec`.
impl<T: Stateify> Stateify for [T] {
    fn save(&self, s: &mut Saver) -> Result<()> {
        T::save_seq([self, &[]], s)
    }
}

impl<T: Stateify> Stateify for VecDeque<T> {
    fn save(&self, s: &mut Saver) -> Result<()> {
        let (a, b) = self.as_slices();
        T::save_seq([a, b], s)
    }
    fn load(l: &mut Loader) -> Result<Self> {
        T::load_seq(l).map(VecDeque::from)
    }
}

/// A heap saves its array as it is (already a valid heap, so the load's
/// heapify moves nothing): the same pops in the same order after a load.
impl<T: Stateify + Ord> Stateify for BinaryHeap<T> {
    fn save(&self, s: &mut Saver) -> Result<()> {
        T::save_seq([self.as_slice(), &[]], s)
    }
    fn load(l: &mut Loader) -> Result<Self> {
        T::load_seq(l).map(BinaryHeap::from)
    }
}

impl<T: Stateify> Stateify for LinkedList<T> {
    fn save(&self, s: &mut Saver) -> Result<()> {
        s.write_seq(self.len(), self)
    }
    fn load(l: &mut Loader) -> Result<Self> {
        T::load_seq(l).map(LinkedList::from_iter)
    }
}

impl<T: Stateify, const N: usize> Stateify for [T; N] {
    fn save(&self, s: &mut Saver) -> Result<()> {
        T::save_seq([self, &[]], s)
    }
    fn load(l: &mut Loader) -> Result<Self> {
        T::load_array::<N>(l)
    }
}

#[cfg(feature = "smallvec")]
impl<A: smallvec::Array> Stateify for smallvec::SmallVec<A>
where
    A::Item: Stateify,
{
    fn save(&self, s: &mut Saver) -> Result<()> {
        A::Item::save_seq([self, &[]], s)
    }
    fn load(l: &mut Loader) -> Result<Self> {
        A::Item::load_seq(l).map(smallvec::SmallVec::from_vec)
    }
}

#[cold]
fn duplicate(i: usize, at: u64) -> Error {
    Error::invalid(format!("duplicate key at entry {i}")).at(at)
}

/// Loads map entries into the map that `new` makes for their count,
/// through `insert`, which reports whether the key was new.
#[inline]
fn load_entries<M, K: Stateify, V: Stateify>(
    l: &mut Loader,
    new: impl FnOnce(usize, &mut Loader) -> M,
    mut insert: impl FnMut(&mut M, K, V) -> bool,
) -> Result<M> {
    let n = l.read_map_header()?;
    load_all(l, n, new, |m, l, i| {
        let k = K::load(l).map_err(|e| e.in_index(i as u64))?;
        let v = V::load(l).map_err(|e| e.in_index(i as u64))?;
        Ok(insert(m, k, v))
    })
}

/// Loads set elements into the set that `new` makes for their count,
/// through `insert`.
#[inline]
fn load_items<M, K: Stateify>(
    l: &mut Loader,
    new: impl FnOnce(usize, &mut Loader) -> M,
    mut insert: impl FnMut(&mut M, K) -> bool,
) -> Result<M> {
    let n = l.read_seq_header()?;
    load_all(l, n, new, |m, l, i| {
        let k = K::load(l).map_err(|e| e.in_index(i as u64))?;
        Ok(insert(m, k))
    })
}

/// Loads `n` entries into the container `new` makes, each by `one`, which
/// reports whether its key was new (a repeated key is an error).
#[inline(always)]
fn load_all<M>(
    l: &mut Loader,
    n: usize,
    new: impl FnOnce(usize, &mut Loader) -> M,
    mut one: impl FnMut(&mut M, &mut Loader, usize) -> Result<bool>,
) -> Result<M> {
    let mut m = new(n, l);
    l.nest(|l| {
        for i in 0..n {
            let at = l.offset();
            if !one(&mut m, l, i)? {
                return Err(duplicate(i, at));
            }
        }
        Ok(())
    })?;
    Ok(m)
}

/// How many of `n` announced entries a hash table may make room for up
/// front. Each costs its size and a control byte, times 5/2: a table rounds
/// its buckets up to a power of two at most 7/8 full (at most 16/7 as many).
fn hashed<T>(n: usize, l: &mut Loader) -> usize {
    l.preallocation(n, (std::mem::size_of::<T>() + 1) * 5 / 2)
}

impl<K, V, S> Stateify for HashMap<K, V, S>
where
    K: Stateify + Eq + Hash,
    V: Stateify,
    S: BuildHasher + Default,
{
    fn save(&self, s: &mut Saver) -> Result<()> {
        s.write_map(self.len(), self.iter(), false)
    }
    fn load(l: &mut Loader) -> Result<Self> {
        load_entries(
            l,
            |n, l| HashMap::with_capacity_and_hasher(hashed::<(K, V)>(n, l), S::default()),
            |m, k, v| m.insert(k, v).is_none(),
        )
    }
}

impl<K: Stateify + Ord, V: Stateify> Stateify for BTreeMap<K, V> {
    fn save(&self, s: &mut Saver) -> Result<()> {
        s.write_map(self.len(), self.iter(), true)
    }
    fn load(l: &mut Loader) -> Result<Self> {
        load_entries(
            l,
            |_, _| BTreeMap::new(),
            |m, k, v| m.insert(k, v).is_none(),
        )
    }
}

impl<K, S> Stateify for HashSet<K, S>
where
    K: Stateify + Eq + Hash,
    S: BuildHasher + Default,
{
    fn save(&self, s: &mut Saver) -> Result<()> {
        s.write_set(self.len(), self.iter(), false)
    }
    fn load(l: &mut Loader) -> Result<Self> {
        load_items(
            l,
            |n, l| HashSet::with_capacity_and_hasher(hashed::<K>(n, l), S::default()),
            |m, k| m.insert(k),
        )
    }
}

impl<K: Stateify + Ord> Stateify for BTreeSet<K> {
    fn save(&self, s: &mut Saver) -> Result<()> {
        s.write_set(self.len(), self.iter(), true)
    }
    fn load(l: &mut Loader) -> Result<Self> {
        load_items(l, |_, _| BTreeSet::new(), |m, k| m.insert(k))
    }
}
