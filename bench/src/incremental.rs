//! The `incremental` group of `compare`: incremental saves beside full
//! saves of the same memory, a chain of deltas restored beside the same
//! chain squashed, and what change tracking costs the writes and saves it
//! watches.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgalloc::{
    AllocOpts, FileRange, LoadOpts, MemoryFile, MemoryFileOpts, PageSource, SaveOpts, SaveStats,
    Tracking, PAGE_SIZE,
};

use super::{line, median, ms, side_by_side, times, Run};

/// A file of `mib` MiB, every page holding data.
fn filled(mib: u64, tracking: Tracking) -> (MemoryFile, Vec<FileRange>) {
    let mf = MemoryFile::new(MemoryFileOpts {
        tracking,
        ..MemoryFileOpts::default()
    })
    .unwrap();
    let mut ranges = Vec::new();
    let mut left = mib << 20;
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let len = left.min(256 << 20);
        let r = mf.allocate(len, AllocOpts::default()).unwrap();
        for at in (r.start..r.end).step_by(buf.len()) {
            for w in buf.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                w.copy_from_slice(&x.to_le_bytes());
            }
            mf.write_at(at, &buf).unwrap();
        }
        ranges.push(r);
        left -= len;
    }
    (mf, ranges)
}

/// Writes 8 bytes into `share` of the pages of `ranges`, chosen at random
/// (scattered: the case page-granular tracking is for).
fn change(mf: &MemoryFile, ranges: &[FileRange], share: f64, seed: &mut u64) -> u64 {
    let pages: Vec<u64> = ranges
        .iter()
        .flat_map(|r| (r.start..r.end).step_by(PAGE_SIZE as usize))
        .collect();
    let n = (pages.len() as f64 * share) as u64;
    for _ in 0..n {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let at = pages[(*seed % pages.len() as u64) as usize];
        mf.write_at(at + (*seed >> 52), &seed.to_le_bytes())
            .unwrap();
    }
    n
}

/// As `change`, through raw pointers.
fn change_raw(mf: &MemoryFile, ranges: &[FileRange], share: f64, seed: &mut u64) -> u64 {
    let per = (ranges[0].len() / PAGE_SIZE) as f64;
    let n = (per * ranges.len() as f64 * share) as u64;
    for _ in 0..n {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let r = ranges[(*seed % ranges.len() as u64) as usize];
        let page = (*seed >> 20) % (r.len() / PAGE_SIZE);
        // SAFETY: one thread, no slice alive, the range allocated and
        // loaded (no restore).
        unsafe {
            let p = mf.raw_ptr(r).unwrap();
            p.add((page * PAGE_SIZE) as usize)
                .write_volatile(*seed as u8);
        }
    }
    n
}

/// Incremental saves beside full saves, pair by pair: medians of each side
/// and of the pair ratios, and what the last delta saved.
struct DeltaVsFull {
    delta: Duration,
    full: Duration,
    ratio: f64,
    written: u64,
    method: pgalloc::TrackingMethod,
    /// Median time taking the changes.
    tracking: Duration,
}

/// `pairs` rounds of: `change`, an incremental save (timed), a full save
/// (timed), after a full save to start from.
fn delta_vs_full(mf: &MemoryFile, d: &Path, pairs: usize, mut change: impl FnMut()) -> DeltaVsFull {
    change();
    save(mf, d, "full", false);
    let (mut deltas, mut fulls, mut ratios, mut scans) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut last = SaveStats::default();
    for _ in 0..pairs {
        change();
        settle(d);
        let (stats, delta) = save(mf, d, "delta", true);
        let (_, full) = save(mf, d, "full", false);
        scans.push(stats.tracking_time);
        last = stats;
        deltas.push(delta);
        fulls.push(full);
        ratios.push(delta.as_secs_f64() / full.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    DeltaVsFull {
        delta: median(deltas),
        full: median(fulls),
        ratio: ratios[pairs / 2],
        written: last.bytes_written,
        method: last.tracking,
        tracking: median(scans),
    }
}

/// Saves `mf` into `dir/NAME.meta` and `dir/NAME.pages`.
fn save(mf: &MemoryFile, dir: &Path, name: &str, incremental: bool) -> (SaveStats, Duration) {
    let (meta, pages) = paths(dir, name);
    let t = Instant::now();
    let mut m = std::io::BufWriter::new(File::create(meta).unwrap());
    let mut p = File::create(pages).unwrap();
    let opts = SaveOpts {
        incremental,
        ..SaveOpts::default()
    };
    let stats = mf.save_to(&mut m, Some(&mut p), &opts).unwrap();
    drop(m);
    (stats, t.elapsed())
}

/// A full save into `io::sink`: no file system noise.
fn sink_save(mf: &MemoryFile) -> SaveStats {
    mf.save_to(
        std::io::sink(),
        Some(&mut std::io::sink()),
        &SaveOpts::default(),
    )
    .unwrap()
}

/// Writes back every file of `dir`: the gigabytes a full save leaves dirty
/// in the page cache are otherwise written back during the next timed
/// save or restore (measured: pair-to-pair swings of ±20%).
fn settle(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        File::open(e.unwrap().path()).unwrap().sync_all().unwrap();
    }
}

fn paths(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{name}.meta")),
        dir.join(format!("{name}.pages")),
    )
}

fn layer(dir: &Path, name: &str) -> (BufReader<File>, Arc<dyn PageSource>) {
    let (meta, pages) = paths(dir, name);
    (
        BufReader::new(File::open(meta).unwrap()),
        Arc::new(File::open(pages).unwrap()),
    )
}

pub(super) fn incremental(run: &Run) {
    let mib = if run.quick { 256 } else { 2048 };
    let pairs = if run.quick { 3 } else { 5 };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (mf, ranges) = filled(mib, Tracking::Auto);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;

    // An incremental save after 1% of the pages changed, beside a full
    // save of the same memory: through the API, then through raw pointers
    // (found by the kernel's write-protection, one PAGEMAP_SCAN per chunk).
    let pair = delta_vs_full(&mf, d, pairs, || {
        change(&mf, &ranges, 0.01, &mut seed);
    });
    line(
        &format!("incremental {mib}MiB"),
        "save 1% changed vs full",
        ms(pair.delta),
        ms(pair.full),
        pair.ratio,
        &format!(
            "goal ≤ 0.05; 1% of pages written at random, {:.1} MiB saved; peer: a full save of the same memory",
            pair.written as f64 / (1 << 20) as f64
        ),
    );
    let pair = delta_vs_full(&mf, d, pairs, || {
        change_raw(&mf, &ranges, 0.01, &mut seed);
    });
    line(
        &format!("incremental {mib}MiB"),
        "save 1% raw-written vs full",
        ms(pair.delta),
        ms(pair.full),
        pair.ratio,
        &format!(
            "goal ≤ 0.05; the changes written through raw pointers, found by {:?} in {} (median), {:.1} MiB saved",
            pair.method,
            ms(pair.tracking),
            pair.written as f64 / (1 << 20) as f64
        ),
    );

    // A chain of 10 deltas restored eagerly, beside the same chain squashed.
    save(&mf, d, "layer0", false);
    for i in 1..=10 {
        change(&mf, &ranges, 0.01, &mut seed);
        save(&mf, d, &format!("layer{i}"), true);
    }
    {
        let (meta, pages) = paths(d, "squashed");
        let mut m = std::io::BufWriter::new(File::create(meta).unwrap());
        let mut p = File::create(pages).unwrap();
        let layers = (0..=10).map(|i| layer(d, &format!("layer{i}")));
        pgalloc::squash(layers, &mut m, &mut p, &SaveOpts::default()).unwrap();
    }
    drop(mf);
    let eager = LoadOpts::default();
    // Pair by pair the ratio swings by ±20% on this VM (freed memory, the
    // page cache): one untimed round of each first, then every pair.
    let chain_load = || {
        let layers = (0..=10).map(|i| layer(d, &format!("layer{i}")));
        MemoryFile::load_chain(layers, &eager).unwrap()
    };
    let squashed_load = || {
        let (meta, pages) = layer(d, "squashed");
        MemoryFile::load_from(meta, Some(pages), &eager).unwrap()
    };
    settle(d);
    drop((chain_load(), squashed_load()));
    let restore = side_by_side(run, chain_load, squashed_load);
    let throughput = 1.0 / restore.ratio;
    line(
        &format!("incremental {mib}MiB"),
        "restore 10 deltas vs squashed",
        ms(restore.ours),
        ms(restore.peer),
        restore.ratio,
        &format!(
            "eager; throughput {throughput:.2}x the squashed file's (goal ≥ 0.9x, time ratio ≤ 1.11); each delta 1% of pages at random"
        ),
    );

    // What tracking costs: API writes and full saves with it and without.
    let small = mib.min(256);
    let (on, on_ranges) = filled(small, Tracking::Auto);
    let (off, off_ranges) = filled(small, Tracking::Off);
    let page = vec![0x5au8; PAGE_SIZE as usize];
    let write_all = |mf: &MemoryFile, ranges: &[FileRange]| {
        for r in ranges {
            for at in (r.start..r.end).step_by(PAGE_SIZE as usize) {
                mf.write_at(at, &page).unwrap();
            }
        }
    };
    times(
        &format!("tracking {small}MiB"),
        "API writes, tracked vs off",
        side_by_side(
            run,
            || write_all(&on, &on_ranges),
            || write_all(&off, &off_ranges),
        ),
        "goal ≤ 1.03; write_at of every page, 4 KiB each; tracked: Tracking::Auto, no raw pointer",
    );
    times(
        &format!("tracking {small}MiB"),
        "full save, tracked vs off",
        side_by_side(
            run,
            || sink_save(&on),
            || sink_save(&off),
        ),
        "goal ≤ 1.03; every page holds data; saved into io::sink (the scan and digests: what tracking could slow)",
    );
    // With raw pointers out, each page's first write after a checkpoint
    // takes a write-protection fault: the price of tracking them.
    let raw_write_all = |mf: &MemoryFile, ranges: &[FileRange]| {
        for r in ranges {
            // SAFETY: one thread, no slice alive, the ranges allocated and
            // loaded (no restore).
            let p = unsafe { mf.raw_ptr(*r).unwrap() };
            for off in (0..r.len()).step_by(PAGE_SIZE as usize) {
                // SAFETY: inside the allocation `p` points at.
                unsafe { p.add(off as usize).write_volatile(0xa5) };
            }
        }
    };
    raw_write_all(&on, &on_ranges);
    raw_write_all(&off, &off_ranges);
    let mut pairs_raw = Vec::new();
    for _ in 0..run.pairs.min(9) {
        save(&on, d, "on", false);
        save(&off, d, "off", false);
        let t = Instant::now();
        raw_write_all(&on, &on_ranges);
        let a = t.elapsed();
        let t = Instant::now();
        raw_write_all(&off, &off_ranges);
        pairs_raw.push((a, t.elapsed()));
    }
    pairs_raw.sort_by(|x, y| {
        (x.0.as_secs_f64() / x.1.as_secs_f64()).total_cmp(&(y.0.as_secs_f64() / y.1.as_secs_f64()))
    });
    let (a, b) = pairs_raw[pairs_raw.len() / 2];
    line(
        &format!("tracking {small}MiB"),
        "raw first writes, WP vs off",
        ms(a),
        ms(b),
        a.as_secs_f64() / b.as_secs_f64(),
        &format!(
            "one byte into every page after a checkpoint: {:.2} µs more per page (a write-protection fault); later writes to the page cost nothing",
            (a.as_secs_f64() - b.as_secs_f64()) * 1e6 / (small * 256) as f64
        ),
    );
}
