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

use std::hint::black_box;
use std::time::Instant;

const CASES: &[&str] = &[
    "savedata-save",
    "savedata-load",
    "postcard-save",
    "postcard-load",
    "dag-save",
    "dag-load",
    "rkyv-save",
    "g1-save",
    "g1-load",
    "g2-save",
    "g2-load",
    "g2-walk",
    "g2-build",
];

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(case), Some(n)) = (args.next(), args.next().and_then(|n| n.parse::<u32>().ok()))
    else {
        eprintln!("usage: one CASE N, CASE one of {CASES:?}");
        std::process::exit(2);
    };
    if !CASES.contains(&case.as_str()) {
        eprintln!("unknown case `{case}`: one of {CASES:?}");
        std::process::exit(2);
    }
    let save = data::save_data(1000);
    let save_ours = stateify::to_vec(&save).unwrap();
    let save_post = postcard::to_allocvec(&save).unwrap();
    let dag = data::dag(20_000, 10_000, 16);
    let dag_ours = stateify::to_vec(&dag).unwrap();
    let g1 = model::derived(&model::g1(1_000_000));
    let g1_ours = stateify::to_vec(&g1).unwrap();
    let g2 = model::g2(200_000);
    let g2_ours = stateify::to_vec(&g2).unwrap();
    let start = Instant::now();
    for _ in 0..n {
        match case.as_str() {
            "savedata-save" => drop(black_box(stateify::to_vec(black_box(&save)))),
            "savedata-load" => drop(black_box(stateify::from_slice::<data::SaveData>(
                black_box(&save_ours),
            ))),
            "postcard-save" => drop(black_box(postcard::to_allocvec(black_box(&save)))),
            "postcard-load" => drop(black_box(postcard::from_bytes::<data::SaveData>(
                black_box(&save_post),
            ))),
            "dag-save" => drop(black_box(stateify::to_vec(black_box(&dag)))),
            "dag-load" => drop(black_box(stateify::from_slice::<data::Dag>(black_box(
                &dag_ours,
            )))),
            "rkyv-save" => drop(black_box(rkyv::to_bytes::<rkyv::rancor::Error>(black_box(
                &dag,
            )))),
            "g1-save" => drop(black_box(stateify::to_vec(black_box(&g1)))),
            "g1-load" => drop(black_box(stateify::from_slice::<model::DerivedTree>(
                black_box(&g1_ours),
            ))),
            "g2-save" => drop(black_box(stateify::to_vec(black_box(&g2)))),
            "g2-load" => drop(black_box(stateify::from_slice::<model::Graph>(black_box(
                &g2_ours,
            )))),
            "g2-build" => drop(black_box(model::g2(black_box(200_000)))),
            "g2-walk" => drop(black_box(data::g2_walk(black_box(&g2)))),
            _ => unreachable!("checked against CASES"),
        }
    }
    println!("{case}: {:?} a run", start.elapsed() / n.max(1));
}
