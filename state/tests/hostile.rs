//! Hostile and corrupt input: lengths larger than the input, deep nesting,
//! random and mutated bytes. Every case must end in an `Err` (or a value),
//! never a panic, a hang, a stack overflow or a huge allocation.

mod common;

use std::collections::HashMap;
use std::rc::Rc;

use common::stateify_struct;
use proptest::prelude::*;
use stateify::{wire, ErrorKind};

fn record(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    stateify::write_header(&mut out, body.len() as u64 + 1, true).unwrap();
    out.push(1);
    out.extend_from_slice(body);
    out
}

#[test]
fn lengths_beyond_the_input_fail_before_allocating() {
    let huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f];
    for tag in [wire::STR, wire::SEQ, wire::MAP] {
        let mut body = vec![tag];
        body.extend_from_slice(&huge);
        let bytes = record(&body);
        assert!(stateify::from_slice::<Vec<String>>(&bytes).is_err());
        assert!(stateify::from_slice::<String>(&bytes).is_err());
        assert!(stateify::from_slice::<HashMap<u8, u8>>(&bytes).is_err());
        assert!(stateify::pretty::to_string(&bytes).is_err());
    }
    let mut body = vec![wire::PACKED, wire::Packed::U64 as u8];
    body.extend_from_slice(&huge);
    let err = stateify::from_slice::<Vec<u64>>(&record(&body)).unwrap_err();
    assert!(err.to_string().contains("needs at least"), "{err}");
}

#[test]
fn record_length_beyond_the_input_is_truncation() {
    let mut bytes = Vec::new();
    stateify::write_header(&mut bytes, 1 << 60, true).unwrap();
    bytes.extend_from_slice(&[1, wire::UNIT]);
    let err = stateify::from_slice::<()>(&bytes).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Truncated), "{err}");
    // Streaming: the body buffer grows only with bytes that arrive.
    let err = stateify::load::<(), _>(&bytes[..]).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Truncated), "{err}");
    assert_eq!(err.offset(), Some(12));
}

#[derive(Debug, PartialEq)]
struct Nest {
    inner: Vec<Nest>,
}
stateify_struct!(Nest { inner: Vec<Nest> });

fn nested_seqs(depth: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(depth * 2 + 1);
    for _ in 0..depth {
        body.extend_from_slice(&[wire::SEQ, 1]);
    }
    body.push(wire::UNIT);
    record(&body)
}

#[test]
fn deep_nesting_is_bounded() {
    // Deep but within the limit: the printer walks it on heap-grown stacks.
    let text = stateify::pretty::to_string(&nested_seqs(200_000));
    assert!(text.is_ok());
    // Beyond the limit: a clean error from the printer and the loader.
    let bytes = nested_seqs(stateify::DEFAULT_MAX_DEPTH + 1);
    let err = stateify::pretty::to_string(&bytes).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::DepthLimit(_)), "{err}");
    let err = stateify::from_slice::<Vec<Vec<Vec<()>>>>(&bytes).unwrap_err();
    assert!(
        err.to_string().contains("expected unit, found sequence"),
        "{err}"
    );

    // A recursive type: deep input is loaded or refused, never a crash.
    let mut deep = Nest { inner: vec![] };
    for _ in 0..100_000 {
        deep = Nest { inner: vec![deep] };
    }
    let bytes = stateify::to_vec(&deep).unwrap();
    // Owned nesting is capped far below the overall depth by default…
    let err = stateify::from_slice::<Nest>(&bytes).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::OwnedDepthLimit(stateify::DEFAULT_MAX_OWNED_DEPTH)
        ),
        "{err}"
    );
    assert!(err.to_string().contains("max_owned_depth"), "{err}");
    // …and the overall limit still applies when the owned one is raised.
    let load = |max_depth, max_owned_depth| {
        let opts = stateify::LoadOptions {
            max_depth,
            max_owned_depth,
            ..Default::default()
        };
        stateify::from_slice_with_options::<Nest>(&bytes, &mut stateify::Resources::new(), &opts)
    };
    let err = load(50_000, usize::MAX).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::DepthLimit(50_000)), "{err}");
    let (back, _) = load(stateify::DEFAULT_MAX_DEPTH, usize::MAX).unwrap();
    // Tear both down iteratively.
    for mut n in [deep, back] {
        while let Some(next) = n.inner.pop() {
            n = next;
        }
    }
}

/// A value built right up to the owned-depth limit and then rejected (a later
/// field is of the wrong type) is dropped by the loader on an ordinary 2 MiB
/// thread stack.
#[test]
fn a_rejected_value_at_the_owned_limit_drops_without_overflow() {
    let mut deep = Nest { inner: vec![] };
    for _ in 0..stateify::DEFAULT_MAX_OWNED_DEPTH {
        deep = Nest { inner: vec![deep] };
    }
    let bytes = stateify::to_vec(&(deep, "not a number".to_string())).unwrap();
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            // The deepest that loads: each level nests a struct and a vector.
            let err = stateify::from_slice::<(Nest, u32)>(&bytes).unwrap_err();
            assert!(matches!(err.kind(), ErrorKind::OwnedDepthLimit(_)), "{err}");
            let mut shallower = bytes.clone();
            // Cut the chain to half the limit by loading a prefix type: two
            // levels per `Nest`, so `limit / 2 - 1` levels load, then fail.
            let mut half = Nest { inner: vec![] };
            for _ in 0..stateify::DEFAULT_MAX_OWNED_DEPTH / 2 - 2 {
                half = Nest { inner: vec![half] };
            }
            shallower.clear();
            stateify::save(&mut shallower, &(half, "not a number".to_string())).unwrap();
            let err = stateify::from_slice::<(Nest, u32)>(&shallower).unwrap_err();
            assert!(err.to_string().contains("expected u32"), "{err}");
        })
        .unwrap()
        .join()
        .expect("the rejected value dropped without overflowing the stack");
}

#[test]
fn references_of_the_wrong_type_are_errors() {
    let a = Rc::new(5u32);
    let bytes = stateify::to_vec(&(a.clone(), a)).unwrap();
    let err = stateify::from_slice::<(Rc<u32>, Rc<u64>)>(&bytes).unwrap_err();
    assert!(
        err.to_string().contains("object #0 of another type"),
        "{err}"
    );
    let err = stateify::from_slice::<(Rc<u32>, std::rc::Weak<u64>)>(&bytes).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("root[1]: expected weak reference"),
        "{err}"
    );
}

#[test]
fn unknown_tags_and_bad_versions() {
    let err = stateify::from_slice::<u8>(&record(&[0x1f])).unwrap_err();
    assert!(
        err.to_string().contains("expected u8, found unknown tag"),
        "{err}"
    );
    assert!(stateify::pretty::to_string(&record(&[0x1f])).is_err());
    let mut bytes = stateify::to_vec(&1u8).unwrap();
    bytes[10] = 9;
    let err = stateify::from_slice::<u8>(&bytes).unwrap_err();
    assert!(err.to_string().contains("graph format version 9"), "{err}");
}

#[derive(Debug, PartialEq)]
struct Mixed {
    name: String,
    ids: Vec<u32>,
    map: HashMap<String, Option<i64>>,
    shared: Vec<Rc<String>>,
}
stateify_struct!(Mixed { name: String, ids: Vec<u32>, map: HashMap<String, Option<i64>>, shared: Vec<Rc<String>> });

fn sample() -> Vec<u8> {
    let s = Rc::new("shared".to_string());
    stateify::to_vec(&Mixed {
        name: "n".into(),
        ids: vec![1, 2, 3],
        map: [("a".to_string(), Some(-5)), ("b".to_string(), None)]
            .into_iter()
            .collect(),
        shared: vec![s.clone(), s],
    })
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let bytes = record(&body);
        let _ = stateify::from_slice::<Mixed>(&bytes);
        let _ = stateify::from_slice::<Vec<Option<(u8, String)>>>(&bytes);
        let _ = stateify::pretty::to_string(&bytes);
        let _ = stateify::pretty::to_string(&body);
    }

    #[test]
    fn mutated_valid_input_never_panics(pos in 0usize..1000, byte in any::<u8>(), cut in 0usize..1000) {
        let mut bytes = sample();
        let p = pos % bytes.len();
        bytes[p] = byte;
        let _ = stateify::from_slice::<Mixed>(&bytes);
        let _ = stateify::pretty::to_string(&bytes);
        let c = cut % bytes.len();
        prop_assert!(stateify::from_slice::<Mixed>(&sample()[..c]).is_err());
    }
}

/// A struct whose type and field names are 10,000 bytes long.
struct LongNames(u8);

fn long_name(c: char) -> &'static str {
    Box::leak(
        std::iter::repeat_n(c, 10_000)
            .collect::<String>()
            .into_boxed_str(),
    )
}

thread_local! {
    static NAMES: (&'static str, &'static [&'static str]) =
        (long_name('T'), Box::leak(Box::new([long_name('f')])));
}

impl stateify::Stateify for LongNames {
    fn save(&self, s: &mut stateify::Saver) -> Result<(), stateify::Error> {
        let (ty, fields) = NAMES.with(|n| *n);
        s.save_struct(ty, fields, |s| s.field(fields[0], &self.0))
    }
    fn load(_: &mut stateify::Loader) -> Result<Self, stateify::Error> {
        unreachable!("only printed")
    }
}

/// Names are defined once and referred to by a varint: the printer cuts them,
/// so a stream repeating one long name cannot amplify into huge output.
#[test]
fn pretty_output_is_linear_in_the_input() {
    let v: Vec<LongNames> = (0..2000).map(|i| LongNames(i as u8)).collect();
    let bytes = stateify::to_vec(&v).unwrap();
    let text = stateify::pretty::to_string(&bytes).unwrap();
    assert!(
        text.len() < 16 * bytes.len(),
        "{} bytes of text from {} bytes of input",
        text.len(),
        bytes.len()
    );
    assert!(text.contains("TTTT…"), "{}", &text[..200]);
}
