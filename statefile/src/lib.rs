//! # statefile — the checkpoint container
//!
//! A statefile wraps any byte stream (typically stateify records) in:
//!
//! - a fixed **header** outside any codec: magic, format version, flags, and
//!   string metadata, readable without the key ([`read_header`]), protected by
//!   a checksum and a keyed MAC;
//! - **chunks**, each carrying its sequence number and a MAC chained over the
//!   previous chunk's MAC, so tampering, reordering and splicing are detected;
//! - an **end chunk** with the total length, so truncation is detected even
//!   exactly at a chunk boundary.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::io::{Read, Write};
//!
//! let meta = BTreeMap::from([("app".to_string(), "demo".to_string())]);
//! let mut w = statefile::Writer::new(Vec::new(), Some(b"secret"), &meta).unwrap();
//! w.write_all(b"hello checkpoint").unwrap();
//! let (file, totals) = w.finish().unwrap();
//! assert_eq!(totals.bytes, 16);
//!
//! let mut r = statefile::Reader::new(&file[..], Some(b"secret")).unwrap();
//! assert_eq!(r.metadata()["app"], "demo");
//! let mut out = String::new();
//! r.read_to_string(&mut out).unwrap();
//! assert_eq!(out, "hello checkpoint");
//! ```
//!
//! Chunks can be compressed with lz4 or zstd ([`Options`]). Worker threads
//! (one per core by default) compress and hash chunks on write and verify and
//! decompress them on read, with a few chunks per worker in flight; output
//! order, and the order in which errors are reported, is the file's.
//!
//! See `docs/FORMAT.md` for the byte layout.

#![deny(missing_docs)]

mod atomic;
mod chunk;
mod compress;
mod error;
mod header;
mod mac;
mod pair;
mod pool;

pub use atomic::create_atomic;
pub use chunk::{
    inspect, Inspection, Options, Reader, Totals, Writer, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE,
};
pub use compress::Compression;
pub use error::{Error, Result};
pub use header::{read_header, Header, MAGIC, MAX_METADATA, VERSION_MAJOR, VERSION_MINOR};
pub use pair::{find_chain, find_pair, write_pair, Pair, MAX_CHAIN, PAGES_KEY, PARENT_KEY};
