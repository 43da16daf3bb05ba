//! Reading: chunks read in order, verified and decompressed by workers,
//! served through `BufRead`.

use std::io::{self, BufRead, Read};

use super::*;
use crate::header::{self, Header};
use crate::pool::Ordered;

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
        let mut raw = [0u8; ChunkHead::LEN];
        fill(&mut self.inner, &mut raw, at)?;
        let head = ChunkHead::decode(&raw);
        let (seq, len, kind) = (head.seq, head.len as usize, head.kind);
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
            return Err(Error::Truncated(at + (ChunkHead::LEN + got) as u64));
        }
        let mut m = [0u8; mac::LEN];
        fill(&mut self.inner, &mut m, at + (ChunkHead::LEN + len) as u64)?;
        let prev = std::mem::replace(&mut self.prev, m);
        self.seq += 1;
        self.offset += head.chunk_len();
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
