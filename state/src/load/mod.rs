//! The graph decoder.
//!
//! Decoding is driven by the Rust types (each [`Stateify::load`] asks for what
//! it expects) and checked against the stream's tags and type table. Shared
//! objects are built where they are first defined and recorded in an object
//! table by id; `REF id` clones from it. An object marked `OBJ_CYCLIC` is
//! built with `new_cyclic`, so the weak back-edges inside it can be handed
//! out before the value exists (they upgrade only once it does). An error
//! inside such a construction leaves `new_cyclic` through a private unwind
//! payload and comes back as an `Err`.
//!
//! Invariants: the object table keeps every built object alive until the
//! load (deferred hooks included) ends, and is dropped in id order, parents
//! first, so even a million-long chain is torn down without deep recursion;
//! no allocation is larger than what the remaining input can justify.
//!
//! The parts: this file holds the `Loader` and its readers of values;
//! `layout` matches stream types to Rust types (`StructLoad`, field
//! layouts); `objects` is the object table's vocabulary (`SharedPtr`,
//! `ObjSlot`, `ErasedWeak`); `shared` builds shared objects, cycles and
//! weak references.

use std::time::Instant;

use crate::error::{Error, ErrorKind, Result};
use crate::hooks::{LoadContext, Resources};
use crate::reader::Reader;
use crate::stats::{Counters, LoadStats};
use crate::suspend::Stacks;
use crate::table::{DefKind, TypeTable};
use crate::walk::{Visitor, Walk};
use crate::wire::{self, Packed};
use crate::Stateify;

mod layout;
mod objects;
mod shared;

pub use layout::StructLoad;
use layout::{Layout, RecentStruct};
pub(crate) use objects::ErasedWeak;
pub use objects::{ObjSlot, SharedPtr};
use shared::MAX_PENDING;

/// Options of a load.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Deepest nesting of pointers and containers accepted from the input.
    pub max_depth: usize,
    /// Deepest nesting of *owned* values (`Box`, `Vec`, maps, structs…)
    /// between two shared objects. Dropping owned values recurses once per
    /// level on the thread's own stack, so a rejected input (or the value
    /// itself, later) must not nest deeper than a thread stack can drop.
    /// Shared objects (`Rc`, `Arc`) reset the count: the loader's object
    /// table keeps them alive until the end, so they drop one at a time.
    pub max_owned_depth: usize,
    /// Measure time per type in the statistics.
    pub timing: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            max_depth: crate::DEFAULT_MAX_DEPTH,
            max_owned_depth: crate::DEFAULT_MAX_OWNED_DEPTH,
            timing: false,
        }
    }
}

/// The decoder state handed to [`Stateify::load`].
pub struct Loader<'de, 'r> {
    r: Reader<'de>,
    types: TypeTable<'de>,
    layouts: Vec<Option<Layout>>,
    objects: Vec<ObjSlot>,
    depth: usize,
    max_depth: usize,
    owned_depth: usize,
    max_owned_depth: usize,
    counters: Counters,
    cx: LoadContext<'r>,
    /// The struct types most recently matched, by the low bits of their
    /// one-byte stream id (a `Player` holding `Item`s holding
    /// `Enchantment`s alternates between them, so one entry would miss).
    recent_structs: [RecentStruct; RECENT_STRUCTS],
    /// Bytes that vectors may still preallocate from their claimed counts;
    /// see [`Loader::read_elements`].
    prealloc_left: usize,
    /// The graph format version of the record.
    version: u8,
    /// Objects announced and not yet defined, and how many may be.
    pending: usize,
    max_pending: usize,
    /// Stacks of suspended constructions, for reuse.
    stacks: Stacks,
    /// What this load calls now (see [`Loader::now`]), fixed at first use.
    now: Option<std::time::Instant>,
}

/// Entries of [`Loader`]'s recent-struct cache (a power of two).
const RECENT_STRUCTS: usize = 8;

/// Preallocation budget of a load: this many bytes per input byte…
const PREALLOC_PER_INPUT_BYTE: usize = 16;
/// …plus this many.
const PREALLOC_FLOOR: usize = 1 << 20;

/// A skip sees values only to pass over them.
struct Skip;

impl Visitor<'_> for Skip {}

impl<'de, 'r> Loader<'de, 'r> {
    fn new(
        payload: &'de [u8],
        base: u64,
        resources: &'r mut Resources,
        opts: &LoadOptions,
    ) -> Self {
        Loader {
            r: Reader::new(payload, base),
            types: TypeTable::default(),
            layouts: Vec::new(),
            objects: Vec::new(),
            depth: 0,
            max_depth: opts.max_depth,
            owned_depth: 0,
            max_owned_depth: opts.max_owned_depth,
            counters: Counters::new(opts.timing),
            cx: LoadContext::new(resources),
            recent_structs: [RecentStruct::NONE; RECENT_STRUCTS],
            prealloc_left: payload
                .len()
                .saturating_mul(PREALLOC_PER_INPUT_BYTE)
                .saturating_add(PREALLOC_FLOOR),
            version: wire::GRAPH_VERSION_1,
            pending: 0,
            max_pending: (256 + payload.len() / 16).min(MAX_PENDING),
            stacks: Stacks::default(),
            now: None,
        }
    }

    /// The moment this load calls now: read from the clock at the first
    /// call, the same for the rest of the load. An `Instant` loads as this
    /// plus its saved distance from [`Saver::now`](crate::Saver::now).
    pub fn now(&mut self) -> std::time::Instant {
        *self.now.get_or_insert_with(std::time::Instant::now)
    }

    /// The hook context: resources and deferred closures.
    pub fn context(&mut self) -> &mut LoadContext<'r> {
        &mut self.cx
    }

    /// The current byte offset in the record.
    pub fn offset(&self) -> u64 {
        self.r.offset()
    }

    /// An error located at the current offset.
    pub fn error(&self, e: Error) -> Error {
        self.r.error(e)
    }

    #[inline]
    fn tag(&mut self) -> Result<u8> {
        self.r.u8()
    }

    #[cold]
    fn mismatch(&self, expected: &str, tag: u8, at: u64) -> Error {
        Error::mismatch(expected, wire::tag_name(tag)).at(at)
    }

    /// Skips one value of any kind (objects inside it cannot be referenced later).
    pub fn skip_value(&mut self) -> Result<()> {
        let mut w = Walk {
            r: &mut self.r,
            types: &mut self.types,
            v: &mut Skip,
            depth: self.depth,
            max_depth: self.max_depth,
            objects: self.objects.len() as u64,
        };
        let r = w.value();
        // The objects the skipped value defined keep their ids, unusable.
        self.objects
            .resize_with(w.objects as usize, || ObjSlot::Skipped);
        r
    }

    /// Runs `f` one nesting level deeper (depth limit, stack growth).
    #[inline]
    pub fn nest<R>(&mut self, f: impl FnOnce(&mut Self) -> Result<R>) -> Result<R> {
        if self.depth >= self.max_depth {
            return Err(self
                .r
                .error(Error::new(ErrorKind::DepthLimit(self.max_depth))));
        }
        if self.owned_depth >= self.max_owned_depth {
            return Err(self
                .r
                .error(Error::new(ErrorKind::OwnedDepthLimit(self.max_owned_depth))));
        }
        self.depth += 1;
        self.owned_depth += 1;
        let r = crate::mem::grow_stack(|| f(self));
        self.depth -= 1;
        self.owned_depth -= 1;
        r
    }

    /// [`Loader::nest`] for the serde bridge, which nests once per
    /// compound value and option: the depth counted at every level, the
    /// stack checked at every eighth.
    #[cfg(feature = "serde")]
    #[inline]
    pub(crate) fn nest_sparse<R>(&mut self, f: impl FnOnce(&mut Self) -> Result<R>) -> Result<R> {
        if self.depth >= self.max_depth || self.owned_depth >= self.max_owned_depth {
            return self.nest(f);
        }
        self.depth += 1;
        self.owned_depth += 1;
        let r = if self.depth % 8 == 0 {
            crate::mem::grow_stack(|| f(self))
        } else {
            f(self)
        };
        self.depth -= 1;
        self.owned_depth -= 1;
        r
    }

    /// [`Loader::nest`] into the body of a shared object, which starts a new
    /// count of owned depth (see [`LoadOptions::max_owned_depth`]).
    fn nest_object<R>(&mut self, f: impl FnOnce(&mut Self) -> Result<R>) -> Result<R> {
        let owned = std::mem::replace(&mut self.owned_depth, 0);
        let r = self.nest(f);
        self.owned_depth = owned;
        r
    }

    // ---- scalars -------------------------------------------------------

    /// Reads `()`.
    pub fn read_unit(&mut self) -> Result<()> {
        let at = self.r.offset();
        match self.tag()? {
            wire::UNIT => Ok(()),
            t => Err(self.mismatch("unit", t, at)),
        }
    }

    /// Reads a bool.
    #[inline]
    pub fn read_bool(&mut self) -> Result<bool> {
        self.read_either(wire::FALSE, wire::TRUE, "bool")
    }

    /// Reads one of two tags: false for `no`, true for `yes`.
    #[inline(always)]
    fn read_either(&mut self, no: u8, yes: u8, what: &str) -> Result<bool> {
        let at = self.r.offset();
        let t = self.tag()?;
        if t == no || t == yes {
            return Ok(t == yes);
        }
        Err(self.mismatch(what, t, at))
    }

    /// Reads an unsigned integer as u64 (`what` names the Rust type in errors).
    #[inline]
    pub fn read_u64(&mut self, what: &str) -> Result<u64> {
        let at = self.r.offset();
        match self.tag()? {
            t @ wire::SMALL..=0xff => Ok((t - wire::SMALL) as u64),
            wire::UINT => self.r.varint(),
            wire::U64 => Ok(u64::from_le_bytes(self.r.array()?)),
            t => Err(self.mismatch(what, t, at)),
        }
    }

    /// Reads a signed integer as i64.
    #[inline]
    pub fn read_i64(&mut self, what: &str) -> Result<i64> {
        let at = self.r.offset();
        match self.tag()? {
            t @ wire::SMALL..=0xff => Ok((t - wire::SMALL) as i64),
            t @ (wire::UINT | wire::U64) => {
                let v = match t {
                    wire::UINT => self.r.varint()?,
                    _ => u64::from_le_bytes(self.r.array()?),
                };
                i64::try_from(v).map_err(|_| out_of_range(what, v, at))
            }
            wire::NINT => {
                let n = self.r.varint()?;
                i64::try_from(n)
                    .map(|n| -1 - n)
                    .map_err(|_| out_of_range(what, format!("-1-{n}"), at))
            }
            t => Err(self.mismatch(what, t, at)),
        }
    }

    /// Reads any integer as i128 (for u128/i128).
    pub fn read_i128_any(&mut self, what: &str) -> Result<(bool, u128)> {
        let at = self.r.offset();
        match self.r.peek()? {
            wire::U128 => {
                self.r.u8()?;
                Ok((false, u128::from_le_bytes(self.r.array()?)))
            }
            wire::I128 => {
                self.r.u8()?;
                let v = i128::from_le_bytes(self.r.array()?);
                Ok((v < 0, v as u128))
            }
            wire::NINT => {
                self.r.u8()?;
                let n = self.r.varint()?;
                Ok((true, (-1i128 - n as i128) as u128))
            }
            t @ (wire::UINT | wire::U64 | wire::SMALL..=0xff) => {
                let _ = t;
                Ok((false, self.read_u64(what)? as u128))
            }
            t => Err(self.mismatch(what, t, at)),
        }
    }

    /// Reads a u128 (written in any integer encoding; a negative one is
    /// out of range).
    pub fn read_u128(&mut self) -> Result<u128> {
        let at = self.r.offset();
        match self.read_i128_any("u128")? {
            (false, v) => Ok(v),
            (true, v) => Err(out_of_range("u128", v as i128, at)),
        }
    }

    /// Reads an i128 (written in any integer encoding).
    pub fn read_i128(&mut self) -> Result<i128> {
        let at = self.r.offset();
        match self.read_i128_any("i128")? {
            (true, v) => Ok(v as i128),
            (false, v) => i128::try_from(v).map_err(|_| out_of_range("i128", v, at)),
        }
    }

    /// Reads an f32.
    pub fn read_f32(&mut self) -> Result<f32> {
        self.read_float(wire::F32, "f32")
            .map(|b| f32::from_bits(b as u32))
    }

    /// Reads an f64.
    pub fn read_f64(&mut self) -> Result<f64> {
        self.read_float(wire::F64, "f64").map(f64::from_bits)
    }

    /// The bits of a float written with `tag` (F32 or F64).
    #[inline(always)]
    fn read_float(&mut self, tag: u8, what: &str) -> Result<u64> {
        let at = self.r.offset();
        match self.tag()? {
            wire::F32 if tag == wire::F32 => Ok(u32::from_le_bytes(self.r.array()?) as u64),
            wire::F64 if tag == wire::F64 => Ok(u64::from_le_bytes(self.r.array()?)),
            t => Err(self.mismatch(what, t, at)),
        }
    }

    /// Reads a char.
    pub fn read_char(&mut self) -> Result<char> {
        let at = self.r.offset();
        match self.tag()? {
            wire::CHAR => {
                let v = self.r.varint()?;
                u32::try_from(v)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| {
                        Error::invalid(format!("{v:#x} is not a Unicode scalar value")).at(at)
                    })
            }
            t => Err(self.mismatch("char", t, at)),
        }
    }

    /// Reads a string slice borrowed from the input.
    #[inline]
    pub fn read_str(&mut self) -> Result<&'de str> {
        if let Some(s) = self.r.short_str(wire::STR) {
            return Ok(s);
        }
        let at = self.r.offset();
        match self.tag()? {
            wire::STR => self.r.str(),
            t => Err(self.mismatch("string", t, at)),
        }
    }

    /// Reads a packed array of `kind`, returning its raw little-endian bytes.
    /// Returns `Ok(None)` (consuming nothing) if the next value is not packed.
    pub fn read_packed(&mut self, kind: Packed) -> Result<Option<&'de [u8]>> {
        if self.r.peek()? != wire::PACKED {
            return Ok(None);
        }
        let at = self.r.offset();
        self.r.u8()?;
        let k = self.r.u8()?;
        if k != kind as u8 {
            let found = Packed::from_byte(k).map_or("unknown kind", |p| p.name());
            return Err(Error::mismatch(
                format!("packed {}", kind.name()),
                format!("packed {found}"),
            )
            .at(at));
        }
        let n = self.r.count(kind.size())?;
        Ok(Some(self.r.bytes((n * kind.size()) as u64)?))
    }

    /// Reads `None` (returns false) or `Some` (returns true; the value follows).
    #[inline]
    pub fn read_option_tag(&mut self) -> Result<bool> {
        self.read_either(wire::NONE, wire::SOME, "option")
    }

    // ---- composites ------------------------------------------------------

    /// Reads a sequence header: the element count, checked against the input.
    #[inline]
    pub fn read_seq_header(&mut self) -> Result<usize> {
        let at = self.r.offset();
        match self.tag()? {
            wire::SEQ => self.r.count(1),
            t => Err(self.mismatch("sequence", t, at)),
        }
    }

    /// Reads an ordinary sequence of `N` elements straight into an array,
    /// with no vector in between; `None` (nothing read) when the input
    /// holds another kind of sequence, such as a packed one.
    #[doc(hidden)]
    pub fn read_seq_array<T: Stateify, const N: usize>(&mut self) -> Result<Option<[T; N]>> {
        if self.r.peek()? != wire::SEQ {
            return Ok(None);
        }
        let at = self.r.offset();
        let n = self.read_seq_header()?;
        if n != N {
            return Err(Error::wrong_length(N, n, at));
        }
        let mut a = arrayvec::ArrayVec::<T, N>::new();
        self.nest(|l| {
            for i in 0..N {
                a.push(T::load(l).map_err(|e| e.in_index(i as u64))?);
            }
            Ok(())
        })?;
        match a.into_inner() {
            Ok(a) => Ok(Some(a)),
            Err(_) => unreachable!("exactly N elements were pushed"),
        }
    }

    /// Reads a sequence of plain structs: a packed struct array whose layout
    /// must be `T`'s, or (saved before `T` was plain) an ordinary sequence.
    /// The override of [`Stateify::load_seq`] that `#[state(plain)]` generates.
    #[doc(hidden)]
    pub fn read_plain_seq<T: crate::plain::Plain>(&mut self) -> Result<Vec<T>> {
        let at = self.r.offset();
        if self.r.peek()? != wire::PACKED_STRUCTS {
            let n = self.read_seq_header()?;
            return self.read_elements(n);
        }
        self.r.u8()?;
        let ty = self.type_ref(wire::PACKED_STRUCTS, T::NAME, at)?;
        self.check_plain::<T>(ty, at)?;
        let size = std::mem::size_of::<T>();
        let n = self.r.count(size)?;
        // `count` checked that n × size bytes remain: the vector is no
        // larger than the input that describes it.
        let bytes = self.r.bytes((n * size) as u64)?;
        self.counters.counts[ty as usize] += n as u64;
        Ok(crate::plain::decode(bytes, n))
    }

    /// Checks (once per stream type) that a plain definition is `T`'s layout.
    fn check_plain<T: crate::plain::Plain>(&mut self, ty: u32, at: u64) -> Result<()> {
        let key = T::FIELDS.as_ptr() as usize;
        if let Some(Some(l)) = self.layouts.get(ty as usize) {
            if l.members_ptr == key {
                return Ok(());
            }
        }
        let def = &self.types.defs[ty as usize];
        let same = def.members.len() == T::FIELDS.len()
            && def.record == std::mem::size_of::<T>()
            && T::FIELDS
                .iter()
                .zip(def.members.iter().zip(def.plain.iter()))
                .all(|(f, (&name, &(kind, shape)))| {
                    f.name == name && f.kind == kind && f.shape() == shape
                });
        if !same {
            let describe = |fields: &mut dyn Iterator<Item = (&str, Packed, u64)>| {
                fields
                    .map(|(name, kind, shape)| match shape {
                        0 => format!("{name}: {}", kind.name()),
                        n => format!("{name}: [{}; {}]", kind.name(), n - 1),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let ours = describe(&mut T::FIELDS.iter().map(|f| (f.name, f.kind, f.shape())));
            let theirs = describe(
                &mut def
                    .members
                    .iter()
                    .zip(def.plain.iter())
                    .map(|(&n, &(k, s))| (n, k, s)),
            );
            return Err(Error::mismatch(
                format!("plain `{}` {{ {ours} }}", T::NAME),
                format!("{{ {theirs} }}"),
            )
            .at(at));
        }
        self.store_layout(
            ty,
            Layout {
                name_ptr: T::NAME.as_ptr() as usize,
                kind: DefKind::Plain,
                members_ptr: key,
                exact: true,
                map: Box::new([]),
            },
        );
        Ok(())
    }

    /// Reads a tuple header with exactly `n` elements.
    pub fn read_tuple_header(&mut self, n: usize) -> Result<()> {
        let at = self.r.offset();
        match self.tag()? {
            wire::TUPLE => {
                let got = self.r.varint()?;
                if got != n as u64 {
                    return Err(Error::mismatch(
                        format!("tuple of {n}"),
                        format!("tuple of {got}"),
                    )
                    .at(at));
                }
                Ok(())
            }
            t => Err(self.mismatch("tuple", t, at)),
        }
    }

    /// Reads a map header: the entry count, checked against the input.
    pub fn read_map_header(&mut self) -> Result<usize> {
        let at = self.r.offset();
        match self.tag()? {
            wire::MAP => self.r.count(2),
            t => Err(self.mismatch("map", t, at)),
        }
    }

    /// How many of `count` announced elements of `size` bytes each a
    /// container may allocate up front: all of them while the load's
    /// budget (proportional to the input) lasts, which they then use up;
    /// none past it, and the container grows as elements actually arrive.
    pub(crate) fn preallocation(&mut self, count: usize, size: usize) -> usize {
        let want = count.saturating_mul(size.max(1));
        if want <= self.prealloc_left {
            self.prealloc_left -= want;
            count
        } else {
            0
        }
    }

    /// Loads `count` elements into a vector, element-wise.
    ///
    /// The claimed count is trusted for preallocation only while a budget
    /// proportional to the input lasts; the budget is shared by the whole
    /// load, so vectors nested a million deep cannot each reserve a multiple
    /// of the input. Past it, vectors start empty and grow as elements
    /// actually arrive.
    pub fn read_elements<T: Stateify>(&mut self, count: usize) -> Result<Vec<T>> {
        let cap = self.preallocation(count, std::mem::size_of::<T>());
        let mut v = Vec::with_capacity(cap);
        crate::mem::advise_vec(&mut v);
        self.nest(|l| {
            for i in 0..count {
                v.push(T::load(l).map_err(|e| e.in_index(i as u64))?);
            }
            Ok(())
        })?;
        Ok(v)
    }

    /// Loads a struct written by [`crate::Saver::save_struct`]. `f` reads
    /// the fields in stream order through the [`StructLoad`]. Declare the
    /// field slots inside `f`, as the derive does: a closure that captures
    /// nothing has no environment to copy for every struct loaded.
    pub fn load_struct<T>(
        &mut self,
        name: &'static str,
        fields: &'static [&'static str],
        f: impl FnOnce(&mut StructLoad, &mut Self) -> Result<T>,
    ) -> Result<T> {
        let at = self.r.offset();
        let tag = self.tag()?;
        if tag != wire::STRUCT {
            return Err(self.mismatch(&format!("struct `{name}`"), tag, at));
        }
        let key = (name.as_ptr() as usize, fields.as_ptr() as usize);
        let b = self.r.peek().unwrap_or(0xff);
        let recent = self.recent_structs[b as usize % RECENT_STRUCTS];
        let (ty, n, exact) = if recent.ty == b as u32 && (recent.name, recent.fields) == key {
            // A stream type (a one-byte id: the entry's `ty` is never
            // above 0x7f) read as the same Rust type as before: name and
            // layout are already checked.
            self.r.advance(1);
            (recent.ty, recent.n, recent.exact)
        } else {
            let (ty, exact) = self.resolve_type(tag, DefKind::Struct, name, fields, at)?;
            let n = self.types.defs[ty as usize].members.len() as u32;
            if ty < 0x80 {
                self.recent_structs[ty as usize % RECENT_STRUCTS] = RecentStruct {
                    ty,
                    n,
                    exact,
                    name: key.0,
                    fields: key.1,
                };
            }
            (ty, n, exact)
        };
        let mut st = StructLoad {
            name,
            fields,
            ty,
            at: 0,
            n,
            exact,
            ignore_unknown: false,
        };
        self.counted(ty, |l| f(&mut st, l))
    }

    /// Loads an enum written by [`crate::Saver::save_variant`]: `f` gets the
    /// Rust variant index (matched by name) and loads the payload.
    pub fn load_variant<T>(
        &mut self,
        name: &'static str,
        variants: &'static [&'static str],
        f: impl FnOnce(usize, &mut Self) -> Result<T>,
    ) -> Result<T> {
        let at = self.r.offset();
        let tag = self.tag()?;
        if tag != wire::VARIANT {
            return Err(self.mismatch(&format!("enum `{name}`"), tag, at));
        }
        let (ty, _) = self.resolve_type(tag, DefKind::Enum, name, variants, at)?;
        let idx_at = self.r.offset();
        let j = self.r.varint()?;
        let def = &self.types.defs[ty as usize];
        let Some(&vname) = def.members.get(j as usize) else {
            return Err(
                Error::invalid(format!("variant index {j} out of range for `{name}`")).at(idx_at),
            );
        };
        let idx = self.layouts[ty as usize]
            .as_ref()
            .map_or(u32::MAX, |l| l.map[j as usize]);
        if idx == u32::MAX {
            return Err(Error::invalid(format!(
                "enum `{name}` has no variant `{vname}` (removed or renamed since the \
                     stream was written: variants match by name, so keep `{vname}` to load it)"
            ))
            .at(idx_at));
        }
        self.counted(ty, |l| l.nest(|l| f(idx as usize, l)))
            .map_err(|e| e.in_field(vname))
    }

    /// The record's cursor (the serde bridge reads tags through it).
    #[cfg(feature = "serde")]
    pub(crate) fn reader(&mut self) -> &mut Reader<'de> {
        &mut self.r
    }

    /// Reads the type id after `tag` (with its definition on first use),
    /// counts one value of it, and returns it.
    #[cfg(feature = "serde")]
    #[inline]
    pub(crate) fn read_type(&mut self, tag: u8) -> Result<u32> {
        // A type already defined, of the kind the tag needs: no definition
        // to read, nothing to check.
        if let Some((id, n)) = self.r.peek_varint() {
            if let Some(def) = self.types.defs.get(id as usize) {
                if def.kind == DefKind::from_tag(tag) && (id as usize) < self.counters.counts.len()
                {
                    self.r.advance(n);
                    self.counters.counts[id as usize] += 1;
                    return Ok(id as u32);
                }
            }
        }
        self.read_type_slow(tag)
    }

    /// [`Loader::read_type`] for a type defined here or not of the kind.
    #[cfg(feature = "serde")]
    #[inline(never)]
    fn read_type_slow(&mut self, tag: u8) -> Result<u32> {
        let ty = self.types.read_ref(&mut self.r, tag)?;
        self.sync_counters();
        self.counters.counts[ty as usize] += 1;
        Ok(ty)
    }

    /// The stream's definition of type `ty` (one read by `read_type`).
    #[cfg(feature = "serde")]
    pub(crate) fn type_def(&self, ty: u32) -> &crate::table::TypeDef<'de> {
        &self.types.defs[ty as usize]
    }

    /// How many more levels values may nest (the tighter of the two
    /// depth limits), for a deserializer with no limits of its own.
    #[cfg(feature = "postcard")]
    pub(crate) fn depth_left(&self) -> usize {
        (self.max_depth.saturating_sub(self.depth))
            .min(self.max_owned_depth.saturating_sub(self.owned_depth))
    }

    /// The load's preallocation budget (see [`Loader::read_elements`]).
    #[cfg(feature = "postcard")]
    pub(crate) fn prealloc_budget(&mut self) -> &mut usize {
        &mut self.prealloc_left
    }

    /// Whether the next value is a STRUCT whose type has exactly the one
    /// member `0` (a newtype), without consuming anything.
    #[cfg(feature = "serde")]
    pub(crate) fn next_is_newtype(&self) -> bool {
        let mut r = self.r.clone();
        if r.u8().ok() != Some(wire::STRUCT) {
            return false;
        }
        let Ok(id) = r.varint() else { return false };
        if let Some(def) = self.types.defs.get(id as usize) {
            return def.members.len() == 1 && def.members[0] == "0";
        }
        id == self.types.defs.len() as u64
            && r.str().is_ok()
            && r.varint().ok() == Some(1)
            && r.str().ok() == Some("0")
    }

    /// Reads a trait object's concrete type name; the value follows.
    pub fn read_dyn_header(&mut self) -> Result<&'de str> {
        let at = self.r.offset();
        let tag = self.tag()?;
        if tag != wire::DYN {
            return Err(self.mismatch("trait object", tag, at));
        }
        let ty = self.types.read_ref(&mut self.r, tag)?;
        self.sync_counters();
        Ok(self.types.defs[ty as usize].name)
    }

    fn counted<T>(&mut self, ty: u32, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.counters.counts[ty as usize] += 1;
        if self.counters.times.is_some() {
            let t = Instant::now();
            let r = f(self);
            let dt = t.elapsed();
            if let Some(times) = &mut self.counters.times {
                times[ty as usize] += dt;
            }
            r
        } else {
            f(self)
        }
    }

    // ---- shared objects --------------------------------------------------
}

#[cold]
pub(crate) fn out_of_range(what: &str, v: impl std::fmt::Display, at: u64) -> Error {
    Error::invalid(format!("integer {v} out of range for {what}")).at(at)
}

/// Decodes one graph record's payload (after its header).
pub(crate) fn decode_payload<T: Stateify>(
    payload: &[u8],
    base: u64,
    resources: &mut Resources,
    opts: &LoadOptions,
) -> Result<(T, LoadStats)> {
    let start = Instant::now();
    let mut l = Loader::new(payload, base, resources, opts);
    let at = l.r.offset();
    let version = l.r.u8()?;
    if !(wire::GRAPH_VERSION_1..=wire::GRAPH_VERSION).contains(&version) {
        return Err(Error::invalid(format!(
            "graph format version {version} is not supported (this build reads 1 to {})",
            wire::GRAPH_VERSION
        ))
        .at(at));
    }
    l.version = version;
    let root = T::load(&mut l)?;
    if version >= 2 {
        l.load_deferred()?;
    }
    if l.r.remaining() != 0 {
        return Err(l.r.error(Error::invalid(format!(
            "{} bytes left in the graph record after the root value",
            l.r.remaining()
        ))));
    }
    l.cx.run_deferred()?;
    let objects = l.objects.len() as u64;
    let stats = std::mem::take(&mut l.counters).finish(
        objects,
        base + payload.len() as u64,
        start.elapsed(),
    );
    drop(l);
    Ok((root, stats))
}

#[cfg(test)]
mod tests {
    /// Every weak reference of a large graph looks up a slot at random:
    /// the slots stay three words.
    #[test]
    fn object_table_slots_stay_small() {
        assert!(std::mem::size_of::<super::ObjSlot>() <= 24);
    }
}
