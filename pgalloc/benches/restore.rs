//! Background restore of a 4 GiB MemoryFile (every page holds data), beside
//! the eager load of the same files, in one run:
//!
//! - time from `load_from` (background) returning to the first access of a
//!   random page completing: p50 and p99 over many trials (target ≤ 1 ms),
//!   printed beside the full eager load time;
//! - background total throughput (until `await_all`) against eager
//!   (target ≥ 0.9×);
//! - the eager load's floor: the pages file read into a fresh memfd
//!   mapping on as many threads with plain preads (a memfd's pages are
//!   shmem: 4 KiB unless shmem huge pages are enabled on the machine);
//! - the other ways to fill a memfd from the pages file, none of them
//!   through the mapping: pread into a buffer then pwrite (no page faults,
//!   no zeroing, but each page is faulted into the mapping when first
//!   touched, so the time to touch every page once is added), and
//!   `copy_file_range` (refused across file systems since Linux 5.19);
//! - the machine's floor in the same trials: a plain 256 KiB read into
//!   fresh memory, and the CPU share the hypervisor stole meanwhile (a
//!   stolen vCPU shows up in every tail here, whatever the code does).
//!
//! `cargo bench -p pgalloc --bench restore` (`PGALLOC_BENCH_MIB`,
//! `PGALLOC_BENCH_TRIALS`, `PGALLOC_BENCH_DIR` as in the pages bench;
//! `PGALLOC_BENCH_THREADS`, `_MAX_READ`, `_HUGE=0`, `_SKIP_VERIFY=1` (no
//! page digest checks) vary the background load; `PGALLOC_BENCH_VERBOSE=1` adds p90, p95 and the maximum).

use std::fs::File;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgalloc::{AllocOpts, LoadOpts, MemoryFile, MemoryFileOpts, SaveOpts, PAGE_SIZE};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU time the hypervisor took from this VM so far, in ticks (the
/// `steal` column of /proc/stat), if readable.
fn steal() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines().next()?.split_whitespace().nth(8)?.parse().ok()
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let mib = env("PGALLOC_BENCH_MIB", 4096) as u64;
    let trials = env("PGALLOC_BENCH_TRIALS", 200);
    let len = mib << 20;
    let dir = std::env::var_os("PGALLOC_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_TARGET_TMPDIR").into());
    let pages_path = dir.join("pgalloc-restore.pages");

    // The saved file: every page stamped with its offset.
    let mut meta = Vec::new();
    {
        let mf = MemoryFile::new(MemoryFileOpts::default()).unwrap();
        let chunk = mf.chunk_size().min(len);
        for _ in 0..len / chunk {
            let r = mf.allocate(chunk, AllocOpts::default()).unwrap();
            mf.with_slice_mut(r, |s| {
                for (i, page) in s.chunks_mut(PAGE_SIZE as usize).enumerate() {
                    page[..8].copy_from_slice(&(r.start + i as u64 * PAGE_SIZE).to_le_bytes());
                }
            })
            .unwrap();
        }
        let mut pages = File::create(&pages_path).unwrap();
        mf.save_to(&mut meta, Some(&mut pages), &SaveOpts::default())
            .unwrap();
        pages.sync_all().unwrap();
    }
    let open = || -> Arc<dyn pgalloc::PageSource> { Arc::new(File::open(&pages_path).unwrap()) };
    let eager_opts = LoadOpts::default();
    let bg_opts = LoadOpts {
        background: true,
        threads: env("PGALLOC_BENCH_THREADS", LoadOpts::default().threads),
        huge_pages: env("PGALLOC_BENCH_HUGE", 1) == 1,
        max_read: env("PGALLOC_BENCH_MAX_READ", LoadOpts::default().max_read),
        skip_verify: env("PGALLOC_BENCH_SKIP_VERIFY", 0) == 1,
        ..LoadOpts::default()
    };

    // Full loads, eager and background interleaved.
    let (mut eager, mut bg) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let t = Instant::now();
        let (mf, _) = MemoryFile::load_from(&meta[..], Some(open()), &eager_opts).unwrap();
        eager.push(t.elapsed());
        drop(mf);
        let t = Instant::now();
        let (mf, _) = MemoryFile::load_from(&meta[..], Some(open()), &bg_opts).unwrap();
        mf.await_all().unwrap();
        bg.push(t.elapsed());
        drop(mf);
    }
    eager.sort();
    bg.sort();
    let (eager, bg) = (eager[1], bg[1]);

    // The eager load's floor on this machine: the pages file's bytes read
    // into a fresh memfd mapping (what a MemoryFile is) by as many threads,
    // plain preads of the same size in file order, no digests, nothing
    // else. (The bytes land one after another, not at their addresses: the
    // same reads and the same page faults.)
    let threads = eager_opts.threads.max(1);
    let mut floors = Vec::new();
    for _ in 0..3 {
        let mf = MemoryFile::new(MemoryFileOpts::default()).unwrap();
        let chunk = mf.chunk_size().min(len);
        let ranges: Vec<_> = (0..len / chunk)
            .map(|_| mf.allocate(chunk, AllocOpts::default()).unwrap())
            .collect();
        let file = File::open(&pages_path).unwrap();
        let mut magic = [0u8; 8];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut magic, 0).unwrap();
        let data = if magic == pgalloc::PAGES_MAGIC {
            pgalloc::PAGES_HEADER
        } else {
            0
        };
        let total = file.metadata().unwrap().len() - data;
        let step = eager_opts.max_read as u64;
        let t = Instant::now();
        deal(threads, step, total, |_, p, n| {
            let r = ranges[(p / chunk) as usize];
            let n = n.min((r.end - (r.start + p % chunk)) as usize);
            // SAFETY: `r` stays allocated while `mf` lives, and each read's
            // bytes are this thread's alone (reads are dealt out by index);
            // nothing else touches the file until `deal` returns.
            let dst = unsafe {
                let base = mf.raw_ptr(r).unwrap();
                std::slice::from_raw_parts_mut(base.add((p % chunk) as usize), n)
            };
            std::os::unix::fs::FileExt::read_exact_at(&file, dst, data + p).unwrap();
        });
        floors.push(t.elapsed());
    }
    floors.sort();
    let eager_floor = floors[1];
    // The other fills: the same reads into a buffer per thread, written to
    // a plain memfd with pwrite (the page cache of the memfd fills without
    // a fault, and the pages are zeroed by no one), then every page touched
    // once through a shared mapping, since a program reaches its memory
    // through the mapping and each first touch faults.
    let mut written = Vec::new();
    for _ in 0..3 {
        let file = File::open(&pages_path).unwrap();
        let total = file.metadata().unwrap().len();
        let memfd = memfd(total);
        let step = eager_opts.max_read as u64;
        let t = Instant::now();
        deal(threads, step, total, |buf, p, n| {
            use std::os::unix::fs::FileExt;
            file.read_exact_at(&mut buf[..n], p).unwrap();
            memfd.write_all_at(&buf[..n], p).unwrap();
        });
        let fill = t.elapsed();
        // SAFETY: a fresh shared mapping of the whole memfd, which lives
        // until the end of this block; only this thread touches it.
        let mut map = unsafe { memmap2::MmapMut::map_mut(&memfd).unwrap() };
        let t = Instant::now();
        for page in map.chunks_mut(PAGE_SIZE as usize) {
            page[0] = std::hint::black_box(page[0]);
        }
        written.push((fill, t.elapsed()));
        // The fill copied the file: a page every 61 MiB or so, checked.
        for at in (0..total.saturating_sub(8)).step_by(61 << 20) {
            let mut want = [0u8; 8];
            std::os::unix::fs::FileExt::read_exact_at(&file, &mut want, at).unwrap();
            assert_eq!(map[at as usize..at as usize + 8], want, "memfd byte {at}");
        }
    }
    written.sort_by_key(|(fill, touch)| *fill + *touch);
    let (pwrite_fill, pwrite_touch) = written[1];
    let copy_range = {
        let file = File::open(&pages_path).unwrap();
        let memfd = memfd(1 << 20);
        use std::os::fd::AsRawFd;
        let (mut from, mut to) = (0i64, 0i64);
        // SAFETY: both descriptors are open files owned by this block, and
        // the offsets are locals the call may write.
        let n = unsafe {
            libc::copy_file_range(
                file.as_raw_fd(),
                &mut from,
                memfd.as_raw_fd(),
                &mut to,
                1 << 20,
                0,
            )
        };
        match n {
            n if n >= 0 => format!("copies ({n} bytes in one call)"),
            _ => format!("refused: {}", std::io::Error::last_os_error()),
        }
    };
    let shmem_thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/shmem_enabled")
        .unwrap_or_default();

    // First access of a random page right after a background load returns.
    let mut first = Vec::with_capacity(trials);
    let mut returned = Vec::with_capacity(trials);
    // The machine's floor, interleaved: a 256 KiB read of the same spot of
    // the pages file into fresh memory, no restore involved.
    let mut floor = Vec::with_capacity(trials);
    // And the floor of what a first access does: one 64 KiB unit read into
    // fresh memfd memory (shmem pages fault slower than anonymous ones).
    let mut unit_floor = Vec::with_capacity(trials);
    let pages_file = File::open(&pages_path).unwrap();
    let (steal0, wall0) = (steal(), Instant::now());
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..trials {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let page = (x % (len / PAGE_SIZE)) * PAGE_SIZE;
        let t = Instant::now();
        let (mf, _) = MemoryFile::load_from(&meta[..], Some(open()), &bg_opts).unwrap();
        returned.push(t.elapsed());
        let t = Instant::now();
        let mut b = [0u8; 8];
        mf.read_at(page, &mut b).unwrap();
        first.push(t.elapsed());
        assert_eq!(u64::from_le_bytes(b), page);
        drop(mf);
        let t = Instant::now();
        let mut fresh = vec![0u8; 256 << 10];
        let at = page.min(len - fresh.len() as u64);
        std::os::unix::fs::FileExt::read_exact_at(&pages_file, &mut fresh, at).unwrap();
        floor.push(t.elapsed());
        assert_eq!(fresh[(page - at) as usize], page.to_le_bytes()[0]);
        let shm = MemoryFile::new(MemoryFileOpts::default()).unwrap();
        let unit = shm.allocate(64 << 10, AllocOpts::default()).unwrap();
        // SAFETY: `unit` is allocated and nothing else uses `shm`. Taken
        // before the clock starts: the first raw pointer of a file turns on
        // its write tracking (registers and write-protects the whole
        // chunk), about 1 ms here, once per file and not part of a read.
        let dst = unsafe {
            std::slice::from_raw_parts_mut(shm.raw_ptr(unit).unwrap(), unit.len() as usize)
        };
        let t = Instant::now();
        std::os::unix::fs::FileExt::read_exact_at(&pages_file, dst, at).unwrap();
        unit_floor.push(t.elapsed());
    }
    unit_floor.sort();
    let steal_share = steal()
        .zip(steal0)
        .map(|(b, a)| b.saturating_sub(a) as f64 / 100.0 / wall0.elapsed().as_secs_f64());
    first.sort();
    returned.sort();
    floor.sort();
    if std::env::var_os("PGALLOC_BENCH_VERBOSE").is_some() {
        eprintln!(
            "first access: p90 {:?} p95 {:?} max {:?}",
            pct(&first, 0.9),
            pct(&first, 0.95),
            pct(&first, 1.0)
        );
    }
    let _ = std::fs::remove_file(&pages_path);

    let gbps = |d: Duration| len as f64 / d.as_secs_f64() / 1e9;
    println!(
        "pgalloc restore of a {mib} MiB file (every page holds data), pages file in {}",
        dir.display()
    );
    println!(
        "background load_from returns after   p50 {:8.1?}  p99 {:8.1?}  ({trials} trials)",
        pct(&returned, 0.5),
        pct(&returned, 0.99)
    );
    println!(
        "then first access of a random page   p50 {:8.1?}  p99 {:8.1?}  target ≤ 1 ms; eager load_from takes {:.1?}",
        pct(&first, 0.5),
        pct(&first, 0.99),
        eager
    );
    println!(
        "machine floor: 256 KiB pread into fresh memory   p50 {:8.1?}  p99 {:8.1?}  (same trials, no restore); steal {}",
        pct(&floor, 0.5),
        pct(&floor, 0.99),
        steal_share.map_or("unknown".into(), |s| format!("{:.2} CPUs taken by the host", s))
    );
    println!(
        "unit floor: 64 KiB pread into fresh memfd memory  p50 {:8.1?}  p99 {:8.1?}  (same trials): first access p50 is {:.2}× it",
        pct(&unit_floor, 0.5),
        pct(&unit_floor, 0.99),
        pct(&first, 0.5).as_secs_f64() / pct(&unit_floor, 0.5).as_secs_f64()
    );
    println!(
        "eager floor: the pages file pread into a fresh memfd mapping on {threads} threads {:.2} GB/s ({:.1?}); eager load_from is {:.2}× the floor; shmem huge pages: {}",
        gbps(eager_floor),
        eager_floor,
        eager.as_secs_f64() / eager_floor.as_secs_f64(),
        shmem_thp.trim()
    );
    println!(
        "other fills: pread + pwrite into a memfd on {threads} threads {:.2} GB/s ({:.1?}), then touching each page once {:.1?}: {:.2} GB/s in all; copy_file_range into a memfd {copy_range}",
        gbps(pwrite_fill),
        pwrite_fill,
        pwrite_touch,
        gbps(pwrite_fill + pwrite_touch),
    );
    println!(
        "total: background {:.2} GB/s ({:.1?}), eager {:.2} GB/s ({:.1?}): {:.2}×  target ≥ 0.9×",
        gbps(bg),
        bg,
        gbps(eager),
        eager,
        eager.as_secs_f64() / bg.as_secs_f64()
    );
}

/// An empty memfd of `len` bytes.
fn memfd(len: u64) -> File {
    let fd = nix::sys::memfd::memfd_create("pgalloc-bench", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .unwrap();
    let f = File::from(fd);
    f.set_len(len).unwrap();
    f
}

/// Runs `read(buf, offset, len)` for every `step`-sized piece of `total`
/// bytes on `threads` threads, thread `w` taking pieces `w`, `w + threads`,
/// … in file order; `buf` is a `step`-byte buffer of the thread's own.
fn deal(threads: usize, step: u64, total: u64, read: impl Fn(&mut [u8], u64, usize) + Sync) {
    std::thread::scope(|s| {
        for w in 0..threads as u64 {
            let read = &read;
            s.spawn(move || {
                let mut buf = vec![0u8; step as usize];
                let mut p = w * step;
                while p < total {
                    read(&mut buf, p, step.min(total - p) as usize);
                    p += step * threads as u64;
                }
            });
        }
    });
}
