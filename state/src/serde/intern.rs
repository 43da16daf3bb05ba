//! Names and member lists of serde types, made `'static` once per process.
//!
//! The save's type table is keyed by static names and member lists (the
//! derive's `const FIELDS`). Serde gives each field name as a
//! `&'static str`, but a type's member list only one name at a time, and
//! an enum variant's payload type (`Enum::Variant`) has no static name at
//! all. Each distinct list or name is leaked here once: a program has
//! finitely many serde types, so this is bounded like the derive's
//! statics. Equal contents always get the same address, which the save's
//! address-keyed type cache relies on.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

type Lists = HashSet<&'static [&'static str]>;

fn lists() -> &'static Mutex<Lists> {
    static LISTS: OnceLock<Mutex<Lists>> = OnceLock::new();
    LISTS.get_or_init(Default::default)
}

fn names() -> &'static Mutex<HashSet<&'static str>> {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    NAMES.get_or_init(Default::default)
}

/// The one static copy of `members`.
pub(crate) fn list(members: &[&'static str]) -> &'static [&'static str] {
    // A panic while the lock was held cannot leave the set half-updated.
    let mut set = lists().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(&l) = set.get(members) {
        return l;
    }
    let l: &'static [&'static str] = Box::leak(members.to_vec().into_boxed_slice());
    set.insert(l);
    l
}

/// The one static copy of `name`.
pub(crate) fn name(name: &str) -> &'static str {
    let mut set = names().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(&n) = set.get(name) {
        return n;
    }
    let n: &'static str = Box::leak(name.to_owned().into_boxed_str());
    set.insert(n);
    n
}

/// The member list `"0", "1", …` of a tuple struct or tuple variant with
/// `n` fields (what the derive names them).
pub(crate) fn positions(n: usize) -> &'static [&'static str] {
    const SMALL: [&str; 16] = [
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15",
    ];
    let mut v: Vec<&'static str> = SMALL.iter().copied().take(n).collect();
    for i in SMALL.len()..n {
        v.push(self::name(&i.to_string()));
    }
    list(&v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_contents_share_one_address() {
        let a = list(&["x", "y"]);
        let owned = String::from("y");
        let y: &'static str = name(&owned);
        let b = list(&["x", y]);
        assert_eq!(a.as_ptr(), b.as_ptr());
        // A prefix is its own list, not a slice of a longer one: the save's
        // type cache keys by address only.
        let c = list(&["x"]);
        assert_ne!(a.as_ptr(), c.as_ptr());
        assert_eq!(positions(3), &["0", "1", "2"]);
        assert_eq!(positions(17)[16], "16");
        assert_ne!(positions(2).as_ptr(), positions(3).as_ptr());
    }
}
