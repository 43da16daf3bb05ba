//! `save_to`: the zero-page scan, the metadata graph and the page blocks.

use std::io::{IoSlice, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::unistd::Whence;

use crate::error::{sys, Error, Result};
use crate::file::{
    intersect_with, union, FileRange, Lineage, MemoryFile, MemoryKind, SharedAccess, Tracking,
    TrackingMethod, Usage, HUGE_PAGE_SIZE, PAGE_SIZE,
};

/// Options of [`MemoryFile::save_to`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SaveOpts {
    /// Also leave out committed pages that hold only zeros (they come back
    /// as uncommitted zero pages). Without it, only pages *not known*
    /// committed that turn out zero are left out (and decommitted again).
    pub exclude_committed_zero_pages: bool,
    /// Threads scanning for zero pages before an inline save (0: one per
    /// core). With a pages file one thread scans while the caller writes.
    pub threads: usize,
    /// Record no page digests: a load of this save cannot verify its pages
    /// (its `LoadStats::verified` is false). For measurements.
    pub skip_digests: bool,
    /// Save only the pages changed since this file's last checkpoint (the
    /// last save, or the checkpoint it was loaded from): a *delta* whose
    /// metadata names that checkpoint as its parent. Pages freed or zeroed
    /// since are recorded as such, not written. Needs a pages file, change
    /// tracking ([`Tracking`]) and a last checkpoint; load the chain with
    /// [`MemoryFile::load_chain`].
    pub incremental: bool,
}

/// What a save did (the figures gVisor logs).
#[derive(Clone, Copy, Debug, Default)]
pub struct SaveStats {
    /// Bytes allocated when the save started.
    pub allocated_bytes: u64,
    /// Bytes holding data (committed) that the zero scan read.
    pub bytes_scanned: u64,
    /// Of those, bytes in all-zero pages.
    pub zero_bytes: u64,
    /// Bytes decommitted after the scan (zero pages not known committed).
    pub decommitted_bytes: u64,
    /// `fallocate` calls used to decommit them.
    pub decommit_syscalls: u64,
    /// Page bytes written (inline or to the pages file).
    pub bytes_written: u64,
    /// Page blocks written.
    pub blocks: u64,
    /// Time in the zero scan (and decommit). With a pages file the scan
    /// overlaps the writing of the pages.
    pub scan_time: Duration,
    /// Time writing the metadata graph.
    pub meta_time: Duration,
    /// Time writing the page blocks (with a pages file: scan and writes,
    /// which overlap).
    pub pages_time: Duration,
    /// How the changed pages of an incremental save were found
    /// ([`TrackingMethod::Full`] for a full save).
    pub tracking: TrackingMethod,
    /// Bytes of allocated memory the save took as changed (all of it for a
    /// full save).
    pub changed_bytes: u64,
    /// 0 for a full checkpoint; a delta's depth in its chain (1 on a full
    /// checkpoint).
    pub layer: u64,
    /// BLAKE3 of the metadata record written: the name a delta saved next
    /// gives its parent.
    pub digest: [u8; 32],
    /// Time taking the changes since the last checkpoint (and, with raw
    /// pointers out, reading and re-arming the kernel's write-protection).
    pub tracking_time: Duration,
}

/// The metadata graph of a saved memory file.
#[derive(Debug, stateify::Stateify)]
pub(crate) struct SavedFile {
    pub chunk_size: u64,
    pub file_size: u64,
    pub segments: Vec<SavedSegment>,
    /// The saved byte ranges, in file order; each inside one chunk.
    pub blocks: Vec<SavedBlock>,
    /// A random id shared with the pages file's header: a pages file of
    /// another checkpoint is refused before any page is read. 0: saved
    /// before ids existed (no header), or inline.
    #[state(default)]
    pub checkpoint_id: u128,
    /// The pages file's length, header included (0 when there is none).
    #[state(default)]
    pub pages_len: u64,
    /// The bytes each digest covers (0: 256 KiB, the size before it was
    /// recorded).
    #[state(default)]
    pub piece_size: u64,
    /// BLAKE3 of every piece of every block, 32 bytes each, in block
    /// order: a block's pieces are its `piece_size`-byte parts from its start
    /// (the last may be shorter). Empty: written without digests, or
    /// before they existed (the pages cannot be verified).
    #[state(default)]
    pub digests: Vec<u8>,
    /// A delta's parent: BLAKE3 of the parent's metadata record (32 bytes).
    /// Empty: a full checkpoint.
    #[state(default)]
    pub parent: Vec<u8>,
    /// 0: a full checkpoint; a delta's depth in its chain.
    #[state(default)]
    pub layer: u64,
    /// A delta's changed memory, sorted and disjoint: its pages read as the
    /// delta's blocks, or zeros where no block covers them. Every other
    /// page reads as in the parent.
    #[state(default)]
    pub changed: Vec<SavedBlock>,
    /// A full checkpoint made by squashing a chain: the digest of the
    /// chain's newest layer, which deltas saved on that layer name as their
    /// parent (32 bytes). Empty otherwise.
    #[state(default)]
    pub squashed: Vec<u8>,
}

/// The bytes each digest of a new save covers: the unit a background
/// restore loads and verifies at once, and what an access that finds its
/// pages not yet loaded reads and hashes before it goes on (64 KiB: about
/// 10 µs of hashing).
pub(crate) const PIECE: u64 = 64 << 10;

/// The piece size of saves that recorded digests without a size.
pub(crate) const LEGACY_PIECE: u64 = 256 << 10;

impl SavedFile {
    /// Whether every page block can be checked against a digest: the save
    /// recorded them (checkpoints from before digests did not), or there
    /// is no block to check (all memory zero or never touched).
    pub(crate) fn has_digests(&self) -> bool {
        !self.digests.is_empty() || self.blocks.is_empty()
    }

    /// A delta's changed memory as ranges (empty for a full checkpoint).
    pub(crate) fn changed_ranges(&self) -> Vec<FileRange> {
        self.changed
            .iter()
            .map(|c| FileRange {
                start: c.start,
                end: c.start + c.len,
            })
            .collect()
    }

    /// The bytes each digest covers.
    pub(crate) fn piece(&self) -> u64 {
        if self.piece_size == 0 {
            LEGACY_PIECE
        } else {
            self.piece_size
        }
    }
}

/// Digest length.
pub(crate) const DIGEST: usize = 32;

/// The first bytes of a pages file (format of docs/FORMAT.md §8).
pub const PAGES_MAGIC: [u8; 8] = *b"\x89SPAGE\r\n";

/// The pages file header's length: the page data after it stays
/// page-aligned (for `O_DIRECT`).
pub const PAGES_HEADER: u64 = PAGE_SIZE;

/// The pages file header version of a full checkpoint.
pub(crate) const FULL_PAGES: u32 = 1;
/// The pages file header version of a delta: a reader from before deltas
/// refuses it instead of loading it as a whole memory.
pub(crate) const DELTA_PAGES: u32 = 2;

/// The header of a pages file: magic, format version, the checkpoint id,
/// zeros to a page.
pub(crate) fn pages_header(id: u128, version: u32) -> Vec<u8> {
    let mut h = vec![0u8; PAGES_HEADER as usize];
    h[..8].copy_from_slice(&PAGES_MAGIC);
    h[8..12].copy_from_slice(&version.to_le_bytes());
    h[16..32].copy_from_slice(&id.to_le_bytes());
    h
}

/// The checkpoint id in a pages file header (its first `PAGES_HEADER`
/// bytes), or why it is not one.
pub fn read_pages_header(h: &[u8]) -> std::result::Result<u128, String> {
    parse_pages_header(h).map(|(_, id)| id)
}

/// The version (1: full, 2: delta) and checkpoint id of a pages file header.
pub(crate) fn parse_pages_header(h: &[u8]) -> std::result::Result<(u32, u128), String> {
    if h.len() < 32 || h[..8] != PAGES_MAGIC {
        return Err(
            "no pages file header (written before checkpoint ids, or not a pages file)".into(),
        );
    }
    let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if version != FULL_PAGES && version != DELTA_PAGES {
        return Err(format!(
            "pages file header version {version} is not supported"
        ));
    }
    if h.len() < PAGES_HEADER as usize
        || h[12..16]
            .iter()
            .chain(&h[32..PAGES_HEADER as usize])
            .any(|&b| b != 0)
    {
        return Err(
            "damaged pages file header (its reserved bytes are not zero, or it is cut short)"
                .into(),
        );
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&h[16..32]);
    Ok((version, u128::from_le_bytes(id)))
}

/// A new random checkpoint id (never 0).
fn new_checkpoint_id() -> Result<u128> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| {
        Error::Io(std::io::Error::other(format!(
            "no random checkpoint id: {e}"
        )))
    })?;
    Ok(u128::from_le_bytes(b).max(1))
}

/// Pieces of `piece` bytes of a block of `len` bytes.
pub(crate) fn pieces(len: u64, piece: u64) -> usize {
    len.div_ceil(piece) as usize
}

/// Appends the digest of every `piece`-byte part of `bytes` (one block) to
/// `out`.
pub(crate) fn digest_pieces(bytes: &[u8], piece: u64, out: &mut Vec<u8>) {
    for piece in bytes.chunks(piece as usize) {
        out.extend_from_slice(blake3::hash(piece).as_bytes());
    }
}

#[derive(Debug, stateify::Stateify)]
pub(crate) struct SavedSegment {
    pub start: u64,
    pub end: u64,
    pub kind: MemoryKind,
    pub memcg: u32,
    pub refs: u64,
    pub committed: bool,
}

#[derive(Clone, Copy, Debug, stateify::Stateify)]
pub(crate) struct SavedBlock {
    pub start: u64,
    pub len: u64,
}

/// Whether a page holds only zeros: a branch-free OR over its 8-byte words
/// (the compiler turns it into vector ORs), at memory-read speed.
pub(crate) fn page_is_zero(page: &[u8]) -> bool {
    let mut words = page.chunks_exact(8);
    let mut acc = 0u64;
    for w in &mut words {
        acc |= u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
    }
    acc == 0 && words.remainder().iter().all(|&b| b == 0)
}

/// Largest page block: blocks are cut here so that writing can start while
/// the scan goes on.
pub(crate) const MAX_BLOCK: u64 = 8 << 20;

/// Pieces per vectored write (Linux's `IOV_MAX` is 1024).
const IOV_BLOCKS: usize = 1024;

/// Bytes per scan job (the unit of parallel scanning).
const SCAN_JOB: u64 = 64 << 20;

/// A piece of data to scan for zero pages, inside one chunk.
struct ScanJob {
    range: FileRange,
    /// The segment is known committed (zero pages are kept, not decommitted).
    committed: bool,
}

/// What the scan of one job found.
#[derive(Default)]
struct Scanned {
    bytes_scanned: u64,
    zero_bytes: u64,
    blocks: Vec<FileRange>,
    /// The blocks' piece digests (see `SavedFile::digests`).
    digests: Vec<u8>,
    decommit: Vec<FileRange>,
}

/// Scanned bytes the scanner hands to the writer at once (or less, at the
/// end).
const SEND_BATCH: u64 = 4 << 20;

impl Scanned {
    /// Appends what a later job found.
    fn merge(&mut self, other: Scanned) {
        self.bytes_scanned += other.bytes_scanned;
        self.zero_bytes += other.zero_bytes;
        self.blocks.extend(other.blocks);
        self.digests.extend(other.digests);
        self.decommit.extend(other.decommit);
    }
}

fn opts_threads(opts: &SaveOpts) -> usize {
    if opts.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        opts.threads
    }
}

/// Appends `r` to a list of ranges, extending the last one if they touch
/// and `join` allows.
fn push_run(runs: &mut Vec<FileRange>, r: FileRange, join: impl Fn(&FileRange) -> bool) {
    match runs.last_mut() {
        Some(last) if last.end == r.start && join(last) => last.end = r.end,
        _ => runs.push(r),
    }
}

impl MemoryFile {
    /// The runs of `r` that hold data (committed or swapped pages), by
    /// `lseek(SEEK_DATA / SEEK_HOLE)`: holes are never read, so the scan
    /// commits nothing new.
    fn data_runs(&self, r: FileRange, out: &mut Vec<FileRange>) -> Result<()> {
        let mut at = r.start;
        while at < r.end {
            let data = match nix::unistd::lseek(&self.file, at as i64, Whence::SeekData) {
                Ok(d) => d as u64,
                Err(nix::Error::ENXIO) => break,
                Err(e) => return Err(sys("lseek(SEEK_DATA)")(e)),
            };
            if data >= r.end {
                break;
            }
            let hole = nix::unistd::lseek(&self.file, data as i64, Whence::SeekHole)
                .map_err(sys("lseek(SEEK_HOLE)"))? as u64;
            let end = hole.min(r.end);
            out.push(FileRange {
                start: data - data % PAGE_SIZE,
                end: end.div_ceil(PAGE_SIZE) * PAGE_SIZE,
            });
            at = end;
        }
        Ok(())
    }

    /// Cuts the data of `segments` (sorted ranges) into scan jobs: data
    /// runs (found with `lseek`, so holes are never read), split at chunk
    /// boundaries and every `SCAN_JOB` bytes. The cut depends only on the
    /// file, so the blocks a save writes do not depend on how many threads
    /// scanned.
    ///
    /// A delta's changed pages (`find_data` false) are scanned as they are:
    /// they were written since the last checkpoint, so they hold data but
    /// for the rare page freed and allocated again unwritten, which the
    /// scan finds zero and decommits again. A pass of `lseek` over a whole
    /// 2 GiB file costs more than the delta.
    fn scan_jobs(&self, segments: &[(FileRange, Usage)], find_data: bool) -> Result<Vec<ScanJob>> {
        // What holds data, with whether its segment is known committed.
        let runs: Vec<(FileRange, bool)> = match (find_data, segments.first(), segments.last()) {
            (false, ..) => segments.iter().map(|(r, u)| (*r, u.committed)).collect(),
            (true, Some(first), Some(last)) => {
                // One pass over the file: `SEEK_HOLE` walks the page cache
                // up to the next hole, so asking per segment (or per changed
                // range of a delta) walked the same data again for each (a
                // delta of 655 pages of a full 256 MiB file took 0.9 s).
                let mut all = Vec::new();
                self.data_runs(
                    FileRange {
                        start: first.0.start,
                        end: last.0.end,
                    },
                    &mut all,
                )?;
                let committed: Vec<(FileRange, bool)> =
                    segments.iter().map(|(r, u)| (*r, u.committed)).collect();
                intersect_with(&committed, &all)
            }
            _ => Vec::new(),
        };
        let c = self.opts.chunk_size;
        let mut jobs = Vec::new();
        for (run, committed) in runs {
            let mut at = run.start;
            while at < run.end {
                let end = run.end.min((at / c + 1) * c).min(at + SCAN_JOB);
                jobs.push(ScanJob {
                    range: FileRange { start: at, end },
                    committed,
                });
                at = end;
            }
        }
        Ok(jobs)
    }

    /// Scans one job's pages for zeros: page blocks to save (each at most
    /// `MAX_BLOCK` bytes) and zero pages to decommit (those not known
    /// committed; batched, never across a huge page).
    fn scan_job(
        &self,
        access: &SharedAccess<'_>,
        job: &ScanJob,
        opts: &SaveOpts,
    ) -> Result<Scanned> {
        let mut out = Scanned {
            bytes_scanned: job.range.len(),
            ..Scanned::default()
        };
        // A job lies inside one chunk's mapping.
        let bytes = access.bytes(job.range)?;
        for (i, page) in bytes.chunks_exact(PAGE_SIZE as usize).enumerate() {
            let start = job.range.start + i as u64 * PAGE_SIZE;
            let p = FileRange {
                start,
                end: start + PAGE_SIZE,
            };
            if page_is_zero(page) {
                out.zero_bytes += PAGE_SIZE;
                if !job.committed {
                    push_run(&mut out.decommit, p, |l| {
                        l.start / HUGE_PAGE_SIZE == p.start / HUGE_PAGE_SIZE
                    });
                    continue;
                }
                if opts.exclude_committed_zero_pages {
                    continue;
                }
            }
            push_run(&mut out.blocks, p, |l| l.len() < MAX_BLOCK);
        }
        if !opts.skip_digests {
            // Hashed here, on the scanning threads, while the bytes are
            // fresh in the cache and the caller writes earlier blocks.
            for b in &out.blocks {
                let at = (b.start - job.range.start) as usize;
                digest_pieces(&bytes[at..at + b.len() as usize], PIECE, &mut out.digests);
            }
        }
        Ok(out)
    }

    /// Writes the bytes of `blocks` with vectored writes (a block of data
    /// pages between zero runs is often one 64 KiB piece: a syscall each
    /// would cost more than the copy), each preceded by its raw record
    /// header if `records`.
    fn write_blocks(
        access: &SharedAccess<'_>,
        out: &mut dyn Write,
        blocks: &[FileRange],
        records: bool,
    ) -> Result<()> {
        let mut headers = Vec::with_capacity(if records { blocks.len() } else { 0 });
        if records {
            for b in blocks {
                let mut h = Vec::with_capacity(10);
                stateify::write_header(&mut h, b.len(), false)?;
                headers.push(h);
            }
        }
        let mut iov = Vec::with_capacity(blocks.len() * 2);
        for (i, b) in blocks.iter().enumerate() {
            if let Some(h) = headers.get(i) {
                iov.push(IoSlice::new(h));
            }
            iov.push(IoSlice::new(access.bytes(*b)?));
        }
        let mut rest = &mut iov[..];
        while !rest.is_empty() {
            let n = rest.len().min(IOV_BLOCKS);
            match out.write_vectored(&rest[..n]) {
                Ok(0) => return Err(Error::Io(std::io::ErrorKind::WriteZero.into())),
                Ok(written) => IoSlice::advance_slices(&mut rest, written),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Runs every job on `threads` threads; results in job order.
    fn scan_parallel(
        &self,
        access: &SharedAccess<'_>,
        jobs: &[ScanJob],
        opts: &SaveOpts,
        threads: usize,
    ) -> Result<Vec<Scanned>> {
        let next = AtomicUsize::new(0);
        let work = || -> Result<Vec<(usize, Scanned)>> {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else {
                    return Ok(done);
                };
                done.push((i, self.scan_job(access, job, opts)?));
            }
        };
        let threads = threads.clamp(1, jobs.len().max(1));
        let parts = std::thread::scope(|s| {
            let helpers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
            let mut parts = vec![work()];
            for h in helpers {
                parts.push(h.join().unwrap_or_else(|_| {
                    Err(Error::Io(std::io::Error::other(
                        "a zero-scan thread panicked",
                    )))
                }));
            }
            parts
        });
        let mut all = Vec::with_capacity(jobs.len());
        for part in parts {
            all.extend(part?);
        }
        all.sort_unstable_by_key(|(i, _)| *i);
        Ok(all.into_iter().map(|(_, s)| s).collect())
    }

    /// Saves the memory file: the metadata graph on `meta`, then the page
    /// blocks as raw records on `meta` (`pages` = `None`) or concatenated
    /// into `pages`. Allocation and writes wait until the save is done.
    ///
    /// With a pages file, the zero scan runs on a second thread and blocks
    /// are written as it finds them; the metadata graph (which lists them)
    /// follows on `meta` at the end. Inline, the graph must come first, so
    /// the scan finishes before anything is written.
    ///
    /// With [`SaveOpts::incremental`] only the pages changed since the
    /// file's last checkpoint are scanned and written (see there). Either
    /// way, from a successful save on, changes are counted from it; a
    /// failed save loses no change.
    pub fn save_to<W: Write>(
        &self,
        meta: W,
        pages: Option<&mut (dyn Write + Send)>,
        opts: &SaveOpts,
    ) -> Result<SaveStats> {
        // A file still being restored is saved once every page is in.
        self.await_all()?;
        let tracking = self.opts.tracking;
        if opts.incremental {
            let why = if pages.is_none() {
                Some("an incremental save needs a pages file")
            } else if tracking == Tracking::Off {
                Some("an incremental save needs change tracking (this file has Tracking::Off)")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(Error::InvalidArgument(why.into()));
            }
        }
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let parent = match (opts.incremental, st.last) {
            (false, _) => None,
            (true, Some(last)) => Some(last),
            (true, None) => {
                return Err(Error::InvalidArgument(
                    "no checkpoint to save changes against: this file was neither saved nor loaded in full yet".into(),
                ))
            }
        };
        let t = Instant::now();
        let (taken, method) = if tracking == Tracking::Off {
            (Vec::new(), TrackingMethod::Full)
        } else {
            self.take_changes()?
        };
        let tracking_time = t.elapsed();
        let mut saved = self.save_locked(
            &st,
            meta,
            pages,
            opts,
            parent.map(|p| (p, &taken[..], method)),
            None,
        );
        match &mut saved {
            Ok(stats) => {
                stats.tracking_time = tracking_time;
                st.last = Some(Lineage {
                    digest: stats.digest,
                    layer: stats.layer,
                })
            }
            Err(_) => self.untake(&taken),
        }
        saved
    }

    /// A full save that stands for the chain layer this file was loaded
    /// from (its digest recorded as `squashed`): deltas on that layer chain
    /// onto it.
    pub(crate) fn save_squashed<W: Write>(
        &self,
        meta: W,
        pages: &mut (dyn Write + Send),
        opts: &SaveOpts,
    ) -> Result<SaveStats> {
        self.await_all()?;
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let top = st.last.ok_or_else(|| {
            Error::InvalidArgument("squash: the file was not loaded from a checkpoint".into())
        })?;
        self.save_locked(&st, meta, Some(pages), opts, None, Some(top.digest))
    }

    /// `save_to` with the state locked; `delta`: the parent, the pages
    /// changed since it, and how they were found.
    fn save_locked<W: Write>(
        &self,
        st: &crate::file::State,
        mut meta: W,
        pages: Option<&mut (dyn Write + Send)>,
        opts: &SaveOpts,
        delta: Option<(Lineage, &[FileRange], TrackingMethod)>,
        squashed: Option<[u8; 32]>,
    ) -> Result<SaveStats> {
        let segments: Vec<(FileRange, Usage)> = st
            .usage
            .iter()
            .map(|(r, u)| {
                (
                    FileRange {
                        start: r.start,
                        end: r.end,
                    },
                    *u,
                )
            })
            .collect();
        let inline = pages.is_none();
        let checkpoint_id = if inline { 0 } else { new_checkpoint_id()? };
        // What to scan: everything, or a delta's changed pages.
        let (changed, to_scan) = match delta {
            None => (Vec::new(), segments.clone()),
            Some((_, taken, method)) => {
                // Freed pages stay in: a later allocation of them must
                // not see the parent's bytes.
                let changed = if method == TrackingMethod::Untracked {
                    let allocated: Vec<FileRange> = segments.iter().map(|(r, _)| *r).collect();
                    union(taken, &allocated)
                } else {
                    taken.to_vec()
                };
                let to_scan = intersect_with(&segments, &changed);
                (changed, to_scan)
            }
        };
        self.shared_access(|access| {
            let mut stats = SaveStats::default();
            let mut decommit = Vec::new();
            let mut blocks = Vec::new();
            let mut digests = Vec::new();
            stats.allocated_bytes = segments.iter().map(|(r, _)| r.len()).sum();
            stats.changed_bytes = to_scan.iter().map(|(r, _)| r.len()).sum();
            stats.tracking = delta.map_or(TrackingMethod::Full, |d| d.2);
            let t = Instant::now();
            let jobs = self.scan_jobs(&to_scan, delta.is_none())?;
            let tally = |sc: &Scanned, stats: &mut SaveStats, decommit: &mut Vec<FileRange>| {
                stats.bytes_scanned += sc.bytes_scanned;
                stats.zero_bytes += sc.zero_bytes;
                decommit.extend_from_slice(&sc.decommit);
            };
            match pages {
                None => {
                    // Nothing can be written before the graph, which lists
                    // every block: scan on every core first.
                    for sc in self.scan_parallel(access, &jobs, opts, opts_threads(opts))? {
                        tally(&sc, &mut stats, &mut decommit);
                        blocks.extend_from_slice(&sc.blocks);
                        digests.extend_from_slice(&sc.digests);
                    }
                    stats.scan_time = t.elapsed();
                }
                Some(out) => {
                    let version = if delta.is_some() {
                        DELTA_PAGES
                    } else {
                        FULL_PAGES
                    };
                    out.write_all(&pages_header(checkpoint_id, version))?;
                    // One thread scans while this one writes what it found.
                    let (tx, rx) = std::sync::mpsc::sync_channel::<Scanned>(2);
                    let scanned = std::thread::scope(|s| {
                        let scanner = s.spawn(|| {
                            let t = Instant::now();
                            // Small jobs (a delta's scattered pages) go
                            // over in batches: a hand-off per page cost
                            // more than its scan.
                            let mut batch = Scanned::default();
                            for (i, job) in jobs.iter().enumerate() {
                                batch.merge(self.scan_job(access, job, opts)?);
                                if batch.bytes_scanned < SEND_BATCH && i + 1 < jobs.len() {
                                    continue;
                                }
                                // The writer hung up: it has the error.
                                if tx.send(std::mem::take(&mut batch)).is_err() {
                                    break;
                                }
                            }
                            drop(tx);
                            Ok::<_, Error>(t.elapsed())
                        });
                        let written = (|| -> Result<()> {
                            for sc in rx {
                                Self::write_blocks(access, &mut *out, &sc.blocks, false)?;
                                tally(&sc, &mut stats, &mut decommit);
                                blocks.extend_from_slice(&sc.blocks);
                                digests.extend_from_slice(&sc.digests);
                            }
                            out.flush()?;
                            Ok(())
                        })();
                        let scanned = scanner.join().unwrap_or_else(|_| {
                            Err(Error::Io(std::io::Error::other("the zero scan panicked")))
                        });
                        // A write error explains a scanner stopped by it.
                        written.and(scanned)
                    })?;
                    stats.scan_time = scanned;
                    stats.pages_time = t.elapsed();
                }
            }
            let t = Instant::now();
            for r in &decommit {
                stats.decommit_syscalls += 1;
                if self.punch(*r)? {
                    stats.decommitted_bytes += r.len();
                }
            }
            stats.scan_time += t.elapsed();

            let t = Instant::now();
            let saved = SavedFile {
                chunk_size: self.opts.chunk_size,
                file_size: st.file_size,
                segments: segments
                    .iter()
                    .map(|(r, u)| SavedSegment {
                        start: r.start,
                        end: r.end,
                        kind: u.kind,
                        memcg: u.memcg,
                        refs: u.refs,
                        committed: u.committed,
                    })
                    .collect(),
                blocks: blocks
                    .iter()
                    .map(|b| SavedBlock {
                        start: b.start,
                        len: b.len(),
                    })
                    .collect(),
                checkpoint_id,
                piece_size: PIECE,
                pages_len: if inline {
                    0
                } else {
                    PAGES_HEADER + blocks.iter().map(|b| b.len()).sum::<u64>()
                },
                digests,
                parent: delta.map_or_else(Vec::new, |(p, _, _)| p.digest.to_vec()),
                layer: delta.map_or(0, |(p, _, _)| p.layer + 1),
                changed: changed
                    .iter()
                    .map(|r| SavedBlock {
                        start: r.start,
                        len: r.len(),
                    })
                    .collect(),
                squashed: squashed.map_or_else(Vec::new, |d| d.to_vec()),
            };
            // Written whole, so that its digest names it.
            let mut record = Vec::new();
            stateify::save(&mut record, &saved)?;
            stats.digest = *blake3::hash(&record).as_bytes();
            stats.layer = saved.layer;
            meta.write_all(&record)?;
            stats.meta_time = t.elapsed();
            stats.blocks = blocks.len() as u64;
            stats.bytes_written = blocks.iter().map(|b| b.len()).sum();
            if inline {
                let t = Instant::now();
                for group in blocks.chunks(IOV_BLOCKS / 2) {
                    Self::write_blocks(access, &mut meta, group, true)?;
                }
                stats.pages_time = t.elapsed();
            }
            meta.flush()?;
            Ok::<_, Error>(stats)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_pages_are_found_wherever_the_nonzero_byte_is() {
        let mut page = vec![0u8; PAGE_SIZE as usize];
        assert!(page_is_zero(&page));
        for i in [0, 7, 8, 2047, 4095] {
            page[i] = 1;
            assert!(!page_is_zero(&page), "byte {i}");
            page[i] = 0;
        }
        // Unaligned slices: the bytes before and after the aligned words.
        let mut buf = vec![0u8; PAGE_SIZE as usize + 64];
        for start in 1..17 {
            let end = start + PAGE_SIZE as usize - 3;
            assert!(page_is_zero(&buf[start..end]));
            for i in [start, start + 1, end - 1] {
                buf[i] = 0x80;
                assert!(!page_is_zero(&buf[start..end]), "{start} {i}");
                buf[i] = 0;
            }
        }
    }
}
