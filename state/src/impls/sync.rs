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

impl<T: Stateify> Stateify for RefCell<T> {
    fn save(&self, s: &mut Saver) -> Result<()> {
        let v = self
            .try_borrow()
            .map_err(|_| unavailable("RefCell is mutably borrowed during save"))?;
        v.save(s)
    }
    fn load(l: &mut Loader) -> Result<Self> {
        T::load(l).map(RefCell::new)
    }
}

impl<T: Stateify> Stateify for Mutex<T> {
    fn save(&self, s: &mut Saver) -> Result<()> {
        let v = self.lock().map_err(|_| unavailable("Mutex is poisoned"))?;
        v.save(s)
    }
    fn load(l: &mut Loader) -> Result<Self> {
        T::load(l).map(Mutex::new)
    }
}

impl<T: Stateify> Stateify for RwLock<T> {
    fn save(&self, s: &mut Saver) -> Result<()> {
        let v = self.read().map_err(|_| unavailable("RwLock is poisoned"))?;
        v.save(s)
    }
    fn load(l: &mut Loader) -> Result<Self> {
        T::load(l).map(RwLock::new)
    }
}

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
