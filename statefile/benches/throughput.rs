//! Write and read throughput of the container on checkpoint-like data (1 GiB,
//! alternating 64 KiB runs of zeros and random bytes), with 1 thread (the
//! caller alone) and 2 (the caller and one worker), beside a plain copy of the same bytes (the ceiling), and the two
//! MAC candidates alone.
//!
//! `cargo bench -p statefile --bench throughput` (`STATEFILE_BENCH_MIB=256`
//! for a smaller input; a criterion filter such as `-- zstd` for some cases).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::{BufRead, Read, Write};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use statefile::{Compression, Options, Reader, Writer};

fn checkpoint_like(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut data = vec![0u8; len];
    for (i, run) in data.chunks_mut(64 << 10).enumerate() {
        if i % 2 == 1 {
            for b in run.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b.copy_from_slice(&x.to_le_bytes()[..b.len()]);
            }
        }
    }
    data
}

fn bench(c: &mut Criterion) {
    let mib: usize = std::env::var("STATEFILE_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let len = mib << 20;
    let data = checkpoint_like(len);
    let meta = BTreeMap::new();
    let mut file = Vec::with_capacity(len + (len >> 6));
    let mut out = Vec::with_capacity(len);
    let mut g = c.benchmark_group(format!("statefile-{mib}MiB"));
    g.throughput(Throughput::Bytes(len as u64));
    g.bench_function("plain copy (ceiling)", |b| {
        b.iter(|| {
            out.clear();
            out.extend_from_slice(black_box(&data));
        })
    });
    // The MAC candidates alone, one core, over the same bytes in 1 MiB pieces.
    g.bench_function("mac keyed-blake3", |b| {
        b.iter(|| {
            let mut last = [0u8; 32];
            for piece in black_box(&data).chunks(1 << 20) {
                let mut h = blake3::Hasher::new_keyed(&[7u8; 32]);
                h.update(piece);
                h.update(&last);
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
                m.update(piece);
                m.update(&last);
                last = m.finalize().into_bytes().into();
            }
            last
        })
    });
    for (label, compression) in [
        ("none", Compression::None),
        ("lz4", Compression::Lz4),
        ("zstd:1", Compression::Zstd(1)),
    ] {
        for threads in [1, 2] {
            let opts = Options {
                compression,
                threads,
                ..Options::default()
            };
            g.bench_function(format!("write {label} MAC, {threads} threads"), |b| {
                b.iter(|| {
                    file.clear();
                    let mut w = Writer::with_options(&mut file, Some(b"key"), &meta, opts).unwrap();
                    w.write_all(black_box(&data)).unwrap();
                    w.finish().unwrap();
                })
            });
        }
        // The file the reads use (written here too when a filter skipped the writes).
        file.clear();
        let opts = Options {
            compression,
            ..Options::default()
        };
        let mut w = Writer::with_options(&mut file, Some(b"key"), &meta, opts).unwrap();
        w.write_all(&data).unwrap();
        w.finish().unwrap();
        eprintln!("{label}: {} of {len} bytes", file.len());
        for threads in [1, 2] {
            g.bench_function(format!("read {label} MAC, {threads} threads"), |b| {
                b.iter(|| {
                    out.clear();
                    let mut r =
                        Reader::with_threads(black_box(&file[..]), Some(b"key"), threads).unwrap();
                    r.read_to_end(&mut out).unwrap();
                })
            });
            // A consumer of the `BufRead` side reads the verified chunks in
            // place, without the copy into `out`.
            g.bench_function(
                format!("read {label} MAC, {threads} threads, in place"),
                |b| {
                    b.iter(|| {
                        let mut r =
                            Reader::with_threads(black_box(&file[..]), Some(b"key"), threads)
                                .unwrap();
                        let mut n = 0;
                        loop {
                            let got = r.fill_buf().unwrap().len();
                            if got == 0 {
                                break n;
                            }
                            n += got;
                            r.consume(got);
                        }
                    })
                },
            );
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
