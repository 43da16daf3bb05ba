//! Background restore: accesses during the load see exactly the saved
//! bytes, waited pages come first, faults reach the accesses they affect
//! (never a panic or a hang), freed ranges are never read, completion and
//! progress are reported.

mod common;

use common::within;

use std::fs::File;
use std::io::{self, IoSliceMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use pgalloc::{
    AllocOpts, Error, FileRange, LoadOpts, MemoryFile, MemoryFileOpts, PageSource, SaveOpts,
    PAGE_SIZE,
};

const MIB: u64 = 1 << 20;

/// The 8 bytes every page starts with: its own offset, plus a seed.
fn stamp(at: u64) -> [u8; 8] {
    (at ^ 0x5a5a_0000_0000).to_le_bytes()
}

/// A file of `pages` pages, each stamped; saved to a pages file.
fn saved(pages: u64) -> (Vec<u8>, File, FileRange) {
    let mf = MemoryFile::new(MemoryFileOpts {
        chunk_size: 64 * MIB,
        huge_pages: false,
        ..Default::default()
    })
    .unwrap();
    let r = mf
        .allocate(pages * PAGE_SIZE, AllocOpts::default())
        .unwrap();
    for p in 0..pages {
        let at = r.start + p * PAGE_SIZE;
        mf.write_at(at, &stamp(at)).unwrap();
        mf.write_at(at + PAGE_SIZE - 8, &stamp(at)).unwrap();
    }
    let mut meta = Vec::new();
    let mut pages_file = tempfile::tempfile().unwrap();
    mf.save_to(&mut meta, Some(&mut pages_file), &SaveOpts::default())
        .unwrap();
    (meta, pages_file, r)
}

#[derive(Clone, Copy)]
enum Fault {
    None,
    /// Reads covering this pages-file offset fail.
    FailAt(u64),
    /// At most this many bytes per read.
    Short(usize),
    /// The file ends here (its length still claims more).
    TruncatedAt(u64),
}

/// A pages source that is slow, and faulty on demand.
struct Source {
    file: File,
    delay: Duration,
    fault: Fault,
    reads: AtomicU64,
}

impl Source {
    fn new(file: &File, delay_us: u64, fault: Fault) -> Arc<Source> {
        Arc::new(Source {
            file: file.try_clone().unwrap(),
            delay: Duration::from_micros(delay_us),
            fault,
            reads: AtomicU64::new(0),
        })
    }
}

impl PageSource for Source {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(self.delay);
        let mut len = buf.len();
        match self.fault {
            Fault::None => {}
            Fault::FailAt(at) if offset <= at && at < offset + len as u64 => {
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, "injected"));
            }
            Fault::FailAt(_) => {}
            Fault::Short(n) => len = len.min(n),
            Fault::TruncatedAt(at) => len = len.min(at.saturating_sub(offset) as usize),
        }
        std::os::unix::fs::FileExt::read_at(&self.file, &mut buf[..len], offset)
    }

    fn read_vectored_at(&self, bufs: &mut [IoSliceMut<'_>], offset: u64) -> io::Result<usize> {
        // One buffer at a time: exercises the short-read path too.
        match bufs.iter_mut().find(|b| !b.is_empty()) {
            Some(b) => self.read_at(b, offset),
            None => Ok(0),
        }
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
}

fn background(threads: usize) -> LoadOpts {
    LoadOpts {
        threads,
        background: true,
        ..LoadOpts::default()
    }
}

fn check_page(mf: &MemoryFile, at: u64) -> Result<(), Error> {
    let mut head = [0u8; 8];
    let mut tail = [0u8; 8];
    mf.read_at(at, &mut head)?;
    mf.read_at(at + PAGE_SIZE - 8, &mut tail)?;
    assert_eq!(head, stamp(at), "page {at:#x}");
    assert_eq!(tail, stamp(at), "page {at:#x}");
    Ok(())
}

#[test]
fn many_threads_touching_pages_during_the_load_see_the_saved_bytes() {
    within(60, || {
        let pages = 4096; // 16 MiB: 64 units
        let (meta, file, r) = saved(pages);
        let src = Source::new(&file, 300, Fault::None);
        let (mf, stats) = MemoryFile::load_from(&meta[..], Some(src), &background(1)).unwrap();
        assert_eq!(stats.bytes_read, 0, "returned before the pages");
        let mf = Arc::new(mf);
        std::thread::scope(|s| {
            for t in 0..8u64 {
                let mf = mf.clone();
                s.spawn(move || {
                    let mut x = t * 7919 + 1;
                    for _ in 0..200 {
                        x = x
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        let p = (x >> 33) % pages;
                        let at = r.start + p * PAGE_SIZE;
                        if p % 8 == t {
                            // This thread's pages: write, then it must stay.
                            mf.write_at(at + 100, &t.to_le_bytes()).unwrap();
                            let mut b = [0u8; 8];
                            mf.read_at(at + 100, &mut b).unwrap();
                            assert_eq!(u64::from_le_bytes(b), t);
                        }
                        check_page(&mf, at).unwrap();
                    }
                });
            }
        });
        mf.await_all().unwrap();
        let progress = mf.restore_progress().unwrap();
        assert!(progress.done);
        assert_eq!(progress.bytes_loaded, pages * PAGE_SIZE);
        assert!(progress.waiters_served > 0);
        for p in 0..pages {
            check_page(&mf, r.start + p * PAGE_SIZE).unwrap();
        }
    });
}

#[test]
fn a_waiter_on_the_last_page_is_served_before_the_unwaited_middle() {
    within(60, || {
        let pages = 4096;
        let (meta, file, r) = saved(pages);
        let src = Source::new(&file, 2000, Fault::None);
        // Reads of one unit, so the worker is soon free to help.
        let opts = LoadOpts {
            max_read: 256 << 10,
            ..background(1)
        };
        let (mf, _) = MemoryFile::load_from(&meta[..], Some(src), &opts).unwrap();
        let last = r.start + (pages - 1) * PAGE_SIZE;
        check_page(&mf, last).unwrap();
        // A large waited range (24 units of 64) near the end, which the
        // worker helps with once its current read is done.
        let waited = FileRange {
            start: r.start + 40 * 64 * PAGE_SIZE,
            end: r.start + (pages - 64) * PAGE_SIZE,
        };
        mf.await_range(waited).unwrap();
        mf.await_all().unwrap();
        let order = mf.restore_read_order();
        let pos = |at: u64| {
            order
                .iter()
                .position(|&(start, len, _)| start <= at && at < start + len)
                .unwrap()
        };
        let middle = r.start + 20 * 64 * PAGE_SIZE;
        assert!(
            pos(last) < pos(middle),
            "last page read at {}, middle at {}: {order:?}",
            pos(last),
            pos(middle)
        );
        assert!(order[pos(last)].2, "the waiter read its own page");
        assert!(pos(waited.start) < pos(middle));
        // The worker served part of the waited range before the middle.
        let helped = order.iter().position(|&(start, _, by_waiter)| {
            !by_waiter && start >= waited.start && start < waited.end
        });
        assert!(
            helped.is_some_and(|h| h < pos(middle)),
            "the worker did not help the waiter first: {order:?}"
        );
    });
}

#[test]
fn a_failing_read_fails_the_pages_it_covers_and_nothing_else() {
    within(60, || {
        let pages = 1024;
        let (meta, file, r) = saved(pages);
        let bad_at = 700 * PAGE_SIZE; // pages-file offset = memory offset here
        let src = Source::new(&file, 50, Fault::FailAt(bad_at));
        let (mf, _) = MemoryFile::load_from(&meta[..], Some(src), &background(2)).unwrap();
        let err = check_page(&mf, r.start + 700 * PAGE_SIZE).unwrap_err();
        assert!(
            matches!(&err, Error::PagesUnavailable { error, .. } if error.kind() == io::ErrorKind::PermissionDenied),
            "{err}"
        );
        // The same error kind for every later access to those pages.
        for _ in 0..3 {
            let err = check_page(&mf, r.start + 700 * PAGE_SIZE).unwrap_err();
            assert!(err.to_string().contains("injected"), "{err}");
        }
        let all = mf.await_all().unwrap_err();
        assert!(all.to_string().contains("injected"), "{all}");
        // Pages far from the failure are fine.
        check_page(&mf, r.start).unwrap();
        check_page(&mf, r.start + 1000 * PAGE_SIZE).unwrap();
        let p = mf.restore_progress().unwrap();
        assert!(p.done && p.bytes_failed > 0 && p.bytes_failed < pages * PAGE_SIZE / 2);
    });
}

#[test]
fn short_reads_are_retried() {
    within(60, || {
        let pages = 512;
        let (meta, file, r) = saved(pages);
        let src = Source::new(&file, 0, Fault::Short(1000));
        let (mf, _) = MemoryFile::load_from(&meta[..], Some(src), &background(2)).unwrap();
        mf.await_all().unwrap();
        for p in 0..pages {
            check_page(&mf, r.start + p * PAGE_SIZE).unwrap();
        }
    });
}

#[test]
fn a_pages_file_truncated_underneath_fails_the_pages_past_the_cut() {
    within(60, || {
        let pages = 512;
        let (meta, file, r) = saved(pages);
        let cut = 300 * PAGE_SIZE + 123;
        let src = Source::new(&file, 20, Fault::TruncatedAt(cut));
        let (mf, _) = MemoryFile::load_from(&meta[..], Some(src), &background(2)).unwrap();
        let err = check_page(&mf, r.start + 400 * PAGE_SIZE).unwrap_err();
        assert!(
            matches!(&err, Error::PagesUnavailable { error, .. } if error.kind() == io::ErrorKind::UnexpectedEof),
            "{err}"
        );
        check_page(&mf, r.start + 10 * PAGE_SIZE).unwrap();
        assert!(mf.await_all().is_err());
    });
    // Truncated before the load: refused at once (its length is not the
    // one the metadata records).
    let (meta, file, _) = saved(64);
    file.set_len(10 * PAGE_SIZE).unwrap();
    let err = MemoryFile::load_from(&meta[..], Some(Arc::new(file)), &background(1))
        .err()
        .unwrap();
    assert!(
        matches!(&err, Error::PagesFile(m) if m.contains("truncated")),
        "{err}"
    );
}

#[test]
fn a_range_freed_while_queued_is_never_read() {
    within(60, || {
        let pages = 2048;
        let (meta, file, r) = saved(pages);
        let src = Source::new(&file, 3000, Fault::None);
        let (mf, _) = MemoryFile::load_from(&meta[..], Some(src), &background(1)).unwrap();
        // The back half, long before the slow worker gets there.
        let half = FileRange {
            start: r.start + pages / 2 * PAGE_SIZE,
            end: r.end,
        };
        mf.dec_ref(half).unwrap();
        mf.await_all().unwrap();
        for &(start, len, _) in &mf.restore_read_order() {
            assert!(
                start + len <= half.start,
                "read {start:#x}+{len} inside the freed range"
            );
        }
        // Reallocated, it reads as zeros.
        let again = mf.allocate(half.len(), AllocOpts::default()).unwrap();
        assert_eq!(again, half);
        mf.with_slice(again, |s| assert!(s.iter().all(|&b| b == 0)))
            .unwrap();
        check_page(&mf, r.start).unwrap();
    });
}

#[test]
fn completion_releases_the_pages_file_and_reports() {
    within(60, || {
        let (meta, file, _) = saved(256);
        let src = Source::new(&file, 100, Fault::None);
        let held = src.clone();
        let (mf, _) = MemoryFile::load_from(&meta[..], Some(src), &background(2)).unwrap();
        let (tx, rx) = mpsc::channel();
        mf.on_restore_complete(move |r| {
            let _ = tx.send(r.map_err(|e| e.to_string()));
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(30)).unwrap(), Ok(()));
        let p = mf.restore_progress().unwrap();
        assert!(p.done);
        assert_eq!(p.bytes_loaded, p.bytes_total);
        assert!(p.mb_per_s() > 0.0);
        // The restore let go of its handle: the pages file may be deleted.
        assert_eq!(Arc::strong_count(&held), 1);
        assert!(held.reads.load(Ordering::Relaxed) > 0);
        // A callback registered after the end runs at once.
        let (tx, rx) = mpsc::channel();
        mf.on_restore_complete(move |r| {
            let _ = tx.send(r.is_ok());
        });
        assert!(rx.recv_timeout(Duration::from_secs(1)).unwrap());
    });
}

#[test]
fn dropping_the_file_mid_restore_stops_the_workers() {
    within(60, || {
        let (meta, file, _) = saved(1024);
        let src = Source::new(&file, 5000, Fault::None);
        let held = src.clone();
        let (mf, _) = MemoryFile::load_from(&meta[..], Some(src), &background(2)).unwrap();
        drop(mf);
        // Workers joined: nobody holds the source any more.
        assert_eq!(Arc::strong_count(&held), 1);
    });
}
