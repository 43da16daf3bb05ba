//! Criterion harnesses for the peer cases of the `compare` binary: the
//! save-game tree against postcard and bitcode, the `Rc` DAG against rkyv,
//! and the mesh against memcpy and rkyv (same data, same generators).
//!
//! `cargo bench -p stateify-bench --bench peers`

#[path = "../src/data.rs"]
#[allow(dead_code)]
mod data;
#[path = "../../state/benches/graphs/model.rs"]
mod model;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn savedata(c: &mut Criterion) {
    let d = data::save_data(1000);
    let ours = stateify::to_vec(&d).unwrap();
    let post = postcard::to_allocvec(&d).unwrap();
    let bit = bitcode::serialize(&d).unwrap();
    let mut g = c.benchmark_group("savedata");
    g.bench_function("serialize/stateify", |b| {
        b.iter(|| stateify::to_vec(black_box(&d)).unwrap())
    });
    g.bench_function("serialize/postcard", |b| {
        b.iter(|| postcard::to_allocvec(black_box(&d)).unwrap())
    });
    g.bench_function("serialize/bitcode", |b| {
        b.iter(|| bitcode::serialize(black_box(&d)).unwrap())
    });
    g.bench_function("deserialize/stateify", |b| {
        b.iter(|| stateify::from_slice::<data::SaveData>(black_box(&ours)).unwrap())
    });
    g.bench_function("deserialize/postcard", |b| {
        b.iter(|| postcard::from_bytes::<data::SaveData>(black_box(&post)).unwrap())
    });
    g.bench_function("deserialize/bitcode", |b| {
        b.iter(|| bitcode::deserialize::<data::SaveData>(black_box(&bit)).unwrap())
    });
    g.finish();
}

fn dag(c: &mut Criterion) {
    let d = data::dag(20_000, 10_000, 16);
    let ours = stateify::to_vec(&d).unwrap();
    let rk = rkyv::to_bytes::<rkyv::rancor::Error>(&d).unwrap();
    let mut g = c.benchmark_group("rc-dag");
    g.bench_function("serialize/stateify", |b| {
        b.iter(|| stateify::to_vec(black_box(&d)).unwrap())
    });
    g.bench_function("serialize/rkyv", |b| {
        b.iter(|| rkyv::to_bytes::<rkyv::rancor::Error>(black_box(&d)).unwrap())
    });
    g.bench_function("deserialize/stateify", |b| {
        b.iter(|| stateify::from_slice::<data::Dag>(black_box(&ours)).unwrap())
    });
    g.bench_function("deserialize/rkyv", |b| {
        b.iter(|| {
            let a = rkyv::access::<data::ArchivedDag, rkyv::rancor::Error>(black_box(&rk)).unwrap();
            rkyv::deserialize::<data::Dag, rkyv::rancor::Error>(a).unwrap()
        })
    });
    g.finish();
}

fn mesh(c: &mut Criterion) {
    let m = data::mesh(125_000);
    let ours = stateify::to_vec(&m).unwrap();
    let rk = rkyv::to_bytes::<rkyv::rancor::Error>(&m).unwrap();
    let mut g = c.benchmark_group("mesh-6MB");
    g.throughput(Throughput::Bytes(6_000_000));
    g.bench_function("memcpy", |b| b.iter(|| black_box(&m.triangles).clone()));
    g.bench_function("serialize/stateify", |b| {
        b.iter(|| stateify::to_vec(black_box(&m)).unwrap())
    });
    g.bench_function("serialize/rkyv", |b| {
        b.iter(|| rkyv::to_bytes::<rkyv::rancor::Error>(black_box(&m)).unwrap())
    });
    g.bench_function("deserialize/stateify", |b| {
        b.iter(|| stateify::from_slice::<data::Mesh>(black_box(&ours)).unwrap())
    });
    g.bench_function("deserialize/rkyv", |b| {
        b.iter(|| {
            let a =
                rkyv::access::<data::ArchivedMesh, rkyv::rancor::Error>(black_box(&rk)).unwrap();
            rkyv::deserialize::<data::Mesh, rkyv::rancor::Error>(a).unwrap()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = savedata, dag, mesh
}
criterion_main!(benches);
