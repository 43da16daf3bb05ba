//! Plain structs: types made only of numbers and arrays of numbers, with no
//! padding. A sequence of them (`Vec<T>`, `[T; N]`, `Box<[T]>`…) is written
//! as one packed struct array — the type's field layout once, then the
//! records' raw little-endian bytes — and read back with one copy, instead
//! of a tag and a type id per element and per field.
//!
//! Opt in with `#[derive(Stateify)] #[state(plain)]`: the derive checks at
//! compile time that every field is a number or an array of numbers and
//! that the struct has no padding, and implements [`Plain`].
//!
//! ```
//! #[derive(stateify::Stateify, Debug, PartialEq, Clone, Copy)]
//! #[state(plain)]
//! struct Vertex { pos: [f32; 3], color: u32 }
//!
//! let mesh = vec![Vertex { pos: [1.0, 2.0, 3.0], color: 7 }; 1000];
//! let bytes = stateify::to_vec(&mesh).unwrap();
//! assert!(bytes.len() < 1000 * 16 + 64); // 16 bytes a vertex, plus the layout once
//! let back: Vec<Vertex> = stateify::from_slice(&bytes).unwrap();
//! assert_eq!(back, mesh);
//! ```
//!
//! A single plain value (a field, an `Rc<T>`) is still an ordinary struct
//! whose fields load by name. A packed array loads only into a type with
//! the same field names, kinds and lengths in the same order (a different
//! layout is an error naming both); a sequence saved before the type became
//! plain still loads element by element.

pub use crate::wire::Packed;
use crate::Stateify;

/// Numbers, and arrays of them: every bit pattern is a valid value and
/// there is no padding.
///
/// # Safety
///
/// `Self` must be exactly `LEN` consecutive `KIND` numbers in native byte
/// order (size `LEN × KIND.size()`, no padding), valid for every bit
/// pattern. Implemented here for the integer and float types and for arrays
/// of them; there is no reason to implement it elsewhere.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a number or an array of numbers",
    label = "a #[state(plain)] struct holds only integers, floats and arrays of them"
)]
pub unsafe trait PlainScalars: Sized {
    /// The element kind.
    const KIND: Packed;
    /// How many numbers (1 for a number, N × the element's for an array).
    const LEN: usize;
    /// An array (printed with brackets) rather than a single number.
    const ARRAY: bool;
}

macro_rules! scalars {
    ($($t:ty => $k:ident),*) => {$(
        // SAFETY: a primitive number is one value of its own kind, and
        // every bit pattern of an integer or float is valid.
        unsafe impl PlainScalars for $t {
            const KIND: Packed = Packed::$k;
            const LEN: usize = 1;
            const ARRAY: bool = false;
        }
    )*};
}

scalars!(u8 => U8, i8 => I8, u16 => U16, i16 => I16, u32 => U32, i32 => I32,
    u64 => U64, i64 => I64, u128 => U128, i128 => I128, f32 => F32, f64 => F64);

// SAFETY: an array of N values of T has no padding between elements (its
// size is N × size_of::<T>()), so it is N × T::LEN numbers of T's kind, and
// every bit pattern is valid because it is for T.
unsafe impl<T: PlainScalars, const N: usize> PlainScalars for [T; N] {
    const KIND: Packed = T::KIND;
    const LEN: usize = T::LEN * N;
    const ARRAY: bool = true;
}

/// One field of a [`Plain`] struct.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlainField {
    /// The field's name in the stream.
    pub name: &'static str,
    /// The kind of its numbers.
    pub kind: Packed,
    /// How many numbers.
    pub len: usize,
    /// An array (even of length 1) rather than a number.
    pub array: bool,
    /// Its byte offset in the Rust struct.
    pub offset: usize,
}

impl PlainField {
    /// The field `name` of type `F` at byte `offset` of its struct.
    pub const fn of<F: PlainScalars>(name: &'static str, offset: usize) -> PlainField {
        PlainField {
            name,
            kind: F::KIND,
            len: F::LEN,
            array: F::ARRAY,
            offset,
        }
    }

    /// Size in bytes.
    pub const fn size(&self) -> usize {
        self.len * self.kind.size()
    }

    /// The field's shape as the stream writes it: 0 for a number, `n + 1`
    /// for an array of `n`.
    pub(crate) fn shape(&self) -> u64 {
        if self.array {
            self.len as u64 + 1
        } else {
            0
        }
    }
}

/// A struct of numbers with no padding; see the [module docs](self).
///
/// # Safety
///
/// `FIELDS` must describe every field of `Self` — each one a
/// [`PlainScalars`] type at its true offset — and nothing else, and `Self`
/// must have no padding: the fields' sizes add up to `size_of::<Self>()`.
/// Then every bit pattern of the right size is a valid `Self`.
/// `#[state(plain)]` generates this impl from the field types with
/// `offset_of!`, and [`Plain::LAYOUT_OK`] rejects padding at compile time.
pub unsafe trait Plain: Stateify + Sized {
    /// The type's name in the stream.
    const NAME: &'static str;
    /// The fields, in declaration order (the stream's order).
    const FIELDS: &'static [PlainField];
    /// Evaluated wherever the type's packed arrays are written or read:
    /// fails to compile when the fields do not tile the struct exactly.
    const LAYOUT_OK: () = assert!(
        tiles(Self::FIELDS, std::mem::size_of::<Self>()),
        "a #[state(plain)] type must be only numbers and arrays of numbers, with no padding"
    );
    /// The Rust layout is the stream's: fields in declaration order, each
    /// right after the previous one, on a little-endian machine. Then a
    /// whole slice is copied as it is.
    const SAME_AS_WIRE: bool = in_order(Self::FIELDS);
}

/// Whether `fields` cover `0..size` exactly, without overlap, and the
/// struct is not empty (an empty record would let a count claim any number
/// of elements from no bytes).
pub const fn tiles(fields: &[PlainField], size: usize) -> bool {
    if size == 0 {
        return false;
    }
    // Every byte must be covered exactly once: total size matches and no
    // two fields overlap (quadratic, but at compile time and over a handful).
    let mut total = 0;
    let mut i = 0;
    while i < fields.len() {
        let a = &fields[i];
        if a.offset + a.size() > size {
            return false;
        }
        total += a.size();
        let mut j = i + 1;
        while j < fields.len() {
            let b = &fields[j];
            if a.size() > 0
                && b.size() > 0
                && a.offset < b.offset + b.size()
                && b.offset < a.offset + a.size()
            {
                return false;
            }
            j += 1;
        }
        i += 1;
    }
    total == size
}

const fn in_order(fields: &[PlainField]) -> bool {
    if cfg!(target_endian = "big") {
        return false;
    }
    let mut at = 0;
    let mut i = 0;
    while i < fields.len() {
        if fields[i].offset != at {
            return false;
        }
        at += fields[i].size();
        i += 1;
    }
    true
}

/// Appends the stream form (declaration order, little-endian) of `items`.
pub(crate) fn encode<T: Plain>(items: &[T], out: &mut Vec<u8>) {
    #[allow(clippy::let_unit_value)]
    let () = T::LAYOUT_OK;
    let bytes = as_bytes(items);
    if T::SAME_AS_WIRE {
        crate::mem::extend_large(out, bytes);
        return;
    }
    let size = std::mem::size_of::<T>();
    out.reserve(bytes.len());
    for rec in bytes.chunks_exact(size) {
        for f in T::FIELDS {
            let start = out.len();
            out.extend_from_slice(&rec[f.offset..f.offset + f.size()]);
            to_le(f.kind, &mut out[start..]);
        }
    }
}

/// Decodes `n` records of the stream form into a vector.
///
/// `bytes.len()` must be `n × size_of::<T>()`; the caller checked it
/// against the input, so the allocation is what the input justifies.
pub(crate) fn decode<T: Plain>(bytes: &[u8], n: usize) -> Vec<T> {
    #[allow(clippy::let_unit_value)]
    let () = T::LAYOUT_OK;
    let size = std::mem::size_of::<T>();
    assert_eq!(
        bytes.len(),
        n * size,
        "plain decode: caller checked the length"
    );
    let mut v: Vec<T> = Vec::with_capacity(n);
    crate::mem::advise_vec(&mut v);
    let dst = v.as_mut_ptr() as *mut u8;
    if T::SAME_AS_WIRE {
        // SAFETY: `dst` is the start of an allocation of `n × size` bytes
        // (capacity n) that nothing else refers to, and `MaybeUninit<u8>`
        // has the layout of `u8`: the slice covers exactly that allocation.
        let spare = unsafe {
            std::slice::from_raw_parts_mut(dst.cast::<std::mem::MaybeUninit<u8>>(), bytes.len())
        };
        crate::mem::copy_to_uninit(spare, bytes);
    } else {
        for (i, rec) in bytes.chunks_exact(size).enumerate() {
            let mut at = 0;
            for f in T::FIELDS {
                let len = f.size();
                // SAFETY: element i of the allocation spans
                // `i × size .. (i + 1) × size`; the field lies inside it
                // (`tiles`), and the source is `len` bytes of `rec`.
                let field = unsafe {
                    let p = dst.add(i * size + f.offset);
                    std::ptr::copy_nonoverlapping(rec[at..at + len].as_ptr(), p, len);
                    std::slice::from_raw_parts_mut(p, len)
                };
                to_le(f.kind, field);
                at += len;
            }
        }
    }
    // SAFETY: all `n × size` bytes were written: the whole run at once, or
    // every field of every element, and the fields tile the struct
    // (`T::LAYOUT_OK`). `T: Plain` promises every bit pattern is a valid T.
    unsafe { v.set_len(n) };
    v
}

fn as_bytes<T: Plain>(items: &[T]) -> &[u8] {
    // SAFETY: a `Plain` type has no padding (`T::LAYOUT_OK`), so all
    // `size_of_val(items)` bytes are initialised; u8 has alignment 1 and the
    // borrow keeps `items` alive and unchanged.
    unsafe { std::slice::from_raw_parts(items.as_ptr() as *const u8, std::mem::size_of_val(items)) }
}

/// Converts numbers of `kind` between native and little-endian byte order
/// in place (a no-op on little-endian machines).
fn to_le(kind: Packed, bytes: &mut [u8]) {
    if cfg!(target_endian = "big") {
        for n in bytes.chunks_exact_mut(kind.size()) {
            n.reverse();
        }
    }
}
