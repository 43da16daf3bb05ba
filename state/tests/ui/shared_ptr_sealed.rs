// SharedPtr is sealed: a type outside the crate cannot claim to be a
// shared pointer whose raw weak handles unsafe code would trust.
use std::rc::Rc;

#[derive(Clone)]
struct Fake(Rc<u32>);

impl stateify::SharedPtr for Fake {
    type Target = u32;
    type Weak = std::rc::Weak<u32>;
    fn new(v: u32) -> Self {
        Fake(Rc::new(v))
    }
    fn new_cyclic(_: impl FnOnce(&Self::Weak) -> u32) -> Self {
        Fake(Rc::new(0))
    }
    fn downgrade(&self) -> Self::Weak {
        Rc::downgrade(&self.0)
    }
    fn dead() -> Self::Weak {
        std::rc::Weak::new()
    }
    fn weak_into_raw(_: Self::Weak) -> *const () {
        std::ptr::null()
    }
    unsafe fn weak_from_raw(_: *const ()) -> Self::Weak {
        std::rc::Weak::new()
    }
}

fn main() {}
