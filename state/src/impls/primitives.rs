//! Scalars, strings, tuples, options: one tagged value each. Plain numbers
//! also encode sequences of themselves as one packed little-endian array.

use std::marker::PhantomData;

use crate::error::{Error, Result};
use crate::load::out_of_range;
use crate::wire::Packed;
use crate::{Loader, Saver, Stateify};

/// The little-endian bytes of a slice of plain numbers, without copying on
/// little-endian targets.
fn le_bytes<T: bytemuck::Pod>(s: &[T]) -> std::borrow::Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        std::borrow::Cow::Borrowed(bytemuck::cast_slice(s))
    } else {
        let size = std::mem::size_of::<T>();
        let mut out = Vec::with_capacity(std::mem::size_of_val(s));
        for x in s {
            let mut b = bytemuck::bytes_of(x).to_vec();
            b.reverse();
            out.extend_from_slice(&b[..size]);
        }
        std::borrow::Cow::Owned(out)
    }
}

/// A vector from packed little-endian bytes (length already checked to be
/// a multiple of the element size).
fn from_le_bytes<T: bytemuck::Pod>(bytes: &[u8]) -> Vec<T> {
    let n = bytes.len() / std::mem::size_of::<T>();
    let mut v: Vec<T> = vec![T::zeroed(); n];
    let dst: &mut [u8] = bytemuck::cast_slice_mut(&mut v);
    crate::mem::advise_slice(dst);
    crate::mem::copy(dst, bytes);
    if cfg!(target_endian = "big") {
        for chunk in dst.chunks_mut(std::mem::size_of::<T>()) {
            chunk.reverse();
        }
    }
    v
}

/// An array from packed little-endian bytes, which must hold exactly `N`
/// elements.
fn array_from_le_bytes<T: bytemuck::Pod, const N: usize>(bytes: &[u8], at: u64) -> Result<[T; N]> {
    let size = std::mem::size_of::<T>();
    if bytes.len() != N * size {
        return Err(Error::wrong_length(N, bytes.len() / size, at));
    }
    let mut out = [T::zeroed(); N];
    let dst: &mut [u8] = bytemuck::cast_slice_mut(&mut out);
    dst.copy_from_slice(bytes);
    if cfg!(target_endian = "big") {
        for chunk in dst.chunks_mut(size) {
            chunk.reverse();
        }
    }
    Ok(out)
}

macro_rules! packed_seq {
    ($t:ty, $kind:ident) => {
        fn save_seq(parts: [&[Self]; 2], s: &mut Saver) -> Result<()> {
            s.write_packed(Packed::$kind, [&le_bytes(parts[0]), &le_bytes(parts[1])]);
            Ok(())
        }
        fn load_seq(l: &mut Loader) -> Result<Vec<Self>> {
            match l.read_packed(Packed::$kind)? {
                Some(bytes) => Ok(from_le_bytes::<$t>(bytes)),
                None => {
                    let n = l.read_seq_header()?;
                    l.read_elements(n)
                }
            }
        }
        fn load_array<const N: usize>(l: &mut Loader) -> Result<[Self; N]> {
            let at = l.offset();
            match l.read_packed(Packed::$kind)? {
                Some(bytes) => array_from_le_bytes::<$t, N>(bytes, at),
                None => {
                    let n = l.read_seq_header()?;
                    let v: Vec<$t> = l.read_elements(n)?;
                    v.try_into().map_err(|_| Error::wrong_length(N, n, at))
                }
            }
        }
    };
}

/// The integers up to 64 bits: written widened to 64 bits, range-checked
/// on load, packed as themselves in sequences.
macro_rules! int {
    ($wide:ty, $write:ident, $read:ident: $($t:ty => $kind:ident),*) => {$(
        impl Stateify for $t {
            #[inline]
            fn save(&self, s: &mut Saver) -> Result<()> {
                s.$write(*self as $wide);
                Ok(())
            }
            #[inline]
            fn load(l: &mut Loader) -> Result<Self> {
                let at = l.offset();
                let v = l.$read(stringify!($t))?;
                <$t>::try_from(v).map_err(|_| out_of_range(stringify!($t), v, at))
            }
            packed_seq!($t, $kind);
        }
    )*};
}

int!(u64, write_u64, read_u64: u8 => U8, u16 => U16, u32 => U32, u64 => U64);
int!(i64, write_i64, read_i64: i8 => I8, i16 => I16, i32 => I32, i64 => I64);

/// `usize` and `isize` travel as 64-bit integers and are range-checked
/// on load.
macro_rules! pointer_sized {
    ($($t:ident as $wide:ident: $write:ident, $read:ident, $kind:ident);*) => {$(
        impl Stateify for $t {
            fn save(&self, s: &mut Saver) -> Result<()> {
                s.$write(*self as $wide);
                Ok(())
            }
            fn load(l: &mut Loader) -> Result<Self> {
                let at = l.offset();
                let v = l.$read(stringify!($t))?;
                $t::try_from(v).map_err(|_| out_of_range(stringify!($t), v, at))
            }
            fn save_seq(parts: [&[Self]; 2], s: &mut Saver) -> Result<()> {
                let wide: Vec<$wide> = parts
                    .iter()
                    .flat_map(|p| p.iter().map(|&x| x as $wide))
                    .collect();
                s.write_packed(Packed::$kind, [&le_bytes(&wide), &[]]);
                Ok(())
            }
            fn load_seq(l: &mut Loader) -> Result<Vec<Self>> {
                let at = l.offset();
                $wide::load_seq(l)?
                    .into_iter()
                    .map(|v| $t::try_from(v).map_err(|_| out_of_range(stringify!($t), v, at)))
                    .collect()
            }
        }
    )*};
}

pointer_sized!(usize as u64: write_u64, read_u64, U64; isize as i64: write_i64, read_i64, I64);

/// Floats, 128-bit integers, `bool` and `char`: one writer and one reader
/// each (numbers also as packed arrays).
macro_rules! scalar {
    ($($t:ty: $write:ident, $read:ident $(, $kind:ident)?);*) => {$(
        impl Stateify for $t {
            #[inline]
            fn save(&self, s: &mut Saver) -> Result<()> {
                s.$write(*self);
                Ok(())
            }
            #[inline]
            fn load(l: &mut Loader) -> Result<Self> {
                l.$read()
            }
            $(packed_seq!($t, $kind);)?
        }
    )*};
}

scalar!(
    f32: write_f32, read_f32, F32;
    f64: write_f64, read_f64, F64;
    u128: write_u128, read_u128, U128;
    i128: write_i128, read_i128, I128;
    bool: write_bool, read_bool;
    char: write_char, read_char
);

impl Stateify for () {
    fn save(&self, s: &mut Saver) -> Result<()> {
        s.write_unit();
        Ok(())
    }
    fn load(l: &mut Loader) -> Result<Self> {
        l.read_unit()
    }
}

/// Written as `()`.
impl<T: ?Sized> Stateify for PhantomData<T> {
    fn save(&self, s: &mut Saver) -> Result<()> {
        ().save(s)
    }
    fn load(l: &mut Loader) -> Result<Self> {
        <()>::load(l).map(|()| PhantomData)
    }
}

impl Stateify for str {
    #[inline]
    fn save(&self, s: &mut Saver) -> Result<()> {
        s.write_str(self);
        Ok(())
    }
}

impl Stateify for String {
    #[inline]
    fn save(&self, s: &mut Saver) -> Result<()> {
        s.write_str(self);
        Ok(())
    }
    #[inline]
    fn load(l: &mut Loader) -> Result<Self> {
        l.read_str().map(str::to_owned)
    }
}

/// Writes an optional value: `NONE`, or `SOME` and the value (`Option`
/// and the once-cells).
#[inline]
pub(super) fn save_option<T: Stateify + ?Sized>(v: Option<&T>, s: &mut Saver) -> Result<()> {
    match v {
        None => {
            s.write_none();
            Ok(())
        }
        Some(v) => s.write_some(v),
    }
}

impl<T: Stateify> Stateify for Option<T> {
    #[inline]
    fn save(&self, s: &mut Saver) -> Result<()> {
        save_option(self.as_ref(), s)
    }
    #[inline]
    fn load(l: &mut Loader) -> Result<Self> {
        if l.read_option_tag()? {
            T::load(l).map(Some)
        } else {
            Ok(None)
        }
    }
}

const RESULT_VARIANTS: &[&str] = &["Ok", "Err"];

impl<T: Stateify, E: Stateify> Stateify for std::result::Result<T, E> {
    fn save(&self, s: &mut Saver) -> Result<()> {
        match self {
            Ok(v) => s.save_variant("Result", RESULT_VARIANTS, 0, |s| v.save(s)),
            Err(e) => s.save_variant("Result", RESULT_VARIANTS, 1, |s| e.save(s)),
        }
    }
    fn load(l: &mut Loader) -> Result<Self> {
        l.load_variant("Result", RESULT_VARIANTS, |i, l| {
            if i == 0 {
                T::load(l).map(Ok)
            } else {
                E::load(l).map(Err)
            }
        })
    }
}

macro_rules! tuples {
    ($($n:literal => ($($name:ident . $idx:tt),+);)*) => {$(
        impl<$($name: Stateify),+> Stateify for ($($name,)+) {
            fn save(&self, s: &mut Saver) -> Result<()> {
                s.write_tuple_header($n);
                $(self.$idx.save(s).map_err(|e| e.in_index($idx))?;)+
                Ok(())
            }
            fn load(l: &mut Loader) -> Result<Self> {
                l.read_tuple_header($n)?;
                Ok(($($name::load(l).map_err(|e| e.in_index($idx))?,)+))
            }
        }
    )*};
}

tuples! {
    1 => (A.0);
    2 => (A.0, B.1);
    3 => (A.0, B.1, C.2);
    4 => (A.0, B.1, C.2, D.3);
    5 => (A.0, B.1, C.2, D.3, E.4);
    6 => (A.0, B.1, C.2, D.3, E.4, F.5);
    7 => (A.0, B.1, C.2, D.3, E.4, F.5, G.6);
    8 => (A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7);
    9 => (A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7, I.8);
    10 => (A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7, I.8, J.9);
    11 => (A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7, I.8, J.9, K.10);
    12 => (A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7, I.8, J.9, K.10, L.11);
}
