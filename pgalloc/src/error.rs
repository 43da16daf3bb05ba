use std::io;

/// Everything that can go wrong in `pgalloc`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call or the save/load stream failed.
    #[error("I/O error: {0}")]
    Io(io::Error),
    /// A system call failed.
    #[error("{call} failed: {errno}")]
    Sys {
        /// The call.
        call: &'static str,
        /// Its errno.
        errno: nix::Error,
    },
    /// The metadata graph could not be written or read.
    #[error("page metadata: {0}")]
    Meta(stateify::Error),
    /// An allocation that cannot be satisfied.
    #[error("cannot allocate {len} bytes: {why}")]
    NoSpace {
        /// The requested length.
        len: u64,
        /// Why.
        why: String,
    },
    /// A range that is not page-aligned, empty, outside the file or not
    /// allocated as the operation needs.
    #[error("bad range {start:#x}..{end:#x}: {why}")]
    BadRange {
        /// Start offset.
        start: u64,
        /// End offset.
        end: u64,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A page block record does not match the segment it should fill.
    #[error("mismatched segment at {start:#x}: expected {expected} bytes, got {got}")]
    MismatchedSegment {
        /// Where the segment starts in the file.
        start: u64,
        /// Its length.
        expected: u64,
        /// The record's length.
        got: u64,
    },
    /// A page block was expected as a raw record and an object record came.
    #[error("page block at {start:#x}: expected a raw record, found an object (graph) record")]
    NotRaw {
        /// Where the block starts in the file.
        start: u64,
    },
    /// The pages file ended before the last block.
    #[error("pages file too short: block at file offset {start:#x} needs bytes up to {needed}, the file ends at {len}")]
    ShortPagesFile {
        /// Where the block goes in the memory file.
        start: u64,
        /// Bytes of the pages file needed.
        needed: u64,
        /// The pages file's length.
        len: u64,
    },
    /// Pages of a background restore could not be loaded: every access to
    /// them gets this error, with the I/O error's kind.
    #[error("pages at {start:#x} are unavailable: {error}")]
    PagesUnavailable {
        /// The memory offset of the first unavailable unit touched (0 for
        /// the restore as a whole).
        start: u64,
        /// The I/O error that failed them (in the message, so not a
        /// `source()` too).
        error: std::io::Error,
    },
    /// The metadata describes an impossible memory file.
    #[error("corrupt page metadata: {0}")]
    Corrupt(String),
    /// The caller asked for something that cannot be: bad options, a
    /// range outside the file… (the input is fine; the call is not).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The pages file is not the one this metadata was saved with: its
    /// header names another checkpoint (a mixed-up copy, or a crash
    /// between writing the two files).
    #[error("the pages file belongs to checkpoint {found:032x}, not to {expected:032x}: it was written by another checkpoint")]
    ForeignPages {
        /// The id the metadata records.
        expected: u128,
        /// The id in the pages file's header.
        found: u128,
    },
    /// A piece of a page block does not match its digest
    /// ([`verify_pages`](crate::verify_pages)).
    #[error("page block {block}, memory {start:#x}..{end:#x} (pages file offset {offset:#x}), does not match its BLAKE3 digest: the pages file is damaged or belongs to another checkpoint")]
    BadPages {
        /// The block's index in the metadata.
        block: usize,
        /// Where the bad piece starts in memory.
        start: u64,
        /// Where it ends in memory.
        end: u64,
        /// Where the piece starts in the pages file.
        offset: u64,
    },
    /// The pages file has no valid header, or not the length the metadata
    /// records (truncated or extended).
    #[error("pages file: {0}")]
    PagesFile(String),
    /// The layers given to [`MemoryFile::load_chain`](crate::MemoryFile::load_chain)
    /// are not one chain (a delta missing, out of order, or of another
    /// parent), or a delta was given alone.
    #[error("checkpoint chain: {0}")]
    Chain(String),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn sys(call: &'static str) -> impl FnOnce(nix::Error) -> Error {
    move |errno| Error::Sys { call, errno }
}

/// The message includes the I/O error's, so it is not a `source()` too.
impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<stateify::Error> for Error {
    fn from(e: stateify::Error) -> Self {
        Error::Meta(e)
    }
}
