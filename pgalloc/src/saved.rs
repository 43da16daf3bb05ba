//! [`SavedPages`]: saved page memory read at any address without loading
//! it, for tools (the `stateify mount` filesystem shows each segment as a
//! file). Pages in no block read as zeros; every piece read is checked
//! against its digest first.

use std::io::BufRead;

use crate::error::Result;
use crate::load::{check_pages_file, check_piece, read_pieces, validate};
use crate::restore::PageSource;
use crate::save::SavedFile;

/// The memory a checkpoint saved, readable by address; see the module docs.
pub struct SavedPages {
    saved: SavedFile,
    source: Box<dyn PageSource>,
    /// Where the page data starts in the source.
    data: u64,
    /// Per block: where its bytes start in the source, and the index of its
    /// first digested piece.
    at: Vec<(u64, usize)>,
    segments: Vec<SavedSegment>,
}

/// One allocated range of the saved file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SavedSegment {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl SavedPages {
    /// Reads the metadata `save_to` wrote (`meta`, at its graph record) and
    /// checks it, and `source` against it: for a pages file, its header's
    /// checkpoint id and its length. For pages saved inline, `source` is
    /// the blocks' bytes one after another. A delta is refused
    /// ([`Error::Chain`](crate::Error::Chain)): its pages alone are not the
    /// memory.
    pub fn open<R: BufRead>(mut meta: R, source: Box<dyn PageSource>) -> Result<SavedPages> {
        let saved: SavedFile = stateify::load(&mut meta)?;
        validate(&saved)?;
        if saved.layer != 0 {
            return Err(crate::Error::Chain(format!(
                "delta {} of a chain: its pages are only what changed since its parent; read the chain squashed (`stateify squash`)",
                saved.layer
            )));
        }
        let data = check_pages_file(&saved, &*source)?;
        let piece = saved.piece();
        let (mut offset, mut pieces) = (data, 0);
        let mut at = Vec::with_capacity(saved.blocks.len());
        for b in &saved.blocks {
            at.push((offset, pieces));
            offset += b.len;
            pieces += b.len.div_ceil(piece) as usize;
        }
        let segments = saved
            .segments
            .iter()
            .map(|s| SavedSegment {
                start: s.start,
                end: s.end,
            })
            .collect();
        Ok(SavedPages {
            saved,
            source,
            data,
            at,
            segments,
        })
    }

    /// The saved file's size: addresses run from 0 to it.
    pub fn file_size(&self) -> u64 {
        self.saved.file_size
    }

    /// The allocated ranges, in order.
    pub fn segments(&self) -> &[SavedSegment] {
        &self.segments
    }

    /// Whether reads are checked against digests (false for saves from
    /// before them).
    pub fn verified(&self) -> bool {
        !self.saved.digests.is_empty()
    }

    /// Fills `buf` with the memory at `addr` (zeros where no page was
    /// saved) and returns how many bytes it filled: fewer only at the end
    /// of the file. Each digested piece the range touches is read whole and
    /// checked; a mismatch is [`Error::BadPages`](crate::Error::BadPages).
    pub fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<usize> {
        let end = addr
            .saturating_add(buf.len() as u64)
            .min(self.saved.file_size);
        if addr >= end {
            return Ok(0);
        }
        let len = (end - addr) as usize;
        buf[..len].fill(0);
        let piece = self.saved.piece();
        let blocks = &self.saved.blocks;
        let first = blocks.partition_point(|b| b.start + b.len <= addr);
        let mut scratch = Vec::new();
        for (i, b) in blocks.iter().enumerate().skip(first) {
            if b.start >= end {
                break;
            }
            let (src, first_piece) = self.at[i];
            // The pieces of the block that the range touches.
            let lo = addr.max(b.start) - b.start;
            let hi = end.min(b.start + b.len) - b.start;
            let mut p = lo / piece;
            while p * piece < hi {
                let p_start = p * piece;
                let p_len = piece.min(b.len - p_start) as usize;
                scratch.resize(p_len, 0);
                let at = src + p_start;
                read_pieces(&self.saved, &*self.source, &mut scratch, at, self.data)?;
                if self.verified() {
                    let k = first_piece + p as usize;
                    check_piece(&self.saved, k, &scratch, i, b.start + p_start, at)?;
                }
                // The overlap of the piece and the range.
                let from = (b.start + p_start).max(addr);
                let to = (b.start + p_start + p_len as u64).min(end);
                let (s, d) = ((from - b.start - p_start) as usize, (from - addr) as usize);
                let n = (to - from) as usize;
                buf[d..d + n].copy_from_slice(&scratch[s..s + n]);
                p += 1;
            }
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Error, MemoryFile, MemoryFileOpts, SaveOpts};

    fn saved(inline: bool) -> (MemoryFile, Vec<u8>, Vec<u8>) {
        let mf = MemoryFile::new(MemoryFileOpts::default()).unwrap();
        let a = mf.allocate(5 << 20, Default::default()).unwrap();
        // Data at the start, a hole, data across a piece boundary.
        mf.write_at(a.start, b"hello").unwrap();
        mf.write_at(a.start + (3 << 20) - 3, b"abcdef").unwrap();
        let (mut meta, mut pages) = (Vec::new(), Vec::new());
        let opts = SaveOpts::default();
        if inline {
            mf.save_to(&mut meta, None, &opts).unwrap();
        } else {
            mf.save_to(&mut meta, Some(&mut pages), &opts).unwrap();
        }
        (mf, meta, pages)
    }

    #[test]
    fn reads_match_the_saved_memory_and_holes_read_as_zeros() {
        let (mf, meta, pages) = saved(false);
        let sp = SavedPages::open(&meta[..], Box::new(pages.clone())).unwrap();
        assert!(sp.verified());
        let seg = sp.segments()[0];
        let mut want = vec![0u8; (seg.end - seg.start) as usize];
        mf.read_at(seg.start, &mut want).unwrap();
        for (addr, n) in [
            (seg.start, 7),
            (seg.start + (3 << 20) - 10, 100),
            (seg.start + (1 << 20), 9000),
        ] {
            let mut got = vec![1u8; n];
            assert_eq!(sp.read_at(addr, &mut got).unwrap(), n);
            let off = (addr - seg.start) as usize;
            assert_eq!(got, want[off..off + n], "at {addr:#x}");
        }
        // At and past the end of the file.
        let mut tail = [9u8; 16];
        assert_eq!(sp.read_at(sp.file_size() - 4, &mut tail).unwrap(), 4);
        assert_eq!(sp.read_at(sp.file_size(), &mut tail).unwrap(), 0);
        // A flipped byte in the pages is found by the read that touches it.
        let mut bad = pages;
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let sp = SavedPages::open(&meta[..], Box::new(bad)).unwrap();
        let mut buf = [0u8; 8];
        sp.read_at(seg.start, &mut buf).unwrap();
        let e = sp.read_at(seg.start + (3 << 20) - 3, &mut buf).unwrap_err();
        assert!(matches!(e, Error::BadPages { .. }), "{e}");
    }

    #[test]
    fn a_delta_is_refused() {
        let (mf, _, _) = saved(false);
        mf.write_at(0, b"changed").unwrap();
        let (mut meta, mut pages) = (Vec::new(), Vec::new());
        let opts = SaveOpts {
            incremental: true,
            ..SaveOpts::default()
        };
        mf.save_to(&mut meta, Some(&mut pages), &opts).unwrap();
        let e = SavedPages::open(&meta[..], Box::new(pages)).err().unwrap();
        assert!(matches!(e, Error::Chain(_)), "{e}");
    }

    #[test]
    fn a_pages_file_of_another_length_is_refused_at_open() {
        let (_, meta, mut pages) = saved(false);
        pages.truncate(pages.len() - 4096);
        assert!(SavedPages::open(&meta[..], Box::new(pages)).is_err());
    }
}
