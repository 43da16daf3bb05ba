//! [`SavedPages`]: saved page memory read at any address without loading
//! it, for tools (the `stateify mount` filesystem shows each segment as a
//! file). Pages in no block read as zeros; every piece read is checked
//! against its digest first. A chain (a full checkpoint and its deltas) is
//! read as its newest layer's memory: each page from the newest layer that
//! changed it.

use std::io::BufRead;

use crate::error::Result;
use crate::file::{by_newest, FileRange};
use crate::load::{
    check_chain, check_pages_file, check_piece, read_pieces, read_saved, validate, LayerInfo,
};
use crate::restore::PageSource;
use crate::save::SavedFile;

/// The memory a checkpoint saved, readable by address; see the module docs.
pub struct SavedPages {
    /// Oldest first; one for a full checkpoint.
    layers: Vec<Layer>,
    segments: Vec<SavedSegment>,
}

/// One saved layer and where its pages are.
struct Layer {
    saved: SavedFile,
    source: Box<dyn PageSource>,
    /// Where the page data starts in the source.
    data: u64,
    /// Per block: where its bytes start in the source, and the index of its
    /// first digested piece.
    at: Vec<(u64, usize)>,
    /// A delta's changed memory (the base holds everything).
    changed: Vec<FileRange>,
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
    /// memory; open its chain with [`SavedPages::open_chain`].
    pub fn open<R: BufRead>(meta: R, source: Box<dyn PageSource>) -> Result<SavedPages> {
        let layer = Layer::open(meta, source)?.0;
        if layer.saved.layer != 0 {
            return Err(crate::Error::Chain(format!(
                "delta {} of a chain: its pages are only what changed since its parent; open the chain",
                layer.saved.layer
            )));
        }
        Ok(SavedPages::of(vec![layer]))
    }

    /// Opens a chain, oldest first (as [`MemoryFile::load_chain`] takes
    /// it): every layer and pages file is checked as by `open`, and the
    /// chain as by the restore ([`check_chain`]).
    ///
    /// [`MemoryFile::load_chain`]: crate::MemoryFile::load_chain
    pub fn open_chain<R: BufRead>(
        layers: impl IntoIterator<Item = (R, Box<dyn PageSource>)>,
    ) -> Result<SavedPages> {
        let mut opened = Vec::new();
        let mut infos = Vec::new();
        for (meta, source) in layers {
            let (layer, info) = Layer::open(meta, source)?;
            opened.push(layer);
            infos.push(info);
        }
        check_chain(&infos)?;
        Ok(SavedPages::of(opened))
    }

    fn of(layers: Vec<Layer>) -> SavedPages {
        let top = &layers[layers.len() - 1].saved;
        let segments = top
            .segments
            .iter()
            .map(|s| SavedSegment {
                start: s.start,
                end: s.end,
            })
            .collect();
        SavedPages { layers, segments }
    }

    fn top(&self) -> &SavedFile {
        &self.layers[self.layers.len() - 1].saved
    }

    /// The saved file's size: addresses run from 0 to it.
    pub fn file_size(&self) -> u64 {
        self.top().file_size
    }

    /// The allocated ranges, in order.
    pub fn segments(&self) -> &[SavedSegment] {
        &self.segments
    }

    /// Whether reads are checked against digests (false for saves from
    /// before them).
    pub fn verified(&self) -> bool {
        self.layers.iter().all(|l| !l.saved.digests.is_empty())
    }

    /// Fills `buf` with the memory at `addr` (zeros where no page was
    /// saved) and returns how many bytes it filled: fewer only at the end
    /// of the file. Each digested piece the range touches is read whole and
    /// checked; a mismatch is [`Error::BadPages`](crate::Error::BadPages).
    pub fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<usize> {
        let end = addr.saturating_add(buf.len() as u64).min(self.file_size());
        if addr >= end {
            return Ok(0);
        }
        let len = (end - addr) as usize;
        buf[..len].fill(0);
        // Each part of the range from the newest layer that changed it.
        let changed: Vec<&[FileRange]> = self.layers.iter().map(|l| &l.changed[..]).collect();
        let owned = by_newest(vec![FileRange { start: addr, end }], &changed);
        for (layer, parts) in self.layers.iter().zip(owned) {
            for r in parts {
                let from = (r.start - addr) as usize;
                layer.read_blocks(r.start, &mut buf[from..from + r.len() as usize])?;
            }
        }
        Ok(len)
    }
}

impl Layer {
    fn open<R: BufRead>(meta: R, source: Box<dyn PageSource>) -> Result<(Layer, LayerInfo)> {
        let (saved, digest) = read_saved(meta)?;
        validate(&saved)?;
        let data = check_pages_file(&saved, &*source)?;
        let piece = saved.piece();
        let (mut offset, mut pieces) = (data, 0);
        let mut at = Vec::with_capacity(saved.blocks.len());
        for b in &saved.blocks {
            at.push((offset, pieces));
            offset += b.len;
            pieces += b.len.div_ceil(piece) as usize;
        }
        let changed = saved.changed_ranges();
        let info = LayerInfo::of(&saved, digest);
        let layer = Layer {
            saved,
            source,
            data,
            at,
            changed,
        };
        Ok((layer, info))
    }

    /// Copies this layer's blocks over `buf` (zeros, the memory at `addr`).
    fn read_blocks(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        let end = addr + buf.len() as u64;
        let verified = !self.saved.digests.is_empty();
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
                if verified {
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
        Ok(())
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
    fn a_chain_reads_as_its_newest_memory() {
        let (mf, base_meta, base_pages) = saved(false);
        let a = mf.segments()[0].0;
        mf.write_at(a.start + 10, b"delta one").unwrap();
        mf.write_at(a.start + (3 << 20) - 1, &[0; 4]).unwrap();
        let delta = SaveOpts {
            incremental: true,
            ..SaveOpts::default()
        };
        let (mut m1, mut p1) = (Vec::new(), Vec::new());
        mf.save_to(&mut m1, Some(&mut p1), &delta).unwrap();
        mf.write_at(a.start + (4 << 20), b"delta two").unwrap();
        let (mut m2, mut p2) = (Vec::new(), Vec::new());
        mf.save_to(&mut m2, Some(&mut p2), &delta).unwrap();
        let layers: Vec<(&[u8], Box<dyn PageSource>)> = vec![
            (&base_meta[..], Box::new(base_pages.clone())),
            (&m1[..], Box::new(p1.clone())),
            (&m2[..], Box::new(p2)),
        ];
        let sp = SavedPages::open_chain(layers).unwrap();
        assert!(sp.verified());
        let mut want = vec![0u8; a.len() as usize];
        mf.read_at(a.start, &mut want).unwrap();
        let mut got = vec![0u8; a.len() as usize];
        assert_eq!(sp.read_at(a.start, &mut got).unwrap(), got.len());
        assert!(got == want, "the chain reads other bytes than the memory");
        // Across layer boundaries, in small reads.
        for at in [
            a.start + 8,
            a.start + (3 << 20) - 5,
            a.start + (4 << 20) - 2,
        ] {
            let mut b = [0u8; 16];
            sp.read_at(at, &mut b).unwrap();
            let o = (at - a.start) as usize;
            assert_eq!(&b[..], &want[o..o + 16], "at {at:#x}");
        }
        // Not a chain: the delta's parent missing.
        let broken: Vec<(&[u8], Box<dyn PageSource>)> = vec![
            (&base_meta[..], Box::new(base_pages)),
            (&m2[..], Box::new(p1)),
        ];
        assert!(SavedPages::open_chain(broken).is_err());
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
