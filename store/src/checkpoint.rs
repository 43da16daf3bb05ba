//! Checkpoints in a store: written as two uploads and a manifest, read back
//! through the manifest.

use std::time::{SystemTime, UNIX_EPOCH};

use object_store::PutPayload;

use crate::error::{Error, Result};
use crate::location::Store;
use crate::manifest::{plain_name, Manifest, MANIFEST_SUFFIX, MAX_MANIFEST};
use crate::read::{ObjectReader, RemotePages};
use crate::upload::Upload;

/// A checkpoint found in a store: its manifest, and readers of its objects.
#[derive(Debug)]
pub struct Checkpoint {
    store: Store,
    name: String,
    manifest: Manifest,
}

impl Store {
    /// Writes checkpoint `name`: `write` gets the statefile's upload, the
    /// pages file's upload and the pages object's name (to record in the
    /// statefile's metadata under `statefile::PAGES_KEY`); it may write both
    /// at once, from two threads. When both uploads have completed, the
    /// manifest is written and the checkpoint is visible; the previous
    /// checkpoint of that name is then deleted. On error, nothing becomes
    /// visible: the uploads are aborted and any object already completed is
    /// deleted.
    pub fn write_checkpoint<T, E>(
        &self,
        name: &str,
        write: impl FnOnce(&mut Upload, &mut Upload, &str) -> std::result::Result<T, E>,
    ) -> std::result::Result<(T, Manifest), E>
    where
        E: From<Error>,
    {
        if !plain_name(name) {
            return Err(Error::Location {
                location: self.url().to_string(),
                message: format!(
                    "checkpoint name {name:?}: a plain name, without '/', spaces or a leading '.'"
                ),
            }
            .into());
        }
        // Found before writing, deleted after the commit.
        let previous = self.read_manifest(name).ok();
        let unique = format!(
            "{:x}-{:x}",
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
            std::process::id()
        );
        let mut state = Upload::new(self, &format!("{name}.{unique}.state"))?;
        let mut pages = Upload::new(self, &format!("{name}.{unique}.pages"))?;
        let pages_name = pages.name().to_string();
        // An error drops both uploads, which aborts them.
        let v = write(&mut state, &mut pages, &pages_name)?;
        let state = state.finish()?;
        let pages = match pages.finish() {
            Ok(p) => p,
            Err(e) => {
                self.delete_quietly(&[&state.name]);
                return Err(e.into());
            }
        };
        let manifest = Manifest { state, pages };
        let manifest_name = format!("{name}{MANIFEST_SUFFIX}");
        let put = self.request(
            || format!("PUT {}", self.object_url(&manifest_name)),
            self.inner.store.put(
                &self.path(&manifest_name),
                PutPayload::from(manifest.encode()),
            ),
        );
        if let Err(e) = put {
            self.delete_quietly(&[&manifest.state.name, &manifest.pages.name]);
            return Err(e.into());
        }
        if let Some(old) = previous {
            let gone: Vec<&str> = [&old.state.name, &old.pages.name]
                .into_iter()
                .filter(|n| **n != manifest.state.name && **n != manifest.pages.name)
                .map(String::as_str)
                .collect();
            self.delete_quietly(&gone);
        }
        Ok((v, manifest))
    }

    /// Deletes objects under the prefix, ignoring failures (what is left
    /// is invisible: no manifest names it).
    fn delete_quietly(&self, names: &[&str]) {
        for name in names {
            let _ = self.block_on(self.inner.store.delete(&self.path(name)));
        }
    }

    /// Reads the manifest of checkpoint `name`.
    pub fn read_manifest(&self, name: &str) -> Result<Manifest> {
        let manifest_name = format!("{name}{MANIFEST_SUFFIX}");
        let path = self.path(&manifest_name);
        let described = self.object_url(&manifest_name);
        let got = self.block_on(async {
            let r = self.inner.store.get(&path).await?;
            if r.meta.size > MAX_MANIFEST {
                return Ok(Err(r.meta.size));
            }
            r.bytes().await.map(Ok)
        });
        match got {
            Ok(Ok(bytes)) => Manifest::parse(&bytes, &described),
            Ok(Err(size)) => Err(Error::Corrupt {
                object: described,
                message: format!("{size} bytes: not a manifest (at most {MAX_MANIFEST})"),
            }),
            Err(object_store::Error::NotFound { .. }) => Err(Error::NotFound {
                name: name.to_string(),
                url: self.url().to_string(),
                manifest: manifest_name,
            }),
            Err(source) => Err(Error::Request {
                what: format!("GET {described}"),
                source,
            }),
        }
    }

    /// Opens checkpoint `name` through its manifest.
    pub fn open_checkpoint(&self, name: &str) -> Result<Checkpoint> {
        Ok(Checkpoint {
            manifest: self.read_manifest(name)?,
            store: self.clone(),
            name: name.to_string(),
        })
    }

    /// Streams object `name` (any object under the prefix, such as a
    /// statefile written without a manifest).
    pub fn object_reader(&self, name: &str) -> Result<ObjectReader> {
        let size = self.size(name)?;
        Ok(ObjectReader::new(self, name, size, None))
    }

    /// Object `name`, read by range as a pages file.
    pub fn pages_object(&self, name: &str) -> Result<RemotePages> {
        RemotePages::new(self, name, None)
    }
}

impl Checkpoint {
    /// The checkpoint's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The store it is in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The statefile, streamed in; its size and digest are checked against
    /// the manifest at the end.
    pub fn state_reader(&self) -> Result<ObjectReader> {
        let s = &self.manifest.state;
        Ok(ObjectReader::new(
            &self.store,
            &s.name,
            s.size,
            Some(s.blake3),
        ))
    }

    /// The pages file, read by range on demand (its size is checked against
    /// the manifest; its pages are checked against the digests of the
    /// statefile's page metadata as they load).
    pub fn pages_source(&self) -> Result<RemotePages> {
        let p = &self.manifest.pages;
        RemotePages::new(&self.store, &p.name, Some(p.size))
    }
}
