//! Shared objects: `OBJ` at first meeting and `REF` after, the open-path
//! bits that turn a strong reference into a cycle error (or a rewind), weak
//! references that mark their target `OBJ_CYCLIC`, announce it (`FWD`) or
//! write it later (`DEF`).

use super::*;

/// Writes the value of an announced object (it holds a strong pointer).
pub(super) type DeferredValue = Box<dyn FnOnce(&mut Saver) -> Result<()>>;

/// The word of the `open`/`cyclic` bit sets that holds object `id`'s bit,
/// and the bit.
#[inline(always)]
pub(super) fn id_bit(id: u32) -> (usize, u64) {
    (id as usize / 64, 1 << (id % 64))
}

impl Saver {
    /// Writes a strong reference to a shared object at `addr` (the `Rc`/`Arc`
    /// allocation), whose value is `value`. The first reference writes the
    /// object; later ones write its id.
    #[inline]
    pub fn save_shared<T: Stateify + ?Sized + 'static>(
        &mut self,
        addr: *const (),
        value: &T,
    ) -> Result<()> {
        let ty = self.types.of::<T>();
        self.save_shared_as(addr as usize, ty, value)
    }

    /// [`save_shared`](Self::save_shared) with the type index looked up.
    #[inline(always)]
    pub(crate) fn save_shared_as<T: Stateify + ?Sized>(
        &mut self,
        addr: usize,
        ty: u32,
        value: &T,
    ) -> Result<()> {
        if let Some(id) = self.objects.get(addr, ty) {
            let (word, bit) = id_bit(id);
            if self.open[word] & bit != 0 {
                return self.strong_to_unfinished(id, value);
            }
            self.tag_id(wire::REF, id);
            return Ok(());
        }
        self.write_object::<T, false>(addr, ty, value)
    }

    /// A strong reference to an object that is still open, or announced
    /// and not yet written.
    #[cold]
    #[inline(never)]
    pub(super) fn strong_to_unfinished<T: Stateify + ?Sized>(
        &mut self,
        id: u32,
        value: &T,
    ) -> Result<()> {
        let (word, bit) = id_bit(id);
        if self.pending[word] & bit != 0 {
            // The first strong reference to an announced object: its value.
            return self.define(id, |s| value.save(s));
        }
        match self.weak_entries.last() {
            // An object entered through a weak reference after `id` was
            // opened leads back into it: that weak reference is not a
            // strong cycle, it was followed too early. Rewind to it.
            Some(&(w, _)) if w > id => {
                self.rewind = Some(w);
                Err(Error::custom(format!(
                    "internal: the save rewinds to object #{w} (a reorder signal that escaped)"
                )))
            }
            _ => Err(Error::new(ErrorKind::StrongCycle(id as u64))),
        }
    }

    /// Writes `DEF id` and the value of an announced object.
    pub(super) fn define(
        &mut self,
        id: u32,
        value: impl FnOnce(&mut Self) -> Result<()>,
    ) -> Result<()> {
        let (word, bit) = id_bit(id);
        self.pending[word] &= !bit;
        if !self.weak_entries.is_empty() {
            self.defined.push((id, self.next_object as u32));
        }
        self.open[word] |= bit;
        self.tag_id(wire::DEF, id);
        let r = self.nest(value);
        self.open[word] &= !bit;
        r
    }

    /// After the root: the values of announced objects that no strong
    /// reference reached (kept alive only outside the graph), in id order
    /// of announcement; writing one may announce more.
    pub(super) fn write_deferred(&mut self) -> Result<()> {
        let mut i = 0;
        while i < self.deferred.len() {
            let (id, ref mut value) = self.deferred[i];
            let (word, bit) = id_bit(id);
            if let Some(value) = value.take().filter(|_| self.pending[word] & bit != 0) {
                self.define(id, value)
                    .map_err(|e| e.in_segment(crate::Segment::Object(id as u64)))?;
            }
            i += 1;
        }
        Ok(())
    }

    /// Writes a sequence of shared pointers (`Rc`, `Arc`, `Weak`; `addr`
    /// gives an element's pointee address, `save` writes one element given
    /// the pointee's type index). In a long sequence of pointers to objects
    /// all over memory, each lookup waits on the cache, one after another;
    /// here the identity slot and the pointee of the element a few places
    /// ahead are asked for early, so those waits overlap.
    pub(crate) fn write_shared_seq<P, T: ?Sized + 'static>(
        &mut self,
        parts: [&[P]; 2],
        addr: impl Fn(&P) -> usize,
        save: impl Fn(&mut Self, u32, &P) -> Result<()>,
    ) -> Result<()> {
        const AHEAD: usize = 8;
        let ty = self.types.of::<T>();
        let items = parts[0].iter().chain(parts[1].iter());
        self.tag(wire::SEQ);
        self.varint((parts[0].len() + parts[1].len()) as u64);
        self.nest(|s| {
            let mut ahead = items.clone();
            for p in ahead.by_ref().take(AHEAD) {
                s.prefetch_shared(addr(p), ty);
            }
            for (i, p) in items.enumerate() {
                if let Some(next) = ahead.next() {
                    s.prefetch_shared(addr(next), ty);
                }
                save(s, ty, p).map_err(|e| e.in_index(i as u64))?;
            }
            Ok(())
        })
    }

    #[inline(always)]
    pub(super) fn prefetch_shared(&self, addr: usize, ty: u32) {
        self.objects.prefetch(addr, ty);
        mem::prefetch(addr as *const u8);
    }

    /// Writes the first reference to an object: `OBJ` and its value. With
    /// `WEAK`, the object is entered through a weak reference: a weak entry
    /// while it is written, left in `exited` for the caller to check for a
    /// rewind (so the caller's frame, one per level of a deep recursion,
    /// keeps nothing of it across the call).
    #[inline(never)]
    pub(super) fn write_object<T: Stateify + ?Sized, const WEAK: bool>(
        &mut self,
        addr: usize,
        ty: u32,
        value: &T,
    ) -> Result<()> {
        let id = u32::try_from(self.next_object)
            .map_err(|_| Error::custom("more than 2^32 shared objects in one graph"))?;
        if WEAK {
            self.weak_entries.push((id, self.next_type_id()));
        }
        let (word, bit) = self.new_object(addr, ty, id);
        self.open[word] |= bit;
        self.tag(wire::OBJ);
        let r = self.nest(|s| value.save(s));
        self.open[word] &= !bit;
        if WEAK {
            self.exited = self.weak_entries.pop().unwrap_or_default();
        }
        r
    }

    /// Records object `id` (the next one) at the current output position.
    #[inline(always)]
    pub(super) fn new_object(&mut self, addr: usize, ty: u32, id: u32) -> (usize, u64) {
        self.next_object += 1;
        self.objects.insert(addr, ty, id);
        self.tags.push(self.buf.len());
        if !self.weak_entries.is_empty() {
            self.created.push((addr, ty));
        }
        let (word, bit) = id_bit(id);
        if word == self.open.len() {
            self.open.push(0);
            self.cyclic.push(0);
            self.pending.push(0);
        }
        (word, bit)
    }

    /// Writes an object met first through a weak reference (its `WEAK` tag
    /// written). If a strong reference inside it leads back into an object
    /// that is still open, the object cannot be built here: the save
    /// rewinds to this point and announces it with `FWD` instead
    /// ([`announce`](Self::announce)).
    #[inline(always)]
    pub(super) fn write_weak_entry<T, P>(&mut self, addr: usize, ty: u32, strong: P) -> Result<()>
    where
        T: Stateify + ?Sized,
        P: std::ops::Deref<Target = T> + 'static,
    {
        let r = self.write_object::<T, true>(addr, ty, &*strong);
        if self.rewind.is_some() {
            return self.announce_if_rewound(r, strong);
        }
        r
    }

    /// After a weak entry: announces it if the save rewinds to it.
    #[cold]
    #[inline(never)]
    pub(super) fn announce_if_rewound<T, P>(&mut self, r: Result<()>, strong: P) -> Result<()>
    where
        T: Stateify + ?Sized,
        P: std::ops::Deref<Target = T> + 'static,
    {
        let (id, types) = self.exited;
        if self.rewind == Some(id) {
            return self.announce(id, types, strong);
        }
        r
    }

    /// Rewinds to where object `id` was entered and announces it there: the
    /// same id, its value deferred to its first strong reference or after
    /// the root.
    #[cold]
    #[inline(never)]
    pub(super) fn announce<T, P>(&mut self, id: u32, types: u32, strong: P) -> Result<()>
    where
        T: Stateify + ?Sized,
        P: std::ops::Deref<Target = T> + 'static,
    {
        self.rewind = None;
        let Some((addr, ty)) = self.rollback(id, types) else {
            return Err(Error::custom(format!(
                "internal: object #{id} to announce is not in the save's tables"
            )));
        };
        let (word, bit) = self.new_object(addr, ty, id);
        // Announced: its bit in `open` too, so that references to it take
        // the slow path of `save_shared_as` with one bit test on the fast one.
        self.pending[word] |= bit;
        self.open[word] |= bit;
        // Built on load with `new_cyclic` in any case: no OBJ_CYCLIC patch.
        self.cyclic[word] |= bit;
        self.tag(wire::FWD);
        self.deferred
            .push((id, Some(Box::new(move |s: &mut Saver| (*strong).save(s)))));
        Ok(())
    }

    /// Undoes everything written since object `first` was entered (its tag
    /// written when `types` types were defined): bytes, objects, types.
    /// Returns the identity of object `first`.
    #[cold]
    pub(super) fn rollback(&mut self, first: u32, types: u32) -> Option<(usize, u32)> {
        let &pos = self.tags.get(first as usize)?;
        let since = self
            .created
            .len()
            .checked_sub((self.next_object - first as u64) as usize)?;
        let entered = self.created.get(since).copied();
        self.buf.truncate(pos);
        self.tags.truncate(first as usize);
        for (addr, ty) in self.created.drain(since..).rev() {
            self.objects.remove(addr, ty);
        }
        while let Some(&(id, objects)) = self.defined.last() {
            if objects <= first {
                break;
            }
            self.defined.pop();
            let (word, bit) = id_bit(id);
            self.pending[word] |= bit;
            self.open[word] |= bit;
        }
        for id in first..self.next_object as u32 {
            let (word, bit) = id_bit(id);
            self.open[word] &= !bit;
            self.cyclic[word] &= !bit;
            self.pending[word] &= !bit;
        }
        self.next_object = first as u64;
        while self.deferred.last().is_some_and(|d| d.0 >= first) {
            self.deferred.pop();
        }
        self.forget_types(types);
        entered
    }

    /// Writes a weak reference to the allocation at `addr`. A target already
    /// written in this graph is referenced by id without touching its memory;
    /// otherwise `upgrade` is called, and the target is written here (or
    /// `WEAK_DEAD` if it is gone).
    pub fn save_weak<T, P>(
        &mut self,
        addr: *const (),
        upgrade: impl FnOnce() -> Option<P>,
    ) -> Result<()>
    where
        T: Stateify + ?Sized + 'static,
        P: std::ops::Deref<Target = T> + 'static,
    {
        let ty = self.types.of::<T>();
        self.save_weak_as(addr as usize, ty, upgrade)
    }

    /// [`save_weak`](Self::save_weak) with the type index looked up.
    #[inline(always)]
    pub(crate) fn save_weak_as<T, P>(
        &mut self,
        addr: usize,
        ty: u32,
        upgrade: impl FnOnce() -> Option<P>,
    ) -> Result<()>
    where
        T: Stateify + ?Sized,
        P: std::ops::Deref<Target = T> + 'static,
    {
        if let Some(id) = self.objects.get(addr, ty) {
            let (word, bit) = id_bit(id);
            if self.open[word] & !self.cyclic[word] & bit != 0 {
                // The first back-edge into an object still being written.
                self.cyclic[word] |= bit;
                let tag_pos = self.tags[id as usize];
                self.buf[tag_pos] = wire::OBJ_CYCLIC;
            }
            self.tag(wire::WEAK);
            self.tag_id(wire::REF, id);
            return Ok(());
        }
        match upgrade() {
            Some(strong) => {
                self.tag(wire::WEAK);
                self.write_weak_entry(addr, ty, strong)
            }
            None => {
                self.tag(wire::WEAK_DEAD);
                Ok(())
            }
        }
    }
}
