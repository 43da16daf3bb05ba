//! The `cli` fuzz target's committed inputs (`fuzz/corpus/cli/`) and crash
//! reproducers (`fuzz/regressions/cli/`) through `stateify_cli::fuzz_input`
//! on stable Rust: none may panic, take more than 10 s, or hold more heap
//! than `stateify_tests::fuzz::heap_bound` allows.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use stateify_tests::fuzz::{heap_bound, Counting};

#[global_allocator]
static ALLOC: Counting = Counting;

#[test]
fn every_cli_fuzz_input_runs_cleanly() {
    let fuzz = stateify_tests::golden_dir().join("../../fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        if let Ok(rd) = std::fs::read_dir(fuzz.join(dir).join("cli")) {
            files.extend(rd.filter_map(|e| e.ok()).map(|e| e.path()));
        }
    }
    assert!(!files.is_empty(), "no committed inputs for fuzz target cli");
    let mut failures = Vec::new();
    for p in &files {
        let data = std::fs::read(p).unwrap();
        let start = Instant::now();
        let (r, peak) = Counting::peak_of(|| {
            catch_unwind(AssertUnwindSafe(|| {
                stateify_cli::fuzz_input(&data, stateify_tests::corpus::KEY)
            }))
        });
        if r.is_err() {
            failures.push(format!("{}: panicked", p.display()));
        } else if start.elapsed() > Duration::from_secs(10) {
            failures.push(format!("{}: took {:?}", p.display(), start.elapsed()));
        } else if peak > heap_bound(data.len()) {
            failures.push(format!("{}: {peak} bytes of heap at the peak", p.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
