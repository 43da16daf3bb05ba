//! A bounds-checked cursor over one graph record's bytes.
//!
//! Invariant: no method reads past the end or allocates; every length taken
//! from the input is checked against what remains *before* it is used, and
//! every error carries the byte offset (relative to the record start).

use crate::error::{Error, ErrorKind, Result};
use crate::varint;

pub(crate) struct Reader<'de> {
    buf: &'de [u8],
    pos: usize,
    /// Offset of `buf[0]` in the record (the header length).
    base: u64,
}

impl<'de> Reader<'de> {
    pub fn new(buf: &'de [u8], base: u64) -> Self {
        Reader { buf, pos: 0, base }
    }

    #[inline]
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// An error located at the current offset.
    #[cold]
    pub fn error(&self, e: Error) -> Error {
        e.at(self.offset())
    }

    #[cold]
    pub fn truncated(&self) -> Error {
        Error::new(ErrorKind::Truncated).at(self.offset())
    }

    #[inline]
    pub fn peek(&self) -> Result<u8> {
        match self.buf.get(self.pos) {
            Some(&b) => Ok(b),
            None => Err(self.truncated()),
        }
    }

    #[inline]
    pub fn u8(&mut self) -> Result<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Ok(b)
    }

    /// The varint at the cursor and its length, without consuming it, or
    /// `None` if there is no valid one.
    #[inline]
    pub fn peek_varint(&self) -> Option<(u64, usize)> {
        match self.buf.get(self.pos) {
            Some(&b) if b < 0x80 => Some((b as u64, 1)),
            Some(_) => varint::read(&self.buf[self.pos..]).ok(),
            None => None,
        }
    }

    /// Moves past `n` bytes that a peek showed to be there.
    #[inline]
    pub fn advance(&mut self, n: usize) {
        debug_assert!(n <= self.remaining());
        self.pos += n;
    }

    #[inline]
    pub fn varint(&mut self) -> Result<u64> {
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(b as u64);
            }
        }
        self.varint_long()
    }

    #[inline(never)]
    fn varint_long(&mut self) -> Result<u64> {
        match varint::read(&self.buf[self.pos..]) {
            Ok((v, n)) => {
                self.pos += n;
                Ok(v)
            }
            Err(varint::VarintError::Truncated) => Err(self.truncated()),
            Err(e) => Err(self.error(Error::invalid(e.describe()))),
        }
    }

    /// Takes `n` bytes, or fails without moving if fewer remain.
    #[inline]
    pub fn bytes(&mut self, n: u64) -> Result<&'de [u8]> {
        if n > self.remaining() as u64 {
            return Err(self.error(Error::invalid(format!(
                "length {n} is larger than the {} bytes left",
                self.remaining()
            ))));
        }
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    #[inline]
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        match self.buf.get(self.pos..self.pos + N) {
            Some(s) => {
                self.pos += N;
                let mut a = [0u8; N];
                a.copy_from_slice(s);
                Ok(a)
            }
            None => Err(self.truncated()),
        }
    }

    /// A varint length followed by that many bytes of UTF-8.
    #[inline]
    pub fn str(&mut self) -> Result<&'de str> {
        let start = self.offset();
        let n = self.varint()?;
        let b = self.bytes(n)?;
        if b.is_ascii() {
            // SAFETY: ASCII bytes are valid UTF-8. (`is_ascii` reads whole
            // words; short keys and names are nearly always ASCII, and this
            // halves their validation cost.)
            return Ok(unsafe { std::str::from_utf8_unchecked(b) });
        }
        std::str::from_utf8(b).map_err(|e| Error::invalid(format!("invalid UTF-8: {e}")).at(start))
    }

    /// A varint element count, checked so that `count * min_size` bytes
    /// (at least one byte per element) remain.
    #[inline]
    pub fn count(&mut self, min_size: usize) -> Result<usize> {
        let n = self.varint()?;
        let need = n.saturating_mul(min_size.max(1) as u64);
        if need > self.remaining() as u64 {
            return Err(self.error(Error::invalid(format!(
                "count {n} needs at least {need} bytes, only {} left",
                self.remaining()
            ))));
        }
        Ok(n as usize)
    }
}
