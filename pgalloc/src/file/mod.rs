//! `MemoryFile`: a memfd grown in chunks, each chunk mapped once and never
//! remapped, with a usage segment set recording what is allocated
//! (accounting in `usage`).

use std::fs::File;
use std::ops::Range;
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use memmap2::{MmapOptions, MmapRaw};
use nix::fcntl::FallocateFlags;

use crate::error::{sys, Error, Result};
pub use crate::range::FileRange;
use crate::segment::SegmentSet;

mod track;
mod uffd;
mod usage;

pub(crate) use track::{by_newest, intersect_with, subtract, union, Changed};
pub use track::{Tracking, TrackingMethod};
pub(crate) use uffd::WriteTracker;
pub(crate) use usage::Usage;
pub use usage::{MemoryKind, UsageTotals};

/// The page size every range is aligned to.
pub const PAGE_SIZE: u64 = 4096;
/// The huge page size (per-chunk advice, decommit batching).
pub const HUGE_PAGE_SIZE: u64 = 2 << 20;
/// The default chunk (growth and mapping unit).
pub const DEFAULT_CHUNK_SIZE: u64 = 1 << 30;
/// The largest file a `MemoryFile` grows to (and a saved one may claim).
pub const MAX_FILE_SIZE: u64 = 1 << 44;
/// The most chunks (mappings) a `MemoryFile` has; the kernel's default
/// limit is 65,530 mappings per process.
pub const MAX_CHUNKS: u64 = 16 << 10;

/// How a [`MemoryFile`] grows.
#[derive(Clone, Copy, Debug)]
pub struct MemoryFileOpts {
    /// The unit of growth and mapping: a power of two, at least a huge page
    /// (or a page, for tests), at most 64 GiB. No allocation is larger.
    pub chunk_size: u64,
    /// Advise huge pages for each chunk (`MADV_HUGEPAGE`).
    pub huge_pages: bool,
    /// Which changes are tracked for incremental saves.
    pub tracking: Tracking,
}

impl Default for MemoryFileOpts {
    fn default() -> Self {
        MemoryFileOpts {
            chunk_size: DEFAULT_CHUNK_SIZE,
            huge_pages: true,
            tracking: Tracking::Auto,
        }
    }
}

/// How to allocate.
#[derive(Clone, Copy, Debug)]
pub struct AllocOpts {
    /// Accounted as this kind.
    pub kind: MemoryKind,
    /// The owning memory cgroup id (0: none).
    pub memcg: u32,
}

impl Default for AllocOpts {
    fn default() -> Self {
        AllocOpts {
            kind: MemoryKind::Anonymous,
            memcg: 0,
        }
    }
}

pub(crate) struct State {
    pub file_size: u64,
    pub usage: SegmentSet<Usage>,
    /// No byte below this is free: first-fit searches start here, so
    /// allocating at the end of a large file does not walk every segment.
    low_water: u64,
    last_scan: Option<Instant>,
    /// The checkpoint this file was last saved to or loaded from: what an
    /// incremental save records changes against.
    pub last: Option<Lineage>,
}

/// A checkpoint a file descends from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Lineage {
    /// BLAKE3 of its metadata record.
    pub digest: [u8; 32],
    /// 0 for a full checkpoint, else its depth in its chain.
    pub layer: u64,
}

/// memfd-backed page memory. See the crate documentation.
pub struct MemoryFile {
    /// A background restore in progress (declared first: dropping it stops
    /// and joins the workers before the mappings below are unmapped).
    pub(crate) background: std::sync::OnceLock<crate::restore::Background>,
    pub(crate) file: File,
    pub(crate) opts: MemoryFileOpts,
    pub(crate) state: Mutex<State>,
    /// One mapping per chunk, in file order; only ever appended to.
    chunks: RwLock<Vec<MmapRaw>>,
    /// Readers of the mapped bytes share it, writers hold it alone, so safe
    /// code never sees a slice that another thread writes. Writers record
    /// the pages they change in it.
    access: RwLock<Changed>,
    /// The kernel's record of writes through the mappings, if it keeps one.
    pub(crate) writes: Option<std::sync::Arc<WriteTracker>>,
    /// A raw pointer was handed out: from then on `writes` protects pages
    /// at every checkpoint (without it, writes are no longer all seen).
    /// Until then the API bitmap is exact and no write takes a fault.
    pub(crate) raw: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The first `raw_ptr` protects every page, once, before any raw
    /// pointer is handed out; `Err` if the kernel refused.
    raw_init: std::sync::OnceLock<std::result::Result<(), String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

/// Shared access to the mapped bytes of one file: while it lives, no safe
/// writer (`write_at`, `with_slice_mut`, allocation…) runs, so its bytes
/// can be read in place. Made only by [`MemoryFile::shared_access`].
pub(crate) struct SharedAccess<'a> {
    _guard: RwLockReadGuard<'a, Changed>,
    file: &'a MemoryFile,
}

impl SharedAccess<'_> {
    /// The bytes of `r`, which must lie inside one chunk's mapping, for as
    /// long as the access is held.
    pub(crate) fn bytes(&self, r: FileRange) -> Result<&[u8]> {
        // `span` checked that `r` lies inside one chunk's mapping, valid
        // while the file lives, which outlasts `self`; the slice below
        // borrows `self`, whose guard keeps every safe writer out.
        let ptr = self.file.span(r)?;
        // SAFETY: inside one live mapping (`span` checked the chunk), not
        // written while the guard, and so the slice, lives.
        Ok(unsafe { std::slice::from_raw_parts(ptr, r.len() as usize) })
    }
}

fn write<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn bad(r: FileRange, why: &'static str) -> Error {
    Error::BadRange {
        start: r.start,
        end: r.end,
        why,
    }
}

/// The largest reference count (`inc_ref` refuses to go past it).
pub(crate) const MAX_REFS: u64 = 1 << 32;

/// A chunk size is a power of two from a page to 64 GiB.
pub(crate) fn valid_chunk_size(c: u64) -> bool {
    c.is_power_of_two() && (PAGE_SIZE..=64 << 30).contains(&c)
}

impl MemoryFile {
    /// Creates an empty memory file.
    pub fn new(opts: MemoryFileOpts) -> Result<MemoryFile> {
        let c = opts.chunk_size;
        if !valid_chunk_size(c) {
            return Err(Error::InvalidArgument(format!(
                "chunk size {c} is not a power of two between a page and 64 GiB"
            )));
        }
        let fd = nix::sys::memfd::memfd_create(
            c"stateify-pgalloc",
            nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
        )
        .map_err(sys("memfd_create"))?;
        let writes = match opts.tracking {
            Tracking::Auto => WriteTracker::new().ok().map(std::sync::Arc::new),
            Tracking::Api | Tracking::Off => None,
        };
        Ok(MemoryFile {
            background: std::sync::OnceLock::new(),
            file: File::from(fd),
            opts,
            state: Mutex::new(State {
                file_size: 0,
                usage: SegmentSet::new(),
                low_water: 0,
                last_scan: None,
                last: None,
            }),
            chunks: RwLock::new(Vec::new()),
            access: RwLock::new(Changed::default()),
            writes,
            raw: Default::default(),
            raw_init: std::sync::OnceLock::new(),
        })
    }

    /// The chunk size.
    pub fn chunk_size(&self) -> u64 {
        self.opts.chunk_size
    }

    /// The file's current size (a multiple of the chunk size).
    pub fn file_size(&self) -> u64 {
        lock(&self.state).file_size
    }

    /// Grows the file (and the mappings) to at least `size` bytes.
    pub(crate) fn grow_to(&self, st: &mut State, size: u64) -> Result<()> {
        let c = self.opts.chunk_size;
        let size = size.div_ceil(c) * c;
        if size <= st.file_size {
            return Ok(());
        }
        if size > MAX_FILE_SIZE || size / c > MAX_CHUNKS {
            return Err(Error::NoSpace {
                len: size,
                why: format!("the file would exceed {MAX_FILE_SIZE} bytes or {MAX_CHUNKS} chunks"),
            });
        }
        self.file.set_len(size)?;
        let mut chunks = write(&self.chunks);
        while (chunks.len() as u64) * c < size {
            let offset = chunks.len() as u64 * c;
            let map = MmapOptions::new()
                .offset(offset)
                .len(c as usize)
                .map_raw(&self.file)?;
            if self.opts.huge_pages && c >= HUGE_PAGE_SIZE {
                // Advice only: a kernel without shmem THP ignores it.
                let _ = map.advise(memmap2::Advice::HugePage);
            }
            if let Some(t) = &self.writes {
                // Its pages count as written once mapped (faulted in), until
                // a save or load protects them.
                t.register(map.as_mut_ptr() as usize, c).map_err(|e| {
                    Error::Io(std::io::Error::new(
                        e.kind(),
                        format!("userfaultfd registration of a new chunk: {e}"),
                    ))
                })?;
            }
            chunks.push(map);
        }
        st.file_size = size;
        Ok(())
    }

    /// Allocates `len` bytes (rounded up to pages), bottom-up first fit,
    /// reusing freed ranges; the range holds one reference and reads as
    /// zeros. No allocation crosses a chunk boundary.
    pub fn allocate(&self, len: u64, opts: AllocOpts) -> Result<FileRange> {
        let c = self.opts.chunk_size;
        if len == 0 || len > c {
            return Err(Error::NoSpace {
                len,
                why: format!("allocations are 1 to {c} bytes (the chunk size)"),
            });
        }
        let len = len.div_ceil(PAGE_SIZE) * PAGE_SIZE;
        let mut st = lock(&self.state);
        // In a gap [a, b): the lowest start that does not cross a chunk.
        let fit = |a: u64, b: u64| {
            let start = if a / c != (a + len - 1) / c {
                a.div_ceil(c) * c
            } else {
                a
            };
            (start.checked_add(len)? <= b).then_some(start)
        };
        let start = st
            .usage
            .first_gap(st.low_water, len, MAX_FILE_SIZE, fit)
            .ok_or_else(|| Error::NoSpace {
                len,
                why: "no room below the file size limit".into(),
            })?;
        let r = FileRange {
            start,
            end: start + len,
        };
        self.grow_to(&mut st, r.end)?;
        let inserted = st.usage.insert(
            r.as_range(),
            Usage {
                kind: opts.kind,
                memcg: opts.memcg,
                refs: 1,
                committed: false,
            },
        );
        debug_assert!(inserted, "first_gap returned an allocated range");
        if r.start == st.low_water {
            st.low_water = r.end;
        }
        Ok(r)
    }

    fn check_allocated(st: &State, r: FileRange) -> Result<()> {
        if r.is_empty() || r.start % PAGE_SIZE != 0 || r.end % PAGE_SIZE != 0 {
            return Err(bad(r, "not a non-empty page-aligned range"));
        }
        let mut at = r.start;
        for (seg, _) in st.usage.overlapping(r.as_range()) {
            if seg.start > at {
                break;
            }
            at = seg.end;
        }
        if at < r.end {
            return Err(bad(r, "not entirely allocated"));
        }
        Ok(())
    }

    /// Adds a reference to every page of `r` (which must be allocated).
    pub fn inc_ref(&self, r: FileRange) -> Result<()> {
        let mut st = lock(&self.state);
        Self::check_allocated(&st, r)?;
        if st
            .usage
            .overlapping(r.as_range())
            .any(|(_, u)| u.refs >= MAX_REFS)
        {
            return Err(bad(r, "reference count at its limit"));
        }
        st.usage.update(r.as_range(), |u| {
            Some(Usage {
                refs: u.refs + 1,
                ..*u
            })
        });
        Ok(())
    }

    /// Drops a reference to every page of `r`; pages left with none are
    /// freed and decommitted (their memory returns to the system and they
    /// read as zeros when allocated again).
    pub fn dec_ref(&self, r: FileRange) -> Result<()> {
        let mut st = lock(&self.state);
        Self::check_allocated(&st, r)?;
        let before = st.usage.update(r.as_range(), |u| {
            (u.refs > 1).then_some(Usage {
                refs: u.refs - 1,
                ..*u
            })
        });
        // The state lock stays held until the freed pages are decommitted,
        // so they cannot be allocated (and written) again before the punch.
        for (range, u) in before {
            if u.refs <= 1 {
                st.low_water = st.low_water.min(range.start);
                let r = FileRange {
                    start: range.start,
                    end: range.end,
                };
                // Never punch a hole under a read in flight.
                if let Some(b) = self.background.get() {
                    b.restore.forget_range(r)?;
                }
                self.decommit(r)?;
            }
        }
        drop(st);
        Ok(())
    }

    /// Returns the pages of `r` to the system: a hole punched in the memfd,
    /// or zeros written where the file system cannot punch.
    pub(crate) fn decommit(&self, r: FileRange) -> Result<()> {
        // Alone: no safe slice may see the bytes change under it.
        let punched = {
            let mut alone = write(&self.access);
            alone.mark(r);
            self.punch(r)?
        };
        if !punched {
            self.pieces(r.start, r.len() as usize, |piece, _| {
                self.with_slice_mut(piece, |s| s.fill(0))
            })?;
        }
        Ok(())
    }

    /// Punches a hole over `r`; false if the file system cannot.
    pub(crate) fn punch(&self, r: FileRange) -> Result<bool> {
        let punched = nix::fcntl::fallocate(
            &self.file,
            FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE,
            r.start as libc::off_t,
            r.len() as libc::off_t,
        );
        match punched {
            Ok(()) => Ok(true),
            Err(nix::Error::EOPNOTSUPP) => Ok(false),
            Err(e) => Err(sys("fallocate(PUNCH_HOLE)")(e)),
        }
    }

    /// The mapped address of file offset `at` and the bytes of its chunk
    /// from there on.
    pub(crate) fn chunk_ptr(&self, at: u64) -> Result<(*mut u8, u64)> {
        let c = self.opts.chunk_size;
        let chunks = read(&self.chunks);
        let map = chunks.get((at / c) as usize).ok_or(Error::BadRange {
            start: at,
            end: at,
            why: "beyond the end of the file",
        })?;
        let off = at % c;
        // SAFETY: `off < c == map.len()`, so the pointer stays inside the
        // mapping; computing it dereferences nothing.
        let ptr = unsafe { map.as_mut_ptr().add(off as usize) };
        Ok((ptr, c - off))
    }

    /// The mapped bytes of `r`, which must lie inside one chunk.
    fn span(&self, r: FileRange) -> Result<*mut u8> {
        if r.start > r.end {
            return Err(bad(r, "start after end"));
        }
        let (ptr, avail) = self.chunk_ptr(r.start)?;
        if r.len() > avail {
            return Err(bad(r, "crosses a chunk boundary or the end of the file"));
        }
        Ok(ptr)
    }

    /// Waits until the pages of `r` are restored (at once unless a
    /// background restore is running); an error if they failed to load.
    pub fn await_range(&self, r: FileRange) -> Result<()> {
        match self.background.get() {
            Some(b) if !b.restore.all_loaded() => b.restore.await_range(r),
            _ => Ok(()),
        }
    }

    /// Waits until a background restore is complete; the first error if
    /// any pages failed to load.
    pub fn await_all(&self) -> Result<()> {
        match self.background.get() {
            Some(b) => b.restore.await_all(),
            None => Ok(()),
        }
    }

    /// Progress of the background restore, if this file was loaded in the
    /// background.
    pub fn restore_progress(&self) -> Option<crate::RestoreProgress> {
        self.background.get().map(|b| b.restore.progress())
    }

    /// Runs `f` once the background restore is done (at once if it is, or
    /// if there is none): from then on the pages file is no longer open
    /// and may be deleted.
    pub fn on_restore_complete(
        &self,
        f: impl FnOnce(std::result::Result<(), &Error>) + Send + 'static,
    ) {
        match self.background.get() {
            Some(b) => b.restore.on_complete(Box::new(f)),
            None => f(Ok(())),
        }
    }

    /// The reads of the background restore so far, in order: memory
    /// offset, length, and whether a waiting access read it itself.
    pub fn restore_read_order(&self) -> Vec<(u64, u64, bool)> {
        self.background
            .get()
            .map(|b| b.restore.read_order())
            .unwrap_or_default()
    }

    /// The base address of each chunk's mapping.
    pub(crate) fn chunk_bases(&self) -> Vec<usize> {
        read(&self.chunks)
            .iter()
            .map(|m| m.as_mut_ptr() as usize)
            .collect()
    }

    /// Runs `f` on the bytes of `r` (inside one chunk; no allocation
    /// crosses one), once they are restored. Accesses are not checked
    /// against the allocated ranges: bytes outside them may be read and
    /// written, but they are not saved, and a write there can be seen by
    /// whoever is allocated that range next. Writers wait until `f`
    /// returns; `f` must not call back into this `MemoryFile`.
    pub fn with_slice<T>(&self, r: FileRange, f: impl FnOnce(&[u8]) -> T) -> Result<T> {
        let ptr = self.span(r)?;
        self.await_range(r)?;
        let _shared = read(&self.access);
        // SAFETY: `ptr..ptr + len` is inside a mapping that lives as long
        // as `self` (mappings are never removed before drop). Every safe
        // writer of mapped bytes holds `access` exclusively, so nothing
        // writes these bytes while the shared guard lives.
        let s = unsafe { std::slice::from_raw_parts(ptr, r.len() as usize) };
        Ok(f(s))
    }

    /// Runs `f` on the bytes of `r` for writing, alone (every other access
    /// waits), once they are restored; `f` must not call back into this
    /// `MemoryFile`.
    pub fn with_slice_mut<T>(&self, r: FileRange, f: impl FnOnce(&mut [u8]) -> T) -> Result<T> {
        let ptr = self.span(r)?;
        self.await_range(r)?;
        let mut alone = write(&self.access);
        alone.mark(r);
        // SAFETY: as in `with_slice`, and the exclusive guard means no other
        // safe reference to mapped bytes exists while `f` runs.
        let s = unsafe { std::slice::from_raw_parts_mut(ptr, r.len() as usize) };
        Ok(f(s))
    }

    /// Calls `f(range, done)` for each piece of `at..at + len` that lies
    /// in one chunk, `done` being the bytes before the piece.
    fn pieces(
        &self,
        at: u64,
        len: usize,
        mut f: impl FnMut(FileRange, usize) -> Result<()>,
    ) -> Result<()> {
        let mut done = 0;
        while done < len {
            let start = at + done as u64;
            let (_, avail) = self.chunk_ptr(start)?;
            let n = (avail as usize).min(len - done);
            f(
                FileRange {
                    start,
                    end: start + n as u64,
                },
                done,
            )?;
            done += n;
        }
        Ok(())
    }

    /// Copies bytes from file offset `at` into `buf` (across chunks).
    pub fn read_at(&self, at: u64, buf: &mut [u8]) -> Result<()> {
        self.pieces(at, buf.len(), |r, done| {
            let n = r.len() as usize;
            self.with_slice(r, |s| buf[done..done + n].copy_from_slice(s))
        })
    }

    /// Copies `data` to file offset `at` (across chunks).
    pub fn write_at(&self, at: u64, data: &[u8]) -> Result<()> {
        self.pieces(at, data.len(), |r, done| {
            let n = r.len() as usize;
            self.with_slice_mut(r, |s| s.copy_from_slice(&data[done..done + n]))
        })
    }

    /// The raw address of `r`'s bytes (inside one chunk).
    ///
    /// # Safety
    ///
    /// The pointer is valid for `r.len()` bytes while `self` lives. The
    /// caller must not create references that alias bytes another thread
    /// writes, and must not write bytes that safe readers (`with_slice`,
    /// `read_at`) may be reading: it takes over the synchronization that
    /// the safe methods do with their lock. During a background restore it
    /// must call [`MemoryFile::await_range`] before touching the bytes.
    ///
    /// Writes through the pointer are tracked for incremental saves by the
    /// kernel where it can ([`Tracking::Auto`]); otherwise, from the first
    /// call on, every page holding data counts as changed
    /// ([`TrackingMethod::Untracked`]).
    pub unsafe fn raw_ptr(&self, r: FileRange) -> Result<*mut u8> {
        // Other callers wait here until every page is protected, so no raw
        // write can slip in before its page is.
        self.raw_init.get_or_init(|| {
            self.raw.store(true, std::sync::atomic::Ordering::SeqCst);
            self.protect_all().map_err(|e| e.to_string())
        });
        self.span(r)
    }

    /// Write-protects every page, if the kernel tracks writes.
    fn protect_all(&self) -> Result<()> {
        if let Some(t) = &self.writes {
            let c = self.opts.chunk_size;
            for base in self.chunk_bases() {
                t.protect(base, c)?;
            }
        }
        Ok(())
    }

    /// The kernel tracks writes through raw pointers: they were handed out
    /// and every page was protected first.
    pub(crate) fn tracks_raw_writes(&self) -> bool {
        self.writes.is_some() && matches!(self.raw_init.get(), Some(Ok(())))
    }

    /// Takes the pages changed since the last checkpoint (written or freed
    /// through the API, and written through the mappings where the kernel
    /// tracks them; the latter are write-protected again), and how they
    /// were found. [`Self::untake`] puts them back if the save fails.
    pub(crate) fn take_changes(&self) -> Result<(Vec<FileRange>, TrackingMethod)> {
        let api = write(&self.access).take();
        let raw = self.raw.load(std::sync::atomic::Ordering::SeqCst);
        let t = match &self.writes {
            Some(t) if self.tracks_raw_writes() => t,
            _ if raw => return Ok((api, TrackingMethod::Untracked)),
            _ => return Ok((api, TrackingMethod::Api)),
        };
        let mut written = Vec::new();
        let c = self.opts.chunk_size;
        for (i, base) in self.chunk_bases().into_iter().enumerate() {
            let taken = t.take_written(base, c, &mut written, i as u64 * c);
            if let Err(e) = taken {
                write(&self.access).mark_all(&api);
                return Err(Error::Io(std::io::Error::new(
                    e.kind(),
                    format!("reading written pages (PAGEMAP_SCAN): {e}"),
                )));
            }
        }
        Ok((union(&api, &written), TrackingMethod::WriteProtect))
    }

    /// Puts back changes taken by a save that failed.
    pub(crate) fn untake(&self, changed: &[FileRange]) {
        write(&self.access).mark_all(changed);
    }

    /// Starts tracking afresh from a checkpoint just loaded: nothing has
    /// changed since it (the load's own writes are not changes).
    pub(crate) fn track_from(&self, lineage: Lineage) -> Result<()> {
        write(&self.access).take();
        if self.tracks_raw_writes() {
            self.protect_all()?;
        }
        lock(&self.state).last = Some(lineage);
        Ok(())
    }

    /// Holds off every safe access while `f` runs with shared access to
    /// all mapped bytes (used by `save_to`, which reads them in place
    /// through [`SharedAccess::bytes`]).
    pub(crate) fn shared_access<T>(&self, f: impl FnOnce(&SharedAccess<'_>) -> T) -> T {
        let access = SharedAccess {
            _guard: read(&self.access),
            file: self,
        };
        f(&access)
    }
}
