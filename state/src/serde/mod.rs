//! The serde bridge: any `Serialize + DeserializeOwned` type as a field,
//! written in stateify's own self-describing format.
//!
//! Types from other crates (`uuid::Uuid`, `chrono::DateTime`, `url::Url`,
//! config structs…) implement serde, not [`Stateify`], and the orphan rule
//! stops you deriving it for them. Mark such a field `#[state(serde)]`
//! (the same as `#[state(with = "stateify::serde")]`), or wrap a value in
//! [`Serde`]:
//!
//! ```
//! use stateify::Stateify;
//! # #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! # struct Config { name: String, retries: u32 }
//! #[derive(Stateify)]
//! struct Server {
//!     port: u16,
//!     #[state(serde)]
//!     config: Config, // a serde type from another crate
//! }
//! let s = Server { port: 80, config: Config { name: "web".into(), retries: 3 } };
//! let back: Server = stateify::from_slice(&stateify::to_vec(&s).unwrap()).unwrap();
//! assert_eq!(back.config, s.config);
//! ```
//!
//! # What the stream holds
//!
//! The value is not an opaque blob: serde structs become STRUCTs with
//! their field names in the type table, enums VARIANTs with the variant's
//! name, maps MAPs, and so on (the table in `docs/FORMAT.md` §3a). So
//! `pretty` and the CLI show serde fields like derived ones, and a type can
//! move between `#[derive(Stateify)]` and serde with its checkpoints
//! still loading: fields and variants match by name either way. Loading
//! gives serde the stream's field names, so serde's own evolution
//! attributes apply:
//!
//! | serde attribute | through the bridge |
//! |---|---|
//! | `default`, `rename`, `alias`, `skip` | round-trip; `default` and `alias` load older streams |
//! | `skip_serializing_if` | round-trips; the struct's field list then varies, and each new list costs one rerun of that value's `Serialize` when first met |
//! | `flatten` | round-trips (written as a MAP of the merged fields) |
//! | `tag = "t"` (internally tagged), `tag` + `content` (adjacently tagged) | round-trip |
//! | `untagged` | round-trips, as far as serde can tell the variants apart from the data |
//! | `deny_unknown_fields` | as in serde: a stream field the type lacks is an error |
//!
//! Numbers are written in the shortest encoding and read into any integer
//! type that holds them, so widening a field (`u16` to `u64`) loads old
//! streams. The format says it is human-readable
//! (`Serializer::is_human_readable`), so types with two forms use their
//! text one: a `Uuid` is a string, an `IpAddr` its display form — as
//! stateify writes addresses itself.
//!
//! # Limits
//!
//! * Shared pointers: serde writes `Rc<T>` as a plain `T` (with its `rc`
//!   feature), so sharing and cycles inside a serde value are not kept.
//!   Keep shared structure in `Stateify` types.
//! * Determinism: a serde map's entries are sorted by the bytes of their key
//!   encoded on its own, the rule of derived hash maps, so a `HashMap` in a
//!   serde type writes the same bytes every time. An order-keeping map
//!   (`IndexMap`) loses its order the same way; use `#[state(postcard)]` for
//!   one. A serde *set* cannot be told from a sequence, so a `HashSet` is
//!   written in iteration order: prefer a `BTreeSet` in serde types.
//! * A serde struct costs one extra run of its `Serialize` the first time a
//!   thread's encoder meets it: serde names fields one at a time, the type
//!   table needs the whole list first.
//!
//! # Choosing between `serde` and `postcard`
//!
//! `#[state(serde)]` is self-describing: the CLI prints it, evolution by
//! field name works, a type can later derive `Stateify` instead.
//! `#[state(postcard)]` ([`crate::postcard`]) stores one postcard-encoded
//! byte string: smaller and faster, but opaque (the CLI shows bytes and
//! their length) and as rigid as postcard (no field added or removed
//! without a version of your own). Use it for large values you never
//! inspect, or for order-keeping maps.
//!
//! Without the crate feature `serde` (on by default) stateify has no serde
//! dependency and none of this exists.

/// serde's four element-wise compound traits (sequence, tuple, tuple
/// struct, tuple variant) for one type `$ty`, which takes each element with
/// its method `element` and finishes with `finish`.
macro_rules! element_compounds {
    ($ty:ty => $ok:ty) => {
        element_compounds!(@ $ty => $ok:
            SerializeSeq::serialize_element,
            SerializeTuple::serialize_element,
            SerializeTupleStruct::serialize_field,
            SerializeTupleVariant::serialize_field);
    };
    (@ $ty:ty => $ok:ty: $($tr:ident :: $method:ident),*) => {$(
        impl ::serde::ser::$tr for $ty {
            type Ok = $ok;
            type Error = crate::error::Error;
            #[inline]
            fn $method<T: ::serde::Serialize + ?Sized>(
                &mut self,
                v: &T,
            ) -> crate::error::Result<()> {
                self.element(v)
            }
            #[inline]
            fn end(self) -> crate::error::Result<$ok> {
                self.finish()
            }
        }
    )*};
}

mod content;
mod de;
#[cfg(feature = "postcard")]
pub(crate) mod guard;
mod intern;
mod ser;

use ::serde::de::DeserializeOwned;
use ::serde::Serialize;

pub(crate) use ser::SaveCache;

use crate::error::Result;
use crate::{Loader, Saver, Stateify};

/// What both directions tell serde types (see the module docs).
pub(crate) const HUMAN_READABLE: bool = true;

/// Writes `v` through its `Serialize` impl (the `save` of
/// `#[state(serde)]`).
pub fn save<T: Serialize + ?Sized>(v: &T, s: &mut Saver) -> Result<()> {
    ser::Ser { s }.put(v)
}

/// Reads a value through its `Deserialize` impl (the `load` of
/// `#[state(serde)]`).
pub fn load<T: DeserializeOwned>(l: &mut Loader<'_, '_>) -> Result<T> {
    T::deserialize(de::De { l })
}

/// A serde value as a [`Stateify`] value: for places a field attribute
/// cannot reach (`Vec<Serde<Uuid>>`, a map's keys, a root).
///
/// ```
/// use stateify::serde::Serde;
/// let ids = vec![Serde(std::net::Ipv4Addr::LOCALHOST)];
/// let back: Vec<Serde<std::net::Ipv4Addr>> =
///     stateify::from_slice(&stateify::to_vec(&ids).unwrap()).unwrap();
/// assert_eq!(*back[0], std::net::Ipv4Addr::LOCALHOST);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Serde<T>(pub T);

impl<T> std::ops::Deref for Serde<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Serde<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T> From<T> for Serde<T> {
    fn from(v: T) -> Self {
        Serde(v)
    }
}

impl<T: Serialize + DeserializeOwned> Stateify for Serde<T> {
    fn save(&self, s: &mut Saver) -> Result<()> {
        save(&self.0, s)
    }

    fn load(l: &mut Loader<'_, '_>) -> Result<Self> {
        load(l).map(Serde)
    }
}
