//! MemoryFile: allocation, reference counts, accounting, and save/load
//! round trips inline and with a pages file, plus every corruption.

use std::io::{Seek, SeekFrom, Write};

use pgalloc::{
    AllocOpts, Error, FileRange, LoadOpts, MemoryFile, MemoryFileOpts, MemoryKind, SaveOpts,
    PAGE_SIZE,
};
use proptest::prelude::*;

const MIB: u64 = 1 << 20;

/// A pages file as the loader takes it (a second handle on the same file).
fn source(f: &std::fs::File) -> std::sync::Arc<dyn pgalloc::PageSource> {
    std::sync::Arc::new(f.try_clone().unwrap())
}

fn small_file() -> MemoryFile {
    MemoryFile::new(MemoryFileOpts {
        chunk_size: 16 * MIB,
        huge_pages: true,
        ..Default::default()
    })
    .unwrap()
}

fn alloc(mf: &MemoryFile, len: u64, kind: MemoryKind) -> FileRange {
    mf.allocate(len, AllocOpts { kind, memcg: 7 }).unwrap()
}

fn contents(mf: &MemoryFile) -> Vec<(FileRange, Vec<u8>)> {
    mf.segments()
        .into_iter()
        .map(|(r, ..)| {
            let mut buf = vec![0u8; r.len() as usize];
            mf.read_at(r.start, &mut buf).unwrap();
            (r, buf)
        })
        .collect()
}

/// Fills a range page by page: zero pages, patterned pages, one-byte pages.
fn fill(mf: &MemoryFile, r: FileRange, seed: u64) {
    let mut x = seed | 1;
    for p in 0..r.len() / PAGE_SIZE {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let at = r.start + p * PAGE_SIZE;
        match x % 4 {
            0 => {}                                                    // never touched: a hole
            1 => mf.write_at(at, &[0u8; PAGE_SIZE as usize]).unwrap(), // committed zeros
            2 => mf.write_at(at + x % PAGE_SIZE, &[x as u8 | 1]).unwrap(),
            _ => {
                let page: Vec<u8> = (0..PAGE_SIZE).map(|i| (i ^ x) as u8).collect();
                mf.write_at(at, &page).unwrap();
            }
        }
    }
}

fn round_trip(mf: &MemoryFile, with_pages_file: bool) -> MemoryFile {
    let mut meta = Vec::new();
    let mut pages = tempfile::tempfile().unwrap();
    let stats = if with_pages_file {
        mf.save_to(&mut meta, Some(&mut pages), &SaveOpts::default())
            .unwrap()
    } else {
        mf.save_to(&mut meta, None, &SaveOpts::default()).unwrap()
    };
    if with_pages_file {
        // The page data after a one-page header.
        assert_eq!(
            pages.metadata().unwrap().len(),
            pgalloc::PAGES_HEADER + stats.bytes_written
        );
    }
    let (back, lstats) = MemoryFile::load_from(
        &meta[..],
        with_pages_file.then(|| source(&pages)),
        &LoadOpts::default(),
    )
    .unwrap();
    assert_eq!(lstats.bytes_read, stats.bytes_written);
    assert!(lstats.verified);
    assert_eq!(lstats.checkpoint_id != 0, with_pages_file);
    back
}

#[test]
fn random_allocations_round_trip_inline_and_with_a_pages_file() {
    let mf = small_file();
    let kinds = MemoryKind::ALL;
    let mut live = Vec::new();
    for i in 0..40u64 {
        let len = [1, 2, 5, 64, 300, 1024][(i % 6) as usize] * PAGE_SIZE + (i % 3);
        let r = alloc(&mf, len, kinds[(i % 4) as usize]);
        fill(&mf, r, i * 977 + 1);
        live.push(r);
        if i % 5 == 4 {
            // Free some, so later allocations reuse holes.
            let gone = live.remove((i as usize * 7) % live.len());
            mf.dec_ref(gone).unwrap();
        }
    }
    mf.update_usage(true).unwrap();
    let before = contents(&mf);
    for with_pages_file in [false, true] {
        let back = round_trip(&mf, with_pages_file);
        assert_eq!(contents(&back), before, "pages file: {with_pages_file}");
        assert_eq!(back.segments(), mf.segments());
        assert_eq!(back.usage(), mf.usage());
        assert_eq!(back.file_size(), mf.file_size());
    }
}

#[test]
fn an_8_gib_sparse_file_saves_only_its_committed_pages() {
    let mf = MemoryFile::new(MemoryFileOpts::default()).unwrap();
    let ranges: Vec<FileRange> = (0..8)
        .map(|_| alloc(&mf, 1 << 30, MemoryKind::Anonymous))
        .collect();
    assert_eq!(mf.file_size(), 8 << 30);
    // 3 MiB of data in three places.
    let data = vec![0xa5u8; MIB as usize];
    for r in [ranges[0], ranges[4], ranges[7]] {
        mf.write_at(r.start + 5 * MIB, &data).unwrap();
    }
    let mut meta = Vec::new();
    let mut pages = tempfile::tempfile().unwrap();
    let stats = mf
        .save_to(&mut meta, Some(&mut pages), &SaveOpts::default())
        .unwrap();
    assert_eq!(stats.allocated_bytes, 8 << 30);
    assert_eq!(stats.bytes_written, 3 * MIB);
    assert_eq!(
        pages.metadata().unwrap().len(),
        pgalloc::PAGES_HEADER + 3 * MIB
    );
    assert!(meta.len() < 4096, "metadata is {} bytes", meta.len());
    let (back, _) =
        MemoryFile::load_from(&meta[..], Some(source(&pages)), &LoadOpts::default()).unwrap();
    let mut buf = vec![0u8; MIB as usize + 2];
    back.read_at(ranges[4].start + 5 * MIB - 1, &mut buf)
        .unwrap();
    assert_eq!(buf[0], 0);
    assert!(buf[1..=MIB as usize].iter().all(|&b| b == 0xa5));
    assert_eq!(buf[MIB as usize + 1], 0);
}

#[test]
fn freed_ranges_are_reused_and_read_as_zeros() {
    let mf = small_file();
    let a = alloc(&mf, 8 * PAGE_SIZE, MemoryKind::Anonymous);
    let b = alloc(&mf, 8 * PAGE_SIZE, MemoryKind::Anonymous);
    assert_eq!(b.start, a.end, "bottom-up");
    mf.write_at(a.start, &[9u8; 8 * 4096]).unwrap();
    mf.inc_ref(a).unwrap();
    mf.dec_ref(a).unwrap();
    // Still referenced once: not freed.
    let c = alloc(&mf, 8 * PAGE_SIZE, MemoryKind::Anonymous);
    assert_eq!(c.start, b.end);
    mf.dec_ref(a).unwrap();
    let d = alloc(&mf, 4 * PAGE_SIZE, MemoryKind::Tmpfs);
    assert_eq!(d.start, a.start, "the freed range is reused");
    mf.with_slice(d, |s| assert!(s.iter().all(|&x| x == 0)))
        .unwrap();
    // A partial free leaves the rest allocated.
    mf.dec_ref(FileRange {
        start: b.start,
        end: b.start + PAGE_SIZE,
    })
    .unwrap();
    let segs: Vec<_> = mf.segments().into_iter().map(|(r, ..)| r).collect();
    assert!(segs.iter().all(|r| r.start != b.start));
    assert!(
        mf.dec_ref(a).is_err(),
        "dec_ref on a free range is an error"
    );
    assert!(mf
        .inc_ref(FileRange {
            start: 1,
            end: 4096
        })
        .is_err());
}

#[test]
fn no_allocation_crosses_a_chunk() {
    let mf = small_file();
    let a = alloc(&mf, 15 * MIB, MemoryKind::Anonymous);
    let b = alloc(&mf, 2 * MIB, MemoryKind::Anonymous);
    assert_eq!(b.start, 16 * MIB);
    assert_eq!(a.start, 0);
    assert!(mf.allocate(17 * MIB, AllocOpts::default()).is_err());
    assert!(mf.allocate(0, AllocOpts::default()).is_err());
    // Reads and writes may cross chunks; slices may not.
    mf.write_at(16 * MIB - 2, b"abcd").unwrap();
    let mut out = [0u8; 4];
    mf.read_at(16 * MIB - 2, &mut out).unwrap();
    assert_eq!(&out, b"abcd");
    let across = FileRange {
        start: 16 * MIB - PAGE_SIZE,
        end: 16 * MIB + PAGE_SIZE,
    };
    assert!(mf.with_slice(across, |_| ()).is_err());
    assert!(mf.read_at(mf.file_size(), &mut out).is_err());
}

#[test]
fn accounting_tracks_kinds_and_commitment() {
    let mf = small_file();
    let a = alloc(&mf, 4 * PAGE_SIZE, MemoryKind::PageCache);
    let _b = alloc(&mf, 2 * PAGE_SIZE, MemoryKind::System);
    let u = mf.usage();
    assert_eq!(u.allocated(MemoryKind::PageCache), 4 * PAGE_SIZE);
    assert_eq!(u.allocated(MemoryKind::System), 2 * PAGE_SIZE);
    assert_eq!(u.committed(MemoryKind::PageCache), 0);
    mf.write_at(a.start + PAGE_SIZE, b"x").unwrap();
    assert_eq!(mf.update_usage(true).unwrap(), PAGE_SIZE);
    assert_eq!(mf.usage().committed(MemoryKind::PageCache), PAGE_SIZE);
    // Throttled: an immediate second scan does nothing.
    mf.write_at(a.start, b"y").unwrap();
    assert_eq!(mf.update_usage(false).unwrap(), 0);
    assert_eq!(mf.update_usage(true).unwrap(), PAGE_SIZE);
}

#[test]
fn zero_pages_are_left_out_and_decommitted() {
    let mf = small_file();
    let a = alloc(&mf, 4 * PAGE_SIZE, MemoryKind::Anonymous);
    // Page 0: data. Page 1: written zeros (committed, not known). Page 2:
    // never touched. Page 3: data.
    mf.write_at(a.start, b"data").unwrap();
    mf.write_at(a.start + PAGE_SIZE, &[0u8; 4096]).unwrap();
    mf.write_at(a.start + 3 * PAGE_SIZE, b"more").unwrap();
    let mut meta = Vec::new();
    let stats = mf.save_to(&mut meta, None, &SaveOpts::default()).unwrap();
    assert_eq!(
        stats.bytes_scanned,
        4 * PAGE_SIZE - PAGE_SIZE,
        "the hole is not read"
    );
    assert_eq!(stats.zero_bytes, PAGE_SIZE);
    assert_eq!(stats.decommitted_bytes, PAGE_SIZE);
    assert_eq!(stats.decommit_syscalls, 1);
    assert_eq!(stats.bytes_written, 2 * PAGE_SIZE);
    assert_eq!(stats.blocks, 2);
    // The decommitted page is a hole again: a second save reads nothing of it.
    let stats = mf
        .save_to(&mut Vec::new(), None, &SaveOpts::default())
        .unwrap();
    assert_eq!(stats.bytes_scanned, 2 * PAGE_SIZE);

    // Known committed zero pages are kept unless excluded.
    mf.write_at(a.start + PAGE_SIZE, &[0u8; 4096]).unwrap();
    mf.update_usage(true).unwrap();
    let kept = mf
        .save_to(&mut Vec::new(), None, &SaveOpts::default())
        .unwrap();
    assert_eq!(kept.bytes_written, 3 * PAGE_SIZE);
    assert_eq!(kept.decommitted_bytes, 0);
    let opts = SaveOpts {
        exclude_committed_zero_pages: true,
        ..SaveOpts::default()
    };
    let dropped = mf.save_to(&mut Vec::new(), None, &opts).unwrap();
    assert_eq!(dropped.bytes_written, 2 * PAGE_SIZE);
}

/// A saved file (inline) with two blocks, for the corruption tests.
fn saved_inline() -> (MemoryFile, Vec<u8>, usize) {
    let mf = small_file();
    let a = alloc(&mf, 3 * PAGE_SIZE, MemoryKind::Anonymous);
    mf.write_at(a.start, b"first").unwrap();
    mf.write_at(a.start + 2 * PAGE_SIZE, b"second").unwrap();
    let mut meta = Vec::new();
    mf.save_to(&mut meta, None, &SaveOpts::default()).unwrap();
    // Where the metadata graph ends (the first block's header starts).
    let (len, object) = stateify::read_header(&meta[..]).unwrap();
    assert!(object);
    let graph_end = 10 + len as usize;
    (mf, meta, graph_end)
}

#[test]
fn a_block_header_that_is_not_raw_or_of_the_wrong_length_is_an_error() {
    let (_, meta, graph_end) = saved_inline();
    // An object header where the first block's raw header should be.
    let mut bad = meta[..graph_end].to_vec();
    stateify::write_header(&mut bad, PAGE_SIZE, true).unwrap();
    bad.extend_from_slice(&[0u8; 4096]);
    let err = MemoryFile::load_from(&bad[..], None, &LoadOpts::default())
        .err()
        .unwrap();
    assert!(matches!(err, Error::NotRaw { .. }), "{err}");
    // A raw record of the wrong length.
    let mut bad = meta[..graph_end].to_vec();
    stateify::write_header(&mut bad, 100, false).unwrap();
    bad.extend_from_slice(&[0u8; 100]);
    let err = MemoryFile::load_from(&bad[..], None, &LoadOpts::default())
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "mismatched segment at 0x0: expected 4096 bytes, got 100"
    );
    // Cut short anywhere: an error, never a panic.
    for cut in [graph_end, graph_end + 1, graph_end + 2000, meta.len() - 1] {
        assert!(MemoryFile::load_from(&meta[..cut], None, &LoadOpts::default()).is_err());
    }
}

#[test]
fn a_short_pages_file_is_an_error() {
    let mf = small_file();
    let a = alloc(&mf, 3 * PAGE_SIZE, MemoryKind::Anonymous);
    mf.write_at(a.start, b"first").unwrap();
    mf.write_at(a.start + 2 * PAGE_SIZE, b"second").unwrap();
    let mut meta = Vec::new();
    let mut pages = tempfile::tempfile().unwrap();
    mf.save_to(&mut meta, Some(&mut pages), &SaveOpts::default())
        .unwrap();
    pages.set_len(PAGE_SIZE + 10).unwrap();
    pages.seek(SeekFrom::Start(0)).unwrap();
    let err = MemoryFile::load_from(&meta[..], Some(source(&pages)), &LoadOpts::default())
        .err()
        .unwrap();
    // The metadata records the pages file's length: refused before any
    // page is read (`ShortPagesFile` is for files from before that).
    assert!(
        matches!(&err, Error::PagesFile(m) if m.contains("4106 bytes") && m.contains("truncated")),
        "{err}"
    );
}

#[test]
fn corrupt_metadata_is_an_error_never_a_panic() {
    let (_, meta, graph_end) = saved_inline();
    for i in 10..graph_end {
        for bit in [0x01, 0x10, 0x80] {
            let mut bad = meta.clone();
            bad[i] ^= bit;
            // Either refused, or (a flip in a value that stays consistent,
            // such as a memcg id) loaded into a file that works.
            if let Ok((mf, _)) = MemoryFile::load_from(&bad[..], None, &LoadOpts::default()) {
                let _ = mf.usage();
            }
        }
    }
}

/// A writer that fails with ENOSPC after `left` bytes.
struct Full {
    left: usize,
}

impl Write for Full {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::from_raw_os_error(ENOSPC));
        }
        let n = buf.len().min(self.left);
        self.left -= n;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const ENOSPC: i32 = 28;

#[test]
fn a_writer_failing_half_way_returns_the_error() {
    let mf = small_file();
    let a = alloc(&mf, 64 * PAGE_SIZE, MemoryKind::Anonymous);
    fill(&mf, a, 5);
    for left in [0, 100, 40_000] {
        let err = mf
            .save_to(Full { left }, None, &SaveOpts::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("No space left"), "{err}");
        let mut meta = Vec::new();
        let err = mf
            .save_to(&mut meta, Some(&mut Full { left }), &SaveOpts::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("No space left"), "{err}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Any sequence of allocations, writes and frees round-trips.
    #[test]
    fn any_history_round_trips(
        ops in prop::collection::vec((1u64..40, 0u8..4, any::<u64>(), any::<bool>()), 1..30),
        with_pages_file in any::<bool>(),
    ) {
        let mf = small_file();
        let mut live: Vec<FileRange> = Vec::new();
        for (pages, kind, seed, free) in ops {
            let r = alloc(&mf, pages * PAGE_SIZE, MemoryKind::ALL[kind as usize]);
            fill(&mf, r, seed);
            live.push(r);
            if free && live.len() > 1 {
                mf.dec_ref(live.remove(seed as usize % live.len())).unwrap();
            }
        }
        let before = contents(&mf);
        let back = round_trip(&mf, with_pages_file);
        prop_assert_eq!(contents(&back), before);
        prop_assert_eq!(back.segments(), mf.segments());
    }
}

#[test]
fn a_memory_file_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<MemoryFile>();
    let mf = small_file();
    let r = alloc(&mf, 64 * PAGE_SIZE, MemoryKind::Anonymous);
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let mf = &mf;
            s.spawn(move || {
                for p in (t..64).step_by(4) {
                    mf.write_at(r.start + p * PAGE_SIZE, &p.to_le_bytes())
                        .unwrap();
                }
            });
        }
    });
    for p in 0..64u64 {
        let mut b = [0u8; 8];
        mf.read_at(r.start + p * PAGE_SIZE, &mut b).unwrap();
        assert_eq!(u64::from_le_bytes(b), p);
    }
}

/// Metadata crafted by hand (the same type and field names as the
/// crate's own): every impossible claim is refused before anything is
/// allocated.
mod crafted {
    use super::*;

    #[derive(stateify::Stateify)]
    struct SavedFile {
        chunk_size: u64,
        file_size: u64,
        segments: Vec<SavedSegment>,
        blocks: Vec<SavedBlock>,
    }

    #[derive(stateify::Stateify)]
    struct SavedSegment {
        start: u64,
        end: u64,
        kind: MemoryKind,
        memcg: u32,
        refs: u64,
        committed: bool,
    }

    #[derive(stateify::Stateify)]
    struct SavedBlock {
        start: u64,
        len: u64,
    }

    fn load(f: &SavedFile) -> Result<(), Error> {
        let bytes = stateify::to_vec(f).unwrap();
        MemoryFile::load_from(&bytes[..], None, &LoadOpts::default()).map(|_| ())
    }

    fn good() -> SavedFile {
        SavedFile {
            chunk_size: 16 * MIB,
            file_size: 16 * MIB,
            segments: vec![SavedSegment {
                start: 0,
                end: 16 * MIB,
                kind: MemoryKind::Anonymous,
                memcg: 0,
                refs: 1,
                committed: false,
            }],
            blocks: vec![],
        }
    }

    #[test]
    fn impossible_metadata_is_refused() {
        load(&good()).unwrap();
        type Breaker = Box<dyn Fn(&mut SavedFile)>;
        let cases: Vec<(&str, Breaker)> = vec![
            ("huge file", Box::new(|f| f.file_size = 1 << 45)),
            ("odd chunk", Box::new(|f| f.chunk_size = 3 * MIB)),
            (
                "too many chunks",
                Box::new(|f| {
                    f.chunk_size = 4096;
                    f.file_size = 1 << 30;
                }),
            ),
            ("refs overflow", Box::new(|f| f.segments[0].refs = u64::MAX)),
            ("no refs", Box::new(|f| f.segments[0].refs = 0)),
            (
                "segment past the end",
                Box::new(|f| f.segments[0].end = 32 * MIB),
            ),
            ("unaligned segment", Box::new(|f| f.segments[0].start = 100)),
            (
                "block too large",
                Box::new(|f| {
                    f.blocks.push(SavedBlock {
                        start: 0,
                        len: 16 * MIB,
                    })
                }),
            ),
            (
                "block past the segments",
                Box::new(|f| {
                    f.segments[0].end = 4 * MIB;
                    f.blocks.push(SavedBlock {
                        start: 4 * MIB,
                        len: PAGE_SIZE,
                    });
                }),
            ),
            (
                "overlapping blocks",
                Box::new(|f| {
                    f.blocks.push(SavedBlock {
                        start: 0,
                        len: 2 * PAGE_SIZE,
                    });
                    f.blocks.push(SavedBlock {
                        start: PAGE_SIZE,
                        len: PAGE_SIZE,
                    });
                }),
            ),
            (
                "block end overflows",
                Box::new(|f| {
                    f.blocks.push(SavedBlock {
                        start: u64::MAX - 4095,
                        len: PAGE_SIZE,
                    })
                }),
            ),
        ];
        for (what, break_it) in cases {
            let mut f = good();
            break_it(&mut f);
            let err = load(&f)
                .err()
                .unwrap_or_else(|| panic!("{what} was accepted"));
            assert!(matches!(err, Error::Corrupt(_)), "{what}: {err}");
        }
    }
}

/// A page source that panics (or claims more bytes than it was given)
/// fails the load with an error; it never hangs it.
#[test]
fn a_misbehaving_page_source_is_an_error_not_a_hang() {
    struct Liar(bool);
    impl pgalloc::PageSource for Liar {
        fn read_at(&self, buf: &mut [u8], _: u64) -> std::io::Result<usize> {
            if self.0 {
                panic!("source bug");
            }
            Ok(buf.len() + 1)
        }
        fn size(&self) -> std::io::Result<u64> {
            Ok(1 << 30)
        }
    }
    let mf = small_file();
    let a = alloc(&mf, 4 * PAGE_SIZE, MemoryKind::Anonymous);
    mf.write_at(a.start, b"data").unwrap();
    let mut meta = Vec::new();
    mf.save_to(&mut meta, Some(&mut std::io::sink()), &SaveOpts::default())
        .unwrap();
    for panics in [true, false] {
        let (tx, rx) = std::sync::mpsc::channel();
        let meta = meta.clone();
        std::thread::spawn(move || {
            let r = MemoryFile::load_from(
                &meta[..],
                Some(std::sync::Arc::new(Liar(panics))),
                &LoadOpts::default(),
            );
            let _ = tx.send(r.err().map(|e| e.to_string()));
        });
        let err = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the load hung")
            .expect("a lying source was accepted");
        assert!(
            err.contains(if panics { "panicked" } else { "claims" }),
            "{err}"
        );
    }
}

/// Many small allocations and frees: first fit still reuses the lowest
/// hole (the search starts at the lowest free byte, not at 0).
#[test]
fn first_fit_reuses_the_lowest_hole_among_many() {
    let mf = small_file();
    let pages: Vec<FileRange> = (0..20_000)
        .map(|_| alloc(&mf, PAGE_SIZE, MemoryKind::Anonymous))
        .collect();
    for (i, p) in pages.iter().enumerate() {
        assert_eq!(p.start, i as u64 * PAGE_SIZE);
    }
    for p in pages.iter().skip(1000).step_by(3) {
        mf.dec_ref(*p).unwrap();
    }
    // Refilled in address order, lowest hole first.
    for p in pages.iter().skip(1000).step_by(3) {
        assert_eq!(alloc(&mf, PAGE_SIZE, MemoryKind::Anonymous), *p);
    }
    // Full again: the next one goes to the end.
    assert_eq!(
        alloc(&mf, PAGE_SIZE, MemoryKind::Anonymous).start,
        20_000 * PAGE_SIZE
    );
    // A two-page hole is not filled by a three-page allocation.
    mf.dec_ref(pages[10]).unwrap();
    mf.dec_ref(pages[11]).unwrap();
    let three = alloc(&mf, 3 * PAGE_SIZE, MemoryKind::Anonymous);
    assert_eq!(three.start, 20_001 * PAGE_SIZE);
    assert_eq!(
        alloc(&mf, 2 * PAGE_SIZE, MemoryKind::Anonymous),
        FileRange {
            start: pages[10].start,
            end: pages[11].end
        }
    );
}
