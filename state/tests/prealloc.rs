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

/// 4,000 nested vectors, each claiming 2,000 elements (48 KB of capacity
/// apiece, 192 MB if every claim were trusted), in 20 KB of input.
#[test]
fn nested_claims_share_one_preallocation_budget() {
    let levels = 4000;
    let mut body = vec![stateify::wire::GRAPH_VERSION, stateify::wire::STRUCT, 0];
    // The type definition of `Nest`: a struct with one field, `inner`.
    body.push(4);
    body.extend_from_slice(b"Nest");
    body.extend_from_slice(&[1, 5]);
    body.extend_from_slice(b"inner");
    for _ in 0..levels {
        // `inner`: a sequence claiming 2,000 elements, the first a `Nest`.
        body.extend_from_slice(&[stateify::wire::SEQ, 0xd0, 0x0f, stateify::wire::STRUCT, 0]);
    }
    body.extend_from_slice(&[stateify::wire::SEQ, 0]);
    let mut bytes = Vec::new();
    stateify::write_header(&mut bytes, body.len() as u64, true).unwrap();
    bytes.extend_from_slice(&body);

    let before = LIVE.load(Relaxed);
    PEAK.store(before, Relaxed);
    let err = stateify::from_slice::<Nest>(&bytes).unwrap_err();
    let peak = PEAK.load(Relaxed) - before;
    assert!(err.to_string().contains("inner"), "{err}");
    // The budget: 16 bytes per input byte plus 1 MiB; then the object table,
    // the error, and one small vector per level that grew as elements
    // arrived. Trusting every claim would peak near 192 MB.
    let bound = 16 * bytes.len() + (1 << 20) + 256 * levels;
    assert!(peak < bound, "peak {peak} bytes, bound {bound}");
}
