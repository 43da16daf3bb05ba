//! The weak handle of an object under construction, kept in the object
//! table without a box.
//!
//! While `Rc::new_cyclic`/`Arc::new_cyclic` builds an object, back-edges
//! into it are answered with clones of its weak handle, so the loader keeps
//! that handle type-erased in the object's table slot. A `Box<dyn Any>`
//! would cost an allocation per object and, for each back-edge, one more
//! cache miss (slot, box, then the allocation's counts) on a graph too
//! large for the cache. Weak handles of sized pointees are one pointer, so
//! the slot holds that pointer and a static table of the functions of its
//! type instead.

use std::any::TypeId;
use std::mem::ManuallyDrop;

use crate::load::SharedPtr;

/// A weak handle of some `P::Weak`, owning one weak count.
pub struct ErasedWeak {
    ptr: *const (),
    vt: &'static WeakFns,
}

struct WeakFns {
    /// The pointer type `P` itself (sealed: `Rc<T>` or `Arc<T>`), so a
    /// handle comes back only as the type that made it.
    type_id: fn() -> TypeId,
    drop: unsafe fn(*const ()),
}

struct FnsOf<P>(std::marker::PhantomData<P>);

impl<P: SharedPtr> FnsOf<P> {
    const FNS: WeakFns = WeakFns {
        type_id: TypeId::of::<P>,
        drop: drop_raw::<P>,
    };
}

/// # Safety
/// `ptr` came from `P::weak_into_raw` and its count was not taken back.
unsafe fn drop_raw<P: SharedPtr>(ptr: *const ()) {
    // SAFETY: the caller's contract: this takes back the one count that
    // `weak_into_raw` kept, exactly once.
    drop(unsafe { P::weak_from_raw(ptr) });
}

impl ErasedWeak {
    /// Keeps a clone of `w`.
    pub fn new<P: SharedPtr>(w: &P::Weak) -> Self {
        ErasedWeak {
            ptr: P::weak_into_raw(w.clone()),
            vt: &FnsOf::<P>::FNS,
        }
    }

    /// A clone of the handle, if it is a `P::Weak`.
    #[inline]
    pub fn get<P: SharedPtr>(&self) -> Option<P::Weak> {
        if (self.vt.type_id)() != TypeId::of::<P>() {
            return None;
        }
        // SAFETY: the type ids match, so `ptr` came from
        // `P::weak_into_raw` (in `new`); `ManuallyDrop` leaves the count
        // this slot owns in place, and the clone takes a count of its own.
        let w = ManuallyDrop::new(unsafe { P::weak_from_raw(self.ptr) });
        Some((*w).clone())
    }
}

impl Drop for ErasedWeak {
    fn drop(&mut self) {
        // SAFETY: `ptr` and `vt` were made together in `new` for one type,
        // and this is the only place the slot's own count is taken back.
        unsafe { (self.vt.drop)(self.ptr) }
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;
    use std::sync::Arc;

    use super::*;

    #[test]
    fn clones_come_back_only_as_their_own_type_and_counts_balance() {
        let rc = Rc::new(5u32);
        let w = Rc::downgrade(&rc);
        let e = ErasedWeak::new::<Rc<u32>>(&w);
        assert_eq!(Rc::weak_count(&rc), 2);
        assert!(e.get::<Rc<u64>>().is_none());
        assert!(e.get::<Arc<u32>>().is_none());
        let back = e.get::<Rc<u32>>().unwrap();
        assert!(Rc::ptr_eq(&back.upgrade().unwrap(), &rc));
        assert_eq!(Rc::weak_count(&rc), 3);
        drop(back);
        drop(e);
        assert_eq!(Rc::weak_count(&rc), 1);

        let arc = Arc::new(String::from("s"));
        let e = ErasedWeak::new::<Arc<String>>(&Arc::downgrade(&arc));
        assert_eq!(Arc::weak_count(&arc), 1);
        assert_eq!(*e.get::<Arc<String>>().unwrap().upgrade().unwrap(), "s");
        drop(arc);
        // The handle outlives its value: dropping it frees the allocation.
        assert!(e.get::<Arc<String>>().unwrap().upgrade().is_none());
    }
}
