//! Writes a new version of the compatibility corpus:
//! `cargo run -p stateify-tests --bin make-golden -- vN`.
//!
//! Refuses to touch a version that exists: a released corpus never changes
//! (docs/COMPATIBILITY.md). Every entry is written with today's code, read
//! back with today's readers, and its sidecar records what it loaded to.
//! The files go to `tests/golden/vN.tmp` and are renamed into place at the
//! end, so a failed run leaves no half version.

use std::process::ExitCode;

use stateify_tests::corpus::{self, BoxError};

/// The corpus of one version stays small: it is checked in.
const MAX_BYTES: u64 = 2 << 20;

fn run(version: &str) -> Result<(), BoxError> {
    let ok = version
        .strip_prefix('v')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if !ok {
        return Err(format!("the version is `v` and a number (v1, v2, …), not {version:?}").into());
    }
    let root = stateify_tests::golden_dir();
    let dir = root.join(version);
    if dir.exists() {
        return Err(format!(
            "{} exists: a corpus version is never rewritten; make the next version instead",
            dir.display()
        )
        .into());
    }
    let tmp = root.join(format!("{version}.tmp"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp)?;
    let mut total = 0;
    for e in corpus::entries() {
        let files = (e.write)().map_err(|err| format!("{}: writing: {err}", e.name))?;
        let loaded = (e.read)(&files).map_err(|err| format!("{}: reading back: {err}", e.name))?;
        for (name, bytes) in &files {
            std::fs::write(tmp.join(name), bytes)?;
            total += bytes.len() as u64;
        }
        let sidecar = corpus::sidecar(&e, &files, &loaded.description);
        std::fs::write(tmp.join(format!("{}.expect", e.name)), &sidecar)?;
        total += sidecar.len() as u64;
        println!("{:<24} {} file(s)", e.name, files.len());
    }
    if total > MAX_BYTES {
        return Err(format!(
            "the corpus would take {total} bytes, over {MAX_BYTES}; left in {}",
            tmp.display()
        )
        .into());
    }
    std::fs::rename(&tmp, &dir)?;
    println!("wrote {} ({total} bytes)", dir.display());
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [version] = args.as_slice() else {
        eprintln!("usage: make-golden vN");
        return ExitCode::from(2);
    };
    match run(version) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("make-golden: {e}");
            ExitCode::FAILURE
        }
    }
}
