//! Every page block is checked against the BLAKE3 digests the metadata
//! records, on every load path: a damaged or foreign pages file is an
//! error, never memory that silently differs from what was saved.

mod common;

use common::within;

use std::sync::Arc;

use pgalloc::{
    AllocOpts, Error, FileRange, LoadOpts, MemoryFile, MemoryFileOpts, SaveOpts, PAGE_SIZE,
};

/// `pages` pages of data (every byte depends on its offset and `seed`),
/// saved to metadata, a pages file, and inline.
struct Saved {
    meta: Vec<u8>,
    pages: Vec<u8>,
    inline: Vec<u8>,
    range: FileRange,
}

fn saved(pages: u64, seed: u8, opts: SaveOpts) -> Saved {
    let mf = MemoryFile::new(MemoryFileOpts {
        chunk_size: 64 << 20,
        huge_pages: false,
        ..Default::default()
    })
    .unwrap();
    let range = mf
        .allocate(pages * PAGE_SIZE, AllocOpts::default())
        .unwrap();
    let data: Vec<u8> = (0..range.len())
        .map(|i| (i as u8).wrapping_mul(31) ^ seed | 1)
        .collect();
    mf.write_at(range.start, &data).unwrap();
    let (mut meta, mut pages, mut inline) = (Vec::new(), Vec::new(), Vec::new());
    mf.save_to(&mut meta, Some(&mut pages), &opts).unwrap();
    mf.save_to(&mut inline, None, &opts).unwrap();
    Saved {
        meta,
        pages,
        inline,
        range,
    }
}

fn eager() -> LoadOpts {
    LoadOpts {
        threads: 1,
        ..LoadOpts::default()
    }
}

fn load(
    meta: &[u8],
    pages: Vec<u8>,
    opts: &LoadOpts,
) -> Result<(MemoryFile, pgalloc::LoadStats), Error> {
    MemoryFile::load_from(meta, Some(Arc::new(pages)), opts)
}

fn is_mismatch(e: &Error) -> bool {
    e.to_string().contains("do not match their BLAKE3 digest")
}

#[test]
fn every_flipped_byte_of_a_small_pages_file_is_caught() {
    let s = saved(2, 7, SaveOpts::default());
    let (_, stats) = load(&s.meta, s.pages.clone(), &eager()).unwrap();
    assert!(stats.verified);
    for i in 0..s.pages.len() {
        let mut p = s.pages.clone();
        p[i] ^= 1 << (i % 8);
        let e = load(&s.meta, p, &eager()).map(drop);
        // The header is checked first, whole; every page byte has a digest.
        match i {
            0..4096 => assert!(e.is_err(), "header byte {i} flipped and loaded"),
            _ => assert!(is_mismatch(&e.unwrap_err()), "byte {i}"),
        }
    }
}

#[test]
fn flips_in_a_large_pages_file_are_caught_at_sampled_bytes() {
    // 3 MiB: 48 pieces of 64 KiB in blocks of at most 8 MiB.
    let s = saved(768, 3, SaveOpts::default());
    for i in (4096..s.pages.len())
        .step_by(4099)
        .chain([s.pages.len() - 1])
    {
        let mut p = s.pages.clone();
        p[i] ^= 0x80;
        let e = load(&s.meta, p, &eager())
            .map(drop)
            .expect_err("a flipped byte loaded");
        assert!(is_mismatch(&e), "byte {i}: {e}");
    }
}

#[test]
fn inline_pages_are_verified_too() {
    let s = saved(2, 9, SaveOpts::default());
    let (_, stats) = MemoryFile::load_from(&s.inline[..], None, &eager()).unwrap();
    assert!(stats.verified);
    // The page bytes are the end of the stream (after the graph and a
    // record header): flip each.
    let pages_at = s.inline.len() - s.range.len() as usize;
    for i in pages_at..s.inline.len() {
        let mut b = s.inline.clone();
        b[i] ^= 0x10;
        let e = MemoryFile::load_from(&b[..], None, &eager())
            .map(drop)
            .expect_err("a flipped inline byte loaded");
        assert!(is_mismatch(&e), "byte {i}: {e}");
    }
}

#[test]
fn another_checkpoints_pages_file_is_refused_by_its_header() {
    let a = saved(4, 1, SaveOpts::default());
    let b = saved(4, 1, SaveOpts::default());
    // Same memory, same bytes: only the ids differ.
    assert_eq!(a.pages[4096..], b.pages[4096..]);
    let e = load(&a.meta, b.pages.clone(), &eager())
        .map(drop)
        .unwrap_err();
    assert!(matches!(e, Error::ForeignPages { .. }), "{e}");
    assert!(e.to_string().contains("another checkpoint"), "{e}");
    let (_, stats) = load(&b.meta, b.pages.clone(), &eager()).unwrap();
    assert_eq!(
        pgalloc::read_pages_header(&b.pages[..4096]).unwrap(),
        stats.checkpoint_id
    );
    assert_ne!(stats.checkpoint_id, 0);
    // No header at all (a bare pages file): refused with a message.
    let e = load(&a.meta, a.pages[4096..].to_vec(), &eager())
        .map(drop)
        .unwrap_err();
    assert!(matches!(e, Error::PagesFile(_)), "{e}");
}

#[test]
fn other_pages_behind_the_right_header_fail_their_digests() {
    let a = saved(4, 1, SaveOpts::default());
    let b = saved(4, 2, SaveOpts::default());
    assert_eq!(a.pages.len(), b.pages.len(), "same layout, other contents");
    // b's page data behind a's header (a copy that mixed up the two).
    let mut p = a.pages[..4096].to_vec();
    p.extend_from_slice(&b.pages[4096..]);
    let e = load(&a.meta, p, &eager()).map(drop).unwrap_err();
    assert!(is_mismatch(&e), "{e}");
}

#[test]
fn truncated_and_extended_pages_files_are_refused_before_any_page_is_read() {
    let s = saved(4, 5, SaveOpts::default());
    for (what, len) in [
        ("truncated", s.pages.len() - 1),
        ("extended", s.pages.len() + 4096),
    ] {
        let mut p = s.pages.clone();
        p.resize(len, 0);
        let e = load(&s.meta, p, &eager()).map(drop).unwrap_err();
        assert!(
            matches!(&e, Error::PagesFile(m) if m.contains(what)),
            "{what}: {e}"
        );
    }
}

#[test]
fn a_bad_block_in_a_background_restore_fails_only_the_accesses_that_touch_it() {
    // 4 MiB: damage one 64 KiB piece, in the sixth 256 KiB quarter-MiB.
    let s = saved(1024, 11, SaveOpts::default());
    let mut p = s.pages.clone();
    let bad = 4096 + 5 * (256 << 10) + 1000;
    p[bad] ^= 0xff;
    let (meta, r) = (s.meta.clone(), s.range);
    within(60, move || {
        let opts = LoadOpts {
            background: true,
            threads: 2,
            ..LoadOpts::default()
        };
        let (mf, stats) = load(&meta, p, &opts).unwrap();
        assert!(stats.verified);
        let piece = 256 << 10;
        for k in 0..16u64 {
            let at = r.start + k * piece;
            let mut buf = [0u8; 16];
            let got = mf.read_at(at + 100, &mut buf);
            if k == 5 {
                let e = got.expect_err("the damaged piece was readable");
                assert!(is_mismatch(&e), "{e}");
            } else {
                got.unwrap_or_else(|e| panic!("piece {k}: {e}"));
            }
        }
        assert!(mf.await_all().is_err(), "the restore as a whole failed");
    });
}

#[test]
fn a_trusted_restore_may_skip_verification_and_says_so() {
    let s = saved(2, 13, SaveOpts::default());
    let mut p = s.pages.clone();
    p[4096 + 10] ^= 1;
    let opts = LoadOpts {
        skip_verify: true,
        ..eager()
    };
    let (mf, stats) = load(&s.meta, p, &opts).unwrap();
    assert!(!stats.verified);
    let mut b = [0u8; 1];
    mf.read_at(s.range.start + 10, &mut b).unwrap();
    // Saved without digests: loads, unverified.
    let s = saved(
        2,
        13,
        SaveOpts {
            skip_digests: true,
            ..SaveOpts::default()
        },
    );
    let (_, stats) = load(&s.meta, s.pages.clone(), &eager()).unwrap();
    assert!(!stats.verified);
}

#[test]
fn verify_pages_checks_a_pages_file_without_loading_it() {
    let s = saved(1024, 21, SaveOpts::default());
    let r = pgalloc::verify_pages(&s.meta[..], &s.pages).unwrap();
    assert!(r.verified);
    // Pieces of 64 KiB.
    assert_eq!((r.pieces, r.bytes), (64, 4 << 20));
    assert_eq!(
        r.checkpoint_id,
        pgalloc::read_pages_header(&s.pages).unwrap()
    );
    // A flipped byte is named by its block, memory range and file offset.
    let mut p = s.pages.clone();
    let at = 4096 + 7 * (256 << 10) + 5;
    p[at] ^= 4;
    match pgalloc::verify_pages(&s.meta[..], &p) {
        Err(Error::BadPages {
            start, end, offset, ..
        }) => {
            assert_eq!(start, s.range.start + 7 * (256 << 10));
            assert_eq!(end - start, 64 << 10);
            assert_eq!(offset, 4096 + 7 * (256 << 10));
        }
        other => panic!("{other:?}"),
    }
    let other = saved(1024, 21, SaveOpts::default());
    let e = pgalloc::verify_pages(&s.meta[..], &other.pages).unwrap_err();
    assert!(matches!(e, Error::ForeignPages { .. }), "{e}");
}
