//! `load_from`: rebuilds a memory file from its metadata graph and page
//! blocks (eagerly: every page is in place when it returns).

use std::fs::File;
use std::io::BufRead;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::file::{
    valid_chunk_size, FileRange, MemoryFile, MemoryFileOpts, Usage, MAX_CHUNKS, MAX_FILE_SIZE,
    PAGE_SIZE,
};
use crate::save::SavedFile;

/// Options of [`MemoryFile::load_from`].
#[derive(Clone, Copy, Debug)]
pub struct LoadOpts {
    /// Threads reading the pages file (several `pread`s in flight).
    pub threads: usize,
    /// Largest single read from the pages file.
    pub max_read: usize,
    /// Advise huge pages for the new file's chunks.
    pub huge_pages: bool,
}

impl Default for LoadOpts {
    fn default() -> Self {
        LoadOpts {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_read: 8 << 20,
            huge_pages: true,
        }
    }
}

/// What a load did.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadStats {
    /// Page bytes read.
    pub bytes_read: u64,
    /// Page blocks read.
    pub blocks: u64,
    /// Time reading and checking the metadata graph.
    pub meta_time: Duration,
    /// Time reading the pages.
    pub pages_time: Duration,
}

fn corrupt(msg: String) -> Error {
    Error::Corrupt(msg)
}

/// Checks everything the metadata claims before anything is allocated.
fn validate(s: &SavedFile) -> Result<()> {
    let c = s.chunk_size;
    if !valid_chunk_size(c) {
        return Err(corrupt(format!("chunk size {c}")));
    }
    if s.file_size % c != 0 || s.file_size > MAX_FILE_SIZE || s.file_size / c > MAX_CHUNKS {
        return Err(corrupt(format!(
            "file size {} is not a multiple of the chunk size {c} within {MAX_FILE_SIZE} bytes and {MAX_CHUNKS} chunks",
            s.file_size
        )));
    }
    let mut prev_end = 0;
    for (i, g) in s.segments.iter().enumerate() {
        if g.start >= g.end
            || g.start % PAGE_SIZE != 0
            || g.end % PAGE_SIZE != 0
            || g.start < prev_end
            || g.end > s.file_size
            || g.refs == 0
        {
            return Err(corrupt(format!(
                "segment {i} ({:#x}..{:#x}, {} refs) is empty, unaligned, overlapping, beyond the file or unreferenced",
                g.start, g.end, g.refs
            )));
        }
        prev_end = g.end;
    }
    let mut prev_end = 0;
    let mut seg = s.segments.iter().peekable();
    for (i, b) in s.blocks.iter().enumerate() {
        let end = b.start.saturating_add(b.len);
        if b.len == 0
            || b.start % PAGE_SIZE != 0
            || b.len % PAGE_SIZE != 0
            || b.start < prev_end
            || b.start / c != (end - 1) / c
        {
            return Err(corrupt(format!(
                "page block {i} ({:#x}, {} bytes) is empty, unaligned, out of order or crosses a chunk",
                b.start, b.len
            )));
        }
        // Inside allocated segments (which are sorted; blocks are too).
        let mut at = b.start;
        while at < end {
            match seg.peek() {
                Some(g) if g.end <= at => {
                    seg.next();
                }
                Some(g) if g.start <= at => at = g.end,
                _ => {
                    return Err(corrupt(format!(
                        "page block {i} ({:#x}, {} bytes) lies outside the allocated segments",
                        b.start, b.len
                    )))
                }
            }
        }
        prev_end = end;
    }
    Ok(())
}

impl MemoryFile {
    /// Loads a memory file saved by [`MemoryFile::save_to`]: the metadata
    /// graph from `meta`, then the page blocks from `meta` (`pages` =
    /// `None`, raw records) or from `pages`. On any error the half-built
    /// file is dropped.
    pub fn load_from<R: BufRead>(
        mut meta: R,
        pages: Option<&File>,
        opts: &LoadOpts,
    ) -> Result<(MemoryFile, LoadStats)> {
        let mut stats = LoadStats::default();
        let t = Instant::now();
        let saved: SavedFile = stateify::load(&mut meta)?;
        validate(&saved)?;
        let mf = MemoryFile::new(MemoryFileOpts {
            chunk_size: saved.chunk_size,
            huge_pages: opts.huge_pages,
        })?;
        {
            let mut st = mf.state.lock().unwrap_or_else(|e| e.into_inner());
            mf.grow_to(&mut st, saved.file_size)?;
            for g in &saved.segments {
                st.usage.insert(
                    g.start..g.end,
                    Usage {
                        kind: g.kind,
                        memcg: g.memcg,
                        refs: g.refs,
                        committed: g.committed,
                    },
                );
            }
        }
        stats.meta_time = t.elapsed();

        let t = Instant::now();
        match pages {
            None => {
                for b in &saved.blocks {
                    let (len, object) = stateify::read_header(&mut meta)?;
                    if object {
                        return Err(Error::NotRaw { start: b.start });
                    }
                    if len != b.len {
                        return Err(Error::MismatchedSegment {
                            start: b.start,
                            expected: b.len,
                            got: len,
                        });
                    }
                    let r = FileRange {
                        start: b.start,
                        end: b.start + b.len,
                    };
                    mf.with_slice_mut(r, |s| meta.read_exact(s))??;
                }
            }
            Some(file) => mf.read_pages(file, &saved, opts)?,
        }
        stats.blocks = saved.blocks.len() as u64;
        stats.bytes_read = saved.blocks.iter().map(|b| b.len).sum();
        stats.pages_time = t.elapsed();
        Ok((mf, stats))
    }

    /// Reads every block from the pages file (blocks concatenated in order)
    /// straight into the mappings, with `opts.threads` `pread`s in flight.
    fn read_pages(&self, file: &File, saved: &SavedFile, opts: &LoadOpts) -> Result<()> {
        // Pieces of at most `max_read` bytes: (memory offset, file offset, len).
        let max = (opts.max_read as u64).max(PAGE_SIZE);
        let mut pieces = Vec::new();
        let mut off = 0u64;
        for b in &saved.blocks {
            let mut done = 0;
            while done < b.len {
                let n = (b.len - done).min(max);
                pieces.push((b.start + done, off + done, n));
                done += n;
            }
            off += b.len;
        }
        let file_len = file.metadata()?.len();
        if file_len < off {
            let first_short = saved
                .blocks
                .iter()
                .scan(0u64, |o, b| {
                    *o += b.len;
                    Some((b.start, *o))
                })
                .find(|&(_, needed)| needed > file_len)
                .unwrap_or((0, off));
            return Err(Error::ShortPagesFile {
                start: first_short.0,
                needed: first_short.1,
                len: file_len,
            });
        }
        let next = AtomicUsize::new(0);
        let worker = || -> Result<()> {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(mem, foff, n)) = pieces.get(i) else {
                    return Ok(());
                };
                let r = FileRange {
                    start: mem,
                    end: mem + n,
                };
                // SAFETY: `r` lies inside one chunk's mapping (blocks never
                // cross a chunk, validated), which lives as long as `self`.
                // The file is not shared yet (`load_from` still owns it) and
                // pieces are disjoint, so this slice is the only reference
                // to these bytes.
                let dst = unsafe {
                    let ptr = self.raw_ptr(r)?;
                    std::slice::from_raw_parts_mut(ptr, n as usize)
                };
                file.read_exact_at(dst, foff).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        Error::ShortPagesFile {
                            start: mem,
                            needed: foff + n,
                            len: file_len,
                        }
                    } else {
                        Error::Io(e)
                    }
                })?;
            }
        };
        let threads = opts.threads.clamp(1, pieces.len().max(1));
        std::thread::scope(|s| {
            let helpers: Vec<_> = (1..threads).map(|_| s.spawn(worker)).collect();
            let mut first = worker();
            for h in helpers {
                let r = h
                    .join()
                    .unwrap_or_else(|_| Err(Error::Corrupt("a page reader panicked".into())));
                if first.is_ok() {
                    first = r;
                }
            }
            first
        })
    }
}
