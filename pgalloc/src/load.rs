//! `load_from`: rebuilds a memory file from its metadata graph and page
//! blocks (eagerly: every page is in place when it returns).

use std::io::{BufRead, Read};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::file::{
    by_newest, subtract, valid_chunk_size, FileRange, Lineage, MemoryFile, MemoryFileOpts,
    Tracking, Usage, MAX_CHUNKS, MAX_FILE_SIZE, MAX_REFS, PAGE_SIZE,
};
use crate::restore::{Background, Layer, PageSource, Restore, SourceLayout};
use crate::save::{
    parse_pages_header, pieces, SavedFile, DELTA_PAGES, DIGEST, FULL_PAGES, MAX_BLOCK, PAGES_HEADER,
};

/// Options of [`MemoryFile::load_from`].
#[derive(Clone, Copy, Debug)]
pub struct LoadOpts {
    /// Threads reading the pages file (several reads in flight).
    pub threads: usize,
    /// Largest single (vectored) read from the pages file. Small reads keep
    /// waits short: with 2 workers on 2 cores, 1 MiB reads put the p99 of a
    /// first access after a background load at ~7 ms, 256 KiB reads at
    /// ~0.7 ms, for the same total throughput (`benches/restore.rs`).
    pub max_read: usize,
    /// Advise huge pages for the new file's chunks.
    pub huge_pages: bool,
    /// Return as soon as the metadata is in place and load the pages in
    /// the background (needs a pages file); every access waits for the
    /// pages it touches. Otherwise every page is loaded before returning.
    pub background: bool,
    /// Do not check the pages against the digests the metadata records
    /// (for a trusted local restore); [`LoadStats::verified`] says whether
    /// they were checked.
    pub skip_verify: bool,
    /// The change tracking of the new file: its changes are counted from
    /// the checkpoint loaded, so its next save can be incremental.
    pub tracking: Tracking,
}

impl Default for LoadOpts {
    fn default() -> Self {
        LoadOpts {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_read: 256 << 10,
            huge_pages: true,
            background: false,
            skip_verify: false,
            tracking: Tracking::Auto,
        }
    }
}

/// What a load did.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadStats {
    /// Page bytes read (0 for a background load, which has only started:
    /// see [`MemoryFile::restore_progress`]).
    pub bytes_read: u64,
    /// Page blocks read.
    pub blocks: u64,
    /// Time reading and checking the metadata graph.
    pub meta_time: Duration,
    /// Time reading the pages (a background load: starting the workers).
    pub pages_time: Duration,
    /// Every page block is checked against its BLAKE3 digest as it is read
    /// (a background load: before any access sees it); a mismatch is an
    /// error. False when the save recorded no digests (checkpoints written
    /// before they existed) or with [`LoadOpts::skip_verify`].
    pub verified: bool,
    /// The checkpoint id shared by the metadata and the pages file's
    /// header, checked to match (0: saved inline, or before ids existed).
    /// For a chain, the newest layer's.
    pub checkpoint_id: u128,
    /// Layers loaded: 1, or a chain's base and deltas.
    pub layers: usize,
}

fn corrupt(msg: String) -> Error {
    Error::Corrupt(msg)
}

/// Checks everything the metadata claims before anything is allocated.
pub(crate) fn validate(s: &SavedFile) -> Result<()> {
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
            || g.refs > MAX_REFS
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
            || b.len > MAX_BLOCK
            || b.start % PAGE_SIZE != 0
            || b.len % PAGE_SIZE != 0
            || b.start < prev_end
            || b.start / c != (end - 1) / c
        {
            return Err(corrupt(format!(
                "page block {i} ({:#x}, {} bytes) is empty, over {MAX_BLOCK} bytes, unaligned, out of order or crosses a chunk",
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
    let data: u64 = s.blocks.iter().map(|b| b.len).sum();
    if s.checkpoint_id != 0 && s.pages_len != PAGES_HEADER + data {
        return Err(corrupt(format!(
            "pages file length {} for {data} bytes of blocks",
            s.pages_len
        )));
    }
    let piece = s.piece();
    if !piece.is_power_of_two() || !(PAGE_SIZE..=MAX_BLOCK).contains(&piece) {
        return Err(corrupt(format!("digest piece size {piece}")));
    }
    let want: usize = s.blocks.iter().map(|b| pieces(b.len, piece)).sum();
    if !s.digests.is_empty() && s.digests.len() != want * DIGEST {
        return Err(corrupt(format!(
            "{} bytes of page digests for {want} pieces of {piece} bytes",
            s.digests.len()
        )));
    }
    validate_delta(s)
}

/// A delta names its parent, has a pages file, and its changed ranges are
/// sorted, disjoint, page-aligned, inside the file, and hold its blocks; a
/// full checkpoint has none of these.
fn validate_delta(s: &SavedFile) -> Result<()> {
    if s.parent.is_empty() {
        if s.layer != 0 || !s.changed.is_empty() {
            return Err(corrupt(format!(
                "layer {} with {} changed ranges and no parent",
                s.layer,
                s.changed.len()
            )));
        }
        return Ok(());
    }
    if s.parent.len() != DIGEST || s.layer == 0 || s.checkpoint_id == 0 {
        return Err(corrupt(format!(
            "delta at layer {} with a {}-byte parent digest and {} pages file",
            s.layer,
            s.parent.len(),
            if s.checkpoint_id == 0 { "no" } else { "a" }
        )));
    }
    let mut prev_end = 0;
    for (i, c) in s.changed.iter().enumerate() {
        let end = c.start.saturating_add(c.len);
        if c.len == 0
            || c.start % PAGE_SIZE != 0
            || c.len % PAGE_SIZE != 0
            || c.start < prev_end
            || end > s.file_size
        {
            return Err(corrupt(format!(
                "changed range {i} ({:#x}, {} bytes) is empty, unaligned, out of order or beyond the file",
                c.start, c.len
            )));
        }
        prev_end = end;
    }
    let blocks = ranges(s.blocks.iter().map(|b| (b.start, b.len)));
    if !subtract(&blocks, &s.changed_ranges()).is_empty() {
        return Err(corrupt(
            "a delta's page block lies outside its changed ranges".into(),
        ));
    }
    Ok(())
}

/// (start, len) pairs as ranges.
fn ranges(it: impl Iterator<Item = (u64, u64)>) -> Vec<FileRange> {
    it.map(|(start, len)| FileRange {
        start,
        end: start + len,
    })
    .collect()
}

/// Reads the metadata record at the front of `meta`, and the BLAKE3 digest
/// of its bytes (what a delta names its parent by).
pub(crate) fn read_saved<R: BufRead>(meta: R) -> Result<(SavedFile, [u8; 32])> {
    let mut hashing = Hashing {
        inner: meta,
        hasher: blake3::Hasher::new(),
    };
    let saved: SavedFile = stateify::load(&mut hashing)?;
    Ok((saved, *hashing.hasher.finalize().as_bytes()))
}

/// A reader that hashes what is consumed from it.
struct Hashing<R> {
    inner: R,
    hasher: blake3::Hasher,
}

impl<R: BufRead> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Hashing<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        // The bytes just returned by `fill_buf`: still buffered, no I/O.
        if let Ok(b) = self.inner.fill_buf() {
            self.hasher.update(&b[..n.min(b.len())]);
        }
        self.inner.consume(n);
    }
}

/// A short hex form of a digest, for messages.
fn short(d: &[u8]) -> String {
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Where a saved memory stands in a chain of checkpoints: what its
/// metadata record says ([`read_layer`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerInfo {
    /// BLAKE3 of the metadata record: what a delta on it names as parent.
    pub digest: [u8; 32],
    /// A delta's parent (the digest of the layer below); `None` for a full
    /// checkpoint.
    pub parent: Option<[u8; 32]>,
    /// 0 for a full checkpoint, else the delta's depth in its chain.
    pub layer: u64,
    /// For a full checkpoint squashed from a chain: the digest of the
    /// chain's newest layer, which deltas saved on it name as parent.
    pub squashed: Option<[u8; 32]>,
    /// The checkpoint id shared with its pages file's header.
    pub checkpoint_id: u128,
    /// Memory the delta replaces (0 for a full checkpoint).
    pub changed_bytes: u64,
    /// Page bytes in its pages file.
    pub page_bytes: u64,
    /// Chunk size of the saved file.
    pub chunk_size: u64,
}

impl LayerInfo {
    pub(crate) fn of(s: &SavedFile, digest: [u8; 32]) -> LayerInfo {
        let d32 = |v: &[u8]| <[u8; 32]>::try_from(v).ok();
        LayerInfo {
            digest,
            parent: d32(&s.parent),
            layer: s.layer,
            squashed: d32(&s.squashed),
            checkpoint_id: s.checkpoint_id,
            changed_bytes: s.changed.iter().map(|c| c.len).sum(),
            page_bytes: s.blocks.iter().map(|b| b.len).sum(),
            chunk_size: s.chunk_size,
        }
    }

    /// Whether a delta naming `parent` lies on this layer.
    fn is(&self, parent: &[u8; 32]) -> bool {
        self.digest == *parent || self.squashed.as_ref() == Some(parent)
    }
}

/// Reads and checks the metadata record at the front of `meta` (written by
/// [`MemoryFile::save_to`]) and says where it stands in its chain.
pub fn read_layer<R: BufRead>(meta: R) -> Result<LayerInfo> {
    let (saved, digest) = read_saved(meta)?;
    validate(&saved)?;
    Ok(LayerInfo::of(&saved, digest))
}

/// Checks that `layers` (oldest first) form one chain: a full checkpoint,
/// then deltas each naming the layer below as its parent. The error
/// ([`Error::Chain`]) names the first layer that does not fit, and why.
pub fn check_chain(layers: &[LayerInfo]) -> Result<()> {
    let Some(base) = layers.first() else {
        return Err(Error::InvalidArgument("a chain of no checkpoints".into()));
    };
    if let Some(p) = &base.parent {
        return Err(Error::Chain(format!(
            "the first layer is delta {} (parent {}), not a full checkpoint: the chain must start with its base",
            base.layer,
            short(p)
        )));
    }
    for (i, pair) in layers.windows(2).enumerate() {
        let (below, delta) = (&pair[0], &pair[1]);
        let at = i + 1;
        let Some(parent) = &delta.parent else {
            return Err(Error::Chain(format!(
                "layer {at} is a full checkpoint, not a delta: a chain has one base, first"
            )));
        };
        if !below.is(parent) {
            let hint = if delta.layer != below.layer + 1 {
                format!(
                    " (it is delta {} and follows layer {}: missing or out of order)",
                    delta.layer, below.layer
                )
            } else {
                String::new()
            };
            return Err(Error::Chain(format!(
                "layer {at}'s parent is {}, but layer {} below it is {}{hint}",
                short(parent),
                at - 1,
                short(&below.digest)
            )));
        }
        if delta.chunk_size != below.chunk_size {
            return Err(Error::Chain(format!(
                "layer {at} has chunk size {}, the layer below {}",
                delta.chunk_size, below.chunk_size
            )));
        }
    }
    Ok(())
}

/// Squashes a chain (as [`MemoryFile::load_chain`] takes it) into one full
/// checkpoint: the metadata on `meta`, the pages into `pages`. The chain
/// is checked and loaded as for a restore (every piece verified), into
/// memory, then saved whole; deltas saved on the chain's newest layer chain
/// onto the squashed checkpoint too.
pub fn squash<R: BufRead>(
    layers: impl IntoIterator<Item = (R, Arc<dyn PageSource>)>,
    meta: impl std::io::Write,
    pages: &mut (dyn std::io::Write + Send),
    opts: &crate::SaveOpts,
) -> Result<crate::SaveStats> {
    let load = LoadOpts {
        tracking: Tracking::Api,
        ..LoadOpts::default()
    };
    let (mf, _) = MemoryFile::load_chain(layers, &load)?;
    mf.save_squashed(meta, pages, opts)
}

/// What [`verify_pages`] checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PagesReport {
    /// The checkpoint id of the metadata and the pages file's header (0:
    /// saved before ids, no header to check).
    pub checkpoint_id: u128,
    /// Page blocks read.
    pub blocks: u64,
    /// Digested pieces read.
    pub pieces: u64,
    /// Page bytes read.
    pub bytes: u64,
    /// Whether the pieces were checked against digests (false for saves
    /// from before digests: only the length was checked).
    pub verified: bool,
}

/// Checks a pages file against the metadata `save_to` wrote (`meta`, at its
/// graph record) without loading anything into memory: the header's
/// checkpoint id and the file's length, then every piece of every block
/// against its digest, reading the file once in order. A bad piece is
/// [`Error::BadPages`], naming its block, memory range and file offset.
pub fn verify_pages<R: BufRead>(meta: R, pages: &dyn PageSource) -> Result<PagesReport> {
    let (saved, _) = read_saved(meta)?;
    validate(&saved)?;
    let data_offset = check_pages_file(&saved, pages)?;
    let mut report = PagesReport {
        checkpoint_id: saved.checkpoint_id,
        verified: saved.has_digests(),
        ..PagesReport::default()
    };
    let piece_size = saved.piece();
    let mut buf = vec![0u8; piece_size as usize];
    let (mut offset, mut piece) = (data_offset, 0usize);
    for (i, b) in saved.blocks.iter().enumerate() {
        let mut done = 0;
        while done < b.len {
            let n = (b.len - done).min(piece_size) as usize;
            read_pieces(&saved, pages, &mut buf[..n], offset, data_offset)?;
            if report.verified {
                check_piece(&saved, piece, &buf[..n], i, b.start + done, offset)?;
            }
            piece += 1;
            report.pieces += 1;
            report.bytes += n as u64;
            done += n as u64;
            offset += n as u64;
        }
        report.blocks += 1;
    }
    Ok(report)
}

/// Fills `buf` from the pages at `offset` (the page data starting at
/// `data`); a source that ends first is [`Error::ShortPagesFile`].
pub(crate) fn read_pieces(
    saved: &SavedFile,
    pages: &dyn PageSource,
    buf: &mut [u8],
    offset: u64,
    data: u64,
) -> Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match pages.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => return Err(short_pages(saved, offset + got as u64 - data)),
            Ok(k) => got += k.min(buf.len() - got),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Checks digested piece `k`, the `bytes` of block `block` from memory
/// address `start` (read at pages-file `offset`), against its digest.
pub(crate) fn check_piece(
    saved: &SavedFile,
    k: usize,
    bytes: &[u8],
    block: usize,
    start: u64,
    offset: u64,
) -> Result<()> {
    let want = saved.digests.get(k * DIGEST..(k + 1) * DIGEST);
    if want != Some(blake3::hash(bytes).as_bytes().as_slice()) {
        return Err(Error::BadPages {
            block,
            start,
            end: start + bytes.len() as u64,
            offset,
        });
    }
    Ok(())
}

/// Checks that `source` is the pages file `saved` was written with — its
/// header's checkpoint id and its length — or, for a save from before
/// checkpoint ids, that it holds every block. Returns where the page data
/// starts.
pub(crate) fn check_pages_file(saved: &SavedFile, source: &dyn PageSource) -> Result<u64> {
    if saved.checkpoint_id == 0 {
        let total: u64 = saved.blocks.iter().map(|b| b.len).sum();
        let len = source.size()?;
        if len < total {
            return Err(short_pages(saved, len));
        }
        return Ok(0);
    }
    let mut h = vec![0u8; PAGES_HEADER as usize];
    let mut got = 0;
    while got < h.len() {
        // As in the restore: a source that panics or lies fails the load.
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            source.read_at(&mut h[got..], got as u64)
        }))
        .unwrap_or_else(|_| Err(std::io::Error::other("the page source panicked")));
        match read {
            Ok(0) => break,
            Ok(n) if n > h.len() - got => {
                return Err(Error::PagesFile(format!(
                    "the page source claims {n} bytes read into {} bytes of buffer",
                    h.len() - got
                )))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let (version, found) = parse_pages_header(&h[..got]).map_err(Error::PagesFile)?;
    if found != saved.checkpoint_id {
        return Err(Error::ForeignPages {
            expected: saved.checkpoint_id,
            found,
        });
    }
    let want = if saved.layer == 0 {
        FULL_PAGES
    } else {
        DELTA_PAGES
    };
    if version != want {
        return Err(Error::PagesFile(format!(
            "header version {version} for metadata of layer {}",
            saved.layer
        )));
    }
    let len = source.size()?;
    if len != saved.pages_len {
        return Err(Error::PagesFile(format!(
            "{len} bytes, but checkpoint {:032x} wrote {} ({})",
            saved.checkpoint_id,
            saved.pages_len,
            if len < saved.pages_len {
                "truncated"
            } else {
                "extended"
            }
        )));
    }
    // `pages_len` was checked against the blocks by `validate`.
    Ok(PAGES_HEADER)
}

/// The error for page bytes that do not match their digest.
pub(crate) fn digest_mismatch(mem: u64, len: u64) -> String {
    format!(
        "pages {mem:#x}..{:#x} do not match their BLAKE3 digest: the pages file is damaged or belongs to another checkpoint",
        mem + len
    )
}

impl MemoryFile {
    /// Loads a memory file saved by [`MemoryFile::save_to`]: the metadata
    /// graph from `meta`, then the page blocks from `meta` (`pages` =
    /// `None`, raw records) or from `pages` (a pages file, or any
    /// [`PageSource`]) — eagerly, or in the background with
    /// [`LoadOpts::background`]. On any error the half-built file is
    /// dropped. A delta is refused: load it with [`MemoryFile::load_chain`].
    pub fn load_from<R: BufRead>(
        mut meta: R,
        pages: Option<Arc<dyn PageSource>>,
        opts: &LoadOpts,
    ) -> Result<(MemoryFile, LoadStats)> {
        if opts.background && pages.is_none() {
            return Err(Error::InvalidArgument(
                "a background load needs a pages file (inline pages are read eagerly)".into(),
            ));
        }
        let t = Instant::now();
        let (saved, digest) = read_saved(&mut meta)?;
        validate(&saved)?;
        if saved.layer != 0 {
            return Err(Error::Chain(format!(
                "this is delta {} of a chain (parent {}): load it with MemoryFile::load_chain, after its base and the deltas before it",
                saved.layer,
                short(&saved.parent)
            )));
        }
        match pages {
            Some(source) => Self::load_layers(vec![(saved, digest, source)], opts, t),
            None => Self::load_inline(meta, saved, digest, opts, t),
        }
    }

    /// Loads a chain: a full checkpoint and the deltas saved on it, oldest
    /// first, each as its metadata and its pages file. Each page is read
    /// from the newest layer that holds it, eagerly or in the background
    /// ([`LoadOpts::background`]: waited pages first, whatever layer holds
    /// them). Every layer is checked before any page is read: each delta
    /// must name the layer below as its parent ([`Error::Chain`]), and each
    /// pages file must be its layer's. The file's next incremental save
    /// continues the chain.
    pub fn load_chain<R: BufRead>(
        layers: impl IntoIterator<Item = (R, Arc<dyn PageSource>)>,
        opts: &LoadOpts,
    ) -> Result<(MemoryFile, LoadStats)> {
        let t = Instant::now();
        let mut read = Vec::new();
        for (i, (meta, source)) in layers.into_iter().enumerate() {
            let (saved, digest) = read_saved(meta).map_err(|e| in_layer(i, e))?;
            validate(&saved).map_err(|e| in_layer(i, e))?;
            read.push((saved, digest, source));
        }
        let chain: Vec<LayerInfo> = read.iter().map(|(s, d, _)| LayerInfo::of(s, *d)).collect();
        check_chain(&chain)?;
        Self::load_layers(read, opts, t)
    }

    /// A new file with the top layer's size and segments.
    fn rebuild(top: &SavedFile, opts: &LoadOpts) -> Result<MemoryFile> {
        let mf = MemoryFile::new(MemoryFileOpts {
            chunk_size: top.chunk_size,
            huge_pages: opts.huge_pages,
            tracking: opts.tracking,
        })?;
        let mut st = mf.state.lock().unwrap_or_else(|e| e.into_inner());
        mf.grow_to(&mut st, top.file_size)?;
        for g in &top.segments {
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
        drop(st);
        Ok(mf)
    }

    /// Counts changes from the checkpoint just loaded.
    fn track_loaded(&self, top: &SavedFile, digest: [u8; 32], opts: &LoadOpts) -> Result<()> {
        if opts.tracking == Tracking::Off {
            return Ok(());
        }
        self.track_from(Lineage {
            digest,
            layer: top.layer,
        })
    }

    /// Loads pages inline on `meta` (raw records after the graph), eagerly.
    fn load_inline<R: BufRead>(
        mut meta: R,
        saved: SavedFile,
        digest: [u8; 32],
        opts: &LoadOpts,
        t: Instant,
    ) -> Result<(MemoryFile, LoadStats)> {
        if saved.checkpoint_id != 0 {
            return Err(Error::PagesFile(
                "this memory was saved with a pages file, and none was given".into(),
            ));
        }
        let verify = !opts.skip_verify && saved.has_digests();
        let piece = saved.piece();
        let mf = Self::rebuild(&saved, opts)?;
        let mut stats = LoadStats {
            verified: verify,
            layers: 1,
            meta_time: t.elapsed(),
            ..LoadStats::default()
        };
        let t = Instant::now();
        let mut digest_index = 0;
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
            if verify {
                let first = digest_index;
                digest_index += pieces(b.len, piece);
                let want = &saved.digests[first * DIGEST..digest_index * DIGEST];
                let bad = mf.with_slice(r, |s| {
                    s.chunks(piece as usize)
                        .zip(want.chunks_exact(DIGEST))
                        .position(|(p, d)| blake3::hash(p).as_bytes() != d)
                })?;
                if let Some(k) = bad {
                    let start = b.start + k as u64 * piece;
                    return Err(Error::PagesUnavailable {
                        start,
                        error: std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            digest_mismatch(start, piece.min(b.start + b.len - start)),
                        ),
                    });
                }
            }
        }
        mf.track_loaded(&saved, digest, opts)?;
        stats.blocks = saved.blocks.len() as u64;
        stats.bytes_read = saved.blocks.iter().map(|b| b.len).sum();
        stats.pages_time = t.elapsed();
        Ok((mf, stats))
    }

    /// Loads one full checkpoint, or a checked chain, from page sources.
    fn load_layers(
        layers: Vec<(SavedFile, [u8; 32], Arc<dyn PageSource>)>,
        opts: &LoadOpts,
        t: Instant,
    ) -> Result<(MemoryFile, LoadStats)> {
        // Every pages file is checked to be its layer's before anything is
        // allocated or read.
        let mut offsets = Vec::with_capacity(layers.len());
        for (i, (saved, _, source)) in layers.iter().enumerate() {
            let at = check_pages_file(saved, &**source);
            offsets.push(if layers.len() > 1 {
                at.map_err(|e| in_layer(i, e))?
            } else {
                at?
            });
        }
        let (top, digest, _) = layers.last().expect("at least one layer");
        let verify = !opts.skip_verify && layers.iter().all(|(s, _, _)| s.has_digests());
        let mf = Self::rebuild(top, opts)?;
        let mut stats = LoadStats {
            verified: verify,
            checkpoint_id: top.checkpoint_id,
            layers: layers.len(),
            meta_time: t.elapsed(),
            ..LoadStats::default()
        };
        let t = Instant::now();
        // What each layer provides: the newest layer's allocated memory,
        // each page from the newest layer that changed it.
        let allocated = ranges(top.segments.iter().map(|g| (g.start, g.end - g.start)));
        let changed: Vec<Vec<FileRange>> =
            layers.iter().map(|(s, _, _)| s.changed_ranges()).collect();
        let changed: Vec<&[FileRange]> = changed.iter().map(Vec::as_slice).collect();
        let visible = by_newest(allocated, &changed);
        let background = opts.background;
        if background {
            // Counted from the checkpoint now: the workers protect what they
            // load again, so the program's own writes alone count.
            mf.track_loaded(top, *digest, opts)?;
        }
        let plan = layers
            .iter()
            .zip(offsets)
            .zip(visible)
            .map(|(((saved, _, source), data_offset), visible)| Layer {
                source: source.clone(),
                blocks: saved.blocks.iter().map(|b| (b.start, b.len)).collect(),
                layout: SourceLayout {
                    data_offset,
                    unit: saved.piece(),
                    digests: verify.then_some(&saved.digests[..]),
                },
                visible,
            })
            .collect();
        let restore = Restore::new(
            plan,
            mf.chunk_bases(),
            top.chunk_size,
            opts.max_read as u64,
            match (&mf.writes, background) {
                (Some(t), true) => Some((t.clone(), mf.raw.clone())),
                _ => None,
            },
            !background && layers.len() > 1,
        );
        let total = restore.bytes_total();
        let bg = Background::start(restore, opts.threads);
        stats.blocks = layers.iter().map(|(s, _, _)| s.blocks.len() as u64).sum();
        if background {
            stats.pages_time = t.elapsed();
            let _ = mf.background.set(bg);
            return Ok((mf, stats));
        }
        bg.restore.await_all()?;
        for r in bg.restore.stale() {
            mf.decommit(r)?;
        }
        drop(bg);
        mf.track_loaded(top, *digest, opts)?;
        stats.bytes_read = total;
        stats.pages_time = t.elapsed();
        Ok((mf, stats))
    }
}

/// `e`, said to be about layer `i` of a chain.
fn in_layer(i: usize, e: Error) -> Error {
    match e {
        Error::Chain(m) => Error::Chain(m),
        e => Error::Chain(format!("layer {i}: {e}")),
    }
}

/// The error for a pages file of `len` bytes that ends inside a block.
fn short_pages(saved: &SavedFile, len: u64) -> Error {
    let mut end = 0;
    for b in &saved.blocks {
        end += b.len;
        if end > len {
            return Error::ShortPagesFile {
                start: b.start,
                needed: end,
                len,
            };
        }
    }
    Error::ShortPagesFile {
        start: 0,
        needed: end,
        len,
    }
}
