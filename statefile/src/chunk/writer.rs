//! Writing: chunks sealed (compressed, hashed) by workers, emitted in order
//! with their MACs chained.

use std::io::{self, Write};

use super::*;
use crate::header;
use crate::pool::Ordered;

/// What a finished writer wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Payload bytes.
    pub bytes: u64,
    /// Data chunks (the end chunk not counted).
    pub chunks: u64,
    /// Bytes of the whole file.
    pub file_bytes: u64,
}

/// How a [`Writer`] cuts and compresses chunks.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Uncompressed bytes per data chunk (1 to [`MAX_CHUNK_SIZE`]).
    pub chunk_size: usize,
    /// Compression of data chunks.
    pub compression: crate::Compression,
    /// Threads that compress and MAC chunks, the calling thread included
    /// (it works while it would otherwise wait): 1 runs everything on the
    /// caller. At most `2 × threads + 1` chunks are in flight.
    pub threads: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            chunk_size: DEFAULT_CHUNK_SIZE,
            compression: crate::Compression::None,
            threads: default_threads(),
        }
    }
}

/// A data chunk for a worker to compress and hash.
struct SealJob {
    data: Vec<u8>,
    spare: Vec<u8>,
    key: Key,
    compression: crate::Compression,
}

/// A chunk ready to be written: its stored payload, the hasher that has
/// taken it, and a buffer to recycle.
struct Sealed {
    payload: Vec<u8>,
    hasher: blake3::Hasher,
    spare: Vec<u8>,
}

fn seal(j: SealJob) -> Result<Sealed> {
    let SealJob {
        data,
        mut spare,
        key,
        compression,
    } = j;
    if compression == crate::Compression::None {
        let hasher = payload_hasher(&key, &data);
        return Ok(Sealed {
            payload: data,
            hasher,
            spare,
        });
    }
    compression.compress(&data, &mut spare)?;
    let hasher = payload_hasher(&key, &spare);
    Ok(Sealed {
        payload: spare,
        hasher,
        spare: data,
    })
}

/// Writes a statefile: the header at creation, then chunks as data comes.
/// Chunks are compressed and hashed by worker threads ([`Options::threads`])
/// and written in order by the calling thread.
pub struct Writer<W: Write> {
    inner: W,
    key: Key,
    prev: [u8; mac::LEN],
    compression: crate::Compression,
    pool: Ordered<SealJob, Result<Sealed>>,
    limit: usize,
    /// The chunk being filled.
    buf: Vec<u8>,
    /// Buffers to reuse.
    free: Buffers,
    chunk_size: usize,
    /// Sequence number of the next chunk written out.
    written: u64,
    totals: Totals,
    /// Set by the first error: a chunk may be missing, so nothing more may
    /// be written.
    failed: bool,
}

impl<W: Write> Writer<W> {
    /// Starts a statefile on `inner` with `metadata` (user keys may not
    /// start with `_`), MACed with `key` (or only checksummed without one).
    pub fn new(
        inner: W,
        key: Option<&[u8]>,
        metadata: &std::collections::BTreeMap<String, String>,
    ) -> Result<Self> {
        Self::with_options(inner, key, metadata, Options::default())
    }

    /// As [`Writer::new`], with chunks of `chunk_size` bytes (1 to [`MAX_CHUNK_SIZE`]).
    pub fn with_chunk_size(
        inner: W,
        key: Option<&[u8]>,
        metadata: &std::collections::BTreeMap<String, String>,
        chunk_size: usize,
    ) -> Result<Self> {
        let opts = Options {
            chunk_size,
            ..Options::default()
        };
        Self::with_options(inner, key, metadata, opts)
    }

    /// As [`Writer::new`], with explicit [`Options`].
    pub fn with_options(
        mut inner: W,
        key: Option<&[u8]>,
        metadata: &std::collections::BTreeMap<String, String>,
        opts: Options,
    ) -> Result<Self> {
        let chunk_size = opts.chunk_size;
        if chunk_size == 0 || chunk_size > MAX_CHUNK_SIZE {
            return Err(Error::InvalidChunk {
                offset: 0,
                what: format!("chunk size {chunk_size} outside 1..={MAX_CHUNK_SIZE}"),
            });
        }
        let k = Key::new(key);
        let (head, prev) = header::encode(metadata, &k, key.is_some(), opts.compression)?;
        inner.write_all(&head)?;
        let pool = Ordered::new(opts.threads, "statefile-seal", seal);
        let limit = in_flight_limit(pool.threads());
        Ok(Writer {
            inner,
            key: k,
            prev,
            compression: opts.compression,
            limit,
            free: Buffers::new(2 * limit),
            pool,
            buf: Vec::with_capacity(chunk_size),
            chunk_size,
            written: 0,
            totals: Totals {
                file_bytes: head.len() as u64,
                ..Totals::default()
            },
            failed: false,
        })
    }

    /// Writes one chunk (data or end) whose payload the hasher has taken.
    fn emit(&mut self, kind: u8, payload: &[u8], hasher: blake3::Hasher) -> io::Result<()> {
        let seq = self.written;
        let m = finish_mac(hasher, &self.prev, seq, kind, payload.len());
        let head = ChunkHead {
            seq,
            len: payload.len() as u32,
            kind,
        };
        self.inner.write_all(&head.encode())?;
        self.inner.write_all(payload)?;
        self.inner.write_all(&m)?;
        self.prev = m;
        self.written += 1;
        self.totals.file_bytes += head.chunk_len();
        Ok(())
    }

    /// Writes out the oldest chunk in flight, waiting for its worker.
    fn emit_next(&mut self) -> io::Result<()> {
        let sealed = match self.pool.next() {
            None => return Ok(()),
            Some(Ok(r)) => r.map_err(io::Error::from)?,
            Some(Err(msg)) => return Err(worker_lost(msg)),
        };
        self.emit(KIND_DATA, &sealed.payload, sealed.hasher)?;
        self.free.give(sealed.payload);
        self.free.give(sealed.spare);
        Ok(())
    }

    /// Hands the filled buffer to the workers; writes out finished chunks
    /// while the in-flight limit is reached.
    fn submit(&mut self) -> io::Result<()> {
        let mut fresh = self.free.take();
        fresh.reserve(self.chunk_size);
        let data = std::mem::replace(&mut self.buf, fresh);
        let spare = self.free.take();
        self.pool.submit(SealJob {
            data,
            spare,
            key: self.key.clone(),
            compression: self.compression,
        });
        self.totals.chunks += 1;
        while self.pool.in_flight() >= self.limit {
            self.emit_next()?;
        }
        Ok(())
    }

    fn guard<T>(&mut self, f: impl FnOnce(&mut Self) -> io::Result<T>) -> io::Result<T> {
        if self.failed {
            return Err(io::Error::other(
                "statefile writer: an earlier write failed; the file is incomplete",
            ));
        }
        let r = f(self);
        self.failed = r.is_err();
        r
    }

    /// Writes the last data chunk and the end chunk; returns the inner
    /// writer (flushed) and the totals.
    pub fn finish(mut self) -> Result<(W, Totals)> {
        self.guard(|w| {
            if !w.buf.is_empty() {
                w.submit()?;
            }
            while w.pool.in_flight() > 0 {
                w.emit_next()?;
            }
            let total = w.totals.bytes.to_le_bytes();
            let hasher = payload_hasher(&w.key, &total);
            w.emit(KIND_END, &total, hasher)?;
            w.inner.flush()
        })?;
        Ok((self.inner, self.totals))
    }
}

impl<W: Write> Write for Writer<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.guard(|w| {
            let n = (w.chunk_size - w.buf.len()).min(data.len());
            w.buf.extend_from_slice(&data[..n]);
            w.totals.bytes += n as u64;
            if w.buf.len() == w.chunk_size {
                w.submit()?;
            }
            Ok(n)
        })
    }

    /// Flushes the inner writer; a partial chunk stays buffered (chunk
    /// boundaries do not depend on flush calls).
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
