//! pgalloc save and eager load of a 2 GiB MemoryFile (every page committed,
//! half of them zero), each beside its ceiling measured in the same run:
//!
//! - zero scan: bytes scanned per second of `scan_time` (target ≥ 10 GB/s),
//!   beside one OR over every word of the same memory;
//! - `save_to` into a pages file vs a plain `write` of the same 1 GiB of
//!   data pages into a file on the same file system (target ≥ 0.8×);
//! - eager `load_from` vs a plain `read` of the pages file into a fresh
//!   buffer (target ≥ 0.8×).
//!
//! Prints the median of `PGALLOC_BENCH_RUNS` (default 5) runs per case,
//! cases interleaved. `cargo bench -p pgalloc --bench pages`
//! (`PGALLOC_BENCH_MIB=512` for a smaller file; `PGALLOC_BENCH_DIR` for
//! the file system of the pages file, by default the target directory).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::time::{Duration, Instant};

use pgalloc::{AllocOpts, LoadOpts, MemoryFile, MemoryFileOpts, SaveOpts, PAGE_SIZE};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn gbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e9
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let mib = env("PGALLOC_BENCH_MIB", 2048) as u64;
    let runs = env("PGALLOC_BENCH_RUNS", 5);
    let len = mib << 20;
    let dir = std::env::var_os("PGALLOC_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_TARGET_TMPDIR").into());

    // Every page committed; alternating 64 KiB runs of zeros and data.
    let mf = MemoryFile::new(MemoryFileOpts::default()).unwrap();
    let chunk = mf.chunk_size().min(len);
    let mut data_bytes = 0;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut data_pages = Vec::new();
    for _ in 0..len / chunk {
        let r = mf.allocate(chunk, AllocOpts::default()).unwrap();
        mf.with_slice_mut(r, |s| {
            for (i, run) in s.chunks_mut(64 << 10).enumerate() {
                if i % 2 == 1 {
                    for w in run.chunks_mut(8) {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        w.copy_from_slice(&x.to_le_bytes());
                    }
                    data_pages.extend_from_slice(run);
                    data_bytes += run.len() as u64;
                } else {
                    run.fill(0);
                }
            }
        })
        .unwrap();
    }
    mf.update_usage(true).unwrap();
    let opts = SaveOpts {
        exclude_committed_zero_pages: true,
        ..SaveOpts::default()
    };
    let pages_path = dir.join("pgalloc-bench.pages");
    let plain_path = dir.join("pgalloc-bench.plain");

    let (mut save, mut plain_write, mut scan) = (Vec::new(), Vec::new(), Vec::new());
    let mut or_read = Vec::new();
    // Per chunk (segments merge across chunks; slices cannot cross them).
    let ranges: Vec<_> = (0..len / chunk)
        .map(|i| pgalloc::FileRange {
            start: i * chunk,
            end: (i + 1) * chunk,
        })
        .collect();
    let (mut load, mut plain_read) = (Vec::new(), Vec::new());
    let mut meta = Vec::new();
    let mut scanned = 0;
    for _ in 0..runs {
        // The zero scan alone (inline save into a sink: scan, then writes).
        let stats = mf.save_to(std::io::sink(), None, &opts).unwrap();
        scan.push(stats.scan_time);
        scanned = stats.bytes_scanned;
        // Its ceiling: one OR over every word of the same memory.
        let t = Instant::now();
        let mut acc = 0u64;
        for r in &ranges {
            mf.with_slice(*r, |s| {
                for w in s.chunks_exact(8) {
                    acc |= u64::from_ne_bytes(w.try_into().unwrap());
                }
            })
            .unwrap();
        }
        std::hint::black_box(acc);
        or_read.push(t.elapsed());

        // save_to into a pages file.
        meta.clear();
        let mut pages = File::create(&pages_path).unwrap();
        let t = Instant::now();
        let stats = mf.save_to(&mut meta, Some(&mut pages), &opts).unwrap();
        save.push(t.elapsed());
        if std::env::var_os("PGALLOC_BENCH_VERBOSE").is_some() {
            eprintln!("save {:?} {stats:?}", t.elapsed());
        }
        assert_eq!(stats.bytes_written, data_bytes);
        // Outside the timing: no dirty pages carried into the next write.
        pages.sync_all().unwrap();
        drop(pages);

        // The same bytes, written plainly.
        let mut f = File::create(&plain_path).unwrap();
        let t = Instant::now();
        f.write_all(&data_pages).unwrap();
        f.flush().unwrap();
        plain_write.push(t.elapsed());
        f.sync_all().unwrap();
        drop(f);

        // Eager load vs a plain read of the pages file.
        let pages = File::open(&pages_path).unwrap();
        let t = Instant::now();
        let (back, _) = MemoryFile::load_from(
            &meta[..],
            Some(std::sync::Arc::new(pages)),
            &LoadOpts::default(),
        )
        .unwrap();
        load.push(t.elapsed());
        let mut probe = [0u8; 8];
        back.read_at(len - PAGE_SIZE, &mut probe).unwrap();
        drop(back);

        let mut f = File::open(&pages_path).unwrap();
        f.seek(SeekFrom::Start(0)).unwrap();
        let t = Instant::now();
        let mut buf = Vec::with_capacity(data_bytes as usize);
        f.read_to_end(&mut buf).unwrap();
        plain_read.push(t.elapsed());
        assert_eq!(buf.len() as u64, data_bytes);
    }
    let _ = std::fs::remove_file(&pages_path);
    let _ = std::fs::remove_file(&plain_path);

    let (save, plain_write, scan) = (median(save), median(plain_write), median(scan));
    let or_read = median(or_read);
    let (load, plain_read) = (median(load), median(plain_read));
    println!(
        "pgalloc {mib} MiB file, {} MiB of data pages, median of {runs} runs, pages file in {}",
        data_bytes >> 20,
        dir.display()
    );
    println!("case            ours          ceiling                    ratio  target");
    println!(
        "zero scan       {:6.2} GB/s   OR over memory {:6.2} GB/s {:5.2}×  ≥ 10 GB/s",
        gbps(scanned, scan),
        gbps(len, or_read),
        or_read.as_secs_f64() / scan.as_secs_f64()
    );
    println!(
        "save_to         {:6.2} GB/s   plain write {:6.2} GB/s   {:5.2}×  ≥ 0.8×",
        gbps(data_bytes, save),
        gbps(data_bytes, plain_write),
        plain_write.as_secs_f64() / save.as_secs_f64()
    );
    println!(
        "load_from       {:6.2} GB/s   plain read  {:6.2} GB/s   {:5.2}×  ≥ 0.8×",
        gbps(data_bytes, load),
        gbps(data_bytes, plain_read),
        plain_read.as_secs_f64() / load.as_secs_f64()
    );
}
