//! Background restore: `load_from` returns once the metadata is in place;
//! I/O workers stream the page blocks in while the program runs, and every
//! access first waits for the pages it touches.
//!
//! The saved blocks are cut into *units*, each with an atomic state
//! (pending → loading → loaded, or failed): the pieces the save digested
//! (64 KiB; 256 KiB for older saves), so that each unit is verified
//! against its digest by the thread that read it before it is published. Checking that a
//! range is loaded is lock-free: one flag once everything is in, else a
//! binary search and one atomic load per unit. A waiter claims pending
//! units of its own range and reads them itself (a hand-off to a worker and
//! back costs more than the unit's `pread`), and registers its range so that
//! workers serve it before the unwaited rest; a waited range is served a
//! capped piece at a time and rotated to the back, so no waiter starves
//! another. Workers otherwise read in pages-file order, merging consecutive
//! units into one vectored read of at most `MAX_READ` bytes.
//!
//! A chain (a full checkpoint and its deltas) is one restore of several
//! *layers*, one source each. Each unit knows its layer and its *visible*
//! parts: the pages no newer layer replaces. Accesses look units up by
//! visible part; a unit with none is never read; a unit with some replaced
//! is read whole into a buffer, checked against its digest and its visible
//! parts copied (in the background), or, in an eager load, read whole into
//! place layer after layer, newer layers overwriting older ones.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{self, IoSliceMut};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::range::FileRange;

/// Where saved pages are read from: a pages file, or anything that can
/// read at an offset (tests inject faults through this).
pub trait PageSource: Send + Sync {
    /// Reads into `buf` from `offset`; fewer bytes than asked means a short
    /// read (the caller retries the rest), 0 the end of the source.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;

    /// Reads into several buffers from `offset` in one call if possible.
    fn read_vectored_at(&self, bufs: &mut [IoSliceMut<'_>], offset: u64) -> io::Result<usize> {
        match bufs.iter_mut().find(|b| !b.is_empty()) {
            Some(b) => self.read_at(b, offset),
            None => Ok(0),
        }
    }

    /// The source's length in bytes.
    fn size(&self) -> io::Result<u64>;
}

impl PageSource for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        FileExt::read_at(self, buf, offset)
    }

    fn read_vectored_at(&self, bufs: &mut [IoSliceMut<'_>], offset: u64) -> io::Result<usize> {
        nix::sys::uio::preadv(self, bufs, offset as libc::off_t).map_err(io::Error::from)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
}

/// Pages held in memory (downloaded, or in tests).
impl PageSource for Vec<u8> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let at = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.len());
        let n = buf.len().min(self.len() - at);
        buf[..n].copy_from_slice(&self[at..at + n]);
        Ok(n)
    }

    fn read_vectored_at(&self, bufs: &mut [IoSliceMut<'_>], offset: u64) -> io::Result<usize> {
        let mut done = 0;
        for b in bufs {
            let n = self.read_at(b, offset + done as u64)?;
            done += n;
            if n < b.len() {
                break;
            }
        }
        Ok(done)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.len() as u64)
    }
}

/// Units smaller than this are not populated before they are read.
const POPULATE_MIN: u64 = 16 << 10;

/// Sweep reads at each size before the size doubles.
const RAMP: usize = 8;

/// How long a waiter yields to a read in flight before it sleeps.
const SPIN: Duration = Duration::from_millis(2);

const PENDING: u8 = 0;
const LOADING: u8 = 1;
const LOADED: u8 = 2;
const FAILED: u8 = 3;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Unit {
    /// Offset in the memory file.
    pub mem: u64,
    /// Offset in its layer's pages file.
    pub file: u64,
    pub len: u64,
    /// The layer (index into the sources) that holds it.
    layer: u32,
    /// Its parts that no newer layer replaces: `visible[vis.0..vis.1]`.
    vis: (u32, u32),
    /// All of it is visible: it is read straight into memory. Otherwise
    /// it is read into a buffer, checked, and its visible parts copied.
    full: bool,
}

/// Progress of a background restore, readable at any time.
#[derive(Clone, Copy, Debug, Default)]
pub struct RestoreProgress {
    /// Page bytes to load.
    pub bytes_total: u64,
    /// Page bytes loaded so far (or dropped because their range was freed).
    pub bytes_loaded: u64,
    /// Page bytes that failed to load.
    pub bytes_failed: u64,
    /// Time since the restore started (until it finished, once done).
    pub elapsed: Duration,
    /// Accesses that had to wait for pages.
    pub waiters_served: u64,
    /// Total time accesses spent waiting.
    pub time_waited: Duration,
    /// The longest single wait.
    pub longest_wait: Duration,
    /// Every unit is loaded or failed; the pages source has been released.
    pub done: bool,
}

impl RestoreProgress {
    /// Load throughput so far, in MB/s.
    pub fn mb_per_s(&self) -> f64 {
        self.bytes_loaded as f64 / self.elapsed.as_secs_f64().max(1e-9) / 1e6
    }
}

/// The outcome handed to the completion callback.
pub type Completion = Box<dyn FnOnce(std::result::Result<(), &Error>) + Send>;

struct Queue {
    /// Waited unit ranges, served a piece at a time, rotated.
    wanted: VecDeque<Range<usize>>,
    /// Next unit in pages-file order for the unwaited sweep.
    cursor: usize,
    /// Units failed, with their error (kind and message).
    failures: BTreeMap<usize, (io::ErrorKind, String)>,
    /// First error, for `await_all`.
    first_error: Option<(io::ErrorKind, String)>,
    /// Every read, in order: (first unit, unit count, by a waiter).
    order: Vec<(usize, usize, bool)>,
    /// Reads of the file-order sweep so far (they ramp up in size).
    sweep_reads: usize,
    /// One source per layer, oldest first (emptied once done).
    sources: Vec<Arc<dyn PageSource>>,
    on_complete: Option<Completion>,
    finished_at: Option<Instant>,
}

/// One layer of a restore: a source, its blocks, and which of their
/// memory it provides.
pub(crate) struct Layer<'a> {
    pub source: Arc<dyn PageSource>,
    /// Memory offset and length of each block, concatenated in the source
    /// in this order.
    pub blocks: Vec<(u64, u64)>,
    pub layout: SourceLayout<'a>,
    /// Sorted, disjoint memory ranges this layer provides: the parts of
    /// its blocks outside them come from a newer layer (or are no longer
    /// allocated) and are not loaded from it.
    pub visible: Vec<FileRange>,
}

/// Where the page data sits in a source, and how it is cut and checked.
pub(crate) struct SourceLayout<'a> {
    /// Where the first block starts (after the pages file's header).
    pub data_offset: u64,
    /// The unit of loading: the digested piece size.
    pub unit: u64,
    /// 32 bytes per unit, when the load verifies.
    pub digests: Option<&'a [u8]>,
}

pub(crate) struct Restore {
    /// In load order: layer by layer, oldest first, in file order.
    units: Vec<Unit>,
    /// An eager load of a chain: every unit is read whole straight into
    /// memory, layer after layer (no unit of a layer starts before every
    /// unit below it is done), so newer layers overwrite what they
    /// replace; then [`Restore::stale`] is zeroed. No copy through a
    /// buffer, at the price of writing replaced pages twice.
    layered: bool,
    /// Units of each layer not yet finished.
    layer_left: Vec<AtomicUsize>,
    /// The visible parts of the units (see `Unit::vis`).
    visible: Vec<FileRange>,
    /// Every visible part, sorted by memory offset, with its unit: what an
    /// access looks up.
    frags: Vec<(FileRange, u32)>,
    /// Re-protects loaded pages, when the file tracks writes with it, so
    /// the restore's own writes do not count as changes.
    tracker: Option<(Arc<crate::file::WriteTracker>, Arc<AtomicBool>)>,
    /// The BLAKE3 digest of each unit (a unit is one digested piece of a
    /// block), when the load verifies: a unit is published as loaded only
    /// after its bytes match.
    digests: Option<Vec<u8>>,
    state: Vec<AtomicU8>,
    /// Mapped base address of each chunk at load time (never remapped).
    bases: Vec<usize>,
    chunk_size: u64,
    max_read: u64,
    /// Units not yet loaded or failed.
    remaining: AtomicUsize,
    clean: AtomicBool,
    cancel: AtomicBool,
    q: Mutex<Queue>,
    cv: Condvar,
    started: Instant,
    bytes_total: u64,
    bytes_loaded: AtomicU64,
    bytes_failed: AtomicU64,
    waiters: AtomicU64,
    waited_ns: AtomicU64,
    longest_ns: AtomicU64,
}

fn lock(m: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn unavailable(start: u64, kind: io::ErrorKind, msg: &str) -> Error {
    Error::PagesUnavailable {
        start,
        error: io::Error::new(kind, msg.to_string()),
    }
}

impl Restore {
    /// Cuts the blocks of every layer into units (the digested pieces),
    /// keeping only those with a visible part.
    pub fn new(
        layers: Vec<Layer<'_>>,
        bases: Vec<usize>,
        chunk_size: u64,
        max_read: u64,
        tracker: Option<(Arc<crate::file::WriteTracker>, Arc<AtomicBool>)>,
        layered: bool,
    ) -> Restore {
        let mut units = Vec::new();
        let mut visible = Vec::new();
        let mut digests: Option<Vec<u8>> = Some(Vec::new());
        let mut sources = Vec::new();
        let mut min_unit = u64::MAX;
        for (li, layer) in layers.into_iter().enumerate() {
            let SourceLayout {
                data_offset,
                unit,
                digests: layer_digests,
            } = layer.layout;
            min_unit = min_unit.min(unit);
            if layer_digests.is_none() {
                digests = None;
            }
            let mut file = data_offset;
            let mut piece = 0usize;
            let mut v = 0usize; // first visible range that may still overlap
            for (mem, len) in layer.blocks {
                let mut done = 0;
                while done < len {
                    let n = (len - done).min(unit);
                    let r = FileRange {
                        start: mem + done,
                        end: mem + done + n,
                    };
                    while v < layer.visible.len() && layer.visible[v].end <= r.start {
                        v += 1;
                    }
                    let first = visible.len();
                    let mut k = v;
                    while k < layer.visible.len() && layer.visible[k].start < r.end {
                        let part = FileRange {
                            start: r.start.max(layer.visible[k].start),
                            end: r.end.min(layer.visible[k].end),
                        };
                        visible.push(part);
                        k += 1;
                    }
                    if visible.len() > first {
                        let full = layered || (visible.len() == first + 1 && visible[first] == r);
                        units.push(Unit {
                            mem: r.start,
                            file: file + done,
                            len: n,
                            layer: li as u32,
                            vis: (first as u32, visible.len() as u32),
                            full,
                        });
                        if let (Some(all), Some(d)) = (&mut digests, layer_digests) {
                            all.extend_from_slice(&d[piece * 32..(piece + 1) * 32]);
                        }
                    }
                    piece += 1;
                    done += n;
                }
                file += len;
            }
            sources.push(layer.source);
        }
        let mut frags: Vec<(FileRange, u32)> = units
            .iter()
            .enumerate()
            .flat_map(|(i, u)| {
                visible[u.vis.0 as usize..u.vis.1 as usize]
                    .iter()
                    .map(move |r| (*r, i as u32))
            })
            .collect();
        frags.sort_unstable_by_key(|(r, _)| r.start);
        let n = units.len();
        let mut per_layer = vec![0usize; sources.len()];
        for u in &units {
            per_layer[u.layer as usize] += 1;
        }
        Restore {
            layered,
            layer_left: per_layer.into_iter().map(AtomicUsize::new).collect(),
            digests,
            state: (0..n).map(|_| AtomicU8::new(PENDING)).collect(),
            bytes_total: units.iter().map(|u| u.len).sum(),
            units,
            visible,
            frags,
            tracker,
            bases,
            chunk_size,
            max_read: max_read.max(if n == 0 { 0 } else { min_unit }),
            remaining: AtomicUsize::new(n),
            clean: AtomicBool::new(n == 0),
            cancel: AtomicBool::new(false),
            q: Mutex::new(Queue {
                wanted: VecDeque::new(),
                cursor: 0,
                failures: BTreeMap::new(),
                first_error: None,
                order: Vec::new(),
                sweep_reads: 0,
                sources: if n > 0 { sources } else { Vec::new() },
                on_complete: None,
                finished_at: (n == 0).then(Instant::now),
            }),
            cv: Condvar::new(),
            started: Instant::now(),
            bytes_loaded: AtomicU64::new(0),
            bytes_failed: AtomicU64::new(0),
            waiters: AtomicU64::new(0),
            waited_ns: AtomicU64::new(0),
            longest_ns: AtomicU64::new(0),
        }
    }

    /// Page bytes the restore reads.
    pub fn bytes_total(&self) -> u64 {
        self.bytes_total
    }

    /// After a layered load: memory that whole-unit reads wrote and no
    /// visible part covers (pages a newer layer zeroed, or that are no
    /// longer allocated). It must be zeroed again.
    pub fn stale(&self) -> Vec<FileRange> {
        if !self.layered {
            return Vec::new();
        }
        let written: Vec<FileRange> = (0..self.units.len())
            .filter_map(|i| {
                let u = self.units[i];
                let r = FileRange {
                    start: u.mem,
                    end: u.mem + u.len,
                };
                (self.visible_of(i) != [r]).then_some(r)
            })
            .collect();
        let visible: Vec<FileRange> = self.frags.iter().map(|(r, _)| *r).collect();
        crate::file::subtract(&crate::file::union(&written, &[]), &visible)
    }

    /// Every unit loaded or failed. (Set inside the queue lock by the last
    /// unit's finisher, together with the rest of the completion state.)
    fn done(&self) -> bool {
        self.remaining.load(Ordering::Acquire) == 0
    }

    /// Everything loaded without error: accesses need no check at all.
    #[inline]
    pub fn all_loaded(&self) -> bool {
        self.clean.load(Ordering::Acquire)
    }

    /// The visible parts intersecting `r` (indices into `frags`).
    fn frags_of(&self, r: FileRange) -> Range<usize> {
        let first = self.frags.partition_point(|(f, _)| f.end <= r.start);
        let last = self.frags.partition_point(|(f, _)| f.start < r.end);
        first..last.max(first)
    }

    /// The unit of visible part `k`.
    fn unit_of(&self, k: usize) -> usize {
        self.frags[k].1 as usize
    }

    /// The visible parts of unit `i`.
    fn visible_of(&self, i: usize) -> &[FileRange] {
        let (a, b) = self.units[i].vis;
        &self.visible[a as usize..b as usize]
    }

    /// Whether unit `j` can join a read of the units before it, ending
    /// with unit `j - 1`: same source, next in it.
    fn joins(&self, j: usize) -> bool {
        let (a, b) = (&self.units[j - 1], &self.units[j]);
        a.layer == b.layer && a.file + a.len == b.file
    }

    /// Claims unit `i` if it is pending.
    fn claim(&self, i: usize) -> bool {
        self.state[i]
            .compare_exchange(PENDING, LOADING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Reads the claimed units `run` (consecutive in one source: see
    /// `load_run`), checks them, and publishes the outcome.
    fn read_run(&self, run: Range<usize>, by_waiter: bool) {
        let layer = self.units[run.start].layer as usize;
        let source = lock(&self.q).sources.get(layer).cloned();
        let mut outcome: Vec<io::Result<()>> = match &source {
            Some(src) => match self.load_run(&**src, run.clone()) {
                Ok(each) => each,
                // Retry unit by unit, so that one bad spot fails only the
                // unit that holds it.
                Err(_) if run.len() > 1 => run
                    .clone()
                    .map(|i| {
                        self.load_run(&**src, i..i + 1)
                            .and_then(|mut one| one.pop().unwrap_or(Ok(())))
                    })
                    .collect(),
                Err(e) => vec![Err(e)],
            },
            None => run
                .clone()
                .map(|_| Err(io::Error::other("the restore was stopped")))
                .collect(),
        };
        // Before the last unit completes the restore: the completion says
        // the source is free, so no handle may outlive it.
        drop(source);
        if let Some((t, _)) = self
            .tracker
            .as_ref()
            .filter(|(_, raw)| raw.load(Ordering::SeqCst))
        {
            // The restore's writes are not changes: once raw pointers are
            // out (and pages protected), protect the loaded pages again
            // before any access can write them.
            for (i, r) in run.clone().zip(outcome.iter_mut()) {
                if r.is_ok() {
                    for v in self.visible_of(i) {
                        let addr = self.addr_of(v.start);
                        if let Err(e) = t.protect(addr, v.len()) {
                            *r = Err(e);
                            break;
                        }
                    }
                }
            }
        }
        let mut q = lock(&self.q);
        self.layer_left[layer].fetch_sub(run.len(), Ordering::AcqRel);
        q.order.push((run.start, run.len(), by_waiter));
        for (i, r) in run.clone().zip(outcome.drain(..)) {
            match r {
                Ok(()) => {
                    self.state[i].store(LOADED, Ordering::Release);
                    self.bytes_loaded
                        .fetch_add(self.units[i].len, Ordering::Relaxed);
                }
                Err(e) => {
                    let (kind, msg) = (e.kind(), e.to_string());
                    self.state[i].store(FAILED, Ordering::Release);
                    self.bytes_failed
                        .fetch_add(self.units[i].len, Ordering::Relaxed);
                    q.first_error.get_or_insert((kind, msg.clone()));
                    q.failures.insert(i, (kind, msg));
                }
            }
        }
        self.finish_units(q, run.len());
    }

    /// Reads the units `run` with one vectored read — units read whole
    /// straight into memory, the others into a buffer — then checks each
    /// against its digest (when the load verifies; hashed by the thread
    /// that read, so workers verify in parallel) and copies the visible
    /// parts of the buffered ones into place. The outer error is the read's;
    /// the inner ones each unit's.
    fn load_run(&self, src: &dyn PageSource, run: Range<usize>) -> io::Result<Vec<io::Result<()>>> {
        thread_local! {
            /// A worker's buffer for partly replaced units (grown, never
            /// zeroed again).
            static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let units = &self.units[run.clone()];
        let buffered = units.iter().filter(|u| !u.full).map(|u| u.len).sum::<u64>() as usize;
        BUF.with_borrow_mut(|buf| {
            if buf.len() < buffered {
                buf.resize(buffered, 0);
            }
            let buf = &mut buf[..buffered];
            self.read_into(src, run.clone(), buf)?;
            let mut at = 0;
            Ok(run
                .map(|i| {
                    let u = &self.units[i];
                    if u.full {
                        return self.check_digest(i, self.unit_bytes(i));
                    }
                    let bytes = &buf[at..at + u.len as usize];
                    at += u.len as usize;
                    self.check_digest(i, bytes)?;
                    self.place(i, bytes);
                    Ok(())
                })
                .collect())
        })
    }

    fn check_digest(&self, i: usize, bytes: &[u8]) -> io::Result<()> {
        match &self.digests {
            Some(d) if blake3::hash(bytes).as_bytes() != &d[i * 32..(i + 1) * 32] => {
                let u = self.units[i];
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    crate::load::digest_mismatch(u.mem, u.len),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Copies the visible parts of unit `i` from `bytes`, the whole unit as
    /// read and checked.
    fn place(&self, i: usize, bytes: &[u8]) {
        let u = self.units[i];
        for v in self.visible_of(i) {
            let from = (v.start - u.mem) as usize;
            // SAFETY: the visible part lies inside unit `i`, inside one
            // chunk's mapping that stays mapped while the restore runs; this
            // thread claimed the unit (LOADING), no access touches its
            // visible pages before it is published, and no other unit covers
            // them (visible parts are disjoint).
            let dst = unsafe {
                std::slice::from_raw_parts_mut(self.addr_of(v.start) as *mut u8, v.len() as usize)
            };
            dst.copy_from_slice(&bytes[from..from + v.len() as usize]);
        }
    }

    /// Counts `n` units as finished (the queue lock held); at the last,
    /// completes the restore and releases the lock before running the
    /// completion callback.
    fn finish_units(&self, mut q: MutexGuard<'_, Queue>, n: usize) {
        let left = self.remaining.fetch_sub(n, Ordering::AcqRel) - n;
        let mut callback = None;
        if left == 0 {
            q.finished_at = Some(Instant::now());
            // The source is no longer needed: the pages file may go.
            q.sources.clear();
            self.clean.store(q.first_error.is_none(), Ordering::Release);
            let err = q.first_error.as_ref().map(|(k, m)| unavailable(0, *k, m));
            callback = q.on_complete.take().map(|f| (f, err));
        }
        self.cv.notify_all();
        drop(q);
        if let Some((f, err)) = callback {
            f(match &err {
                None => Ok(()),
                Some(e) => Err(e),
            });
        }
    }

    /// The bytes of unit `i`, which this thread has claimed (LOADING) and
    /// read, for its digest.
    fn unit_bytes(&self, i: usize) -> &[u8] {
        let u = &self.units[i];
        // SAFETY: as in `read_into`: inside one chunk's mapping, which stays
        // mapped while the restore runs; the unit is LOADING and claimed by
        // this thread, so no other thread writes it and no access reads it
        // until it is published.
        unsafe { std::slice::from_raw_parts(self.unit_addr(u) as *const u8, u.len as usize) }
    }

    /// Where unit `u` is mapped.
    fn unit_addr(&self, u: &Unit) -> usize {
        self.addr_of(u.mem)
    }

    /// Where memory offset `mem` is mapped.
    fn addr_of(&self, mem: u64) -> usize {
        self.bases[(mem / self.chunk_size) as usize] + (mem % self.chunk_size) as usize
    }

    /// Reads `run` from `src`: whole units into memory, the others in turn
    /// into `buf`.
    fn read_into(&self, src: &dyn PageSource, run: Range<usize>, buf: &mut [u8]) -> io::Result<()> {
        let units = &self.units[run];
        let mut iov: Vec<IoSliceMut<'_>> = Vec::with_capacity(units.len());
        let mut rest = buf;
        for u in units {
            if !u.full {
                if units.len() > 1 && u.len >= POPULATE_MIN {
                    // Where its visible parts go (see `populate`): writes
                    // nothing, so the parts other units hold are safe.
                    populate_range(self.unit_addr(u), u.len);
                }
                let (mine, after) = std::mem::take(&mut rest).split_at_mut(u.len as usize);
                rest = after;
                iov.push(IoSliceMut::new(mine));
                continue;
            }
            // SAFETY: the unit lies inside one chunk's mapping (blocks never
            // cross a chunk; units split blocks), which stays mapped while
            // the restore runs (`MemoryFile` stops and joins the workers
            // before unmapping). This thread claimed the unit (LOADING), so
            // no other reader writes it, and no safe code references its
            // bytes: every access waits until the unit is LOADED. A unit
            // read whole is all visible, or (layered) no unit of another
            // layer is being read: the layers below are done, the layers
            // above not begun.
            let bytes = unsafe {
                std::slice::from_raw_parts_mut(self.unit_addr(u) as *mut u8, u.len as usize)
            };
            if units.len() > 1 && u.len >= POPULATE_MIN {
                // A worker's run (a waiter reads one unit and measured no
                // gain from it). A unit of a page or two gains nothing
                // either: the read faults them in as cheaply as the
                // madvise would, without the call (a delta of scattered
                // pages is 4 KiB units).
                populate(bytes);
            }
            iov.push(IoSliceMut::new(bytes));
        }
        let offset = units.first().map_or(0, |u| u.file);
        let left: u64 = units.iter().map(|u| u.len).sum();
        self.read_source(src, &mut iov, offset, left)
    }

    /// Fills `iov` (`left` bytes) from `src` at `offset`.
    fn read_source(
        &self,
        src: &dyn PageSource,
        iov: &mut [IoSliceMut<'_>],
        mut offset: u64,
        mut left: u64,
    ) -> io::Result<()> {
        let mut rest = iov;
        while !rest.is_empty() {
            // A source that panics fails these units instead of the worker.
            let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                src.read_vectored_at(rest, offset)
            }))
            .unwrap_or_else(|_| Err(io::Error::other("the page source panicked")));
            match got {
                Ok(n) if n as u64 > left => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "the page source claims {n} bytes read into {left} bytes of buffers"
                        ),
                    ))
                }
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "pages file ends at byte {offset}, before the pages it should hold"
                        ),
                    ))
                }
                Ok(n) => {
                    offset += n as u64;
                    left -= n as u64;
                    IoSliceMut::advance_slices(&mut rest, n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// A worker's next run: a piece of the oldest waited range (rotated to
    /// the back), else the next pending units in pages-file order.
    fn next_run(&self, q: &mut Queue) -> Option<Range<usize>> {
        while let Some(w) = q.wanted.pop_front() {
            if let Some((run, rest)) = self.claim_wanted(w.clone()) {
                if !rest.is_empty() {
                    q.wanted.push_back(rest);
                }
                return Some(run);
            }
        }
        // The sweep starts with one-unit reads and doubles them every
        // `RAMP` reads up to `max_read`: the pages a program touches first,
        // just after it resumes, are not queued behind large reads (at
        // 5 ms a request from an object store, with 8 reads of 512 KiB in
        // flight from the start a first touch's p99 was 4-7 requests).
        let ramp = (q.sweep_reads / RAMP).min(32) as u32;
        let limit = self.units.first().map_or(0, |u| u.len) << ramp;
        while q.cursor < self.units.len() {
            let at = q.cursor;
            let layer = self.units[at].layer as usize;
            if self.layered
                && self.layer_left[..layer]
                    .iter()
                    .any(|n| n.load(Ordering::Acquire) > 0)
            {
                // The layers below first (their finisher wakes us).
                return None;
            }
            if let Some(run) = self.claim_run(at..self.units.len(), limit) {
                q.cursor = run.end;
                q.sweep_reads += 1;
                return Some(run);
            }
            q.cursor += 1;
        }
        None
    }

    /// Claims the first pending unit of `r` and the units after it that
    /// join its read, at most `max_read` (and `limit`) bytes.
    fn claim_run(&self, r: Range<usize>, limit: u64) -> Option<Range<usize>> {
        let max = self.max_read.min(limit.max(1));
        let mut i = r.start;
        while i < r.end && !self.claim(i) {
            i += 1;
        }
        if i == r.end {
            return None;
        }
        let start = i;
        let mut bytes = self.units[i].len;
        i += 1;
        while i < r.end && self.joins(i) && bytes + self.units[i].len <= max && self.claim(i) {
            bytes += self.units[i].len;
            i += 1;
        }
        Some(start..i)
    }

    /// Claims the first pending unit among the visible parts `w` (a waited
    /// range) and the units after it whose parts follow in `w` and that
    /// join its read; returns them and what is left of `w`.
    fn claim_wanted(&self, w: Range<usize>) -> Option<(Range<usize>, Range<usize>)> {
        let mut k = w.start;
        while k < w.end && !self.claim(self.unit_of(k)) {
            k += 1;
        }
        if k == w.end {
            return None;
        }
        let start = self.unit_of(k);
        let (mut end, mut bytes) = (start + 1, self.units[start].len);
        k += 1;
        while k < w.end
            && self.unit_of(k) == end
            && self.joins(end)
            && bytes + self.units[end].len <= self.max_read
            && self.claim(end)
        {
            bytes += self.units[end].len;
            end += 1;
            k += 1;
        }
        Some((start..end, k..w.end))
    }

    /// The worker loop.
    pub fn work(self: &Arc<Self>) {
        loop {
            let run = {
                let mut q = lock(&self.q);
                loop {
                    if self.cancel.load(Ordering::Acquire) || self.done() {
                        return;
                    }
                    if let Some(run) = self.next_run(&mut q) {
                        break run;
                    }
                    // Everything left is being read by someone: wait.
                    q = self
                        .cv
                        .wait_timeout(q, Duration::from_millis(50))
                        .map(|(g, _)| g)
                        .unwrap_or_else(|e| e.into_inner().0);
                }
            };
            self.read_run(run, false);
        }
    }

    /// Waits until every page of `r` is loaded, reading pending ones
    /// itself; an error if any failed.
    pub fn await_range(&self, r: FileRange) -> Result<()> {
        if self.all_loaded() {
            return Ok(());
        }
        let frags = self.frags_of(r);
        // Fast path: all loaded already.
        if frags
            .clone()
            .all(|k| self.state[self.unit_of(k)].load(Ordering::Acquire) == LOADED)
        {
            return Ok(());
        }
        let t = Instant::now();
        if frags.len() > 1 {
            // Let the workers help, before the unwaited rest.
            lock(&self.q).wanted.push_back(frags.clone());
            self.cv.notify_all();
        }
        let mut k = frags.start;
        while k < frags.end {
            let i = self.unit_of(k);
            match self.state[i].load(Ordering::Acquire) {
                LOADED => k += 1,
                FAILED => {
                    let q = lock(&self.q);
                    let (kind, msg) = q
                        .failures
                        .get(&i)
                        .cloned()
                        .unwrap_or((io::ErrorKind::Other, "pages failed to load".into()));
                    return Err(unavailable(self.units[i].mem, kind, &msg));
                }
                PENDING => {
                    // One unit at a time, so that workers can take the
                    // rest of a large range in parallel.
                    if self.claim(i) {
                        self.read_run(i..i + 1, true);
                    }
                }
                _ => {
                    // Being read by another thread. A unit takes well under
                    // a millisecond: yield to it for a while rather than
                    // sleep, since a sleeper may wake behind busy workers
                    // and wait a whole scheduler tick for a core.
                    let until = Instant::now() + SPIN;
                    while self.state[i].load(Ordering::Acquire) == LOADING && Instant::now() < until
                    {
                        std::thread::yield_now();
                    }
                    let q = lock(&self.q);
                    if self.state[i].load(Ordering::Acquire) == LOADING {
                        let _ = self.cv.wait_timeout(q, Duration::from_millis(10));
                    }
                }
            }
        }
        let waited = t.elapsed().as_nanos() as u64;
        self.waiters.fetch_add(1, Ordering::Relaxed);
        self.waited_ns.fetch_add(waited, Ordering::Relaxed);
        self.longest_ns.fetch_max(waited, Ordering::Relaxed);
        Ok(())
    }

    /// Before `r` is freed: pending units entirely inside it are dropped
    /// (never read), units partly inside are loaded first, and reads in
    /// flight on it are waited for.
    pub fn forget_range(&self, r: FileRange) -> Result<()> {
        if self.done() {
            return Ok(());
        }
        for k in self.frags_of(r) {
            let i = self.unit_of(k);
            let u = self.units[i];
            let inside = self
                .visible_of(i)
                .iter()
                .all(|v| v.start >= r.start && v.end <= r.end);
            if inside && self.claim(i) {
                self.layer_left[u.layer as usize].fetch_sub(1, Ordering::AcqRel);
                self.state[i].store(LOADED, Ordering::Release);
                self.bytes_loaded.fetch_add(u.len, Ordering::Relaxed);
                self.finish_units(lock(&self.q), 1);
            }
        }
        // Partly freed units must hold their data; in-flight reads must end.
        match self.await_range(r) {
            Err(Error::PagesUnavailable { .. }) | Ok(()) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Waits for the whole restore; the first error if any unit failed.
    pub fn await_all(&self) -> Result<()> {
        let mut q = lock(&self.q);
        while !self.done() {
            q = self
                .cv
                .wait_timeout(q, Duration::from_millis(50))
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        match &q.first_error {
            None => Ok(()),
            Some((kind, msg)) => Err(unavailable(0, *kind, msg)),
        }
    }

    /// Registers `f` to run once the restore is done (now, if it is).
    pub fn on_complete(&self, f: Completion) {
        let mut q = lock(&self.q);
        if self.done() {
            let err = q.first_error.as_ref().map(|(k, m)| unavailable(0, *k, m));
            drop(q);
            f(match &err {
                None => Ok(()),
                Some(e) => Err(e),
            });
        } else {
            q.on_complete = Some(f);
        }
    }

    pub fn progress(&self) -> RestoreProgress {
        let q = lock(&self.q);
        RestoreProgress {
            bytes_total: self.bytes_total,
            bytes_loaded: self.bytes_loaded.load(Ordering::Relaxed),
            bytes_failed: self.bytes_failed.load(Ordering::Relaxed),
            elapsed: q
                .finished_at
                .unwrap_or_else(Instant::now)
                .duration_since(self.started),
            waiters_served: self.waiters.load(Ordering::Relaxed),
            time_waited: Duration::from_nanos(self.waited_ns.load(Ordering::Relaxed)),
            longest_wait: Duration::from_nanos(self.longest_ns.load(Ordering::Relaxed)),
            done: self.done(),
        }
    }

    /// The reads so far, in order: (memory offset, length, read by a waiter).
    pub fn read_order(&self) -> Vec<(u64, u64, bool)> {
        let q = lock(&self.q);
        q.order
            .iter()
            .map(|&(first, n, w)| {
                let len = self.units[first..first + n].iter().map(|u| u.len).sum();
                (self.units[first].mem, len, w)
            })
            .collect()
    }

    /// Stops the workers (the `MemoryFile` is going away).
    pub fn stop(&self) {
        self.cancel.store(true, Ordering::Release);
        self.cv.notify_all();
    }
}

/// Nice value of restore workers: below the program's own threads, so a
/// thread waiting for its pages (and reading them itself) gets a core at
/// once instead of queueing behind the workers for a time slice.
const WORKER_NICE: libc::c_int = 10;

fn lower_priority() {
    let tid = nix::unistd::gettid().as_raw() as libc::id_t;
    // SAFETY: setpriority only reads its integer arguments; on Linux a
    // thread id as `who` with PRIO_PROCESS changes that thread alone. A
    // failure (not permitted) leaves the priority as it was, which is fine.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, tid, WORKER_NICE);
    }
    // SCHED_BATCH: a worker that wakes up never preempts a running program
    // thread. (Not SCHED_IDLE: a starved worker inside a page fault would
    // hold up every thread that maps memory.)
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler reads `param` (a valid local) and the
    // integers; with a thread id it changes that thread alone, and a failure
    // leaves the policy as it was.
    unsafe {
        libc::sched_setscheduler(tid as libc::pid_t, libc::SCHED_BATCH, &param);
    }
}

/// The running restore of a `MemoryFile`: its state and its workers.
pub(crate) struct Background {
    pub restore: Arc<Restore>,
    pub workers: Vec<JoinHandle<()>>,
}

impl Background {
    /// Starts the workers and returns once each is running. A starting
    /// thread maps its signal stack and its malloc arena, and those take
    /// the address-space lock for writing: done here, before `load_from`
    /// returns, they cannot stall the page faults of a program thread that
    /// is already reading its pages (they did, by milliseconds). The workers
    /// then wait at a gate until this thread, still running, opens it: a
    /// program thread is never left waking up behind busy workers.
    pub fn start(restore: Restore, threads: usize) -> Background {
        let restore = Arc::new(restore);
        let (ready_tx, ready) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let workers: Vec<_> = (0..threads.max(1))
            .filter_map(|i| {
                let r = restore.clone();
                let ready_tx = ready_tx.clone();
                let gate = gate.clone();
                std::thread::Builder::new()
                    .name(format!("pgalloc-restore-{i}"))
                    .spawn(move || {
                        lower_priority();
                        // The arena, now: `read_into` allocates.
                        drop(std::hint::black_box(Vec::<IoSliceMut<'_>>::with_capacity(
                            8,
                        )));
                        let _ = ready_tx.send(());
                        drop(ready_tx);
                        let (open, cv) = &*gate;
                        let mut open = open.lock().unwrap_or_else(|e| e.into_inner());
                        while !*open {
                            open = cv.wait(open).unwrap_or_else(|e| e.into_inner());
                        }
                        drop(open);
                        r.work()
                    })
                    .ok()
            })
            .collect();
        drop(ready_tx);
        // Ends early only if a worker died before it was ready.
        for _ in 0..workers.len() {
            if ready.recv().is_err() {
                break;
            }
        }
        *gate.0.lock().unwrap_or_else(|e| e.into_inner()) = true;
        gate.1.notify_all();
        if workers.is_empty() {
            // No thread could start: load everything here, now.
            restore.work();
        }
        Background { restore, workers }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.restore.stop();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// Allocates the pages of `bytes` (fresh memfd memory about to be read
/// into) in one call, instead of one page fault per 4 KiB page while the
/// read copies: shmem faults cost about 2.4 µs a page here. Only a hint:
/// on a kernel without `MADV_POPULATE_WRITE` (before 5.14) the read
/// faults the pages in as before.
fn populate(bytes: &mut [u8]) {
    populate_range(bytes.as_mut_ptr() as usize, bytes.len() as u64);
}

/// `populate` of `len` bytes at `addr`, inside the file's own mapping.
fn populate_range(addr: usize, len: u64) {
    // SAFETY: `addr..addr + len` lies inside the file's own mapping (a
    // claimed unit); populating writes nothing any thread sees, only
    // allocates the pages with their contents unchanged, so it is safe even
    // over pages another thread is writing.
    let _ = unsafe {
        libc::madvise(
            addr as *mut libc::c_void,
            len as usize,
            libc::MADV_POPULATE_WRITE,
        )
    };
}
