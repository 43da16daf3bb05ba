//! The errors of reading and writing a statefile: one variant per way a
//! file can be wrong, each saying where.

use std::io;

/// A statefile error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The underlying reader or writer failed (ENOSPC included).
    #[error("I/O error: {0}")]
    Io(io::Error),
    /// The file does not start with the statefile magic.
    #[error("not a statefile: bad magic")]
    BadMagic,
    /// A major version this build cannot read.
    #[error(
        "unsupported statefile version {major}.{minor} (this build reads {}.x)",
        crate::VERSION_MAJOR
    )]
    UnsupportedVersion {
        /// Major version in the file.
        major: u16,
        /// Minor version in the file.
        minor: u16,
    },
    /// Flags this build does not understand (e.g. a compression it lacks).
    #[error("unsupported flags {0:#x}")]
    UnsupportedFlags(u32),
    /// The metadata is larger than [`crate::MAX_METADATA`].
    #[error("metadata of {0} bytes exceeds the limit of {max}", max = crate::MAX_METADATA)]
    MetadataTooLarge(u64),
    /// The metadata block is malformed.
    #[error("invalid metadata: {0}")]
    InvalidMetadata(String),
    /// A user metadata key starts with `_` (reserved for the writer).
    #[error("metadata key `{0}` is reserved: user keys may not start with `_`")]
    ReservedKey(String),
    /// The file is keyed and no key was given.
    #[error("the file is protected by a key; none was given")]
    KeyRequired,
    /// The header checksum holds but its MAC does not: another key.
    #[error("wrong key: the header MAC does not match")]
    WrongKey,
    /// The header checksum does not hold.
    #[error("header tampered: checksum mismatch")]
    HeaderTampered,
    /// A chunk's MAC does not match its bytes.
    #[error("statefile chunk {index} at file byte {offset} tampered: MAC mismatch")]
    ChunkTampered {
        /// Sequence number of the chunk.
        index: u64,
        /// Offset of the chunk in the file.
        offset: u64,
    },
    /// A chunk carries another sequence number than its position.
    #[error(
        "statefile chunks reordered or spliced: expected chunk {expected}, found {found} at file byte {offset}"
    )]
    Reordered {
        /// The expected sequence number.
        expected: u64,
        /// The one found.
        found: u64,
        /// Offset of the chunk in the file.
        offset: u64,
    },
    /// A chunk length above [`crate::MAX_CHUNK_SIZE`] or an unknown chunk kind.
    #[error("invalid statefile chunk at file byte {offset}: {what}")]
    InvalidChunk {
        /// Offset of the chunk in the file.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// The file ends early (including exactly at a chunk boundary, before
    /// the end chunk).
    #[error("statefile truncated: the file ends before its end chunk (reading file byte {0})")]
    Truncated(u64),
    /// The end chunk's total disagrees with the data read.
    #[error("end chunk says {expected} bytes, the chunks hold {found}")]
    LengthMismatch {
        /// Total in the end chunk.
        expected: u64,
        /// Total of the data chunks.
        found: u64,
    },
    /// A compressed chunk does not decompress to what it announces.
    #[error("statefile chunk at file byte {offset} does not decompress: {what}")]
    Decompress {
        /// Offset of the chunk in the file.
        offset: u64,
        /// What went wrong.
        what: String,
    },
    /// `Reader::finish` found data the caller did not read.
    #[error("{0} bytes of data left unread at the end")]
    UnreadData(u64),
    /// Bytes after the end chunk.
    #[error("trailing bytes after the statefile's end chunk, at file byte {0}")]
    TrailingBytes(u64),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

/// The message includes the I/O error's, so it is not a `source()` too.
impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}
