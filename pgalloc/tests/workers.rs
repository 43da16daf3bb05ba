//! The restore workers run at the program's expense only: started before
//! `load_from` returns (their start-up maps memory, which would stall the
//! program's page faults), niced and SCHED_BATCH. A test binary of its own:
//! no other test's workers are alive while it looks at /proc.

use std::fs::File;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use pgalloc::{AllocOpts, LoadOpts, MemoryFile, MemoryFileOpts, PageSource, SaveOpts};

/// SCHED_BATCH on Linux (sched.h).
const SCHED_BATCH: u32 = 3;

/// A pages file read slowly, so that the workers are still busy when the
/// test looks at them.
struct Slow(File);

impl PageSource for Slow {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        std::thread::sleep(Duration::from_millis(20));
        std::os::unix::fs::FileExt::read_at(&self.0, buf, offset)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
}

/// (policy, nice) of every live thread whose name starts with `prefix`.
fn threads_named(prefix: &str) -> Vec<(u32, i64)> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let dir = task.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if !comm.starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap();
        // The fields after the parenthesised name (which may hold spaces);
        // proc(5) numbers them from 1 at the pid, so field n is rest[n - 3].
        let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
            .split_whitespace()
            .collect();
        found.push((rest[41 - 3].parse().unwrap(), rest[19 - 3].parse().unwrap()));
    }
    found
}

#[test]
fn workers_are_ready_before_load_from_returns_and_yield_to_the_program() {
    let mf = MemoryFile::new(MemoryFileOpts::default()).unwrap();
    let r = mf.allocate(4 << 20, AllocOpts::default()).unwrap();
    mf.with_slice_mut(r, |s| s.fill(7)).unwrap();
    let mut meta = Vec::new();
    let mut pages = tempfile::tempfile().unwrap();
    mf.save_to(&mut meta, Some(&mut pages), &SaveOpts::default())
        .unwrap();
    let opts = LoadOpts {
        background: true,
        threads: 3,
        ..LoadOpts::default()
    };
    let (back, _) = MemoryFile::load_from(&meta[..], Some(Arc::new(Slow(pages))), &opts).unwrap();
    // Thread names are cut to 15 bytes: "pgalloc-restore".
    let workers = threads_named("pgalloc-restore");
    assert_eq!(workers.len(), 3, "every worker runs once load_from returns");
    for (policy, nice) in workers {
        assert_eq!(policy, SCHED_BATCH, "worker scheduling policy");
        assert_eq!(nice, 10, "worker nice value");
    }
    let mut b = [0u8; 3];
    back.read_at(r.start + 4096, &mut b).unwrap();
    assert_eq!(b, [7; 3]);
    back.await_all().unwrap();
}
