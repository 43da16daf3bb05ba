//! Reading objects back: a whole object streamed through ranged reads with
//! read-ahead ([`ObjectReader`]), or pages read at any offset on demand
//! ([`RemotePages`], a `pgalloc::PageSource`).

use std::collections::VecDeque;
use std::io::{self, IoSliceMut, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::location::Store;

/// One ranged read's outcome, checked to hold exactly the bytes asked for.
async fn get_range(
    store: Arc<dyn object_store::ObjectStore>,
    path: Path,
    range: std::ops::Range<u64>,
) -> object_store::Result<Bytes> {
    let want = range.end - range.start;
    let bytes = store.get_range(&path, range.clone()).await?;
    if bytes.len() as u64 != want {
        return Err(object_store::Error::Generic {
            store: "stateify-store",
            source: format!(
                "asked for bytes {}..{}, got {} bytes (the object changed or is shorter than recorded)",
                range.start,
                range.end,
                bytes.len()
            )
            .into(),
        });
    }
    Ok(bytes)
}

/// An object streamed in through ranged reads of
/// [`StoreOptions::read_size`](crate::StoreOptions::read_size), with
/// `read_ahead` of them in flight ahead of the reader. At the end it checks
/// the size and, when known, the BLAKE3 digest the manifest recorded: a
/// mismatch is an error of the last read.
pub struct ObjectReader {
    store: Store,
    name: String,
    path: Path,
    size: u64,
    expect: Option<[u8; 32]>,
    /// Next offset to request.
    next: u64,
    pending: VecDeque<(u64, JoinHandle<object_store::Result<Bytes>>)>,
    cur: Bytes,
    hasher: blake3::Hasher,
    /// The error that stopped the reader, repeated to every later read.
    failed: Option<(io::ErrorKind, String)>,
}

impl ObjectReader {
    /// Streams object `name` of `size` bytes; `expect` is its digest, when
    /// known.
    pub(crate) fn new(store: &Store, name: &str, size: u64, expect: Option<[u8; 32]>) -> Self {
        let mut r = ObjectReader {
            store: store.clone(),
            name: name.to_string(),
            path: store.path(name),
            size,
            expect,
            next: 0,
            pending: VecDeque::new(),
            cur: Bytes::new(),
            hasher: blake3::Hasher::new(),
            failed: None,
        };
        r.fill();
        r
    }

    /// The object's size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Keeps `read_ahead` ranged reads in flight.
    fn fill(&mut self) {
        let opts = self.store.options();
        let step = opts.read_size.max(1) as u64;
        while self.pending.len() < opts.read_ahead.max(1) && self.next < self.size {
            let range = self.next..(self.next + step).min(self.size);
            let f = get_range(
                self.store.inner.store.clone(),
                self.path.clone(),
                range.clone(),
            );
            self.pending
                .push_back((range.start, self.store.inner.rt().spawn(f)));
            self.next = range.end;
        }
    }

    fn fail(&mut self, kind: io::ErrorKind, msg: String) -> io::Error {
        self.failed = Some((kind, msg.clone()));
        for (_, h) in self.pending.drain(..) {
            h.abort();
        }
        io::Error::new(kind, msg)
    }

    /// The end: checks what was read against what was recorded.
    fn check_end(&mut self) -> io::Result<()> {
        if let Some(want) = self.expect {
            if *self.hasher.finalize().as_bytes() != want {
                let msg = format!(
                    "{}: its BLAKE3 digest is not the one the manifest records (the object was changed or damaged)",
                    self.store.object_url(&self.name)
                );
                return Err(self.fail(io::ErrorKind::InvalidData, msg));
            }
        }
        Ok(())
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some((kind, msg)) = &self.failed {
            return Err(io::Error::new(*kind, msg.clone()));
        }
        if self.cur.is_empty() {
            let Some((start, handle)) = self.pending.pop_front() else {
                self.check_end()?;
                return Ok(0);
            };
            let got = self.store.block_on(handle);
            let what = || {
                format!(
                    "GET {} from byte {start}",
                    self.store.object_url(&self.name)
                )
            };
            self.cur = match got {
                Ok(Ok(b)) => {
                    self.hasher.update(&b);
                    b
                }
                Ok(Err(source)) => {
                    let e = io::Error::from(Error::Request {
                        what: what(),
                        source,
                    });
                    return Err(self.fail(e.kind(), e.to_string()));
                }
                Err(e) => return Err(self.fail(io::ErrorKind::Other, format!("{}: {e}", what()))),
            };
            self.fill();
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

impl Drop for ObjectReader {
    fn drop(&mut self) {
        for (_, h) in self.pending.drain(..) {
            h.abort();
        }
    }
}

/// A pages file in a store, read by range on demand: a
/// `pgalloc::PageSource` for `MemoryFile::load_from`, eager or in the
/// background. Each read is one ranged `GET`; `pgalloc`'s restore issues
/// them from [`RemotePages::load_opts`]'s threads in parallel, merges
/// adjacent blocks into one read, reads ahead in file order, and serves the
/// ranges the program waits for first.
pub struct RemotePages {
    store: Store,
    name: String,
    path: Path,
    size: u64,
    requests: AtomicU64,
    bytes: AtomicU64,
}

impl RemotePages {
    /// Pages file `name`, its size asked of the store (one `HEAD`); when
    /// a manifest records a size, the two must match.
    pub(crate) fn new(store: &Store, name: &str, recorded: Option<u64>) -> Result<RemotePages> {
        let size = store.size(name)?;
        if let Some(recorded) = recorded.filter(|&r| r != size) {
            return Err(Error::Corrupt {
                object: store.object_url(name),
                message: format!("{size} bytes, where the manifest records {recorded}"),
            });
        }
        Ok(RemotePages {
            store: store.clone(),
            name: name.to_string(),
            path: store.path(name),
            size,
            requests: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        })
    }

    /// Load options for a restore from this source: its
    /// [`StoreOptions::page_readers`](crate::StoreOptions::page_readers)
    /// threads (requests in flight) and reads of up to
    /// [`StoreOptions::page_read_size`](crate::StoreOptions::page_read_size).
    pub fn load_opts(&self, background: bool) -> pgalloc::LoadOpts {
        let o = self.store.options();
        pgalloc::LoadOpts {
            threads: o.page_readers.max(1),
            max_read: o.page_read_size.max(4096),
            background,
            ..pgalloc::LoadOpts::default()
        }
    }

    /// Ranged reads made so far, and the bytes they returned.
    pub fn requests(&self) -> (u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }

    /// One ranged read of `len` bytes at `offset` (inside the object).
    fn get(&self, offset: u64, len: u64) -> io::Result<Bytes> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let f = get_range(
            self.store.inner.store.clone(),
            self.path.clone(),
            offset..offset + len,
        );
        let b = self.store.request(
            || {
                format!(
                    "GET {} bytes {offset}..{}",
                    self.store.object_url(&self.name),
                    offset + len
                )
            },
            f,
        )?;
        self.bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
        Ok(b)
    }
}

impl pgalloc::PageSource for RemotePages {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.read_vectored_at(&mut [IoSliceMut::new(buf)], offset)
    }

    fn read_vectored_at(&self, bufs: &mut [IoSliceMut<'_>], offset: u64) -> io::Result<usize> {
        let want: u64 = bufs.iter().map(|b| b.len() as u64).sum();
        let len = want.min(self.size.saturating_sub(offset));
        if len == 0 {
            return Ok(0);
        }
        let b = self.get(offset, len)?;
        let mut rest = &b[..];
        for buf in bufs.iter_mut() {
            let n = buf.len().min(rest.len());
            buf[..n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
        }
        Ok(b.len())
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.size)
    }
}
