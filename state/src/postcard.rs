//! `#[state(postcard)]`: a serde value stored as one postcard-encoded byte
//! string.
//!
//! Compact and fast, but opaque: `pretty` and the CLI show a byte string
//! and its length, and postcard is not self-describing, so the type must
//! not change shape between save and load. See [`crate::serde`] for when
//! to choose the self-describing bridge instead.
//!
//! ```
//! use stateify::Stateify;
//! #[derive(Stateify)]
//! struct Cache {
//!     #[state(postcard)]
//!     entries: std::collections::BTreeMap<String, Vec<u32>>,
//! }
//! let c = Cache { entries: [("a".to_string(), vec![1, 2])].into() };
//! let back: Cache = stateify::from_slice(&stateify::to_vec(&c).unwrap()).unwrap();
//! assert_eq!(back.entries, c.entries);
//! ```

use std::cell::{Cell, RefCell};

use ::serde::de::DeserializeOwned;
use ::serde::Serialize;

use crate::error::{Error, Result};
use crate::serde::guard::{Guard, Limits};
use crate::wire::Packed;
use crate::{Loader, Saver};

thread_local! {
    /// The encoding buffer, reused between fields.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Writes `v` as one postcard byte string (PACKED u8).
pub fn save<T: Serialize + ?Sized>(v: &T, s: &mut Saver) -> Result<()> {
    SCRATCH.with(|cell| {
        // A value whose Serialize saves another postcard field inside
        // (re-entrantly) gets a buffer of its own.
        let mut own = Vec::new();
        let mut guard = cell.try_borrow_mut().ok();
        let buf = guard.as_deref_mut().unwrap_or(&mut own);
        buf.clear();
        let bytes = ::postcard::to_extend(v, std::mem::take(buf))
            .map_err(|e| Error::custom(format!("postcard: {e}")))?;
        s.write_packed(Packed::U8, [&bytes, &[]]);
        *buf = bytes;
        if buf.capacity() > 1 << 20 {
            *buf = Vec::new();
        }
        Ok(())
    })
}

/// Reads a value written by [`save`]. The whole byte string must be one
/// value. Postcard has no limits of its own, so it decodes under the
/// load's: the depth limit, stack segments grown as needed, and container
/// preallocation charged to the load's budget (a one-byte length can claim
/// a million elements).
pub fn load<T: DeserializeOwned>(l: &mut Loader<'_, '_>) -> Result<T> {
    let at = l.offset();
    let Some(bytes) = l.read_packed(Packed::U8)? else {
        let found = crate::wire::tag_name(l.reader().peek()?);
        return Err(Error::mismatch("postcard bytes", found).at(at));
    };
    let mut de = ::postcard::Deserializer::from_bytes(bytes);
    let budget = Cell::new(std::mem::take(l.prealloc_budget()));
    let too_deep = Cell::new(false);
    let depth_left = l.depth_left();
    let limits = Limits {
        depth_left,
        budget: &budget,
        too_deep: &too_deep,
    };
    let v = T::deserialize(Guard {
        de: &mut de,
        limits,
    });
    *l.prealloc_budget() = budget.get();
    let v = v.map_err(|e| {
        let e = match too_deep.get() {
            true => {
                format!("postcard: nested deeper than the {depth_left} levels left to this load")
            }
            false => format!("postcard: {e}"),
        };
        Error::custom(e).at(at)
    })?;
    let rest = de
        .finalize()
        .map_err(|e| Error::custom(format!("postcard: {e}")).at(at))?;
    if !rest.is_empty() {
        return Err(
            Error::invalid(format!("{} bytes after the postcard value", rest.len())).at(at),
        );
    }
    Ok(v)
}
