//! Boxes and shared pointers. `Rc`/`Arc` keep their identity through the
//! object table (keyed by allocation address and type); `Weak`s come back
//! live when their target is in the graph, dead when it was gone. Boxes and
//! shared pointers also hold trait objects registered with
//! [`register_dyn!`](crate::register_dyn), through [`DynLoad`].

use std::borrow::Cow;
use std::rc::Rc;
use std::sync::Arc;

use crate::error::Result;
use crate::{Loader, Saver, Stateify};

/// How a pointee is rebuilt behind `Box`, `Rc` and `Arc`: sized types
/// through their own `load`, trait objects through the registry that
/// [`register_dyn!`](crate::register_dyn) generates.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be saved behind a pointer: it does not implement `Stateify`",
    label = "`{Self}` does not implement `Stateify`",
    note = "for a trait object `dyn Trait`: list its types with `stateify::register_dyn!(dyn Trait {{ \"Name\" => Type, … }})`, and give the trait `stateify::AsAny` as a supertrait",
    note = "for any other type: `#[derive(Stateify)]`, or on the field `#[state(with = \"module\")]` or `#[state(serde)]`"
)]
pub trait DynLoad: Stateify + 'static {
    /// Loads a boxed value.
    fn load_box(l: &mut Loader) -> Result<Box<Self>>;
    /// Loads an `Rc`, sharing included.
    fn load_rc(l: &mut Loader) -> Result<Rc<Self>>;
    /// Loads an `Arc`, sharing included.
    fn load_arc(l: &mut Loader) -> Result<Arc<Self>>;
}

#[diagnostic::do_not_recommend]
impl<T: Stateify + 'static> DynLoad for T {
    fn load_box(l: &mut Loader) -> Result<Box<Self>> {
        l.nest(T::load).map(Box::new)
    }
    fn load_rc(l: &mut Loader) -> Result<Rc<Self>> {
        l.load_shared::<Rc<T>>()
    }
    fn load_arc(l: &mut Loader) -> Result<Arc<Self>> {
        l.load_shared::<Arc<T>>()
    }
}

// Strings and slices behind pointers: `Box<str>`, `Rc<[T]>`, … The
// sharing of an `Rc<str>` is kept like any other's.
impl DynLoad for str {
    fn load_box(l: &mut Loader) -> Result<Box<Self>> {
        l.nest(|l| l.read_str().map(Box::from))
    }
    fn load_rc(l: &mut Loader) -> Result<Rc<Self>> {
        l.load_shared_with(|l| l.read_str().map(Rc::from))
    }
    fn load_arc(l: &mut Loader) -> Result<Arc<Self>> {
        l.load_shared_with(|l| l.read_str().map(Arc::from))
    }
}

impl<T: Stateify + 'static> DynLoad for [T] {
    fn load_box(l: &mut Loader) -> Result<Box<Self>> {
        l.nest(T::load_seq).map(Vec::into_boxed_slice)
    }
    fn load_rc(l: &mut Loader) -> Result<Rc<Self>> {
        l.load_shared_with(|l| T::load_seq(l).map(Rc::from))
    }
    fn load_arc(l: &mut Loader) -> Result<Arc<Self>> {
        l.load_shared_with(|l| T::load_seq(l).map(Arc::from))
    }
}

/// A `Cow` saves what it points at and loads owned.
impl<B> Stateify for Cow<'_, B>
where
    B: ToOwned + Stateify + ?Sized,
    B::Owned: Stateify,
{
    fn save(&self, s: &mut Saver) -> Result<()> {
        (**self).save(s)
    }
    fn load(l: &mut Loader) -> Result<Self> {
        B::Owned::load(l).map(Cow::Owned)
    }
}

impl<T: DynLoad + ?Sized> Stateify for Box<T> {
    fn save(&self, s: &mut Saver) -> Result<()> {
        s.nest(|s| (**self).save(s))
    }
    fn load(l: &mut Loader) -> Result<Self> {
        T::load_box(l)
    }
}

/// `Rc` and `Arc`: a shared object, keyed by the pointee's address; a
/// sequence of them asks for the identities of its elements ahead.
macro_rules! shared_pointer {
    ($($ptr:ident => $load:ident),*) => {$(
        impl<T: DynLoad + ?Sized> Stateify for $ptr<T> {
            fn save(&self, s: &mut Saver) -> Result<()> {
                s.save_shared($ptr::as_ptr(self) as *const (), &**self)
            }
            fn save_seq(parts: [&[Self]; 2], s: &mut Saver) -> Result<()> {
                let addr = |p: &Self| $ptr::as_ptr(p) as *const () as usize;
                s.write_shared_seq::<_, T>(parts, addr, |s, ty, p| {
                    s.save_shared_as(addr(p), ty, &**p)
                })
            }
            fn load(l: &mut Loader) -> Result<Self> {
                T::$load(l)
            }
        }
    )*};
}

shared_pointer!(Rc => load_rc, Arc => load_arc);

/// `Weak`: a reference to the object its strong pointer type shares, or
/// a dead one.
macro_rules! weak_pointer {
    ($($weak:ident => $strong:ident),*) => {$(
        impl<T: Stateify + 'static> Stateify for $weak<T> {
            fn save(&self, s: &mut Saver) -> Result<()> {
                s.save_weak(self.as_ptr() as *const (), || self.upgrade())
            }
            fn save_seq(parts: [&[Self]; 2], s: &mut Saver) -> Result<()> {
                let addr = |p: &Self| p.as_ptr() as *const () as usize;
                s.write_shared_seq::<_, T>(parts, addr, |s, ty, p| {
                    s.save_weak_as(addr(p), ty, || p.upgrade())
                })
            }
            fn load(l: &mut Loader) -> Result<Self> {
                l.load_weak::<$strong<T>>()
            }
        }
    )*};
}

use std::rc::Weak as RcWeak;
use std::sync::Weak as ArcWeak;

weak_pointer!(RcWeak => Rc, ArcWeak => Arc);
