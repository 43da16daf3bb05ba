//! Every committed fuzz input (`fuzz/corpus/<target>/`) and every crash
//! reproducer (`fuzz/regressions/<target>/`) through the same entry points
//! the fuzz targets call (`stateify_tests::fuzz`), on stable Rust: no
//! panic, and for each input a bound on time and on heap memory.
//!
//! The heap is measured by a counting allocator around the system one (the
//! peak of live bytes while one input runs). Page memory restored by
//! pgalloc lives in a memfd, not on the heap.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use stateify_tests::fuzz::{heap_bound, Counting};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Per input, in a test build (opt-level 1).
const TIME_BOUND: Duration = Duration::from_secs(10);

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = stateify_tests::golden_dir().join("../../fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        if let Ok(rd) = std::fs::read_dir(fuzz.join(dir).join(target)) {
            files.extend(rd.filter_map(|e| e.ok()).map(|e| e.path()));
        }
    }
    files.sort();
    files
}

/// Runs one input, returning what went wrong, if anything.
fn run(f: fn(&[u8]), path: &std::path::Path) -> Option<String> {
    let data = std::fs::read(path).ok()?;
    let start = Instant::now();
    let (r, peak) = Counting::peak_of(|| catch_unwind(AssertUnwindSafe(|| f(&data))));
    let took = start.elapsed();
    if r.is_err() {
        return Some(format!("{}: panicked", path.display()));
    }
    if took > TIME_BOUND {
        return Some(format!("{}: took {took:?}", path.display()));
    }
    if peak > heap_bound(data.len()) {
        return Some(format!(
            "{}: {peak} bytes of heap at the peak for {} bytes of input",
            path.display(),
            data.len()
        ));
    }
    None
}

#[test]
fn every_fuzz_input_and_reproducer_runs_cleanly() {
    let mut failures = Vec::new();
    let mut count = 0;
    for (name, f) in stateify_tests::fuzz::TARGETS {
        let files = inputs(name);
        assert!(
            !files.is_empty(),
            "no committed inputs for fuzz target {name}"
        );
        for p in files {
            count += 1;
            failures.extend(run(*f, &p));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} inputs:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{count} fuzz inputs replayed");
}

/// The statefile target recomputes checksums and MACs, so that a mutated
/// file reaches what is behind them: a changed payload byte of an
/// uncompressed keyed file then reads back, changed, with no MAC error.
#[test]
fn the_statefile_target_gets_past_the_macs() {
    use std::io::Read;
    let dir = stateify_tests::golden_dir().join("v1");
    for (name, key) in [
        ("statefile-keyed.state", Some(stateify_tests::corpus::KEY)),
        ("statefile-none.state", None),
    ] {
        let original = std::fs::read(dir.join(name)).unwrap();
        let mut inner = Vec::new();
        let mut r = statefile::Reader::new(&original[..], key).unwrap();
        r.read_to_end(&mut inner).unwrap();
        // The last byte of the first chunk's payload: 32 bytes of MAC
        // before the end chunk (13 + 8 + 32 bytes) end the file.
        let mut changed = original.clone();
        let at = changed.len() - (13 + 8 + 32) - 32 - 1;
        changed[at] ^= 0x55;
        assert!(statefile::Reader::new(&changed[..], key)
            .and_then(|mut r| r.read_to_end(&mut Vec::new()).map_err(Into::into))
            .is_err());
        stateify_tests::fuzz::fix_statefile_macs(&mut changed, key);
        let mut again = Vec::new();
        let mut r = statefile::Reader::new(&changed[..], key).unwrap();
        r.read_to_end(&mut again).unwrap();
        r.finish().unwrap();
        assert_ne!(again, inner, "{name}");
        assert_eq!(again.len(), inner.len(), "{name}");
    }
}
