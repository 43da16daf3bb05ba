//! Change tracking: which pages changed since the file's last checkpoint
//! (the save it made, or the checkpoint it was loaded from), for
//! incremental saves.
//!
//! Two sources are joined:
//! - a bitmap of pages written or freed through the file's own API
//!   (`write_at`, `with_slice_mut`, `dec_ref`), set under the lock those
//!   writers hold anyway: one bit operation per page written;
//! - for raw mappings, userfaultfd async write-protection ([`uffd`]), where
//!   the kernel has it. Without it, raw pointers ([`MemoryFile::raw_ptr`])
//!   make every page holding data count as changed.
//!
//! [`uffd`]: super::uffd
//! [`MemoryFile::raw_ptr`]: crate::MemoryFile::raw_ptr

use crate::range::FileRange;
use crate::PAGE_SIZE;

/// Which change tracking a [`MemoryFile`](crate::MemoryFile) keeps
/// ([`MemoryFileOpts::tracking`](crate::MemoryFileOpts::tracking)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tracking {
    /// Writes through the API exactly; writes through raw mappings by
    /// userfaultfd async write-protection where the kernel and the process
    /// allow it (Linux 6.7, and root or `vm.unprivileged_userfaultfd`),
    /// else every page holding data counts as changed once
    /// [`raw_ptr`](crate::MemoryFile::raw_ptr) has been called.
    #[default]
    Auto,
    /// Writes through the API only (no userfaultfd), as with `Auto` on a
    /// kernel without it.
    Api,
    /// None: incremental saves are refused.
    Off,
}

/// How an incremental save found the changed pages
/// ([`SaveStats::tracking`](crate::SaveStats::tracking)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TrackingMethod {
    /// A full save: nothing had to be found.
    #[default]
    Full,
    /// The API bitmap joined with the kernel's record of writes through
    /// the mappings (userfaultfd async write-protection).
    WriteProtect,
    /// The API bitmap alone: no raw pointer was ever handed out, so it is
    /// exact.
    Api,
    /// Raw pointers were handed out and the kernel cannot track their
    /// writes: every page holding data was taken as changed (zero pages
    /// are still left out).
    Untracked,
}

/// Pages written or freed through the API since the last checkpoint, one
/// bit per page.
#[derive(Default)]
pub(crate) struct Changed {
    words: Vec<u64>,
}

impl Changed {
    /// Records every page that `r` touches.
    #[inline]
    pub(crate) fn mark(&mut self, r: FileRange) {
        if r.is_empty() {
            return;
        }
        let first = r.start / PAGE_SIZE;
        let last = (r.end - 1) / PAGE_SIZE;
        let need = (last / 64 + 1) as usize;
        if self.words.len() < need {
            self.words.resize(need, 0);
        }
        let (fw, lw) = ((first / 64) as usize, (last / 64) as usize);
        let lo = !0u64 << (first % 64);
        let hi = !0u64 >> (63 - last % 64);
        if fw == lw {
            self.words[fw] |= lo & hi;
        } else {
            self.words[fw] |= lo;
            self.words[fw + 1..lw].fill(!0);
            self.words[lw] |= hi;
        }
    }

    /// Records every range of `rs`.
    pub(crate) fn mark_all(&mut self, rs: &[FileRange]) {
        for r in rs {
            self.mark(*r);
        }
    }

    /// The marked pages as sorted, merged ranges; clears them.
    pub(crate) fn take(&mut self) -> Vec<FileRange> {
        let mut out: Vec<FileRange> = Vec::new();
        for (i, w) in self.words.iter_mut().enumerate() {
            let mut bits = std::mem::take(w);
            while bits != 0 {
                let lo = bits.trailing_zeros() as u64;
                let run = (bits >> lo).trailing_ones() as u64;
                let page = i as u64 * 64 + lo;
                let r = FileRange {
                    start: page * PAGE_SIZE,
                    end: (page + run) * PAGE_SIZE,
                };
                match out.last_mut() {
                    Some(last) if last.end == r.start => last.end = r.end,
                    _ => out.push(r),
                }
                bits = if lo + run >= 64 {
                    0
                } else {
                    bits & (!0u64 << (lo + run))
                };
            }
        }
        out
    }
}

/// Sorted, disjoint ranges: the union of two such lists.
pub(crate) fn union(a: &[FileRange], b: &[FileRange]) -> Vec<FileRange> {
    let mut all: Vec<FileRange> = a.iter().chain(b).copied().collect();
    all.sort_unstable();
    let mut out: Vec<FileRange> = Vec::with_capacity(all.len());
    for r in all {
        match out.last_mut() {
            Some(last) if last.end >= r.start => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// Sorted, disjoint ranges: the parts of `a` inside `b`.
pub(crate) fn intersect(a: &[FileRange], b: &[FileRange]) -> Vec<FileRange> {
    let tagged: Vec<(FileRange, ())> = a.iter().map(|r| (*r, ())).collect();
    intersect_with(&tagged, b)
        .into_iter()
        .map(|(r, ())| r)
        .collect()
}

/// As [`intersect`], each part keeping the value of the range of `a` it
/// came from (a segment's usage, say).
pub(crate) fn intersect_with<V: Copy>(
    a: &[(FileRange, V)],
    b: &[FileRange],
) -> Vec<(FileRange, V)> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (ra, v) = a[i];
        let start = ra.start.max(b[j].start);
        let end = ra.end.min(b[j].end);
        if start < end {
            out.push((FileRange { start, end }, v));
        }
        if ra.end < b[j].end {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// Who holds each part of `area` in a chain: `changed[i]` is layer `i`'s
/// changed memory (oldest first; the base's is not looked at: it holds
/// whatever no newer layer changed). Returns each layer's parts of `area`.
pub(crate) fn by_newest(mut area: Vec<FileRange>, changed: &[&[FileRange]]) -> Vec<Vec<FileRange>> {
    let mut owned = vec![Vec::new(); changed.len()];
    for (i, c) in changed.iter().enumerate().skip(1).rev() {
        owned[i] = intersect(&area, c);
        area = subtract(&area, c);
    }
    if let Some(base) = owned.first_mut() {
        *base = area;
    }
    owned
}

/// Sorted, disjoint ranges: the parts of `a` outside `b`.
pub(crate) fn subtract(a: &[FileRange], b: &[FileRange]) -> Vec<FileRange> {
    let mut out = Vec::new();
    let mut j = 0;
    for r in a {
        let mut at = r.start;
        while j < b.len() && b[j].end <= at {
            j += 1;
        }
        let mut k = j;
        while k < b.len() && b[k].start < r.end {
            if b[k].start > at {
                out.push(FileRange {
                    start: at,
                    end: b[k].start,
                });
            }
            at = at.max(b[k].end);
            k += 1;
        }
        if at < r.end {
            out.push(FileRange {
                start: at,
                end: r.end,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> FileRange {
        FileRange { start, end }
    }

    #[test]
    fn marks_come_back_as_merged_page_ranges_once() {
        let mut c = Changed::default();
        c.mark(r(10, 20)); // page 0
        c.mark(r(4096 * 63, 4096 * 66)); // across a word
        c.mark(r(4096 * 66, 4096 * 67 + 1)); // touches: merged
        c.mark(r(4096 * 200, 4096 * 329)); // whole words
        assert_eq!(
            c.take(),
            vec![
                r(0, 4096),
                r(4096 * 63, 4096 * 68),
                r(4096 * 200, 4096 * 329)
            ]
        );
        assert!(c.take().is_empty());
    }

    #[test]
    fn range_algebra() {
        let a = [r(0, 10), r(20, 30), r(40, 50)];
        let b = [r(5, 25), r(45, 60)];
        assert_eq!(union(&a, &b), vec![r(0, 30), r(40, 60)]);
        assert_eq!(intersect(&a, &b), vec![r(5, 10), r(20, 25), r(45, 50)]);
        assert_eq!(subtract(&a, &b), vec![r(0, 5), r(25, 30), r(40, 45)]);
        assert_eq!(subtract(&b, &a), vec![r(10, 20), r(50, 60)]);
        assert_eq!(subtract(&a, &[]), a.to_vec());
        assert!(intersect(&a, &[]).is_empty());
        let tagged = [(r(0, 10), 'x'), (r(20, 30), 'y')];
        assert_eq!(
            intersect_with(&tagged, &[r(5, 25)]),
            vec![(r(5, 10), 'x'), (r(20, 25), 'y')]
        );
        // Layer 2 changed 0..5, layer 1 changed 0..15: 0..5 is layer 2's,
        // 5..15 layer 1's, the rest the base's.
        let (one, two) = ([r(0, 15)], [r(0, 5)]);
        assert_eq!(
            by_newest(vec![r(0, 30)], &[&[], &one, &two]),
            vec![vec![r(15, 30)], vec![r(5, 15)], vec![r(0, 5)]]
        );
    }
}
