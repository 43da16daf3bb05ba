//! LEB128 varints: 7 bits per byte, least significant group first, high bit
//! set on every byte but the last. A u64 takes 1 to 10 bytes.
//!
//! Decoding rejects encodings longer than 10 bytes, a 10th byte with bits
//! above the 64th, and padded encodings (a zero last byte after others, as in
//! `80 00`), so every u64 has exactly one accepted encoding: the minimal one.

/// The longest encoding of a u64.
pub const MAX_LEN: usize = 10;

/// Appends the encoding of `v` to `out`.
#[inline(always)]
pub fn write(out: &mut Vec<u8>, v: u64) {
    if v < 0x80 {
        out.push(v as u8);
    } else {
        write_long(out, v);
    }
}

/// Two to ten bytes. Below 2^56 (eight bytes or fewer) the 7-bit groups are
/// spread into one word and the continuation bits set with masks, with no
/// loop: ids and lengths of a few bytes are the common case.
#[inline(never)]
fn write_long(out: &mut Vec<u8>, v: u64) {
    let len = out.len();
    if v < 1 << 56 {
        let n = (64 - v.leading_zeros()).div_ceil(7); // 2..=8 bytes
        let mut spread = 0;
        for g in 0..8 {
            spread |= (v << g) & (0x7f << (8 * g));
        }
        let more = 0x8080_8080_8080_8080u64 & ((1u64 << (8 * (n - 1))) - 1);
        out.extend_from_slice(&(spread | more).to_le_bytes());
        out.truncate(len + n as usize);
        return;
    }
    let mut tmp = [0u8; MAX_LEN];
    let n = encode(v, &mut tmp);
    // A fixed-size append compiles to two stores; a variable one to a memcpy call.
    out.extend_from_slice(&tmp);
    out.truncate(len + n);
}

/// The encoding of `v < 2^21` in the low bytes of a word, and its length
/// (1 to 3), with no branch on the length: object ids of a large graph take
/// two or three bytes at random, and a branch on that mispredicts about
/// every other reference.
#[inline(always)]
pub fn short_word(v: u64) -> (u64, usize) {
    debug_assert!(v < SHORT_LIMIT);
    let (two, three) = ((v >> 7 != 0) as u64, (v >> 14 != 0) as u64);
    let word = (v & 0x7f | two << 7) | (v >> 7 & 0x7f | three << 7) << 8 | (v >> 14) << 16;
    (word, 1 + (two + three) as usize)
}

/// Values below this have a [`short_word`] encoding.
pub const SHORT_LIMIT: u64 = 1 << 21;

/// Encodes `v` into a fixed buffer, returning the used length.
#[inline]
pub fn encode(mut v: u64, tmp: &mut [u8; MAX_LEN]) -> usize {
    let mut n = 0;
    while v >= 0x80 {
        tmp[n] = (v as u8) | 0x80;
        v >>= 7;
        n += 1;
    }
    tmp[n] = v as u8;
    n + 1
}

/// Why a varint could not be decoded.
#[derive(Debug, PartialEq, Eq)]
pub enum VarintError {
    /// The input ended before the last byte.
    Truncated,
    /// More than 64 bits.
    Overflow,
    /// A longer encoding than needed (a last byte of zero after others).
    NonMinimal,
}

impl VarintError {
    /// What went wrong, for error messages (truncation has its own kind).
    pub fn describe(&self) -> &'static str {
        match self {
            VarintError::Truncated => "varint cut short",
            VarintError::Overflow => "varint longer than 64 bits",
            VarintError::NonMinimal => "varint padded with a zero byte (not minimal)",
        }
    }
}

/// Decodes a varint at the start of `input`, returning the value and its length.
#[inline]
pub fn read(input: &[u8]) -> Result<(u64, usize), VarintError> {
    match input.first() {
        Some(&b) if b < 0x80 => return Ok((b as u64, 1)),
        None => return Err(VarintError::Truncated),
        _ => {}
    }
    let mut v: u64 = 0;
    for (i, &b) in input.iter().enumerate().take(MAX_LEN) {
        if i == MAX_LEN - 1 && b > 1 {
            return Err(VarintError::Overflow);
        }
        v |= ((b & 0x7f) as u64) << (7 * i);
        if b < 0x80 {
            if b == 0 {
                return Err(VarintError::NonMinimal);
            }
            return Ok((v, i + 1));
        }
    }
    if input.len() >= MAX_LEN {
        Err(VarintError::Overflow)
    } else {
        Err(VarintError::Truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_edges() {
        for v in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX - 1, u64::MAX] {
            let mut out = Vec::new();
            write(&mut out, v);
            let mut tmp = [0; MAX_LEN];
            let n = encode(v, &mut tmp);
            assert_eq!(&tmp[..n], &out[..]);
            assert_eq!(read(&out), Ok((v, out.len())));
            assert_eq!(read(&out[..out.len() - 1]), Err(VarintError::Truncated));
        }
        // Every length boundary, each side: the word-spreading writer
        // against the byte loop.
        for bits in 0..64 {
            for v in [
                (1u64 << bits) - 1,
                1u64 << bits,
                (1u64 << bits) + 1,
                (1 << bits) | 0x55,
            ] {
                let mut out = vec![0xaa];
                write(&mut out, v);
                let mut tmp = [0; MAX_LEN];
                let n = encode(v, &mut tmp);
                assert_eq!(&out[1..], &tmp[..n], "{v:#x}");
                if v < SHORT_LIMIT {
                    let (word, len) = short_word(v);
                    assert_eq!(&word.to_le_bytes()[..len], &tmp[..n], "{v:#x}");
                    assert_eq!(word >> (8 * len), 0, "{v:#x}: nothing past the encoding");
                }
            }
        }
        assert_eq!(read(&[0x80; 10]), Err(VarintError::Overflow));
        assert_eq!(read(&[0x80, 0x00]), Err(VarintError::NonMinimal));
        assert_eq!(read(&[0xff, 0x80, 0x00]), Err(VarintError::NonMinimal));
        assert_eq!(read(&[0x00]), Ok((0, 1)));
        assert_eq!(
            read(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            Err(VarintError::Overflow)
        );
    }
}
