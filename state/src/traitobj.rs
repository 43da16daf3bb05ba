//! Trait objects: `Box<dyn Trait>`, `Rc<dyn Trait>`, `Arc<dyn Trait>` saved
//! under a stable type name and loaded back through an explicit registry.
//!
//! ```
//! use std::rc::Rc;
//! use stateify::{AsAny, Stateify};
//!
//! trait Shape: AsAny {
//!     fn area(&self) -> f64;
//! }
//! #[derive(Stateify)]
//! struct Square(f64);
//! impl Shape for Square {
//!     fn area(&self) -> f64 { self.0 * self.0 }
//! }
//! stateify::register_dyn!(dyn Shape { "Square" => Square });
//!
//! let s: Rc<dyn Shape> = Rc::new(Square(2.0));
//! let bytes = stateify::to_vec(&vec![s.clone(), s]).unwrap();
//! let back: Vec<Rc<dyn Shape>> = stateify::from_slice(&bytes).unwrap();
//! assert_eq!(back[0].area(), 4.0);
//! assert!(Rc::ptr_eq(&back[0], &back[1]));
//! ```
//!
//! A value of a type missing from the registry fails the save; an unknown
//! name in the stream fails the load. Both are errors, never panics. Weak
//! references to trait objects are not supported (a back-edge through one
//! would need `new_cyclic` for an unsized value).

use std::any::Any;

/// Lets a trait object reveal its concrete type: make it a supertrait of
/// every trait used with [`register_dyn!`](crate::register_dyn).
#[diagnostic::on_unimplemented(
    message = "`{Self}` needs `stateify::AsAny` as a supertrait of its trait to be saved as a trait object",
    label = "the trait lacks the `AsAny` supertrait",
    note = "declare the trait as `trait Name: stateify::AsAny {{ … }}`"
)]
pub trait AsAny: Any {
    /// `self` as `&dyn Any`.
    fn as_any(&self) -> &dyn Any;
}

#[diagnostic::do_not_recommend]
impl<T: Any> AsAny for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Registers the implementors of a trait for saving and loading as trait
/// objects: `register_dyn!(dyn Trait { "StableName" => Type, ... })`.
/// The trait must have [`AsAny`] as a supertrait; the names are what the
/// stream records, so keep them when types are renamed.
#[macro_export]
macro_rules! register_dyn {
    (dyn $tr:path { $($name:literal => $ty:ty),* $(,)? }) => {
        impl $crate::Stateify for dyn $tr {
            fn save(&self, __s: &mut $crate::Saver) -> ::core::result::Result<(), $crate::Error> {
                let __any = $crate::AsAny::as_any(self);
                $(
                    if let ::core::option::Option::Some(__v) = __any.downcast_ref::<$ty>() {
                        return __s.save_dyn($name, |__s| $crate::Stateify::save(__v, __s));
                    }
                )*
                ::core::result::Result::Err($crate::Error::custom(::core::concat!(
                    "a `dyn ", ::core::stringify!($tr),
                    "` of a type missing from its register_dyn! list"
                )))
            }
        }

        impl $crate::DynLoad for dyn $tr {
            fn load_box(__l: &mut $crate::Loader) -> ::core::result::Result<::std::boxed::Box<Self>, $crate::Error> {
                let __name = __l.read_dyn_header()?;
                __l.nest(|__l| match __name {
                    $($name => ::core::result::Result::Ok(
                        ::std::boxed::Box::new(<$ty as $crate::Stateify>::load(__l)?) as ::std::boxed::Box<Self>
                    ),)*
                    __other => ::core::result::Result::Err(__l.unknown_dyn(__other, ::core::stringify!($tr))),
                })
            }
            fn load_rc(__l: &mut $crate::Loader) -> ::core::result::Result<::std::rc::Rc<Self>, $crate::Error> {
                $crate::register_dyn!(@shared __l, $tr, rc::Rc, $($name => $ty),*)
            }
            fn load_arc(__l: &mut $crate::Loader) -> ::core::result::Result<::std::sync::Arc<Self>, $crate::Error> {
                $crate::register_dyn!(@shared __l, $tr, sync::Arc, $($name => $ty),*)
            }
        }
    };
    // A shared pointer (`std::$m::$ptr`) to the concrete type the stream
    // names.
    (@shared $l:ident, $tr:path, $m:ident :: $ptr:ident, $($name:literal => $ty:ty),*) => {
        $l.load_shared_with(|__l| {
            let __name = __l.read_dyn_header()?;
            match __name {
                $($name => ::core::result::Result::Ok(
                    ::std::$m::$ptr::new(<$ty as $crate::Stateify>::load(__l)?) as ::std::$m::$ptr<Self>
                ),)*
                __other => ::core::result::Result::Err(__l.unknown_dyn(__other, ::core::stringify!($tr))),
            }
        })
    };
}
