//! The framing of a statefile read without the key (`stateify info`).

use std::io::{self, Read};

use super::*;
use crate::header::{self, Header};

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
        let mut raw = [0u8; ChunkHead::LEN];
        match r.read_exact(&mut raw) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e.into()),
        }
        let head = ChunkHead::decode(&raw);
        let len = u64::from(head.len);
        if head.kind == KIND_END && len == 8 {
            let mut total = [0u8; 8];
            fill(&mut r, &mut total, at + ChunkHead::LEN as u64)?;
            out.total = Some(u64::from_le_bytes(total));
            at += (ChunkHead::LEN + 8) as u64;
            let skipped = io::copy(&mut (&mut r).take(mac::LEN as u64), &mut io::sink())?;
            at += skipped;
            break;
        }
        let skipped = io::copy(&mut (&mut r).take(len + mac::LEN as u64), &mut io::sink())?;
        at += ChunkHead::LEN as u64 + skipped;
        if skipped < len + mac::LEN as u64 {
            break;
        }
        out.chunks += 1;
        out.stored_bytes += len;
    }
    out.file_bytes = at;
    Ok(out)
}
