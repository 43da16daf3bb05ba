//! Chunks: `seq u64 | len u32 | kind u8 | payload | MAC`, the MAC chained
//! over the previous chunk's MAC (the header's for the first), and a final
//! end chunk holding the total length. Worker threads compress, hash and
//! verify chunks in parallel; memory is bounded by a few chunks per worker.
//!
//! `writer` seals chunks, `reader` opens and verifies them, `inspect` reads
//! the framing without the key; [`ChunkHead`] is the layout they share.

use std::io::{self, Read};

use crate::error::{Error, Result};
use crate::mac::{self, Key};

mod inspect;
mod reader;
mod writer;

pub use inspect::{inspect, Inspection};
pub use reader::Reader;
pub use writer::{Options, Totals, Writer};

/// Data per chunk unless configured otherwise.
pub const DEFAULT_CHUNK_SIZE: usize = 1 << 20;
/// Largest chunk a reader accepts (and a writer may be configured with).
pub const MAX_CHUNK_SIZE: usize = 64 << 20;

/// Largest stored data chunk: a full chunk plus the worst-case growth of
/// lz4/zstd on incompressible data (well under 1/64) and the length prefix.
const MAX_STORED_CHUNK: usize = MAX_CHUNK_SIZE + (MAX_CHUNK_SIZE >> 6);

const KIND_DATA: u8 = 0;
const KIND_END: u8 = 1;

/// The fixed part of every chunk: `seq u64 | len u32 | kind u8`, little
/// endian. The one place that layout is written and read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ChunkHead {
    seq: u64,
    /// Payload length as stored.
    len: u32,
    kind: u8,
}

impl ChunkHead {
    /// Bytes of an encoded head.
    const LEN: usize = 8 + 4 + 1;

    fn encode(self) -> [u8; Self::LEN] {
        let mut h = [0u8; Self::LEN];
        h[..8].copy_from_slice(&self.seq.to_le_bytes());
        h[8..12].copy_from_slice(&self.len.to_le_bytes());
        h[12] = self.kind;
        h
    }

    fn decode(h: &[u8; Self::LEN]) -> Self {
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&h[..8]);
        ChunkHead {
            seq: u64::from_le_bytes(seq),
            len: u32::from_le_bytes([h[8], h[9], h[10], h[11]]),
            kind: h[12],
        }
    }

    /// The whole chunk's bytes in the file: head, payload and MAC.
    fn chunk_len(self) -> u64 {
        (Self::LEN + self.len as usize + mac::LEN) as u64
    }
}

/// Finishes a chunk MAC whose hasher (keyed, see [`Key::hasher`]) has
/// already taken the payload: the fixed-size trailer `seq | kind | len |
/// previous MAC` goes last, so the expensive part (the payload) can be
/// hashed by a worker before the previous chunk's MAC is known.
fn finish_mac(
    mut h: blake3::Hasher,
    prev: &[u8; mac::LEN],
    seq: u64,
    kind: u8,
    len: usize,
) -> [u8; mac::LEN] {
    h.update(&seq.to_le_bytes());
    h.update(&[kind]);
    h.update(&(len as u32).to_le_bytes());
    h.update(prev);
    *h.finalize().as_bytes()
}

/// Hashes a chunk payload with the keyed hasher.
fn payload_hasher(key: &Key, payload: &[u8]) -> blake3::Hasher {
    let mut h = key.hasher();
    h.update(payload);
    h
}

/// Threads by default: one per available core.
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Buffers of finished chunks, kept for the next ones (at most `keep`).
struct Buffers {
    free: Vec<Vec<u8>>,
    keep: usize,
}

impl Buffers {
    fn new(keep: usize) -> Buffers {
        Buffers {
            free: Vec::new(),
            keep,
        }
    }

    /// A cleared buffer, reused if one is kept.
    fn take(&mut self) -> Vec<u8> {
        self.free.pop().unwrap_or_default()
    }

    fn give(&mut self, mut b: Vec<u8>) {
        if self.free.len() < self.keep {
            b.clear();
            self.free.push(b);
        }
    }
}

/// Chunks in flight per thread (being processed or waiting their turn).
const IN_FLIGHT_PER_THREAD: usize = 2;

fn in_flight_limit(threads: usize) -> usize {
    threads * IN_FLIGHT_PER_THREAD + 1
}

fn fill<R: Read>(r: &mut R, buf: &mut [u8], offset: u64) -> Result<()> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => Error::Truncated(offset),
        _ => Error::Io(e),
    })
}

/// A worker thread of the pool died (it panicked).
fn worker_lost(msg: String) -> io::Error {
    io::Error::other(format!("statefile worker failed: {msg}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_head_layout_is_seq_len_kind_little_endian() {
        let h = ChunkHead {
            seq: 0x0102_0304_0506_0708,
            len: 0x0a0b_0c0d,
            kind: KIND_END,
        };
        let bytes = h.encode();
        assert_eq!(
            bytes,
            [8, 7, 6, 5, 4, 3, 2, 1, 0x0d, 0x0c, 0x0b, 0x0a, KIND_END]
        );
        assert_eq!(ChunkHead::decode(&bytes), h);
        assert_eq!(h.chunk_len(), (13 + 0x0a0b_0c0d + mac::LEN) as u64);
    }
}
