//! `one CASE N`: runs one side of one `compare` case N times in a process
//! of its own, for tools that profile a whole process. On this shared,
//! noisy VM wall times swing ±40% between runs; instruction counts do not,
//! so small changes are judged by counting (N runs minus 0 runs, over N):
//!
//! ```text
//! cargo build --release -p stateify-bench --bin one
//! valgrind --tool=cachegrind --cache-sim=no target/release/one dag-save 10
//! valgrind --tool=cachegrind --cache-sim=no target/release/one dag-save 0
//! ```
//!
//! Every data set is built whatever the case, so that all cases start from
//! the same heap; each run includes dropping what it made.

#[path = "../../state/benches/graphs/model.rs"]
mod model;

#[allow(dead_code)]
mod data;
#[allow(dead_code)]
mod hand_decode;
#[allow(dead_code)]
mod tokens;

use std::hint::black_box;
use std::time::Instant;

/// Every data set a case may use, built whatever the case.
struct Data {
    save: data::SaveData,
    save_ours: Vec<u8>,
    save_post: Vec<u8>,
    save_bit: Vec<u8>,
    save_toks: tokens::Tokens,
    dag: data::Dag,
    dag_ours: Vec<u8>,
    g1: model::DerivedTree,
    g1_ours: Vec<u8>,
    g2: model::Graph,
    g2_ours: Vec<u8>,
    g2_plan: data::G2Plan,
}

type Case = (&'static str, fn(&Data));

/// Saves a borrowed serde value (a `Serde<&T>` has no `Deserialize`).
struct SaveOnly<'a>(stateify::serde::Serde<&'a data::SaveData>);

impl stateify::Stateify for SaveOnly<'_> {
    fn save(&self, s: &mut stateify::Saver) -> Result<(), stateify::Error> {
        stateify::serde::save(self.0 .0, s)
    }
    fn load(_: &mut stateify::Loader) -> Result<Self, stateify::Error> {
        Err(stateify::Error::custom("save only"))
    }
}

const CASES: &[Case] = &[
    ("savedata-save", |d| {
        drop(black_box(stateify::to_vec(black_box(&d.save))))
    }),
    ("savedata-load", |d| {
        drop(black_box(stateify::from_slice::<data::SaveData>(
            black_box(&d.save_ours),
        )))
    }),
    ("serde-save", |d| {
        let v = stateify::serde::Serde(black_box(&d.save));
        drop(black_box(stateify::to_vec(&SaveOnly(v))))
    }),
    ("serde-load", |d| {
        drop(black_box(stateify::from_slice::<
            stateify::serde::Serde<data::SaveData>,
        >(black_box(&d.save_ours))))
    }),
    ("serde-replay", |d| {
        drop(black_box(tokens::replay::<data::SaveData>(black_box(
            &d.save_toks,
        ))))
    }),
    ("postcard-save", |d| {
        drop(black_box(postcard::to_allocvec(black_box(&d.save))))
    }),
    ("postcard-load", |d| {
        drop(black_box(postcard::from_bytes::<data::SaveData>(
            black_box(&d.save_post),
        )))
    }),
    ("hand-decode", |d| {
        drop(black_box(hand_decode::decode(black_box(&d.save_ours))))
    }),
    ("bitcode-load", |d| {
        drop(black_box(bitcode::deserialize::<data::SaveData>(
            black_box(&d.save_bit),
        )))
    }),
    ("dag-save", |d| {
        drop(black_box(stateify::to_vec(black_box(&d.dag))))
    }),
    ("dag-load", |d| {
        drop(black_box(stateify::from_slice::<data::Dag>(black_box(
            &d.dag_ours,
        ))))
    }),
    ("rkyv-save", |d| {
        drop(black_box(rkyv::to_bytes::<rkyv::rancor::Error>(black_box(
            &d.dag,
        ))))
    }),
    ("g1-save", |d| {
        drop(black_box(stateify::to_vec(black_box(&d.g1))))
    }),
    ("g1-load", |d| {
        drop(black_box(stateify::from_slice::<model::DerivedTree>(
            black_box(&d.g1_ours),
        )))
    }),
    ("g2-save", |d| {
        drop(black_box(stateify::to_vec(black_box(&d.g2))))
    }),
    ("g2-load", |d| {
        drop(black_box(stateify::from_slice::<model::Graph>(black_box(
            &d.g2_ours,
        ))))
    }),
    ("g2-encode", |d| {
        drop(black_box(data::g2_encode(
            black_box(&d.g2),
            d.g2_ours.len(),
        )))
    }),
    ("g2-walk", |d| {
        black_box(data::g2_walk(black_box(&d.g2)));
    }),
    ("g2-dfs-build", |d| {
        drop(black_box(data::g2_dfs_build(black_box(&d.g2_plan))))
    }),
    ("g2-build", |_| {
        drop(black_box(model::g2(black_box(200_000))))
    }),
];

/// The timed loop, a function of its own so that a profiler can count it
/// alone: `valgrind --tool=callgrind --toggle-collect=one::runs …`.
#[inline(never)]
fn runs(run: fn(&Data), d: &Data, n: u32) {
    for _ in 0..n {
        run(d);
    }
}

fn main() {
    let names: Vec<&str> = CASES.iter().map(|c| c.0).collect();
    let mut args = std::env::args().skip(1);
    let (Some(case), Some(n)) = (args.next(), args.next().and_then(|n| n.parse::<u32>().ok()))
    else {
        eprintln!("usage: one CASE N, CASE one of {names:?}");
        std::process::exit(2);
    };
    let Some(&(_, run)) = CASES.iter().find(|c| c.0 == case) else {
        eprintln!("unknown case `{case}`: one of {names:?}");
        std::process::exit(2);
    };
    let save = data::save_data(1000);
    let save_ours = stateify::to_vec(&save).unwrap();
    let save_post = postcard::to_allocvec(&save).unwrap();
    let save_bit = bitcode::serialize(&save).unwrap();
    let save_toks = tokens::record(&save).unwrap();
    let dag = data::dag(20_000, 10_000, 16);
    let dag_ours = stateify::to_vec(&dag).unwrap();
    let g1 = model::derived(&model::g1(1_000_000));
    let g1_ours = stateify::to_vec(&g1).unwrap();
    let g2 = model::g2(200_000);
    let g2_ours = stateify::to_vec(&g2).unwrap();
    let d = Data {
        save,
        save_ours,
        save_post,
        save_bit,
        save_toks,
        dag,
        dag_ours,
        g1,
        g1_ours,
        g2_plan: data::G2Plan::of(&g2),
        g2,
        g2_ours,
    };
    let start = Instant::now();
    runs(run, &d, n);
    println!("{case}: {:?} a run", start.elapsed() / n.max(1));
    // Not torn down: what freeing the data sets costs depends on what the
    // runs left in the heap, and would blur the difference of N runs and 0.
    std::mem::forget(d);
}
