//! The object table's vocabulary: [`SharedPtr`] (`Rc` and `Arc` as the
//! table needs them), [`ObjSlot`] (one entry) and [`ErasedWeak`] (the weak
//! handle of an object under construction, kept in its slot without a box).
//!
//! While `Rc::new_cyclic`/`Arc::new_cyclic` builds an object, back-edges
//! into it are answered with clones of its weak handle, so the loader keeps
//! that handle type-erased in the object's table slot. A `Box<dyn Any>`
//! would cost an allocation per object and, for each back-edge, one more
//! cache miss (slot, box, then the allocation's counts) on a graph too
//! large for the cache. Weak handles of sized pointees are one pointer, so
//! the slot holds that pointer and a static table of the functions of its
//! type instead.

use std::any::{Any, TypeId};
use std::mem::ManuallyDrop;

use crate::suspend::PendingObject;

/// An entry of the object table (opaque outside the crate).
#[doc(hidden)]
pub enum ObjSlot {
    /// Being built; holds the weak handle when built with `new_cyclic`.
    Building(Option<ErasedWeak>),
    /// Built, type-erased without another allocation (`Rc<T>` as `Rc<dyn Any>`).
    BuiltRc(std::rc::Rc<dyn Any>),
    /// Built, any other pointer type, boxed.
    Built(Box<dyn Any>),
    /// Defined inside a value that was skipped (an unknown field).
    Skipped,
    /// Announced by a forward weak reference (`FWD`), its value not yet
    /// read: suspended inside its `new_cyclic` (see `suspend.rs`). Boxed,
    /// so that the table's slots stay as small as they were (a large
    /// graph's weak references miss the cache on them).
    Pending(Box<(ErasedWeak, Box<dyn PendingObject>)>),
}

mod sealed {
    /// Only this crate implements [`SharedPtr`](super::SharedPtr): unsafe
    /// code here trusts its `weak_into_raw`/`weak_from_raw` to be `Rc`'s
    /// and `Arc`'s own.
    pub trait Sealed {}
    impl<T> Sealed for std::rc::Rc<T> {}
    impl<T> Sealed for std::sync::Arc<T> {}
}

/// `Rc` and `Arc`, as the object table needs them. Sealed: implemented for
/// these two only.
pub trait SharedPtr: sealed::Sealed + Clone + 'static {
    /// The pointee.
    type Target;
    /// The weak pointer type.
    type Weak: Clone + 'static;
    /// Allocates a new shared value.
    fn new(v: Self::Target) -> Self;
    /// `Rc::new_cyclic` / `Arc::new_cyclic`.
    fn new_cyclic(f: impl FnOnce(&Self::Weak) -> Self::Target) -> Self;
    /// A weak pointer to this value.
    fn downgrade(&self) -> Self::Weak;
    /// A weak pointer that never upgrades.
    fn dead() -> Self::Weak;
    /// `Weak::into_raw`: the pointer keeps the handle's weak count.
    #[doc(hidden)]
    fn weak_into_raw(w: Self::Weak) -> *const ();
    /// `Weak::from_raw`.
    ///
    /// # Safety
    /// `p` came from [`weak_into_raw`](Self::weak_into_raw) of this same
    /// type, and each such count is taken back once.
    #[doc(hidden)]
    unsafe fn weak_from_raw(p: *const ()) -> Self::Weak;
    /// Type-erases a clone for the object table.
    #[doc(hidden)]
    fn erase(&self) -> ObjSlot {
        ObjSlot::Built(Box::new(self.clone()))
    }
    /// Recovers a clone from the object table, if the types match.
    #[doc(hidden)]
    fn unerase(slot: &ObjSlot) -> Option<Self> {
        match slot {
            ObjSlot::Built(b) => b.downcast_ref::<Self>().cloned(),
            _ => None,
        }
    }
}

/// `SharedPtr` for `Rc` and `Arc`, each with its own `Weak`; `$extra` are
/// the pointer's own items.
macro_rules! shared_ptr {
    ($($module:ident :: $ptr:ident { $($extra:tt)* })*) => {$(
        impl<T: 'static> SharedPtr for std::$module::$ptr<T> {
            type Target = T;
            type Weak = std::$module::Weak<T>;
            fn new(v: T) -> Self {
                std::$module::$ptr::new(v)
            }
            fn new_cyclic(f: impl FnOnce(&Self::Weak) -> T) -> Self {
                std::$module::$ptr::new_cyclic(f)
            }
            fn downgrade(&self) -> Self::Weak {
                std::$module::$ptr::downgrade(self)
            }
            fn dead() -> Self::Weak {
                std::$module::Weak::new()
            }
            fn weak_into_raw(w: Self::Weak) -> *const () {
                std::$module::Weak::into_raw(w) as *const ()
            }
            unsafe fn weak_from_raw(p: *const ()) -> Self::Weak {
                // SAFETY: the caller's contract: `p` is `Weak::<T>::into_raw`
                // of this pointer type, its count not yet taken back.
                unsafe { std::$module::Weak::from_raw(p as *const T) }
            }
            $($extra)*
        }
    )*};
}

shared_ptr! {
    rc::Rc {
        // An `Rc` is not `Send`, so it has a slot of its own (`Any` only).
        fn erase(&self) -> ObjSlot {
            ObjSlot::BuiltRc(self.clone())
        }
        fn unerase(slot: &ObjSlot) -> Option<Self> {
            match slot {
                ObjSlot::BuiltRc(rc) => rc.clone().downcast::<T>().ok(),
                _ => None,
            }
        }
    }
    sync::Arc {}
}

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
