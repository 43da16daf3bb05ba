//! Chunks: `seq u64 | len u32 | kind u8 | payload | MAC`, the MAC chained
//! over the previous chunk's MAC (the header's for the first), and a final
//! end chunk holding the total length. Worker threads compress, hash and
//! verify chunks in parallel; memory is bounded by a few chunks per worker.

use std::io::{self, BufRead, Read, Write};

use crate::error::{Error, Result};
use crate::header::{self, Header};
use crate::mac::{self, Key};
use crate::pool::Ordered;

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

fn worker_lost(msg: String) -> io::Error {
    io::Error::other(format!("statefile worker failed: {msg}"))
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
        let mut head = [0u8; CHUNK_HEAD];
        head[..8].copy_from_slice(&seq.to_le_bytes());
        head[8..12].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        head[12] = kind;
        self.inner.write_all(&head)?;
        self.inner.write_all(payload)?;
        self.inner.write_all(&m)?;
        self.prev = m;
        self.written += 1;
        self.totals.file_bytes += (CHUNK_HEAD + payload.len() + mac::LEN) as u64;
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

/// A stored chunk for a worker to verify (and decompress).
struct OpenJob {
    seq: u64,
    kind: u8,
    offset: u64,
    payload: Vec<u8>,
    spare: Vec<u8>,
    /// The MAC stored after the previous chunk: chunk `i` is checked
    /// against it without waiting for chunk `i - 1`'s own check, which
    /// binds that MAC to its chunk in turn.
    prev: [u8; mac::LEN],
    mac: [u8; mac::LEN],
    key: Key,
    compression: crate::Compression,
}

enum Opened {
    Data { data: Vec<u8>, spare: Vec<u8> },
    End { total: u64 },
}

fn open(j: OpenJob) -> Result<Opened> {
    let h = payload_hasher(&j.key, &j.payload);
    let m = finish_mac(h, &j.prev, j.seq, j.kind, j.payload.len());
    if !mac::eq(&m, &j.mac) {
        return Err(Error::ChunkTampered {
            index: j.seq,
            offset: j.offset,
        });
    }
    if j.kind == KIND_END {
        let total = u64::from_le_bytes(j.payload[..8].try_into().unwrap_or([0; 8]));
        return Ok(Opened::End { total });
    }
    if j.compression == crate::Compression::None {
        return Ok(Opened::Data {
            data: j.payload,
            spare: j.spare,
        });
    }
    let mut out = j.spare;
    j.compression
        .decompress(&j.payload, MAX_CHUNK_SIZE, &mut out, j.offset)?;
    Ok(Opened::Data {
        data: out,
        spare: j.payload,
    })
}

/// Reads a statefile, verifying every chunk before handing out its bytes.
///
/// The calling thread reads chunks ahead (a bounded number) and worker
/// threads verify and decompress them in parallel; bytes and errors come out
/// in file order, so an error is reported only once every byte before it
/// has been handed out.
pub struct Reader<R: Read> {
    inner: R,
    header: Header,
    key: Key,
    pool: Ordered<OpenJob, Result<Opened>>,
    limit: usize,
    free: Buffers,
    /// The MAC of the last chunk read from the file.
    prev: [u8; mac::LEN],
    /// Verified data being handed out.
    buf: Vec<u8>,
    pos: usize,
    /// Sequence number and offset of the next chunk to read.
    seq: u64,
    offset: u64,
    /// Data bytes handed to the caller so far.
    total: u64,
    /// The end chunk was read (no more reading ahead).
    end_read: bool,
    /// An error met while reading ahead, reported after the chunks before it.
    pending: Option<Error>,
    /// Trailing bytes after the end chunk, reported after it verifies.
    trailing: Option<Error>,
    done: bool,
    /// The first error handed out; every later read fails too.
    failed: Option<String>,
}

fn fill<R: Read>(r: &mut R, buf: &mut [u8], offset: u64) -> Result<()> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => Error::Truncated(offset),
        _ => Error::Io(e),
    })
}

impl<R: Read> Reader<R> {
    /// Reads and verifies the header with `key` (which must be given for a
    /// file written with one); chunks are verified by one thread per core.
    pub fn new(inner: R, key: Option<&[u8]>) -> Result<Self> {
        Self::with_threads(inner, key, default_threads())
    }

    /// As [`Reader::new`], with `threads` threads verifying and
    /// decompressing, the calling thread included (1: the caller alone).
    /// At most `2 × threads + 1` chunks are read ahead.
    pub fn with_threads(mut inner: R, key: Option<&[u8]>, threads: usize) -> Result<Self> {
        let header = header::read_header(&mut inner)?;
        if header.keyed && key.is_none() {
            return Err(Error::KeyRequired);
        }
        let k = Key::new(key);
        header::verify(&header, &k)?;
        let pool = Ordered::new(threads, "statefile-open", open);
        let limit = in_flight_limit(pool.threads());
        Ok(Reader {
            prev: header.mac,
            offset: header.len,
            inner,
            header,
            key: k,
            limit,
            free: Buffers::new(2 * limit),
            pool,
            buf: Vec::new(),
            pos: 0,
            seq: 0,
            total: 0,
            end_read: false,
            pending: None,
            trailing: None,
            done: false,
            failed: None,
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

    /// Ends reading: verifies every remaining chunk and the end chunk (so
    /// that truncation after the last byte the caller needed is still
    /// detected) and fails if data is left unread.
    pub fn finish(mut self) -> Result<R> {
        let mut unread = 0u64;
        loop {
            unread += (self.buf.len() - self.pos) as u64;
            self.pos = self.buf.len();
            if self.done {
                break;
            }
            self.fill()?;
        }
        if unread > 0 {
            return Err(Error::UnreadData(unread));
        }
        Ok(self.inner)
    }

    /// Makes verified data current, or reaches the end; the first error
    /// is kept, and every later call fails too.
    fn fill(&mut self) -> Result<()> {
        while self.pos == self.buf.len() && !self.done {
            if let Some(msg) = &self.failed {
                return Err(Error::Io(io::Error::other(format!(
                    "statefile already failed: {msg}"
                ))));
            }
            match self.next_chunk() {
                Ok(more) => self.done = !more,
                Err(e) => {
                    self.failed = Some(e.to_string());
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Reads the next stored chunk from the file (not verified yet).
    fn read_chunk(&mut self) -> Result<OpenJob> {
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
        let mut payload = self.free.take();
        payload.clear();
        payload.reserve(len);
        // `read_to_end` on `take` fills the spare capacity without zeroing
        // it first (for files and slices), so the read is the only copy.
        let got = (&mut self.inner)
            .take(len as u64)
            .read_to_end(&mut payload)?;
        if got != len {
            return Err(Error::Truncated(at + (CHUNK_HEAD + got) as u64));
        }
        let mut m = [0u8; mac::LEN];
        fill(&mut self.inner, &mut m, at + (CHUNK_HEAD + len) as u64)?;
        let prev = std::mem::replace(&mut self.prev, m);
        self.seq += 1;
        self.offset += (CHUNK_HEAD + len + mac::LEN) as u64;
        Ok(OpenJob {
            seq,
            kind,
            offset: at,
            payload,
            spare: self.free.take(),
            prev,
            mac: m,
            key: self.key.clone(),
            compression: self.header.compression,
        })
    }

    /// After the end chunk, the file must end.
    fn check_end_of_file(&mut self) -> Option<Error> {
        let mut probe = [0u8; 1];
        loop {
            match self.inner.read(&mut probe) {
                Ok(0) => return None,
                Ok(_) => return Some(Error::TrailingBytes(self.offset)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Some(Error::Io(e)),
            }
        }
    }

    /// Reads ahead up to the in-flight limit, handing chunks to the workers.
    fn read_ahead(&mut self) {
        while !self.end_read && self.pending.is_none() && self.pool.in_flight() < self.limit {
            match self.read_chunk() {
                Ok(job) => {
                    if job.kind == KIND_END {
                        self.end_read = true;
                        self.trailing = self.check_end_of_file();
                    }
                    self.pool.submit(job);
                }
                Err(e) => self.pending = Some(e),
            }
        }
    }

    /// Makes the next verified chunk current; returns false at the end.
    fn next_chunk(&mut self) -> Result<bool> {
        self.read_ahead();
        let opened = match self.pool.next() {
            Some(Ok(r)) => r?,
            Some(Err(msg)) => return Err(Error::Io(worker_lost(msg))),
            None => return Err(self.pending.take().unwrap_or(Error::Truncated(self.offset))),
        };
        match opened {
            Opened::Data { data, spare } => {
                let old = std::mem::replace(&mut self.buf, data);
                self.free.give(old);
                self.free.give(spare);
                self.pos = 0;
                self.total += self.buf.len() as u64;
                Ok(true)
            }
            Opened::End { total } => {
                if total != self.total {
                    return Err(Error::LengthMismatch {
                        expected: total,
                        found: self.total,
                    });
                }
                if let Some(e) = self.trailing.take() {
                    return Err(e);
                }
                self.buf.clear();
                self.pos = 0;
                Ok(false)
            }
        }
    }
}

impl<R: Read> BufRead for Reader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.fill()?;
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

/// The layout of a statefile as read without the key: no MAC is checked.
#[derive(Clone, Debug)]
pub struct Inspection {
    /// The header (metadata unverified).
    pub header: Header,
    /// Data chunks.
    pub chunks: u64,
    /// Payload bytes as stored (compressed, if compression is on).
    pub stored_bytes: u64,
    /// Uncompressed length the end chunk claims (`None`: no end chunk).
    pub total: Option<u64>,
    /// Bytes of the whole file read.
    pub file_bytes: u64,
}

/// Reads a statefile's header and chunk framing without the key and
/// without decompressing: what `stateify info` shows. A file cut short is
/// reported with what was read so far (`total` is `None` then).
pub fn inspect<R: Read>(mut r: R) -> Result<Inspection> {
    let header = header::read_header(&mut r)?;
    let mut at = header.len;
    let mut out = Inspection {
        header,
        chunks: 0,
        stored_bytes: 0,
        total: None,
        file_bytes: 0,
    };
    loop {
        let mut head = [0u8; CHUNK_HEAD];
        match r.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e.into()),
        }
        let len = u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as u64;
        if head[12] == KIND_END && len == 8 {
            let mut total = [0u8; 8];
            fill(&mut r, &mut total, at + CHUNK_HEAD as u64)?;
            out.total = Some(u64::from_le_bytes(total));
            at += (CHUNK_HEAD + 8) as u64;
            let skipped = io::copy(&mut (&mut r).take(mac::LEN as u64), &mut io::sink())?;
            at += skipped;
            break;
        }
        let skipped = io::copy(&mut (&mut r).take(len + mac::LEN as u64), &mut io::sink())?;
        at += CHUNK_HEAD as u64 + skipped;
        if skipped < len + mac::LEN as u64 {
            break;
        }
        out.chunks += 1;
        out.stored_bytes += len;
    }
    out.file_bytes = at;
    Ok(out)
}
