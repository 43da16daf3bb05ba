//! Per-chunk compression. A compressed data chunk's payload is
//! `u32 uncompressed length | compressed bytes`; the length bounds the
//! decompression buffer (never above `MAX_CHUNK_SIZE`), so a hostile chunk
//! cannot make the reader allocate more than a chunk.
//!
//! lz4 (`lz4_flex`, pure Rust) for speed, zstd (`zstd`, the reference C
//! library) for ratio with a configurable level.

use std::cell::RefCell;

use crate::error::{Error, Result};

/// zstd contexts, reused per thread (creating one per chunk costs more than
/// compressing a small chunk).
struct ZstdContexts {
    level: Option<i32>,
    compressor: zstd::bulk::Compressor<'static>,
    decompressor: zstd::bulk::Decompressor<'static>,
}

thread_local! {
    static ZSTD: RefCell<ZstdContexts> = RefCell::new(ZstdContexts {
        level: None,
        compressor: zstd::bulk::Compressor::default(),
        decompressor: zstd::bulk::Decompressor::default(),
    });
}

/// How data chunks are compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// Stored as is.
    #[default]
    None,
    /// LZ4 block format.
    Lz4,
    /// Zstandard at the given level (1–22; 3 is zstd's default).
    Zstd(i32),
}

impl Compression {
    /// The id stored in bits 8–15 of the header flags.
    pub(crate) fn id(self) -> u32 {
        match self {
            Compression::None => 0,
            Compression::Lz4 => 1,
            Compression::Zstd(_) => 2,
        }
    }

    pub(crate) fn from_id(id: u32) -> Option<Compression> {
        match id {
            0 => Some(Compression::None),
            1 => Some(Compression::Lz4),
            2 => Some(Compression::Zstd(0)),
            _ => None,
        }
    }

    /// The `_compression` metadata value.
    pub(crate) fn label(self) -> String {
        match self {
            Compression::None => "none".into(),
            Compression::Lz4 => "lz4".into(),
            Compression::Zstd(level) => format!("zstd:{level}"),
        }
    }

    /// Compresses one chunk into `out` (cleared first).
    pub(crate) fn compress(self, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
        out.clear();
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        let bound = match self {
            Compression::None => {
                out.extend_from_slice(data);
                return Ok(());
            }
            Compression::Lz4 => lz4_flex::block::get_maximum_output_size(data.len()),
            Compression::Zstd(_) => zstd::zstd_safe::compress_bound(data.len()),
        };
        // Straight into the (reused) output buffer, no intermediate vector.
        out.resize(4 + bound, 0);
        let n = match self {
            Compression::Lz4 => lz4_flex::block::compress_into(data, &mut out[4..])
                .map_err(|e| std::io::Error::other(e.to_string()))?,
            _ => ZSTD.with(|z| -> std::io::Result<usize> {
                let mut z = z.borrow_mut();
                let level = match self {
                    Compression::Zstd(level) => level,
                    _ => 0,
                };
                if z.level != Some(level) {
                    z.compressor = zstd::bulk::Compressor::new(level)?;
                    z.level = Some(level);
                }
                z.compressor.compress_to_buffer(data, &mut out[4..])
            })?,
        };
        out.truncate(4 + n);
        Ok(())
    }

    /// Decompresses one chunk payload (`u32 length | bytes`) into `out`.
    pub(crate) fn decompress(
        self,
        payload: &[u8],
        max: usize,
        out: &mut Vec<u8>,
        offset: u64,
    ) -> Result<()> {
        let bad = |what: String| Error::Decompress { offset, what };
        if payload.len() < 4 {
            return Err(bad("payload shorter than its length prefix".into()));
        }
        let raw = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]) as usize;
        if raw > max {
            return Err(bad(format!(
                "uncompressed length {raw} above the chunk limit {max}"
            )));
        }
        let body = &payload[4..];
        out.clear();
        match self {
            Compression::None => out.extend_from_slice(body),
            Compression::Lz4 => {
                out.resize(raw, 0);
                let n =
                    lz4_flex::block::decompress_into(body, out).map_err(|e| bad(e.to_string()))?;
                out.truncate(n);
            }
            Compression::Zstd(_) => {
                out.resize(raw, 0);
                let n = ZSTD
                    .with(|z| z.borrow_mut().decompressor.decompress_to_buffer(body, out))
                    .map_err(|e| bad(e.to_string()))?;
                out.truncate(n);
            }
        }
        if out.len() != raw {
            return Err(bad(format!(
                "decompressed to {} bytes, expected {raw}",
                out.len()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_fails_cleanly() {
        let mut out = Vec::new();
        for c in [Compression::Lz4, Compression::Zstd(3)] {
            // Announces 100 bytes, holds garbage.
            let mut payload = 100u32.to_le_bytes().to_vec();
            payload.extend_from_slice(&[0xff; 40]);
            assert!(c.decompress(&payload, 1 << 20, &mut out, 7).is_err());
            // Announces more than the limit.
            let mut good = Vec::new();
            c.compress(&[1u8; 5000], &mut good).unwrap();
            assert!(matches!(
                c.decompress(&good, 4096, &mut out, 7),
                Err(Error::Decompress { offset: 7, .. })
            ));
            assert!(c.decompress(&good, 1 << 20, &mut out, 7).is_ok());
            assert_eq!(out, vec![1u8; 5000]);
            // Too short for the prefix.
            assert!(c.decompress(&[1, 2], 1 << 20, &mut out, 7).is_err());
        }
    }
}
