//! The entry points of the fuzz targets (`fuzz/`, cargo-fuzz), one per
//! input surface, shared with the stable replay test
//! (`tests/tests/fuzz_replay.rs`) that runs every committed corpus input and
//! crash reproducer through the same code.
//!
//! Each entry takes arbitrary bytes and must return, whatever they are:
//! no panic, no hang, no allocation out of proportion to the input. What
//! the input decodes to is thrown away; reading it is the test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Cursor, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::corpus::{self, Files, KEY};

/// What a target runs on each input.
pub type Run = fn(&[u8]);

/// The input surfaces, by target name (the folder under `fuzz/corpus/`).
pub const TARGETS: &[(&str, Run)] = &[
    ("graph", graph),
    ("pretty", pretty),
    ("records", records),
    ("statefile", statefile),
    ("pages", pages),
];

/// The entry of a target by name.
pub fn target(name: &str) -> Option<Run> {
    TARGETS.iter().find(|t| t.0 == name).map(|t| t.1)
}

/// The corpus entries of one graph file each, in the order the first byte
/// of a `graph` input picks them.
pub const GRAPH_ENTRIES: &[&str] = &[
    "scalars",
    "packed",
    "compound",
    "collections",
    "sharing",
    "traitobj",
    "evolution",
    "forward",
    "outside",
    "serde",
];

/// `from_slice` into rich derived types: the first byte picks the type
/// (strings, bytes, packed arrays, maps, `Rc`/`Weak` graphs, forward
/// references, enums, trait objects, nested options, serde fields through
/// the bridge and postcard), the rest is the record. The corpus readers
/// describe what loaded and save it again, so that runs too.
pub fn graph(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let name = GRAPH_ENTRIES[pick as usize % GRAPH_ENTRIES.len()];
    read_entry(name, [(format!("{name}.graph"), rest.to_vec())]);
    // The same bytes through the type-free serde reader, into a dynamic
    // serde value: every tag the bridge accepts or refuses.
    let _ = stateify::from_slice::<stateify::serde::Serde<serde_json::Value>>(rest);
}

/// The type-free readers: `pretty::to_string`, `value::decode` and the
/// random-access `value::Lazy` (walked whole) of every record.
pub fn pretty(data: &[u8]) {
    let _ = stateify::pretty::to_string(data);
    each_record(data, |body| {
        let _ = stateify::value::decode(body, 4096);
        if let Ok(lazy) = stateify::value::Lazy::new(body, 4096) {
            walk_lazy(&lazy, lazy.root(), &mut Default::default(), &mut 10_000);
        }
    });
}

/// Visits the values reachable from `loc` (each shared object once), at
/// most `budget` of them, asking for every node, kind, child list, window
/// and mark list: errors are fine, panics are not.
pub fn walk_lazy(
    lazy: &stateify::value::Lazy<'_>,
    loc: stateify::value::Loc,
    seen: &mut std::collections::HashSet<stateify::value::Loc>,
    budget: &mut usize,
) {
    use stateify::value::{Link, Node};
    if *budget == 0 || !seen.insert(loc) {
        return;
    }
    *budget -= 1;
    let _ = lazy.kind(loc);
    if let Ok(Node::Link(Link::Object { id, .. })) = lazy.node(loc) {
        if let Some(obj) = lazy.object(id) {
            walk_lazy(lazy, obj, seen, budget);
        }
    }
    let marks = lazy.marks(loc, 2).unwrap_or_default();
    let _ = lazy.children_from(loc, 1, 3, Some(&marks));
    for c in lazy.children(loc).unwrap_or_default() {
        walk_lazy(lazy, c.loc, seen, budget);
    }
}

/// A stream of records: `read_header`/`skip_record` to the end, then the
/// corpus reader of mixed graph and raw records.
pub fn records(data: &[u8]) {
    let mut cur = Cursor::new(data);
    while (cur.position() as usize) < data.len() {
        let Ok((len, _)) = stateify::read_header(&mut cur) else {
            break;
        };
        if stateify::skip_record(&mut cur, len).is_err() {
            break;
        }
    }
    read_entry("mixed", [("mixed.stream".to_string(), data.to_vec())]);
}

/// The statefile reader, keyed and not: bit 0 of the first byte picks the
/// key. The rest is the file, with its header checksum, header MAC and
/// every chunk MAC recomputed for that key first, as anyone who holds the
/// key (or any reader of an unkeyed file) can: mutations then reach the
/// decompressors and the records inside.
pub fn statefile(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let key = (pick & 1 == 1).then_some(KEY);
    let mut file = rest.to_vec();
    fix_statefile_macs(&mut file, key);
    let _ = statefile::read_header(Cursor::new(&file));
    let _ = statefile::inspect(Cursor::new(&file));
    // Small inputs: one worker thread (starting more costs more than the read).
    if let Ok(mut r) = statefile::Reader::with_threads(Cursor::new(&file), key, 1) {
        let mut inner = Vec::new();
        if r.read_to_end(&mut inner).is_ok() && r.finish().is_ok() {
            records(&inner);
        }
    }
}

/// pgalloc `load_from`: the first byte picks inline pages, a pages file, or
/// a whole sandbox checkpoint (statefile + pages file). For two files, the
/// next four bytes (little-endian) give the first file's length.
pub fn pages(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    match pick % 3 {
        0 => read_entry(
            "pages-inline",
            [("pages-inline.stream".to_string(), rest.to_vec())],
        ),
        1 => {
            let Some((meta, pages)) = split(rest) else {
                return;
            };
            let mut cur = Cursor::new(meta);
            let opts = pgalloc::LoadOpts {
                background: false,
                ..pgalloc::LoadOpts::default()
            };
            let _ = pgalloc::MemoryFile::load_from(&mut cur, Some(Arc::new(pages.to_vec())), &opts);
        }
        _ => {
            let Some((state, pages)) = split(rest) else {
                return;
            };
            let mut state = state.to_vec();
            fix_statefile_macs(&mut state, Some(KEY));
            read_entry(
                "sandbox",
                [
                    ("sandbox.state".to_string(), state),
                    ("sandbox.pages".to_string(), pages.to_vec()),
                ],
            );
        }
    }
}

/// Runs the corpus reader of entry `name` on `files`, dropping the result.
fn read_entry<const N: usize>(name: &str, files: [(String, Vec<u8>); N]) {
    if let Some(e) = corpus::entries().into_iter().find(|e| e.name == name) {
        let _ = (e.read)(&Files::from(files));
    }
}

/// Two files from one input: a u32 length, the first file, the second.
fn split(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (n, rest) = data.split_first_chunk::<4>()?;
    let n = (u32::from_le_bytes(*n) as usize).min(rest.len());
    Some(rest.split_at(n))
}

/// Joins two files the way `split` takes them apart (for seeds).
pub fn join(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut v = (a.len() as u32).to_le_bytes().to_vec();
    v.extend_from_slice(a);
    v.extend_from_slice(b);
    v
}

fn each_record(data: &[u8], mut f: impl FnMut(&[u8])) {
    let mut rest = data;
    while let Ok((len, object, h)) = stateify::decode_header(rest) {
        let Some(end) = usize::try_from(len).ok().and_then(|l| h.checked_add(l)) else {
            return;
        };
        if end > rest.len() {
            return;
        }
        if object {
            f(&rest[h..end]);
        }
        rest = &rest[end..];
    }
}

/// Recomputes a statefile's header checksum and MAC and every chunk's MAC
/// for `key`, as far as the lengths in the file allow (docs/FORMAT.md §7).
pub fn fix_statefile_macs(file: &mut [u8], key: Option<&[u8]>) {
    let mac_key = blake3::derive_key("stateify statefile v1 chunk MAC", key.unwrap_or(b""));
    let mac = |parts: &[&[u8]]| {
        let mut h = blake3::Hasher::new_keyed(&mac_key);
        for p in parts {
            h.update(p);
        }
        *h.finalize().as_bytes()
    };
    let Some(m) = file.get(16..20) else { return };
    let raw_len = 20 + u32::from_le_bytes(m.try_into().unwrap_or([0; 4])) as usize;
    if raw_len + 64 > file.len() {
        return;
    }
    let sum = *blake3::hash(&file[..raw_len]).as_bytes();
    let mut prev = mac(&[&file[..raw_len]]);
    file[raw_len..raw_len + 32].copy_from_slice(&sum);
    file[raw_len + 32..raw_len + 64].copy_from_slice(&prev);
    let mut at = raw_len + 64;
    while at + 13 <= file.len() {
        let seq = &file[at..at + 8];
        let len_bytes = &file[at + 8..at + 12];
        let kind = file[at + 12];
        let len = u32::from_le_bytes(len_bytes.try_into().unwrap_or([0; 4])) as usize;
        let Some(end) = (at + 13).checked_add(len) else {
            return;
        };
        if end + 32 > file.len() {
            return;
        }
        let m = mac(&[&file[at + 13..end], seq, &[kind], len_bytes, &prev]);
        file[end..end + 32].copy_from_slice(&m);
        prev = m;
        at = end + 32;
    }
}

/// Heap an input may use at its peak in the replay tests: a floor for the
/// readers' fixed costs (worker buffers, stacks grown on the heap) plus a
/// multiple of its length (preallocation is budgeted at 16 bytes per input
/// byte).
pub fn heap_bound(len: usize) -> usize {
    (96 << 20) + 64 * len
}

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// A counting allocator around the system one, for the replay tests to
/// install as their `#[global_allocator]`: [`Counting::peak_of`] gives the
/// peak of live heap bytes while a closure runs.
pub struct Counting;

impl Counting {
    /// Runs `f`, returning its result and the most heap it held at once
    /// beyond what was live before (one thread at a time).
    pub fn peak_of<R>(f: impl FnOnce() -> R) -> (R, usize) {
        let base = LIVE.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        let r = f();
        (r, PEAK.load(Ordering::Relaxed).saturating_sub(base))
    }

    fn grew(by: usize) {
        let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
        PEAK.fetch_max(now, Ordering::Relaxed);
    }
}

// SAFETY: every call forwards to the system allocator with the caller's
// arguments unchanged; the counters are only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on unchanged.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            Self::grew(l.size());
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: the caller's contract, passed on unchanged.
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on unchanged.
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            if new >= l.size() {
                Self::grew(new - l.size());
            } else {
                LIVE.fetch_sub(l.size() - new, Ordering::Relaxed);
            }
        }
        q
    }
}
