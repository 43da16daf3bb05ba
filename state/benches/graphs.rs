//! Criterion benches for the shared benchmark graphs G1–G3
//! (`shared/bench-graphs.md`, rebuilt exactly and checked by digest) and a
//! 64 MiB `Vec<u8>` against `memcpy`.
//!
//! `cargo bench -p stateify --bench graphs`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use stateify::{Error, Loader, Saver, Stateify};

#[path = "graphs/model.rs"]
mod model;

use model::*;

const ITEM_FIELDS: &[&str] = &["a", "b", "s", "f"];

impl Stateify for Item {
    fn save(&self, s: &mut Saver) -> Result<(), Error> {
        s.save_struct("Item", ITEM_FIELDS, |s| {
            s.field("a", &self.a)?;
            s.field("b", &self.b)?;
            s.field("s", &self.s)?;
            s.field("f", &self.f)
        })
    }
    fn load(l: &mut Loader) -> Result<Self, Error> {
        l.load_struct("Item", ITEM_FIELDS, |st, l| {
            let (mut a, mut b, mut s, mut f) = (None, None, None, None);
            while let Some(i) = st.next(l)? {
                match i {
                    0 => a = Some(st.value(l)?),
                    1 => b = Some(st.value(l)?),
                    2 => s = Some(st.value(l)?),
                    _ => f = Some(st.value(l)?),
                }
            }
            Ok(Item {
                a: st.take(a, 0)?,
                b: st.take(b, 1)?,
                s: st.take(s, 2)?,
                f: st.take(f, 3)?,
            })
        })
    }
}

impl Stateify for Tree {
    fn save(&self, s: &mut Saver) -> Result<(), Error> {
        s.save_struct("Tree", &["items"], |s| s.field("items", &self.items))
    }
    fn load(l: &mut Loader) -> Result<Self, Error> {
        l.load_struct("Tree", &["items"], |st, l| {
            let mut items = None;
            while st.next(l)?.is_some() {
                items = Some(st.value(l)?);
            }
            Ok(Tree {
                items: st.take(items, 0)?,
            })
        })
    }
}

// ---- benches -----------------------------------------------------------

/// Times `n` runs of `f`, excluding the drop of each result (the graph's
/// teardown is not part of a save or a load; Go's figures exclude GC too).
fn timed<T>(n: u64, mut f: impl FnMut() -> T) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..n {
        let start = Instant::now();
        let out = black_box(f());
        total += start.elapsed();
        drop(out);
    }
    total
}

/// `STATEIFY_GRAPHS=G1,G3` runs (and builds) only those groups.
fn wanted(group: &str) -> bool {
    std::env::var("STATEIFY_GRAPHS").map_or(true, |v| {
        v.split(',').any(|g| g.eq_ignore_ascii_case(group))
    })
}

fn check(name: &str, got: String, want: &str) {
    assert!(
        got.starts_with(want),
        "{name}: digest {got}, expected {want}"
    );
}

fn digests_match_the_shared_definition() {
    check("G1 small", g1_digest(&g1(1000)), "0fc3c388");
    check("G2 small", g2_digest(&g2(1000)), "c644a4d2");
    check("G3 small", g3_digest(&g3(4096)), "7611e638");
}

/// Encodes `value`, checks that it loads back with the same `digest`, prints
/// the encoded size, and measures save (fresh `Vec`), save (reused
/// `Encoder`) and load in a group named `name`, returned open for more cases.
fn save_load<'c, T: Stateify>(
    c: &'c mut Criterion,
    name: &str,
    value: &T,
    digest: fn(&T) -> String,
    expect: &str,
    peer_size: &str,
) -> (BenchmarkGroup<'c, WallTime>, Vec<u8>) {
    check(name, digest(value), expect);
    let bytes = stateify::to_vec(value).unwrap();
    let back: T = stateify::from_slice(&bytes).unwrap();
    check(&format!("{name} loaded"), digest(&back), expect);
    eprintln!("{name} encoded size: {} bytes ({peer_size})", bytes.len());
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("save", |b| {
        b.iter_custom(|n| timed(n, || stateify::to_vec(black_box(value)).unwrap()))
    });
    let mut enc = stateify::Encoder::new();
    g.bench_function("save-reused-encoder", |b| {
        b.iter_custom(|n| timed(n, || enc.encode(black_box(value)).unwrap().0.len()))
    });
    g.bench_function("load", |b| {
        b.iter_custom(|n| timed(n, || stateify::from_slice::<T>(black_box(&bytes)).unwrap()))
    });
    (g, bytes)
}

fn bench_g1(c: &mut Criterion) {
    if !wanted("G1") {
        return;
    }
    digests_match_the_shared_definition();
    let t = g1(1_000_000);
    let (mut g, bytes) = save_load(
        c,
        "G1",
        &t,
        g1_digest,
        "f9ebc20bb91749ea",
        "gVisor: 36,979,235",
    );
    let d = derived(&t);
    assert_eq!(
        stateify::to_vec(&d).unwrap(),
        bytes,
        "derived and hand-written encode alike"
    );
    g.bench_function("save-derived", |b| {
        b.iter_custom(|n| timed(n, || stateify::to_vec(black_box(&d)).unwrap()))
    });
    g.bench_function("load-derived", |b| {
        b.iter_custom(|n| {
            timed(n, || {
                stateify::from_slice::<DerivedTree>(black_box(&bytes)).unwrap()
            })
        })
    });
    g.finish();
}

fn bench_g2(c: &mut Criterion) {
    if !wanted("G2") {
        return;
    }
    let graph = g2(200_000);
    save_load(
        c,
        "G2",
        &graph,
        g2_digest,
        "df9f9ab5b6bbd5da",
        "gVisor: 20,682,424",
    )
    .0
    .finish();
}

fn bench_g3(c: &mut Criterion) {
    if !wanted("G3") {
        return;
    }
    let data = g3(64 << 20);
    let peer = "64 MiB = 67,108,864; gVisor: 100,662,047";
    save_load(c, "G3", &data, g3_digest, "b03ae2fd2197ef26", peer)
        .0
        .finish();
}

/// The 64 MiB buffer against the copy it cannot beat: a fresh `Vec` filled by
/// `memcpy` (what any save or load of those bytes must at least do).
fn bench_bulk(c: &mut Criterion) {
    if !wanted("bytes") {
        return;
    }
    let data = g3(64 << 20).data;
    let bytes = stateify::to_vec(&data).unwrap();
    let mut g = c.benchmark_group("bytes-64MiB");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function(BenchmarkId::new("memcpy", "fresh Vec"), |b| {
        b.iter_custom(|n| timed(n, || black_box(&data).clone()))
    });
    g.bench_function(BenchmarkId::new("stateify", "to_vec"), |b| {
        b.iter_custom(|n| timed(n, || stateify::to_vec(black_box(&data)).unwrap()))
    });
    g.bench_function(BenchmarkId::new("stateify", "from_slice"), |b| {
        b.iter_custom(|n| {
            timed(n, || {
                stateify::from_slice::<Vec<u8>>(black_box(&bytes)).unwrap()
            })
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = bench_g1, bench_g2, bench_g3, bench_bulk
}
/// `STATEIFY_ONESHOT=hand|derived`: one save and one load of a 100,000-item
/// G1 and exit, for instruction counts that do not depend on machine noise:
/// `STATEIFY_ONESHOT=derived valgrind --tool=callgrind target/release/deps/graphs-*`.
fn oneshot(kind: &str) {
    let t = g1(100_000);
    match kind {
        "hand" => {
            let bytes = stateify::to_vec(&t).unwrap();
            black_box(stateify::from_slice::<Tree>(&bytes).unwrap());
        }
        _ => {
            let d = derived(&t);
            let bytes = stateify::to_vec(&d).unwrap();
            black_box(stateify::from_slice::<DerivedTree>(&bytes).unwrap());
        }
    }
}

fn main() {
    if let Ok(kind) = std::env::var("STATEIFY_ONESHOT") {
        return oneshot(&kind);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
