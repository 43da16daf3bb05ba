//! # stateify — checkpoint/restore of live Rust object graphs
//!
//! Save a whole object graph — shared `Rc`/`Arc`, `Weak` back-edges, std
//! containers — into a self-describing, deterministic byte stream, and load
//! it back (in another process) with hooks that re-attach what cannot be
//! saved.
//!
//! ```
//! use std::rc::Rc;
//! let shared = Rc::new(vec![1u32, 2, 3]);
//! let pair = (shared.clone(), shared);
//! let bytes = stateify::to_vec(&pair).unwrap();
//! let back: (Rc<Vec<u32>>, Rc<Vec<u32>>) = stateify::from_slice(&bytes).unwrap();
//! assert!(Rc::ptr_eq(&back.0, &back.1));
//! assert_eq!(*back.0, vec![1, 2, 3]);
//! ```
//!
//! # Deriving
//!
//! `#[derive(Stateify)]` works on structs (named, tuple, unit), enums and
//! generic types. Fields match by name on load, so reordering is free.
//!
//! | attribute | on | effect |
//! |---|---|---|
//! | `nosave` | field | not written; loads as `Default` (or `default = "f"`) |
//! | `default` / `default = "f"` | field | value when an older stream lacks the field |
//! | `rename = "x"` | field | the name in the stream |
//! | `alias = "old"` | field | another accepted name on load |
//! | `with = "m"` | field | `m::save(&T, &mut Saver) -> Result<(), Error>` / `m::load(&mut Loader) -> Result<T, Error>` |
//! | `serde` | field | a serde type, self-described in the stream ([`serde`]) |
//! | `postcard` | field | a serde type as one opaque postcard byte string ([`postcard`]) |
//! | `after_load` / `after_load = "f"` | type | [`AfterLoad::after_load`] (or `f(&mut Self, &mut LoadContext)`) after the fields load |
//! | `before_save` | type | [`BeforeSave::before_save`] before the fields are written |
//! | `type_name = "T"` | type | the name in the stream (default: the Rust name) |
//! | `ignore_unknown` | type | skip stream fields the type does not have |
//! | `bound = "T: Trait"` | type | replaces the default `T: Stateify` bounds |
//! | `crate = "path"` | type | where `stateify` is when renamed |
//! | `plain` | struct | numbers only, no padding: sequences are one packed array ([`plain`]) |
//!
//! # Types from other crates
//!
//! The orphan rule keeps you from deriving `Stateify` for a type of another
//! crate. A field of such a type takes `#[state(serde)]` if it implements
//! serde, or a `with` module of two functions. Here a `uuid::Uuid` is
//! kept as its `u128`:
//!
//! ```
//! mod as_u128 {
//!     use stateify::{Error, Loader, Saver, Stateify};
//!     pub fn save(v: &uuid::Uuid, s: &mut Saver) -> Result<(), Error> {
//!         v.as_u128().save(s)
//!     }
//!     pub fn load(l: &mut Loader) -> Result<uuid::Uuid, Error> {
//!         u128::load(l).map(uuid::Uuid::from_u128)
//!     }
//! }
//!
//! #[derive(stateify::Stateify)]
//! struct Session {
//!     #[state(with = "as_u128")]
//!     id: uuid::Uuid,
//!     // `Instant`s are saved relative to the save's `Saver::now` and load
//!     // relative to `Loader::now`: a deadline 5 s away stays 5 s away.
//!     deadline: std::time::Instant,
//! }
//!
//! let s = Session { id: uuid::Uuid::from_u128(7), deadline: std::time::Instant::now() };
//! let back: Session = stateify::from_slice(&stateify::to_vec(&s).unwrap()).unwrap();
//! assert_eq!(back.id, s.id);
//! ```
//!
//! `docs/FORMAT.md` lists how each std type is written: `SystemTime` as the
//! wall-clock time, `Instant` relative to the checkpoint, `NonZero*`,
//! ranges, `BinaryHeap`, `Cow`, `Rc<str>`, `Arc<[T]>` and the rest.
//!
//! A stream is a sequence of records (see [`write_header`]): each [`save`]
//! writes one graph record, each [`load`] reads exactly one, and raw records
//! may sit in between. `docs/FORMAT.md` specifies every byte.

#![deny(missing_docs)]

mod error;
mod hooks;
mod identity;
mod impls;
mod load;
mod mem;
mod reader;
mod record;
mod save;
mod stats;
mod suspend;
mod table;
mod traitobj;
mod varint;
mod walk;
#[doc(hidden)]
pub mod wire;

pub mod plain;
#[cfg(feature = "postcard")]
pub mod postcard;
pub mod pretty;
#[cfg(feature = "serde")]
pub mod serde;
pub mod value;

use std::io::{BufRead, Write};

pub use error::{Error, ErrorKind, Result, Segment};
pub use hooks::{AfterLoad, BeforeSave, LoadContext, Resources};
pub use impls::DynLoad;
pub use load::{LoadOptions, Loader, SharedPtr, StructLoad};
pub use record::{decode_header, read_header, skip_record, write_header, OBJECT_FLAG};
pub use save::{Encoder, SaveOptions, Saver};
/// `#[derive(Stateify)]`: see the crate docs for the `#[state(...)]` attributes.
pub use stateify_derive::Stateify;
pub use stats::{LoadStats, SaveStats, Stats, TypeStat};
pub use traitobj::AsAny;

/// Default nesting limit (pointers and containers) for saves and loads:
/// enough for a million-long `Rc` chain. Deep recursion runs on stack
/// segments grown on the heap, about half a KiB per level, so the limit also
/// bounds the memory a hostile, deeply nested input can cost.
pub const DEFAULT_MAX_DEPTH: usize = 1 << 20;

/// The default [`LoadOptions::max_owned_depth`]: owned values (`Box`, `Vec`,
/// structs…) nested this deep drop recursively within a 2 MiB thread stack,
/// even in a debug build (`tests/hostile.rs` checks it).
pub const DEFAULT_MAX_OWNED_DEPTH: usize = 10_000;

/// A type that can be saved into a graph and loaded back.
///
/// Implemented for std types here; derive it for your own types, or write
/// it by hand with [`Saver::save_struct`] and [`Loader::load_struct`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be saved: it does not implement `Stateify`",
    label = "`{Self}` does not implement `Stateify`",
    note = "derive it with `#[derive(Stateify)]` if the type is yours",
    note = "for a field of a foreign type: `#[state(with = \"module\")]` (save/load functions), `#[state(serde)]` (any serde type) or `#[state(nosave)]` (not saved, `Default` on load)",
    note = "for a trait object `dyn Trait`: `stateify::register_dyn!(dyn Trait {{ \"Name\" => Type, … }})`"
)]
pub trait Stateify {
    /// Writes the value.
    fn save(&self, s: &mut Saver) -> Result<(), Error>;

    /// Reads a value.
    fn load(l: &mut Loader<'_, '_>) -> Result<Self, Error>
    where
        Self: Sized;

    /// Writes a sequence of values (`parts` concatenated). Plain numbers
    /// override this to write one packed array.
    #[doc(hidden)]
    fn save_seq(parts: [&[Self]; 2], s: &mut Saver) -> Result<(), Error>
    where
        Self: Sized,
    {
        s.write_seq_parts(parts)
    }

    /// Reads a sequence written by `save_seq`.
    #[doc(hidden)]
    fn load_seq(l: &mut Loader<'_, '_>) -> Result<Vec<Self>, Error>
    where
        Self: Sized,
    {
        let n = l.read_seq_header()?;
        l.read_elements(n)
    }

    /// Reads a fixed-size array written by `save_seq`. Plain numbers
    /// override this to decode the packed bytes in place, with no vector in
    /// between.
    #[doc(hidden)]
    fn load_array<const N: usize>(l: &mut Loader<'_, '_>) -> Result<[Self; N], Error>
    where
        Self: Sized,
    {
        if let Some(a) = l.read_seq_array()? {
            return Ok(a);
        }
        let at = l.offset();
        let v = Self::load_seq(l)?;
        let n = v.len();
        v.try_into().map_err(|_| Error::wrong_length(N, n, at))
    }
}

/// Used by `#[derive(Stateify)]`: not part of the API.
#[doc(hidden)]
pub mod __private {
    /// Names each field type once, at the field: a field whose type does
    /// not implement [`Stateify`](crate::Stateify) gets one error there,
    /// and the uses in `save` and `load` see an error type and say nothing
    /// more.
    pub trait FieldType {
        /// The field type itself.
        type Is: ?Sized;
    }
    impl<T: crate::Stateify + ?Sized> FieldType for T {
        type Is = T;
    }

    /// The load value of a `nosave` field without `default = "…"`.
    #[diagnostic::on_unimplemented(
        message = "the `nosave` field's type `{Self}` does not implement `Default`",
        label = "not saved, so loaded as `Default::default()`, which `{Self}` lacks",
        note = "implement `Default` for it, or name a function that makes the value: `#[state(nosave, default = \"path::to::fn\")]`",
        note = "an `after_load` hook runs after the value is made: it can replace it, not stand in for it"
    )]
    pub trait NosaveDefault {
        /// `Default::default()`.
        fn value() -> Self;
    }
    #[diagnostic::do_not_recommend]
    impl<T: Default> NosaveDefault for T {
        fn value() -> Self {
            T::default()
        }
    }
}

/// Saves `root` as one graph record on `w`.
pub fn save<T: Stateify + ?Sized, W: Write>(w: W, root: &T) -> Result<SaveStats, Error> {
    save_with_options(w, root, &SaveOptions::default())
}

/// Saves `root` as one graph record on `w`, with options.
pub fn save_with_options<T: Stateify + ?Sized, W: Write>(
    mut w: W,
    root: &T,
    opts: &SaveOptions,
) -> Result<SaveStats, Error> {
    let (bytes, mut stats) = Saver::encode(opts, root, Vec::new())?;
    let start = std::time::Instant::now();
    w.write_all(&bytes)?;
    stats.elapsed += start.elapsed();
    Ok(stats)
}

/// Encodes `root` as one graph record (header included).
pub fn to_vec<T: Stateify + ?Sized>(root: &T) -> Result<Vec<u8>, Error> {
    Ok(Saver::encode(&SaveOptions::default(), root, Vec::new())?.0)
}

/// Encodes `root` with options, also returning the statistics.
pub fn to_vec_with_options<T: Stateify + ?Sized>(
    root: &T,
    opts: &SaveOptions,
) -> Result<(Vec<u8>, SaveStats), Error> {
    Saver::encode(opts, root, Vec::new())
}

/// Decodes the single graph record that makes up `bytes`.
pub fn from_slice<T: Stateify>(bytes: &[u8]) -> Result<T, Error> {
    from_slice_with_options(bytes, &mut Resources::new(), &LoadOptions::default()).map(|(v, _)| v)
}

/// Decodes the single graph record that makes up `bytes`, with resources
/// and options, also returning the statistics.
pub fn from_slice_with_options<T: Stateify>(
    bytes: &[u8],
    resources: &mut Resources,
    opts: &LoadOptions,
) -> Result<(T, LoadStats), Error> {
    if let Some(e) = record::container_file(bytes) {
        return Err(e);
    }
    let (len, object, hlen) = decode_header(bytes)?;
    if !object {
        return Err(
            Error::mismatch("a graph record", format!("a raw record of {len} bytes")).at(0),
        );
    }
    let rest = &bytes[hlen..];
    if len > rest.len() as u64 {
        return Err(Error::new(ErrorKind::Truncated).at(bytes.len() as u64));
    }
    if len < rest.len() as u64 {
        return Err(Error::invalid(format!(
            "{} bytes after the graph record",
            rest.len() as u64 - len
        ))
        .at(hlen as u64 + len));
    }
    load::decode_payload(rest, hlen as u64, resources, opts)
}

/// Loads one graph record from `r`, leaving `r` just after it.
pub fn load<T: Stateify, R: BufRead>(r: R) -> Result<T, Error> {
    load_with(r, &mut Resources::new())
}

/// Loads one graph record from `r`, lending `resources` to the load hooks.
pub fn load_with<T: Stateify, R: BufRead>(r: R, resources: &mut Resources) -> Result<T, Error> {
    load_with_options(r, resources, &LoadOptions::default()).map(|(v, _)| v)
}

/// Loads one graph record from `r` with resources and options, also
/// returning the statistics.
///
/// If the next record is a raw record, fails without consuming it whenever
/// the reader's buffer holds the whole header.
pub fn load_with_options<T: Stateify, R: BufRead>(
    mut r: R,
    resources: &mut Resources,
    opts: &LoadOptions,
) -> Result<(T, LoadStats), Error> {
    // Peek the header so that a raw record can be refused without consuming it.
    let start = r.fill_buf()?;
    if let Some(e) = record::container_file(start) {
        return Err(e);
    }
    let peeked = decode_header(start).ok();
    let (len, object) = match peeked {
        Some((len, true, hlen)) => {
            r.consume(hlen);
            (len, true)
        }
        Some((len, false, _)) => (len, false),
        None => read_header(&mut r)?,
    };
    if !object {
        let consumed = if peeked.is_some() {
            " (not consumed)"
        } else {
            ""
        };
        return Err(Error::mismatch(
            "a graph record",
            format!("a raw record of {len} bytes{consumed}"),
        )
        .at(0));
    }
    // Bit 63 is set, so an object header is always exactly this long.
    let hlen = record::OBJECT_HEADER_LEN;
    let mut body = Vec::new();
    record::read_body(&mut r, len, hlen as u64, &mut body)?;
    load::decode_payload(&body, hlen as u64, resources, opts)
}
