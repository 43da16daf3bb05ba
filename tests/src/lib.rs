//! Cross-crate tests of stateify and its format-compatibility corpus.
//!
//! `tests/golden/vN/` holds files written by version N of the formats, each
//! with a sidecar `NAME.expect` saying what it must load to. `corpus` lists
//! the entries (how to write them today, how to read any version), `model`
//! and `sandbox` the frozen Rust types they load into. The `make-golden`
//! binary writes a new corpus version; `tests/golden.rs` loads every
//! version. See docs/COMPATIBILITY.md.

pub mod corpus;
pub mod fuzz;
pub mod model;
pub mod mount;
pub mod s3;
pub mod sandbox;

/// The corpus root, `tests/golden/`.
pub fn golden_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("golden")
}

/// Every corpus version present, in order (`v1`, `v2`, …).
pub fn versions() -> std::io::Result<Vec<(u32, std::path::PathBuf)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(golden_dir())? {
        let e = e?;
        let name = e.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|n| n.strip_prefix('v'))
            .and_then(|n| n.parse().ok())
        else {
            continue;
        };
        out.push((n, e.path()));
    }
    out.sort();
    Ok(out)
}
