//! Chunks: `seq u64 | len u32 | kind u8 | payload | MAC`, the MAC chained
//! over the previous chunk's MAC (the header's for the first), and a final
//! end chunk holding the total length. Memory is bounded by one chunk.

use std::io::{self, BufRead, Read, Write};

use crate::error::{Error, Result};
use crate::header::{self, Header};
use crate::mac::{self, Key};

/// Data per chunk unless configured otherwise.
pub const DEFAULT_CHUNK_SIZE: usize = 1 << 20;
/// Largest chunk a reader accepts (and a writer may be configured with).
pub const MAX_CHUNK_SIZE: usize = 64 << 20;

/// Largest stored data chunk: a full chunk plus the worst-case growth of
/// lz4/zstd on incompressible data (well under 1/64) and the length prefix.
const MAX_STORED_CHUNK: usize = MAX_CHUNK_SIZE + (MAX_CHUNK_SIZE >> 6);

const KIND_DATA: u8 = 0;
const KIND_END: u8 = 1;
const CHUNK_HEAD: usize = 8 + 4 + 1;

fn chunk_mac(
    key: &Key,
    prev: &[u8; mac::LEN],
    seq: u64,
    kind: u8,
    payload: &[u8],
) -> [u8; mac::LEN] {
    let mut h = key.hasher();
    h.update(prev);
    h.update(&seq.to_le_bytes());
    h.update(&[kind]);
    h.update(&(payload.len() as u32).to_le_bytes());
    h.update(payload);
    *h.finalize().as_bytes()
}

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
}

impl Default for Options {
    fn default() -> Self {
        Options {
            chunk_size: DEFAULT_CHUNK_SIZE,
            compression: crate::Compression::None,
        }
    }
}

/// Writes a statefile: the header at creation, then chunks as data comes.
pub struct Writer<W: Write> {
    inner: W,
    key: Key,
    prev: [u8; mac::LEN],
    compression: crate::Compression,
    /// Compressed payload of the chunk being written.
    packed: Vec<u8>,
    buf: Vec<u8>,
    chunk_size: usize,
    totals: Totals,
}

impl<W: Write> Writer<W> {
    /// Starts a statefile on `inner` with `metadata` (user keys may not
    /// start with `_`), MACed with `key` (or only checksummed without one).
    pub fn new(
        inner: W,
        key: Option<&[u8]>,
        metadata: &std::collections::BTreeMap<String, String>,
    ) -> Result<Self> {
        Self::with_chunk_size(inner, key, metadata, DEFAULT_CHUNK_SIZE)
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
        Ok(Writer {
            inner,
            key: k,
            prev,
            compression: opts.compression,
            packed: Vec::new(),
            buf: Vec::with_capacity(chunk_size),
            chunk_size,
            totals: Totals {
                file_bytes: head.len() as u64,
                ..Totals::default()
            },
        })
    }

    fn emit(&mut self, kind: u8, payload: &[u8]) -> io::Result<()> {
        let seq = self.totals.chunks;
        let m = chunk_mac(&self.key, &self.prev, seq, kind, payload);
        let mut head = [0u8; CHUNK_HEAD];
        head[..8].copy_from_slice(&seq.to_le_bytes());
        head[8..12].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        head[12] = kind;
        self.inner.write_all(&head)?;
        self.inner.write_all(payload)?;
        self.inner.write_all(&m)?;
        self.prev = m;
        self.totals.file_bytes += (CHUNK_HEAD + payload.len() + mac::LEN) as u64;
        Ok(())
    }

    /// Writes one data chunk of `data` (compressed if configured).
    fn data_chunk(&mut self, data: &[u8]) -> io::Result<()> {
        let r = if self.compression == crate::Compression::None {
            self.emit(KIND_DATA, data)
        } else {
            let mut packed = std::mem::take(&mut self.packed);
            let r = self
                .compression
                .compress(data, &mut packed)
                .map_err(io::Error::from)
                .and_then(|()| self.emit(KIND_DATA, &packed));
            self.packed = packed;
            r
        };
        self.totals.chunks += 1;
        r
    }

    fn flush_chunk(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.buf);
        let r = self.data_chunk(&buf);
        self.buf = buf;
        self.buf.clear();
        r
    }

    /// Writes the last data chunk and the end chunk; returns the inner
    /// writer (flushed) and the totals.
    pub fn finish(mut self) -> Result<(W, Totals)> {
        self.flush_chunk()?;
        let total = self.totals.bytes.to_le_bytes();
        self.emit(KIND_END, &total)?;
        self.inner.flush()?;
        Ok((self.inner, self.totals))
    }
}

impl<W: Write> Write for Writer<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.is_empty() && data.len() >= self.chunk_size {
            // A whole chunk straight from the caller's buffer: no copy.
            let chunk = &data[..self.chunk_size];
            self.data_chunk(chunk)?;
            self.totals.bytes += chunk.len() as u64;
            return Ok(chunk.len());
        }
        let room = self.chunk_size - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        self.totals.bytes += n as u64;
        if self.buf.len() == self.chunk_size {
            self.flush_chunk()?;
        }
        Ok(n)
    }

    /// Flushes the inner writer; a partial chunk stays buffered (chunk
    /// boundaries do not depend on flush calls).
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads a statefile, verifying every chunk before handing out its bytes.
pub struct Reader<R: Read> {
    inner: R,
    header: Header,
    /// The chunk as stored, when it must be decompressed into `buf`.
    packed: Vec<u8>,
    key: Key,
    prev: [u8; mac::LEN],
    buf: Vec<u8>,
    pos: usize,
    seq: u64,
    offset: u64,
    total: u64,
    done: bool,
}

fn fill<R: Read>(r: &mut R, buf: &mut [u8], offset: u64) -> Result<()> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => Error::Truncated(offset),
        _ => Error::Io(e),
    })
}

impl<R: Read> Reader<R> {
    /// Reads and verifies the header with `key` (which must be given for a
    /// file written with one).
    pub fn new(mut inner: R, key: Option<&[u8]>) -> Result<Self> {
        let header = header::read_header(&mut inner)?;
        if header.keyed && key.is_none() {
            return Err(Error::KeyRequired);
        }
        let k = Key::new(key);
        header::verify(&header, &k)?;
        Ok(Reader {
            prev: header.mac,
            offset: header.len,
            inner,
            header,
            packed: Vec::new(),
            key: k,
            buf: Vec::new(),
            pos: 0,
            seq: 0,
            total: 0,
            done: false,
        })
    }

    /// The verified metadata.
    pub fn metadata(&self) -> &std::collections::BTreeMap<String, String> {
        &self.header.metadata
    }

    /// The verified header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Reads the next chunk into `buf`; returns false at the end chunk.
    fn next_chunk(&mut self) -> Result<bool> {
        let at = self.offset;
        let mut head = [0u8; CHUNK_HEAD];
        fill(&mut self.inner, &mut head, at)?;
        let seq = u64::from_le_bytes(head[..8].try_into().unwrap_or([0; 8]));
        let len = u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize;
        let kind = head[12];
        if seq != self.seq {
            return Err(Error::Reordered {
                expected: self.seq,
                found: seq,
                offset: at,
            });
        }
        let valid = match kind {
            KIND_DATA => len <= MAX_STORED_CHUNK,
            KIND_END => len == 8,
            _ => false,
        };
        if !valid {
            return Err(Error::InvalidChunk {
                offset: at,
                what: format!("kind {kind} with length {len}"),
            });
        }
        self.buf.clear();
        self.buf.resize(len, 0);
        fill(&mut self.inner, &mut self.buf, at + CHUNK_HEAD as u64)?;
        let mut m = [0u8; mac::LEN];
        fill(&mut self.inner, &mut m, at + (CHUNK_HEAD + len) as u64)?;
        if !mac::eq(&m, &chunk_mac(&self.key, &self.prev, seq, kind, &self.buf)) {
            return Err(Error::ChunkTampered {
                index: seq,
                offset: at,
            });
        }
        self.prev = m;
        self.seq += 1;
        self.offset += (CHUNK_HEAD + len + mac::LEN) as u64;
        self.pos = 0;
        if kind == KIND_END {
            let expected = u64::from_le_bytes(self.buf[..8].try_into().unwrap_or([0; 8]));
            if expected != self.total {
                return Err(Error::LengthMismatch {
                    expected,
                    found: self.total,
                });
            }
            let mut probe = [0u8; 1];
            loop {
                match self.inner.read(&mut probe) {
                    Ok(0) => break,
                    Ok(_) => return Err(Error::TrailingBytes(self.offset)),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(Error::Io(e)),
                }
            }
            self.buf.clear();
            return Ok(false);
        }
        let compression = self.header.compression;
        if compression != crate::Compression::None {
            std::mem::swap(&mut self.buf, &mut self.packed);
            compression.decompress(&self.packed, MAX_CHUNK_SIZE, &mut self.buf, at)?;
        }
        self.total += self.buf.len() as u64;
        Ok(true)
    }
}

impl<R: Read> BufRead for Reader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.buf.len() && !self.done {
            if !self.next_chunk()? {
                self.done = true;
            }
        }
        Ok(&self.buf[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
    }
}

impl<R: Read> Read for Reader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}
