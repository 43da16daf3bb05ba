//! Interior mutability and synchronization: the value inside is saved; a
//! `RefCell` borrowed mutably or a poisoned lock at save time is an error,
//! never a silent skip or a deadlock-prone wait.

use std::cell::{Cell, OnceCell, RefCell};
use std::sync::atomic::{self, Ordering};
use std::sync::{Mutex, OnceLock, RwLock};

use crate::error::{Error, ErrorKind, Result};
use crate::{Loader, Saver, Stateify};

fn unavailable(msg: &str) -> Error {
    Error::new(ErrorKind::Unavailable(msg.to_owned()))
}

impl<T: Stateify + Copy> Stateify for Cell<T> {
    fn save(&self, s: &mut Saver) -> Result<()> {
        self.get().save(s)
    }
    fn load(l: &mut Loader) -> Result<Self> {
        T::load(l).map(Cell::new)
    }
}

// A cell or lock: the value inside, taken with its method `$get` (an
// error when it is not available: a `RefCell` borrowed mutably, a poisoned
// lock).
macro_rules! guarded {
    ($($c:ident: $get:ident, $why:literal);*) => {$(
        impl<T: Stateify> Stateify for $c<T> {
            fn save(&self, s: &mut Saver) -> Result<()> {
                let v = self.$get().map_err(|_| unavailable($why))?;
                v.save(s)
            }
            fn load(l: &mut Loader) -> Result<Self> {
                T::load(l).map($c::new)
            }
        }
    )*};
}

guarded!(
    RefCell: try_borrow, "RefCell is mutably borrowed during save";
    Mutex: lock, "Mutex is poisoned";
    RwLock: read, "RwLock is poisoned"
);

// A once-cell is an `Option`: empty or set.
macro_rules! once_cells {
    ($($c:ident),*) => {$(
        impl<T: Stateify> Stateify for $c<T> {
            fn save(&self, s: &mut Saver) -> Result<()> {
                super::primitives::save_option(self.get(), s)
            }
            fn load(l: &mut Loader) -> Result<Self> {
                Ok(Option::<T>::load(l)?.map($c::from).unwrap_or_default())
            }
        }
    )*};
}

once_cells!(OnceCell, OnceLock);

macro_rules! atomics {
    ($($a:ident => $t:ty),*) => {$(
        impl Stateify for atomic::$a {
            fn save(&self, s: &mut Saver) -> Result<()> {
                self.load(Ordering::SeqCst).save(s)
            }
            fn load(l: &mut Loader) -> Result<Self> {
                <$t>::load(l).map(atomic::$a::new)
            }
        }
    )*};
}

atomics!(
    AtomicBool => bool, AtomicU8 => u8, AtomicU16 => u16, AtomicU32 => u32, AtomicU64 => u64,
    AtomicUsize => usize, AtomicI8 => i8, AtomicI16 => i16, AtomicI32 => i32, AtomicI64 => i64,
    AtomicIsize => isize
);
