//! # pgalloc — page memory that can be checkpointed
//!
//! A [`MemoryFile`] is a memfd grown in chunks (1 GiB by default), each
//! mapped `MAP_SHARED` once and never remapped, so addresses stay valid. A
//! usage segment set records, per allocated range, its [`MemoryKind`], owner
//! memory cgroup, reference count and whether it is known committed.
//!
//! [`MemoryFile::save_to`] writes the metadata as a stateify graph and then
//! only the pages that hold data: holes are skipped without being touched
//! (`lseek(SEEK_DATA)`), committed pages are scanned for zeros, and zero
//! pages not known committed are left out and decommitted again.
//! [`MemoryFile::load_from`] rebuilds the file and reads the pages straight
//! into the mappings: eagerly, or in the background ([`LoadOpts::background`])
//! while the program runs, every access first waiting for the pages it
//! touches (which it reads itself if no worker has yet), waited pages before
//! the rest, I/O errors reported to the accesses they affect, never a panic.
//!
//! Saves can be incremental ([`SaveOpts::incremental`]): the file tracks
//! which pages change after each checkpoint ([`Tracking`]), a delta holds
//! only those and names its parent by digest, and
//! [`MemoryFile::load_chain`] restores a full checkpoint and its deltas,
//! each page from the newest layer that holds it; [`squash`] makes a chain
//! one full checkpoint again (docs/FORMAT.md §8a).
//!
//! ```
//! use pgalloc::{AllocOpts, MemoryFile, MemoryFileOpts};
//!
//! let mf = MemoryFile::new(MemoryFileOpts { chunk_size: 1 << 21, ..Default::default() })?;
//! let r = mf.allocate(3 * 4096, AllocOpts::default())?;
//! mf.write_at(r.start + 4096, b"hello pages")?;
//!
//! let mut saved = Vec::new();
//! let stats = mf.save_to(&mut saved, None, &Default::default())?;
//! assert_eq!(stats.bytes_written, 4096); // one page holds data
//!
//! let (back, _) = MemoryFile::load_from(&saved[..], None, &Default::default())?;
//! let mut buf = [0u8; 11];
//! back.read_at(r.start + 4096, &mut buf)?;
//! assert_eq!(&buf, b"hello pages");
//! # Ok::<(), pgalloc::Error>(())
//! ```

#![deny(missing_docs)]

mod error;
mod file;
mod load;
mod range;
mod restore;
mod save;
mod saved;
mod segment;

pub use error::{Error, Result};
pub use file::{
    AllocOpts, FileRange, MemoryFile, MemoryFileOpts, MemoryKind, Tracking, TrackingMethod,
    UsageTotals, DEFAULT_CHUNK_SIZE, HUGE_PAGE_SIZE, MAX_CHUNKS, MAX_FILE_SIZE, PAGE_SIZE,
};
pub use load::{
    check_chain, read_layer, squash, verify_pages, LayerInfo, LoadOpts, LoadStats, PagesReport,
};
pub use restore::{Completion, PageSource, RestoreProgress};
pub use save::{read_pages_header, SaveOpts, SaveStats, PAGES_HEADER, PAGES_MAGIC};
pub use saved::{SavedPages, SavedSegment};
