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

use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::Instant;

use crate::error::{Error, ErrorKind, Result, Segment};
use crate::hooks::{LoadContext, Resources};
use crate::reader::Reader;
use crate::stats::{Counters, LoadStats};
use crate::suspend::{PendingObject, Stacks, Suspended};
use crate::table::{DefKind, TypeTable};
use crate::walk::{Visitor, Walk};
use crate::weakslot::ErasedWeak;
use crate::wire::{self, Packed};
use crate::Stateify;

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

/// An entry of the object table (opaque outside the crate).
#[doc(hidden)]
pub enum ObjSlot {
    /// Being built; holds the weak handle when built with `new_cyclic`.
    Building(Option<ErasedWeak>),
    /// Built, type-erased without another allocation (`Rc<T>` as `Rc<dyn Any>`).
    BuiltRc(std::rc::Rc<dyn Any>),
    /// Built, any other pointer type, boxed.
    Built(Box<dyn Any>),
    /// Defined inside a value that was skipped (an unknown field).
    Skipped,
    /// Announced by a forward weak reference (`FWD`), its value not yet
    /// read: suspended inside its `new_cyclic` (see `suspend.rs`). Boxed,
    /// so that the table's slots stay as small as they were (a large
    /// graph's weak references miss the cache on them).
    Pending(Box<(ErasedWeak, Box<dyn PendingObject>)>),
}

/// How the stream's fields of one type map onto a Rust type's fields.
struct Layout {
    /// The Rust type this stream type was matched to: its static name and
    /// member list (or plain field list) addresses, and the kind.
    name_ptr: usize,
    kind: DefKind,
    members_ptr: usize,
    exact: bool,
    /// Stream member index → Rust index, `u32::MAX` when unknown.
    map: Box<[u32]>,
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
    last_struct: Option<LastStruct>,
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

/// The struct type most recently matched, to skip the checks on repeats.
#[derive(Clone, Copy)]
struct LastStruct {
    ty: u32,
    n: u32,
    exact: bool,
    name: usize,
    fields: usize,
}

/// Preallocation budget of a load: this many bytes per input byte…
const PREALLOC_PER_INPUT_BYTE: usize = 16;
/// …plus this many.
const PREALLOC_FLOOR: usize = 1 << 20;

/// The unwind payload that carries a load error out of `new_cyclic`.
struct Sentinel;

/// At most this many objects may be announced and not yet defined at once
/// (each waits on a stack of its own; see `suspend.rs`), and at most one
/// per 16 bytes of input beyond the first 256.
const MAX_PENDING: usize = 16 << 10;

mod sealed {
    /// Only this crate implements [`SharedPtr`](super::SharedPtr): unsafe
    /// code here trusts its `weak_into_raw`/`weak_from_raw` to be `Rc`'s
    /// and `Arc`'s own.
    pub trait Sealed {}
    impl<T> Sealed for std::rc::Rc<T> {}
    impl<T> Sealed for std::sync::Arc<T> {}
}

/// `Rc` and `Arc`, as the object table needs them. Sealed: implemented for
/// these two only.
pub trait SharedPtr: sealed::Sealed + Clone + 'static {
    /// The pointee.
    type Target;
    /// The weak pointer type.
    type Weak: Clone + 'static;
    /// Allocates a new shared value.
    fn new(v: Self::Target) -> Self;
    /// `Rc::new_cyclic` / `Arc::new_cyclic`.
    fn new_cyclic(f: impl FnOnce(&Self::Weak) -> Self::Target) -> Self;
    /// A weak pointer to this value.
    fn downgrade(&self) -> Self::Weak;
    /// A weak pointer that never upgrades.
    fn dead() -> Self::Weak;
    /// `Weak::into_raw`: the pointer keeps the handle's weak count.
    #[doc(hidden)]
    fn weak_into_raw(w: Self::Weak) -> *const ();
    /// `Weak::from_raw`.
    ///
    /// # Safety
    /// `p` came from [`weak_into_raw`](Self::weak_into_raw) of this same
    /// type, and each such count is taken back once.
    #[doc(hidden)]
    unsafe fn weak_from_raw(p: *const ()) -> Self::Weak;
    /// Type-erases a clone for the object table.
    #[doc(hidden)]
    fn erase(&self) -> ObjSlot {
        ObjSlot::Built(Box::new(self.clone()))
    }
    /// Recovers a clone from the object table, if the types match.
    #[doc(hidden)]
    fn unerase(slot: &ObjSlot) -> Option<Self> {
        match slot {
            ObjSlot::Built(b) => b.downcast_ref::<Self>().cloned(),
            _ => None,
        }
    }
}

impl<T: 'static> SharedPtr for std::rc::Rc<T> {
    type Target = T;
    type Weak = std::rc::Weak<T>;
    fn new(v: T) -> Self {
        std::rc::Rc::new(v)
    }
    fn new_cyclic(f: impl FnOnce(&Self::Weak) -> T) -> Self {
        std::rc::Rc::new_cyclic(f)
    }
    fn downgrade(&self) -> Self::Weak {
        std::rc::Rc::downgrade(self)
    }
    fn dead() -> Self::Weak {
        std::rc::Weak::new()
    }
    fn weak_into_raw(w: Self::Weak) -> *const () {
        std::rc::Weak::into_raw(w) as *const ()
    }
    unsafe fn weak_from_raw(p: *const ()) -> Self::Weak {
        // SAFETY: the caller's contract: `p` is `Weak::<T>::into_raw` of
        // this pointer type, its count not yet taken back.
        unsafe { std::rc::Weak::from_raw(p as *const T) }
    }
    fn erase(&self) -> ObjSlot {
        ObjSlot::BuiltRc(self.clone())
    }
    fn unerase(slot: &ObjSlot) -> Option<Self> {
        match slot {
            ObjSlot::BuiltRc(rc) => rc.clone().downcast::<T>().ok(),
            _ => None,
        }
    }
}

impl<T: 'static> SharedPtr for std::sync::Arc<T> {
    type Target = T;
    type Weak = std::sync::Weak<T>;
    fn new(v: T) -> Self {
        std::sync::Arc::new(v)
    }
    fn new_cyclic(f: impl FnOnce(&Self::Weak) -> T) -> Self {
        std::sync::Arc::new_cyclic(f)
    }
    fn downgrade(&self) -> Self::Weak {
        std::sync::Arc::downgrade(self)
    }
    fn dead() -> Self::Weak {
        std::sync::Weak::new()
    }
    fn weak_into_raw(w: Self::Weak) -> *const () {
        std::sync::Weak::into_raw(w) as *const ()
    }
    unsafe fn weak_from_raw(p: *const ()) -> Self::Weak {
        // SAFETY: the caller's contract: `p` is `Weak::<T>::into_raw` of
        // this pointer type, its count not yet taken back.
        unsafe { std::sync::Weak::from_raw(p as *const T) }
    }
}

/// Reading one struct's fields, in stream order; see [`Loader::load_struct`].
pub struct StructLoad {
    name: &'static str,
    fields: &'static [&'static str],
    ty: u32,
    at: u32,
    n: u32,
    exact: bool,
    ignore_unknown: bool,
}

impl StructLoad {
    /// Skip stream fields the type does not have instead of failing.
    pub fn ignore_unknown(&mut self) {
        self.ignore_unknown = true;
    }

    /// The Rust index (into the declared fields) of the next field in the
    /// stream, or `None` after the last one.
    #[inline]
    pub fn next(&mut self, l: &mut Loader) -> Result<Option<usize>> {
        if self.exact {
            if self.at == self.n {
                return Ok(None);
            }
            self.at += 1;
            return Ok(Some(self.at as usize - 1));
        }
        self.next_by_name(l)
    }

    fn next_by_name(&mut self, l: &mut Loader) -> Result<Option<usize>> {
        loop {
            if self.at == self.n {
                return Ok(None);
            }
            let j = self.at;
            self.at += 1;
            let idx = l.layouts[self.ty as usize]
                .as_ref()
                .map_or(u32::MAX, |lay| lay.map[j as usize]);
            if idx != u32::MAX {
                return Ok(Some(idx as usize));
            }
            let field = l.types.defs[self.ty as usize].members[j as usize];
            if !self.ignore_unknown {
                return Err(l.r.error(Error::new(ErrorKind::UnknownField {
                    ty: self.name.to_owned(),
                    field: field.to_owned(),
                })));
            }
            l.skip_value().map_err(|e| e.in_field(field))?;
        }
    }

    /// When the stream lists exactly the declared fields in declaration
    /// order and none was read yet, marks them all read and returns true:
    /// the caller then loads field `i` with [`StructLoad::value_at`] for
    /// `i` in `0..fields.len()`, in order.
    #[doc(hidden)]
    #[inline]
    pub fn take_in_order(&mut self) -> bool {
        if self.exact && self.at == 0 {
            self.at = self.n;
            true
        } else {
            false
        }
    }

    /// Loads declared field `i` after [`StructLoad::take_in_order`].
    #[doc(hidden)]
    #[inline]
    pub fn value_at<T: Stateify>(&mut self, l: &mut Loader, i: usize) -> Result<T> {
        match T::load(l) {
            Ok(v) => Ok(v),
            Err(e) => Err(e.in_field(self.fields[i])),
        }
    }

    /// As [`StructLoad::value_at`], through a custom function.
    #[doc(hidden)]
    pub fn value_with_at<T>(
        &mut self,
        l: &mut Loader,
        i: usize,
        f: impl FnOnce(&mut Loader) -> Result<T>,
    ) -> Result<T> {
        f(l).map_err(|e| e.in_field(self.fields[i]))
    }

    /// Loads the value of the field `next` returned.
    #[inline]
    pub fn value<T: Stateify>(&mut self, l: &mut Loader) -> Result<T> {
        match T::load(l) {
            Ok(v) => Ok(v),
            Err(e) => Err(self.in_current(l, e)),
        }
    }

    /// Loads the value of the field `next` returned through a custom
    /// function (`#[state(with)]`).
    pub fn value_with<T>(
        &mut self,
        l: &mut Loader,
        f: impl FnOnce(&mut Loader) -> Result<T>,
    ) -> Result<T> {
        match f(l) {
            Ok(v) => Ok(v),
            Err(e) => Err(self.in_current(l, e)),
        }
    }

    /// Skips the value of the field `next` returned.
    pub fn skip(&mut self, l: &mut Loader) -> Result<()> {
        l.skip_value().map_err(|e| self.in_current(l, e))
    }

    #[cold]
    fn in_current(&self, l: &Loader, e: Error) -> Error {
        let name = l.types.defs[self.ty as usize]
            .members
            .get((self.at as usize).wrapping_sub(1))
            .copied()
            .unwrap_or("?");
        e.in_field(name)
    }

    /// The loaded value of field `idx`, or a "missing field" error.
    #[inline]
    pub fn take<T>(&self, v: Option<T>, idx: usize) -> Result<T> {
        match v {
            Some(v) => Ok(v),
            None => Err(self.missing(idx)),
        }
    }

    /// The error for a field the stream did not have.
    #[cold]
    pub fn missing(&self, idx: usize) -> Error {
        Error::new(ErrorKind::MissingField {
            ty: self.name.to_owned(),
            field: self.fields.get(idx).copied().unwrap_or("?").to_owned(),
        })
    }

    /// The error for a field that appears twice in the stream.
    #[cold]
    pub fn duplicate(&self, idx: usize) -> Error {
        Error::invalid(format!(
            "field `{}` of `{}` appears twice",
            self.fields.get(idx).copied().unwrap_or("?"),
            self.name
        ))
    }
}

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
            last_struct: None,
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
        let n = w.objects as usize;
        while self.objects.len() < n {
            self.objects.push(ObjSlot::Skipped);
        }
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
        let at = self.r.offset();
        match self.tag()? {
            wire::FALSE => Ok(false),
            wire::TRUE => Ok(true),
            t => Err(self.mismatch("bool", t, at)),
        }
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
            wire::UINT => {
                let v = self.r.varint()?;
                i64::try_from(v).map_err(|_| out_of_range(what, v, at))
            }
            wire::U64 => {
                let v = u64::from_le_bytes(self.r.array()?);
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

    /// Reads an f32.
    pub fn read_f32(&mut self) -> Result<f32> {
        let at = self.r.offset();
        match self.tag()? {
            wire::F32 => Ok(f32::from_bits(u32::from_le_bytes(self.r.array()?))),
            t => Err(self.mismatch("f32", t, at)),
        }
    }

    /// Reads an f64.
    pub fn read_f64(&mut self) -> Result<f64> {
        let at = self.r.offset();
        match self.tag()? {
            wire::F64 => Ok(f64::from_bits(u64::from_le_bytes(self.r.array()?))),
            t => Err(self.mismatch("f64", t, at)),
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
        let at = self.r.offset();
        match self.tag()? {
            wire::NONE => Ok(false),
            wire::SOME => Ok(true),
            t => Err(self.mismatch("option", t, at)),
        }
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
                .zip(def.members.iter().zip(&def.plain))
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
                    .zip(&def.plain)
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
        let (ty, n, exact) = match (self.r.peek(), self.last_struct) {
            // The same stream type read as the same Rust type as last time:
            // name and layout are already checked.
            (Ok(b), Some(last))
                if b as u32 == last.ty && b < 0x80 && (last.name, last.fields) == key =>
            {
                self.r.u8()?;
                (last.ty, last.n, last.exact)
            }
            _ => {
                let (ty, exact) = self.resolve_type(tag, DefKind::Struct, name, fields, at)?;
                let n = self.types.defs[ty as usize].members.len() as u32;
                self.last_struct = Some(LastStruct {
                    ty,
                    n,
                    exact,
                    name: key.0,
                    fields: key.1,
                });
                (ty, n, exact)
            }
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

    fn type_ref(&mut self, tag: u8, name: &str, at: u64) -> Result<u32> {
        let ty = self.types.read_ref(&mut self.r, tag)?;
        self.sync_counters();
        let found = self.types.defs[ty as usize].name;
        if found != name {
            return Err(Error::mismatch(
                format!("`{name}`"),
                format!(
                    "`{found}` (if the type was renamed, #[state(type_name = \"{found}\")] \
                     keeps reading streams that use the old name)"
                ),
            )
            .at(at));
        }
        Ok(ty)
    }

    fn sync_counters(&mut self) {
        while self.counters.names.len() < self.types.defs.len() {
            let def = &self.types.defs[self.counters.names.len()];
            self.counters.add_type(def.name, def.kind == DefKind::Dyn);
        }
    }

    /// The next type id, when it is one already matched to this Rust type
    /// (same static name and member list, same kind): consumes it and
    /// returns it with its `exact` flag, skipping the table lookup and the
    /// name comparison. Otherwise consumes nothing.
    #[inline]
    fn known_type(
        &mut self,
        kind: DefKind,
        name: &'static str,
        members: &'static [&'static str],
    ) -> Option<(u32, bool)> {
        let (id, n) = self.r.peek_varint()?;
        let l = self.layouts.get(id as usize)?.as_ref()?;
        if l.members_ptr == members.as_ptr() as usize
            && l.name_ptr == name.as_ptr() as usize
            && l.kind == kind
        {
            self.r.advance(n);
            return Some((id as u32, l.exact));
        }
        None
    }

    /// The stream type id after a struct or enum tag, and whether its
    /// members are exactly the Rust type's: from the layouts already matched
    /// when it is one of them, otherwise read (with its definition on first
    /// use) and matched by name.
    #[inline]
    fn resolve_type(
        &mut self,
        tag: u8,
        kind: DefKind,
        name: &'static str,
        members: &'static [&'static str],
        at: u64,
    ) -> Result<(u32, bool)> {
        if let Some(known) = self.known_type(kind, name, members) {
            return Ok(known);
        }
        let ty = self.type_ref(tag, name, at)?;
        Ok((ty, self.layout(ty, name, members)?))
    }

    /// Matches stream members to Rust members by name, once per type.
    #[inline]
    fn layout(
        &mut self,
        ty: u32,
        name: &'static str,
        members: &'static [&'static str],
    ) -> Result<bool> {
        if let Some(Some(l)) = self.layouts.get(ty as usize) {
            if l.members_ptr == members.as_ptr() as usize {
                return Ok(l.exact);
            }
        }
        self.layout_slow(ty, name, members)
    }

    /// Records the layout matched for stream type `ty`.
    fn store_layout(&mut self, ty: u32, layout: Layout) {
        if self.layouts.len() <= ty as usize {
            self.layouts.resize_with(ty as usize + 1, || None);
        }
        self.layouts[ty as usize] = Some(layout);
    }

    #[cold]
    fn layout_slow(
        &mut self,
        ty: u32,
        name: &'static str,
        members: &'static [&'static str],
    ) -> Result<bool> {
        let def = &self.types.defs[ty as usize];
        let exact = def.members.len() == members.len()
            && def.members.iter().zip(members).all(|(a, b)| a == b);
        let mut map = vec![u32::MAX; def.members.len()].into_boxed_slice();
        let mut seen = vec![false; members.len()];
        for (j, m) in def.members.iter().enumerate() {
            if let Some(i) = members.iter().position(|f| f == m) {
                if seen[i] {
                    return Err(self.r.error(Error::invalid(format!(
                        "type `{}` lists member `{m}` twice",
                        def.name
                    ))));
                }
                seen[i] = true;
                map[j] = i as u32;
            }
        }
        let kind = def.kind;
        self.store_layout(
            ty,
            Layout {
                name_ptr: name.as_ptr() as usize,
                kind,
                members_ptr: members.as_ptr() as usize,
                exact,
                map,
            },
        );
        Ok(exact)
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

    /// Loads a strong shared pointer: a new object, or a reference to one.
    pub fn load_shared<P: SharedPtr>(&mut self) -> Result<P>
    where
        P::Target: Stateify,
    {
        let at = self.r.offset();
        match self.tag()? {
            wire::OBJ => self.define(|l| l.nest_object(P::Target::load).map(P::new), P::erase),
            wire::OBJ_CYCLIC => self.load_cyclic::<P>(),
            wire::REF => self.strong_ref(at, P::unerase),
            wire::DEF => self.load_definition::<P>(at),
            t => Err(self.mismatch("shared object", t, at)),
        }
    }

    /// The value of an object announced earlier (`DEF id`, its tag read).
    #[cold]
    #[inline(never)]
    fn load_definition<P: SharedPtr>(&mut self, at: u64) -> Result<P>
    where
        P::Target: Stateify,
    {
        let (id, weak, pending) = self.take_pending(at)?;
        let suspended = match pending.into_any().downcast::<Suspended<P>>() {
            Ok(s) => s,
            Err(_) => return Err(other_type::<P>(id as u64, at)),
        };
        // Back-edges inside its value get the weak handle, as for OBJ_CYCLIC.
        self.objects[id] = ObjSlot::Building(Some(weak));
        let value = self
            .load_object_value::<P>()
            .map_err(|e| e.in_segment(Segment::Object(id as u64)))?;
        let p = self.finish_suspended(*suspended, value)?;
        self.objects[id] = p.erase();
        Ok(p)
    }

    /// Finishes a suspended construction with its loaded value.
    pub(crate) fn finish_suspended<P: SharedPtr>(
        &mut self,
        s: Suspended<P>,
        value: P::Target,
    ) -> Result<P>
    where
        P::Target: Stateify,
    {
        s.finish(value, &mut self.stacks)
    }

    /// Reads the id of a `DEF` (its tag at `at` read) and takes the
    /// announced object out of the table.
    fn take_pending(&mut self, at: u64) -> Result<(usize, ErasedWeak, Box<dyn PendingObject>)> {
        if self.version < 2 {
            return Err(Error::invalid(format!(
                "{} in a graph of format version {}",
                wire::tag_name(wire::DEF),
                self.version
            ))
            .at(at));
        }
        let id = self.r.varint()?;
        let slot = match self.objects.get_mut(id as usize) {
            Some(slot @ ObjSlot::Pending(..)) => std::mem::replace(slot, ObjSlot::Building(None)),
            Some(_) => {
                return Err(Error::invalid(format!(
                    "value for object #{id}, which was not announced or already has one"
                ))
                .at(at))
            }
            None => return Err(undefined(id, at)),
        };
        let ObjSlot::Pending(pending) = slot else {
            return Err(Error::custom("internal: announced object vanished").at(at));
        };
        self.pending -= 1;
        let (weak, pending) = *pending;
        Ok((id as usize, weak, pending))
    }

    /// A weak reference that announces a new object (`FWD`, not yet read):
    /// its construction starts suspended and its value comes later.
    #[cold]
    #[inline(never)]
    fn announce<P: SharedPtr>(&mut self) -> Result<P::Weak>
    where
        P::Target: Stateify,
    {
        let at = self.r.offset();
        self.r.u8()?;
        if self.version < 2 {
            return Err(self.mismatch("shared object", wire::FWD, at));
        }
        if self.pending >= self.max_pending {
            return Err(Error::invalid(format!(
                "more than {} objects announced and not yet defined",
                self.max_pending
            ))
            .at(at));
        }
        let (suspended, weak) = Suspended::<P>::start(&mut self.stacks).map_err(|e| e.at(at))?;
        self.objects.push(ObjSlot::Pending(Box::new((
            ErasedWeak::new::<P>(&weak),
            Box::new(suspended),
        ))));
        self.pending += 1;
        Ok(weak)
    }

    /// The value of a shared object.
    pub(crate) fn load_object_value<P: SharedPtr>(&mut self) -> Result<P::Target>
    where
        P::Target: Stateify,
    {
        self.nest_object(P::Target::load)
    }

    /// After the root of a version 2 graph: the values of announced objects
    /// that no strong reference reached.
    fn load_deferred(&mut self) -> Result<()> {
        while self.r.remaining() != 0 {
            let at = self.r.offset();
            let tag = self.tag()?;
            if tag != wire::DEF {
                return Err(self.mismatch(
                    "the value of an announced object after the root",
                    tag,
                    at,
                ));
            }
            let (id, weak, pending) = self.take_pending(at)?;
            self.objects[id] = ObjSlot::Building(Some(weak));
            let built = pending
                .finish_erased(self)
                .map_err(|e| e.in_segment(Segment::Object(id as u64)))?;
            self.objects[id] = built;
        }
        if self.pending != 0 {
            let id = self
                .objects
                .iter()
                .position(|s| matches!(s, ObjSlot::Pending(..)))
                .unwrap_or(0);
            return Err(self.r.error(Error::invalid(format!(
                "object #{id} was announced by a weak reference and never given a value"
            ))));
        }
        Ok(())
    }

    /// Loads a strong shared pointer built by `build` (trait objects): a new
    /// object, or a reference to one. Weak back-edges into such objects are
    /// not supported.
    pub fn load_shared_with<P: Clone + 'static>(
        &mut self,
        build: impl FnOnce(&mut Self) -> Result<P>,
    ) -> Result<P> {
        let at = self.r.offset();
        match self.tag()? {
            wire::OBJ => self.define(
                |l| l.nest_object(build),
                |p| ObjSlot::Built(Box::new(p.clone())),
            ),
            wire::REF => self.strong_ref(at, |slot| match slot {
                ObjSlot::Built(b) => b.downcast_ref::<P>().cloned(),
                _ => None,
            }),
            wire::OBJ_CYCLIC => {
                Err(Error::invalid("weak back-edges into a trait object are not supported").at(at))
            }
            t => Err(self.mismatch("shared object", t, at)),
        }
    }

    /// Builds the object whose `OBJ` tag was just read and records it.
    fn define<P>(
        &mut self,
        build: impl FnOnce(&mut Self) -> Result<P>,
        erase: impl FnOnce(&P) -> ObjSlot,
    ) -> Result<P> {
        let id = self.objects.len();
        self.objects.push(ObjSlot::Building(None));
        let p = build(self).map_err(|e| e.in_segment(Segment::Object(id as u64)))?;
        self.objects[id] = erase(&p);
        Ok(p)
    }

    /// Resolves the `REF id` whose tag (at `at`) was just read.
    fn strong_ref<P>(&mut self, at: u64, unerase: impl FnOnce(&ObjSlot) -> Option<P>) -> Result<P> {
        let id = self.r.varint()?;
        match self.objects.get(id as usize) {
            Some(slot @ (ObjSlot::Built(_) | ObjSlot::BuiltRc(_))) => {
                unerase(slot).ok_or_else(|| other_type::<P>(id, at))
            }
            Some(ObjSlot::Building(_)) => Err(Error::new(ErrorKind::StrongCycle(id)).at(at)),
            Some(ObjSlot::Pending(..)) => Err(Error::invalid(format!(
                "strong reference to object #{id} before its value"
            ))
            .at(at)),
            Some(ObjSlot::Skipped) => Err(skipped(id, at)),
            None => Err(undefined(id, at)),
        }
    }

    /// The error for a trait-object type name missing from the registry.
    #[cold]
    pub fn unknown_dyn(&self, name: &str, tr: &str) -> Error {
        self.r.error(Error::invalid(format!(
            "`{name}` is not registered for `dyn {tr}` (register_dyn!)"
        )))
    }

    #[cfg(panic = "unwind")]
    fn load_cyclic<P: SharedPtr>(&mut self) -> Result<P>
    where
        P::Target: Stateify,
    {
        let id = self.objects.len();
        self.objects.push(ObjSlot::Building(None));
        let depth = self.depth;
        let mut stash: Option<Error> = None;
        let built = catch_unwind(AssertUnwindSafe(|| {
            P::new_cyclic(|weak| {
                self.objects[id] = ObjSlot::Building(Some(ErasedWeak::new::<P>(weak)));
                match self.nest_object(|l| P::Target::load(l)) {
                    Ok(v) => v,
                    Err(e) => {
                        stash = Some(e);
                        // Leave new_cyclic without a value: its allocation is
                        // freed and the weak handles stay dead. No panic hook runs.
                        resume_unwind(Box::new(Sentinel))
                    }
                }
            })
        }));
        match built {
            Ok(p) => {
                self.objects[id] = p.erase();
                Ok(p)
            }
            Err(payload) if payload.is::<Sentinel>() => {
                self.depth = depth;
                let e = stash.unwrap_or_else(|| Error::custom("cyclic construction failed"));
                Err(e.in_segment(Segment::Object(id as u64)))
            }
            Err(payload) => resume_unwind(payload),
        }
    }

    #[cfg(not(panic = "unwind"))]
    fn load_cyclic<P: SharedPtr>(&mut self) -> Result<P>
    where
        P::Target: Stateify,
    {
        Err(self.r.error(Error::custom(
            "weak back-edges into a shared object need panic = \"unwind\" to be loaded safely",
        )))
    }

    /// Loads a weak pointer.
    pub fn load_weak<P: SharedPtr>(&mut self) -> Result<P::Weak>
    where
        P::Target: Stateify,
    {
        let at = self.r.offset();
        match self.tag()? {
            wire::WEAK_DEAD => return Ok(P::dead()),
            wire::WEAK => {}
            t => return Err(self.mismatch("weak reference", t, at)),
        }
        let at = self.r.offset();
        match self.r.peek()? {
            wire::REF => {}
            wire::FWD => return self.announce::<P>(),
            _ => return Ok(self.load_shared::<P>()?.downgrade()),
        }
        self.r.u8()?;
        let id = self.r.varint()?;
        match self.objects.get(id as usize) {
            Some(slot @ (ObjSlot::Built(_) | ObjSlot::BuiltRc(_))) => match P::unerase(slot) {
                Some(p) => Ok(p.downgrade()),
                None => Err(other_type::<P>(id, at)),
            },
            Some(ObjSlot::Building(Some(w))) => {
                w.get::<P>().ok_or_else(|| other_type::<P::Weak>(id, at))
            }
            Some(ObjSlot::Pending(p)) => {
                p.0.get::<P>().ok_or_else(|| other_type::<P::Weak>(id, at))
            }
            Some(ObjSlot::Building(None)) => Err(Error::invalid(format!(
                "weak reference to object #{id} while it is built, but it is not marked cyclic"
            ))
            .at(at)),
            Some(ObjSlot::Skipped) => Err(skipped(id, at)),
            None => Err(undefined(id, at)),
        }
    }
}

#[cold]
fn skipped(id: u64, at: u64) -> Error {
    Error::invalid(format!(
        "reference to object #{id}, which was inside a skipped field"
    ))
    .at(at)
}

#[cold]
fn undefined(id: u64, at: u64) -> Error {
    Error::invalid(format!("reference to undefined object #{id}")).at(at)
}

#[cold]
fn other_type<P>(id: u64, at: u64) -> Error {
    Error::mismatch(
        std::any::type_name::<P>(),
        format!("object #{id} of another type"),
    )
    .at(at)
}

#[cold]
fn out_of_range(what: &str, v: impl std::fmt::Display, at: u64) -> Error {
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
