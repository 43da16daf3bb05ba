//! Serde values written in stateify's own self-describing format.
//!
//! Serde types map onto the same wire kinds as derived ones, so that a type
//! can move between `#[derive(Stateify)]` and serde without changing its
//! bytes, and `pretty`, the CLI and field-name evolution see no difference:
//!
//! | serde | stream |
//! |---|---|
//! | struct, unit struct | STRUCT (type name, field names) |
//! | newtype / tuple struct | STRUCT with fields `0`, `1`, … |
//! | enum variant | VARIANT of a type `Enum` that lists this variant, then UNIT or a STRUCT `Enum::Variant` |
//! | seq / tuple | SEQ / TUPLE |
//! | map | MAP, entries sorted by the bytes of their key encoded on its own |
//! | bytes | PACKED u8 |
//! | option, unit, numbers, char, str | NONE/SOME, UNIT, integers and floats, CHAR, STR |
//!
//! Serde names a struct's fields one call at a time, but the type table
//! wants the whole list before the first value. So the bridge learns each
//! struct's field list the first time it meets it and keeps it
//! ([`SaveCache`]). A struct whose fields differ from what was learned (the
//! first meeting, or a `skip_serializing_if` that skipped another field
//! this time) fails with an internal "relayout" error, after recording the
//! fields it did see; the nearest value boundary ([`Ser::put`]: a sequence
//! element, map entry, option, variant payload or newtype, or the root)
//! cuts the output back and runs that value's `Serialize` again, now with
//! the right list. The bytes are the same whatever was learned before.
//!
//! Serde does not list an enum's variants either, so each variant used is
//! its own type `Enum` with that one variant: loading matches variants by
//! name, so derived enums and serde enums load from either.

use ::serde::ser::{self, Serialize};
use rustc_hash::FxHashMap;

use super::content::{self, Content};
use super::intern;
use crate::error::{Error, Result};
use crate::save::Saver;
use crate::table::DefKind;
use crate::wire;

type Name = &'static str;

/// An enum's name and a variant's, each by address and length.
type VariantKey = (usize, usize, usize, usize);

/// What the bridge has learned of serde types, kept with a [`Saver`].
#[derive(Default)]
pub(crate) struct SaveCache {
    /// Field list by (type name address, name length, field count).
    structs: FxHashMap<(usize, usize, usize), &'static [Name]>,
    /// The most recent of them by a hash of the key: types that alternate
    /// (a player, its items…) hit here.
    recent: Recents,
    /// By (enum name address and length, variant address and length): the
    /// one-variant member list and the payload type's name `Enum::Variant`.
    variants: FxHashMap<VariantKey, (&'static [Name], Name)>,
    /// The most recent of them by a hash of the key.
    recent_variants: RecentVariants,
    /// `"0", "1", …` by field count.
    positions: Vec<Option<&'static [Name]>>,
    /// The field names of the struct learning its list (see `Fields`).
    seen: Vec<Name>,
}

const RECENT: usize = 64;

#[derive(Clone, Copy)]
struct Recent {
    key: (usize, usize, usize),
    members: &'static [Name],
    /// The type's id in the save of generation `gen` (`Saver::type_gen`).
    ty: u32,
    gen: u64,
}

struct Recents(Box<[Recent; RECENT]>);

impl Default for Recents {
    fn default() -> Self {
        // No name has address 0: an empty slot matches nothing.
        Recents(Box::new(
            [Recent {
                key: (0, 0, 0),
                members: &[],
                ty: 0,
                gen: 0,
            }; RECENT],
        ))
    }
}

/// The recent slot of a key made of an address and one more number.
#[inline(always)]
fn recent_slot(address: usize, more: usize) -> usize {
    // A multiply mixes all the bits into the top ones.
    ((address ^ more).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) % RECENT
}

struct RecentVariants(Box<[(VariantKey, &'static [Name], Name); RECENT]>);

impl Default for RecentVariants {
    fn default() -> Self {
        // No name has address 0: an empty slot matches nothing.
        RecentVariants(Box::new([((0, 0, 0, 0), &[], ""); RECENT]))
    }
}

impl SaveCache {
    #[inline]
    fn slot(key: (usize, usize, usize)) -> usize {
        recent_slot(key.0, key.2)
    }

    /// The learned field list of a struct, if any, in its recent slot.
    #[inline(always)]
    fn fields(&mut self, key: (usize, usize, usize)) -> Option<&mut Recent> {
        let at = Self::slot(key);
        if self.recent.0[at].key != key {
            let members = *self.structs.get(&key)?;
            self.recent.0[at] = Recent {
                key,
                members,
                ty: 0,
                gen: 0,
            };
        }
        Some(&mut self.recent.0[at])
    }

    /// The one-variant member list and payload type name of a variant,
    /// from its recent slot (enums alternate between few variants) or the
    /// map.
    #[inline]
    fn variant(&mut self, key: VariantKey, name: Name, variant: Name) -> (&'static [Name], Name) {
        let at = recent_slot(key.0, key.2);
        let slot = &mut self.recent_variants.0[at];
        if slot.0 != key {
            let found = *self.variants.entry(key).or_insert_with(|| {
                (
                    intern::list(&[variant]),
                    intern::name(&format!("{name}::{variant}")),
                )
            });
            *slot = (key, found.0, found.1);
        }
        (slot.1, slot.2)
    }

    fn learn(&mut self, key: (usize, usize, usize), members: &'static [Name]) {
        self.structs.insert(key, members);
        self.recent.0[Self::slot(key)] = Recent {
            key,
            members,
            ty: 0,
            gen: 0,
        };
    }
}

/// How many times one value is run again before its `Serialize` is taken
/// to name different fields each time.
const MAX_RERUNS: usize = 4;

/// Writes serde values into a [`Saver`].
pub(crate) struct Ser<'a> {
    pub(crate) s: &'a mut Saver,
}

impl<'a> Ser<'a> {
    /// Writes one value, one nesting level deeper, running it again if a
    /// struct inside it learned its field list on the way.
    #[inline]
    pub(crate) fn put<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        let check_stack = self.s.enter()?;
        let r = if check_stack {
            crate::mem::grow_stack(|| self.run(v))
        } else {
            self.run(v)
        };
        self.s.leave();
        r
    }

    #[inline(always)]
    fn run<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        let pos = self.s.buf_mut().len();
        let types = self.s.next_type_id();
        match v.serialize(&mut Ser { s: &mut *self.s }) {
            Ok(()) => Ok(()),
            Err(e) => self.rerun(v, e, pos, types),
        }
    }

    /// After an error: if it asks for a rerun, cuts the output back to `pos`
    /// (and the types to `types`) and runs `v` again, a few times at most.
    #[cold]
    #[inline(never)]
    fn rerun<T: Serialize + ?Sized>(
        &mut self,
        v: &T,
        mut e: Error,
        pos: usize,
        types: u32,
    ) -> Result<()> {
        for _ in 0..MAX_RERUNS {
            if !e.is_relayout() {
                return Err(e);
            }
            self.s.buf_mut().truncate(pos);
            self.s.forget_types(types);
            match v.serialize(&mut Ser { s: &mut *self.s }) {
                Ok(()) => return Ok(()),
                Err(again) => e = again,
            }
        }
        if !e.is_relayout() {
            return Err(e);
        }
        Err(Error::custom(format!(
            "the Serialize impl of `{}` names different fields each time it runs",
            e.relayout_type().unwrap_or("?")
        )))
    }

    fn positions(&mut self, n: usize) -> &'static [Name] {
        let p = &mut self.s.serde.positions;
        if p.len() <= n {
            p.resize(n + 1, None);
        }
        p[n].get_or_insert_with(|| intern::positions(n))
    }

    /// Writes VARIANT, the type `name` with this one variant, and its index 0;
    /// returns the payload's type name `Enum::Variant`.
    fn variant(&mut self, name: Name, variant: Name) -> Name {
        let key = (
            name.as_ptr() as usize,
            name.len(),
            variant.as_ptr() as usize,
            variant.len(),
        );
        let (members, payload) = self.s.serde.variant(key, name, variant);
        let ty = self.s.type_ref(DefKind::Enum, name, members);
        self.s.count_type(ty);
        self.s.varint(0);
        payload
    }

    /// A STRUCT with a fixed member list (tuple structs and variants).
    fn fixed(&mut self, name: Name, members: &'static [Name]) {
        let ty = self.s.type_ref(DefKind::Struct, name, members);
        self.s.count_type(ty);
    }

    /// A STRUCT whose fields are learned: its header if the field list is
    /// known, else nothing yet. The common case, a struct whose list and id
    /// in this save are in its recent slot, is a few instructions inline;
    /// both ways end in the same `Fields::new`, so that the struct stays in
    /// registers rather than being copied through memory from each path.
    #[inline(always)]
    fn begin_struct(self, name: Name, len: usize) -> Fields<'a> {
        let key = (name.as_ptr() as usize, name.len(), len);
        let gen = self.s.type_gen();
        let r = &self.s.serde.recent.0[SaveCache::slot(key)];
        let members = if r.key == key && r.gen == gen {
            let (members, ty) = (r.members, r.ty);
            self.s.count_type(ty);
            self.s.tag(wire::STRUCT);
            self.s.varint(ty as u64);
            members
        } else {
            self.s.begin_struct_slow(key, name)
        };
        Fields::new(self, name, len, members)
    }
}

impl Saver {
    /// `begin_struct` when the recent slot does not know the struct's id in
    /// this save: writes the header with the learned list from the cache
    /// (and the id from the type table) and returns the list, or, with no
    /// list yet, writes nothing and returns `&UNKNOWN[..0]`.
    #[inline(never)]
    fn begin_struct_slow(&mut self, key: (usize, usize, usize), name: Name) -> &'static [Name] {
        let gen = self.type_gen();
        let Some(members) = self.serde.fields(key).map(|r| r.members) else {
            // Learning: the names seen start here. No values are written
            // meanwhile, so no other struct uses `seen` until this one ends.
            self.serde.seen.clear();
            return &UNKNOWN[..0];
        };
        let ty = self.type_ref(DefKind::Struct, name, members);
        if let Some(r) = self.serde.fields(key) {
            (r.ty, r.gen) = (ty, gen);
        }
        self.count_type(ty);
        members
    }
}

/// The member list of a struct whose fields are not known yet: its
/// address marks it, its empty length sends every field down the slow path.
static UNKNOWN: [Name; 1] = [""];

/// The fields of a struct being written.
/// Small, since every struct written moves one around: once the fields
/// leave the learned list (or none was known), the names seen go to
/// `SaveCache::seen` (a struct learning its fields writes none of their
/// values, so no other struct learns meanwhile).
pub(crate) struct Fields<'a> {
    ser: Ser<'a>,
    name: Name,
    /// The field count serde announced (part of the cache key).
    len: usize,
    /// The learned field list while the fields so far follow it; empty once
    /// they left it, and `&UNKNOWN[..0]` when no list was known (no header
    /// written yet).
    members: &'static [Name],
    i: usize,
}

impl<'a> Fields<'a> {
    #[inline(always)]
    fn new(ser: Ser<'a>, name: Name, len: usize, members: &'static [Name]) -> Self {
        Fields {
            ser,
            name,
            len,
            members,
            i: 0,
        }
    }

    #[inline(always)]
    fn field<T: Serialize + ?Sized>(&mut self, key: Name, v: &T) -> Result<()> {
        // The learned names are the same static strings serde passes each
        // time, so address and length match; other equal strings take the
        // slow path.
        if let Some(want) = self.members.get(self.i) {
            if want.as_ptr() == key.as_ptr() && want.len() == key.len() {
                self.i += 1;
                return self.value(key, v);
            }
        }
        // The slow path takes and gives back values, not `&mut self`, so
        // that the struct is never made to live in memory.
        let (members, follows) = self.ser.s.serde.off_list(self.members, self.i, key);
        self.members = members;
        self.i += 1;
        if follows {
            return self.value(key, v);
        }
        Ok(())
    }

    /// Writes a field's value. Not through `put`: a field is no place to
    /// rerun from (a rerun starts at the nearest element, option, variant
    /// or newtype, or the root), nor to count depth (every recursive type
    /// nests through one of those).
    #[inline(always)]
    fn value<T: Serialize + ?Sized>(&mut self, key: Name, v: &T) -> Result<()> {
        v.serialize(&mut Ser {
            s: &mut *self.ser.s,
        })
        .map_err(|e| e.in_field(key))
    }

    #[inline(always)]
    fn end(self) -> Result<()> {
        // Once left, or when unknown, the list is empty and `i` is not,
        // except for an unknown struct without fields.
        if self.i == self.members.len() && (self.i != 0 || !unknown(self.members)) {
            return Ok(());
        }
        let key = (self.name.as_ptr() as usize, self.name.len(), self.len);
        Err(self
            .ser
            .s
            .serde
            .learn_seen(key, self.name, self.members, self.i))
    }
}

/// Whether no list was known for a struct (no header written).
fn unknown(members: &'static [Name]) -> bool {
    std::ptr::eq(members.as_ptr(), UNKNOWN.as_ptr())
}

/// Whether a struct's fields left its learned list (see `leave_list`).
fn left(members: &'static [Name]) -> bool {
    std::ptr::eq(members.as_ptr(), UNKNOWN[1..].as_ptr())
}

impl SaveCache {
    /// A field `key` that is not the `i`th of `members` by address: the
    /// same name at another address (returns the list and true: write the
    /// value), or the fields leave the list here (returns the list to go
    /// on with and false: the name is kept in `seen`, no value written).
    #[cold]
    #[inline(never)]
    fn off_list(
        &mut self,
        members: &'static [Name],
        i: usize,
        key: Name,
    ) -> (&'static [Name], bool) {
        if members.get(i) == Some(&key) {
            return (members, true);
        }
        let members = self.leave_list(members, i);
        self.seen.push(key);
        (members, false)
    }

    /// The fields of a struct leave its learned list `members` after `i`
    /// of them (if they were following one): from here on only the names
    /// count, starting with those written so far. Returns the list to go
    /// on with.
    fn leave_list(&mut self, members: &'static [Name], i: usize) -> &'static [Name] {
        if unknown(members) || left(members) {
            return members;
        }
        self.seen.clear();
        self.seen.extend_from_slice(&members[..i]);
        &UNKNOWN[1..]
    }

    /// A struct's fields did not follow its learned list (or none was
    /// known): learns the ones seen and returns the error asking for a
    /// rerun.
    #[cold]
    #[inline(never)]
    fn learn_seen(
        &mut self,
        key: (usize, usize, usize),
        name: Name,
        members: &'static [Name],
        i: usize,
    ) -> Error {
        // Fewer fields than learned, if still following the list.
        self.leave_list(members, i);
        let learned = intern::list(&self.seen);
        self.learn(key, learned);
        Error::relayout(name)
    }
}

/// A sequence, tuple, tuple struct or tuple variant being written: its
/// elements are counted against the announced length, or, for a sequence
/// of unknown length, the count is put in front at the end.
pub(crate) struct Elements<'a> {
    ser: Ser<'a>,
    /// Where the count goes when it was not known up front.
    count_at: Option<usize>,
    len: usize,
    n: usize,
}

impl<'a> Elements<'a> {
    #[inline(always)]
    fn new(ser: Ser<'a>, len: Option<usize>) -> Self {
        let count_at = match len {
            Some(n) => {
                ser.s.varint(n as u64);
                None
            }
            None => Some(ser.s.buf_mut().len()),
        };
        Elements {
            ser,
            count_at,
            len: len.unwrap_or(0),
            n: 0,
        }
    }

    #[inline]
    fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        let i = self.n;
        self.n += 1;
        self.ser.put(v).map_err(|e| e.in_index(i as u64))
    }

    #[inline(always)]
    fn finish(self) -> Result<()> {
        if self.count_at.is_none() && self.n == self.len {
            return Ok(());
        }
        self.finish_slow()
    }

    /// `finish` for a sequence of unknown length (its count goes in front
    /// now), or one that gave fewer or more elements than it announced.
    #[cold]
    #[inline(never)]
    fn finish_slow(self) -> Result<()> {
        let Some(at) = self.count_at else {
            return Err(Error::custom(format!(
                "a Serialize impl announced {} elements and gave {}",
                self.len, self.n
            )));
        };
        let mut count = [0; crate::varint::MAX_LEN];
        let n = crate::varint::encode(self.n as u64, &mut count);
        self.ser
            .s
            .buf_mut()
            .splice(at..at, count[..n].iter().copied());
        Ok(())
    }
}

/// A map being written: entries are captured, then sorted (see `content`).
pub(crate) struct Entries<'a> {
    ser: Ser<'a>,
    entries: Vec<(Content, Content)>,
    key: Option<Content>,
}

impl Entries<'_> {
    fn end(mut self) -> Result<()> {
        if self.key.is_some() {
            return Err(Error::custom("a map key without its value"));
        }
        let mut entries = std::mem::take(&mut self.entries);
        if entries.len() > 1 {
            // Each key encoded on its own, with fresh tables: the order
            // then depends on the keys only, as for derived hash maps.
            // The saver's own sort-key encoder (as for derived hash maps).
            let mut scratch = self.ser.s.take_scratch();
            let mut keyed = Vec::with_capacity(entries.len());
            let mut encoded = Ok(());
            for (i, e) in entries.drain(..).enumerate() {
                scratch.reset();
                encoded = Ser { s: &mut scratch }
                    .put(&e.0)
                    .map_err(|err| err.in_index(i as u64));
                if encoded.is_err() {
                    break;
                }
                keyed.push((scratch.buf_mut().clone(), e));
            }
            self.ser.s.put_scratch(scratch);
            encoded?;
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            entries.extend(keyed.into_iter().map(|(_, e)| e));
        }
        self.ser.s.tag(wire::MAP);
        self.ser.s.varint(entries.len() as u64);
        for (i, (k, v)) in entries.iter().enumerate() {
            self.ser.put(k).map_err(|e| e.in_index(i as u64))?;
            self.ser.put(v).map_err(|e| e.in_index(i as u64))?;
        }
        Ok(())
    }
}

/// `fn serialize_x(self, v: X) -> Result<()>` arms that write `v` (widened
/// with `into`) through one `Saver` method.
macro_rules! scalars {
    ($($f:ident($t:ty) => $w:ident),* $(,)?) => {$(
        #[inline]
        fn $f(self, v: $t) -> Result<()> {
            self.s.$w(v.into());
            Ok(())
        }
    )*};
}

/// The serializer's variant methods that write their payload through
/// another method (serde's signatures, each generated once).
macro_rules! variant_payload {
    ($($method:ident => $then:ident -> $out:ty),*) => {$(
        #[inline]
        fn $method(self, name: Name, _i: u32, variant: Name, len: usize) -> Result<$out> {
            let payload = self.variant(name, variant);
            self.$then(payload, len)
        }
    )*};
}

impl<'a, 'b> ser::Serializer for &'b mut Ser<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Elements<'b>;
    type SerializeTuple = Elements<'b>;
    type SerializeTupleStruct = Elements<'b>;
    type SerializeTupleVariant = Elements<'b>;
    type SerializeMap = Entries<'b>;
    type SerializeStruct = Fields<'b>;
    type SerializeStructVariant = Fields<'b>;

    fn is_human_readable(&self) -> bool {
        super::HUMAN_READABLE
    }
    // Each scalar is the saver's own write of its widest kind.
    scalars! {
        serialize_bool(bool) => write_bool,
        serialize_i8(i8) => write_i64,
        serialize_i16(i16) => write_i64,
        serialize_i32(i32) => write_i64,
        serialize_i64(i64) => write_i64,
        serialize_i128(i128) => write_i128,
        serialize_u8(u8) => write_u64,
        serialize_u16(u16) => write_u64,
        serialize_u32(u32) => write_u64,
        serialize_u64(u64) => write_u64,
        serialize_u128(u128) => write_u128,
        serialize_f32(f32) => write_f32,
        serialize_f64(f64) => write_f64,
        serialize_char(char) => write_char,
        serialize_str(&str) => write_str,
    }
    #[inline]
    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        self.s.write_packed(wire::Packed::U8, [v, &[]]);
        Ok(())
    }
    #[inline]
    fn serialize_none(self) -> Result<()> {
        self.s.write_none();
        Ok(())
    }
    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<()> {
        self.s.tag(wire::SOME);
        self.put(v)
    }
    #[inline]
    fn serialize_unit(self) -> Result<()> {
        self.s.write_unit();
        Ok(())
    }
    #[inline]
    fn serialize_unit_struct(self, name: Name) -> Result<()> {
        self.fixed(name, &[]);
        Ok(())
    }
    #[inline]
    fn serialize_unit_variant(self, name: Name, _i: u32, variant: Name) -> Result<()> {
        self.variant(name, variant);
        self.s.write_unit();
        Ok(())
    }
    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: Name, v: &T) -> Result<()> {
        let members = self.positions(1);
        self.fixed(name, members);
        self.put(v).map_err(|e| e.in_field("0"))
    }
    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: Name,
        _i: u32,
        variant: Name,
        v: &T,
    ) -> Result<()> {
        let payload = self.variant(name, variant);
        let members = self.positions(1);
        self.fixed(payload, members);
        self.put(v).map_err(|e| e.in_field("0").in_field(variant))
    }
    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Elements<'b>> {
        self.s.tag(wire::SEQ);
        Ok(Elements::new(Ser { s: &mut *self.s }, len))
    }
    #[inline]
    fn serialize_tuple(self, len: usize) -> Result<Elements<'b>> {
        self.s.tag(wire::TUPLE);
        Ok(Elements::new(Ser { s: &mut *self.s }, Some(len)))
    }
    #[inline]
    fn serialize_tuple_struct(self, name: Name, len: usize) -> Result<Elements<'b>> {
        let members = self.positions(len);
        self.fixed(name, members);
        Ok(Elements {
            ser: Ser { s: &mut *self.s },
            count_at: None,
            len,
            n: 0,
        })
    }
    // A tuple or struct variant: the VARIANT, then its payload as a tuple
    // struct or struct named `Enum::Variant`.
    variant_payload!(
        serialize_tuple_variant => serialize_tuple_struct -> Elements<'b>,
        serialize_struct_variant => serialize_struct -> Fields<'b>
    );
    #[inline]
    fn serialize_map(self, _len: Option<usize>) -> Result<Entries<'b>> {
        Ok(Entries {
            ser: Ser { s: &mut *self.s },
            entries: Vec::new(),
            key: None,
        })
    }
    #[inline(always)]
    fn serialize_struct(self, name: Name, len: usize) -> Result<Fields<'b>> {
        Ok(Ser { s: &mut *self.s }.begin_struct(name, len))
    }
}

element_compounds!(Elements<'_> => ());

impl ser::SerializeMap for Entries<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<()> {
        if self.key.is_some() {
            return Err(Error::custom("two map keys without a value between"));
        }
        self.key = Some(content::of(k)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        let k = self
            .key
            .take()
            .ok_or_else(|| Error::custom("a map value without its key"))?;
        let i = self.entries.len() as u64;
        self.entries
            .push((k, content::of(v).map_err(|e| e.in_index(i))?));
        Ok(())
    }
    fn end(self) -> Result<()> {
        Entries::end(self)
    }
}

/// Structs and struct variants, both one `Fields`.
macro_rules! fields {
    ($($tr:ident),*) => {$(
        impl ser::$tr for Fields<'_> {
            type Ok = ();
            type Error = Error;
            #[inline]
            fn serialize_field<T: Serialize + ?Sized>(&mut self, key: Name, v: &T) -> Result<()> {
                self.field(key, v)
            }
            #[inline]
            fn end(self) -> Result<()> {
                Fields::end(self)
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);
