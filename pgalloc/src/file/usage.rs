//! Accounting: what each allocated range is used for (`MemoryKind`, per
//! range in the usage segment set), totals per kind, and which pages are
//! committed (resident), found with `mincore`.

use super::*;

/// What the memory is used for, for accounting (gVisor's usage kinds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, stateify::Stateify)]
pub enum MemoryKind {
    /// Used by the sandbox itself.
    System,
    /// Application anonymous memory.
    Anonymous,
    /// File contents cached for the application.
    PageCache,
    /// tmpfs file contents.
    Tmpfs,
}

impl MemoryKind {
    /// Every kind, in accounting order.
    pub const ALL: [MemoryKind; 4] = [
        MemoryKind::System,
        MemoryKind::Anonymous,
        MemoryKind::PageCache,
        MemoryKind::Tmpfs,
    ];

    pub(super) fn index(self) -> usize {
        self as usize
    }
}

/// What the segment set records per allocated range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Usage {
    pub kind: MemoryKind,
    pub memcg: u32,
    pub refs: u64,
    /// Seen committed (resident) by `update_usage`, or restored committed.
    pub committed: bool,
}

/// Bytes per kind: allocated, and known committed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsageTotals {
    /// Allocated bytes per kind, indexed like [`MemoryKind::ALL`].
    pub allocated: [u64; 4],
    /// Bytes known committed per kind.
    pub committed: [u64; 4],
}

impl UsageTotals {
    /// Allocated bytes of one kind.
    pub fn allocated(&self, kind: MemoryKind) -> u64 {
        self.allocated[kind.index()]
    }

    /// Known committed bytes of one kind.
    pub fn committed(&self, kind: MemoryKind) -> u64 {
        self.committed[kind.index()]
    }
}

/// The minimum throttle between two `update_usage` scans.
const SCAN_INTERVAL: Duration = Duration::from_millis(10);

impl MemoryFile {
    /// Totals per kind: allocated and known committed bytes.
    pub fn usage(&self) -> UsageTotals {
        let st = lock(&self.state);
        let mut t = UsageTotals::default();
        for (r, u) in st.usage.iter() {
            let len = r.end - r.start;
            t.allocated[u.kind.index()] += len;
            if u.committed {
                t.committed[u.kind.index()] += len;
            }
        }
        t
    }

    /// The allocated ranges with their kind, memcg and reference count.
    pub fn segments(&self) -> Vec<(FileRange, MemoryKind, u32, u64)> {
        let st = lock(&self.state);
        st.usage
            .iter()
            .map(|(r, u)| {
                (
                    FileRange {
                        start: r.start,
                        end: r.end,
                    },
                    u.kind,
                    u.memcg,
                    u.refs,
                )
            })
            .collect()
    }

    /// Finds pages that became committed since the last scan (with
    /// `mincore`) and accounts them. Scans at most once per 10 ms unless
    /// `force`; the state lock is not held during the scan. Returns the
    /// bytes newly found committed.
    pub fn update_usage(&self, force: bool) -> Result<u64> {
        let candidates: Vec<Range<u64>> = {
            let mut st = lock(&self.state);
            if !force && st.last_scan.is_some_and(|t| t.elapsed() < SCAN_INTERVAL) {
                return Ok(0);
            }
            st.last_scan = Some(Instant::now());
            st.usage
                .iter()
                .filter(|(_, u)| !u.committed)
                .map(|(r, _)| r)
                .collect()
        };
        let mut found = Vec::new();
        for r in candidates {
            self.resident_runs(r, &mut found)?;
        }
        let mut st = lock(&self.state);
        let mut newly = 0;
        for r in found {
            // Ranges freed meanwhile are gaps and stay untouched.
            for (piece, u) in st.usage.update(r.clone(), |u| {
                Some(Usage {
                    committed: true,
                    ..*u
                })
            }) {
                if !u.committed {
                    newly += piece.end - piece.start;
                }
            }
        }
        Ok(newly)
    }

    /// Appends the runs of resident pages within `r` (which lies inside the
    /// file) to `out`, using `mincore` one chunk piece at a time.
    pub(super) fn resident_runs(&self, r: Range<u64>, out: &mut Vec<Range<u64>>) -> Result<()> {
        let mut vec = Vec::new();
        let mut at = r.start;
        while at < r.end {
            let (ptr, avail) = self.chunk_ptr(at)?;
            let len = avail.min(r.end - at);
            let pages = (len / PAGE_SIZE) as usize;
            vec.clear();
            vec.resize(pages, 0u8);
            // SAFETY: `ptr..ptr + len` lies inside one live mapping of ours
            // (chunk_ptr checks the chunk; mappings live as long as `self`),
            // page-aligned; `vec` has one byte per page of it.
            let rc = unsafe { libc::mincore(ptr.cast(), len as usize, vec.as_mut_ptr()) };
            if rc != 0 {
                return Err(Error::Io(std::io::Error::last_os_error()));
            }
            let mut i = 0;
            while i < pages {
                if vec[i] & 1 == 0 {
                    i += 1;
                    continue;
                }
                let s = i;
                while i < pages && vec[i] & 1 == 1 {
                    i += 1;
                }
                let start = at + s as u64 * PAGE_SIZE;
                let end = at + i as u64 * PAGE_SIZE;
                match out.last_mut() {
                    Some(last) if last.end == start => last.end = end,
                    _ => out.push(start..end),
                }
            }
            at += len;
        }
        Ok(())
    }
}
