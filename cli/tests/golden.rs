//! The `stateify` binary over the v1 compatibility corpus
//! (`tests/golden/v1`): what every command prints for files written by the
//! first format version, as insta snapshots, text and JSON. A later
//! version of the CLI must still read these files; a change in what it
//! prints shows up here for review. Serde fields are read from the v6
//! `serde` entry.

use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus() -> PathBuf {
    stateify_tests::golden_dir().join("v1")
}

/// The corpus statefiles written without a key (a key given for them is
/// an error: the CLI does not let a file's own flag waive the MAC key).
const UNKEYED: &[&str] = &["statefile-none.state", "statefile-zstd.state"];

/// Runs the binary in the corpus directory (so file names print short),
/// with the corpus key in a temporary file unless every file is unkeyed.
fn run(args: &[&str]) -> (i32, String, String) {
    let key = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key.path(), stateify_tests::corpus::KEY).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stateify"));
    cmd.current_dir(corpus());
    if !args.iter().any(|a| UNKEYED.contains(a)) {
        cmd.arg("--key-file").arg(key.path());
    }
    let out = cmd.args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

const CASES: &[(&str, &[&str])] = &[
    ("info-statefile", &["info", "statefile-zstd-keyed.state"]),
    ("info-sandbox", &["info", "sandbox.state"]),
    ("info-stream", &["info", "mixed.stream"]),
    ("info-pages", &["info", "pages.pages"]),
    ("verify-sandbox", &["verify", "sandbox.state"]),
    ("verify-lz4", &["verify", "statefile-lz4.state"]),
    ("verify-stream", &["verify", "pages-inline.stream"]),
    ("print-compound", &["print", "compound.graph"]),
    ("print-statefile", &["print", "statefile-keyed.state"]),
    ("ls-root", &["ls", "sandbox.state"]),
    ("ls-long-task", &["ls", "-l", "sandbox.state", "/0/tasks/1"]),
    ("ls-sharing", &["ls", "-l", "sharing.graph", "/0/tree/kids"]),
    ("cat-fds", &["cat", "sandbox.state", "/0/tasks/2/fds"]),
    ("cat-scalar", &["cat", "scalars.graph", "/0/f64s/6"]),
    ("stats-sandbox", &["stats", "sandbox.state", "--top", "8"]),
    ("stats-packed", &["stats", "packed.graph"]),
    (
        "diff-same",
        &["diff", "statefile-none.state", "statefile-zstd.state"],
    ),
    ("diff-other", &["diff", "traitobj.graph", "sharing.graph"]),
];

/// Exit code 1 is `diff` finding differences; anything else but 0 is a
/// failure to read a corpus file.
fn expected_code(name: &str) -> i32 {
    i32::from(name == "diff-other")
}

#[test]
fn text_over_the_v1_corpus() {
    for (name, args) in CASES {
        let (code, out, err) = run(args);
        assert_eq!(code, expected_code(name), "{name}: {err}");
        // `diff` of equal files prints nothing and exits 0.
        assert_eq!(out.is_empty(), *name == "diff-same", "{name}: {out}");
        insta::assert_snapshot!(format!("v1-{name}"), out);
    }
}

#[test]
fn json_over_the_v1_corpus() {
    for (name, args) in CASES {
        let mut with_json = vec!["--json"];
        with_json.extend_from_slice(args);
        let (code, out, err) = run(&with_json);
        assert_eq!(code, expected_code(name), "{name}: {err}");
        let parsed: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {out}"));
        insta::assert_snapshot!(
            format!("v1-{name}-json"),
            serde_json::to_string_pretty(&parsed).unwrap()
        );
    }
}

/// Every graph stream and statefile verifies; pages files (which hold no
/// records, only page bytes) are described by `info`.
#[test]
fn every_corpus_file_verifies() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e != "expect"))
        .collect();
    files.sort();
    assert!(files.len() >= 18, "{files:?}");
    for f in &files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap();
        let cmd = if name.ends_with(".pages") {
            "info"
        } else {
            "verify"
        };
        let (code, _, err) = run(&[cmd, name]);
        assert_eq!(code, 0, "{cmd} {}: {err}", Path::new(name).display());
    }
}

/// Serde fields (the v6 `serde` entry) read like derived ones: listed,
/// printed by path, diffed by path.
#[test]
fn serde_fields_through_the_cli() {
    let dir = stateify_tests::golden_dir().join("v6");
    let run_in = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_stateify"))
            .current_dir(&dir)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (code, ls, err) = run_in(&["ls", "-l", "serde.graph", "/0/settings/1"]);
    assert_eq!(code, 0, "{err}");
    let (code, cat, err) = run_in(&["cat", "serde.graph", "/0/settings/1/backend"]);
    assert_eq!(code, 0, "{err}");
    let (code, json, err) = run_in(&["--json", "cat", "serde.graph", "/0/settings/1/mode"]);
    assert_eq!(code, 0, "{err}");
    // A changed copy: one serde field differs.
    let mut changed = stateify_tests::model::serde_types::SerdeFields::build();
    changed.settings[1].backend = stateify_tests::model::serde_types::Backend::Memory { bytes: 9 };
    let tmp = tempfile::tempdir().unwrap();
    let other = tmp.path().join("changed.graph");
    std::fs::write(&other, stateify::to_vec(&changed).unwrap()).unwrap();
    let (code, diff, err) = run_in(&["diff", "serde.graph", other.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    insta::assert_snapshot!(
        "v6-serde",
        format!("$ ls -l\n{ls}\n$ cat\n{cat}\n$ cat --json\n{json}\n$ diff\n{diff}")
    );
}
