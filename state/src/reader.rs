//! A bounds-checked cursor over one graph record's bytes.
//!
//! Invariant: no method reads past the end or allocates; every length taken
//! from the input is checked against what remains *before* it is used, and
//! every error carries the byte offset (relative to the record start).

use crate::error::{Error, ErrorKind, Result};
use crate::varint;

#[derive(Clone)]
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
        // Two and three bytes (values below 2^21: counts, lengths, ids,
        // indexes) without the general loop.
        if let Some(&[b0, b1, b2]) = self.buf.get(self.pos..self.pos + 3) {
            let low = (b0 & 0x7f) as u64 | ((b1 & 0x7f) as u64) << 7;
            if b1 < 0x80 && b1 != 0 {
                self.pos += 2;
                return Ok(low);
            }
            if b1 >= 0x80 && b2 < 0x80 && b2 != 0 {
                self.pos += 3;
                return Ok(low | (b2 as u64) << 14);
            }
        }
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

    /// The usual string, taken in one step: `tag`, a one-byte length and
    /// that many ASCII bytes. `None` (consuming nothing) for anything else,
    /// which [`Reader::str`] after the tag then reads or rejects.
    #[inline]
    pub fn short_str(&mut self, tag: u8) -> Option<&'de str> {
        let [t, n, tail @ ..] = self.buf.get(self.pos..)? else {
            return None;
        };
        if *t != tag || *n >= 0x80 {
            return None;
        }
        let s = ascii_str(tail.get(..*n as usize)?)?;
        self.pos += 2 + *n as usize;
        Some(s)
    }

    /// A varint length followed by that many bytes of UTF-8.
    #[inline]
    pub fn str(&mut self) -> Result<&'de str> {
        let start = self.offset();
        let n = self.varint()?;
        let b = self.bytes(n)?;
        // Short keys and names are nearly always ASCII, and checking for
        // that halves their validation cost.
        if let Some(s) = ascii_str(b) {
            return Ok(s);
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

/// The bytes as a string when they are all ASCII.
#[inline]
fn ascii_str(b: &[u8]) -> Option<&str> {
    // SAFETY: ASCII bytes are valid UTF-8.
    is_ascii(b).then(|| unsafe { std::str::from_utf8_unchecked(b) })
}

/// Whether every byte is below 0x80, as `<[u8]>::is_ascii`, but faster on
/// the short strings a stream is full of: whole words, the last one
/// overlapping the one before, instead of a byte at a time for the tail
/// (std checks the last up to seven bytes of a 20-byte name one by one).
#[inline]
fn is_ascii(b: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
    let n = b.len();
    if n < 8 {
        if n >= 4 {
            let half = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
            return (half(0) | half(n - 4)) & HIGH as u32 == 0;
        }
        return b.iter().all(|&c| c < 0x80);
    }
    let acc = if n <= 16 {
        word(0) | word(n - 8)
    } else if n <= 32 {
        word(0) | word(8) | word(n - 16) | word(n - 8)
    } else {
        return b.is_ascii();
    };
    acc & HIGH == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word-wise ASCII check agrees with std's on every length up to
    /// 80 and a byte of 0x80 or 0xff in every position, alone or in pairs.
    #[test]
    fn ascii_check_agrees_with_std() {
        for n in 0..80 {
            let clean: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(is_ascii(&clean), "len {n}");
            for i in 0..n {
                for high in [0x80, 0xff] {
                    let mut b = clean.clone();
                    b[i] = high;
                    assert_eq!(is_ascii(&b), b.is_ascii(), "len {n} at {i}");
                    assert!(!is_ascii(&b), "len {n} at {i}");
                    for j in i..n {
                        let mut c = b.clone();
                        c[j] = 0x7f;
                        assert_eq!(is_ascii(&c), c.is_ascii(), "len {n} at {i},{j}");
                    }
                }
            }
        }
    }

    /// The reader's short-varint path agrees with the decoder on every
    /// value below 2^21 and on padded, cut and long encodings, whatever
    /// follows them.
    #[test]
    fn reader_varints_agree_with_the_decoder() {
        let check = |bytes: &[u8]| {
            let mut r = Reader::new(bytes, 0);
            let got = r.varint().map(|v| (v, r.offset() as usize));
            match varint::read(bytes) {
                Ok(want) => assert_eq!(got.ok(), Some(want), "{bytes:02x?}"),
                Err(_) => assert!(got.is_err(), "{bytes:02x?}"),
            }
        };
        let mut tmp = [0u8; varint::MAX_LEN];
        for v in (0..1u64 << 21).chain([1 << 21, u32::MAX as u64, u64::MAX]) {
            let n = varint::encode(v, &mut tmp);
            let mut buf = tmp[..n].to_vec();
            check(&buf);
            buf.extend_from_slice(&[0x80, 0x80, 0x05]);
            check(&buf);
        }
        for bad in [
            &[0x80, 0x00, 0x07][..],
            &[0xff, 0x80, 0x00],
            &[0xff, 0x80, 0x00, 0x01],
            &[0x80],
            &[0x80, 0x80],
            &[0xff, 0xff, 0x80],
            &[0xff; 12],
        ] {
            check(bad);
        }
    }
}
