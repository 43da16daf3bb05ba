//! `FileRange`, the page-aligned ranges every part of the crate speaks in.

use std::ops::Range;

/// A page-aligned range of the file: `start..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl FileRange {
    /// The range's length in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }

    pub(crate) fn as_range(&self) -> Range<u64> {
        self.start..self.end
    }
}
