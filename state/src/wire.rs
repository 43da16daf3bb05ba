//! The tags of the graph encoding (see `docs/FORMAT.md` for the full layout).
//!
//! Every value starts with one tag byte, so a reader with no Rust types can
//! walk (print, skip, diff) any graph. Tags `0x80..=0xff` are small unsigned
//! integers `0..=127` inlined into the tag.

/// The newest graph format version, written at the start of a graph
/// record that uses its features (forward references). A graph that needs
/// none is written as [`GRAPH_VERSION_1`], byte for byte what version 1
/// wrote, so older readers still load it.
pub const GRAPH_VERSION: u8 = 2;
/// The first graph format version.
pub const GRAPH_VERSION_1: u8 = 1;

pub const UNIT: u8 = 0x00;
pub const FALSE: u8 = 0x01;
pub const TRUE: u8 = 0x02;
/// varint: an unsigned integer (or a non-negative signed one).
pub const UINT: u8 = 0x03;
/// varint n: the negative integer `-1 - n`.
pub const NINT: u8 = 0x04;
/// 8 bytes LE: an unsigned integer ≥ 2^56 (shorter than its varint).
pub const U64: u8 = 0x05;
/// 4 bytes LE: f32 bits.
pub const F32: u8 = 0x06;
/// 8 bytes LE: f64 bits.
pub const F64: u8 = 0x07;
/// varint: a Unicode scalar value.
pub const CHAR: u8 = 0x08;
/// varint length + UTF-8 bytes.
pub const STR: u8 = 0x09;
/// 16 bytes LE: a u128 that does not fit a u64.
pub const U128: u8 = 0x0a;
/// 16 bytes LE: an i128 (two's complement) that does not fit an i64.
pub const I128: u8 = 0x0b;
/// varint count + values.
pub const SEQ: u8 = 0x0c;
/// varint count + (key, value) pairs, sorted by encoded key for hash maps.
pub const MAP: u8 = 0x0d;
/// varint count + values (tuples, fixed groups).
pub const TUPLE: u8 = 0x0e;
pub const NONE: u8 = 0x0f;
/// + value.
pub const SOME: u8 = 0x10;
/// varint type id [+ type definition if new] + one value per field.
pub const STRUCT: u8 = 0x11;
/// varint type id [+ type definition if new] + varint variant index + value.
pub const VARIANT: u8 = 0x12;
/// element kind byte + varint count + count × size raw LE bytes.
pub const PACKED: u8 = 0x13;
/// A shared object defined here (id = number of objects before it) + value.
pub const OBJ: u8 = 0x14;
/// As OBJ, but weak references to it occur inside its own value.
pub const OBJ_CYCLIC: u8 = 0x15;
/// varint id: a strong reference to an object defined earlier.
pub const REF: u8 = 0x16;
/// + OBJ/OBJ_CYCLIC/REF: a live weak reference.
pub const WEAK: u8 = 0x17;
/// A weak reference whose target was gone at save time.
pub const WEAK_DEAD: u8 = 0x18;
/// varint type id [+ definition] + value: a trait object of a named concrete type.
pub const DYN: u8 = 0x19;
/// varint type id [+ plain definition if new] + varint count + count ×
/// record size raw LE bytes: a sequence of plain structs.
pub const PACKED_STRUCTS: u8 = 0x1a;
/// After WEAK (version 2): a weak reference that announces a new object
/// (id = number of objects before it) whose value comes later, in a DEF.
pub const FWD: u8 = 0x1b;
/// varint id + value (version 2): the value of an object announced by FWD,
/// where a strong reference to it is expected, or after the root value.
pub const DEF: u8 = 0x1c;
/// First of the small-integer tags.
pub const SMALL: u8 = 0x80;

/// Element kinds of packed arrays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Packed {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    U64 = 6,
    I64 = 7,
    U128 = 8,
    I128 = 9,
    F32 = 10,
    F64 = 11,
}

impl Packed {
    pub fn from_byte(b: u8) -> Option<Packed> {
        use Packed::*;
        Some(match b {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => U64,
            7 => I64,
            8 => U128,
            9 => I128,
            10 => F32,
            11 => F64,
            _ => return None,
        })
    }

    pub const fn size(self) -> usize {
        use Packed::*;
        match self {
            U8 | I8 => 1,
            U16 | I16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 => 8,
            U128 | I128 => 16,
        }
    }

    pub fn name(self) -> &'static str {
        use Packed::*;
        match self {
            U8 => "u8",
            I8 => "i8",
            U16 => "u16",
            I16 => "i16",
            U32 => "u32",
            I32 => "i32",
            U64 => "u64",
            I64 => "i64",
            U128 => "u128",
            I128 => "i128",
            F32 => "f32",
            F64 => "f64",
        }
    }
}

/// A human name for a tag, for "expected X, found Y" messages.
pub fn tag_name(tag: u8) -> &'static str {
    match tag {
        UNIT => "unit",
        FALSE | TRUE => "bool",
        UINT | U64 | SMALL..=0xff => "unsigned integer",
        NINT => "negative integer",
        F32 => "f32",
        F64 => "f64",
        CHAR => "char",
        STR => "string",
        U128 => "u128",
        I128 => "i128",
        SEQ => "sequence",
        MAP => "map",
        TUPLE => "tuple",
        NONE => "None",
        SOME => "Some",
        STRUCT => "struct",
        VARIANT => "enum variant",
        PACKED => "packed array",
        OBJ | OBJ_CYCLIC => "shared object",
        REF => "object reference",
        WEAK | WEAK_DEAD => "weak reference",
        DYN => "trait object",
        PACKED_STRUCTS => "packed struct array",
        FWD => "announced object",
        DEF => "value of an announced object",
        _ => "unknown tag",
    }
}
