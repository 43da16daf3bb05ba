//! # stateify-store — checkpoints in object storage
//!
//! A checkpoint (a statefile and its pages file, as `statefile::write_pair`
//! writes them on a local disk) written to, and restored from, any store
//! the [`object_store`] crate reaches: S3 and S3-compatible servers, Google
//! Cloud Storage, Azure Blob Storage, a local directory, or process memory.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::io::Write;
//! let store = stateify_store::Store::open("s3://bucket/checkpoints")?;
//! // Both objects stream out as multipart uploads; the checkpoint becomes
//! // visible when its manifest is written, last.
//! let (_, manifest) = store.write_checkpoint("job", |state, pages, _pages_name| {
//!     state.write_all(b"the statefile's bytes")?;
//!     pages.write_all(b"the pages file's bytes")?;
//!     Ok::<_, stateify_store::Error>(())
//! })?;
//! // Another host: the statefile streams in, the pages are read by range
//! // on demand (a `pgalloc::PageSource`).
//! let cp = store.open_checkpoint("job")?;
//! let statefile = cp.state_reader()?;
//! let pages = cp.pages_source()?;
//! # let _ = (manifest, statefile, pages);
//! # Ok(()) }
//! ```
//!
//! **Locations** ([`Store::open`]): `s3://bucket/prefix`, `gs://…`,
//! `az://…` (credentials and endpoints from the usual environment
//! variables: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//! `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`, `GOOGLE_SERVICE_ACCOUNT`,
//! `AZURE_STORAGE_ACCOUNT_NAME`, …), `memory://name` (shared within one
//! process, for tests), `file:///dir` or a plain path.
//!
//! **Layout.** Checkpoint `NAME` under a prefix is three objects:
//! `NAME.UNIQUE.state`, `NAME.UNIQUE.pages` and `NAME.manifest`, which names
//! the other two with their sizes and BLAKE3 digests (`docs/FORMAT.md`). The
//! manifest is one `PUT`, written after both uploads completed, so a reader
//! sees the previous checkpoint or the new one, never a part. A failed
//! write aborts its multipart uploads and deletes what it completed; a
//! successful one deletes the previous checkpoint's objects.
//!
//! **Failures.** Requests to HTTP stores are retried on transient errors
//! with exponential backoff, by `object_store`'s client
//! ([`StoreOptions::retries`]), a connection closed before the request
//! could be sent among them ([`RetryingConnector`]); not-found, permission
//! and precondition errors are not retried. A request that still fails is an error naming
//! the object and byte range, which reaches the read (or the page access)
//! that needed it: never a panic or a hang (requests have a timeout).
//!
//! The crate keeps the async runtime to itself: its API is blocking, each
//! [`Store`] owning a small tokio runtime, so the core crates stay free of
//! async and network dependencies.

#![deny(missing_docs)]

mod checkpoint;
mod error;
mod http;
mod location;
mod manifest;
mod read;
mod upload;

pub use checkpoint::Checkpoint;
pub use error::{Error, Result};
pub use http::RetryingConnector;
pub use location::{is_url, Store, StoreOptions};
pub use manifest::{Manifest, ObjectEntry, MANIFEST_SUFFIX};
pub use read::{ObjectReader, RemotePages};
pub use upload::Upload;
