//! Writing one object as a multipart upload through a blocking `Write`.

use std::io::{self, Write};

use object_store::WriteMultipart;

use crate::error::{Error, Result};
use crate::location::Store;
use crate::manifest::ObjectEntry;

/// An object being uploaded: bytes written are cut into parts of
/// [`StoreOptions::part_size`](crate::StoreOptions::part_size), uploaded
/// with at most `parts_in_flight` at a time (a write waits for room, so
/// memory stays bounded). [`Upload::finish`] completes the upload; dropping
/// it unfinished aborts it, and the object never appears.
pub struct Upload {
    store: Store,
    name: String,
    w: Option<WriteMultipart>,
    hasher: blake3::Hasher,
    size: u64,
}

impl Upload {
    /// Starts uploading object `name` under the store's prefix.
    pub fn new(store: &Store, name: &str) -> Result<Upload> {
        let upload = store.request(
            || format!("starting the upload of {}", store.object_url(name)),
            store.inner.store.put_multipart(&store.path(name)),
        )?;
        Ok(Upload {
            store: store.clone(),
            name: name.to_string(),
            w: Some(WriteMultipart::new_with_chunk_size(
                upload,
                store.inner.opts.part_size.max(1),
            )),
            hasher: blake3::Hasher::new(),
            size: 0,
        })
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    fn failed(&self, e: object_store::Error) -> io::Error {
        Error::Request {
            what: format!("uploading {}", self.store.object_url(&self.name)),
            source: e,
        }
        .into()
    }

    /// Completes the upload: the object exists from now on. Returns its
    /// entry for a manifest.
    pub fn finish(mut self) -> Result<ObjectEntry> {
        let w = self.w.take().ok_or_else(|| closed(&self.name))?;
        let store = self.store.clone();
        store
            .block_on(w.finish())
            .map_err(|e| Error::Io(self.failed(e)))?;
        Ok(ObjectEntry {
            name: self.name.clone(),
            size: self.size,
            blake3: *self.hasher.finalize().as_bytes(),
        })
    }
}

fn closed(name: &str) -> Error {
    Error::Io(io::Error::other(format!("the upload of {name} has ended")))
}

impl Write for Upload {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let part = self.store.inner.opts.part_size.max(1);
        let in_flight = self.store.inner.opts.parts_in_flight.max(1);
        // At most one part per call, so that a large write cannot put more
        // than `in_flight` parts in memory.
        let buf = &buf[..buf.len().min(part)];
        let Upload { store, name, w, .. } = self;
        let w = w.as_mut().ok_or_else(|| io::Error::from(closed(name)))?;
        if let Err(e) = store.block_on(w.wait_for_capacity(in_flight)) {
            return Err(self.failed(e));
        }
        {
            // A full part is handed to a task on the store's runtime.
            let _rt = store.inner.rt().enter();
            w.write(buf);
        }
        self.hasher.update(buf);
        self.size += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let Some(w) = self.w.take() {
            // Unfinished: the parts must not linger in the store. A failure
            // here leaves them to the store's lifecycle rules; the object
            // never appeared.
            let _ = self.store.block_on(w.abort());
        }
    }
}
