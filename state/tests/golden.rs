//! The worked example of docs/FORMAT.md, byte for byte. If this test fails,
//! the format changed: old checkpoints would no longer load. Bump the graph
//! version and keep a reader for the old one instead of editing the bytes.

mod common;

use std::rc::Rc;

use common::stateify_struct;

#[derive(Debug, PartialEq)]
struct P {
    x: u32,
    tag: Rc<String>,
}
stateify_struct!(P { x: u32, tag: Rc<String> });

#[rustfmt::skip]
const EXAMPLE: &[u8] = &[
    // record header: varint(len | 1 << 63), always 10 bytes for a graph
    0x9b, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
    0x01,                   // graph format version 1
    0x0c, 0x02,             // SEQ, 2 elements
    0x11, 0x00,             // STRUCT, type #0 (new: definition follows)
    0x01, b'P',             //   name "P"
    0x02, 0x01, b'x', 0x03, b't', b'a', b'g', // 2 fields: "x", "tag"
    0x03, 0xac, 0x02,       //   x: UINT varint 300
    0x14,                   //   tag: OBJ #0
    0x09, 0x02, b'h', b'i', //     STR "hi"
    0x11, 0x00,             // STRUCT, type #0 (known)
    0x87,                   //   x: small integer 7
    0x16, 0x00,             //   tag: REF #0
];

fn example() -> Vec<P> {
    let tag = Rc::new("hi".to_string());
    vec![
        P {
            x: 300,
            tag: tag.clone(),
        },
        P { x: 7, tag },
    ]
}

#[test]
fn worked_example_matches_format_md() {
    let bytes = stateify::to_vec(&example()).unwrap();
    assert_eq!(bytes, EXAMPLE, "{bytes:02x?}");
    let back: Vec<P> = stateify::from_slice(EXAMPLE).unwrap();
    assert_eq!(back, example());
    assert!(Rc::ptr_eq(&back[0].tag, &back[1].tag));
}

#[test]
fn worked_example_pretty_matches_format_md() {
    let text = stateify::pretty::to_string(EXAMPLE).unwrap();
    let expected = "graph #0 (27 bytes at 0): [
  P {
    x: 300,
    tag: #0 = \"hi\",
  },
  P {
    x: 7,
    tag: &#0,
  },
]
";
    assert_eq!(text, expected);
}
