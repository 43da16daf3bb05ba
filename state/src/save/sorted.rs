//! Hash maps and sets, written sorted by the bytes of each key encoded on
//! its own, so the output does not depend on the hash seed.

use super::*;

/// Hash containers with at most this many entries are sorted on the stack.
pub(super) const SMALL_MAP: usize = 16;

/// A hash-container entry being sorted: the span of its key's encoding in
/// the key arena, the key and the value.
pub(super) type Keyed<'x, K, V> = (usize, usize, &'x K, &'x V);

impl Saver {
    /// Writes a map; `sorted` entries are written in iteration order, others
    /// (hash containers) sorted by their encoded key, for determinism.
    pub fn write_map<'x, K, V>(
        &mut self,
        len: usize,
        entries: impl IntoIterator<Item = (&'x K, &'x V)>,
        sorted: bool,
    ) -> Result<()>
    where
        K: Stateify + ?Sized + 'x,
        V: Stateify + ?Sized + 'x,
    {
        self.tag(wire::MAP);
        self.varint(len as u64);
        self.nest(|s| {
            let mut n = 0;
            if sorted {
                for (i, (k, v)) in entries.into_iter().enumerate() {
                    s.entry(i, k, v)?;
                    n += 1;
                }
            } else {
                n = s.write_sorted(entries, true)?;
            }
            check_len(len, n)
        })
    }

    /// Writes a set as a sequence; `sorted` as for [`Saver::write_map`].
    pub fn write_set<'x, K: Stateify + 'x>(
        &mut self,
        len: usize,
        items: impl IntoIterator<Item = &'x K>,
        sorted: bool,
    ) -> Result<()> {
        if sorted {
            return self.write_seq(len, items);
        }
        self.tag(wire::SEQ);
        self.varint(len as u64);
        self.nest(|s| {
            let n = s.write_sorted(items.into_iter().map(|k| (k, &())), false)?;
            check_len(len, n)
        })
    }

    /// Writes hash-container entries (values too if `with_values`) ordered
    /// by the bytes of their key encoded on its own (with a fresh type and
    /// object table), so the order depends on the keys only. Returns the
    /// number of entries.
    ///
    /// All keys are first encoded one after another into the scratch
    /// encoder. If none of them defined a type or met a shared object, each
    /// key's bytes there are exactly its encoding on its own (the common
    /// case: strings, numbers, plain tuples), they are the sort keys, and
    /// they are copied to the output as they are. Otherwise every key is
    /// encoded again on a freshly reset encoder for the sort, and written
    /// through the graph's tables. Maps of up to [`SMALL_MAP`] entries are
    /// sorted on the stack.
    pub(super) fn write_sorted<'x, K, V>(
        &mut self,
        entries: impl IntoIterator<Item = (&'x K, &'x V)>,
        with_values: bool,
    ) -> Result<usize>
    where
        K: Stateify + ?Sized + 'x,
        V: Stateify + ?Sized + 'x,
    {
        let mut scratch = self.take_scratch();
        // Not an array of `Option`s: that was 640 bytes to clear for every
        // map, most of them holding two or three entries.
        let mut small = arrayvec::ArrayVec::<Keyed<'x, K, V>, SMALL_MAP>::new();
        let mut large = Vec::new();
        let mut n = 0;
        let mut encoded = Ok(());
        for (k, v) in entries {
            let start = scratch.buf.len();
            encoded = k.save(&mut scratch).map_err(|e| e.in_index(n as u64));
            if encoded.is_err() {
                break;
            }
            let e = (start, scratch.buf.len(), k, v);
            if n < SMALL_MAP {
                small.push(e);
            } else {
                if n == SMALL_MAP {
                    large.extend_from_slice(&small);
                }
                large.push(e);
            }
            n += 1;
        }
        let context_free = scratch.type_ids.is_empty() && scratch.next_object == 0;
        // The keys' bytes move to the arena (a swap, no copy), so that
        // hash containers in the values can use the scratch encoder; they
        // find the arena taken and use a fresh one meanwhile.
        let mut arena = std::mem::take(&mut self.key_arena);
        std::mem::swap(&mut arena, &mut scratch.buf);
        let keyed = if n <= SMALL_MAP {
            &mut small[..]
        } else {
            &mut large[..]
        };
        if encoded.is_ok() && !context_free {
            arena.clear();
            for (i, e) in keyed.iter_mut().enumerate() {
                scratch.reset();
                encoded = e.2.save(&mut scratch).map_err(|e| e.in_index(i as u64));
                if encoded.is_err() {
                    break;
                }
                e.0 = arena.len();
                arena.extend_from_slice(&scratch.buf);
                e.1 = arena.len();
            }
        }
        self.scratch = Some(scratch);
        let r = encoded.and_then(|()| {
            keyed.sort_by(|a, b| arena[a.0..a.1].cmp(&arena[b.0..b.1]));
            for (i, &(a, b, k, v)) in keyed.iter().enumerate() {
                if context_free {
                    self.raw(&arena[a..b]);
                } else {
                    k.save(self).map_err(|e| e.in_index(i as u64))?;
                }
                if with_values {
                    v.save(self).map_err(|e| e.in_index(i as u64))?;
                }
            }
            Ok(n)
        });
        self.key_arena = arena;
        r
    }

    pub(super) fn entry<K: Stateify + ?Sized, V: Stateify + ?Sized>(
        &mut self,
        i: usize,
        k: &K,
        v: &V,
    ) -> Result<()> {
        k.save(self).map_err(|e| e.in_index(i as u64))?;
        v.save(self).map_err(|e| e.in_index(i as u64))
    }
}
