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
//!
//! The parts: this file holds the `Saver`, its set-up and reuse between
//! saves, structs, enums and sequences; `out` the output buffer (tags,
//! varints, scalars, strings); `types` type references as written (the ids
//! are the type table's, `table::TypeIds`); `sorted`
//! hash containers in key order; `shared` shared objects, cycles and weak
//! references.

use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::identity::{Identities, TypeIndex};
use crate::record::OBJECT_HEADER_LEN;
use crate::stats::{Counters, SaveStats};
use crate::table::{DefKind, TypeIds};
use crate::wire::{self, Packed};
use crate::{mem, varint, Stateify};

mod out;
mod shared;
mod sorted;
mod types;

use shared::DeferredValue;

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

/// The encoder state handed to [`Stateify::save`].
pub struct Saver {
    buf: Vec<u8>,
    /// The ids of the types defined so far.
    type_ids: TypeIds,
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
    /// What this save calls now (see [`Saver::now`]), fixed at first use.
    now: Option<std::time::Instant>,
}

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

/// Object tables with room for more than this are not kept between saves
/// (at most a few MiB stay with a thread).
const KEEP_OBJECTS: usize = 1 << 16;

impl Saver {
    pub(crate) fn new(opts: &SaveOptions) -> Self {
        Saver {
            buf: Vec::new(),
            type_ids: TypeIds::default(),
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
            now: None,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.buf.clear();
        self.type_ids.clear();
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
        // Sort keys rarely define types: most resets find nothing counted.
        if !self.counters.names.is_empty() || self.counters.times.is_some() {
            self.counters = Counters::new(false);
        }
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
        // The identity table's capacity is in slots, at most half of them
        // used. Tables not kept are dropped as they are: clearing them first
        // would write them all once more.
        if saver.objects.capacity() <= 2 * KEEP_OBJECTS && saver.tags.capacity() <= KEEP_OBJECTS {
            saver.reset();
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

    // ---- scalars -------------------------------------------------------

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

    #[inline(always)]
    fn counted(&mut self, ty: u32, f: impl FnOnce(&mut Self) -> Result<()>) -> Result<()> {
        self.counters.counts[ty as usize] += 1;
        if self.counters.times.is_some() {
            return self.timed(ty, f);
        }
        f(self)
    }

    /// `f`, its time added to type `ty`'s (with [`SaveOptions`]' timing on).
    #[cold]
    #[inline(never)]
    fn timed(&mut self, ty: u32, f: impl FnOnce(&mut Self) -> Result<()>) -> Result<()> {
        let t = Instant::now();
        let r = f(self);
        let dt: Duration = t.elapsed();
        if let Some(times) = &mut self.counters.times {
            times[ty as usize] += dt;
        }
        r
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
    // Not #[inline]: inlined into every `save`, it made the recursive
    // G2 save 8% slower (385.5M instructions a run against 355.5M) for 3%
    // on the savedata set.
    pub fn save_struct(
        &mut self,
        name: &'static str,
        fields: &'static [&'static str],
        f: impl FnOnce(&mut Self) -> Result<()>,
    ) -> Result<()> {
        let ty = self.type_ref(DefKind::Struct, name, fields);
        let outer = std::mem::replace(&mut self.fields_written, 0);
        let r = self.counted(ty, f);
        // Restored on error too: a save that rewinds goes on with the outer struct.
        let written = std::mem::replace(&mut self.fields_written, outer);
        r?;
        if written != fields.len() {
            return Err(wrong_field_count(name, written, fields.len()));
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
        let ty = self.type_ref(DefKind::Enum, name, variants);
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
        self.type_ref(DefKind::Dyn, type_name, &[]);
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

    // ---- shared objects --------------------------------------------------

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

    /// Writes a sequence of plain structs (`parts` concatenated) as one
    /// packed struct array: the override of [`Stateify::save_seq`] that
    /// `#[state(plain)]` generates.
    #[doc(hidden)]
    pub fn write_plain_seq<T: crate::plain::Plain>(&mut self, parts: [&[T]; 2]) -> Result<()> {
        let id = self.plain_type_ref::<T>();
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
        self.tag(wire::SEQ);
        self.varint((parts[0].len() + parts[1].len()) as u64);
        // A loop per part rather than `write_seq` over a chain: the chain
        // tests which part it is in at every element.
        self.nest(|s| {
            let mut i = 0u64;
            for part in parts {
                for v in part {
                    v.save(s).map_err(|e| e.in_index(i))?;
                    i += 1;
                }
            }
            Ok(())
        })
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

/// A struct's `save` wrote another number of fields than it declares.
#[cold]
#[inline(never)]
fn wrong_field_count(name: &str, written: usize, declared: usize) -> Error {
    Error::custom(format!(
        "`{name}` wrote {written} fields but declares {declared}"
    ))
}
