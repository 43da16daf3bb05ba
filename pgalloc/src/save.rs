//! `save_to`: the zero-page scan, the metadata graph and the page blocks.

use std::io::Write;
use std::time::{Duration, Instant};

use nix::unistd::Whence;

use crate::error::{sys, Error, Result};
use crate::file::{FileRange, MemoryFile, MemoryKind, Usage, HUGE_PAGE_SIZE, PAGE_SIZE};

/// Options of [`MemoryFile::save_to`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SaveOpts {
    /// Also leave out committed pages that hold only zeros (they come back
    /// as uncommitted zero pages). Without it, only pages *not known*
    /// committed that turn out zero are left out (and decommitted again).
    pub exclude_committed_zero_pages: bool,
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
}

/// The metadata graph of a saved memory file.
#[derive(Debug, stateify::Stateify)]
pub(crate) struct SavedFile {
    pub chunk_size: u64,
    pub file_size: u64,
    pub segments: Vec<SavedSegment>,
    /// The saved byte ranges, in file order; each inside one chunk.
    pub blocks: Vec<SavedBlock>,
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
const MAX_BLOCK: u64 = 8 << 20;

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

    /// Scans the data runs of `segments` for zero pages and hands each
    /// finished page block to `emit` (in file order, each inside one chunk,
    /// at most `MAX_BLOCK` bytes). Zero pages not known committed are
    /// collected for decommit instead, and left out.
    fn scan(
        &self,
        segments: &[(FileRange, Usage)],
        opts: &SaveOpts,
        stats: &mut SaveStats,
        decommit: &mut Vec<FileRange>,
        mut emit: impl FnMut(FileRange) -> Result<()>,
    ) -> Result<()> {
        let c = self.opts.chunk_size;
        let mut pending: Option<FileRange> = None;
        let mut runs = Vec::new();
        for (seg, u) in segments {
            stats.allocated_bytes += seg.len();
            runs.clear();
            self.data_runs(*seg, &mut runs)?;
            for run in &runs {
                stats.bytes_scanned += run.len();
                let mut at = run.start;
                while at < run.end {
                    // One chunk's piece at a time: one mapping, one slice.
                    let piece_end = run.end.min((at / c + 1) * c);
                    let piece = FileRange {
                        start: at,
                        end: piece_end,
                    };
                    // SAFETY: `piece` is inside one chunk's mapping, which
                    // lives as long as `self`; `save_to` holds the shared
                    // access guard, which keeps every safe writer out.
                    let bytes = unsafe {
                        let ptr = self.raw_ptr(piece)?;
                        std::slice::from_raw_parts(ptr, piece.len() as usize)
                    };
                    for (i, page) in bytes.chunks_exact(PAGE_SIZE as usize).enumerate() {
                        let p = FileRange {
                            start: at + i as u64 * PAGE_SIZE,
                            end: at + (i as u64 + 1) * PAGE_SIZE,
                        };
                        if page_is_zero(page) {
                            stats.zero_bytes += PAGE_SIZE;
                            if !u.committed {
                                // Batched, but never across a huge page.
                                push_run(decommit, p, |l| {
                                    l.start / HUGE_PAGE_SIZE == p.start / HUGE_PAGE_SIZE
                                });
                                continue;
                            }
                            if opts.exclude_committed_zero_pages {
                                continue;
                            }
                        }
                        match &mut pending {
                            Some(b)
                                if b.end == p.start
                                    && b.start / c == p.start / c
                                    && b.len() < MAX_BLOCK =>
                            {
                                b.end = p.end
                            }
                            _ => {
                                if let Some(done) = pending.replace(p) {
                                    emit(done)?;
                                }
                            }
                        }
                    }
                    at = piece_end;
                }
            }
        }
        if let Some(done) = pending {
            emit(done)?;
        }
        Ok(())
    }

    /// The bytes of a block (inside one chunk).
    ///
    /// # Safety
    ///
    /// The caller holds the shared access guard for as long as it uses the
    /// slice.
    unsafe fn block_bytes(&self, b: FileRange) -> Result<&[u8]> {
        let ptr = self.raw_ptr(b)?;
        // SAFETY: inside one live mapping (raw_ptr checked the chunk); no
        // safe writer runs while the caller holds the shared guard.
        Ok(unsafe { std::slice::from_raw_parts(ptr, b.len() as usize) })
    }

    /// Saves the memory file: the metadata graph on `meta`, then the page
    /// blocks as raw records on `meta` (`pages` = `None`) or concatenated
    /// into `pages`. Allocation and writes wait until the save is done.
    ///
    /// With a pages file, the zero scan runs on a second thread and blocks
    /// are written as it finds them; the metadata graph (which lists them)
    /// follows on `meta` at the end. Inline, the graph must come first, so
    /// the scan finishes before anything is written.
    pub fn save_to<W: Write>(
        &self,
        mut meta: W,
        pages: Option<&mut (dyn Write + Send)>,
        opts: &SaveOpts,
    ) -> Result<SaveStats> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
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
        self.shared_access(|| {
            let mut stats = SaveStats::default();
            let mut decommit = Vec::new();
            let mut blocks = Vec::new();
            let t = Instant::now();
            match pages {
                None => {
                    self.scan(&segments, opts, &mut stats, &mut decommit, |b| {
                        blocks.push(b);
                        Ok(())
                    })?;
                    stats.scan_time = t.elapsed();
                }
                Some(out) => {
                    let (tx, rx) = std::sync::mpsc::sync_channel::<FileRange>(4);
                    let scanned = std::thread::scope(|s| {
                        let scanner = s.spawn(|| {
                            let mut stats = SaveStats::default();
                            let mut decommit = Vec::new();
                            let t = Instant::now();
                            let r = self.scan(&segments, opts, &mut stats, &mut decommit, |b| {
                                // The writer hung up: it has the error.
                                tx.send(b).map_err(|_| {
                                    Error::Io(std::io::Error::other("page writer stopped"))
                                })
                            });
                            drop(tx);
                            stats.scan_time = t.elapsed();
                            r.map(|()| (stats, decommit))
                        });
                        let written = (|| -> Result<()> {
                            for b in rx {
                                // SAFETY: the shared access guard is held
                                // for the whole closure.
                                out.write_all(unsafe { self.block_bytes(b)? })?;
                                blocks.push(b);
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
                    let (s, d) = scanned;
                    stats = s;
                    decommit = d;
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
            };
            stateify::save(&mut meta, &saved)?;
            stats.meta_time = t.elapsed();
            stats.blocks = blocks.len() as u64;
            stats.bytes_written = blocks.iter().map(|b| b.len()).sum();
            if inline {
                let t = Instant::now();
                for b in &blocks {
                    stateify::write_header(&mut meta, b.len(), false)?;
                    // SAFETY: the shared access guard is held here.
                    meta.write_all(unsafe { self.block_bytes(*b)? })?;
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
