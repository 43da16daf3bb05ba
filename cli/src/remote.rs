//! Checkpoints given by URL (`s3://bucket/prefix/NAME`, `gs://…`, `az://…`,
//! `file:///dir/NAME`, `memory://…`): the statefile is streamed in through
//! ranged reads (checked against the manifest's size and BLAKE3) into a
//! temporary file, and the commands read that; a pages file stays in the
//! store and is read by range when a command needs its pages.
//!
//! `NAME` is a checkpoint (the objects its manifest `NAME.manifest`
//! names), or else any object: a statefile, a record stream or a pages
//! file.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use stateify_store::{Error as StoreError, Store};

use crate::input::{Failure, Result};

/// A command's file on this machine: the argument itself, or a copy of
/// the object it names (removed when this is dropped).
pub struct Local {
    pub path: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

/// Statefiles copied from a store, with the store they came from (where
/// the pages file they name is).
fn fetched() -> &'static Mutex<Vec<(PathBuf, Store)>> {
    static FETCHED: OnceLock<Mutex<Vec<(PathBuf, Store)>>> = OnceLock::new();
    FETCHED.get_or_init(Default::default)
}

/// The store a local copy came from, if it is one.
pub fn store_of(path: &Path) -> Option<Store> {
    let f = fetched().lock().unwrap_or_else(|e| e.into_inner());
    f.iter().find(|(p, _)| p == path).map(|(_, s)| s.clone())
}

/// `arg` as a file on this machine: a path as it is, a URL fetched.
pub fn local(arg: &Path) -> Result<Local> {
    let Some(url) = arg.to_str().filter(|s| stateify_store::is_url(s)) else {
        return Ok(Local {
            path: arg.to_path_buf(),
            _dir: None,
        });
    };
    let (parent, name) = url
        .trim_end_matches('/')
        .rsplit_once('/')
        .filter(|(p, n)| !p.ends_with('/') && !n.is_empty())
        .ok_or_else(|| {
            Failure(format!(
                "{url}: names no checkpoint or object (SCHEME://BUCKET/PREFIX/NAME)"
            ))
        })?;
    let store = Store::open(parent).map_err(|e| Failure(e.to_string()))?;
    let (reader, file_name) = match store.open_checkpoint(name) {
        Ok(cp) => (cp.state_reader(), cp.manifest().state.name.clone()),
        Err(StoreError::NotFound { .. }) => (store.object_reader(name), name.to_string()),
        Err(e) => return Err(Failure(e.to_string())),
    };
    let mut reader = reader.map_err(|e| match e {
        e if e.is_not_found() => Failure(format!(
            "no checkpoint ({name}.manifest) or object {name:?} at {parent}"
        )),
        e => Failure(e.to_string()),
    })?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(&file_name);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
    std::io::copy(&mut reader, &mut out).map_err(|e| Failure(e.to_string()))?;
    out.into_inner().map_err(|e| e.into_error())?;
    fetched()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((path.clone(), store));
    Ok(Local {
        path,
        _dir: Some(dir),
    })
}

/// A pages file: on this machine, or an object in a store.
pub enum PagesFile {
    Local(PathBuf),
    Remote { store: Store, name: String },
}

impl PagesFile {
    /// How messages name it.
    pub fn label(&self) -> String {
        match self {
            PagesFile::Local(p) => p.display().to_string(),
            PagesFile::Remote { store, name } => store.object_url(name),
        }
    }

    /// Its bytes, readable at any offset.
    pub fn source(&self) -> Result<Box<dyn pgalloc::PageSource>> {
        let failed = |e: String| Failure(format!("pages file {}: {e}", self.label()));
        Ok(match self {
            PagesFile::Local(p) => {
                Box::new(std::fs::File::open(p).map_err(|e| failed(e.to_string()))?)
            }
            PagesFile::Remote { store, name } => Box::new(
                store
                    .pages_object(name)
                    .map_err(|e| failed(e.to_string()))?,
            ),
        })
    }
}
