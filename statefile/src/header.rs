//! The fixed header: magic, version, flags, metadata, checksum, MAC.
//! Readable without the key, so tools can look before restoring.

use std::collections::BTreeMap;
use std::io::Read;

use crate::error::{Error, Result};
use crate::mac::{self, Key};

/// The first 8 bytes of every statefile.
pub const MAGIC: [u8; 8] = *b"\x89SFILE\r\n";
/// Format major version: readers refuse other majors.
pub const VERSION_MAJOR: u16 = 1;
/// Format minor version: additions readers of the same major may ignore.
pub const VERSION_MINOR: u16 = 0;
/// Largest metadata block accepted.
pub const MAX_METADATA: u64 = 1 << 20;

/// Flag bit: the file was written with a user key.
pub const FLAG_KEYED: u32 = 1;
/// Bits 8–15: the compression id.
pub const COMPRESSION_SHIFT: u32 = 8;
const KNOWN_FLAGS: u32 = FLAG_KEYED | (0xff << COMPRESSION_SHIFT);

/// What the header says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Major and minor format version.
    pub version: (u16, u16),
    /// Raw flags.
    pub flags: u32,
    /// Metadata, including the writer's `_timestamp`, `_compression`,
    /// `_format_version`.
    pub metadata: BTreeMap<String, String>,
    /// Whether the file needs a key to be verified.
    pub keyed: bool,
    /// How the data chunks are compressed.
    pub compression: crate::Compression,
    /// The header's length in bytes.
    pub len: u64,
    /// The header MAC (first link of the chunk chain).
    pub(crate) mac: [u8; mac::LEN],
    /// The bytes the MAC covers.
    pub(crate) raw: Vec<u8>,
}

fn encode_metadata(meta: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    for (k, v) in meta {
        for s in [k, v] {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
    }
    out
}

fn decode_metadata(mut b: &[u8]) -> Result<BTreeMap<String, String>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
        if b.len() < n {
            return Err(Error::InvalidMetadata(
                "entry runs past the metadata block".into(),
            ));
        }
        let (h, t) = b.split_at(n);
        *b = t;
        Ok(h)
    }
    fn u32_(b: &mut &[u8]) -> Result<usize> {
        let s = take(b, 4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
    }
    let n = u32_(&mut b)?;
    let mut meta = BTreeMap::new();
    for _ in 0..n {
        let mut kv = [String::new(), String::new()];
        for s in &mut kv {
            let len = u32_(&mut b)?;
            *s = String::from_utf8(take(&mut b, len)?.to_vec())
                .map_err(|_| Error::InvalidMetadata("not UTF-8".into()))?;
        }
        let [k, v] = kv;
        if meta.insert(k.clone(), v).is_some() {
            return Err(Error::InvalidMetadata(format!("key `{k}` appears twice")));
        }
    }
    if !b.is_empty() {
        return Err(Error::InvalidMetadata("bytes after the last entry".into()));
    }
    Ok(meta)
}

/// Encodes a header for `metadata` (user keys checked, writer keys added).
pub(crate) fn encode(
    metadata: &BTreeMap<String, String>,
    key: &Key,
    keyed: bool,
    compression: crate::Compression,
) -> Result<(Vec<u8>, [u8; mac::LEN])> {
    let mut meta = BTreeMap::new();
    for (k, v) in metadata {
        if k.starts_with('_') {
            return Err(Error::ReservedKey(k.clone()));
        }
        meta.insert(k.clone(), v.clone());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    meta.insert("_timestamp".into(), now.to_string());
    meta.insert("_compression".into(), compression.label());
    meta.insert(
        "_format_version".into(),
        format!("{VERSION_MAJOR}.{VERSION_MINOR}"),
    );
    let block = encode_metadata(&meta);
    if block.len() as u64 > MAX_METADATA {
        return Err(Error::MetadataTooLarge(block.len() as u64));
    }
    let mut out = Vec::with_capacity(20 + block.len() + 2 * mac::LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION_MAJOR.to_le_bytes());
    out.extend_from_slice(&VERSION_MINOR.to_le_bytes());
    let flags = (u32::from(keyed) * FLAG_KEYED) | (compression.id() << COMPRESSION_SHIFT);
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&(block.len() as u32).to_le_bytes());
    out.extend_from_slice(&block);
    let sum = mac::checksum(&out);
    let m: [u8; mac::LEN] = *key.hasher().update(&out).finalize().as_bytes();
    out.extend_from_slice(&sum);
    out.extend_from_slice(&m);
    Ok((out, m))
}

fn read_exact_at<R: Read>(r: &mut R, buf: &mut [u8], offset: u64) -> Result<()> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Error::Truncated(offset),
        _ => Error::Io(e),
    })
}

/// Reads and checks the header (magic, version, checksum) without a key.
/// The MAC is returned unverified; [`crate::Reader`] verifies it.
pub fn read_header<R: Read>(mut r: R) -> Result<Header> {
    let mut fixed = [0u8; 20];
    read_exact_at(&mut r, &mut fixed[..8], 0)?;
    if fixed[..8] != MAGIC {
        return Err(Error::BadMagic);
    }
    read_exact_at(&mut r, &mut fixed[8..], 8)?;
    let major = u16::from_le_bytes([fixed[8], fixed[9]]);
    let minor = u16::from_le_bytes([fixed[10], fixed[11]]);
    if major != VERSION_MAJOR {
        return Err(Error::UnsupportedVersion { major, minor });
    }
    let flags = u32::from_le_bytes([fixed[12], fixed[13], fixed[14], fixed[15]]);
    let mlen = u32::from_le_bytes([fixed[16], fixed[17], fixed[18], fixed[19]]) as u64;
    if mlen > MAX_METADATA {
        return Err(Error::MetadataTooLarge(mlen));
    }
    let mut all = fixed.to_vec();
    all.resize(20 + mlen as usize, 0);
    read_exact_at(&mut r, &mut all[20..], 20)?;
    let mut tail = [0u8; 2 * mac::LEN];
    read_exact_at(&mut r, &mut tail, all.len() as u64)?;
    let mut sum = [0u8; mac::LEN];
    sum.copy_from_slice(&tail[..mac::LEN]);
    if !mac::eq(&sum, &mac::checksum(&all)) {
        return Err(Error::HeaderTampered);
    }
    if flags & !KNOWN_FLAGS != 0
        || crate::Compression::from_id((flags >> COMPRESSION_SHIFT) & 0xff).is_none()
    {
        return Err(Error::UnsupportedFlags(flags));
    }
    let metadata = decode_metadata(&all[20..])?;
    let mut m = [0u8; mac::LEN];
    m.copy_from_slice(&tail[mac::LEN..]);
    Ok(Header {
        version: (major, minor),
        flags,
        metadata,
        keyed: flags & FLAG_KEYED != 0,
        compression: crate::Compression::from_id((flags >> COMPRESSION_SHIFT) & 0xff)
            .unwrap_or_default(),
        len: all.len() as u64 + 2 * mac::LEN as u64,
        mac: m,
        raw: all,
    })
}

/// Verifies the header MAC with `key`, re-encoding the checked header bytes.
pub(crate) fn verify(h: &Header, key: &Key) -> Result<()> {
    let expect: [u8; mac::LEN] = *key.hasher().update(&h.raw).finalize().as_bytes();
    if !mac::eq(&expect, &h.mac) {
        return Err(Error::WrongKey);
    }
    Ok(())
}
