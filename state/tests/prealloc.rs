//! Preallocation from claimed counts is bounded by the input, however the
//! claims nest. A counting allocator measures the peak of live heap bytes,
//! so this test has a binary of its own.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; the
// counters are plain atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
        PEAK.fetch_max(live, Relaxed);
        // SAFETY: the caller's contract is the one `System.alloc` needs.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The counters are process-wide: one measurement at a time.
static MEASURING: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[derive(Debug)]
struct Nest {
    #[allow(dead_code)]
    inner: Vec<Nest>,
}

impl stateify::Stateify for Nest {
    fn save(&self, s: &mut stateify::Saver) -> Result<(), stateify::Error> {
        s.save_struct("Nest", &["inner"], |s| s.field("inner", &self.inner))
    }
    fn load(l: &mut stateify::Loader) -> Result<Self, stateify::Error> {
        let mut inner = None;
        l.load_struct("Nest", &["inner"], |st, l| {
            while let Some(i) = st.next(l)? {
                if i == 0 {
                    inner = Some(st.value(l)?);
                } else {
                    st.skip(l)?;
                }
            }
            Ok(Nest {
                inner: st.take(inner, 0)?,
            })
        })
    }
}

const LEVELS: usize = 4000;

/// A graph of `LEVELS` nested structs named `name` with one field `inner`:
/// each level is `level` (a container claiming many entries, the first of
/// which opens the next level), the innermost `last`. Loading it fails at
/// the second entry of the innermost level; returns the error and the peak
/// of live heap bytes during the load, over what was live before it, and
/// the input's length.
fn failed_load_peak<T: stateify::Stateify + std::fmt::Debug>(
    name: &[u8],
    level: &[u8],
    last: &[u8],
) -> (stateify::Error, usize, usize) {
    let mut body = vec![stateify::wire::GRAPH_VERSION, stateify::wire::STRUCT, 0];
    // The type definition: `name`, with one field, `inner`.
    body.push(name.len() as u8);
    body.extend_from_slice(name);
    body.extend_from_slice(&[1, 5]);
    body.extend_from_slice(b"inner");
    for _ in 0..LEVELS {
        body.extend_from_slice(level);
    }
    body.extend_from_slice(last);
    let mut bytes = Vec::new();
    stateify::write_header(&mut bytes, body.len() as u64, true).unwrap();
    bytes.extend_from_slice(&body);

    let _one_at_a_time = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let before = LIVE.load(Relaxed);
    PEAK.store(before, Relaxed);
    let err = stateify::from_slice::<T>(&bytes).unwrap_err();
    (err, PEAK.load(Relaxed) - before, bytes.len())
}

/// 4,000 nested vectors, each claiming 2,000 elements (48 KB of capacity
/// apiece, 192 MB if every claim were trusted), in 20 KB of input.
#[test]
fn nested_claims_share_one_preallocation_budget() {
    use stateify::wire::{SEQ, STRUCT};
    // `inner`: a sequence claiming 2,000 elements, the first a `Nest`.
    let (err, peak, len) =
        failed_load_peak::<Nest>(b"Nest", &[SEQ, 0xd0, 0x0f, STRUCT, 0], &[SEQ, 0]);
    assert!(err.to_string().contains("inner"), "{err}");
    // The budget: 16 bytes per input byte plus 1 MiB; then the object table,
    // the error, and one small vector per level that grew as elements
    // arrived. Trusting every claim would peak near 192 MB.
    let bound = 16 * len + (1 << 20) + 256 * LEVELS;
    assert!(peak < bound, "peak {peak} bytes, bound {bound}");
}

#[derive(stateify::Stateify, Debug)]
struct NestMap {
    #[allow(dead_code)]
    inner: std::collections::HashMap<u32, NestMap>,
}

/// The same for hash maps, which make room for their claimed entries:
/// 4,000 nested maps each claiming 2,000 entries (over 200 KB of table
/// apiece, 800 MB if every claim were trusted), in 24 KB of input.
#[test]
fn nested_map_claims_share_the_budget() {
    use stateify::wire::{MAP, SMALL, STRUCT};
    // `inner`: a map claiming 2,000 entries, the first `0 => NestMap`.
    let level = [MAP, 0xd0, 0x0f, SMALL, STRUCT, 0];
    let (err, peak, len) = failed_load_peak::<NestMap>(b"NestMap", &level, &[MAP, 0]);
    assert!(err.to_string().contains("inner"), "{err}");
    let bound = 16 * len + (1 << 20) + 512 * LEVELS;
    assert!(peak < bound, "peak {peak} bytes, bound {bound}");
}
