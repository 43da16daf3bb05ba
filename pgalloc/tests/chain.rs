//! Incremental saves and chains: a delta holds only the pages changed since
//! its parent (tracked through the API, and through raw mappings by
//! userfaultfd where the kernel has it), a chain restores to the live file
//! byte for byte, eagerly and in the background, and a broken chain is
//! refused before any page is read.

mod common;

use common::within;

use std::io::{self, IoSliceMut, Write};
use std::sync::Arc;

use pgalloc::{
    AllocOpts, Error, FileRange, LoadOpts, MemoryFile, MemoryFileOpts, MemoryKind, PageSource,
    SaveOpts, SaveStats, Tracking, TrackingMethod, PAGE_SIZE,
};
use proptest::prelude::*;

const MIB: u64 = 1 << 20;

/// One saved layer: its metadata and its pages file.
#[derive(Clone)]
struct Saved {
    meta: Vec<u8>,
    pages: Vec<u8>,
}

fn file(tracking: Tracking) -> MemoryFile {
    MemoryFile::new(MemoryFileOpts {
        chunk_size: 16 * MIB,
        huge_pages: false,
        tracking,
    })
    .unwrap()
}

fn save(mf: &MemoryFile, incremental: bool) -> (Saved, SaveStats) {
    let (mut meta, mut pages) = (Vec::new(), Vec::new());
    let opts = SaveOpts {
        incremental,
        ..SaveOpts::default()
    };
    let stats = mf.save_to(&mut meta, Some(&mut pages), &opts).unwrap();
    (Saved { meta, pages }, stats)
}

fn layers(chain: &[Saved]) -> Vec<(&[u8], Arc<dyn PageSource>)> {
    chain
        .iter()
        .map(|s| {
            (
                &s.meta[..],
                Arc::new(s.pages.clone()) as Arc<dyn PageSource>,
            )
        })
        .collect()
}

fn load(chain: &[Saved], background: bool) -> Result<MemoryFile, Error> {
    let opts = LoadOpts {
        background,
        ..LoadOpts::default()
    };
    MemoryFile::load_chain(layers(chain), &opts).map(|(mf, stats)| {
        assert_eq!(stats.layers, chain.len());
        assert!(stats.verified);
        mf
    })
}

/// Every allocated byte and every segment of `a` equal `b`'s.
fn assert_same(a: &MemoryFile, b: &MemoryFile) {
    assert_eq!(a.segments(), b.segments(), "segments");
    assert_eq!(a.usage(), b.usage(), "usage accounting");
    for (r, ..) in a.segments() {
        let (mut x, mut y) = (vec![0u8; r.len() as usize], vec![0u8; r.len() as usize]);
        a.read_at(r.start, &mut x).unwrap();
        b.read_at(r.start, &mut y).unwrap();
        if x != y {
            let at = x.iter().zip(&y).position(|(p, q)| p != q).unwrap();
            panic!("byte {:#x} differs", r.start + at as u64);
        }
    }
}

fn stamp(mf: &MemoryFile, at: u64, seed: u8) {
    mf.write_at(at, &[seed.max(1); 100]).unwrap();
}

/// Whether this process may use userfaultfd (root, here).
fn uffd_expected() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn a_delta_holds_only_the_pages_changed_through_the_api() {
    let mf = file(Tracking::Api);
    let a = mf.allocate(256 * PAGE_SIZE, AllocOpts::default()).unwrap();
    let b = mf.allocate(16 * PAGE_SIZE, AllocOpts::default()).unwrap();
    for p in 0..256 {
        stamp(&mf, a.start + p * PAGE_SIZE, p as u8);
    }
    stamp(&mf, b.start, 9);
    let (base, full) = save(&mf, false);
    assert_eq!(full.tracking, TrackingMethod::Full);
    assert_eq!(full.bytes_written, 257 * PAGE_SIZE);

    // Three pages written, one zeroed, one range freed, one allocated.
    for p in [3, 4, 200] {
        stamp(&mf, a.start + p * PAGE_SIZE + 7, 0xee);
    }
    mf.write_at(a.start + 10 * PAGE_SIZE, &[0; PAGE_SIZE as usize])
        .unwrap();
    mf.dec_ref(b).unwrap();
    let c = mf.allocate(2 * PAGE_SIZE, AllocOpts::default()).unwrap();
    stamp(&mf, c.start + PAGE_SIZE, 0x77);
    let (d1, delta) = save(&mf, true);
    assert_eq!(delta.tracking, TrackingMethod::Api);
    assert_eq!(delta.layer, 1);
    // The three written pages and the new one; the zeroed page is
    // recorded as changed, not written.
    assert_eq!(delta.bytes_written, 4 * PAGE_SIZE);
    assert!(delta.changed_bytes <= 6 * PAGE_SIZE, "{delta:?}");

    for background in [false, true] {
        let back = load(&[base.clone(), d1.clone()], background).unwrap();
        assert_same(&mf, &back);
    }
    // A delta alone is refused, and says how to load it.
    let err = MemoryFile::load_from(
        &d1.meta[..],
        Some(Arc::new(d1.pages.clone())),
        &LoadOpts::default(),
    )
    .err()
    .unwrap();
    assert!(
        matches!(&err, Error::Chain(m) if m.contains("load_chain")),
        "{err}"
    );
}

#[test]
fn writes_through_raw_mappings_are_tracked_by_the_kernel_or_make_every_page_count() {
    let mf = file(Tracking::Auto);
    let a = mf.allocate(512 * PAGE_SIZE, AllocOpts::default()).unwrap();
    for p in 0..512 {
        stamp(&mf, a.start + p * PAGE_SIZE, p as u8);
    }
    let (base, _) = save(&mf, false);
    let raw_write = |mf: &MemoryFile, page: u64, v: u8| {
        let r = FileRange {
            start: a.start + page * PAGE_SIZE,
            end: a.start + (page + 1) * PAGE_SIZE,
        };
        // SAFETY: no other thread touches the file; the range is allocated
        // and restored (await_range), and no safe slice of it is alive.
        unsafe {
            let p = mf.raw_ptr(r).unwrap();
            mf.await_range(r).unwrap();
            p.add(123).write_volatile(v);
        }
    };
    raw_write(&mf, 5, 0xab);
    raw_write(&mf, 300, 0xcd);
    let (d1, delta) = save(&mf, true);
    if delta.tracking == TrackingMethod::WriteProtect {
        assert_eq!(delta.bytes_written, 2 * PAGE_SIZE, "{delta:?}");
    } else {
        assert!(!uffd_expected(), "root, and yet no userfaultfd tracking");
        assert_eq!(delta.tracking, TrackingMethod::Untracked);
        assert_eq!(delta.bytes_written, 512 * PAGE_SIZE);
    }
    let back = load(&[base.clone(), d1.clone()], false).unwrap();
    assert_same(&mf, &back);

    // The restored file goes on from the chain: its own raw writes, and
    // none of the restore's, make the next delta.
    for background in [false, true] {
        let back = load(&[base.clone(), d1.clone()], background).unwrap();
        back.await_all().unwrap();
        raw_write(&back, 77, 0x11);
        let (d2, delta) = save(&back, true);
        assert_eq!(delta.layer, 2);
        if delta.tracking == TrackingMethod::WriteProtect {
            assert_eq!(delta.bytes_written, PAGE_SIZE, "background {background}");
        }
        let again = load(&[base.clone(), d1.clone(), d2], background).unwrap();
        assert_same(&back, &again);
    }
}

fn squash(chain: &[Saved]) -> Saved {
    let (mut meta, mut pages) = (Vec::new(), Vec::new());
    let stats =
        pgalloc::squash(layers(chain), &mut meta, &mut pages, &SaveOpts::default()).unwrap();
    assert_eq!((stats.layer, stats.tracking), (0, TrackingMethod::Full));
    Saved { meta, pages }
}

#[test]
fn a_squashed_chain_is_one_full_checkpoint_that_later_deltas_chain_onto() {
    let mf = file(Tracking::Api);
    let a = mf.allocate(64 * PAGE_SIZE, AllocOpts::default()).unwrap();
    for p in 0..64 {
        stamp(&mf, a.start + p * PAGE_SIZE, p as u8 + 1);
    }
    let mut chain = vec![save(&mf, false).0];
    for i in 0..3u64 {
        stamp(&mf, a.start + (10 + i) * PAGE_SIZE, 0xa0 + i as u8);
        chain.push(save(&mf, true).0);
    }
    let squashed = squash(&chain);
    let info = pgalloc::read_layer(&squashed.meta[..]).unwrap();
    let top = pgalloc::read_layer(&chain[3].meta[..]).unwrap();
    assert_eq!(
        (info.layer, info.parent, info.squashed),
        (0, None, Some(top.digest))
    );
    assert_eq!(top.layer, 3);
    assert_eq!(top.changed_bytes, PAGE_SIZE);
    // The next delta of the live file names layer 3, and loads on either.
    stamp(&mf, a.start + 40 * PAGE_SIZE, 0xff);
    let (d4, _) = save(&mf, true);
    assert_same(&mf, &load(&[squashed.clone(), d4.clone()], false).unwrap());
    chain.push(d4);
    assert_same(&mf, &load(&chain, true).unwrap());
    let infos: Vec<_> = chain
        .iter()
        .map(|s| pgalloc::read_layer(&s.meta[..]).unwrap())
        .collect();
    pgalloc::check_chain(&infos).unwrap();
    assert!(pgalloc::check_chain(&infos[1..]).is_err());
}

/// Pages read slowly: a background restore is still running while the
/// program starts writing.
struct Slow(Vec<u8>);

impl PageSource for Slow {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        std::thread::sleep(std::time::Duration::from_micros(300));
        self.0.read_at(buf, offset)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.0.len() as u64)
    }
}

#[test]
fn raw_writes_during_a_background_restore_make_the_next_delta_and_the_restore_does_not() {
    if !uffd_expected() {
        return;
    }
    let mf = file(Tracking::Auto);
    let a = mf.allocate(1024 * PAGE_SIZE, AllocOpts::default()).unwrap();
    for p in 0..1024 {
        stamp(&mf, a.start + p * PAGE_SIZE, p as u8 | 1);
    }
    let (base, _) = save(&mf, false);
    let chain: Vec<(&[u8], Arc<dyn PageSource>)> =
        vec![(&base.meta[..], Arc::new(Slow(base.pages.clone())))];
    let opts = LoadOpts {
        background: true,
        threads: 1,
        ..LoadOpts::default()
    };
    let (back, _) = MemoryFile::load_chain(chain, &opts).unwrap();
    let page = FileRange {
        start: a.start + 3 * PAGE_SIZE,
        end: a.start + 4 * PAGE_SIZE,
    };
    // SAFETY: this thread alone writes, after the page is restored, and no
    // slice of it is alive.
    unsafe {
        let p = back.raw_ptr(page).unwrap();
        back.await_range(page).unwrap();
        p.add(5).write_volatile(0x99);
    }
    let progress = back.restore_progress().unwrap();
    assert!(
        !progress.done,
        "the restore ended before the first raw write"
    );
    back.await_all().unwrap();
    let (d1, delta) = save(&back, true);
    assert_eq!(delta.tracking, TrackingMethod::WriteProtect);
    assert_eq!(delta.bytes_written, PAGE_SIZE, "{delta:?}");
    assert_same(&back, &load(&[base, d1], false).unwrap());
}

#[test]
fn broken_chains_are_refused_before_any_page_is_read() {
    let mf = file(Tracking::Api);
    let a = mf.allocate(8 * PAGE_SIZE, AllocOpts::default()).unwrap();
    stamp(&mf, a.start, 1);
    let (base, _) = save(&mf, false);
    stamp(&mf, a.start + PAGE_SIZE, 2);
    let (d1, _) = save(&mf, true);
    stamp(&mf, a.start + 2 * PAGE_SIZE, 3);
    let (d2, _) = save(&mf, true);
    // Another base, and a delta on it.
    let other = file(Tracking::Api);
    let o = other.allocate(8 * PAGE_SIZE, AllocOpts::default()).unwrap();
    stamp(&other, o.start, 4);
    let (_obase, _) = save(&other, false);
    stamp(&other, o.start, 5);
    let (od1, _) = save(&other, true);

    let refused = |chain: &[Saved], want: &str| {
        let err = load(chain, false).err().expect("refused");
        assert!(matches!(err, Error::Chain(_)), "{err}");
        assert!(err.to_string().contains(want), "{err} lacks {want:?}");
    };
    refused(&[base.clone(), d2.clone()], "missing or out of order");
    refused(
        &[base.clone(), d2.clone(), d1.clone()],
        "missing or out of order",
    );
    refused(&[d1.clone(), d2.clone()], "must start with its base");
    refused(&[base.clone(), od1], "layer 1's parent is");
    refused(
        &[base.clone(), base.clone()],
        "a full checkpoint, not a delta",
    );
    // A pages file of another layer.
    let swapped = Saved {
        meta: d1.meta.clone(),
        pages: d2.pages.clone(),
    };
    refused(&[base.clone(), swapped], "layer 1: the pages file belongs");
    // A cut delta pages file.
    let mut cut = d2.clone();
    cut.pages.truncate(cut.pages.len() - 1);
    refused(&[base.clone(), d1.clone(), cut], "layer 2: pages file");
    // The whole chain loads.
    assert_same(&mf, &load(&[base, d1, d2], false).unwrap());
}

#[test]
fn incremental_saves_that_cannot_be_are_refused_and_a_failed_one_loses_nothing() {
    let mf = file(Tracking::Api);
    let a = mf.allocate(8 * PAGE_SIZE, AllocOpts::default()).unwrap();
    stamp(&mf, a.start, 1);
    let incremental = SaveOpts {
        incremental: true,
        ..SaveOpts::default()
    };
    let err = mf
        .save_to(Vec::new(), Some(&mut Vec::new()), &incremental)
        .unwrap_err();
    assert!(err
        .to_string()
        .contains("no checkpoint to save changes against"));
    let (base, _) = save(&mf, false);
    let err = mf.save_to(Vec::new(), None, &incremental).unwrap_err();
    assert!(err.to_string().contains("needs a pages file"), "{err}");
    let off = file(Tracking::Off);
    off.allocate(PAGE_SIZE, AllocOpts::default()).unwrap();
    save(&off, false);
    let err = off
        .save_to(Vec::new(), Some(&mut Vec::new()), &incremental)
        .unwrap_err();
    assert!(err.to_string().contains("Tracking::Off"), "{err}");

    // A save that fails while writing pages keeps its changes for the next.
    stamp(&mf, a.start + 3 * PAGE_SIZE, 7);
    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("disk gone"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let err = mf
        .save_to(Vec::new(), Some(&mut Broken), &incremental)
        .unwrap_err();
    assert!(err.to_string().contains("disk gone"), "{err}");
    let (d1, stats) = save(&mf, true);
    assert_eq!(stats.bytes_written, PAGE_SIZE);
    assert_same(&mf, &load(&[base, d1], false).unwrap());
}

/// Reads of one layer fail; the others are fine.
struct Failing(Vec<u8>);

impl PageSource for Failing {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= pgalloc::PAGES_HEADER {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "injected"));
        }
        self.0.read_at(buf, offset)
    }

    fn read_vectored_at(&self, bufs: &mut [IoSliceMut<'_>], offset: u64) -> io::Result<usize> {
        match bufs.iter_mut().find(|b| !b.is_empty()) {
            Some(b) => self.read_at(b, offset),
            None => Ok(0),
        }
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.0.len() as u64)
    }
}

#[test]
fn io_errors_in_a_middle_layer_reach_the_accesses_they_affect() {
    within(60, || {
        let mf = file(Tracking::Api);
        let a = mf.allocate(64 * PAGE_SIZE, AllocOpts::default()).unwrap();
        for p in 0..64 {
            stamp(&mf, a.start + p * PAGE_SIZE, p as u8 + 1);
        }
        let (base, _) = save(&mf, false);
        stamp(&mf, a.start + 40 * PAGE_SIZE, 0x40);
        let (d1, _) = save(&mf, true);
        stamp(&mf, a.start + 50 * PAGE_SIZE, 0x50);
        let (d2, _) = save(&mf, true);
        let chain: Vec<(&[u8], Arc<dyn PageSource>)> = vec![
            (&base.meta[..], Arc::new(base.pages.clone())),
            (&d1.meta[..], Arc::new(Failing(d1.pages.clone()))),
            (&d2.meta[..], Arc::new(d2.pages.clone())),
        ];
        let opts = LoadOpts {
            background: true,
            threads: 2,
            ..LoadOpts::default()
        };
        let (back, _) = MemoryFile::load_chain(chain, &opts).unwrap();
        let mut buf = [0u8; 100];
        let err = back
            .read_at(a.start + 40 * PAGE_SIZE, &mut buf)
            .unwrap_err();
        assert!(
            matches!(&err, Error::PagesUnavailable { start, .. } if *start == a.start + 40 * PAGE_SIZE),
            "{err}"
        );
        assert!(err.to_string().contains("injected"), "{err}");
        // The layers above and below still serve their pages.
        back.read_at(a.start + 50 * PAGE_SIZE, &mut buf).unwrap();
        assert_eq!(buf, [0x50; 100]);
        back.read_at(a.start + 41 * PAGE_SIZE, &mut buf).unwrap();
        assert_eq!(buf, [42; 100]);
        assert!(back.await_all().is_err());
    });
}

#[derive(Clone, Debug)]
enum Op {
    Alloc(u64),
    /// Into allocation i (mod count): page, offset, byte, length.
    Write(usize, u64, u16, u8, u16),
    Raw(usize, u64, u8),
    Zero(usize, u64),
    Free(usize),
    Checkpoint,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1u64..40).prop_map(Op::Alloc),
        (
            any::<usize>(),
            0u64..40,
            0u16..4096,
            any::<u8>(),
            1u16..6000
        )
            .prop_map(|(i, p, o, b, n)| Op::Write(i, p, o, b, n)),
        (any::<usize>(), 0u64..40, any::<u8>()).prop_map(|(i, p, b)| Op::Raw(i, p, b)),
        (any::<usize>(), 0u64..40).prop_map(|(i, p)| Op::Zero(i, p)),
        any::<usize>().prop_map(Op::Free),
        Just(Op::Checkpoint),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random allocations, writes (through the API and raw pointers),
    /// zeroing and frees between checkpoints: the chain restores to the live
    /// file, eagerly and in the background, in bytes and in accounting.
    #[test]
    fn a_chain_restores_the_live_file(ops in proptest::collection::vec(op(), 1..60), api_only in any::<bool>()) {
        let mf = file(if api_only { Tracking::Api } else { Tracking::Auto });
        let mut allocs: Vec<FileRange> = vec![mf.allocate(8 * PAGE_SIZE, AllocOpts::default()).unwrap()];
        let mut chain = vec![save(&mf, false).0];
        let pick = |allocs: &[FileRange], i: usize, page: u64| {
            let r = allocs[i % allocs.len()];
            let pages = r.len() / PAGE_SIZE;
            (r, r.start + (page % pages) * PAGE_SIZE)
        };
        for op in ops {
            match op {
                Op::Alloc(pages) => {
                    let kind = if pages % 2 == 0 { MemoryKind::PageCache } else { MemoryKind::Anonymous };
                    allocs.push(mf.allocate(pages * PAGE_SIZE, AllocOpts { kind, memcg: 0 }).unwrap());
                }
                Op::Write(i, page, off, b, n) if !allocs.is_empty() => {
                    let (r, at) = pick(&allocs, i, page);
                    let at = at + off as u64;
                    let n = (n as u64).min(r.end.saturating_sub(at));
                    mf.write_at(at, &vec![b; n as usize]).unwrap();
                }
                Op::Raw(i, page, b) if !allocs.is_empty() => {
                    let (_, at) = pick(&allocs, i, page);
                    let p = FileRange { start: at, end: at + PAGE_SIZE };
                    // SAFETY: one thread, no slice alive, the range allocated.
                    unsafe { mf.raw_ptr(p).unwrap().add(99).write_volatile(b) };
                }
                Op::Zero(i, page) if !allocs.is_empty() => {
                    let (_, at) = pick(&allocs, i, page);
                    mf.write_at(at, &[0; PAGE_SIZE as usize]).unwrap();
                }
                Op::Free(i) if !allocs.is_empty() => {
                    let r = allocs.remove(i % allocs.len());
                    mf.dec_ref(r).unwrap();
                }
                Op::Checkpoint => chain.push(save(&mf, true).0),
                _ => {}
            }
        }
        chain.push(save(&mf, true).0);
        for background in [false, true] {
            let back = load(&chain, background).unwrap();
            assert_same(&mf, &back);
        }
        // Squashed, it is one full checkpoint of the same memory.
        let squashed = squash(&chain);
        let (back, stats) = MemoryFile::load_from(
            &squashed.meta[..],
            Some(Arc::new(squashed.pages.clone())),
            &LoadOpts::default(),
        )
        .unwrap();
        assert_eq!(stats.layers, 1);
        assert_same(&mf, &back);
    }
}
