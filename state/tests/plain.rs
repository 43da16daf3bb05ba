//! `#[state(plain)]`: sequences of number-only structs as one packed struct
//! array — round trips through every sequence type, the byte layout, a Rust
//! layout that differs from the stream's, old streams, layout mismatches,
//! the type-free readers, and hostile input.

#[allow(unused_imports)]
mod common;

use std::collections::VecDeque;

use common::round_trip;
use stateify::plain::Plain;
use stateify::Stateify;

#[derive(Stateify, Debug, Clone, Copy, PartialEq)]
#[state(plain)]
struct Vertex {
    pos: [f32; 3],
    color: u32,
}

/// Rust packs this as b, a, c (no padding that way); the stream keeps the
/// declaration order, so loads and saves shuffle fields.
#[derive(Stateify, Debug, Clone, Copy, PartialEq)]
#[state(plain)]
struct Shuffled {
    a: u16,
    b: u32,
    c: i16,
}

#[derive(Stateify, Debug, Clone, Copy, PartialEq)]
#[state(plain, type_name = "Px")]
struct Pixel(u8, u8, u8, #[state(rename = "alpha")] u8);

#[derive(Stateify, Debug, Clone, Copy, PartialEq)]
#[state(plain)]
struct Wide {
    big: u128,
    neg: i128,
    m: [[f64; 2]; 2],
    small: [i8; 0],
    one: [i64; 1],
    two: i64,
}

fn vertices(n: usize) -> Vec<Vertex> {
    (0..n)
        .map(|i| Vertex {
            pos: [i as f32, -(i as f32) / 3.0, (i as f32).sqrt()],
            color: (i as u32).wrapping_mul(2_654_435_761),
        })
        .collect()
}

#[test]
fn sequences_round_trip() {
    round_trip(&vertices(0));
    round_trip(&vertices(1));
    round_trip(&vertices(1000));
    round_trip(&vertices(50).into_iter().collect::<VecDeque<_>>());
    round_trip(&vertices(7).into_boxed_slice());
    let arr: [Vertex; 3] = vertices(3).try_into().unwrap();
    round_trip(&arr);
    round_trip(&Some(vec![Pixel(1, 2, 3, 255); 9]));
    round_trip(&vec![
        Wide {
            big: u128::MAX,
            neg: i128::MIN,
            m: [[0.25, -0.0], [f64::INFINITY, 1.5]],
            small: [],
            one: [i64::MIN],
            two: -1,
        };
        3
    ]);
    // A single plain value is an ordinary struct.
    round_trip(&Vertex {
        pos: [1.0, 2.0, 3.0],
        color: 9,
    });
}

#[test]
fn nan_payloads_survive_bit_exact() {
    let mut v = vertices(20);
    for (i, x) in v.iter_mut().enumerate() {
        x.pos[2] = f32::from_bits(0x7fc0_0001 + i as u32);
    }
    let back: Vec<Vertex> = stateify::from_slice(&stateify::to_vec(&v).unwrap()).unwrap();
    for (a, b) in v.iter().zip(&back) {
        assert_eq!(a.pos.map(f32::to_bits), b.pos.map(f32::to_bits));
    }
}

// `Vertex` is copied as it is; `Shuffled` field by field, which the next
// test needs to exercise.
const _: () = assert!(<Vertex as Plain>::SAME_AS_WIRE);
const _: () = assert!(!<Shuffled as Plain>::SAME_AS_WIRE);

#[test]
fn records_are_declaration_order_little_endian() {
    let v = vec![
        Shuffled {
            a: 0x0102,
            b: 0x0304_0506,
            c: -2,
        },
        Shuffled { a: 7, b: 8, c: 9 },
    ];
    let bytes = round_trip(&v);
    let records = [
        0x02, 0x01, 0x06, 0x05, 0x04, 0x03, 0xfe, 0xff, //
        7, 0, 8, 0, 0, 0, 9, 0,
    ];
    assert!(bytes.ends_with(&records), "{bytes:02x?}");
    // One tag and one type definition, then the count and the records.
    let def_and_count = bytes.len() - records.len();
    assert!(def_and_count < 40, "{def_and_count} bytes of overhead");
}

#[test]
fn type_free_readers_see_structs() {
    // The same data as ordinary structs prints the same.
    mod ordinary {
        #[derive(stateify::Stateify)]
        #[state(type_name = "Shuffled")]
        pub struct Shuffled {
            pub a: u16,
            pub b: u32,
            pub c: i16,
        }
    }
    let plain = vec![Shuffled { a: 1, b: 2, c: -3 }; 2];
    let ord = vec![
        ordinary::Shuffled { a: 1, b: 2, c: -3 },
        ordinary::Shuffled { a: 1, b: 2, c: -3 },
    ];
    let p = stateify::pretty::to_string(&stateify::to_vec(&plain).unwrap()).unwrap();
    let o = stateify::pretty::to_string(&stateify::to_vec(&ord).unwrap()).unwrap();
    let body = |s: &str| s.split_once('\n').unwrap().1.to_owned();
    assert_eq!(body(&p), body(&o));
    assert!(p.contains("c: -3"), "{p}");

    let bytes = stateify::to_vec(&vertices(2)).unwrap();
    let (len, _, h) = stateify::decode_header(&bytes).unwrap();
    let g = stateify::value::decode(&bytes[h..h + len as usize], 100).unwrap();
    let stateify::value::Value::Seq(items) = &g.root else {
        panic!("{:?}", g.root)
    };
    assert_eq!(items.len(), 2);
    assert!(
        matches!(&items[1], stateify::value::Value::Struct { name: "Vertex", fields }
        if fields[1] == ("color", stateify::value::Value::Int(2_654_435_761)))
    );
    assert_eq!(g.types["Vertex"].count, 2);
    let text = stateify::pretty::to_string(&bytes).unwrap();
    assert!(text.contains("Vertex"), "{text}");
}

#[test]
fn loads_sequences_saved_before_the_type_was_plain() {
    mod before {
        #[derive(stateify::Stateify)]
        #[state(type_name = "Shuffled")]
        pub struct Shuffled {
            pub c: i16,
            pub a: u16,
            pub b: u32,
        }
    }
    let old = vec![before::Shuffled { c: 5, a: 6, b: 7 }];
    let back: Vec<Shuffled> = stateify::from_slice(&stateify::to_vec(&old).unwrap()).unwrap();
    assert_eq!(back, vec![Shuffled { a: 6, b: 7, c: 5 }]);
}

#[test]
fn a_different_layout_is_an_error_naming_both() {
    mod other {
        #[derive(stateify::Stateify)]
        #[state(plain, type_name = "Vertex")]
        pub struct Vertex {
            pub pos: [f32; 2],
            pub color: u32,
        }
    }
    let bytes = stateify::to_vec(&vec![other::Vertex {
        pos: [1.0, 2.0],
        color: 3,
    }])
    .unwrap();
    let err = stateify::from_slice::<Vec<Vertex>>(&bytes).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("pos: [f32; 3], color: u32"), "{msg}");
    assert!(msg.contains("pos: [f32; 2], color: u32"), "{msg}");
    assert!(err.offset().is_some(), "{msg}");
    // A non-plain reader gets a clear mismatch, not garbage.
    mod ordinary {
        #[derive(stateify::Stateify, Debug)]
        pub struct Vertex {
            pub pos: [f32; 3],
            pub color: u32,
        }
    }
    let bytes = stateify::to_vec(&vertices(3)).unwrap();
    let err = stateify::from_slice::<Vec<ordinary::Vertex>>(&bytes).unwrap_err();
    assert!(err.to_string().contains("packed struct array"), "{err}");
}

#[test]
fn statistics_count_every_element() {
    let (_, stats) = stateify::to_vec_with_options(&vertices(123), &Default::default()).unwrap();
    let vertex = stats.types.iter().find(|t| t.name == "Vertex").unwrap();
    assert_eq!(vertex.count, 123);
}

/// A graph record around a hand-made payload.
fn record(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    stateify::write_header(&mut out, payload.len() as u64 + 1, true).unwrap();
    out.push(1); // graph format version
    out.extend_from_slice(payload);
    out
}

/// `PACKED_STRUCTS`, type 0 defined as `name` with one member.
fn def(name: &str, member: &str, kind: u8, shape: &[u8]) -> Vec<u8> {
    let mut p = vec![0x1a, 0, name.len() as u8];
    p.extend_from_slice(name.as_bytes());
    p.push(1);
    p.push(member.len() as u8);
    p.extend_from_slice(member.as_bytes());
    p.push(kind);
    p.extend_from_slice(shape);
    p
}

#[test]
fn hostile_definitions_and_counts_fail_cleanly() {
    // Empty record: a count could claim anything from no bytes.
    let mut p = def("E", "x", 4, &[1]); // [u32; 0]
    p.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    let err = stateify::pretty::to_string(&record(&p)).unwrap_err();
    assert!(err.to_string().contains("empty record"), "{err}");
    // Unknown number kind.
    let p = def("E", "x", 99, &[0]);
    let err = stateify::pretty::to_string(&record(&p)).unwrap_err();
    assert!(err.to_string().contains("unknown number kind"), "{err}");
    // A huge array shape.
    let p = def(
        "E",
        "x",
        11,
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
    );
    let err = stateify::pretty::to_string(&record(&p)).unwrap_err();
    assert!(err.to_string().contains("record over"), "{err}");
    // A count larger than the bytes that follow: an error before allocating.
    let mut p = def("Vertex", "pos", 10, &[4]);
    p.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0]);
    assert!(stateify::pretty::to_string(&record(&p)).is_err());
    assert!(stateify::from_slice::<Vec<Vertex>>(&record(&p)).is_err());
}
