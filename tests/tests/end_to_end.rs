//! One checkpoint through every crate, as a program would make it: the
//! sandbox graph (stateify) and its page metadata in a keyed, compressed
//! statefile, its memory (pgalloc) in a pages file written on a second
//! thread, both files created atomically on disk; then inspected with the
//! `stateify` binary and restored with its pages streaming in the
//! background. (The restore in another process is `examples/tests/sandbox.rs`.)

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use pgalloc::{LoadOpts, MemoryFile};
use stateify_examples::timers::{ClockResource, FakeClock};
use stateify_tests::corpus::{BoxError, KEY};
use stateify_tests::sandbox::{self, Sandbox};

/// The `stateify` binary of this workspace, which `cargo test --workspace`
/// builds beside the test executables.
fn cli() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("stateify"))
        .unwrap();
    assert!(
        bin.exists(),
        "{} is missing: run `cargo test --workspace` (or `cargo build -p stateify-cli` first)",
        bin.display()
    );
    bin
}

/// Checkpoint `cp` in `dir`: `cp.state` and the pages file it names,
/// written crash-consistently (`statefile::write_pair`).
fn checkpoint(sb: &Sandbox, mem: &MemoryFile, dir: &Path) -> Result<(), BoxError> {
    let opts = statefile::Options {
        compression: statefile::Compression::Zstd(3),
        ..Default::default()
    };
    let mut page_meta = Vec::new();
    statefile::write_pair(dir, "cp", |out, pages_out, pages_name| {
        let meta = BTreeMap::from([
            ("app".to_string(), "end-to-end".to_string()),
            (statefile::PAGES_KEY.to_string(), pages_name.to_string()),
        ]);
        let mut w = statefile::Writer::with_options(out, Some(KEY), &meta, opts)?;
        std::thread::scope(|s| {
            let pages =
                s.spawn(|| mem.save_to(&mut page_meta, Some(pages_out), &Default::default()));
            stateify::save(&mut w, sb)?;
            pages.join().map_err(|_| "page saver panicked")??;
            Ok::<_, BoxError>(())
        })?;
        w.write_all(&page_meta)?;
        w.finish()?;
        Ok::<_, BoxError>(())
    })?;
    Ok(())
}

fn restore(dir: &Path) -> Result<(Sandbox, MemoryFile), BoxError> {
    let pair = statefile::find_pair(dir, "cp")?;
    let mut r = statefile::Reader::new(BufReader::new(File::open(&pair.state)?), Some(KEY))?;
    let mut res = stateify::Resources::new();
    res.insert(ClockResource(FakeClock::starting_at(Duration::from_secs(
        3600,
    ))));
    let sb: Sandbox = stateify::load_with(&mut r, &mut res)?;
    let pages = Arc::new(File::open(&pair.pages)?);
    let opts = LoadOpts {
        background: true,
        ..Default::default()
    };
    let (mem, stats) = MemoryFile::load_from(&mut r, Some(pages), &opts)?;
    r.finish()?;
    if !stats.verified {
        return Err("a checkpoint written today restores its pages unverified".into());
    }
    Ok((sb, mem))
}

fn stateify(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(cli())
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn checkpoint_inspect_and_restore_across_every_crate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (sb, mem) = sandbox::build().unwrap();
    let before = sandbox::describe(&sb, &mem).unwrap();
    checkpoint(&sb, &mem, d).unwrap();
    sb.stack.shutdown();
    drop((sb, mem));
    std::fs::write(d.join("key"), KEY).unwrap();

    // Inspected without the Rust types.
    let (code, out, err) = stateify(d, &["info", "cp.state"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("compression: Zstd") && out.contains("app = end-to-end"),
        "{out}"
    );
    let pages_file = statefile::find_pair(d, "cp").unwrap().pages;
    let pages_name = pages_file
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let (code, out, err) = stateify(d, &["--key-file", "key", "verify", "cp.state"]);
    // The pages file the statefile names, checked piece by piece.
    assert!(
        out.contains(&format!("pages file {pages_name} (checkpoint "))
            && out.contains("verified every piece against its BLAKE3 digest"),
        "{out}"
    );
    assert_eq!(
        (code, out.starts_with("OK: 2 graphs")),
        (0, true),
        "{out}{err}"
    );
    let (code, out, _) = stateify(
        d,
        &["--key-file", "key", "cat", "cp.state", "/0/tasks/2/name"],
    );
    assert_eq!((code, out.trim()), (0, "\"worker-2\""));
    let (code, out, _) = stateify(d, &["--key-file", "key", "ls", "cp.state", "/0/tasks/3"]);
    assert_eq!(code, 0);
    for field in ["pid", "parent", "children", "fds", "memory", "cwd"] {
        assert!(
            out.contains(&format!("/0/tasks/3/{field}")),
            "{field} missing from {out}"
        );
    }
    let (code, out, _) = stateify(d, &["--key-file", "key", "stats", "cp.state"]);
    let task_line = out
        .lines()
        .find(|l| l.starts_with("sandbox::Task "))
        .unwrap_or("");
    assert_eq!(
        (code, task_line.split_whitespace().nth(1)),
        (0, Some("4")),
        "{out}"
    );
    let (code, out, _) = stateify(d, &["info", &pages_name]);
    assert_eq!(
        (code, out.contains("pages file of checkpoint ")),
        (0, true),
        "{out}"
    );

    // The wrong key, and a damaged copy, are refused with a message.
    std::fs::write(d.join("wrong"), b"not the key").unwrap();
    let (code, _, err) = stateify(d, &["--key-file", "wrong", "verify", "cp.state"]);
    assert_eq!((code, err.contains("wrong key")), (2, true), "{err}");
    let mut bytes = std::fs::read(d.join("cp.state")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(d.join("damaged.state"), &bytes).unwrap();
    let (code, _, err) = stateify(d, &["--key-file", "key", "verify", "damaged.state"]);
    assert_eq!(code, 2, "{err}");
    assert!(restore_damaged(d, &bytes).is_err());
    // A damaged pages file: `verify` names the block and the memory range.
    let good = std::fs::read(&pages_file).unwrap();
    let mut bad = good.clone();
    bad[4096 + 100] ^= 1;
    std::fs::write(&pages_file, &bad).unwrap();
    let (code, _, err) = stateify(d, &["--key-file", "key", "verify", "cp.state"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("page block 0, memory 0x") && err.contains("(pages file offset 0x1000)"),
        "{err}"
    );
    std::fs::write(&pages_file, &good).unwrap();
    // `info` names the pages file and its checkpoint; with the key it also
    // checks that the page metadata inside names the same checkpoint.
    let (_, out, _) = stateify(d, &["info", "cp.state"]);
    assert!(
        out.contains(&format!("pages file: {pages_name} (checkpoint ")),
        "{out}"
    );
    assert!(out.contains("pair: not checked"), "{out}");
    let (_, out, _) = stateify(d, &["--key-file", "key", "info", "cp.state"]);
    assert!(out.contains("pair: matches"), "{out}");
    let mut foreign = good.clone();
    foreign[16] ^= 1; // another checkpoint id in the header
    std::fs::write(&pages_file, &foreign).unwrap();
    let (_, out, _) = stateify(d, &["--key-file", "key", "info", "cp.state"]);
    assert!(out.contains("pair: MISMATCH"), "{out}");
    let (code, _, err) = stateify(d, &["--key-file", "key", "verify", "cp.state"]);
    assert_eq!(code, 2);
    assert!(err.contains("written by another checkpoint"), "{err}");
    std::fs::write(&pages_file, &good).unwrap();

    // Restored, pages in the background: the same graph and memory.
    let (sb, mem) = restore(d).unwrap();
    assert_eq!(sandbox::describe(&sb, &mem).unwrap(), before);
    mem.await_all().unwrap();
    sb.stack.shutdown();
}

fn restore_damaged(d: &Path, bytes: &[u8]) -> Result<(), BoxError> {
    let other = d.join("other");
    std::fs::create_dir_all(&other)?;
    std::fs::write(other.join("cp.state"), bytes)?;
    let pages = statefile::find_pair(d, "cp")?.pages;
    std::fs::copy(&pages, other.join(pages.file_name().ok_or("no name")?))?;
    restore(&other).map(drop)
}

/// Pages saved before page digests existed (the v1 and v2 corpus) still
/// load, and say they were not verified.
#[test]
fn checkpoints_from_before_page_digests_load_unverified() {
    for v in ["v1", "v2"] {
        let dir = stateify_tests::golden_dir().join(v);
        let meta = std::fs::read(dir.join("pages.meta")).unwrap();
        let pages = Arc::new(File::open(dir.join("pages.pages")).unwrap());
        let (_, stats) =
            MemoryFile::load_from(&meta[..], Some(pages), &LoadOpts::default()).unwrap();
        assert!(!stats.verified, "{v}");
    }
    let dir = stateify_tests::golden_dir().join("v3");
    let meta = std::fs::read(dir.join("pages.meta")).unwrap();
    let pages = Arc::new(File::open(dir.join("pages.pages")).unwrap());
    let (_, stats) = MemoryFile::load_from(&meta[..], Some(pages), &LoadOpts::default()).unwrap();
    assert!(stats.verified, "v3 records page digests");
    assert_eq!(stats.checkpoint_id, 0, "v3 has no checkpoint id");
    // v4: the pages file carries the checkpoint id in a header.
    let dir = stateify_tests::golden_dir().join("v4");
    let meta = std::fs::read(dir.join("pages.meta")).unwrap();
    let pages = std::fs::read(dir.join("pages.pages")).unwrap();
    let id = pgalloc::read_pages_header(&pages).unwrap();
    let (_, stats) =
        MemoryFile::load_from(&meta[..], Some(Arc::new(pages)), &LoadOpts::default()).unwrap();
    assert!(stats.verified);
    assert_eq!(stats.checkpoint_id, id);
    // v3's metadata with v4's pages file, and the reverse: refused.
    let v3 = stateify_tests::golden_dir().join("v3");
    let v3_meta = std::fs::read(v3.join("pages.meta")).unwrap();
    let v4_pages = Arc::new(File::open(dir.join("pages.pages")).unwrap());
    assert!(MemoryFile::load_from(&v3_meta[..], Some(v4_pages), &LoadOpts::default()).is_err());
    let v3_pages = Arc::new(File::open(v3.join("pages.pages")).unwrap());
    let e = MemoryFile::load_from(&meta[..], Some(v3_pages), &LoadOpts::default())
        .map(drop)
        .unwrap_err();
    assert!(matches!(e, pgalloc::Error::PagesFile(_)), "{e}");
}
