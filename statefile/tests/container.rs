//! The statefile container: round trips over sizes and chunkings, and every
//! way a file can be damaged: flipped bytes, truncation anywhere (chunk
//! boundaries included), reordered and spliced chunks, wrong keys, trailing
//! bytes, bad magic and versions.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use statefile::{read_header, Error, Reader, Writer};

fn meta(n: usize) -> BTreeMap<String, String> {
    (0..n).map(|i| (format!("k{i}"), "v".repeat(i))).collect()
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn write(
    payload: &[u8],
    key: Option<&[u8]>,
    m: &BTreeMap<String, String>,
    chunk: usize,
) -> Vec<u8> {
    let mut w = Writer::with_chunk_size(Vec::new(), key, m, chunk).unwrap();
    // Uneven writes: chunking must not depend on them.
    for part in payload.chunks(7) {
        w.write_all(part).unwrap();
    }
    let (file, totals) = w.finish().unwrap();
    assert_eq!(totals.bytes, payload.len() as u64);
    assert_eq!(totals.file_bytes, file.len() as u64);
    file
}

fn read(file: &[u8], key: Option<&[u8]>) -> Result<(BTreeMap<String, String>, Vec<u8>), Error> {
    let mut r = Reader::new(file, key)?;
    let m = r.metadata().clone();
    let mut out = Vec::new();
    r.read_to_end(&mut out).map_err(|e| match e.into_inner() {
        Some(inner) => match inner.downcast::<Error>() {
            Ok(e) => *e,
            Err(other) => Error::Io(std::io::Error::other(other)),
        },
        None => Error::Truncated(0),
    })?;
    Ok((m, out))
}

#[test]
fn round_trips_the_gvisor_table() {
    let sizes = [0, 1, 2, 3, 4, 5, 6, 7, 8, 33, 3 * 64, 30 * 64 + 5];
    for &len in &sizes {
        for metas in [0, 1, 5] {
            for key in [None, Some(&b"k"[..]), Some(&[7u8; 100][..])] {
                let payload = data(len);
                let m = meta(metas);
                let file = write(&payload, key, &m, 64);
                let (got_meta, got) = read(&file, key).unwrap();
                assert_eq!(got, payload);
                for (k, v) in &m {
                    assert_eq!(&got_meta[k], v);
                }
                assert_eq!(got_meta["_compression"], "none");
                assert_eq!(got_meta["_format_version"], "1.0");
                assert!(got_meta.contains_key("_timestamp"));
            }
        }
    }
}

#[test]
fn every_flipped_byte_is_detected() {
    let file = write(&data(300), Some(b"key"), &meta(2), 64);
    for i in 0..file.len() {
        let mut bad = file.clone();
        bad[i] ^= 0x10;
        assert!(
            read(&bad, Some(b"key")).is_err(),
            "flip at {i} went unnoticed"
        );
    }
}

#[test]
fn every_truncation_is_detected() {
    let file = write(&data(300), None, &meta(1), 64);
    for cut in 0..file.len() {
        let err = read(&file[..cut], None).unwrap_err();
        assert!(
            matches!(err, Error::Truncated(_) | Error::BadMagic),
            "cut at {cut}: {err}"
        );
    }
}

/// Offsets of each chunk in a file written with `chunk` bytes per chunk.
fn chunk_offsets(file: &[u8]) -> Vec<(usize, usize)> {
    let h = read_header(file).unwrap();
    let mut at = h.len as usize;
    let mut out = Vec::new();
    while at < file.len() {
        let len = u32::from_le_bytes(file[at + 8..at + 12].try_into().unwrap()) as usize;
        let end = at + 13 + len + 32;
        out.push((at, end));
        at = end;
    }
    out
}

#[test]
fn truncation_at_a_chunk_boundary_is_detected() {
    let file = write(&data(256), None, &meta(0), 64);
    let chunks = chunk_offsets(&file);
    assert_eq!(chunks.len(), 5, "4 data chunks + end chunk");
    for &(start, _) in &chunks {
        assert!(matches!(
            read(&file[..start], None),
            Err(Error::Truncated(_))
        ));
    }
}

#[test]
fn reordered_and_spliced_chunks_are_detected() {
    let file = write(&data(256), None, &meta(0), 64);
    let c = chunk_offsets(&file);
    let mut swapped = file[..c[0].0].to_vec();
    swapped.extend_from_slice(&file[c[1].0..c[1].1]);
    swapped.extend_from_slice(&file[c[0].0..c[0].1]);
    swapped.extend_from_slice(&file[c[2].0..]);
    assert!(matches!(
        read(&swapped, None),
        Err(Error::Reordered {
            expected: 0,
            found: 1,
            ..
        })
    ));

    // The same chunk position taken from another file with the same key.
    let other = write(
        &data(256).iter().map(|b| b ^ 1).collect::<Vec<_>>(),
        None,
        &meta(0),
        64,
    );
    let o = chunk_offsets(&other);
    let mut spliced = file[..c[1].0].to_vec();
    spliced.extend_from_slice(&other[o[1].0..o[1].1]);
    spliced.extend_from_slice(&file[c[2].0..]);
    assert!(matches!(
        read(&spliced, None),
        Err(Error::ChunkTampered { index: 1, .. })
    ));

    // Dropping a whole middle chunk.
    let mut dropped = file[..c[1].0].to_vec();
    dropped.extend_from_slice(&file[c[2].0..]);
    assert!(matches!(read(&dropped, None), Err(Error::Reordered { .. })));
}

#[test]
fn keys_headers_and_trailers() {
    let file = write(&data(10), Some(b"right"), &meta(1), 64);
    assert!(matches!(read(&file, Some(b"wrong")), Err(Error::WrongKey)));
    assert!(matches!(read(&file, None), Err(Error::KeyRequired)));
    // Metadata readable without the key.
    let h = read_header(&file[..]).unwrap();
    assert!(h.keyed);
    assert_eq!(h.metadata["k0"], "");

    let mut tampered = file.clone();
    tampered[25] ^= 1;
    assert!(matches!(
        read(&tampered, Some(b"right")),
        Err(Error::HeaderTampered)
    ));

    let mut magic = file.clone();
    magic[0] = b'X';
    assert!(matches!(read(&magic, Some(b"right")), Err(Error::BadMagic)));

    let mut version = file.clone();
    version[8] = 2;
    let err = read(&version, Some(b"right")).unwrap_err();
    assert!(
        matches!(err, Error::UnsupportedVersion { major: 2, minor: 0 }),
        "{err}"
    );

    let mut trailing = file.clone();
    trailing.push(0);
    assert!(matches!(
        read(&trailing, Some(b"right")),
        Err(Error::TrailingBytes(_))
    ));

    let reserved = BTreeMap::from([("_mine".to_string(), "x".to_string())]);
    assert!(matches!(
        Writer::new(Vec::new(), None, &reserved),
        Err(Error::ReservedKey(_))
    ));
    let huge = BTreeMap::from([("big".to_string(), "x".repeat(2 << 20))]);
    assert!(matches!(
        Writer::new(Vec::new(), None, &huge),
        Err(Error::MetadataTooLarge(_))
    ));
}

#[test]
fn a_stateify_stream_inside() {
    let mut w = Writer::new(Vec::new(), Some(b"k"), &BTreeMap::new()).unwrap();
    stateify::save(&mut w, &vec![1u64, 2, 3]).unwrap();
    stateify::save(&mut w, &"second".to_string()).unwrap();
    let (file, _) = w.finish().unwrap();
    let mut r = Reader::new(&file[..], Some(b"k")).unwrap();
    assert_eq!(
        stateify::load::<Vec<u64>, _>(&mut r).unwrap(),
        vec![1, 2, 3]
    );
    assert_eq!(stateify::load::<String, _>(&mut r).unwrap(), "second");
}

#[test]
fn atomic_creation_never_leaves_a_partial_file() {
    let dir = std::env::temp_dir().join(format!("statefile-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ckpt");
    let r: Result<(), std::io::Error> = statefile::create_atomic(&path, |w| {
        w.write_all(b"partial")?;
        Err(std::io::Error::other("disk full"))
    });
    assert!(r.is_err());
    assert!(!path.exists());
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "temporary file removed"
    );
    statefile::create_atomic(&path, |w| {
        let mut sw = Writer::new(w, None, &BTreeMap::new())?;
        sw.write_all(b"complete")?;
        sw.finish().map(|_| ())
    })
    .unwrap();
    let (_, got) = read(&std::fs::read(&path).unwrap(), None).unwrap();
    assert_eq!(got, b"complete");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn compressed_chunks_round_trip_and_resist_damage() {
    use statefile::{Compression, Options};
    for compression in [
        Compression::Lz4,
        Compression::Zstd(3),
        Compression::Zstd(19),
    ] {
        for len in [0, 1, 8, 33, 64 * 3, 64 * 30 + 5] {
            // Compressible and incompressible halves.
            let mut payload = vec![b'a'; len / 2];
            payload.extend(data(len - len / 2));
            let opts = Options {
                chunk_size: 64,
                compression,
                ..Options::default()
            };
            let mut w = Writer::with_options(Vec::new(), Some(b"k"), &meta(1), opts).unwrap();
            w.write_all(&payload).unwrap();
            let (file, _) = w.finish().unwrap();
            let (m, got) = read(&file, Some(b"k")).unwrap();
            assert_eq!(got, payload, "{compression:?} {len}");
            assert_eq!(
                m["_compression"],
                match compression {
                    Compression::Lz4 => "lz4".to_string(),
                    Compression::Zstd(l) => format!("zstd:{l}"),
                    Compression::None => unreachable!(),
                }
            );
            assert_eq!(
                read_header(&file[..]).unwrap().compression == Compression::Lz4,
                compression == Compression::Lz4
            );
            if len == 64 * 3 {
                for i in 0..file.len() {
                    let mut bad = file.clone();
                    bad[i] ^= 0x04;
                    assert!(
                        read(&bad, Some(b"k")).is_err(),
                        "flip at {i} went unnoticed"
                    );
                }
            }
        }
    }
    // A chunk exactly as large as the configured size, compressed.
    let big = vec![7u8; 1000];
    let opts = Options {
        chunk_size: 1000,
        compression: Compression::Lz4,
        ..Options::default()
    };
    let mut w = Writer::with_options(Vec::new(), None, &BTreeMap::new(), opts).unwrap();
    w.write_all(&big).unwrap();
    let (file, _) = w.finish().unwrap();
    let ok = read(&file, None).unwrap().1;
    assert_eq!(ok, big);
}

/// The bytes of a file do not depend on how many threads wrote it.
#[test]
fn worker_count_changes_nothing_but_speed() {
    use statefile::{Compression, Options};
    let payload = data(100_003);
    for compression in [Compression::None, Compression::Lz4, Compression::Zstd(1)] {
        let files: Vec<Vec<u8>> = [1, 2, 4]
            .into_iter()
            .map(|threads| {
                let opts = Options {
                    chunk_size: 1000,
                    compression,
                    threads,
                };
                let mut w = Writer::with_options(Vec::new(), Some(b"k"), &meta(2), opts).unwrap();
                for part in payload.chunks(4097) {
                    w.write_all(part).unwrap();
                }
                let (mut file, _) = w.finish().unwrap();
                // `_timestamp` differs between runs: compare from the chunks on.
                let hlen = read_header(&file[..]).unwrap().len as usize;
                file.drain(..hlen);
                file
            })
            .collect();
        assert_eq!(files[0], files[1], "{compression:?}");
        assert_eq!(files[0], files[2], "{compression:?}");
    }
}

/// Reading ahead must not report an error early: every byte before a bad
/// chunk is handed out first, whatever the number of threads.
#[test]
fn errors_come_after_the_bytes_before_them() {
    let payload = data(10 * 64);
    let file = write(&payload, Some(b"k"), &meta(1), 64);
    let chunks = chunk_offsets(&file);
    let (at, _) = chunks[6];
    for (damage, threads) in [(0, 1), (0, 2), (0, 4), (1, 4)] {
        let mut bad = file.clone();
        if damage == 0 {
            bad[at + 20] ^= 1; // a payload byte of chunk 6
        } else {
            bad.truncate(at + 5); // inside chunk 6's head
        }
        let mut r = Reader::with_threads(&bad[..], Some(b"k"), threads).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 10];
        let err = loop {
            match r.read(&mut buf) {
                Ok(0) => panic!("damage went unnoticed"),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => break e,
            }
        };
        assert_eq!(got, payload[..6 * 64], "threads {threads}: {err}");
        // The reader stays failed.
        assert!(r.read(&mut buf).is_err());
    }
}

/// `finish` verifies what the caller did not need to read: truncation of
/// the end is caught even after the last wanted byte, and unread data is
/// an error.
#[test]
fn finish_verifies_the_rest_of_the_file() {
    let payload = data(1000);
    let file = write(&payload, Some(b"k"), &meta(1), 64);
    let mut r = Reader::new(&file[..], Some(b"k")).unwrap();
    let mut got = vec![0u8; 1000];
    r.read_exact(&mut got).unwrap();
    r.finish().unwrap();

    let cut = &file[..file.len() - 10];
    let mut r = Reader::new(cut, Some(b"k")).unwrap();
    r.read_exact(&mut got).unwrap();
    let err = r.finish().unwrap_err();
    assert!(matches!(err, Error::Truncated(_)), "{err}");

    let mut r = Reader::new(&file[..], Some(b"k")).unwrap();
    r.read_exact(&mut got[..900]).unwrap();
    let err = r.finish().unwrap_err();
    assert!(matches!(err, Error::UnreadData(100)), "{err}");
}
