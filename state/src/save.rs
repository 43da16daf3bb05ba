//! The graph encoder.
//!
//! A depth-first walk from the root writes each value at its place; a shared
//! object (`Rc`/`Arc`) is written in full where it is first met (`OBJ`) and
//! as a back-reference (`REF id`) afterwards, keyed by (address, type).
//! A weak reference to an object that is still being written (a back-edge)
//! patches that object's tag to `OBJ_CYCLIC`, which tells the loader to build
//! it with `Rc::new_cyclic`. A strong reference to such an object is a cycle
//! that cannot be rebuilt and fails here, at save time, with its path.
//!
//! Invariants: output is a function of the graph alone (hash containers are
//! sorted by encoded key, type ids are assigned in first-use order); the
//! record header is reserved up front (object headers are always 10 bytes)
//! so the encoded bytes are never moved.

use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::error::{Error, ErrorKind, Result};
use crate::identity::{Identities, TypeIndex};
use crate::record::OBJECT_HEADER_LEN;
use crate::stats::{Counters, SaveStats};
use crate::table::DefKind;
use crate::wire::{self, Packed};
use crate::{mem, varint, Stateify};

/// Options of a save.
#[derive(Clone, Debug)]
pub struct SaveOptions {
    /// Deepest nesting of pointers and containers before the save fails.
    pub max_depth: usize,
    /// Measure time per type in the statistics (costs two clock reads per value).
    pub timing: bool,
}

impl Default for SaveOptions {
    fn default() -> Self {
        SaveOptions {
            max_depth: crate::DEFAULT_MAX_DEPTH,
            timing: false,
        }
    }
}

type DefKey = (DefKind, &'static str, &'static [&'static str]);

/// The encoder state handed to [`Stateify::save`].
pub struct Saver {
    buf: Vec<u8>,
    /// Direct-mapped cache of recent type ids, keyed by the addresses of
    /// the static name and member list: types that alternate (a player, its
    /// items, their enchantments…) hit here instead of in `def_ptrs`.
    type_cache: Box<[TypeSlot; TYPE_CACHE]>,
    defs: FxHashMap<DefKey, u32>,
    /// The same ids by the address of the static name and member list:
    /// hashing three words instead of every name (`defs` decides when an
    /// address is new).
    def_ptrs: FxHashMap<(DefKind, usize, usize), u32>,
    /// Plain struct definitions so far (they are in `def_ptrs` only).
    plain_defs: u32,
    /// Object id by identity: allocation address and type (the same
    /// allocation can be saved as `Rc<T>` and `Rc<dyn Trait>`, two objects).
    objects: Identities,
    types: TypeIndex,
    /// By object id: the position of its tag, to mark it OBJ_CYCLIC when a
    /// weak reference leads back into it while it is being written.
    tags: Vec<usize>,
    /// The identities of the objects created while `weak_entries` was not
    /// empty, in id order: what a rewind removes from `objects` again (all
    /// objects since the entry rewound to are among them, last).
    created: Vec<(usize, u32)>,
    /// By object id: set while the object is being written (on the open
    /// path), or announced and not yet written (see `pending`). One bit
    /// each, so the check of every reference hits the cache however deep
    /// the path.
    open: Vec<u64>,
    /// By object id: set once its tag is patched to OBJ_CYCLIC, so that
    /// further back-edges into it touch neither `tags` nor the buffer.
    cyclic: Vec<u64>,
    /// By object id: set while the object is announced by a forward weak
    /// reference (`FWD`) and its value is not yet written (`DEF`).
    pending: Vec<u64>,
    /// The open objects that were entered through a weak reference (their
    /// first meeting), innermost last, each with the number of types
    /// defined before it: where a save rewinds to when a strong reference
    /// leads back into an open object.
    weak_entries: Vec<(u32, u32)>,
    /// Set while the error that rewinds the save travels up to the weak
    /// reference that entered this object.
    rewind: Option<u32>,
    /// The weak entry last left (id, type count), for its caller.
    exited: (u32, u32),
    /// Announced objects whose value was written (`DEF`) while
    /// `weak_entries` was not empty, each with the number of objects then:
    /// a rewind to before that announces them again.
    defined: Vec<(u32, u32)>,
    /// Announced objects and how to write their value, for those no strong
    /// reference reaches: written after the root.
    deferred: Vec<(u32, Option<DeferredValue>)>,
    next_object: u64,
    depth: usize,
    max_depth: usize,
    fields_written: usize,
    counters: Counters,
    /// A detached encoder to compute sort keys of hash-container entries.
    scratch: Option<Box<Saver>>,
    key_arena: Vec<u8>,
    /// What the serde bridge has learned of serde types' layouts (kept
    /// between saves, like the tables' capacity).
    #[cfg(feature = "serde")]
    pub(crate) serde: crate::serde::SaveCache,
    /// Changes whenever type ids stop meaning what they meant (a reset,
    /// types forgotten by a rewind): what caches of ids outside the
    /// tables check.
    pub(crate) type_gen: u64,
    /// What this save calls now (see [`Saver::now`]), fixed at first use.
    now: Option<std::time::Instant>,
}

const TYPE_CACHE: usize = 64;

/// Writes the value of an announced object (it holds a strong pointer).
type DeferredValue = Box<dyn FnOnce(&mut Saver) -> Result<()>>;

thread_local! {
    /// The tables of this thread's last save, cleared with their capacity
    /// kept (`Saver::encode`). Taken while a save runs, so a save nested in
    /// a `save` impl gets fresh ones.
    static SPARE: std::cell::Cell<Option<Box<Saver>>> = const { std::cell::Cell::new(None) };
    /// The length of this thread's last encoding: a save into a new buffer
    /// starts with that much room (and an eighth more), since a program
    /// checkpoints much the same graph again and again. Growing from empty
    /// instead copies the bytes written so far at every doubling.
    static LAST_LEN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The word of the `open`/`cyclic` bit sets that holds object `id`'s bit,
/// and the bit.
#[inline(always)]
fn id_bit(id: u32) -> (usize, u64) {
    (id as usize / 64, 1 << (id % 64))
}

/// Hash containers with at most this many entries are sorted on the stack.
const SMALL_MAP: usize = 16;

/// A hash-container entry being sorted: the span of its key's encoding in
/// the key arena, the key and the value.
type Keyed<'x, K, V> = (usize, usize, &'x K, &'x V);

/// Object tables with room for more than this are not kept between saves
/// (at most a few MiB stay with a thread).
const KEEP_OBJECTS: usize = 1 << 16;

/// Strings up to this long are copied by `write_short_str` (their length
/// is one varint byte).
const SHORT_STR: usize = 32;

#[derive(Clone, Copy)]
struct TypeSlot {
    name: usize,
    /// Member list address | kind.
    members: usize,
    id: u32,
}

impl TypeSlot {
    /// Matches nothing: no static has address 0.
    const EMPTY: TypeSlot = TypeSlot {
        name: 0,
        members: 0,
        id: 0,
    };
}

impl Saver {
    pub(crate) fn new(opts: &SaveOptions) -> Self {
        Saver {
            buf: Vec::new(),
            type_cache: Box::new([TypeSlot::EMPTY; TYPE_CACHE]),
            defs: FxHashMap::default(),
            def_ptrs: FxHashMap::default(),
            plain_defs: 0,
            objects: Identities::default(),
            types: TypeIndex::default(),
            tags: Vec::new(),
            created: Vec::new(),
            open: Vec::new(),
            cyclic: Vec::new(),
            pending: Vec::new(),
            weak_entries: Vec::new(),
            rewind: None,
            exited: (0, 0),
            defined: Vec::new(),
            deferred: Vec::new(),
            next_object: 0,
            depth: 0,
            max_depth: opts.max_depth,
            fields_written: 0,
            counters: Counters::new(opts.timing),
            scratch: None,
            key_arena: Vec::new(),
            #[cfg(feature = "serde")]
            serde: Default::default(),
            type_gen: 1,
            now: None,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.buf.clear();
        self.type_gen += 1;
        if !self.defs.is_empty() || self.plain_defs != 0 {
            // Slots only ever hold ids of defined types.
            self.type_cache.fill(TypeSlot::EMPTY);
            self.defs.clear();
            self.def_ptrs.clear();
            self.plain_defs = 0;
        }
        self.objects.clear();
        self.tags.clear();
        self.open.clear();
        self.cyclic.clear();
        // Hash containers reset their key encoder once each: the state of
        // reordered saves is cleared only where there is some.
        if !self.created.is_empty() || !self.deferred.is_empty() || !self.weak_entries.is_empty() {
            self.created.clear();
            self.weak_entries.clear();
            self.defined.clear();
            self.deferred.clear();
        }
        self.pending.clear();
        self.rewind = None;
        self.next_object = 0;
        self.depth = 0;
        self.fields_written = 0;
        self.counters = Counters::new(false);
        self.now = None;
    }

    /// The moment this save calls now: read from the clock at the first
    /// call, the same for the rest of the save. `Instant`s are saved as
    /// their distance from it (and load relative to [`Loader::now`]); use
    /// it for hand-written clocks too, so that they agree.
    ///
    /// [`Loader::now`]: crate::Loader::now
    pub fn now(&mut self) -> std::time::Instant {
        *self.now.get_or_insert_with(std::time::Instant::now)
    }

    /// Encodes `root` as one graph record (header included) into `buf`
    /// (cleared first), returning the buffer and the statistics. Runs on
    /// the tables of this thread's previous save, cleared: a save of many
    /// shared objects does not grow its identity table from nothing again.
    pub(crate) fn encode<T: Stateify + ?Sized>(
        opts: &SaveOptions,
        root: &T,
        mut buf: Vec<u8>,
    ) -> Result<(Vec<u8>, SaveStats)> {
        let mut saver = SPARE.take().unwrap_or_else(|| Box::new(Saver::new(opts)));
        saver.max_depth = opts.max_depth;
        saver.counters = Counters::new(opts.timing);
        let guessed = buf.capacity() == 0;
        if guessed {
            let last = LAST_LEN.get();
            buf.reserve(last.saturating_add(last / 8));
            mem::advise_spare(&mut buf);
        }
        let mut r = saver.encode_record(root, buf);
        if let Ok((out, _)) = &mut r {
            LAST_LEN.set(out.len());
            if guessed && out.capacity() / 2 > out.len() {
                // A much smaller graph than last time: give the rest back.
                out.shrink_to_fit();
            }
        }
        saver.reset();
        // The identity table's capacity is in slots, at most half of them used.
        if saver.objects.capacity() <= 2 * KEEP_OBJECTS && saver.tags.capacity() <= KEEP_OBJECTS {
            SPARE.set(Some(saver));
        }
        r
    }

    fn encode_record<T: Stateify + ?Sized>(
        &mut self,
        root: &T,
        mut buf: Vec<u8>,
    ) -> Result<(Vec<u8>, SaveStats)> {
        let start = Instant::now();
        buf.clear();
        self.buf = buf;
        self.buf.resize(OBJECT_HEADER_LEN, 0);
        self.buf.push(wire::GRAPH_VERSION_1);
        root.save(self)?;
        self.write_deferred()?;
        if !self.deferred.is_empty() {
            // Forward references are a version 2 feature; a graph without
            // them stays readable by version 1 readers.
            self.buf[OBJECT_HEADER_LEN] = wire::GRAPH_VERSION;
        }
        let len = (self.buf.len() - OBJECT_HEADER_LEN) as u64;
        let mut header = Vec::with_capacity(OBJECT_HEADER_LEN);
        crate::write_header(&mut header, len, true)?;
        self.buf[..OBJECT_HEADER_LEN].copy_from_slice(&header);
        let counters = std::mem::replace(&mut self.counters, Counters::new(false));
        let stats = counters.finish(self.next_object, self.buf.len() as u64, start.elapsed());
        Ok((std::mem::take(&mut self.buf), stats))
    }

    #[inline]
    fn reserve(&mut self, n: usize) {
        if self.buf.capacity() - self.buf.len() < n {
            self.grow(n);
        }
    }

    #[cold]
    fn grow(&mut self, n: usize) {
        let want = (self.buf.capacity() * 2).max(self.buf.len() + n).max(256);
        self.buf.reserve(want - self.buf.len());
        mem::advise_spare(&mut self.buf);
    }

    #[inline]
    pub(crate) fn tag(&mut self, t: u8) {
        self.reserve(1);
        self.buf.push(t);
    }

    /// A varint: the one-byte form inline, longer ones out of line.
    #[inline(always)]
    pub(crate) fn varint(&mut self, v: u64) {
        if v < 1 << 7 {
            self.reserve(1);
            self.buf.push(v as u8);
        } else {
            self.varint_long(v);
        }
    }

    /// Two bytes and more (lengths, type and object ids), out of line.
    #[inline(never)]
    fn varint_long(&mut self, v: u64) {
        if v < varint::SHORT_LIMIT {
            let (word, n) = varint::short_word(v);
            self.put_word(word, n);
        } else {
            self.reserve(varint::MAX_LEN);
            varint::write(&mut self.buf, v);
        }
    }

    /// A tag and an object id, as one word for ids with a short encoding.
    #[inline(always)]
    fn tag_id(&mut self, tag: u8, id: u32) {
        let v = id as u64;
        if v < varint::SHORT_LIMIT {
            let (word, n) = varint::short_word(v);
            self.put_word(tag as u64 | word << 8, 1 + n);
        } else {
            self.tag(tag);
            self.varint_long(v);
        }
    }

    /// Appends the low `n` (at most 4) bytes of `word`: all four written,
    /// then the vector cut back, so the length takes no branch.
    #[inline(always)]
    fn put_word(&mut self, word: u64, n: usize) {
        debug_assert!(n <= 4);
        let len = self.buf.len();
        self.reserve(4);
        self.buf.extend_from_slice(&(word as u32).to_le_bytes());
        self.buf.truncate(len + n);
    }

    /// Raw bytes with no tag (the payload of a tag written just before).
    #[inline]
    pub(crate) fn raw(&mut self, b: &[u8]) {
        if b.len() <= SHORT_STR {
            self.put_short(b);
        } else if b.len() >= mem::HUGE_THRESHOLD {
            mem::extend_large(&mut self.buf, b);
        } else {
            self.reserve(b.len());
            self.buf.extend_from_slice(b);
        }
    }

    // ---- scalars -------------------------------------------------------

    /// Writes `()`.
    #[inline]
    pub fn write_unit(&mut self) {
        self.tag(wire::UNIT);
    }

    /// Writes a bool.
    #[inline]
    pub fn write_bool(&mut self, v: bool) {
        self.tag(if v { wire::TRUE } else { wire::FALSE });
    }

    /// Writes an unsigned integer in its shortest form.
    #[inline(always)]
    pub fn write_u64(&mut self, v: u64) {
        self.reserve(varint::MAX_LEN + 1);
        if v < 0x80 {
            self.buf.push(wire::SMALL | v as u8);
        } else if v < 1 << 56 {
            self.buf.push(wire::UINT);
            self.varint_long(v);
        } else {
            self.buf.push(wire::U64);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Writes a signed integer.
    #[inline]
    pub fn write_i64(&mut self, v: i64) {
        if v >= 0 {
            self.write_u64(v as u64);
        } else {
            self.tag(wire::NINT);
            self.varint(!(v as u64));
        }
    }

    /// Writes a u128 (as a u64 when it fits).
    pub fn write_u128(&mut self, v: u128) {
        match u64::try_from(v) {
            Ok(v) => self.write_u64(v),
            Err(_) => {
                self.tag(wire::U128);
                self.raw(&v.to_le_bytes());
            }
        }
    }

    /// Writes an i128 (as an i64 when it fits).
    pub fn write_i128(&mut self, v: i128) {
        match i64::try_from(v) {
            Ok(v) => self.write_i64(v),
            Err(_) => {
                self.tag(wire::I128);
                self.raw(&v.to_le_bytes());
            }
        }
    }

    /// Writes an f32, bit for bit.
    #[inline]
    pub fn write_f32(&mut self, v: f32) {
        self.tag(wire::F32);
        self.raw(&v.to_bits().to_le_bytes());
    }

    /// Writes an f64, bit for bit.
    #[inline]
    pub fn write_f64(&mut self, v: f64) {
        self.tag(wire::F64);
        self.raw(&v.to_bits().to_le_bytes());
    }

    /// Writes a char.
    #[inline]
    pub fn write_char(&mut self, v: char) {
        self.tag(wire::CHAR);
        self.varint(v as u64);
    }

    /// Writes a string.
    #[inline(always)]
    pub fn write_str(&mut self, s: &str) {
        if s.len() <= SHORT_STR {
            return self.write_short_str(s.as_bytes());
        }
        self.reserve(1 + varint::MAX_LEN + s.len());
        self.buf.push(wire::STR);
        varint::write(&mut self.buf, s.len() as u64);
        self.raw(s.as_bytes());
    }

    /// Tag, one-byte length and bytes of a string of at most `SHORT_STR`
    /// bytes: most strings in a graph are names and ids that short.
    #[inline(always)]
    fn write_short_str(&mut self, b: &[u8]) {
        debug_assert!(b.len() <= SHORT_STR);
        self.reserve(2 + SHORT_STR);
        self.buf.extend_from_slice(&[wire::STR, b.len() as u8]);
        self.put_short(b);
    }

    /// Appends at most `SHORT_STR` bytes with two (overlapping) fixed-size
    /// moves instead of a `memcpy` call.
    #[inline(always)]
    fn put_short(&mut self, b: &[u8]) {
        let n = b.len();
        debug_assert!(n <= SHORT_STR);
        self.reserve(SHORT_STR);
        let at = self.buf.len();
        let src = b.as_ptr();
        // SAFETY: `reserve` left at least SHORT_STR spare bytes after `at`,
        // so every write below (offsets < n <= SHORT_STR) is inside the
        // allocation; every read is inside `b` (the two reads of each pair
        // start at 0 and at n - size, with size <= n); source and
        // destination cannot overlap (`b` is borrowed immutably while
        // `self.buf` is borrowed mutably). The first n spare bytes are all
        // written before `set_len` makes them part of the vector.
        unsafe {
            let dst = self.buf.as_mut_ptr().add(at);
            if n >= 16 {
                let head = src.cast::<u128>().read_unaligned();
                let tail = src.add(n - 16).cast::<u128>().read_unaligned();
                dst.cast::<u128>().write_unaligned(head);
                dst.add(n - 16).cast::<u128>().write_unaligned(tail);
            } else if n >= 8 {
                let head = src.cast::<u64>().read_unaligned();
                let tail = src.add(n - 8).cast::<u64>().read_unaligned();
                dst.cast::<u64>().write_unaligned(head);
                dst.add(n - 8).cast::<u64>().write_unaligned(tail);
            } else if n >= 4 {
                let head = src.cast::<u32>().read_unaligned();
                let tail = src.add(n - 4).cast::<u32>().read_unaligned();
                dst.cast::<u32>().write_unaligned(head);
                dst.add(n - 4).cast::<u32>().write_unaligned(tail);
            } else if n > 0 {
                dst.write(*src);
                dst.add(n / 2).write(*src.add(n / 2));
                dst.add(n - 1).write(*src.add(n - 1));
            }
            self.buf.set_len(at + n);
        }
    }

    /// Writes a packed array of `kind` elements whose little-endian bytes
    /// are `parts` concatenated.
    pub fn write_packed(&mut self, kind: Packed, parts: [&[u8]; 2]) {
        let len = parts[0].len() + parts[1].len();
        debug_assert_eq!(len % kind.size(), 0);
        self.reserve(2 + varint::MAX_LEN);
        self.buf.push(wire::PACKED);
        self.buf.push(kind as u8);
        self.varint((len / kind.size()) as u64);
        self.raw(parts[0]);
        self.raw(parts[1]);
    }

    /// Writes `None`.
    #[inline]
    pub fn write_none(&mut self) {
        self.tag(wire::NONE);
    }

    /// Writes `Some(v)`.
    #[inline]
    pub fn write_some<T: Stateify + ?Sized>(&mut self, v: &T) -> Result<()> {
        self.tag(wire::SOME);
        v.save(self)
    }

    // ---- composites ------------------------------------------------------

    /// Runs `f` one nesting level deeper: checks the depth limit and grows
    /// the stack on the heap when it runs low, so long chains cannot overflow it.
    #[inline]
    pub fn nest<R>(&mut self, f: impl FnOnce(&mut Self) -> Result<R>) -> Result<R> {
        if self.depth >= self.max_depth {
            return Err(Error::new(ErrorKind::DepthLimit(self.max_depth)));
        }
        self.depth += 1;
        let r = mem::grow_stack(|| f(self));
        self.depth -= 1;
        r
    }

    /// Enters one nesting level for the serde bridge, which nests once per
    /// value: returns whether the stack must be checked here (every eighth
    /// level; the red zone holds eight levels of serde frames many times
    /// over). [`Saver::leave`] undoes it.
    #[cfg(feature = "serde")]
    #[inline(always)]
    pub(crate) fn enter(&mut self) -> Result<bool> {
        if self.depth >= self.max_depth {
            return Err(Error::new(ErrorKind::DepthLimit(self.max_depth)));
        }
        self.depth += 1;
        Ok(self.depth % 8 == 0)
    }

    #[cfg(feature = "serde")]
    #[inline(always)]
    pub(crate) fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Writes `tag` and a type reference, with its definition on first use.
    #[inline(always)]
    pub(crate) fn type_ref(
        &mut self,
        tag: u8,
        kind: DefKind,
        name: &'static str,
        members: &'static [&'static str],
    ) -> u32 {
        let (n, m) = (name.as_ptr() as usize, members.as_ptr() as usize);
        // Member lists are arrays of `&str`, so their addresses are
        // 8-aligned and the kind fits in the low bits.
        let key = m | kind as usize;
        let at = ((m >> 3) ^ (n >> 4)) % TYPE_CACHE;
        self.tag(tag);
        let slot = self.type_cache[at];
        if slot.name == n && slot.members == key {
            self.varint(slot.id as u64);
            return slot.id;
        }
        let id = self.type_ref_slow(kind, name, members);
        self.type_cache[at] = TypeSlot {
            name: n,
            members: key,
            id,
        };
        id
    }

    #[cold]
    fn type_ref_slow(
        &mut self,
        kind: DefKind,
        name: &'static str,
        members: &'static [&'static str],
    ) -> u32 {
        let ptrs = (kind, name.as_ptr() as usize, members.as_ptr() as usize);
        if let Some(&id) = self.def_ptrs.get(&ptrs) {
            self.varint(id as u64);
            return id;
        }
        let next = self.next_type_id();
        let id = *self.defs.entry((kind, name, members)).or_insert(next);
        self.def_ptrs.insert(ptrs, id);
        self.varint(id as u64);
        if id == next {
            self.name(name);
            self.varint(members.len() as u64);
            for m in members {
                self.name(m);
            }
            self.counters.add_type(name, kind == DefKind::Dyn);
        }
        id
    }

    /// The id the next new type definition gets.
    pub(crate) fn next_type_id(&self) -> u32 {
        self.defs.len() as u32 + self.plain_defs
    }

    /// A name in a type definition: varint length and bytes, no tag.
    fn name(&mut self, s: &str) {
        self.varint(s.len() as u64);
        self.raw(s.as_bytes());
    }

    fn counted(&mut self, ty: u32, f: impl FnOnce(&mut Self) -> Result<()>) -> Result<()> {
        self.counters.counts[ty as usize] += 1;
        if self.counters.times.is_some() {
            let t = Instant::now();
            let r = f(self);
            let dt: Duration = t.elapsed();
            if let Some(times) = &mut self.counters.times {
                times[ty as usize] += dt;
            }
            r
        } else {
            f(self)
        }
    }

    /// Writes a struct: its type (named `name`, with `fields` in declaration
    /// order) and then, through `f`, exactly one [`Saver::field`] call per field.
    ///
    /// ```
    /// use stateify::{Loader, Saver, Stateify};
    /// struct P { x: u32, y: u32 }
    /// const FIELDS: &[&str] = &["x", "y"];
    /// impl Stateify for P {
    ///     fn save(&self, s: &mut Saver) -> Result<(), stateify::Error> {
    ///         s.save_struct("P", FIELDS, |s| { s.field("x", &self.x)?; s.field("y", &self.y) })
    ///     }
    ///     fn load(l: &mut Loader) -> Result<Self, stateify::Error> {
    ///         l.load_struct("P", FIELDS, |st, l| {
    ///             let (mut x, mut y) = (None, None);
    ///             while let Some(i) = st.next(l)? {
    ///                 match i { 0 => x = Some(st.value(l)?), _ => y = Some(st.value(l)?) }
    ///             }
    ///             Ok(P { x: st.take(x, 0)?, y: st.take(y, 1)? })
    ///         })
    ///     }
    /// }
    /// let p: P = stateify::from_slice(&stateify::to_vec(&P { x: 1, y: 2 }).unwrap()).unwrap();
    /// assert_eq!((p.x, p.y), (1, 2));
    /// ```
    pub fn save_struct(
        &mut self,
        name: &'static str,
        fields: &'static [&'static str],
        f: impl FnOnce(&mut Self) -> Result<()>,
    ) -> Result<()> {
        let ty = self.type_ref(wire::STRUCT, DefKind::Struct, name, fields);
        let outer = std::mem::replace(&mut self.fields_written, 0);
        let r = self.counted(ty, f);
        // Restored on error too: a save that rewinds goes on with the outer struct.
        let written = std::mem::replace(&mut self.fields_written, outer);
        r?;
        if written != fields.len() {
            return Err(Error::custom(format!(
                "`{name}` wrote {written} fields but declares {}",
                fields.len()
            )));
        }
        Ok(())
    }

    /// Writes one struct field (in declaration order), naming it in errors.
    #[inline]
    pub fn field<T: Stateify + ?Sized>(&mut self, name: &str, v: &T) -> Result<()> {
        self.fields_written += 1;
        v.save(self).map_err(|e| e.in_field(name))
    }

    /// Writes one struct field through a custom function (`#[state(with)]`).
    pub fn field_with(
        &mut self,
        name: &str,
        f: impl FnOnce(&mut Self) -> Result<()>,
    ) -> Result<()> {
        self.fields_written += 1;
        f(self).map_err(|e| e.in_field(name))
    }

    /// Writes an enum variant: the enum's type, the variant index into
    /// `variants`, then the payload written by `f` (one value: `write_unit`
    /// for unit variants, a tuple or a struct otherwise).
    pub fn save_variant(
        &mut self,
        name: &'static str,
        variants: &'static [&'static str],
        index: usize,
        f: impl FnOnce(&mut Self) -> Result<()>,
    ) -> Result<()> {
        let ty = self.type_ref(wire::VARIANT, DefKind::Enum, name, variants);
        self.varint(index as u64);
        self.counted(ty, |s| s.nest(f))
            .map_err(|e| e.in_field(variants.get(index).copied().unwrap_or("?")))
    }

    /// Writes a trait object: the concrete type's stable name, then its value.
    pub fn save_dyn(
        &mut self,
        type_name: &'static str,
        f: impl FnOnce(&mut Self) -> Result<()>,
    ) -> Result<()> {
        self.type_ref(wire::DYN, DefKind::Dyn, type_name, &[]);
        self.nest(f)
    }

    /// Writes a tuple header; `count` values must follow.
    #[inline]
    pub fn write_tuple_header(&mut self, count: usize) {
        self.tag(wire::TUPLE);
        self.varint(count as u64);
    }

    /// Writes a sequence of values (element-wise).
    pub fn write_seq<'x, T: Stateify + 'x>(
        &mut self,
        len: usize,
        items: impl IntoIterator<Item = &'x T>,
    ) -> Result<()> {
        self.tag(wire::SEQ);
        self.varint(len as u64);
        self.nest(|s| {
            let mut n = 0;
            for (i, v) in items.into_iter().enumerate() {
                v.save(s).map_err(|e| e.in_index(i as u64))?;
                n += 1;
            }
            check_len(len, n)
        })
    }

    /// Writes a map; `sorted` entries are written in iteration order, others
    /// (hash containers) sorted by their encoded key, for determinism.
    pub fn write_map<'x, K, V>(
        &mut self,
        len: usize,
        entries: impl IntoIterator<Item = (&'x K, &'x V)>,
        sorted: bool,
    ) -> Result<()>
    where
        K: Stateify + ?Sized + 'x,
        V: Stateify + ?Sized + 'x,
    {
        self.tag(wire::MAP);
        self.varint(len as u64);
        self.nest(|s| {
            let mut n = 0;
            if sorted {
                for (i, (k, v)) in entries.into_iter().enumerate() {
                    s.entry(i, k, v)?;
                    n += 1;
                }
            } else {
                n = s.write_sorted(entries, true)?;
            }
            check_len(len, n)
        })
    }

    /// Writes a set as a sequence; `sorted` as for [`Saver::write_map`].
    pub fn write_set<'x, K: Stateify + 'x>(
        &mut self,
        len: usize,
        items: impl IntoIterator<Item = &'x K>,
        sorted: bool,
    ) -> Result<()> {
        if sorted {
            return self.write_seq(len, items);
        }
        self.tag(wire::SEQ);
        self.varint(len as u64);
        self.nest(|s| {
            let n = s.write_sorted(items.into_iter().map(|k| (k, &())), false)?;
            check_len(len, n)
        })
    }

    /// Writes hash-container entries (values too if `with_values`) ordered
    /// by the bytes of their key encoded on its own (with a fresh type and
    /// object table), so the order depends on the keys only. Returns the
    /// number of entries.
    ///
    /// All keys are first encoded one after another into the scratch
    /// encoder. If none of them defined a type or met a shared object, each
    /// key's bytes there are exactly its encoding on its own (the common
    /// case: strings, numbers, plain tuples), they are the sort keys, and
    /// they are copied to the output as they are. Otherwise every key is
    /// encoded again on a freshly reset encoder for the sort, and written
    /// through the graph's tables. Maps of up to [`SMALL_MAP`] entries are
    /// sorted on the stack.
    fn write_sorted<'x, K, V>(
        &mut self,
        entries: impl IntoIterator<Item = (&'x K, &'x V)>,
        with_values: bool,
    ) -> Result<usize>
    where
        K: Stateify + ?Sized + 'x,
        V: Stateify + ?Sized + 'x,
    {
        let mut scratch = self.take_scratch();
        let mut small: [Option<Keyed<'x, K, V>>; SMALL_MAP] = [None; SMALL_MAP];
        let mut large = Vec::new();
        let mut n = 0;
        let mut encoded = Ok(());
        for (k, v) in entries {
            let start = scratch.buf.len();
            encoded = k.save(&mut scratch).map_err(|e| e.in_index(n as u64));
            if encoded.is_err() {
                break;
            }
            let e = Some((start, scratch.buf.len(), k, v));
            if n < SMALL_MAP {
                small[n] = e;
            } else {
                if n == SMALL_MAP {
                    large.extend_from_slice(&small);
                }
                large.push(e);
            }
            n += 1;
        }
        let context_free =
            scratch.defs.is_empty() && scratch.plain_defs == 0 && scratch.next_object == 0;
        // The keys' bytes move to the arena (a swap, no copy), so that
        // hash containers in the values can use the scratch encoder; they
        // find the arena taken and use a fresh one meanwhile.
        let mut arena = std::mem::take(&mut self.key_arena);
        std::mem::swap(&mut arena, &mut scratch.buf);
        let keyed = if n <= SMALL_MAP {
            &mut small[..n]
        } else {
            &mut large[..]
        };
        if encoded.is_ok() && !context_free {
            arena.clear();
            for (i, e) in keyed.iter_mut().flatten().enumerate() {
                scratch.reset();
                encoded = e.2.save(&mut scratch).map_err(|e| e.in_index(i as u64));
                if encoded.is_err() {
                    break;
                }
                e.0 = arena.len();
                arena.extend_from_slice(&scratch.buf);
                e.1 = arena.len();
            }
        }
        self.scratch = Some(scratch);
        let r = encoded.and_then(|()| {
            keyed.sort_by(|a, b| {
                let span = |e: &Option<Keyed<K, V>>| e.map_or(&[][..], |e| &arena[e.0..e.1]);
                span(a).cmp(span(b))
            });
            for (i, &(a, b, k, v)) in keyed.iter().flatten().enumerate() {
                if context_free {
                    self.raw(&arena[a..b]);
                } else {
                    k.save(self).map_err(|e| e.in_index(i as u64))?;
                }
                if with_values {
                    v.save(self).map_err(|e| e.in_index(i as u64))?;
                }
            }
            Ok(n)
        });
        self.key_arena = arena;
        r
    }

    fn entry<K: Stateify + ?Sized, V: Stateify + ?Sized>(
        &mut self,
        i: usize,
        k: &K,
        v: &V,
    ) -> Result<()> {
        k.save(self).map_err(|e| e.in_index(i as u64))?;
        v.save(self).map_err(|e| e.in_index(i as u64))
    }

    // ---- shared objects --------------------------------------------------

    /// Writes a strong reference to a shared object at `addr` (the `Rc`/`Arc`
    /// allocation), whose value is `value`. The first reference writes the
    /// object; later ones write its id.
    #[inline]
    pub fn save_shared<T: Stateify + ?Sized + 'static>(
        &mut self,
        addr: *const (),
        value: &T,
    ) -> Result<()> {
        let ty = self.types.of::<T>();
        self.save_shared_as(addr as usize, ty, value)
    }

    /// [`save_shared`](Self::save_shared) with the type index looked up.
    #[inline(always)]
    pub(crate) fn save_shared_as<T: Stateify + ?Sized>(
        &mut self,
        addr: usize,
        ty: u32,
        value: &T,
    ) -> Result<()> {
        if let Some(id) = self.objects.get(addr, ty) {
            let (word, bit) = id_bit(id);
            if self.open[word] & bit != 0 {
                return self.strong_to_unfinished(id, value);
            }
            self.tag_id(wire::REF, id);
            return Ok(());
        }
        self.write_object::<T, false>(addr, ty, value)
    }

    /// A strong reference to an object that is still open, or announced
    /// and not yet written.
    #[cold]
    #[inline(never)]
    fn strong_to_unfinished<T: Stateify + ?Sized>(&mut self, id: u32, value: &T) -> Result<()> {
        let (word, bit) = id_bit(id);
        if self.pending[word] & bit != 0 {
            // The first strong reference to an announced object: its value.
            return self.define(id, |s| value.save(s));
        }
        match self.weak_entries.last() {
            // An object entered through a weak reference after `id` was
            // opened leads back into it: that weak reference is not a
            // strong cycle, it was followed too early. Rewind to it.
            Some(&(w, _)) if w > id => {
                self.rewind = Some(w);
                Err(Error::custom(format!(
                    "internal: the save rewinds to object #{w} (a reorder signal that escaped)"
                )))
            }
            _ => Err(Error::new(ErrorKind::StrongCycle(id as u64))),
        }
    }

    /// Writes `DEF id` and the value of an announced object.
    fn define(&mut self, id: u32, value: impl FnOnce(&mut Self) -> Result<()>) -> Result<()> {
        let (word, bit) = id_bit(id);
        self.pending[word] &= !bit;
        if !self.weak_entries.is_empty() {
            self.defined.push((id, self.next_object as u32));
        }
        self.open[word] |= bit;
        self.tag_id(wire::DEF, id);
        let r = self.nest(value);
        self.open[word] &= !bit;
        r
    }

    /// After the root: the values of announced objects that no strong
    /// reference reached (kept alive only outside the graph), in id order
    /// of announcement; writing one may announce more.
    fn write_deferred(&mut self) -> Result<()> {
        let mut i = 0;
        while i < self.deferred.len() {
            let (id, ref mut value) = self.deferred[i];
            let (word, bit) = id_bit(id);
            if let Some(value) = value.take().filter(|_| self.pending[word] & bit != 0) {
                self.define(id, value)
                    .map_err(|e| e.in_segment(crate::Segment::Object(id as u64)))?;
            }
            i += 1;
        }
        Ok(())
    }

    /// Writes a sequence of shared pointers (`Rc`, `Arc`, `Weak`; `addr`
    /// gives an element's pointee address, `save` writes one element given
    /// the pointee's type index). In a long sequence of pointers to objects
    /// all over memory, each lookup waits on the cache, one after another;
    /// here the identity slot and the pointee of the element a few places
    /// ahead are asked for early, so those waits overlap.
    pub(crate) fn write_shared_seq<P, T: ?Sized + 'static>(
        &mut self,
        parts: [&[P]; 2],
        addr: impl Fn(&P) -> usize,
        save: impl Fn(&mut Self, u32, &P) -> Result<()>,
    ) -> Result<()> {
        const AHEAD: usize = 8;
        let ty = self.types.of::<T>();
        let items = parts[0].iter().chain(parts[1].iter());
        self.tag(wire::SEQ);
        self.varint((parts[0].len() + parts[1].len()) as u64);
        self.nest(|s| {
            let mut ahead = items.clone();
            for p in ahead.by_ref().take(AHEAD) {
                s.prefetch_shared(addr(p), ty);
            }
            for (i, p) in items.enumerate() {
                if let Some(next) = ahead.next() {
                    s.prefetch_shared(addr(next), ty);
                }
                save(s, ty, p).map_err(|e| e.in_index(i as u64))?;
            }
            Ok(())
        })
    }

    #[inline(always)]
    fn prefetch_shared(&self, addr: usize, ty: u32) {
        self.objects.prefetch(addr, ty);
        mem::prefetch(addr as *const u8);
    }

    /// Writes the first reference to an object: `OBJ` and its value. With
    /// `WEAK`, the object is entered through a weak reference: a weak entry
    /// while it is written, left in `exited` for the caller to check for a
    /// rewind (so the caller's frame, one per level of a deep recursion,
    /// keeps nothing of it across the call).
    #[inline(never)]
    fn write_object<T: Stateify + ?Sized, const WEAK: bool>(
        &mut self,
        addr: usize,
        ty: u32,
        value: &T,
    ) -> Result<()> {
        let id = u32::try_from(self.next_object)
            .map_err(|_| Error::custom("more than 2^32 shared objects in one graph"))?;
        if WEAK {
            self.weak_entries.push((id, self.next_type_id()));
        }
        let (word, bit) = self.new_object(addr, ty, id);
        self.open[word] |= bit;
        self.tag(wire::OBJ);
        let r = self.nest(|s| value.save(s));
        self.open[word] &= !bit;
        if WEAK {
            self.exited = self.weak_entries.pop().unwrap_or_default();
        }
        r
    }

    /// Records object `id` (the next one) at the current output position.
    #[inline(always)]
    fn new_object(&mut self, addr: usize, ty: u32, id: u32) -> (usize, u64) {
        self.next_object += 1;
        self.objects.insert(addr, ty, id);
        self.tags.push(self.buf.len());
        if !self.weak_entries.is_empty() {
            self.created.push((addr, ty));
        }
        let (word, bit) = id_bit(id);
        if word == self.open.len() {
            self.open.push(0);
            self.cyclic.push(0);
            self.pending.push(0);
        }
        (word, bit)
    }

    /// Writes an object met first through a weak reference (its `WEAK` tag
    /// written). If a strong reference inside it leads back into an object
    /// that is still open, the object cannot be built here: the save
    /// rewinds to this point and announces it with `FWD` instead
    /// ([`announce`](Self::announce)).
    #[inline(always)]
    fn write_weak_entry<T, P>(&mut self, addr: usize, ty: u32, strong: P) -> Result<()>
    where
        T: Stateify + ?Sized,
        P: std::ops::Deref<Target = T> + 'static,
    {
        let r = self.write_object::<T, true>(addr, ty, &*strong);
        if self.rewind.is_some() {
            return self.announce_if_rewound(r, strong);
        }
        r
    }

    /// After a weak entry: announces it if the save rewinds to it.
    #[cold]
    #[inline(never)]
    fn announce_if_rewound<T, P>(&mut self, r: Result<()>, strong: P) -> Result<()>
    where
        T: Stateify + ?Sized,
        P: std::ops::Deref<Target = T> + 'static,
    {
        let (id, types) = self.exited;
        if self.rewind == Some(id) {
            return self.announce(id, types, strong);
        }
        r
    }

    /// Rewinds to where object `id` was entered and announces it there: the
    /// same id, its value deferred to its first strong reference or after
    /// the root.
    #[cold]
    #[inline(never)]
    fn announce<T, P>(&mut self, id: u32, types: u32, strong: P) -> Result<()>
    where
        T: Stateify + ?Sized,
        P: std::ops::Deref<Target = T> + 'static,
    {
        self.rewind = None;
        let Some((addr, ty)) = self.rollback(id, types) else {
            return Err(Error::custom(format!(
                "internal: object #{id} to announce is not in the save's tables"
            )));
        };
        let (word, bit) = self.new_object(addr, ty, id);
        // Announced: its bit in `open` too, so that references to it take
        // the slow path of `save_shared_as` with one bit test on the fast one.
        self.pending[word] |= bit;
        self.open[word] |= bit;
        // Built on load with `new_cyclic` in any case: no OBJ_CYCLIC patch.
        self.cyclic[word] |= bit;
        self.tag(wire::FWD);
        self.deferred
            .push((id, Some(Box::new(move |s: &mut Saver| (*strong).save(s)))));
        Ok(())
    }

    /// Undoes everything written since object `first` was entered (its tag
    /// written when `types` types were defined): bytes, objects, types.
    /// Returns the identity of object `first`.
    #[cold]
    fn rollback(&mut self, first: u32, types: u32) -> Option<(usize, u32)> {
        let &pos = self.tags.get(first as usize)?;
        let since = self
            .created
            .len()
            .checked_sub((self.next_object - first as u64) as usize)?;
        let entered = self.created.get(since).copied();
        self.buf.truncate(pos);
        self.tags.truncate(first as usize);
        for (addr, ty) in self.created.drain(since..).rev() {
            self.objects.remove(addr, ty);
        }
        while let Some(&(id, objects)) = self.defined.last() {
            if objects <= first {
                break;
            }
            self.defined.pop();
            let (word, bit) = id_bit(id);
            self.pending[word] |= bit;
            self.open[word] |= bit;
        }
        for id in first..self.next_object as u32 {
            let (word, bit) = id_bit(id);
            self.open[word] &= !bit;
            self.cyclic[word] &= !bit;
            self.pending[word] &= !bit;
        }
        self.next_object = first as u64;
        while self.deferred.last().is_some_and(|d| d.0 >= first) {
            self.deferred.pop();
        }
        self.forget_types(types);
        entered
    }

    /// Forgets the types defined since there were `types`, whose
    /// definitions were cut from the output.
    pub(crate) fn forget_types(&mut self, types: u32) {
        if self.next_type_id() > types {
            self.type_gen += 1;
            self.defs.retain(|_, id| *id < types);
            self.def_ptrs.retain(|_, id| *id < types);
            self.plain_defs = self
                .def_ptrs
                .keys()
                .filter(|k| k.0 == DefKind::Plain)
                .count() as u32;
            self.type_cache.fill(TypeSlot::EMPTY);
            self.counters.forget_types(types as usize);
        }
    }

    /// The detached encoder for sort keys (reset), kept between uses; a
    /// nested user finds it taken and gets a fresh one. Give it back with
    /// [`Saver::put_scratch`].
    pub(crate) fn take_scratch(&mut self) -> Box<Saver> {
        let mut scratch = self
            .scratch
            .take()
            .unwrap_or_else(|| Box::new(Saver::new(&SaveOptions::default())));
        scratch.reset();
        // Keys that hold an `Instant` sort by the same "now" they are written with.
        scratch.now = self.now;
        scratch
    }

    pub(crate) fn put_scratch(&mut self, scratch: Box<Saver>) {
        if self.now.is_none() {
            self.now = scratch.now;
        }
        self.scratch = Some(scratch);
    }

    /// The output written so far (the serde bridge cuts it back to rerun a value).
    #[cfg(feature = "serde")]
    pub(crate) fn buf_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Counts one value of type `ty` in the statistics.
    #[cfg(feature = "serde")]
    pub(crate) fn count_type(&mut self, ty: u32) {
        self.counters.counts[ty as usize] += 1;
    }

    /// Writes a weak reference to the allocation at `addr`. A target already
    /// written in this graph is referenced by id without touching its memory;
    /// otherwise `upgrade` is called, and the target is written here (or
    /// `WEAK_DEAD` if it is gone).
    pub fn save_weak<T, P>(
        &mut self,
        addr: *const (),
        upgrade: impl FnOnce() -> Option<P>,
    ) -> Result<()>
    where
        T: Stateify + ?Sized + 'static,
        P: std::ops::Deref<Target = T> + 'static,
    {
        let ty = self.types.of::<T>();
        self.save_weak_as(addr as usize, ty, upgrade)
    }

    /// [`save_weak`](Self::save_weak) with the type index looked up.
    #[inline(always)]
    pub(crate) fn save_weak_as<T, P>(
        &mut self,
        addr: usize,
        ty: u32,
        upgrade: impl FnOnce() -> Option<P>,
    ) -> Result<()>
    where
        T: Stateify + ?Sized,
        P: std::ops::Deref<Target = T> + 'static,
    {
        if let Some(id) = self.objects.get(addr, ty) {
            let (word, bit) = id_bit(id);
            if self.open[word] & !self.cyclic[word] & bit != 0 {
                // The first back-edge into an object still being written.
                self.cyclic[word] |= bit;
                let tag_pos = self.tags[id as usize];
                self.buf[tag_pos] = wire::OBJ_CYCLIC;
            }
            self.tag(wire::WEAK);
            self.tag_id(wire::REF, id);
            return Ok(());
        }
        match upgrade() {
            Some(strong) => {
                self.tag(wire::WEAK);
                self.write_weak_entry(addr, ty, strong)
            }
            None => {
                self.tag(wire::WEAK_DEAD);
                Ok(())
            }
        }
    }

    /// Writes a sequence of plain structs (`parts` concatenated) as one
    /// packed struct array: the override of [`Stateify::save_seq`] that
    /// `#[state(plain)]` generates.
    #[doc(hidden)]
    pub fn write_plain_seq<T: crate::plain::Plain>(&mut self, parts: [&[T]; 2]) -> Result<()> {
        self.tag(wire::PACKED_STRUCTS);
        let ptrs = (
            DefKind::Plain,
            T::NAME.as_ptr() as usize,
            T::FIELDS.as_ptr() as usize,
        );
        let id = match self.def_ptrs.get(&ptrs) {
            Some(&id) => {
                self.varint(id as u64);
                id
            }
            None => {
                // Keyed by address only: two Rust types that happen to share
                // a name and layout get two ids, which readers accept.
                let id = self.next_type_id();
                self.plain_defs += 1;
                self.def_ptrs.insert(ptrs, id);
                self.varint(id as u64);
                self.name(T::NAME);
                self.varint(T::FIELDS.len() as u64);
                for f in T::FIELDS {
                    self.name(f.name);
                    self.tag(f.kind as u8);
                    self.varint(f.shape());
                }
                self.counters.add_type(T::NAME, false);
                id
            }
        };
        let n = parts[0].len() + parts[1].len();
        self.counters.counts[id as usize] += n as u64;
        self.varint(n as u64);
        for p in parts {
            crate::plain::encode(p, &mut self.buf);
        }
        Ok(())
    }

    /// Writes the elements of plain values one by one (the default for
    /// [`Stateify::save_seq`]).
    pub fn write_seq_parts<T: Stateify>(&mut self, parts: [&[T]; 2]) -> Result<()> {
        let len = parts[0].len() + parts[1].len();
        self.write_seq(len, parts[0].iter().chain(parts[1].iter()))
    }
}

/// A reusable encoder: keeps its output buffer between saves, so repeated
/// checkpoints of a large graph write into memory that is already mapped
/// instead of faulting in fresh pages every time.
///
/// ```
/// let mut enc = stateify::Encoder::new();
/// let mut out = Vec::new();
/// for i in 0..3u32 {
///     enc.save(&mut out, &vec![i; 100]).unwrap();
/// }
/// let mut r = &out[..];
/// assert_eq!(stateify::load::<Vec<u32>, _>(&mut r).unwrap(), vec![0; 100]);
/// ```
#[derive(Default)]
pub struct Encoder {
    buf: Vec<u8>,
    opts: SaveOptions,
}

impl Encoder {
    /// An encoder with default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// An encoder with the given options.
    pub fn with_options(opts: SaveOptions) -> Self {
        Encoder {
            buf: Vec::new(),
            opts,
        }
    }

    /// Encodes `root` as one graph record; the bytes stay valid until the next call.
    pub fn encode<T: Stateify + ?Sized>(&mut self, root: &T) -> Result<(&[u8], SaveStats)> {
        let buf = std::mem::take(&mut self.buf);
        let (buf, stats) = Saver::encode(&self.opts, root, buf)?;
        self.buf = buf;
        Ok((&self.buf, stats))
    }

    /// Saves `root` as one graph record on `w`.
    pub fn save<T: Stateify + ?Sized, W: std::io::Write>(
        &mut self,
        mut w: W,
        root: &T,
    ) -> Result<SaveStats> {
        let start = Instant::now();
        let (bytes, mut stats) = self.encode(root)?;
        w.write_all(bytes)?;
        stats.elapsed = start.elapsed();
        Ok(stats)
    }

    /// Frees the retained buffer.
    pub fn shrink(&mut self) {
        self.buf = Vec::new();
    }
}

#[inline]
fn check_len(declared: usize, actual: usize) -> Result<()> {
    if declared != actual {
        return Err(Error::custom(format!(
            "container announced {declared} elements but yielded {actual}"
        )));
    }
    Ok(())
}
