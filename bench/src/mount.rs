//! `mount-bench`: how long `stateify mount` takes to come up, and how much
//! memory it holds, on the corpus sandbox checkpoint and on G1 (1,000,000
//! structs in one record), then the cost of listing and reading through
//! the mount. Needs FUSE and root; build the CLI first:
//!
//! ```text
//! cargo build --release -p stateify-cli -p stateify-bench --bin mount-bench
//! target/release/mount-bench
//! ```

#[path = "../../state/benches/graphs/model.rs"]
mod model;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use stateify_tests::mount::Mounted;

/// The `stateify` binary beside this one.
fn cli() -> PathBuf {
    let me = std::env::current_exe().expect("own path");
    let bin = me.with_file_name("stateify");
    assert!(
        bin.exists(),
        "{} is missing: cargo build --release -p stateify-cli",
        bin.display()
    );
    bin
}

/// Resident memory of a process in MiB: anonymous (the heap) and
/// file-backed (the mapped records, page cache the kernel can drop).
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (kib("RssAnon:"), kib("RssFile:") + kib("RssShmem:"))
}

/// Starts a mount; returns it and the wall time until it was up.
fn mount(args: &[&str], dir: &Path) -> (Mounted, Duration) {
    let started = Instant::now();
    let m = Mounted::start(&cli(), args, dir);
    (m, started.elapsed())
}

/// Runs a shell command, timing it; returns its trimmed output.
fn timed(what: &str, cmd: &str, m: &Mounted) -> String {
    let started = Instant::now();
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    let t = started.elapsed();
    let (anon, file) = memory(m.child.id());
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    println!(
        "  {what:<44} {:>8.1} ms   heap {anon:>6.1} MiB  mapped {file:>6.1} MiB   -> {}",
        t.as_secs_f64() * 1e3,
        text.lines().next().unwrap_or("")
    );
    text
}

fn report(name: &str, file: &Path, m: &Mounted, up: Duration) {
    let (anon, mapped) = memory(m.child.id());
    println!(
        "{name}: {} bytes on disk\n  mounted in {:.1} ms (process start to mount; {})\n  after mount: heap {anon:.1} MiB, mapped {mapped:.1} MiB",
        std::fs::metadata(file).unwrap().len(),
        up.as_secs_f64() * 1e3,
        m.banner
            .split_once('(')
            .and_then(|(_, r)| r.split_once(')'))
            .map_or("", |(b, _)| b)
    );
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/v6");
    let key = tmp.path().join("key");
    std::fs::write(&key, b"stateify golden corpus key").unwrap();

    let state = corpus.join("sandbox.state");
    let pages = corpus.join("sandbox.pages");
    let (m, up) = mount(
        &[
            "--key-file",
            key.to_str().unwrap(),
            "mount",
            "--pages",
            pages.to_str().unwrap(),
            state.to_str().unwrap(),
        ],
        &tmp.path().join("sandbox"),
    );
    report("sandbox (corpus v6)", &state, &m, up);
    let d = m.dir.display();
    timed("find | wc -l", &format!("find {d} | wc -l"), &m);
    timed("cat /0/init/name", &format!("cat {d}/0/init/name"), &m);
    timed(
        "cat /pages/* | wc -c",
        &format!("cat {d}/pages/* | wc -c"),
        &m,
    );
    drop(m);

    let g1 = model::derived(&model::g1(1_000_000));
    let file = tmp.path().join("g1.stream");
    std::fs::write(&file, stateify::to_vec(&g1).unwrap()).unwrap();
    drop(g1);
    let (m, up) = mount(&["mount", file.to_str().unwrap()], &tmp.path().join("g1"));
    report("G1 (1,000,000 items, one record)", &file, &m, up);
    let d = m.dir.display();
    timed(
        "cat /0/items/999999/s (first access)",
        &format!("cat {d}/0/items/999999/s"),
        &m,
    );
    timed(
        "cat /0/items/999998/s (listing cached)",
        &format!("cat {d}/0/items/999998/s"),
        &m,
    );
    timed(
        "ls -f /0/items | wc -l",
        &format!("ls -f {d}/0/items | wc -l"),
        &m,
    );
    timed(
        "find /0/items/5000* | wc -l (111 items)",
        &format!("find {d}/0/items/5000* | wc -l"),
        &m,
    );
}
