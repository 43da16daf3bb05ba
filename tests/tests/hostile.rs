//! Bad input over the whole corpus: every file cut short and flipped, at
//! every byte for files up to 4 KiB and at a sample of positions for larger
//! ones, goes through the reader of its entry. Nothing may panic or hang; a
//! cut file is always an error, and so is any flip inside a statefile (its
//! MAC covers every byte).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use stateify_tests::corpus::{self, Entry, Files};

/// Every position of a small file; for a larger one the first and last
/// 256 bytes and 512 spread evenly (with a stride that is not a power of
/// two, so block and chunk boundaries do not align with the sample).
fn positions(len: usize) -> Vec<usize> {
    if len <= 4096 {
        return (0..len).collect();
    }
    let mut p: Vec<usize> = (0..256).chain(len - 256..len).collect();
    let stride = len / 512 + 1;
    p.extend((0..len).step_by(stride | 1));
    p.sort_unstable();
    p.dedup();
    p
}

/// Panics are caught and reported with what caused them; a run that takes
/// too long aborts the whole test (a hang must not pass as slowness).
fn watchdog(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("hostile corpus test still running after {limit:?}: a reader hangs");
        std::process::exit(101);
    });
}

#[test]
fn cut_and_flipped_corpus_files_fail_cleanly() {
    watchdog(Duration::from_secs(600));
    let entries = corpus::entries();
    let reader = |name: &str| -> &Entry {
        entries
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("no reader {name}"))
    };
    let mut failures = Vec::new();
    let mut runs = 0;
    for (version, dir) in stateify_tests::versions().unwrap() {
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().file_name().into_string().unwrap();
            if !f.ends_with(".expect") {
                continue;
            }
            let expect =
                corpus::parse_sidecar(&std::fs::read_to_string(dir.join(&f)).unwrap()).unwrap();
            let entry = reader(&expect.reader);
            let files = corpus::read_files(&dir, &expect.files).unwrap();
            for (name, bytes) in &files {
                let mac_protected = name.ends_with(".state");
                for p in positions(bytes.len()) {
                    for (how, damaged) in [
                        ("cut at", bytes[..p].to_vec()),
                        ("flipped at", {
                            let mut b = bytes.clone();
                            b[p] ^= [0xff, 0x01, 0x80][p % 3];
                            b
                        }),
                    ] {
                        let mut input: Files = files.clone();
                        input.insert(name.clone(), damaged);
                        runs += 1;
                        let at = format!("v{version}/{name} {how} byte {p}");
                        match catch_unwind(AssertUnwindSafe(|| (entry.read)(&input))) {
                            Err(_) => failures.push(format!("{at}: panicked")),
                            Ok(Ok(_)) if how == "cut at" || mac_protected => {
                                failures.push(format!("{at}: loaded without an error"))
                            }
                            Ok(Ok(_)) => {}
                            Ok(Err(e)) if e.to_string().is_empty() => {
                                failures.push(format!("{at}: an error without a message"))
                            }
                            Ok(Err(_)) => {}
                        }
                    }
                }
            }
        }
    }
    assert!(runs > 10_000, "only {runs} damaged files tried");
    assert!(
        failures.is_empty(),
        "{} of {runs} damaged files:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
