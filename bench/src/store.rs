//! `store-bench`: checkpoints in an S3-protocol store (`s3s-fs` on
//! loopback) with 5 ms added to each request; what it measures is in
//! `remote.rs`.
//!
//! ```text
//! cargo run --release -p stateify-bench --bin store-bench
//! ```
//!
//! `STORE_BENCH_MIB` (1024), `STORE_BENCH_DELAY_MS` (5),
//! `STORE_BENCH_TRIALS` (3), `STORE_BENCH_TOUCHES` (200 restores),
//! `STORE_BENCH_READERS` and `STORE_BENCH_READ_KIB` (the store's defaults).

mod remote;

use std::time::Duration;

use stateify_store::StoreOptions;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let mib = env("STORE_BENCH_MIB", 1024);
    let delay = Duration::from_millis(env("STORE_BENCH_DELAY_MS", 5));
    let d = StoreOptions::default();
    let o = StoreOptions {
        page_readers: env("STORE_BENCH_READERS", d.page_readers as u64) as usize,
        page_read_size: (env("STORE_BENCH_READ_KIB", d.page_read_size as u64 >> 10) << 10) as usize,
        ..d
    };
    println!(
        "store-bench: {mib} MiB of pages, s3s-fs on loopback, parts of {} MiB with {} in flight; page reads of up to {} KiB",
        o.part_size >> 20,
        o.parts_in_flight,
        o.page_read_size >> 10
    );
    let touches = env("STORE_BENCH_TOUCHES", 200);
    let f = remote::measure(mib, delay, env("STORE_BENCH_TRIALS", 3).max(1), touches, o);
    let (ours, plain) = f.upload;
    println!(
        "upload: checkpoint {ours:.0} MB/s, plain multipart upload of the same {} MiB {plain:.0} MB/s: {:.2}x",
        f.size >> 20,
        ours / plain
    );
    let rtt = f.request;
    let (p50, p99) = f.touch;
    let req = |d: Duration| d.as_secs_f64() / rtt.as_secs_f64();
    println!("one 64 KiB ranged GET with {delay:?} added: p50 {rtt:.1?}");
    println!(
        "restore, {} in flight, {touches} runs: runnable after {:.1?} (p50); first touch of a random page p50 {p50:.1?} ({:.1} requests), p99 {p99:.1?} ({:.1} requests); p90 {:.1?}, slowest {:.1?}",
        f.page_readers,
        f.runnable,
        req(p50),
        req(p99),
        f.touch_tail.0,
        f.touch_tail.1,
    );
    let (many, one) = f.restore;
    println!(
        "restore, all pages: {many:.0} MB/s with {} requests in flight, {one:.0} MB/s with one: {:.1}x ({} requests)",
        f.page_readers,
        many / one,
        f.requests
    );
}
