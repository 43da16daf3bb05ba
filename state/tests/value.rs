//! The type-free tree: values, paths, type statistics, depth limit.

use std::collections::BTreeMap;
use std::rc::Rc;

use stateify::value::{decode, Value};
use stateify::Stateify;

#[derive(Stateify)]
enum Phase {
    Listen,
    Open(u16),
}

#[derive(Stateify)]
struct Endpoint {
    port: u16,
    phase: Phase,
    peers: BTreeMap<String, Option<i64>>,
    blob: Vec<u8>,
}

fn body(bytes: &[u8]) -> &[u8] {
    let (len, object, h) = stateify::decode_header(bytes).unwrap();
    assert!(object);
    &bytes[h..h + len as usize]
}

#[test]
fn paths_types_and_sharing() {
    let shared = Rc::new(Endpoint {
        port: 80,
        phase: Phase::Open(3),
        peers: BTreeMap::from([("a".to_string(), Some(-5)), ("b".to_string(), None)]),
        blob: vec![1, 2, 3],
    });
    let listen = Endpoint {
        port: 81,
        phase: Phase::Listen,
        peers: BTreeMap::new(),
        blob: vec![],
    };
    let bytes = stateify::to_vec(&(shared.clone(), shared, listen)).unwrap();
    let g = decode(body(&bytes), 1000).unwrap();
    assert_eq!(g.objects, 1);
    let kids = g.root.children();
    assert_eq!(kids.len(), 3);
    assert!(matches!(kids[0].1, Value::Object { id: 0, .. }));
    assert_eq!(kids[1].1, &Value::Ref(0));
    let ep: Vec<(String, String)> = kids[0]
        .1
        .children()
        .into_iter()
        .map(|(n, v)| (n, v.scalar_text()))
        .collect();
    assert_eq!(ep[0], ("port".into(), "80".into()));
    assert_eq!(ep[1].1, "Phase::Open");
    assert_eq!(ep[3].1, "[u8; 3] 0x010203");
    let peers = kids[0].1.children()[2].1.children();
    assert_eq!(peers[0].0, "a");
    assert_eq!(peers[0].1.inner(), &Value::Int(-5));
    assert_eq!(peers[1].1, &Value::None);
    assert_eq!(g.types["Endpoint"].count, 2);
    assert_eq!(g.types["Phase"].count, 2);
    assert!(g.types["Endpoint"].bytes > g.types["Phase"].bytes);
}

#[test]
fn nesting_beyond_the_limit_is_an_error() {
    let mut v: Vec<Vec<Vec<Vec<u8>>>> = vec![vec![vec![vec![1]]]];
    v.push(vec![]);
    let bytes = stateify::to_vec(&v).unwrap();
    assert!(decode(body(&bytes), 10).is_ok());
    assert!(decode(body(&bytes), 2).is_err());
}
