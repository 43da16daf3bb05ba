//! Checkpoints in an S3-protocol store (`s3s-fs` on
//! loopback, `stateify_tests::s3`), with a proxy that delays every request.
//!
//! - Upload: a checkpoint of `STORE_BENCH_MIB` MiB of pages written with
//!   `Store::write_checkpoint` (the page save included), against a plain
//!   multipart upload of the same number of bytes through `object_store`
//!   with the same part size and parts in flight; alternated rounds.
//! - Restore, with `STORE_BENCH_DELAY_MS` ms added to each request: the time
//!   until the program can run (manifest, statefile, page metadata; pages
//!   in the background) and its first touch of a random page, over
//!   `STORE_BENCH_TOUCHES` restores (p50, p99, also in request latencies);
//!   then the throughput of whole restores with `page_readers` requests
//!   in flight against one.
//!
//! `store-bench` prints these figures; `compare` (group `store`) puts them
//! in its table. Client, server and proxy share this machine's two cores.

use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::ObjectStore;
use pgalloc::{AllocOpts, LoadOpts, MemoryFile, MemoryFileOpts, SaveOpts, PAGE_SIZE};
use stateify_store::{RemotePages, Store, StoreOptions};
use stateify_tests::s3::{Proxy, S3Server};

const KEY: &[u8] = b"store bench";

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
}

/// A memory file of `len` bytes, every page holding data (its offset at
/// both ends).
fn memory(len: u64) -> MemoryFile {
    let mf = MemoryFile::new(MemoryFileOpts::default()).unwrap();
    let chunk = mf.chunk_size().min(len);
    let ranges: Vec<_> = (0..len / chunk)
        .map(|_| mf.allocate(chunk, AllocOpts::default()).unwrap())
        .collect();
    for r in ranges {
        for at in (r.start..r.end).step_by(PAGE_SIZE as usize) {
            mf.write_at(at, &at.to_le_bytes()).unwrap();
            mf.write_at(at + PAGE_SIZE - 8, &(!at).to_le_bytes())
                .unwrap();
        }
    }
    mf
}

/// A checkpoint: a small statefile (page metadata) and the pages.
fn checkpoint(store: &Store, mf: &MemoryFile) -> stateify_store::Manifest {
    store
        .write_checkpoint("bench", |state, pages, pages_name| {
            let meta = BTreeMap::from([(statefile::PAGES_KEY.to_string(), pages_name.to_string())]);
            let mut w = statefile::Writer::new(state, Some(KEY), &meta)?;
            let mut page_meta = Vec::new();
            mf.save_to(&mut page_meta, Some(pages), &SaveOpts::default())?;
            w.write_all(&page_meta)?;
            w.finish()?;
            Ok::<_, Box<dyn std::error::Error>>(())
        })
        .unwrap()
        .1
}

/// A plain multipart upload of `len` bytes: `object_store`'s own
/// `WriteMultipart`, the same part size and parts in flight.
fn plain_upload(
    s3: &Arc<dyn ObjectStore>,
    rt: &tokio::runtime::Runtime,
    o: &StoreOptions,
    len: u64,
) {
    let part = vec![0x5au8; o.part_size];
    rt.block_on(async {
        let path = object_store::path::Path::from("bench/plain");
        let upload = s3.put_multipart(&path).await.unwrap();
        let mut w = object_store::WriteMultipart::new_with_chunk_size(upload, o.part_size);
        let mut left = len;
        while left > 0 {
            let n = left.min(o.part_size as u64) as usize;
            w.wait_for_capacity(o.parts_in_flight).await.unwrap();
            w.write(&part[..n]);
            left -= n as u64;
        }
        w.finish().await.unwrap();
    });
}

/// Starts a background restore with `readers` requests in flight; returns
/// the memory file once the program could run, and how long that took.
fn start_restore(store: &Store, readers: usize) -> (MemoryFile, Duration, Arc<RemotePages>) {
    let t = Instant::now();
    let cp = store.open_checkpoint("bench").unwrap();
    let mut sr =
        statefile::Reader::new(BufReader::new(cp.state_reader().unwrap()), Some(KEY)).unwrap();
    let pages = Arc::new(cp.pages_source().unwrap());
    let opts = LoadOpts {
        threads: readers,
        ..pages.load_opts(true)
    };
    let (mf, _) = MemoryFile::load_from(&mut sr, Some(pages.clone()), &opts).unwrap();
    (mf, t.elapsed(), pages)
}

/// A restore whose program touches one random page as soon as it runs
/// (then the restore is dropped): the time until it could run, and that
/// first touch.
fn first_touch(store: &Store, readers: usize, len: u64, seed: &mut u64) -> (Duration, Duration) {
    let (mf, runnable, _) = start_restore(store, readers);
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    let page = *seed % (len / PAGE_SIZE) * PAGE_SIZE;
    let mut b = [0u8; 8];
    let t = Instant::now();
    mf.read_at(page, &mut b).unwrap();
    let touch = t.elapsed();
    assert_eq!(u64::from_le_bytes(b), page);
    (runnable, touch)
}

/// A whole restore: its throughput and the requests it made.
fn full_restore(store: &Store, readers: usize, len: u64) -> (f64, u64) {
    let t = Instant::now();
    let (mf, _, pages) = start_restore(store, readers);
    mf.await_all().unwrap();
    (
        len as f64 / t.elapsed().as_secs_f64() / 1e6,
        pages.requests().0,
    )
}

/// What one measurement found.
pub struct Figures {
    pub page_readers: usize,
    /// Bytes uploaded per checkpoint.
    pub size: u64,
    /// MB/s: a checkpoint, a plain multipart upload of as many bytes.
    pub upload: (f64, f64),
    /// One 64 KiB ranged GET, p50.
    pub request: Duration,
    /// Until the program could run, p50.
    pub runnable: Duration,
    /// First touch of a random page: p50, p99.
    pub touch: (Duration, Duration),
    /// First touch: p90 and the slowest.
    pub touch_tail: (Duration, Duration),
    /// MB/s of whole restores: `page_readers` in flight, one in flight.
    pub restore: (f64, f64),
    /// Requests of a whole restore.
    pub requests: u64,
}

/// Measures `mib` MiB with `delay` added to each request in the restores:
/// uploads alternated `trials` times, `touches` restores touched once,
/// `trials` whole restores each way.
pub fn measure(mib: u64, delay: Duration, trials: u64, touches: u64, o: StoreOptions) -> Figures {
    let len = mib << 20;
    let server = S3Server::start().unwrap();
    let proxy = Proxy::start(server.addr(), Duration::ZERO).unwrap();
    let store = S3Server::store(proxy.addr(), "bench", o.clone()).unwrap();
    let s3: Arc<dyn ObjectStore> = Arc::new(S3Server::client(proxy.addr(), &o).unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mf = memory(len);

    // Upload, alternated, no added latency.
    let (mut ours, mut plain) = (Vec::new(), Vec::new());
    let mut size = 0;
    for _ in 0..trials {
        let t = Instant::now();
        let m = checkpoint(&store, &mf);
        size = m.pages.size + m.state.size;
        ours.push(size as f64 / t.elapsed().as_secs_f64() / 1e6);
        let t = Instant::now();
        plain_upload(&s3, &rt, &o, size);
        plain.push(size as f64 / t.elapsed().as_secs_f64() / 1e6);
    }
    drop(mf);

    // Restore, with the delay.
    proxy.set_delay(delay);
    let mut one_request: Vec<Duration> = (0..20)
        .map(|_| {
            let t = Instant::now();
            let path = object_store::path::Path::from("bench/plain");
            rt.block_on(s3.get_range(&path, 0..65536)).unwrap();
            t.elapsed()
        })
        .collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let (mut run, mut lat) = (Vec::new(), Vec::new());
    for _ in 0..touches.max(1) {
        let (r, t) = first_touch(&store, o.page_readers, len, &mut seed);
        run.push(r);
        lat.push(t);
    }
    let mut rates = Vec::new();
    let mut requests = 0;
    for readers in [o.page_readers, 1] {
        let mut rate = Vec::new();
        for _ in 0..trials {
            let (r, n) = full_restore(&store, readers, len);
            rate.push(r);
            requests = requests.max(n);
        }
        rates.push(median(&mut rate));
    }
    Figures {
        page_readers: o.page_readers,
        size,
        upload: (median(&mut ours), median(&mut plain)),
        request: percentile(&mut one_request, 0.5),
        runnable: percentile(&mut run, 0.5),
        touch: (percentile(&mut lat, 0.5), percentile(&mut lat, 0.99)),
        touch_tail: (percentile(&mut lat, 0.9), percentile(&mut lat, 1.0)),
        restore: (rates[0], rates[1]),
        requests,
    }
}
