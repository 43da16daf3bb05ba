//! Property tests: arbitrary values round-trip exactly, and encoding is
//! deterministic whatever the hash seed.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasherDefault;

use proptest::prelude::*;

type Value = (
    Vec<(u64, i32, String)>,
    Option<Vec<i16>>,
    BTreeMap<String, (bool, char)>,
    HashMap<u32, Vec<u8>>,
    Vec<Option<f64>>,
);

fn value() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec((any::<u64>(), any::<i32>(), ".{0,12}"), 0..8),
        prop::option::of(prop::collection::vec(any::<i16>(), 0..40)),
        prop::collection::btree_map(".{0,6}", (any::<bool>(), any::<char>()), 0..6),
        prop::collection::hash_map(
            any::<u32>(),
            prop::collection::vec(any::<u8>(), 0..20),
            0..6,
        ),
        prop::collection::vec(
            prop::option::of(any::<f64>().prop_filter("NaN != NaN", |f| !f.is_nan())),
            0..6,
        ),
    )
}

proptest! {
    #[test]
    fn values_round_trip(v in value()) {
        let bytes = stateify::to_vec(&v).unwrap();
        let back: Value = stateify::from_slice(&bytes).unwrap();
        prop_assert_eq!(&back, &v);
        prop_assert!(stateify::pretty::to_string(&bytes).is_ok());
        prop_assert!(stateify::from_slice::<Value>(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn hash_seed_does_not_change_the_bytes(entries in prop::collection::vec((".{0,8}", any::<u64>()), 0..30)) {
        let a: HashMap<String, u64> = entries.iter().cloned().collect();
        // Same entries, another hasher and insertion order.
        let mut b: HashMap<String, u64, BuildHasherDefault<rustc_hash::FxHasher>> = HashMap::default();
        for (k, v) in a.iter().collect::<BTreeMap<_, _>>().into_iter().rev() {
            b.insert(k.clone(), *v);
        }
        prop_assert_eq!(stateify::to_vec(&a).unwrap(), stateify::to_vec(&b).unwrap());
    }

    /// Keys that define a type (and so encode differently in the graph
    /// than alone) are sorted by their encoding alone too, whatever the
    /// hash seed; maps of every size, on the stack and off it.
    #[test]
    fn hash_seed_does_not_change_the_bytes_of_struct_keys(
        keys in prop::collection::hash_set((any::<u16>(), prop::option::of(".{0,4}")), 0..40)
    ) {
        let a: HashMap<Key, u32> = keys
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, (n, tag))| (Key { n, tag }, i as u32))
            .collect();
        let mut b: HashMap<Key, u32, BuildHasherDefault<rustc_hash::FxHasher>> = HashMap::default();
        for (k, v) in a.iter().collect::<Vec<_>>().into_iter().rev() {
            b.insert(k.clone(), *v);
        }
        let bytes = stateify::to_vec(&a).unwrap();
        prop_assert_eq!(&bytes, &stateify::to_vec(&b).unwrap());
        let back: HashMap<Key, u32> = stateify::from_slice(&bytes).unwrap();
        prop_assert_eq!(back, a);
    }
}

#[derive(stateify::Stateify, Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    n: u16,
    tag: Option<String>,
}
