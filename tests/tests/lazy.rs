//! `stateify::value::Lazy` (random access to a graph record) shows the same
//! tree as the full `decode`, on every graph record of every corpus
//! version: scalars, structs, maps, packed structs, trait objects, shared
//! objects with weak back-edges and forward references.

use stateify::value::{decode, Kind, Lazy, Link, Loc, Node, Value};

/// Checks that `loc` in the lazy view is `v` of the decoded tree; returns
/// how many values it compared.
fn same(lazy: &Lazy<'_>, loc: Loc, v: &Value<'_>, at: &str) -> usize {
    // The wrappers that add no level of path, except a unit variant, which
    // is a leaf of its own.
    let mut cur = v;
    loop {
        match cur {
            Value::Some(x) | Value::Dyn { value: x, .. } => cur = x,
            Value::Variant { value, .. } if **value != Value::Unit => cur = value,
            _ => break,
        }
    }
    let node = lazy.node(loc).unwrap_or_else(|e| panic!("{at}: {e}"));
    let object = |id: u64, value: &Value<'_>| {
        let obj = lazy
            .object(id)
            .unwrap_or_else(|| panic!("{at}: no object {id}"));
        same(lazy, obj, value, &format!("{at} (object #{id})"))
    };
    match (cur, &node) {
        (Value::Object { id, value, .. }, Node::Link(Link::Object { id: l, weak: false })) => {
            assert_eq!(id, l, "{at}");
            1 + object(*id, value)
        }
        (Value::Ref(id), Node::Link(Link::Object { id: l, .. })) => {
            assert_eq!(id, l, "{at}");
            1
        }
        (Value::Weak(x), Node::Link(Link::Object { id: l, weak: true })) => match &**x {
            Value::Object { id, value, .. } => {
                assert_eq!(id, l, "{at}");
                1 + object(*id, value)
            }
            Value::Ref(id) => {
                assert_eq!(id, l, "{at}");
                1
            }
            other => panic!("{at}: weak to {other:?}"),
        },
        (Value::WeakDead, Node::Link(Link::DeadWeak)) => 1,
        (Value::Struct { .. } | Value::Seq(_) | Value::Tuple(_) | Value::Map(_), _) => {
            let want = cur.children();
            let Node::Dir { len, .. } = node else {
                panic!("{at}: {node:?} for {cur:?}");
            };
            assert_eq!(len, want.len(), "{at}");
            let got = lazy.children(loc).unwrap_or_else(|e| panic!("{at}: {e}"));
            assert_eq!(got.len(), want.len(), "{at}");
            let mut n = 1;
            for (c, (wn, wv)) in got.iter().zip(&want) {
                assert_eq!(c.name.to_string(), *wn, "{at}");
                let kind = match lazy.node(c.loc).unwrap() {
                    Node::Leaf(_) => Kind::Leaf,
                    Node::Dir { .. } => Kind::Dir,
                    Node::Link(_) => Kind::Link,
                };
                assert_eq!(c.kind, kind, "{at}/{wn}");
                n += same(lazy, c.loc, wv, &format!("{at}/{wn}"));
            }
            // Windows of two children, from the mark before them, are the
            // same children.
            let marks = lazy.marks(loc, 3).unwrap();
            for first in 0..=got.len() {
                let window = lazy.children_from(loc, first, 2, Some(&marks)).unwrap();
                assert_eq!(window[..], got[first..(first + 2).min(got.len())], "{at}");
            }
            n
        }
        (leaf, Node::Leaf(got)) => {
            assert_eq!(got, leaf, "{at}");
            assert!(lazy.children(loc).unwrap().is_empty(), "{at}");
            1
        }
        (want, got) => panic!("{at}: {got:?} for {want:?}"),
    }
}

#[test]
fn lazy_view_matches_the_decoded_tree_on_every_corpus_graph() {
    let mut graphs = 0;
    let mut values = 0;
    let mut objects = 0;
    for (_, dir) in stateify_tests::versions().unwrap() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            let ext = path.extension().and_then(|x| x.to_str()).unwrap_or("");
            if !matches!(ext, "graph" | "stream" | "meta") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let (len, object, h) = stateify::decode_header(rest).unwrap();
                let body = &rest[h..h + len as usize];
                rest = &rest[h + len as usize..];
                if !object {
                    continue;
                }
                let g = decode(body, 4096).unwrap();
                let lazy = Lazy::new(body, 4096).unwrap();
                let at = path.display().to_string();
                assert_eq!(lazy.objects(), g.objects, "{at}");
                values += same(&lazy, lazy.root(), &g.root, &at);
                // Objects defined after the root are reachable by id.
                for d in &g.deferred {
                    let Value::Object { id, value, .. } = d else {
                        panic!("{at}: deferred {d:?}");
                    };
                    values += same(&lazy, lazy.object(*id).unwrap(), value, &at);
                }
                objects += g.objects;
                graphs += 1;
            }
        }
    }
    assert!(graphs >= 40, "only {graphs} graphs in the corpus");
    assert!(
        values > 1000 && objects > 20,
        "{values} values, {objects} objects"
    );
}

#[test]
fn lazy_refuses_what_decode_refuses() {
    // A reference to an object never defined, and a body cut short.
    let five = std::rc::Rc::new(5u8);
    let bytes = stateify::to_vec(&vec![five.clone(), five]).unwrap();
    let (len, _, h) = stateify::decode_header(&bytes).unwrap();
    let body = &bytes[h..h + len as usize];
    assert!(Lazy::new(body, 100).is_ok());
    for cut in 0..body.len() {
        assert!(Lazy::new(&body[..cut], 100).is_err(), "cut at {cut}");
    }
    let mut bad = body.to_vec();
    let last = bad.len() - 1;
    bad[last] = 7; // REF #0 becomes REF #7
    let e = Lazy::new(&bad, 100).err().unwrap().to_string();
    assert!(e.contains("undefined object #7"), "{e}");
    // Offsets that are not values are errors, not panics.
    let lazy = Lazy::new(body, 100).unwrap();
    assert!(lazy.node(Loc::Value(body.len() as u64)).is_err());
    assert!(lazy.children(Loc::Value(u64::MAX)).is_err());
    assert!(lazy.node(Loc::Plain { at: 0, ty: 9 }).is_err());
}

#[test]
fn flipped_graphs_that_index_can_be_walked_without_a_panic() {
    let dir = stateify_tests::golden_dir().join("v6");
    let mut indexed = 0;
    for name in [
        "forward.graph",
        "packed.graph",
        "sharing.graph",
        "traitobj.graph",
        "collections.graph",
    ] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let (len, _, h) = stateify::decode_header(&bytes).unwrap();
        let body = &bytes[h..h + len as usize];
        for i in 0..body.len() {
            for bit in [0x01u8, 0x80] {
                let mut b = body.to_vec();
                b[i] ^= bit;
                let Ok(lazy) = Lazy::new(&b, 64) else {
                    continue;
                };
                indexed += 1;
                let mut seen = std::collections::HashSet::new();
                stateify_tests::fuzz::walk_lazy(&lazy, lazy.root(), &mut seen, &mut 10_000);
            }
        }
    }
    assert!(indexed > 100, "only {indexed} flipped graphs indexed");
}
