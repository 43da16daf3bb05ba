//! An interval map over `u64` offsets: disjoint half-open ranges, each with a
//! value; equal neighbours that touch are merged, so a run of pages with the
//! same usage is one entry however it was built.

use std::collections::BTreeMap;
use std::ops::Range;

#[derive(Clone, Debug, Default)]
pub struct SegmentSet<V> {
    /// start → (end, value); ranges never overlap and are never empty.
    map: BTreeMap<u64, (u64, V)>,
}

impl<V: Clone + PartialEq> SegmentSet<V> {
    pub fn new() -> Self {
        SegmentSet {
            map: BTreeMap::new(),
        }
    }

    /// Segments in address order.
    pub fn iter(&self) -> impl Iterator<Item = (Range<u64>, &V)> + '_ {
        self.map.iter().map(|(&s, (e, v))| (s..*e, v))
    }

    /// The segment containing `addr`.
    #[cfg(test)]
    pub fn find(&self, addr: u64) -> Option<(Range<u64>, &V)> {
        let (&s, (e, v)) = self.map.range(..=addr).next_back()?;
        (addr < *e).then_some((s..*e, v))
    }

    /// Where a range query from `addr` must start: the start of the
    /// segment containing `addr`, or `addr`.
    fn key_at(&self, addr: u64) -> u64 {
        match self.map.range(..=addr).next_back() {
            Some((&s, (e, _))) if *e > addr => s,
            _ => addr,
        }
    }

    /// The segments intersecting `r`, in order (a range query: the cost is
    /// in the segments returned, not in the whole set).
    pub fn overlapping(&self, r: Range<u64>) -> impl Iterator<Item = (Range<u64>, &V)> + '_ {
        let key = self.key_at(r.start);
        self.map
            .range(key..r.end.max(key))
            .map(|(&s, (e, v))| (s..*e, v))
    }

    /// Whether any segment intersects `r`.
    pub fn intersects(&self, r: &Range<u64>) -> bool {
        if let Some((_, (e, _))) = self.map.range(..r.start).next_back() {
            if *e > r.start {
                return true;
            }
        }
        self.map.range(r.start..r.end).next().is_some()
    }

    /// The first gap of at least `len` bytes at or after `from`, below
    /// `limit` (bottom-up first fit), whose start satisfies `ok`: the
    /// returned start is the lowest such address found.
    pub fn first_gap(
        &self,
        from: u64,
        len: u64,
        limit: u64,
        mut fit: impl FnMut(u64, u64) -> Option<u64>,
    ) -> Option<u64> {
        let mut cursor = from;
        for (&s, (e, _)) in self.map.range(self.key_at(from)..) {
            if s > cursor {
                if let Some(at) = fit(cursor, s) {
                    return Some(at);
                }
            }
            cursor = cursor.max(*e);
        }
        if cursor.checked_add(len)? <= limit {
            return fit(cursor, limit);
        }
        None
    }

    /// Splits the segment containing `at` (if any) so that a segment
    /// starts at `at`.
    fn split_at(&mut self, at: u64) {
        let Some((&s, (e, v))) = self.map.range(..at).next_back() else {
            return;
        };
        if *e > at {
            let (e, v) = (*e, v.clone());
            if let Some(first) = self.map.get_mut(&s) {
                first.0 = at;
            }
            self.map.insert(at, (e, v));
        }
    }

    /// Merges the segment starting at `start` with equal touching neighbours.
    fn merge_around(&mut self, start: u64) {
        let Some((end, v)) = self.map.get(&start).cloned() else {
            return;
        };
        // With the next one.
        if let Some((ne, nv)) = self.map.get(&end).cloned() {
            if nv == v {
                self.map.remove(&end);
                if let Some(cur) = self.map.get_mut(&start) {
                    cur.0 = ne;
                }
            }
        }
        // With the previous one.
        if let Some((&ps, (pe, pv))) = self.map.range(..start).next_back() {
            if *pe == start && *pv == v {
                let (cur_end, _) = self.map.remove(&start).unwrap_or((start, v));
                if let Some(prev) = self.map.get_mut(&ps) {
                    prev.0 = cur_end;
                }
            }
        }
    }

    /// Adds a segment over a range that no segment intersects.
    pub fn insert(&mut self, r: Range<u64>, v: V) -> bool {
        if r.start >= r.end || self.intersects(&r) {
            return false;
        }
        self.map.insert(r.start, (r.end, v));
        self.merge_around(r.start);
        true
    }

    /// Applies `f` to the values over `r` (splitting segments at its edges);
    /// a value that `f` maps to `None` is removed. Gaps in `r` are left
    /// alone. Returns the pieces as they were before, for the caller's
    /// bookkeeping.
    pub fn update(
        &mut self,
        r: Range<u64>,
        mut f: impl FnMut(&V) -> Option<V>,
    ) -> Vec<(Range<u64>, V)> {
        if r.start >= r.end {
            return Vec::new();
        }
        self.split_at(r.start);
        self.split_at(r.end);
        let starts: Vec<u64> = self.map.range(r.start..r.end).map(|(&s, _)| s).collect();
        let mut before = Vec::with_capacity(starts.len());
        for s in &starts {
            let Some((e, v)) = self.map.remove(s) else {
                continue;
            };
            if let Some(nv) = f(&v) {
                self.map.insert(*s, (e, nv));
            }
            before.push((*s..e, v));
        }
        for s in starts.iter().chain([&r.end]) {
            self.merge_around(*s);
        }
        if let Some((&s, _)) = self.map.range(..r.start).next_back() {
            self.merge_around(s);
        }
        before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(s: &SegmentSet<u32>) -> Vec<(u64, u64, u32)> {
        s.iter().map(|(r, v)| (r.start, r.end, *v)).collect()
    }

    #[test]
    fn insert_merges_equal_neighbours() {
        let mut s = SegmentSet::new();
        assert!(s.insert(0..10, 1));
        assert!(s.insert(20..30, 1));
        assert!(s.insert(10..20, 1));
        assert_eq!(dump(&s), vec![(0, 30, 1)]);
        assert!(s.insert(30..40, 2));
        assert_eq!(dump(&s), vec![(0, 30, 1), (30, 40, 2)]);
        assert!(!s.insert(35..45, 3), "overlap refused");
        assert!(!s.insert(5..5, 3), "empty refused");
        assert_eq!(s.find(29).map(|(r, v)| (r, *v)), Some((0..30, 1)));
        assert_eq!(s.find(40), None);
    }

    #[test]
    fn update_splits_changes_and_merges_back() {
        let mut s = SegmentSet::new();
        s.insert(0..100, 1);
        let before = s.update(40..60, |v| Some(v + 1));
        assert_eq!(before, vec![(40..60, 1)]);
        assert_eq!(dump(&s), vec![(0, 40, 1), (40, 60, 2), (60, 100, 1)]);
        s.update(40..60, |v| Some(v - 1));
        assert_eq!(dump(&s), vec![(0, 100, 1)]);
        s.update(10..20, |_| None);
        assert_eq!(dump(&s), vec![(0, 10, 1), (20, 100, 1)]);
        // Across a gap: only the existing pieces change.
        s.update(5..30, |v| Some(v * 7));
        assert_eq!(
            dump(&s),
            vec![(0, 5, 1), (5, 10, 7), (20, 30, 7), (30, 100, 1)]
        );
    }

    /// Pieces at 0..10, 15..20 and 40..50.
    fn three() -> SegmentSet<u32> {
        let mut s = SegmentSet::new();
        s.insert(0..10, 1);
        s.insert(15..20, 2);
        s.insert(40..50, 3);
        s
    }

    #[test]
    fn overlapping_is_a_range_query() {
        let s = three();
        let got = |r: Range<u64>| {
            s.overlapping(r)
                .map(|(r, v)| (r.start, *v))
                .collect::<Vec<_>>()
        };
        assert_eq!(got(5..16), vec![(0, 1), (15, 2)]);
        assert_eq!(got(10..15), vec![]);
        assert_eq!(got(45..100), vec![(40, 3)]);
        assert_eq!(got(20..40), vec![]);
        assert_eq!(
            s.first_gap(12, 2, 100, |a, b| (b - a >= 2).then_some(a)),
            Some(12)
        );
        assert_eq!(
            s.first_gap(16, 2, 100, |a, b| (b - a >= 2).then_some(a)),
            Some(20)
        );
    }

    #[test]
    fn first_gap_is_bottom_up() {
        let s = three();
        let any = |a: u64, b: u64, len: u64| if b - a >= len { Some(a) } else { None };
        assert_eq!(s.first_gap(0, 5, 100, |a, b| any(a, b, 5)), Some(10));
        assert_eq!(s.first_gap(0, 6, 100, |a, b| any(a, b, 6)), Some(20));
        assert_eq!(s.first_gap(0, 30, 100, |a, b| any(a, b, 30)), Some(50));
        assert_eq!(s.first_gap(0, 60, 100, |a, b| any(a, b, 60)), None);
    }
}
