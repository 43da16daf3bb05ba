//! Records: the framing of a stream.
//!
//! A stream is a sequence of records, each a header `varint(length | object << 63)`
//! followed by `length` bytes. An object record holds one encoded graph; a raw
//! record holds opaque bytes (page blocks, user data). Because the object flag
//! is bit 63, an object header is always exactly 10 bytes long, which lets the
//! encoder reserve it before it knows the length. Any record can be skipped
//! without decoding it.

use std::io::{self, BufRead, Read, Write};

use crate::error::{Error, ErrorKind, Result};
use crate::varint;

/// Bit 63 of the header value marks an object (graph) record.
pub const OBJECT_FLAG: u64 = 1 << 63;

/// The length of every object record header.
pub const OBJECT_HEADER_LEN: usize = varint::MAX_LEN;

/// Writes a record header: `length` bytes follow, an encoded graph if `object`.
///
/// ```
/// let mut out = Vec::new();
/// stateify::write_header(&mut out, 3, false).unwrap();
/// out.extend_from_slice(b"raw");
/// assert_eq!(stateify::read_header(&out[..]).unwrap(), (3, false));
/// ```
pub fn write_header<W: Write>(mut w: W, length: u64, object: bool) -> io::Result<()> {
    if length & OBJECT_FLAG != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "record length does not fit in 63 bits",
        ));
    }
    let mut tmp = [0u8; varint::MAX_LEN];
    let v = if object { length | OBJECT_FLAG } else { length };
    let n = varint::encode(v, &mut tmp);
    w.write_all(&tmp[..n])
}

/// Reads a record header, returning `(length, object)`.
///
/// Reads byte by byte, so it never consumes more than the header from `r`.
pub fn read_header<R: Read>(mut r: R) -> Result<(u64, bool)> {
    let mut buf = [0u8; varint::MAX_LEN];
    for i in 0..varint::MAX_LEN {
        let mut b = [0u8];
        let got = loop {
            match r.read(&mut b) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        match got {
            Ok(0) => {
                return Err(if i == 0 {
                    Error::new(ErrorKind::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "end of stream: no more records",
                    )))
                } else {
                    Error::new(ErrorKind::Truncated)
                }
                .at(i as u64));
            }
            Ok(_) => {}
            Err(e) => return Err(Error::from(e).at(i as u64)),
        }
        buf[i] = b[0];
        if b[0] < 0x80 {
            return decode_header(&buf[..=i]).map(|(len, obj, _)| (len, obj));
        }
    }
    decode_header(&buf).map(|(len, obj, _)| (len, obj))
}

/// Decodes a header at the start of a slice: `(length, object, header_len)`.
pub fn decode_header(input: &[u8]) -> Result<(u64, bool, usize)> {
    match varint::read(input) {
        Ok((v, n)) => Ok((v & !OBJECT_FLAG, v & OBJECT_FLAG != 0, n)),
        Err(varint::VarintError::Truncated) => Err(Error::new(ErrorKind::Truncated).at(0)),
        Err(e) => Err(Error::invalid(format!("record header: {}", e.describe())).at(0)),
    }
}

/// The magic numbers of the files that hold record streams without being
/// one (they are `statefile::MAGIC` and `pgalloc::PAGES_MAGIC`; a test in
/// `tests/` checks they agree). A record header never starts this way by
/// chance that matters: `0x89` begins a two-byte length or longer.
const CONTAINERS: [(&[u8; 8], &str); 2] = [
    (
        b"\x89SFILE\r\n",
        "a statefile (a checkpoint container): read it through `statefile::Reader`, then load from the reader",
    ),
    (
        b"\x89SPAGE\r\n",
        "a pgalloc pages file: restore it with `pgalloc::MemoryFile::load_from`",
    ),
];

/// An error for input that is one of our container files rather than a
/// record stream, read from its first bytes.
pub(crate) fn container_file(start: &[u8]) -> Option<Error> {
    CONTAINERS
        .iter()
        .find(|(magic, _)| start.starts_with(&magic[..]))
        .map(|(_, what)| Error::mismatch("a graph record", what))
}

/// Skips the body of a record whose header was just read, without decoding it.
pub fn skip_record<R: BufRead>(mut r: R, length: u64) -> Result<()> {
    let copied = io::copy(&mut (&mut r).take(length), &mut io::sink())?;
    if copied != length {
        return Err(Error::new(ErrorKind::Truncated).at(copied));
    }
    Ok(())
}

/// Reads the body of a record, growing the buffer only as data actually
/// arrives (a hostile length cannot make us allocate more than the input).
/// Errors are located at `base` plus the body offset.
pub(crate) fn read_body<R: Read>(r: R, length: u64, base: u64, out: &mut Vec<u8>) -> Result<()> {
    const FIRST_CHUNK: u64 = 1 << 20;
    out.reserve(length.min(FIRST_CHUNK) as usize);
    let got = r
        .take(length)
        .read_to_end(out)
        .map_err(|e| Error::from(e).at(base + out.len() as u64))? as u64;
    if got != length {
        return Err(Error::new(ErrorKind::Truncated).at(base + got));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_headers_are_ten_bytes() {
        let mut out = Vec::new();
        write_header(&mut out, 0, true).unwrap();
        assert_eq!(out.len(), OBJECT_HEADER_LEN);
        assert_eq!(read_header(&out[..]).unwrap(), (0, true));
        assert!(write_header(&mut out, OBJECT_FLAG, false).is_err());
    }

    #[test]
    fn truncated_header_is_an_error() {
        let mut out = Vec::new();
        write_header(&mut out, 1 << 40, true).unwrap();
        let e = read_header(&out[..5]).unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::Truncated), "{e}");
        assert!(read_header(&[][..]).is_err());
    }

    /// A reader that fails with `Interrupted` before every byte.
    struct Flaky<'a>(&'a [u8], bool);

    impl Read for Flaky<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.1 = !self.1;
            if self.1 {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = buf.len().min(1);
            self.0.read(&mut buf[..n])
        }
    }

    #[test]
    fn interrupted_reads_are_retried_without_losing_bytes() {
        let mut out = Vec::new();
        write_header(&mut out, 300, true).unwrap();
        write_header(&mut out, 1 << 40, false).unwrap();
        let mut r = Flaky(&out, false);
        assert_eq!(read_header(&mut r).unwrap(), (300, true));
        assert_eq!(read_header(&mut r).unwrap(), (1 << 40, false));
    }

    #[test]
    fn padded_header_is_refused() {
        let e = read_header(&[0x83, 0x00][..]).unwrap_err();
        assert!(e.to_string().contains("not minimal"), "{e}");
    }

    #[test]
    fn skip_detects_short_body() {
        let mut data = &b"abc"[..];
        assert!(skip_record(&mut data, 4).is_err());
        let mut data = &b"abcd"[..];
        skip_record(&mut data, 3).unwrap();
        assert_eq!(data, b"d");
    }
}
