//! Number wrappers: `NonZero*` (the number; zero is refused on load),
//! `Wrapping`, `Saturating` and `cmp::Reverse` (the value inside, with the
//! same bytes), and `cmp::Ordering` (an enum `Less`/`Equal`/`Greater`).

use std::cmp::{Ordering, Reverse};
use std::num::{
    NonZeroI128, NonZeroI16, NonZeroI32, NonZeroI64, NonZeroI8, NonZeroIsize, NonZeroU128,
    NonZeroU16, NonZeroU32, NonZeroU64, NonZeroU8, NonZeroUsize, Saturating, Wrapping,
};

use crate::error::{Error, Result};
use crate::{Loader, Saver, Stateify};

macro_rules! nonzero {
    ($($nz:ident => $t:ty),*) => {$(
        impl Stateify for $nz {
            fn save(&self, s: &mut Saver) -> Result<()> {
                self.get().save(s)
            }
            fn load(l: &mut Loader) -> Result<Self> {
                let at = l.offset();
                let v = <$t>::load(l)?;
                $nz::new(v).ok_or_else(|| {
                    Error::invalid(concat!("zero where a ", stringify!($nz), " was expected")).at(at)
                })
            }
        }
    )*};
}

nonzero!(
    NonZeroU8 => u8, NonZeroU16 => u16, NonZeroU32 => u32, NonZeroU64 => u64,
    NonZeroU128 => u128, NonZeroUsize => usize,
    NonZeroI8 => i8, NonZeroI16 => i16, NonZeroI32 => i32, NonZeroI64 => i64,
    NonZeroI128 => i128, NonZeroIsize => isize
);

macro_rules! transparent {
    ($($w:ident),*) => {$(
        impl<T: Stateify> Stateify for $w<T> {
            fn save(&self, s: &mut Saver) -> Result<()> {
                self.0.save(s)
            }
            fn load(l: &mut Loader) -> Result<Self> {
                T::load(l).map($w)
            }
        }
    )*};
}

transparent!(Wrapping, Saturating, Reverse);

const ORDERING_VARIANTS: &[&str] = &["Less", "Equal", "Greater"];

impl Stateify for Ordering {
    fn save(&self, s: &mut Saver) -> Result<()> {
        let i = match self {
            Ordering::Less => 0,
            Ordering::Equal => 1,
            Ordering::Greater => 2,
        };
        s.save_variant("Ordering", ORDERING_VARIANTS, i, |s| {
            s.write_unit();
            Ok(())
        })
    }
    fn load(l: &mut Loader) -> Result<Self> {
        l.load_variant("Ordering", ORDERING_VARIANTS, |i, l| {
            l.read_unit()?;
            match i {
                0 => Ok(Ordering::Less),
                1 => Ok(Ordering::Equal),
                2 => Ok(Ordering::Greater),
                _ => Err(Error::custom("variant index out of range")),
            }
        })
    }
}
