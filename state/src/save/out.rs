//! The output buffer: tags, varints, scalars and strings appended to the
//! record being written (the twin of `reader.rs`).

use super::*;

/// Strings up to this long are copied by `write_short_str` (their length
/// is one varint byte).
pub(super) const SHORT_STR: usize = 32;

/// The 128-bit writers: the 64-bit form when the value fits, else the
/// tag and 16 bytes.
macro_rules! wide_writers {
    ($($(#[$doc:meta])* $name:ident($t:ty): $narrow:ident, $write:ident, else $tag:ident);*) => {$(
        $(#[$doc])*
        pub fn $name(&mut self, v: $t) {
            match $narrow::try_from(v) {
                Ok(v) => self.$write(v),
                Err(_) => {
                    self.tag(wire::$tag);
                    self.raw(&v.to_le_bytes());
                }
            }
        }
    )*};
}

impl Saver {
    #[inline]
    pub(super) fn reserve(&mut self, n: usize) {
        if self.buf.capacity() - self.buf.len() < n {
            self.grow(n);
        }
    }

    #[cold]
    pub(super) fn grow(&mut self, n: usize) {
        let want = (self.buf.capacity() * 2).max(self.buf.len() + n).max(256);
        self.buf.reserve(want - self.buf.len());
        mem::advise_spare(&mut self.buf);
    }

    /// Appends one byte. The test is `push`'s own (`len == capacity`), so
    /// that the compiler drops `push`'s copy of it where no growth ran.
    #[inline]
    pub(crate) fn tag(&mut self, t: u8) {
        if self.buf.len() == self.buf.capacity() {
            self.grow(1);
        }
        self.buf.push(t);
    }

    /// A varint: the one-byte form inline, longer ones out of line.
    #[inline(always)]
    pub(crate) fn varint(&mut self, v: u64) {
        if v < 1 << 7 {
            self.tag(v as u8);
        } else {
            self.varint_long(v);
        }
    }

    /// Two bytes and more (lengths, type and object ids), out of line.
    #[inline(never)]
    pub(super) fn varint_long(&mut self, v: u64) {
        if v < varint::SHORT_LIMIT {
            let (word, n) = varint::short_word(v);
            self.put_word(word, n);
        } else {
            self.reserve(varint::MAX_LEN);
            varint::write(&mut self.buf, v);
        }
    }

    /// A tag and an object id, as one word for ids with a short encoding.
    #[inline(always)]
    pub(super) fn tag_id(&mut self, tag: u8, id: u32) {
        let v = id as u64;
        if v < varint::SHORT_LIMIT {
            let (word, n) = varint::short_word(v);
            self.put_word(tag as u64 | word << 8, 1 + n);
        } else {
            self.tag(tag);
            self.varint_long(v);
        }
    }

    /// Appends the low `n` (at most 4) bytes of `word`: all four written,
    /// then the vector cut back, so the length takes no branch.
    #[inline(always)]
    pub(super) fn put_word(&mut self, word: u64, n: usize) {
        debug_assert!(n <= 4);
        let len = self.buf.len();
        self.reserve(4);
        self.buf.extend_from_slice(&(word as u32).to_le_bytes());
        self.buf.truncate(len + n);
    }

    /// Raw bytes with no tag (the payload of a tag written just before).
    #[inline]
    pub(crate) fn raw(&mut self, b: &[u8]) {
        if b.len() <= SHORT_STR {
            self.put_short(b);
        } else if b.len() >= mem::HUGE_THRESHOLD {
            mem::extend_large(&mut self.buf, b);
        } else {
            self.reserve(b.len());
            self.buf.extend_from_slice(b);
        }
    }

    /// Writes `()`.
    #[inline]
    pub fn write_unit(&mut self) {
        self.tag(wire::UNIT);
    }

    /// Writes a bool.
    #[inline]
    pub fn write_bool(&mut self, v: bool) {
        self.tag(if v { wire::TRUE } else { wire::FALSE });
    }

    /// Writes an unsigned integer in its shortest form.
    #[inline(always)]
    pub fn write_u64(&mut self, v: u64) {
        if v < 0x80 {
            return self.tag(wire::SMALL | v as u8);
        }
        self.reserve(varint::MAX_LEN + 1);
        if v < 1 << 56 {
            self.buf.push(wire::UINT);
            self.varint_long(v);
        } else {
            self.buf.push(wire::U64);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Writes a signed integer.
    #[inline]
    pub fn write_i64(&mut self, v: i64) {
        if v >= 0 {
            self.write_u64(v as u64);
        } else {
            self.tag(wire::NINT);
            self.varint(!(v as u64));
        }
    }

    wide_writers!(
        /// Writes a u128 (as a u64 when it fits).
        write_u128(u128): u64, write_u64, else U128;
        /// Writes an i128 (as an i64 when it fits).
        write_i128(i128): i64, write_i64, else I128
    );

    /// Writes an f32, bit for bit.
    #[inline]
    pub fn write_f32(&mut self, v: f32) {
        self.tag(wire::F32);
        self.raw(&v.to_bits().to_le_bytes());
    }

    /// Writes an f64, bit for bit.
    #[inline]
    pub fn write_f64(&mut self, v: f64) {
        self.tag(wire::F64);
        self.raw(&v.to_bits().to_le_bytes());
    }

    /// Writes a char.
    #[inline]
    pub fn write_char(&mut self, v: char) {
        self.tag(wire::CHAR);
        self.varint(v as u64);
    }

    /// Writes a string.
    #[inline(always)]
    pub fn write_str(&mut self, s: &str) {
        if s.len() <= SHORT_STR {
            return self.write_short_str(s.as_bytes());
        }
        self.reserve(1 + varint::MAX_LEN + s.len());
        self.buf.push(wire::STR);
        varint::write(&mut self.buf, s.len() as u64);
        self.raw(s.as_bytes());
    }

    /// Tag, one-byte length and bytes of a string of at most `SHORT_STR`
    /// bytes: most strings in a graph are names and ids that short.
    #[inline(always)]
    pub(super) fn write_short_str(&mut self, b: &[u8]) {
        // A real check: the writes below rely on it. Inlined after the
        // caller's own test of the length, it compiles to nothing.
        assert!(b.len() <= SHORT_STR);
        self.reserve(2 + SHORT_STR);
        let at = self.buf.len();
        // SAFETY: `reserve` left at least 2 + SHORT_STR spare bytes after
        // `at` and b.len() <= SHORT_STR (asserted): the two header bytes
        // and `copy_short`'s writes (offsets below 2 + b.len()) are inside
        // the allocation, and all of them are written before `set_len`
        // makes them part of the vector. `b` is borrowed immutably while
        // `self.buf` is borrowed mutably, so the two cannot overlap.
        unsafe {
            let dst = self.buf.as_mut_ptr().add(at);
            dst.write(wire::STR);
            dst.add(1).write(b.len() as u8);
            copy_short(dst.add(2), b);
            self.buf.set_len(at + 2 + b.len());
        }
    }

    /// Appends at most `SHORT_STR` bytes with two (overlapping) fixed-size
    /// moves instead of a `memcpy` call.
    #[inline(always)]
    pub(super) fn put_short(&mut self, b: &[u8]) {
        // As in `write_short_str`: a real check, free after the caller's.
        assert!(b.len() <= SHORT_STR);
        self.reserve(SHORT_STR);
        let at = self.buf.len();
        // SAFETY: `reserve` left at least SHORT_STR spare bytes after `at`,
        // so `copy_short`'s writes (offsets < b.len() <= SHORT_STR,
        // asserted) are inside the allocation, all written before
        // `set_len` makes them part of the vector. `b` is borrowed
        // immutably while `self.buf` is borrowed mutably, so the two cannot
        // overlap.
        unsafe {
            copy_short(self.buf.as_mut_ptr().add(at), b);
            self.buf.set_len(at + b.len());
        }
    }

    /// Writes a packed array of `kind` elements whose little-endian bytes
    /// are `parts` concatenated.
    pub fn write_packed(&mut self, kind: Packed, parts: [&[u8]; 2]) {
        let len = parts[0].len() + parts[1].len();
        debug_assert_eq!(len % kind.size(), 0);
        self.reserve(2 + varint::MAX_LEN);
        self.buf.push(wire::PACKED);
        self.buf.push(kind as u8);
        self.varint((len / kind.size()) as u64);
        self.raw(parts[0]);
        self.raw(parts[1]);
    }

    /// Writes `None`.
    #[inline]
    pub fn write_none(&mut self) {
        self.tag(wire::NONE);
    }

    /// Writes `Some(v)`.
    #[inline]
    pub fn write_some<T: Stateify + ?Sized>(&mut self, v: &T) -> Result<()> {
        self.tag(wire::SOME);
        v.save(self)
    }
}

/// Copies `b` (at most `SHORT_STR` bytes) to `dst` with two overlapping
/// fixed-size moves of the largest size that fits, instead of a `memcpy`
/// call.
///
/// # Safety
///
/// `dst` must be valid for writes of `b.len()` bytes and must not overlap
/// `b`.
#[inline(always)]
unsafe fn copy_short(dst: *mut u8, b: &[u8]) {
    let n = b.len();
    debug_assert!(n <= SHORT_STR);
    let src = b.as_ptr();
    // SAFETY: every read is inside `b` (the two reads of each pair start
    // at 0 and at n - size, with size <= n), every write at the same
    // offsets of `dst`, which the caller vouches for; the two do not
    // overlap (the caller's promise).
    unsafe {
        if n >= 16 {
            let head = src.cast::<u128>().read_unaligned();
            let tail = src.add(n - 16).cast::<u128>().read_unaligned();
            dst.cast::<u128>().write_unaligned(head);
            dst.add(n - 16).cast::<u128>().write_unaligned(tail);
        } else if n >= 8 {
            let head = src.cast::<u64>().read_unaligned();
            let tail = src.add(n - 8).cast::<u64>().read_unaligned();
            dst.cast::<u64>().write_unaligned(head);
            dst.add(n - 8).cast::<u64>().write_unaligned(tail);
        } else if n >= 4 {
            let head = src.cast::<u32>().read_unaligned();
            let tail = src.add(n - 4).cast::<u32>().read_unaligned();
            dst.cast::<u32>().write_unaligned(head);
            dst.add(n - 4).cast::<u32>().write_unaligned(tail);
        } else if n > 0 {
            dst.write(*src);
            dst.add(n / 2).write(*src.add(n / 2));
            dst.add(n - 1).write(*src.add(n - 1));
        }
    }
}
