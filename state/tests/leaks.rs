//! A load that fails inside a suspended construction (an object announced
//! by a forward weak reference) returns `Err` and leaks nothing: the
//! announced objects are unwound and freed, whatever point the stream is
//! cut or damaged at. Counted with a global allocator of this test binary,
//! per thread: the test harness's own thread allocates while the test runs
//! (which once showed as 900 bytes "leaked"), and coroutines run on the
//! thread that resumes them, so the test thread's count is the load's.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::cell::RefCell;
use std::rc::{Rc, Weak};

use stateify::Stateify;

struct Counting;

thread_local! {
    /// Bytes this thread holds. A const-initialized `Cell` needs no
    /// allocation and no destructor, so the allocator may use it.
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn add_live(n: isize) {
    // `try_with`: during thread teardown the slot may be gone; those bytes
    // are not the test's.
    let _ = LIVE.try_with(|l| l.set(l.get() + n));
}

fn live() -> isize {
    LIVE.with(Cell::get)
}

// SAFETY: forwards to the system allocator unchanged; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        add_live(l.size() as isize);
        // SAFETY: the caller's contract for this method is the system allocator's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        add_live(-(l.size() as isize));
        // SAFETY: the caller's contract for this method is the system allocator's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        add_live(new as isize - l.size() as isize);
        // SAFETY: the caller's contract for this method is the system allocator's.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[derive(Stateify)]
struct Room {
    name: String,
    occupants: Vec<Weak<RefCell<Player>>>,
}

#[derive(Stateify)]
struct Player {
    name: String,
    room: Rc<RefCell<Room>>,
}

fn players() -> Vec<Rc<RefCell<Player>>> {
    let room = Rc::new(RefCell::new(Room {
        name: "lobby".into(),
        occupants: vec![],
    }));
    let players: Vec<_> = (0..5)
        .map(|i| {
            Rc::new(RefCell::new(Player {
                name: format!("player {i}"),
                room: room.clone(),
            }))
        })
        .collect();
    room.borrow_mut().occupants = players.iter().map(Rc::downgrade).collect();
    players
}

#[test]
fn failed_loads_inside_suspended_constructions_free_everything() {
    let original = players();
    let bytes = stateify::to_vec(&original).unwrap();
    assert_eq!(
        bytes[10],
        stateify::wire::GRAPH_VERSION,
        "uses forward references"
    );
    // Warm up: thread-local tables of the loader and the saver.
    let back: Vec<Rc<RefCell<Player>>> = stateify::from_slice(&bytes).unwrap();
    assert_eq!(back[4].borrow().room.borrow().occupants.len(), 5);
    drop(back);

    let before = live();
    let mut failures = 0;
    for cut in 11..bytes.len() {
        failures +=
            stateify::from_slice::<Vec<Rc<RefCell<Player>>>>(&bytes[..cut]).is_err() as usize;
    }
    for i in 11..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x40;
        failures += stateify::from_slice::<Vec<Rc<RefCell<Player>>>>(&b).is_err() as usize;
        drop(b);
    }
    let after = live();
    assert!(failures >= bytes.len() - 11, "only {failures} loads failed");
    assert_eq!(
        after - before,
        0,
        "bytes still allocated after {failures} failed loads"
    );
    for p in &original {
        p.borrow().room.borrow_mut().occupants.clear();
    }
}
