//! Ranges and bounds, as the structs and enum std declares:
//! `Range { start, end }`, `RangeInclusive { start, end }`,
//! `RangeFrom { start }`, `RangeTo { end }`, `RangeToInclusive { end }`,
//! `RangeFull` (unit) and `Bound::{Included(T), Excluded(T), Unbounded}`.
//! A `RangeInclusive` that iteration has exhausted comes back fresh: std
//! exposes no way to rebuild its private `exhausted` flag.

use std::ops::{Bound, Range, RangeFrom, RangeFull, RangeInclusive, RangeTo, RangeToInclusive};

use super::{load_one, load_pair};
use crate::error::{Error, Result};
use crate::{Loader, Saver, Stateify};

const START_END: &[&str] = &["start", "end"];
const START: &[&str] = &["start"];
const END: &[&str] = &["end"];

impl<T: Stateify> Stateify for Range<T> {
    fn save(&self, s: &mut Saver) -> Result<()> {
        s.save_struct("Range", START_END, |s| {
            s.field("start", &self.start)?;
            s.field("end", &self.end)
        })
    }
    fn load(l: &mut Loader) -> Result<Self> {
        let (start, end) = load_pair::<T, T>(l, "Range", START_END)?;
        Ok(start..end)
    }
}

impl<T: Stateify> Stateify for RangeInclusive<T> {
    fn save(&self, s: &mut Saver) -> Result<()> {
        s.save_struct("RangeInclusive", START_END, |s| {
            s.field("start", self.start())?;
            s.field("end", self.end())
        })
    }
    fn load(l: &mut Loader) -> Result<Self> {
        let (start, end) = load_pair::<T, T>(l, "RangeInclusive", START_END)?;
        Ok(start..=end)
    }
}

impl<T: Stateify> Stateify for RangeFrom<T> {
    fn save(&self, s: &mut Saver) -> Result<()> {
        s.save_struct("RangeFrom", START, |s| s.field("start", &self.start))
    }
    fn load(l: &mut Loader) -> Result<Self> {
        load_one::<T>(l, "RangeFrom", START).map(|start| start..)
    }
}

impl<T: Stateify> Stateify for RangeTo<T> {
    fn save(&self, s: &mut Saver) -> Result<()> {
        s.save_struct("RangeTo", END, |s| s.field("end", &self.end))
    }
    fn load(l: &mut Loader) -> Result<Self> {
        load_one::<T>(l, "RangeTo", END).map(|end| ..end)
    }
}

impl<T: Stateify> Stateify for RangeToInclusive<T> {
    fn save(&self, s: &mut Saver) -> Result<()> {
        s.save_struct("RangeToInclusive", END, |s| s.field("end", &self.end))
    }
    fn load(l: &mut Loader) -> Result<Self> {
        load_one::<T>(l, "RangeToInclusive", END).map(|end| ..=end)
    }
}

impl Stateify for RangeFull {
    fn save(&self, s: &mut Saver) -> Result<()> {
        s.write_unit();
        Ok(())
    }
    fn load(l: &mut Loader) -> Result<Self> {
        l.read_unit().map(|()| ..)
    }
}

const BOUND_VARIANTS: &[&str] = &["Included", "Excluded", "Unbounded"];
const ZERO: &[&str] = &["0"];

impl<T: Stateify> Stateify for Bound<T> {
    fn save(&self, s: &mut Saver) -> Result<()> {
        // The payloads are those of a derived `enum Bound<T>`.
        match self {
            Bound::Included(v) => s.save_variant("Bound", BOUND_VARIANTS, 0, |s| {
                s.save_struct("Bound::Included", ZERO, |s| s.field("0", v))
            }),
            Bound::Excluded(v) => s.save_variant("Bound", BOUND_VARIANTS, 1, |s| {
                s.save_struct("Bound::Excluded", ZERO, |s| s.field("0", v))
            }),
            Bound::Unbounded => s.save_variant("Bound", BOUND_VARIANTS, 2, |s| {
                s.write_unit();
                Ok(())
            }),
        }
    }
    fn load(l: &mut Loader) -> Result<Self> {
        l.load_variant("Bound", BOUND_VARIANTS, |i, l| match i {
            0 => load_one::<T>(l, "Bound::Included", ZERO).map(Bound::Included),
            1 => load_one::<T>(l, "Bound::Excluded", ZERO).map(Bound::Excluded),
            2 => l.read_unit().map(|()| Bound::Unbounded),
            _ => Err(Error::custom("variant index out of range")),
        })
    }
}
