//! Write and read throughput of the container (no compression, keyed MAC)
//! against a plain copy of the same bytes, side by side.
//!
//! `cargo bench -p statefile --bench throughput`

use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::{Read, Write};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const LEN: usize = 256 << 20;

fn bench(c: &mut Criterion) {
    let data: Vec<u8> = (0..LEN)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[3])
        .collect();
    let meta = BTreeMap::new();
    let mut file = Vec::with_capacity(LEN + (LEN >> 10));
    let mut g = c.benchmark_group("statefile-256MiB");
    g.throughput(Throughput::Bytes(LEN as u64));
    let mut sink = Vec::with_capacity(LEN);
    g.bench_function("plain copy", |b| {
        b.iter(|| {
            sink.clear();
            sink.extend_from_slice(black_box(&data));
        })
    });
    // The MAC candidates alone, over the same bytes in 1 MiB pieces.
    g.bench_function("mac keyed-blake3", |b| {
        b.iter(|| {
            let mut last = [0u8; 32];
            for piece in black_box(&data).chunks(1 << 20) {
                let mut h = blake3::Hasher::new_keyed(&[7u8; 32]);
                h.update(&last);
                h.update(piece);
                last = *h.finalize().as_bytes();
            }
            last
        })
    });
    g.bench_function("mac hmac-sha256", |b| {
        use hmac::{Hmac, Mac};
        b.iter(|| {
            let mut last = [0u8; 32];
            for piece in black_box(&data).chunks(1 << 20) {
                let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&[7u8; 32]).unwrap();
                m.update(&last);
                m.update(piece);
                last = m.finalize().into_bytes().into();
            }
            last
        })
    });
    g.bench_function("write (MAC, none)", |b| {
        b.iter(|| {
            file.clear();
            let mut w = statefile::Writer::new(&mut file, Some(b"key"), &meta).unwrap();
            w.write_all(black_box(&data)).unwrap();
            w.finish().unwrap();
        })
    });
    let mut out = Vec::with_capacity(LEN);
    g.bench_function("read (MAC, none)", |b| {
        b.iter(|| {
            out.clear();
            let mut r = statefile::Reader::new(black_box(&file[..]), Some(b"key")).unwrap();
            r.read_to_end(&mut out).unwrap();
        })
    });
    for (label, compression) in [
        ("lz4", statefile::Compression::Lz4),
        ("zstd:3", statefile::Compression::Zstd(3)),
    ] {
        let opts = statefile::Options {
            compression,
            ..Default::default()
        };
        g.bench_function(format!("write (MAC, {label})"), |b| {
            b.iter(|| {
                file.clear();
                let mut w =
                    statefile::Writer::with_options(&mut file, Some(b"key"), &meta, opts).unwrap();
                w.write_all(black_box(&data)).unwrap();
                w.finish().unwrap();
            })
        });
        if !file.is_empty() {
            eprintln!("{label}: {} of {} bytes", file.len(), LEN);
        }
        g.bench_function(format!("read (MAC, {label})"), |b| {
            b.iter(|| {
                out.clear();
                let mut r = statefile::Reader::new(black_box(&file[..]), Some(b"key")).unwrap();
                r.read_to_end(&mut out).unwrap();
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
